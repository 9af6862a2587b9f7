"""KV-cache- and queue-aware routing of vLLM endpoints at the ingress gateway (``config.routing``): the Gateway API
Inference Extension on Istio.

The Gateway API (v1.6.1, standard channel) and Inference Extension (v1.6.0) CRDs and istiod's
``ENABLE_GATEWAY_API_INFERENCE_EXTENSION`` come with the mesh (``control_plane.gateway_api_crds``).

``InferenceGateway`` owns, in the ingress namespace, the Gateway API ``Gateway`` ``inference``: class ``istio``, one
address of type Hostname, the platform's ingress gateway Service, so istiod programs the gateway pods the platform
already runs instead of deploying others (Istio's manual deployment: istio/istio 1.30.3
pilot/pkg/config/kube/gatewaycommon/gateway_utils.go ``IsManaged``, conversion.go ``extractGatewayServices``). One HTTPS
listener per pooled endpoint host, with the platform's certificate, open to routes of that endpoint's tenant only; and
the ClusterRole ``PICKER_ROLE_NAME`` (what a picker reads, ``picker_rules``) that each picker is bound to in its
namespace.

``EndpointPools`` owns, in the tenant namespace of one pooled endpoint:

- per version (stable, canary) an ``InferencePool`` (``pool_name``) selecting that version's vLLM pods on port 8000,
  and its endpoint picker ``<pool>-epp`` (``picker_deployment_spec``: the ``inferencepool`` chart v1.5.0's EPP with the
  scorers of ``config.routing``, restricted, no sidecar), its ServiceAccount and RoleBinding, Service, ConfigMap, a
  ServiceMonitor of the endpoint's pickers (with monitoring), and the DestinationRule by which the gateway speaks TLS to it (the chart's istio provider: the picker
  serves gRPC over TLS with a self-signed certificate);
- the ``HTTPRoute`` of the endpoint's host on ``inference``: header routes first (``x-model-version: canary`` and the
  configured ones), each to one version's pool; then the weighted split over both pools, the request timeout of
  ``traffic.timeout``;
- the vLLM pods' PeerAuthentication and AuthorizationPolicy that let the picker, which has no sidecar, read
  ``GET /metrics`` on port 8000 in plain text (an Istio workload certificate is the only client certificate the
  pods' STRICT mTLS accepts, and the picker cannot present one); every other request still needs mTLS and the
  identities ``components.mesh.traffic`` allows, and NetworkPolicies admit only the tenant's and the platform's pods.

How a request is routed (Istio 1.30.3). HTTPRoute -> InferencePool: istiod makes a headless shadow Service
``<pool>-ip-<hash>`` per pool (the pool's selector; port 54321 -> the target port) and gives the route's rule an
ext_proc filter to the pool's picker (``endpointPickerRef``; pilot/pkg/config/kube/gateway/conversion.go
``buildDestination``, pilot/pkg/networking/core/route/route.go). The picker answers with the chosen pod, which the
shadow Service's cluster honours (override-host load balancing). **One picker per rule**: with several pools in one
rule Istio keeps the last one's picker (conversion.go ``buildHTTPDestination``: ``ipCfg = ipconfig`` in the loop), so
the weighted rule lists the canary's pool first and the stable one last: the stable share is placed by the stable
picker; a request the split sends to the canary carries the stable picker's choice, which the canary's cluster does not
hold, and is balanced there by the cluster. Requests with the canary header get the canary's own picker.

The endpoint's VirtualService (``components.mesh.traffic``) is unchanged: in-mesh callers and HTTP/2 connections a
client opened for another host of the platform's certificate (coalesced onto the wildcard server) keep the mesh's
routing. Off (``inferenceRouting.enabled: false``): none of this is created.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi

from config import versions
from config.model import PlatformConfig
from config.serving import Endpoint

from ..meta import KubeObject, kube, metadata, mirrored
from ..pods import restricted_container, restricted_pod
from ..serving import engines
from ..serving.engines.base import CANARY, ENDPOINT_LABEL, ROLE_LABEL, STABLE, version_name, versions_of
from .control_plane import GATEWAY_RELEASE, TLS_SECRET, Mesh

COMPONENT = "inference-routing"
GATEWAY_NAME = "inference"
GATEWAY_CLASS = "istio"
POOL_GROUP = "inference.networking.k8s.io"
POOL_API = f"{POOL_GROUP}/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"
EXT_PROC_PORT, HEALTH_PORT, METRICS_PORT = 9002, 9003, 9090  # epplib templates/_deployment.yaml, _service.yaml
PICKER_UID = 65532  # distroless static:nonroot (config.images.EPP)
PICKER_ROLE = "endpoint-picker"
PICKER_PODS = {ROLE_LABEL: PICKER_ROLE}
"""Every picker's pods: the tenant NetworkPolicy ``allow-kube-apiserver-picker`` lets them call the API server."""
POOL_LABEL = "ai-platform/inference-pool"
PICKER_FOR_LABEL = "ai-platform/picker-for"
"""The endpoint a picker object serves (not ``ENDPOINT_LABEL``: that one marks the endpoint's model servers)."""
PICKER_ROLE_NAME = "ai-platform-endpoint-picker"
"""The ClusterRole each picker is bound to in its namespace (a RoleBinding): the chart's two Roles in one."""
PICKER_JOB = "endpoint-picker"
"""The pickers' scrape job; each series also carries ``pool`` (the InferencePool) and ``namespace`` (the tenant)."""
CONFIG_FILE = "default-plugins.yaml"
HEALTH_SERVICE = "inference-extension"  # the chart's gRPC health service with one replica
MODEL_SERVER_PORT = 8000  # vLLM's HTTP port: API and /metrics (components.serving.engines.vllm)
TERMINATION_GRACE_SECONDS = 130  # the chart's: the longest grace period of the pool's pods


