"""KServe: a Standard-mode InferenceService per version, whose controller runs the Deployment and Service
``<isvc>-predictor`` (``pkg/constants.PredictorServiceName``); the storage initializer in the predictor pods fetches
``hf://``, ``s3://``, ``gs://`` or ``pvc://`` models (``s3://`` settings from the ServiceAccount, ``model_access``);
scales on CPU (default 70%); metrics on port 8080; with the mesh, latency alerts from the sidecars (the model servers
publish nothing the platform pins).

KServe's ClusterServingRuntimes at the pinned chart, as far as the platform relies on them: which runtime KServe
picks for a model format, and how that runtime names the model it serves.

Source: kserve/kserve v0.20.0 ``charts/kserve-runtime-configs/files/runtimes/resources.yaml`` (the runtimes the pinned
``kserve-runtime-configs`` chart installs) and ``pkg/controller/v1beta1/inferenceservice/utils/utils.go``
``MergeRuntimeContainers`` ("Args are concatenated (runtime + isvc) rather than replaced").

KServe registers a model under the InferenceService's name (``--model_name={{.Name}}``), so a canary
``<endpoint>-canary`` would answer ``/v1/models/<endpoint>-canary`` while clients call ``/v1/models/<endpoint>``. The
platform appends the runtime's own naming flag with the endpoint's name to the predictor's args (after the runtime's:
argparse keeps the last value), so stable and canary answer to the same name on the same paths. Runtimes that take
model names from the model repository (Triton, TorchServe) name both versions alike already (``name_arg`` None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, NamedTuple

from ...monitoring.promql import p95
from .base import CONTAINER_SECURITY, POD_SECURITY, AlertContext, Engine, Problems, version_name, versions_of

if TYPE_CHECKING:
    from config.serving import Endpoint, KServeOptions

ISVC_LABEL = "serving.kserve.io/inferenceservice"
PREDICTOR_PORT = 80  # the predictor Service's port
SERVER_PORT = 8080  # the model servers' HTTP port (and /metrics: the runtimes' prometheus.kserve.io/port)


class Runtime(NamedTuple):
    """A ClusterServingRuntime of the pinned chart."""

    name: str
    name_arg: str | None
    """Flag naming the served model (its value in the runtime is ``{{.Name}}``); None: names from the repository."""
    ready_path: str | None
    """HTTP path on port 8080 that answers 200 only once the model named ``{name}`` is loaded; None: not probed."""


_PYTHON_SERVER = "--model_name"  # python/kserve/kserve/model_server.py: argparse, type=str: the last one wins
_V1_READY = "/v1/models/{name}"  # python/kserve/kserve/protocol/rest/v1_endpoints.py model_ready: 503 until ready

RUNTIMES: dict[str, Runtime] = {
    runtime.name: runtime
    for runtime in (
        Runtime("kserve-sklearnserver", _PYTHON_SERVER, _V1_READY),
        Runtime("kserve-xgbserver", _PYTHON_SERVER, _V1_READY),
        Runtime("kserve-lgbserver", _PYTHON_SERVER, _V1_READY),
        Runtime("kserve-pmmlserver", _PYTHON_SERVER, _V1_READY),
        Runtime("kserve-paddleserver", _PYTHON_SERVER, _V1_READY),
        Runtime("kserve-huggingfaceserver", _PYTHON_SERVER, _V1_READY),
        Runtime("kserve-tensorflow-serving", _PYTHON_SERVER, None),
        Runtime("kserve-tritonserver", None, None),
        Runtime("kserve-torchserve", None, None),
    )
}

# Model format -> the runtime KServe selects for it with the default protocol v1 (pkg/apis/serving/v1beta1/
# predictor_model.go: runtimes with autoSelect that support the format and the protocol, highest priority first;
# kserve-mlserver and kserve-tritonserver speak only v2, kserve-predictiveserver has autoSelect false). Formats only
# v2 runtimes serve (onnx, tensorrt, triton, mlflow) have no runtime under protocol v1: use the triton engine.
FORMATS: dict[str, str] = {
    "sklearn": "kserve-sklearnserver",
    "xgboost": "kserve-xgbserver",
    "lightgbm": "kserve-lgbserver",
    "pmml": "kserve-pmmlserver",
    "paddle": "kserve-paddleserver",
    "huggingface": "kserve-huggingfaceserver",
    "tensorflow": "kserve-tensorflow-serving",
    "pytorch": "kserve-torchserve",
}


def runtime_of(model_format: str, runtime: str | None) -> Runtime | None:
    """The runtime serving an endpoint: the named one, else the one KServe selects for the format (None: unknown)."""
    return RUNTIMES.get(runtime or FORMATS.get(model_format, ""))


def _options(endpoint: Endpoint) -> KServeOptions:
    """A KServe endpoint's options: ``KServe.config_problems`` (run by ``Endpoint._engine_rules``) refuses a KServe
    endpoint without ``kserve``."""
    options = endpoint.kserve
    assert options is not None, "guaranteed by KServe.config_problems"
    return options


def s3_annotations(endpoint: Endpoint) -> dict[str, str]:
    """KServe's storage initializer settings of an s3:// source (``pkg/credentials/s3/s3_secret.go``)."""
    annotations = {"serving.kserve.io/s3-region": endpoint.s3.region}
    if endpoint.s3.endpoint:
        scheme, _, host = endpoint.s3.endpoint.partition("://")
        annotations["serving.kserve.io/s3-endpoint"] = host.rstrip("/")
        annotations["serving.kserve.io/s3-usehttps"] = "1" if scheme == "https" else "0"
    return annotations


