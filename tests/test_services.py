"""The shared-service registry (``config.services``) drives everything that lists services: what
``dataProtection.decommission`` accepts, the owners the strict removal check keeps, the stack's data owners, which
services tenants may call and on which port, the CloudNativePG operator and the ``services`` output."""

import dataclasses
import json

import pytest
import yaml

from components import objectstore, postgres
from config import ConfigError, services
from config.removals import removal_problems, snapshot_owners
from config.services import SERVICES, Service, protected_services
from tests.conftest import load, run_stack, run_with, stack_cfg, stack_config
from tools.validate import upstream_dir

TOY_TYPE = "ai-platform:featurestore:FeatureStore"
TOY_PARENT = f"urn:pulumi:dev::ai-platform::ai-platform:index:AiPlatform${TOY_TYPE}"
TOY_URNS = [f"{TOY_PARENT}::feature-store", f"{TOY_PARENT}$kubernetes:core/v1:Namespace::feature-store-namespace"]
# Components that are not a service of their own: the platform, its tenants and endpoints, and the GPU component
# (only its release belongs to the service ``gpu``: the component stays for node labels and taints).
NOT_SERVICES = {
    "ai-platform:index:AiPlatform",
    "ai-platform:tenancy:Tenant",
    "ai-platform:serving:ModelEndpoint",
    "ai-platform:mesh:EndpointTraffic",
    "ai-platform:mesh:RateLimits",  # counters only, reset by design: nothing to protect
    "ai-platform:mesh:InferenceGateway",  # routing objects only
    "ai-platform:mesh:EndpointPools",  # the pickers' prefix index is in memory, rebuilt by design
    "ai-platform:gpu:GpuOperator",
}


def raw(stack: str, **sections) -> dict:
    """A stack file's ``ai-platform:*`` keys as ``config.load`` takes them, with whole sections replaced."""
    values = {
        key.split(":", 1)[1]: value for key, value in stack_config(stack).items() if key.startswith("ai-platform:")
    }
    return {**values, **sections}


@pytest.fixture
def toy(monkeypatch) -> Service:
    """A feature store declared in one record, present in every stack (it has no config section of its own)."""
    record = Service("featureStore", (TOY_TYPE,), "featureStore.enabled", present=lambda cfg: True)
    monkeypatch.setitem(SERVICES, record.key, record)
    return record


def test_a_toy_record_is_a_protected_service_a_data_owner_and_a_removal_owner(toy, tmp_path):
    assert "featureStore" in protected_services()
    cfg = load("dev", raw("dev", dataProtection={"mode": "strict", "decommission": ["featureStore"]}))
    assert "featureStore" in cfg.data_owners and not cfg.protects("featureStore")
    strict = load("dev", raw("dev", dataProtection={"mode": "strict"}))
    assert strict.protects("featureStore")
    snapshot = {urn: {} for urn in TOY_URNS}
    snapshot[TOY_URNS[1]] = {"metadata.name": "feature-store"}
    owners = snapshot_owners(list(snapshot))
    assert owners["featureStore"] == ("featureStore.enabled", TOY_URNS)
    # The stack had it and no longer has it: refused, naming its switch and what would be lost.
    (tmp_path / "dev.json").write_text(json.dumps(snapshot))
    SERVICES[toy.key] = dataclasses.replace(toy, present=lambda cfg: False)
    problems = removal_problems("dev", load("dev", raw("dev", dataProtection={"mode": "strict"})), tmp_path)
    assert [path for path, _ in problems] == ["featureStore.enabled"]
    assert "dropping featureStore would delete its 2 resources, among them Namespace feature-store" in problems[0][1]


def test_a_service_the_registry_lacks_fails_loudly():
    cfg = stack_cfg("dev")
    with pytest.raises(KeyError, match="no shared service 'featureStore' in config.services.SERVICES"):
        cfg.protects("featureStore")
    with pytest.raises(ConfigError, match=r"decommission\[0\]: not an allowed value .* got: 'featureStore'"):
        load("dev", raw("dev", dataProtection={"mode": "strict", "decommission": ["featureStore"]}))


