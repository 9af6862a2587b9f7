"""Model serving (``ai-platform:serving``) and the model endpoints (``ai-platform:models``): what an endpoint may
ask of its engine (``components.serving.engines``), its tenant and the GPU pools."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from components.serving import engines
from components.serving.engines.base import versions_of

from .base import (
    ComputeResources,
    ConfigProblems,
    DnsLabel,
    DnsSubdomain,
    HttpUrl,
    Model,
    PositiveInt,
    Problems,
    Quantity,
    at_most,
    valid,
)
from .gpu import EndpointGpu, gpu_placement
from .mesh import Traffic
from .monitoring import EndpointAlerts
from .ratelimits import EndpointLimits
from .tenancy import of_existing_tenants

if TYPE_CHECKING:
    from .model import PlatformConfig


class Serving(Model):
    """Model serving: cert-manager, KServe (Standard mode, no Knative), KEDA, and the endpoints of ``models``."""

    enabled: bool = True
    """Install the serving stack and create the model endpoints."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 2
    """Replicas of the cert-manager, KServe and KEDA controllers and webhooks."""
    prometheus_url: HttpUrl | None = None
    """Prometheus that KEDA queries for inference metrics; unset: the monitoring namespace's
    kube-prometheus-stack (``http://kube-prometheus-stack-prometheus.<monitoring>.svc:9090``)."""
    storage_class: str | None = None
    """Storage class of model caches; unset: the cluster default. Must offer ReadWriteMany for endpoints
    with more than one replica."""


class Replicas(Model):
    """Replica bounds of the autoscaler."""

    min: PositiveInt = 1
    max: PositiveInt = 1

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.min > self.max:
            raise ConfigProblems([("min", f"must be <= max (got min {self.min} > max {self.max})")])
        return self


class ModelCache(Model):
    """The PersistentVolumeClaim that holds downloaded model weights."""

    size: Quantity = "100Gi"
    storage_class: str | None = None
    """Unset: ``serving.storageClass``, else the cluster default."""


class S3(Model):
    """Where an ``s3://`` source lives and the Secret (in the tenant namespace) with its keys."""

    endpoint: HttpUrl | None = None
    """S3-compatible endpoint URL; unset: AWS."""
    region: str = "us-east-1"
    credentials_secret: DnsSubdomain | None = None
    """Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; unset: workload identity."""


class VllmOptions(Model):
    """vLLM server options."""

    max_model_len: PositiveInt | None = None
    """Context length; unset: the model's."""
    gpu_memory_utilization: Annotated[float, Field(gt=0.1, le=0.99)] = 0.9
    """Fraction of GPU memory vLLM may take."""
    tensor_parallel: PositiveInt | None = None
    """Tensor-parallel size; unset: the GPUs per replica. Must divide them."""
    dtype: Literal["auto", "half", "float16", "bfloat16", "float32"] = "auto"
    extra_args: list[str] = []
    """Further ``vllm serve`` arguments."""


TritonModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class TritonOptions(Model):
    """Triton Inference Server options."""

    models: Annotated[list[TritonModelName], Field(min_length=1)]
    """The models the endpoint serves: directories of the model repository. Loaded at start (``--load-model`` in
    ``explicit`` mode); the pods are ready only once the first one is (``/v2/models/<name>/ready``) and every loaded
    one is (``--strict-readiness``)."""
    model_control_mode: Literal["none", "poll", "explicit"] = "explicit"
    """How Triton loads models: ``explicit`` loads exactly ``models``; ``none`` every model in the repository;
    ``poll`` every model, and reloads changed ones."""

    @field_validator("models")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("model names must be distinct")
        return value


class KServeOptions(Model):
    """KServe InferenceService options."""

    model_format: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    """Model format, e.g. sklearn, xgboost, pytorch, onnx, huggingface."""
    runtime: DnsLabel | None = None
    """ServingRuntime name; unset: KServe picks one for the format (``components/serving/engines/kserve.py``)."""


class Canary(Model):
    """A second version of the endpoint (its own Deployment or InferenceService, labelled version: canary)."""

    source: Annotated[str, Field(min_length=6)]
    """The canary's model source (same schemes as the endpoint's)."""
    replicas: Replicas = Replicas()
    """The canary's own replica bounds."""


