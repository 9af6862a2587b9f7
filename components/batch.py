"""``Volcano``: the batch scheduler that gang-schedules distributed training and enforces tenant queues.

Owns the Volcano namespace (Pod Security ``baseline``: the chart's containers add ``DAC_OVERRIDE``, which
``restricted`` forbids) and the Helm release of the pinned chart, with the scheduler configured for gang
scheduling (``gang`` plugin), fair sharing between queues (``drf``, ``proportion``) and reclaim of borrowed
capacity (``reclaim`` action). The release installs the CRDs (Queue, PodGroup, Job, ...) that tenant
objects need, so every custom resource of Volcano ``depends_on`` ``Volcano.release``.

It also owns the tenant queue fence: Volcano queues have no access control of their own, and a PodGroup, a
Volcano Job, a TrainJob or a pod may name any queue. A ``ValidatingAdmissionPolicy`` (CEL, in the API server,
Kubernetes >= 1.30) and its binding deny, in every namespace labelled ``ai-platform/tenant``, any of those whose
queue is not the namespace's tenant queue (queue name == tenant name): ``spec.queue`` of PodGroups (defaulted to
``default`` by the CRD, so an unset queue is denied too) and of Volcano Jobs, and the queue annotation
``scheduling.volcano.sh/queue-name`` / KubeRay's ``volcano.sh/queue-name`` label where an object sets them.
Controllers that create PodGroups for tenants (Volcano's, the Trainer's, KubeRay's) are held to it as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import yaml

from config import versions
from config.batch import ContainerResources
from config.batch import Volcano as VolcanoConfig
from config.cluster import Cluster

from .meta import PART_OF, TENANT_LABEL, ComponentArgs, helm_release, kube, metadata, platform_namespace

COMPONENT = "volcano"

# The scheduler's actions and plugin tiers: the chart's documented layout plus the reclaim action, so that
# queues marked reclaimable give back borrowed capacity.
SCHEDULER_CONFIG = {
    "actions": "enqueue, allocate, backfill, reclaim",
    "tiers": [
        {"plugins": [{"name": "priority"}, {"name": "gang", "enablePreemptable": False}, {"name": "conformance"}]},
        {
            "plugins": [
                {"name": "overcommit"},
                {"name": "drf", "enablePreemptable": False},
                {"name": "predicates"},
                {"name": "proportion"},
                {"name": "nodeorder"},
                {"name": "binpack"},
            ]
        },
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


QUEUE_FENCE = "ai-platform-tenant-queues"
QUEUE_ANNOTATION = "scheduling.volcano.sh/queue-name"
RAY_QUEUE_LABEL = "volcano.sh/queue-name"


def _names_own_queue(field: str, key: str) -> str:
    """CEL: the map ``field`` of the object has no ``key`` or maps it to the tenant's queue."""
    return f"!has(object.{field}) || !('{key}' in object.{field}) || object.{field}['{key}'] == variables.queue"


def queue_fence_spec() -> dict:
    """The ValidatingAdmissionPolicy's spec: objects in tenant namespaces may only name their tenant's queue."""
    writes = ["CREATE", "UPDATE"]
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "namespaceSelector": {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]},
            "resourceRules": [
                {
                    "apiGroups": ["scheduling.volcano.sh"],
                    "apiVersions": ["*"],
                    "operations": writes,
                    "resources": ["podgroups"],
                },
                {"apiGroups": ["batch.volcano.sh"], "apiVersions": ["*"], "operations": writes, "resources": ["jobs"]},
                {
                    "apiGroups": ["trainer.kubeflow.org"],
                    "apiVersions": ["*"],
                    "operations": writes,
                    "resources": ["trainjobs"],
                },
                {
                    "apiGroups": ["ray.io"],
                    "apiVersions": ["*"],
                    "operations": writes,
                    "resources": ["rayclusters", "rayjobs", "rayservices"],
                },
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
            ],
        },
        "variables": [{"name": "queue", "expression": f"namespaceObject.metadata.labels['{TENANT_LABEL}']"}],
        "validations": [
            {
                "expression": "object.kind != 'PodGroup' || object.spec.queue == variables.queue",
                "messageExpression": "'PodGroups in this namespace must use the Volcano queue ' + variables.queue",
            },
            {
                "expression": "!(object.kind == 'Job' && object.apiVersion.startsWith('batch.volcano.sh/')) || "
                "(has(object.spec.queue) && object.spec.queue == variables.queue)",
                "messageExpression": "'Volcano Jobs in this namespace must set spec.queue: ' + variables.queue",
            },
            {
                "expression": _names_own_queue("metadata.annotations", QUEUE_ANNOTATION),
                "messageExpression": f"'annotation {QUEUE_ANNOTATION} must be ' + variables.queue",
            },
            {
                "expression": _names_own_queue("spec.annotations", QUEUE_ANNOTATION),
                "messageExpression": f"'spec.annotations {QUEUE_ANNOTATION} must be ' + variables.queue",
            },
            {
                "expression": _names_own_queue("metadata.labels", RAY_QUEUE_LABEL),
                "messageExpression": f"'label {RAY_QUEUE_LABEL} must be ' + variables.queue",
            },
        ],
    }


@dataclass(frozen=True)
class VolcanoArgs(ComponentArgs):
    """What ``Volcano`` is built from (besides the cluster and namespaces): its config slice."""

    volcano: VolcanoConfig


class Volcano(pulumi.ComponentResource):
    """Volcano namespace and Helm release (scheduler, controllers, admission webhook, CRDs)."""

    def __init__(self, name: str, args: VolcanoArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:batch:Volcano", name, None, opts)
        self.namespace = platform_namespace(
            f"{name}-namespace", args.namespaces.volcano, COMPONENT, "baseline", args.cluster.kubernetes_version, self
        )
        self.release = helm_release(
            f"{name}-release",
            versions.VOLCANO,
            self.namespace.metadata["name"],
            helm_values(args.volcano, args.cluster),
            self,
            cluster=args.cluster,
            protect=args.protect,
        )
        child = pulumi.ResourceOptions(parent=self)
        self.queue_fence = kube(
            f"{name}-queue-fence",
            api_version="admissionregistration.k8s.io/v1",
            kind="ValidatingAdmissionPolicy",
            metadata=metadata(QUEUE_FENCE, COMPONENT),
            spec=queue_fence_spec(),
            opts=child,
        )
        kube(
            f"{name}-queue-fence-binding",
            api_version="admissionregistration.k8s.io/v1",
            kind="ValidatingAdmissionPolicyBinding",
            metadata=metadata(QUEUE_FENCE, COMPONENT),
            spec={"policyName": QUEUE_FENCE, "validationActions": ["Deny"]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.queue_fence]),
        )
        self.register_outputs({"namespace": self.namespace.metadata["name"], "release": self.release.name})
