"""Alert packs, recording rules and dashboards (components/monitoring/rules.py and dashboards.py).

Pure functions of the typed config: every expression must parse, name only metrics whose source is recorded
in METRIC_SOURCES (or a recording rule of ours), and carry thresholds from the config.
"""

import json
import re

import promql_parser
import pytest

from components.monitoring.dashboards import dashboards
from components.monitoring.rules import (
    METRIC_SOURCES,
    QUEUE_METRICS,
    RATE_LIMIT_JOB,
    ROUTING_RULES,
    TENANT_QUOTA,
    alert_groups,
    consumer_metric_value,
    endpoint_deployments,
    ratelimit_record,
    recording_groups,
)
from tests.conftest import BATCH_OFF, FIXTURE_STACKS, STACKS, accept_loss, config_copy, load, run_stack, stack_cfg

RULE_OBJECTS = {"ai-platform-gpu", "ai-platform-inference", "ai-platform-tenancy"}
RECORDED = {rule["record"] for group in recording_groups() for rule in group["rules"]}

# Each concern the alert packs must cover: alert name -> a metric its expression must use (prod has every
# engine, the mesh and Volcano).
REQUIRED_ALERTS = {
    # GPU
    "AiPlatformGpuXidError": "DCGM_FI_DEV_XID_ERRORS",
    "AiPlatformGpuFatalXid": "DCGM_FI_DEV_XID_ERRORS",
    "AiPlatformGpuTemperatureHigh": "DCGM_FI_DEV_GPU_TEMP",
    "AiPlatformGpuMemoryNearlyFull": "DCGM_FI_DEV_FB_FREE",
    "AiPlatformDcgmExporterDown": "up",
    "AiPlatformDcgmExporterAbsent": "up",
    "AiPlatformGpuLost": "DCGM_FI_DEV_GPU_TEMP",
    "AiPlatformGpuIdle": "DCGM_FI_DEV_GPU_UTIL",
    # inference
    "AiPlatformEndpointLatencyHigh": "vllm:e2e_request_latency_seconds_bucket",
    "AiPlatformEndpointTtftHigh": "vllm:time_to_first_token_seconds_bucket",
    "AiPlatformEndpointErrorRate": "nv_inference_request_failure",
    "AiPlatformEndpointHttp5xxRate": "istio_requests_total",
    "AiPlatformVllmQueueGrowing": "vllm:num_requests_waiting",
    "AiPlatformVllmKvCacheSaturated": "vllm:kv_cache_usage_perc",
    "AiPlatformTritonQueueTimeHigh": "nv_inference_queue_duration_us",
    "AiPlatformEndpointNoReadyReplicas": "kube_deployment_status_replicas_available",
    # tenancy and batch
    "AiPlatformTenantQuotaNearlyUsed": "kube_resourcequota",
    "AiPlatformVolcanoQueuePending": "volcano_queue_pod_group_pending_count",
    "AiPlatformVolcanoGangUnschedulable": "volcano_unschedule_task_count",
    # the logs and traces pipeline
    "AiPlatformLokiDown": "up",
    "AiPlatformAlloyDown": "up",
    "AiPlatformTempoDown": "up",
    "AiPlatformOpenTelemetryCollectorDown": "up",
    "AiPlatformLokiTenantRateLimited": "loki_discarded_samples_total",
    "AiPlatformLokiDiscardingLogs": "loki_discarded_samples_total",
    "AiPlatformLogAgentDropping": "loki_write_dropped_entries_total",
    "AiPlatformTempoTenantRateLimited": "tempo_discarded_spans_total",
    "AiPlatformTempoDiscardingSpans": "tempo_discarded_spans_total",
    "AiPlatformTraceCollectorRefusing": "otelcol_receiver_refused_spans",
    "AiPlatformTraceExportFailing": "otelcol_exporter_send_failed_spans",
    "AiPlatformTraceQueueFull": "otelcol_exporter_enqueue_failed_spans",
    # rate limits at the ingress gateway
    "AiPlatformConsumerRateLimited": "ratelimit_service_rate_limit_over_limit",
    "AiPlatformEndpointRateLimited": "ratelimit_service_rate_limit_over_limit",
    "AiPlatformRateLimitServiceDown": "up",
}