class KServe(Engine):
    name = "kserve"
    position = 3
    schemes = ("hf", "s3", "pvc", "gs")
    default_target = 70
    options_key = "kserve"
    api_version, kind = "serving.kserve.io/v1beta1", "InferenceService"
    deployment_suffix = "-predictor"
    separate_services = True  # KServe's canaryTrafficPercent does nothing in Standard mode: the mesh routes by host
    metrics_scrape: ClassVar[dict] = {"portNumber": SERVER_PORT, "path": "/metrics"}  # an unnamed port: by number

    @property
    def metrics_port(self) -> int:
        return SERVER_PORT

    @property
    def traffic_ports(self) -> tuple[tuple[str, int], ...]:
        return (("http", PREDICTOR_PORT),)

    def config_problems(self, endpoint: Endpoint) -> Problems:
        options = endpoint.kserve
        if options is None:
            return [("kserve", "a kserve endpoint needs kserve.modelFormat")]
        if options.runtime is None and options.model_format not in FORMATS:
            return [
                (
                    "kserve.modelFormat",
                    "no runtime of the pinned KServe serves this format with protocol v1 "
                    f"(allowed: {', '.join(sorted(FORMATS))}; onnx, tensorrt and Triton "
                    "models: engine triton)",
                )
            ]
        if endpoint.canary and runtime_of(options.model_format, options.runtime) is None:
            return [
                (
                    "kserve.runtime",
                    "a canary must answer to the stable version's model name, and the platform "
                    f"does not know how {options.runtime} names its model (known runtimes: "
                    f"{', '.join(sorted(RUNTIMES))})",
                )
            ]
        return []

    def services(self, endpoint: Endpoint) -> dict[str, str]:
        return dict(zip([version for version, _ in versions_of(endpoint)], self.deployments(endpoint), strict=True))

    def pod_selector(self, endpoint: Endpoint, version: str) -> dict[str, str]:
        return {ISVC_LABEL: version_name(endpoint.name, version)}

    def policy_selectors(self, endpoint: Endpoint) -> dict[str, dict[str, str]]:
        return {version: self.pod_selector(endpoint, version) for version, _ in versions_of(endpoint)}

    def fetchers(self, endpoint: Endpoint) -> dict:
        """The storage initializer runs in the predictor pods of both versions."""
        return {
            "matchExpressions": [
                {
                    "key": ISVC_LABEL,
                    "operator": "In",
                    "values": [version_name(endpoint.name, v) for v, _ in versions_of(endpoint)],
                }
            ]
        }

    def credential_annotations(self, endpoint: Endpoint) -> dict[str, str]:
        return s3_annotations(endpoint) if endpoint.scheme == "s3" else {}

    def custom_resource(self, endpoint: Endpoint, resources: dict, pod: dict) -> tuple[str, str, dict]:
        """One version's InferenceService: format, storage URI, resources, replica bounds and CPU scale target; the
        model registered under the endpoint's name and probed on the runtime's model-ready path."""
        options = _options(endpoint)
        model: dict = {
            "modelFormat": {"name": options.model_format},
            "storageUri": endpoint.source,
            "resources": resources,
            "securityContext": CONTAINER_SECURITY,
        }
        if options.runtime:
            model["runtime"] = options.runtime
        runtime = runtime_of(options.model_format, options.runtime)
        if runtime and runtime.name_arg:  # after the runtime's --model_name={{.Name}}: the last one counts
            model["args"] = [f"{runtime.name_arg}={endpoint.name}"]
        if runtime and runtime.ready_path:  # KServe's default probe is a TCP check of port 8080
            model["readinessProbe"] = {
                "httpGet": {"path": runtime.ready_path.format(name=endpoint.name), "port": SERVER_PORT},
                "periodSeconds": 5,
                "timeoutSeconds": 5,
                "failureThreshold": 3,
            }
        predictor = {
            "minReplicas": endpoint.replicas.min,
            "maxReplicas": endpoint.replicas.max,
            "scaleMetric": "cpu",
            "scaleTarget": int(endpoint.target),
            "securityContext": POD_SECURITY,
            "model": model,
            **pod,
        }
        return self.api_version, self.kind, {"predictor": predictor}

    def alert_rules(self, context: AlertContext) -> list[dict]:
        if not context.mesh:  # the servers publish nothing the platform pins; the sidecars measure them
            return []
        it, latency = context.it, context.latency
        return [
            context.alert(
                "AiPlatformEndpointLatencyHigh",
                f"{p95('istio_request_duration_milliseconds_bucket', context.workloads)} / 1e3 > {latency}",
                "10m",
                "warning",
                f"{it}: p95 latency above {latency}s",
                f"{it} (KServe) answers 95% of requests within {{{{ $value | humanizeDuration }}}} as its sidecars "
                f"measure; the threshold is {latency}s.",
                **context.labels,
            )
        ]


ENGINE = KServe()
