"""``Logs``: every container's logs in Loki, isolated per tenant, shipped by one node agent (Grafana Alloy).

Owns:
- the namespace ``namespaces.logs``, Pod Security ``restricted``, fenced like a shared service but admitting no
  tenant (``tenancy.fenced_namespace_policies``: ingress denied by default, open within the namespace, from the
  monitoring namespace: Grafana's queries and Prometheus's scrapes). Loki trusts the ``X-Scope-OrgID`` header it is
  sent (``auth_enabled`` authenticates nobody): a tenant that reached it could read any tenant's logs, so none does;
- with the in-cluster object store: the Secret ``loki-object-store`` holding the store's generated S3 keys
  (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``); with an external store its ``credentialsSecret`` (in this
  namespace; an ExternalSecret of that name with ``secrets.source: external-secrets``) or, without one, workload
  identity (``serviceAccountAnnotations`` on the chart's ServiceAccount ``loki``);
- the Helm release ``loki`` of the pinned chart (grafana-community/helm-charts loki-18.11.0, Loki 3.7.6):
  ``auth_enabled: true`` (multi-tenant), ``deploymentMode`` ``Monolithic`` (``logs.mode: single-binary``: one
  StatefulSet ``loki``) or ``SimpleScalable`` (``scalable``: ``loki-write`` and ``loki-backend`` StatefulSets, the
  ``loki-read`` Deployment, ``logs.replicas`` each; the chart marks the mode deprecated, removed in Loki 4: the
  next move is ``Distributed``). Schema ``tsdb`` ``v13`` (index period 24h). Storage ``s3``: chunks, index, rules
  and the compactor's delete requests in one bucket (``objectStore.buckets["logs"]``); the keys never in values:
  the config says ``${AWS_ACCESS_KEY_ID}``/``${AWS_SECRET_ACCESS_KEY}``, Loki expands them from its environment
  (``envFrom`` the Secret through the chart's ``defaults.extraEnvFrom``, which every Loki workload takes; the
  chart always passes ``-config.expand-env=true``, templates/_pod.tpl). Retention: the compactor deletes chunks older
  than ``logs.retention`` (``compactor.retention_enabled``, ``limits_config.retention_period`` through the chart's
  ``loki.structuredConfig``). Queries may span
  tenants (``querier.multi_tenant_queries_enabled``: ``X-Scope-OrgID: a|b``), which only Grafana's datasource
  uses. The chart's gateway (nginx), canary DaemonSet, helm test and rules sidecar are off; its memcached caches
  are sized by mode (``CACHE_MB``; the chart's default chunks cache asks for ~10Gi). Every Loki and memcached pod
  runs restricted with the chart's own security contexts (UID 10001 / 11211, non-root, seccomp ``RuntimeDefault``,
  read-only root, no capabilities: values.yaml ``loki.podSecurityContext``, ``memcached.*SecurityContext``);
- the Helm release ``alloy`` of the pinned chart (grafana/alloy helm-chart/1.11.1, Alloy v1.18.1): a DaemonSet whose
  configuration (``agent_config``, the chart's ``alloy.configMap.content``) discovers the pods of its own node
  (``discovery.kubernetes`` with the field selector ``spec.nodeName=$HOSTNAME``: the chart sets ``HOSTNAME`` from
  the node name), tails their containers through the Kubernetes API (``loki.source.kubernetes``: ``pods/log``,
  which the chart's ClusterRole grants; no hostPath, no root), sets the Loki tenant from the namespace
  (``tenant_rules``: each tenant's namespace -> the tenant's name, any other namespace -> ``platform``) and pushes to
  Loki's write path (``push_url``). It runs as the image's ``alloy`` user (UID/GID 473, grafana/alloy Dockerfile),
  restricted, its storage (tail positions) on an emptyDir; the config reloader keeps the chart's restricted context.
  Its PodLogs CRD (``crds.create``) is not installed: nothing uses it.

With monitoring, both charts' own ServiceMonitors (Loki ``monitoring.serviceMonitor``, Alloy ``serviceMonitor``)
labelled for the platform's Prometheus; both releases wait for the monitoring release (the CRD). Alerts and the
pipeline dashboard: ``components.monitoring.rules`` (``ai-platform-pipeline``) and ``dashboards``.

Why Alloy and the Kubernetes API (docs/logs.md): Alloy's Loki components set the tenant per entry from a label
(``stage.tenant``) and batch per tenant; the OpenTelemetry Collector's Loki path goes through the OTLP endpoint
with the tenant as a header per exporter, so one exporter (and one pipeline) per tenant, rebuilt with every tenant.
Tailing ``/var/log/pods`` would need a hostPath DaemonSet (``privileged`` namespace, root to read the files); the
API costs the kubelet some CPU and network per stream, which a platform of this size affords.

``cluster.imageRegistry`` replaces the registry of every image of both charts (Loki ``global.imageRegistry``, Alloy
``global.image.registry``); paths and the charts' tags stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from urllib.parse import urlsplit

import pulumi

from config import versions
from config.cluster import Cluster, Namespaces
from config.data import ObjectStore
from config.logs import PLATFORM_TENANT
from config.logs import Logs as LogsConfig

from . import objectstore
from .meta import PART_OF, ComponentArgs, helm_release, platform_namespace
from .objectstore import S3_ACCESS_KEY, S3_SECRET_KEY
from .pods import restricted_container, restricted_pod, tmp_mount, tmp_volume
from .secrets import PlatformSecrets
from .tenancy import fenced_namespace_policies

COMPONENT = "logs"
POD_SECURITY = "restricted"
LOKI_RELEASE = versions.LOKI.name
ALLOY_RELEASE = versions.ALLOY.name
LOKI_PORT = 3100  # values.yaml loki.server.http_listen_port
PUSH_PATH = "/loki/api/v1/push"
TENANT_HEADER = "X-Scope-OrgID"
TENANT_LABEL = "tenant"  # the log label the agent puts the tenant in (and stage.tenant reads)
NAMESPACE_META = "__meta_kubernetes_namespace"
S3_SECRET = "loki-object-store"
SERVICE_ACCOUNT = LOKI_RELEASE
# The schema of every tenant from the first day (Loki 3: tsdb index, schema v13, one index table a day).
SCHEMA = {
    "from": "2024-04-01",
    "store": "tsdb",
    "object_store": "s3",
    "schema": "v13",
    "index": {"prefix": "loki_index_", "period": "24h"},
}
DEPLOYMENT_MODE = {"single-binary": "Monolithic", "scalable": "SimpleScalable"}
# Memcached memory (MB) of the chunks and results caches per mode (chart defaults 8192 and 1024).
CACHE_MB = {"single-binary": (256, 64), "scalable": (2048, 512)}


def _resources(cpu: str, memory: str, memory_limit: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


SINGLE_BINARY_RESOURCES = _resources("250m", "512Mi", "2Gi")
SCALABLE_RESOURCES = {
    "write": _resources("500m", "1Gi", "2Gi"),
    "read": _resources("500m", "1Gi", "2Gi"),
    "backend": _resources("250m", "512Mi", "1Gi"),
}
# Alloy: the image's alloy user (grafana/alloy Dockerfile: useradd -u 473, /var/lib/alloy/data owned by it).
ALLOY_UID = 473
ALLOY_STORAGE = "/var/lib/alloy/data"
ALLOY_RESOURCES = _resources("50m", "128Mi", "512Mi")
# The chart's selector labels of Loki's pods (templates/_helpers.tpl loki.selectorLabels + component) and Alloy's.
LOKI_POD_LABELS = {"app.kubernetes.io/name": LOKI_RELEASE, "app.kubernetes.io/instance": LOKI_RELEASE}
ALLOY_POD_LABELS = {"app.kubernetes.io/name": ALLOY_RELEASE, "app.kubernetes.io/instance": ALLOY_RELEASE}


def write_service(mode: str) -> str:
    """The Service that takes pushes: the single binary's, or the write path's."""
    return LOKI_RELEASE if mode == "single-binary" else f"{LOKI_RELEASE}-write"


def read_service(mode: str) -> str:
    """The Service that answers queries: the single binary's, or the read path's."""
    return LOKI_RELEASE if mode == "single-binary" else f"{LOKI_RELEASE}-read"


def push_url(logs: LogsConfig, namespace: str) -> str:
    return f"http://{write_service(logs.mode)}.{namespace}.svc:{LOKI_PORT}{PUSH_PATH}"


def query_url(logs: LogsConfig, namespace: str) -> str:
    return f"http://{read_service(logs.mode)}.{namespace}.svc:{LOKI_PORT}"


def tenant_rules(tenant_namespaces: Mapping[str, str]) -> list[tuple[str, str]]:
    """(namespace, Loki tenant) per tenant namespace, sorted: what the agent maps; every other namespace is
    ``PLATFORM_TENANT``."""
    return sorted((namespace, tenant) for tenant, namespace in tenant_namespaces.items())


def _string(value: str) -> str:
    """An Alloy string literal (tenant and namespace names are DNS labels: nothing to escape but in principle)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def agent_config(tenant_namespaces: Mapping[str, str], url: str) -> str:
    """Alloy's configuration: the pods of this node, their containers' logs through the API, the tenant from the
    namespace (default ``platform``, then one exact-match rule per tenant namespace: relabel regexes are anchored),
    pushed to ``url``."""
    mapping = "".join(
        f"  rule {{\n    source_labels = [{_string(NAMESPACE_META)}]\n    regex         = {_string(namespace)}\n"
        f"    target_label  = {_string(TENANT_LABEL)}\n    replacement   = {_string(tenant)}\n  }}\n"
        for namespace, tenant in tenant_rules(tenant_namespaces)
    )
    return f"""// Generated by ai-platform (components/logs.py): every container's logs, the tenant from the namespace.
discovery.kubernetes "pods" {{
  role = "pod"
  selectors {{
    role  = "pod"
    field = "spec.nodeName=" + sys.env("HOSTNAME")
  }}
}}

discovery.relabel "pods" {{
  targets = discovery.kubernetes.pods.targets
  rule {{
    source_labels = [{_string(NAMESPACE_META)}]
    target_label  = "namespace"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }}
  rule {{
    target_label = {_string(TENANT_LABEL)}
    replacement  = {_string(PLATFORM_TENANT)}
  }}
{mapping}}}

loki.source.kubernetes "pods" {{
  targets    = discovery.relabel.pods.output
  forward_to = [loki.process.tenant.receiver]
}}

loki.process "tenant" {{
  stage.tenant {{
    label = {_string(TENANT_LABEL)}
  }}
  forward_to = [loki.write.loki.receiver]
}}

loki.write "loki" {{
  endpoint {{
    url = {_string(url)}
  }}
}}
"""


