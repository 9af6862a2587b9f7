"""Metric contracts: every PromQL expression the platform emits reads series that exist, with the labels it uses.

Three parts:

- **Exposition fixtures** (``tests/contracts/metrics/<exporter>.prom``): the ``/metrics`` text of each exporter at its
  pinned version, recorded from upstream (each file names its sources in ``# source:`` lines).
- **"As Prometheus stores it"** (``ScrapeJob``, ``scrape_jobs``): per scrape job, what the scrape adds to the
  exporter's labels, derived from the monitors the program renders (and, for the monitors the charts make, from the
  chart's values): the target labels (``namespace``, ``pod``, ``container``, ``service`` for ServiceMonitors,
  ``endpoint``, ``job``, ``instance``), ``podTargetLabels`` (pod labels, sanitised), and ``honorLabels``: false
  renames an exporter label that clashes with a target label to ``exported_<name>`` (DCGM's ``pod``/``namespace``),
  true keeps the exporter's (kube-state-metrics).
- **The check** (``LabelFlow``): each expression is walked; each metric must be stored, each label used in a
  matcher, ``by``/``without``, ``on``/``ignoring``/``group_left``/``group_right``, ``label_replace``/``label_join``
  source, alert annotation ``{{ $labels.x }}`` and dashboard legend ``{{x}}`` must exist where it is used. The labels
  an expression produces are tracked through it (aggregations keep their grouping, one-to-one ``on`` keeps the
  matching labels, ``label_replace`` adds its target, recording rules store what their expression leaves).

Then ``promtool check rules`` and ``promtool test rules`` run on the generated groups, with input series built from
the fixtures through the same scrape model: each alert fires when it should and stays quiet when it should not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser as pp
import pytest
import yaml

from components.mesh import inference_pools, rate_limits
from components.monitoring import rules
from components.serving import engines
from components.serving.engines.base import versions_of
from tests.conftest import STACKS, run_stack, stack_cfg
from tools.validate import upstream_dir

FIXTURES = Path(__file__).parent / "contracts" / "metrics"

# --------------------------------------------------------------------------------------------------------------
# Exposition fixtures


def parse_exposition(text: str) -> dict[str, list[dict[str, str]]]:
    """Prometheus text format -> metric name -> the label sets of its samples (``_bucket``/``_sum``/``_count`` of a
    histogram are names of their own, as Prometheus stores them)."""
    samples: dict[str, list[dict[str, str]]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        found = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+", line.strip())
        assert found, f"not an exposition sample: {line}"
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', found.group(2) or ""))
        samples.setdefault(found.group(1), []).append(labels)
    return samples


def fixture(name: str) -> dict[str, list[dict[str, str]]]:
    return parse_exposition((FIXTURES / f"{name}.prom").read_text())


def test_every_fixture_names_its_upstream_source_and_parses():
    files = sorted(FIXTURES.glob("*.prom"))
    assert {path.stem for path in files} >= {
        "dcgm-exporter",
        "vllm",
        "triton",
        "istio-proxy",
        "kube-state-metrics",
        "volcano-scheduler",
        "volcano-controllers",
        "kserve",
        "loki",
        "alloy",
        "tempo",
        "otel-collector",
        "ratelimit",
        "epp",
    }
    for path in files:
        text = path.read_text()
        sources = [line for line in text.splitlines() if line.startswith("# source: ")]
        assert sources and all(re.match(r"# source: [\w.-]+/[\w.-]+ \S+ \S", line) for line in sources), path.name
        assert parse_exposition(text), path.name


# --------------------------------------------------------------------------------------------------------------
# "As Prometheus stores it"

POD_TARGET_LABELS = ("namespace", "pod", "container", "endpoint", "job", "instance")
SERVICE_TARGET_LABELS = POD_TARGET_LABELS + ("service",)

# Facts about the monitors the charts (not the program) create, from upstream:
# - NVIDIA/gpu-operator v26.7.0 assets/state-dcgm-exporter/0500_service_monitor.yaml: jobLabel app, port gpu-metrics;
#   0400_service.yaml: Service nvidia-dcgm-exporter, label app: nvidia-dcgm-exporter; 0800_daemonset.yaml: container
#   nvidia-dcgm-exporter. honorLabels: dcgmExporter.serviceMonitor.honorLabels (values.yaml default false).
# - kube-prometheus-stack 88.5.3 values.yaml kube-state-metrics.prometheus.monitor.http.honorLabels: true.
DCGM_TARGET = {
    "job": "nvidia-dcgm-exporter",
    "service": "nvidia-dcgm-exporter",
    "endpoint": "gpu-metrics",
    "container": "nvidia-dcgm-exporter",
    "pod": "nvidia-dcgm-exporter-7xk2q",
    "instance": "10.0.4.17:9400",
}
KSM_TARGET = {
    "job": "kube-state-metrics",
    "service": "kube-prometheus-stack-kube-state-metrics",
    "endpoint": "http",
    "container": "kube-state-metrics",
    "pod": "kube-prometheus-stack-kube-state-metrics-5f7b9-abcde",
    "instance": "10.0.2.9:8080",
}
# The Volcano chart's metrics Services (volcano-sh/volcano v1.15.1 installer/helm/chart/volcano/templates/
# scheduler.yaml, controllers.yaml) behind the platform's ServiceMonitors: monitor -> (fixture, Service, container).
VOLCANO = {
    "volcano-scheduler": ("volcano-scheduler", "{release}-scheduler-service", "{release}-scheduler"),
    "volcano-controllers": ("volcano-controllers", "{release}-controllers-service", "{release}-controllers"),
}
ENGINE_CONTAINERS = {"vllm": "vllm", "triton": "triton", "kserve": "kserve-container"}
# The logs and traces charts' own ServiceMonitors (turned on by components.logs / components.traces with monitoring):
# - grafana-community/helm-charts loki-18.11.0 charts/loki templates/monitoring/servicemonitor.yaml: every Service with
#   loki.selectorLabels but the headless ones (prometheus.io/service-monitor: "false", templates/_service.tpl), port
#   http-metrics, no jobLabel, relabelings job -> "<jobPrefix><service>" (values.yaml monitoring.serviceMonitor.jobPrefix
#   '{{ include "loki.namespace" $ }}/') and app_instance (monitoring.appInstanceLabelName/-Value: the fullname).
# - grafana/alloy helm-chart/1.11.1 operations/helm/charts/alloy templates/servicemonitor.yaml: Service alloy, port
#   http-metrics, honorLabels: true.
# - grafana-community/helm-charts tempo-2.2.4 charts/tempo templates/servicemonitor.yaml: Service tempo, port
#   tempo-prom-metrics (tempoQuery off: no jaeger-metrics endpoint), container tempo (templates/statefulset.yaml).
# - open-telemetry/opentelemetry-helm-charts opentelemetry-collector-0.170.0 templates/servicemonitor.yaml: Service
#   opentelemetry-collector, endpoints = values serviceMonitor.metricsEndpoints (default port metrics).
PIPELINE_MONITORS = {  # fixture -> (chart, path of the monitor's "enabled" in the values, Service, port, honorLabels)
    "loki": ("loki", ("monitoring", "serviceMonitor"), None, "http-metrics", False),
    "alloy": ("alloy", ("serviceMonitor",), "alloy", "http-metrics", True),
    "tempo": ("tempo", ("serviceMonitor",), "tempo", "tempo-prom-metrics", False),
    "otel-collector": ("opentelemetry-collector", ("serviceMonitor",), "opentelemetry-collector", "metrics", False),
}


def sanitize(label: str) -> str:
    """A Kubernetes label key as a Prometheus label name (what the Prometheus Operator does to podTargetLabels)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


