"""Reachability under NetworkPolicy and Istio semantics (tests/reachability.py), for every stack file: every path the
platform needs is open, every path that must stay closed is closed (tests/contracts/reachability.py); the gateway's
JWT check holds whatever port the Host header names; and the evaluator's semantics, rule kind by rule kind."""

import pytest

from components.mesh import control_plane
from tests.conftest import run_stack, run_with, stack_cfg
from tests.contracts import reachability as contract
from tests.reachability import Address, Cluster, Pod, Request
from tests.test_ray import config_of

DEV_RAY = {"enabled": True, "replicas": 1}


def failures(paths, cluster, want_open: bool) -> list[str]:
    found = []
    for path in paths:
        verdict = path.check(cluster)
        if bool(verdict) != want_open:
            found.append(f"{path.name}: {verdict.reason} [{path.source}]")
    return found


@pytest.fixture(params=["dev", "prod", "dev+ray"], scope="module")
def stack_and_cfg(request):
    """(run, cfg) of each stack file, and dev with Ray on (prod runs Ray; dev does not by default)."""
    if request.param == "dev+ray":
        return run_with("dev", ray=DEV_RAY), config_of("dev", ray=DEV_RAY)
    return run_stack(request.param), stack_cfg(request.param)


@pytest.mark.invariant
def test_every_needed_path_is_open(stack_and_cfg):
    run, cfg = stack_and_cfg
    cluster = contract.build(run, cfg)[0]
    paths = contract.needed(cfg, run)
    assert failures(paths, cluster, want_open=True) == []


@pytest.mark.invariant
def test_every_forbidden_path_is_closed(stack_and_cfg):
    run, cfg = stack_and_cfg
    cluster = contract.build(run, cfg)[0]
    paths = contract.forbidden(cfg, run)
    assert failures(paths, cluster, want_open=False) == []


@pytest.mark.invariant
def test_the_contract_covers_what_the_stack_runs(stack_and_cfg):
    """Not vacuous: the rows name every tenant, each PodMonitor's targets, the gateway's routes, KubeRay's calls."""
    run, cfg = stack_and_cfg
    names = [p.name for p in contract.needed(cfg, run)]
    closed = [p.name for p in contract.forbidden(cfg, run)]
    for tenant in cfg.tenants:
        assert f"{tenant.name} workload -> DNS UDP" in names
        others = [t.name for t in cfg.tenants if t.name != tenant.name]
        assert all(any(n.startswith(f"{tenant.name} workload -> {other}/") for n in closed) for other in others)
        assert f"{tenant.name} workload -> metadata service 80" in closed
    monitors = [o for o in run.objects if o.kind == "PodMonitor" and o.namespace in {t.name for t in cfg.tenants}]
    for monitor in monitors:
        assert any(n.endswith(f"({monitor.k8s_name})") for n in names), monitor.k8s_name
    if cfg.mesh.enabled:
        assert len([n for n in names if n.startswith("gateway -> ")]) >= len(cfg.models)
    if cfg.ray.enabled:
        assert len([n for n in names if n.startswith("KubeRay -> ")]) == 3 * len(cfg.tenants)


# --- defect 5: the JWT check at the gateway ---------------------------------------------------------------------

TOKEN = "https://login.example.com/realms/ai/alice"  # a validated JWT's iss/sub
JWT = {
    "issuer": "https://login.example.com/realms/ai",
    "jwksUri": "https://login.example.com/realms/ai/protocol/openid-connect/certs",
}


def gateway_verdicts(run, cfg, host: str, token: str | None, path: str = "/v1/completions", port: int = 443):
    cluster, charts, _ = contract.build(run, cfg)
    return cluster.authorize(charts["gateway"], port, None, Request(host=host, path=path, request_principal=token))


def test_prod_endpoint_hosts_need_a_token_whatever_port_the_host_header_names():
    run, cfg = run_stack("prod"), stack_cfg("prod")
    assert cfg.mesh.jwt and cfg.models
    for endpoint in cfg.models:
        host = cfg.endpoint_host(endpoint)
        for header in (host, f"{host}:443", f"{host}:8443", f"{host}:80", host.upper(), f"{host.upper()}:443"):
            assert not gateway_verdicts(run, cfg, header, None), header
            assert gateway_verdicts(run, cfg, header, TOKEN), header


