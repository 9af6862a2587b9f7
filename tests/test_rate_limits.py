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

import json
import re
from collections import Counter

import pytest
import yaml

from components.mesh import rate_limits
from tests.conftest import accept_loss, assert_refused, config_copy, run, run_stack, run_with, stack_cfg


def llm_host() -> str:
    """The host of prod's vLLM endpoint (tenant research), the one with a ceiling."""
    cfg = stack_cfg("prod")
    return cfg.endpoint_host(next(e for e in cfg.models if e.limits))


# Envoy's Lua stream handle as its docs define it (envoyproxy/envoy docs/root/configuration/http/http_filters/
# lua_filter.rst: ``headers():get``, ``bodyChunks()`` yielding buffers with ``length()`` and ``getBytes(index, length)``,
# ``streamInfo():dynamicMetadata():get(filterName)`` returning that filter's table and ``set(filterName, key, value)``),
# for running the gateway's usage script as written in LuaJIT, Envoy's Lua runtime. Only the handle is written here.
LUA_HANDLE = """
function make_handle(headers, chunks, metadata)
  local info = {}
  function info:dynamicMetadata()
    local dm = {}
    function dm:get(name) return metadata[name] end
    function dm:set(name, key, value)
      metadata[name] = metadata[name] or {}
      metadata[name][key] = value
    end
    return dm
  end
  local handle = {}
  function handle:headers()
    local h = {}
    function h:get(key) return headers[key] end
    return h
  end
  function handle:streamInfo() return info end
  function handle:bodyChunks()
    local i = 0
    return function()
      i = i + 1
      local data = chunks[i]
      if data == nil then return nil end
      local buffer = {}
      function buffer:length() return #data end
      function buffer:getBytes(index, length)
        assert(index + length <= #data, "getBytes past the buffer")
        return string.sub(data, index + 1, index + length)
      end
      return buffer
    end
  end
  return handle
end
"""


class UsageFilter:
    """The EnvoyFilter's usage script in LuaJIT (lupa), called as the gateway calls it for one request."""

    def __init__(self, code: str):
        from lupa.luajit21 import LuaRuntime

        self.lua = LuaRuntime()
        self.lua.execute(code)
        self.lua.execute(LUA_HANDLE)

    def metadata(self, authority: str, chunks: list[str]) -> dict:
        """The dynamic metadata after the request and its response (``chunks``: the body as it arrives)."""
        table = self.lua.table
        metadata = table()
        self.lua.globals().envoy_on_request(
            self.lua.globals().make_handle(table(**{":authority": authority}), table(), metadata)
        )
        self.lua.globals().envoy_on_response(self.lua.globals().make_handle(table(), table(*chunks), metadata))
        return {name: dict(values.items()) for name, values in metadata.items()}


