"""Any conformant cluster (``cluster.platform: generic``, the default).

No platform rules beyond Kubernetes': every workload identity is accepted (a self-managed cluster may run the IRSA or
Azure workload identity webhooks), ``cluster.networkPolicy`` is optional, and the user answers for what a managed
platform's profile would have checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Profile, Rule, unclassed_caches
from .identities import ALL_IDENTITIES

if TYPE_CHECKING:
    pass


class Generic(Profile):
    name = "generic"
    title = "Any conformant cluster"
    network_policy_providers = {}
    identities = ALL_IDENTITIES
    rules = (
        Rule(
            "NetworkPolicies are enforced: tenant isolation is made of them",
            "https://kubernetes.io/docs/concepts/services-networking/network-policies/#prerequisites",
            user="Run a network plugin that enforces NetworkPolicy (Calico, Cilium, ...); a plugin without it "
            "accepts the policies and enforces none",
        ),
        Rule(
            "Model caches read by more than one replica need a ReadWriteMany storage class",
            "https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes",
            user="Name a storage class that offers ReadWriteMany in serving.storageClass (or models[].cache."
            "storageClass) for endpoints with replicas.max > 1, or make it the cluster default",
            applies=unclassed_caches,
        ),
        Rule(
            "The VPA recommender reads the resource metrics API (metrics.k8s.io)",
            "https://github.com/kubernetes/autoscaler/tree/vertical-pod-autoscaler-chart-0.11.0/vertical-pod-autoscaler"
            "#prerequisites",
            user="Run metrics-server (or another provider of metrics.k8s.io)",
            applies=lambda cfg: cfg.vpa.enabled,
        ),
    )


PROFILE = Generic()