def test_without_endpoints_every_host_of_the_domain_needs_a_token():
    sections = {"mesh": {"tls": {"kind": "selfSigned"}, "jwt": JWT}, "models": []}
    run, cfg = run_with("dev", **sections), config_of("dev", **sections)
    for header in ("a.ai.dev.example.com", "a.ai.dev.example.com:443", "b.ai.dev.example.com:8443"):
        assert not gateway_verdicts(run, cfg, header, None), header
        assert gateway_verdicts(run, cfg, header, TOKEN), header


def test_with_acme_only_the_http01_challenge_goes_without_a_token():
    sections = {"mesh": {"tls": {"kind": "acme", "email": "ops@example.com"}, "jwt": JWT}}
    run, cfg = run_with("dev", **sections), config_of("dev", **sections)
    host = cfg.endpoint_host(cfg.models[0])
    challenge = "/.well-known/acme-challenge/abc123"
    assert gateway_verdicts(run, cfg, host, None, challenge, port=80)
    assert gateway_verdicts(run, cfg, f"{host}:80", None, challenge, port=80)
    assert not gateway_verdicts(run, cfg, host, None, challenge, port=443)
    assert not gateway_verdicts(run, cfg, f"{host}:443", None, "/v1/completions", port=443)
    assert not gateway_verdicts(run, cfg, host, None, "/v1/completions", port=80)


def test_the_policy_lists_each_host_with_and_without_a_port():
    assert control_plane.guarded_hosts(["a.example.com"]) == ["a.example.com", "a.example.com:*"]


# --- the evaluator's semantics, rule by rule --------------------------------------------------------------------


def ns(name: str, **labels) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def obj(kind: str, namespace: str, name: str, spec: dict, api: str = "networking.k8s.io/v1") -> dict:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def netpol(namespace: str, name: str, spec: dict) -> dict:
    return obj("NetworkPolicy", namespace, name, spec)


def istio(kind: str, namespace: str, name: str, spec: dict) -> dict:
    return obj(kind, namespace, name, spec, "security.istio.io/v1")


A = Pod("a", "team-a", {"app": "a"}, {"http": 8080})
A2 = Pod("a2", "team-a", {"app": "other"}, {"http": 9090})
B = Pod("b", "team-b", {"app": "b"}, {"http": 8080})
NAMESPACES = [ns("team-a", team="a"), ns("team-b", team="b")]
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def cluster(*objects, pods=(A, A2, B), namespaces=None) -> Cluster:
    return Cluster([*(namespaces or NAMESPACES), *objects], pods=pods)


def test_no_policy_selecting_a_pod_leaves_it_open():
    assert cluster().connect(A, B, 8080)
    assert cluster(
        netpol("team-b", "deny", {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress"]})
    ).connect(A, B, 8080)
    assert not cluster(netpol("team-b", "deny", DENY_ALL)).connect(A, B, 8080)


def test_pod_selector_peers_are_of_the_policys_namespace_only():
    allow = netpol(
        "team-b", "p", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]}
    )
    local = Pod("a-in-b", "team-b", {"app": "a"})
    c = cluster(allow, pods=(A, B, local))
    assert c.connect(local, B, 8080) and not c.connect(A, B, 8080)


def test_namespace_selector_by_metadata_name_and_and_versus_or_peers():
    both = netpol(
        "team-b",
        "p",
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}},
                            "podSelector": {"matchLabels": {"app": "a"}},
                        }
                    ]
                }
            ],
        },
    )
    assert cluster(both).connect(A, B, 8080) and not cluster(both).connect(A2, B, 8080)
    either = netpol(
        "team-b",
        "p",
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"team": "a"}}},
                        {"podSelector": {"matchLabels": {"app": "zzz"}}},
                    ]
                }
            ],
        },
    )
    assert cluster(either).connect(A2, B, 8080)


def test_match_expressions():
    policy = netpol(
        "team-b",
        "p",
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]
                            }
                        }
                    ]
                }
            ],
        },
    )
    assert cluster(policy).connect(A, B, 8080)
    policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["operator"] = "NotIn"
    assert not cluster(policy).connect(A, B, 8080)


def test_ports_by_number_name_range_and_protocol():
    def with_ports(ports):
        return cluster(netpol("team-b", "p", {"podSelector": {}, "ingress": [{"ports": ports}]}))

    assert with_ports([{"port": 8080}]).connect(A, B, 8080)
    assert not with_ports([{"port": 8081}]).connect(A, B, 8080)
    assert with_ports([{"port": "http"}]).connect(A, B, 8080)  # the server's container port named http
    assert not with_ports([{"port": "metrics"}]).connect(A, B, 8080)
    assert with_ports([{"port": 8000, "endPort": 8100}]).connect(A, B, 8080)
    assert not with_ports([{"port": 8000, "endPort": 8079}]).connect(A, B, 8080)
    assert not with_ports([{"port": 8080, "protocol": "UDP"}]).connect(A, B, 8080)