@dataclass(frozen=True)
class ScrapeJob:
    """One scrape job: the exporter (fixture) it reads, the target labels it adds, whether it honours the
    exporter's labels, and the pod's labels it copies (podTargetLabels)."""

    fixture: str
    target: dict[str, str]
    honor_labels: bool = False
    pod_labels: dict[str, str] = field(default_factory=dict)

    def store(self, exposed: dict[str, str]) -> dict[str, str]:
        """An exposed label set as Prometheus stores it after this job's scrape."""
        added = {**self.target, **self.pod_labels}
        if self.honor_labels:
            return {**added, **exposed}
        stored = {(f"exported_{name}" if name in added else name): value for name, value in exposed.items()}
        return {**stored, **added}


def _values(run, chart: str) -> dict:
    return next(r for r in run.releases if r.inputs["chart"].endswith(chart)).inputs["values"]


def _upstream_values(chart: str) -> dict:
    return yaml.safe_load((upstream_dir() / chart / "values.yaml").read_text())


def _pod_monitor_job(monitor, fixture_name: str, container: str, pod: str, pod_labels: dict[str, str]) -> ScrapeJob:
    spec = monitor.inputs["spec"]
    endpoint = spec["podMetricsEndpoints"][0]
    copied = {sanitize(label): pod_labels[label] for label in spec.get("podTargetLabels", []) if label in pod_labels}
    target = {
        "namespace": monitor.namespace,
        "pod": pod,
        "container": container,
        "endpoint": str(endpoint.get("port", endpoint.get("portNumber"))),
        "job": f"{monitor.namespace}/{monitor.k8s_name}",
        "instance": "10.1.0.5:8000",
    }
    return ScrapeJob(fixture_name, target, endpoint.get("honorLabels", False), copied)


def _monitor_on(run, chart: str, path: tuple[str, ...]) -> bool:
    values = _values(run, chart)
    for key in path:
        values = values.get(key, {})
    return bool(values.get("enabled"))


def _pipeline_jobs(cfg, run) -> list[ScrapeJob]:
    """The logs and traces charts' ServiceMonitors, as their templates scrape (PIPELINE_MONITORS)."""
    jobs = []
    present = {"loki": cfg.logs.enabled, "alloy": cfg.logs.enabled}
    present |= {"tempo": cfg.traces.enabled, "otel-collector": cfg.traces.enabled}
    for fixture_name, (chart, path, service, port, honor) in PIPELINE_MONITORS.items():
        if not present[fixture_name] or not _monitor_on(run, chart, path):
            continue
        namespace = cfg.namespaces.logs if fixture_name in ("loki", "alloy") else cfg.namespaces.traces
        if fixture_name == "loki":
            services = ["loki"] if cfg.logs.mode == "single-binary" else ["loki-write", "loki-read", "loki-backend"]
            for name in services:
                target = {
                    "namespace": namespace,
                    "service": name,
                    "job": f"{namespace}/{name}",
                    "endpoint": port,
                    "container": "loki",
                    "pod": f"{name}-0",
                    "instance": "10.0.5.5:3100",
                    "app_instance": "loki",
                }
                jobs.append(ScrapeJob(fixture_name, target, honor))
            continue
        target = {
            "namespace": namespace,
            "service": service,
            "job": service,
            "endpoint": port,
            "container": chart,
            "pod": f"{service}-0" if fixture_name == "tempo" else f"{service}-6b8d9c7f5-x2k4p",
            "instance": "10.0.5.6:8080",
        }
        jobs.append(ScrapeJob(fixture_name, target, honor))
    return jobs


def scrape_jobs(stack: str) -> list[ScrapeJob]:
    """Every scrape job of the stack that reads an exporter of the fixtures, from the rendered monitors."""
    cfg, run = stack_cfg(stack), run_stack(stack)
    jobs: list[ScrapeJob] = []
    if cfg.gpu.enabled and cfg.gpu.dcgm_exporter:
        chosen = _values(run, "gpu-operator").get("dcgmExporter", {}).get("serviceMonitor", {})
        default = _upstream_values("gpu-operator")["dcgmExporter"]["serviceMonitor"]
        assert chosen.get("enabled", default["enabled"]), "the DCGM exporter is on but nothing scrapes it"
        jobs.append(
            ScrapeJob(
                "dcgm-exporter",
                {**DCGM_TARGET, "namespace": cfg.namespaces.gpu_operator},
                chosen.get("honorLabels", default["honorLabels"]),
            )
        )
    ksm = _values(run, "kube-prometheus-stack").get("kube-state-metrics", {})
    honor = ksm.get("prometheus", {}).get("monitor", {}).get("http", {}).get("honorLabels")
    if honor is None:
        honor = _upstream_values("kube-prometheus-stack")["kube-state-metrics"]["prometheus"]["monitor"]["http"][
            "honorLabels"
        ]
    jobs.append(ScrapeJob("kube-state-metrics", {**KSM_TARGET, "namespace": cfg.namespaces.monitoring}, honor))
    # The VPAs' recommendations: the same kube-state-metrics target, with the Custom Resource State config the release
    # gives it (the metrics exist only if the rendered values turn it on and name the VPA kind).
    state = ksm.get("customResourceState", {})
    resources = state.get("config", {}).get("spec", {}).get("resources", []) if state.get("enabled") else []
    if any(r["groupVersionKind"]["kind"] == "VerticalPodAutoscaler" for r in resources):
        jobs.append(ScrapeJob("kube-state-metrics-vpa", {**KSM_TARGET, "namespace": cfg.namespaces.monitoring}, honor))
    endpoints = {endpoint.name: endpoint for endpoint in cfg.models}
    for monitor in run.of_kind("PodMonitor"):
        labels = monitor.inputs["metadata"]["labels"]
        if monitor.k8s_name == "istio-proxies":
            jobs.append(_pod_monitor_job(monitor, "istio-proxy", "istio-proxy", "anything-5d8f7-abcde", {}))
        elif labels.get("ai-platform/endpoint") in endpoints:
            endpoint = endpoints[labels["ai-platform/endpoint"]]
            version = "canary" if monitor.k8s_name.endswith("-canary") else "stable"
            deployment = rules.endpoint_deployments(endpoint)[version == "canary"]
            pod_labels = {
                "ai-platform/tenant": endpoint.tenant,
                "ai-platform/endpoint": endpoint.name,
                "version": version,
            }
            jobs.append(
                _pod_monitor_job(
                    monitor,
                    endpoint.engine,
                    ENGINE_CONTAINERS[endpoint.engine],
                    f"{deployment}-7c9d8b6f5-x2k4p",
                    pod_labels,
                )
            )
    release = (
        next(r for r in run.releases if r.inputs["chart"] == "volcano").inputs["name"] if cfg.volcano.enabled else None
    )
    for monitor in run.of_kind("ServiceMonitor"):
        if monitor.k8s_name in VOLCANO:
            fixture_name, service, container = (part.format(release=release) for part in VOLCANO[monitor.k8s_name])
            spec = monitor.inputs["spec"]["endpoints"][0]
            jobs.append(
                ScrapeJob(
                    fixture_name,
                    {
                        "namespace": monitor.namespace,
                        "service": service,
                        "job": service,
                        "endpoint": spec["port"],
                        "container": container,
                        "pod": f"{container}-6b8d9-abcde",
                        "instance": "10.0.3.3:8080",
                    },
                    spec.get("honorLabels", False),
                )
            )
        elif monitor.k8s_name == rate_limits.NAME and monitor.namespace == cfg.namespaces.ingress:
            jobs.append(_ratelimit_job(monitor))
        elif monitor.inputs["metadata"]["labels"].get("app.kubernetes.io/component") == inference_pools.COMPONENT:
            jobs += _picker_jobs(cfg, monitor)
    return jobs + _pipeline_jobs(cfg, run)


