"""kube-prometheus-stack's Helm values: what Prometheus selects, keeps and scrapes with, Alertmanager's configuration
(``alerting``) and volume, Grafana's admin Secret, dashboard sidecar and database, the labels kube-state-metrics
exports. Pure functions, no resources: ``stack.Monitoring`` installs the release with them. Keys are checked against the
upstream values.yaml by the schema tier.

Names. ``fullnameOverride`` pins the objects' prefix to the release name (``RELEASE``), so Prometheus is
``kube-prometheus-stack-prometheus:9090`` in the monitoring namespace and Grafana ``kube-prometheus-stack-grafana``.

Which monitors and rules Prometheus loads. Prometheus picks ServiceMonitors, PodMonitors and PrometheusRules in every
namespace by ``app.kubernetes.io/part-of``: ``ai-platform`` (every platform object carries it, see
``components.meta.labels``; the GPU Operator's DCGM ServiceMonitor gets it through ``additionalLabels``) or the
value the chart and its subcharts put on their own monitors and rules (``kube-prometheus-stack``,
``kube-state-metrics``, ``prometheus-node-exporter``; Grafana's ServiceMonitor carries none, it gets
``kube-prometheus-stack``). Selecting ``ai-platform`` alone would drop the chart's own scraping (kubelet/cAdvisor,
API server, kube-state-metrics, node-exporter), leaving the default dashboards empty and the tenant join below
without data; the chart's labels cannot be rewritten instead (``commonLabels`` would duplicate the
``app.kubernetes.io/part-of`` key the chart already renders).

Tenants in GPU metrics. kube-state-metrics exports the pod and namespace labels ``ai-platform/tenant`` and
``ai-platform/endpoint`` (``kube_pod_labels{label_ai_platform_tenant=...}``), so per-pod GPU series of the DCGM
exporter can be joined to tenants and endpoints.

Prometheus under the mesh (why: ``stack``). With the mesh on, the Prometheus pods get a sidecar
(``sidecar.istio.io/inject``) that intercepts no traffic (``includeInboundPorts``/``includeOutboundIPRanges`` empty)
and only writes the pod's workload certificate to a shared in-memory volume (``OUTPUT_CERTS``); the scrape class
``istio-mtls`` points Prometheus's TLS client at those files (``insecureSkipVerify``: workload certificates name
SPIFFE identities, not host names).

State on volumes: Prometheus (``monitoring.storage``), Alertmanager (silences, notification log;
``ALERTMANAGER_STORAGE``), both StatefulSets retaining their claims when deleted or scaled down, and Grafana's database
(users, teams, the tenant folders' permissions; ``GRAFANA_STORAGE``, a chart-made claim annotated
``helm.sh/resource-policy: keep``, pods replaced one at a time: ``Recreate``).

``cluster.imageRegistry`` replaces the registry of every image of the chart and its subcharts
(``global.imageRegistry``); paths and the chart-pinned tags stay.
"""

from __future__ import annotations

import json

from config import versions
from config.cluster import Cluster
from config.monitoring import Monitoring as MonitoringConfig
from config.monitoring import Receiver

from ..meta import PART_OF, TENANT_LABEL
from ..serving.engines.base import ENDPOINT_LABEL
from . import alerting
from . import grafana_access as access

RELEASE = versions.KUBE_PROMETHEUS_STACK.name

GRAFANA_ADMIN_SECRET = "grafana-admin"
AUTO_ASSIGN_ENV = "GF_USERS_AUTO_ASSIGN_ORG_ROLE"  # grafana.ini [users] auto_assign_org_role
# The Grafana chart's defaults for admin.userKey and admin.passwordKey, restated so the Secret and values agree.
GRAFANA_USER_KEY = "admin-user"
GRAFANA_PASSWORD_KEY = "admin-password"
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"

