"""Per-consumer rate limits at the ingress gateway (``ai-platform:rateLimits``, ``tenants[].consumers``,
``models[].limits``): who a consumer is (a value of the JWT claim ``mesh.jwt.consumerClaim``), how many requests a
minute each may send to its tenant's endpoints, and each endpoint's ceiling over all callers. Enforced by Envoy's
global rate-limit service (``components.mesh.rate_limits``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from .base import DnsLabel, Model, PositiveInt, Problems

if TYPE_CHECKING:
    from .model import PlatformConfig


class Consumer(Model):
    """A caller of the tenant's endpoints, known by the JWT claim ``mesh.jwt.consumerClaim`` (``sub`` by default)."""

    name: DnsLabel
    """Name in metrics and alerts (``consumer`` label)."""
    claim_value: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[^\s]+$")]
    """The claim's value in this consumer's tokens (a string claim: the subject, a client id)."""
    requests_per_minute: PositiveInt
    """Requests a minute to all the tenant's endpoints together; over it: 429 with ``Retry-After``."""


class EndpointLimits(Model):
    """An endpoint's ceiling, whoever calls it."""

    requests_per_minute: PositiveInt
    """Requests a minute to this endpoint from all callers together (declared consumers or not)."""


class RateLimits(Model):
    """Envoy's global rate-limit service behind the ingress gateway, with a Valkey store for its counters."""

    enabled: bool = True
    """Enforce ``tenants[].consumers`` and ``models[].limits`` (with neither declared nothing is installed). Off: the
    gateway routes as without limits; the declarations stay in the stack file."""
    fail_open: bool = True
    """When the rate-limit service cannot answer (down, timeout), let requests through (``failure_mode_deny:
    false``) rather than answer 500; the ``AiPlatformRateLimitServiceDown`` alert says so either way."""
    replicas: Annotated[int, Field(ge=1, le=10, strict=True)] = 2
    """Replicas of the rate-limit service (stateless: the counters are in the store)."""
    timeout: Annotated[str, Field(pattern=r"^\d+ms$")] = "100ms"
    """How long the gateway waits for the service's answer per request (then ``failOpen`` decides)."""

    def active(self, cfg: PlatformConfig) -> bool:
        """Whether the stack enforces anything."""
        declared = any(t.consumers for t in cfg.tenants) or any(e.limits for e in cfg.models)
        return self.enabled and declared


def cross_checks(cfg: PlatformConfig) -> Problems:
    """Consumers need the gateway's JWT (their identity is a claim); limits need the mesh; a claim value names one
    consumer of a tenant, and a consumer name is used once per tenant."""
    problems: Problems = []
    if not cfg.rate_limits.active(cfg):
        return problems
    for index, tenant in enumerate(cfg.tenants):
        if tenant.consumers and not (cfg.mesh.enabled and cfg.mesh.jwt):
            problems.append(
                (
                    f"tenants[{index}].consumers",
                    "consumers are known by a JWT claim: set mesh.jwt (and mesh.enabled), or rateLimits.enabled: false",
                )
            )
        # The service's metrics name a consumer by its claim value up to the first dot (the statsd name's separator,
        # envoyproxy/ratelimit src/stats/prom/default_mapper.yaml): two values alike up to there would share series.
        prefixes: dict[str, int] = {}
        for position, consumer in enumerate(tenant.consumers):
            prefix = consumer.claim_value.split(".", 1)[0]
            if prefix in prefixes and tenant.consumers[prefixes[prefix]].claim_value != consumer.claim_value:
                problems.append(
                    (
                        f"tenants[{index}].consumers[{position}].claimValue",
                        f"{consumer.claim_value!r} and consumer {prefixes[prefix]}'s "
                        f"{tenant.consumers[prefixes[prefix]].claim_value!r} are alike up to the first '.', which the "
                        "rate-limit service's metrics keep: use values that differ before it",
                    )
                )
            prefixes.setdefault(prefix, position)
        for field in ("name", "claim_value"):
            seen: dict[str, int] = {}
            for position, consumer in enumerate(tenant.consumers):
                value = getattr(consumer, field)
                if value in seen:
                    key = "claimValue" if field == "claim_value" else field
                    problems.append(
                        (
                            f"tenants[{index}].consumers[{position}].{key}",
                            f"{value!r} is already consumer {seen[value]} of tenant {tenant.name}",
                        )
                    )
                seen.setdefault(value, position)
    for index, endpoint in enumerate(cfg.models):
        if endpoint.limits and not cfg.mesh.enabled:
            problems.append(
                (
                    f"models[{index}].limits",
                    "limits are enforced at the ingress gateway: mesh.enabled, or rateLimits.enabled: false",
                )
            )
    return problems
