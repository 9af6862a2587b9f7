"""``RateLimits``: per-consumer and per-endpoint request limits and token budgets at the ingress gateway
(``config.ratelimits``).

Owns, in the ingress namespace beside the gateway, when the stack declares a consumer or an endpoint limit and
``rateLimits.enabled``:

- the rate-limit service: Envoy's global rate-limit service (envoyproxy/ratelimit, ``versions.RATELIMIT_IMAGE``),
  ``rateLimits.replicas`` replicas, no sidecar, restricted, with its configuration ``service_config`` (domain
  ``DOMAIN``) in the ConfigMap ``ratelimit-config``, its counters in
- the store: Valkey (``versions.VALKEY_IMAGE``), one replica, no persistence (a lost counter resets a window), its
  password generated (``ratelimit-store`` Secret, key ``password``);
- the EnvoyFilter ``ai-platform-rate-limits`` on the gateway's pods: Envoy's ``envoy.filters.http.ratelimit`` HTTP filter
  before the router, asking the service over gRPC for every request to a limited endpoint host, and on each such
  host's virtual host the ``rate_limits`` actions (``host_rate_limits``) that build the descriptors;
- NetworkPolicies: the service admits the gateway's pods (gRPC) and Prometheus (metrics) only, the store admits the
  service only;
- with monitoring, a ServiceMonitor of the service's Prometheus metrics.

How a request is counted. The gateway's ``RequestAuthentication`` (``mesh.jwt``) verifies the token and puts its
payload into the dynamic metadata ``envoy.filters.http.jwt_authn``/``payload`` (istio/istio 1.30.3
pilot/pkg/security/authn/policy_applier.go ``PayloadInMetadata: filters.EnvoyJwtFilterPayload``, "payload" in
pilot/pkg/xds/filters/filters.go). For an endpoint host the ratelimit filter sends up to two descriptors:
``[(endpoint, <tenant>/<name>)]`` when the endpoint has ``limits``, and ``[(tenant, <tenant>), (consumer, <claim
value>)]`` when the tenant declares consumers, the value read from the *verified* payload's ``mesh.jwt.consumerClaim``
(a header copy, ``outputClaimToHeaders``, would keep a client-sent header on a request without the claim). A token
without the claim yields no consumer descriptor (Envoy skips a ``metadata`` action with no value and no default:
envoyproxy/envoy source/common/router/router_ratelimit.cc ``MetadataAction``), so such a caller meets only the
endpoint's ceiling. Over a limit the gateway answers 429 with ``x-envoy-ratelimited``, ``X-RateLimit-*``
(``enable_x_ratelimit_headers: DRAFT_VERSION_03``: limit, remaining, seconds to the window's reset) and
``Retry-After: 60`` (a static header of the filter's ``response_headers_to_add``: every limit is per minute, so a
client that waits 60 seconds is in a new window).

The service's lookup (envoyproxy/ratelimit src/config/config_impl.go ``GetLimit`` at f2fb157): each descriptor entry
is looked up as ``key_value`` in the current level, else as ``key`` alone (a default), and the limit found at the last
entry applies; counters are per descriptor (every entry's key and value) and window. Keys come from
``service_config``, which lists exactly the declared consumers and ceilings.

Token budgets (consumers' and endpoints' ``tokensPerMinute``, vLLM endpoints): the usage filter (``TOKEN_USAGE_LUA``)
reads each metered response's ``usage.total_tokens`` into dynamic metadata; per budget the virtual host has two
entries on one descriptor (``_metered``): a check on the request that adds nothing, and a charge of the response's
tokens when the stream is done. The server reports usage in every response (``ServerEngine.token_usage_args``).

Facts of the service (envoyproxy/ratelimit at f2fb157, src/settings/settings.go): gRPC on ``GRPC_PORT`` 8081, HTTP
with ``/healthcheck`` on 8080, Prometheus metrics on ``PROMETHEUS_ADDR`` ``:9090`` with ``USE_PROMETHEUS`` (statsd,
on by default, off); the configuration is every file under ``RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/config``, dot files
ignored (a ConfigMap volume's ``..data`` links), reloaded from the mounted ConfigMap with ``RUNTIME_WATCH_ROOT=false``
(the Istio 1.30.3 sample samples/ratelimit/rate-limit-service.yaml sets the same). The image is distroless
``static-debian12:nonroot`` (uid 65532) with ``/bin/ratelimit`` as entrypoint (Dockerfile).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi

from config import versions
from config.model import PlatformConfig
from config.serving import Endpoint

from ..meta import ComponentArgs, KubeObject, kube, metadata, mirrored
from ..pods import restricted_container, restricted_pod, tmp_mount, tmp_volume
from ..secrets import PlatformSecrets

COMPONENT = "rate-limits"
DOMAIN = "ai-platform"
NAME = "ratelimit"
STORE = "ratelimit-store"
CONFIG_MAP = "ratelimit-config"
FILTER = "ai-platform-rate-limits"
GRPC_PORT, HTTP_PORT, METRICS_PORT, STORE_PORT = 8081, 8080, 9090, 6379
SERVICE_UID = 65532  # distroless nonroot
STORE_UID = 999  # valkey-io/valkey-container 8.0/debian/Dockerfile: useradd -u 999 valkey
ENDPOINT_KEY, TENANT_KEY, CONSUMER_KEY = "endpoint", "tenant", "consumer"
# Token counters: their own keys, which the request keys' metric patterns (``tenant_``, ``endpoint_``) do not match.
ENDPOINT_TOKENS_KEY, TENANT_TOKENS_KEY = "endpoint-tokens", "tenant-tokens"
RATELIMIT_FILTER = "envoy.filters.http.ratelimit"
USAGE_FILTER = "ai-platform.token-usage"
USAGE_NAMESPACE, USAGE_KEY = "ai-platform.usage", "total_tokens"
USAGE_FORMAT = f"%DYNAMIC_METADATA({USAGE_NAMESPACE}:{USAGE_KEY})%"
# The gateway's Lua filter (LuaJIT; Envoy docs/root/configuration/http/http_filters/lua_filter.rst: ``bodyChunks()``
# iterates the response's chunks "as they arrive ... will not buffer them"; ``streamInfo():dynamicMetadata():set``).
# On a metered host it keeps the last ``"total_tokens":N`` of the response body (vLLM puts ``usage`` last in a JSON
# response, and with --enable-force-include-usage cumulative usage in every streamed chunk, the final one last) and
# leaves N where the ratelimit filter's stream-done entries read it (``USAGE_FORMAT``). A string in the body cannot fake
# it: JSON escapes its quotes (``\"total_tokens\"``). The tail of each chunk is kept so a number split between chunks
# is read whole. No usage (an error, a non-JSON answer): nothing is set and nothing charged.
TOKEN_USAGE_LUA = """\
local METERED = METERED_HOSTS
local NAMESPACE, KEY = "ai-platform.usage", "total_tokens"

