"""The platform's Grafana dashboards, built with the typed grafana-foundation-sdk and returned as JSON dicts.

Pure function, no Pulumi resources: ``components.monitoring`` puts each dashboard into a ConfigMap that
Grafana's dashboard sidecar loads. ``dashboards(cfg)`` gives, by name:

- ``gpu-fleet``: GPUs reporting vs the inventory, utilisation, framebuffer memory, temperature, power and
  XIDs per node and GPU, and what each pod holding a GPU does with it (DCGM exporter);
- ``inference``: per endpoint (template variables ``namespace`` and ``endpoint``) one row per engine
  (``Engine.dashboard_row``: vLLM's latency, time to first token, tokens/s, queue and KV cache; Triton's latency,
  queue time and pending requests), HTTP traffic and 5xx as the sidecars see it (with the mesh), ready replicas,
  and with rate limits (``rateLimits``) the requests counted and refused per consumer and per endpoint ceiling
  (the recorded ``ratelimit_record`` series, which carry the tenant's ``namespace``: the tenant variant reads them
  through the label proxy too);
- ``tenant-usage``: per tenant the GPUs held (recording rules) against the GPU quota, utilisation, GPU-hours,
  quota use and the Volcano queues;
- ``pipeline`` (with ``logs.enabled`` or ``traces.enabled``): the logs and traces pipeline, per tenant: lines and
  spans received, discarded by Loki and Tempo (by reason), dropped by the agent, refused and failed by the collector,
  and its components' targets down (the metrics of the ``ai-platform-pipeline`` alerts);
- ``rightsizing`` (with ``vpa.enabled``): per workload (template variables ``namespace`` and ``workload``) each
  container's CPU and memory request against its VPA's target recommendation and bounds, and request / target with
  the alert's limits.

``tenant_dashboards(cfg)`` gives, per tenant, the variants of ``inference`` (when the tenant has endpoints) and
``tenant-usage`` with the tenant fixed in every query (no tenant variable; ``volcano_unschedule_task_count`` is left
out: its ``job_id`` names a PodGroup, not a namespace) for the tenant's Grafana folder; uids ``<tenant>-<name>``
(``tenant_uid``, at most 40 characters, Grafana's limit).

Every query is built from the helpers of ``rules.py`` (same metrics, labels and windows as the alerts); the
data source is a template variable (``datasource``) so that the dashboards work with any Prometheus.
Each dashboard has a stable ``uid`` (``ai-platform-<name>``): links and bookmarks survive re-provisioning.
"""

from __future__ import annotations

import hashlib
import json

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

from config.model import PlatformConfig

from ..serving import engines
from ..serving.engines.base import CANARY, version_name
from .chart import vpa_metric
from .promql import RATE, p95, ratio_of_rates, selector
from .rules import (
    DCGM_JOB,
    GPU_NAMESPACE,
    GPU_POD,
    PICKER_JOB,
    PIPELINE_WINDOW,
    RATE_LIMIT_WINDOW,
    REQUEST_OVER_TARGET,
    REQUEST_UNDER_TARGET,
    TENANT_GPU_HOURS,
    TENANT_GPU_UTILIZATION,
    TENANT_GPUS,
    TENANT_QUOTA,
    exporter_tenant,
    fb_used_ratio,
    losses,
    physical_gpus,
    pipeline_jobs,
    quota_used_ratio,
    ratelimit_record,
    request_to_target,
    tenant_queue,
    workload_requests,
)

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# An endpoint's workloads as regexes over the ``endpoint`` variable: its canary's, its engines' Deployments'.
CANARY_PATTERN = f"({version_name('', CANARY)})?"
TAGS = ["ai-platform"]