def _ratelimit_job(monitor) -> ScrapeJob:
    """The rate-limit service's ServiceMonitor (components.mesh.rate_limits): no jobLabel, so ``job`` is the Service's
    name; the Service, its port and the container are all ``ratelimit``."""
    endpoint = monitor.inputs["spec"]["endpoints"][0]
    target = {
        "namespace": monitor.namespace,
        "service": rate_limits.NAME,
        "job": rate_limits.NAME,
        "endpoint": endpoint["port"],
        "container": rate_limits.NAME,
        "pod": f"{rate_limits.NAME}-7d9f8b6c5-x2k4p",
        "instance": f"10.0.6.7:{rate_limits.METRICS_PORT}",
    }
    return ScrapeJob("ratelimit", target, endpoint.get("honorLabels", False))


def _picker_jobs(cfg, monitor) -> list[ScrapeJob]:
    """A pooled endpoint's pickers (components.mesh.inference_pools ``picker_monitor_spec``): one target per pool, its
    ``job`` and ``pool`` set by the monitor's relabelings (read from the rendered monitor), the Service
    ``<pool>-epp``, container ``epp``."""
    endpoint_name = monitor.inputs["spec"]["selector"]["matchLabels"][inference_pools.PICKER_FOR_LABEL]
    endpoint = next(e for e in cfg.models if e.name == endpoint_name and e.tenant == monitor.namespace)
    spec = monitor.inputs["spec"]["endpoints"][0]
    relabeled = {r["targetLabel"]: r.get("replacement") for r in spec["relabelings"]}
    jobs = []
    for version, _ in versions_of(endpoint):
        pool = inference_pools.pool_name(endpoint, version)
        service = inference_pools.picker_name(pool)
        target = {
            "namespace": monitor.namespace,
            "service": service,
            "job": relabeled["job"],
            "pool": pool,
            "endpoint": spec["port"],
            "container": "epp",
            "pod": f"{service}-6d8f9c7b5-x2k4p",
            "instance": f"10.0.7.8:{inference_pools.METRICS_PORT}",
        }
        assert "pool" in relabeled
        jobs.append(ScrapeJob("epp", target, spec.get("honorLabels", False)))
    return jobs


def stored_labels(stack: str) -> tuple[dict[str, set[str]], set[str]]:
    """Metric -> every label it is stored with in the stack, and the metrics some job of the stack scrapes.
    Exporters no job scrapes get the labels of a plain PodMonitor scrape (dashboards show every engine)."""
    labels: dict[str, set[str]] = {}
    scraped: set[str] = set()
    jobs = scrape_jobs(stack)
    generic = {
        path.stem: ScrapeJob(path.stem, dict.fromkeys(POD_TARGET_LABELS, "x")) for path in FIXTURES.glob("*.prom")
    }
    for job in jobs + [job for name, job in generic.items() if name not in {j.fixture for j in jobs}]:
        for metric, samples in fixture(job.fixture).items():
            for sample in samples:
                labels.setdefault(metric, set()).update(job.store(sample))
            if job in jobs:
                scraped.add(metric)
        labels.setdefault("up", set()).update(job.target)
        if job in jobs:
            scraped.add("up")
    return labels, scraped


def test_the_scrape_model_renames_clashing_labels_unless_honoured():
    job = ScrapeJob("x", {"namespace": "gpu-operator", "pod": "exporter", "job": "j"})
    assert job.store({"namespace": "research", "pod": "llama", "gpu": "0"}) == {
        "exported_namespace": "research",
        "exported_pod": "llama",
        "gpu": "0",
        "namespace": "gpu-operator",
        "pod": "exporter",
        "job": "j",
    }
    honoured = ScrapeJob("x", {"namespace": "monitoring", "pod": "ksm", "job": "j"}, honor_labels=True)
    assert honoured.store({"namespace": "research", "deployment": "d"}) == {
        "namespace": "research",
        "deployment": "d",
        "pod": "ksm",
        "job": "j",
    }


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_the_scrape_model_follows_the_rendered_monitors(stack):
    cfg = stack_cfg(stack)
    jobs = {job.fixture: job for job in scrape_jobs(stack)}
    if cfg.gpu.enabled and cfg.gpu.dcgm_exporter:
        dcgm = jobs["dcgm-exporter"]
        assert not dcgm.honor_labels and dcgm.target["job"] == rules.DCGM_JOB
        assert dcgm.store({"pod": "p", "namespace": "n"})[rules.GPU_POD] == "p"
    for endpoint in cfg.models:
        job = jobs[endpoint.engine]
        assert {"ai_platform_tenant", "ai_platform_endpoint", "version"} <= set(job.pod_labels)
        scrape = engines.of(endpoint).metrics_scrape
        assert job.target["endpoint"] == str(scrape.get("port") or scrape.get("portNumber"))
    if cfg.volcano.enabled:
        assert {"volcano-scheduler", "volcano-controllers"} <= set(jobs)
    assert jobs["kube-state-metrics"].honor_labels
    if cfg.monitoring.enabled:  # the pipeline the stack runs is scraped, and its alerts name the jobs it has
        expected = ({"loki", "alloy"} if cfg.logs.enabled else set()) | (
            {"tempo", "otel-collector"} if cfg.traces.enabled else set()
        )
        assert expected <= set(jobs)
        scraped = {job.target["job"] for job in scrape_jobs(stack)}
        for job in rules.pipeline_jobs(cfg).values():
            assert any(re.fullmatch(job.removeprefix("~"), name) for name in scraped), job
        # the rate-limit service is scraped where its alerts look for it (job and namespace)
        limited = [job for job in jobs.values() if job.fixture == "ratelimit"]
        assert bool(limited) == cfg.rate_limits.active(cfg)
        for job in limited:
            assert (job.target["job"], job.target["namespace"]) == (rules.RATE_LIMIT_JOB, cfg.namespaces.ingress)


# --------------------------------------------------------------------------------------------------------------
# Label flow through PromQL

TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
# Functions whose result keeps the labels of their (first) vector argument.
SAME_LABELS = {
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "abs",
    "ceil",
    "floor",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "predict_linear",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "quantile_over_time",
    "present_over_time",
    "timestamp",
    "sort",
    "sort_desc",
    "holt_winters",
}