def metric_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects, from the parsed AST."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr}"
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def alerts(cfg) -> list[dict]:
    return [
        rule for groups in alert_groups(cfg).values() for group in groups for rule in group["rules"] if "alert" in rule
    ]


def pack_records(cfg) -> list[dict]:
    """Recording rules kept in an alert pack beside the alerts that need the same config (rate limits)."""
    return [
        rule for groups in alert_groups(cfg).values() for group in groups for rule in group["rules"] if "record" in rule
    ]


def panels(board: dict) -> list[dict]:
    """Every panel of a dashboard, rows' collapsed panels included."""
    result = []
    for panel in board["panels"]:
        result.append(panel)
        result += panel.get("panels") or []
    return result


def dashboard_queries(cfg) -> list[str]:
    """Every PromQL query of every dashboard: panel targets and the selectors of label_values() variables."""
    queries = []
    for board in dashboards(cfg).values():
        queries += [target["expr"] for panel in panels(board) for target in panel.get("targets") or []]
        for variable in board["templating"]["list"]:
            found = re.fullmatch(r"label_values\((.+),\s*\w+\)", str(variable.get("query", "")))
            if variable["type"] == "query" and found:
                queries.append(found.group(1))
    return queries


def with_config(change) -> object:
    """The prod config with ``change(mapping)`` applied to its stack mapping."""
    config = accept_loss(config_copy("prod"))
    change(config)
    return load("prod", {key.split(":", 1)[1]: value for key, value in config.items()})


def rules_named(cfg, name: str) -> list[dict]:
    return [rule for rule in alerts(cfg) if rule["alert"] == name]


# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_rule_objects_and_groups(stack):
    cfg = stack_cfg(stack)
    groups = alert_groups(cfg)
    optional = {"ai-platform-rightsizing", "ai-platform-pipeline", "ai-platform-rate-limits", ROUTING_RULES}
    assert set(groups) == RULE_OBJECTS | optional
    assert bool(groups.pop(ROUTING_RULES)) == (cfg.inference_routing.enabled and cfg.mesh.enabled)
    assert bool(groups.pop("ai-platform-rightsizing")) == cfg.vpa.enabled
    assert bool(groups.pop("ai-platform-rate-limits")) == cfg.rate_limits.active(cfg)
    assert bool(groups.pop("ai-platform-pipeline")) == (cfg.logs.enabled or cfg.traces.enabled)
    for name, rule_groups in groups.items():
        assert rule_groups, f"{name} has no groups"
        group_names = [group["name"] for group in rule_groups]
        assert len(group_names) == len(set(group_names)), f"{name}: duplicate group names {group_names}"
        for group in rule_groups:
            assert set(group) == {"name", "rules"} and group["rules"], group


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_every_alert_has_severity_summary_description_and_runbook(stack):
    cfg = stack_cfg(stack)
    base = cfg.monitoring.runbook_url.rstrip("/")
    found = alerts(cfg)
    assert found
    for rule in found:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"AiPlatform[A-Z][A-Za-z0-9]+", rule["alert"])
        assert rule["labels"]["severity"] in ("warning", "critical"), rule
        assert rule["annotations"]["summary"].strip() and rule["annotations"]["description"].strip(), rule
        assert rule["annotations"]["runbook_url"] == f"{base}/{rule['alert']}"
        assert re.fullmatch(r"\d+(ms|s|m|h|d|w|y)", rule["for"]), rule["for"]


def test_runbook_links_follow_the_configured_base():
    cfg = with_config(
        lambda c: c.setdefault("ai-platform:monitoring", {}).update(runbookUrl="https://wiki.example.org/runbooks/gpu/")
    )
    for rule in alerts(cfg):
        assert rule["annotations"]["runbook_url"] == f"https://wiki.example.org/runbooks/gpu/{rule['alert']}"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_every_alert_and_recording_expression_parses(stack):
    expressions = [rule["expr"] for rule in alerts(stack_cfg(stack)) + pack_records(stack_cfg(stack))]
    expressions += [rule["expr"] for group in recording_groups() for rule in group["rules"]]
    for expr in expressions:
        promql_parser.parse(expr)  # raises on a syntax error