class _Board:
    """A dashboard under construction: the SDK builder plus the conventions every platform dashboard shares."""

    def __init__(self, name: str, title: str, description: str, uid: str | None = None):
        self.builder = (
            dashboard.Dashboard(title)
            .uid(uid or f"ai-platform-{name}")
            .description(description)
            .tags(TAGS)
            .time("now-6h", "now")
            .refresh("1m")
            .timezone("browser")
            .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        )
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def variable(self, variable: dashboard.QueryVariable | dashboard.CustomVariable) -> _Board:
        self.builder.with_variable(variable)
        return self

    def row(self, title: str) -> _Board:
        self.builder.with_row(dashboard.Row(title).id(self._id()))
        return self

    def timeseries(
        self,
        title: str,
        targets: list[tuple[str, str]],
        unit: str,
        description: str = "",
        threshold: float | None = None,
        width: int = 12,
        height: int = 8,
        **field: float,
    ) -> _Board:
        """A time series panel; ``targets`` are (PromQL, legend); ``threshold`` draws a red line."""
        panel = (
            timeseries.Panel()
            .id(self._id())
            .title(title)
            .description(description)
            .datasource(DATASOURCE)
            .unit(unit)
            .span(width)
            .height(height)
            .legend(
                common_builders.VizLegendOptions()
                .show_legend(True)
                .display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM)
            )
            .tooltip(
                common_builders.VizTooltipOptions()
                .mode(common.TooltipDisplayMode.MULTI)
                .sort(common.SortOrder.DESCENDING)
            )
        )
        for index, (expr, legend) in enumerate(targets):
            panel.with_target(
                prometheus.Dataquery().ref_id(chr(ord("A") + index)).expr(expr).legend_format(legend).range()
            )
        if "min" in field:
            panel.min(field["min"])
        if "max" in field:
            panel.max(field["max"])
        if threshold is not None:
            panel.thresholds(
                dashboard.ThresholdsConfig()
                .mode(ThresholdsMode.ABSOLUTE)
                .steps([Threshold(value=None, color="green"), Threshold(value=threshold, color="red")])
            )
            # GraphTresholdsStyleMode: the SDK's spelling.
            panel.thresholds_style(
                common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE)
            )
        self.builder.with_panel(panel)
        return self

    def stat(
        self, title: str, expr: str, unit: str, legend: str = "", description: str = "", width: int = 6, height: int = 4
    ) -> _Board:
        """A single-value panel of an instant query (one value per series)."""
        self.builder.with_panel(
            stat.Panel()
            .id(self._id())
            .title(title)
            .description(description)
            .datasource(DATASOURCE)
            .unit(unit)
            .span(width)
            .height(height)
            .graph_mode(common.BigValueGraphMode.NONE)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .with_target(prometheus.Dataquery().ref_id("A").expr(expr).legend_format(legend).instant())
        )
        return self

    def json(self) -> dict:
        """The dashboard as plain JSON data, as Grafana's sidecar loads it."""
        return json.loads(json.dumps(self.builder.build(), cls=JSONEncoder))


def _custom(name: str, label: str, values: list[str]) -> dashboard.CustomVariable:
    """A multi-value variable over values the config knows (tenants, endpoints), "All" by default."""
    return dashboard.CustomVariable(name).label(label).values(",".join(values) or "none").multi(True).include_all(True)


