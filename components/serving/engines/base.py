"""What every engine module provides (``Engine``), the family of engines whose server the platform runs itself
(``ServerEngine``: a Deployment per version behind one Service), and the pieces their pods share.

Names of one endpoint's objects live here once: a version's workload is ``<endpoint>`` (stable) or
``<endpoint>-<version>`` (``version_name``); its Deployment adds the engine's ``deployment_suffix`` (KServe's
``-predictor``).

Pure data and functions: ``config.serving`` validates endpoints with the engines, so nothing here imports Pulumi or
the config models (only for type hints).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from ...pods import restricted_container, restricted_pod, tmp_mount

if TYPE_CHECKING:
    from config.images import ImageContract
    from config.monitoring import Alerts
    from config.serving import Endpoint

    from ...traces import Otlp

STABLE, CANARY = "stable", "canary"
ENDPOINT_LABEL = "ai-platform/endpoint"
ROLE_LABEL = "ai-platform/role"
VERSION_LABEL = "version"
MODELS = "/models"
UID = 1000

POD_SECURITY = restricted_pod(UID, gid=UID, fs_group=UID)
CONTAINER_SECURITY = restricted_container(read_only_root=False, non_root=True, seccomp=True)
# vLLM, Triton and the download Job write only to the mounts they are given (/tmp, the model cache, /dev/shm).
READ_ONLY_ROOT = restricted_container(non_root=True, seccomp=True)
# The vLLM and AWS CLI images define no user for UID 1000 and their Python calls getpass.getuser() (torch, via
# vLLM: KeyError 'getpwuid(): uid not found: 1000', vllm-project/vllm#44548, kserve/kserve#5666); getuser() reads
# LOGNAME/USER first (CPython Lib/getpass.py). HOME and the XDG cache sit on the writable /tmp volume.
HOME_ENV: list[dict] = [
    {"name": "HOME", "value": "/tmp/home"},
    {"name": "XDG_CACHE_HOME", "value": "/tmp/cache"},
    {"name": "USER", "value": "model-server"},
    {"name": "LOGNAME", "value": "model-server"},
]
TMP_MOUNT = tmp_mount()

Problems = list[tuple[str, str]]


def version_name(base: str, version: str) -> str:
    """The name of one version of something named ``base``: ``base`` for stable, ``base-<version>`` otherwise."""
    return base if version == STABLE else f"{base}-{version}"


def versions_of(endpoint: Endpoint) -> list[tuple[str, Endpoint]]:
    """The endpoint's versions: stable, and the canary (same spec, its own source and replicas)."""
    result = [(STABLE, endpoint)]
    if endpoint.canary:
        result.append(
            (
                CANARY,
                endpoint.model_copy(update={"source": endpoint.canary.source, "replicas": endpoint.canary.replicas}),
            )
        )
    return result


def model_path(endpoint: Endpoint) -> str:
    """Where the server finds the model: the cache directory, or the path inside a mounted claim."""
    if endpoint.scheme == "pvc":
        return f"{MODELS}/{endpoint.location.partition('/')[2]}".rstrip("/")
    return f"{MODELS}/{endpoint.scheme}/{endpoint.location}"


def probe(path: str, port: str, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def s3_env(endpoint: Endpoint) -> list[dict]:
    """Region, endpoint and (when the stack names a Secret) keys of an ``s3://`` source for AWS SDKs."""
    env: list[dict] = [{"name": "AWS_DEFAULT_REGION", "value": endpoint.s3.region}]
    if endpoint.s3.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": endpoint.s3.endpoint})
    if endpoint.s3.credentials_secret:
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": endpoint.s3.credentials_secret, "key": key}}}
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ]
    return env


class AlertContext(NamedTuple):
    """What ``components.monitoring.rules`` hands an engine to write one endpoint's alerts."""

    endpoint: Endpoint
    alert: Callable[..., dict]
    """The rule builder: ``alert(name, expr, for, severity, summary, description, **labels)``."""
    labels: dict[str, str]
    """Labels every alert of the endpoint carries (tenant, endpoint, engine)."""
    pods: dict[str, str]
    """Matchers of the endpoint's server pods (both versions)."""
    workloads: dict[str, str]
    """Matchers of the endpoint's requests as its Istio sidecars report them."""
    mesh: bool
    """The mesh is on (sidecar metrics exist)."""
    it: str
    """How descriptions name the endpoint."""
    latency: str
    ttft: str
    errors: str
    """The endpoint's thresholds, as PromQL writes them."""
    platform: Alerts
    """The platform-wide thresholds (``monitoring.alerts``)."""


