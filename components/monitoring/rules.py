"""The platform's alert packs and recording rules, as the ``spec.groups`` of PrometheusRule objects.

Pure functions, no Pulumi resources: ``components.monitoring`` turns the result into PrometheusRule objects.

- ``alert_groups(cfg)``: PrometheusRule name -> its rule groups, one PrometheusRule per concern:
  ``ai-platform-gpu`` (DCGM exporter), ``ai-platform-inference`` (one group per model endpoint, thresholds
  from ``models[].alerts`` falling back to ``monitoring.alerts``), ``ai-platform-tenancy`` (quotas, Volcano).
  With VPAs (``vpa.enabled``), ``ai-platform-rightsizing``: a container's request far from its VPA's target.
  With logs or traces (``logs.enabled``, ``traces.enabled``), ``ai-platform-pipeline``: the pipeline's components
  down, logs and spans refused or dropped (per tenant where the metric names one). With rate limits
  (``rateLimits``, ``cfg.rate_limits.active``), ``ai-platform-rate-limits``: a consumer's or an endpoint ceiling's
  requests refused, the rate-limit service down; and the recorded request rates per consumer and per ceiling with
  the tenant's ``namespace`` (``ratelimit_record``) for the dashboards.
- ``recording_groups()``: per-tenant GPU usage for chargeback (``ai_platform:tenant_gpu_*``) and the tenants' Volcano
  queues (``ai_platform:volcano_queue_*:tenant_queues``), each with the tenant's ``namespace`` for the tenant organizations.

Every metric an expression (or a dashboard query in ``dashboards.py``) uses is listed in ``METRIC_SOURCES``
with the exporter and the place that defines or documents it in the pinned version; the tests hold every
expression to that table.

Label facts the expressions rely on:
- DCGM exporter: the GPU Operator's ServiceMonitor (``components.gpu`` enables it) has ``jobLabel: app``, so
  ``job="nvidia-dcgm-exporter"``, and ``honorLabels: false`` (chart default), so the ``pod``/``namespace``
  labels the exporter puts on a GPU held by a pod reach Prometheus as ``exported_pod``/``exported_namespace``
  (the target's own ``pod``/``namespace`` are the exporter's). GPUs without a pod carry no ``exported_pod``.
  ``Hostname`` is the node, ``gpu``/``UUID`` the device; a time-sliced GPU has one series per pod holding a
  slice, a MIG instance one series per instance (same ``UUID`` as its GPU).
- Model servers are scraped per pod: ``namespace`` is the tenant, ``pod`` is ``<deployment>-<hash>-<hash>``,
  the Deployments those the engine names (``Engine.deployments``: ``<endpoint>``, ``<endpoint>-canary``; KServe's
  with ``-predictor``). Each engine writes its own alerts (``Engine.alert_rules``); the mesh's and the replicas'
  are written here for every engine.
- A tenant's namespace is the tenant's name and holds the ResourceQuota ``tenant-quota``
  (``components.tenancy``); the Volcano queue is the tenant's name too.
- Logs and traces: each chart's own ServiceMonitor (``components.logs``, ``components.traces``). Loki's job is
  ``<namespace>/<service>`` (grafana-community/helm-charts loki-18.11.0 templates/monitoring/servicemonitor.yaml,
  ``monitoring.serviceMonitor.jobPrefix``), Alloy's, Tempo's and the collector's the Service's name (no
  ``jobLabel``). Loki's and Tempo's ``tenant`` label is the tenant id (``X-Scope-OrgID``: the tenant's name, or
  ``platform``); Alloy's ``loki.write`` metrics carry the tenant of the entries too; the collector's exporters are
  ``otlp/<tenant>`` (``components.traces.collector_config``), so the tenant is taken from the exporter's name.
- Rate limits: the service's ServiceMonitor ``ratelimit`` (``components.mesh.rate_limits``, ingress namespace, no
  ``jobLabel``: ``job="ratelimit"``). Its statsd names become Prometheus series through the service's built-in
  statsd_exporter mapping: labels ``domain`` (``ai-platform``), ``key1`` and, for a nested descriptor, ``key2``, each
  ``<descriptor key>_<value>``: ``key1="endpoint_<tenant>/<endpoint>"`` for a ceiling, ``key1="tenant_<tenant>"``
  and ``key2="consumer_<claim value>"`` for a consumer (``tests/contracts/metrics/ratelimit.prom`` has the sources).
  The ``consumer`` label is the consumer's name (``tenants[].consumers[].name``), mapped from its claim value as
  the statsd name carries it (``consumer_metric_value``); an undeclared value keeps the claim value.
- Tenant-scoped alerts carry a ``tenant`` label, which Alertmanager routes on (``alerting``): an endpoint's alerts
  the endpoint's tenant, a quota alert its namespace, a queue alert its queue (templated rule labels). The gang
  alert's ``job_id`` names no tenant: it goes by severity only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import logs as logs_component
from .. import traces as traces_component
from ..mesh import inference_pools
from ..mesh import rate_limits as rate_limits_component
from ..serving import engines
from ..serving.engines.base import AlertContext
from .chart import VPA_UNITS, vpa_metric
from .promql import num, ratio_of_rates, selector

if TYPE_CHECKING:
    from config.model import PlatformConfig
    from config.serving import Endpoint

GPU_RULES = "ai-platform-gpu"
INFERENCE_RULES = "ai-platform-inference"
TENANCY_RULES = "ai-platform-tenancy"
RIGHTSIZING_RULES = "ai-platform-rightsizing"
PIPELINE_RULES = "ai-platform-pipeline"
RATE_LIMIT_RULES = "ai-platform-rate-limits"
ROUTING_RULES = "ai-platform-inference-routing"

DCGM_JOB = "nvidia-dcgm-exporter"
GPU_POD = "exported_pod"
GPU_NAMESPACE = "exported_namespace"
TENANT_QUOTA = "tenant-quota"
# XIDs that mean the GPU itself is in trouble (ECC double-bit / uncontained errors, row-remapping failure,
# NVLink error, fallen off the bus, GSP errors): the GPU needs a reset or the node a drain. Application XIDs
# (13, 31, 43, 45, ...) only raise the warning. The exporter labels the series with ``err_code``.
FATAL_XIDS = (48, 63, 64, 74, 79, 92, 94, 95, 119, 120)

_DCGM = (
    "NVIDIA DCGM exporter 4.6 (GPU Operator v26.7.0 default dcgmExporter 4.6.0-4.8.3), collected by "
    "default: NVIDIA/dcgm-exporter etc/dcp-metrics-included.csv (the file the operator's DaemonSet sets "
    "in DCGM_EXPORTER_COLLECTORS, assets/state-dcgm-exporter/0800_daemonset.yaml) and etc/default-counters.csv"
)
_KSM = "kube-state-metrics 2.20 (kube-prometheus-stack 88.5.3 subchart 8.4.0): kubernetes/kube-state-metrics"
_VOLCANO = "Volcano 1.15.1 (volcano-sh/volcano v1.15.1)"
_ISTIO = (
    "Istio 1.30 sidecar standard metrics (https://istio.io/latest/docs/reference/config/metrics/), "
    "from the envoy /stats/prometheus endpoint of each injected pod"
)

_LOKI = "Loki 3.7.6 (grafana/loki v3.7.6)"
_ALLOY = "Grafana Alloy v1.18.1 (grafana/alloy v1.18.1) internal/component/common/loki/client/metrics.go"
_TEMPO = "Tempo 2.10.8 (grafana/tempo v2.10.8)"
_RATELIMIT = (
    "Envoy rate-limit service (envoyproxy/ratelimit f2fb157, USE_PROMETHEUS: src/stats/manager_impl.go NewStats, "
    "src/stats/prom/default_mapper.yaml through prometheus/statsd_exporter v0.26.1, counters without _total)"
)
_EPP = (
    "Inference Extension endpoint picker v1.5.0 (kubernetes-sigs/gateway-api-inference-extension v1.5.0 "
    "pkg/epp/metrics/metrics.go; tests/contracts/metrics/epp.prom)"
)
_OTELCOL = (
    "OpenTelemetry Collector 0.158.0 (open-telemetry/opentelemetry-collector v0.158.0; Prometheus names without "
    "_total, units or scope labels: service/telemetry/otelconftelemetry/factory.go, internal/migration/v0.3.0.go)"
)

METRIC_SOURCES: dict[str, str] = {  # and each engine's (``Engine.metric_sources``), at the end
    # DCGM exporter (GPU Operator)
    "DCGM_FI_DEV_XID_ERRORS": f"{_DCGM}: gauge, value of the last XID (label err_code, err_msg); the value stays "
    "until the driver is reloaded (NVIDIA/DCGM#277)",
    "DCGM_FI_DEV_GPU_TEMP": f"{_DCGM}: gauge, GPU temperature in C",
    "DCGM_FI_DEV_FB_USED": f"{_DCGM}: gauge, framebuffer memory used in MiB",
    "DCGM_FI_DEV_FB_FREE": f"{_DCGM}: gauge, framebuffer memory free in MiB",
    "DCGM_FI_DEV_GPU_UTIL": f"{_DCGM}: gauge, GPU utilization in % (not reported for MIG instances)",
    "DCGM_FI_DEV_POWER_USAGE": f"{_DCGM}: gauge, power draw in W",
    "up": "Prometheus: scrape health of every target (https://prometheus.io/docs/concepts/jobs_instances/); "
    "job nvidia-dcgm-exporter from the GPU Operator ServiceMonitor (jobLabel: app, "
    "assets/state-dcgm-exporter/0500_service_monitor.yaml)",
    # Istio
    "istio_requests_total": f"{_ISTIO}: counter, labels reporter, destination_workload, "
    "destination_workload_namespace, response_code",
    "istio_request_duration_milliseconds_bucket": f"{_ISTIO}: histogram istio_request_duration_milliseconds",
    # kube-state-metrics
    "kube_deployment_status_replicas_available": f"{_KSM} docs/metrics/workload/deployment-metrics.md",
    "kube_deployment_spec_replicas": f"{_KSM} docs/metrics/workload/deployment-metrics.md",
    "kube_resourcequota": f"{_KSM} docs/metrics/policy/resourcequota-metrics.md (labels resourcequota, namespace, "
    "resource, type=hard|used)",
    "kube_pod_container_resource_requests": f"{_KSM} docs/metrics/workload/pod-metrics.md (labels namespace, pod, "
    "container, resource, unit; cpu in cores, memory in bytes)",
    **{
        vpa_metric(bound, resource): f"{_KSM} Custom Resource State (components.monitoring.chart "
        "vpa_custom_resource_state; docs/metrics/extend/customresourcestate-metrics.md): labels namespace, "
        "verticalpodautoscaler, target_kind, target_name, container, resource, unit"
        for bound in ("target", "lowerbound", "upperbound")
        for resource in VPA_UNITS
    },
    # Volcano
    "volcano_queue_pod_group_pending_count": f"{_VOLCANO} vc-controller-manager: pkg/controllers/metrics/queue.go "
    "(label queue_name = the Queue's name, pkg/controllers/queue/"
    "queue_controller_action.go), scraped by the ServiceMonitor "
    "volcano-controllers (components.monitoring.stack VOLCANO_MONITORS)",
    "volcano_queue_pod_group_inqueue_count": f"{_VOLCANO} vc-controller-manager: pkg/controllers/metrics/queue.go",
    "volcano_queue_pod_group_running_count": f"{_VOLCANO} vc-controller-manager: pkg/controllers/metrics/queue.go",
    "volcano_unschedule_task_count": f"{_VOLCANO} vc-scheduler: pkg/scheduler/metrics/metrics.go (label job_id = "
    "PodGroup name), set by the gang plugin (pkg/scheduler/plugins/gang/gang.go "
    "OnSessionClose) to minAvailable - ready tasks of a gang that cannot start",
    "volcano_unschedule_job_count": f"{_VOLCANO} vc-scheduler: pkg/scheduler/metrics/metrics.go, gangs that could "
    "not be scheduled in the last session",
    "volcano_queue_allocated_scalar_resources": f"{_VOLCANO} vc-scheduler: pkg/scheduler/metrics/queue.go (labels "
    "queue_name, resource)",
    # Logs and traces pipeline
    "loki_discarded_samples_total": f"{_LOKI} pkg/validation/validate.go DiscardedSamples: labels reason (e.g. "
    "rate_limited, per_stream_rate_limit, stream_limit, line_too_long), tenant, retention_hours, policy, format",
    "loki_distributor_lines_received_total": f"{_LOKI} pkg/loghttp/push/push.go linesIngested: labels tenant, "
    "is_internal_stream, policy, format",
    "loki_write_dropped_entries_total": f"{_ALLOY}: labels host, tenant, reason (ingester_error, rate_limited, "
    "stream_limited, line_too_long, queue_is_full); component labels component_id, component_path "
    "(internal/runtime/internal/controller/node_builtin_component.go)",
    "loki_write_sent_entries_total": f"{_ALLOY}: labels host, tenant",
    "tempo_discarded_spans_total": f"{_TEMPO} modules/overrides/discarded_spans.go: labels reason (rate_limited, "
    "trace_too_large, live_traces_exceeded, unknown_error, ...), tenant",
    "tempo_distributor_spans_received_total": f"{_TEMPO} modules/distributor/distributor.go: label tenant",
    "otelcol_receiver_accepted_spans": f"{_OTELCOL} receiver/receiverhelper/documentation.md: labels receiver, "
    "transport (receiver/receiverhelper/obsreport.go)",
    "otelcol_receiver_refused_spans": f"{_OTELCOL} receiver/receiverhelper/documentation.md: labels receiver, transport",
    "otelcol_exporter_sent_spans": f"{_OTELCOL} exporter/exporterhelper/documentation.md: label exporter "
    "(exporter/exporterhelper/internal/obs_report_sender.go)",
    "otelcol_exporter_send_failed_spans": f"{_OTELCOL} exporter/exporterhelper/documentation.md: label exporter",
    "otelcol_exporter_enqueue_failed_spans": f"{_OTELCOL} exporter/exporterhelper/documentation.md: label exporter "
    "(spans refused by a full sending queue)",
    # Inference routing
    "inference_pool_ready_pods": f"{_EPP}: gauge, the pool's replicas whose metrics are fresh; label name (the pool)",
    "inference_pool_average_queue_size": f"{_EPP}: gauge, mean waiting requests over the pool's replicas; label name",
    "inference_pool_average_kv_cache_utilization": f"{_EPP}: gauge, mean KV-cache use (0-1); label name",
    "inference_objective_request_total": f"{_EPP}: counter, requests the picker handled; labels model_name, "
    "target_model_name, priority",
    "inference_objective_request_error_total": f"{_EPP}: counter, requests that failed; labels model_name, "
    "target_model_name, error_code",
    "inference_extension_scheduler_attempts_total": f"{_EPP}: counter, picks; labels status, target_model_name, "
    "pod_name, namespace (the picked pod's: exported_namespace once stored), port",
    "inference_extension_scheduler_e2e_duration_seconds_bucket": f"{_EPP}: histogram, one scheduling decision",
    # Rate limits
    "ratelimit_service_rate_limit_total_hits": f"{_RATELIMIT}: counter, every request counted against a limit; "
    "labels domain, key1, key2 (a nested descriptor's second entry), each <descriptor key>_<value>",
    "ratelimit_service_rate_limit_over_limit": f"{_RATELIMIT}: counter, requests over the limit (answered 429 by "
    "the gateway); labels domain, key1, key2",
}
for _engine in engines.all_engines():
    METRIC_SOURCES.update(_engine.metric_sources)


# --------------------------------------------------------------------------------------------------------------
# Query building blocks (dashboards.py uses them too, so alerts and panels measure the same thing)


def fb_used_ratio(**matchers: str) -> str:
    """Framebuffer memory in use, 0-1, per series (GPU, or GPU and pod)."""
    used, free = selector("DCGM_FI_DEV_FB_USED", **matchers), selector("DCGM_FI_DEV_FB_FREE", **matchers)
    return f"{used} / ({used} + {free})"


def physical_gpus(by: str = "Hostname", offset: str = "", **matchers: str) -> str:
    """Distinct GPUs (by UUID) reporting, per ``by`` (or in all): time-slice and MIG series collapse onto their
    GPU. ``offset`` looks back in time."""
    series = selector("DCGM_FI_DEV_GPU_TEMP", **matchers) + (f" offset {offset}" if offset else "")
    return f"count{f' by ({by})' if by else ''} (count by (Hostname, UUID) ({series}))"


def tenant_from(label: str, expr: str) -> str:
    """``expr`` with a ``tenant`` label copied from ``label`` (a tenant's namespace is the tenant's name)."""
    return f'label_replace({expr}, "tenant", "$1", "{label}", "(.+)")'


# Tenant namespaces, as a `tenant` label: the namespaces holding the platform's tenant ResourceQuota.
TENANT_QUOTAS = selector("kube_resourcequota", resourcequota=TENANT_QUOTA, type="hard", resource="pods")
TENANT_NAMESPACES = tenant_from("namespace", TENANT_QUOTAS)


def endpoint_deployments(endpoint: Endpoint) -> list[str]:
    """The Deployments that serve an endpoint (stable, then canary)."""
    return engines.of(endpoint).deployments(endpoint)


def endpoint_pods(endpoint: Endpoint) -> dict[str, str]:
    """Matchers of the endpoint's server pods (both versions) as Prometheus scrapes them."""
    deployments = "|".join(endpoint_deployments(endpoint))
    return {"namespace": endpoint.tenant, "pod": f"~({deployments})-[a-z0-9]+-[a-z0-9]+"}


