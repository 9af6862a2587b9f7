"""The Istio control plane: releases, namespaces and Pod Security, order, the ingress Gateway and certificate,
strict mTLS per tenant, JWT at the gateway, the image mirror, and switching the mesh off."""

import pytest
import yaml

from components.mesh.control_plane import GATEWAY_RELEASE, GATEWAY_SERVICE_ACCOUNT
from config import versions
from tests.conftest import config_copy, run, stack_cfg
from tools.validate import upstream_dir

RELEASE = "kubernetes:helm.sh/v3:Release"
ISTIO_CHARTS = {"base", "istiod", "cni", "gateway"}
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
JWT = {
    "issuer": "https://login.example.com/realms/ai",
    "jwksUri": "https://login.example.com/realms/ai/protocol/openid-connect/certs",
}


def release(result, name):
    (found,) = [r for r in result.releases if r.inputs["name"] == name]
    return found


def mesh_component(result):
    (found,) = [r for r in result.resources if r.type == "ai-platform:mesh:Mesh"]
    return found


def mesh_objects(result):
    """Kubernetes objects the Mesh component declares itself."""
    mesh = mesh_component(result)
    return [r for r in result.objects if r.parent == mesh.urn]


def custom_resources(result):
    """The mesh's Istio and cert-manager objects (everything it declares that a CRD defines)."""
    return [
        r
        for r in mesh_objects(result)
        if r.inputs["apiVersion"].split("/")[0].endswith((".istio.io", "cert-manager.io"))
    ]


def istio_defaults(chart: str) -> dict:
    """The chart's defaults as users set them (Istio keeps them under _internal_defaults_do_not_set)."""
    return yaml.safe_load((upstream_dir() / chart / "values.yaml").read_text())["_internal_defaults_do_not_set"]


def at(values: dict, path: str):
    for key in path.split("."):
        values = values[key]
    return values


def mesh_run(mesh: dict, models: list | None = None):
    """The dev stack with ``ai-platform:mesh`` replaced (and the models, if given)."""
    config = config_copy("dev")
    config["ai-platform:mesh"] = mesh
    if models is not None:
        config["ai-platform:models"] = models
    result = run("dev", config)
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def self_signed():
    return mesh_run({"tls": {"kind": "selfSigned"}})


@pytest.fixture(scope="module")
def acme():
    return mesh_run(
        {
            "tls": {"kind": "acme", "email": "ops@example.com"},
            "accessLogging": False,
            "outboundTraffic": "REGISTRY_ONLY",
            "gatewayReplicas": 1,
        }
    )


@pytest.fixture(scope="module")
def cluster_issuer():
    return mesh_run(
        {
            "tls": {"kind": "clusterIssuer", "name": "corp-ca"},
            "gatewayReplicas": 4,
            "jwt": {**JWT, "audiences": ["a", "b"]},
        }
    )


@pytest.fixture(scope="module")
def jwt_without_endpoints():
    return mesh_run({"jwt": JWT}, models=[])


@pytest.fixture(scope="module")
def mesh_off():
    return mesh_run({"enabled": False})


# --- releases, namespaces, order ------------------------------------------------------------------------------


def test_istio_releases_are_pinned_in_their_namespaces(stack_run, cfg):
    expected = {
        "base": (versions.ISTIO_BASE, cfg.namespaces.mesh),
        "istiod": (versions.ISTIOD, cfg.namespaces.mesh),
        "cni": (versions.ISTIO_CNI, cfg.namespaces.mesh_cni),
        GATEWAY_RELEASE: (versions.ISTIO_GATEWAY, cfg.namespaces.ingress),
    }
    for name, (chart, namespace) in expected.items():
        inputs = release(stack_run, name).inputs
        assert inputs["chart"] == chart.name, name
        assert inputs["repositoryOpts"] == {"repo": "https://istio-release.storage.googleapis.com/charts"}, name
        assert inputs["version"] == chart.version == "1.30.3", name
        assert inputs["namespace"] == namespace, name
    assert {versions.CHARTS[c] for c in ISTIO_CHARTS} == {
        versions.ISTIO_BASE,
        versions.ISTIOD,
        versions.ISTIO_CNI,
        versions.ISTIO_GATEWAY,
    }


