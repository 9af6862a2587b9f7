"""``Mesh``: the Istio control plane (sidecar mode with the Istio CNI node agent) and the platform's ingress.

Owns three namespaces and four Helm releases of the pinned Istio charts:

- ``namespaces.mesh`` (Pod Security ``restricted``): the ``base`` release (Istio's CRDs, as chart templates
  — ``base.enableCRDTemplates`` — so ``pulumi up`` with a new pin upgrades them; they carry
  ``helm.sh/resource-policy: keep``, so uninstalling the release leaves them) and ``istiod`` (after ``base``).
  istiod's container runs as uid 1337, non-root, without privilege escalation or capabilities;
  ``seccompProfile: RuntimeDefault`` completes ``restricted``.
  istiod values: ``cni.enabled`` (the chart's key; its injector reads it as ``pilot.cni.enabled``): sidecars get
  the unprivileged ``istio-validation`` init container instead of the root ``istio-init`` with NET_ADMIN/NET_RAW;
  ``global.proxy.seccompProfile: RuntimeDefault`` on every injected container, so meshed pods pass the tenants'
  ``restricted`` level; access logs on stdout (``mesh.accessLogging``), ``outboundTrafficPolicy``
  (``mesh.outboundTraffic``), ``mesh.gatewayReplicas`` replicas at least (HPA up to 5) with a
  PodDisruptionBudget only when there is more than one;
- ``namespaces.mesh_cni`` (``privileged``): the ``cni`` release (``istio-cni-node`` DaemonSet, root, host
  paths, NET_ADMIN/NET_RAW/SYS_ADMIN: it writes the nodes' CNI config and sets up each pod's redirection),
  after ``base``, ambient redirection off (sidecar mode). istiod's node-untaint controller stays off, so istiod
  need not know this namespace;
- ``namespaces.ingress`` (``restricted``): the ``gateway`` chart released as ``istio-ingressgateway`` (pods
  labelled ``app: istio-ingressgateway``, ``istio: ingressgateway``; service account ``istio-ingressgateway``;
  a LoadBalancer Service on 80/443), after istiod, whose injector fills in its proxy. The pod security context
  keeps the chart's default (the ``net.ipv4.ip_unprivileged_port_start=0`` sysctl, so the non-root proxy binds
  80/443) and adds ``seccompProfile: RuntimeDefault``, the one thing ``restricted`` missed.
  ``mesh.gatewayReplicas`` replicas at least (HPA up to 5), a PodDisruptionBudget when more than one.

And, each after istiod (so after its webhooks and base's CRDs; not after the gateway release, whose pods read them
when they start); cert-manager objects after cert-manager only:

- the ingress certificate's issuer by ``mesh.tls.kind``: ``selfSigned`` -> ClusterIssuer
  ``ai-platform-selfsigned``; ``acme`` -> ClusterIssuer ``ai-platform-acme`` (HTTP-01 through Istio's Ingress
  support, plus the IngressClass ``istio`` that support needs); ``clusterIssuer`` -> the named existing one;
- the Certificate ``ai-platform-ingress`` (Secret ``ai-platform-ingress-tls`` in the ingress namespace, where
  the gateway reads it) for every endpoint host;
- the Gateway ``ai-platform-gateway``: ``*.<domain>`` on 80 (redirect to HTTPS) and 443 (TLS with that Secret);
- a ``STRICT`` mTLS PeerAuthentication ``default`` in every tenant namespace;
- with traces: the mesh's tracing provider ``otel`` (``meshConfig.extensionProviders``: OpenTelemetry over gRPC to the
  collector's Service, port 4317) and a mesh-wide ``Telemetry`` ``mesh-default`` (telemetry.istio.io/v1, in the mesh
  root namespace) tracing with it at ``traces.samplingPercent`` (``randomSamplingPercentage``);
- with ``mesh.jwt``: a RequestAuthentication on the gateway and an AuthorizationPolicy denying requests to the
  endpoint hosts that carry no valid token, each host listed with and without ``:*`` (``Host: h:443`` reaches the
  same virtual host; Istio's hosts match exactly), every host without endpoints, the ACME challenge path excepted.

``cluster.imageRegistry`` replaces the hub of the istiod and cni charts' images (``docker.io/istio`` ->
``<mirror>/istio``; tags stay the charts' appVersion); the gateway's and the sidecars' proxy image comes from
istiod's hub too.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi

from config import versions
from config.cluster import Cluster, Namespaces
from config.mesh import Mesh as MeshConfig

from ..meta import ComponentArgs, KubeObject, helm_release, kube, metadata, mirrored, platform_namespace
from ..pods import RUNTIME_DEFAULT
from ..traces import Otlp

COMPONENT = "mesh"
MESH_POD_SECURITY = "restricted"
CNI_POD_SECURITY = "privileged"
INGRESS_POD_SECURITY = "restricted"

GATEWAY_RELEASE = "istio-ingressgateway"
# The gateway chart derives its pods' selector labels and its service account from the release name:
# app=<release>, istio=<release without "istio-">, service account <release>.
GATEWAY_LABELS = {"istio": "ingressgateway"}
GATEWAY_SERVICE_ACCOUNT = GATEWAY_RELEASE
GATEWAY = "ai-platform-gateway"
TLS_SECRET = "ai-platform-ingress-tls"
CERTIFICATE = "ai-platform-ingress"
SELF_SIGNED_ISSUER = "ai-platform-selfsigned"
ACME_ISSUER = "ai-platform-acme"
ACME_ACCOUNT_SECRET = "ai-platform-acme-account"
INGRESS_CLASS = "istio"
ACME_CHALLENGE_PATHS = "/.well-known/acme-challenge/*"
ACME_PORT = "80"  # the gateway pods' HTTP listener (the gateway chart's Service 80 -> targetPort 80)
MAX_REPLICAS = 5  # the charts' default HPA maximum
# The gateway chart's default pod security context (lets the non-root proxy bind 80/443), restated because
# setting securityContext replaces it.
UNPRIVILEGED_PORTS = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]


def _hub(cluster: Cluster) -> dict:
    return {"hub": mirrored(versions.ISTIO_HUB, cluster.image_registry)} if cluster.image_registry else {}


def base_values(namespaces: Namespaces) -> dict:
    """Values of the base chart (CRDs and the default validating webhook, which points at istiod)."""
    return {"global": {"istioNamespace": namespaces.mesh}}


# The mesh's tracing provider (meshConfig.extensionProviders[].name; the Telemetry resource names it).
TRACING_PROVIDER = "otel"
TELEMETRY = "mesh-default"


def tracing_provider(otlp: Otlp) -> dict:
    """``meshConfig.extensionProviders`` entry: the proxies export spans over OTLP/gRPC to the collector."""
    return {"name": TRACING_PROVIDER, "opentelemetry": {"service": otlp.host, "port": otlp.grpc_port}}


def telemetry_spec(otlp: Otlp) -> dict:
    """The mesh-wide ``Telemetry`` spec (in the root namespace: every proxy): trace with the provider at the sampling
    percent."""
    return {"tracing": [{"providers": [{"name": TRACING_PROVIDER}], "randomSamplingPercentage": otlp.sampling_percent}]}


def gateway_api_crds(name: str, parent: pulumi.Resource) -> list[pulumi.Resource]:
    """The Gateway API and Inference Extension CRDs from their pinned release manifests (``config.versions``), for
    ``inferenceRouting`` (``components.mesh.inference_pools``)."""
    from pulumi_kubernetes.yaml.v2 import ConfigFile

    opts = pulumi.ResourceOptions(parent=parent)
    return [
        ConfigFile(f"{name}-gateway-api-crds", file=versions.GATEWAY_API_CRDS, opts=opts),
        ConfigFile(f"{name}-inference-extension-crds", file=versions.INFERENCE_EXTENSION_CRDS, opts=opts),
    ]


def istiod_values(
    mesh: MeshConfig, cluster: Cluster, namespaces: Namespaces, otlp: Otlp | None = None, inference: bool = False
) -> dict:
    """Values of the istiod chart (keys checked against the upstream values.yaml by the schema tier). With
    ``inference`` (``inferenceRouting.enabled``), istiod routes HTTPRoutes to InferencePools (off by default:
    istio/istio 1.30.3 architecture/networking/gateway-api-inference-extension.md, "Enabling the Feature")."""
    replicas = mesh.gateway_replicas
    mesh_config: dict = {"outboundTrafficPolicy": {"mode": mesh.outbound_traffic}}
    if mesh.access_logging:
        mesh_config["accessLogFile"] = "/dev/stdout"
    if otlp:
        mesh_config["extensionProviders"] = [tracing_provider(otlp)]
    return {
        "cni": {"enabled": True},
        "seccompProfile": RUNTIME_DEFAULT,
        "replicaCount": replicas,
        "autoscaleMin": replicas,
        "autoscaleMax": max(MAX_REPLICAS, replicas),
        "meshConfig": mesh_config,
        **({"env": {"ENABLE_GATEWAY_API_INFERENCE_EXTENSION": "true"}} if inference else {}),
        "global": {
            "istioNamespace": namespaces.mesh,
            "proxy": {"seccompProfile": RUNTIME_DEFAULT},
            "defaultPodDisruptionBudget": {"enabled": replicas > 1},
            **_hub(cluster),
        },
    }


def cni_values(cluster: Cluster) -> dict:
    """Values of the cni chart: sidecar-mode redirection only (the chart's defaults otherwise); the platform profile's
    ``global.platform`` and CNI binary directory where it has them."""
    profile = cluster.profile
    values: dict = {"ambient": {"enabled": False}}
    if profile.cni_bin_dir:
        values["cniBinDir"] = profile.cni_bin_dir
    if cluster.image_registry or profile.istio_platform:
        values["global"] = {**_hub(cluster), **({"platform": profile.istio_platform} if profile.istio_platform else {})}
    return values


def gateway_values(mesh: MeshConfig, cluster: Cluster) -> dict:
    """Values of the gateway chart (keys checked against its values.yaml and values.schema.json); the Service's
    annotations choose the platform's load balancer (``Profile.gateway_service_annotations``)."""
    replicas = mesh.gateway_replicas
    return {
        "replicaCount": replicas,
        "autoscaling": {"enabled": True, "minReplicas": replicas, "maxReplicas": max(MAX_REPLICAS, replicas)},
        "podDisruptionBudget": {"minAvailable": 1} if replicas > 1 else {},
        "securityContext": {"sysctls": UNPRIVILEGED_PORTS, "seccompProfile": RUNTIME_DEFAULT},
        "service": {
            "type": "LoadBalancer",
            **({"annotations": annotations} if (annotations := cluster.profile.gateway_service_annotations) else {}),
        },
    }


def guarded_hosts(hosts: list[str]) -> list[str]:
    """The Host header values of the endpoint hosts, as AuthorizationPolicy ``hosts`` must list them: each host and
    each host with any port. Istio routes ``Host: h:443`` (or any port) to the virtual host ``h`` but matches
    ``hosts`` exactly (``h:*`` is a prefix match): listing ``h`` alone lets a request name a port and skip the
    policy (istio.io, Operations > Best Practices > Security Best Practices, "Authorization policies on hosts";
    matchers: istio/istio 1.30.3 pilot/pkg/security/authz/matcher/header.go ``HostMatcher``)."""
    return [value for host in hosts for value in (host, f"{host}:*")]


def require_jwt_spec(hosts: list[str], tls_kind: str) -> dict:
    """The gateway's AuthorizationPolicy: DENY requests without a validated JWT (``notRequestPrincipals: ["*"]``;
    a request with an invalid token is refused by the RequestAuthentication already). To the endpoint hosts, each
    with and without a port (``guarded_hosts``); without endpoint hosts, to every host: the gateway serves only
    ``*.<domain>``, and ``*.<domain>`` cannot be matched with a port (Istio takes one wildcard, at either end).
    With ACME certificates the HTTP-01 challenge stays open on port 80 (the gateway chart's listener port for the
    Service's 80): the CA calls ``/.well-known/acme-challenge/<token>`` there without a token (RFC 8555 §8.3);
    everything else on 80 and every path on 443 still needs one."""
    scope: dict = {"hosts": guarded_hosts(hosts)} if hosts else {}
    if tls_kind == "acme":
        operations = [
            {**scope, "notPorts": [ACME_PORT]},
            {**scope, "ports": [ACME_PORT], "notPaths": [ACME_CHALLENGE_PATHS]},
        ]
    else:
        operations = [scope] if scope else []
    rule: dict = {"from": [{"source": {"notRequestPrincipals": ["*"]}}]}
    if operations:
        rule["to"] = [{"operation": operation} for operation in operations]
    return {"selector": {"matchLabels": GATEWAY_LABELS}, "action": "DENY", "rules": [rule]}


@dataclass(frozen=True)
class MeshArgs(ComponentArgs):
    """What ``Mesh`` is built from (besides the cluster and namespaces): its config and the endpoints' external hosts
    (the gateway's certificate); keyword-only, the tenants' namespaces (Outputs) and the cert-manager release (the
    issuer and certificate; cert-manager comes with serving, which the config requires of the mesh)."""

    mesh: MeshConfig
    hosts: list[str]
    otlp: Otlp | None = None
    """Where the proxies send spans (the collector), with traces on."""
    inference_routing: bool = False
    """Install the Gateway API and Inference Extension CRDs first and let istiod route to InferencePools."""
    _: KW_ONLY
    tenant_namespaces: dict[str, pulumi.Input[str]]
    cert_manager_release: pulumi.Resource


class Mesh(pulumi.ComponentResource):
    """Istio base, istiod, CNI agent and ingress gateway; the ingress Gateway, its certificate and issuer; strict
    mTLS in every tenant namespace; end-user JWT checks at the gateway when configured."""

    def __init__(self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:mesh:Mesh", name, None, opts)
        mesh, cluster, namespaces, hosts, protect = args.mesh, args.cluster, args.namespaces, args.hosts, args.protect
        tenant_namespaces, cert_manager_release = args.tenant_namespaces, args.cert_manager_release
        version = cluster.kubernetes_version
        self.namespace = platform_namespace(
            f"{name}-namespace", namespaces.mesh, COMPONENT, MESH_POD_SECURITY, version, self
        )
        self.cni_namespace = platform_namespace(
            f"{name}-cni-namespace", namespaces.mesh_cni, COMPONENT, CNI_POD_SECURITY, version, self
        )
        self.ingress_namespace = platform_namespace(
            f"{name}-ingress-namespace", namespaces.ingress, COMPONENT, INGRESS_POD_SECURITY, version, self
        )
        mesh_ns = self.namespace.metadata["name"]
        ingress_ns = self.ingress_namespace.metadata["name"]

        self.base_release = helm_release(
            f"{name}-base-release",
            versions.ISTIO_BASE,
            mesh_ns,
            base_values(namespaces),
            self,
            cluster=args.cluster,
            protect=protect,
        )
        # istiod serves the Gateway API kinds whose CRDs exist: they come first.
        crds = gateway_api_crds(name, self) if args.inference_routing else []
        self.istiod_release = helm_release(
            f"{name}-istiod-release",
            versions.ISTIOD,
            mesh_ns,
            istiod_values(mesh, cluster, namespaces, args.otlp, args.inference_routing),
            self,
            cluster=args.cluster,
            depends_on=[self.base_release, *crds],
        )
        self.cni_release = helm_release(
            f"{name}-cni-release",
            versions.ISTIO_CNI,
            self.cni_namespace.metadata["name"],
            cni_values(cluster),
            self,
            cluster=args.cluster,
            depends_on=[self.base_release],
        )
        self.gateway_release = helm_release(
            f"{name}-gateway-release",
            versions.ISTIO_GATEWAY,
            ingress_ns,
            gateway_values(mesh, cluster),
            self,
            cluster=args.cluster,
            depends_on=[self.istiod_release],
            release_name=GATEWAY_RELEASE,
        )

        self.gateway = f"{namespaces.ingress}/{GATEWAY}"
        self.gateway_principal = f"cluster.local/ns/{namespaces.ingress}/sa/{GATEWAY_SERVICE_ACCOUNT}"
        # What Istio custom resources wait for: istiod, which waits for base (the CRDs). Not the gateway release:
        # a Gateway or a route only selects pods, and the gateway's pods pick up the configuration when they come.
        # istiod's validating webhook starts with failurePolicy Ignore and is switched to Fail once istiod is ready:
        # created before that, a custom resource would skip Istio's semantic validation, hence istiod, not base.
        self.ready = self.istiod_release

        after_istiod = pulumi.ResourceOptions(parent=self, depends_on=[self.istiod_release])
        # cert-manager objects need only cert-manager (CRDs, webhook); the Certificate's Secret is read by the
        # gateway whenever it is there.
        after_cert_manager = pulumi.ResourceOptions(parent=self, depends_on=[cert_manager_release])

        def custom(
            logical: str,
            api_version: str,
            kind: str,
            meta: dict,
            spec: dict,
            options: pulumi.ResourceOptions = after_istiod,
        ) -> KubeObject:
            return kube(f"{name}-{logical}", api_version=api_version, kind=kind, metadata=meta, spec=spec, opts=options)

        tls = mesh.tls
        self.issuer: KubeObject | None = None
        self.ingress_class: KubeObject | None = None
        if tls.kind == "selfSigned":
            issuer = SELF_SIGNED_ISSUER
            self.issuer = custom(
                "issuer",
                "cert-manager.io/v1",
                "ClusterIssuer",
                metadata(issuer, COMPONENT),
                {"selfSigned": {}},
                after_cert_manager,
            )
        elif tls.kind == "acme":
            issuer = ACME_ISSUER
            self.issuer = custom(
                "issuer",
                "cert-manager.io/v1",
                "ClusterIssuer",
                metadata(issuer, COMPONENT),
                {
                    "acme": {
                        "server": tls.server,
                        "email": tls.email,
                        "privateKeySecretRef": {"name": ACME_ACCOUNT_SECRET},
                        "solvers": [{"http01": {"ingress": {"ingressClassName": INGRESS_CLASS}}}],
                    },
                },
                after_cert_manager,
            )
            # Istio serves the solver's Ingress only if its class names Istio's controller (STRICT mode).
            self.ingress_class = kube(
                f"{name}-ingress-class",
                api_version="networking.k8s.io/v1",
                kind="IngressClass",
                metadata=metadata(INGRESS_CLASS, COMPONENT),
                spec={"controller": "istio.io/ingress-controller"},
                opts=pulumi.ResourceOptions(parent=self),
            )
        else:
            # kind clusterIssuer: Issuer._fields_of_kind (config/mesh.py) requires its name
            assert tls.name is not None, "guaranteed by Issuer._fields_of_kind"
            issuer = tls.name

        self.certificate = custom(
            "certificate",
            "cert-manager.io/v1",
            "Certificate",
            metadata(CERTIFICATE, COMPONENT, ingress_ns),
            {
                "secretName": TLS_SECRET,
                "dnsNames": list(hosts) or [cluster.domain],
                "issuerRef": {"kind": "ClusterIssuer", "name": issuer, "group": "cert-manager.io"},
            },
            after_cert_manager,
        )

        wildcard = [f"*.{cluster.domain}"]
        self.gateway_resource = custom(
            "gateway",
            "networking.istio.io/v1",
            "Gateway",
            metadata(GATEWAY, COMPONENT, ingress_ns),
            {
                "selector": GATEWAY_LABELS,
                "servers": [
                    {
                        "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                        "hosts": wildcard,
                        "tls": {"httpsRedirect": True},
                    },
                    {
                        "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                        "hosts": wildcard,
                        "tls": {"mode": "SIMPLE", "credentialName": TLS_SECRET},
                    },
                ],
            },
        )

        self.peer_authentications = {
            tenant: custom(
                f"peer-authentication-{tenant}",
                "security.istio.io/v1",
                "PeerAuthentication",
                metadata("default", COMPONENT, namespace, tenant=tenant),
                {"mtls": {"mode": "STRICT"}},
            )
            for tenant, namespace in tenant_namespaces.items()
        }

        self.telemetry = (
            custom(
                "telemetry",
                "telemetry.istio.io/v1",
                "Telemetry",
                metadata(TELEMETRY, COMPONENT, namespace=mesh_ns),
                telemetry_spec(args.otlp),
            )
            if args.otlp
            else None
        )

        self.request_authentication = self.authorization_policy = None
        if mesh.jwt:
            jwt = mesh.jwt
            rule: dict = {"issuer": jwt.issuer, "jwksUri": jwt.jwks_uri, "forwardOriginalToken": True}
            if jwt.audiences:
                rule["audiences"] = list(jwt.audiences)
            selector = {"matchLabels": GATEWAY_LABELS}
            self.request_authentication = custom(
                "request-authentication",
                "security.istio.io/v1",
                "RequestAuthentication",
                metadata("ai-platform-jwt", COMPONENT, ingress_ns),
                {"selector": selector, "jwtRules": [rule]},
            )
            self.authorization_policy = custom(
                "authorization-policy",
                "security.istio.io/v1",
                "AuthorizationPolicy",
                metadata("ai-platform-require-jwt", COMPONENT, ingress_ns),
                require_jwt_spec(hosts, tls.kind),
            )

        self.register_outputs(
            {"namespace": mesh_ns, "gateway": self.gateway, "gatewayPrincipal": self.gateway_principal}
        )