def uses_iam(store: ObjectStore) -> bool:
    """Workload identity instead of keys: an external store without ``credentialsSecret``."""
    return store.mode == "external" and not store.credentials_secret


def credentials_secret(store: ObjectStore) -> str | None:
    """The Secret (in the logs namespace) whose S3 keys Loki gets, or None with workload identity."""
    if store.mode == "in-cluster":
        return S3_SECRET
    return store.credentials_secret


def s3_storage(store: ObjectStore, endpoint: str | None) -> dict:
    """``loki.storage.s3``: the in-cluster store's or the external endpoint (host:port, ``insecure`` for http), path
    style, the region; keys as environment references when there are keys."""
    s3: dict = {"region": store.region, "s3ForcePathStyle": True}
    url = endpoint if store.mode == "in-cluster" else store.endpoint
    if store.mode == "in-cluster" and endpoint is None:
        raise ValueError("Loki with the in-cluster object store needs the store's endpoint")
    if url:
        parts = urlsplit(str(url))
        s3["endpoint"] = parts.netloc
        s3["insecure"] = parts.scheme == "http"
    if credentials_secret(store):
        s3["accessKeyId"] = "${" + S3_ACCESS_KEY + "}"
        s3["secretAccessKey"] = "${" + S3_SECRET_KEY + "}"
    return s3


