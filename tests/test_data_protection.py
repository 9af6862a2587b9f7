"""Data safety: what holds data (or CRDs) is protected under ``dataProtection: strict``, and switching a service
off never removes the CRDs of custom resources the rest of the stack still declares."""

import functools

import pytest

from config import versions
from tests.conftest import BATCH_OFF, accept_loss, config_copy, run
from tests.test_config_errors import rename_tenant
from tools.validate import load_yaml_documents, upstream_dir

# Namespaces that hold data by service (every PVC in a namespace goes when the namespace is deleted).
STATEFUL_NAMESPACES = {
    "objectStore": "object_store",
    "mlflow": "mlflow",
    "milvus": "milvus",
    "monitoring": "monitoring",
    "logs": "logs",
    "traces": "traces",
}
# Releases whose uninstall deletes volumes: the object store, Milvus, Prometheus/Alertmanager/Grafana.
STATEFUL_RELEASES = {
    "objectStore": "seaweedfs",
    "milvus": "milvus",
    "monitoring": "kube-prometheus-stack",
    "logs": "loki",
    "traces": "tempo",
}


@functools.cache
def crd_kinds(chart: str) -> frozenset[tuple[str, str]]:
    """(group, kind) of the CRDs a chart (with its subcharts) installs, from the upstream data."""
    kinds = set()
    for path in (upstream_dir() / chart).glob("**/crds/*.yaml"):
        for doc in load_yaml_documents(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                kinds.add((doc["spec"]["group"], doc["spec"]["names"]["kind"]))
    return frozenset(kinds)


def group_kind(obj) -> tuple[str, str]:
    api_version = obj.inputs["apiVersion"]
    return (api_version.rsplit("/", 1)[0] if "/" in api_version else "", obj.kind)


ALL_CRD_KINDS = frozenset().union(*(crd_kinds(p.name) for p in upstream_dir().iterdir() if p.is_dir()))


def run_config(stack: str, config: dict):
    result = run(stack, config)
    assert result.error is None, result.error
    return result


@pytest.mark.invariant
def test_strict_protects_and_retains_what_holds_data(stack_run, cfg):
    if cfg.data_protection.mode != "strict":
        pytest.skip("relaxed stack: see test_relaxed_protects_nothing")
    protected = {(r.kind or r.type, r.k8s_name or r.inputs.get("name")) for r in stack_run.resources if r.protect}
    assert all(r.retain_on_delete for r in stack_run.resources if r.protect)
    for tenant in cfg.tenants:
        assert ("Namespace", tenant.name) in protected
    for service in cfg.data_owners:
        if service in STATEFUL_NAMESPACES:
            assert ("Namespace", getattr(cfg.namespaces, STATEFUL_NAMESPACES[service])) in protected, service
        if service in STATEFUL_RELEASES:
            assert ("kubernetes:helm.sh/v3:Release", STATEFUL_RELEASES[service]) in protected, service
    if cfg.mlflow.enabled and cfg.mlflow.database.mode == "in-cluster":
        assert ("Cluster", "mlflow-db") in {(k, n) for k, n in protected}
    # Model caches are re-downloadable: not protected.
    assert not [r for r in stack_run.of_kind("PersistentVolumeClaim") if r.protect]


@pytest.mark.invariant
def test_every_release_that_installs_crds_is_protected_under_strict(stack_run, cfg):
    if cfg.data_protection.mode != "strict":
        pytest.skip("relaxed stack")
    unprotected = [
        r.inputs["name"]
        for r in stack_run.releases
        if crd_kinds(r.inputs["chart"].rsplit("/", 1)[-1]) and not r.protect
    ]
    assert unprotected == []


def test_relaxed_protects_nothing():
    config = config_copy("dev")
    config["ai-platform:cluster"]["environment"] = "development"
    config["ai-platform:dataProtection"] = {"mode": "relaxed"}
    result = run_config("dev", config)
    assert not [r.name for r in result.resources if r.protect or r.retain_on_delete]


def test_decommission_lifts_protection_of_that_owner_only():
    config = config_copy("prod")
    config["ai-platform:dataProtection"] = {"mode": "strict", "decommission": ["milvus", "tenant:analytics"]}
    result = run_config("prod", config)
    assert not result.one("Namespace", "milvus").protect
    assert not next(r for r in result.releases if r.inputs["name"] == "milvus").protect
    assert not result.one("Namespace", "analytics").protect
    assert result.one("Namespace", "research").protect
    assert result.one("Namespace", "monitoring").protect


# The CRD release manifests the program applies (ConfigFile), by their upstream folder (SOURCES.md: the same CRDs).
CRD_MANIFESTS = {
    versions.GATEWAY_API_CRDS: "gateway-api-crds",
    versions.INFERENCE_EXTENSION_CRDS: "inference-extension",
}

# What switching a service off means in a stack file (with what depends on it).
SWITCHED_OFF = {
    "serving": {
        "ai-platform:serving": {"enabled": False},
        "ai-platform:inferenceRouting": {"enabled": False},  # at the mesh's gateway
        "ai-platform:models": [],
        "ai-platform:mesh": {"enabled": False},
        "ai-platform:workflows": {"enabled": False},
        "ai-platform:rateLimits": {"enabled": False},  # enforced at the mesh's gateway
    },
    "mesh": {
        "ai-platform:mesh": {"enabled": False},  # canaries need the mesh
        "ai-platform:rateLimits": {"enabled": False},  # enforced at the mesh's gateway
        "ai-platform:inferenceRouting": {"enabled": False},  # at the mesh's gateway
        "ai-platform:models": lambda models: [
            {k: v for k, v in m.items() if k not in ("canary", "traffic")} for m in models
        ],
    },
    "volcano": {"ai-platform:volcano": {"enabled": False}, **BATCH_OFF},
    "monitoring": {"ai-platform:monitoring": {"enabled": False}},
    "gpu": {"ai-platform:gpu": lambda gpu: {**gpu, "enabled": False}},
    "mlflow": {"ai-platform:mlflow": {"enabled": False}, "ai-platform:workflows": {"enabled": False}},
    "training": {"ai-platform:training": {"enabled": False}},
    "workflows": {"ai-platform:workflows": {"enabled": False}},
    "ray": {"ai-platform:ray": {"enabled": False}},
}


@pytest.mark.parametrize("service", sorted(SWITCHED_OFF))
def test_switching_a_service_off_keeps_the_crds_the_rest_still_uses(stack, service):
    config = accept_loss(config_copy(stack))
    for key, value in SWITCHED_OFF[service].items():
        config[key] = value(config[key]) if callable(value) else value
    result = run_config(stack, config)
    provided = frozenset().union(*(crd_kinds(r.inputs["chart"].rsplit("/", 1)[-1]) for r in result.releases))
    manifests = [r.inputs["file"] for r in result.resources if r.type == "kubernetes:yaml/v2:ConfigFile"]
    provided |= frozenset().union(*(crd_kinds(CRD_MANIFESTS[url]) for url in manifests))
    orphans = sorted(
        {
            f"{r.kind} {r.namespace or ''}/{r.k8s_name}"
            for r in result.objects
            if group_kind(r) in ALL_CRD_KINDS and group_kind(r) not in provided
        }
    )
    assert orphans == [], f"with {service} off these objects lose their CRD: {orphans}"


def test_a_decommissioned_service_or_tenant_may_leave_a_strict_stack():
    config = config_copy("prod")
    config["ai-platform:milvus"] = {"enabled": False}
    rename_tenant("analytics", None)(config)
    refused = run("prod", config)
    assert "ai-platform:milvus.enabled: dropping milvus" in str(refused.error)
    assert "ai-platform:tenants: tenant 'analytics' is gone" in str(refused.error)
    assert refused.registered_beyond_stack == []
    config["ai-platform:dataProtection"] = {"mode": "strict", "decommission": ["milvus", "tenant:analytics"]}
    result = run_config("prod", config)
    assert not [n for n in result.of_kind("Namespace") if n.k8s_name in ("milvus", "analytics")]


def test_the_refusal_names_what_would_be_lost():
    config = config_copy("prod")
    rename_tenant("research", "research-eu")(config)
    message = str(run("prod", config).error)
    line = next(line for line in message.splitlines() if "tenant 'research' is gone" in line)
    assert "Namespace research," in line and "decommission" in line and "make snapshot" in line


def test_monitoring_state_lives_on_volumes_that_outlive_the_release(stack_run, cfg):
    values = next(r for r in stack_run.releases if r.inputs["chart"] == "kube-prometheus-stack").inputs["values"]
    retain = {"whenDeleted": "Retain", "whenScaled": "Retain"}
    prometheus = values["prometheus"]["prometheusSpec"]
    alertmanager = values["alertmanager"]["alertmanagerSpec"]
    assert (
        prometheus["persistentVolumeClaimRetentionPolicy"]
        == alertmanager["persistentVolumeClaimRetentionPolicy"]
        == retain
    )
    assert (
        prometheus["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
        == cfg.monitoring.storage.size
    )
    assert alertmanager["storage"]["volumeClaimTemplate"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    grafana = values["grafana"]
    assert grafana["persistence"]["enabled"] is True
    assert grafana["persistence"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert grafana["deploymentStrategy"] == {"type": "Recreate"}  # a ReadWriteOnce volume: one pod at a time
