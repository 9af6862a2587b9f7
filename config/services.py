"""The platform's shared services as records: one ``Service`` per service, everything that lists services derived.

A service is what ``dataProtection.decommission`` may name and the strict removal check keeps: one ``ai-platform:<key>``
section of the stack, the components that implement it, the config path that switches it off. From ``SERVICES``
come: the names ``decommission`` accepts (``protected_services``), the services a stack has
(``PlatformConfig.data_owners``), how ``config.removals`` recognises them in a URN snapshot, which services keep their
data in the object store, which tenants may call (and on which port), which need the CloudNativePG operator, and
the stack output ``services``. Adding a service is one record here plus its component. A name the registry lacks
fails loudly (``service``).

Config only: no component is imported here (components import this module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic.alias_generators import to_snake

if TYPE_CHECKING:
    from .model import PlatformConfig

# The shared CloudNativePG operator (``components.postgres``): a component of every service that needs it.
POSTGRES_OPERATOR = "ai-platform:postgres:CloudNativePg"


@dataclass(frozen=True)
class Service:
    """One shared service of the platform."""

    key: str
    """Its section ``ai-platform:<key>`` and the name ``dataProtection.decommission`` gives it."""
    components: tuple[str, ...]
    """Pulumi type tokens of what implements it, as in a URN's type chain (``$``-joined for a part of a component):
    every resource under one of them belongs to the service."""
    switch: str
    """The config path that switches it off (what the removal check names)."""
    present: Callable[[PlatformConfig], bool] | None = None
    """Whether a stack has it; unset: the boolean at ``switch``."""
    object_store_callers: Literal["service", "tenants"] | None = None
    """Keeps data in the platform's object store (the in-cluster store exists only for such services), which its own
    pods call (``service``: from its namespace) or tenant pods (``tenants``: in their namespaces)."""
    tenant_port: int | None = None
    """The port of its serving pods that tenants may call (its namespace admits them there and nowhere else)."""
    tenants_call: Callable[[PlatformConfig], bool] | None = None
    """With a ``tenant_port``: whether tenants call it in this stack; unset: whenever it is there."""
    needs_postgres: Callable[[PlatformConfig], bool] | None = None
    """Whether (when present) it runs a Postgres on the shared CloudNativePG operator."""
    exports_url: bool = False
    """The stack output ``services`` gives its in-cluster URL (``services.<key>``)."""

    @property
    def attribute(self) -> str:
        """Its attribute on ``PlatformConfig``, ``Namespaces`` and ``AiPlatform`` (``object_store``)."""
        return to_snake(self.key)

    @property
    def port(self) -> int:
        """``tenant_port``, for the component that serves on it; a service without one is an error."""
        if self.tenant_port is None:
            raise ValueError(f"service {self.key!r} has no tenant_port")
        return self.tenant_port

    def on(self, cfg: PlatformConfig) -> bool:
        """Whether the stack has it."""
        if self.present is not None:
            return self.present(cfg)
        value: object = cfg
        for part in self.switch.split("."):
            value = getattr(value, to_snake(part))
        return bool(value)

    def called_by_tenants(self, cfg: PlatformConfig) -> bool:
        """Whether tenants call it in this stack (it is there and has a tenant port)."""
        return self.tenant_port is not None and self.on(cfg) and (self.tenants_call is None or self.tenants_call(cfg))

    def runs_postgres(self, cfg: PlatformConfig) -> bool:
        """Whether it is there and runs a Postgres on the CloudNativePG operator."""
        return self.needs_postgres is not None and self.on(cfg) and self.needs_postgres(cfg)


def store_users(cfg: PlatformConfig, callers: str | None = None) -> tuple[str, ...]:
    """The services of the stack that keep data in the object store (only those whose ``callers`` call it)."""
    return tuple(
        s.key
        for s in SERVICES.values()
        if s.object_store_callers and callers in (None, s.object_store_callers) and s.on(cfg)
    )


# In the order tenants' egress policies list the services they may call.
SERVICES: dict[str, Service] = {
    s.key: s
    for s in (
        Service(
            "mlflow",
            ("ai-platform:mlflow:Mlflow", POSTGRES_OPERATOR),
            "mlflow.enabled",
            object_store_callers="service",
            tenant_port=5000,
            needs_postgres=lambda cfg: cfg.mlflow.database.mode == "in-cluster",
            exports_url=True,
        ),
        Service(
            "milvus",
            ("ai-platform:milvus:Milvus",),
            "milvus.enabled",
            object_store_callers="service",
            tenant_port=19530,
            exports_url=True,
        ),
        Service(
            "objectStore",
            ("ai-platform:objectstore:ObjectStore",),
            "objectStore.mode",
            present=lambda cfg: cfg.object_store.mode == "in-cluster" and bool(store_users(cfg)),
            tenant_port=8333,
            tenants_call=lambda cfg: bool(store_users(cfg, "tenants")),
        ),
        Service("monitoring", ("ai-platform:monitoring:Monitoring",), "monitoring.enabled"),
        # Only the GPU Operator's release: the component stays without it (node labels and taints).
        Service("gpu", ("ai-platform:gpu:GpuOperator$kubernetes:helm.sh/v3:Release",), "gpu.enabled"),
        Service("volcano", ("ai-platform:batch:Volcano",), "volcano.enabled"),
        Service(
            "serving",
            ("ai-platform:serving:KServe", "ai-platform:certs:CertManager", "ai-platform:autoscaling:Keda"),
            "serving.enabled",
        ),
        Service("mesh", ("ai-platform:mesh:Mesh",), "mesh.enabled"),
        Service("training", ("ai-platform:training:Training",), "training.enabled"),
        Service("workflows", ("ai-platform:workflows:Workflows",), "workflows.enabled", object_store_callers="tenants"),
        Service("ray", ("ai-platform:ray:Ray",), "ray.enabled"),
        Service(
            "secrets",
            ("ai-platform:secrets:ExternalSecrets",),
            "secrets.source",
            present=lambda cfg: cfg.secrets.source == "external-secrets",
        ),
        # Its CRDs (VerticalPodAutoscaler, the recommender's checkpoints): removing it drops every VPA.
        Service("vpa", ("ai-platform:vpa:VerticalPodAutoscaler",), "vpa.enabled"),
        # Loki's chunks, index and rules live in the object store (its own bucket); no tenant calls it.
        Service("logs", ("ai-platform:logs:Logs",), "logs.enabled", object_store_callers="service"),
        # Tempo's blocks live in the object store (its own bucket); tenants call the collector, never Tempo.
        Service("traces", ("ai-platform:traces:Traces",), "traces.enabled", object_store_callers="service"),
    )
}


def service(key: str) -> Service:
    """The record of ``key``; a name the registry lacks is an error that lists the known ones."""
    if key not in SERVICES:
        raise KeyError(f"no shared service {key!r} in config.services.SERVICES (known: {', '.join(SERVICES)})")
    return SERVICES[key]


def protected_services() -> tuple[str, ...]:
    """What ``dataProtection.decommission`` may name besides ``tenant:<name>``: every service (its removal loses data,
    volumes or a database, or CRDs: uninstalling the release that installed them deletes every object of their
    kinds)."""
    return tuple(SERVICES)
