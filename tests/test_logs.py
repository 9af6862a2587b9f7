"""Logs (issue 21, part 1): Loki in the object store and the Alloy agent that gives every tenant namespace's logs its
tenant id (``components.logs``).

The invariant reads the agent's configuration as the program hands it to the chart (the Alloy release's
``alloy.configMap.content``), applies its relabel rules to every namespace of the stack the way Alloy's
``discovery.relabel`` does (Prometheus relabelling: anchored regex, ``$1`` replacement) and checks the tenant the
``loki.process`` ``stage.tenant`` stage reads: each tenant's namespace -> its tenant, every other -> ``platform``.
"""

from __future__ import annotations

import re

import pytest

from components import logs
from config.loader import ConfigError
from config.logs import PLATFORM_TENANT
from tests.conftest import accept_loss, config_copy, run, run_stack, run_with
from tools.harness import Run

NAMESPACE_META = "__meta_kubernetes_namespace"
# Namespaces that are no tenant's and no platform namespace of the config: Kubernetes' own and a stray one.
OTHER_NAMESPACES = ("kube-system", "kube-public", "default", "some-operator")


def release(result: Run, chart: str):
    found = [r for r in result.releases if r.inputs["chart"].rsplit("/", 1)[-1] == chart]
    return found[0] if found else None


def values(result: Run, chart: str) -> dict:
    found = release(result, chart)
    assert found is not None, f"no {chart} release"
    return found.inputs["values"]


# --- the agent's configuration, read as Alloy reads it ------------------------------------------------------------


def _block(text: str, header: str) -> str:
    """The body of the first block ``header { ... }`` (braces balanced; strings hold none in this config)."""
    start = text.index(header)
    open_at = text.index("{", start)
    depth = 0
    for index in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[open_at + 1 : index]
    raise ValueError(f"unbalanced block {header}")


def _attributes(body: str) -> dict[str, object]:
    """``name = "string"`` and ``name = ["a", "b"]`` attributes of a block body."""
    found: dict[str, object] = {}
    for name, value in re.findall(r'^\s*(\w+)\s*=\s*(\[[^\]]*\]|"(?:[^"\\]|\\.)*")\s*$', body, re.M):
        found[name] = re.findall(r'"((?:[^"\\]|\\.)*)"', value) if value.startswith("[") else value[1:-1]
    return found


def relabel_rules(config: str) -> list[dict[str, object]]:
    """The ``rule`` blocks of ``discovery.relabel "pods"``, in order."""
    body = _block(config, 'discovery.relabel "pods"')
    rules = []
    while "rule" in body:
        rule = _block(body, "rule")
        rules.append(_attributes(rule))
        body = body[body.index(rule) + len(rule) + 1 :]
    return rules


def apply_rules(rules: list[dict[str, object]], labels: dict[str, str]) -> dict[str, str]:
    """Prometheus relabelling (action ``replace``, the only one the config uses): the joined source labels must match
    ``regex`` in full; the target gets ``replacement`` with ``$1`` expanded (defaults ``(.*)`` and ``$1``)."""
    labels = dict(labels)
    for rule in rules:
        assert rule.get("action", "replace") == "replace", rule
        source = ";".join(labels.get(str(name), "") for name in rule.get("source_labels", []))  # type: ignore[union-attr]
        match = re.fullmatch(str(rule.get("regex", "(.*)")), source)
        if match:
            groups = (match.group(0), *match.groups())
            replacement = str(rule.get("replacement", "$1"))
            labels[str(rule["target_label"])] = re.sub(
                r"\$(\d+)", lambda m, g=groups: g[int(m.group(1))] or "", replacement
            )
    return labels


def tenant_of(config: str, namespace: str) -> str:
    """The Loki tenant the agent sends a pod of ``namespace`` as: the label ``stage.tenant`` reads."""
    label = _attributes(_block(_block(config, 'loki.process "tenant"'), "stage.tenant"))["label"]
    return apply_rules(relabel_rules(config), {NAMESPACE_META: namespace})[str(label)]


def mapping_problems(config: str, cfg) -> list[str]:
    """Every namespace whose logs would carry the wrong tenant id."""
    expected = {t.name: t.name for t in cfg.tenants}  # a tenant's namespace is named as the tenant
    expected.update({namespace: PLATFORM_TENANT for _, namespace in cfg.namespaces})
    expected.update({namespace: PLATFORM_TENANT for namespace in OTHER_NAMESPACES})
    # A namespace that merely starts or ends like a tenant's is not that tenant's (anchored regexes).
    expected.update({f"{t.name}-x": PLATFORM_TENANT for t in cfg.tenants if f"{t.name}-x" not in expected})
    expected.update({f"x{t.name}": PLATFORM_TENANT for t in cfg.tenants if f"x{t.name}" not in expected})
    return [
        f"{namespace}: tenant {tenant_of(config, namespace)!r}, expected {want!r}"
        for namespace, want in sorted(expected.items())
        if tenant_of(config, namespace) != want
    ]


