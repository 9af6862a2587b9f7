"""Managed Kubernetes profiles: one module per platform (``cluster.platform``) owning its rules, each citing its
source. ``of(name)`` is the profile components ask; ``cross_checks`` refuses a config that cannot work on its
platform, before anything is registered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import aks, eks, generic, gke
from .base import Profile, Rule
from .identities import Identity

if TYPE_CHECKING:
    from config.base import Problems
    from config.model import PlatformConfig

PROFILES: dict[str, Profile] = {p.name: p for p in (generic.PROFILE, gke.PROFILE, eks.PROFILE, aks.PROFILE)}

# Every value ``cluster.networkPolicy`` may take on some platform (each profile allows its own).
NETWORK_POLICY_PROVIDERS = sorted({value for p in PROFILES.values() for value in p.network_policy_providers})


def of(name: str) -> Profile:
    return PROFILES[name]


def cross_checks(cfg: PlatformConfig) -> Problems:
    """What the stack's platform refuses."""
    return of(cfg.cluster.platform).problems(cfg)


__all__ = ["NETWORK_POLICY_PROVIDERS", "PROFILES", "Identity", "Profile", "Rule", "cross_checks", "of"]