def test_mesh_namespaces_get_the_pod_security_their_pods_need(stack_run, cfg):
    levels = {
        cfg.namespaces.mesh: ("restricted", ["base", "istiod"]),
        cfg.namespaces.mesh_cni: ("privileged", ["cni"]),  # the CNI DaemonSet edits the nodes' CNI config
        cfg.namespaces.ingress: ("restricted", [GATEWAY_RELEASE]),
    }
    for namespace, (level, releases) in levels.items():
        ns = stack_run.one("Namespace", namespace)
        labels = ns.inputs["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == level, namespace
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == f"v{cfg.cluster.kubernetes_version}"
        assert labels["app.kubernetes.io/managed-by"] == "pulumi"
        assert ns.parent == mesh_component(stack_run).urn
        for name in releases:
            assert ns.urn in release(stack_run, name).dependencies, name


def test_install_order_is_base_istiod_gateway_and_istio_resources_after_istiod(stack_run, cfg):
    base, istiod, cni, gateway = (release(stack_run, n) for n in ("base", "istiod", "cni", GATEWAY_RELEASE))
    cert_manager = release(stack_run, "cert-manager")
    releases = {r.urn for r in stack_run.releases}
    assert not releases & set(base.dependencies)
    assert releases & set(istiod.dependencies) == {base.urn}
    assert releases & set(cni.dependencies) == {base.urn}
    assert releases & set(gateway.dependencies) == {istiod.urn}
    resources = custom_resources(stack_run)
    kinds = {r.kind for r in resources}
    assert {"Gateway", "Certificate", "PeerAuthentication"} <= kinds
    for resource in resources:
        # Istio objects after istiod (base's CRDs, istiod's validating webhook), not after the gateway release (a
        # wave deeper, see tests/test_dependency_depth.py); cert-manager objects after cert-manager only.
        assert gateway.urn not in resource.dependencies, (resource.kind, resource.k8s_name)
        if resource.inputs["apiVersion"].startswith("cert-manager.io/"):
            assert releases & set(resource.dependencies) == {cert_manager.urn}, (resource.kind, resource.k8s_name)
        else:
            assert releases & set(resource.dependencies) == {istiod.urn}, (resource.kind, resource.k8s_name)


# --- istiod, cni, gateway values ----------------------------------------------------------------------------


def test_istiod_uses_the_cni_agent_and_restricted_sidecars(stack_run):
    values = release(stack_run, "istiod").inputs["values"]
    # The chart's key; its injector config hands it to the sidecar template as pilot.cni.enabled, which then
    # injects istio-validation (uid 1337, no capabilities) instead of istio-init (root, NET_ADMIN/NET_RAW).
    assert values["cni"]["enabled"] is True
    assert values["global"]["proxy"]["seccompProfile"] == RUNTIME_DEFAULT
    assert values["seccompProfile"] == RUNTIME_DEFAULT  # istiod's own pod, for its restricted namespace
    assert "privileged" not in values["global"]["proxy"]
    defaults = istio_defaults("istiod")
    for path in ("cni.enabled", "seccompProfile", "global.proxy.seccompProfile", "global.proxy.privileged"):
        at(defaults, path)  # the keys exist where users set them
    assert defaults["global"]["proxy"]["privileged"] is False


def test_istiod_mesh_config_replicas_and_namespace_follow_the_stack(stack_run, cfg):
    values = release(stack_run, "istiod").inputs["values"]
    mesh = cfg.mesh
    assert values["meshConfig"]["outboundTrafficPolicy"] == {"mode": mesh.outbound_traffic}
    assert values["meshConfig"].get("accessLogFile") == ("/dev/stdout" if mesh.access_logging else None)
    assert values["replicaCount"] == values["autoscaleMin"] == mesh.gateway_replicas
    assert values["autoscaleMax"] >= values["autoscaleMin"]
    assert values["global"]["defaultPodDisruptionBudget"] == {"enabled": mesh.gateway_replicas > 1}
    assert values["global"]["istioNamespace"] == cfg.namespaces.mesh
    assert release(stack_run, "base").inputs["values"]["global"]["istioNamespace"] == cfg.namespaces.mesh


def test_access_logs_and_outbound_policy_follow_the_config(acme):
    values = release(acme, "istiod").inputs["values"]
    assert {k: v for k, v in values["meshConfig"].items() if k != "extensionProviders"} == {
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}
    }  # the tracing provider: tests/test_traces.py
    assert values["replicaCount"] == values["autoscaleMin"] == 1
    assert values["global"]["defaultPodDisruptionBudget"] == {"enabled": False}
    gateway = release(acme, GATEWAY_RELEASE).inputs["values"]
    assert gateway["podDisruptionBudget"] == {}  # a budget of minAvailable 1 on one pod would block every drain