@pytest.mark.invariant
def test_every_tenant_namespace_logs_carry_its_tenant_id(stack_run, cfg):
    if not cfg.logs.enabled:
        pytest.skip("logs off")
    config = values(stack_run, "alloy")["alloy"]["configMap"]["content"]
    assert mapping_problems(config, cfg) == []
    write = _attributes(_block(_block(config, 'loki.write "loki"'), "endpoint"))
    assert write["url"] == logs.push_url(cfg.logs, cfg.namespaces.logs)
    assert "forward_to = [loki.process.tenant.receiver]" in _block(config, 'loki.source.kubernetes "pods"')


def test_the_mapping_check_catches_a_broken_mapping():
    """The invariant's reader is not vacuous: a config that forgets a tenant, or maps it to another, fails it."""
    result, cfg = run_stack("dev"), _cfg("dev")
    config = values(result, "alloy")["alloy"]["configMap"]["content"]
    assert mapping_problems(config, cfg) == []
    forgot = config.replace('regex         = "research"', 'regex         = "no-such-namespace"')
    assert mapping_problems(forgot, cfg) == ["research: tenant 'platform', expected 'research'"]
    swapped = config.replace('replacement   = "research"', 'replacement   = "product"')
    assert mapping_problems(swapped, cfg) == ["research: tenant 'product', expected 'research'"]
    unanchored = logs.agent_config({"research": "research"}, "http://x").replace(
        'regex         = "research"', 'regex         = "research.*"'
    )
    assert "research-x: tenant 'research', expected 'platform'" in mapping_problems(unanchored, cfg)


def _cfg(stack: str):
    from tests.conftest import stack_cfg

    return stack_cfg(stack)


# --- storage ----------------------------------------------------------------------------------------------------


def test_in_cluster_loki_keeps_its_data_in_its_bucket_with_keys_from_a_secret():
    result = run_stack("dev")
    loki = values(result, "loki")
    storage = loki["loki"]["storage"]
    assert storage["type"] == "s3"
    assert storage["bucketNames"] == {"chunks": "loki", "ruler": "loki"}
    buckets = [b["name"] for b in values(result, "seaweedfs")["s3"]["createBuckets"]]
    assert "loki" in buckets
    s3 = storage["s3"]
    assert s3["endpoint"] == "seaweedfs-s3.object-store.svc:8333" and s3["insecure"] is True
    # Only references to the environment, which comes from the Secret: no key in a value.
    assert s3["accessKeyId"] == "${AWS_ACCESS_KEY_ID}" and s3["secretAccessKey"] == "${AWS_SECRET_ACCESS_KEY}"
    assert loki["defaults"]["extraEnvFrom"] == [{"secretRef": {"name": logs.S3_SECRET}}]
    result.one("Secret", logs.S3_SECRET, "logging")  # its data are secret Outputs (tests/test_secrets.py: no leak)
    # Schema: tsdb v13 from the first day; retention by the compactor.
    assert loki["loki"]["schemaConfig"]["configs"][0]["store"] == "tsdb"
    assert loki["loki"]["schemaConfig"]["configs"][0]["schema"] == "v13"
    assert loki["loki"]["compactor"]["retention_enabled"] is True
    assert loki["loki"]["structuredConfig"]["limits_config"]["retention_period"] == "7d"
    assert loki["loki"]["auth_enabled"] is True
    assert loki["loki"]["querier"]["multi_tenant_queries_enabled"] is True
    # Loki waits for the store's release.
    store = release(result, "seaweedfs")
    assert store is not None and store.urn in release(result, "loki").dependencies


def test_external_loki_uses_workload_identity_or_the_named_secret():
    result = run_stack("prod")
    loki = values(result, "loki")
    s3 = loki["loki"]["storage"]["s3"]
    assert loki["loki"]["storage"]["bucketNames"]["chunks"] == "example-ai-prod-loki"
    assert "accessKeyId" not in s3 and "endpoint" not in s3 and s3["region"] == "eu-west-1"
    assert "defaults" not in loki
    assert loki["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/ai-platform-prod-storage"
    }
    config = accept_loss(config_copy("prod"))
    config["ai-platform:objectStore"]["credentialsSecret"] = "s3-keys"
    config["ai-platform:objectStore"]["endpoint"] = "https://s3.example.internal:9000"
    keyed = run("prod", config)
    assert keyed.error is None, keyed.error
    loki = values(keyed, "loki")
    assert loki["defaults"]["extraEnvFrom"] == [{"secretRef": {"name": "s3-keys"}}]
    s3 = loki["loki"]["storage"]["s3"]
    assert s3["endpoint"] == "s3.example.internal:9000" and s3["insecure"] is False
    assert s3["accessKeyId"] == "${AWS_ACCESS_KEY_ID}"


# --- sizes and modes --------------------------------------------------------------------------------------------