def gpu_fleet(cfg: PlatformConfig) -> dict:
    thresholds = cfg.monitoring.alerts
    inventory = sum(pool.physical_gpus for pool in cfg.gpu.node_pools)
    node = {"Hostname": "~$node"}
    per_gpu = "max by (Hostname, gpu)"
    held = {GPU_POD: "!", **node}
    holder = f"{{{{{GPU_NAMESPACE}}}}}/{{{{{GPU_POD}}}}}"
    board = _Board(
        "gpu-fleet",
        "AI platform / GPU fleet",
        "GPUs of the cluster as the DCGM exporter of the GPU Operator reports them.",
    )
    board.variable(
        dashboard.QueryVariable("node")
        .label("Node")
        .datasource(DATASOURCE)
        .query("label_values(DCGM_FI_DEV_GPU_TEMP, Hostname)")
        .multi(True)
        .include_all(True)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )
    (
        board.row("Fleet")
        .stat(
            "GPUs reporting",
            physical_gpus(by=""),
            "none",
            description="Distinct GPUs with DCGM metrics (time slices and MIG instances count once).",
        )
        .stat("GPUs in the inventory", f"vector({inventory})", "none", description="gpu.nodePools of the stack.")
        .stat(
            "GPU slices held by pods",
            f"count({selector('DCGM_FI_DEV_FB_USED', **{GPU_POD: '!'})})",
            "none",
            description="GPUs, time slices and MIG instances a pod holds.",
        )
        .stat("DCGM exporters down", f"count({selector('up', job=DCGM_JOB)} == 0) or vector(0)", "none")
    )
    (
        board.row("Per GPU")
        .timeseries(
            "GPU utilisation",
            [(f"{per_gpu} ({selector('DCGM_FI_DEV_GPU_UTIL', **node)})", "{{Hostname}} GPU {{gpu}}")],
            "percent",
            min=0,
            max=100,
            description="DCGM_FI_DEV_GPU_UTIL; not reported for MIG instances.",
        )
        .timeseries(
            "Framebuffer memory used",
            [(f"{per_gpu} ({fb_used_ratio(**node)})", "{{Hostname}} GPU {{gpu}}")],
            "percentunit",
            threshold=thresholds.gpu_memory_used_ratio,
            min=0,
            max=1,
        )
        .timeseries(
            "Temperature",
            [(f"{per_gpu} ({selector('DCGM_FI_DEV_GPU_TEMP', **node)})", "{{Hostname}} GPU {{gpu}}")],
            "celsius",
            threshold=thresholds.gpu_temperature_celsius,
        )
        .timeseries(
            "Power draw",
            [(f"{per_gpu} ({selector('DCGM_FI_DEV_POWER_USAGE', **node)})", "{{Hostname}} GPU {{gpu}}")],
            "watt",
        )
        .timeseries(
            "XID errors",
            [
                (
                    f"max by (Hostname, gpu, err_code, err_msg) ({selector('DCGM_FI_DEV_XID_ERRORS', **node)} != 0)",
                    "{{Hostname}} GPU {{gpu}}: XID {{err_code}} {{err_msg}}",
                )
            ],
            "none",
            width=24,
            description="The last XID of each GPU (the value stays until the driver is reloaded).",
        )
    )
    (
        board.row("Held by pods")
        .timeseries(
            "Utilisation by pod",
            [(selector("DCGM_FI_DEV_GPU_UTIL", **held), f"{holder} ({{{{Hostname}}}} GPU {{{{gpu}}}})")],
            "percent",
            threshold=thresholds.gpu_idle_utilization_percent,
            min=0,
            max=100,
            description=f"Below the red line for {thresholds.gpu_idle_for} the GPU counts as idle.",
        )
        .timeseries("Framebuffer memory by pod", [(selector("DCGM_FI_DEV_FB_USED", **held), holder)], "decmbytes")
    )
    return board.json()


def tenant_uid(tenant: str, name: str) -> str:
    """A tenant dashboard's uid: ``<tenant>-<name>``, shortened with a hash past Grafana's 40 characters."""
    uid = f"{tenant}-{name}"
    return uid if len(uid) <= 40 else f"{uid[:31]}-{hashlib.sha256(uid.encode()).hexdigest()[:8]}"


def _deployment_suffixes() -> str:
    """What engines add to a version's name for its Deployment (KServe's ``-predictor``), as an optional group."""
    suffixes = sorted({engine.deployment_suffix for engine in engines.all_engines()} - {""})
    return f"({'|'.join(suffixes)})?" if suffixes else ""