class Gateway:
    """One minute at the gateway: the EnvoyFilter's descriptors, the usage script, the service's lookup and fixed-window
    counts (with each descriptor's hits_addend: envoyproxy/ratelimit src/utils/utilities.go ``GetHitsAddends``, a
    per-descriptor value as given, 0 included, else 1; src/limiter/base_limiter.go: over the limit when the count after
    adding exceeds it)."""

    def __init__(self, result):
        (envoy_filter,) = result.of_kind("EnvoyFilter")
        (config_map,) = [c for c in result.of_kind("ConfigMap") if c.k8s_name == rate_limits.CONFIG_MAP]
        self.spec = envoy_filter.inputs["spec"]
        self.config = yaml.safe_load(config_map.inputs["data"]["config.yaml"])
        self.counts: Counter = Counter()
        filters = {
            p["patch"]["value"]["name"]: p["patch"]["value"]["typed_config"]
            for p in self.spec["configPatches"]
            if p["applyTo"] == "HTTP_FILTER"
        }
        self.filter = filters[rate_limits.RATELIMIT_FILTER]
        usage = filters.get(rate_limits.USAGE_FILTER)
        self.usage = UsageFilter(usage["default_source_code"]["inline_string"]) if usage else None

    def entries(self, host_header: str) -> list[dict]:
        """The ratelimit filter's ``rate_limits`` for a request: Istio gateways strip the port before matching a virtual
        host, whose name is ``<host>:443``; the virtual host's ``RateLimitPerRoute`` (its domain: the service's)."""
        host = host_header.rsplit(":", 1)[0] if ":" in host_header else host_header
        found = []
        for patch in self.spec["configPatches"]:
            if (
                patch["applyTo"] == "VIRTUAL_HOST"
                and patch["match"]["routeConfiguration"]["vhost"]["name"] == f"{host}:443"
            ):
                per_route = patch["patch"]["value"]["typed_per_filter_config"][rate_limits.RATELIMIT_FILTER]
                assert per_route["domain"] == self.config["domain"] == self.filter["domain"]
                found += per_route["rate_limits"]
        return found

    def descriptors(
        self, host_header: str, payload: dict, on_stream_done: bool = False, metadata: dict | None = None
    ) -> list[tuple[tuple[tuple[str, str], ...], int | None]]:
        """(descriptor, its hits_addend or None) the filter sends on the request or when the stream is done
        (envoyproxy/envoy source/common/router/router_ratelimit.cc: a ``generic_key`` always yields its entry; a
        ``metadata`` action the string at its path, and with no value and no default the descriptor is skipped; a
        ``hits_addend.format`` that yields no number skips the descriptor too)."""
        found = []
        for entry in self.entries(host_header):
            if entry.get("apply_on_stream_done", False) != on_stream_done:
                continue
            descriptor = []
            for action in entry["actions"]:
                if "generic_key" in action:
                    key = action["generic_key"]
                    descriptor.append((key["descriptor_key"], key["descriptor_value"]))
                elif "metadata" in action:
                    meta = action["metadata"]
                    assert meta["metadata_key"]["key"] == rate_limits.JWT_METADATA and meta["source"] == "DYNAMIC"
                    value: object = {"payload": payload}
                    for step in meta["metadata_key"]["path"]:
                        value = value.get(step["key"]) if isinstance(value, dict) else None
                    if not isinstance(value, str) or not value:
                        descriptor = []  # no value, no default: the descriptor is skipped
                        break
                    descriptor.append((meta["descriptor_key"], value))
                else:
                    raise AssertionError(f"action the evaluator does not know: {action}")
            addend = entry.get("hits_addend")
            amount: int | None = None
            if addend is not None and "number" in addend:
                amount = int(addend["number"])
            elif addend is not None:
                match = re.fullmatch(r"%DYNAMIC_METADATA\(([^:]+):([^)]+)\)%", addend["format"])
                assert match, addend
                value = (metadata or {}).get(match[1], {}).get(match[2])
                if not isinstance(value, (int, float)) or value < 0:
                    continue  # no number: the descriptor is ignored
                amount = int(value)
            if descriptor:
                found.append((tuple(descriptor), amount))
        return found

    def limit(self, descriptor) -> int | None:
        """``GetLimit``: the per-minute amount of a descriptor, or None (unlimited)."""
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

    def _count(self, descriptors) -> bool:
        """Add each descriptor's hits; whether any is now over its limit."""
        over = False
        for descriptor, amount in descriptors:
            limit = self.limit(descriptor)
            if limit is not None:
                self.counts[descriptor] += 1 if amount is None else amount
                over |= self.counts[descriptor] > limit
        return over

    def request(self, host_header: str, payload: dict, body: list[str] | None = None) -> tuple[int, dict[str, str]]:
        """The status and added headers of one request in this minute; ``body``: the response's chunks, read by the
        usage script and charged when the stream is done (a refused request has no response to charge)."""
        if self._count(self.descriptors(host_header, payload)):
            headers = {h["header"]["key"]: h["header"]["value"] for h in self.filter["response_headers_to_add"]}
            return 429, headers
        metadata = self.usage.metadata(host_header, body or []) if self.usage else {}
        self._count(self.descriptors(host_header, payload, on_stream_done=True, metadata=metadata))
        return 200, {}


def token(sub: str | None) -> dict:
    return {"iss": "https://login.example.com/realms/ai", **({"sub": sub} if sub else {})}


def research_consumers():
    """prod's research consumers: one with a request limit (A), one without (B)."""
    consumers = stack_cfg("prod").tenant("research").consumers
    limited = next(c for c in consumers if c.requests_per_minute)
    return limited, next(c for c in consumers if c is not limited)


