"""The platform as a whole: provider, component tree, Volcano release, switching Volcano off."""

import pytest
import yaml

from config import versions
from tests.conftest import BATCH_OFF, config_copy, run


@pytest.mark.invariant
def test_every_kubernetes_resource_uses_the_stack_provider(stack_run, cfg):
    provider = next(r for r in stack_run.resources if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs.get("context") == cfg.cluster.kube_context
    for resource in stack_run.resources:
        if resource.custom and resource.type.startswith("kubernetes:"):
            assert resource.provider.startswith(provider.urn + "::"), resource.name


@pytest.mark.invariant
def test_every_resource_hangs_below_ai_platform(stack_run):
    root = next(r for r in stack_run.resources if r.type == "ai-platform:index:AiPlatform")
    for resource in stack_run.registered_beyond_stack:
        chain, current = [], resource
        while current.urn != root.urn:
            chain.append(current.name)
            assert current.parent, f"{resource.name} is not below AiPlatform (chain {chain})"
            current = stack_run.by_urn(current.parent)


@pytest.mark.invariant
def test_logical_names_are_unique(stack_run):
    names = [r.name for r in stack_run.registered_beyond_stack]
    assert len(names) == len(set(names))


def test_volcano_release_is_pinned_and_gang_schedules(stack_run, cfg):
    (release,) = [r for r in stack_run.releases if r.inputs["chart"] == "volcano"]
    inputs = release.inputs
    assert inputs["name"] == "volcano"
    assert inputs["version"] == versions.VOLCANO.version
    assert inputs["repositoryOpts"] == {"repo": versions.VOLCANO.repo}
    assert inputs["namespace"] == cfg.namespaces.volcano
    custom = inputs["values"]["custom"]
    scheduler = yaml.safe_load(custom["scheduler_config_override"])
    plugins = [p["name"] for tier in scheduler["tiers"] for p in tier["plugins"]]
    assert {"gang", "proportion", "drf", "predicates"} <= set(plugins)
    assert "reclaim" in scheduler["actions"]
    assert custom["scheduler_replicas"] == cfg.volcano.replicas
    assert custom["leader_elect_enable"] is (cfg.volcano.replicas > 1)
    assert inputs["values"]["basic"]["image_tag_version"] == versions.VOLCANO_IMAGE_TAG
    assert inputs["values"]["basic"].get("image_registry") == cfg.cluster.image_registry
    namespace = stack_run.one("Namespace", cfg.namespaces.volcano)
    assert namespace.urn in release.dependencies


def test_volcano_off_removes_release_and_queues():
    config = config_copy()
    config["ai-platform:volcano"] = {"enabled": False}
    config.update(BATCH_OFF)
    result = run("dev", config)
    assert result.error is None, result.error
    assert not [r for r in result.releases if r.inputs["chart"] == "volcano"]
    assert not result.of_kind("Queue")
    assert len([q for q in result.of_kind("ResourceQuota") if q.namespace in ("research", "product")]) == 2
    assert result.outputs["tenants"]["research"]["queue"] is None


def test_stack_outputs_give_each_shared_service_url(stack_run, cfg):
    expected = {}
    if cfg.mlflow.enabled:
        expected["mlflow"] = f"http://mlflow.{cfg.namespaces.mlflow}.svc:5000"
    if cfg.milvus.enabled:
        expected["milvus"] = f"milvus.{cfg.namespaces.milvus}.svc:19530"
    assert stack_run.outputs["services"] == expected
