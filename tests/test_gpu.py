"""The GPU layer: operator release and its configs, node patches, the scheduling helper, capacity."""

import pytest
import yaml

from components.gpu import GPU_TAINT, capacity_report, gpu_scheduling
from config import versions
from config.gpu import EndpointGpu, Gpu
from tests.conftest import accept_loss, config_copy, run, run_stack, stack_cfg

GPU_PREFIXES = ("nvidia.com/gpu", "nvidia.com/mig-")


def gpu_release(stack_run):
    (release,) = [r for r in stack_run.releases if r.inputs["chart"] == "gpu-operator"]
    return release


def test_operator_release_is_pinned_in_a_privileged_namespace(stack_run, cfg):
    release = gpu_release(stack_run)
    assert release.inputs["name"] == "gpu-operator"
    assert release.inputs["version"] == versions.GPU_OPERATOR.version
    assert release.inputs["repositoryOpts"] == {"repo": versions.GPU_OPERATOR.repo}
    assert release.inputs["namespace"] == cfg.namespaces.gpu_operator
    labels = stack_run.one("Namespace", cfg.namespaces.gpu_operator).inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    values = release.inputs["values"]
    assert values["driver"]["enabled"] is cfg.gpu.driver.enabled
    assert values["driver"].get("version") == (cfg.gpu.driver.version if cfg.gpu.driver.enabled else None)
    assert values["dcgmExporter"]["enabled"] is True
    assert values["dcgmExporter"]["serviceMonitor"]["enabled"] is cfg.monitoring.enabled  # needs the CRDs


@pytest.mark.invariant
def test_device_plugin_config_is_the_configmap_the_values_name(stack_run, cfg):
    release = gpu_release(stack_run)
    config = release.inputs["values"]["devicePlugin"]["config"]
    configmap = stack_run.one("ConfigMap", config["name"], cfg.namespaces.gpu_operator)
    assert config["create"] is False and config["default"] in configmap.inputs["data"]
    assert configmap.urn in release.dependencies
    named_pools = {p.name for p in cfg.gpu.node_pools if p.nodes}
    assert set(configmap.inputs["data"]) == {config["default"]} | named_pools


def test_dev_time_slices_its_gpus():
    result = run_stack("dev")
    data = result.one("ConfigMap", "device-plugin-config", "gpu-operator").inputs["data"]
    entry = yaml.safe_load(data["default"])
    assert entry["flags"]["migStrategy"] == "none"
    slicing = entry["sharing"]["timeSlicing"]
    assert slicing["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert slicing["failRequestsGreaterThanOne"] is True
    assert gpu_release(result).inputs["values"]["driver"] == {"enabled": False}


def test_prod_mig_layout_reaches_the_mig_manager_and_the_nodes():
    cfg = stack_cfg("prod")
    result = run_stack("prod")
    values = gpu_release(result).inputs["values"]
    assert values["mig"]["strategy"] == "mixed"
    assert values["migManager"]["enabled"] is True
    name = values["migManager"]["config"]["name"]
    mig = yaml.safe_load(result.one("ConfigMap", name, "gpu-operator").inputs["data"]["config.yaml"])
    pool = next(p for p in cfg.gpu.node_pools if p.name == "h100-mig")
    assert mig["mig-configs"]["h100-mig"] == [
        {"devices": "all", "mig-enabled": True, "mig-devices": dict(pool.mig_profiles)}
    ]
    assert mig["mig-configs"][values["migManager"]["config"]["default"]] == [{"devices": "all", "mig-enabled": False}]
    for node in pool.nodes:
        assert result.one("Node", node).inputs["metadata"]["labels"]["nvidia.com/mig.config"] == "h100-mig"
    for node in next(p for p in cfg.gpu.node_pools if p.name == "a100").nodes:
        assert result.one("Node", node).inputs["metadata"]["labels"]["nvidia.com/mig.config"] == "all-disabled"


@pytest.mark.invariant
def test_named_nodes_get_pool_labels_and_the_whole_taint_list(stack_run, cfg):
    patched = {n.k8s_name: n for n in stack_run.of_kind("Node")}
    expected = {node for pool in cfg.gpu.node_pools for node in pool.nodes}
    assert set(patched) == expected
    for pool in cfg.gpu.node_pools:
        for node in pool.nodes:
            meta = patched[node].inputs["metadata"]
            assert patched[node].type == "kubernetes:core/v1:NodePatch"
            assert meta["labels"]["ai-platform/gpu-pool"] == pool.name
            assert meta["labels"]["nvidia.com/device-plugin.config"] == pool.name
            assert pool.labels.items() <= meta["labels"].items()
            assert meta["annotations"] == {
                "pulumi.com/patchForce": "true",
                "pulumi.com/patchFieldManager": "ai-platform-gpu",
            }
            assert patched[node].inputs["spec"]["taints"] == [GPU_TAINT] + [t.model_dump() for t in pool.extra_taints]


def test_gpu_operator_off_keeps_node_taints_but_installs_nothing():
    config = accept_loss(config_copy("prod"))
    config["ai-platform:gpu"]["enabled"] = False
    result = run("prod", config)
    assert result.error is None, result.error
    assert not [r for r in result.releases if r.inputs["chart"] == "gpu-operator"]
    assert not [c for c in result.of_kind("ConfigMap") if c.namespace == "gpu-operator"]
    nodes = result.of_kind("Node")
    assert nodes and all(n.inputs["spec"]["taints"][0] == GPU_TAINT for n in nodes)
    assert all("nvidia.com/device-plugin.config" not in n.inputs["metadata"]["labels"] for n in nodes)


# --- the one scheduling helper -------------------------------------------------------------------------------


def test_whole_gpu_request_selects_unshared_pools_with_requests_equal_limits():
    gpu = stack_cfg("prod").gpu
    spec = gpu_scheduling(gpu, EndpointGpu(count=2))
    assert spec["resources"] == {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "ai-platform/gpu-pool", "operator": "In", "values": ["a100"]}]}]