class LabelFlow:
    """Walks a PromQL expression: the labels each node's series carry, and every use of a metric or label that
    does not exist where it is used (``problems``)."""

    def __init__(self, stored: dict[str, set[str]], scraped: set[str] | None = None):
        self.stored, self.scraped = stored, scraped
        self.problems: list[str] = []

    def _need(self, used, have: set[str], where: str) -> None:
        for label in used:
            if label not in have:
                self.problems.append(f"label {label!r} of {where} is not on the series there (have {sorted(have)})")

    def labels(self, node) -> set[str] | None:
        """The labels of the series ``node`` evaluates to (None: a scalar or string)."""
        if isinstance(node, pp.VectorSelector):
            if node.name not in self.stored:
                self.problems.append(f"metric {node.name!r} is not exposed by any exporter nor recorded")
                return set()
            if self.scraped is not None and node.name not in self.scraped:
                self.problems.append(f"metric {node.name!r}: no scrape job of the stack reads its exporter")
            have = self.stored[node.name]
            self._need(
                [m.name for m in node.matchers.matchers if m.name != "__name__"], have, f"the matcher of {node.name}"
            )
            return set(have)
        if isinstance(node, pp.MatrixSelector):
            return self.labels(node.vector_selector)
        if isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
            return self.labels(node.expr)
        if isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
            return None
        if isinstance(node, pp.AggregateExpr):
            inner = self.labels(node.expr) or set()
            if node.param is not None:
                self.labels(node.param)
            modifier = node.modifier
            grouping = set(modifier.labels) if modifier else set()
            self._need(grouping, inner, f"{node.op} by/without")
            if str(node.op) in ("topk", "bottomk", "limitk", "limit_ratio"):
                return inner
            if modifier is not None and modifier.type == pp.AggModifierType.Without:
                return inner - grouping
            return grouping | ({node.param.val} if str(node.op) == "count_values" else set())
        if isinstance(node, pp.Call):
            return self._call(node)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node)
        raise AssertionError(f"unhandled PromQL node {type(node).__name__}")

    def _call(self, node) -> set[str] | None:
        name = node.func.name
        args = [self.labels(arg) for arg in node.args]
        vectors = [labels for labels in args if labels is not None]
        if name in ("label_replace", "label_join"):
            target = node.args[1].val
            sources = [node.args[3].val] if name == "label_replace" else [arg.val for arg in node.args[3:]]
            self._need(sources, args[0], name)
            return args[0] | {target}
        if name == "histogram_quantile":
            self._need(["le"], args[1], name)
            return args[1] - {"le"}
        if name == "absent":
            selector = node.args[0]
            return {m.name for m in selector.matchers.matchers if str(m.op) in ("=", "MatchOp.Equal")}
        if name in ("vector", "time", "scalar", "pi"):
            return set() if name == "vector" else None
        if name in SAME_LABELS or name.endswith("_over_time"):
            return vectors[0] if vectors else None
        raise AssertionError(f"unhandled PromQL function {name}")

    def _binary(self, node) -> set[str] | None:
        lhs, rhs = self.labels(node.lhs), self.labels(node.rhs)
        if lhs is None or rhs is None:
            return rhs if lhs is None else lhs
        op, modifier = str(node.op), node.modifier
        matching = modifier.matching if modifier else None
        on = matching is not None and matching.type == pp.LabelModifierType.Include
        match_labels = set(matching.labels) if matching else set()
        if on:
            self._need(match_labels, lhs, f"the left side of {op} on")
            self._need(match_labels, rhs, f"the right side of {op} on")
        else:
            self._need(match_labels, lhs | rhs, f"{op} ignoring")
        if op in ("and", "unless"):
            return lhs
        if op == "or":
            return lhs | rhs
        card = modifier.card if modifier else None
        if card == pp.VectorMatchCardinality.ManyToOne:
            self._need(modifier.group_labels or [], rhs, "group_left")
            return lhs | set(modifier.group_labels or [])
        if card == pp.VectorMatchCardinality.OneToMany:
            self._need(modifier.group_labels or [], lhs, "group_right")
            return rhs | set(modifier.group_labels or [])
        return match_labels & lhs if on else lhs - match_labels  # one to one: Prometheus's resultMetric

    def check(self, expr: str, templates: list[str] = (), legend: str = "") -> set[str] | None:
        """The labels of ``expr``'s result; records missing metrics/labels, and template labels not in it."""
        result = self.labels(pp.parse(expr))
        for text in templates:
            self._need(TEMPLATE_LABEL.findall(text), result or set(), f"template {text[:60]!r}")
        if legend:
            self._need(LEGEND_LABEL.findall(legend), result or set(), f"legend {legend!r}")
        return result


def test_the_label_flow_catches_what_it_should():
    stored = {"a": {"x", "y", "le"}, "b": {"x", "z"}}
    flow = LabelFlow(stored)
    assert flow.check('sum by (x) (rate(a{y="1"}[5m])) / on (x) group_left (z) b') == {"x", "z"}
    assert flow.check(
        'label_replace(a, "t", "$1", "y", "(.+)") and on (t) label_replace(b, "t", "$1", "z", "(.*)")',
        ["{{ $labels.t }} {{ $labels.y }}"],
    ) == {"x", "y", "le", "t"}
    assert flow.check("histogram_quantile(0.9, sum by (le, x) (rate(a[5m])))", legend="{{x}}") == {"x"}
    assert flow.problems == []
    for bad in (
        'a{w="1"}',
        "sum by (w) (a)",
        "a / on (y) b",
        "a * on (x) group_left (q) b",
        "c",
        'label_replace(b, "t", "$1", "y", "(.*)")',
        "histogram_quantile(0.9, b)",
    ):
        flow = LabelFlow(stored)
        flow.check(bad)
        assert flow.problems, bad
    flow = LabelFlow(stored)
    flow.check("sum by (x) (a)", ["{{ $labels.y }}"])
    assert flow.problems


# --------------------------------------------------------------------------------------------------------------
# What the platform emits, from the rendered objects


def _rule_groups(run) -> list[dict]:
    return [group for rule in run.of_kind("PrometheusRule") for group in rule.inputs["spec"]["groups"]]


def _dashboards(run) -> list[dict]:
    """Every dashboard the program puts into a ConfigMap for Grafana's sidecar (platform and tenant folders)."""
    return [
        json.loads(text)
        for cm in run.of_kind("ConfigMap")
        if (cm.inputs["metadata"].get("labels") or {}).get("grafana_dashboard")
        for text in cm.inputs["data"].values()
    ]


def _queries(board: dict) -> list[tuple[str, str]]:
    """(PromQL, legend) of every panel target, rows' collapsed panels included."""
    found = []
    panels = [p for panel in board["panels"] for p in [panel, *(panel.get("panels") or [])]]
    for panel in panels:
        found += [(target["expr"], target.get("legendFormat") or "") for target in panel.get("targets") or []]
    return found


def _label_values(board: dict) -> list[tuple[str, str]]:
    pairs = []
    for variable in board["templating"]["list"]:
        found = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", str(variable.get("query", "")))
        if variable["type"] == "query" and found:
            pairs.append((found.group(1), found.group(2)))
    return pairs