def endpoint_workloads(endpoint: Endpoint) -> dict[str, str]:
    """Matchers of the endpoint's requests as its Istio sidecars report them (server side)."""
    return {
        "reporter": "destination",
        "destination_workload_namespace": endpoint.tenant,
        "destination_workload": "~" + "|".join(endpoint_deployments(endpoint)),
    }


# A pod's workload, from the pod's name: a Deployment's pods are <deployment>-<pod-template-hash>-<suffix> (the hash
# and the suffix in Kubernetes' safe alphabet: k8s.io/apimachinery pkg/util/rand SafeEncodeString, the hash at most 10
# characters of a uint32, the suffix 5: pkg/controller/controller_utils.go, names.SimpleNameGenerator); a
# StatefulSet's <statefulset>-<ordinal>.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
POD_OF = {"Deployment": f"(.+)-[{_SAFE}]{{1,10}}-[{_SAFE}]{{5}}", "StatefulSet": "(.+)-[0-9]+"}
# A container's request this many times its VPA's target (or this fraction of it) for a day is far from it.
REQUEST_OVER_TARGET, REQUEST_UNDER_TARGET = 2.0, 0.5
REQUEST_FAR_FOR = "1d"


def vpa_target(**matchers: str) -> str:
    """The VPAs' target recommendations (CPU in cores and memory in bytes, label ``resource``)."""
    return f"({' or '.join(selector(vpa_metric('target', resource), **matchers) for resource in VPA_UNITS)})"


