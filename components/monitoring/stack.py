"""``Monitoring``: Prometheus, Alertmanager and Grafana for the platform, and what they scrape.

Owns:
- the monitoring namespace, Pod Security ``privileged``: the chart's node-exporter DaemonSet runs with
  ``hostNetwork``, ``hostPID`` and a ``hostPath`` mount of the node's root file system (that is how it reads node
  metrics), which ``baseline`` and ``restricted`` forbid;
- Grafana's admin credentials: the Secret ``grafana-admin`` (keys ``admin-user``/``admin-password``, the Grafana
  chart's ``admin.userKey``/``passwordKey``) from ``PlatformSecrets``: a generated password (``RandomPassword``, 32
  characters) with ``secrets.source: pulumi``, else an ExternalSecret of the store's ``<keyPrefix>/grafana-admin``
  (property ``admin-password``). The chart only gets the Secret's name (``grafana.admin.existingSecret``): the
  password is in no Helm value;
- the alert receivers' credentials: the Secret ``alertmanager-receivers`` (one key per receiver with a credential)
  from ``PlatformSecrets``: the Pulumi secrets ``alertReceiver-<receiver>``, else an ExternalSecret of the store's
  ``<keyPrefix>/alertmanager-receivers``; mounted by the operator (``alertmanagerSpec.secrets``), read by the
  receivers as files. The Alertmanager configuration itself (routing by severity and tenant): ``alerting``;
- the Helm release ``kube-prometheus-stack`` (Prometheus Operator, Prometheus, Alertmanager, Grafana,
  kube-state-metrics, node-exporter, the chart's default rules and dashboards) with the values of ``chart`` (what
  Prometheus selects and keeps, the volumes, the mTLS plumbing). Prometheus is ``kube-prometheus-stack-prometheus:9090``
  in the monitoring namespace (``PROMETHEUS_SERVICE``), which ``PlatformConfig.prometheus_url`` (the endpoint
  autoscalers' default) assumes; the namespace and the release are protected under strict data protection;
- Grafana's folders: dashboards load only from ConfigMaps of the monitoring namespace (``chart.dashboard_sidecar``), each
  into the folder its ``grafana_folder`` annotation names; per tenant a folder with the tenant's dashboards, and the
  CronJob ``grafana-tenant-access`` that leaves each tenant folder to the tenant's team (``tenant_folders``; how and
  why in ``grafana_access``);
- the scraping objects of the platform: ServiceMonitors for the Volcano scheduler and controllers
  (``scrape_volcano``), one PodMonitor per endpoint version (``scrape_endpoint``) and one for the External Secrets
  Operator's pods (``scrape_external_secrets``).

Scraping model servers under the mesh. Tenant namespaces run Istio sidecars with ``PeerAuthentication`` STRICT: a
plaintext scrape of an app port is refused. Istio's default answer, metrics merging (the sidecar serves app and proxy
metrics in plaintext on 15020 ``/stats/prometheus``), only merges the app's metrics when the pod carries
``prometheus.io/*`` annotations, which the endpoint pods do not. So Prometheus scrapes the app's own metrics port over
Istio mTLS, as Istio documents for STRICT mode: with the mesh on, the Prometheus pods hold their workload certificate
and the scrape class ``istio-mtls`` points Prometheus's TLS client at it (how: ``chart``), and each PodMonitor uses that
class with ``scheme: https``. The tenant's sidecar then sees the identity
``spiffe://<trust domain>/ns/<monitoring>/sa/...``, which the endpoint's AuthorizationPolicy
(``components.mesh.traffic``) allows on the metrics port and ``/metrics``, and the tenant's NetworkPolicy admits from
the monitoring namespace. Without the mesh the same PodMonitors scrape in plaintext. On the very first ``pulumi up`` the
Prometheus pods may start before istiod's injector exists; restart them once the mesh is up.

Ordering: every ServiceMonitor/PodMonitor ``depends_on`` the release (``ready``), which installs the Prometheus
Operator CRDs. Helm installs the chart's ``crds/`` on first install only and never upgrades them (the chart's CRD
upgrade Job is a preview feature whose busybox image is not pinned to a version, so it stays off): before raising the chart pin,
apply the new chart's CRDs with ``kubectl apply --server-side --force-conflicts -f charts/crds/crds/``.
"""

