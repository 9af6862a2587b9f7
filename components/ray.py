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
- in every tenant namespace the NetworkPolicy ``allow-from-kuberay``: the operator calls each Ray head, in plain
  HTTP from outside the mesh, on the dashboard API (port 8265: ``/api/jobs/``, ``/api/serve/applications/``) for
  RayJob and RayService status, and on the Serve proxy (port 8000, ``/-/healthz``) for RayService readiness; the
  tenant's default-deny ingress would refuse both;
- with the mesh (``admit_operator_through_mesh``), in every tenant namespace the PeerAuthentications ``ray-head`` and
  ``ray-worker``: Ray pods accept plain text as well as mTLS (PERMISSIVE), which the tenant's STRICT ``default`` would
  refuse. The operator calls the heads without a sidecar; and Ray's processes call each other by pod IP on ports no
  Service declares (workers' 10002-19999, object and node managers), which a client sidecar passes through in plain
  text (docs.ray.io "mTLS and L7 observability with Istio": STRICT needs fixed worker ports, a headless Service per
  pod and no KubeRay init container; none of that is the platform's to set in a tenant's RayCluster). Who may send
  stays the NetworkPolicies' business: the operator's pods, the tenant's own pods, and the platform namespaces the
  tenant admits.

Queues: KubeRay puts a RayCluster's (or RayJob's) PodGroup in the queue named by its label ``volcano.sh/queue-name``;
without it the PodGroup lands in Volcano's ``default`` queue, which the tenant queue fence refuses in tenant
namespaces. Tenants label their Ray objects with their own queue (the tenant's name).

What the operator watches: every namespace. The chart can narrow it (``watchNamespace``, a list the templates pass as
``--watch-namespace``), but its values.yaml documents that key only as a comment at the top level, which the schema
tier does not accept as a key; tenants can only create Ray objects in their own namespaces anyway (RBAC).

CRDs: in the chart's ``crds/`` folder, so Helm installs them on first install and never upgrades them: apply the new
chart's CRDs first when the pin changes (see docs/batch.md). The chart's RayCronJob CRD is installed, but its controller is
behind the alpha feature gate ``RayCronJob`` (off in the chart), so tenants get no rights on RayCronJobs.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi

from config import versions
from config.batch import Ray as RayConfig
from config.cluster import Cluster

from .meta import PART_OF, ComponentArgs, helm_release, kube, metadata, mirrored, platform_namespace

COMPONENT = "ray"
POD_SECURITY = "restricted"
RELEASE = versions.KUBERAY_OPERATOR.name
# KubeRay v1.7.0's names (ray-project/kuberay, tag v1.7.0): the operator pods' app.kubernetes.io/name (the chart's
# nameOverride, helm-chart/kuberay-operator); the head pods' node-type label (ray-operator/controllers/ray/common/
# pod.go labelPod: ray.io/node-type=head, not overridable by the user); the ports the operator calls on the head pod,
# in plain HTTP (utils/util.go GetRayDashboardClientFunc "http://<head service>:<dashboard port>" and
# GetRayHttpProxyClientFunc "http://<head pod IP>:<serving port>/"; defaults in utils/constant.go
# DefaultDashboardPort 8265, DefaultServingPort 8000; paths in utils/dashboardclient/dashboard_httpclient.go and
# utils/httpproxy_httpclient.go).
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "kuberay-operator"}
HEAD_POD_LABELS = {"ray.io/node-type": "head"}
# The head pods, as a selector: with in-tree autoscaling their autoscaler sidecar calls the Kubernetes API
# (ray-operator/controllers/ray/common/pod.go BuildPod/BuildAutoscalerContainer: "inject a KubeRay autoscaler side
# container into the head pod"; KubeRay creates its Role and RoleBinding).
HEAD_PODS = {"matchLabels": HEAD_POD_LABELS}
DASHBOARD_PORT = 8265
SERVE_PORT = 8000
OPERATOR_PORTS = (DASHBOARD_PORT, SERVE_PORT)
OPERATOR_INGRESS_POLICY = "allow-from-kuberay"
# Ray node types (label ray.io/node-type, which users cannot override): one PeerAuthentication each, ray-<type>.
NODE_TYPES = ("head", "worker")

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
    """NetworkPolicy spec in a tenant namespace: the operator's pods may reach the Ray heads' dashboard and Serve
    ports."""
    return {
        "podSelector": {"matchLabels": HEAD_POD_LABELS},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator_namespace}},
                        "podSelector": {"matchLabels": OPERATOR_POD_LABELS},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": port} for port in OPERATOR_PORTS],
            }
        ],
    }


