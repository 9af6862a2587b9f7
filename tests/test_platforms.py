"""Managed Kubernetes profiles (issue 19): each platform's rules as the program declares them, for any stack file of
the project (``examples/`` holds one per profile dev and prod do not use) and, for behaviour, on the fixtures.

The critical-pod quotas are checked against what the charts deploy, derived here independently of the program's
table where the charts' values say it: any ``priorityClassName`` key naming a system-critical class in the chart's
values.yaml merged with the release's values; classes fixed in templates come from ``config.charts`` (each with its
file at the pinned tag).
"""

from __future__ import annotations

import pytest

import platforms
from config import charts
from config.loader import ConfigError
from platforms import identities
from tests.conftest import STACKS, config_copy, run, run_stack, stack_cfg
from tools import validate
from tools.render import profile_section

C, G, S, M, OS, T, MESH = (
    "ai-platform:cluster",
    "ai-platform:gpu",
    "ai-platform:serving",
    "ai-platform:models",
    "ai-platform:objectStore",
    "ai-platform:tenants",
    "ai-platform:mesh",
)
CRITICAL = set(charts.CRITICAL_CLASSES)


def chart_of(release) -> str:
    return release.inputs["chart"].rsplit("/", 1)[-1]


def critical_classes_in(node: object) -> set[str]:
    """The system-critical classes that any ``...priorityClassName`` key below ``node`` names."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).endswith("priorityClassName") and value in CRITICAL:
                found.add(value)
            found |= critical_classes_in(value)
    elif isinstance(node, list):
        for item in node:
            found |= critical_classes_in(item)
    return found


def runs_critical_pods(release) -> bool:
    """Whether the release's chart runs system-critical pods: named in its values (upstream defaults merged with the
    release's), or fixed in its templates for a part these values turn on."""
    chart = chart_of(release)
    merged = validate.deep_merge(validate._user_values(validate.upstream_dir() / chart), release.inputs["values"] or {})
    if critical_classes_in(merged):
        return True
    fixed = [s for s in charts.CHART_PRIORITY.get(chart, ()) if s.values_path is None]
    return any(not s.enabled_by or charts._lookup(merged, s.enabled_by[0]) for s in fixed)


def critical_quotas(run) -> dict[str, object]:
    """Namespace -> the platform's quota that admits both system-critical classes there."""
    found = {}
    for quota in run.of_kind("ResourceQuota"):
        for expression in (quota.inputs["spec"].get("scopeSelector") or {}).get("matchExpressions", []):
            if expression["scopeName"] == "PriorityClass" and CRITICAL <= set(expression["values"]):
                found[quota.namespace] = quota
    return found


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_critical_pod_quotas_exist_for_exactly_the_namespaces_that_run_critical_pods(stack):
    run = run_stack(stack)
    quotas = critical_quotas(run)
    critical = [r for r in run.releases if runs_critical_pods(r)]
    if not stack_cfg(stack).cluster.profile.critical_pods_need_quota:
        assert quotas == {}
        return
    assert set(quotas) == {r.inputs["namespace"] for r in critical}
    for release in critical:  # its pods are admitted from the first (Volcano's first is a pre-install hook Job)
        assert quotas[release.inputs["namespace"]].urn in release.dependencies, release.name


def test_the_derivation_finds_a_chart_the_program_table_misses(monkeypatch):
    """The values scan above is independent of the program's table: with the GPU Operator dropped from the table, the
    program makes no quota for it and the scan still says its pods are critical."""
    run_stack("dev")  # the fixture's snapshot and cached run, taken with the real table
    monkeypatch.setitem(charts.CHART_PRIORITY, "gpu-operator", ())
    result = run("dev")
    assert result.error is None, result.error
    (operator,) = [r for r in result.releases if chart_of(r) == "gpu-operator"]
    assert runs_critical_pods(operator)
    assert operator.inputs["namespace"] not in critical_quotas(result)


