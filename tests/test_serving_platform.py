"""The serving platform: cert-manager, KEDA and KServe releases, their namespaces, order, and switching it off."""

import pytest
import yaml

from components.meta import mirrored
from components.serving.kserve import RESOURCES_IMAGES, RUNTIME_IMAGES
from config import versions
from tests.conftest import config_copy, run, stack_cfg
from tools.validate import upstream_dir

RELEASE = "kubernetes:helm.sh/v3:Release"
SERVING_CHARTS = {"cert-manager", "keda", "kserve-crd", "kserve-resources", "kserve-runtime-configs"}


def release(result, name):
    (found,) = [r for r in result.releases if r.inputs["name"] == name]
    return found


def values_at(values: dict, path: str):
    for key in path.split("."):
        values = values[key]
    return values


def upstream_values(chart: str) -> dict:
    return yaml.safe_load((upstream_dir() / chart / "values.yaml").read_text())


def serving_run(**serving):
    """The dev stack with ``ai-platform:serving`` replaced (no model endpoints and no mesh, which need serving)."""
    config = config_copy("dev")
    config["ai-platform:serving"] = serving
    config["ai-platform:models"] = []
    if serving.get("enabled") is False:
        config["ai-platform:mesh"] = {"enabled": False}
        config["ai-platform:workflows"] = {"enabled": False}
    result = run("dev", config)
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def three_replicas():
    return serving_run(replicas=3)


@pytest.fixture(scope="module")
def one_replica():
    return serving_run(replicas=1)


def test_serving_releases_are_pinned_in_their_namespaces(stack_run, cfg):
    expected = {
        "cert-manager": (versions.CERT_MANAGER, cfg.namespaces.cert_manager),
        "keda": (versions.KEDA, cfg.namespaces.keda),
        "kserve-crd": (versions.KSERVE_CRD, cfg.namespaces.kserve),
        "kserve-resources": (versions.KSERVE_RESOURCES, cfg.namespaces.kserve),
        "kserve-runtime-configs": (versions.KSERVE_RUNTIME_CONFIGS, cfg.namespaces.kserve),
    }
    for name, (chart, namespace) in expected.items():
        inputs = release(stack_run, name).inputs
        assert inputs["version"] == chart.version, name
        assert inputs["namespace"] == namespace, name
        if chart.repo.startswith("oci://"):
            assert inputs["chart"] == f"oci://ghcr.io/kserve/charts/{name}"
            assert "repositoryOpts" not in inputs, name
        else:
            assert inputs["chart"] == name
            assert inputs["repositoryOpts"] == {"repo": chart.repo}


