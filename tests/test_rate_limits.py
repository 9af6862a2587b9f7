"""Per-consumer and per-endpoint rate limits at the gateway (issue 22, part 1; components/mesh/rate_limits.py).

The rendered configuration is evaluated as its two readers would: the gateway's Envoy builds descriptors from the
virtual host's ``rate_limits`` actions (envoyproxy/envoy source/common/router/router_ratelimit.cc: a ``generic_key``
always yields its entry; a ``metadata`` action yields the string at its path, and with no value and no default the
whole descriptor is skipped), and the rate-limit service looks each descriptor up in its configuration
(envoyproxy/ratelimit f2fb157 src/config/config_impl.go ``GetLimit``: per entry ``key_value``, else ``key`` alone;
the limit found at the last entry applies) and counts it in a fixed window per descriptor. Neither Envoy nor the
Go service runs here (no binary on PyPI, npm or Debian): ``Gateway`` below is that lookup and counting, written from
those sources, not the program's code."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from components.mesh import rate_limits
from config.loader import ConfigError
from tests.conftest import accept_loss, config_copy, run, run_stack, run_with, stack_cfg


def llm_host() -> str:
    """The host of prod's vLLM endpoint (tenant research), the one with a ceiling."""
    cfg = stack_cfg("prod")
    return cfg.endpoint_host(next(e for e in cfg.models if e.limits))


class Gateway:
    """One minute at the gateway: the EnvoyFilter's descriptors, the service's lookup and fixed-window counts."""

    def __init__(self, result):
        (envoy_filter,) = result.of_kind("EnvoyFilter")
        (config_map,) = [c for c in result.of_kind("ConfigMap") if c.k8s_name == rate_limits.CONFIG_MAP]
        self.spec = envoy_filter.inputs["spec"]
        self.config = yaml.safe_load(config_map.inputs["data"]["config.yaml"])
        self.counts: Counter = Counter()
        (http_filter,) = [p for p in self.spec["configPatches"] if p["applyTo"] == "HTTP_FILTER"]
        self.filter = http_filter["patch"]["value"]["typed_config"]

    def descriptors(self, host_header: str, payload: dict) -> list[tuple[tuple[str, str], ...]]:
        """What the gateway sends for a request: Istio gateways strip the port before matching a virtual host, whose
        name is ``<host>:443``."""
        host = host_header.rsplit(":", 1)[0] if ":" in host_header else host_header
        vhosts = [
            p["patch"]["value"]["rate_limits"]
            for p in self.spec["configPatches"]
            if p["applyTo"] == "VIRTUAL_HOST" and p["match"]["routeConfiguration"]["vhost"]["name"] == f"{host}:443"
        ]
        found = []
        for limits in vhosts:
            for entry in limits:
                descriptor = []
                for action in entry["actions"]:
                    if "generic_key" in action:
                        key = action["generic_key"]
                        descriptor.append((key["descriptor_key"], key["descriptor_value"]))
                    elif "metadata" in action:
                        meta = action["metadata"]
                        assert meta["metadata_key"]["key"] == rate_limits.JWT_METADATA
                        value: object = {"payload": payload}
                        for step in meta["metadata_key"]["path"]:
                            value = value.get(step["key"]) if isinstance(value, dict) else None
                        if not isinstance(value, str) or not value:
                            descriptor = []  # no value, no default: the descriptor is skipped
                            break
                        descriptor.append((meta["descriptor_key"], value))
                    else:
                        raise AssertionError(f"action the evaluator does not know: {action}")
                if descriptor:
                    found.append(tuple(descriptor))
        return found

    def limit(self, descriptor) -> int | None:
        """``GetLimit``: the requests per minute of a descriptor, or None (unlimited)."""
        assert self.config["domain"] == self.filter["domain"]
        level, found = self.config["descriptors"], None
        for index, (key, value) in enumerate(descriptor):
            node = next((d for d in level if d["key"] == key and d.get("value") == value), None)
            node = node or next((d for d in level if d["key"] == key and "value" not in d), None)
            if node is None:
                return None
            if "rate_limit" in node and index == len(descriptor) - 1:
                assert node["rate_limit"]["unit"] == "minute"
                found = node["rate_limit"]["requests_per_unit"]
            level = node.get("descriptors", [])
        return found

    def request(self, host_header: str, payload: dict) -> tuple[int, dict[str, str]]:
        """The status and added headers of one request in this minute."""
        over = False
        for descriptor in self.descriptors(host_header, payload):
            limit = self.limit(descriptor)
            if limit is not None:
                self.counts[descriptor] += 1
                over |= self.counts[descriptor] > limit
        if not over:
            return 200, {}
        headers = {h["header"]["key"]: h["header"]["value"] for h in self.filter["response_headers_to_add"]}
        return 429, headers