function envoy_on_request(request_handle)
  local host = string.lower(string.gsub(request_handle:headers():get(":authority") or "", ":%d+$", ""))
  if METERED[host] then
    request_handle:streamInfo():dynamicMetadata():set(NAMESPACE, "metered", true)
  end
end

function envoy_on_response(response_handle)
  local meta = response_handle:streamInfo():dynamicMetadata():get(NAMESPACE)
  if not (meta and meta["metered"]) then
    return
  end
  local total, tail = nil, ""
  for chunk in response_handle:bodyChunks() do
    local size = chunk:length()
    if size > 0 then
      local text = tail .. chunk:getBytes(0, size)
      for n in string.gmatch(text, '"total_tokens"%s*:%s*(%d+)') do
        total = n
      end
      tail = string.sub(text, -64)
    end
  end
  if total then
    response_handle:streamInfo():dynamicMetadata():set(NAMESPACE, KEY, tonumber(total))
  end
end
"""
JWT_METADATA = "envoy.filters.http.jwt_authn"
RETRY_AFTER_SECONDS = 60
SERVICE_LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "ai-platform"}
STORE_LABELS = {"app.kubernetes.io/name": STORE, "app.kubernetes.io/part-of": "ai-platform"}


def endpoint_id(tenant: str, endpoint: str) -> str:
    return f"{tenant}/{endpoint}"


def service_config(cfg: PlatformConfig) -> dict:
    """The rate-limit service's configuration: one domain; per limited endpoint an ``endpoint`` (requests) and an
    ``endpoint-tokens`` (tokens) level with its ceiling and, nested, a descriptor per consumer (its claim value) limited
    on that endpoint; per tenant with consumers a ``tenant`` (requests) and a ``tenant-tokens`` (tokens) level with a
    descriptor per consumer that has that limit."""
    descriptors: list[dict] = []
    for endpoint in cfg.models:
        limits = endpoint.limits
        if limits is None:
            continue
        claims = {c.name: c.claim_value for c in cfg.tenant(endpoint.tenant).consumers}
        for key, field in ((ENDPOINT_KEY, "requests_per_minute"), (ENDPOINT_TOKENS_KEY, "tokens_per_minute")):
            entry: dict = {"key": key, "value": endpoint_id(endpoint.tenant, endpoint.name)}
            if getattr(limits, field):
                entry["rate_limit"] = {"unit": "minute", "requests_per_unit": getattr(limits, field)}
            nested = [
                {
                    "key": CONSUMER_KEY,
                    "value": claims[limit.consumer],
                    "rate_limit": {"unit": "minute", "requests_per_unit": getattr(limit, field)},
                }
                for limit in limits.consumers
                if getattr(limit, field)
            ]
            if nested:
                entry["descriptors"] = nested
            if len(entry) > 2:
                descriptors.append(entry)
    for tenant in cfg.tenants:
        for key, field in ((TENANT_KEY, "requests_per_minute"), (TENANT_TOKENS_KEY, "tokens_per_minute")):
            consumers = [c for c in tenant.consumers if getattr(c, field)]
            if consumers:
                descriptors.append(
                    {
                        "key": key,
                        "value": tenant.name,
                        "descriptors": [
                            {
                                "key": CONSUMER_KEY,
                                "value": consumer.claim_value,
                                "rate_limit": {"unit": "minute", "requests_per_unit": getattr(consumer, field)},
                            }
                            for consumer in consumers
                        ],
                    }
                )
    return {"domain": DOMAIN, "descriptors": descriptors}


def _metered(actions: list[dict]) -> list[dict]:
    """A token budget's two entries: on the request, a check that adds nothing (``hits_addend`` 0: envoyproxy/ratelimit
    src/utils/utilities.go ``GetHitsAddends``, "check only"), refused once the minute's counter is over the budget; when
    the stream is done, the response's tokens (``USAGE_FORMAT``) added to the same counter."""
    return [
        {"actions": actions, "hits_addend": {"number": 0}},
        {"actions": actions, "apply_on_stream_done": True, "hits_addend": {"format": USAGE_FORMAT}},
    ]