def _check_stack(stack: str) -> list[str]:
    run = run_stack(stack)
    stored, scraped = stored_labels(stack)
    problems: list[str] = []

    def flow(strict: bool) -> LabelFlow:
        return LabelFlow(stored, scraped if strict else None)

    for group in _rule_groups(run):  # recording rules first in their group order: their outputs are metrics
        for rule in group["rules"]:
            if "record" in rule:
                checker = flow(True)
                stored[rule["record"]] = checker.check(rule["expr"]) or set()
                scraped.add(rule["record"])
                problems += [f"record {rule['record']}: {p}" for p in checker.problems]
    for group in _rule_groups(run):
        for rule in group["rules"]:
            if "alert" in rule:
                checker = flow(True)
                checker.check(rule["expr"], [*rule["annotations"].values(), *rule.get("labels", {}).values()])
                problems += [f"alert {rule['alert']} ({group['name']}): {p}" for p in checker.problems]
    for board in _dashboards(run):
        for expr, legend in _queries(board):
            checker = flow(False)
            checker.check(expr, legend=legend)
            problems += [f"dashboard {board['uid']}: {expr}: {p}" for p in checker.problems]
        for selector, label in _label_values(board):
            checker = flow(False)
            have = checker.check(selector) or set()
            checker._need([label], have, f"label_values({selector}, {label})")
            problems += [f"dashboard {board['uid']} variable: {p}" for p in checker.problems]
    for scaled in run.of_kind("ScaledObject"):
        for trigger in scaled.inputs["spec"]["triggers"]:
            if trigger["type"] == "prometheus":
                checker = flow(True)
                checker.check(trigger["metadata"]["query"])
                problems += [f"ScaledObject {scaled.namespace}/{scaled.k8s_name}: {p}" for p in checker.problems]
    return problems


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_every_emitted_query_reads_metrics_and_labels_that_exist(stack):
    run = run_stack(stack)
    assert _rule_groups(run) and _dashboards(run)
    problems = _check_stack(stack)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------------------------
# promtool


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing (Debian package prometheus): run `make runtime-tools`")
        pytest.skip("promtool is missing: run `make runtime-tools` (Debian package prometheus)")
    return found


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_promtool_accepts_every_rule_group(stack, tmp_path):
    run = run_stack(stack)
    for rule in run.of_kind("PrometheusRule"):
        path = tmp_path / f"{rule.k8s_name}.yaml"
        path.write_text(yaml.safe_dump({"groups": rule.inputs["spec"]["groups"]}, sort_keys=False))
        result = _promtool("check", "rules", str(path))
        assert result.returncode == 0, f"{rule.k8s_name}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_promtool_every_alert_fires_when_it_should_and_only_then(stack, tmp_path):
    run = run_stack(stack)
    rule_files = []
    for rule in run.of_kind("PrometheusRule"):
        path = tmp_path / f"{rule.k8s_name}.yaml"
        path.write_text(yaml.safe_dump({"groups": rule.inputs["spec"]["groups"]}, sort_keys=False))
        rule_files.append(path.name)
    alerts = [(group, rule) for group in _rule_groups(run) for rule in group["rules"] if "alert" in rule]
    tests, covered = alert_cases(stack_cfg(stack), scrape_jobs(stack), alerts)
    missing = {rule["alert"] for _, rule in alerts} - covered
    assert not missing, f"alerts without a firing and a quiet case: {sorted(missing)}"
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump(
            {"rule_files": rule_files, "evaluation_interval": "1m", "tests": tests}, sort_keys=False, width=400
        )
    )
    result = _promtool("test", "rules", str(tmp_path / "tests.yaml"))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


# --------------------------------------------------------------------------------------------------------------
# Firing and quiet cases per alert, on series shaped like the fixtures as Prometheus stores them


def minutes(duration: str) -> int:
    """A rule duration (``10m``, ``2h``, ``0m``) in minutes."""
    number, unit = re.fullmatch(r"(\d+)([smhd])", duration).groups()
    return int(number) * {"s": 0, "m": 1, "h": 60, "d": 1440}[unit] or (1 if unit == "s" and int(number) else 0)


class Series:
    """Input series for promtool, each built from a fixture sample of the metric through a scrape job."""

    def __init__(self, jobs: list[ScrapeJob], fixture_of):
        self.jobs, self.fixture_of = jobs, fixture_of

    def job(self, fixture_name: str, job_name: str | None = None) -> ScrapeJob:
        found = [job for job in self.jobs if job.fixture == fixture_name and job_name in (None, job.target.get("job"))]
        assert found, f"no scrape job of the stack reads {fixture_name} ({job_name or 'any job'})"
        return found[0]

    def __call__(self, metric: str, values: str, job: ScrapeJob, **exposed: str) -> dict:
        sample = {**self.fixture_of(job.fixture)[metric][0], **exposed}
        labels = job.store({name: value for name, value in sample.items() if value is not None})  # None: drop it
        text = ",".join(f'{name}="{value}"' for name, value in sorted(labels.items()))
        return {"series": f"{metric}{{{text}}}", "values": values}


def down_cases(job: ScrapeJob, span: str, wait: int) -> tuple[list[dict], list[dict], int]:
    """A scrape target down (``up`` 0) against up (1), with the job's target labels."""
    target = ",".join(f'{k}="{v}"' for k, v in sorted(job.target.items()))
    return (
        [{"series": f"up{{{target}}}", "values": "0" + span}],
        [{"series": f"up{{{target}}}", "values": "1" + span}],
        wait + 20,
    )


def _threshold(expr: str) -> float:
    return float(re.search(r"[<>] ([0-9.e+-]+)$", expr).group(1))


def _case(name: str, rule: dict, series: list[dict], eval_minutes: int, firing: bool) -> dict:
    scope = {
        key: rule["labels"][key]
        for key in ("endpoint", "tenant")
        if key in rule["labels"] and "{{" not in rule["labels"][key]
    }  # templated labels: left out
    matchers = ",".join(f'{k}="{v}"' for k, v in {"alertname": rule["alert"], "alertstate": "firing", **scope}.items())
    return {
        "name": f"{name} {'fires' if firing else 'stays quiet'}",
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": f"count(ALERTS{{{matchers}}}) or vector(0)",
                "eval_time": f"{eval_minutes}m",
                "exp_samples": [{"labels": "{}", "value": 1 if firing else 0}],
            }
        ],
    }


def _histogram(series, metric: str, job, threshold: float, firing: bool, **exposed) -> list[dict]:
    """Bucket series whose p95 lands above (firing) or below ``threshold``."""
    bound = threshold * 2 if firing else threshold / 2
    return [
        series(metric, "0+0x60" if firing else "0+10x60", job, le=f"{bound:g}", **exposed),
        series(metric, "0+10x60", job, le="+Inf", **exposed),
    ]