PART_OF_LABEL = "app.kubernetes.io/part-of"
# app.kubernetes.io/part-of of the monitors and rules Prometheus loads: the platform's, and the chart's own
# (the parent chart's objects, kube-state-metrics', node-exporter's).
SELECTED_PART_OF = [PART_OF, RELEASE, "kube-state-metrics", "prometheus-node-exporter"]
# Pod and namespace labels kube-state-metrics exports (as label_ai_platform_tenant, label_ai_platform_endpoint).
EXPORTED_LABELS = [TENANT_LABEL, ENDPOINT_LABEL]

# Istio workload certificates for scraping meshed pods over mTLS (see the module docstring).
ISTIO_SCRAPE_CLASS = "istio-mtls"
ISTIO_CERTS_VOLUME = "istio-certs"
ISTIO_OUTPUT_CERTS = "/etc/istio-output-certs"  # where the Prometheus pod's sidecar writes them
PROMETHEUS_CERTS = "/etc/prom-certs"  # where the Prometheus container reads them


def _selector() -> dict:
    return {"matchExpressions": [{"key": PART_OF_LABEL, "operator": "In", "values": list(SELECTED_PART_OF)}]}


# Volumes besides Prometheus's: Alertmanager's silences and notification log, Grafana's database (users, teams,
# folder permissions: the tenant folders' access lives there).
ALERTMANAGER_STORAGE = "5Gi"
GRAFANA_STORAGE = "10Gi"
# StatefulSet volumes outlive their pods whatever happens to the StatefulSet (the Kubernetes default, stated).
RETAIN_VOLUMES = {"whenDeleted": "Retain", "whenScaled": "Retain"}
KEEP = {"helm.sh/resource-policy": "keep"}


def _claim(size: str, storage_class: str | None) -> dict:
    claim: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        claim["storageClassName"] = storage_class
    return claim


def prometheus_spec(monitoring: MonitoringConfig, mesh: bool) -> dict:
    """``prometheus.prometheusSpec``: what it selects, how long and where it keeps samples, the mTLS plumbing."""
    spec: dict = {
        "replicas": monitoring.prometheus_replicas,
        "retention": monitoring.retention,
        "storageSpec": {
            "volumeClaimTemplate": {"spec": _claim(monitoring.storage.size, monitoring.storage.storage_class)}
        },
        "persistentVolumeClaimRetentionPolicy": RETAIN_VOLUMES,
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "serviceMonitorSelector": _selector(),
        "podMonitorSelector": _selector(),
        "ruleSelector": _selector(),
        "serviceMonitorNamespaceSelector": {},
        "podMonitorNamespaceSelector": {},
        "ruleNamespaceSelector": {},
    }
    if mesh:
        spec["podMetadata"] = {
            "labels": {"sidecar.istio.io/inject": "true"},
            "annotations": {
                "traffic.sidecar.istio.io/includeInboundPorts": "",
                "traffic.sidecar.istio.io/includeOutboundIPRanges": "",
                "proxy.istio.io/config": json.dumps({"proxyMetadata": {"OUTPUT_CERTS": ISTIO_OUTPUT_CERTS}}),
                "sidecar.istio.io/userVolumeMount": json.dumps(
                    [{"name": ISTIO_CERTS_VOLUME, "mountPath": ISTIO_OUTPUT_CERTS}]
                ),
            },
        }
        spec["volumes"] = [{"name": ISTIO_CERTS_VOLUME, "emptyDir": {"medium": "Memory"}}]
        spec["volumeMounts"] = [{"name": ISTIO_CERTS_VOLUME, "mountPath": PROMETHEUS_CERTS, "readOnly": True}]
        spec["scrapeClasses"] = [
            {
                "name": ISTIO_SCRAPE_CLASS,
                "tlsConfig": {
                    "caFile": f"{PROMETHEUS_CERTS}/root-cert.pem",
                    "certFile": f"{PROMETHEUS_CERTS}/cert-chain.pem",
                    "keyFile": f"{PROMETHEUS_CERTS}/key.pem",
                    "insecureSkipVerify": True,
                },
            }
        ]
    return spec


