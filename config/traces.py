"""Traces (``ai-platform:traces``): Tempo, multi-tenant, its blocks in the platform's object store, and one
OpenTelemetry Collector that receives OTLP from the Istio proxies, vLLM and Triton and writes to Tempo with the sending
pod's tenant as the Tempo tenant (``components.traces``; docs/traces.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from .base import Model, PositiveInt, Problems
from .logs import PLATFORM_TENANT

if TYPE_CHECKING:
    from .model import PlatformConfig

# Tempo's block retention (compactor.compaction.block_retention): a Go duration in hours, days are not parsed.
Retention = Annotated[str, Field(pattern=r"^[1-9][0-9]*h$")]


class Traces(Model):
    """The trace pipeline: one Tempo tenant per platform tenant, ``platform`` for the platform's own namespaces."""

    enabled: bool = True
    """Install Tempo (``namespaces.traces``, blocks in the object store's ``objectStore.tempoBucket``), the
    OpenTelemetry Collector, the mesh's tracing provider and ``Telemetry``, the servers' OTLP export and, with
    monitoring, Grafana's Tempo datasource."""
    sampling_percent: float = Field(default=1.0, ge=0, le=100)
    """Percent of requests the Istio proxies start a trace for (``Telemetry`` ``randomSamplingPercentage``; a
    request that arrives with a sampled trace context stays sampled). Triton samples one request in
    ``round(100 / samplingPercent)``; vLLM keeps the decision of a request's trace context and samples requests
    without one at ``samplingPercent / 100`` (``parentbased_traceidratio``). At 0 neither server exports."""
    size: Literal["small", "large"] = "large"
    """Tempo's requests and limits: ``small`` (250m CPU, 512Mi, limit 2Gi: dev) or ``large`` (1 CPU, 2Gi, limit
    8Gi). One monolithic Tempo pod either way (docs/traces.md)."""
    collector_replicas: PositiveInt = 2
    """Pods of the OpenTelemetry Collector Deployment (stateless: each forwards what it receives)."""
    retention: Retention = "336h"
    """How long Tempo keeps trace blocks, every tenant alike (the compactor deletes older blocks): hours (``336h``:
    14 days)."""


def cross_checks(cfg: PlatformConfig) -> Problems:
    """The platform's Tempo tenant is not a tenant's name; the external store names Tempo's bucket."""
    if not cfg.traces.enabled:
        return []
    problems: Problems = [
        (
            f"tenants[{index}].name",
            f"{PLATFORM_TENANT!r} is the Tempo tenant of the platform's own traces (traces.enabled): choose another "
            "name",
        )
        for index, tenant in enumerate(cfg.tenants)
        if tenant.name == PLATFORM_TENANT and not cfg.logs.enabled  # logs.cross_checks says it once otherwise
    ]
    if cfg.object_store.mode == "external" and not cfg.object_store.tempo_bucket:
        problems.append(("objectStore.tempoBucket", "an external object store needs the bucket of Tempo's traces"))
    return problems