def host_rate_limits(cfg: PlatformConfig, endpoint: Endpoint) -> list[dict]:
    """The ``rate_limits`` of an endpoint's virtual host on the gateway: its descriptors (see the module docstring)."""
    limits: list[dict] = []
    ceiling = endpoint.limits
    tenant = cfg.tenant(endpoint.tenant)
    target = endpoint_id(endpoint.tenant, endpoint.name)
    claim: dict = {}
    if cfg.mesh.jwt:
        claim = {
            "metadata": {
                "descriptor_key": CONSUMER_KEY,
                "metadata_key": {
                    "key": JWT_METADATA,
                    "path": [{"key": "payload"}, {"key": cfg.mesh.jwt.consumer_claim}],
                },
                "source": "DYNAMIC",
            }
        }
    by_endpoint = ceiling.consumers if ceiling else []
    requests = {"generic_key": {"descriptor_key": ENDPOINT_KEY, "descriptor_value": target}}
    tokens = {"generic_key": {"descriptor_key": ENDPOINT_TOKENS_KEY, "descriptor_value": target}}
    if ceiling and ceiling.requests_per_minute:
        limits.append({"actions": [requests]})
    if claim and any(c.requests_per_minute for c in by_endpoint):
        limits.append({"actions": [requests, claim]})
    if claim and any(c.requests_per_minute for c in tenant.consumers):
        limits.append(
            {"actions": [{"generic_key": {"descriptor_key": TENANT_KEY, "descriptor_value": tenant.name}}, claim]}
        )
    if cfg.rate_limits.meters_tokens(cfg, endpoint):
        if ceiling and ceiling.tokens_per_minute:
            limits += _metered([tokens])
        if claim and any(c.tokens_per_minute for c in by_endpoint):
            limits += _metered([tokens, claim])
        if claim and any(c.tokens_per_minute for c in tenant.consumers):
            key = {"generic_key": {"descriptor_key": TENANT_TOKENS_KEY, "descriptor_value": tenant.name}}
            limits += _metered([key, claim])
    return limits


