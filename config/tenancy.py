"""Tenants (``ai-platform:tenants``): namespace, roles, quota, LimitRange, Volcano queue; the rules every workload
of a tenant (endpoint replica, batch pod) must follow, and the tenant names the stack may use."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from .base import (
    ComputeResources,
    DnsLabel,
    Model,
    NonNegativeInt,
    PositiveInt,
    Problems,
    Quantity,
    RequestsWithinLimits,
    at_most,
    valid,
)
from .data import TenantObjectStore
from .gpu import SHARED_GPU, WHOLE_GPU, mig_resource
from .monitoring import Receiver
from .ratelimits import Consumer

if TYPE_CHECKING:
    from .model import PlatformConfig

PodSecurityLevel = Literal["baseline", "restricted"]


# Namespaces no tenant may take, besides the platform's own (``Namespaces``).
RESERVED_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease", "root"}


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


class RequestsAndLimits(RequestsWithinLimits):
    """A quota on the sum of requests and the sum of limits of one resource."""

    requests: Quantity
    limits: Quantity


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
    consumers: list[Consumer] = []
    """Callers of the tenant's endpoints, each with its request rate (``rateLimits``; needs ``mesh.jwt``)."""

    @model_validator(mode="after")
    def _limits_fit_quota(self) -> Tenant:
        problems: Problems = []
        container, quota = self.limit_range.container, self.quota
        largest = self.container_max
        for field in ("cpu", "memory"):
            at_most(
                problems,
                f"limitRange.container.defaultRequest.{field}",
                getattr(container.default_request, field),
                f"limitRange.container.default.{field}",
                getattr(container.default, field),
            )
            at_most(
                problems,
                f"limitRange.container.default.{field}",
                getattr(container.default, field),
                f"limitRange.container.max.{field} (default: quota.{field}.limits)",
                getattr(largest, field),
            )
            at_most(
                problems,
                f"limitRange.container.max.{field}",
                getattr(largest, field),
                f"quota.{field}.limits",
                getattr(quota, field).limits,
            )
        at_most(
            problems,
            "limitRange.pvc.min",
            self.limit_range.pvc.min,
            "limitRange.pvc.max (default: quota.storage)",
            self.pvc_max,
        )
        at_most(problems, "limitRange.pvc.max", self.pvc_max, "quota.storage", quota.storage)
        return valid(self, problems)

    @property
    def container_max(self) -> ComputeResources:
        """Largest container limits: the LimitRange's max, or the quota's limits."""
        return self.limit_range.container.max or ComputeResources(
            cpu=self.quota.cpu.limits, memory=self.quota.memory.limits
        )

    @property
    def pvc_max(self) -> str:
        """Largest PersistentVolumeClaim: the LimitRange's max, or the quota's storage."""
        return self.limit_range.pvc.max or self.quota.storage

    def container_problems(self, at: str, tenant_at: str, resources: ComputeResources, gpus: int) -> Problems:
        """What the tenant's LimitRange refuses of one of its containers at ``at`` (an endpoint replica, a batch pod)
        asking ``resources`` and ``gpus``; ``tenant_at`` is the tenant's path (``tenants[<index>]``)."""
        problems: Problems = []
        for field in ("cpu", "memory"):
            at_most(
                problems,
                f"{at}.resources.{field}",
                getattr(resources, field),
                f"{tenant_at} container maximum",
                getattr(self.container_max, field),
            )
        max_gpus = self.limit_range.container.max_gpus
        if max_gpus is not None and gpus > max_gpus:
            problems.append(
                (f"{at}.gpu.count", f"must be <= {tenant_at}.limitRange.container.maxGpus (got {gpus} > {max_gpus})")
            )
        return problems


def of_existing_tenants(
    cfg: PlatformConfig, path: str, what: str, entries: list, problems: Problems
) -> list[tuple[int, Any, int]]:
    """``(index, entry, tenant index)`` of the entries (endpoints, pipelines) whose tenant exists; records entries of
    unknown tenants and names used twice in one tenant."""
    tenants = [t.name for t in cfg.tenants]
    indexes = {name: index for index, name in enumerate(tenants)}
    seen: dict[tuple[str, str], int] = {}
    valid_entries = []
    for index, entry in enumerate(entries):
        at = f"{path}[{index}]"
        if entry.tenant not in indexes:
            problems.append((f"{at}.tenant", f"no tenant {entry.tenant!r} (tenants: {', '.join(tenants) or 'none'})"))
            continue
        key = (entry.tenant, entry.name)
        if key in seen:
            problems.append(
                (f"{at}.name", f"duplicate {what} {entry.name!r} in tenant {entry.tenant!r} (also {path}[{seen[key]}])")
            )
        seen.setdefault(key, index)
        valid_entries.append((index, entry, indexes[entry.tenant]))
    return valid_entries


def cross_checks(cfg: PlatformConfig) -> Problems:
    """Tenant names: none of the platform's namespaces (``namespaces``) or Kubernetes', each once."""
    problems: Problems = []
    reserved = RESERVED_NAMESPACES | {value for _, value in cfg.namespaces}
    first_index: dict[str, int] = {}
    for index, tenant in enumerate(cfg.tenants):
        if tenant.name in reserved:
            problems.append(
                (
                    f"tenants[{index}].name",
                    f"{tenant.name!r} is reserved for the platform or Kubernetes "
                    f"(reserved: {', '.join(sorted(reserved))})",
                )
            )
        if tenant.name in first_index:
            problems.append(
                (
                    f"tenants[{index}].name",
                    f"duplicate tenant {tenant.name!r} (also tenants[{first_index[tenant.name]}])",
                )
            )
        first_index.setdefault(tenant.name, index)
    return problems
