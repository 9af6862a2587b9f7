"""Right-sized requests (issue 21, part 4): the VPA recommender only, and exactly one VerticalPodAutoscaler in ``Off``
mode for every platform workload: each Deployment/StatefulSet the program declares outside tenant namespaces, each one
the pinned charts create with the values of the releases the stack installs (``config.charts.CHART_WORKLOADS``), and
the model servers of the endpoints that opt in."""

from __future__ import annotations

from collections import Counter

import pytest

from components import vpa
from components.monitoring import rules
from components.serving.engines.base import versions_of
from config import charts, versions
from config.loader import ConfigError
from tests.conftest import accept_loss, config_copy, run, run_stack, run_with, stack_cfg
from tools.harness import Run

Target = tuple[str, str, str]  # (namespace, kind, name)


def expected_targets(result: Run, cfg) -> Counter[Target]:
    """What must have a VPA: the chart workloads of every release and the program's own Deployments/StatefulSets
    (outside tenants), plus the opted-in endpoints' model servers."""
    wanted: Counter[Target] = Counter()
    for release in result.releases:
        chart = release.inputs["chart"].rsplit("/", 1)[-1]
        for workload in charts.chart_workloads(chart, release.inputs["name"], release.inputs.get("values") or {}):
            wanted[(release.inputs["namespace"], workload.kind, workload.name)] += 1
    for kind in ("Deployment", "StatefulSet"):
        for obj in result.of_kind(kind):
            if "ai-platform/tenant" not in obj.inputs["metadata"]["labels"]:
                wanted[(obj.namespace, kind, obj.k8s_name)] += 1
    for endpoint in cfg.models:
        if endpoint.vpa:
            for deployment in rules.endpoint_deployments(endpoint):
                wanted[(endpoint.tenant, "Deployment", deployment)] += 1
    return wanted


def vpa_targets(result: Run) -> Counter[Target]:
    found: Counter[Target] = Counter()
    for obj in result.of_kind("VerticalPodAutoscaler"):
        ref = obj.inputs["spec"]["targetRef"]
        found[(obj.namespace, ref["kind"], ref["name"])] += 1
    return found


def vpa_problems(result: Run, cfg) -> list[str]:
    """Every platform workload without exactly one Off-mode VPA, and every VPA of nothing expected."""
    if not cfg.vpa.enabled:
        return [f"VPA {obj.namespace}/{obj.k8s_name} with vpa off" for obj in result.of_kind("VerticalPodAutoscaler")]
    wanted, found = expected_targets(result, cfg), vpa_targets(result)
    problems = [f"{target}: {found[target]} VPAs" for target in wanted if found[target] != 1]
    problems += [f"{target}: a VPA of nothing the platform installs" for target in found if target not in wanted]
    release = next(r for r in result.releases if r.inputs["chart"] == versions.VPA.name)
    for obj in result.of_kind("VerticalPodAutoscaler"):
        if obj.inputs["spec"]["updatePolicy"] != {"updateMode": "Off"}:
            problems.append(f"VPA {obj.namespace}/{obj.k8s_name}: not in Off mode")
        if release.urn not in obj.dependencies:
            problems.append(f"VPA {obj.namespace}/{obj.k8s_name}: does not wait for the VPA release (its CRD)")
    return problems


@pytest.mark.invariant
def test_every_platform_workload_has_exactly_one_vpa_in_off_mode(stack):
    result, cfg = run_stack(stack), stack_cfg(stack)
    assert not vpa_problems(result, cfg), "\n".join(vpa_problems(result, cfg))
    if cfg.vpa.enabled:
        assert vpa_targets(result)  # not vacuous


def test_the_invariant_fails_when_a_vpa_is_dropped():
    result, cfg = run_stack("dev"), stack_cfg("dev")
    dropped = next(r for r in result.resources if r.kind == "VerticalPodAutoscaler" and r.k8s_name == "mlflow")
    crippled = Run(result.stack, [r for r in result.resources if r is not dropped])
    assert vpa_problems(crippled, cfg) == ["('mlflow', 'Deployment', 'mlflow'): 0 VPAs"]


