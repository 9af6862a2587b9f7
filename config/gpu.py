"""The GPU layer (``ai-platform:gpu``): GPU Operator components, GPU sharing, the GPU node inventory; a workload's
GPU request (``EndpointGpu``) and where it fits (``gpu_placement``); tenant GPU quotas against the inventory.

Facts about GPU models (their MIG profiles) are NVIDIA's, kept in ``config.gpus``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from . import versions
from .base import DnsLabel, DnsSubdomain, Model, PositiveInt, Problems, valid
from .gpus import GPU_MODELS, mig_layout_problems

if TYPE_CHECKING:
    from .model import PlatformConfig

WHOLE_GPU = "nvidia.com/gpu"
SHARED_GPU = "nvidia.com/gpu.shared"
SharingMode = Literal["none", "time-slicing", "mig"]
if TYPE_CHECKING:
    GpuModelName = str  # statically a str: the allowed names are GPU_MODELS' keys, known only at run time
else:
    GpuModelName = Literal[tuple(GPU_MODELS)]


def mig_resource(profile: str) -> str:
    """The extended resource a MIG profile is advertised as under the ``mixed`` strategy."""
    return f"nvidia.com/mig-{profile}"


class EndpointGpu(Model):
    """GPUs of one replica of an endpoint."""

    count: PositiveInt = 1
    """GPUs (or MIG instances of ``migProfile``) per replica."""
    mig_profile: str | None = None
    """MIG profile, e.g. 3g.40gb; unset: whole (or time-sliced) GPUs."""
    model: GpuModelName | None = None
    """Only run on this GPU model."""


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
        return valid(self, problems)

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
                    problems.append(
                        (
                            f"{at}.migProfiles",
                            "the single MIG strategy allows one profile per pool "
                            f"(got {', '.join(pool.mig_profiles)}); use mig.strategy mixed",
                        )
                    )
            elif pool.mig_profiles:
                problems.append((f"{at}.migProfiles", f"only for MIG pools (this pool's sharing is {sharing})"))
            if pool.time_slicing_replicas is not None and sharing != "time-slicing":
                problems.append((f"{at}.timeSlicingReplicas", f"only for time-slicing pools (sharing is {sharing})"))
            if pool.node_selector and sharing == "mig":
                problems.append(
                    (
                        f"{at}.nodeSelector",
                        "MIG pools must name their nodes: the platform labels each node with its nvidia.com/mig.config",
                    )
                )
            elif pool.node_selector and (sharing != self.sharing or pool.time_slicing_replicas is not None):
                problems.append(
                    (
                        f"{at}.sharing",
                        "a nodeSelector pool gets the default device-plugin config, so "
                        "its sharing must be gpu.sharing; name its nodes to give it its own",
                    )
                )
        return valid(self, problems)


def gpu_placement(gpu: Gpu, request: EndpointGpu, exclusive: bool) -> list[NodePool]:
    """The pools that can serve a GPU request; raises ``ValueError`` naming the request if none can."""
    if request.mig_profile:
        pools = [p for p in gpu.node_pools if gpu.pool_sharing(p) == "mig" and request.mig_profile in p.mig_profiles]
    else:
        time_sliced_ok = not (
            exclusive
            or gpu.time_slicing.rename_by_default
            or (request.count > 1 and gpu.time_slicing.fail_requests_greater_than_one)
        )
        pools = [
            p
            for p in gpu.node_pools
            if gpu.pool_sharing(p) == "none" or (gpu.pool_sharing(p) == "time-slicing" and time_sliced_ok)
        ]
    pools = [p for p in pools if request.model is None or p.gpu_model == request.model]
    wanted = f"{request.count} x {request.mig_profile or 'GPU'}" + (f" on {request.model}" if request.model else "")
    if not pools:
        raise ValueError(f"no GPU node pool can serve {wanted}" + (" for an exclusive tenant" if exclusive else ""))
    resource = gpu.resource_for(request.mig_profile)
    fitting = [p for p in pools if gpu.pool_units(p, per_node=True).get(resource, 0) >= request.count]
    if not fitting:
        largest = max(gpu.pool_units(p, per_node=True).get(resource, 0) for p in pools)
        raise ValueError(
            f"{wanted} must fit on one node, but the pools that could serve it have at most "
            f"{largest} {resource} per node"
        )
    return fitting


def cross_checks(cfg: PlatformConfig) -> Problems:
    """Tenant GPU quotas (per extended resource, and the exclusive tenants' whole GPUs) fit what the inventory
    schedules, times ``gpu.oversubscription``."""
    problems: Problems = []
    capacity, factor = cfg.gpu.capacity(), cfg.gpu.oversubscription
    asked: dict[str, dict[str, int]] = {}
    for tenant in cfg.tenants:
        for resource, count in tenant.quota.gpu_resources().items():
            if count:
                asked.setdefault(resource, {})[tenant.name] = count
    for resource, by_tenant in sorted(asked.items()):
        total, schedulable = sum(by_tenant.values()), capacity.get(resource, 0)
        if total > schedulable * factor:
            shares = ", ".join(f"{name} {count}" for name, count in by_tenant.items())
            problems.append(
                (
                    "tenants",
                    f"quotas ask for {total} {resource} ({shares}) but gpu.nodePools "
                    f"schedule {schedulable} (oversubscription {factor:g}); add GPUs to the inventory "
                    "or set gpu.oversubscription",
                )
            )
    exclusive = {t.name: t.quota.gpu for t in cfg.tenants if t.gpu_isolation == "exclusive" and t.quota.gpu}
    whole = cfg.gpu.exclusive_capacity()
    if sum(exclusive.values()) > whole * factor:
        problems.append(
            (
                "tenants",
                f"exclusive tenants ({', '.join(f'{n} {c}' for n, c in exclusive.items())}) "
                f"ask for {sum(exclusive.values())} unshared nvidia.com/gpu but pools with sharing none "
                f"have {whole}",
            )
        )
    return problems