def pool_name(endpoint: Endpoint, version: str) -> str:
    """The InferencePool of one version: the endpoint's name, ``-canary`` for the canary."""
    return version_name(endpoint.name, version)


def picker_name(pool: str) -> str:
    """The picker's Deployment, Service, ConfigMap and ServiceAccount (the pool's ``endpointPickerRef``)."""
    return f"{pool}-epp"


def listener_name(endpoint: Endpoint) -> str:
    """The Gateway listener of the endpoint's host (the HTTPRoute's ``sectionName``)."""
    return f"{endpoint.tenant}-{endpoint.name}"


def gateway_spec(cfg: PlatformConfig, ingress_namespace: str) -> dict:
    """The ``inference`` Gateway: the platform's gateway Service as its only address; a listener per pooled host."""
    listeners = [
        {
            "name": listener_name(endpoint),
            "hostname": cfg.endpoint_host(endpoint),
            "port": 443,
            "protocol": "HTTPS",
            "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": TLS_SECRET}]},
            "allowedRoutes": {
                "namespaces": {
                    "from": "Selector",
                    "selector": {"matchLabels": {"kubernetes.io/metadata.name": endpoint.tenant}},
                },
                "kinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
            },
        }
        for endpoint in cfg.models
        if cfg.inference_routing.pooled(endpoint)
    ]
    service = f"{GATEWAY_RELEASE}.{ingress_namespace}.svc.cluster.local"
    return {
        "gatewayClassName": GATEWAY_CLASS,
        "addresses": [{"type": "Hostname", "value": service}],
        "listeners": listeners,
    }


def _pool_ref(endpoint: Endpoint, version: str, weight: int | None = None) -> dict:
    ref = {"group": POOL_GROUP, "kind": "InferencePool", "name": pool_name(endpoint, version)}
    return ref if weight is None else {**ref, "weight": weight}


def http_route_spec(cfg: PlatformConfig, endpoint: Endpoint, ingress_namespace: str) -> dict:
    """The endpoint host's HTTPRoute: header routes to one pool each, then the weighted split (canary pool first,
    stable last: the rule's picker is the last pool's, see the module docstring)."""
    traffic = endpoint.traffic
    timeouts = {"request": traffic.timeout}
    header_routes: list[tuple[str, str, str]] = [(r.header, r.value, r.subset) for r in traffic.header_routes]
    if endpoint.canary and ("x-model-version", "canary") not in [(h, v) for h, v, _ in header_routes]:
        header_routes.insert(0, ("x-model-version", "canary", CANARY))
    rules = [
        {
            "matches": [{"headers": [{"type": "Exact", "name": header, "value": value}]}],
            "backendRefs": [_pool_ref(endpoint, version)],
            "timeouts": timeouts,
        }
        for header, value, version in header_routes
    ]
    split = [_pool_ref(endpoint, STABLE, traffic.weights.stable)]
    if endpoint.canary:
        split.insert(0, _pool_ref(endpoint, CANARY, traffic.weights.canary))
    rules.append({"backendRefs": split, "timeouts": timeouts})
    return {
        "parentRefs": [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": GATEWAY_NAME,
                "namespace": ingress_namespace,
                "sectionName": listener_name(endpoint),
            }
        ],
        "hostnames": [cfg.endpoint_host(endpoint)],
        "rules": rules,
    }


