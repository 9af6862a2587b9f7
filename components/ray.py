"""``Ray``: the KubeRay operator; tenants run RayCluster, RayJob and RayService, gang-scheduled by Volcano.

Owns:
- the KubeRay namespace (``namespaces.ray``), Pod Security ``restricted``: the chart's operator container is non-root
  with seccomp ``RuntimeDefault``, no privilege escalation, every capability dropped and a read-only root (chart
  ``securityContext``), and asks for nothing of the host;
- the Helm release ``kuberay-operator`` of the pinned chart: ``batchScheduler.name: volcano`` (the operator's
  ``--batch-scheduler=volcano``: it creates a Volcano PodGroup per RayCluster, or per RayJob, and gives the pods
  ``schedulerName: volcano``), ``replicas`` from ``ray.replicas`` (leader election is on in the chart), the chart's
  operator tag (``v1.7.0``) and, with ``cluster.imageRegistry``, the mirrored repository. It waits for the Volcano
  release: with Volcano as batch scheduler the operator owns PodGroups, whose CRD must exist when it starts;
- in every tenant namespace the NetworkPolicy ``allow-from-kuberay``: the operator reads each Ray head's dashboard
  API (port 8265) for RayJob and RayService status, which the tenant's default-deny ingress would refuse.

Queues: KubeRay puts a RayCluster's (or RayJob's) PodGroup in the queue named by its label ``volcano.sh/queue-name``;
without it the PodGroup lands in Volcano's ``default`` queue, which the tenant queue fence refuses in tenant
namespaces. Tenants label their Ray objects with their own queue (the tenant's name).

What the operator watches: every namespace. The chart can narrow it (``watchNamespace``, a list the templates pass as
``--watch-namespace``), but its values.yaml documents that key only as a comment at the top level, which the schema
tier does not accept as a key; tenants can only create Ray objects in their own namespaces anyway (RBAC).

CRDs: in the chart's ``crds/`` folder, so Helm installs them on first install and never upgrades them: apply the new
chart's CRDs first when the pin changes (see README). The chart's RayCronJob CRD is installed, but its controller is
behind the alpha feature gate ``RayCronJob`` (off in the chart), so tenants get no rights on RayCronJobs.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config import versions
from config.model import Cluster, Namespaces
from config.model import Ray as RayConfig

from .meta import PART_OF, helm_release, kube, metadata, mirrored, platform_namespace

COMPONENT = "ray"
POD_SECURITY = "restricted"
RELEASE = versions.KUBERAY_OPERATOR.name
# KubeRay's names: the operator pods' app.kubernetes.io/name (the chart's nameOverride), the head pods' node-type
# label, and the head's dashboard port (the operator's HTTP client for job and serve status).
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "kuberay-operator"}
HEAD_POD_LABELS = {"ray.io/node-type": "head"}
DASHBOARD_PORT = 8265
OPERATOR_INGRESS_POLICY = "allow-from-kuberay"

# What tenant developers manage (Tenant's role rules); pods and services of Ray clusters are tenant workloads already.
TENANT_WORKLOADS = {"ray.io": ["rayclusters", "rayjobs", "rayservices"]}
TENANT_READABLE: dict[str, list[str]] = {}


def helm_values(ray: RayConfig, cluster: Cluster) -> dict:
    """Values of the kuberay-operator chart (keys checked against the upstream values.yaml by the schema tier)."""
    values: dict = {
        "replicas": ray.replicas,
        "batchScheduler": {"name": ray.batch_scheduler},
        "labels": {"app.kubernetes.io/part-of": PART_OF},
    }
    if cluster.image_registry:
        values["image"] = {"repository": mirrored(versions.KUBERAY_OPERATOR_IMAGE, cluster.image_registry)}
    return values


def operator_ingress_spec(operator_namespace: str) -> dict:
    """NetworkPolicy spec in a tenant namespace: the operator's pods may reach the Ray heads' dashboard port."""
    return {
        "podSelector": {"matchLabels": HEAD_POD_LABELS},
        "policyTypes": ["Ingress"],
        "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator_namespace}},
                      "podSelector": {"matchLabels": OPERATOR_POD_LABELS}}],
            "ports": [{"protocol": "TCP", "port": DASHBOARD_PORT}],
        }],
    }


class Ray(pulumi.ComponentResource):
    """KubeRay namespace and operator release, and the tenants' ingress rule for the operator."""

    def __init__(self, name: str, ray: RayConfig, cluster: Cluster, namespaces: Namespaces,
                 tenant_namespaces: dict[str, pulumi.Input[str]], volcano_release: pulumi.Resource,
                 opts: pulumi.ResourceOptions | None = None, protect: bool = False):
        super().__init__("ai-platform:ray:Ray", name, None, opts)
        self.namespace = platform_namespace(f"{name}-namespace", namespaces.ray, COMPONENT, POD_SECURITY,
                                            cluster.kubernetes_version, self)
        self.release = helm_release(f"{name}-release", versions.KUBERAY_OPERATOR, self.namespace.metadata["name"],
                                    helm_values(ray, cluster), self, depends_on=[volcano_release],
                                    release_name=RELEASE, protect=protect)
        for tenant, namespace in tenant_namespaces.items():
            kube(
                f"{name}-netpol-{tenant}", api_version="networking.k8s.io/v1", kind="NetworkPolicy",
                metadata=metadata(OPERATOR_INGRESS_POLICY, COMPONENT, namespace=namespace, tenant=tenant),
                spec=operator_ingress_spec(namespaces.ray), opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"namespace": self.namespace.metadata["name"], "release": self.release.name})