def test_every_platform_component_is_a_service_or_known_not_to_be_one():
    """A new component with no record (or a record naming a component that no longer exists) fails here."""
    chains = {urn.split("::")[2] for stack in ("dev", "prod") for urn in (r.urn for r in run_stack(stack).resources)}
    components = {chain.rsplit("$", 1)[-1] for chain in chains if chain.rsplit("$", 1)[-1].startswith("ai-platform:")}
    claimed = {token for record in SERVICES.values() for token in record.components}
    assert components - claimed - NOT_SERVICES == set()
    for token in claimed:
        assert any(f"${token}$" in f"${chain}$" for chain in chains), f"{token}: in no stack's URNs"


@pytest.mark.invariant
def test_tenants_reach_exactly_the_services_whose_records_say_so(stack, stack_run, cfg):
    expected = [(getattr(cfg.namespaces, s.attribute), s.port) for s in SERVICES.values() if s.called_by_tenants(cfg)]
    for tenant in cfg.tenants:
        egress = stack_run.one("NetworkPolicy", "allow-to-shared-services", tenant.name).inputs["spec"]["egress"]
        assert [
            (rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], rule["ports"][0]["port"])
            for rule in egress
        ] == expected
    for namespace, port in expected:
        admitted = stack_run.one("NetworkPolicy", "allow-from-tenants", namespace).inputs["spec"]["ingress"]
        assert admitted[0]["ports"] == [{"protocol": "TCP", "port": port}]


def test_each_tenant_port_is_where_the_service_serves():
    dev = run_stack("dev")
    mlflow = dev.one("Service", "mlflow", "mlflow").inputs["spec"]["ports"]
    assert [p["port"] for p in mlflow] == [services.service("mlflow").port]
    milvus = yaml.safe_load((upstream_dir() / "milvus" / "values.yaml").read_text())["service"]["port"]
    assert milvus == services.service("milvus").port  # the chart's port: we do not set it
    seaweedfs = next(r for r in dev.releases if r.inputs["chart"] == "seaweedfs").inputs["values"]["s3"]["port"]
    assert seaweedfs == objectstore.S3_PORT == services.service("objectStore").port


@pytest.mark.invariant
def test_the_services_output_lists_the_records_that_export_a_url(stack, stack_run, cfg):
    exported = {s.key for s in SERVICES.values() if s.exports_url and s.on(cfg)}
    assert set(stack_run.outputs["services"]) == exported and exported


def test_cloudnative_pg_runs_for_the_services_that_need_it_and_keeps_its_state():
    dev = run_stack("dev")  # MLflow's in-cluster database
    (component,) = [r for r in dev.resources if r.type == postgres.TYPE]
    children = [r for r in dev.resources if r.parent == component.urn]
    assert sorted(r.type for r in children) == ["kubernetes:core/v1:Namespace", "kubernetes:helm.sh/v3:Release"]
    former = {r.name: r.aliases for r in children}
    assert {name: [a["spec"]["name"] for a in aliases] for name, aliases in former.items()} == {
        "cloudnative-pg-namespace": ["mlflow-cnpg-namespace"],
        "cloudnative-pg-release": ["mlflow-cnpg-release"],
    }
    assert all(
        a["spec"]["parentUrn"].endswith("ai-platform:index:AiPlatform$ai-platform:mlflow:Mlflow::mlflow")
        for aliases in former.values()
        for a in aliases
    )
    prod = run_stack("prod")  # an external database: no operator
    assert not [r for r in prod.resources if r.type == postgres.TYPE]
    # Protected while (and only while) one of its users is.
    for decommission, protected in (([], True), (["mlflow"], False)):
        result = run_with("dev", dataProtection={"mode": "strict", "decommission": decommission})
        assert next(r for r in result.releases if r.inputs["name"] == "cloudnative-pg").protect is protected
