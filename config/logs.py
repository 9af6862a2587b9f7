"""Container logs (``ai-platform:logs``): Loki, multi-tenant, its chunks and index in the platform's object store, and
one node agent (Grafana Alloy) that ships every container's logs to it with the pod's tenant as the Loki tenant
(``components.logs``; docs/logs.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from .base import Model, PositiveInt, Problems

if TYPE_CHECKING:
    from .model import PlatformConfig

# The Loki tenant (X-Scope-OrgID) of every namespace that is not a tenant's: the platform's own logs.
PLATFORM_TENANT = "platform"

# Loki's retention (limits_config.retention_period) applies per index table, one a day: whole days or weeks.
Retention = Annotated[str, Field(pattern=r"^[1-9][0-9]*(d|w)$")]


class Logs(Model):
    """Loki and the log agent: every container's logs, one Loki tenant per platform tenant, ``platform`` for the
    platform's own namespaces."""

    enabled: bool = True
    """Install Loki (``namespaces.logs``, chunks in the object store's ``objectStore.lokiBucket``), the Alloy agent
    on every node and, with monitoring, Grafana's Loki datasource."""
    mode: Literal["single-binary", "scalable"] = "scalable"
    """``single-binary``: one Loki pod with every target (dev, a few tens of GB a day); ``scalable``: the chart's
    SimpleScalable mode, separate ``write``, ``read`` and ``backend`` StatefulSets/Deployments (``replicas`` each)."""
    replicas: PositiveInt = 3
    """``scalable``: pods of each of write, read and backend (write replicates every stream to 3 ingesters: at
    least 3 keep writes going through one pod's loss). Ignored by ``single-binary`` (one pod)."""
    retention: Retention = "30d"
    """How long Loki keeps logs, every tenant alike (the compactor deletes older chunks from the bucket): whole days
    (``30d``) or weeks (``4w``)."""


def cross_checks(cfg: PlatformConfig) -> Problems:
    """The platform's Loki tenant is not a tenant's name; the external store names Loki's bucket."""
    if not cfg.logs.enabled:
        return []
    problems: Problems = [
        (
            f"tenants[{index}].name",
            f"{PLATFORM_TENANT!r} is the Loki tenant of the platform's own logs (logs.enabled): choose another name",
        )
        for index, tenant in enumerate(cfg.tenants)
        if tenant.name == PLATFORM_TENANT
    ]
    if cfg.object_store.mode == "external" and not cfg.object_store.loki_bucket:
        problems.append(("objectStore.lokiBucket", "an external object store needs the bucket of Loki's logs"))
    return problems