def test_the_parser_rejects_a_broken_expression():
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(DCGM_FI_DEV_GPU_UTIL[5m])")
    assert metric_names('a{x="1"} / on (x) rate(b[5m]) and sum_over_time(c:d:e[1h:1m])') == {"a", "b", "c:d:e"}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_every_metric_is_a_documented_exporter_metric_or_our_recording_rule(stack):
    cfg = stack_cfg(stack)
    expressions = [rule["expr"] for rule in alerts(cfg) + pack_records(cfg)]
    expressions += [rule["expr"] for group in recording_groups() for rule in group["rules"]]
    expressions += dashboard_queries(cfg)
    recorded = RECORDED | {rule["record"] for rule in pack_records(cfg)}
    unknown = {
        name: expr
        for expr in expressions
        for name in metric_names(expr)
        if name not in METRIC_SOURCES and name not in recorded
    }
    assert not unknown, f"metrics without a recorded source: {unknown}"


def test_every_recorded_metric_source_is_used_and_says_where_it_comes_from():
    used = set()
    for stack in FIXTURE_STACKS:
        cfg = stack_cfg(stack)
        for expr in [rule["expr"] for rule in alerts(cfg) + pack_records(cfg)] + dashboard_queries(cfg):
            used |= metric_names(expr)
    for group in recording_groups():
        for rule in group["rules"]:
            used |= metric_names(rule["expr"])
    assert set(METRIC_SOURCES) - used == set(), "METRIC_SOURCES lists metrics nothing uses"
    for name, source in METRIC_SOURCES.items():
        assert len(source) > 20 and re.search(r"[/.]", source), f"{name}: no usable source ({source!r})"


def test_every_concern_has_its_alerts():
    cfg = stack_cfg("prod")
    for name, metric in REQUIRED_ALERTS.items():
        found = rules_named(cfg, name)
        assert found, f"no alert {name}"
        assert any(metric in metric_names(rule["expr"]) for rule in found), f"{name} does not use {metric}"


def test_each_engine_gets_the_alerts_it_can_support():
    by_endpoint: dict[str, set[str]] = {}
    for rule in alerts(stack_cfg("prod")):
        if "endpoint" in rule["labels"]:
            by_endpoint.setdefault(rule["labels"]["endpoint"], set()).add(rule["alert"])
    common = {"AiPlatformEndpointLatencyHigh", "AiPlatformEndpointHttp5xxRate", "AiPlatformEndpointNoReadyReplicas"}
    assert by_endpoint["llama-70b"] == common | {
        "AiPlatformEndpointTtftHigh",
        "AiPlatformEndpointErrorRate",
        "AiPlatformVllmQueueGrowing",
        "AiPlatformVllmKvCacheSaturated",
    }
    assert by_endpoint["reranker"] == common | {"AiPlatformEndpointErrorRate", "AiPlatformTritonQueueTimeHigh"}
    assert by_endpoint["fraud-xgb"] == common
    latency = {
        rule["labels"]["endpoint"]: metric_names(rule["expr"])
        for rule in rules_named(stack_cfg("prod"), "AiPlatformEndpointLatencyHigh")
    }
    assert latency == {
        "llama-70b": {"vllm:e2e_request_latency_seconds_bucket"},
        "reranker": {"nv_inference_request_duration_us", "nv_inference_request_success"},
        "fraud-xgb": {"istio_request_duration_milliseconds_bucket"},
    }


def test_endpoint_alerts_select_both_versions_of_the_endpoint():
    cfg = stack_cfg("prod")
    replicas = {
        rule["labels"]["endpoint"]: rule["expr"] for rule in rules_named(cfg, "AiPlatformEndpointNoReadyReplicas")
    }
    assert 'namespace="research",deployment=~"llama-70b|llama-70b-canary"' in replicas["llama-70b"]
    assert 'deployment=~"fraud-xgb-predictor|fraud-xgb-canary-predictor"' in replicas["fraud-xgb"]
    ttft = rules_named(cfg, "AiPlatformEndpointTtftHigh")[0]["expr"]
    assert 'pod=~"(llama-70b|llama-70b-canary)-[a-z0-9]+-[a-z0-9]+"' in ttft


