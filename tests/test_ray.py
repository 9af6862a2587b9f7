"""KubeRay: release and values (Volcano as batch scheduler, replicas, image), namespace, the operator's way into tenant
namespaces, tenant RBAC, dependencies, switching it off. Ray is on in prod; dev runs with it switched on."""

import json

import pytest
import yaml

from components import ray as component
from components.meta import TENANT_LABEL, mirrored
from config import versions
from tests.conftest import config_copy, load, run_stack, run_with, stack_cfg
from tests.test_tenancy import allows, roles
from tools.validate import upstream_dir

COMPONENT_TYPE = "ai-platform:ray:Ray"
WRITE = ["create", "update", "patch", "delete"]
DEV_RAY = {"enabled": True, "replicas": 3}


def upstream_values() -> dict:
    return yaml.safe_load((upstream_dir() / "kuberay-operator" / "values.yaml").read_text())


def ray_release(result):
    found = [r for r in result.releases if r.inputs["name"] == component.RELEASE]
    assert len(found) == 1, f"expected one {component.RELEASE} release, found {len(found)}"
    return found[0]


def config_of(stack: str, **sections):
    """The typed config of a stack file with whole ``ai-platform:<section>`` values replaced."""
    config = config_copy(stack)
    for key, value in sections.items():
        config[f"ai-platform:{key}"] = value
    return load(stack, {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("ai-platform:")})


@pytest.fixture(params=["prod", "dev"], scope="module")
def ray_on(request):
    """(run, config) with Ray on: the prod stack file as it is, dev with Ray switched on (3 replicas)."""
    if request.param == "prod":
        return run_stack("prod"), stack_cfg("prod")
    return run_with("dev", ray=DEV_RAY), config_of("dev", ray=DEV_RAY)


@pytest.fixture(scope="module")
def ray_off():
    return run_with("prod", ray={"enabled": False})


def test_the_stack_files_are_what_these_tests_assume():
    assert stack_cfg("prod").ray.enabled is True and stack_cfg("dev").ray.enabled is False


def test_release_is_the_pinned_chart_in_the_ray_namespace(ray_on):
    result, cfg = ray_on
    chart = versions.KUBERAY_OPERATOR
    assert chart == ("kuberay-operator", "https://ray-project.github.io/kuberay-helm", "1.7.0")
    release = ray_release(result)
    assert (release.inputs["chart"], release.inputs["version"]) == (chart.name, chart.version)
    assert release.inputs["repositoryOpts"] == {"repo": chart.repo}
    assert release.inputs["namespace"] == cfg.namespaces.ray
    namespace = result.one("Namespace", cfg.namespaces.ray)
    owner = next(r for r in result.resources if r.type == COMPONENT_TYPE)
    assert release.parent == owner.urn and namespace.parent == owner.urn
    assert namespace.urn in release.dependencies
    volcano = next(r for r in result.releases if r.inputs["name"] == versions.VOLCANO.name)
    assert volcano.urn in release.dependencies


def test_volcano_is_the_batch_scheduler(ray_on):
    result, cfg = ray_on
    values = ray_release(result).inputs["values"]
    assert cfg.ray.batch_scheduler == "volcano"
    # The chart refuses the legacy `enabled` switch together with `name`: only `name` is set.
    assert values["batchScheduler"] == {"name": "volcano"}
    assert upstream_values()["batchScheduler"] == {"enabled": False, "name": ""}


def test_replicas_follow_the_config(ray_on):
    result, cfg = ray_on
    values = ray_release(result).inputs["values"]
    assert values["replicas"] == cfg.ray.replicas
    assert upstream_values()["leaderElectionEnabled"] is True and "leaderElectionEnabled" not in values


def test_image_tag_is_the_charts_and_the_repository_follows_the_mirror(ray_on):
    result, cfg = ray_on
    upstream = upstream_values()["image"]
    assert upstream["repository"] == versions.KUBERAY_OPERATOR_IMAGE
    assert upstream["tag"] == f"v{versions.KUBERAY_OPERATOR.version}"  # pinned by the chart, not empty
    values = ray_release(result).inputs["values"]
    registry = cfg.cluster.image_registry
    if registry:
        assert values["image"] == {"repository": mirrored(versions.KUBERAY_OPERATOR_IMAGE, registry)}
    else:
        assert "image" not in values


def test_namespace_is_restricted_because_the_operator_complies(ray_on):
    result, cfg = ray_on
    labels = result.one("Namespace", cfg.namespaces.ray).inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    security = upstream_values()["securityContext"]
    assert security["runAsNonRoot"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]} and security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "securityContext" not in ray_release(result).inputs["values"]