def test_a_consumer_over_its_limit_gets_429_with_retry_after_and_another_does_not():
    gateway, host = Gateway(run_stack("prod")), llm_host()
    a, b = research_consumers()
    answers = [gateway.request(host, token(a.claim_value)) for _ in range(a.requests_per_minute)]
    assert all(status == 200 for status, _ in answers)
    status, headers = gateway.request(host, token(a.claim_value))
    assert status == 429 and headers["retry-after"] == str(rate_limits.RETRY_AFTER_SECONDS)
    assert [gateway.request(host, token(b.claim_value))[0] for _ in range(10)] == [200] * 10


def test_the_endpoint_ceiling_counts_every_caller_undeclared_and_claimless_ones_too():
    gateway, host = Gateway(run_stack("prod")), llm_host()
    ceiling = next(e for e in stack_cfg("prod").models if e.name == "llama-70b").limits.requests_per_minute
    callers = [token(None), token("someone-undeclared"), token("svc-research-chat")]
    statuses = [gateway.request(host, callers[i % 3])[0] for i in range(ceiling)]
    assert statuses == [200] * ceiling
    assert gateway.request(host, token(None))[0] == 429
    assert gateway.descriptors(host, token(None)) == [
        ((("endpoint", "research/llama-70b"),), None),
        ((("endpoint-tokens", "research/llama-70b"),), 0),  # the token ceiling's check adds nothing
    ]


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
    assert all(gateway.limit(d) is None for d, _ in gateway.descriptors(reranker, token("svc-research-eval")))
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
        metered = cfg.rate_limits.meters_tokens(cfg, endpoint)
        for consumer in tenant.consumers:
            limits = [gateway.limit(d) for d, _ in gateway.descriptors(host, token(consumer.claim_value))]
            if consumer.requests_per_minute:
                assert consumer.requests_per_minute in limits, (host, consumer.name)
            if consumer.tokens_per_minute and metered:
                assert consumer.tokens_per_minute in limits, (host, consumer.name)
        if endpoint.limits:
            limits = [gateway.limit(d) for d, _ in gateway.descriptors(host, {})]
            for amount in (endpoint.limits.requests_per_minute, endpoint.limits.tokens_per_minute):
                assert amount is None or amount in limits, (host, amount)
            for limit in endpoint.limits.consumers:
                claim = next(c.claim_value for c in tenant.consumers if c.name == limit.consumer)
                limits = [gateway.limit(d) for d, _ in gateway.descriptors(host, token(claim))]
                for amount in (limit.requests_per_minute, limit.tokens_per_minute if metered else None):
                    assert amount is None or amount in limits, (host, limit.consumer, amount)
    configured = {
        amount
        for d in gateway.config["descriptors"]
        for amount in [d.get("rate_limit", {}).get("requests_per_unit")]
        + [n["rate_limit"]["requests_per_unit"] for n in d.get("descriptors", [])]
        if amount
    }
    declared = {
        amount
        for tenant in cfg.tenants
        for consumer in tenant.consumers
        for amount in (consumer.requests_per_minute, consumer.tokens_per_minute)
        if amount
    } | {
        amount
        for e in cfg.models
        if e.limits
        for limit in [e.limits, *e.limits.consumers]
        for amount in (limit.requests_per_minute, limit.tokens_per_minute)
        if amount
    }
    assert configured == declared


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
    assert_refused("prod", edit, path, message)


# Response bodies as vLLM v0.33.0 writes them (pydantic ``model_dump_json``: compact JSON; vllm/entrypoints/openai/
# chat_completion/protocol.py ChatCompletionResponse and ChatCompletionStreamResponse, ``usage`` a UsageInfo of
# vllm/entrypoints/serve/engine/protocol.py: prompt_tokens, total_tokens, completion_tokens, ...). Streamed with
# --enable-force-include-usage: cumulative usage on every chunk, the final chunk (empty choices) with the total.
def completion(prompt: int, completion_tokens: int, content: str = "Hello") -> list[str]:
    usage = {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion_tokens,
        "completion_tokens": completion_tokens,
    }
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "llama-70b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage,
    }
    text = json.dumps(body, separators=(",", ":"))
    return [text[:50], text[50:]]