def inference(cfg: PlatformConfig, only: str | None = None) -> dict:
    """The inference dashboard; ``only``: the variant of one tenant (its endpoints, its namespace in every query)."""
    thresholds = cfg.monitoring.alerts
    models = [endpoint for endpoint in cfg.models if only in (None, endpoint.tenant)]
    description = "Model endpoints: latency, throughput, queues and caches per endpoint and version."
    if only is None:
        board = _Board("inference", "AI platform / Inference", description)
        board.variable(_custom("namespace", "Tenant", sorted({endpoint.tenant for endpoint in models})))
        namespace = "~$namespace"
    else:
        board = _Board("inference", f"{only} / Inference", description, uid=tenant_uid(only, "inference"))
        namespace = only
    board.variable(_custom("endpoint", "Endpoint", [endpoint.name for endpoint in models]))
    pods = {"namespace": namespace, "pod": f"~($endpoint){CANARY_PATTERN}-[a-z0-9]+-[a-z0-9]+"}
    deployment_pattern = f"($endpoint){CANARY_PATTERN}{_deployment_suffixes()}"
    for engine in engines.all_engines():
        engine.dashboard_row(board, pods, thresholds)
    if cfg.mesh.enabled:
        mesh = {
            "reporter": "destination",
            "destination_workload_namespace": namespace,
            "destination_workload": f"~{deployment_pattern}",
        }
        workload = "destination_workload_namespace, destination_workload"
        wl_legend = "{{destination_workload_namespace}}/{{destination_workload}}"
        (
            board.row("HTTP (mesh sidecars, every engine)")
            .timeseries(
                "Requests per second by status class",
                [
                    (
                        f"sum by ({workload}, class) (label_replace(rate({selector('istio_requests_total', **mesh)}"
                        f'[{RATE}]), "class", "$1", "response_code", "([0-9]).."))',
                        f"{wl_legend} {{{{class}}}}xx",
                    )
                ],
                "reqps",
                width=8,
            )
            .timeseries(
                "Share of 5xx answers",
                [
                    (
                        ratio_of_rates(
                            "istio_requests_total",
                            {**mesh, "response_code": "~5.."},
                            "istio_requests_total",
                            mesh,
                            by=workload,
                        ),
                        wl_legend,
                    )
                ],
                "percentunit",
                threshold=thresholds.endpoint_error_ratio,
                min=0,
                width=8,
            )
            .timeseries(
                "p95 latency",
                [(p95("istio_request_duration_milliseconds_bucket", mesh, by=f"{workload}, le") + " / 1e3", wl_legend)],
                "s",
                threshold=thresholds.endpoint_p95_latency_seconds,
                width=8,
            )
        )
    _rate_limit_row(cfg, board, namespace, only)
    _routing_row(cfg, board, namespace, only)
    deployments = {"namespace": namespace, "deployment": f"~{deployment_pattern}"}
    (
        board.row("Replicas").timeseries(
            "Available vs desired replicas",
            [
                (
                    selector("kube_deployment_status_replicas_available", **deployments),
                    "{{namespace}}/{{deployment}} available",
                ),
                (selector("kube_deployment_spec_replicas", **deployments), "{{namespace}}/{{deployment}} desired"),
            ],
            "none",
            width=24,
            min=0,
        )
    )
    return board.json()