def test_gke_quotas_sit_beside_the_gpu_operator_volcano_and_istio_cni():
    run = run_stack("dev")
    assert set(critical_quotas(run)) == {"gpu-operator", "volcano-system", "istio-cni"}
    quota = critical_quotas(run)["volcano-system"].inputs["spec"]
    assert quota["scopeSelector"]["matchExpressions"][0]["operator"] == "In"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_istio_cni_gets_the_profiles_platform_and_cni_directory(stack):
    profile = stack_cfg(stack).cluster.profile
    cni = [r for r in run_stack(stack).releases if chart_of(r) == "cni"]
    for release in cni:
        values = release.inputs["values"]
        assert (values.get("global") or {}).get("platform") == profile.istio_platform
        assert values.get("cniBinDir") == profile.cni_bin_dir
        assert validate.validate_helm_values("cni", values) == []
    if profile.istio_platform:
        assert profile.istio_platform in validate.ISTIO_PLATFORMS


def test_gke_cni_values_and_an_unknown_istio_platform_is_refused_by_the_schema_tier():
    (cni,) = [r for r in run_stack("dev").releases if chart_of(r) == "cni"]
    assert cni.inputs["values"]["global"]["platform"] == "gke"
    assert cni.inputs["values"]["cniBinDir"] == "/home/kubernetes/bin"
    errors = validate.validate_helm_values("cni", {**cni.inputs["values"], "global": {"platform": "eks"}})
    assert errors == [
        "cni: values.global.platform: 'eks' has no Istio profile (one of gke, k3d, k3s, microk8s, minikube, openshift)"
    ]


def gpu_operator_values(run) -> dict:
    (release,) = [r for r in run.releases if chart_of(r) == "gpu-operator"]
    return release.inputs["values"]


def with_cluster(stack: str = "dev", **changes) -> dict:
    config = config_copy(stack)
    config[C] = {**config[C], **changes}
    return config


def test_gke_drivers_from_googles_installer_use_its_directory_and_cdi():
    values = gpu_operator_values(run_stack("dev"))  # driver.enabled false on GKE 1.35
    assert values["hostPaths"] == {"driverInstallDir": "/home/kubernetes/bin/nvidia"}
    assert values["toolkit"]["installDir"] == "/home/kubernetes/bin/nvidia"
    assert values["cdi"] == {"enabled": True}
    assert values["toolkit"]["env"] == [{"name": "RUNTIME_CONFIG_SOURCE", "value": "file"}]  # GKE 1.33+
    assert validate.validate_helm_values("gpu-operator", values) == []


def test_gke_with_the_operators_driver_keeps_the_charts_paths_and_older_gke_no_toolkit_workaround():
    config = with_cluster(kubernetesVersion="1.32")
    config[G]["driver"] = {"enabled": True}
    result = run("dev", config)
    assert result.error is None, result.error
    values = gpu_operator_values(result)
    assert "hostPaths" not in values and "cdi" not in values
    assert values["toolkit"] == {"enabled": True}


def test_other_platforms_add_nothing_to_the_gpu_operator_paths():
    for stack in ("prod",):
        values = gpu_operator_values(run_stack(stack))
        assert "hostPaths" not in values and "installDir" not in values["toolkit"]
        assert "runtimeClass" not in values.get("operator", {})


# --- config the platform refuses -----------------------------------------------------------------------------


def problems(stack: str, config: dict) -> list[str]:
    result = run(stack, config)
    assert isinstance(result.error, ConfigError), result.error
    assert result.registered_beyond_stack == []  # refused before anything is registered
    return str(result.error).splitlines()[1:]


def test_identity_annotations_of_another_cloud_are_refused_with_their_paths():
    config = with_cluster("prod", platform="gke", networkPolicy="dataplane-v2")
    lines = problems("prod", config)
    expected_paths = [
        "objectStore.serviceAccountAnnotations.eks.amazonaws.com/role-arn",
        "tenants[0].objectStore.serviceAccountAnnotations.eks.amazonaws.com/role-arn",
        "tenants[1].objectStore.serviceAccountAnnotations.eks.amazonaws.com/role-arn",
        "tenants[2].objectStore.serviceAccountAnnotations.eks.amazonaws.com/role-arn",
        "models[2].serviceAccountAnnotations.eks.amazonaws.com/role-arn",
    ]
    for path in expected_paths:
        (line,) = [line for line in lines if f"ai-platform:{path}:" in line]
        assert line.startswith("stack prod: ")
        assert "EKS IAM roles for service accounts (IRSA) does not exist on gke" in line
        assert "iam.gke.io/gcp-service-account (GKE Workload Identity Federation)" in line