def test_mig_request_uses_the_profile_resource_and_the_mig_pool():
    spec = gpu_scheduling(stack_cfg("prod").gpu, EndpointGpu(mig_profile="3g.40gb"))
    assert spec["resources"]["limits"] == {"nvidia.com/mig-3g.40gb": "1"}
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["h100-mig"]


def test_selector_pools_are_selected_by_their_labels():
    spec = gpu_scheduling(stack_cfg("dev").gpu, EndpointGpu())
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "cloud.google.com/gke-accelerator", "operator": "In", "values": ["nvidia-l4"]}]}
    ]


def test_exclusive_tenants_and_multi_gpu_requests_never_land_on_time_sliced_gpus():
    gpu = stack_cfg("dev").gpu
    with pytest.raises(ValueError, match="exclusive tenant"):
        gpu_scheduling(gpu, EndpointGpu(), exclusive=True)
    with pytest.raises(ValueError, match="no GPU node pool"):
        gpu_scheduling(gpu, EndpointGpu(count=2))  # failRequestsGreaterThanOne
    with pytest.raises(ValueError, match="on H100-80GB"):
        gpu_scheduling(stack_cfg("prod").gpu, EndpointGpu(model="H100-80GB"))


# --- the platform-wide GPU invariant --------------------------------------------------------------------------

ARGO_POD_FIELDS = ("tolerations", "affinity", "nodeSelector", "securityContext", "volumes", "schedulerName")


def pod_specs(value):
    """Every pod spec inside an object: any mapping with a list of named containers, KServe predictors (their
    ``model`` is the serving container) and Argo templates (their ``container`` or ``script`` is the main
    container; the template carries the pod's scheduling fields)."""
    if isinstance(value, dict):
        if isinstance(value.get("containers"), list) and all("name" in c for c in value["containers"]):
            yield value
        if isinstance(value.get("model"), dict) and "modelFormat" in value["model"]:
            yield {**value, "containers": [{"name": "kserve-container", **value["model"]}]}
        main = value.get("container") or value.get("script")
        if isinstance(main, dict) and "image" in main and "name" in value:
            yield {
                **{k: value[k] for k in ARGO_POD_FIELDS if k in value},
                "containers": [{"name": value["name"], **main}],
            }
        for item in value.values():
            yield from pod_specs(item)
    elif isinstance(value, list):
        for item in value:
            yield from pod_specs(item)


