"""What a managed platform's profile is (``Profile``) and what it is built from: documented requirements
(``Rule``) and workload identities (``platforms.identities``).

A profile owns everything the program does differently on one platform: values it adds to releases, objects it adds,
what it requires of the config (``problems``, raised before anything is registered), its storage and identity
conventions, and the rules behind them, each with its source. Components ask the profile (``platforms.of``); none
tests a platform's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from .identities import ALL_IDENTITIES, Identity

if TYPE_CHECKING:
    from config.base import Problems
    from config.gpu import Gpu
    from config.model import PlatformConfig


def always(cfg: PlatformConfig) -> bool:
    return True


class Rule(NamedTuple):
    """One documented requirement of a platform: what it is, where it is written, what the program changes for it,
    what config it refuses for it (``Profile.problems``) and what it asks of the user on the cluster first (any may be
    empty); ``applies``: whether a stack needs it."""

    requirement: str
    source: str
    program: str = ""
    user: str = ""
    refuses: str = ""
    applies: Callable[[PlatformConfig], bool] = always


class Profile:
    """The rules of one platform. Subclasses set the attributes and override what differs; ``problems`` checks what
    every platform checks (the NetworkPolicy provider, identity annotations) plus ``extra_problems``."""

    name = "generic"
    title = "Any conformant cluster"
    network_policy_providers: dict[str, str] = {}
    """``cluster.networkPolicy`` values this platform offers -> how the user turns it on."""
    identities: tuple[Identity, ...] = ()
    """Workload identities of this platform; ServiceAccount annotations of any other system are refused."""
    rwx_storage_class: str | None = None
    """The platform's own ReadWriteMany storage class (model caches read by several replicas); None: none built in."""
    critical_pods_need_quota = False
    """Pods with ``system-node-critical``/``system-cluster-critical`` are admitted outside kube-system only where a
    ResourceQuota scoped to those classes exists (``components.meta.helm_release`` adds it)."""
    istio_platform: str | None = None
    """The Istio charts' ``global.platform`` (e.g. where the node's CNI binaries live)."""
    cni_bin_dir: str | None = None
    """Where the nodes keep CNI plugin binaries, when not the Istio cni chart's default /opt/cni/bin."""
    gateway_service_annotations: dict[str, str] = {}
    """Annotations of the ingress gateway's LoadBalancer Service (which load balancer the platform makes)."""
    managed_control_plane = False
    """The provider runs the control plane: no scheduler, controller manager or etcd to scrape (their targets and
    alerts are off in the monitoring stack)."""
    rules: tuple[Rule, ...] = ()

    def gpu_operator_values(self, gpu: Gpu, kubernetes_version: str) -> dict:
        """Values this platform adds to the GPU Operator release (merged into the platform's own, per section)."""
        return {}

    def extra_problems(self, cfg: PlatformConfig) -> Problems:
        """What this platform requires of the config beyond the common checks."""
        return []

    def problems(self, cfg: PlatformConfig) -> Problems:
        """Everything in ``cfg`` that cannot work on this platform, as (config path, why)."""
        problems: Problems = []
        provider = cfg.cluster.network_policy
        offered = self.network_policy_providers
        if offered and provider is None:
            problems.append(
                (
                    "cluster.networkPolicy",
                    f"required on {self.name}: without an enforcing provider every tenant NetworkPolicy is silently "
                    "ignored. Enable one, then name it: "
                    + "; ".join(f"{value} ({how})" for value, how in offered.items()),
                )
            )
        elif offered and provider not in offered:
            problems.append(
                ("cluster.networkPolicy", f"{provider!r} is not offered on {self.name} (allowed: {', '.join(offered)})")
            )
        for path, account in annotated_accounts(cfg):
            problems += self.annotation_problems(path, account)
        offers_pod_identity = any(not i.annotation for i in self.identities)
        for index, endpoint in enumerate(cfg.models):
            if endpoint.pod_identity and not offers_pod_identity:
                problems.append(
                    (f"models[{index}].podIdentity", f"EKS Pod Identity exists only on eks, not {self.name}")
                )
            elif endpoint.pod_identity and endpoint.service_account_annotations:
                problems.append(
                    (f"models[{index}].podIdentity", "one workload identity: Pod Identity or serviceAccountAnnotations")
                )
        return problems + self.extra_problems(cfg)

    def annotation_problems(self, path: str, annotations: dict[str, str]) -> Problems:
        """Identity annotations of one ``serviceAccountAnnotations`` field: each of a system this platform runs,
        its value well-formed."""
        problems: Problems = []
        for key, value in sorted(annotations.items()):
            system = next((i for i in ALL_IDENTITIES if key.startswith(i.prefix)), None)
            if system is None:
                continue  # not an identity annotation: passed on as written
            own = next(
                (i for i in self.identities if i.annotation and key in (i.annotation, *i.other_annotations)), None
            )
            if own is None:
                accepted = ", ".join(f"{i.annotation} ({i.name})" for i in self.identities if i.annotation) or "none"
                problems.append(
                    (
                        f"{path}.{key}",
                        f"{system.name} does not exist on {self.name} (workload identities of {self.name}: {accepted})",
                    )
                )
            elif key == own.annotation and not re.fullmatch(own.value_pattern, value):
                problems.append((f"{path}.{key}", f"must be {own.name}'s value, e.g. {own.example} (got {value!r})"))
        return problems

    def identity(self, annotations: dict[str, str], pod_identity: bool = False) -> Identity | None:
        """The workload identity a ServiceAccount with these annotations (or, on EKS, an EKS Pod Identity
        association: ``pod_identity``) has here, if any."""
        if pod_identity:
            return next((i for i in self.identities if not i.annotation), None)
        return next((i for i in self.identities if i.annotation and i.annotation in annotations), None)

    def checklist(self, cfg: PlatformConfig) -> dict[str, list[str]]:
        """What this profile changes in the stack and what the user must have done on the cluster first, for the
        stack output ``platformProfile`` and plan.md."""
        rules = [rule for rule in self.rules if rule.applies(cfg)]
        prerequisites = [f"{rule.user} ({rule.source})" for rule in rules if rule.user]
        provider = cfg.cluster.network_policy
        if provider in self.network_policy_providers:
            prerequisites.insert(
                0, f"NetworkPolicies enforced by {provider}: {self.network_policy_providers[provider]}"
            )
        return {
            "changes": [f"{rule.program} ({rule.source})" for rule in rules if rule.program],
            "prerequisites": prerequisites,
        }