def test_a_malformed_identity_value_is_refused_and_generic_accepts_every_cloud():
    config = config_copy("prod")
    config[M][2]["serviceAccountAnnotations"] = {"eks.amazonaws.com/role-arn": "ai-platform-prod-models"}
    (line,) = [line for line in problems("prod", config) if "models[2]" in line]
    assert "must be EKS IAM roles for service accounts (IRSA)'s value, e.g. arn:aws:iam::" in line
    generic = with_cluster("prod", platform="generic")
    generic[M][2]["serviceAccountAnnotations"] = {
        "azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000"
    }
    assert run("prod", generic).error is None


@pytest.mark.parametrize("platform", ["gke", "eks", "aks"])
def test_a_managed_platform_requires_its_network_policy_provider_and_says_how(platform):
    config = with_cluster("prod", platform=platform)
    config[C].pop("networkPolicy")
    profile = platforms.of(platform)
    config[OS] = {"mode": "in-cluster"}
    for tenant in config[T]:
        tenant.pop("objectStore", None)
    config[M] = [m for m in config[M] if "serviceAccountAnnotations" not in m]
    lines = [line for line in problems("prod", config) if "cluster.networkPolicy" in line]
    assert len(lines) == 1 and f"required on {platform}" in lines[0]
    assert all(f"{value} ({how})" in lines[0] for value, how in profile.network_policy_providers.items())
    offered = set(profile.network_policy_providers)
    other = next(p for p in platforms.NETWORK_POLICY_PROVIDERS if p not in offered)
    config[C]["networkPolicy"] = other
    (line,) = [line for line in problems("prod", config) if "cluster.networkPolicy" in line]
    assert f"{other!r} is not offered on {platform}" in line


def test_eks_refuses_a_shared_model_cache_without_a_storage_class():
    config = config_copy("prod")
    config[S] = {k: v for k, v in config[S].items() if k != "storageClass"}
    (line,) = problems("prod", config)
    assert line.startswith("stack prod: ai-platform:models[0].cache.storageClass: llama-70b may run 2 replicas")
    assert "EFS CSI" in line


@pytest.mark.parametrize("platform", ["eks", "aks"])
def test_the_platforms_own_driver_refuses_the_operators_toolkit(platform):
    config = with_cluster("prod", platform=platform, networkPolicy="calico")
    config[G]["driver"] = {"enabled": False}
    config[OS] = {"mode": "in-cluster"}
    for tenant in config[T]:
        tenant.pop("objectStore", None)
    config[M] = [m for m in config[M] if "serviceAccountAnnotations" not in m]
    (line,) = problems("prod", config)
    assert (
        line.startswith("stack prod: ai-platform:gpu.toolkit: with the driver of") and "set gpu.toolkit: false" in line
    )
    config[G]["toolkit"] = False
    result = run("prod", config)
    assert result.error is None, result.error
    operator = gpu_operator_values(result).get("operator", {})
    assert operator.get("runtimeClass") == ("nvidia-container-runtime" if platform == "aks" else None)


# --- AKS and EKS conventions ---------------------------------------------------------------------------------


def test_aks_shared_caches_default_to_azure_files_and_workload_id_labels_the_pods():
    aks = next(s for s in STACKS if s == "aks")
    config = config_copy(aks)
    config[T][0]["quota"]["gpu"] = 3
    config[G]["nodePools"][0]["nodeCount"] = 3
    config[M].append(
        {
            "name": "blob",
            "tenant": "research",
            "engine": "vllm",
            "source": "s3://bucket/model",
            "s3": {"endpoint": "https://s3.example.com"},
            "serviceAccountAnnotations": {"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000"},
            "gpu": {"count": 1},
            "resources": {"cpu": "2", "memory": "8Gi"},
            "cache": {"size": "20Gi"},
        }
    )
    result = run(aks, config)
    assert result.error is None, result.error
    claim = result.one("PersistentVolumeClaim", "qwen-chat-model-cache", "research").inputs["spec"]
    assert claim["accessModes"] == ["ReadWriteMany"] and claim["storageClassName"] == "azurefile-csi"
    single = result.one("PersistentVolumeClaim", "blob-model-cache", "research").inputs["spec"]
    assert single["accessModes"] == ["ReadWriteOnce"] and "storageClassName" not in single
    for kind, name in (("Deployment", "blob"), ("Job", "blob-download")):
        labels = result.one(kind, name, "research").inputs["spec"]["template"]["metadata"]["labels"]
        assert labels["azure.workload.identity/use"] == "true"
    egress = result.one("NetworkPolicy", "blob-model-egress", "research").inputs["spec"]["egress"]
    assert [rule["to"][0]["ipBlock"]["cidr"] for rule in egress] == ["0.0.0.0/0"]