class Endpoint(Model):
    """One model endpoint in a tenant's namespace: about ten lines of a stack file."""

    name: DnsLabel
    """Endpoint name: Deployment/InferenceService and Service name in the tenant namespace."""
    tenant: DnsLabel
    """Tenant that owns it; its GPUs count against that tenant's quota."""
    engine: str
    """Serving engine: one of ``components/serving/engines`` (vllm, triton, kserve)."""
    source: Annotated[str, Field(min_length=6)]
    """Model source: ``hf://<org>/<model>``, ``s3://<bucket>/<path>``, ``pvc://<claim>/<path>`` (KServe: ``gs://``)."""
    s3: S3 = S3()
    """Endpoint and credentials of an ``s3://`` source."""
    service_account_annotations: dict[str, str] = {}
    """Workload identity of the endpoint's ServiceAccount ``<endpoint>-model`` (every pod of the endpoint runs under
    it), e.g. ``eks.amazonaws.com/role-arn``, ``iam.gke.io/gcp-service-account``,
    ``azure.workload.identity/client-id``: how it reads an ``s3://`` or ``gs://`` model without keys. Each must be
    an identity of ``cluster.platform`` (docs/platforms.md)."""
    pod_identity: bool = False
    """EKS Pod Identity (``cluster.platform: eks``): an association in the EKS API gives ``<endpoint>-model`` its IAM
    role (no annotation); the fetching pods may reach the Pod Identity Agent. The stack output ``platformProfile``
    lists the associations to create."""
    gpu: EndpointGpu | None = None
    """GPUs per replica (required for vLLM)."""
    resources: ComputeResources = ComputeResources(cpu="2", memory="8Gi")
    """CPU and memory per replica (requests == limits)."""
    replicas: Replicas = Replicas()
    """Autoscaler bounds."""
    autoscaling_target: Annotated[float, Field(gt=0)] | None = None
    """Per-replica target of the load metric (vLLM waiting requests, Triton pending requests, KServe CPU %)."""
    cache: ModelCache = ModelCache()
    """Model cache volume (vLLM with hf:// or s3:// sources)."""
    vllm: VllmOptions | None = None
    triton: TritonOptions | None = None
    kserve: KServeOptions | None = None
    canary: Canary | None = None
    """A canary version, split by ``traffic.weights`` and header routes."""
    traffic: Traffic = Traffic()
    """Mesh routing: split, header routes, timeout, retries, connection pool, circuit breaker."""
    alerts: EndpointAlerts = EndpointAlerts()
    """This endpoint's alert thresholds."""
    limits: EndpointLimits | None = None
    """Its request ceiling over all callers, enforced at the ingress gateway (``rateLimits``)."""
    vpa: bool = False
    """A VerticalPodAutoscaler in ``Off`` mode for each of the endpoint's model-server Deployments (stable and
    canary; KServe's predictor): CPU and memory recommendations on the ``rightsizing`` dashboard, nothing changed.
    Needs ``vpa.enabled``."""

    @property
    def service_account(self) -> str:
        """The ServiceAccount every pod of the endpoint runs under (``components.serving.model_access``)."""
        return f"{self.name}-model"

    @property
    def max_replicas(self) -> int:
        """Replicas stable and canary may run together."""
        return self.replicas.max + (self.canary.replicas.max if self.canary else 0)

    @property
    def scheme(self) -> str:
        return self.source.split("://", 1)[0]

    @property
    def location(self) -> str:
        """The source without its scheme: ``org/model``, ``bucket/path`` or ``claim/path``."""
        return self.source.split("://", 1)[1]

    @property
    def target(self) -> float:
        return self.autoscaling_target or engines.get(self.engine).default_target

    @field_validator("engine")
    @classmethod
    def _engine_known(cls, value: str) -> str:
        if value not in engines.names():
            expected = ", ".join(repr(name) for name in engines.names()[:-1]) + f" or {engines.names()[-1]!r}"
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value

    @model_validator(mode="after")
    def _engine_rules(self) -> Endpoint:
        problems = []
        engine = engines.get(self.engine)
        schemes = engine.schemes
        sources = [("source", self.source)] + ([("canary.source", self.canary.source)] if self.canary else [])
        for path, source in sources:
            if not re.fullmatch(r"[a-z0-9]+://[^\s/]+(/[^\s]*)?", source) or source.split("://")[0] not in schemes:
                problems.append(
                    (
                        path,
                        f"must be a URI with scheme {', '.join(s + '://' for s in schemes)} for "
                        f"{self.engine} (got {source!r})",
                    )
                )
        if self.canary and self.canary.source.split("://")[0] != self.scheme:
            problems.append(
                (
                    "canary.source",
                    f"must use the stable source's scheme {self.scheme}:// (the versions share storage settings)",
                )
            )
        if self.canary is None and self.traffic.weights.canary:
            problems.append(("traffic.weights.canary", "a canary weight needs a canary"))
        for index, route in enumerate(self.traffic.header_routes):
            if route.subset == "canary" and self.canary is None:
                problems.append((f"traffic.headerRoutes[{index}].subset", "routes to canary, but there is no canary"))
        for other in engines.all_engines():
            if other.options_key and other is not engine and getattr(self, other.options_key) is not None:
                problems.append((other.options_key, f"options for {other.name} on a {self.engine} endpoint"))
        identity = bool(self.service_account_annotations) or self.pod_identity
        if self.scheme == "s3" and not self.s3.credentials_secret and not identity:
            problems.append(
                (
                    "s3.credentialsSecret",
                    "an s3:// model needs keys (s3.credentialsSecret) or workload identity (serviceAccountAnnotations, "
                    "or podIdentity on eks)",
                )
            )
        if self.s3.credentials_secret and identity:
            problems.append(
                (
                    "s3.credentialsSecret",
                    "either keys or workload identity (serviceAccountAnnotations, podIdentity), not both",
                )
            )
        if self.scheme != "s3" and (self.s3 != S3()):
            problems.append(("s3", f"only for an s3:// source (got {self.scheme}://)"))
        problems += engine.config_problems(self)
        return valid(self, problems)


