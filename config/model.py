"""The typed stack config: one frozen pydantic model per ``ai-platform:*`` section of a stack file.

Stack files spell keys in camelCase (``kubernetesVersion``); Python code uses the snake_case attributes.
Field docstrings are the config reference. Cross-field rules live in ``model_validator``s and raise
``ConfigProblems`` so that each problem keeps the config path it belongs to.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .quantity import normalize_quantity, parse_quantity


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
    ingress: DnsLabel = "istio-ingress"
    """Ingress gateway: tenants accept traffic from it."""
    monitoring: DnsLabel = "monitoring"
    """Prometheus and Grafana: tenants accept metrics scraping from it."""
    mesh: DnsLabel = "istio-system"
    """Service mesh control plane."""
    mlflow: DnsLabel = "mlflow"
    """MLflow tracking server: a shared service tenants may reach."""
    milvus: DnsLabel = "milvus"
    """Milvus vector database: a shared service tenants may reach."""

    @property
    def shared_services(self) -> list[str]:
        """Namespaces of shared services that tenant workloads may call."""
        return [self.mlflow, self.milvus]

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
    """Whole GPUs the tenant may request (``requests.nvidia.com/gpu``; extended resources have no limits key)."""
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


class ContainerLimits(Model):
    """LimitRange for containers: defaults for pods that state no resources, and a per-container maximum."""

    default_request: ComputeResources = ComputeResources(cpu="100m", memory="256Mi")
    """Requests given to a container that states none."""
    default: ComputeResources = ComputeResources(cpu="1", memory="1Gi")
    """Limits given to a container that states none."""
    max: ComputeResources | None = None
    """Largest limits one container may have; unset means the quota's cpu and memory limits."""


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


class PlatformConfig(Model):
    """The whole stack config: one attribute per ``ai-platform:<key>`` of the stack file."""

    cluster: Cluster
    """``ai-platform:cluster``: the target cluster."""
    namespaces: Namespaces = Namespaces()
    """``ai-platform:namespaces``: the platform's own namespace names."""
    volcano: Volcano = Volcano()
    """``ai-platform:volcano``: batch scheduler."""
    tenants: list[Tenant] = []
    """``ai-platform:tenants``: one entry per tenant."""

    @model_validator(mode="after")
    def _tenant_names(self) -> PlatformConfig:
        problems = []
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
        if problems:
            raise ConfigProblems(problems)
        return self