def loki_values(
    logs: LogsConfig, store: ObjectStore, cluster: Cluster, endpoint: str | None, *, monitor: bool = False
) -> dict:
    """Values of the Loki chart (keys checked against the upstream values.yaml by the schema tier); ``monitor``: the
    chart's ServiceMonitor (``monitoring.serviceMonitor``: every Loki Service but the headless ones, port
    ``http-metrics``, job ``<namespace>/<service>``, the chart's ``jobPrefix``), labelled for the platform's
    Prometheus."""
    bucket = store.buckets["logs"]
    single = logs.mode == "single-binary"
    replicas = 1 if single else logs.replicas
    chunks_mb, results_mb = CACHE_MB[logs.mode]
    secret = credentials_secret(store)
    service_account: dict = {"create": True, "name": SERVICE_ACCOUNT}
    if uses_iam(store) and store.service_account_annotations:
        service_account["annotations"] = dict(store.service_account_annotations)
    values: dict = {
        "deploymentMode": DEPLOYMENT_MODE[logs.mode],
        "loki": {
            "auth_enabled": True,
            "commonConfig": {"replication_factor": min(3, replicas)},
            "schemaConfig": {"configs": [SCHEMA]},
            "storage": {
                "type": "s3",
                "bucketNames": {"chunks": bucket, "ruler": bucket},
                "s3": s3_storage(store, endpoint),
            },
            "compactor": {"retention_enabled": True, "delete_request_store": "s3"},
            # Merged over the generated config (values.yaml loki.limits_config is a filled map whose keys the
            # schema tier pins; structuredConfig is the chart's open hook for any other config key).
            "structuredConfig": {"limits_config": {"retention_period": logs.retention}},
            "querier": {"multi_tenant_queries_enabled": True},
            "podLabels": {"app.kubernetes.io/part-of": PART_OF},
        },
        # The keys reach every Loki pod's environment (the chart's templates/_pod.tpl always passes
        # -config.expand-env=true, so the config's ${...} are expanded from it).
        **({"defaults": {"extraEnvFrom": [{"secretRef": {"name": secret}}]}} if secret else {}),
        "serviceAccount": service_account,
        "singleBinary": {"replicas": 1 if single else 0, **({"resources": SINGLE_BINARY_RESOURCES} if single else {})},
        **{
            target: {"replicas": 0 if single else logs.replicas, **({} if single else {"resources": resources})}
            for target, resources in SCALABLE_RESOURCES.items()
        },
        "chunksCache": {"allocatedMemory": chunks_mb},
        "resultsCache": {"allocatedMemory": results_mb},
        "gateway": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
        "sidecar": {"rules": {"enabled": False}},
        "monitoring": {"serviceMonitor": {"enabled": monitor, "labels": {"app.kubernetes.io/part-of": PART_OF}}},
    }
    if cluster.image_registry:
        values["global"] = {"imageRegistry": cluster.image_registry}
    return values