def cache_storage_class(version: Endpoint, serving: Serving, shared_default: str | None) -> str | None:
    """Storage class of one version's model cache: its own, else ``serving.storageClass``; a cache several replicas
    read (ReadWriteMany) with neither gets the platform's ReadWriteMany class (``shared_default``); None: the cluster
    default."""
    return (
        version.cache.storage_class or serving.storage_class or (shared_default if version.replicas.max > 1 else None)
    )


def unclassed_shared_caches(cfg: PlatformConfig) -> list[tuple[int, Endpoint]]:
    """(models index, version) of every model cache several replicas read (ReadWriteMany) that no storage class names:
    the cluster default would have to offer ReadWriteMany."""
    if cfg.serving.storage_class:
        return []
    return [
        (index, version)
        for index, endpoint in enumerate(cfg.models)
        for _, version in versions_of(endpoint)
        if version.replicas.max > 1
        and not version.cache.storage_class
        and engines.get(version.engine).needs_cache(version)
    ]


def cross_checks(cfg: PlatformConfig) -> Problems:
    """Endpoints need serving, a canary needs the mesh; each endpoint fits its tenant's LimitRange and the GPU pools,
    and a tenant's endpoints at max replicas fit its GPU quota."""
    problems: Problems = []
    if cfg.models and not cfg.serving.enabled:
        problems.append(("models", "model endpoints need serving.enabled"))
    for index, endpoint in enumerate(cfg.models):
        if endpoint.canary and not cfg.mesh.enabled:  # the Service would select both versions
            problems.append(
                (
                    f"models[{index}].canary",
                    "splitting traffic to a canary (traffic.weights, header "
                    "routes) needs the mesh: without it the endpoint's Service selects both versions "
                    "and traffic splits by replica count; set mesh.enabled, or drop the canary and "
                    "roll out by changing source",
                )
            )
    used: dict[tuple[int, str], list[tuple[int, int]]] = {}  # (tenant index, GPU resource) -> (endpoint, GPUs)
    for index, endpoint, tenant_index in of_existing_tenants(cfg, "models", "endpoint", cfg.models, problems):
        at, tenant = f"models[{index}]", cfg.tenants[tenant_index]
        problems += tenant.container_problems(
            at, f"tenants[{tenant_index}]", endpoint.resources, endpoint.gpu.count if endpoint.gpu else 0
        )
        if engines.get(endpoint.engine).needs_cache(endpoint):
            at_most(
                problems,
                f"{at}.cache.size",
                endpoint.cache.size,
                f"tenants[{tenant_index}] largest PVC",
                tenant.pvc_max,
            )
            at_most(
                problems,
                f"tenants[{tenant_index}].limitRange.pvc.min",
                tenant.limit_range.pvc.min,
                f"{at}.cache.size",
                endpoint.cache.size,
            )
        if endpoint.gpu:
            try:
                gpu_placement(cfg.gpu, endpoint.gpu, tenant.gpu_isolation == "exclusive")
            except ValueError as error:
                problems.append((f"{at}.gpu", str(error)))
                continue
            resource = cfg.gpu.resource_for(endpoint.gpu.mig_profile)
            used.setdefault((tenant_index, resource), []).append((index, endpoint.gpu.count * endpoint.max_replicas))
    for (tenant_index, resource), uses in used.items():
        tenant = cfg.tenants[tenant_index]
        quota = tenant.quota.gpu_resources().get(resource, 0)
        if sum(n for _, n in uses) > quota:
            paths = ", ".join(f"models[{i}] {n}" for i, n in uses)
            problems.append(
                (
                    f"models[{uses[-1][0]}].gpu",
                    f"endpoints of tenant {tenant.name!r} need up to "
                    f"{sum(n for _, n in uses)} {resource} at max replicas ({paths}) but "
                    f"tenants[{tenant_index}].quota allows {quota}",
                )
            )
    return problems
