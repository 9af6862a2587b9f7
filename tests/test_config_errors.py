"""Bad stack config: each case fails with the stack and config path named, and registers nothing."""

import pytest

from config import ConfigError
from tests.conftest import dev_config
from tools.harness import run


def tenant(config: dict, index: int = 0) -> dict:
    return config["ai-platform:tenants"][index]


def set_path(*keys_and_value):
    """A mutation setting config[key1][key2]... = value."""
    *keys, value = keys_and_value

    def mutate(config: dict) -> None:
        target = config
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return mutate


def delete_path(*keys):
    def mutate(config: dict) -> None:
        target = config
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return mutate


T = "ai-platform:tenants"
C = "ai-platform:cluster"

# (case id, mutation of the dev config, text the error must contain)
CASES = [
    ("unknown top-level key", set_path("ai-platform:tenant", []), "ai-platform:tenant: unknown key (allowed: cluster"),
    ("unknown tenant key", set_path(T, 0, "quotas", {}), "ai-platform:tenants[0].quotas: unknown key (allowed: access"),
    ("unknown quota key", set_path(T, 1, "quota", "gpus", 1), "ai-platform:tenants[1].quota.gpus: unknown key"),
    ("tenants not a list", set_path(T, {"research": {}}), "ai-platform:tenants: input should be a valid list"),
    ("tenant not an object", set_path(T, 1, "product"), "ai-platform:tenants[1]: input should be a valid dictionary"),
    ("gpu quota a string", set_path(T, 0, "quota", "gpu", "two"), "ai-platform:tenants[0].quota.gpu:"),
    ("negative gpu quota", set_path(T, 0, "quota", "gpu", -2), "ai-platform:tenants[0].quota.gpu: must be >= 0"),
    ("fractional gpu quota", set_path(T, 0, "quota", "gpu", 1.5), "ai-platform:tenants[0].quota.gpu: input should be"),
    ("bad cpu quantity", set_path(T, 0, "quota", "cpu", "requests", "8 cores"),
     "ai-platform:tenants[0].quota.cpu.requests: not a Kubernetes quantity"),
    ("negative memory", set_path(T, 0, "quota", "memory", "requests", "-1Gi"),
     "ai-platform:tenants[0].quota.memory.requests: must not be negative"),
    ("bad storage quantity", set_path(T, 1, "quota", "storage", "lots"), "ai-platform:tenants[1].quota.storage:"),
    ("cpu limits below requests", set_path(T, 0, "quota", "cpu", "limits", "4"),
     "ai-platform:tenants[0].quota.cpu.requests: must be <= limits (got 8 > 4)"),
    ("negative load balancers", set_path(T, 0, "quota", "loadBalancers", -1),
     "ai-platform:tenants[0].quota.loadBalancers: must be >= 0"),
    ("bad object count key", set_path(T, 0, "quota", "counts", {"Jobs/Batch!": 3}), 
     'ai-platform:tenants[0].quota.counts["Jobs/Batch!"]: must be a resource name'),
    ("duplicate tenant", set_path(T, 1, "name", "research"),
     "ai-platform:tenants[1].name: duplicate tenant 'research' (also tenants[0])"),
    ("invalid DNS name", set_path(T, 0, "name", "Research_Team"),
     "ai-platform:tenants[0].name: must be a DNS-1123 label"),
    ("name too long", set_path(T, 0, "name", "a" * 64), "ai-platform:tenants[0].name: must be a DNS-1123 label"),
    ("reserved kube namespace", set_path(T, 0, "name", "kube-system"),
     "ai-platform:tenants[0].name: 'kube-system' is reserved"),
    ("reserved platform namespace", set_path(T, 1, "name", "volcano-system"),
     "ai-platform:tenants[1].name: 'volcano-system' is reserved"),
    ("unknown pod security level", set_path(T, 0, "podSecurity", "strict"),
     "ai-platform:tenants[0].podSecurity: not an allowed value (allowed: 'baseline' or 'restricted', got: 'strict')"),
    ("privileged tenant", set_path(T, 0, "podSecurity", "privileged"), "ai-platform:tenants[0].podSecurity:"),
    ("missing quota", delete_path(T, 0, "quota"), "ai-platform:tenants[0].quota: required key is missing"),
    ("missing access", delete_path(T, 1, "access"), "ai-platform:tenants[1].access: required key is missing"),
    ("tenant without admins", set_path(T, 0, "access", "admins", {"groups": []}),
     "ai-platform:tenants[0].access.admins: a tenant needs at least one admin"),
    ("missing cluster", delete_path(C), "ai-platform:cluster: required key is missing"),
    ("unsupported kubernetes version", set_path(C, "kubernetesVersion", "1.20"),
     "ai-platform:cluster.kubernetesVersion: not an allowed value (allowed: '1.25'"),
    ("invalid domain", set_path(C, "domain", "AI.Example.com"), "ai-platform:cluster.domain: must be a DNS-1123 subdomain"),
    ("invalid image registry", set_path(C, "imageRegistry", "https://registry.example.com"),
     "ai-platform:cluster.imageRegistry: must be a registry host"),
    ("queue weight zero", set_path(T, 0, "queue", "weight", 0), "ai-platform:tenants[0].queue.weight: must be >= 1"),
    ("queue reclaimable not a bool", set_path(T, 0, "queue", "reclaimable", "sometimes"),
     "ai-platform:tenants[0].queue.reclaimable:"),
    ("default limit above max", set_path(T, 0, "limitRange", "container", "max", {"cpu": "500m", "memory": "1Gi"}),
     "ai-platform:tenants[0].limitRange.container.default.cpu: must be <= limitRange.container.max.cpu"),
    ("pvc max above storage quota", set_path(T, 1, "limitRange", {"pvc": {"max": "1Ti"}}),
     "ai-platform:tenants[1].limitRange.pvc.max: must be <= quota.storage (got 1Ti > 100Gi)"),
    ("namespace names clash", set_path("ai-platform:namespaces", {"monitoring": "volcano-system"}),
     "ai-platform:namespaces.monitoring: 'volcano-system' is already the volcano namespace"),
    ("volcano replicas zero", set_path("ai-platform:volcano", "replicas", 0),
     "ai-platform:volcano.replicas: must be >= 1"),
    ("volcano resources limits below requests",
     set_path("ai-platform:volcano", "resources", {"scheduler": {"requests": {"cpu": "2", "memory": "1Gi"},
                                                                 "limits": {"cpu": "1", "memory": "1Gi"}}}),
     "ai-platform:volcano.resources.scheduler.requests.cpu: must be <= limits.cpu (got 2 > 1)"),
]


