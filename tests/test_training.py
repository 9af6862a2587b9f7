"""Kubeflow Trainer: release and values per stack, the cluster and tenant torch runtimes (Volcano, GPUs, queues,
security), tenant RBAC, dependencies, switching it off."""

import json

import pytest
import yaml

from components import training as component
from components.batch import QUEUE_ANNOTATION
from components.gpu import GPU_TOLERATION, POOL_LABEL, gpu_scheduling
from components.meta import TENANT_LABEL, mirrored
from config import versions
from tests.conftest import config_copy, run, run_with, stack_cfg
from tests.test_tenancy import allows, roles
from tools.validate import upstream_dir

COMPONENT_TYPE = "ai-platform:training:Training"
WRITE = ["create", "update", "patch", "delete"]


def upstream_values(*path: str) -> dict:
    return yaml.safe_load((upstream_dir().joinpath("kubeflow-trainer", *path) / "values.yaml").read_text())


def trainer_release(result):
    found = [r for r in result.releases if r.inputs["name"] == component.RELEASE]
    assert len(found) == 1, f"expected one {component.RELEASE} release, found {len(found)}"
    return found[0]


def volcano_release(result):
    return next(r for r in result.releases if r.inputs["name"] == versions.VOLCANO.name)


def pod_template(runtime) -> dict:
    jobs = runtime.inputs["spec"]["template"]["spec"]["replicatedJobs"]
    assert [job["name"] for job in jobs] == [component.NODE]
    return jobs[0]["template"]["spec"]["template"]


def all_runtimes(result) -> list:
    return [result.one("ClusterTrainingRuntime", component.CLUSTER_RUNTIME), *result.of_kind("TrainingRuntime")]


def queue_names(value) -> set[str]:
    """Every value of the queue annotation anywhere in ``value``."""
    found = set()
    if isinstance(value, dict):
        for key, child in value.items():
            if key == QUEUE_ANNOTATION:
                found.add(child)
            found |= queue_names(child)
    elif isinstance(value, list):
        for child in value:
            found |= queue_names(child)
    return found


@pytest.fixture(scope="module")
def training_off():
    return run_with(training={"enabled": False})


@pytest.fixture(scope="module")
def exclusive_tenant():
    """dev with a second, unshared GPU pool and research exclusive: its runtime must avoid the time-sliced pool."""
    config = config_copy("dev")
    config["ai-platform:gpu"]["nodePools"].append(
        {"name": "a10g", "gpuModel": "A10G", "gpusPerNode": 1, "nodes": ["gpu-a10g-1", "gpu-a10g-2"], "sharing": "none"}
    )
    config["ai-platform:tenants"][0]["gpuIsolation"] = "exclusive"
    result = run("dev", config)
    assert result.error is None, result.error
    return result


# --- release, namespace, values -------------------------------------------------------------------------------------


def test_release_is_the_pinned_oci_chart_in_the_training_namespace(stack_run, cfg):
    chart = versions.KUBEFLOW_TRAINER
    assert chart == ("kubeflow-trainer", "oci://ghcr.io/kubeflow/charts", "2.3.0")
    release = trainer_release(stack_run)
    assert release.inputs["chart"] == f"{chart.repo}/{chart.name}" and "repositoryOpts" not in release.inputs
    assert release.inputs["version"] == chart.version
    assert release.inputs["namespace"] == cfg.namespaces.training
    namespace = stack_run.one("Namespace", cfg.namespaces.training)
    owner = next(r for r in stack_run.resources if r.type == COMPONENT_TYPE)
    assert release.parent == owner.urn and namespace.parent == owner.urn
    assert namespace.urn in release.dependencies


def test_release_waits_for_volcano_so_the_podgroup_watch_starts(stack_run):
    assert volcano_release(stack_run).urn in trainer_release(stack_run).dependencies


def test_namespace_is_restricted_because_the_controllers_comply(stack_run, cfg):
    labels = stack_run.one("Namespace", cfg.namespaces.training).inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    manager = upstream_values()["manager"]["securityContext"]
    assert manager["runAsNonRoot"] is True and manager["allowPrivilegeEscalation"] is False
    assert manager["capabilities"] == {"drop": ["ALL"]} and manager["seccompProfile"] == {"type": "RuntimeDefault"}
    jobset = upstream_values("charts", "jobset")["controller"]
    assert jobset["podSecurityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert jobset["securityContext"]["allowPrivilegeEscalation"] is False
    assert jobset["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert jobset["hostNetwork"] is False
    values = trainer_release(stack_run).inputs["values"]
    # The charts' compliant security contexts stay untouched; only the JobSet controller's replicas are set.
    assert "securityContext" not in values["manager"]
    assert values["jobset"]["controller"] == {"replicas": cfg.training.replicas}


def test_values_install_jobset_and_the_crds_and_set_the_replicas(stack_run, cfg):
    values = trainer_release(stack_run).inputs["values"]
    assert values["jobset"]["install"] is True
    assert values["crds"] == {"enabled": True}
    assert values["manager"] == {"replicas": cfg.training.replicas}
    assert values["dataCache"]["enabled"] is False


def _enabled_switches(tree: dict, path: tuple = ()) -> list[tuple]:
    found = []
    for key, value in tree.items():
        if key in ("enabled", "defaultEnabled"):
            found.append(path + (key,))
        elif isinstance(value, dict):
            found += _enabled_switches(value, path + (key,))
    return found


def test_every_runtime_of_the_chart_is_off_so_its_installer_job_never_runs(stack_run):
    values = trainer_release(stack_run).inputs["values"]
    upstream = upstream_values()
    switches = [("runtimes",) + p for p in _enabled_switches(upstream["runtimes"])]
    switches += [("dataCache", "runtimes") + p for p in _enabled_switches(upstream["dataCache"]["runtimes"])]
    assert len(switches) >= 10
    for path in switches:
        value = values
        for key in path:
            value = value[key]
        assert value is False, ".".join(path)


def test_manager_tag_is_pinned_and_images_follow_the_mirror(stack_run, cfg):
    upstream = upstream_values()
    chart_yaml = yaml.safe_load((upstream_dir() / "kubeflow-trainer" / "Chart.yaml").read_text())
    # The chart leaves tag and appVersion empty and derives "v" + chart version; we pin the same tag explicitly.
    assert upstream["image"]["tag"] == "" and not chart_yaml.get("appVersion")
    assert versions.TRAINER_IMAGE_TAG == f"v{versions.KUBEFLOW_TRAINER.version}"
    assert f"{upstream['image']['registry']}/{upstream['image']['repository']}" == versions.TRAINER_IMAGE
    assert upstream_values("charts", "jobset")["image"]["repository"] == versions.JOBSET_IMAGE
    values = trainer_release(stack_run).inputs["values"]
    assert values["image"]["tag"] == versions.TRAINER_IMAGE_TAG
    registry = cfg.cluster.image_registry
    if registry:
        assert values["image"]["registry"] == registry
        assert values["jobset"]["image"] == {"repository": mirrored(versions.JOBSET_IMAGE, registry)}
        assert f"{registry}/{upstream['image']['repository']}" == mirrored(versions.TRAINER_IMAGE, registry)
    else:
        assert "registry" not in values["image"] and "image" not in values["jobset"]


# --- runtimes -------------------------------------------------------------------------------------------------------


def test_cluster_runtime_is_gang_scheduled_by_volcano_on_gpus(stack_run, cfg):
    runtime = stack_run.one("ClusterTrainingRuntime", component.CLUSTER_RUNTIME)
    spec = runtime.inputs["spec"]
    assert runtime.inputs["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    assert spec["mlPolicy"] == {"numNodes": cfg.training.num_nodes, "torch": {}}
    assert spec["podGroupPolicy"] == {"volcano": {}}
    job = spec["template"]["spec"]["replicatedJobs"][0]
    assert job["template"]["metadata"]["labels"] == {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}
    pod = pod_template(runtime)["spec"]
    assert pod["schedulerName"] == "volcano"
    assert GPU_TOLERATION in pod["tolerations"]
    expected = gpu_scheduling(cfg.gpu, cfg.training.gpu)
    assert pod["affinity"] == expected["affinity"]
    assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    [container] = pod["containers"]
    assert container["name"] == component.NODE
    resources = container["resources"]
    assert resources["requests"] == resources["limits"]
    gpu_resource = cfg.gpu.resource_for(cfg.training.gpu.mig_profile)
    assert resources["limits"] == {
        "cpu": cfg.training.resources.cpu,
        "memory": cfg.training.resources.memory,
        gpu_resource: str(cfg.training.gpu.count),
    }


def test_cluster_runtime_names_no_queue(stack_run):
    runtime = stack_run.one("ClusterTrainingRuntime", component.CLUSTER_RUNTIME)
    assert queue_names(runtime.inputs) == set()
    assert "metadata" not in runtime.inputs["spec"]["template"]


def test_training_pods_pass_restricted_and_skip_the_mesh(stack_run, cfg):
    runtimes = all_runtimes(stack_run)
    assert len(runtimes) == 1 + len(cfg.tenants)
    for runtime in runtimes:
        template = pod_template(runtime)
        assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
        pod = template["spec"]
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }
            # The torch image defines no user for the pod's UID: getpass.getuser() needs USER, caches need HOME.
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["USER"] and env["HOME"] == "/tmp"
        shm = next(v for v in pod["volumes"] if v["emptyDir"].get("medium") == "Memory")
        tmp = next(v for v in pod["volumes"] if v["emptyDir"].get("medium") != "Memory")
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts[shm["name"]] == "/dev/shm" and mounts[tmp["name"]] == "/tmp"


def test_runtimes_use_the_trainers_torch_image_through_the_mirror(stack_run, cfg):
    registry = cfg.cluster.image_registry
    image = mirrored(versions.TORCH_IMAGE, registry) if registry else versions.TORCH_IMAGE
    for runtime in all_runtimes(stack_run):
        assert pod_template(runtime)["spec"]["containers"][0]["image"] == image
    assert versions.TORCH_IMAGE.startswith("pytorch/pytorch:") and "latest" not in versions.TORCH_IMAGE


def test_each_tenant_runtime_carries_its_own_queue_and_no_other(stack_run, cfg):
    runtimes = {r.namespace: r for r in stack_run.of_kind("TrainingRuntime")}
    assert set(runtimes) == {t.name for t in cfg.tenants}
    for tenant in cfg.tenants:
        runtime = runtimes[tenant.name]
        assert runtime.k8s_name == component.TENANT_RUNTIME
        assert runtime.inputs["metadata"]["labels"][TENANT_LABEL] == tenant.name
        assert queue_names(runtime.inputs) == {tenant.name}
        # The Trainer's Volcano plugin reads the queue from the JobSet template's metadata of the runtime.
        assert runtime.inputs["spec"]["template"]["metadata"]["annotations"] == {QUEUE_ANNOTATION: tenant.name}
        assert pod_template(runtime)["metadata"]["annotations"] == {QUEUE_ANNOTATION: tenant.name}
        assert stack_run.one("Queue", tenant.name).inputs["metadata"]["name"] == tenant.name
        spec = runtime.inputs["spec"]
        assert spec["podGroupPolicy"] == {"volcano": {}}
        assert spec["mlPolicy"] == {"numNodes": cfg.training.num_nodes, "torch": {}}


def test_tenant_runtime_placement_follows_gpu_isolation(exclusive_tenant):
    assert [t.name for t in stack_cfg("dev").tenants] == ["research", "product"]  # research made exclusive
    runtimes = {r.namespace: pod_template(r)["spec"] for r in exclusive_tenant.of_kind("TrainingRuntime")}
    terms = {
        tenant: pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        for tenant, pod in runtimes.items()
    }
    unshared = {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": ["a10g"]}]}
    time_sliced = {
        "matchExpressions": [{"key": "cloud.google.com/gke-accelerator", "operator": "In", "values": ["nvidia-l4"]}]
    }
    assert terms["research"] == [unshared]
    assert time_sliced in terms["product"] and unshared in terms["product"]


def test_tenant_runtimes_keep_the_tenants_numbers(stack_run, cfg):
    """requests == limits for every resource, GPUs included, and the GPU count is the configured one."""
    for runtime in stack_run.of_kind("TrainingRuntime"):
        resources = pod_template(runtime)["spec"]["containers"][0]["resources"]
        assert resources["requests"] == resources["limits"]
        gpus = {k: v for k, v in resources["limits"].items() if k.startswith("nvidia.com/")}
        assert gpus == {cfg.gpu.resource_for(cfg.training.gpu.mig_profile): str(cfg.training.gpu.count)}


def test_runtimes_wait_for_the_release_that_installs_their_crds(stack_run, cfg):
    release = trainer_release(stack_run)
    runtimes = all_runtimes(stack_run)
    for runtime in runtimes:
        assert release.urn in runtime.dependencies, runtime.name
    for runtime in stack_run.of_kind("TrainingRuntime"):
        namespace = stack_run.one("Namespace", runtime.namespace)
        assert namespace.urn in runtime.dependencies


# --- tenant RBAC ----------------------------------------------------------------------------------------------------


def test_developers_manage_trainjobs_and_everyone_reads_runtimes_and_jobsets(stack_run, cfg):
    for tenant in cfg.tenants:
        developer, viewer = roles(stack_run, tenant.name)["developer"], roles(stack_run, tenant.name)["viewer"]
        for verb in WRITE + ["get", "list", "watch"]:
            assert allows(developer, "trainer.kubeflow.org", "trainjobs", verb), verb
        assert not any(allows(viewer, "trainer.kubeflow.org", "trainjobs", verb) for verb in WRITE)
        for role in (developer, viewer):
            assert allows(role, "trainer.kubeflow.org", "trainingruntimes", "list")
            assert allows(role, "jobset.x-k8s.io", "jobsets", "get")
            # The runtime binds the tenant's queue: the platform owns it.
            assert not any(allows(role, "trainer.kubeflow.org", "trainingruntimes", verb) for verb in WRITE)
            assert not any(allows(role, "jobset.x-k8s.io", "jobsets", verb) for verb in WRITE)


# --- switched off ---------------------------------------------------------------------------------------------------


def test_training_off_removes_everything_it_owns(training_off):
    cfg = stack_cfg("dev")
    assert cfg.training.enabled is True  # the stack file has it on: the fixture is what switches it off
    assert not [r for r in training_off.releases if r.inputs["name"] == component.RELEASE]
    assert not [n for n in training_off.of_kind("Namespace") if n.k8s_name == cfg.namespaces.training]
    assert not training_off.of_kind("TrainingRuntime") and not training_off.of_kind("ClusterTrainingRuntime")
    assert not [r for r in training_off.resources if r.type == COMPONENT_TYPE]
    rules = json.dumps(
        [role.inputs["rules"] for role in training_off.of_kind("Role") + training_off.of_kind("ClusterRole")]
    )
    assert "trainer.kubeflow.org" not in rules and "jobset.x-k8s.io" not in rules
    assert [r for r in training_off.releases if r.inputs["name"] == versions.VOLCANO.name]