def endpoint_cases(cfg, series: Series, rule: dict) -> tuple[list[dict], list[dict]]:
    """(firing series, quiet series) of an endpoint alert."""
    endpoint = next(
        e for e in cfg.models if e.name == rule["labels"]["endpoint"] and e.tenant == rule["labels"]["tenant"]
    )
    deployment = rules.endpoint_deployments(endpoint)[0]
    name, limit = rule["alert"], _threshold(rule["expr"])
    engine = series.job(endpoint.engine, f"{endpoint.tenant}/{endpoint.name}")  # the stable version's pods
    mesh = {
        "reporter": "destination",
        "destination_workload": deployment,
        "destination_workload_namespace": endpoint.tenant,
    }

    def both(build):
        return build(True), build(False)

    if name == "AiPlatformEndpointNoReadyReplicas":
        ksm = series.job("kube-state-metrics")
        scope = {"namespace": endpoint.tenant, "deployment": deployment}
        return both(
            lambda on: [
                series("kube_deployment_status_replicas_available", "0x40" if on else "1x40", ksm, **scope),
                series("kube_deployment_spec_replicas", "1x40", ksm, **scope),
            ]
        )
    if name == "AiPlatformEndpointHttp5xxRate":
        proxy = series.job("istio-proxy", f"{endpoint.tenant}/istio-proxies")
        return both(
            lambda on: [
                series("istio_requests_total", "0+10x40" if on else "0+0x40", proxy, response_code="503", **mesh),
                series("istio_requests_total", "0+1x40", proxy, response_code="200", **mesh),
            ]
        )
    if name == "AiPlatformEndpointLatencyHigh" and endpoint.engine == "kserve":
        proxy = series.job("istio-proxy", f"{endpoint.tenant}/istio-proxies")
        return both(
            lambda on: _histogram(series, "istio_request_duration_milliseconds_bucket", proxy, limit * 1e3, on, **mesh)
        )
    if name == "AiPlatformEndpointLatencyHigh" and endpoint.engine == "vllm":
        return both(lambda on: _histogram(series, "vllm:e2e_request_latency_seconds_bucket", engine, limit, on))
    if name == "AiPlatformEndpointTtftHigh":
        return both(lambda on: _histogram(series, "vllm:time_to_first_token_seconds_bucket", engine, limit, on))
    if name == "AiPlatformEndpointErrorRate" and endpoint.engine == "vllm":
        return both(
            lambda on: [
                series("vllm:request_success_total", "0+10x40" if on else "0+0x40", engine, finished_reason="error"),
                series("vllm:request_success_total", "0+1x40", engine, finished_reason="stop"),
            ]
        )
    if name in ("AiPlatformVllmQueueGrowing", "AiPlatformVllmKvCacheSaturated"):
        metric = "vllm:num_requests_waiting" if name.endswith("Growing") else "vllm:kv_cache_usage_perc"
        return both(lambda on: [series(metric, f"{limit * 2 + 1 if on else limit / 2:g}x40", engine)])
    if name == "AiPlatformEndpointLatencyHigh" and endpoint.engine == "triton":
        return both(
            lambda on: [
                series("nv_inference_request_success", "0+10x40", engine),
                series("nv_inference_request_duration_us", f"0+{10 * limit * 1e6 * (2 if on else 0.5):g}x40", engine),
            ]
        )
    if name == "AiPlatformEndpointErrorRate" and endpoint.engine == "triton":
        return both(
            lambda on: [
                series("nv_inference_request_success", "0+1x40", engine),
                series("nv_inference_request_failure", "0+10x40" if on else "0+0x40", engine, reason="REJECTED"),
            ]
        )
    if name == "AiPlatformTritonQueueTimeHigh":
        return both(
            lambda on: [
                series("nv_inference_request_success", "0+10x40", engine),
                series("nv_inference_queue_duration_us", f"0+{10 * limit * 1e3 * (2 if on else 0.5):g}x40", engine),
            ]
        )
    raise AssertionError(f"no case for {name} ({endpoint.engine}): add one")


def platform_cases(cfg, series: Series, rule: dict) -> tuple[list[dict], list[dict], int]:
    """(firing series, quiet series, minutes to evaluate at) of a GPU, tenancy or batch alert."""
    name, expr, wait = rule["alert"], rule["expr"], minutes(rule["for"])
    alerts = cfg.monitoring.alerts
    if name.startswith("AiPlatformVolcano"):
        scheduler, controllers = series.job("volcano-scheduler"), series.job("volcano-controllers")
        span = f"x{wait + 20}"
        if name == "AiPlatformVolcanoQueuePending":
            return (
                [series("volcano_queue_pod_group_pending_count", "2" + span, controllers)],
                [series("volcano_queue_pod_group_pending_count", "0" + span, controllers)],
                wait + 10,
            )
        return (
            [series("volcano_unschedule_task_count", "3" + span, scheduler)],
            [series("volcano_unschedule_task_count", "0" + span, scheduler)],
            wait + 10,
        )
    if name == "AiPlatformTenantQuotaNearlyUsed":
        ksm, limit = series.job("kube-state-metrics"), _threshold(expr)
        tenant = cfg.tenants[0].name
        scope = {"namespace": tenant, "resourcequota": rules.TENANT_QUOTA, "resource": "requests.cpu"}
        return (
            [
                series("kube_resourcequota", "100x40", ksm, type="hard", **scope),
                series("kube_resourcequota", f"{100 * (1 + limit) / 2:g}x40", ksm, type="used", **scope),
            ],
            [
                series("kube_resourcequota", "100x40", ksm, type="hard", **scope),
                series("kube_resourcequota", f"{100 * limit / 2:g}x40", ksm, type="used", **scope),
            ],
            wait + 10,
        )
    if name == "AiPlatformRequestFarFromRecommendation":
        ksm, vpa = series.job("kube-state-metrics"), series.job("kube-state-metrics-vpa")
        span = f"x{wait + 60}"
        pod = {"namespace": "mlflow", "pod": "mlflow-6c5d8f7b9-x2k4p", "container": "mlflow"}
        target = {"namespace": "mlflow", "target_kind": "Deployment", "target_name": "mlflow", "container": "mlflow"}
        metric = "kube_verticalpodautoscaler_status_recommendation_containerrecommendations_target_cpu"

        def sized(request: float) -> list[dict]:  # a CPU target of 0.5 cores
            return [
                series(
                    "kube_pod_container_resource_requests",
                    f"{request:g}{span}",
                    ksm,
                    resource="cpu",
                    unit="core",
                    **pod,
                ),
                series(metric, "0.5" + span, vpa, resource="cpu", unit="core", **target),
            ]

        return sized(0.5 * 3), sized(0.5 * 1.5), wait + 30
    if name in PIPELINE_CASES or name in PIPELINE_DOWN:
        return pipeline_cases(series, rule)
    if name in RATE_LIMIT_ALERTS:
        return rate_limit_cases(cfg, series, rule)
    if name in ROUTING_ALERTS:
        return routing_cases(series, rule)
    dcgm = series.job("dcgm-exporter")
    held = {"pod": "llama-70b-7c9d8b6f5-x2k4p", "namespace": "research", "container": "vllm"}

    def gpu(index: int) -> dict:
        return {
            "gpu": str(index % 8),
            "UUID": f"GPU-{index:08d}-0000-0000-0000-000000000000",
            "Hostname": f"gpu-node-{index // 8:02d}",
        }

    if name == "AiPlatformGpuXidError":
        return (
            [series("DCGM_FI_DEV_XID_ERRORS", "_x20 43x20", dcgm, err_code="43")],
            [series("DCGM_FI_DEV_XID_ERRORS", "43x40", dcgm, err_code="43")],
            25,
        )
    if name == "AiPlatformGpuFatalXid":
        return (
            [series("DCGM_FI_DEV_XID_ERRORS", "79x10", dcgm, err_code="79")],
            [series("DCGM_FI_DEV_XID_ERRORS", "43x10", dcgm, err_code="43")],
            5,
        )
    if name == "AiPlatformGpuTemperatureHigh":
        limit = _threshold(expr)
        return (
            [series("DCGM_FI_DEV_GPU_TEMP", f"{limit + 5:g}x40", dcgm)],
            [series("DCGM_FI_DEV_GPU_TEMP", f"{limit - 5:g}x40", dcgm)],
            wait + 10,
        )
    if name == "AiPlatformGpuMemoryNearlyFull":
        limit = _threshold(expr)

        def memory(used: float) -> list[dict]:
            return [
                series("DCGM_FI_DEV_FB_USED", f"{used:g}x40", dcgm),
                series("DCGM_FI_DEV_FB_FREE", f"{1000 - used:g}x40", dcgm),
            ]

        return memory(1000 * (1 + limit) / 2), memory(1000 * limit / 2), wait + 10
    if name == "AiPlatformDcgmExporterDown":
        target = ",".join(f'{k}="{v}"' for k, v in sorted(dcgm.target.items()))
        return (
            [{"series": f"up{{{target}}}", "values": "0x40"}],
            [{"series": f"up{{{target}}}", "values": "1x40"}],
            wait + 10,
        )
    if name == "AiPlatformDcgmExporterAbsent":
        target = ",".join(f'{k}="{v}"' for k, v in sorted(dcgm.target.items()))
        return (
            [{"series": 'up{job="kube-state-metrics"}', "values": "1x40"}],
            [{"series": f"up{{{target}}}", "values": "1x40"}],
            wait + 10,
        )
    if name == "AiPlatformGpuLost":
        return (
            [
                series("DCGM_FI_DEV_GPU_TEMP", "50x100", dcgm, **gpu(0)),
                series("DCGM_FI_DEV_GPU_TEMP", "50x70", dcgm, **gpu(1)),
            ],
            [
                series("DCGM_FI_DEV_GPU_TEMP", "50x100", dcgm, **gpu(0)),
                series("DCGM_FI_DEV_GPU_TEMP", "50x100", dcgm, **gpu(1)),
            ],
            100,
        )
    if name == "AiPlatformGpuInventoryShort":
        inventory = int(_threshold(expr))
        span = f"50x{wait + 20}"
        return (
            [series("DCGM_FI_DEV_GPU_TEMP", span, dcgm, **gpu(0))],
            [series("DCGM_FI_DEV_GPU_TEMP", span, dcgm, **gpu(index)) for index in range(inventory)],
            wait + 10,
        )
    if name == "AiPlatformGpuIdle":
        idle_for, limit = minutes(alerts.gpu_idle_for), alerts.gpu_idle_utilization_percent
        span = f"x{idle_for + wait + 30}"
        free = {"pod": None, "namespace": None, "container": None, **gpu(9)}  # a GPU no pod holds: not "idle"
        return (
            [series("DCGM_FI_DEV_GPU_UTIL", f"{limit / 2:g}" + span, dcgm, **held)],
            [
                series("DCGM_FI_DEV_GPU_UTIL", f"{min(100, limit * 2 + 10):g}" + span, dcgm, **held),
                series("DCGM_FI_DEV_GPU_UTIL", "0" + span, dcgm, **free),
            ],
            idle_for + wait + 20,
        )
    raise AssertionError(f"no case for {name}: add one")