def test_dev_is_one_small_binary_and_prod_is_scalable():
    dev, prod = values(run_stack("dev"), "loki"), values(run_stack("prod"), "loki")
    assert dev["deploymentMode"] == "Monolithic" and dev["singleBinary"]["replicas"] == 1
    assert all(dev[target]["replicas"] == 0 for target in ("write", "read", "backend"))
    assert dev["loki"]["commonConfig"]["replication_factor"] == 1
    assert prod["deploymentMode"] == "SimpleScalable" and prod["singleBinary"]["replicas"] == 0
    assert all(prod[target]["replicas"] == 3 for target in ("write", "read", "backend"))
    assert prod["loki"]["commonConfig"]["replication_factor"] == 3
    assert dev["chunksCache"]["allocatedMemory"] < prod["chunksCache"]["allocatedMemory"] < 8192
    for off in ("gateway", "lokiCanary", "test"):
        assert dev[off] == {"enabled": False} and prod[off] == {"enabled": False}


def test_the_agent_runs_restricted_without_host_paths():
    result = run_stack("dev")
    alloy = values(result, "alloy")
    assert alloy["controller"]["type"] == "daemonset"
    assert alloy["global"]["podSecurityContext"]["runAsNonRoot"] is True
    assert alloy["alloy"]["securityContext"]["readOnlyRootFilesystem"] is True
    assert alloy["alloy"]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "varlog" not in alloy["alloy"].get("mounts", {})
    assert all("hostPath" not in volume for volume in alloy["controller"]["volumes"]["extra"])
    namespace = result.one("Namespace", "logging")
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_grafana_queries_the_platform_and_every_tenant():
    result = run_stack("dev")
    sources = values(result, "kube-prometheus-stack")["grafana"]["additionalDataSources"]
    (loki,) = [s for s in sources if s["type"] == "loki"]
    assert loki["type"] == "loki" and loki["url"] == "http://loki.logging.svc:3100"
    assert loki["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert loki["secureJsonData"]["httpHeaderValue1"] == "platform|product|research"
    prod = values(run_stack("prod"), "kube-prometheus-stack")["grafana"]["additionalDataSources"][0]
    assert prod["url"] == "http://loki-read.logging.svc:3100"


def test_no_tenant_may_reach_the_logs_namespace():
    result = run_stack("dev")
    policies = {p.k8s_name: p.inputs["spec"] for p in result.of_kind("NetworkPolicy") if p.namespace == "logging"}
    assert set(policies) == {"default-deny-ingress", "allow-same-namespace", "allow-from-monitoring"}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_logs_off_removes_it_all():
    result = run_with(logs={"enabled": False})
    assert release(result, "loki") is None and release(result, "alloy") is None
    assert not [r for r in result.objects if r.namespace == "logging" or r.k8s_name == "logging"]
    assert "loki" not in [b["name"] for b in values(result, "seaweedfs")["s3"]["createBuckets"]]
    sources = values(result, "kube-prometheus-stack")["grafana"].get("additionalDataSources", [])
    assert [s["type"] for s in sources] == ["tempo"] and "tracesToLogsV2" not in sources[0]["jsonData"]
    assert not [r for r in result.resources if "ai-platform:logs:Logs" in r.type]


# --- config errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "edit", "expected"),
    [
        (
            "prod",
            lambda c: c["ai-platform:objectStore"].pop("lokiBucket"),
            "stack prod: ai-platform:objectStore.lokiBucket: an external object store needs the bucket of Loki's logs",
        ),
        (
            "dev",
            lambda c: c["ai-platform:tenants"][0].update(name="platform"),
            "stack dev: ai-platform:tenants[0].name: 'platform' is the Loki tenant of the platform's own logs",
        ),
        ("dev", lambda c: c["ai-platform:logs"].update(retention="36h"), "stack dev: ai-platform:logs.retention"),
        ("dev", lambda c: c["ai-platform:logs"].update(mode="distributed"), "stack dev: ai-platform:logs.mode"),
    ],
    ids=["external store without Loki's bucket", "tenant named platform", "retention in hours", "unknown mode"],
)
def test_bad_logs_config_fails_before_registration(stack, edit, expected):
    config = config_copy(stack)
    edit(config)
    result = run(stack, config)
    assert isinstance(result.error, ConfigError), result.error
    assert expected in str(result.error)
    assert not result.registered_beyond_stack


# --- monitoring the pipeline --------------------------------------------------------------------------------------


def test_loki_and_the_agent_are_scraped_by_the_platforms_prometheus_once_its_crds_exist():
    result = run_stack("dev")
    monitoring = release(result, "kube-prometheus-stack")
    loki, alloy = values(result, "loki"), values(result, "alloy")
    part_of = {"app.kubernetes.io/part-of": "ai-platform"}  # what prometheusSpec.serviceMonitorSelector selects
    # loki-18.11.0 values.yaml monitoring.serviceMonitor.{enabled,labels}; alloy 1.11.1 serviceMonitor.{enabled,
    # additionalLabels} (the schema tier checks the keys exist).
    assert loki["monitoring"]["serviceMonitor"] == {"enabled": True, "labels": part_of}
    assert alloy["serviceMonitor"] == {"enabled": True, "additionalLabels": part_of}
    for chart in ("loki", "alloy"):
        assert monitoring.urn in release(result, chart).dependencies, chart
    without = run_with(monitoring={"enabled": False})
    assert values(without, "loki")["monitoring"]["serviceMonitor"]["enabled"] is False
    assert values(without, "alloy")["serviceMonitor"]["enabled"] is False