def workload_requests(kind: str, **matchers: str) -> str:
    """Each ``kind`` workload's containers' CPU and memory requests (the largest of its pods'), labelled like the VPA
    metrics: ``target_name`` (the workload), ``container``, ``resource``."""
    requests = selector("kube_pod_container_resource_requests", **{"resource": "~cpu|memory", **matchers})
    return (
        "max by (namespace, target_name, container, resource) "
        f'(label_replace({requests}, "target_name", "$1", "pod", "{POD_OF[kind]}"))'
    )


def request_to_target(**matchers: str) -> str:
    """Request / VPA target per workload container and resource, with the VPA's labels (``target_kind``,
    ``target_name``, ``verticalpodautoscaler``); ``matchers`` select VPAs (``namespace``, ``target_name``)."""
    namespace = {"namespace": matchers["namespace"]} if "namespace" in matchers else {}
    ratios = [
        f"{workload_requests(kind, **namespace)} / on (namespace, target_name, container, resource) group_right () "
        f"{vpa_target(target_kind=kind, **matchers)}"
        for kind in POD_OF
    ]
    return f"({' or '.join(ratios)})"


# --------------------------------------------------------------------------------------------------------------
# Alerts


class _Alerts:
    """Builds alert rules with the platform's conventions (severity, summary, description, runbook link)."""

    def __init__(self, cfg: PlatformConfig):
        self.runbooks = cfg.monitoring.runbook_url.rstrip("/")

    def __call__(
        self, name: str, expr: str, for_: str, severity: str, summary: str, description: str, **labels: str
    ) -> dict:
        assert severity in ("warning", "critical")
        return {
            "alert": name,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, **labels},
            "annotations": {"summary": summary, "description": description, "runbook_url": f"{self.runbooks}/{name}"},
        }