def _rate_limit_row(cfg: PlatformConfig, board: _Board, namespace: str, only: str | None) -> None:
    """Requests counted against each consumer's limit and each endpoint's ceiling, and those refused (429): the
    recorded rates of the ``ai-platform-rate-limits`` rules (namespace = tenant)."""
    if not cfg.rate_limits.active(cfg):
        return
    tenants = [tenant for tenant in cfg.tenants if only in (None, tenant.name)]
    consumers = any(tenant.consumers for tenant in tenants)
    ceilings = any(endpoint.limits for endpoint in cfg.models if only in (None, endpoint.tenant))
    if not (consumers or ceilings):
        return
    board.row("Rate limits")
    about = f"Requests/s over {RATE_LIMIT_WINDOW} as the rate-limit service counts them; refused ones got a 429."
    if consumers:
        scope = {"namespace": namespace}
        board.timeseries(
            "Requests per consumer: counted vs refused",
            [
                (selector(ratelimit_record("total_hits", "consumer"), **scope), "{{tenant}}/{{consumer}}"),
                (selector(ratelimit_record("over_limit", "consumer"), **scope), "{{tenant}}/{{consumer}} refused"),
            ],
            "reqps",
            description=f"{about} A consumer's limit is tenants[].consumers[].requestsPerMinute.",
            min=0,
        )
    if ceilings:
        scope = {"namespace": namespace, "endpoint": "~$endpoint"}
        board.timeseries(
            "Requests per endpoint ceiling: counted vs refused",
            [
                (selector(ratelimit_record("total_hits", "endpoint"), **scope), "{{tenant}}/{{endpoint}}"),
                (selector(ratelimit_record("over_limit", "endpoint"), **scope), "{{tenant}}/{{endpoint}} refused"),
            ],
            "reqps",
            description=f"{about} An endpoint's ceiling is models[].limits.requestsPerMinute, all callers together.",
            min=0,
        )
    metered = [e for e in cfg.models if only in (None, e.tenant) and cfg.rate_limits.meters_tokens(cfg, e)]
    if not metered:
        return
    tokens = f"Tokens/s over {RATE_LIMIT_WINDOW} charged after each response (usage.total_tokens); beyond: over budget."
    if any(c.tokens_per_minute for tenant in tenants for c in tenant.consumers):
        scope = {"namespace": namespace}
        board.timeseries(
            "Tokens per consumer: charged vs over budget",
            [
                (selector(ratelimit_record("total_hits", "consumer", "tokens"), **scope), "{{tenant}}/{{consumer}}"),
                (
                    selector(ratelimit_record("over_limit", "consumer", "tokens"), **scope),
                    "{{tenant}}/{{consumer}} over budget",
                ),
            ],
            "none",
            description=f"{tokens} A consumer's budget is tenants[].consumers[].tokensPerMinute; over it, 429 until "
            "the minute ends.",
            min=0,
        )
    if any(e.limits and e.limits.tokens_per_minute for e in metered):
        scope = {"namespace": namespace, "endpoint": "~$endpoint"}
        board.timeseries(
            "Tokens per endpoint ceiling: charged vs over",
            [
                (selector(ratelimit_record("total_hits", "endpoint", "tokens"), **scope), "{{tenant}}/{{endpoint}}"),
                (
                    selector(ratelimit_record("over_limit", "endpoint", "tokens"), **scope),
                    "{{tenant}}/{{endpoint}} over",
                ),
            ],
            "none",
            description=f"{tokens} An endpoint's ceiling is models[].limits.tokensPerMinute.",
            min=0,
        )


def _routing_row(cfg: PlatformConfig, board: _Board, namespace: str, only: str | None) -> None:
    """The pools of pooled endpoints as their pickers see them (``inferenceRouting``): ready replicas, queue and KV
    cache, where the picks go, how long a pick takes."""
    routing = cfg.inference_routing
    if not (cfg.mesh.enabled and any(routing.pooled(e) for e in cfg.models if only in (None, e.tenant))):
        return
    pools = {"job": PICKER_JOB, "namespace": namespace, "pool": f"~($endpoint){CANARY_PATTERN}"}
    legend = "{{namespace}}/{{pool}}"
    board.row("Routing (endpoint picker)")
    board.timeseries(
        "Ready replicas per pool",
        [(f"max by (namespace, pool) ({selector('inference_pool_ready_pods', **pools)})", legend)],
        "none",
        description="Replicas the picker can choose from (ready, metrics fresh). 0: the pool serves nothing.",
        width=8,
        min=0,
    )
    board.timeseries(
        "Queue and KV cache as the picker sees them",
        [
            (f"max by (namespace, pool) ({selector('inference_pool_average_queue_size', **pools)})", f"{legend} queue"),
            (
                f"max by (namespace, pool) ({selector('inference_pool_average_kv_cache_utilization', **pools)})",
                f"{legend} KV cache",
            ),
        ],
        "none",
        description="Mean waiting requests and mean KV-cache use (0-1) over the pool's replicas.",
        width=8,
        min=0,
    )
    board.timeseries(
        "Picks per replica",
        [
            (
                "sum by (namespace, pool, pod_name) (rate("
                + selector("inference_extension_scheduler_attempts_total", **pools, status="success")
                + "[5m]))",
                "{{pool}} -> {{pod_name}}",
            ),
            (
                "sum by (namespace, pool) (rate("
                + selector("inference_extension_scheduler_attempts_total", **pools, status="failure")
                + "[5m]))",
                f"{legend} no replica",
            ),
        ],
        "reqps",
        description="Where the picker sent requests (a replica that gets most picks holds the shared prefixes).",
        width=8,
        min=0,
    )
    board.timeseries(
        "Picker decision time (p95)",
        [(p95("inference_extension_scheduler_e2e_duration_seconds_bucket", pools, by="namespace, pool, le"), legend)],
        "s",
        width=12,
        min=0,
    )
    board.timeseries(
        "Picker request errors",
        [
            (
                "sum by (namespace, pool, error_code) (rate("
                + selector("inference_objective_request_error_total", **pools)
                + "[5m]))",
                "{{pool}} {{error_code}}",
            )
        ],
        "reqps",
        width=12,
        min=0,
    )