def test_serving_namespaces_enforce_restricted_and_come_first(stack_run, cfg):
    for namespace, names in (
        (cfg.namespaces.cert_manager, ["cert-manager"]),
        (cfg.namespaces.keda, ["keda"]),
        (cfg.namespaces.kserve, ["kserve-crd", "kserve-resources", "kserve-runtime-configs"]),
    ):
        ns = stack_run.one("Namespace", namespace)
        labels = ns.inputs["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", namespace
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == f"v{cfg.cluster.kubernetes_version}"
        assert labels["app.kubernetes.io/managed-by"] == "pulumi"
        for name in names:
            assert ns.urn in release(stack_run, name).dependencies, name


def test_kserve_releases_wait_for_crds_cert_manager_and_the_webhook(stack_run):
    crds, resources, runtimes = (
        release(stack_run, n) for n in ("kserve-crd", "kserve-resources", "kserve-runtime-configs")
    )
    cert_manager, keda = release(stack_run, "cert-manager"), release(stack_run, "keda")
    assert {crds.urn, cert_manager.urn} <= set(resources.dependencies)
    assert {crds.urn, resources.urn} <= set(runtimes.dependencies)
    # Shallow graph: nothing else waits.
    releases = {r.urn for r in stack_run.releases}
    assert not releases & set(crds.dependencies)
    assert not releases & set(cert_manager.dependencies)
    assert not releases & set(keda.dependencies)
    assert cert_manager.urn not in runtimes.dependencies


def test_kserve_runs_standard_mode_without_its_own_ingress(stack_run, cfg):
    controller = release(stack_run, "kserve-resources").inputs["values"]["kserve"]["controller"]
    assert controller["deploymentMode"] == "Standard"
    gateway = controller["gateway"]
    assert gateway["disableIngressCreation"] is True
    assert gateway["disableIstioVirtualHost"] is True
    assert gateway["domain"] == cfg.cluster.domain
    assert gateway["ingressGateway"]["gateway"] == f"{cfg.namespaces.ingress}/ai-platform-gateway"
    assert gateway["ingressGateway"]["createGateway"] is False
    assert gateway["ingressGateway"]["enableGatewayApi"] is False
    kserve = next(r for r in stack_run.resources if r.type == "ai-platform:serving:KServe")
    children = sorted(r.type for r in stack_run.resources if r.parent == kserve.urn)
    assert children == ["kubernetes:core/v1:Namespace", RELEASE, RELEASE, RELEASE]
    routes = [
        r
        for r in stack_run.of_kind("HTTPRoute")
        if r.inputs["metadata"]["labels"]["app.kubernetes.io/component"] != "inference-routing"
    ]
    assert not stack_run.of_kind("Ingress") and not routes  # HTTPRoutes are the platform's inferenceRouting only


def test_storage_initializer_is_restricted_compatible(stack_run):
    security = release(stack_run, "kserve-resources").inputs["values"]["kserve"]["storage"]["containerSecurityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_runtimes_are_installed_with_pinned_llm_images(stack_run):
    runtimes = release(stack_run, "kserve-runtime-configs").inputs["values"]["kserve"]["servingruntime"]
    assert runtimes["enabled"] is True  # the chart renders no ClusterServingRuntime without it
    assert f"vllm/vllm-openai:{runtimes['vllmserver']['tag']}" == versions.VLLM_IMAGE
    assert f"nvcr.io/nvidia/tritonserver:{runtimes['tritonserver']['tag']}" == versions.TRITON_IMAGE
    assert upstream_values("kserve-runtime-configs")["kserve"]["servingruntime"]["vllmserver"]["tag"] == "latest"


def test_cert_manager_installs_and_keeps_its_crds_without_service_monitors(stack_run, cfg):
    values = release(stack_run, "cert-manager").inputs["values"]
    assert values["crds"] == {"enabled": True, "keep": True}
    assert values["prometheus"]["servicemonitor"]["enabled"] is False
    assert values["prometheus"]["podmonitor"]["enabled"] is False
    assert values["global"]["leaderElection"]["namespace"] == cfg.namespaces.cert_manager
    keda = release(stack_run, "keda").inputs["values"]
    assert keda["crds"]["install"] is True
    monitors = [
        keda["prometheus"][part][kind]["enabled"]
        for part in ("metricServer", "operator", "webhooks")
        for kind in ("serviceMonitor", "podMonitor", "prometheusRules")
        if kind in keda["prometheus"][part]
    ]
    assert len(monitors) == 7 and not any(monitors)


def test_replicas_follow_the_serving_config(stack_run, cfg):
    replicas = cfg.serving.replicas
    cert_manager = release(stack_run, "cert-manager").inputs["values"]
    for section in (cert_manager, cert_manager["webhook"], cert_manager["cainjector"]):
        assert section["replicaCount"] == replicas
        assert section["podDisruptionBudget"]["enabled"] is (replicas > 1)
    keda = release(stack_run, "keda").inputs["values"]
    for part in ("operator", "metricsServer", "webhooks"):
        assert keda[part]["replicaCount"] == replicas


def test_three_replicas_get_disruption_budgets(three_replicas):
    cert_manager = release(three_replicas, "cert-manager").inputs["values"]
    assert [
        cert_manager["replicaCount"],
        cert_manager["webhook"]["replicaCount"],
        cert_manager["cainjector"]["replicaCount"],
    ] == [3, 3, 3]
    assert cert_manager["podDisruptionBudget"] == {"enabled": True}
    assert cert_manager["webhook"]["podDisruptionBudget"] == {"enabled": True}
    assert cert_manager["cainjector"]["podDisruptionBudget"] == {"enabled": True}
    keda = release(three_replicas, "keda").inputs["values"]
    assert [keda[p]["replicaCount"] for p in ("operator", "metricsServer", "webhooks")] == [3, 3, 3]
    assert keda["podDisruptionBudget"] == {
        "operator": {"minAvailable": 1},
        "metricServer": {"minAvailable": 1},
        "webhooks": {"minAvailable": 1},
    }


def test_one_replica_gets_no_disruption_budget(one_replica):
    cert_manager = release(one_replica, "cert-manager").inputs["values"]
    assert cert_manager["replicaCount"] == 1
    assert cert_manager["podDisruptionBudget"] == {"enabled": False}
    assert cert_manager["webhook"]["podDisruptionBudget"] == {"enabled": False}
    keda = release(one_replica, "keda").inputs["values"]
    assert keda["operator"]["replicaCount"] == 1
    assert "podDisruptionBudget" not in keda  # a budget of minAvailable 1 on one pod would block every drain


def test_kserve_chart_still_has_no_controller_replica_key():
    """KServe v0.20.0 cannot run more than one controller from values: when a pin adds a key, wire serving.replicas."""
    controller = upstream_values("kserve-resources")["kserve"]["controller"]
    assert not {"replicas", "replicaCount"} & set(controller)


def test_images_follow_the_registry_mirror(stack_run, cfg):
    resources = release(stack_run, "kserve-resources").inputs["values"]
    runtimes = release(stack_run, "kserve-runtime-configs").inputs["values"]
    cert_manager = release(stack_run, "cert-manager").inputs["values"]
    keda = release(stack_run, "keda").inputs["values"]
    mirror = cfg.cluster.image_registry
    if mirror:
        for path, image in RESOURCES_IMAGES.items():
            assert values_at(resources, path) == mirrored(image, mirror)
        for path, image in RUNTIME_IMAGES.items():
            assert values_at(runtimes, path) == mirrored(image, mirror)
        assert cert_manager["imageRegistry"] == mirror
        assert [keda["image"][key]["registry"] for key in ("keda", "metricsApiServer", "webhooks")] == [mirror] * 3
    else:
        assert "image" not in resources["kserve"]["controller"]
        assert set(runtimes["kserve"]["servingruntime"]) == {"enabled", "vllmserver", "tritonserver"}
        assert set(runtimes["kserve"]["servingruntime"]["vllmserver"]) == {"tag"}
        assert "imageRegistry" not in cert_manager
        assert set(keda["image"]) == {"pullPolicy"}


def test_mirrored_replaces_the_registry_host_and_keeps_the_path():
    mirror = "registry.example.com/mirror"
    assert mirrored("kserve/kserve-controller", mirror) == f"{mirror}/kserve/kserve-controller"
    assert mirrored("docker.io/seldonio/mlserver", mirror) == f"{mirror}/seldonio/mlserver"
    assert mirrored("nvcr.io/nvidia/tritonserver", mirror) == f"{mirror}/nvidia/tritonserver"
    assert mirrored("quay.io/brancz/kube-rbac-proxy:v0.18.0", mirror) == f"{mirror}/brancz/kube-rbac-proxy:v0.18.0"
    assert mirrored("localhost:5000/team/image", mirror) == f"{mirror}/team/image"


def test_mirrored_kserve_images_are_the_chart_defaults():
    resources, runtimes = upstream_values("kserve-resources"), upstream_values("kserve-runtime-configs")
    for path, image in RESOURCES_IMAGES.items():
        assert values_at(resources, path) == image, path
    for path, image in RUNTIME_IMAGES.items():
        assert values_at(runtimes, path) == image, path
    # Every image the charts name is mirrored (but the local model cache's, which stays off).
    assert set(image_paths(runtimes)) == set(RUNTIME_IMAGES)
    assert upstream_values("kserve-resources")["kserve"]["localmodel"]["enabled"] is False
    assert {p for p in image_paths(resources) if not p.startswith("kserve.localmodel.")} == set(RESOURCES_IMAGES)


def image_paths(values: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the keys named ``image`` or ``...Image`` in a values tree."""
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            paths += image_paths(value, path + ".")
        elif key == "image" or key.endswith("Image"):
            paths.append(path)
    return paths


def test_serving_off_removes_the_serving_releases_and_namespaces():
    cfg = stack_cfg("dev")
    result = serving_run(enabled=False)
    charts = {r.inputs["chart"].rsplit("/", 1)[-1] for r in result.releases}
    assert not charts & SERVING_CHARTS
    assert {"volcano", "gpu-operator"} <= charts
    namespaces = {r.k8s_name for r in result.of_kind("Namespace")}
    assert not namespaces & {cfg.namespaces.cert_manager, cfg.namespaces.keda, cfg.namespaces.kserve}
    components = {"ai-platform:certs:CertManager", "ai-platform:autoscaling:Keda", "ai-platform:serving:KServe"}
    assert not [r for r in result.resources if r.type in components]
