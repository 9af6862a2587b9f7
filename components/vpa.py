"""``VerticalPodAutoscaler``: right-sized requests. The VPA recommender, and a VerticalPodAutoscaler in ``Off`` mode
for every Deployment and StatefulSet the platform installs and for the model servers of the endpoints that opt in.

Owns:
- the VPA namespace (``namespaces.vpa``), Pod Security ``restricted``: the recommender runs as the chart's non-root
  UID 65534 (``podSecurityContext``) with seccomp ``RuntimeDefault``, no privilege escalation, every capability
  dropped and a read-only root file system (``containerSecurityContext``, empty in the chart: the schema tier takes
  only values.yaml's keys under ``podSecurityContext``, so seccomp is set on the container); it writes no file
  (logs on stderr, state in VerticalPodAutoscalerCheckpoint objects);
- the Helm release of the pinned chart with the recommender only: ``updater.enabled`` and
  ``admissionController.enabled`` false, so nothing evicts or mutates a pod (and no webhook, certgen Job or
  certificate exists), one replica (a second one would only stand by: leader election) and so no
  PodDisruptionBudget (``minAvailable: 1`` of one pod would block every node drain), its requests and limits set
  (the chart's README suggestion), and, with ``cluster.imageRegistry``, the mirrored repository (the chart pins the
  tag, its appVersion 1.7.1). The CRDs (VerticalPodAutoscaler, VerticalPodAutoscalerCheckpoint) are in the chart's
  ``crds/``: Helm installs them on first install and never upgrades them; apply the new chart's CRDs first when the
  pin changes (docs/monitoring.md);
- the VerticalPodAutoscalers (``autoscaling.k8s.io/v1``, ``updatePolicy.updateMode: Off``: the recommender writes a
  recommendation into ``status``, nothing acts on it), each beside its target and waiting for the release (its
  CRD): one per Deployment/StatefulSet of every release the stack installs (``config.charts.CHART_WORKLOADS``, with
  that release's values), one per Deployment/StatefulSet the program creates itself outside tenant namespaces, and
  one per model-server Deployment of an endpoint with ``models[].vpa`` (stable and canary; KServe's predictor).

``Workloads`` finds what the stack installs: ``AiPlatform`` declares it as a transformation of the whole stack, so it
sees every Helm release and every Deployment/StatefulSet as it is declared (``AiPlatform`` then calls ``rightsize``
once, at the end). A chart without a record fails loudly there: record its workloads first.

The recommender reads the cluster's metrics API (metrics-server, which GKE and AKS run and EKS and kubeadm clusters
need installed); without it no recommendation appears, nothing breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import pulumi

from config import charts, versions
from config.cluster import Cluster

from .meta import PART_OF, TENANT_LABEL, ComponentArgs, helm_release, kube, metadata, mirrored, platform_namespace
from .pods import restricted_container, restricted_pod

COMPONENT = "vpa"
POD_SECURITY = "restricted"
RELEASE = versions.VPA.name
# The chart's recommender user (values.yaml podSecurityContext.runAsUser: nobody).
RECOMMENDER_UID = 65534
# kubernetes/autoscaler vertical-pod-autoscaler-chart-0.11.0 values.yaml recommender.resources (commented example).
RECOMMENDER_RESOURCES = {"requests": {"cpu": "50m", "memory": "500Mi"}, "limits": {"cpu": "200m", "memory": "1000Mi"}}
API_VERSION = "autoscaling.k8s.io/v1"
UPDATE_MODE = "Off"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
WORKLOAD_TYPES = {"kubernetes:apps/v1:Deployment": "Deployment", "kubernetes:apps/v1:StatefulSet": "StatefulSet"}


def helm_values(cluster: Cluster) -> dict:
    """Values of the vertical-pod-autoscaler chart (keys checked against the upstream values.yaml by the schema
    tier): the recommender only, restricted."""
    recommender: dict = {
        "replicas": 1,
        "podDisruptionBudget": {"enabled": False},
        "resources": RECOMMENDER_RESOURCES,
    }
    if cluster.image_registry:
        recommender["image"] = {"repository": mirrored(versions.VPA_RECOMMENDER_IMAGE, cluster.image_registry)}
    return {
        "commonLabels": {"app.kubernetes.io/part-of": PART_OF},
        # seccomp on the container: the schema tier allows only values.yaml's keys under podSecurityContext.
        "podSecurityContext": {k: v for k, v in restricted_pod(RECOMMENDER_UID).items() if k != "seccompProfile"},
        "containerSecurityContext": restricted_container(seccomp=True),
        "recommender": recommender,
        "updater": {"enabled": False},
        "admissionController": {"enabled": False},
    }


def vpa_spec(kind: str, name: str) -> dict:
    """A VerticalPodAutoscaler's spec: recommendations for the ``kind`` ``name`` of its namespace, applied never."""
    return {
        "targetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name},
        "updatePolicy": {"updateMode": UPDATE_MODE},
    }