def alloy_values(cluster: Cluster, config: str, *, monitor: bool = False) -> dict:
    """Values of the Alloy chart: a restricted DaemonSet with the generated configuration; ``monitor``: the chart's
    ServiceMonitor (Service ``alloy``, port ``http-metrics`` 12345, ``honorLabels: true``)."""
    container = restricted_container(non_root=True, seccomp=True)  # the user: the pod's (global.podSecurityContext)
    values: dict = {
        "crds": {"create": False},
        "global": {"podSecurityContext": restricted_pod(ALLOY_UID, gid=ALLOY_UID, fs_group=ALLOY_UID)},
        "alloy": {
            "configMap": {"create": True, "content": config},
            "storagePath": ALLOY_STORAGE,
            "enableReporting": False,
            "securityContext": container,
            "resources": ALLOY_RESOURCES,
            "mounts": {"extra": [{"name": "storage", "mountPath": ALLOY_STORAGE}, tmp_mount()]},
        },
        "controller": {
            "type": "daemonset",
            "podLabels": {"app.kubernetes.io/part-of": PART_OF},
            "volumes": {"extra": [{"name": "storage", "emptyDir": {}}, tmp_volume()]},
        },
        "serviceMonitor": {"enabled": monitor, "additionalLabels": {"app.kubernetes.io/part-of": PART_OF}},
    }
    if cluster.image_registry:
        values["global"]["image"] = {"registry": cluster.image_registry}
    return values