def test_the_recommender_only_restricted_with_resources(stack_run):
    release = next(r for r in stack_run.releases if r.inputs["chart"] == versions.VPA.name)
    values = release.inputs["values"]
    assert values["updater"] == {"enabled": False} and values["admissionController"] == {"enabled": False}
    assert values["recommender"]["resources"] == vpa.RECOMMENDER_RESOURCES
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    container = values["containerSecurityContext"]
    assert container["allowPrivilegeEscalation"] is False and container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"} and container["readOnlyRootFilesystem"]
    namespace = stack_run.one("Namespace", "vertical-pod-autoscaler")
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # only the recommender runs, under the name the recorded facts give
    names = [w.name for w in charts.chart_workloads(versions.VPA.name, release.inputs["name"], values)]
    assert names == ["vertical-pod-autoscaler-recommender"]


def test_kube_state_metrics_exports_the_recommendations(stack_run):
    values = next(r for r in stack_run.releases if r.inputs["chart"] == "kube-prometheus-stack").inputs["values"]
    ksm = values["kube-state-metrics"]
    assert ksm["customResourceState"]["enabled"] is True
    assert {
        "apiGroups": ["autoscaling.k8s.io"],
        "resources": ["verticalpodautoscalers"],
        "verbs": ["list", "watch"],
    } in (ksm["rbac"]["extraRules"])


def _with_vpa_endpoint(extra: dict | None = None) -> dict:
    config = accept_loss(config_copy("dev"))
    config["ai-platform:models"] = [
        {**model, "vpa": True} if model["name"] == "qwen-chat" else model for model in config["ai-platform:models"]
    ]
    config.update(extra or {})
    return config


def test_an_opted_in_endpoint_gets_a_vpa_per_model_server_and_others_none():
    result = run("dev", _with_vpa_endpoint())
    assert result.error is None, result.error
    cfg = stack_cfg("dev").model_copy(
        update={"models": [m.model_copy(update={"vpa": m.name == "qwen-chat"}) for m in stack_cfg("dev").models]}
    )
    assert not vpa_problems(result, cfg)
    in_tenants = {(t[0], t[2]) for t in vpa_targets(result) if t[0] in {"research", "product"}}
    endpoint = next(m for m in cfg.models if m.name == "qwen-chat")
    assert in_tenants == {("research", name) for name in rules.endpoint_deployments(endpoint)}
    assert len(versions_of(endpoint)) == len(in_tenants)
    vpa_obj = next(o for o in result.of_kind("VerticalPodAutoscaler") if o.namespace == "research")
    assert vpa_obj.inputs["metadata"]["labels"]["ai-platform/tenant"] == "research"


def test_a_canary_gets_its_own_vpa():
    canary = {"source": "hf://Qwen/Qwen2.5-3B-Instruct", "replicas": {"min": 1, "max": 1}}
    config = _with_vpa_endpoint()
    config["ai-platform:models"] = [
        {**m, "canary": canary, "replicas": {"min": 1, "max": 1}} if m["name"] == "qwen-chat" else m
        for m in config["ai-platform:models"]
    ]
    result = run("dev", config)
    assert result.error is None, result.error
    names = {t[2] for t in vpa_targets(result) if t[0] == "research"}
    assert names == {"qwen-chat", "qwen-chat-canary"}


def test_vpa_off_removes_release_vpas_and_their_metrics():
    result = run_with(vpa={"enabled": False})
    assert not result.of_kind("VerticalPodAutoscaler")
    assert not any(r.inputs["chart"] == versions.VPA.name for r in result.releases)
    assert not any(r.kind == "Namespace" and r.k8s_name == "vertical-pod-autoscaler" for r in result.resources)
    ksm = next(r for r in result.releases if r.inputs["chart"] == "kube-prometheus-stack").inputs["values"]
    assert "customResourceState" not in ksm["kube-state-metrics"]
    rule_names = [rule.k8s_name for rule in result.of_kind("PrometheusRule")]
    assert rules.RIGHTSIZING_RULES not in rule_names


def test_an_endpoint_vpa_without_the_recommender_fails_before_registration():
    config = _with_vpa_endpoint({"ai-platform:vpa": {"enabled": False}})
    result = run("dev", config)
    assert isinstance(result.error, ConfigError)
    message = str(result.error)
    assert "stack dev: ai-platform:models[0].vpa" in message and "needs vpa.enabled" in message
    assert not result.registered_beyond_stack


def test_a_chart_without_recorded_workloads_fails_loudly():
    with pytest.raises(KeyError, match="CHART_WORKLOADS"):
        charts.chart_workloads("unknown-chart", "unknown-chart", {})
    with pytest.raises(KeyError, match="recorded for release"):
        charts.chart_workloads("keda", "other-name", {})
