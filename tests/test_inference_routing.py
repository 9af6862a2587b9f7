"""KV-cache- and queue-aware routing (issue 22, part 2; components/mesh/inference_pools.py).

``Gateway`` follows a request through the rendered objects as the Gateway API and Istio 1.30.3 resolve it, written from
their specs and source, not from the program's code: the listener whose hostname is the Host (Gateway API: a
route attaches to a listener through ``parentRefs.sectionName`` when the listener's ``allowedRoutes`` admit its
namespace and kind); the route's rule (Gateway API precedence: among matching rules, the one with the most header
matches; a rule without matches matches everything); the rule's InferencePool backends with their weights, and the
one picker Istio gives the rule (istio/istio 1.30.3 pilot/pkg/config/kube/gateway/conversion.go
``buildHTTPDestination``: ``ipCfg = ipconfig`` for each backend in turn, so the last pool's ``endpointPickerRef``);
the pool's pods (its ``selector.matchLabels`` over the pod templates, its ``targetPorts`` among their container
ports); the picker's Service and Deployment (the Service's selector, its port, the ``--pool-name`` the picker
serves). Neither Istio nor a picker runs here."""

from __future__ import annotations

import pytest
import yaml

from components.mesh import inference_pools
from config.routing import SCORER_PLUGINS
from tests.conftest import assert_refused, config_copy, run, run_stack, run_with, stack_cfg
from tests.reachability import match_labels

# Plugin types the picker v1.5.0 registers that the platform's config uses (gateway-api-inference-extension v1.5.0:
# the three scorers of config.routing.SCORER_PLUGINS; pkg/epp/framework/plugins/datalayer/source/metrics/
# datasource.go MetricsDataSourceType; .../extractor/metrics/factories.go MetricsExtractorType).
KNOWN_PLUGINS = {*SCORER_PLUGINS.values(), "metrics-data-source", "core-metrics-extractor"}
STACKS = ["prod"]


