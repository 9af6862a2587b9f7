"""``Volcano``: the batch scheduler that gang-schedules distributed training and enforces tenant queues.

Owns the Volcano namespace (Pod Security ``baseline``: the chart's containers add ``DAC_OVERRIDE``, which
``restricted`` forbids) and the Helm release of the pinned chart, with the scheduler configured for gang
scheduling (``gang`` plugin), fair sharing between queues (``drf``, ``proportion``) and reclaim of borrowed
capacity (``reclaim`` action). The release installs the CRDs (Queue, PodGroup, Job, ...) that tenant
objects need, so every custom resource of Volcano ``depends_on`` ``Volcano.release``.
"""

from __future__ import annotations

import pulumi
import yaml

from config import versions
from config.model import Cluster, ContainerResources
from config.model import Volcano as VolcanoConfig

from .meta import PART_OF, helm_release, platform_namespace

COMPONENT = "volcano"

# The scheduler's actions and plugin tiers: the chart's documented layout plus the reclaim action, so that
# queues marked reclaimable give back borrowed capacity.
SCHEDULER_CONFIG = {
    "actions": "enqueue, allocate, backfill, reclaim",
    "tiers": [
        {"plugins": [{"name": "priority"}, {"name": "gang", "enablePreemptable": False}, {"name": "conformance"}]},
        {"plugins": [{"name": "overcommit"}, {"name": "drf", "enablePreemptable": False}, {"name": "predicates"},
                     {"name": "proportion"}, {"name": "nodeorder"}, {"name": "binpack"}]},
    ],
}


def _resources(resources: ContainerResources) -> dict:
    return {"requests": resources.requests.model_dump(), "limits": resources.limits.model_dump()}


def helm_values(volcano: VolcanoConfig, cluster: Cluster) -> dict:
    """Values of the Volcano chart (keys checked against the upstream values.yaml by the schema tier)."""
    basic: dict = {"image_tag_version": versions.VOLCANO_IMAGE_TAG, "image_pull_policy": "IfNotPresent"}
    if cluster.image_registry:
        basic["image_registry"] = cluster.image_registry
    replicas = volcano.replicas
    return {
        "basic": basic,
        "custom": {
            "scheduler_replicas": replicas,
            "controller_replicas": replicas,
            "admission_replicas": replicas,
            "leader_elect_enable": replicas > 1,
            "scheduler_metrics_enable": True,
            "controller_metrics_enable": True,
            "scheduler_config_override": yaml.safe_dump(SCHEDULER_CONFIG, sort_keys=False),
            "scheduler_resources": _resources(volcano.resources.scheduler),
            "controller_resources": _resources(volcano.resources.controller),
            "admission_resources": _resources(volcano.resources.admission),
            "common_labels": {"app.kubernetes.io/part-of": PART_OF},
        },
    }


class Volcano(pulumi.ComponentResource):
    """Volcano namespace and Helm release (scheduler, controllers, admission webhook, CRDs)."""

    def __init__(self, name: str, volcano: VolcanoConfig, cluster: Cluster, namespace: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:batch:Volcano", name, None, opts)
        self.namespace = platform_namespace(f"{name}-namespace", namespace, COMPONENT, "baseline",
                                            cluster.kubernetes_version, self)
        self.release = helm_release(f"{name}-release", versions.VOLCANO, self.namespace.metadata.name,
                                    helm_values(volcano, cluster), self)
        self.register_outputs({"namespace": self.namespace.metadata.name, "release": self.release.name})
