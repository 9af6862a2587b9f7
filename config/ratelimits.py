"""Per-consumer rate limits at the ingress gateway (``ai-platform:rateLimits``, ``tenants[].consumers``,
``models[].limits``): who a consumer is (a value of the JWT claim ``mesh.jwt.consumerClaim``), how many requests a
minute each may send to its tenant's endpoints, and each endpoint's ceiling over all callers. Enforced by Envoy's
global rate-limit service (``components.mesh.rate_limits``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, model_validator

from .base import ConfigProblems, DnsLabel, Model, PositiveInt, Problems

if TYPE_CHECKING:
    from .model import PlatformConfig
    from .serving import Endpoint


class Consumer(Model):
    """A caller of the tenant's endpoints, known by the JWT claim ``mesh.jwt.consumerClaim`` (``sub`` by default)."""

    name: DnsLabel
    """Name in metrics and alerts (``consumer`` label)."""
    claim_value: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[^\s]+$")]
    """The claim's value in this consumer's tokens (a string claim: the subject, a client id)."""
    requests_per_minute: PositiveInt | None = None
    """Requests a minute to all the tenant's endpoints together; over it: 429 with ``Retry-After``."""
    tokens_per_minute: PositiveInt | None = None
    """Tokens a minute (prompt + completion: each response's ``usage.total_tokens``) from the tenant's endpoints that
    report usage (vLLM) together. A response is charged when it ends; once the minute's tokens are spent, requests
    get 429 with ``Retry-After`` until the next minute (a response already streaming is never cut off)."""

    @model_validator(mode="after")
    def _some_limit(self) -> Consumer:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ConfigProblems([("requestsPerMinute", "a consumer needs requestsPerMinute, tokensPerMinute or both")])
        return self


class ConsumerLimit(Model):
    """One of the tenant's consumers on this endpoint alone, besides its limits over all the tenant's endpoints."""

    consumer: DnsLabel
    """The name of a consumer the endpoint's tenant declares (``tenants[].consumers[].name``)."""
    requests_per_minute: PositiveInt | None = None
    """Its requests a minute to this endpoint."""
    tokens_per_minute: PositiveInt | None = None
    """Its tokens a minute from this endpoint (engines that report usage: vLLM)."""

    @model_validator(mode="after")
    def _some_limit(self) -> ConsumerLimit:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ConfigProblems(
                [("requestsPerMinute", "a consumer's limit needs requestsPerMinute, tokensPerMinute or both")]
            )
        return self


class EndpointLimits(Model):
    """An endpoint's ceilings, whoever calls it, and its limits for some of the tenant's consumers."""

    requests_per_minute: PositiveInt | None = None
    """Requests a minute to this endpoint from all callers together (declared consumers or not)."""
    tokens_per_minute: PositiveInt | None = None
    """Tokens a minute (``usage.total_tokens`` of its responses) from all callers together; engines that report usage
    (vLLM) only."""
    consumers: list[ConsumerLimit] = []
    """Limits of named consumers on this endpoint alone (e.g. a batch consumer kept off the most expensive model)."""

    @model_validator(mode="after")
    def _some_limit(self) -> EndpointLimits:
        if self.requests_per_minute is None and self.tokens_per_minute is None and not self.consumers:
            raise ConfigProblems(
                [("requestsPerMinute", "limits need requestsPerMinute, tokensPerMinute, consumers or some of them")]
            )
        return self

    def tokens(self) -> bool:
        """Whether any of its limits counts tokens."""
        return bool(self.tokens_per_minute) or any(c.tokens_per_minute for c in self.consumers)


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

    def meters_tokens(self, cfg: PlatformConfig, endpoint: Endpoint) -> bool:
        """Whether the gateway charges the endpoint's responses' tokens (its ceiling, or its tenant's consumers'
        budgets); the server must then report usage in every response (``ServerEngine.token_usage_args``)."""
        from components.serving import engines  # at call time: config.serving imports the engines

        if not (self.active(cfg) and engines.get(endpoint.engine).reports_token_usage):
            return False
        budgets = any(c.tokens_per_minute for c in cfg.tenant(endpoint.tenant).consumers)
        return budgets or bool(endpoint.limits and endpoint.limits.tokens())


def _consumer_references(cfg: PlatformConfig) -> Problems:
    """Each ``models[].limits.consumers`` entry names a consumer its endpoint's tenant declares, once."""
    problems: Problems = []
    for index, endpoint in enumerate(cfg.models):
        if endpoint.limits is None or endpoint.tenant not in cfg.tenants_by_name:
            continue
        declared = [c.name for c in cfg.tenant(endpoint.tenant).consumers]
        limited: set[str] = set()
        for position, limit in enumerate(endpoint.limits.consumers):
            at = f"models[{index}].limits.consumers[{position}].consumer"
            if limit.consumer not in declared:
                known = ", ".join(declared) or "none"
                problems.append(
                    (at, f"tenant {endpoint.tenant} declares no consumer {limit.consumer!r} (its consumers: {known})")
                )
            if limit.consumer in limited:
                problems.append((at, f"{limit.consumer!r} is limited twice on this endpoint"))
            limited.add(limit.consumer)
    return problems


def cross_checks(cfg: PlatformConfig) -> Problems:
    """Consumers need the gateway's JWT (their identity is a claim); limits need the mesh; a claim value names one
    consumer of a tenant, and a consumer name is used once per tenant."""
    problems = _consumer_references(cfg)  # also with rateLimits off: the declarations stay in the stack file
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
    from components.serving import engines

    metered = {e.tenant for e in cfg.models if engines.get(e.engine).reports_token_usage}
    reporting = ", ".join(engine.name for engine in engines.all_engines() if engine.reports_token_usage)
    for index, tenant in enumerate(cfg.tenants):
        for position, consumer in enumerate(tenant.consumers):
            if consumer.tokens_per_minute and tenant.name not in metered:
                problems.append(
                    (
                        f"tenants[{index}].consumers[{position}].tokensPerMinute",
                        f"tenant {tenant.name} has no endpoint that reports token usage ({reporting}): nothing to "
                        "charge",
                    )
                )
    for index, endpoint in enumerate(cfg.models):
        limits = endpoint.limits
        if limits is None:
            continue
        charged = engines.get(endpoint.engine).reports_token_usage
        no_usage = f"{endpoint.engine} responses carry no token usage the gateway can charge: {reporting} only"
        if limits.tokens_per_minute and not charged:
            problems.append((f"models[{index}].limits.tokensPerMinute", no_usage))
        for position, limit in enumerate(limits.consumers):
            if limit.tokens_per_minute and not charged:
                problems.append((f"models[{index}].limits.consumers[{position}].tokensPerMinute", no_usage))
        if endpoint.limits and not cfg.mesh.enabled:
            problems.append(
                (
                    f"models[{index}].limits",
                    "limits are enforced at the ingress gateway: mesh.enabled, or rateLimits.enabled: false",
                )
            )
    return problems
