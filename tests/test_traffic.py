"""Per-endpoint traffic: routing (header first, weighted split), timeouts, safe retries, circuit breaking,
authorization, and the canary versions the serving component creates for it."""

import pytest

from components.mesh.traffic import RETRY_ON
from tests.conftest import config_copy, run


def virtual_service(stack_run, endpoint):
    return stack_run.one("VirtualService", endpoint.name, endpoint.tenant)


def test_virtual_service_routes_header_first_then_the_weighted_split(stack_run, cfg):
    istiod = next(r for r in stack_run.releases if r.inputs["chart"] == "istiod")  # CRDs (via base) and webhook
    for endpoint in cfg.models:
        vs = virtual_service(stack_run, endpoint)
        spec = vs.inputs["spec"]
        assert spec["hosts"][0] == cfg.endpoint_host(endpoint)
        assert spec["hosts"][1].endswith(f".{endpoint.tenant}.svc.cluster.local")
        assert spec["gateways"] == [f"{cfg.namespaces.ingress}/ai-platform-gateway", "mesh"]
        assert istiod.urn in vs.dependencies
        groups: dict = {}
        for route in spec["http"]:
            match = route["match"][0]
            groups.setdefault((tuple(match["gateways"]), match.get("port")), []).append(route)
        assert any(g[0] == (spec["gateways"][0],) for g in groups)  # external traffic is routed
        for routes in groups.values():
            *headers, split = routes
            assert all("headers" in r["match"][0] for r in headers) and "headers" not in split["match"][0]
            if endpoint.canary:
                assert headers[0]["match"][0]["headers"] == {"x-model-version": {"exact": "canary"}}
                assert sum(d["weight"] for d in split["route"]) == 100
                assert [d["weight"] for d in split["route"]] == [
                    endpoint.traffic.weights.stable,
                    endpoint.traffic.weights.canary,
                ]
            else:
                assert headers == [] and [d["weight"] for d in split["route"]] == [100]
            for route in routes:
                assert route["timeout"] == endpoint.traffic.timeout
                assert route["retries"]["retryOn"] == RETRY_ON
                assert set(RETRY_ON.split(",")) == {"connect-failure", "refused-stream", "503"}
                assert route["retries"]["attempts"] == endpoint.traffic.retry_attempts


def test_destination_rules_balance_and_break_circuits(stack_run, cfg):
    for endpoint in cfg.models:
        rules = [
            r
            for r in stack_run.of_kind("DestinationRule")
            if r.namespace == endpoint.tenant
            and r.inputs["metadata"]["labels"].get("ai-platform/endpoint") == endpoint.name
        ]
        assert len(rules) == (1 + bool(endpoint.canary) if endpoint.engine == "kserve" else 1)
        for rule in rules:
            policy = rule.inputs["spec"]["trafficPolicy"]
            assert policy["loadBalancer"] == {"simple": "LEAST_REQUEST"}
            pool, outliers = endpoint.traffic.connection_pool, endpoint.traffic.outlier_detection
            assert policy["connectionPool"]["http"]["http1MaxPendingRequests"] == pool.max_pending_requests
            assert policy["connectionPool"]["tcp"]["maxConnections"] == pool.max_connections
            assert policy["outlierDetection"] == {
                "consecutive5xxErrors": outliers.consecutive5xx_errors,
                "consecutiveGatewayErrors": outliers.consecutive_gateway_errors,
                "interval": outliers.interval,
                "baseEjectionTime": outliers.base_ejection_time,
                "maxEjectionPercent": outliers.max_ejection_percent,
            }
        if endpoint.engine != "kserve":
            subsets = {s["name"]: s["labels"] for s in rules[0].inputs["spec"]["subsets"]}
            assert subsets == {
                "stable": {"version": "stable"},
                **({"canary": {"version": "canary"}} if endpoint.canary else {}),
            }


@pytest.mark.invariant
def test_endpoints_answer_only_the_gateway_their_tenant_and_metrics_scrapes(stack_run, cfg):
    principal = f"cluster.local/ns/{cfg.namespaces.ingress}/sa/istio-ingressgateway"
    for endpoint in cfg.models:
        policies = [
            p
            for p in stack_run.of_kind("AuthorizationPolicy")
            if p.namespace == endpoint.tenant
            and p.inputs["metadata"]["labels"]["ai-platform/endpoint"] == endpoint.name
        ]
        assert policies
        by_component: dict[str, list] = {}
        for policy in policies:
            by_component.setdefault(policy.inputs["metadata"]["labels"]["app.kubernetes.io/component"], []).append(
                policy
            )
        # Pooled endpoints: the picker (no sidecar) may read GET /metrics on vLLM's port, nothing else, unauthenticated.
        picker_reads = by_component.pop("inference-routing", [])
        assert len(picker_reads) == cfg.inference_routing.pooled(endpoint)
        for policy in picker_reads:
            assert policy.inputs["spec"]["rules"] == [
                {"to": [{"operation": {"ports": ["8000"], "methods": ["GET"], "paths": ["/metrics"]}}]}
            ]
        assert set(by_component) == {"mesh"}
        for policy in by_component["mesh"]:
            spec = policy.inputs["spec"]
            assert spec["action"] == "ALLOW"
            sources = [rule["from"][0]["source"] for rule in spec["rules"]]
            assert sources == [
                {"principals": [principal]},
                {"namespaces": [endpoint.tenant]},
                {"namespaces": [cfg.namespaces.monitoring]},
            ]
            assert spec["rules"][2]["to"][0]["operation"]["paths"] == ["/metrics"]


@pytest.mark.invariant
def test_tenants_enforce_strict_mtls(stack_run, cfg):
    for tenant in cfg.tenants:
        assert stack_run.one("PeerAuthentication", "default", tenant.name).inputs["spec"]["mtls"] == {"mode": "STRICT"}


def test_canary_versions_are_deployed_beside_the_stable_ones(stack_run, cfg):
    for endpoint in [e for e in cfg.models if e.canary]:
        name = f"{endpoint.name}-canary"
        if endpoint.engine == "kserve":
            isvc = stack_run.one("InferenceService", name, endpoint.tenant).inputs
            assert isvc["spec"]["predictor"]["model"]["storageUri"] == endpoint.canary.source
            assert isvc["metadata"]["labels"]["version"] == "canary"
            continue
        deployment = stack_run.one("Deployment", name, endpoint.tenant).inputs
        assert deployment["spec"]["selector"]["matchLabels"] == {
            "ai-platform/endpoint": endpoint.name,
            "version": "canary",
        }
        assert deployment["spec"]["template"]["metadata"]["labels"]["version"] == "canary"
        assert stack_run.one("PersistentVolumeClaim", f"{name}-model-cache", endpoint.tenant)
        job = stack_run.one("Job", f"{name}-download", endpoint.tenant).inputs
        assert endpoint.canary.source.split("://")[1] in job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        stable = stack_run.one("Deployment", endpoint.name, endpoint.tenant).inputs
        assert stable["spec"]["selector"]["matchLabels"]["version"] == "stable"


def test_mesh_off_removes_routing_policies():
    config = config_copy()
    config["ai-platform:mesh"] = {"enabled": False}
    result = run("dev", config)
    assert result.error is None, result.error
    for kind in ("VirtualService", "DestinationRule", "AuthorizationPolicy", "PeerAuthentication", "Gateway"):
        assert result.of_kind(kind) == [], kind