def streamed(prompt: int, completion_tokens: int) -> list[str]:
    chunks = []
    for done in range(1, completion_tokens + 1):
        usage = {"prompt_tokens": prompt, "total_tokens": prompt + done, "completion_tokens": done}
        delta = {"index": 0, "delta": {"content": "x"}, "finish_reason": None}
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "llama-70b"}
        chunks.append("data: " + json.dumps({**chunk, "choices": [delta], "usage": usage}, separators=(",", ":")))
    final = {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion_tokens,
        "completion_tokens": completion_tokens,
    }
    chunks.append("data: " + json.dumps({"id": "chatcmpl-1", "choices": [], "usage": final}, separators=(",", ":")))
    text = "\n\n".join(chunks) + "\n\ndata: [DONE]\n\n"
    # Split where Envoy might: mid-number included (a 7-byte tail is cut inside the final total).
    cut = text.rindex('"total_tokens":') + len('"total_tokens":') + 1
    return [text[:cut], text[cut:]]


def usage_filter():
    return Gateway(run_stack("prod")).usage


def test_the_usage_script_reads_the_total_of_plain_and_streamed_responses_and_nothing_else():
    usage, host = usage_filter(), llm_host()
    key = (rate_limits.USAGE_NAMESPACE, rate_limits.USAGE_KEY)

    def total(authority: str, chunks: list[str]):
        return usage.metadata(authority, chunks).get(key[0], {}).get(key[1])

    assert total(host, completion(1200, 345)) == 1545
    assert total(f"{host.upper()}:443", streamed(1000, 12)) == 1012  # the host compared as Envoy sees it, port or not
    # Text that mentions total_tokens is escaped inside its JSON string: not usage.
    assert total(host, completion(10, 5, content='{"total_tokens": 999999}')) == 15
    assert total(host, ['{"object":"error","message":"model overloaded","code":503}']) is None  # nothing to charge
    assert total(host, []) is None
    other = stack_cfg("prod").endpoint_host(next(e for e in stack_cfg("prod").models if e.engine == "triton"))
    assert total(other, completion(1200, 345)) is None  # not a metered host: the script reads nothing


def test_a_consumer_over_its_token_budget_gets_429_until_the_minute_ends_and_another_does_not():
    gateway, host = Gateway(run_stack("prod")), llm_host()
    consumers = stack_cfg("prod").tenant("research").consumers
    a, b = [c for c in consumers if c.tokens_per_minute][:2]
    per_response = a.tokens_per_minute // 3 + 1  # the third response takes the consumer over its budget
    for _ in range(3):
        assert gateway.request(host, token(a.claim_value), streamed(per_response - 40, 40))[0] == 200
    assert gateway.counts[(("tenant-tokens", "research"), ("consumer", a.claim_value))] == 3 * per_response
    status, headers = gateway.request(host, token(a.claim_value), completion(10, 10))
    assert status == 429 and headers["retry-after"] == str(rate_limits.RETRY_AFTER_SECONDS)
    assert gateway.request(host, token(b.claim_value), completion(10, 10))[0] == 200
    # A refused request charges nothing, and a consumer's requests limit is counted as before.
    assert gateway.counts[(("tenant-tokens", "research"), ("consumer", a.claim_value))] == 3 * per_response
    if a.requests_per_minute:
        assert gateway.counts[(("tenant", "research"), ("consumer", a.claim_value))] == 4


def test_the_endpoint_token_ceiling_counts_every_caller_and_charges_only_what_was_answered():
    gateway, host = Gateway(run_stack("prod")), llm_host()
    ceiling = next(e for e in stack_cfg("prod").models if e.name == "llama-70b").limits.tokens_per_minute
    callers = [token(None), token("someone-undeclared")]
    per_response = ceiling // 4
    for index in range(4):
        assert gateway.request(host, callers[index % 2], completion(per_response - 100, 100))[0] == 200
    assert gateway.request(host, token(None), ['{"object":"error","code":500}'])[0] == 200  # at the ceiling, not over
    assert gateway.counts[(("endpoint-tokens", "research/llama-70b"),)] == ceiling  # the error charged nothing
    assert gateway.request(host, token(None), completion(1, 1))[0] == 200
    assert gateway.request(host, token("someone-undeclared"), completion(1, 1))[0] == 429