def pool_spec(cfg: PlatformConfig, endpoint: Endpoint, version: str) -> dict:
    """One version's InferencePool: that version's model-server pods (the Deployment's selector), vLLM's port, its
    picker (``endpointPickerRef``, as the chart's templates/inferencepool.yaml)."""
    pool = pool_name(endpoint, version)
    return {
        "targetPorts": [{"number": MODEL_SERVER_PORT}],
        "appProtocol": "http",
        "selector": {"matchLabels": engines.of(endpoint).pod_selector(endpoint, version)},
        "endpointPickerRef": {
            "name": picker_name(pool),
            "port": {"number": EXT_PROC_PORT},
            "failureMode": cfg.inference_routing.failure_mode,
        },
    }


def picker_config(cfg: PlatformConfig, endpoint: Endpoint) -> dict:
    """The picker's ``EndpointPickerConfig``: the chart's default (epplib templates/_config.yaml at v1.5.0, model
    server type vllm over HTTP) with the endpoint's scorer weights; a scorer of weight 0 is left out."""
    weights = cfg.inference_routing.scorers_of(endpoint).weights()
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": [{"type": plugin} for plugin in weights]
        + [
            {
                "type": "metrics-data-source",
                "parameters": {"scheme": "http", "path": "/metrics", "insecureSkipVerify": True},
            },
            {"type": "core-metrics-extractor"},
        ],
        "schedulingProfiles": [
            {"name": "default", "plugins": [{"pluginRef": plugin, "weight": w} for plugin, w in weights.items()]}
        ],
    }


def picker_labels(pool: str) -> dict[str, str]:
    return {**PICKER_PODS, POOL_LABEL: pool}