class Engine:
    """One inference engine. A module of this package defines one as ``ENGINE``; the registry finds it by ``name``."""

    name: str
    """The value of ``models[].engine``."""
    position: int
    """Where the engine comes in lists (allowed values, dashboard rows): lower first."""
    schemes: tuple[str, ...]
    """Model source URI schemes it loads."""
    default_target: float
    """Per-replica autoscaling target when ``models[].autoscalingTarget`` is unset."""
    options_key: str | None = None
    """The ``models[]`` key holding its options (``Endpoint`` attribute); None: it has none."""
    contract: ImageContract | None = None
    """The runtime contract of the image it runs (``config.images``); None: images are another controller's."""
    deployment_suffix = ""
    """What the Deployment serving a version adds to the version's name."""
    separate_services = False
    """Each version has its own Service (routed by host) rather than one Service with version subsets."""
    reports_token_usage = False
    """Its responses carry OpenAI ``usage`` (``total_tokens``) the gateway can charge to token budgets
    (``config.ratelimits``), with ``token_usage_args`` also in every streamed response."""
    endpoint_picker = False
    """The Inference Extension's endpoint picker reads this engine's queue and KV-cache metrics (its model server type;
    ``config.routing``): its endpoints may sit behind InferencePools."""
    metrics_scrape: ClassVar[dict]
    """The PodMonitor's endpoint (port by name or number, path), without the scheme."""
    metric_sources: ClassVar[dict[str, str]] = {}
    """Metrics its alerts and dashboard row use -> where the pinned version defines them."""

    @property
    def metrics_port(self) -> int:
        """Port of the servers' ``/metrics`` (the monitoring namespace may call it)."""
        raise NotImplementedError

    @property
    def traffic_ports(self) -> tuple[tuple[str, int], ...]:
        """(name, port) of the Service ports clients call, the first one the HTTP port the gateway routes to."""
        raise NotImplementedError

    def config_problems(self, endpoint: Endpoint) -> Problems:
        """Problems of an endpoint of this engine, as (path below the endpoint, message)."""
        return []

    def needs_cache(self, endpoint: Endpoint) -> bool:
        """The endpoint's model is downloaded into a cache volume before the server starts."""
        return False

    def deployments(self, endpoint: Endpoint) -> list[str]:
        """The Deployments serving the endpoint, stable then canary."""
        return [version_name(endpoint.name, version) + self.deployment_suffix for version, _ in versions_of(endpoint)]

    def services(self, endpoint: Endpoint) -> dict[str, str]:
        """Version -> the Service that reaches it."""
        return {version: endpoint.name for version, _ in versions_of(endpoint)}

    def pod_selector(self, endpoint: Endpoint, version: str) -> dict[str, str]:
        """Labels of one version's server pods."""
        return {ENDPOINT_LABEL: endpoint.name, VERSION_LABEL: version}

    def policy_selectors(self, endpoint: Endpoint) -> dict[str, dict[str, str]]:
        """Version -> labels of the pods one AuthorizationPolicy of the endpoint guards."""
        return {STABLE: {ENDPOINT_LABEL: endpoint.name}}

    def fetchers(self, endpoint: Endpoint) -> dict:
        """Label selector of the pods that fetch the endpoint's model (they get egress to object stores)."""
        if self.needs_cache(endpoint):
            return {"matchLabels": {ENDPOINT_LABEL: endpoint.name, ROLE_LABEL: "model-download"}}
        return {"matchLabels": {ENDPOINT_LABEL: endpoint.name}}

    def credential_annotations(self, endpoint: Endpoint) -> dict[str, str]:
        """Annotations the ServiceAccount and the keys' Secret carry for the engine to read an ``s3://`` model."""
        return {}

    def custom_resource(self, endpoint: Endpoint, resources: dict, pod: dict) -> tuple[str, str, dict]:
        """An engine run by a controller (not a ``ServerEngine``): apiVersion, kind and spec of one version's resource
        (``resources``: the server's requests and limits; ``pod``: service account, GPU placement, labels)."""
        raise NotImplementedError

    def alert_rules(self, context: AlertContext) -> list[dict]:
        """The engine's own alerts of one endpoint (the mesh's and the replicas' come from ``rules``)."""
        return []

    def dashboard_row(self, board, pods: dict[str, str], thresholds: Alerts) -> None:
        """Add the engine's row to the inference dashboard (``board``: ``components.monitoring.dashboards``)."""


class ServerEngine(Engine):
    """An engine whose server the platform runs: per version a Deployment (with PDB, autoscaler, model cache), one
    Service for both versions, routed by the pods' ``version`` label."""

    contract: ImageContract
    ports: tuple[tuple[str, int, str], ...]
    """(name, port, appProtocol) of the Service and the container."""
    load_query: str
    """KEDA's PromQL of the load per replica, with ``{namespace}`` and ``{pods}`` (the version's pod regex)."""

    @property
    def metrics_port(self) -> int:
        return next(port for name, port, _ in self.ports if name == self.metrics_scrape["port"])

    @property
    def traffic_ports(self) -> tuple[tuple[str, int], ...]:
        return tuple((name, port) for name, port, _ in self.ports if name != "metrics")

    def container(self, endpoint: Endpoint, image: str) -> dict:
        """The server container of one version (``image``: the contract's image, mirrored); resources are added."""
        raise NotImplementedError

    def tracing(self, endpoint: Endpoint, otlp: Otlp) -> tuple[list[str], list[dict]]:
        """Arguments and environment that make the server export its spans to ``otlp`` (the collector): none for an
        engine whose pinned server cannot."""
        return [], []

    def token_usage_args(self) -> list[str]:
        """Arguments that make the server put ``usage`` in every response, streamed ones included (engines with
        ``reports_token_usage``)."""
        return []

    def volumes(self, endpoint: Endpoint) -> list[dict]:
        """Pod volumes the container needs besides ``tmp`` and ``models``."""
        return []