def test_watched_deployments_and_quota_are_the_ones_the_program_declares():
    cfg, result = stack_cfg("prod"), run_stack("prod")
    deployments = {
        (obj.namespace, obj.k8s_name)
        for obj in result.of_kind("Deployment")
        if "ai-platform/endpoint" in obj.inputs["metadata"]["labels"]
    }
    # KServe Standard mode runs an InferenceService <name> as the Deployment <name>-predictor.
    deployments |= {(obj.namespace, f"{obj.k8s_name}-predictor") for obj in result.of_kind("InferenceService")}
    watched = {(endpoint.tenant, name) for endpoint in cfg.models for name in endpoint_deployments(endpoint)}
    assert watched == deployments
    quotas = {(obj.namespace, obj.k8s_name) for obj in result.of_kind("ResourceQuota")}
    assert quotas == {(tenant.name, TENANT_QUOTA) for tenant in cfg.tenants}


def test_a_per_endpoint_threshold_reaches_its_expression_and_only_its_own():
    def change(config):
        config["ai-platform:models"][0]["alerts"] = {"p95LatencySeconds": 42}

    cfg = with_config(change)
    assert cfg.models[0].name == "llama-70b"
    latency = {rule["labels"]["endpoint"]: rule["expr"] for rule in rules_named(cfg, "AiPlatformEndpointLatencyHigh")}
    assert latency["llama-70b"].startswith("histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency")
    assert latency["llama-70b"].endswith("> 42")
    assert latency["reranker"].endswith("> 30") and latency["fraud-xgb"].endswith("> 30")
    ttft = rules_named(cfg, "AiPlatformEndpointTtftHigh")[0]
    assert ttft["expr"].endswith("> 2"), "an unset per-endpoint threshold falls back to monitoring.alerts"
    before = {
        rule["labels"]["endpoint"]: rule["expr"]
        for rule in rules_named(stack_cfg("prod"), "AiPlatformEndpointLatencyHigh")
    }
    assert before["llama-70b"].endswith("> 30")


def test_per_endpoint_error_and_ttft_thresholds():
    def change(config):
        config["ai-platform:models"][0]["alerts"] = {"ttftP95Seconds": 0.75, "errorRatio": 0.01}
        config["ai-platform:models"][1]["alerts"] = {"errorRatio": 0.2}

    cfg = with_config(change)
    assert rules_named(cfg, "AiPlatformEndpointTtftHigh")[0]["expr"].endswith("> 0.75")
    errors = {
        (rule["alert"], rule["labels"]["endpoint"]): rule["expr"]
        for rule in alerts(cfg)
        if rule["alert"] in ("AiPlatformEndpointErrorRate", "AiPlatformEndpointHttp5xxRate")
    }
    assert errors[("AiPlatformEndpointErrorRate", "llama-70b")].endswith("> 0.01")
    assert errors[("AiPlatformEndpointHttp5xxRate", "llama-70b")].endswith("> 0.01")
    assert errors[("AiPlatformEndpointErrorRate", "reranker")].endswith("> 0.2")
    assert errors[("AiPlatformEndpointHttp5xxRate", "fraud-xgb")].endswith("> 0.05")