def _gpu_rules(cfg: PlatformConfig, alert: _Alerts) -> list[dict]:
    thresholds = cfg.monitoring.alerts
    where = "{{ $labels.Hostname }} GPU {{ $labels.gpu }} ({{ $labels.UUID }})"
    holder = f"{{{{ $labels.{GPU_NAMESPACE} }}}}/{{{{ $labels.{GPU_POD} }}}}"
    util = selector("DCGM_FI_DEV_GPU_UTIL", **{GPU_POD: "!"})
    temperature, memory = num(thresholds.gpu_temperature_celsius), num(thresholds.gpu_memory_used_ratio)
    idle, idle_for = num(thresholds.gpu_idle_utilization_percent), thresholds.gpu_idle_for
    inventory = sum(pool.physical_gpus for pool in cfg.gpu.node_pools)

    health = [
        alert(
            "AiPlatformGpuXidError",
            "DCGM_FI_DEV_XID_ERRORS != 0 unless DCGM_FI_DEV_XID_ERRORS offset 10m != 0",
            "0m",
            "warning",
            "GPU reported XID {{ $labels.err_code }}",
            f"{where} reported XID {{{{ $labels.err_code }}}} ({{{{ $labels.err_msg }}}}) in the last 10 minutes. "
            "Application XIDs (13, 31, 43, 45) point at the workload; repeated ones on one GPU at the GPU.",
        ),
        alert(
            "AiPlatformGpuFatalXid",
            selector("DCGM_FI_DEV_XID_ERRORS", err_code="~" + "|".join(str(xid) for xid in FATAL_XIDS)),
            "0m",
            "critical",
            "GPU has a hardware XID {{ $labels.err_code }}: drain the node",
            f"{where} reported XID {{{{ $labels.err_code }}}} ({{{{ $labels.err_msg }}}}). The GPU needs a reset "
            "or replacement: cordon and drain the node. The alert stays until the driver is reloaded.",
        ),
        alert(
            "AiPlatformGpuTemperatureHigh",
            f"DCGM_FI_DEV_GPU_TEMP > {temperature}",
            "10m",
            "warning",
            f"GPU temperature above {temperature}C",
            f"{where} runs at {{{{ $value }}}}C; above {temperature}C the GPU throttles its clocks. Check the "
            "node's cooling and fans.",
        ),
        alert(
            "AiPlatformGpuMemoryNearlyFull",
            f"{fb_used_ratio()} > {memory}",
            "15m",
            "warning",
            "GPU framebuffer memory nearly full",
            f"{where} has {{{{ $value | humanizePercentage }}}} of its framebuffer in use (threshold {memory}). "
            "vLLM reserves vllm.gpuMemoryUtilization of the GPU up front; anything else sharing the GPU may "
            "fail to allocate.",
        ),
    ]
    presence = [
        alert(
            "AiPlatformDcgmExporterDown",
            f"{selector('up', job=DCGM_JOB)} == 0",
            "10m",
            "warning",
            "DCGM exporter not scraped",
            "Prometheus cannot scrape the DCGM exporter at {{ $labels.instance }}: the GPUs of that node are "
            "not monitored and their alerts cannot fire.",
        ),
        alert(
            "AiPlatformGpuLost",
            f"{physical_gpus()} < {physical_gpus(offset='1h')}",
            "10m",
            "critical",
            "GPUs disappeared from {{ $labels.Hostname }}",
            "{{ $labels.Hostname }} reports {{ $value }} GPUs, fewer than an hour ago: a GPU fell off the bus or "
            "the driver lost it. Its pods fail; cordon and drain the node.",
        ),
    ]
    if inventory:  # the config knows how many GPUs there should be
        presence += [
            alert(
                "AiPlatformDcgmExporterAbsent",
                f"absent({selector('up', job=DCGM_JOB)})",
                "15m",
                "critical",
                "No DCGM exporter is scraped",
                f"No target of job {DCGM_JOB} exists: no GPU of the cluster is monitored. Check the GPU "
                "Operator's dcgm-exporter DaemonSet and its ServiceMonitor.",
            ),
            alert(
                "AiPlatformGpuInventoryShort",
                f"{physical_gpus(by='')} < {inventory}",
                "30m",
                "warning",
                f"Fewer GPUs report than the {inventory} of the inventory",
                f"{{{{ $value }}}} GPUs report metrics; gpu.nodePools lists {inventory}. Tenant quotas are sized "
                "for the inventory: with GPUs missing, quota that was granted cannot be scheduled.",
            ),
        ]
    waste = [
        alert(
            "AiPlatformGpuIdle",
            f"avg_over_time({util}[{idle_for}]) < {idle} and {util} offset {idle_for}",
            "15m",
            "warning",
            f"Allocated GPU idle for {idle_for}",
            f"{where} held by {holder} averaged {{{{ $value | humanize }}}}% utilisation over {idle_for} "
            f"(threshold {idle}%). The GPU counts against the tenant's quota: scale the workload down or "
            "release it.",
        ),
    ]
    return [{"name": GPU_RULES, "rules": health + presence + waste}]


def endpoint_thresholds(cfg: PlatformConfig, endpoint: Endpoint) -> dict[str, float]:
    """An endpoint's latency, TTFT and error thresholds: its own, else the platform's."""
    own, platform = endpoint.alerts, cfg.monitoring.alerts
    return {
        "p95_latency_seconds": own.p95_latency_seconds or platform.endpoint_p95_latency_seconds,
        "ttft_p95_seconds": own.ttft_p95_seconds or platform.endpoint_ttft_p95_seconds,
        "error_ratio": own.error_ratio or platform.endpoint_error_ratio,
    }


def _endpoint_rules(cfg: PlatformConfig, endpoint: Endpoint, alert: _Alerts) -> list[dict]:
    limits, platform = endpoint_thresholds(cfg, endpoint), cfg.monitoring.alerts
    labels = {"tenant": endpoint.tenant, "endpoint": endpoint.name, "engine": endpoint.engine}
    pods, mesh = endpoint_pods(endpoint), endpoint_workloads(endpoint)
    it = f"Endpoint {endpoint.tenant}/{endpoint.name}"
    latency, errors = num(limits["p95_latency_seconds"]), num(limits["error_ratio"])

    rules = engines.of(endpoint).alert_rules(
        AlertContext(
            endpoint=endpoint,
            alert=alert,
            labels=labels,
            pods=pods,
            workloads=mesh,
            mesh=cfg.mesh.enabled,
            it=it,
            latency=latency,
            ttft=num(limits["ttft_p95_seconds"]),
            errors=errors,
            platform=platform,
        )
    )
    if cfg.mesh.enabled:
        rules.append(
            alert(
                "AiPlatformEndpointHttp5xxRate",
                ratio_of_rates("istio_requests_total", {**mesh, "response_code": "~5.."}, "istio_requests_total", mesh)
                + f" > {errors}",
                "10m",
                "critical",
                f"{it}: more than {errors} of HTTP requests answered 5xx",
                f"{{{{ $value | humanizePercentage }}}} of the HTTP requests to {it} got a 5xx answer, as the "
                f"endpoint's sidecars report them (threshold {errors}). gRPC errors are not counted here.",
                **labels,
            )
        )

    deployments = "|".join(endpoint_deployments(endpoint))
    scope = {"namespace": endpoint.tenant, "deployment": f"~{deployments}"}
    rules.append(
        alert(
            "AiPlatformEndpointNoReadyReplicas",
            f"{selector('kube_deployment_status_replicas_available', **scope)} == 0 "
            f"and on (namespace, deployment) {selector('kube_deployment_spec_replicas', **scope)} > 0",
            "15m",
            "critical",
            f"{it}: no replica is ready",
            f"Deployment {{{{ $labels.deployment }}}} of {it} has no available replica for 15 minutes: the version "
            "serves nothing. Check the model download Job, GPU scheduling (quota, taints) and the server's startup "
            "logs.",
            **labels,
        )
    )
    return rules


def _inference_groups(cfg: PlatformConfig, alert: _Alerts) -> list[dict]:
    return [
        {"name": f"{INFERENCE_RULES}-{endpoint.tenant}-{endpoint.name}", "rules": _endpoint_rules(cfg, endpoint, alert)}
        for endpoint in cfg.models
    ]


QUOTA_RESOURCES = "requests.nvidia.com/.+|requests.cpu|limits.cpu|requests.memory|limits.memory"