def ray_peer_authentication_spec(node_type: str) -> dict:
    """PeerAuthentication spec in a tenant namespace: the Ray pods of ``node_type`` accept plain text and mTLS. A
    workload policy overrides the namespace's STRICT ``default`` (istio/istio 1.30.3 pilot/pkg/security/authn/
    policy_applier.go ComposePeerAuthentication); one per node type, so that no two select the same pod (Istio then
    applies only the oldest)."""
    return {"selector": {"matchLabels": {"ray.io/node-type": node_type}}, "mtls": {"mode": "PERMISSIVE"}}


@dataclass(frozen=True)
class RayArgs(ComponentArgs):
    """What ``Ray`` is built from (besides the cluster and namespaces): its config; keyword-only, the tenants'
    namespaces (Outputs: the operator's ingress rules go there) and the Volcano release the operator waits for."""

    ray: RayConfig
    _: KW_ONLY
    tenant_namespaces: dict[str, pulumi.Input[str]]
    volcano_release: pulumi.Resource


class Ray(pulumi.ComponentResource):
    """KubeRay namespace and operator release, and the tenants' ingress rules (network and, with the mesh, mTLS)
    for the operator."""

    def __init__(self, name: str, args: RayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:ray:Ray", name, None, opts)
        namespaces, tenant_namespaces = args.namespaces, args.tenant_namespaces
        self.namespace = platform_namespace(
            f"{name}-namespace", namespaces.ray, COMPONENT, POD_SECURITY, args.cluster.kubernetes_version, self
        )
        self.release = helm_release(
            f"{name}-release",
            versions.KUBERAY_OPERATOR,
            self.namespace.metadata["name"],
            helm_values(args.ray, args.cluster),
            self,
            cluster=args.cluster,
            depends_on=[args.volcano_release],
            release_name=RELEASE,
            protect=args.protect,
        )
        self._name, self._tenant_namespaces = name, tenant_namespaces
        for tenant, namespace in tenant_namespaces.items():
            kube(
                f"{name}-netpol-{tenant}",
                api_version="networking.k8s.io/v1",
                kind="NetworkPolicy",
                metadata=metadata(OPERATOR_INGRESS_POLICY, COMPONENT, namespace=namespace, tenant=tenant),
                spec=operator_ingress_spec(namespaces.ray),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"namespace": self.namespace.metadata["name"], "release": self.release.name})

    def admit_operator_through_mesh(self, mesh_ready: pulumi.Resource) -> None:
        """With the mesh: in every tenant namespace, Ray pods accept the operator's and each other's plain-text calls
        (``ray_peer_authentication_spec``), after ``mesh_ready`` (istiod: Istio's CRDs and validation)."""
        for tenant, namespace in self._tenant_namespaces.items():
            for node_type in NODE_TYPES:
                kube(
                    f"{self._name}-peer-authentication-{tenant}-{node_type}",
                    api_version="security.istio.io/v1",
                    kind="PeerAuthentication",
                    metadata=metadata(f"ray-{node_type}", COMPONENT, namespace=namespace, tenant=tenant),
                    spec=ray_peer_authentication_spec(node_type),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[mesh_ready]),
                )
