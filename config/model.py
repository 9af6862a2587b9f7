"""The typed stack config: one frozen pydantic model per ``ai-platform:*`` section of a stack file.

Stack files spell keys in camelCase (``kubernetesVersion``); Python code uses the snake_case attributes.
Field docstrings are the config reference. Cross-field rules live in ``model_validator``s and raise
``ConfigProblems`` so that each problem keeps the config path it belongs to.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components.serving import engines

from . import versions
from .gpus import GPU_MODELS, mig_layout_problems
from .quantity import normalize_quantity, parse_quantity
from .services import SERVICES, protected_services, service


class ConfigProblems(ValueError):
    """Problems found by a cross-field rule, each as (path below the model, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems


class Model(BaseModel):
    """Base of every config model: unknown keys rejected, immutable, camelCase keys in the stack file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


def _dns_label(value: str) -> str:
    if len(value) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value):
        raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', "
                         "starting and ending with a letter or digit, at most 63 characters")
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", part) for part in value.split(".")):
        raise ValueError("must be a DNS-1123 subdomain such as ai.example.com")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
Quantity = Annotated[str, BeforeValidator(normalize_quantity)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
PodSecurityLevel = Literal["baseline", "restricted"]

# Versions kubernetes-validate (and so the schema tier) knows.
SUPPORTED_KUBERNETES = [f"1.{minor}" for minor in range(25, 38)]
# Namespaces no tenant may take, besides the platform's own (``Namespaces``).
RESERVED_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease", "root"}


def _at_most(problems: list, small_path: str, small: str | None, large_path: str, large: str | None) -> None:
    """Record a problem if quantity ``small`` exceeds quantity ``large`` (None means unset: no rule)."""
    if small is not None and large is not None and parse_quantity(small) > parse_quantity(large):
        problems.append((small_path, f"must be <= {large_path} (got {small} > {large})"))


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as error:
        raise ValueError(f"must be a CIDR such as 10.0.0.10/32 ({error})") from None


Cidr = Annotated[str, AfterValidator(_cidr)]


class Cluster(Model):
    """The cluster this stack targets."""

    name: DnsLabel
    """Short cluster name, used in labels and outputs."""
    kube_context: str | None = None
    """kubeconfig context the stack's Kubernetes provider uses; unset means the current context."""
    kubernetes_version: Literal[tuple(SUPPORTED_KUBERNETES)]  # type: ignore[valid-type]
    """Kubernetes minor the cluster runs, e.g. "1.35"; pins Pod Security versions and schema validation."""
    domain: DnsSubdomain
    """DNS domain under which the platform exposes endpoints."""
    image_registry: str | None = None
    """Registry mirror that replaces the charts' default registries (air-gapped clusters); tags stay pinned."""
    environment: Literal["development", "staging", "production"] = "production"
    """What the stack is for; ``production`` forbids ``dataProtection.mode: relaxed``."""
    api_server_cidrs: list[Cidr] = []
    """Addresses of the Kubernetes API server's endpoints (``kubectl get endpointslices -l
    kubernetes.io/service-name=kubernetes``) as CIDRs. Tenant pods that call the API (Argo Workflows' executor)
    may reach them; required with workflows on."""
    api_server_port: Annotated[int, Field(ge=1, le=65535, strict=True)] = 443
    """Port of those endpoints (443 on most managed clusters, 6443 on kubeadm)."""

    @field_validator("image_registry")
    @classmethod
    def _registry_host(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*", value):
            raise ValueError("must be a registry host with an optional path, e.g. registry.example.com/mirror")
        return value


class Namespaces(Model):
    """Names of the platform's own namespaces; tenants may not use them and network policies refer to them."""

    volcano: DnsLabel = "volcano-system"
    """Volcano scheduler, controllers and admission webhook."""
    gpu_operator: DnsLabel = "gpu-operator"
    """NVIDIA GPU Operator and its node daemonsets (Pod Security privileged)."""
    ingress: DnsLabel = "istio-ingress"
    """Ingress gateway: tenants accept traffic from it."""
    monitoring: DnsLabel = "monitoring"
    """Prometheus and Grafana: tenants accept metrics scraping from it."""
    mesh: DnsLabel = "istio-system"
    """Service mesh control plane (istiod)."""
    mesh_cni: DnsLabel = "istio-cni"
    """Istio CNI node agent (Pod Security privileged: it edits the nodes' CNI config)."""
    cert_manager: DnsLabel = "cert-manager"
    """cert-manager (certificates for KServe's webhooks and the ingress)."""
    kserve: DnsLabel = "kserve"
    """KServe controller."""
    keda: DnsLabel = "keda"
    """KEDA: autoscaling of model endpoints on inference metrics."""
    mlflow: DnsLabel = "mlflow"
    """MLflow tracking server: a shared service tenants may reach."""
    milvus: DnsLabel = "milvus"
    """Milvus vector database: a shared service tenants may reach."""
    object_store: DnsLabel = "object-store"
    """In-cluster S3-compatible object store (SeaweedFS) for MLflow artifacts and Milvus segments."""
    cnpg: DnsLabel = "cnpg-system"
    """CloudNativePG operator (the in-cluster Postgres of MLflow)."""
    training: DnsLabel = "kubeflow-system"
    """Kubeflow Trainer controller and its JobSet controller."""
    workflows: DnsLabel = "argo"
    """Argo Workflows controller and server (workflows themselves run in tenant namespaces)."""
    ray: DnsLabel = "ray-system"
    """KubeRay operator (Ray clusters run in tenant namespaces)."""
    external_secrets: DnsLabel = "external-secrets"
    """External Secrets Operator and the secret store's service account."""

    @model_validator(mode="after")
    def _distinct(self) -> Namespaces:
        seen: dict[str, str] = {}
        problems = []
        for field, value in self:
            if value in seen:
                problems.append((to_camel(field), f"{value!r} is already the {to_camel(seen[value])} namespace"))
            seen.setdefault(value, field)
        if problems:
            raise ConfigProblems(problems)
        return self


class ComputeResources(Model):
    """CPU and memory of a container."""

    cpu: Quantity
    """CPU, e.g. 500m or 2."""
    memory: Quantity
    """Memory, e.g. 512Mi."""


class ContainerResources(Model):
    """Requests and limits of a container."""

    requests: ComputeResources
    limits: ComputeResources

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ContainerResources:
        problems: list[tuple[str, str]] = []
        for field in ("cpu", "memory"):
            _at_most(problems, f"requests.{field}", getattr(self.requests, field),
                     f"limits.{field}", getattr(self.limits, field))
        if problems:
            raise ConfigProblems(problems)
        return self


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> ContainerResources:
    return ContainerResources(requests=ComputeResources(cpu=cpu, memory=memory),
                              limits=ComputeResources(cpu=cpu_limit, memory=memory_limit))


class VolcanoResources(Model):
    """Resources of the Volcano components."""

    scheduler: ContainerResources = _resources("500m", "512Mi", "2", "2Gi")
    controller: ContainerResources = _resources("250m", "256Mi", "1", "1Gi")
    admission: ContainerResources = _resources("100m", "128Mi", "500m", "512Mi")


class Volcano(Model):
    """The Volcano batch scheduler (gang scheduling, per-tenant queues)."""

    enabled: bool = True
    """Install Volcano and give every tenant a queue. Off: no release, no queues."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 2
    """Replicas of scheduler, controller and admission webhook; more than one turns on leader election."""
    resources: VolcanoResources = VolcanoResources()
    """Requests and limits per Volcano component."""

WHOLE_GPU = "nvidia.com/gpu"
SHARED_GPU = "nvidia.com/gpu.shared"
SharingMode = Literal["none", "time-slicing", "mig"]
GpuModelName = Literal[tuple(GPU_MODELS)]  # type: ignore[valid-type]
PositiveInt = Annotated[int, Field(ge=1, strict=True)]


def gpu_placement(gpu: "Gpu", request: "EndpointGpu", exclusive: bool) -> list["NodePool"]:
    """The pools that can serve a GPU request; raises ``ValueError`` naming the request if none can."""
    if request.mig_profile:
        pools = [p for p in gpu.node_pools
                 if gpu.pool_sharing(p) == "mig" and request.mig_profile in p.mig_profiles]
    else:
        time_sliced_ok = not (exclusive or gpu.time_slicing.rename_by_default
                              or (request.count > 1 and gpu.time_slicing.fail_requests_greater_than_one))
        pools = [p for p in gpu.node_pools if gpu.pool_sharing(p) == "none"
                 or (gpu.pool_sharing(p) == "time-slicing" and time_sliced_ok)]
    pools = [p for p in pools if request.model is None or p.gpu_model == request.model]
    wanted = f"{request.count} x {request.mig_profile or 'GPU'}" + (f" on {request.model}" if request.model else "")
    if not pools:
        raise ValueError(f"no GPU node pool can serve {wanted}" + (" for an exclusive tenant" if exclusive else ""))
    resource = gpu.resource_for(request.mig_profile)
    fitting = [p for p in pools if gpu.pool_units(p, per_node=True).get(resource, 0) >= request.count]
    if not fitting:
        largest = max(gpu.pool_units(p, per_node=True).get(resource, 0) for p in pools)
        raise ValueError(f"{wanted} must fit on one node, but the pools that could serve it have at most "
                         f"{largest} {resource} per node")
    return fitting


def mig_resource(profile: str) -> str:
    """The extended resource a MIG profile is advertised as under the ``mixed`` strategy."""
    return f"nvidia.com/mig-{profile}"


class Driver(Model):
    """The NVIDIA driver the GPU Operator installs on GPU nodes."""

    enabled: bool = True
    """Install the driver; off where the nodes come with one (most managed clouds)."""
    version: str = versions.GPU_DRIVER
    """Driver version (pinned in config/versions.py by default)."""


class TimeSlicing(Model):
    """Time-slicing: several pods take turns on one GPU. No memory or fault isolation between them."""

    replicas: Annotated[int, Field(ge=2, le=64, strict=True)] = 4
    """How many pods may share one physical GPU."""
    rename_by_default: bool = False
    """Advertise shared GPUs as ``nvidia.com/gpu.shared`` (quota key ``quota.sharedGpu``) instead of ``nvidia.com/gpu``."""
    fail_requests_greater_than_one: bool = True
    """Refuse pods asking for more than one shared GPU (they would not get more compute)."""


class Mig(Model):
    """Multi-Instance GPU: hardware partitions with their own memory and compute."""

    strategy: Literal["single", "mixed"] = "mixed"
    """``mixed``: each profile is its own resource ``nvidia.com/mig-<profile>``; ``single``: one profile per
    pool, advertised as ``nvidia.com/gpu``."""


class Taint(Model):
    """A node taint."""

    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodePool(Model):
    """GPU nodes of one kind: either named nodes (labelled and tainted by the platform) or a label selector."""

    name: DnsLabel
    """Pool name; named nodes get the label ai-platform/gpu-pool=<name>."""
    gpu_model: GpuModelName
    """GPU model of every node in the pool."""
    gpus_per_node: PositiveInt
    """Physical GPUs per node."""
    nodes: list[DnsSubdomain] = []
    """Names of the pool's nodes; the platform patches their labels and taints."""
    node_selector: dict[str, str] = {}
    """Labels that select the pool's nodes where the cloud's node pool labels them (instead of ``nodes``)."""
    node_count: PositiveInt | None = None
    """Number of nodes a ``nodeSelector`` pool has (for the capacity check)."""
    sharing: SharingMode | None = None
    """GPU sharing of this pool; unset means ``gpu.sharing``."""
    time_slicing_replicas: Annotated[int, Field(ge=2, le=64, strict=True)] | None = None
    """Time-slicing replicas of this pool; unset means ``gpu.timeSlicing.replicas``."""
    mig_profiles: dict[str, PositiveInt] = {}
    """MIG layout of every GPU in the pool (profile -> instances per GPU), for MIG pools."""
    labels: dict[str, str] = {}
    """Further labels for the pool's named nodes."""
    extra_taints: list[Taint] = []
    """Taints the named nodes keep besides nvidia.com/gpu (the patch owns the whole taint list)."""

    @model_validator(mode="after")
    def _nodes_or_selector(self) -> NodePool:
        problems = []
        if bool(self.nodes) == bool(self.node_selector):
            problems.append(("nodes", "give either nodes (node names) or nodeSelector, not both or neither"))
        if self.node_selector and self.node_count is None:
            problems.append(("nodeCount", "required with nodeSelector (the capacity check counts GPUs)"))
        if self.nodes and self.node_count is not None:
            problems.append(("nodeCount", "only with nodeSelector; named nodes are counted"))
        duplicates = sorted({node for node in self.nodes if self.nodes.count(node) > 1})
        if duplicates:
            problems.append(("nodes", f"listed more than once: {', '.join(duplicates)}"))
        if problems:
            raise ConfigProblems(problems)
        return self

    @property
    def node_total(self) -> int:
        return len(self.nodes) or self.node_count or 0

    @property
    def physical_gpus(self) -> int:
        return self.node_total * self.gpus_per_node


class Gpu(Model):
    """The GPU layer: NVIDIA GPU Operator components, GPU sharing and the GPU node inventory."""

    enabled: bool = True
    """Install the GPU Operator. Off: the cluster brings its own; the inventory still bounds quotas."""
    driver: Driver = Driver()
    """Driver installation."""
    toolkit: bool = True
    """NVIDIA container toolkit."""
    gpu_feature_discovery: bool = True
    """GPU Feature Discovery (nvidia.com/gpu.product and other node labels)."""
    node_status_exporter: bool = False
    """Node status exporter (operator validation metrics)."""
    dcgm_exporter: bool = True
    """DCGM exporter: GPU metrics for Prometheus."""
    sharing: SharingMode = "none"
    """Default GPU sharing of the pools: ``none``, ``time-slicing`` or ``mig``."""
    time_slicing: TimeSlicing = TimeSlicing()
    """Time-slicing settings."""
    mig: Mig = Mig()
    """MIG settings."""
    node_pools: list[NodePool] = []
    """The GPU node inventory; tenant GPU quotas must fit what it can schedule."""
    oversubscription: Annotated[float, Field(ge=1.0, le=10.0)] = 1.0
    """Factor by which the sum of tenant GPU quotas may exceed schedulable capacity (1: not at all)."""

    def pool_sharing(self, pool: NodePool) -> str:
        return pool.sharing or self.sharing

    def pool_replicas(self, pool: NodePool) -> int:
        return pool.time_slicing_replicas or self.time_slicing.replicas

    def pool_units(self, pool: NodePool, per_node: bool = False) -> dict[str, int]:
        """Schedulable units (extended resource -> count) that a pool (or each of its nodes) advertises."""
        sharing = self.pool_sharing(pool)
        gpus = pool.gpus_per_node if per_node else pool.physical_gpus
        if sharing == "time-slicing":
            resource = SHARED_GPU if self.time_slicing.rename_by_default else WHOLE_GPU
            return {resource: gpus * self.pool_replicas(pool)}
        if sharing == "mig":
            if self.mig.strategy == "single":
                return {WHOLE_GPU: gpus * sum(pool.mig_profiles.values())}
            return {mig_resource(p): gpus * n for p, n in pool.mig_profiles.items()}
        return {WHOLE_GPU: gpus}

    def capacity(self) -> dict[str, int]:
        """Schedulable units per extended resource over all pools."""
        total: dict[str, int] = {}
        for pool in self.node_pools:
            for resource, units in self.pool_units(pool).items():
                total[resource] = total.get(resource, 0) + units
        return total

    def exclusive_capacity(self) -> int:
        """Whole, unshared GPUs (pools with sharing none): what exclusive tenants may use as nvidia.com/gpu."""
        return sum(p.physical_gpus for p in self.node_pools if self.pool_sharing(p) == "none")

    def resource_for(self, mig_profile: str | None) -> str:
        """The extended resource a request for whole GPUs or a MIG profile asks for."""
        if mig_profile and self.mig.strategy == "mixed":
            return mig_resource(mig_profile)
        return WHOLE_GPU

    @property
    def uses_mig(self) -> bool:
        return any(self.pool_sharing(p) == "mig" for p in self.node_pools)

    @model_validator(mode="after")
    def _pools(self) -> Gpu:
        problems = []
        seen_pools: set[str] = set()
        seen_nodes: dict[str, str] = {}
        for index, pool in enumerate(self.node_pools):
            at = f"nodePools[{index}]"
            if pool.name in seen_pools:
                problems.append((f"{at}.name", f"duplicate pool {pool.name!r}"))
            seen_pools.add(pool.name)
            for node in pool.nodes:
                if node in seen_nodes:
                    problems.append((f"{at}.nodes", f"node {node!r} is already in pool {seen_nodes[node]!r}"))
                seen_nodes.setdefault(node, pool.name)
            sharing = self.pool_sharing(pool)
            if sharing == "mig":
                if not pool.mig_profiles:
                    problems.append((f"{at}.migProfiles", "a MIG pool needs its MIG layout (profile -> instances)"))
                problems += [(f"{at}.migProfiles", p) for p in mig_layout_problems(pool.gpu_model, pool.mig_profiles)]
                if self.mig.strategy == "single" and len(pool.mig_profiles) > 1:
                    problems.append((f"{at}.migProfiles", "the single MIG strategy allows one profile per pool "
                                     f"(got {', '.join(pool.mig_profiles)}); use mig.strategy mixed"))
            elif pool.mig_profiles:
                problems.append((f"{at}.migProfiles", f"only for MIG pools (this pool's sharing is {sharing})"))
            if pool.time_slicing_replicas is not None and sharing != "time-slicing":
                problems.append((f"{at}.timeSlicingReplicas", f"only for time-slicing pools (sharing is {sharing})"))
            if pool.node_selector and sharing == "mig":
                problems.append((f"{at}.nodeSelector", "MIG pools must name their nodes: the platform labels each "
                                 "node with its nvidia.com/mig.config"))
            elif pool.node_selector and (sharing != self.sharing or pool.time_slicing_replicas is not None):
                problems.append((f"{at}.sharing", "a nodeSelector pool gets the default device-plugin config, so "
                                 "its sharing must be gpu.sharing; name its nodes to give it its own"))
        if problems:
            raise ConfigProblems(problems)
        return self


class Serving(Model):
    """Model serving: cert-manager, KServe (Standard mode, no Knative), KEDA, and the endpoints of ``models``."""

    enabled: bool = True
    """Install the serving stack and create the model endpoints."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 2
    """Replicas of the cert-manager, KServe and KEDA controllers and webhooks."""
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = None
    """Prometheus that KEDA queries for inference metrics; unset: the monitoring namespace's
    kube-prometheus-stack (``http://kube-prometheus-stack-prometheus.<monitoring>.svc:9090``)."""
    storage_class: str | None = None
    """Storage class of model caches; unset: the cluster default. Must offer ReadWriteMany for endpoints
    with more than one replica."""


class EndpointGpu(Model):
    """GPUs of one replica of an endpoint."""

    count: PositiveInt = 1
    """GPUs (or MIG instances of ``migProfile``) per replica."""
    mig_profile: str | None = None
    """MIG profile, e.g. 3g.40gb; unset: whole (or time-sliced) GPUs."""
    model: GpuModelName | None = None
    """Only run on this GPU model."""


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

    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = None
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


Duration = Annotated[str, Field(pattern=r"^\d+(\.\d+)?(ms|s|m|h)$")]
HttpsUrl = Annotated[str, Field(pattern=r"^https://[^\s/]+(/\S*)?$")]


class Issuer(Model):
    """Who signs the ingress certificate (cert-manager)."""

    kind: Literal["selfSigned", "clusterIssuer", "acme"] = "selfSigned"
    """``selfSigned`` (dev), an existing ``clusterIssuer`` by name, or an ``acme`` issuer the platform creates
    (HTTP-01 through the ingress gateway)."""
    name: DnsSubdomain | None = None
    """Name of the existing ClusterIssuer (kind clusterIssuer)."""
    server: HttpsUrl = "https://acme-v02.api.letsencrypt.org/directory"
    """ACME directory (kind acme)."""
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    """ACME account e-mail (kind acme)."""

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Issuer:
        problems = []
        if self.kind == "clusterIssuer" and not self.name:
            problems.append(("name", "a clusterIssuer needs the name of an existing ClusterIssuer"))
        if self.kind != "clusterIssuer" and self.name:
            problems.append(("name", f"only for kind clusterIssuer (got kind {self.kind})"))
        if self.kind == "acme" and not self.email:
            problems.append(("email", "an acme issuer needs an account e-mail"))
        if problems:
            raise ConfigProblems(problems)
        return self


class Jwt(Model):
    """End-user authentication at the ingress: requests to endpoint hosts must carry a valid JWT."""

    issuer: Annotated[str, Field(min_length=1)]
    """Expected ``iss`` claim."""
    jwks_uri: HttpsUrl
    """Where the issuer publishes its signing keys."""
    audiences: list[str] = []
    """Accepted ``aud`` values; empty: any."""


class Mesh(Model):
    """Istio service mesh (sidecar mode with the Istio CNI agent) and the platform's ingress gateway."""

    enabled: bool = True
    """Install Istio and route every endpoint through it; tenants get sidecars, strict mTLS, authorization."""
    mode: Literal["sidecar"] = "sidecar"
    """Data plane mode. Sidecar: per-endpoint L7 policy (timeouts, retries, outlier detection, authorization)
    runs in each client's and server's proxy with no extra waypoints; ambient would need waypoint proxies and
    the Gateway API CRDs, which the platform does not pin."""
    access_logging: bool = True
    """Envoy access logs on stdout for every proxy."""
    outbound_traffic: Literal["ALLOW_ANY", "REGISTRY_ONLY"] = "ALLOW_ANY"
    """Proxies' policy for hosts outside the mesh registry (NetworkPolicies still bound egress)."""
    gateway_replicas: Annotated[int, Field(ge=1, le=10, strict=True)] = 2
    """Ingress gateway replicas."""
    tls: Issuer = Issuer()
    """Issuer of the ingress certificate."""
    jwt: Jwt | None = None
    """Require an end-user JWT on the external hosts."""


class Weights(Model):
    """Weighted split between the stable and the canary version (percent; sums to 100)."""

    stable: Annotated[int, Field(ge=0, le=100, strict=True)] = 100
    canary: Annotated[int, Field(ge=0, le=100, strict=True)] = 0

    @model_validator(mode="after")
    def _sum(self) -> Weights:
        if self.stable + self.canary != 100:
            raise ConfigProblems([("canary", f"stable + canary must be 100 (got {self.stable} + {self.canary})")])
        return self


class HeaderRoute(Model):
    """Requests with this header value go to one version, before the weighted split."""

    header: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")] = "x-model-version"
    value: Annotated[str, Field(min_length=1)]
    subset: Literal["stable", "canary"]


class ConnectionPool(Model):
    """Per-client limits towards one endpoint (Istio connectionPool)."""

    max_connections: PositiveInt = 100
    max_pending_requests: PositiveInt = 64
    """Queued requests before the proxy answers 503 (a full server should shed load, not queue forever)."""
    max_requests: PositiveInt = 256
    """Concurrent requests (HTTP/2) to the endpoint."""


class OutlierDetection(Model):
    """Circuit breaker: eject replicas that keep failing (Istio outlierDetection)."""

    consecutive5xx_errors: Annotated[int, Field(ge=1, strict=True, alias="consecutive5xxErrors")] = 5
    consecutive_gateway_errors: PositiveInt = 3
    interval: Duration = "30s"
    base_ejection_time: Duration = "60s"
    max_ejection_percent: Annotated[int, Field(ge=1, le=100, strict=True)] = 50


class Traffic(Model):
    """How the mesh routes to an endpoint; defaults suit long LLM generations."""

    weights: Weights = Weights()
    """Weighted split stable/canary."""
    header_routes: list[HeaderRoute] = []
    """Extra header routes; with a canary, ``x-model-version: canary`` always routes to it."""
    timeout: Duration = "120s"
    """Request timeout (a generation may stream for minutes)."""
    retry_attempts: Annotated[int, Field(ge=0, le=5, strict=True)] = 2
    """Retries, only where the request never reached a server (connect-failure, refused-stream, 503)."""
    connection_pool: ConnectionPool = ConnectionPool()
    outlier_detection: OutlierDetection = OutlierDetection()


class Canary(Model):
    """A second version of the endpoint (its own Deployment or InferenceService, labelled version: canary)."""

    source: Annotated[str, Field(min_length=6)]
    """The canary's model source (same schemes as the endpoint's)."""
    replicas: Replicas = Replicas()
    """The canary's own replica bounds."""


PrometheusDuration = Annotated[str, Field(pattern=r"^\d+(ms|s|m|h|d|w|y)$")]
Ratio = Annotated[float, Field(gt=0, le=1)]


class Alerts(Model):
    """Alert thresholds (platform-wide defaults; endpoints may override theirs under ``models[].alerts``)."""

    gpu_temperature_celsius: Annotated[float, Field(gt=0, le=120)] = 85
    """GPU temperature that warns of throttling."""
    gpu_memory_used_ratio: Ratio = 0.95
    """Framebuffer memory use near full."""
    gpu_idle_utilization_percent: Annotated[float, Field(ge=0, le=100)] = 5
    """Below this average utilisation an allocated GPU counts as wasted..."""
    gpu_idle_for: PrometheusDuration = "2h"
    """...for this long."""
    endpoint_p95_latency_seconds: Annotated[float, Field(gt=0)] = 30
    """p95 end-to-end request latency of an endpoint."""
    endpoint_ttft_p95_seconds: Annotated[float, Field(gt=0)] = 2
    """p95 time to first token (vLLM)."""
    endpoint_error_ratio: Ratio = 0.05
    """Share of failed requests."""
    vllm_waiting_requests: Annotated[float, Field(gt=0)] = 20
    """Requests waiting in one vLLM server."""
    vllm_kv_cache_usage: Ratio = 0.9
    """KV-cache use of one vLLM server."""
    triton_queue_ms: Annotated[float, Field(gt=0)] = 100
    """Average Triton queue time per request."""
    quota_used_ratio: Ratio = 0.9
    """Share of a tenant quota (GPU, CPU, memory) in use."""
    volcano_pending_for: PrometheusDuration = "30m"
    """How long a Volcano queue may hold pending jobs."""


class EndpointAlerts(Model):
    """Per-endpoint alert thresholds; unset ones take ``monitoring.alerts``."""

    p95_latency_seconds: Annotated[float, Field(gt=0)] | None = None
    ttft_p95_seconds: Annotated[float, Field(gt=0)] | None = None
    error_ratio: Ratio | None = None


class MetricsStorage(Model):
    """Prometheus's persistent volume."""

    size: Quantity = "50Gi"
    storage_class: str | None = None


EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
HostPort = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:\d{1,5}$")]
# Where alerts of a severity go: ``monitoring.routing``; the tenant receivers are ``tenant-<tenant>``.
SEVERITIES = ("critical", "warning")
TENANT_RECEIVER_PREFIX = "tenant-"


class Receiver(Model):
    """Where alerts go: a Slack channel, a PagerDuty service, a webhook or e-mail. The credential is never in the
    stack file: the Slack incoming-webhook URL, the PagerDuty Events v2 routing key, the webhook URL or the SMTP
    password is a Pulumi secret ``ai-platform:alertReceiver-<receiver>`` (``pulumi config set --secret``), or with
    ``secrets.source: external-secrets`` the property ``<receiver>`` of ``<keyPrefix>/alertmanager-receivers``."""

    kind: Literal["slack", "pagerduty", "webhook", "email"]
    """``slack`` (incoming webhook), ``pagerduty`` (Events API v2), ``webhook`` (Alertmanager's JSON POST) or
    ``email``."""
    channel: Annotated[str, Field(pattern=r"^[#@]\S+$")] | None = None
    """slack: channel (``#name``) or user (``@name``) overriding the webhook's own channel."""
    to: list[EmailAddress] = []
    """email: recipients."""
    sender: EmailAddress | None = None
    """email: the ``From`` address."""
    smarthost: HostPort | None = None
    """email: SMTP relay as ``host:port``."""
    auth_username: Annotated[str, Field(min_length=1)] | None = None
    """email: SMTP user; with it the relay's password is the receiver's secret. Unset: the relay takes mail
    without login (and the receiver needs no secret)."""
    require_tls: bool = True
    """email: insist on STARTTLS."""

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Receiver:
        problems = []
        if self.kind == "email":
            for field in ("to", "sender", "smarthost"):
                if not getattr(self, field):
                    problems.append((field, "an email receiver needs to, sender and smarthost"))
        else:
            for field in ("to", "sender", "smarthost", "auth_username"):
                if getattr(self, field):
                    problems.append((to_camel(field), f"only for kind email (kind is {self.kind})"))
        if self.channel and self.kind != "slack":
            problems.append(("channel", f"only for kind slack (kind is {self.kind})"))
        if problems:
            raise ConfigProblems(problems)
        return self

    @property
    def needs_secret(self) -> bool:
        """Whether the receiver has a credential (all but an e-mail relay without login)."""
        return self.kind != "email" or self.auth_username is not None


class NamedReceiver(Receiver):
    """A platform receiver, named so that ``routing`` can send alerts to it."""

    name: DnsLabel
    """Receiver name (``null`` and ``tenant-*`` are the platform's)."""


class Routing(Model):
    """Which receivers get the platform's alerts, by ``severity`` label. Alerts of a tenant (label ``tenant``) also go
    to the tenant's ``alertReceiver``. Unlisted severities, and the chart's Watchdog, go to the ``null`` receiver."""

    critical: list[DnsLabel] = []
    """Receivers of ``severity=critical`` alerts (e.g. PagerDuty and Slack)."""
    warning: list[DnsLabel] = []
    """Receivers of ``severity=warning`` alerts."""


class Monitoring(Model):
    """kube-prometheus-stack (Prometheus, Alertmanager, Grafana), scraping, alert packs, dashboards."""

    enabled: bool = True
    """Install the monitoring stack and every ServiceMonitor, rule and dashboard of the platform."""
    retention: PrometheusDuration = "15d"
    """How long Prometheus keeps samples."""
    storage: MetricsStorage = MetricsStorage()
    """Prometheus storage."""
    prometheus_replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Prometheus replicas (each scrapes everything)."""
    runbook_url: HttpsUrl = "https://runbooks.example.com/ai-platform"
    """Base URL of the runbooks; each alert links to ``<runbookUrl>/<alert name>``."""
    alerts: Alerts = Alerts()
    """Alert thresholds."""
    receivers: list[NamedReceiver] = []
    """Alertmanager receivers of the platform's alerts (``routing`` says which get what); none: alerts notify no
    one (the chart's ``null`` receiver)."""
    routing: Routing = Routing()
    """Receivers per severity."""

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> Monitoring:
        problems: list[tuple[str, str]] = []
        names = [r.name for r in self.receivers]
        for index, name in enumerate(names):
            if name == "null" or name.startswith(TENANT_RECEIVER_PREFIX):
                problems.append((f"receivers[{index}].name", f"{name!r} is reserved (null, {TENANT_RECEIVER_PREFIX}*: "
                                                             "the tenants' receivers)"))
            if name in names[:index]:
                problems.append((f"receivers[{index}].name", f"duplicate receiver {name!r} "
                                                             f"(also receivers[{names.index(name)}])"))
        for severity in SEVERITIES:
            targets = getattr(self.routing, severity)
            for index, name in enumerate(targets):
                if name not in names:
                    problems.append((f"routing.{severity}[{index}]", f"no receiver {name!r} (receivers: "
                                                                      f"{', '.join(names) or 'none'})"))
                if name in targets[:index]:
                    problems.append((f"routing.{severity}[{index}]", f"{name!r} is listed twice"))
        if problems:
            raise ConfigProblems(problems)
        return self


BucketName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]


class ObjectStore(Model):
    """S3-compatible storage shared by MLflow (artifacts) and Milvus (segments): an in-cluster SeaweedFS with
    generated keys, or an external S3 service."""

    mode: Literal["in-cluster", "external"] = "in-cluster"
    """``in-cluster``: SeaweedFS in ``namespaces.objectStore``; ``external``: an S3 service (AWS S3 by default)."""
    endpoint: HttpUrl | None = None
    """External S3 endpoint URL; unset: AWS S3 of ``region``."""
    region: str = "us-east-1"
    mlflow_bucket: BucketName | None = None
    """Bucket of MLflow artifacts (required for external; in-cluster default ``mlflow``)."""
    milvus_bucket: BucketName | None = None
    """Bucket of Milvus data (required for external; in-cluster default ``milvus``)."""
    workflows_bucket: BucketName | None = None
    """Bucket of Argo Workflows artifacts (required for external with workflows on; in-cluster default
    ``argo-artifacts``)."""
    credentials_secret: DnsSubdomain | None = None
    """External: an existing Secret (in the MLflow and Milvus namespaces) with AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY; or use ``serviceAccountAnnotations`` for workload identity."""
    service_account_annotations: dict[str, str] = {}
    """External: annotations giving the services' ServiceAccounts a cloud identity (e.g. eks.amazonaws.com/role-arn)."""
    size: Quantity = "100Gi"
    """In-cluster: volume size of the store."""
    storage_class: str | None = None
    """In-cluster: storage class of its volumes."""

    @property
    def buckets(self) -> dict[str, str]:
        return {"mlflow": self.mlflow_bucket or "mlflow", "milvus": self.milvus_bucket or "milvus",
                "workflows": self.workflows_bucket or "argo-artifacts"}

    def tenant_bucket(self, tenant: str) -> str:
        """In-cluster: the bucket of a tenant's workflow artifacts, ``<workflows bucket>-<tenant>``."""
        return f"{self.buckets['workflows']}-{tenant}"

    @model_validator(mode="after")
    def _mode_fields(self) -> ObjectStore:
        problems = []
        if self.mode == "external":
            for field in ("mlflow_bucket", "milvus_bucket"):
                if getattr(self, field) is None:
                    problems.append((to_camel(field), "an external object store needs the bucket name"))
            if not self.credentials_secret and not self.service_account_annotations:
                problems.append(("credentialsSecret", "an external object store needs credentialsSecret or "
                                                      "serviceAccountAnnotations (workload identity)"))
        else:
            for field in ("endpoint", "credentials_secret"):
                if getattr(self, field) is not None:
                    problems.append((to_camel(field), "only for an external object store (mode is in-cluster)"))
        if problems:
            raise ConfigProblems(problems)
        return self


class Database(Model):
    """MLflow's Postgres: in-cluster (CloudNativePG) or external."""

    mode: Literal["in-cluster", "external"] = "in-cluster"
    host: DnsSubdomain | None = None
    """External: host name of the Postgres server."""
    port: Annotated[int, Field(ge=1, le=65535, strict=True)] = 5432
    name: DnsLabel = "mlflow"
    """Database name."""
    user: DnsLabel = "mlflow"
    """Database user."""
    password_secret: DnsSubdomain | None = None
    """External: an existing Secret in the MLflow namespace whose key ``password`` holds the user's password."""
    instances: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """In-cluster: Postgres instances (1 primary + replicas)."""
    size: Quantity = "20Gi"
    """In-cluster: volume size per instance."""
    storage_class: str | None = None

    @model_validator(mode="after")
    def _mode_fields(self) -> Database:
        problems = []
        if self.mode == "external":
            if not self.host:
                problems.append(("host", "an external database needs its host"))
            if not self.password_secret:
                problems.append(("passwordSecret", "an external database needs the Secret holding its password"))
        elif self.host or self.password_secret:
            problems.append(("host" if self.host else "passwordSecret", "only for an external database"))
        if problems:
            raise ConfigProblems(problems)
        return self


class Mlflow(Model):
    """MLflow tracking server (experiments, model registry) shared by the tenants."""

    enabled: bool = True
    replicas: Annotated[int, Field(ge=1, le=10, strict=True)] = 1
    resources: ComputeResources = ComputeResources(cpu="500m", memory="1Gi")
    database: Database = Database()
    """Backend store."""


class MilvusStorage(Model):
    """Volume sizes of Milvus's dependencies."""

    etcd: Quantity = "10Gi"
    message_queue: Quantity = "50Gi"
    """Write-ahead log / message queue volume (the chart's streaming storage)."""
    storage_class: str | None = None


class Milvus(Model):
    """Milvus vector database shared by the tenants."""

    enabled: bool = True
    mode: Literal["standalone", "cluster"] = "cluster"
    """``standalone`` (one pod, dev) or ``cluster`` (separate proxy, coordinators, query/data/streaming nodes)."""
    storage: MilvusStorage = MilvusStorage()
    """Volumes."""


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
    ``azure.workload.identity/client-id``: how it reads an ``s3://`` or ``gs://`` model without keys."""
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
                problems.append((path, f"must be a URI with scheme {', '.join(s + '://' for s in schemes)} for "
                                       f"{self.engine} (got {source!r})"))
        if self.canary and self.canary.source.split("://")[0] != self.scheme:
            problems.append(("canary.source", f"must use the stable source's scheme {self.scheme}:// (the "
                                              "versions share storage settings)"))
        if self.canary is None and self.traffic.weights.canary:
            problems.append(("traffic.weights.canary", "a canary weight needs a canary"))
        for index, route in enumerate(self.traffic.header_routes):
            if route.subset == "canary" and self.canary is None:
                problems.append((f"traffic.headerRoutes[{index}].subset", "routes to canary, but there is no canary"))
        for other in engines.all_engines():
            if other.options_key and other is not engine and getattr(self, other.options_key) is not None:
                problems.append((other.options_key, f"options for {other.name} on a {self.engine} endpoint"))
        if self.scheme == "s3" and not self.s3.credentials_secret and not self.service_account_annotations:
            problems.append(("s3.credentialsSecret", "an s3:// model needs keys (s3.credentialsSecret) or workload "
                                                     "identity (serviceAccountAnnotations)"))
        if self.s3.credentials_secret and self.service_account_annotations:
            problems.append(("s3.credentialsSecret", "either keys or workload identity (serviceAccountAnnotations), "
                                                     "not both"))
        if self.scheme != "s3" and (self.s3 != S3()):
            problems.append(("s3", f"only for an s3:// source (got {self.scheme}://)"))
        problems += engine.config_problems(self)
        if problems:
            raise ConfigProblems(problems)
        return self


class Subjects(Model):
    """Who is bound to a tenant role: identity-provider groups and/or users."""

    groups: list[Annotated[str, Field(min_length=1)]] = []
    """Group names as the cluster's authenticator reports them."""
    users: list[Annotated[str, Field(min_length=1)]] = []
    """User names as the cluster's authenticator reports them."""


class Access(Model):
    """Subjects of the three tenant roles."""

    admins: Subjects
    """Tenant administrators: everything developers do, plus Secrets, service accounts and role bindings."""
    developers: Subjects = Subjects()
    """Deploy and debug workloads; no Secrets, no RBAC, no quota or network policy."""
    viewers: Subjects = Subjects()
    """Read workloads, events and logs; no Secrets, no exec or port-forward."""

    @field_validator("admins")
    @classmethod
    def _someone_owns_it(cls, value: Subjects) -> Subjects:
        if not value.groups and not value.users:
            raise ValueError("a tenant needs at least one admin group or user")
        return value


class RequestsAndLimits(Model):
    """A quota on the sum of requests and the sum of limits of one resource."""

    requests: Quantity
    limits: Quantity

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> RequestsAndLimits:
        problems: list[tuple[str, str]] = []
        _at_most(problems, "requests", self.requests, "limits", self.limits)
        if problems:
            raise ConfigProblems(problems)
        return self


def _count_key(key: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", key):
        raise ValueError("must be a resource name such as jobs.batch or secrets")
    return key


CountKey = Annotated[str, AfterValidator(_count_key)]


class Quota(Model):
    """The tenant's ResourceQuota; the Volcano queue's capability equals its cpu, memory and GPU requests."""

    cpu: RequestsAndLimits
    """Sum of CPU requests and limits of all pods."""
    memory: RequestsAndLimits
    """Sum of memory requests and limits of all pods."""
    gpu: NonNegativeInt
    """GPUs the tenant may request as ``nvidia.com/gpu`` (``requests.nvidia.com/gpu``; extended resources have no
    limits key): whole GPUs, or time-slices where a pool shares GPUs under that name."""
    shared_gpu: NonNegativeInt = 0
    """Time-sliced GPUs as ``nvidia.com/gpu.shared`` (only with ``gpu.timeSlicing.renameByDefault``)."""
    mig: dict[str, PositiveInt] = {}
    """MIG instances per profile, e.g. ``{3g.40gb: 2}`` (``requests.nvidia.com/mig-<profile>``)."""
    storage: Quantity
    """Sum of storage requested by PersistentVolumeClaims."""
    persistent_volume_claims: NonNegativeInt = 20
    """Number of PersistentVolumeClaims."""
    pods: NonNegativeInt = 100
    """Number of pods in a non-terminal state."""
    services: NonNegativeInt = 20
    """Number of Services."""
    load_balancers: NonNegativeInt = 0
    """Number of LoadBalancer Services (0: tenants are reached through the ingress gateway)."""
    node_ports: NonNegativeInt = 0
    """Number of NodePort Services."""
    counts: dict[CountKey, NonNegativeInt] = {}
    """Further object counts as ``count/<resource>``, e.g. ``{jobs.batch: 50, secrets: 100}``."""

    def gpu_resources(self) -> dict[str, int]:
        """GPU extended resources of the quota: nvidia.com/gpu always, the others where set."""
        resources = {WHOLE_GPU: self.gpu}
        if self.shared_gpu:
            resources[SHARED_GPU] = self.shared_gpu
        resources.update({mig_resource(profile): count for profile, count in self.mig.items()})
        return resources


class ContainerLimits(Model):
    """LimitRange for containers: defaults for pods that state no resources, and a per-container maximum."""

    default_request: ComputeResources = ComputeResources(cpu="100m", memory="256Mi")
    """Requests given to a container that states none."""
    default: ComputeResources = ComputeResources(cpu="1", memory="1Gi")
    """Limits given to a container that states none."""
    max: ComputeResources | None = None
    """Largest limits one container may have; unset means the quota's cpu and memory limits."""
    max_gpus: NonNegativeInt | None = None
    """Most GPUs (of each GPU resource of the quota) one container may request; unset: only the quota bounds it."""


class PvcLimits(Model):
    """LimitRange for PersistentVolumeClaims."""

    min: Quantity = "1Gi"
    """Smallest claim."""
    max: Quantity | None = None
    """Largest claim; unset means the quota's storage."""


class LimitRange(Model):
    """The tenant's LimitRange."""

    container: ContainerLimits = ContainerLimits()
    pvc: PvcLimits = PvcLimits()


class Queue(Model):
    """The tenant's Volcano queue; its capability is the quota and not set here."""

    weight: Annotated[int, Field(ge=1, le=65535, strict=True)] = 1
    """Share of the cluster when queues compete (Volcano proportion plugin)."""
    reclaimable: bool = True
    """Whether other queues may reclaim resources this queue borrowed beyond its share."""


class TenantObjectStore(Model):
    """The tenant's workflow artifacts in an external object store (the platform cannot mint cloud identities)."""

    bucket: BucketName | None = None
    """The tenant's own bucket; unset: the prefix ``<tenant>/`` of ``objectStore.workflowsBucket``."""
    service_account_annotations: dict[str, str] = {}
    """Workload identity of the tenant's workflow executor (e.g. an IAM role allowed only on its bucket or prefix);
    unset: ``objectStore.serviceAccountAnnotations``, shared by every tenant."""


class Tenant(Model):
    """A team with its own namespace, roles, quota, network isolation and Volcano queue."""

    name: DnsLabel
    """Tenant name; also the name of its namespace and its Volcano queue."""
    pod_security: PodSecurityLevel = "restricted"
    """Pod Security Standard enforced (and audited, warned) in the namespace."""
    access: Access
    """Groups and users bound to the tenant roles admin, developer and viewer."""
    quota: Quota
    """ResourceQuota of the namespace."""
    limit_range: LimitRange = LimitRange()
    """Container defaults and maxima, PVC size bounds."""
    queue: Queue = Queue()
    """Volcano queue settings."""
    gpu_isolation: Literal["shared", "exclusive"] = "shared"
    """``exclusive``: the tenant's GPU workloads only run on whole-GPU or MIG pools, never on time-sliced GPUs."""
    object_store: TenantObjectStore | None = None
    """External object store only: where the tenant's workflow artifacts go and with which identity."""
    alert_receiver: Receiver | None = None
    """Where the tenant's own alerts (its endpoints, its quota, its Volcano queue: label ``tenant``) go besides the
    platform's ``monitoring.routing``; the receiver is named ``tenant-<tenant>``."""

    @model_validator(mode="after")
    def _limits_fit_quota(self) -> Tenant:
        problems: list[tuple[str, str]] = []
        container, quota = self.limit_range.container, self.quota
        largest = self.container_max
        for field in ("cpu", "memory"):
            _at_most(problems, f"limitRange.container.defaultRequest.{field}", getattr(container.default_request, field),
                     f"limitRange.container.default.{field}", getattr(container.default, field))
            _at_most(problems, f"limitRange.container.default.{field}", getattr(container.default, field),
                     f"limitRange.container.max.{field} (default: quota.{field}.limits)", getattr(largest, field))
            _at_most(problems, f"limitRange.container.max.{field}", getattr(largest, field),
                     f"quota.{field}.limits", getattr(quota, field).limits)
        _at_most(problems, "limitRange.pvc.min", self.limit_range.pvc.min,
                 "limitRange.pvc.max (default: quota.storage)", self.pvc_max)
        _at_most(problems, "limitRange.pvc.max", self.pvc_max, "quota.storage", quota.storage)
        if problems:
            raise ConfigProblems(problems)
        return self

    @property
    def container_max(self) -> ComputeResources:
        """Largest container limits: the LimitRange's max, or the quota's limits."""
        return self.limit_range.container.max or ComputeResources(
            cpu=self.quota.cpu.limits, memory=self.quota.memory.limits)

    @property
    def pvc_max(self) -> str:
        """Largest PersistentVolumeClaim: the LimitRange's max, or the quota's storage."""
        return self.limit_range.pvc.max or self.quota.storage


class Training(Model):
    """Kubeflow Trainer v2 (TrainJob on JobSet) with the platform's torch runtime, gang-scheduled by Volcano."""

    enabled: bool = False
    """Install the Trainer (and its JobSet controller), the cluster torch runtime and one runtime per tenant."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Replicas of the Trainer controller manager (leader election picks the active one)."""
    num_nodes: PositiveInt = 1
    """Default training nodes (pods) of the torch runtime; a TrainJob's ``spec.trainer.numNodes`` overrides it."""
    gpu: EndpointGpu = EndpointGpu()
    """GPUs of each training node (pod); they must fit on one node of a GPU pool."""
    resources: ComputeResources = ComputeResources(cpu="4", memory="16Gi")
    """CPU and memory of each training node (requests == limits)."""


class Sso(Model):
    """OIDC single sign-on of the Argo Workflows server."""

    issuer: HttpsUrl
    """OIDC issuer URL."""
    client_secret: DnsSubdomain
    """Existing Secret in the workflows namespace with keys ``client-id`` and ``client-secret``."""
    redirect_url: HttpsUrl
    """Callback URL registered at the issuer, e.g. https://argo.example.com/oauth2/callback."""
    scopes: list[Annotated[str, Field(min_length=1)]] = ["openid", "profile", "email", "groups"]
    """Scopes requested from the issuer (``groups`` maps users to tenant service accounts)."""


class Pipeline(Model):
    """The seeds' pipeline for one tenant, shipped as a WorkflowTemplate: preprocess -> train (GPU, Volcano) ->
    evaluate -> register in MLflow -> deploy only if the metric passes the threshold."""

    tenant: DnsLabel
    """Tenant whose namespace gets the WorkflowTemplate; its steps run there, in its Volcano queue."""
    name: DnsLabel = "train-evaluate-deploy"
    """WorkflowTemplate name."""
    metric: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")] = "accuracy"
    """Evaluation metric (as logged to MLflow) that gates the deployment."""
    threshold: Annotated[float, Field(ge=0)] = 0.9
    """Deploy only if the metric is >= this value."""
    gpu: EndpointGpu = EndpointGpu()
    """GPUs of the train step."""
    resources: ComputeResources = ComputeResources(cpu="4", memory="16Gi")
    """CPU and memory of the train step (requests == limits)."""


class Workflows(Model):
    """Argo Workflows: controller and server; workflows run only in tenant namespaces."""

    enabled: bool = False
    """Install Argo Workflows, a per-tenant executor service account and the tenants' pipelines."""
    auth_mode: Literal["client", "sso"] = "client"
    """How the Argo server authenticates: ``client`` (the caller's Kubernetes token) or ``sso`` (OIDC).
    ``server`` mode (the server's own identity for every caller) is not offered."""
    sso: Sso | None = None
    """OIDC settings; required with ``authMode: sso``."""
    controller_replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Workflow controller replicas (leader election picks the active one)."""
    server_replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Argo server replicas."""
    pipelines: list[Pipeline] = []
    """One WorkflowTemplate of the seeds' pipeline per entry."""

    @model_validator(mode="after")
    def _sso_for_sso_mode(self) -> Workflows:
        if self.auth_mode == "sso" and self.sso is None:
            raise ConfigProblems([("sso", "authMode sso needs the sso settings (issuer, clientSecret, redirectUrl)")])
        if self.auth_mode != "sso" and self.sso is not None:
            raise ConfigProblems([("sso", f"only for authMode sso (authMode is {self.auth_mode})")])
        return self


class Ray(Model):
    """KubeRay operator: tenants run RayCluster, RayJob and RayService, gang-scheduled by Volcano."""

    enabled: bool = False
    """Install the KubeRay operator and give tenant developers rights on Ray resources."""
    batch_scheduler: Literal["volcano"] = "volcano"
    """Batch scheduler of Ray pods: the platform's Volcano (the only scheduler it installs)."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Operator replicas (leader election picks the active one)."""


class VaultKubernetesAuth(Model):
    """Vault's Kubernetes auth method, logging in with the secret store's service account token."""

    role: Annotated[str, Field(min_length=1)]
    """Vault role bound to the service account ``external-secrets-store`` in the external-secrets namespace."""
    mount_path: Annotated[str, Field(min_length=1)] = "kubernetes"
    """Mount path of the auth method."""


class VaultAuth(Model):
    kubernetes: VaultKubernetesAuth
    """Kubernetes service account auth."""


class VaultStore(Model):
    """HashiCorp Vault KV store."""

    server: HttpsUrl
    """Vault address, e.g. https://vault.example.com:8200."""
    path: Annotated[str, Field(min_length=1)] = "secret"
    """Mount path of the KV engine."""
    version: Literal["v1", "v2"] = "v2"
    """KV engine version."""
    namespace: str | None = None
    """Vault Enterprise namespace."""
    auth: VaultAuth
    """How the store authenticates (by service account)."""


class AwsAuth(Model):
    role_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")]
    """IAM role the store's service account assumes (IRSA annotation ``eks.amazonaws.com/role-arn``)."""


class AwsStore(Model):
    """AWS Secrets Manager."""

    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    auth: AwsAuth
    """How the store authenticates (by service account)."""


class GcpAuth(Model):
    service_account: Annotated[str, Field(pattern=r"^[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com$")]
    """Google service account the store's Kubernetes service account impersonates (workload identity)."""
    cluster_location: Annotated[str, Field(min_length=1)]
    cluster_name: Annotated[str, Field(min_length=1)]


class GcpStore(Model):
    """Google Secret Manager."""

    project_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    auth: GcpAuth
    """How the store authenticates (by service account, workload identity)."""


class SecretStore(Model):
    """The ClusterSecretStore the platform's ExternalSecrets read from."""

    provider: Literal["vault", "aws", "gcp"]
    vault: VaultStore | None = None
    aws: AwsStore | None = None
    gcp: GcpStore | None = None

    @model_validator(mode="after")
    def _one_provider(self) -> SecretStore:
        problems = []
        if getattr(self, self.provider) is None:
            problems.append((self.provider, f"provider {self.provider} needs its settings block"))
        for other in ("vault", "aws", "gcp"):
            if other != self.provider and getattr(self, other) is not None:
                problems.append((other, f"only for provider {other} (provider is {self.provider})"))
        if problems:
            raise ConfigProblems(problems)
        return self


class Secrets(Model):
    """Where the platform's secrets come from: Pulumi (generated or ``pulumi config set --secret``) or an external
    store through the External Secrets Operator; either way workloads read the same Secret names."""

    source: Literal["pulumi", "external-secrets"] = "pulumi"
    """``pulumi``: generated passwords and Pulumi config secrets become Kubernetes Secrets; ``external-secrets``:
    each Secret is an ExternalSecret reading ``<keyPrefix>/<secret>`` from the store."""
    store: SecretStore | None = None
    """The external store (required for external-secrets)."""
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")] = "ai-platform"
    """Prefix of the remote keys, e.g. ``ai-platform/prod``."""
    refresh_interval: Annotated[str, Field(pattern=r"^\d+(s|m|h)$")] = "1h"
    """How often the operator re-reads the store."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """External Secrets Operator replicas (and of its webhook)."""
    hugging_face_token: bool = False
    """external-secrets: the store holds a Hugging Face token (``<keyPrefix>/huggingface-token``, property
    ``token``) that ``hf://`` downloads use. With source pulumi, set ``ai-platform:huggingFaceToken`` instead."""

    @model_validator(mode="after")
    def _store_for_external(self) -> Secrets:
        problems = []
        if self.source == "external-secrets" and self.store is None:
            problems.append(("store", "source external-secrets needs the store (provider vault, aws or gcp)"))
        if self.source == "pulumi":
            if self.store is not None:
                problems.append(("store", "only for source external-secrets (source is pulumi)"))
            if self.hugging_face_token:
                problems.append(("huggingFaceToken", "only for source external-secrets; with source pulumi set "
                                                     "the secret ai-platform:huggingFaceToken"))
        if problems:
            raise ConfigProblems(problems)
        return self


# A tenant as an owner of data (``dataProtection.decommission``, ``protects``).
TENANT_OWNER = re.compile(r"tenant:[a-z0-9-]+")


class DataProtection(Model):
    """Protection of what holds data (tenant namespaces, the object store, Postgres, Milvus, Prometheus,
    Alertmanager, Grafana) and of the releases that installed CRDs, against a rename, an upgrade or a removal."""

    mode: Literal["strict", "relaxed"] = "strict"
    """``strict``: those resources are ``protect``ed (Pulumi refuses to delete or replace them) and retained in the
    cluster if ever deleted, and a stack that drops a service or tenant it had (per the stack's snapshot in
    ``state/``) is refused; ``relaxed`` (not for production): none of that."""
    decommission: list[str] = []
    """Services (``config.services.SERVICES``: ``mlflow``, ``milvus``, ``objectStore``, ``monitoring``, ``gpu``,
    ``volcano``, ``serving``, ``mesh``, ``training``, ``workflows``, ``ray``, ``secrets``) or tenants
    (``tenant:<name>``) you accept to lose: their resources lose protection, and the strict removal check lets them
    leave the stack."""

    @model_validator(mode="after")
    def _known_owners(self) -> DataProtection:
        allowed = ", ".join(f"{name!r}" for name in protected_services()) + " or 'tenant:<name>'"
        problems = [(f"decommission[{index}]", f"not an allowed value (allowed: {allowed}, got: {owner!r})")
                    for index, owner in enumerate(self.decommission)
                    if owner not in protected_services() and not TENANT_OWNER.fullmatch(owner)]
        if problems:
            raise ConfigProblems(problems)
        return self


class PlatformConfig(Model):
    """The whole stack config: one attribute per ``ai-platform:<key>`` of the stack file."""

    cluster: Cluster
    """``ai-platform:cluster``: the target cluster."""
    namespaces: Namespaces = Namespaces()
    """``ai-platform:namespaces``: the platform's own namespace names."""
    volcano: Volcano = Volcano()
    """``ai-platform:volcano``: batch scheduler."""
    gpu: Gpu = Gpu()
    """``ai-platform:gpu``: GPU Operator, sharing and GPU node inventory."""
    tenants: list[Tenant] = []
    """``ai-platform:tenants``: one entry per tenant."""
    serving: Serving = Serving()
    """``ai-platform:serving``: cert-manager, KServe, KEDA."""
    models: list[Endpoint] = []
    """``ai-platform:models``: one model endpoint per entry."""
    mesh: Mesh = Mesh()
    """``ai-platform:mesh``: Istio, ingress gateway, mTLS, authorization."""
    monitoring: Monitoring = Monitoring()
    """``ai-platform:monitoring``: Prometheus, Alertmanager, Grafana, alerts, dashboards."""
    object_store: ObjectStore = ObjectStore()
    """``ai-platform:objectStore``: S3-compatible storage of MLflow and Milvus."""
    mlflow: Mlflow = Mlflow()
    """``ai-platform:mlflow``: tracking server and its Postgres."""
    milvus: Milvus = Milvus()
    """``ai-platform:milvus``: vector database."""
    training: Training = Training()
    """``ai-platform:training``: Kubeflow Trainer and the torch runtime."""
    workflows: Workflows = Workflows()
    """``ai-platform:workflows``: Argo Workflows and the tenants' pipelines."""
    ray: Ray = Ray()
    """``ai-platform:ray``: KubeRay operator."""
    secrets: Secrets = Secrets()
    """``ai-platform:secrets``: Pulumi secrets or the External Secrets Operator."""
    data_protection: DataProtection = DataProtection()
    """``ai-platform:dataProtection``: protection of stateful resources."""

    def protects(self, owner: str) -> bool:
        """Whether the data or CRDs of ``owner`` (a service of ``config.services`` or ``tenant:<name>``) are
        protected; an owner that is neither is an error."""
        if not TENANT_OWNER.fullmatch(owner):
            service(owner)
        return self.data_protection.mode == "strict" and owner not in self.data_protection.decommission

    @property
    def data_owners(self) -> list[str]:
        """The services and tenants of this stack whose removal loses data or CRDs (what the strict check keeps)."""
        return [s.key for s in SERVICES.values() if s.on(self)] + [f"tenant:{t.name}" for t in self.tenants]

    def endpoint_host(self, endpoint: Endpoint) -> str:
        """The external host name of an endpoint: ``<endpoint>.<tenant>.<domain>``."""
        return f"{endpoint.name}.{endpoint.tenant}.{self.cluster.domain}"

    def tenant(self, name: str) -> Tenant:
        return self.tenants_by_name[name]

    @cached_property
    def tenants_by_name(self) -> dict[str, Tenant]:
        """Tenant name -> tenant (one lookup per endpoint or pipeline, not a scan of the tenants)."""
        return {t.name: t for t in self.tenants}

    @property
    def alert_receivers(self) -> dict[str, Receiver]:
        """Every Alertmanager receiver of the stack by name: the platform's (``monitoring.receivers``) and one per
        tenant with an ``alertReceiver`` (``tenant-<tenant>``)."""
        return {**{r.name: r for r in self.monitoring.receivers},
                **{f"{TENANT_RECEIVER_PREFIX}{t.name}": t.alert_receiver for t in self.tenants if t.alert_receiver}}

    @property
    def prometheus_url(self) -> str:
        """Prometheus that endpoint autoscalers query."""
        return (self.serving.prometheus_url
                or f"http://kube-prometheus-stack-prometheus.{self.namespaces.monitoring}.svc:9090")

    @model_validator(mode="after")
    def _cross_checks(self) -> PlatformConfig:
        """Rules that span sections; every problem is reported, not just the first."""
        problems = (self._tenant_names() + self._gpu_quotas_fit_capacity() + self._endpoints_fit_their_tenants()
                    + self._batch_services() + self._milvus_store_endpoint())
        if problems:
            raise ConfigProblems(problems)
        return self

    def _milvus_store_endpoint(self) -> list[tuple[str, str]]:
        """Milvus's S3 client takes host, port and TLS only: an external store's endpoint with a path, query or
        fragment (or a bad port) is refused here, not by the component."""
        endpoint = self.object_store.endpoint
        if not (self.milvus.enabled and self.object_store.mode == "external" and endpoint):
            return []
        parts = urlsplit(endpoint)
        try:
            parts.port
        except ValueError:
            return [("objectStore.endpoint", f"not a valid port (allowed: http(s)://host[:port], got: {endpoint!r})")]
        if parts.path not in ("", "/") or parts.query or parts.fragment or not parts.hostname:
            return [("objectStore.endpoint", "Milvus (milvus.enabled) reaches the object store by host and port "
                                             f"only (allowed: http(s)://host[:port], got: {endpoint!r})")]
        return []

    def _endpoints_fit_their_tenants(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        tenants = {t.name: (i, t) for i, t in enumerate(self.tenants)}
        if self.models and not self.serving.enabled:
            problems.append(("models", "model endpoints need serving.enabled"))
        if self.mesh.enabled and not self.serving.enabled:
            problems.append(("mesh.enabled", "the mesh's ingress certificate comes from cert-manager, which "
                                             "serving.enabled installs"))
        for index, endpoint in enumerate(self.models):
            if endpoint.canary and not self.mesh.enabled:  # the Service would select both versions
                problems.append((f"models[{index}].canary", "splitting traffic to a canary (traffic.weights, header "
                                 "routes) needs the mesh: without it the endpoint's Service selects both versions "
                                 "and traffic splits by replica count; set mesh.enabled, or drop the canary and "
                                 "roll out by changing source"))
        used: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for index, endpoint in self._of_existing_tenants("models", "endpoint", self.models, problems):
            at = f"models[{index}]"
            tenant_index, tenant = tenants[endpoint.tenant]
            largest = tenant.container_max
            for field in ("cpu", "memory"):
                _at_most(problems, f"{at}.resources.{field}", getattr(endpoint.resources, field),
                         f"tenants[{tenant_index}] container maximum", getattr(largest, field))
            max_gpus = tenant.limit_range.container.max_gpus
            if endpoint.gpu and max_gpus is not None and endpoint.gpu.count > max_gpus:
                problems.append((f"{at}.gpu.count", f"must be <= tenants[{tenant_index}].limitRange.container."
                                                    f"maxGpus (got {endpoint.gpu.count} > {max_gpus})"))
            if engines.get(endpoint.engine).needs_cache(endpoint):
                _at_most(problems, f"{at}.cache.size", endpoint.cache.size,
                         f"tenants[{tenant_index}] largest PVC", tenant.pvc_max)
                _at_most(problems, f"tenants[{tenant_index}].limitRange.pvc.min", tenant.limit_range.pvc.min,
                         f"{at}.cache.size", endpoint.cache.size)
            if endpoint.gpu:
                try:
                    gpu_placement(self.gpu, endpoint.gpu, tenant.gpu_isolation == "exclusive")
                except ValueError as error:
                    problems.append((f"{at}.gpu", str(error)))
                    continue
                resource = self.gpu.resource_for(endpoint.gpu.mig_profile)
                used.setdefault((endpoint.tenant, resource), []).append(
                    (index, endpoint.gpu.count * endpoint.max_replicas))
        for (tenant_name, resource), uses in used.items():
            tenant_index, tenant = tenants[tenant_name]
            quota = tenant.quota.gpu_resources().get(resource, 0)
            if sum(n for _, n in uses) > quota:
                paths = ", ".join(f"models[{i}] {n}" for i, n in uses)
                problems.append((f"models[{uses[-1][0]}].gpu", f"endpoints of tenant {tenant_name!r} need up to "
                                 f"{sum(n for _, n in uses)} {resource} at max replicas ({paths}) but "
                                 f"tenants[{tenant_index}].quota allows {quota}"))
        return problems

    def _of_existing_tenants(self, path: str, what: str, entries: list, problems: list[tuple[str, str]]) -> list:
        """``(index, entry)`` of the entries (endpoints, pipelines) whose tenant exists; records entries of unknown
        tenants and names used twice in one tenant."""
        tenants = [t.name for t in self.tenants]
        known = set(tenants)
        seen: dict[tuple[str, str], int] = {}
        valid = []
        for index, entry in enumerate(entries):
            at = f"{path}[{index}]"
            if entry.tenant not in known:
                problems.append((f"{at}.tenant", f"no tenant {entry.tenant!r} (tenants: {', '.join(tenants) or 'none'})"))
                continue
            key = (entry.tenant, entry.name)
            if key in seen:
                problems.append((f"{at}.name", f"duplicate {what} {entry.name!r} in tenant {entry.tenant!r} "
                                               f"(also {path}[{seen[key]}])"))
            seen.setdefault(key, index)
            valid.append((index, entry))
        return valid

    def _fits_tenant(self, at: str, tenant_index: int, gpu: EndpointGpu, resources: ComputeResources
                     ) -> list[tuple[str, str]]:
        """Problems of a batch pod (training node, pipeline step) that a tenant's limits or the GPU pools refuse."""
        problems: list[tuple[str, str]] = []
        tenant = self.tenants[tenant_index]
        for field in ("cpu", "memory"):
            _at_most(problems, f"{at}.resources.{field}", getattr(resources, field),
                     f"tenants[{tenant_index}] container maximum", getattr(tenant.container_max, field))
        max_gpus = tenant.limit_range.container.max_gpus
        if max_gpus is not None and gpu.count > max_gpus:
            problems.append((f"{at}.gpu.count", f"must be <= tenants[{tenant_index}].limitRange.container.maxGpus "
                                                f"(got {gpu.count} > {max_gpus})"))
        try:
            gpu_placement(self.gpu, gpu, tenant.gpu_isolation == "exclusive")
        except ValueError as error:
            problems.append((f"{at}.gpu", f"{error} (tenant {tenant.name!r})"))
        return problems

    def _batch_services(self) -> list[tuple[str, str]]:
        """Training, workflows and Ray: what they need of Volcano, the tenants, MLflow, serving and the store."""
        problems: list[tuple[str, str]] = []
        if self.data_protection.mode == "relaxed" and self.cluster.environment == "production":
            problems.append(("dataProtection.mode", "relaxed protection is not allowed for a production stack "
                                                    "(cluster.environment production)"))
        if self.volcano.enabled and self.cluster.kubernetes_version in SUPPORTED_KUBERNETES[:5]:
            problems.append(("cluster.kubernetesVersion", "Volcano's tenant queue fence is a ValidatingAdmissionPolicy "
                             "(admissionregistration.k8s.io/v1): needs Kubernetes >= 1.30, or volcano.enabled false"))
        for section, enabled in (("training", self.training.enabled), ("workflows", self.workflows.enabled),
                                 ("ray", self.ray.enabled)):
            if enabled and not self.volcano.enabled:
                problems.append((f"{section}.enabled", "gang scheduling needs volcano.enabled"))
        if self.training.enabled:
            try:  # the cluster runtime, whatever the tenants
                gpu_placement(self.gpu, self.training.gpu, exclusive=False)
            except ValueError as error:
                problems.append(("training.gpu", str(error)))
            for index in range(len(self.tenants)):
                problems += [(path, message) for path, message in
                             self._fits_tenant("training", index, self.training.gpu, self.training.resources)
                             if (path, message) not in problems]
        workflows = self.workflows
        if workflows.enabled and not self.cluster.api_server_cidrs:
            problems.append(("cluster.apiServerCidrs", "workflow pods report their results to the Kubernetes API: "
                                                       "give the API server's endpoint addresses"))
        if workflows.pipelines and not workflows.enabled:
            problems.append(("workflows.pipelines", "pipelines need workflows.enabled"))
        if workflows.enabled and self.object_store.mode == "external" and not self.object_store.workflows_bucket:
            problems.append(("objectStore.workflowsBucket", "an external object store needs the bucket of the "
                                                             "workflows' artifacts"))
        for index, tenant in enumerate(self.tenants):
            if tenant.object_store is not None and self.object_store.mode == "in-cluster":
                problems.append((f"tenants[{index}].objectStore", "only for an external object store (the in-cluster "
                                                                  "store gives each tenant its bucket and keys)"))
            bucket = self.object_store.tenant_bucket(tenant.name)
            if workflows.enabled and self.object_store.mode == "in-cluster" and len(bucket) > 63:
                problems.append((f"tenants[{index}].name", f"the tenant's artifact bucket {bucket!r} exceeds 63 "
                                 "characters: shorten the name or objectStore.workflowsBucket"))
        if workflows.pipelines and not self.mlflow.enabled:
            problems.append(("workflows.pipelines", "the pipeline registers models in MLflow: needs mlflow.enabled"))
        if workflows.pipelines and not self.serving.enabled:
            problems.append(("workflows.pipelines", "the pipeline deploys an InferenceService: needs serving.enabled"))
        tenants = {t.name: i for i, t in enumerate(self.tenants)}
        for index, pipeline in self._of_existing_tenants("workflows.pipelines", "pipeline", workflows.pipelines,
                                                         problems):
            problems += self._fits_tenant(f"workflows.pipelines[{index}]", tenants[pipeline.tenant], pipeline.gpu,
                                          pipeline.resources)
        return problems

    def _gpu_quotas_fit_capacity(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        capacity, factor = self.gpu.capacity(), self.gpu.oversubscription
        asked: dict[str, dict[str, int]] = {}
        for tenant in self.tenants:
            for resource, count in tenant.quota.gpu_resources().items():
                if count:
                    asked.setdefault(resource, {})[tenant.name] = count
        for resource, by_tenant in sorted(asked.items()):
            total, schedulable = sum(by_tenant.values()), capacity.get(resource, 0)
            if total > schedulable * factor:
                shares = ", ".join(f"{name} {count}" for name, count in by_tenant.items())
                problems.append(("tenants", f"quotas ask for {total} {resource} ({shares}) but gpu.nodePools "
                                 f"schedule {schedulable} (oversubscription {factor:g}); add GPUs to the inventory "
                                 "or set gpu.oversubscription"))
        exclusive = {t.name: t.quota.gpu for t in self.tenants if t.gpu_isolation == "exclusive" and t.quota.gpu}
        whole = self.gpu.exclusive_capacity()
        if sum(exclusive.values()) > whole * factor:
            problems.append(("tenants", f"exclusive tenants ({', '.join(f'{n} {c}' for n, c in exclusive.items())}) "
                             f"ask for {sum(exclusive.values())} unshared nvidia.com/gpu but pools with sharing none "
                             f"have {whole}"))
        return problems

    def _tenant_names(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        reserved = RESERVED_NAMESPACES | {value for _, value in self.namespaces}
        first_index: dict[str, int] = {}
        for index, tenant in enumerate(self.tenants):
            if tenant.name in reserved:
                problems.append((f"tenants[{index}].name", f"{tenant.name!r} is reserved for the platform or Kubernetes "
                                 f"(reserved: {', '.join(sorted(reserved))})"))
            if tenant.name in first_index:
                problems.append((f"tenants[{index}].name",
                                 f"duplicate tenant {tenant.name!r} (also tenants[{first_index[tenant.name]}])"))
            first_index.setdefault(tenant.name, index)
        return problems