def test_cni_runs_sidecar_mode_only(stack_run):
    values = release(stack_run, "cni").inputs["values"]
    assert values["ambient"] == {"enabled": False}
    assert istio_defaults("cni")["ambient"]["enabled"] is False


def test_gateway_replicas_service_and_restricted_pods(stack_run, cfg):
    values = release(stack_run, GATEWAY_RELEASE).inputs["values"]
    replicas = cfg.mesh.gateway_replicas
    assert values["replicaCount"] == values["autoscaling"]["minReplicas"] == replicas
    assert values["autoscaling"]["maxReplicas"] >= replicas
    assert values["podDisruptionBudget"] == ({"minAvailable": 1} if replicas > 1 else {})
    assert values["service"]["type"] == "LoadBalancer"
    security = values["securityContext"]
    assert security["seccompProfile"] == RUNTIME_DEFAULT
    # Setting securityContext replaces the chart's default, which lets the non-root proxy bind 80 and 443.
    assert security["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]


def test_gateway_keeps_the_chart_defaults_the_selector_and_principal_rely_on(cluster_issuer):
    defaults = istio_defaults("gateway")
    assert defaults["name"] == "" and defaults["serviceAccount"] == {"create": True, "annotations": {}, "name": ""}
    assert "app" not in defaults["labels"] and "istio" not in defaults["labels"]
    assert defaults["containerSecurityContext"] == {}  # the chart's non-root, no-capability proxy container
    values = release(cluster_issuer, GATEWAY_RELEASE).inputs["values"]
    assert not {"name", "serviceAccount", "labels", "containerSecurityContext"} & set(values)
    assert values["replicaCount"] == 4 and values["podDisruptionBudget"] == {"minAvailable": 1}
    # So the pods are labelled istio=<release without "istio-"> and run as the service account <release>.
    assert GATEWAY_SERVICE_ACCOUNT == GATEWAY_RELEASE == "istio-ingressgateway"


def test_images_follow_the_registry_mirror(stack_run, cfg):
    istiod, cni, gateway = (release(stack_run, n).inputs["values"] for n in ("istiod", "cni", GATEWAY_RELEASE))
    mirror = cfg.cluster.image_registry
    assert istio_defaults("istiod")["global"]["hub"] == istio_defaults("cni")["global"]["hub"] == versions.ISTIO_HUB
    if mirror:
        assert istiod["global"]["hub"] == cni["global"]["hub"] == f"{mirror}/istio"
    else:
        assert "hub" not in istiod["global"] and "hub" not in cni.get("global", {})
    # The gateway's image is "auto": istiod's injector sets the proxy image from istiod's hub.
    assert not {"hub", "image", "global"} & set(gateway)


# --- Gateway, certificate, issuer -----------------------------------------------------------------------------


def test_gateway_redirects_http_and_serves_https_with_the_certificate(stack_run, cfg):
    ingress = cfg.namespaces.ingress
    gateway = stack_run.one("Gateway", "ai-platform-gateway", ingress)
    certificate = stack_run.one("Certificate", "ai-platform-ingress", ingress)
    assert gateway.inputs["apiVersion"] == "networking.istio.io/v1"
    spec = gateway.inputs["spec"]
    assert spec["selector"] == {"istio": GATEWAY_RELEASE.removeprefix("istio-")}
    by_port = {s["port"]["number"]: s for s in spec["servers"]}
    assert set(by_port) == {80, 443}
    assert by_port[80]["port"]["protocol"] == "HTTP" and by_port[80]["tls"] == {"httpsRedirect": True}
    assert by_port[443]["port"]["protocol"] == "HTTPS"
    assert by_port[443]["tls"] == {"mode": "SIMPLE", "credentialName": certificate.inputs["spec"]["secretName"]}
    assert certificate.inputs["spec"]["secretName"] == "ai-platform-ingress-tls"
    for server in spec["servers"]:
        assert server["hosts"] == [f"*.{cfg.cluster.domain}"]
    # The Gateway KServe's config names is this one.
    kserve = release(stack_run, "kserve-resources").inputs["values"]["kserve"]["controller"]["gateway"]
    assert kserve["ingressGateway"]["gateway"] == f"{ingress}/ai-platform-gateway"


@pytest.mark.invariant
def test_certificate_covers_every_endpoint_host(stack_run, cfg):
    spec = stack_run.one("Certificate", "ai-platform-ingress", cfg.namespaces.ingress).inputs["spec"]
    hosts = [cfg.endpoint_host(e) for e in cfg.models]
    assert hosts and spec["dnsNames"] == hosts
    assert all(h.endswith(f".{cfg.cluster.domain}") for h in hosts)


def test_certificate_issuer_follows_the_stack(stack_run, cfg):
    spec = stack_run.one("Certificate", "ai-platform-ingress", cfg.namespaces.ingress).inputs["spec"]
    issuers = stack_run.of_kind("ClusterIssuer")
    expected = {"selfSigned": "ai-platform-selfsigned", "acme": "ai-platform-acme"}.get(
        cfg.mesh.tls.kind, cfg.mesh.tls.name
    )
    assert spec["issuerRef"] == {"kind": "ClusterIssuer", "name": expected, "group": "cert-manager.io"}
    assert [i.k8s_name for i in issuers] == ([] if cfg.mesh.tls.kind == "clusterIssuer" else [expected])


def test_self_signed_issuer(self_signed):
    (issuer,) = self_signed.of_kind("ClusterIssuer")
    assert issuer.k8s_name == "ai-platform-selfsigned" and issuer.inputs["spec"] == {"selfSigned": {}}
    assert issuer.inputs["apiVersion"] == "cert-manager.io/v1"
    spec = self_signed.one("Certificate", "ai-platform-ingress", "istio-ingress").inputs["spec"]
    assert spec["issuerRef"]["name"] == "ai-platform-selfsigned"
    assert not self_signed.of_kind("IngressClass")


def test_acme_issuer_solves_http01_through_istio(acme):
    (issuer,) = acme.of_kind("ClusterIssuer")
    assert issuer.k8s_name == "ai-platform-acme"
    assert issuer.inputs["spec"] == {
        "acme": {
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "email": "ops@example.com",
            "privateKeySecretRef": {"name": "ai-platform-acme-account"},
            "solvers": [{"http01": {"ingress": {"ingressClassName": "istio"}}}],
        }
    }
    spec = acme.one("Certificate", "ai-platform-ingress", "istio-ingress").inputs["spec"]
    assert spec["issuerRef"] == {"kind": "ClusterIssuer", "name": "ai-platform-acme", "group": "cert-manager.io"}
    (ingress_class,) = acme.of_kind("IngressClass")
    assert ingress_class.k8s_name == "istio"
    assert ingress_class.inputs["spec"] == {"controller": "istio.io/ingress-controller"}


def test_existing_cluster_issuer_is_referenced_not_created(cluster_issuer):
    assert not cluster_issuer.of_kind("ClusterIssuer") and not cluster_issuer.of_kind("IngressClass")
    spec = cluster_issuer.one("Certificate", "ai-platform-ingress", "istio-ingress").inputs["spec"]
    assert spec["issuerRef"] == {"kind": "ClusterIssuer", "name": "corp-ca", "group": "cert-manager.io"}


# --- mTLS and JWT ---------------------------------------------------------------------------------------------


@pytest.mark.invariant
def test_every_tenant_namespace_gets_strict_mtls(stack_run, cfg):
    policies = [p for p in stack_run.of_kind("PeerAuthentication") if p.k8s_name == "default"]  # Ray adds its own
    assert sorted(p.namespace for p in policies) == sorted(t.name for t in cfg.tenants)
    for policy in policies:
        assert policy.k8s_name == "default"
        assert policy.inputs["apiVersion"] == "security.istio.io/v1"
        assert policy.inputs["spec"] == {"mtls": {"mode": "STRICT"}}
        assert policy.inputs["metadata"]["labels"]["ai-platform/tenant"] == policy.namespace
        namespace = stack_run.one("Namespace", policy.namespace)
        assert namespace.urn in policy.dependencies  # waits for the tenant's namespace


def jwt_objects(result):
    return result.of_kind("RequestAuthentication"), result.of_kind("AuthorizationPolicy")


def test_jwt_objects_exist_only_when_configured(stack_run, cfg):
    authentications, policies = jwt_objects(stack_run)
    policies = [p for p in policies if p.namespace == cfg.namespaces.ingress]
    if not cfg.mesh.jwt:
        assert not authentications and not policies
        return
    (authentication,), (policy,) = authentications, policies
    jwt = cfg.mesh.jwt
    rule = {"issuer": jwt.issuer, "jwksUri": jwt.jwks_uri, "forwardOriginalToken": True}
    if jwt.audiences:
        rule["audiences"] = list(jwt.audiences)
    assert authentication.namespace == cfg.namespaces.ingress
    assert authentication.inputs["spec"] == {
        "selector": {"matchLabels": {"istio": "ingressgateway"}},
        "jwtRules": [rule],
    }
    # Each host with and without a port: Istio routes `Host: h:443` to the virtual host h, hosts match exactly.
    hosts = [value for e in cfg.models for value in (cfg.endpoint_host(e), f"{cfg.endpoint_host(e)}:*")]
    assert cfg.mesh.tls.kind != "acme"
    assert policy.inputs["spec"] == {
        "selector": {"matchLabels": {"istio": "ingressgateway"}},
        "action": "DENY",
        "rules": [{"from": [{"source": {"notRequestPrincipals": ["*"]}}], "to": [{"operation": {"hosts": hosts}}]}],
    }


def test_no_jwt_no_jwt_objects(self_signed):
    authentications, policies = jwt_objects(self_signed)
    assert not authentications and not [p for p in policies if p.namespace == "istio-ingress"]


def test_jwt_with_audiences(cluster_issuer):
    (authentication,), _ = jwt_objects(cluster_issuer)
    assert authentication.inputs["spec"]["jwtRules"] == [{**JWT, "audiences": ["a", "b"], "forwardOriginalToken": True}]


def test_jwt_without_endpoints_guards_the_whole_domain(jwt_without_endpoints):
    (authentication,), policies = jwt_objects(jwt_without_endpoints)
    assert authentication.inputs["spec"]["jwtRules"] == [{**JWT, "forwardOriginalToken": True}]  # no audiences
    (policy,) = [p for p in policies if p.namespace == "istio-ingress"]
    # Every host the gateway serves: `*.<domain>` could not be matched with a port in the Host header.
    assert policy.inputs["spec"]["rules"] == [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}]
    certificate = jwt_without_endpoints.one("Certificate", "ai-platform-ingress", "istio-ingress")
    assert certificate.inputs["spec"]["dnsNames"] == ["ai.dev.example.com"]