class Gateway:
    """The rendered objects of one run, resolved as the Gateway API and Istio would (module docstring)."""

    def __init__(self, result):
        self.objects = [r.inputs for r in result.objects]

    def all(self, kind: str, namespace: str | None = None) -> list[dict]:
        return [
            o
            for o in self.objects
            if o["kind"] == kind and (namespace is None or o["metadata"].get("namespace") == namespace)
        ]

    def gateways(self) -> list[dict]:
        """The Gateway API Gateways (not Istio's own ``Gateway`` kind)."""
        return [g for g in self.all("Gateway") if g["apiVersion"].startswith("gateway.networking.k8s.io/")]

    def one(self, kind: str, namespace: str, name: str) -> dict:
        found = [o for o in self.all(kind, namespace) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} found"
        return found[0]

    def route(self, host: str) -> dict:
        """The HTTPRoute that serves ``host``, checked to be attached to a listener of that hostname."""
        routes = [r for r in self.all("HTTPRoute") if host in r["spec"]["hostnames"]]
        assert len(routes) == 1, f"{host}: {len(routes)} routes"
        route = routes[0]
        namespace = route["metadata"]["namespace"]
        (parent,) = route["spec"]["parentRefs"]
        gateway = self.one("Gateway", parent["namespace"], parent["name"])
        (listener,) = [item for item in gateway["spec"]["listeners"] if item["name"] == parent["sectionName"]]
        assert listener["hostname"] == host and listener["protocol"] == "HTTPS"
        allowed = listener["allowedRoutes"]
        assert {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"} in allowed["kinds"]
        assert allowed["namespaces"]["from"] == "Selector"
        assert match_labels(allowed["namespaces"]["selector"], {"kubernetes.io/metadata.name": namespace})
        return route

    @staticmethod
    def rule(route: dict, headers: dict[str, str]) -> dict:
        """The rule a request with ``headers`` takes (Gateway API precedence over header matches)."""

        def matches(rule: dict) -> int | None:
            if not rule.get("matches"):
                return 0
            best = None
            for match in rule["matches"]:
                conditions = match.get("headers") or []
                if all(c.get("type", "Exact") == "Exact" and headers.get(c["name"]) == c["value"] for c in conditions):
                    best = max(best or 0, len(conditions))
            return best

        candidates = [
            (count, index) for index, r in enumerate(route["spec"]["rules"]) if (count := matches(r)) is not None
        ]
        assert candidates, f"no rule takes {headers}"
        return route["spec"]["rules"][max(candidates, key=lambda c: (c[0], -c[1]))[1]]

    def pools(self, route: dict, rule: dict) -> dict[str, int]:
        """The rule's InferencePools by name with their weights (Gateway API: weight 1 unless set)."""
        namespace = route["metadata"]["namespace"]
        found = {}
        for ref in rule["backendRefs"]:
            assert (ref["group"], ref["kind"]) == ("inference.networking.k8s.io", "InferencePool"), ref
            self.one("InferencePool", namespace, ref["name"])
            found[ref["name"]] = ref.get("weight", 1)
        return found

    def picker_of_rule(self, route: dict, rule: dict) -> str:
        """The pool whose picker Istio 1.30.3 gives the rule: the last InferencePool backend's."""
        return rule["backendRefs"][-1]["name"]

    def pods(self, namespace: str, pool_name: str) -> list[str]:
        """Deployments whose pods the pool selects, each checked to have a container on the pool's target port."""
        pool = self.one("InferencePool", namespace, pool_name)["spec"]
        selected = []
        for deployment in self.all("Deployment", namespace):
            template = deployment["spec"]["template"]
            if match_labels(pool["selector"], template["metadata"].get("labels") or {}):
                ports = {p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports") or []}
                assert {t["number"] for t in pool["targetPorts"]} <= ports, deployment["metadata"]["name"]
                selected.append(deployment["metadata"]["name"])
        return selected

    def picker(self, namespace: str, pool_name: str) -> dict:
        """The picker Deployment behind the pool's ``endpointPickerRef``, checked to serve that pool."""
        ref = self.one("InferencePool", namespace, pool_name)["spec"]["endpointPickerRef"]
        service = self.one("Service", namespace, ref["name"])["spec"]
        assert ref["port"]["number"] in {p["port"] for p in service["ports"]}
        (deployment,) = [
            d
            for d in self.all("Deployment", namespace)
            if match_labels({"matchLabels": service["selector"]}, d["spec"]["template"]["metadata"]["labels"])
        ]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        assert args[args.index("--pool-name") + 1] == pool_name
        assert args[args.index("--pool-namespace") + 1] == namespace
        ports = {p["containerPort"] for p in container["ports"]}
        target = next(p.get("targetPort", p["port"]) for p in service["ports"] if p["port"] == ref["port"]["number"])
        assert target in ports
        return deployment


def pooled(stack: str):
    cfg = stack_cfg(stack)
    return cfg, [e for e in cfg.models if cfg.inference_routing.pooled(e)]


@pytest.mark.parametrize("stack", STACKS)
def test_stable_and_canary_requests_reach_their_pods_through_their_pools_and_pickers(stack):
    cfg, endpoints = pooled(stack)
    assert any(e.canary for e in endpoints), "the stack needs a pooled endpoint with a canary"
    gateway = Gateway(run_stack(stack))
    for endpoint in endpoints:
        ns, host = endpoint.tenant, cfg.endpoint_host(endpoint)
        route = gateway.route(host)
        stable, canary = endpoint.name, f"{endpoint.name}-canary"

        split = gateway.rule(route, {})
        weights = gateway.pools(route, split)
        expected = {stable: endpoint.traffic.weights.stable}
        if endpoint.canary:
            expected[canary] = endpoint.traffic.weights.canary
        assert weights == expected
        # The stable share is placed by the stable pool's picker (Istio keeps one picker per rule).
        assert gateway.picker_of_rule(route, split) == stable
        assert gateway.pods(ns, stable) == [stable]
        gateway.picker(ns, stable)
        assert route["spec"]["hostnames"] == [host]
        assert all(rule["timeouts"]["request"] == endpoint.traffic.timeout for rule in route["spec"]["rules"])
        if endpoint.canary:
            to_canary = gateway.rule(route, {"x-model-version": "canary"})
            assert gateway.pools(route, to_canary) == {canary: 1}
            assert gateway.picker_of_rule(route, to_canary) == canary
            assert gateway.pods(ns, canary) == [canary]
            gateway.picker(ns, canary)
        for header_route in endpoint.traffic.header_routes:
            rule = gateway.rule(route, {header_route.header: header_route.value})
            assert list(gateway.pools(route, rule)) == [stable if header_route.subset == "stable" else canary]


def test_header_routes_from_the_stack_file_reach_their_version_and_a_tenant_attaches_only_to_its_own_hosts():
    config = config_copy("prod")
    (llm,) = [m for m in config["ai-platform:models"] if m["name"] == "llama-70b"]
    llm["traffic"]["headerRoutes"] = [{"header": "x-tier", "value": "beta", "subset": "canary"}]
    result = run("prod", config)
    assert result.error is None, result.error
    gateway = Gateway(result)
    cfg = stack_cfg("prod")
    host = cfg.endpoint_host(next(e for e in cfg.models if e.name == "llama-70b"))
    route = gateway.route(host)
    assert list(gateway.pools(route, gateway.rule(route, {"x-tier": "beta"}))) == ["llama-70b-canary"]
    assert list(gateway.pools(route, gateway.rule(route, {"x-tier": "other"}))) == ["llama-70b-canary", "llama-70b"]
    (inference,) = gateway.gateways()
    for listener in inference["spec"]["listeners"]:
        tenant = listener["name"].split("-", 1)[0]
        for other in cfg.tenants:
            admitted = match_labels(
                listener["allowedRoutes"]["namespaces"]["selector"], {"kubernetes.io/metadata.name": other.name}
            )
            assert admitted == (other.name == tenant), (listener["name"], other.name)


def test_the_gateway_is_the_platforms_ingress_gateway_with_its_certificate():
    result = run_stack("prod")
    gateway = Gateway(result)
    (inference,) = gateway.gateways()
    cfg = stack_cfg("prod")
    ingress = cfg.namespaces.ingress
    # Istio's manual deployment: exactly one address, of type Hostname, the existing gateway Service.
    assert inference["spec"]["gatewayClassName"] == "istio"
    assert inference["spec"]["addresses"] == [
        {"type": "Hostname", "value": f"istio-ingressgateway.{ingress}.svc.cluster.local"}
    ]
    (service_release,) = [r for r in result.releases if r.inputs["name"] == "istio-ingressgateway"]
    assert service_release.inputs["namespace"] == ingress
    (certificate,) = gateway.all("Certificate", ingress)
    for listener in inference["spec"]["listeners"]:
        (ref,) = listener["tls"]["certificateRefs"]
        assert ref["name"] == certificate["spec"]["secretName"]
        assert listener["hostname"] in certificate["spec"]["dnsNames"]
    (istiod,) = [r for r in result.releases if r.inputs["name"] == "istiod"]
    assert istiod.inputs["values"]["env"]["ENABLE_GATEWAY_API_INFERENCE_EXTENSION"] == "true"
    files = {r.inputs.get("file") for r in result.resources if r.type == "kubernetes:yaml/v2:ConfigFile"}
    assert files == {
        "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.1/standard-install.yaml",
        "https://github.com/kubernetes-sigs/gateway-api-inference-extension/releases/download/v1.6.0/manifests.yaml",
    }
    crds = {r.urn for r in result.resources if r.type == "kubernetes:yaml/v2:ConfigFile"}
    assert crds <= set(istiod.dependencies)


def _picker_config(result, namespace: str, pool: str) -> dict:
    gateway = Gateway(result)
    deployment = gateway.picker(namespace, pool)
    (volume,) = deployment["spec"]["template"]["spec"]["volumes"]
    config_map = gateway.one("ConfigMap", namespace, volume["configMap"]["name"])
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    path = args[args.index("--config-file") + 1]
    return yaml.safe_load(config_map["data"][path.rsplit("/", 1)[1]])


def test_the_pickers_score_with_the_configured_weights_and_only_plugins_the_picker_knows():
    config = config_copy("prod")
    config["ai-platform:inferenceRouting"] = {"enabled": True, "scorers": {"queue": 5, "kvCacheUtilization": 0}}
    (llm,) = [m for m in config["ai-platform:models"] if m["name"] == "llama-70b"]
    result = run("prod", config)
    assert result.error is None, result.error
    for pool in ("llama-70b", "llama-70b-canary"):
        picker = _picker_config(result, llm["tenant"], pool)
        assert {p["type"] for p in picker["plugins"]} <= KNOWN_PLUGINS
        (profile,) = picker["schedulingProfiles"]
        assert {p["pluginRef"]: p["weight"] for p in profile["plugins"]} == {
            "queue-scorer": 5,
            "prefix-cache-scorer": 3,
        }
        assert {p["pluginRef"] for p in profile["plugins"]} <= {p["type"] for p in picker["plugins"]}
    llm["traffic"]["picker"] = {"scorers": {"prefixCache": 1, "queue": 0, "kvCacheUtilization": 0}}
    result = run("prod", config)
    (profile,) = _picker_config(result, llm["tenant"], "llama-70b")["schedulingProfiles"]
    assert profile["plugins"] == [{"pluginRef": "prefix-cache-scorer", "weight": 1}]


def test_an_endpoint_that_opts_out_keeps_mesh_routing_only():
    config = config_copy("prod")
    (llm,) = [m for m in config["ai-platform:models"] if m["name"] == "llama-70b"]
    llm["traffic"]["picker"] = {"enabled": False}
    result = run("prod", config)
    assert result.error is None, result.error
    gateway = Gateway(result)
    assert not gateway.all("InferencePool") and not gateway.all("HTTPRoute")
    assert gateway.gateways()[0]["spec"]["listeners"] == []


def _registrations(result) -> dict[str, tuple]:
    return {r.urn: (r.inputs, r.parent, sorted(r.dependencies)) for r in result.resources}


def test_turning_it_off_gives_todays_routing_unchanged():
    off = run_with("prod", inferenceRouting={"enabled": False})
    config = config_copy("prod")
    del config["ai-platform:inferenceRouting"]
    undeclared = run("prod", config)
    assert off.error is None and undeclared.error is None
    assert _registrations(off) == _registrations(undeclared)
    groups = {r.inputs["apiVersion"].split("/")[0] for r in off.objects}
    assert not groups & {"gateway.networking.k8s.io", "inference.networking.k8s.io"}
    assert not [r for r in off.resources if r.type == "kubernetes:yaml/v2:ConfigFile"]

    on = run_stack("prod")
    before, after = _registrations(off), _registrations(on)
    assert set(before) <= set(after)
    changed = sorted(urn for urn in before if before[urn] != after[urn])
    # Only istiod (its env and its wait for the CRDs) and the inference dashboards (their Routing row) change; the
    # mesh's routes, rules and policies are untouched.
    assert changed and changed[0].endswith("mesh-istiod-release"), changed
    assert all("dashboard" in urn and urn.endswith("inference") for urn in changed[1:]), changed
    added = set(after) - set(before)
    assert all(
        "inference" in urn or "pools-" in urn or urn.endswith(("allow-kube-apiserver-picker", "gateway-api-crds"))
        for urn in added
    ), sorted(added)


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (
            lambda c: next(m for m in c["ai-platform:models"] if m["engine"] == "triton")["traffic"].update(
                picker={"enabled": True}
            ),
            "models[1].traffic.picker",
            "vllm endpoints only (got triton)",
        ),
        (
            lambda c: c["ai-platform:inferenceRouting"].update(scorers={"loraAffinity": 1}),
            "inferenceRouting.scorers.loraAffinity",
            "",
        ),
        (
            lambda c: c["ai-platform:inferenceRouting"].update(
                scorers={"queue": 0, "kvCacheUtilization": 0, "prefixCache": 0}
            ),
            "inferenceRouting.scorers.queue",
            "at least one scorer",
        ),
        (
            lambda c: c["ai-platform:inferenceRouting"].update(picker={"resources": {"cpu": "500", "memory": "1Gi"}}),
            "inferenceRouting.picker.resources.cpu",
            "container maximum",
        ),
        (
            lambda c: (
                c["ai-platform:inferenceRouting"].update(enabled=False)
                or next(m for m in c["ai-platform:models"] if m["engine"] == "vllm")["traffic"].update(
                    picker={"scorers": {"queue": 1}}
                )
            ),
            "models[0].traffic.picker.scorers",
            "need inferenceRouting.enabled",
        ),
    ],
)
def test_bad_routing_config_is_refused_before_anything_is_registered(edit, path, message):
    assert_refused("prod", edit, path, message)


def test_pickers_are_restricted_without_a_sidecar_and_their_pool_selects_no_download_pods():
    result = run_stack("prod")
    gateway = Gateway(result)
    cfg, endpoints = pooled("prod")
    for endpoint in endpoints:
        for pool in (endpoint.name, f"{endpoint.name}-canary") if endpoint.canary else (endpoint.name,):
            picker = gateway.picker(endpoint.tenant, pool)
            template = picker["spec"]["template"]
            assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
            assert template["spec"]["securityContext"]["runAsNonRoot"] is True
            (container,) = template["spec"]["containers"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["image"].endswith(inference_pools.versions.EPP_IMAGE.split("/", 1)[1])
            selector = gateway.one("InferencePool", endpoint.tenant, pool)["spec"]["selector"]
            for job in gateway.all("Job", endpoint.tenant):
                assert not match_labels(selector, job["spec"]["template"]["metadata"]["labels"])
            # The gateway reaches the picker's own TLS: no sidecar to terminate Istio mTLS.
            rule = gateway.one("DestinationRule", endpoint.tenant, inference_pools.picker_name(pool))
            assert rule["spec"]["trafficPolicy"]["tls"]["mode"] == "SIMPLE"