def dashboard_sidecar(namespace: str) -> dict:
    """``grafana.sidecar.dashboards``: ConfigMaps labelled ``grafana_dashboard`` in the monitoring namespace only (a
    tenant developer, who manages ConfigMaps, could otherwise place dashboards in any folder), each in the folder its
    ``grafana_folder`` annotation names (``grafana_access``)."""
    return {
        "enabled": True,
        "label": DASHBOARD_LABEL,
        "labelValue": DASHBOARD_LABEL_VALUE,
        "searchNamespace": namespace,
        "folderAnnotation": access.FOLDER_ANNOTATION,
        "provider": {"foldersFromFilesStructure": True},
        "annotations": {access.FOLDER_ANNOTATION: access.CHART_FOLDER},
    }


# kube-prometheus-stack's scrapes (ServiceMonitors, Services and rule groups) of control-plane components a managed
# platform runs where no scrape reaches (values.yaml: kubeControllerManager, kubeScheduler, kubeEtcd).
MANAGED_CONTROL_PLANE = ("kubeControllerManager", "kubeScheduler", "kubeEtcd")


# The VerticalPodAutoscalers' recommendations as kube-state-metrics exports them: kube-state-metrics 2.x dropped its
# built-in VPA collector (v2.9.0), its Custom Resource State config brings the metrics back (kubernetes/
# kube-state-metrics v2.20.0 docs/metrics/extend/customresourcestate-metrics.md "All VerticalPodAutoscaler Metrics":
# metricNamePrefix kube, one metric per bound and resource, labels from the VPA and its targetRef). Recommendations
# only: target, lower and upper bound, per container, for CPU (cores) and memory (bytes).
VPA_RECOMMENDATION = "kube_verticalpodautoscaler_status_recommendation_containerrecommendations"
VPA_BOUNDS = {"target": "target", "lowerbound": "lowerBound", "upperbound": "upperBound"}
VPA_UNITS = {"cpu": "core", "memory": "byte"}


def vpa_metric(bound: str, resource: str) -> str:
    """The metric of one bound (``target``, ``lowerbound``, ``upperbound``) of one resource (``cpu``, ``memory``)."""
    return f"{VPA_RECOMMENDATION}_{bound}_{resource}"


def vpa_custom_resource_state() -> dict:
    """kube-state-metrics' Custom Resource State config for the VPAs' recommendations (``vpa_metric``)."""
    return {
        "kind": "CustomResourceStateMetrics",
        "spec": {
            "resources": [
                {
                    "groupVersionKind": {
                        "group": "autoscaling.k8s.io",
                        "kind": "VerticalPodAutoscaler",
                        "version": "v1",
                    },
                    "labelsFromPath": {
                        "namespace": ["metadata", "namespace"],
                        "target_api_version": ["spec", "targetRef", "apiVersion"],
                        "target_kind": ["spec", "targetRef", "kind"],
                        "target_name": ["spec", "targetRef", "name"],
                        "verticalpodautoscaler": ["metadata", "name"],
                    },
                    "metricNamePrefix": "kube",
                    "metrics": [
                        {
                            "name": vpa_metric(bound, resource).removeprefix("kube_"),
                            "help": f"{field} {resource} recommendation of the VerticalPodAutoscaler for the container.",
                            "commonLabels": {"unit": unit, "resource": resource},
                            "each": {
                                "type": "Gauge",
                                "gauge": {
                                    "path": ["status", "recommendation", "containerRecommendations"],
                                    "labelsFromPath": {"container": ["containerName"]},
                                    "valueFrom": [field, resource],
                                },
                            },
                        }
                        for bound, field in VPA_BOUNDS.items()
                        for resource, unit in VPA_UNITS.items()
                    ],
                }
            ]
        },
    }