def quota_used_ratio(**matchers: str) -> str:
    """Used / hard of the tenant quotas' GPU, CPU and memory entries, per namespace and resource."""
    scope = {"resourcequota": TENANT_QUOTA, "resource": f"~{QUOTA_RESOURCES}", **matchers}
    return (
        f"{selector('kube_resourcequota', **scope, type='used')} / ignoring (type) "
        f"({selector('kube_resourcequota', **scope, type='hard')} > 0)"
    )


def _tenancy_groups(cfg: PlatformConfig, alert: _Alerts) -> list[dict]:
    thresholds = cfg.monitoring.alerts
    ratio = num(thresholds.quota_used_ratio)
    groups = [
        {
            "name": TENANCY_RULES,
            "rules": [
                alert(
                    "AiPlatformTenantQuotaNearlyUsed",
                    f"{quota_used_ratio()} > {ratio}",
                    "15m",
                    "warning",
                    "Tenant {{ $labels.namespace }} uses most of its {{ $labels.resource }} quota",
                    "Tenant {{ $labels.namespace }} uses {{ $value | humanizePercentage }} of its {{ $labels.resource }} "
                    f"quota (threshold {ratio}). New pods, jobs and endpoint replicas beyond it are rejected; raise "
                    "tenants[].quota or free resources.",
                    tenant="{{ $labels.namespace }}",
                )
            ],
        }
    ]
    if cfg.volcano.enabled:
        pending_for = thresholds.volcano_pending_for
        groups.append(
            {
                "name": f"{TENANCY_RULES}-batch",
                "rules": [
                    alert(
                        "AiPlatformVolcanoQueuePending",
                        "volcano_queue_pod_group_pending_count > 0",
                        pending_for,
                        "warning",
                        "Volcano queue {{ $labels.queue_name }} holds pending jobs",
                        f"Queue {{{{ $labels.queue_name }}}} has had pending PodGroups for {pending_for} "
                        "({{ $value }} now): the queue's capability (the tenant quota) or the cluster cannot admit them.",
                        tenant="{{ $labels.queue_name }}",
                    ),
                    alert(
                        "AiPlatformVolcanoGangUnschedulable",
                        "volcano_unschedule_task_count > 0",
                        pending_for,
                        "warning",
                        "Gang {{ $labels.job_id }} cannot be scheduled",
                        f"PodGroup {{{{ $labels.job_id }}}} has been missing {{{{ $value }}}} tasks to reach its "
                        f"minAvailable for {pending_for}: the gang never starts. `kubectl describe podgroup` shows the "
                        "fit errors.",
                    ),
                ],
            }
        )
    return groups


def _rightsizing_groups(alert: _Alerts) -> list[dict]:
    ratio = request_to_target()
    over, under = num(REQUEST_OVER_TARGET), num(REQUEST_UNDER_TARGET)
    return [
        {
            "name": RIGHTSIZING_RULES,
            "rules": [
                alert(
                    "AiPlatformRequestFarFromRecommendation",
                    f"{ratio} > {over} or {ratio} < {under}",
                    REQUEST_FAR_FOR,
                    "warning",
                    "{{ $labels.target_kind }} {{ $labels.namespace }}/{{ $labels.target_name }}: {{ $labels.resource }} "
                    "request far from the VPA's recommendation",
                    "Container {{ $labels.container }} of {{ $labels.target_kind }} {{ $labels.namespace }}/"
                    "{{ $labels.target_name }} requests {{ $value | humanize }} times the {{ $labels.resource }} that "
                    f"VerticalPodAutoscaler {{{{ $labels.verticalpodautoscaler }}}} recommends (more than {over} or "
                    f"less than {under} times, for {REQUEST_FAR_FOR}). Too much wastes the nodes, too little risks "
                    "throttling, eviction or OOM kills: set the request near the target (the rightsizing dashboard).",
                )
            ],
        }
    ]


# Log and span losses count from this rate on, over this window, for this long (no config: any loss is worth a look).
PIPELINE_WINDOW, PIPELINE_FOR = "10m", "10m"
PIPELINE_DOWN_FOR = "10m"
# Loki's and Alloy's reasons that mean the tenant's limits (Loki pkg/validation/validate.go; Alloy's client metrics).
LOKI_LIMIT_REASONS = "rate_limited|per_stream_rate_limit|stream_limit"
ALLOY_LIMIT_REASONS = "rate_limited|stream_limited"
TEMPO_LIMIT_REASONS = "rate_limited|live_traces_exceeded"


def pipeline_jobs(cfg: PlatformConfig) -> dict[str, str]:
    """Component -> the ``job`` matcher of its targets, for the pipeline the stack runs."""
    jobs: dict[str, str] = {}
    if cfg.logs.enabled:
        services = {logs_component.write_service(cfg.logs.mode), logs_component.read_service(cfg.logs.mode)}
        if cfg.logs.mode != "single-binary":
            services.add(f"{logs_component.LOKI_RELEASE}-backend")
        jobs["Loki"] = "~" + "|".join(f"{cfg.namespaces.logs}/{service}" for service in sorted(services))
        jobs["Alloy"] = logs_component.ALLOY_RELEASE
    if cfg.traces.enabled:
        jobs["Tempo"] = traces_component.TEMPO_RELEASE
        jobs["OpenTelemetry Collector"] = traces_component.COLLECTOR_RELEASE
    return jobs


def losses(metric: str, by: str, **matchers: str) -> str:
    """The per-second rate of ``metric`` over the pipeline window, summed ``by``."""
    return f"sum by ({by}) (rate({selector(metric, **matchers)}[{PIPELINE_WINDOW}]))"


def exporter_tenant(expr: str) -> str:
    """``expr`` (by exporter) with ``tenant`` from the collector's exporter name ``<type>/<tenant>``."""
    return f'label_replace({expr}, "tenant", "$1", "exporter", "[^/]+/(.+)")'