def test_platform_thresholds_come_from_monitoring_alerts():
    cfg = with_config(
        lambda c: c.setdefault("ai-platform:monitoring", {}).update(
            alerts={
                "gpuTemperatureCelsius": 77,
                "gpuMemoryUsedRatio": 0.8,
                "gpuIdleUtilizationPercent": 12,
                "gpuIdleFor": "3h",
                "vllmWaitingRequests": 7,
                "vllmKvCacheUsage": 0.66,
                "tritonQueueMs": 250,
                "quotaUsedRatio": 0.75,
                "volcanoPendingFor": "45m",
                "endpointP95LatencySeconds": 9,
            }
        )
    )
    expr = {rule["alert"]: rule for rule in alerts(cfg)}
    assert expr["AiPlatformGpuTemperatureHigh"]["expr"] == "DCGM_FI_DEV_GPU_TEMP > 77"
    assert expr["AiPlatformGpuMemoryNearlyFull"]["expr"].endswith("> 0.8")
    assert "[3h]) < 12" in expr["AiPlatformGpuIdle"]["expr"] and "offset 3h" in expr["AiPlatformGpuIdle"]["expr"]
    assert expr["AiPlatformVllmQueueGrowing"]["expr"].endswith("> 7")
    assert expr["AiPlatformVllmKvCacheSaturated"]["expr"].endswith("> 0.66")
    assert expr["AiPlatformTritonQueueTimeHigh"]["expr"].endswith("/ 1e3 > 250")
    assert expr["AiPlatformTenantQuotaNearlyUsed"]["expr"].endswith("> 0.75")
    assert expr["AiPlatformVolcanoQueuePending"]["for"] == "45m"
    assert all(rule["expr"].endswith("> 9") for rule in rules_named(cfg, "AiPlatformEndpointLatencyHigh"))


def test_the_gpu_inventory_bounds_the_fleet_alert():
    prod, dev = stack_cfg("prod"), stack_cfg("dev")
    assert rules_named(prod, "AiPlatformGpuInventoryShort")[0]["expr"].endswith("< 48")  # 2x8 H100 + 4x8 A100
    assert rules_named(dev, "AiPlatformGpuInventoryShort")[0]["expr"].endswith("< 2")  # 2 nodes x 1 L4


def test_alerts_follow_what_the_stack_deploys():
    cfg = with_config(
        lambda c: (
            c["ai-platform:mesh"].update(enabled=False),
            c.setdefault("ai-platform:rateLimits", {}).update(enabled=False),  # enforced at the mesh's gateway
            c.setdefault("ai-platform:inferenceRouting", {}).update(enabled=False),  # at the mesh's gateway
            [(m.pop("canary", None), m.pop("traffic", None)) for m in c["ai-platform:models"]],
            c.setdefault("ai-platform:volcano", {}).update(enabled=False),
            c.update(BATCH_OFF),
            c["ai-platform:gpu"].update(dcgmExporter=False),
        )
    )
    names = {rule["alert"] for rule in alerts(cfg)}
    assert alert_groups(cfg)["ai-platform-gpu"] == []
    assert "AiPlatformEndpointHttp5xxRate" not in names
    assert not any(name.startswith("AiPlatformVolcano") for name in names)
    latency = {rule["labels"]["endpoint"] for rule in rules_named(cfg, "AiPlatformEndpointLatencyHigh")}
    assert latency == {"llama-70b", "reranker"}, "KServe latency comes from the sidecars only"
    assert "AiPlatformTenantQuotaNearlyUsed" in names and "AiPlatformEndpointNoReadyReplicas" in names
    assert alert_groups(cfg)["ai-platform-rate-limits"] == []
    assert alert_groups(cfg)[ROUTING_RULES] == []