def token(sub: str | None) -> dict:
    return {"iss": "https://login.example.com/realms/ai", **({"sub": sub} if sub else {})}


def test_a_consumer_over_its_limit_gets_429_with_retry_after_and_another_does_not():
    gateway, host = Gateway(run_stack("prod")), llm_host()
    cfg = stack_cfg("prod")
    eval_batch = next(c for c in cfg.tenant("research").consumers if c.name == "eval-batch")
    answers = [gateway.request(host, token(eval_batch.claim_value)) for _ in range(eval_batch.requests_per_minute)]
    assert all(status == 200 for status, _ in answers)
    status, headers = gateway.request(host, token(eval_batch.claim_value))
    assert status == 429 and headers["retry-after"] == str(rate_limits.RETRY_AFTER_SECONDS)
    chat = next(c for c in cfg.tenant("research").consumers if c.name == "chat-app")
    assert [gateway.request(host, token(chat.claim_value))[0] for _ in range(10)] == [200] * 10


def test_the_endpoint_ceiling_counts_every_caller_undeclared_and_claimless_ones_too():
    gateway, host = Gateway(run_stack("prod")), llm_host()
    ceiling = next(e for e in stack_cfg("prod").models if e.name == "llama-70b").limits.requests_per_minute
    callers = [token(None), token("someone-undeclared"), token("svc-research-chat")]
    statuses = [gateway.request(host, callers[i % 3])[0] for i in range(ceiling)]
    assert statuses == [200] * ceiling
    assert gateway.request(host, token(None))[0] == 429
    assert gateway.descriptors(host, token(None)) == [(("endpoint", "research/llama-70b"),)]


def test_a_port_in_the_host_header_meets_the_same_limits():
    gateway, host = Gateway(run_stack("prod")), llm_host()
    for header in (f"{host}:443", f"{host}:8443"):
        assert gateway.descriptors(header, token("svc-research-eval")) == gateway.descriptors(
            host, token("svc-research-eval")
        )


def test_consumers_count_per_tenant_across_its_endpoints_and_not_on_other_tenants():
    result = run_stack("prod")
    gateway, cfg = Gateway(result), stack_cfg("prod")
    reranker = cfg.endpoint_host(next(e for e in cfg.models if e.name == "reranker"))  # product's
    # research's consumer on product's endpoint: product declares no such consumer, so nothing counts it there
    assert all(gateway.limit(d) is None for d in gateway.descriptors(reranker, token("svc-research-eval")))
    search = cfg.tenant("product").consumers[0]
    statuses = [gateway.request(reranker, token(search.claim_value))[0] for _ in range(search.requests_per_minute + 1)]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_limit_in_the_service_config_is_reachable_from_a_gateway_virtual_host(stack):
    """No dead configuration: each consumer and ceiling is looked up by some request to one of its endpoints."""
    result, cfg = run_stack(stack), stack_cfg(stack)
    if not cfg.rate_limits.active(cfg):
        assert not result.of_kind("EnvoyFilter")
        return
    gateway = Gateway(result)
    for endpoint in cfg.models:
        host = cfg.endpoint_host(endpoint)
        tenant = cfg.tenant(endpoint.tenant)
        for consumer in tenant.consumers:
            limits = [gateway.limit(d) for d in gateway.descriptors(host, token(consumer.claim_value))]
            assert consumer.requests_per_minute in limits, (host, consumer.name)
        if endpoint.limits:
            assert endpoint.limits.requests_per_minute in [gateway.limit(d) for d in gateway.descriptors(host, {})]