def limited_hosts(cfg: PlatformConfig) -> dict[str, list[dict]]:
    """Endpoint host -> its ``rate_limits``, for every endpoint that has any."""
    hosts = {cfg.endpoint_host(e): host_rate_limits(cfg, e) for e in cfg.models}
    return {host: limits for host, limits in hosts.items() if limits}


def metered_hosts(cfg: PlatformConfig) -> list[str]:
    """The hosts whose responses' tokens are charged: where ``TOKEN_USAGE_LUA`` reads the usage."""
    return sorted(cfg.endpoint_host(e) for e in cfg.models if cfg.rate_limits.meters_tokens(cfg, e))


def token_usage_lua(hosts: list[str]) -> str:
    """``TOKEN_USAGE_LUA`` for ``hosts`` (lower case, as ``:authority`` is compared)."""
    table = ", ".join(f'["{host.lower()}"] = true' for host in hosts)
    return TOKEN_USAGE_LUA.replace("METERED_HOSTS", "{" + table + "}")


def service_cluster(namespace: str) -> str:
    """Istio's outbound cluster of the service's gRPC port on the gateway (``outbound|<port>||<host>``): Istio
    builds it from the Service (HTTP/2 from the port's ``grpc`` name), so no cluster is patched in."""
    return f"outbound|{GRPC_PORT}||{NAME}.{namespace}.svc.cluster.local"


def envoy_filter_spec(cfg: PlatformConfig, namespace: str, gateway_labels: dict[str, str]) -> dict:
    """The gateway's ratelimit filter (and, with token budgets, the usage filter) and, per limited endpoint host, its
    virtual host's ``RateLimitPerRoute`` (Envoy names a gateway's virtual host ``<host>:<port>``: istio/istio 1.30.3
    pilot/pkg/networking/core/gateway.go ``util.DomainName``; the endpoints are served on 443, port 80 only redirects).

    Per virtual host, not as the virtual host's own ``rate_limits``: ``hits_addend`` (the tokens) is only read from
    ``typed_per_filter_config`` (envoy.config.route.v3.RateLimit.hits_addend; go-control-plane v1.37
    route_components.pb.go), and when that config has ``rate_limits`` the filter uses those alone
    (envoyproxy/envoy source/extensions/filters/http/ratelimit/ratelimit.cc ``populateRateLimitDescriptors``: the
    request's entries on the request, the ``apply_on_stream_done`` ones when the stream is done)."""
    ratelimit = {
        "name": RATELIMIT_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": DOMAIN,
            "failure_mode_deny": not cfg.rate_limits.fail_open,
            "timeout": f"{int(cfg.rate_limits.timeout.removesuffix('ms')) / 1000}s",
            "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
            "response_headers_to_add": [{"header": {"key": "retry-after", "value": str(RETRY_AFTER_SECONDS)}}],
            "rate_limit_service": {
                "grpc_service": {"envoy_grpc": {"cluster_name": service_cluster(namespace)}},
                "transport_api_version": "V3",
            },
        },
    }
    filters = [ratelimit]
    if metered := metered_hosts(cfg):
        filters.append(
            {
                "name": USAGE_FILTER,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                    "default_source_code": {"inline_string": token_usage_lua(metered)},
                },
            }
        )
    before_router = {
        "context": "GATEWAY",
        "listener": {
            "filterChain": {
                "filter": {
                    "name": "envoy.filters.network.http_connection_manager",
                    "subFilter": {"name": "envoy.filters.http.router"},
                }
            }
        },
    }
    patches: list[dict] = [
        {"applyTo": "HTTP_FILTER", "match": before_router, "patch": {"operation": "INSERT_BEFORE", "value": value}}
        for value in filters
    ]
    per_route = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute"
    patches += [
        {
            "applyTo": "VIRTUAL_HOST",
            "match": {"context": "GATEWAY", "routeConfiguration": {"vhost": {"name": f"{host}:443"}}},
            "patch": {
                "operation": "MERGE",
                "value": {
                    "typed_per_filter_config": {
                        RATELIMIT_FILTER: {"@type": per_route, "domain": DOMAIN, "rate_limits": limits}
                    }
                },
            },
        }
        for host, limits in sorted(limited_hosts(cfg).items())
    ]
    return {"workloadSelector": {"labels": dict(gateway_labels)}, "configPatches": patches}


def service_deployment_spec(cfg: PlatformConfig, store_host: str) -> dict:
    """The rate-limit service: restricted, no sidecar (the gateway reaches it in plain gRPC; it is in no tenant
    namespace), its configuration from the ConfigMap, the store's password from its Secret."""
    env = {
        "USE_STATSD": "false",
        "USE_PROMETHEUS": "true",
        "LOG_LEVEL": "warn",
        "LOG_FORMAT": "json",
        "HOST": "::",
        "GRPC_HOST": "::",
        "REDIS_SOCKET_TYPE": "tcp",
        "REDIS_URL": f"{store_host}:{STORE_PORT}",
        "RUNTIME_ROOT": "/data",
        "RUNTIME_SUBDIRECTORY": NAME,
        "RUNTIME_WATCH_ROOT": "false",
        "RUNTIME_IGNOREDOTFILES": "true",
    }
    probe = {"httpGet": {"path": "/healthcheck", "port": "http"}, "periodSeconds": 10}
    container = {
        "name": NAME,
        "image": mirrored(versions.RATELIMIT_IMAGE, cfg.cluster.image_registry),
        "env": [{"name": k, "value": v} for k, v in env.items()]
        + [{"name": "REDIS_AUTH", "valueFrom": {"secretKeyRef": {"name": STORE, "key": "password"}}}],
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT},
            {"name": "http", "containerPort": HTTP_PORT},
            {"name": "metrics", "containerPort": METRICS_PORT},
        ],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": f"/data/{NAME}/config", "readOnly": True}],
        "securityContext": restricted_container(non_root=True, seccomp=True),
    }
    return {
        "replicas": cfg.rate_limits.replicas,
        "selector": {"matchLabels": dict(SERVICE_LABELS)},
        "template": {
            "metadata": {"labels": {**SERVICE_LABELS, "sidecar.istio.io/inject": "false"}},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": restricted_pod(SERVICE_UID, gid=SERVICE_UID),
                "containers": [container],
                "volumes": [{"name": "config", "configMap": {"name": CONFIG_MAP}}],
            },
        },
    }


def store_deployment_spec(cfg: PlatformConfig) -> dict:
    """Valkey for the counters: one replica, no snapshots or append-only file (a restart resets the windows), the
    password from the Secret (``$(STORE_PASSWORD)``, expanded by the kubelet), restricted, no sidecar."""
    container = {
        "name": "valkey",
        "image": mirrored(versions.VALKEY_IMAGE, cfg.cluster.image_registry),
        "args": ["valkey-server", "--requirepass", "$(STORE_PASSWORD)", "--save", "", "--appendonly", "no"],
        "env": [{"name": "STORE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": STORE, "key": "password"}}}],
        "ports": [{"name": "valkey", "containerPort": STORE_PORT}],
        "readinessProbe": {"tcpSocket": {"port": "valkey"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, tmp_mount()],
        "securityContext": restricted_container(non_root=True, seccomp=True),
    }
    return {
        "replicas": 1,
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": dict(STORE_LABELS)},
        "template": {
            "metadata": {"labels": {**STORE_LABELS, "sidecar.istio.io/inject": "false"}},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": restricted_pod(STORE_UID, gid=STORE_UID),
                "containers": [container],
                "volumes": [{"name": "data", "emptyDir": {}}, tmp_volume()],
            },
        },
    }


def network_policies(gateway_labels: dict[str, str], monitoring_namespace: str) -> dict[str, dict]:
    """The service admits the gateway (gRPC) and Prometheus (metrics); the store admits the service."""
    return {
        "ratelimit-ingress": {
            "podSelector": {"matchLabels": dict(SERVICE_LABELS)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": dict(gateway_labels)}}],
                    "ports": [{"port": GRPC_PORT, "protocol": "TCP"}],
                },
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": monitoring_namespace}}}
                    ],
                    "ports": [{"port": METRICS_PORT, "protocol": "TCP"}],
                },
            ],
        },
        "ratelimit-store-ingress": {
            "podSelector": {"matchLabels": dict(STORE_LABELS)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": dict(SERVICE_LABELS)}}],
                    "ports": [{"port": STORE_PORT, "protocol": "TCP"}],
                }
            ],
        },
    }


@dataclass(frozen=True)
class RateLimitsArgs(ComponentArgs):
    """What ``RateLimits`` is built from: the whole config (consumers, endpoint limits, hosts), the gateway's pod
    labels; keyword-only, the ingress namespace and istiod's release (the EnvoyFilter's CRD and webhook)."""

    config: PlatformConfig
    gateway_labels: dict[str, str]
    _: KW_ONLY
    namespace: pulumi.Input[str]
    istiod: pulumi.Resource
    platform_secrets: PlatformSecrets
    monitoring: pulumi.Resource | None = None


class RateLimits(pulumi.ComponentResource):
    """The rate-limit service, its store, the gateway's EnvoyFilter and their NetworkPolicies (module docstring)."""

    def __init__(self, name: str, args: RateLimitsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:mesh:RateLimits", name, None, opts)
        cfg, ns = args.config, args.namespace
        child = pulumi.ResourceOptions(parent=self)

        def object_(
            logical: str, api_version: str, kind: str, object_name: str, labels: dict | None = None, **fields: object
        ) -> KubeObject:
            return kube(
                f"{name}-{logical}",
                api_version=api_version,
                kind=kind,
                metadata=metadata(object_name, COMPONENT, namespace=ns, extra_labels=labels),
                opts=child,
                **fields,
            )

        secrets = args.platform_secrets
        password = secrets.generated(f"{name}-store-password", 32, STORE, "password", parent=self)
        secrets.secret(f"{name}-store-secret", STORE, ns, COMPONENT, self, {"password": password})
        object_("store", "apps/v1", "Deployment", STORE, spec=store_deployment_spec(cfg))
        store_service = {"selector": dict(STORE_LABELS), "ports": [{"name": "valkey", "port": STORE_PORT}]}
        object_("store-service", "v1", "Service", STORE, STORE_LABELS, spec=store_service)
        config_yaml = pulumi.Output.from_input(service_config(cfg)).apply(_yaml)
        object_("config", "v1", "ConfigMap", CONFIG_MAP, data={"config.yaml": config_yaml})
        object_("deployment", "apps/v1", "Deployment", NAME, spec=service_deployment_spec(cfg, STORE))
        ports = [
            {"name": "grpc", "port": GRPC_PORT, "appProtocol": "grpc"},
            {"name": "http", "port": HTTP_PORT},
            {"name": "metrics", "port": METRICS_PORT},
        ]
        object_(
            "service", "v1", "Service", NAME, SERVICE_LABELS, spec={"selector": dict(SERVICE_LABELS), "ports": ports}
        )
        for policy, spec in network_policies(args.gateway_labels, cfg.namespaces.monitoring).items():
            object_(f"policy-{policy}", "networking.k8s.io/v1", "NetworkPolicy", policy, spec=spec)
        self.envoy_filter = kube(
            f"{name}-envoy-filter",
            api_version="networking.istio.io/v1alpha3",
            kind="EnvoyFilter",
            metadata=metadata(FILTER, COMPONENT, namespace=ns),
            spec=pulumi.Output.from_input(ns).apply(lambda n: envoy_filter_spec(cfg, n, args.gateway_labels)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.istiod]),
        )
        if args.monitoring is not None:
            monitor = {
                "selector": {"matchLabels": dict(SERVICE_LABELS)},
                "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
            }
            kube(
                f"{name}-service-monitor",
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata=metadata(NAME, COMPONENT, namespace=ns),
                spec=monitor,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.monitoring]),
            )
        self.register_outputs({})


def _yaml(value: dict) -> str:
    import yaml

    return yaml.dump(value, Dumper=yaml.CSafeDumper, sort_keys=False)