from __future__ import annotations

import json
from dataclasses import KW_ONLY, dataclass

import pulumi

from config import images, versions
from config.monitoring import Monitoring as MonitoringConfig
from config.monitoring import Receiver
from config.serving import Endpoint
from config.tenancy import Tenant as TenantConfig

from ..meta import (
    TENANT_LABEL,
    ComponentArgs,
    KubeObject,
    helm_release,
    kube,
    metadata,
    mirrored,
    platform_namespace,
)
from ..pods import TMP, restricted_container, restricted_pod, tmp_mount, tmp_volume
from ..secrets import METRICS_PORT as EXTERNAL_SECRETS_METRICS_PORT
from ..secrets import POD_NAMES as EXTERNAL_SECRETS_PODS
from ..secrets import RELEASE as EXTERNAL_SECRETS_RELEASE
from ..secrets import PlatformSecrets, SecretRef
from ..serving import engines
from ..serving.engines.base import ENDPOINT_LABEL, VERSION_LABEL, version_name, versions_of
from . import alerting, label_proxy
from . import grafana_access as access
from .chart import (
    DASHBOARD_LABEL,
    DASHBOARD_LABEL_VALUE,
    GRAFANA_ADMIN_SECRET,
    GRAFANA_PASSWORD_KEY,
    GRAFANA_USER_KEY,
    ISTIO_SCRAPE_CLASS,
    RELEASE,
    helm_values,
)

COMPONENT = "monitoring"
POD_SECURITY = "privileged"
PROMETHEUS_SERVICE = f"{RELEASE}-prometheus"
PROMETHEUS_PORT = 9090

GRAFANA_ADMIN_USER = "admin"
GRAFANA_PORT = 80  # the Grafana chart's service.port
ACCESS_UID = 1000  # the access CronJob's user (the MLflow image defines none)

# The Volcano chart's metrics Services, one per component that serves /metrics in plaintext (volcano-sh/volcano
# v1.15.1 installer/helm/chart/volcano/templates/): the scheduler's <release>-scheduler-service (scheduler.yaml,
# label app: volcano-scheduler, port "metrics" 8080, served with custom.scheduler_metrics_enable: the scheduler's
# volcano_unschedule_*, volcano_queue_allocated_*) and the controllers' <release>-controllers-service
# (controllers.yaml, label app: volcano-controller, port "metrics" 8081, the controller manager's --listen-address
# default in cmd/controller-manager/app/options/options.go, served with custom.controller_metrics_enable:
# volcano_queue_pod_group_*_count of pkg/controllers/metrics/queue.go). Monitor name -> Service selector.
VOLCANO_MONITORS = {
    "volcano-scheduler": {"app": "volcano-scheduler"},
    "volcano-controllers": {"app": "volcano-controller"},
}
VOLCANO_METRICS_PORT = "metrics"


def endpoint_monitor_spec(endpoint: Endpoint, version: str, mesh: bool) -> dict:
    """PodMonitor spec for one version of an endpoint: its pods and metrics endpoint (the engine's), mTLS under the
    mesh."""
    engine = engines.of(endpoint)
    scrape = {**engine.metrics_scrape, "scheme": "https" if mesh else "http"}
    spec: dict = {
        "selector": {"matchLabels": engine.pod_selector(endpoint, version)},
        "podMetricsEndpoints": [scrape],
        "podTargetLabels": [TENANT_LABEL, ENDPOINT_LABEL, VERSION_LABEL],
    }
    if mesh:
        spec["scrapeClass"] = ISTIO_SCRAPE_CLASS
    return spec