def gpu_pod_problems(spec: dict) -> list[str]:
    """What a pod spec that requests GPUs lacks: toleration, node affinity, requests == limits."""
    problems = []
    wants_gpu = False
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        resources = container.get("resources", {})
        keys = {k for part in ("requests", "limits") for k in resources.get(part, {}) if k.startswith(GPU_PREFIXES)}
        for key in keys:
            wants_gpu = True
            if resources.get("requests", {}).get(key) != resources.get("limits", {}).get(key):
                problems.append(f"{container['name']}: {key} requests != limits")
    if wants_gpu:
        if not any(
            t.get("key") == "nvidia.com/gpu" and t.get("effect") in ("NoSchedule", None)
            for t in spec.get("tolerations", [])
        ):
            problems.append("no nvidia.com/gpu toleration")
        if not spec.get("affinity", {}).get("nodeAffinity") and not spec.get("nodeSelector"):
            problems.append("no GPU node affinity or selector")
    return problems


@pytest.mark.invariant
def test_every_pod_template_requesting_a_gpu_is_tolerated_pinned_and_exact(stack_run, cfg):
    gpu_specs = [
        spec
        for obj in stack_run.objects
        for spec in pod_specs(obj.inputs)
        if any(k.startswith(GPU_PREFIXES) for c in spec["containers"] for k in c.get("resources", {}).get("limits", {}))
    ]
    # Endpoints (and canaries), the cluster and per-tenant training runtimes, each pipeline's train step.
    assert len(gpu_specs) == (
        sum(1 + (m.canary is not None) for m in cfg.models if m.gpu)
        + (1 + len(cfg.tenants) if cfg.training.enabled else 0)
        + (len(cfg.workflows.pipelines) if cfg.workflows.enabled else 0)
    )
    problems = [
        f"{obj.kind} {obj.namespace}/{obj.k8s_name}: {problem}"
        for obj in stack_run.objects
        for spec in pod_specs(obj.inputs)
        for problem in gpu_pod_problems(spec)
    ]
    assert problems == []


def test_the_invariant_check_catches_a_bad_gpu_pod_and_passes_the_helper():
    bad = {
        "containers": [
            {"name": "train", "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}}
        ]
    }
    assert len(gpu_pod_problems(bad)) == 3
    helper = gpu_scheduling(stack_cfg("prod").gpu, EndpointGpu(mig_profile="1g.10gb"))
    good = {
        "containers": [{"name": "serve", "resources": helper["resources"]}],
        "tolerations": helper["tolerations"],
        "affinity": helper["affinity"],
    }
    assert list(pod_specs({"spec": {"template": {"spec": good}}})) == [good]
    assert gpu_pod_problems(good) == []


# --- capacity ----------------------------------------------------------------------------------------------------


def test_capacity_counts_time_slices_and_mig_instances():
    dev = capacity_report(stack_cfg("dev"))
    assert dev["resources"]["nvidia.com/gpu"]["schedulable"] == 2 * 1 * 4
    prod = capacity_report(stack_cfg("prod"))["resources"]
    assert prod["nvidia.com/gpu"]["schedulable"] == 4 * 8
    assert prod["nvidia.com/mig-1g.10gb"]["schedulable"] == 2 * 8 * 2
    assert prod["nvidia.com/mig-3g.40gb"] == {"schedulable": 16, "quota": 8, "headroom": 8}


def test_oversubscription_admits_quotas_beyond_capacity():
    config = config_copy()
    config["ai-platform:tenants"][0]["quota"]["gpu"] = 9
    assert "quotas ask for 10 nvidia.com/gpu" in str(run("dev", config).error)
    config["ai-platform:gpu"]["oversubscription"] = 1.5
    result = run("dev", config)
    assert result.error is None, result.error
    assert (
        result.one("ResourceQuota", "tenant-quota", "research").inputs["spec"]["hard"]["requests.nvidia.com/gpu"] == "9"
    )


def test_mig_single_strategy_advertises_slices_as_gpus():
    gpu = Gpu.model_validate(
        {
            "mig": {"strategy": "single"},
            "nodePools": [
                {
                    "name": "h200",
                    "gpuModel": "H200",
                    "gpusPerNode": 8,
                    "nodes": ["n1"],
                    "sharing": "mig",
                    "migProfiles": {"1g.18gb": 7},
                }
            ],
        }
    )
    assert gpu.capacity() == {"nvidia.com/gpu": 56}
    assert gpu_scheduling(gpu, EndpointGpu(mig_profile="1g.18gb"))["resources"]["limits"] == {"nvidia.com/gpu": "1"}