# Pipeline alerts on a rate of losses: (fixture, metric, exposed labels that make it fire, that keep it quiet).
PIPELINE_CASES = {
    "AiPlatformLokiTenantRateLimited": ("loki", "loki_discarded_samples_total", "rate_limited", "line_too_long"),
    "AiPlatformLokiDiscardingLogs": ("loki", "loki_discarded_samples_total", "line_too_long", "rate_limited"),
    "AiPlatformLogAgentDropping": ("alloy", "loki_write_dropped_entries_total", None, None),
    "AiPlatformTempoTenantRateLimited": ("tempo", "tempo_discarded_spans_total", "rate_limited", "trace_too_large"),
    "AiPlatformTempoDiscardingSpans": ("tempo", "tempo_discarded_spans_total", "trace_too_large", "rate_limited"),
    "AiPlatformTraceCollectorRefusing": ("otel-collector", "otelcol_receiver_refused_spans", None, None),
    "AiPlatformTraceExportFailing": ("otel-collector", "otelcol_exporter_send_failed_spans", None, None),
    "AiPlatformTraceQueueFull": ("otel-collector", "otelcol_exporter_enqueue_failed_spans", None, None),
}
PIPELINE_DOWN = {
    "AiPlatformLokiDown": "loki",
    "AiPlatformAlloyDown": "alloy",
    "AiPlatformTempoDown": "tempo",
    "AiPlatformOpenTelemetryCollectorDown": "otel-collector",
}


def pipeline_cases(series: Series, rule: dict) -> tuple[list[dict], list[dict], int]:
    """A pipeline component's target down (``up`` 0 / 1), or losses counted (a growing counter, with the reason that
    fires) against a flat one or the other reason."""
    name, wait = rule["alert"], minutes(rule["for"])
    span = f"x{wait + 30}"
    if name in PIPELINE_DOWN:
        job = series.job(PIPELINE_DOWN[name])
        return down_cases(job, span, wait)
    fixture_name, metric, fires, quiet = PIPELINE_CASES[name]
    job = series.job(fixture_name)
    if fires is None:  # every increase counts: growing vs flat
        return [series(metric, "0+10" + span, job)], [series(metric, "5" + span, job)], wait + 20
    return (
        [series(metric, "0+10" + span, job, reason=fires)],
        [series(metric, "0+10" + span, job, reason=quiet)],
        wait + 20,
    )


ROUTING_ALERTS = ("AiPlatformInferencePoolEmpty", "AiPlatformEndpointPickerDown", "AiPlatformEndpointPickerErrors")


def routing_cases(series: Series, rule: dict) -> tuple[list[dict], list[dict], int]:
    """A pool with no ready replica (``inference_pool_ready_pods`` 0 / 2), its picker's target down (``up`` 0 / 1), or
    one request in ten failing against none (``epp.prom``)."""
    name, wait = rule["alert"], minutes(rule["for"])
    span, job = f"x{wait + 30}", series.job("epp", rules.PICKER_JOB)
    if name == "AiPlatformInferencePoolEmpty":
        metric = "inference_pool_ready_pods"
        return [series(metric, "0" + span, job)], [series(metric, "2" + span, job)], wait + 20
    if name == "AiPlatformEndpointPickerDown":
        return down_cases(job, span, wait)
    total, errors = "inference_objective_request_total", "inference_objective_request_error_total"
    return (
        [series(total, "0+100" + span, job), series(errors, "0+10" + span, job)],
        [series(total, "0+100" + span, job), series(errors, "0" + span, job)],
        wait + 20,
    )