def tenant_usage(cfg: PlatformConfig, only: str | None = None) -> dict:
    """The tenant usage dashboard; ``only``: the variant of one tenant (its name in every query)."""
    thresholds = cfg.monitoring.alerts
    description = "GPUs each tenant holds and uses against its quota, GPU-hours for chargeback, Volcano queues."
    if only is None:
        board = _Board("tenant-usage", "AI platform / Tenant usage", description)
        board.variable(_custom("tenant", "Tenant", [tenant.name for tenant in cfg.tenants]))
        match = "~$tenant"
    else:
        board = _Board("tenant-usage", f"{only} / GPU usage", description, uid=tenant_uid(only, "usage"))
        match = only
    tenant = {"tenant": match}
    gpu_quota = {"resourcequota": TENANT_QUOTA, "namespace": match, "resource": "requests.nvidia.com/gpu"}
    held = selector(TENANT_GPUS, **tenant)
    (
        board.row("GPU-hours")
        .stat(
            "GPU-hours, last 24 hours",
            f"sum by (tenant) (sum_over_time({held}[24h:1m])) / 60",
            "none",
            legend="{{tenant}}",
            width=12,
        )
        .stat(
            "GPU-hours, last 7 days",
            f"sum by (tenant) (sum_over_time({held}[7d:1m])) / 60",
            "none",
            legend="{{tenant}}",
            width=12,
        )
        .timeseries(
            "GPU-hours per hour",
            [(selector(TENANT_GPU_HOURS, **tenant), "{{tenant}}")],
            "none",
            width=24,
            description=f"{TENANT_GPU_HOURS}: GPU-hours used in the hour before each point.",
        )
    )
    (
        board.row("GPUs")
        .timeseries(
            "GPUs held vs quota",
            [
                (held, "{{tenant}} held"),
                (selector("kube_resourcequota", **gpu_quota, type="used"), "{{namespace}} requested"),
                (selector("kube_resourcequota", **gpu_quota, type="hard"), "{{namespace}} quota"),
            ],
            "none",
            min=0,
            description="Held: GPUs (or slices) with a pod on them, from DCGM; requested/quota: the "
            "tenant ResourceQuota's requests.nvidia.com/gpu.",
        )
        .timeseries(
            "Mean utilisation of held GPUs",
            [(selector(TENANT_GPU_UTILIZATION, **tenant), "{{tenant}}")],
            "percent",
            threshold=thresholds.gpu_idle_utilization_percent,
            min=0,
            max=100,
        )
    )
    (
        board.row("Quota").timeseries(
            "Quota used",
            [(quota_used_ratio(namespace=match), "{{namespace}} {{resource}}")],
            "percentunit",
            threshold=thresholds.quota_used_ratio,
            min=0,
            width=24,
        )
    )
    if cfg.volcano.enabled:
        queue = {"queue_name": match}
        row = (
            board.row("Volcano queues")
            .timeseries(
                "PodGroups by phase",
                [
                    (
                        selector(tenant_queue("volcano_queue_pod_group_pending_count"), **queue),
                        "{{queue_name}} pending",
                    ),
                    (
                        selector(tenant_queue("volcano_queue_pod_group_inqueue_count"), **queue),
                        "{{queue_name}} inqueue",
                    ),
                    (
                        selector(tenant_queue("volcano_queue_pod_group_running_count"), **queue),
                        "{{queue_name}} running",
                    ),
                ],
                "none",
                min=0,
            )
            .timeseries(
                "GPUs allocated by the scheduler",
                [
                    (
                        selector(
                            tenant_queue("volcano_queue_allocated_scalar_resources"), **queue, resource="nvidia.com/gpu"
                        ),
                        "{{queue_name}}",
                    )
                ],
                "none",
                min=0,
            )
        )
        if only is None:  # job_id is a PodGroup name: no tenant to filter by
            row.timeseries(
                "Gangs missing tasks",
                [
                    ("volcano_unschedule_task_count > 0", "{{job_id}}"),
                    ("volcano_unschedule_job_count", "unschedulable gangs"),
                ],
                "none",
                width=24,
                description="Tasks each PodGroup lacks to reach minAvailable (gang plugin).",
            )
    return board.json()