def helm_values(
    monitoring: MonitoringConfig,
    cluster: Cluster,
    mesh: bool,
    namespace: str,
    receivers: dict[str, Receiver] | None = None,
    vpa: bool = False,
    datasources: list[dict] | None = None,
) -> dict:
    """Values of kube-prometheus-stack (keys checked against the upstream values.yaml by the schema tier).
    ``receivers``: every alert receiver of the stack (``PlatformConfig.alert_receivers``), see ``alerting``; their
    credentials are files of the mounted ``alerting.RECEIVERS_SECRET``, never values. ``vpa``: kube-state-metrics
    also exports the VerticalPodAutoscalers' recommendations (``vpa_custom_resource_state``), with the right to list
    and watch them. ``datasources``: Grafana's Loki and Tempo datasources (``grafana.additionalDataSources``)."""
    allowlist = ",".join(EXPORTED_LABELS)
    receivers = receivers or {}
    values: dict = {
        "fullnameOverride": RELEASE,
        "prometheus": {"prometheusSpec": prometheus_spec(monitoring, mesh)},
        "alertmanager": {
            "config": alerting.alertmanager_config(receivers, monitoring.routing),
            "alertmanagerSpec": {
                "storage": {
                    "volumeClaimTemplate": {"spec": _claim(ALERTMANAGER_STORAGE, monitoring.storage.storage_class)}
                },
                "persistentVolumeClaimRetentionPolicy": RETAIN_VOLUMES,
                **({"secrets": [alerting.RECEIVERS_SECRET]} if alerting.needs_secret(receivers) else {}),
            },
        },
        "grafana": {
            "admin": {
                "existingSecret": GRAFANA_ADMIN_SECRET,
                "userKey": GRAFANA_USER_KEY,
                "passwordKey": GRAFANA_PASSWORD_KEY,
            },
            "sidecar": {"dashboards": dashboard_sidecar(namespace)},
            # A chart-made claim, kept when the release goes; one pod at a time on a ReadWriteOnce volume.
            "persistence": {
                "enabled": True,
                "type": "pvc",
                "size": GRAFANA_STORAGE,
                "annotations": KEEP,
                **({"storageClassName": monitoring.storage.storage_class} if monitoring.storage.storage_class else {}),
            },
            "deploymentStrategy": {"type": "Recreate"},
            # A first login lands in the main (platform) organization with no role: tenant users get access only in
            # their own organization (grafana_access). "None" is a valid org role (grafana/grafana pkg/services/org
            # roletype RoleNone, IsValid, as stored). Set as grafana.ini [users] auto_assign_org_role through its
            # environment override GF_<SECTION>_<KEY> (grafana/grafana pkg/setting EnvKey / applyEnvVariableOverrides,
            # as stored): the chart's `env` map takes any variable, its `grafana.ini` documents no `users` section.
            "env": {AUTO_ASSIGN_ENV: access.NO_ROLE},
            "serviceMonitor": {"labels": {PART_OF_LABEL: RELEASE}},
        },
        "kube-state-metrics": {"metricLabelsAllowlist": [f"pods=[{allowlist}]", f"namespaces=[{allowlist}]"]},
    }
    if datasources:
        values["grafana"]["additionalDataSources"] = list(datasources)
    if vpa:
        values["kube-state-metrics"].update(
            {
                "customResourceState": {"enabled": True, "config": vpa_custom_resource_state()},
                "rbac": {
                    "extraRules": [
                        {
                            "apiGroups": ["autoscaling.k8s.io"],
                            "resources": ["verticalpodautoscalers"],
                            "verbs": ["list", "watch"],
                        }
                    ]
                },
            }
        )
    if cluster.profile.managed_control_plane:
        # The provider runs them out of reach: their scrapes would be down and their alerts fire for ever.
        values.update({component: {"enabled": False} for component in MANAGED_CONTROL_PLANE})
    if cluster.image_registry:
        values["global"] = {"imageRegistry": cluster.image_registry}
    return values