def grafana_datasource(logs: LogsConfig, namespaces: Namespaces, tenants: list[str]) -> dict:
    """Grafana's Loki datasource (kube-prometheus-stack ``grafana.additionalDataSources``): the platform's tenant and
    every tenant's at once (``X-Scope-OrgID: platform|a|b``, a multi-tenant query; each line carries its
    ``__tenant_id__``). The header names tenants, not a credential."""
    return {
        "name": "Loki",
        "uid": "loki",
        "type": "loki",
        "access": "proxy",
        "url": query_url(logs, namespaces.logs),
        "editable": False,
        "jsonData": {"httpHeaderName1": TENANT_HEADER},
        "secureJsonData": {"httpHeaderValue1": "|".join([PLATFORM_TENANT, *sorted(tenants)])},
    }


def tenant_datasource(logs: LogsConfig, namespaces: Namespaces, tenant: str) -> dict:
    """The Loki datasource of a tenant's Grafana organization (``components.monitoring.grafana_access``): the same
    Loki, ``X-Scope-OrgID`` = the tenant's id only (``tenant_rules``: the tenant's logs carry its name)."""
    return {**grafana_datasource(logs, namespaces, []), "secureJsonData": {"httpHeaderValue1": tenant}}


@dataclass(frozen=True)
class LogsArgs(ComponentArgs):
    """What ``Logs`` is built from (besides the cluster and namespaces): its config, the object store's config and
    the tenants' namespaces (tenant -> namespace); keyword-only, the in-cluster object store (endpoint, generated
    keys, the release Loki waits for), the platform's Secrets and the monitoring release (the charts'
    ServiceMonitors need its CRD; without it, none)."""

    logs: LogsConfig
    store: ObjectStore
    tenant_namespaces: Mapping[str, str]
    _: KW_ONLY
    object_store: objectstore.ObjectStore | None
    platform_secrets: PlatformSecrets
    monitoring: pulumi.Resource | None = None


class Logs(pulumi.ComponentResource):
    """Logs namespace and its fence, Loki's S3 key Secret, the Loki and Alloy releases (see the module docstring)."""

    def __init__(self, name: str, args: LogsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:logs:Logs", name, None, opts)
        logs, store, cluster, namespaces = args.logs, args.store, args.cluster, args.namespaces
        secrets, protect, in_cluster_store = args.platform_secrets, args.protect, args.object_store
        monitoring = [args.monitoring] if args.monitoring else []
        self.namespace = platform_namespace(
            f"{name}-namespace",
            namespaces.logs,
            COMPONENT,
            POD_SECURITY,
            cluster.kubernetes_version,
            self,
            protect=protect,
        )
        ns = self.namespace.metadata["name"]
        fenced_namespace_policies(name, ns, namespaces, COMPONENT, self)
        objectstore.service_keys(name, S3_SECRET, ns, COMPONENT, self, store, in_cluster_store, secrets)
        # Waits for the object store's release (Loki fails its readiness while its bucket is unreachable), not for
        # the Secret: the pods name it in envFrom and the kubelet retries until it exists.
        self.loki = helm_release(
            f"{name}-loki",
            versions.LOKI,
            ns,
            loki_values(
                logs, store, cluster, in_cluster_store.endpoint if in_cluster_store else None, monitor=bool(monitoring)
            ),
            self,
            cluster=cluster,
            depends_on=[*([in_cluster_store.release] if in_cluster_store else []), *monitoring] or None,
            timeout=900,
            release_name=LOKI_RELEASE,
            protect=protect,
        )
        self.agent_config = agent_config(args.tenant_namespaces, push_url(logs, namespaces.logs))
        # No wait for Loki: Alloy retries its pushes with backoff and keeps its positions. Protected like every
        # release whose chart carries CRDs (its crds subchart, off here).
        self.alloy = helm_release(
            f"{name}-alloy",
            versions.ALLOY,
            ns,
            alloy_values(cluster, self.agent_config, monitor=bool(monitoring)),
            self,
            cluster=cluster,
            depends_on=monitoring or None,
            release_name=ALLOY_RELEASE,
            protect=protect,
        )
        self.register_outputs({"namespace": ns, "loki": self.loki.name, "alloy": self.alloy.name})