def rightsizing() -> dict:
    """Requests against the VPAs' recommendations, per workload and container."""
    board = _Board(
        "rightsizing",
        "AI platform / Right-sizing",
        "CPU and memory requests of each workload's containers against the recommendations of its "
        "VerticalPodAutoscaler (Off mode: recommendations only, nothing is changed).",
    )
    target_cpu = vpa_metric("target", "cpu")
    for name, label, query in (
        ("namespace", "Namespace", f"label_values({target_cpu}, namespace)"),
        ("workload", "Workload", f'label_values({target_cpu}{{namespace=~"$namespace"}}, target_name)'),
    ):
        board.variable(
            dashboard.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(query)
            .multi(True)
            .include_all(True)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
        )
    vpas = {"namespace": "~$namespace", "target_name": "~$workload"}
    legend = "{{namespace}}/{{target_name}} {{container}}"
    for resource, unit in (("cpu", "none"), ("memory", "bytes")):
        requests = " or ".join(
            f"({workload_requests(kind, namespace='~$namespace', resource=resource)} "
            f"and on (namespace, target_name, container) {selector(vpa_metric('target', resource), **vpas, target_kind=kind)})"
            for kind in ("Deployment", "StatefulSet")
        )
        board.row(f"{resource.upper() if resource == 'cpu' else 'Memory'}").timeseries(
            f"{'CPU (cores)' if resource == 'cpu' else 'Memory'}: request vs recommendation",
            [
                (requests, f"{legend} request"),
                (selector(vpa_metric("target", resource), **vpas), f"{legend} target"),
                (selector(vpa_metric("lowerbound", resource), **vpas), f"{legend} lower bound"),
                (selector(vpa_metric("upperbound", resource), **vpas), f"{legend} upper bound"),
            ],
            unit,
            width=24,
            min=0,
            description="Request: the largest of the workload's pods'. Target: what the VPA would set; lower/upper "
            "bound: below it the container is starved, above it the request is wasted.",
        )
    board.row("Request / target").timeseries(
        "Request / recommended target",
        [(request_to_target(**vpas), f"{legend} {{{{resource}}}}")],
        "none",
        width=24,
        min=0,
        threshold=REQUEST_OVER_TARGET,
        description=f"Above {REQUEST_OVER_TARGET:g} or below {REQUEST_UNDER_TARGET:g} for a day: "
        "AiPlatformRequestFarFromRecommendation.",
    )
    return board.json()