def test_jwt_with_acme_leaves_only_the_http01_challenge_open():
    result = mesh_run({"tls": {"kind": "acme", "email": "ops@example.com"}, "jwt": JWT})
    (policy,) = [p for p in result.of_kind("AuthorizationPolicy") if p.namespace == "istio-ingress"]
    [rule] = policy.inputs["spec"]["rules"]
    hosts = [
        value
        for h in ("qwen-chat.research.ai.dev.example.com", "iris.product.ai.dev.example.com")
        for value in (h, f"{h}:*")
    ]
    assert rule["to"] == [
        {"operation": {"hosts": hosts, "notPorts": ["80"]}},
        {"operation": {"hosts": hosts, "ports": ["80"], "notPaths": ["/.well-known/acme-challenge/*"]}},
    ]


# --- switching it off ---------------------------------------------------------------------------------------


def test_mesh_off_removes_all_of_it(mesh_off):
    cfg = stack_cfg("dev")
    charts = {r.inputs["chart"] for r in mesh_off.releases}
    assert not charts & ISTIO_CHARTS
    assert {"cert-manager", "volcano"} <= charts
    namespaces = {r.k8s_name for r in mesh_off.of_kind("Namespace")}
    assert not namespaces & {cfg.namespaces.mesh, cfg.namespaces.mesh_cni, cfg.namespaces.ingress}
    assert not [r for r in mesh_off.resources if r.type == "ai-platform:mesh:Mesh"]
    for kind in (
        "Gateway",
        "Certificate",
        "ClusterIssuer",
        "PeerAuthentication",
        "RequestAuthentication",
        "AuthorizationPolicy",
        "IngressClass",
    ):
        assert not mesh_off.of_kind(kind), kind


# The mesh without serving (cert-manager) is refused by the config, before anything is registered:
# tests/test_config_errors.py, "mesh without serving".