def test_the_filter_asks_the_service_the_gateway_reaches_and_fails_as_configured():
    result = run_stack("prod")
    gateway = Gateway(result)
    (service,) = [s for s in result.of_kind("Service") if s.k8s_name == rate_limits.NAME]
    cluster = gateway.filter["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"]
    grpc = next(p for p in service.inputs["spec"]["ports"] if p["name"] == "grpc")
    assert cluster == f"outbound|{grpc['port']}||{service.k8s_name}.{service.namespace}.svc.cluster.local"
    assert grpc["appProtocol"] == "grpc"  # Istio's cluster speaks HTTP/2 to it
    assert gateway.filter["failure_mode_deny"] is (not stack_cfg("prod").rate_limits.fail_open)
    (deployment,) = [d for d in result.of_kind("Deployment") if d.k8s_name == rate_limits.NAME]
    env = {e["name"]: e for e in deployment.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REDIS_URL"]["value"] == f"{rate_limits.STORE}:{rate_limits.STORE_PORT}"
    assert env["REDIS_AUTH"]["valueFrom"]["secretKeyRef"]["name"] == rate_limits.STORE
    assert env["USE_PROMETHEUS"]["value"] == "true" and env["USE_STATSD"]["value"] == "false"


def _registrations(result) -> dict[str, tuple]:
    return {r.urn: (r.inputs, r.parent, sorted(r.dependencies)) for r in result.resources}


def test_turning_rate_limits_off_gives_todays_routing_unchanged():
    off = run_with("prod", rateLimits={"enabled": False})
    config = accept_loss(config_copy("prod"))
    for tenant in config["ai-platform:tenants"]:
        tenant.pop("consumers", None)
    for endpoint in config["ai-platform:models"]:
        endpoint.pop("limits", None)
    undeclared = run("prod", config)
    assert off.error is None and undeclared.error is None
    assert not off.of_kind("EnvoyFilter")
    assert _registrations(off) == _registrations(undeclared)
    on = run_stack("prod")
    added = set(_registrations(on)) - set(_registrations(off))
    assert added and all("rate-limits" in urn for urn in added), sorted(added)
    assert set(_registrations(off)) <= set(_registrations(on))


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (lambda c: c["ai-platform:mesh"].pop("jwt"), "tenants[0].consumers", "set mesh.jwt"),
        (
            lambda c: c["ai-platform:tenants"][0]["consumers"].append(
                {"name": "other", "claimValue": "svc-research-chat", "requestsPerMinute": 1}
            ),
            "tenants[0].consumers[2].claimValue",
            "is already consumer 0 of tenant research",
        ),
        (
            lambda c: c["ai-platform:tenants"][0]["consumers"].append(
                {"name": "chat-app", "claimValue": "svc-x", "requestsPerMinute": 1}
            ),
            "tenants[0].consumers[2].name",
            "is already consumer 0",
        ),
        (
            lambda c: c["ai-platform:tenants"][0]["consumers"].extend(
                [
                    {"name": "a1", "claimValue": "app.one", "requestsPerMinute": 1},
                    {"name": "a2", "claimValue": "app.two", "requestsPerMinute": 1},
                ]
            ),
            "tenants[0].consumers[3].claimValue",
            "are alike up to the first '.'",
        ),
    ],
)
def test_bad_limits_are_refused_before_anything_is_registered(edit, path, message):
    config = config_copy("prod")
    edit(config)
    result = run("prod", config)
    assert isinstance(result.error, ConfigError)
    assert f"stack prod: ai-platform:{path}" in str(result.error) and message in str(result.error)
    assert not result.registered_beyond_stack
