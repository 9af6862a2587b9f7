"""``GpuOperator``: the GPU layer, and ``gpu_scheduling``, the one helper every GPU workload uses.

Owns the ``gpu-operator`` namespace (Pod Security ``privileged``: the driver, toolkit and device plugin
daemonsets need host access), the Helm release of the pinned NVIDIA GPU Operator (driver, container toolkit,
device plugin, GPU Feature Discovery, node status exporter, DCGM exporter, MIG manager), the device plugin
config ConfigMap (time-slicing; one entry per named pool plus the default for selector pools), the
mig-parted ConfigMap the MIG manager reads, and a ``NodePatch`` per named GPU node.

Node patches. Each named node gets the pool labels (``ai-platform/gpu-pool``, ``ai-platform/gpu-model``,
``ai-platform/gpu-sharing``), the config selectors ``nvidia.com/device-plugin.config`` and
``nvidia.com/mig.config``, and the taint ``nvidia.com/gpu=present:NoSchedule``. ``spec.taints`` is an
atomic list under server-side apply: whoever applies it owns all of it, so the patch carries the whole
intended list (the GPU taint plus the pool's ``extraTaints``) and replaces taints set by others. It applies
with the stable field manager ``ai-platform-gpu`` and ``pulumi.com/patchForce`` so that a taint list last
written by kubectl or a node bootstrapper is taken over instead of failing with a conflict. Taints the
cloud sets at node creation must therefore be listed in ``extraTaints``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from config import versions
from config.cluster import Cluster
from config.gpu import WHOLE_GPU, EndpointGpu, Gpu, NodePool, gpu_placement
from config.model import PlatformConfig

from .meta import PART_OF, ComponentArgs, helm_release, kube, metadata, mirrored, platform_namespace

COMPONENT = "gpu"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
POOL_LABEL = "ai-platform/gpu-pool"
DEVICE_PLUGIN_CONFIG = "device-plugin-config"
DEFAULT_ENTRY = "default"
MIG_CONFIG = "mig-parted-config"
MIG_DISABLED = "all-disabled"
FIELD_MANAGER = "ai-platform-gpu"


def _mig_strategy(gpu: Gpu) -> str:
    return gpu.mig.strategy if gpu.uses_mig else "none"


def device_plugin_entry(gpu: Gpu, sharing: str, replicas: int) -> str:
    """One entry of the device plugin config: MIG strategy flag, and time-slicing where the pool shares."""
    entry: dict = {"version": "v1", "flags": {"migStrategy": _mig_strategy(gpu)}}
    if sharing == "time-slicing":
        slicing = gpu.time_slicing
        entry["sharing"] = {
            "timeSlicing": {
                "renameByDefault": slicing.rename_by_default,
                "failRequestsGreaterThanOne": slicing.fail_requests_greater_than_one,
                "resources": [{"name": WHOLE_GPU, "replicas": replicas}],
            }
        }
    return yaml.safe_dump(entry, sort_keys=False)


def device_plugin_config(gpu: Gpu) -> dict[str, str]:
    """ConfigMap data: the default entry (selector pools, unlabelled nodes) and one per named pool."""
    data = {DEFAULT_ENTRY: device_plugin_entry(gpu, gpu.sharing, gpu.time_slicing.replicas)}
    for pool in gpu.node_pools:
        if pool.nodes:
            data[pool.name] = device_plugin_entry(gpu, gpu.pool_sharing(pool), gpu.pool_replicas(pool))
    return data


def mig_parted_config(gpu: Gpu) -> str:
    """The mig-parted config: MIG off by default, one named layout per MIG pool."""
    configs = {MIG_DISABLED: [{"devices": "all", "mig-enabled": False}]}
    for pool in gpu.node_pools:
        if gpu.pool_sharing(pool) == "mig":
            configs[pool.name] = [{"devices": "all", "mig-enabled": True, "mig-devices": dict(pool.mig_profiles)}]
    return yaml.safe_dump({"version": "v1", "mig-configs": configs}, sort_keys=False)


def node_labels(gpu: Gpu, pool: NodePool) -> dict[str, str]:
    """Labels of a named GPU node: pool identity, and which device-plugin and MIG config it runs."""
    sharing = gpu.pool_sharing(pool)
    labels = {
        **pool.labels,
        POOL_LABEL: pool.name,
        "ai-platform/gpu-model": pool.gpu_model,
        "ai-platform/gpu-sharing": sharing,
    }
    if gpu.enabled:
        labels["nvidia.com/device-plugin.config"] = pool.name
        if gpu.uses_mig:
            labels["nvidia.com/mig.config"] = pool.name if sharing == "mig" else MIG_DISABLED
    return labels


def helm_values(gpu: Gpu, cluster: Cluster, service_monitor: bool) -> dict:
    """Values of the GPU Operator chart (keys checked against the upstream values.yaml by the schema tier)."""
    driver: dict = {"enabled": gpu.driver.enabled}
    if gpu.driver.enabled:
        driver["version"] = gpu.driver.version
    values: dict = {
        "driver": driver,
        "toolkit": {"enabled": gpu.toolkit},
        "devicePlugin": {
            "enabled": True,
            "config": {"create": False, "name": DEVICE_PLUGIN_CONFIG, "default": DEFAULT_ENTRY},
        },
        "gfd": {"enabled": gpu.gpu_feature_discovery},
        "nodeStatusExporter": {"enabled": gpu.node_status_exporter},
        # The label lets the monitoring stack's Prometheus select the ServiceMonitor (components.monitoring).
        "dcgmExporter": {
            "enabled": gpu.dcgm_exporter,
            "serviceMonitor": {
                "enabled": gpu.dcgm_exporter and service_monitor,
                "additionalLabels": {"app.kubernetes.io/part-of": PART_OF},
            },
        },
        "mig": {"strategy": gpu.mig.strategy},
        "migManager": {"enabled": gpu.uses_mig},
    }
    if gpu.uses_mig:
        values["migManager"]["config"] = {"create": False, "name": MIG_CONFIG, "default": MIG_DISABLED}
    for key, section in cluster.profile.gpu_operator_values(gpu, cluster.kubernetes_version).items():
        values[key] = {**values.get(key, {}), **section}
    if cluster.image_registry:
        for path, repository in versions.GPU_OPERATOR_REPOSITORIES.items():
            section = values
            for key in path.split("."):
                section = section.setdefault(key, {})
            section["repository"] = mirrored(repository, cluster.image_registry)
    return values


def gpu_scheduling(gpu: Gpu, request: EndpointGpu, exclusive: bool = False) -> dict:
    """Pod-spec fragments for a workload that needs ``request.count`` GPUs (or MIG instances of a profile).

    Returns ``tolerations`` (the nvidia.com/gpu taint), ``affinity`` (required node affinity to the pools that
    can serve the request: the GPU model if given; never time-sliced pools for ``exclusive`` tenants) and
    ``resources`` (the GPU resource with requests == limits). Raises ``ValueError`` if no pool can serve it.
    """
    pools = gpu_placement(gpu, request, exclusive)
    named = sorted(p.name for p in pools if p.nodes)
    terms = [{"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": named}]}] if named else []
    terms += [
        {
            "matchExpressions": [
                {"key": key, "operator": "In", "values": [value]} for key, value in sorted(p.node_selector.items())
            ]
        }
        for p in pools
        if p.node_selector
    ]
    quantity = {gpu.resource_for(request.mig_profile): str(request.count)}
    return {
        "tolerations": [GPU_TOLERATION],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}},
        "resources": {"requests": dict(quantity), "limits": dict(quantity)},
    }


def capacity_report(cfg: PlatformConfig) -> dict:
    """GPU inventory, schedulable units and tenant quotas per resource (a stack output; plan.md's table)."""
    gpu = cfg.gpu
    quotas = {t.name: {r: n for r, n in t.quota.gpu_resources().items() if n} for t in cfg.tenants}
    capacity = gpu.capacity()
    resources = sorted(set(capacity) | {r for q in quotas.values() for r in q})
    return {
        "pools": [
            {
                "name": p.name,
                "model": p.gpu_model,
                "nodes": p.node_total,
                "gpus": p.physical_gpus,
                "sharing": gpu.pool_sharing(p),
                "units": gpu.pool_units(p),
            }
            for p in gpu.node_pools
        ],
        "oversubscription": gpu.oversubscription,
        "resources": {
            r: {
                "schedulable": capacity.get(r, 0),
                "quota": sum(q.get(r, 0) for q in quotas.values()),
                "headroom": capacity.get(r, 0) - sum(q.get(r, 0) for q in quotas.values()),
            }
            for r in resources
        },
        "quotas": quotas,
    }


@dataclass(frozen=True)
class GpuOperatorArgs(ComponentArgs):
    """What ``GpuOperator`` is built from (besides the cluster and namespaces): the GPU config and, with monitoring on,
    the monitoring release it waits for (the chart's ServiceMonitor needs its CRD)."""

    gpu: Gpu
    _: KW_ONLY
    monitoring: pulumi.Resource | None = None


class GpuOperator(pulumi.ComponentResource):
    """GPU Operator namespace, device-plugin and MIG configs, Helm release, and named GPU node patches."""

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:gpu:GpuOperator", name, None, opts)
        gpu, cluster, namespace, protect = args.gpu, args.cluster, args.namespaces.gpu_operator, args.protect
        service_monitor, after = args.monitoring is not None, [args.monitoring] if args.monitoring else []
        child = pulumi.ResourceOptions(parent=self)
        self.release = None
        if gpu.enabled:
            ns = platform_namespace(
                f"{name}-namespace", namespace, COMPONENT, "privileged", cluster.kubernetes_version, self
            ).metadata["name"]
            configs = [
                kube(
                    f"{name}-device-plugin-config",
                    api_version="v1",
                    kind="ConfigMap",
                    metadata=metadata(DEVICE_PLUGIN_CONFIG, COMPONENT, namespace=ns),
                    data=device_plugin_config(gpu),
                    opts=child,
                )
            ]
            if gpu.uses_mig:
                configs.append(
                    kube(
                        f"{name}-mig-config",
                        api_version="v1",
                        kind="ConfigMap",
                        metadata=metadata(MIG_CONFIG, COMPONENT, namespace=ns),
                        data={"config.yaml": mig_parted_config(gpu)},
                        opts=child,
                    )
                )
            self.release = helm_release(
                f"{name}-release",
                versions.GPU_OPERATOR,
                ns,
                helm_values(gpu, cluster, service_monitor),
                self,
                cluster=args.cluster,
                depends_on=configs + (after or []),
                timeout=900,
                protect=protect,
            )

        for pool in gpu.node_pools:
            for node in pool.nodes:
                k8s.core.v1.NodePatch(
                    f"{name}-node-{node}",
                    metadata={
                        "name": node,
                        "labels": node_labels(gpu, pool),
                        "annotations": {"pulumi.com/patchForce": "true", "pulumi.com/patchFieldManager": FIELD_MANAGER},
                    },
                    spec={"taints": [GPU_TAINT] + [t.model_dump() for t in pool.extra_taints]},
                    opts=child,
                )
        self.register_outputs({"release": self.release.name if self.release else None})