def test_recording_rules_for_tenant_gpu_chargeback_and_queues_carry_the_tenants_namespace():
    groups = recording_groups()
    gpu, queues = ([rule for rule in group["rules"]] for group in groups)
    assert [rule["record"] for rule in gpu] == [
        "ai_platform:tenant_gpu_allocated:count",
        "ai_platform:tenant_gpu_utilization:avg",
        "ai_platform:tenant_gpu_hours:increase1h",
    ]
    assert [rule["record"] for rule in queues] == [f"ai_platform:{m}:tenant_queues" for m in QUEUE_METRICS]
    for rule in gpu + queues:
        assert set(rule) == {"record", "expr"}
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), "level:metric:operations"
    allocated, utilization, hours = (rule["expr"] for rule in gpu)
    # namespace = tenant: what the tenant organizations' label proxy enforces on every query
    with_namespace = 'label_replace({}, "namespace", "$1", "tenant", "(.+)")'
    assert (
        allocated.startswith(with_namespace.split("{}")[0] + "count by (tenant) (") and 'exported_pod!=""' in allocated
    )
    assert f'resourcequota="{TENANT_QUOTA}"' in allocated, "only GPUs held in tenant namespaces count"
    assert utilization.startswith(with_namespace.split("{}")[0] + "avg by (tenant) (")
    assert "DCGM_FI_DEV_GPU_UTIL" in utilization
    assert hours == "sum_over_time(ai_platform:tenant_gpu_allocated:count[1h:1m]) / 60"
    for metric, rule in zip(QUEUE_METRICS, queues, strict=True):
        assert (
            rule["expr"].startswith(with_namespace.split("{}")[0]) and f"{metric} and on (queue_name)" in rule["expr"]
        )
        assert f'resourcequota="{TENANT_QUOTA}"' in rule["expr"], "only the tenants' queues"
    # The GPU-hours rule reads the count recorded earlier in the same group (groups evaluate in order).
    assert all(group["interval"] == "1m" for group in groups)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_dashboards_are_json_with_stable_uids_and_parseable_queries(stack):
    boards = dashboards(stack_cfg(stack))
    assert len(boards) >= 3 and {"gpu-fleet", "inference", "tenant-usage"} <= set(boards)
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)
    for name, board in boards.items():
        assert json.loads(json.dumps(board)) == board
        assert board["uid"] == f"ai-platform-{name}" and len(board["uid"]) <= 40
        assert board["title"]
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        targets = [target for panel in panels(board) for target in panel.get("targets") or []]
        assert len(targets) >= 5, name
        for target in targets:
            promql_parser.parse(target["expr"])
            assert target["refId"]
        for panel in panels(board):
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboards_show_what_the_brief_asks_for():
    boards = dashboards(stack_cfg("prod"))

    def used(name):
        return {
            metric
            for panel in panels(boards[name])
            for target in panel.get("targets") or []
            for metric in metric_names(target["expr"])
        }

    assert {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_XID_ERRORS"} <= used(
        "gpu-fleet"
    )
    assert {
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:generation_tokens_total",
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "nv_inference_queue_duration_us",
    } <= used("inference")
    assert {
        "ai_platform:tenant_gpu_allocated:count",
        "ai_platform:tenant_gpu_hours:increase1h",
        "kube_resourcequota",
    } <= used("tenant-usage")
    variables = {variable["name"]: variable for variable in boards["inference"]["templating"]["list"]}
    assert variables["endpoint"]["query"] == "llama-70b,reranker,fraud-xgb"
    assert variables["namespace"]["query"] == "analytics,product,research"


def _rate_limit_pack(cfg) -> tuple[dict[str, dict], dict[str, dict]]:
    """The rate-limit pack's (records by name, alerts by name)."""
    rules = [rule for group in alert_groups(cfg)["ai-platform-rate-limits"] for rule in group["rules"]]
    return (
        {rule["record"]: rule for rule in rules if "record" in rule},
        {rule["alert"]: rule for rule in rules if "alert" in rule},
    )