def _pipeline_groups(cfg: PlatformConfig, alert: _Alerts) -> list[dict]:
    down = [
        alert(
            f"AiPlatform{component.replace(' ', '')}Down",
            f"{selector('up', job=job)} == 0",
            PIPELINE_DOWN_FOR,
            "critical" if component in ("Loki", "Tempo") else "warning",
            f"{component} not scraped: {{{{ $labels.instance }}}}",
            f"Prometheus cannot scrape {component} at {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}}) for "
            f"{PIPELINE_DOWN_FOR}: the target is down or unreachable, and what passes through it (logs or spans) is "
            "probably lost or queued. Check its pods' events and logs.",
        )
        for component, job in pipeline_jobs(cfg).items()
    ]
    tenant = {"tenant": "{{ $labels.tenant }}"}
    logs, traces = [], []
    if cfg.logs.enabled:
        logs = [
            alert(
                "AiPlatformLokiTenantRateLimited",
                f"{losses('loki_discarded_samples_total', 'tenant, reason', reason='~' + LOKI_LIMIT_REASONS)} > 0",
                PIPELINE_FOR,
                "warning",
                "Loki refuses logs of tenant {{ $labels.tenant }}: {{ $labels.reason }}",
                "Loki discards {{ $value | humanize }} log lines/s of tenant {{ $labels.tenant }} for its limits "
                "({{ $labels.reason }}): the lines are lost. Raise the tenant's ingestion limits or find the pod that "
                "logs this much.",
                **tenant,
            ),
            alert(
                "AiPlatformLokiDiscardingLogs",
                f"{losses('loki_discarded_samples_total', 'tenant, reason', reason='!~' + LOKI_LIMIT_REASONS)} > 0",
                PIPELINE_FOR,
                "warning",
                "Loki discards logs of tenant {{ $labels.tenant }}: {{ $labels.reason }}",
                "Loki discards {{ $value | humanize }} log lines/s of tenant {{ $labels.tenant }} as invalid "
                "({{ $labels.reason }}: too long, too old, too many labels): the lines are lost.",
                **tenant,
            ),
            alert(
                "AiPlatformLogAgentDropping",
                f"{losses('loki_write_dropped_entries_total', 'tenant, reason')} > 0",
                PIPELINE_FOR,
                "warning",
                "The log agent drops logs of tenant {{ $labels.tenant }}: {{ $labels.reason }}",
                "Alloy gives up on {{ $value | humanize }} log entries/s of tenant {{ $labels.tenant }} after its "
                "retries ({{ $labels.reason }}): Loki refused them or could not be reached. The entries are lost.",
                **tenant,
            ),
        ]
    if cfg.traces.enabled:
        traces = [
            alert(
                "AiPlatformTempoTenantRateLimited",
                f"{losses('tempo_discarded_spans_total', 'tenant, reason', reason='~' + TEMPO_LIMIT_REASONS)} > 0",
                PIPELINE_FOR,
                "warning",
                "Tempo refuses spans of tenant {{ $labels.tenant }}: {{ $labels.reason }}",
                "Tempo discards {{ $value | humanize }} spans/s of tenant {{ $labels.tenant }} for its limits "
                "({{ $labels.reason }}): the spans are lost. Raise the tenant's ingestion limits or lower its "
                "sampling.",
                **tenant,
            ),
            alert(
                "AiPlatformTempoDiscardingSpans",
                f"{losses('tempo_discarded_spans_total', 'tenant, reason', reason='!~' + TEMPO_LIMIT_REASONS)} > 0",
                PIPELINE_FOR,
                "warning",
                "Tempo discards spans of tenant {{ $labels.tenant }}: {{ $labels.reason }}",
                "Tempo discards {{ $value | humanize }} spans/s of tenant {{ $labels.tenant }} "
                "({{ $labels.reason }}): the spans are lost.",
                **tenant,
            ),
            alert(
                "AiPlatformTraceCollectorRefusing",
                f"{losses('otelcol_receiver_refused_spans', 'receiver, transport')} > 0",
                PIPELINE_FOR,
                "warning",
                "The trace collector refuses spans ({{ $labels.receiver }}, {{ $labels.transport }})",
                "The OpenTelemetry Collector refuses {{ $value | humanize }} spans/s at {{ $labels.receiver }} "
                "({{ $labels.transport }}): its memory limiter pushes back or a pipeline is full. Senders retry "
                "for a while, then drop them.",
            ),
            alert(
                "AiPlatformTraceExportFailing",
                f"{exporter_tenant(losses('otelcol_exporter_send_failed_spans', 'exporter'))} > 0",
                PIPELINE_FOR,
                "warning",
                "The trace collector cannot send spans of tenant {{ $labels.tenant }} to Tempo",
                "Exporter {{ $labels.exporter }} fails to send {{ $value | humanize }} spans/s to Tempo after its "
                "retries: Tempo refused them or is unreachable. The spans are lost.",
                **tenant,
            ),
            alert(
                "AiPlatformTraceQueueFull",
                f"{exporter_tenant(losses('otelcol_exporter_enqueue_failed_spans', 'exporter'))} > 0",
                PIPELINE_FOR,
                "warning",
                "The trace collector's queue for tenant {{ $labels.tenant }} is full",
                "Exporter {{ $labels.exporter }} drops {{ $value | humanize }} spans/s because its sending queue is "
                "full: Tempo is slower than the spans arrive. The spans are lost.",
                **tenant,
            ),
        ]
    return [{"name": PIPELINE_RULES, "rules": down + logs + traces}]


RATE_LIMIT_JOB = rate_limits_component.NAME  # the ServiceMonitor's Service; no jobLabel
RATE_LIMIT_WINDOW, RATE_LIMITED_FOR, RATE_LIMIT_DOWN_FOR = "5m", "10m", "5m"
RATE_LIMIT_KINDS = ("consumer", "endpoint")  # what a limit limits: a tenant's consumer, an endpoint (its ceiling)
RATE_LIMIT_MEASURES = ("requests", "tokens")  # what it counts: requests, or tokens charged after each response
_RATE_LIMIT_KEYS = {
    ("consumer", "requests"): rate_limits_component.TENANT_KEY,
    ("consumer", "tokens"): rate_limits_component.TENANT_TOKENS_KEY,
    ("endpoint", "requests"): rate_limits_component.ENDPOINT_KEY,
    ("endpoint", "tokens"): rate_limits_component.ENDPOINT_TOKENS_KEY,
}
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")  # envoyproxy/ratelimit src/utils/utilities.go ipv4Regex


def consumer_metric_value(claim_value: str) -> str:
    """A claim value as ``key2`` carries it: the stat name's key sanitised (envoyproxy/ratelimit f2fb157
    src/utils/utilities.go ``SanitizeStatName``: ``:`` and ``|`` to ``_``, the dots of an IPv4 address to ``_``), then
    cut at its first dot (src/stats/prom/default_mapper.yaml: ``key2`` is ``([^\\.]*)``, ``(\\..*)?`` takes the rest)."""
    sanitised = _IPV4.sub(
        lambda found: found.group().replace(".", "_"), claim_value.replace(":", "_").replace("|", "_")
    )
    return sanitised.split(".", 1)[0]


