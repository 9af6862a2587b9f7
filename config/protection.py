"""Data protection (``ai-platform:dataProtection``): what the stack protects against a rename, an upgrade or a
removal, and which services and tenants it accepts to lose."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from .base import Model, Problems, valid
from .services import protected_services

if TYPE_CHECKING:
    from .model import PlatformConfig

# A tenant as an owner of data (``dataProtection.decommission``, ``protects``).
TENANT_OWNER = re.compile(r"tenant:[a-z0-9-]+")


class DataProtection(Model):
    """Protection of what holds data (tenant namespaces, the object store, Postgres, Milvus, Prometheus,
    Alertmanager, Grafana) and of the releases that installed CRDs, against a rename, an upgrade or a removal."""

    mode: Literal["strict", "relaxed"] = "strict"
    """``strict``: those resources are ``protect``ed (Pulumi refuses to delete or replace them) and retained in the
    cluster if ever deleted, and a stack that drops a service or tenant it had (per the stack's snapshot in
    ``state/``) is refused; ``relaxed`` (not for production): none of that."""
    decommission: list[str] = []
    """Services (``config.services.SERVICES``: ``mlflow``, ``milvus``, ``objectStore``, ``monitoring``, ``gpu``,
    ``volcano``, ``serving``, ``mesh``, ``training``, ``workflows``, ``ray``, ``secrets``, ``vpa``) or tenants
    (``tenant:<name>``) you accept to lose: their resources lose protection, and the strict removal check lets them
    leave the stack."""

    @model_validator(mode="after")
    def _known_owners(self) -> DataProtection:
        allowed = ", ".join(f"{name!r}" for name in protected_services()) + " or 'tenant:<name>'"
        problems = [
            (f"decommission[{index}]", f"not an allowed value (allowed: {allowed}, got: {owner!r})")
            for index, owner in enumerate(self.decommission)
            if owner not in protected_services() and not TENANT_OWNER.fullmatch(owner)
        ]
        return valid(self, problems)


def cross_checks(cfg: PlatformConfig) -> Problems:
    """A production stack keeps strict protection."""
    if cfg.data_protection.mode == "relaxed" and cfg.cluster.environment == "production":
        return [
            (
                "dataProtection.mode",
                "relaxed protection is not allowed for a production stack (cluster.environment production)",
            )
        ]
    return []