RATE_LIMIT_ALERTS = (
    "AiPlatformConsumerRateLimited",
    "AiPlatformEndpointRateLimited",
    "AiPlatformConsumerOverTokenBudget",
    "AiPlatformEndpointOverTokenCeiling",
    "AiPlatformRateLimitServiceDown",
)
# Alert -> (kind, measure) of the limits it watches.
RATE_LIMIT_ALERT_LIMITS = {
    "AiPlatformConsumerRateLimited": ("consumer", "requests"),
    "AiPlatformEndpointRateLimited": ("endpoint", "requests"),
    "AiPlatformConsumerOverTokenBudget": ("consumer", "tokens"),
    "AiPlatformEndpointOverTokenCeiling": ("endpoint", "tokens"),
}


def limited_examples(cfg, measure: str = "requests") -> tuple[tuple[str, object], object]:
    """The first consumer (tenant, consumer) and the first endpoint with a limit of ``measure``."""
    field = f"{measure}_per_minute"
    tenant, consumer = next((t, c) for t in cfg.tenants for c in t.consumers if getattr(c, field))
    return (tenant.name, consumer), next(e for e in cfg.models if e.limits and getattr(e.limits, field))


def rate_limit_cases(cfg, series: Series, rule: dict) -> tuple[list[dict], list[dict], int]:
    """The rate-limit service's target down (``up`` 0 / 1), or a consumer's / a ceiling's requests over the limit (a
    growing ``over_limit``) against a flat counter, on the keys the service's stats carry (``ratelimit.prom``)."""
    name, wait = rule["alert"], minutes(rule["for"])
    span, job = f"x{wait + 30}", series.job("ratelimit", rules.RATE_LIMIT_JOB)
    if name == "AiPlatformRateLimitServiceDown":
        return down_cases(job, span, wait)
    kind, measure = RATE_LIMIT_ALERT_LIMITS[name]
    (tenant, consumer), endpoint = limited_examples(cfg, measure)
    prefix = "" if measure == "requests" else "-tokens"
    if kind == "consumer":
        value = rules.consumer_metric_value(consumer.claim_value)
        keys = {"key1": f"tenant{prefix}_{tenant}", "key2": f"consumer_{value}"}
    else:
        keys = {"key1": f"endpoint{prefix}_{endpoint.tenant}/{endpoint.name}", "key2": None}
    metric = "ratelimit_service_rate_limit_over_limit"
    return [series(metric, "0+10" + span, job, **keys)], [series(metric, "5" + span, job, **keys)], wait + 20


def _rate_limit_labels(cfg, rule: dict) -> dict[str, str]:
    """The labels a firing rate-limit alert must carry: the tenant (routing) and the consumer's declared name or the
    endpoint (what the alert's ``label_replace`` derive from ``key1``/``key2``)."""
    if rule["alert"] not in RATE_LIMIT_ALERT_LIMITS:
        return {}
    kind, measure = RATE_LIMIT_ALERT_LIMITS[rule["alert"]]
    (tenant, consumer), endpoint = limited_examples(cfg, measure)
    if kind == "consumer":
        return {"tenant": tenant, "consumer": consumer.name}
    return {"tenant": endpoint.tenant, "endpoint": endpoint.name}


def alert_cases(cfg, jobs: list[ScrapeJob], alerts: list[tuple[dict, dict]]) -> tuple[list[dict], set[str]]:
    """promtool test cases (one firing, one quiet) for every alert rule, and the alert names covered."""
    series, tests, covered = Series(jobs, fixture), [], set()
    for group, rule in alerts:
        if "endpoint" in rule["labels"]:
            firing, quiet = endpoint_cases(cfg, series, rule)
            at = minutes(rule["for"]) + 10
        else:
            firing, quiet, at = platform_cases(cfg, series, rule)
        label = f"{group['name']}/{rule['alert']}"
        tests += [_case(label, rule, firing, at, True), _case(label, rule, quiet, at, False)]
        if rule["alert"] in RATE_LIMIT_ALERTS and (expected := _rate_limit_labels(cfg, rule)):
            matchers = ",".join(f'{k}="{v}"' for k, v in {"alertname": rule["alert"], **expected}.items())
            check = {"expr": f"count(ALERTS{{{matchers}}}) or vector(0)", "eval_time": f"{at}m"}
            tests[-2]["promql_expr_test"].append({**check, "exp_samples": [{"labels": "{}", "value": 1}]})
        covered.add(rule["alert"])
    return tests, covered


# Tenant organizations


def _series_of_their_namespace(stack: str) -> set[str]:
    """Metrics Prometheus stores with ``namespace`` = the namespace of the pod or object each series describes when
    that is a tenant's: scraped from a target in a tenant namespace, or with the exporter's own ``namespace`` label
    honoured (kube-state-metrics); and recorded series whose rule keeps or sets ``namespace``."""
    tenants = {tenant.name for tenant in stack_cfg(stack).tenants}
    found = set()
    jobs = scrape_jobs(stack)
    for job in jobs:
        for metric, samples in fixture(job.fixture).items():
            if job.target.get("namespace") in tenants or (job.honor_labels and any("namespace" in s for s in samples)):
                found.add(metric)
    # An exporter no job of the stack scrapes (an engine no endpoint uses) would be, as stored_labels has it, by a
    # PodMonitor of the endpoint's: in its tenant's namespace.
    for path in FIXTURES.glob("*.prom"):
        if path.stem not in {job.fixture for job in jobs}:
            found |= set(fixture(path.stem))
    stored, scraped = stored_labels(stack)
    for group in _rule_groups(run_stack(stack)):
        for rule in group["rules"]:
            if "record" in rule:
                stored[rule["record"]] = LabelFlow(stored, scraped).check(rule["expr"]) or set()
                if "namespace" in stored[rule["record"]]:
                    found.add(rule["record"])
    return found


def _tenant_org_queries(stack: str) -> list[tuple[str, str]]:
    """(tenant, PromQL) of every dashboard the access CronJob imports into a tenant's organization (the tenant
    folders' dashboards), variables' queries included."""
    from components.monitoring import grafana_access

    tenants = {tenant.name for tenant in stack_cfg(stack).tenants}
    found = []
    for cm in run_stack(stack).of_kind("ConfigMap"):
        tenant = (cm.inputs["metadata"].get("annotations") or {}).get(grafana_access.FOLDER_ANNOTATION)
        if tenant in tenants and (cm.inputs["metadata"].get("labels") or {}).get("grafana_dashboard"):
            for text in cm.inputs["data"].values():
                board = json.loads(text)
                found += [(tenant, expr) for expr, _ in _queries(board)]
                found += [(tenant, selector) for selector, _ in _label_values(board)]
    return found


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_tenant_org_dashboards_read_only_series_the_label_proxy_lets_through(stack):
    """The tenant organizations' Prometheus is prom-label-proxy, which adds ``namespace="<tenant>"`` to every
    selector (components/monitoring/label_proxy.py): a panel over a series stored with another ``namespace`` (the
    exporter's, e.g. DCGM's or Volcano's) would be empty in the tenant's org."""
    visible = _series_of_their_namespace(stack)
    queries = _tenant_org_queries(stack)
    assert queries or not stack_cfg(stack).tenants
    problems = set()
    for tenant, expr in queries:

        def visit(node, tenant=tenant, expr=expr):
            if isinstance(node, pp.VectorSelector) and node.name not in visible:
                problems.add(f"{tenant}: {node.name} (in {expr[:80]})")

        pp.walk(pp.parse(expr), visit)
    assert not problems, "\n".join(sorted(problems))