def _promql_string(text: str) -> str:
    """``text`` as the inside of a double-quoted PromQL string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _limited(expr: str, kind: str, cfg: PlatformConfig, measure: str = "requests") -> str:
    """``expr`` (series with ``key1``/``key2``) with ``tenant`` and ``consumer`` (kind ``consumer``: the declared
    name of the claim value in ``key2``, else the value itself; from a tenant's limit, ``key1`` ``<tenant key>_<tenant>``,
    or an endpoint's limit for the consumer, ``key1`` ``<endpoint key>_<tenant>/<endpoint>``) or ``endpoint`` (kind
    ``endpoint``)."""
    tenant_key, consumer_key = _RATE_LIMIT_KEYS[("consumer", measure)], rate_limits_component.CONSUMER_KEY
    endpoint_key = _RATE_LIMIT_KEYS[("endpoint", measure)]
    if kind == "endpoint":
        expr = f'label_replace({expr}, "endpoint", "$1", "key1", "{endpoint_key}_[^/]+/(.+)")'
        return f'label_replace({expr}, "tenant", "$1", "key1", "{endpoint_key}_([^/]+)/.+")'
    expr = f'label_replace({expr}, "tenant", "$1", "key1", "{tenant_key}_(.+)")'
    expr = f'label_replace({expr}, "tenant", "$1", "key1", "{endpoint_key}_([^/]+)/.+")'
    expr = f'label_replace({expr}, "consumer", "$1", "key2", "{consumer_key}_(.+)")'
    expr = f'label_join({expr}, "descriptor", ".", "tenant", "key2")'
    for tenant in cfg.tenants:
        for consumer in tenant.consumers:
            value = f"{tenant.name}.{consumer_key}_{consumer_metric_value(consumer.claim_value)}"
            pattern = _promql_string(re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value))
            expr = f'label_replace({expr}, "consumer", "{consumer.name}", "descriptor", "{pattern}")'
    return expr


def ratelimit_rate(cfg: PlatformConfig, stat: str, kind: str, measure: str = "requests") -> str:
    """Per-second rate of the service's ``stat`` counter (``total_hits``, ``over_limit``) for ``kind``'s limits of
    ``measure``, by ``tenant`` and ``consumer`` (its limits over the tenant's endpoints and on single endpoints) or
    ``endpoint`` (its ceiling alone: no ``key2``). For tokens the counters add each charge's tokens
    (envoyproxy/ratelimit src/limiter/base_limiter.go: ``Add(hitsAddend)``; over_limit the part above the budget) and
    nothing for the request's check (its addend is 0): tokens/s charged, and tokens/s beyond the budget."""
    metric, domain = f"ratelimit_service_rate_limit_{stat}", rate_limits_component.DOMAIN
    if kind == "endpoint":
        counter = selector(metric, domain=domain, key1=f"~{_RATE_LIMIT_KEYS[(kind, measure)]}_.+", key2="")
    else:
        keys = f"{_RATE_LIMIT_KEYS[('consumer', measure)]}|{_RATE_LIMIT_KEYS[('endpoint', measure)]}"
        counter = selector(
            metric, domain=domain, key1=f"~({keys})_.+", key2=f"~{rate_limits_component.CONSUMER_KEY}_.+"
        )
    return f"sum by (tenant, {kind}) ({_limited(f'rate({counter}[{RATE_LIMIT_WINDOW}])', kind, cfg, measure)})"


def ratelimit_record(stat: str, kind: str, measure: str = "requests") -> str:
    """The recorded ``ratelimit_rate`` (with ``namespace`` = the tenant, for the tenant organizations)."""
    measured = "" if measure == "requests" else f"_{measure}"
    return f"ai_platform:ratelimit_{kind}{measured}_{stat}:rate{RATE_LIMIT_WINDOW}"


def _rate_limit_groups(cfg: PlatformConfig, alert: _Alerts) -> list[dict]:
    tenant = {"tenant": "{{ $labels.tenant }}"}
    if cfg.rate_limits.fail_open:
        meanwhile = (
            "rateLimits.failOpen is true: the gateway lets every request through unlimited (no consumer's limit, "
            "no endpoint's ceiling holds) while it cannot get an answer"
        )
    else:
        meanwhile = (
            "rateLimits.failOpen is false: the gateway answers 500 to every request to a limited endpoint while it "
            "cannot get an answer (fail closed)"
        )
    up = selector("up", job=RATE_LIMIT_JOB, namespace=cfg.namespaces.ingress)
    records = [
        {
            "record": ratelimit_record(stat, kind, measure),
            "expr": _with_namespace(ratelimit_rate(cfg, stat, kind, measure)),
        }
        for measure in RATE_LIMIT_MEASURES
        for kind in RATE_LIMIT_KINDS
        for stat in ("total_hits", "over_limit")
    ]
    alerts = [
        alert(
            "AiPlatformConsumerRateLimited",
            f"{ratelimit_rate(cfg, 'over_limit', 'consumer')} > 0",
            RATE_LIMITED_FOR,
            "warning",
            "Consumer {{ $labels.consumer }} of tenant {{ $labels.tenant }} is rate limited",
            "The gateway refuses {{ $value | humanize }} requests/s of consumer {{ $labels.consumer }} to tenant "
            f"{{{{ $labels.tenant }}}}'s endpoints (429, Retry-After) for {RATE_LIMITED_FOR}: it sends more than its "
            "tenants[].consumers[].requestsPerMinute, or than an endpoint's models[].limits.consumers allow it. The "
            "consumer should back off, or its limit be raised.",
            **tenant,
        ),
        alert(
            "AiPlatformEndpointRateLimited",
            f"{ratelimit_rate(cfg, 'over_limit', 'endpoint')} > 0",
            RATE_LIMITED_FOR,
            "warning",
            "Endpoint {{ $labels.tenant }}/{{ $labels.endpoint }} is at its ceiling",
            "The gateway refuses {{ $value | humanize }} requests/s to endpoint {{ $labels.tenant }}/"
            f"{{{{ $labels.endpoint }}}} (429, Retry-After) for {RATE_LIMITED_FOR}: all its callers together send "
            "more than models[].limits.requestsPerMinute. Raise the ceiling (with replicas to serve it) or find the "
            "caller (the consumers' panel of the inference dashboard).",
            **tenant,
        ),
        alert(
            "AiPlatformConsumerOverTokenBudget",
            f"{ratelimit_rate(cfg, 'over_limit', 'consumer', 'tokens')} > 0",
            RATE_LIMITED_FOR,
            "warning",
            "Consumer {{ $labels.consumer }} of tenant {{ $labels.tenant }} spends its token budget",
            "Consumer {{ $labels.consumer }} was charged {{ $value | humanize }} tokens/s beyond its "
            "tenants[].consumers[].tokensPerMinute (or an endpoint's models[].limits.consumers) over "
            f"{RATE_LIMIT_WINDOW}, for {RATE_LIMITED_FOR}: once a minute's budget is spent its requests to tenant "
            "{{ $labels.tenant }}'s endpoints get 429 (Retry-After) until the minute ends. Shorter prompts or "
            "answers (max_tokens), fewer requests, or a larger budget.",
            **tenant,
        ),
        alert(
            "AiPlatformEndpointOverTokenCeiling",
            f"{ratelimit_rate(cfg, 'over_limit', 'endpoint', 'tokens')} > 0",
            RATE_LIMITED_FOR,
            "warning",
            "Endpoint {{ $labels.tenant }}/{{ $labels.endpoint }} is at its token ceiling",
            "Endpoint {{ $labels.tenant }}/{{ $labels.endpoint }} answered {{ $value | humanize }} tokens/s beyond "
            f"models[].limits.tokensPerMinute over {RATE_LIMIT_WINDOW}, for {RATE_LIMITED_FOR}: once a minute's "
            "tokens are spent every caller gets 429 until the minute ends. Raise the ceiling (with replicas to serve "
            "it) or find the consumer (the inference dashboard's token panel).",
            **tenant,
        ),
        alert(
            "AiPlatformRateLimitServiceDown",
            f"{up} == 0 or absent({up})",
            RATE_LIMIT_DOWN_FOR,
            "critical",
            "The rate-limit service is not scraped",
            f"Prometheus cannot scrape the rate-limit service (job {RATE_LIMIT_JOB} in {cfg.namespaces.ingress}, "
            f"{{{{ $labels.instance }}}}) for {RATE_LIMIT_DOWN_FOR}: it is probably down, and the gateway then gets no "
            f"answer within rateLimits.timeout ({cfg.rate_limits.timeout}). {meanwhile}. Check the ratelimit and "
            "ratelimit-store pods in the ingress namespace.",
        ),
    ]
    return [{"name": f"{RATE_LIMIT_RULES}-recording", "rules": records}, {"name": RATE_LIMIT_RULES, "rules": alerts}]


PICKER_JOB = inference_pools.PICKER_JOB
ROUTING_FOR, PICKER_ERROR_RATIO = "5m", 0.05


def _routing_groups(cfg: PlatformConfig, alert: _Alerts) -> list[dict]:
    """Pool health and the pickers' own health (``inferenceRouting``), by tenant namespace and pool."""
    job = {"job": PICKER_JOB}
    tenant = {"tenant": "{{ $labels.namespace }}"}
    if cfg.inference_routing.failure_mode == "FailOpen":
        meanwhile = "failureMode FailOpen: the gateway balances the pool's requests itself meanwhile"
    else:
        meanwhile = "failureMode FailClose: the gateway refuses the pool's requests meanwhile"
    errors = ratio_of_rates(
        "inference_objective_request_error_total", job, "inference_objective_request_total", job, by="namespace, pool"
    )
    return [
        {
            "name": ROUTING_RULES,
            "rules": [
                alert(
                    "AiPlatformInferencePoolEmpty",
                    f"max by (namespace, pool) ({selector('inference_pool_ready_pods', **job)}) == 0",
                    ROUTING_FOR,
                    "critical",
                    "InferencePool {{ $labels.namespace }}/{{ $labels.pool }} has no ready replica",
                    "The picker of pool {{ $labels.pool }} (tenant {{ $labels.namespace }}) sees no replica with fresh "
                    f"metrics for {ROUTING_FOR}: the model servers are down or not ready, or the picker cannot read "
                    "their /metrics on port 8000. Check the endpoint's pods and the picker's logs.",
                    **tenant,
                ),
                alert(
                    "AiPlatformEndpointPickerDown",
                    f"{selector('up', **job)} == 0",
                    ROUTING_FOR,
                    "critical",
                    "Endpoint picker {{ $labels.namespace }}/{{ $labels.pool }} is not scraped",
                    f"Prometheus cannot scrape the picker of pool {{{{ $labels.pool }}}} for {ROUTING_FOR}: it is "
                    f"probably down ({meanwhile}). Check the <pool>-epp Deployment in the tenant namespace.",
                    **tenant,
                ),
                alert(
                    "AiPlatformEndpointPickerErrors",
                    f"{errors} > {num(PICKER_ERROR_RATIO)}",
                    ROUTING_FOR,
                    "warning",
                    "Requests through pool {{ $labels.namespace }}/{{ $labels.pool }} fail",
                    "{{ $value | humanizePercentage }} of the requests the picker of pool {{ $labels.pool }} handled "
                    f"failed for {ROUTING_FOR} (above {PICKER_ERROR_RATIO:.0%}): model server errors or requests the "
                    "picker could not place. The inference dashboard's Routing row shows where they went.",
                    **tenant,
                ),
            ],
        }
    ]


def alert_groups(cfg: PlatformConfig) -> dict[str, list[dict]]:
    """PrometheusRule name -> ``spec.groups``: GPU (DCGM exporter of the GPU Operator), inference (one group per
    endpoint), tenancy and batch, right-sizing (with VPAs). A concern the stack does not deploy gets no groups."""
    alert = _Alerts(cfg)
    gpu = cfg.gpu.enabled and cfg.gpu.dcgm_exporter
    return {
        GPU_RULES: _gpu_rules(cfg, alert) if gpu else [],
        INFERENCE_RULES: _inference_groups(cfg, alert) if cfg.serving.enabled else [],
        TENANCY_RULES: _tenancy_groups(cfg, alert),
        RIGHTSIZING_RULES: _rightsizing_groups(alert) if cfg.vpa.enabled else [],
        PIPELINE_RULES: _pipeline_groups(cfg, alert) if cfg.logs.enabled or cfg.traces.enabled else [],
        RATE_LIMIT_RULES: _rate_limit_groups(cfg, alert) if cfg.rate_limits.active(cfg) else [],
        ROUTING_RULES: _routing_groups(cfg, alert) if cfg.inference_routing.enabled and cfg.mesh.enabled else [],
    }


# --------------------------------------------------------------------------------------------------------------
# Recording rules

TENANT_GPUS = "ai_platform:tenant_gpu_allocated:count"
TENANT_GPU_UTILIZATION = "ai_platform:tenant_gpu_utilization:avg"
TENANT_GPU_HOURS = "ai_platform:tenant_gpu_hours:increase1h"
# The Volcano queue series of tenant queues, with the tenant's namespace (``tenant_queue``).
QUEUE_METRICS = (
    "volcano_queue_pod_group_pending_count",
    "volcano_queue_pod_group_inqueue_count",
    "volcano_queue_pod_group_running_count",
    "volcano_queue_allocated_scalar_resources",
)


def tenant_queue(metric: str) -> str:
    """The recorded copy of a Volcano queue metric (``QUEUE_METRICS``) for tenant queues."""
    return f"ai_platform:{metric}:tenant_queues"


def _in_tenant_namespaces(metric: str) -> str:
    """Series of ``metric`` held by a pod in a tenant namespace, with a ``tenant`` label."""
    held = tenant_from(GPU_NAMESPACE, selector(metric, **{GPU_POD: "!"}))
    return f"{held} and on (tenant) {TENANT_NAMESPACES}"


def _with_namespace(expr: str) -> str:
    """``expr`` (by tenant) with ``namespace`` set to the tenant's namespace (its name): the label the tenant
    organizations' Prometheus proxy enforces on every query (``label_proxy``), so the tenant's dashboards see their
    own series. DCGM's own ``namespace`` is the exporter's, the pod's is ``exported_namespace``."""
    return f'label_replace({expr}, "namespace", "$1", "tenant", "(.+)")'


def recording_groups() -> list[dict]:
    """Per-tenant GPU usage for chargeback, evaluated every minute (in order: the GPU-hours use the count).

    - ``ai_platform:tenant_gpu_allocated:count``: GPUs held by pods of the tenant's namespace (a time slice or
      MIG instance counts as one, as the quota counts them);
    - ``ai_platform:tenant_gpu_utilization:avg``: mean utilisation (%) of those GPUs (whole GPUs and time
      slices; DCGM reports no utilisation for MIG instances);
    - ``ai_platform:tenant_gpu_hours:increase1h``: GPU-hours used in the last hour (the 1-minute samples of the
      count, summed, / 60); sum it at hour boundaries for a bill.

    Each carries ``tenant`` and ``namespace`` (the same value: ``_with_namespace``).
    """
    return [
        {
            "name": "ai-platform-tenant-gpu",
            "interval": "1m",
            "rules": [
                {
                    "record": TENANT_GPUS,
                    "expr": _with_namespace(f"count by (tenant) ({_in_tenant_namespaces('DCGM_FI_DEV_FB_USED')})"),
                },
                {
                    "record": TENANT_GPU_UTILIZATION,
                    "expr": _with_namespace(f"avg by (tenant) ({_in_tenant_namespaces('DCGM_FI_DEV_GPU_UTIL')})"),
                },
                {"record": TENANT_GPU_HOURS, "expr": f"sum_over_time({TENANT_GPUS}[1h:1m]) / 60"},
            ],
        },
        {
            "name": "ai-platform-tenant-queues",
            "interval": "1m",
            "rules": [{"record": tenant_queue(metric), "expr": _tenant_queue_expr(metric)} for metric in QUEUE_METRICS],
        },
    ]


def _tenant_queue_expr(metric: str) -> str:
    """``metric`` of the tenants' queues (a tenant's queue is named after it), its ``namespace`` (Volcano's own
    namespace, the scrape target's) replaced by the tenant's, and ``tenant`` set: what a tenant organization's
    dashboards can read through the label proxy."""
    tenant_queues = f'label_replace({TENANT_QUOTAS}, "queue_name", "$1", "namespace", "(.+)")'
    queues = f"{selector(metric)} and on (queue_name) {tenant_queues}"
    return _with_namespace(f'label_replace({queues}, "tenant", "$1", "queue_name", "(.+)")')