def picker_deployment_spec(cfg: PlatformConfig, endpoint: Endpoint, pool: str) -> dict:
    """The picker of ``pool``: the chart's EPP container (epplib templates/_deployment.yaml at v1.5.0, one replica,
    Recreate), restricted, no sidecar (it serves its own TLS and reads the pods' metrics in plain text), metrics without
    the chart's token review (``--metrics-endpoint-auth=false``: NetworkPolicies admit Prometheus only)."""
    resources = cfg.inference_routing.picker.resources
    amounts = {"cpu": resources.cpu, "memory": resources.memory}
    health = {"grpc": {"port": HEALTH_PORT, "service": HEALTH_SERVICE}}
    container = {
        "name": "epp",
        "image": mirrored(versions.EPP_IMAGE, cfg.cluster.image_registry),
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "--pool-name",
            pool,
            "--pool-namespace",
            endpoint.tenant,
            "--pool-group",
            POOL_GROUP,
            "--zap-encoder",
            "json",
            "--config-file",
            f"/config/{CONFIG_FILE}",
            "--v",
            "1",
            "--tracing=false",
            "--metrics-endpoint-auth=false",
        ],
        "ports": [
            {"name": "grpc", "containerPort": EXT_PROC_PORT},
            {"name": "grpc-health", "containerPort": HEALTH_PORT},
            {"name": "metrics", "containerPort": METRICS_PORT},
        ],
        "livenessProbe": {**health, "initialDelaySeconds": 5, "periodSeconds": 10},
        "readinessProbe": {**health, "periodSeconds": 2},
        "env": [
            {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "resources": {"requests": dict(amounts), "limits": dict(amounts)},
        "volumeMounts": [{"name": "plugins-config", "mountPath": "/config", "readOnly": True}],
        "securityContext": restricted_container(non_root=True, seccomp=True),
    }
    labels = picker_labels(pool)
    return {
        "replicas": 1,
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": dict(labels)},
        "template": {
            # Not the endpoint's label: the endpoint's selectors (policies, monitors) are for its model servers.
            "metadata": {"labels": {**labels, "sidecar.istio.io/inject": "false"}},
            "spec": {
                "serviceAccountName": picker_name(pool),
                "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                "securityContext": restricted_pod(PICKER_UID, gid=PICKER_UID),
                "containers": [container],
                "volumes": [{"name": "plugins-config", "configMap": {"name": picker_name(pool)}}],
            },
        },
    }


def picker_rules() -> list[dict]:
    """What a picker reads in its namespace, as the chart's Roles (epplib templates/_leader-election-rbac.yaml ``-sa``:
    pods; inferencepool templates/rbac.yaml ``-non-sa``: the inference objects), in one ClusterRole that each picker's
    RoleBinding grants in its namespace only."""
    read = ["get", "watch", "list"]
    return [
        {"apiGroups": [""], "resources": ["pods"], "verbs": read},
        {
            "apiGroups": ["inference.networking.x-k8s.io"],
            "resources": ["inferenceobjectives", "inferencemodelrewrites"],
            "verbs": read,
        },
        {"apiGroups": [POOL_GROUP], "resources": ["inferencepools"], "verbs": read},
    ]


def picker_object_labels(endpoint: Endpoint, pool: str) -> dict[str, str]:
    return {**picker_labels(pool), PICKER_FOR_LABEL: endpoint.name}


def picker_monitor_spec(endpoint: Endpoint) -> dict:
    """The endpoint's pickers' metrics (plain HTTP: they have no sidecar), as job ``PICKER_JOB`` with ``pool`` from the
    Service's ``POOL_LABEL`` (their request and scheduler series carry no pool of their own)."""
    pool_meta = "__meta_kubernetes_service_label_" + "".join(c if c.isalnum() else "_" for c in POOL_LABEL)
    return {
        "selector": {"matchLabels": {ROLE_LABEL: PICKER_ROLE, PICKER_FOR_LABEL: endpoint.name}},
        "endpoints": [
            {
                "port": "http-metrics",
                "path": "/metrics",
                "interval": "15s",
                "relabelings": [
                    {"targetLabel": "job", "replacement": PICKER_JOB},
                    {"sourceLabels": [pool_meta], "targetLabel": "pool"},
                ],
            }
        ],
    }


def model_server_peer_authentication(endpoint: Endpoint) -> dict:
    """STRICT mTLS for the endpoint's model servers except plain text on vLLM's port, which the picker scrapes."""
    return {
        "selector": {"matchLabels": {ENDPOINT_LABEL: endpoint.name}},
        "mtls": {"mode": "STRICT"},
        "portLevelMtls": {str(MODEL_SERVER_PORT): {"mode": "PERMISSIVE"}},
    }


def metrics_read_policy(endpoint: Endpoint) -> dict:
    """ALLOW ``GET /metrics`` on vLLM's port from any caller that reaches it (the picker, in plain text): Istio ORs
    ALLOW policies, so the endpoint's other rules (``components.mesh.traffic``) still govern everything else."""
    return {
        "selector": {"matchLabels": {ENDPOINT_LABEL: endpoint.name}},
        "action": "ALLOW",
        "rules": [
            {"to": [{"operation": {"ports": [str(MODEL_SERVER_PORT)], "methods": ["GET"], "paths": ["/metrics"]}}]}
        ],
    }


@dataclass(frozen=True)
class InferenceGatewayArgs:
    """The whole config (the pooled endpoints and their hosts); keyword-only, the ingress namespace and the mesh."""

    config: PlatformConfig
    _: KW_ONLY
    namespace: pulumi.Input[str]
    mesh: Mesh


class InferenceGateway(pulumi.ComponentResource):
    """The Gateway API ``Gateway`` on the platform's ingress gateway pods (module docstring)."""

    def __init__(self, name: str, args: InferenceGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:mesh:InferenceGateway", name, None, opts)
        self.gateway = kube(
            f"{name}-gateway",
            api_version=GATEWAY_API,
            kind="Gateway",
            metadata=metadata(GATEWAY_NAME, COMPONENT, namespace=args.namespace),
            spec=pulumi.Output.from_input(args.namespace).apply(lambda ns: gateway_spec(args.config, ns)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.mesh.ready]),
        )
        kube(
            f"{name}-picker-role",
            api_version="rbac.authorization.k8s.io/v1",
            kind="ClusterRole",
            metadata=metadata(PICKER_ROLE_NAME, COMPONENT),
            rules=picker_rules(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


@dataclass(frozen=True)
class EndpointPoolsArgs:
    """What ``EndpointPools`` is built from: the whole config and the endpoint; keyword-only, the tenant's namespace,
    the ingress namespace's name, the mesh (istiod, which waits for the CRDs) and the monitoring release."""

    config: PlatformConfig
    endpoint: Endpoint
    _: KW_ONLY
    namespace: pulumi.Input[str]
    ingress_namespace: str
    mesh: Mesh
    monitoring: pulumi.Resource | None = None
    """The monitoring release (its CRDs): with it, a ServiceMonitor of the pickers."""


class EndpointPools(pulumi.ComponentResource):
    """InferencePools, pickers and the HTTPRoute of one vLLM endpoint (module docstring)."""

    def __init__(self, name: str, args: EndpointPoolsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:mesh:EndpointPools", name, None, opts)
        cfg, endpoint, ns = args.config, args.endpoint, args.namespace
        after_mesh = pulumi.ResourceOptions(parent=self, depends_on=[args.mesh.ready])

        def object_(
            logical: str,
            api_version: str,
            kind: str,
            object_name: str,
            labels: dict | None = None,
            opts: pulumi.ResourceOptions = after_mesh,
            **fields: object,
        ) -> KubeObject:
            extra = {ENDPOINT_LABEL: endpoint.name} if labels is None else labels
            meta = metadata(object_name, COMPONENT, namespace=ns, tenant=endpoint.tenant, extra_labels=extra)
            return kube(f"{name}-{logical}", api_version=api_version, kind=kind, metadata=meta, opts=opts, **fields)

        for version, _ in versions_of(endpoint):
            pool = pool_name(endpoint, version)
            picker = picker_name(pool)
            at = version_name(name, version)
            object_(f"{at}-pool", POOL_API, "InferencePool", pool, spec=pool_spec(cfg, endpoint, version))
            own = picker_object_labels(endpoint, pool)
            object_(f"{at}-picker-account", "v1", "ServiceAccount", picker, own)
            object_(
                f"{at}-picker-binding",
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                picker,
                own,
                subjects=[{"kind": "ServiceAccount", "name": picker, "namespace": endpoint.tenant}],
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": PICKER_ROLE_NAME},
            )
            config_yaml = _yaml(picker_config(cfg, endpoint))
            object_(f"{at}-picker-config", "v1", "ConfigMap", picker, own, data={CONFIG_FILE: config_yaml})
            object_(
                f"{at}-picker", "apps/v1", "Deployment", picker, own, spec=picker_deployment_spec(cfg, endpoint, pool)
            )
            ports = [
                {"name": "grpc-ext-proc", "port": EXT_PROC_PORT, "protocol": "TCP"},
                {"name": "http-metrics", "port": METRICS_PORT, "protocol": "TCP"},
            ]
            object_(
                f"{at}-picker-service",
                "v1",
                "Service",
                picker,
                own,
                spec={"selector": picker_labels(pool), "ports": ports},
            )
            object_(
                f"{at}-picker-destinationrule",
                "networking.istio.io/v1",
                "DestinationRule",
                picker,
                own,
                spec={
                    "host": f"{picker}.{endpoint.tenant}.svc.cluster.local",
                    "trafficPolicy": {"tls": {"mode": "SIMPLE", "insecureSkipVerify": True}},
                },
            )
        object_(
            "route",
            GATEWAY_API,
            "HTTPRoute",
            endpoint.name,
            spec=http_route_spec(cfg, endpoint, args.ingress_namespace),
        )
        object_(
            "peer-authentication",
            "security.istio.io/v1",
            "PeerAuthentication",
            f"{endpoint.name}-picker-scrape",
            spec=model_server_peer_authentication(endpoint),
        )
        if args.monitoring is not None:
            object_(
                "picker-monitor",
                "monitoring.coreos.com/v1",
                "ServiceMonitor",
                f"{endpoint.name}-pickers",
                {PICKER_FOR_LABEL: endpoint.name},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.monitoring]),
                spec=picker_monitor_spec(endpoint),
            )
        object_(
            "metrics-policy",
            "security.istio.io/v1",
            "AuthorizationPolicy",
            f"{endpoint.name}-picker-scrape",
            spec=metrics_read_policy(endpoint),
        )
        self.register_outputs({})


def _yaml(value: dict) -> str:
    import yaml

    return yaml.dump(value, Dumper=yaml.CSafeDumper, sort_keys=False)