def test_ip_block_with_except():
    api = Address("api", "10.20.0.10")
    block = {"cidr": "10.0.0.0/8", "except": ["10.20.0.0/16"]}
    c = cluster(
        netpol("team-a", "p", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": block}]}]})
    )
    assert not c.connect(A, api, 443)
    assert c.connect(A, Address("x", "10.30.0.1"), 443)
    assert not c.connect(A, Address("x", "192.168.0.1"), 443)


def test_both_egress_and_ingress_must_allow():
    egress_closed = netpol("team-a", "e", {"podSelector": {}, "policyTypes": ["Egress"]})
    ingress_closed = netpol("team-b", "i", {"podSelector": {}, "policyTypes": ["Ingress"]})
    assert not cluster(egress_closed).connect(A, B, 8080)
    assert not cluster(ingress_closed).connect(A, B, 8080)


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist():
    egress_only_rules = netpol("team-b", "p", {"podSelector": {}, "egress": [{}]})
    assert not cluster(egress_only_rules).connect(A, B, 8080)  # isolated for ingress too
    ingress_listed = netpol("team-a", "p", {"podSelector": {}, "ingress": [{}]})
    assert cluster(ingress_listed).connect(A, B, 8080)  # not isolated for egress


MESHED = [ns("team-a", **{"istio-injection": "enabled"}), ns("team-b", **{"istio-injection": "enabled"}), ns("plain")]
OUTSIDE = Pod("outside", "plain", {"app": "o"})


def meshed(*objects, pods=(A, B, OUTSIDE)) -> Cluster:
    return Cluster([*MESHED, *objects], pods=pods)


def test_injection_follows_the_namespace_label_and_the_pod_label():
    c = meshed()
    assert c.injected(A) and not c.injected(OUTSIDE)
    assert not c.injected(Pod("x", "team-a", {"sidecar.istio.io/inject": "false"}))
    assert c.injected(Pod("x", "plain", {"sidecar.istio.io/inject": "true"}))


def test_strict_refuses_plain_text_permissive_accepts_it():
    strict = istio("PeerAuthentication", "team-b", "default", {"mtls": {"mode": "STRICT"}})
    assert not meshed(strict).connect(OUTSIDE, B, 8080)
    assert meshed(strict).connect(A, B, 8080)  # A's sidecar speaks mTLS
    assert meshed(strict).connect(OUTSIDE, B, 8080, tls="istio-cert")
    assert meshed().connect(OUTSIDE, B, 8080)  # no policy: PERMISSIVE
    assert meshed(strict).connect(A, OUTSIDE, 8080)  # a server without a sidecar takes plain text


def test_the_mesh_policy_is_the_root_namespaces_and_the_workload_policy_overrides():
    mesh_strict = istio("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}})
    assert not meshed(mesh_strict).connect(OUTSIDE, B, 8080)
    workload = istio(
        "PeerAuthentication", "team-b", "w", {"selector": {"matchLabels": {"app": "b"}}, "mtls": {"mode": "PERMISSIVE"}}
    )
    assert meshed(mesh_strict, workload).connect(OUTSIDE, B, 8080)


def test_port_level_mtls_applies_from_a_workload_policy_only():
    strict = istio(
        "PeerAuthentication",
        "team-b",
        "default",
        {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}}},
    )
    assert not meshed(strict).connect(OUTSIDE, B, 8080)  # ignored without a selector
    workload = istio(
        "PeerAuthentication",
        "team-b",
        "w",
        {"selector": {"matchLabels": {"app": "b"}}, "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}}},
    )
    ns_strict = istio("PeerAuthentication", "team-b", "default", {"mtls": {"mode": "STRICT"}})
    c = meshed(ns_strict, workload)
    assert c.connect(OUTSIDE, B, 8080) and not c.connect(OUTSIDE, B, 9090)  # UNSET mode inherits STRICT
    unset_port = istio(
        "PeerAuthentication",
        "team-b",
        "w",
        {"selector": {"matchLabels": {"app": "b"}}, "portLevelMtls": {"8080": {"mode": "UNSET"}}},
    )
    assert not meshed(ns_strict, unset_port).connect(OUTSIDE, B, 8080)


def test_the_proxys_own_ports_and_uncaptured_ports_skip_mtls():
    strict = istio("PeerAuthentication", "team-b", "default", {"mtls": {"mode": "STRICT"}})
    assert meshed(strict).connect(OUTSIDE, B, 15090)
    nothing_captured = Pod(
        "b", "team-b", {"app": "b"}, annotations={"traffic.sidecar.istio.io/includeInboundPorts": ""}
    )
    assert meshed(strict, pods=(OUTSIDE, nothing_captured)).connect(OUTSIDE, nothing_captured, 8080)


def allow(namespace: str, rules: list, selector=None, action="ALLOW", name="p") -> dict:
    spec = {"action": action, "rules": rules}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return istio("AuthorizationPolicy", namespace, name, spec)


def test_with_an_allow_policy_a_request_must_match_it_and_principals_need_mtls():
    policy = allow("team-b", [{"from": [{"source": {"namespaces": ["team-a"]}}]}])
    assert meshed(policy).connect(A, B, 8080)
    no_sidecar = Pod("a-plain", "team-a", {"sidecar.istio.io/inject": "false"})
    assert not meshed(policy).connect(no_sidecar, B, 8080)  # plain text carries no peer namespace
    principal = allow("team-b", [{"from": [{"source": {"principals": ["cluster.local/ns/team-a/sa/default"]}}]}])
    assert meshed(principal).connect(A, B, 8080)
    assert not meshed(allow("team-b", [{"from": [{"source": {"principals": ["cluster.local/ns/x/sa/y"]}}]}])).connect(
        A, B, 8080
    )
    assert not meshed(allow("team-b", [])).connect(A, B, 8080)  # ALLOW without rules allows nothing


def test_deny_comes_before_allow_and_policies_apply_by_namespace_and_selector():
    everything = allow("team-b", [{}])
    deny = allow("team-b", [{"to": [{"operation": {"paths": ["/admin*"]}}]}], action="DENY", name="d")
    c = meshed(everything, deny)
    assert c.connect(A, B, 8080, request=Request(path="/v1"))
    assert not c.connect(A, B, 8080, request=Request(path="/admin/x"))
    elsewhere = allow("team-a", [], name="x")  # team-a's policy does not apply to team-b's pods
    assert meshed(elsewhere).connect(A, B, 8080)
    other_workload = allow("team-b", [], selector={"app": "zzz"})
    assert meshed(other_workload).connect(A, B, 8080)
    root = allow("istio-system", [], name="root")
    assert not meshed(root).connect(A, B, 8080)


def test_ports_paths_and_request_principals():
    policy = allow(
        "team-b",
        [
            {
                "from": [{"source": {"namespaces": ["team-a"]}}],
                "to": [{"operation": {"ports": ["8080"], "paths": ["/metrics"]}}],
            }
        ],
    )
    c = meshed(policy)
    assert c.connect(A, B, 8080, request=Request(path="/metrics"))
    assert not c.connect(A, B, 8080, request=Request(path="/v1"))
    assert not c.connect(A, B, 9090, request=Request(path="/metrics"))
    jwt = allow("team-b", [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}], action="DENY")
    assert not meshed(jwt).connect(A, B, 8080)
    assert meshed(jwt).connect(A, B, 8080, request=Request(request_principal="iss/sub"))


def test_hosts_match_exactly_by_prefix_or_by_suffix_ignoring_case():
    def denied(hosts: list[str], header: str) -> bool:
        policy = allow("team-b", [{"to": [{"operation": {"hosts": hosts}}]}], action="DENY")
        return not meshed(policy).connect(A, B, 8080, request=Request(host=header))

    assert denied(["h.example.com"], "h.example.com") and denied(["h.example.com"], "H.Example.com")
    assert not denied(["h.example.com"], "h.example.com:443")  # the bypass the platform must close
    assert denied(["h.example.com:*"], "h.example.com:443") and not denied(["h.example.com:*"], "h.example.com")
    assert denied(["*.example.com"], "h.example.com") and not denied(["*.example.com"], "h.example.com:443")
    assert denied(["*"], "anything") and not denied(["x"], None)
    not_hosts = allow("team-b", [{"to": [{"operation": {"notHosts": ["h.example.com"]}}]}], action="DENY")
    assert meshed(not_hosts).connect(A, B, 8080, request=Request(host="h.example.com"))
    assert not meshed(not_hosts).connect(A, B, 8080, request=Request(host="h.example.com:443"))