def test_metered_vllm_endpoints_report_usage_in_every_response_and_others_are_unchanged():
    result, cfg = run_stack("prod"), stack_cfg("prod")
    for endpoint in cfg.models:
        for deployment in result.of_kind("Deployment"):
            labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
            if deployment.namespace != endpoint.tenant or labels.get("ai-platform/endpoint") != endpoint.name:
                continue
            for container in deployment.inputs["spec"]["template"]["spec"]["containers"]:
                forced = "--enable-force-include-usage" in container.get("args", [])
                assert forced == cfg.rate_limits.meters_tokens(cfg, endpoint), (endpoint.name, container["name"])
    assert any(cfg.rate_limits.meters_tokens(cfg, e) for e in cfg.models)


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (
            lambda c: c["ai-platform:tenants"][1]["consumers"][0].update(tokensPerMinute=1000),
            "tenants[1].consumers[0].tokensPerMinute",
            "has no endpoint that reports token usage (vllm)",
        ),
        (
            lambda c: next(m for m in c["ai-platform:models"] if m["engine"] == "triton").update(
                limits={"tokensPerMinute": 1000}
            ),
            "models[1].limits.tokensPerMinute",
            "triton responses carry no token usage",
        ),
        (
            lambda c: c["ai-platform:tenants"][0]["consumers"].append({"name": "idle", "claimValue": "svc-idle"}),
            "tenants[0].consumers[2].requestsPerMinute",
            "requestsPerMinute, tokensPerMinute or both",
        ),
    ],
)
def test_bad_token_budgets_are_refused_before_anything_is_registered(edit, path, message):
    assert_refused("prod", edit, path, message)


def test_a_consumers_limit_on_one_endpoint_refuses_it_there_and_not_others():
    gateway, host, cfg = Gateway(run_stack("prod")), llm_host(), stack_cfg("prod")
    endpoint = next(e for e in cfg.models if e.limits and e.limits.consumers)
    limit = next(c for c in endpoint.limits.consumers if c.requests_per_minute)
    claims = {c.name: c.claim_value for c in cfg.tenant(endpoint.tenant).consumers}
    statuses = [gateway.request(host, token(claims[limit.consumer]))[0] for _ in range(limit.requests_per_minute + 1)]
    assert statuses == [200] * limit.requests_per_minute + [429]
    others = [name for name in claims if name != limit.consumer]
    assert [gateway.request(host, token(claims[others[0]]))[0] for _ in range(5)] == [200] * 5
    assert gateway.request(host, token("someone-undeclared"))[0] == 200  # the ceiling only


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (
            lambda c: c["ai-platform:models"][0]["limits"]["consumers"].append(
                {"consumer": "ghost", "requestsPerMinute": 1}
            ),
            "models[0].limits.consumers[1].consumer",
            "tenant research declares no consumer 'ghost' (its consumers: chat-app, eval-batch)",
        ),
        (  # checked with the limits off too: the declarations stay in the stack file
            lambda c: (
                c.update({"ai-platform:rateLimits": {"enabled": False}})
                or c["ai-platform:models"][0]["limits"]["consumers"].append(
                    {"consumer": "ghost", "requestsPerMinute": 1}
                )
            ),
            "models[0].limits.consumers[1].consumer",
            "tenant research declares no consumer 'ghost'",
        ),
        (
            lambda c: c["ai-platform:models"][0]["limits"]["consumers"].append(
                {"consumer": "eval-batch", "tokensPerMinute": 1}
            ),
            "models[0].limits.consumers[1].consumer",
            "'eval-batch' is limited twice on this endpoint",
        ),
        (
            lambda c: next(m for m in c["ai-platform:models"] if m["engine"] == "triton").update(
                limits={"consumers": [{"consumer": "search-api", "tokensPerMinute": 5}]}
            ),
            "models[1].limits.consumers[0].tokensPerMinute",
            "triton responses carry no token usage",
        ),
    ],
)
def test_bad_endpoint_consumer_limits_are_refused_before_anything_is_registered(edit, path, message):
    assert_refused("prod", edit, path, message)