def grafana_url(namespace: str) -> str:
    """Grafana's in-cluster URL: the subchart's Service ``<release>-grafana`` (its fullname: the release name does not
    contain ``grafana``) on the chart's ``service.port`` 80."""
    return f"http://{RELEASE}-grafana.{namespace}.svc:{GRAFANA_PORT}"


def access_cron_spec(image: str, url: str, dashboards: dict[str, list[str]] | None = None) -> dict:
    """The ``grafana-tenant-access`` CronJob: Python's standard library in the pinned MLflow image (no new image),
    Grafana's admin credentials from the ``grafana-admin`` Secret, Pod Security ``restricted``, no sidecar, no API
    token (it only talks to Grafana). ``Forbid``: one run at a time. It runs as ``ACCESS_UID``, which the MLflow image
    does not define (``config.images.MLFLOW``): ``USER``/``LOGNAME`` and ``HOME`` on an ``emptyDir`` at ``/tmp``, the
    one writable path of its read-only root file system. ``dashboards`` (tenant -> dashboard names): the tenants'
    dashboard ConfigMaps, mounted read-only at ``access.DASHBOARDS/<tenant>/`` for the tenant organizations."""

    def secret(key: str) -> dict:
        return {"secretKeyRef": {"name": GRAFANA_ADMIN_SECRET, "key": key}}

    container = {
        "name": "access",
        "image": image,
        "command": ["python", f"{access.MOUNT}/{access.SCRIPT_KEY}"],
        "env": [
            {"name": "GRAFANA_URL", "value": url},
            {"name": "GRAFANA_USER", "valueFrom": secret(GRAFANA_USER_KEY)},
            {"name": "GRAFANA_PASSWORD", "valueFrom": secret(GRAFANA_PASSWORD_KEY)},
            {"name": "CONFIG", "value": f"{access.MOUNT}/{access.CONFIG_KEY}"},
            {"name": "DASHBOARDS", "value": access.DASHBOARDS},
            *images.identity_env(TMP),
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
        "securityContext": restricted_container(non_root=True, seccomp=True),
        "volumeMounts": [
            {"name": "access", "mountPath": access.MOUNT, "readOnly": True},
            {"name": "dashboards", "mountPath": access.DASHBOARDS, "readOnly": True},
            tmp_mount(),
        ],
    }
    projected = [
        {
            "configMap": {
                "name": f"dashboard-{tenant}-{name}",
                "items": [{"key": f"{tenant}-{name}.json", "path": f"{tenant}/{tenant}-{name}.json"}],
            }
        }
        for tenant, names in sorted((dashboards or {}).items())
        for name in sorted(names)
    ]
    pod = {
        "metadata": {"labels": {"sidecar.istio.io/inject": "false"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": restricted_pod(ACCESS_UID, gid=ACCESS_UID),
            "containers": [container],
            "volumes": [
                {"name": "access", "configMap": {"name": access.ACCESS_NAME}},
                {"name": "dashboards", "projected": {"sources": projected}},
                tmp_volume("64Mi"),
            ],
        },
    }
    return {
        "schedule": access.SCHEDULE,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {"backoffLimit": 2, "activeDeadlineSeconds": 600, "template": pod}},
    }


@dataclass(frozen=True)
class MonitoringArgs(ComponentArgs):
    """What ``Monitoring`` is built from (besides the cluster and namespaces): its config, whether the mesh is on and
    the alert receivers; keyword-only, the platform's Secrets and the receivers' credentials (Pulumi secrets by
    receiver, with ``secrets.source`` pulumi)."""

    monitoring: MonitoringConfig
    mesh: bool = False
    receivers: dict[str, Receiver] | None = None
    vpa: bool = False
    """Whether the stack has VerticalPodAutoscalers (kube-state-metrics then exports their recommendations)."""
    datasources: list[dict] | None = None
    """Grafana's Loki and Tempo datasources (``components.logs``/``components.traces``), with logs/traces on."""
    _: KW_ONLY
    platform_secrets: PlatformSecrets
    receiver_secrets: dict | None = None


class Monitoring(pulumi.ComponentResource):
    """Monitoring namespace, Grafana admin credentials, the kube-prometheus-stack release, and the platform's
    ServiceMonitors/PodMonitors (see the module docstring)."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:monitoring:Monitoring", name, None, opts)
        monitoring, cluster, namespaces, mesh = args.monitoring, args.cluster, args.namespaces, args.mesh
        platform_secrets, protect, receivers, receiver_secrets = (
            args.platform_secrets,
            args.protect,
            args.receivers,
            args.receiver_secrets,
        )
        self._name, self.mesh = name, mesh
        self._registry, self._grafana_url = cluster.image_registry, grafana_url(namespaces.monitoring)
        self._replicas, self._monitoring_namespace = monitoring.prometheus_replicas, namespaces.monitoring
        self.namespace = platform_namespace(
            f"{name}-namespace",
            namespaces.monitoring,
            COMPONENT,
            POD_SECURITY,
            cluster.kubernetes_version,
            self,
            protect=protect,
        )
        ns = self.namespace.metadata["name"]
        password = platform_secrets.generated(
            f"{name}-grafana-admin-password", 32, GRAFANA_ADMIN_SECRET, GRAFANA_PASSWORD_KEY, parent=self
        )
        self.grafana_secret = platform_secrets.secret(
            f"{name}-grafana-admin",
            GRAFANA_ADMIN_SECRET,
            ns,
            COMPONENT,
            self,
            {GRAFANA_USER_KEY: GRAFANA_ADMIN_USER, GRAFANA_PASSWORD_KEY: password},
        )
        # Alert receivers' credentials, one key per receiver (Pulumi secrets ``alertReceiver-<receiver>``, which the
        # loader checked, or the store's <keyPrefix>/alertmanager-receivers): mounted by the operator, no wait either.
        receivers = receivers or {}
        credentials: dict[str, SecretRef] = {}
        for receiver in alerting.needs_secret(receivers):
            ref = platform_secrets.provided((receiver_secrets or {}).get(receiver), alerting.RECEIVERS_SECRET, receiver)
            if ref is not None:  # always: config.loader refuses a stack without a receiver's credential
                credentials[receiver] = ref
        self.receivers_secret = (
            platform_secrets.secret(
                f"{name}-alertmanager-receivers", alerting.RECEIVERS_SECRET, ns, COMPONENT, self, credentials
            )
            if credentials
            else None
        )
        # No wait for the Secret: Grafana's pod names it (secretKeyRef), the kubelet retries until it exists, and
        # the release's 900 s wait covers it (from the store it comes one wave later, after the operator's release).
        # Waiting would put every monitor and rule, and the GPU and Milvus releases, one wave later.
        self.release = helm_release(
            f"{name}-release",
            versions.KUBE_PROMETHEUS_STACK,
            ns,
            helm_values(monitoring, cluster, mesh, namespaces.monitoring, receivers, args.vpa, args.datasources),
            self,
            cluster=args.cluster,
            timeout=900,
            release_name=RELEASE,
            protect=protect,
        )
        self.prometheus_url = f"http://{PROMETHEUS_SERVICE}.{namespaces.monitoring}.svc:{PROMETHEUS_PORT}"
        self.register_outputs({"namespace": ns, "release": self.release.name, "prometheus": self.prometheus_url})

    @property
    def ready(self) -> pulumi.Resource:
        """What Prometheus Operator custom resources (and charts that create them) must depend on: the release,
        which installs the CRDs."""
        return self.release

    def _after_release(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=[self.release])

    def scrape_volcano(self, namespace: pulumi.Input[str]) -> list[KubeObject]:
        """One ServiceMonitor per Volcano metrics Service in ``namespace`` (``VOLCANO_MONITORS``: the scheduler's and
        the controllers', whose queue metrics the batch alerts read); pass the Volcano namespace's Output so that the
        monitors wait for it. The namespace has no NetworkPolicy and no sidecars: a plaintext scrape reaches the
        pods."""
        return [
            kube(
                f"{self._name}-{name}",
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata=metadata(name, COMPONENT, namespace=namespace),
                spec={
                    "selector": {"matchLabels": dict(selector)},
                    "endpoints": [{"port": VOLCANO_METRICS_PORT, "path": "/metrics", "scheme": "http"}],
                },
                opts=self._after_release(),
            )
            for name, selector in VOLCANO_MONITORS.items()
        ]

    def scrape_external_secrets(self, namespace: pulumi.Input[str]) -> KubeObject:
        """A PodMonitor for the External Secrets Operator's controller, webhook and cert-controller pods in
        ``namespace`` (the chart's pod labels; each serves ``/metrics`` in plaintext on its ``metrics`` port, and the
        namespace has no sidecars). It replaces the chart's ServiceMonitors, which would make the operator's release
        wait for this release (their CRD), and every ExternalSecret one wave later."""
        return kube(
            f"{self._name}-external-secrets",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=metadata(EXTERNAL_SECRETS_RELEASE, COMPONENT, namespace=namespace),
            spec={
                "selector": {
                    "matchLabels": {"app.kubernetes.io/instance": EXTERNAL_SECRETS_RELEASE},
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/name", "operator": "In", "values": list(EXTERNAL_SECRETS_PODS)}
                    ],
                },
                "podMetricsEndpoints": [{"port": EXTERNAL_SECRETS_METRICS_PORT, "path": "/metrics", "scheme": "http"}],
            },
            opts=self._after_release(),
        )

    def scrape_endpoint(self, logical_name: str, endpoint: Endpoint, namespace: pulumi.Input[str]) -> list[KubeObject]:
        """One PodMonitor per version of ``endpoint`` (stable, canary) in the tenant's ``namespace``, named like the
        version's Deployment/InferenceService."""
        monitors = []
        for version, _ in versions_of(endpoint):
            monitors.append(
                kube(
                    version_name(logical_name, version),
                    api_version="monitoring.coreos.com/v1",
                    kind="PodMonitor",
                    metadata=metadata(
                        version_name(endpoint.name, version),
                        COMPONENT,
                        namespace=namespace,
                        tenant=endpoint.tenant,
                        extra_labels={ENDPOINT_LABEL: endpoint.name},
                    ),
                    spec=endpoint_monitor_spec(endpoint, version, self.mesh),
                    opts=self._after_release(),
                )
            )
        return monitors

    def scrape_mesh_proxies(
        self, logical_name: str, namespace: pulumi.Input[str], tenant: str | None = None
    ) -> KubeObject:
        """A PodMonitor for the Istio sidecars of ``namespace`` (``istio_requests_total`` and friends): the proxy's own
        stats port 15090, which it serves in plaintext outside mTLS."""
        return kube(
            logical_name,
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=metadata("istio-proxies", COMPONENT, namespace=namespace, tenant=tenant),
            spec={
                "selector": {"matchExpressions": [{"key": "security.istio.io/tlsMode", "operator": "Exists"}]},
                "podMetricsEndpoints": [{"port": "http-envoy-prom", "path": "/stats/prometheus", "scheme": "http"}],
            },
            opts=self._after_release(),
        )

    def publish(
        self, alert_groups: dict[str, list[dict]], recording_groups: list[dict], dashboards: dict[str, dict]
    ) -> None:
        """The platform's PrometheusRules (one per alert pack, one for the recording rules) and its Grafana
        dashboards as ConfigMaps the dashboard sidecar loads."""
        ns = self.namespace.metadata["name"]
        packs = {**alert_groups, "ai-platform-recording": recording_groups}
        for rule_name, groups in packs.items():
            if groups:
                kube(
                    f"{self._name}-rules-{rule_name}",
                    api_version="monitoring.coreos.com/v1",
                    kind="PrometheusRule",
                    metadata=metadata(rule_name, COMPONENT, namespace=ns),
                    spec={"groups": groups},
                    opts=self._after_release(),
                )
        for dashboard_name, dashboard in dashboards.items():
            self._dashboard(dashboard_name, access.PLATFORM_FOLDER, dashboard)

    def _dashboard(self, name: str, folder: str, dashboard: dict) -> pulumi.CustomResource:
        """A dashboard ConfigMap in the monitoring namespace, loaded into the Grafana folder ``folder``."""
        return kube(
            f"{self._name}-dashboard-{name}",
            api_version="v1",
            kind="ConfigMap",
            metadata={
                **metadata(
                    f"dashboard-{name}",
                    COMPONENT,
                    namespace=self.namespace.metadata["name"],
                    extra_labels={DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
                ),
                "annotations": {access.FOLDER_ANNOTATION: folder},
            },
            data={f"{name}.json": json.dumps(dashboard, sort_keys=True, separators=(",", ":"))},  # C encoder: no indent
            opts=pulumi.ResourceOptions(parent=self),
        )

    def tenant_folders(
        self,
        tenants: list[TenantConfig],
        boards: dict[str, dict[str, dict]],
        datasources: dict[str, list[dict]] | None = None,
    ) -> pulumi.CustomResource:
        """Each tenant's dashboards (``boards``: tenant -> name -> JSON) in a folder named after the tenant, the label
        proxy of the tenant organizations' Prometheus data sources (``label_proxy``), and the CronJob that gives each
        tenant's team view rights on its folder and each tenant its organization with its users, data sources
        (``datasources``: tenant -> Loki/Tempo data sources; the Prometheus one is added here) and dashboards
        (``grafana_access``)."""
        for tenant, by_name in boards.items():
            for dashboard_name, dashboard in by_name.items():
                self._dashboard(f"{tenant}-{dashboard_name}", tenant, dashboard)
        ns = self.namespace.metadata["name"]
        self._label_proxy(ns)
        proxy = label_proxy.url(self._monitoring_namespace)
        sources = {
            t.name: [access.prometheus_datasource(proxy, t.name), *(datasources or {}).get(t.name, [])] for t in tenants
        }
        config = kube(
            f"{self._name}-grafana-tenant-access-config",
            api_version="v1",
            kind="ConfigMap",
            metadata=metadata(access.ACCESS_NAME, COMPONENT, namespace=ns),
            data={
                access.SCRIPT_KEY: access.SCRIPT,
                access.CONFIG_KEY: access.config_json(tenants, sources, boards),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        image = mirrored(versions.MLFLOW_IMAGE, self._registry)
        return kube(
            f"{self._name}-grafana-tenant-access",
            api_version="batch/v1",
            kind="CronJob",
            metadata=metadata(access.ACCESS_NAME, COMPONENT, namespace=ns),
            spec=access_cron_spec(image, self._grafana_url, {t: list(b) for t, b in boards.items()}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, config]),
        )

    def _label_proxy(self, ns: pulumi.Input[str]) -> None:
        """prom-label-proxy's Deployment, Service and NetworkPolicy in the monitoring namespace (``label_proxy``)."""
        name = label_proxy.NAME
        image = mirrored(versions.PROM_LABEL_PROXY_IMAGE, self._registry)
        opts = pulumi.ResourceOptions(parent=self)
        kube(
            f"{self._name}-{name}",
            api_version="apps/v1",
            kind="Deployment",
            metadata=metadata(name, COMPONENT, namespace=ns, extra_labels=label_proxy.POD_LABELS),
            spec=label_proxy.deployment_spec(image, self.prometheus_url, self._replicas),
            opts=opts,
        )
        kube(
            f"{self._name}-{name}-service",
            api_version="v1",
            kind="Service",
            metadata=metadata(name, COMPONENT, namespace=ns),
            spec=label_proxy.service_spec(),
            opts=opts,
        )
        kube(
            f"{self._name}-{name}-policy",
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=metadata(name, COMPONENT, namespace=ns),
            spec=label_proxy.network_policy(),
            opts=opts,
        )