def pipeline(cfg: PlatformConfig) -> dict:
    """The logs and traces pipeline: what comes in and what is lost, per tenant (the alerts' expressions)."""
    board = _Board(
        "pipeline",
        "AI platform / Logs and traces",
        "Health of the logs (Alloy -> Loki) and traces (OpenTelemetry Collector -> Tempo) pipeline, per tenant.",
    )
    board.row("Targets").stat(
        "Pipeline targets down",
        " or ".join(f"count({selector('up', job=job)} == 0)" for job in pipeline_jobs(cfg).values()) + " or vector(0)",
        "none",
        description="Loki, Alloy, Tempo and collector targets Prometheus cannot scrape.",
        width=24,
    )
    if cfg.logs.enabled:
        (
            board.row("Logs")
            .timeseries(
                "Lines received by Loki",
                [(losses("loki_distributor_lines_received_total", "tenant"), "{{tenant}}")],
                "short",
                description=f"Log lines/s per tenant over {PIPELINE_WINDOW}.",
                width=8,
                min=0,
            )
            .timeseries(
                "Lines discarded by Loki",
                [(losses("loki_discarded_samples_total", "tenant, reason"), "{{tenant}} {{reason}}")],
                "short",
                description="Refused for the tenant's limits (rate_limited, stream_limit, ...) or as invalid.",
                width=8,
                min=0,
            )
            .timeseries(
                "Agent: entries sent and dropped",
                [
                    (losses("loki_write_sent_entries_total", "tenant"), "{{tenant}} sent"),
                    (losses("loki_write_dropped_entries_total", "tenant, reason"), "{{tenant}} dropped {{reason}}"),
                ],
                "short",
                description="Entries Alloy pushed to Loki, and those it gave up on after its retries.",
                width=8,
                min=0,
            )
        )
    if cfg.traces.enabled:
        (
            board.row("Traces")
            .timeseries(
                "Spans received by Tempo",
                [(losses("tempo_distributor_spans_received_total", "tenant"), "{{tenant}}")],
                "short",
                width=8,
                min=0,
            )
            .timeseries(
                "Spans discarded by Tempo",
                [(losses("tempo_discarded_spans_total", "tenant, reason"), "{{tenant}} {{reason}}")],
                "short",
                width=8,
                min=0,
            )
            .timeseries(
                "Collector: refused, failed, queue full",
                [
                    (losses("otelcol_receiver_accepted_spans", "receiver"), "{{receiver}} accepted"),
                    (losses("otelcol_receiver_refused_spans", "receiver"), "{{receiver}} refused"),
                    (losses("otelcol_exporter_sent_spans", "exporter"), "{{exporter}} sent"),
                    (exporter_tenant(losses("otelcol_exporter_send_failed_spans", "exporter")), "{{tenant}} failed"),
                    (
                        exporter_tenant(losses("otelcol_exporter_enqueue_failed_spans", "exporter")),
                        "{{tenant}} queue full",
                    ),
                ],
                "short",
                width=8,
                min=0,
            )
        )
    return board.json()


def dashboards(cfg: PlatformConfig) -> dict[str, dict]:
    """Dashboard name -> dashboard JSON (a dict, ready for a ConfigMap the Grafana sidecar loads)."""
    boards = {"gpu-fleet": gpu_fleet(cfg), "inference": inference(cfg), "tenant-usage": tenant_usage(cfg)}
    if cfg.logs.enabled or cfg.traces.enabled:
        boards["pipeline"] = pipeline(cfg)
    if cfg.vpa.enabled:
        boards["rightsizing"] = rightsizing()
    return boards


def tenant_dashboards(cfg: PlatformConfig) -> dict[str, dict[str, dict]]:
    """Tenant -> dashboard name -> JSON: the tenant's usage and, if it has endpoints, its inference dashboard."""
    boards: dict[str, dict[str, dict]] = {}
    serving = {endpoint.tenant for endpoint in cfg.models}
    for tenant in cfg.tenants:
        boards[tenant.name] = {"usage": tenant_usage(cfg, tenant.name)}
        if tenant.name in serving:
            boards[tenant.name]["inference"] = inference(cfg, tenant.name)
    return boards
