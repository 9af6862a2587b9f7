"""``CertManager``: issues the certificates of KServe's webhooks (and, later, the ingress gateway's).

Owns the cert-manager namespace (Pod Security ``restricted``: the controller, webhook, cainjector and the
startupapicheck hook Job all run with ``runAsNonRoot``, seccomp ``RuntimeDefault``, no privilege escalation and
every capability dropped by the chart's defaults) and the Helm release of the pinned chart:

- CRDs from the chart (``crds.enabled``) with ``helm.sh/resource-policy: keep`` (``crds.keep``): they are chart
  templates, so ``pulumi up`` with a new pin upgrades them, and uninstalling the release leaves them (and every
  Certificate and Issuer) in place;
- ``serving.replicas`` controllers, webhooks and cainjectors, each with a PodDisruptionBudget (the chart's
  default ``minAvailable: 1``) when there is more than one replica; leader-election leases in cert-manager's own
  namespace instead of kube-system;
- the startupapicheck post-install hook stays on, so the release is ready only once the webhook answers: whoever
  ``depends_on`` ``CertManager.release`` (KServe's Certificates) can create cert-manager objects right away;
- no ServiceMonitor/PodMonitor: they need the Prometheus Operator CRDs, and the monitoring component does not
  exist yet. The pods keep the chart's ``prometheus.io`` scrape annotations.

``cluster.imageRegistry`` replaces the registry (``imageRegistry``, default quay.io); the path (``jetstack/...``)
and the tags (the chart's appVersion) stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from config import versions
from config.cluster import Cluster

from .meta import ComponentArgs, helm_release, platform_namespace

COMPONENT = "cert-manager"
POD_SECURITY = "restricted"


def helm_values(cluster: Cluster, namespace: str, replicas: int) -> dict:
    """Values of the cert-manager chart (keys checked against the upstream values.yaml by the schema tier)."""
    ha = replicas > 1
    values: dict = {
        "crds": {"enabled": True, "keep": True},
        "global": {"leaderElection": {"namespace": namespace}},
        "replicaCount": replicas,
        "podDisruptionBudget": {"enabled": ha},
        "webhook": {"replicaCount": replicas, "podDisruptionBudget": {"enabled": ha}},
        "cainjector": {"replicaCount": replicas, "podDisruptionBudget": {"enabled": ha}},
        "prometheus": {"servicemonitor": {"enabled": False}, "podmonitor": {"enabled": False}},
    }
    if cluster.image_registry:
        values["imageRegistry"] = cluster.image_registry
    return values


@dataclass(frozen=True)
class CertManagerArgs(ComponentArgs):
    """What ``CertManager`` is built from (besides the cluster and namespaces): how many replicas of each part."""

    replicas: int


class CertManager(pulumi.ComponentResource):
    """cert-manager namespace and Helm release (controller, webhook, cainjector, CRDs)."""

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:certs:CertManager", name, None, opts)
        self.namespace = platform_namespace(
            f"{name}-namespace",
            args.namespaces.cert_manager,
            COMPONENT,
            POD_SECURITY,
            args.cluster.kubernetes_version,
            self,
        )
        self.release = helm_release(
            f"{name}-release",
            versions.CERT_MANAGER,
            self.namespace.metadata["name"],
            helm_values(args.cluster, args.namespaces.cert_manager, args.replicas),
            self,
            cluster=args.cluster,
            protect=args.protect,
        )
        self.register_outputs({"namespace": self.namespace.metadata["name"], "release": self.release.name})