def unclassed_caches(cfg: PlatformConfig) -> bool:
    """Whether a model cache several replicas read has no storage class (``config.serving.unclassed_shared_caches``)."""
    from config.serving import unclassed_shared_caches  # config imports this package: import when asked

    return bool(unclassed_shared_caches(cfg))


def operator_driver(cfg: PlatformConfig) -> bool:
    """GPU pools whose driver the GPU Operator installs."""
    return bool(cfg.gpu.node_pools) and cfg.gpu.driver.enabled


def platform_driver(cfg: PlatformConfig) -> bool:
    """GPU pools whose node image (the platform) brings the driver."""
    return bool(cfg.gpu.node_pools) and not cfg.gpu.driver.enabled


def platform_driver_toolkit(cfg: PlatformConfig, platform: str, source: str) -> Problems:
    """Where the platform's GPU node image installs the driver it also installs the NVIDIA container toolkit and
    points the container runtime at it: the GPU Operator's toolkit must stay off (``gpu.toolkit``)."""
    if platform_driver(cfg) and cfg.gpu.toolkit:
        return [
            (
                "gpu.toolkit",
                f"with the driver of {platform}'s GPU node image (gpu.driver.enabled false) the image also ships the "
                "NVIDIA container toolkit and configures the runtime for it; the operator's toolkit would rewrite "
                f"that configuration: set gpu.toolkit: false ({source})",
            )
        ]
    return []


def annotated_accounts(cfg: PlatformConfig) -> list[tuple[str, dict[str, str]]]:
    """Every ``serviceAccountAnnotations`` field of the config, by config path."""
    fields = [("objectStore.serviceAccountAnnotations", cfg.object_store.service_account_annotations)]
    fields += [
        (f"tenants[{index}].objectStore.serviceAccountAnnotations", tenant.object_store.service_account_annotations)
        for index, tenant in enumerate(cfg.tenants)
        if tenant.object_store
    ]
    fields += [
        (f"models[{index}].serviceAccountAnnotations", endpoint.service_account_annotations)
        for index, endpoint in enumerate(cfg.models)
    ]
    return [(path, annotations) for path, annotations in fields if annotations]