@pytest.mark.parametrize("mutate, expected", [pytest.param(m, e, id=i) for i, m, e in CASES])
def test_bad_config_is_rejected_with_path_and_registers_nothing(mutate, expected):
    config = dev_config()
    mutate(config)
    result = run("dev", config)
    assert isinstance(result.error, ConfigError), result.error
    message = str(result.error)
    assert f"stack dev: {expected}" in message, message
    assert result.registered_beyond_stack == []


def test_every_problem_is_listed_at_once():
    config = dev_config()
    tenant(config, 0)["quota"]["gpu"] = -1
    tenant(config, 1)["podSecurity"] = "strict"
    config[C]["kubernetesVersion"] = "1.99"
    result = run("dev", config)
    message = str(result.error)
    assert "(3 problems)" in message
    for path in ("tenants[0].quota.gpu", "tenants[1].podSecurity", "cluster.kubernetesVersion"):
        assert f"stack dev: ai-platform:{path}:" in message


def test_structured_values_arrive_as_json_strings_like_the_engine_sends_them():
    """The harness passes config exactly as the engine does; the loader decodes it (no silent pass-through)."""
    from tools.harness import _engine_config
    values, secret_keys = _engine_config({"ai-platform:tenants": [{"name": "a"}], "ai-platform:x": True,
                                          "ai-platform:token": {"secure": "AAAA"}})
    assert values["ai-platform:tenants"] == '[{"name": "a"}]'
    assert values["ai-platform:x"] == "true"
    assert secret_keys == ["ai-platform:token"]