def test_the_operator_may_reach_each_tenants_ray_heads_dashboard_and_serve_ports_and_nothing_else(ray_on):
    result, cfg = ray_on
    for tenant in cfg.tenants:
        policy = result.one("NetworkPolicy", component.OPERATOR_INGRESS_POLICY, tenant.name)
        assert policy.inputs["metadata"]["labels"][TENANT_LABEL] == tenant.name
        spec = policy.inputs["spec"]
        assert spec["podSelector"] == {"matchLabels": {"ray.io/node-type": "head"}}
        assert spec["policyTypes"] == ["Ingress"]
        [rule] = spec["ingress"]
        # KubeRay v1.7.0 calls the head's dashboard (8265: job and Serve application status) and, for RayService,
        # its Serve proxy (8000, /-/healthz): utils/util.go, utils/constant.go.
        assert rule["ports"] == [{"protocol": "TCP", "port": 8265}, {"protocol": "TCP", "port": 8000}]
        assert rule["from"] == [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": cfg.namespaces.ray}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": upstream_values()["nameOverride"]}},
            }
        ]
        assert result.one("Namespace", tenant.name).urn in policy.dependencies


def test_ray_pods_accept_plain_text_from_the_operator_and_each_other(ray_on):
    """The operator has no sidecar and Ray's processes call each other by pod IP on ports no Service declares;
    tenant namespaces are STRICT: one workload PeerAuthentication per Ray node type makes Ray pods PERMISSIVE,
    after istiod (Istio's CRDs). Their selectors never overlap."""
    result, cfg = ray_on
    istiod = next(r for r in result.releases if r.inputs["name"] == "istiod")
    for tenant in cfg.tenants:
        selected = []
        for node_type in component.NODE_TYPES:
            policy = result.one("PeerAuthentication", f"ray-{node_type}", tenant.name)
            assert policy.inputs["apiVersion"] == "security.istio.io/v1"
            assert policy.inputs["metadata"]["labels"][TENANT_LABEL] == tenant.name
            assert policy.inputs["spec"] == {
                "selector": {"matchLabels": {"ray.io/node-type": node_type}},
                "mtls": {"mode": "PERMISSIVE"},
            }
            selected.append(policy.inputs["spec"]["selector"]["matchLabels"]["ray.io/node-type"])
            assert istiod.urn in policy.dependencies
            assert result.one("Namespace", tenant.name).urn in policy.dependencies
        assert sorted(selected) == ["head", "worker"]


def test_without_the_mesh_no_peer_authentication():
    result = run_with("dev", ray=DEV_RAY, mesh={"enabled": False})
    assert result.one("NetworkPolicy", component.OPERATOR_INGRESS_POLICY, "research")
    assert not result.of_kind("PeerAuthentication")


def test_developers_manage_ray_objects(ray_on):
    result, cfg = ray_on
    for tenant in cfg.tenants:
        developer, viewer = roles(result, tenant.name)["developer"], roles(result, tenant.name)["viewer"]
        for resource in ("rayclusters", "rayjobs", "rayservices"):
            for verb in WRITE + ["get", "list", "watch"]:
                assert allows(developer, "ray.io", resource, verb), (resource, verb)
            assert allows(viewer, "ray.io", resource, "list")
            assert not any(allows(viewer, "ray.io", resource, verb) for verb in WRITE)
        # RayCronJob's controller is behind an alpha feature gate the chart leaves off.
        assert not allows(developer, "ray.io", "raycronjobs", "create")
    gates = {g["name"]: g["enabled"] for g in upstream_values()["featureGates"]}
    assert gates["RayCronJob"] is False


def test_ray_off_removes_everything_it_owns(ray_off):
    cfg = stack_cfg("prod")
    assert not [r for r in ray_off.releases if r.inputs["name"] == component.RELEASE]
    assert not [n for n in ray_off.of_kind("Namespace") if n.k8s_name == cfg.namespaces.ray]
    assert not [p for p in ray_off.of_kind("NetworkPolicy") if p.k8s_name == component.OPERATOR_INGRESS_POLICY]
    assert not [p for p in ray_off.of_kind("PeerAuthentication") if p.k8s_name.startswith("ray-")]
    assert not [r for r in ray_off.resources if r.type == COMPONENT_TYPE]
    assert "ray.io" not in json.dumps(
        [role.inputs["rules"] for role in ray_off.of_kind("Role") + ray_off.of_kind("ClusterRole")]
    )
    # Training stays: switching one batch service off leaves the others alone.
    assert ray_off.of_kind("TrainingRuntime")