def test_rate_limit_alerts_and_records_follow_the_declared_limits():
    cfg = stack_cfg("prod")
    assert cfg.rate_limits.active(cfg)
    records, alerts_ = _rate_limit_pack(cfg)
    assert set(alerts_) == {
        "AiPlatformConsumerRateLimited",
        "AiPlatformEndpointRateLimited",
        "AiPlatformConsumerOverTokenBudget",
        "AiPlatformEndpointOverTokenCeiling",
        "AiPlatformRateLimitServiceDown",
    }
    assert list(records) == [
        ratelimit_record(stat, kind, measure)
        for measure in ("requests", "tokens")
        for kind in ("consumer", "endpoint")
        for stat in ("total_hits", "over_limit")
    ]
    consumer, ceiling, down = (
        alerts_[name]
        for name in ("AiPlatformConsumerRateLimited", "AiPlatformEndpointRateLimited", "AiPlatformRateLimitServiceDown")
    )
    # token budgets read their own keys, which the request keys' patterns do not match (and the other way round)
    budget, token_ceiling = alerts_["AiPlatformConsumerOverTokenBudget"], alerts_["AiPlatformEndpointOverTokenCeiling"]
    assert (
        'key1=~"(tenant-tokens|endpoint-tokens)_.+"' in budget["expr"]
        and '"tenant", "$1", "key1", "tenant-tokens_(.+)"' in budget["expr"]
    )
    assert 'key1=~"endpoint-tokens_.+"' in token_ceiling["expr"]
    assert not re.fullmatch("tenant_.+", "tenant-tokens_research") and not re.fullmatch(
        "endpoint_.+", "endpoint-tokens_x"
    )
    # the labels of the service's stats: key1 tenant_<tenant> + key2 consumer_<claim value>, key1 endpoint_<t>/<e>
    # a consumer's limits over its tenant's endpoints and on one endpoint (key2 consumer_<claim value>), the ceilings
    # without key2
    assert 'key1=~"(tenant|endpoint)_.+",key2=~"consumer_.+"' in consumer["expr"]
    assert '"consumer", "$1", "key2", "consumer_(.+)"' in consumer["expr"]
    assert '"tenant", "$1", "key1", "endpoint_([^/]+)/.+"' in consumer["expr"]
    assert 'key1=~"endpoint_.+",key2=""' in ceiling["expr"]
    assert '"tenant", "$1", "key1", "tenant_(.+)"' in consumer["expr"]
    assert (
        'key1=~"endpoint_.+"' in ceiling["expr"]
        and '"endpoint", "$1", "key1", "endpoint_[^/]+/(.+)"' in ceiling["expr"]
    )
    # every declared consumer gets its name from its claim value (as the stat name carries it), in its tenant only
    for tenant in cfg.tenants:
        for declared in tenant.consumers:
            value = consumer_metric_value(declared.claim_value)
            assert (
                f'"consumer", "{declared.name}", "descriptor", "{tenant.name}\\\\.consumer_{value}"' in consumer["expr"]
            )
    # routed to the tenant (Alertmanager matches the tenant label), the service down is critical and on its job
    assert consumer["labels"] == ceiling["labels"] == budget["labels"] == token_ceiling["labels"]
    assert consumer["labels"] == {"severity": "warning", "tenant": "{{ $labels.tenant }}"}
    assert down["labels"] == {"severity": "critical"}
    assert f'up{{job="{RATE_LIMIT_JOB}",namespace="{cfg.namespaces.ingress}"}} == 0' in down["expr"]
    # the records carry the tenant's namespace for the tenant organizations' label proxy
    for record in records.values():
        assert record["expr"].startswith("label_replace(sum by (tenant, ")
        assert record["expr"].endswith('"namespace", "$1", "tenant", "(.+)")')


def test_rate_limit_service_down_says_what_the_gateway_does_meanwhile():
    opened = _rate_limit_pack(stack_cfg("prod"))[1]["AiPlatformRateLimitServiceDown"]["annotations"]["description"]
    closed_cfg = with_config(lambda c: c.setdefault("ai-platform:rateLimits", {}).update(failOpen=False))
    closed = _rate_limit_pack(closed_cfg)[1]["AiPlatformRateLimitServiceDown"]["annotations"]["description"]
    assert "failOpen is true" in opened and "unlimited" in opened
    assert "failOpen is false" in closed and "answers 500" in closed


def test_rate_limit_rules_and_panels_only_when_limits_are_enforced():
    assert alert_groups(stack_cfg("prod"))["ai-platform-rate-limits"]
    assert any("ai_platform:ratelimit_" in query for query in dashboard_queries(stack_cfg("prod")))
    off = with_config(lambda c: c.setdefault("ai-platform:rateLimits", {}).update(enabled=False))
    assert alert_groups(off)["ai-platform-rate-limits"] == []
    assert not any("ratelimit" in query for query in dashboard_queries(off))


def test_consumer_metric_value_is_the_claim_as_the_stat_name_carries_it():
    assert consumer_metric_value("svc-research-chat") == "svc-research-chat"
    assert consumer_metric_value("spiffe://a|b") == "spiffe_//a_b"
    assert consumer_metric_value("client.example.com") == "client"  # key2 stops at the first dot
    assert consumer_metric_value("10.1.2.3") == "10_1_2_3"  # SanitizeStatName: an IPv4 address keeps its parts