def test_eks_gateway_is_an_nlb_and_managed_control_planes_are_not_scraped():
    prod, generic = run_stack("prod"), run_stack(next(s for s in STACKS if s == "generic"))
    gateway = next(r for r in prod.releases if chart_of(r) == "gateway").inputs["values"]["service"]
    assert gateway["annotations"] == platforms.of("eks").gateway_service_annotations
    assert gateway["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    assert (
        "annotations" not in next(r for r in generic.releases if chart_of(r) == "gateway").inputs["values"]["service"]
    )
    for run_, managed in ((prod, True), (generic, False)):
        values = next(r for r in run_.releases if chart_of(r) == "kube-prometheus-stack").inputs["values"]
        for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd"):
            assert (values.get(component) == {"enabled": False}) is managed


# --- what the user sees -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_the_stack_output_and_plan_list_the_profiles_changes_and_prerequisites(stack):
    cfg = stack_cfg(stack)
    output = run_stack(stack).outputs["platformProfile"]
    assert output == {"platform": cfg.cluster.platform, **cfg.cluster.profile.checklist(cfg)}
    section = "\n".join(profile_section(output))
    assert f"`cluster.platform: {cfg.cluster.platform}`" in section
    assert all(f"- [ ] {step}" in section for step in output["prerequisites"])
    assert all(f"- {change}" in section for change in output["changes"])
    if cfg.cluster.profile.network_policy_providers:
        assert output["prerequisites"][0].startswith(f"NetworkPolicies enforced by {cfg.cluster.network_policy}: ")


def test_each_platform_has_a_test_stack_and_every_rule_a_source():
    platforms_run = {stack_cfg(s).cluster.platform for s in STACKS}
    assert platforms_run == set(platforms.PROFILES)  # dev gke, prod eks, examples aks and generic
    for profile in platforms.PROFILES.values():
        assert profile.rules
        for rule in profile.rules:
            assert rule.requirement and rule.source, rule
    assert {i.annotation for p in platforms.PROFILES.values() for i in p.identities if i.annotation} == {
        i.annotation for i in identities.ALL_IDENTITIES
    }


def test_eks_pod_identity_opens_the_agent_and_names_the_association():
    config = config_copy("prod")
    fraud = config[M][2]
    fraud.pop("serviceAccountAnnotations")
    fraud["podIdentity"] = True
    result = run("prod", config)
    assert result.error is None, result.error
    egress = result.one("NetworkPolicy", "fraud-xgb-model-egress", "analytics").inputs["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]} in egress
    account = result.one("ServiceAccount", "fraud-xgb-model", "analytics").inputs["metadata"]
    assert "eks.amazonaws.com/role-arn" not in account.get("annotations", {})
    steps = result.outputs["platformProfile"]["prerequisites"]
    assert any("--namespace analytics --service-account fraud-xgb-model" in step for step in steps)
    assert any(step.startswith("Install the eks-pod-identity-agent add-on") for step in steps)
    fraud["serviceAccountAnnotations"] = {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/r"}
    (line,) = problems("prod", config)
    assert line.endswith("models[2].podIdentity: one workload identity: Pod Identity or serviceAccountAnnotations")


def test_pod_identity_is_refused_off_eks():
    config = config_copy("dev")
    config[M][1]["podIdentity"] = True
    (line,) = problems("dev", config)
    assert line.startswith("stack dev: ai-platform:models[1].podIdentity: EKS Pod Identity exists only on eks, not gke")


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_no_platform_namespace_is_one_akss_admissions_enforcer_skips(stack):
    """AKS's enforcer keeps webhooks (sidecar injection, Volcano, KServe) off namespaces labelled so: none is."""
    for namespace in run_stack(stack).of_kind("Namespace"):
        labels = namespace.inputs["metadata"].get("labels", {})
        assert "control-plane" not in labels and "kubernetes.azure.com/managedby" not in labels