class Workload(NamedTuple):
    """A Deployment or StatefulSet to right-size: its VPA's logical name, kind, name and namespace (tenant: a tenant's
    workload)."""

    logical_name: str
    kind: str
    name: str
    namespace: pulumi.Input[str]
    tenant: str | None = None


class Workloads:
    """As a ``transformations`` entry of the top-level component: records the Deployments and StatefulSets of every
    Helm release (``config.charts.chart_workloads`` of its chart, release name and values) and those the program
    declares itself outside tenant namespaces (a tenant's model servers come from ``models[].vpa``). Declares
    nothing and changes nothing."""

    def __init__(self) -> None:
        self.found: list[Workload] = []

    def transformation(self, args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        props: dict[str, Any] = dict(args.props)  # the inputs as declared: plain names, Outputs where they are
        if args.type_ == RELEASE_TYPE:
            chart = str(props["chart"]).rsplit("/", 1)[-1]
            for workload in charts.chart_workloads(chart, props["name"], props.get("values") or {}):
                self.found.append(
                    Workload(f"{args.name}-{workload.name}", workload.kind, workload.name, props["namespace"])
                )
        elif args.type_ in WORKLOAD_TYPES:
            meta = props["metadata"]
            if TENANT_LABEL not in (meta.get("labels") or {}):
                self.found.append(Workload(args.name, WORKLOAD_TYPES[args.type_], meta["name"], meta["namespace"]))
        return None


@dataclass(frozen=True)
class VerticalPodAutoscalerArgs(ComponentArgs):
    """What ``VerticalPodAutoscaler`` is built from: the cluster and namespaces."""


class VerticalPodAutoscaler(pulumi.ComponentResource):
    """VPA namespace and recommender release; ``rightsize``: the VerticalPodAutoscalers (Off mode)."""

    def __init__(self, name: str, args: VerticalPodAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:vpa:VerticalPodAutoscaler", name, None, opts)
        self._name = name
        self.namespace = platform_namespace(
            f"{name}-namespace", args.namespaces.vpa, COMPONENT, POD_SECURITY, args.cluster.kubernetes_version, self
        )
        self.release = helm_release(
            f"{name}-release",
            versions.VPA,
            self.namespace.metadata["name"],
            helm_values(args.cluster),
            self,
            cluster=args.cluster,
            protect=args.protect,
        )
        self.register_outputs({"namespace": self.namespace.metadata["name"], "release": self.release.name})

    def rightsize(self, workloads: list[Workload]) -> None:
        """One VerticalPodAutoscaler in Off mode per workload, in its namespace, after the release (the CRD)."""
        for workload in workloads:
            kube(
                f"{self._name}-{workload.logical_name}",
                api_version=API_VERSION,
                kind="VerticalPodAutoscaler",
                metadata=metadata(workload.name, COMPONENT, namespace=workload.namespace, tenant=workload.tenant),
                spec=vpa_spec(workload.kind, workload.name),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )
