"""``Traces``: every tenant's traces in Tempo, isolated per tenant, received by one OpenTelemetry Collector.

Owns:
- the namespace ``namespaces.traces``, Pod Security ``restricted``, fenced like the logs namespace
  (``tenancy.fenced_namespace_policies``: ingress denied by default, open within the namespace, from monitoring:
  Grafana's queries) plus one opening: the collector's OTLP ports (gRPC 4317, HTTP 4318) from every namespace
  (``allow-otlp``: the Istio proxies of tenant and platform pods, vLLM and Triton). Tempo itself admits no tenant: it
  trusts the ``X-Scope-OrgID`` header it is sent;
- with the in-cluster object store: the Secret ``tempo-object-store`` with the store's generated S3 keys; with an
  external store its ``credentialsSecret`` or workload identity (``serviceAccountAnnotations`` on ``tempo``);
- the Helm release ``tempo`` of the pinned monolithic chart (grafana-community/helm-charts tempo-2.2.4, Tempo
  2.10.8): ``multitenancy_enabled``, blocks in the object store (``objectStore.buckets["traces"]``; the keys never
  in values: ``${AWS_ACCESS_KEY_ID}``/``${AWS_SECRET_ACCESS_KEY}`` expanded by ``-config.expand-env=true`` from the
  Secret in ``tempo.extraEnvFrom``), OTLP gRPC only, the compactor's ``block_retention`` from ``traces.retention``;
  one StatefulSet ``tempo`` (UID 10001, restricted). Prod keeps this chart too (docs/traces.md: tempo-distributed
  3.3.0, Tempo 3, writes through Kafka unless its block-builder and live-store are off);
- the Helm release ``opentelemetry-collector`` of the pinned chart (opentelemetry-collector-0.170.0, collector
  0.158.0, the ``otelcol-k8s`` distribution): a Deployment (``traces.collectorReplicas``) whose configuration
  (``collector_config``, the chart's ``alternateConfig``: nothing of the chart's default pipelines) receives OTLP,
  drops any namespace the sender claims (``resource/untrusted``), sets ``k8s.namespace.name`` from the sending pod
  (``k8sattributes``, associated by the connection's address only), routes by it (``routing`` connector: each tenant's
  namespace -> the tenant's pipeline, everything else -> ``platform``) and exports each pipeline to Tempo with its
  tenant as ``X-Scope-OrgID``. Its ClusterRole reads pods, namespaces and ReplicaSets (what k8sattributes watches).
  It serves its own metrics on the pod's address, port ``metrics`` 8888 (``service.telemetry``).

With monitoring, both charts' own ServiceMonitors (``serviceMonitor``) labelled for the platform's Prometheus; both
releases wait for the monitoring release (the CRD). Alerts: ``components.monitoring.rules`` (``ai-platform-pipeline``).

``cluster.imageRegistry`` replaces the registry of both images (Tempo ``tempo.registry``; the collector's repository).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import NamedTuple

import pulumi

from config import versions
from config.cluster import Cluster, Namespaces
from config.data import ObjectStore
from config.logs import PLATFORM_TENANT
from config.traces import Traces as TracesConfig

from . import objectstore
from .logs import TENANT_HEADER, s3_storage, uses_iam
from .meta import PART_OF, ComponentArgs, helm_release, mirrored, platform_namespace
from .objectstore import S3_ACCESS_KEY, S3_SECRET_KEY
from .pods import restricted_container, restricted_pod
from .secrets import PlatformSecrets
from .tenancy import _declare_policies, fenced_namespace_policies

COMPONENT = "traces"
POD_SECURITY = "restricted"
TEMPO_RELEASE = versions.TEMPO.name
COLLECTOR_RELEASE = versions.OTEL_COLLECTOR.name
TEMPO_HTTP_PORT = 3200  # values.yaml tempo.server.http_listen_port
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
OTLP_PORTS = (OTLP_GRPC_PORT, OTLP_HTTP_PORT)
# The collector's own metrics (values.yaml ports.metrics: containerPort/servicePort 8888, the Service port
# ``metrics`` the chart's ServiceMonitor scrapes); the collector serves them on localhost only unless told
# (open-telemetry/opentelemetry-collector v0.158.0 service/telemetry/otelconftelemetry/factory.go: host localhost).
COLLECTOR_METRICS_PORT = 8888
NAMESPACE_ATTRIBUTE = "k8s.namespace.name"
S3_SECRET = "tempo-object-store"
TEMPO_UID = 10001  # values.yaml securityContext.runAsUser
# The chart's selector labels (templates/_helpers.tpl of each chart).
TEMPO_POD_LABELS = {"app.kubernetes.io/name": TEMPO_RELEASE, "app.kubernetes.io/instance": TEMPO_RELEASE}
COLLECTOR_POD_LABELS = {
    "app.kubernetes.io/name": COLLECTOR_RELEASE,
    "app.kubernetes.io/instance": COLLECTOR_RELEASE,
    "component": "standalone-collector",
}
# Resource attributes a sender could set to pass for another pod: removed before k8sattributes derives them.
UNTRUSTED_ATTRIBUTES = ("k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid", "k8s.pod.ip")


def _resources(cpu: str, memory: str, memory_limit: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


COLLECTOR_RESOURCES = _resources("100m", "256Mi", "1Gi")
TEMPO_RESOURCES = {"small": _resources("250m", "512Mi", "2Gi"), "large": _resources("1", "2Gi", "8Gi")}


class Otlp(NamedTuple):
    """Where the servers and the proxies send spans: the collector's Service host and ports, the sampling percent."""

    host: str
    grpc_port: int
    http_port: int
    sampling_percent: float

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{self.host}:{self.grpc_port}"

    @property
    def http_traces_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/v1/traces"


def otlp(traces: TracesConfig, namespaces: Namespaces) -> Otlp:
    return Otlp(
        f"{COLLECTOR_RELEASE}.{namespaces.traces}.svc.cluster.local",
        OTLP_GRPC_PORT,
        OTLP_HTTP_PORT,
        traces.sampling_percent,
    )


def tempo_url(namespaces: Namespaces) -> str:
    return f"http://{TEMPO_RELEASE}.{namespaces.traces}.svc:{TEMPO_HTTP_PORT}"


def tenant_routes(tenant_namespaces: Mapping[str, str]) -> list[tuple[str, str]]:
    """(namespace, Tempo tenant) per tenant namespace, sorted; every other namespace is ``PLATFORM_TENANT``."""
    return sorted((namespace, tenant) for tenant, namespace in tenant_namespaces.items())


def collector_config(tenant_namespaces: Mapping[str, str], tempo_endpoint: str) -> dict:
    """The collector's configuration: OTLP in, the namespace from the sending pod, one pipeline (and exporter with
    its ``X-Scope-OrgID``) per Tempo tenant, the routing connector choosing by namespace."""
    routes = tenant_routes(tenant_namespaces)
    tenants = sorted({PLATFORM_TENANT, *(tenant for _, tenant in routes)})

    def exporter(tenant: str) -> dict:
        return {"endpoint": tempo_endpoint, "tls": {"insecure": True}, "headers": {TENANT_HEADER: tenant}}

    return {
        "extensions": {"health_check": {"endpoint": "${env:MY_POD_IP}:13133"}},
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_GRPC_PORT}"},
                    "http": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_HTTP_PORT}"},
                }
            }
        },
        "processors": {
            "memory_limiter": {"check_interval": "5s", "limit_percentage": 80, "spike_limit_percentage": 25},
            "resource/untrusted": {
                "attributes": [{"key": key, "action": "delete"} for key in UNTRUSTED_ATTRIBUTES],
            },
            "k8sattributes": {
                "auth_type": "serviceAccount",
                "passthrough": False,
                "pod_association": [{"sources": [{"from": "connection"}]}],
                "extract": {"metadata": ["k8s.namespace.name", "k8s.pod.name", "k8s.deployment.name"]},
            },
            "batch": {},
        },
        "connectors": {
            "routing": {
                "default_pipelines": [f"traces/{PLATFORM_TENANT}"],
                "table": [
                    {
                        "statement": f'route() where attributes["{NAMESPACE_ATTRIBUTE}"] == "{namespace}"',
                        "pipelines": [f"traces/{tenant}"],
                    }
                    for namespace, tenant in routes
                ],
            }
        },
        "exporters": {f"otlp/{tenant}": exporter(tenant) for tenant in tenants},
        "service": {
            # Its own metrics on the pod's address for Prometheus (the chart's default config does the same); the
            # reader's without_type_suffix/without_units/without_scope_info default to true (v0.158.0
            # otelconftelemetry/internal/migration/v0.3.0.go applyPrometheusDefaults): counters have no _total.
            "telemetry": {
                "metrics": {
                    "readers": [
                        {
                            "pull": {
                                "exporter": {"prometheus": {"host": "${env:MY_POD_IP}", "port": COLLECTOR_METRICS_PORT}}
                            }
                        }
                    ]
                }
            },
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "resource/untrusted", "k8sattributes"],
                    "exporters": ["routing"],
                },
                **{
                    f"traces/{tenant}": {
                        "receivers": ["routing"],
                        "processors": ["batch"],
                        "exporters": [f"otlp/{tenant}"],
                    }
                    for tenant in tenants
                },
            },
        },
    }


def credentials_secret(store: ObjectStore) -> str | None:
    """The Secret (in the traces namespace) whose S3 keys Tempo gets, or None with workload identity."""
    if store.mode == "in-cluster":
        return S3_SECRET
    return store.credentials_secret


def tempo_values(
    traces: TracesConfig, store: ObjectStore, cluster: Cluster, endpoint: str | None, *, monitor: bool = False
) -> dict:
    """Values of the Tempo chart (keys checked against the upstream values.yaml by the schema tier); ``monitor``: the
    chart's ServiceMonitor (Service ``tempo``, port ``tempo-prom-metrics`` 3200)."""
    # The keys values.yaml documents (tempo.storage.trace.s3, commented out): Tempo's S3 client picks path-style
    # for a non-AWS endpoint itself and needs an endpoint, AWS's regional one when the external store names none.
    loki_s3 = s3_storage(store, endpoint)
    s3: dict = {
        "bucket": store.buckets["traces"],
        "endpoint": loki_s3.get("endpoint", f"s3.{store.region}.amazonaws.com"),
        "insecure": loki_s3.get("insecure", False),
    }
    secret = credentials_secret(store)
    if secret:
        s3["access_key"] = "${" + S3_ACCESS_KEY + "}"
        s3["secret_key"] = "${" + S3_SECRET_KEY + "}"
    service_account: dict = {"create": True, "name": TEMPO_RELEASE}
    if uses_iam(store) and store.service_account_annotations:
        service_account["annotations"] = dict(store.service_account_annotations)
    tempo: dict = {
        "multitenancyEnabled": True,
        "reportingEnabled": False,
        "retention": traces.retention,
        "storage": {"trace": {"backend": "s3", "s3": s3, "wal": {"path": "/var/tempo/wal"}}},
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"}}}},
        "extraArgs": {"config.expand-env": "true"},
        "securityContext": restricted_container(read_only_root=False, non_root=True, seccomp=True),
        "resources": TEMPO_RESOURCES[traces.size],
    }
    if secret:
        tempo["extraEnvFrom"] = [{"secretRef": {"name": secret}}]
    if cluster.image_registry:
        tempo["registry"] = cluster.image_registry
    return {
        "tempo": tempo,
        # seccomp on the container: the schema tier allows only values.yaml's keys under securityContext.
        "securityContext": {
            k: v
            for k, v in restricted_pod(TEMPO_UID, gid=TEMPO_UID, fs_group=TEMPO_UID).items()
            if k != "seccompProfile"
        },
        "serviceAccount": service_account,
        "podLabels": {"app.kubernetes.io/part-of": PART_OF},
        "serviceMonitor": {"enabled": monitor, "additionalLabels": {"app.kubernetes.io/part-of": PART_OF}},
    }


def collector_values(traces: TracesConfig, cluster: Cluster, config: dict, *, monitor: bool = False) -> dict:
    """Values of the OpenTelemetry Collector chart: a restricted Deployment with the generated configuration, the
    OTLP ports and its metrics port, a ClusterRole for k8sattributes; ``monitor``: the chart's ServiceMonitor
    (Service ``opentelemetry-collector``, port ``metrics``)."""
    return {
        "mode": "deployment",
        "replicaCount": traces.collector_replicas,
        "image": {"repository": mirrored(versions.OTEL_COLLECTOR_IMAGE, cluster.image_registry)},
        "command": {"name": "otelcol-k8s"},
        "alternateConfig": config,
        "ports": {
            **{name: {"enabled": False} for name in ("jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin")},
            "metrics": {"enabled": True},
        },
        "serviceMonitor": {"enabled": monitor, "extraLabels": {"app.kubernetes.io/part-of": PART_OF}},
        "clusterRole": {
            "create": True,
            "rules": [
                {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
            ],
        },
        "podSecurityContext": restricted_pod(),
        "securityContext": restricted_container(non_root=True, seccomp=True),
        "resources": COLLECTOR_RESOURCES,
        "podLabels": {"app.kubernetes.io/part-of": PART_OF},
    }


def otlp_ingress_policy() -> dict[str, dict]:
    """The collector's OTLP ports from every namespace (tenants' and the platform's proxies); nothing else of the
    traces namespace."""
    return {
        "allow-otlp": {
            "podSelector": {"matchLabels": COLLECTOR_POD_LABELS},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {}}],
                    "ports": [{"protocol": "TCP", "port": port} for port in OTLP_PORTS],
                }
            ],
        }
    }


def grafana_datasource(namespaces: Namespaces, tenants: list[str], logs_uid: str | None) -> dict:
    """Grafana's Tempo datasource: the platform's tenant and every tenant's at once (``X-Scope-OrgID: platform|a|b``,
    a multi-tenant query); with logs, trace -> logs links into the Loki datasource by pod and namespace."""
    json_data: dict = {"httpHeaderName1": TENANT_HEADER}
    if logs_uid:
        json_data["tracesToLogsV2"] = {
            "datasourceUid": logs_uid,
            "spanStartTimeShift": "-5m",
            "spanEndTimeShift": "5m",
            "filterByTraceID": False,
            "tags": [{"key": "k8s.namespace.name", "value": "namespace"}, {"key": "k8s.pod.name", "value": "pod"}],
        }
    return {
        "name": "Tempo",
        "uid": "tempo",
        "type": "tempo",
        "access": "proxy",
        "url": tempo_url(namespaces),
        "editable": False,
        "jsonData": json_data,
        "secureJsonData": {"httpHeaderValue1": "|".join([PLATFORM_TENANT, *sorted(tenants)])},
    }


def tenant_datasource(namespaces: Namespaces, tenant: str, logs_uid: str | None) -> dict:
    """The Tempo datasource of a tenant's Grafana organization (``components.monitoring.grafana_access``): the same
    Tempo, ``X-Scope-OrgID`` = the tenant's id only (``tenant_routes``: the tenant's spans go to its name)."""
    return {**grafana_datasource(namespaces, [], logs_uid), "secureJsonData": {"httpHeaderValue1": tenant}}


@dataclass(frozen=True)
class TracesArgs(ComponentArgs):
    """What ``Traces`` is built from (besides the cluster and namespaces): its config, the object store's config and
    the tenants' namespaces (tenant -> namespace); keyword-only, the in-cluster object store, the platform's
    Secrets and the monitoring release (the charts' ServiceMonitors need its CRD; without it, none)."""

    traces: TracesConfig
    store: ObjectStore
    tenant_namespaces: Mapping[str, str]
    _: KW_ONLY
    object_store: objectstore.ObjectStore | None
    platform_secrets: PlatformSecrets
    monitoring: pulumi.Resource | None = None


class Traces(pulumi.ComponentResource):
    """Traces namespace and its fence, Tempo's S3 key Secret, the Tempo and collector releases (module docstring)."""

    def __init__(self, name: str, args: TracesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:traces:Traces", name, None, opts)
        traces, store, cluster, namespaces = args.traces, args.store, args.cluster, args.namespaces
        secrets, protect, in_cluster_store = args.platform_secrets, args.protect, args.object_store
        monitoring = [args.monitoring] if args.monitoring else []
        self.namespace = platform_namespace(
            f"{name}-namespace",
            namespaces.traces,
            COMPONENT,
            POD_SECURITY,
            cluster.kubernetes_version,
            self,
            protect=protect,
        )
        ns = self.namespace.metadata["name"]
        fenced_namespace_policies(name, ns, namespaces, COMPONENT, self)
        _declare_policies(name, otlp_ingress_policy(), ns, COMPONENT, self)
        objectstore.service_keys(name, S3_SECRET, ns, COMPONENT, self, store, in_cluster_store, secrets)
        self.tempo = helm_release(
            f"{name}-tempo",
            versions.TEMPO,
            ns,
            tempo_values(
                traces,
                store,
                cluster,
                in_cluster_store.endpoint if in_cluster_store else None,
                monitor=bool(monitoring),
            ),
            self,
            cluster=cluster,
            depends_on=[*([in_cluster_store.release] if in_cluster_store else []), *monitoring] or None,
            timeout=900,
            release_name=TEMPO_RELEASE,
            protect=protect,
        )
        self.collector_config = collector_config(
            args.tenant_namespaces, f"{TEMPO_RELEASE}.{namespaces.traces}.svc:{OTLP_GRPC_PORT}"
        )
        # No wait for Tempo: the collector's exporters retry with backoff.
        self.collector = helm_release(
            f"{name}-collector",
            versions.OTEL_COLLECTOR,
            ns,
            collector_values(traces, cluster, self.collector_config, monitor=bool(monitoring)),
            self,
            cluster=cluster,
            depends_on=monitoring or None,
            release_name=COLLECTOR_RELEASE,
        )
        self.register_outputs({"namespace": ns, "tempo": self.tempo.name, "collector": self.collector.name})
