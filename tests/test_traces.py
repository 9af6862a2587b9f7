"""Traces (issue 21, part 2): Tempo in the object store and the OpenTelemetry Collector that gives every tenant
namespace's spans its tenant id (``components.traces``); the mesh's proxies, vLLM and Triton sending to it.

The invariant reads the collector's configuration as the program hands it to the chart (the release's
``alternateConfig``) the way the collector runs it: the entry pipeline must drop whatever namespace the sender claims
before ``k8sattributes`` sets it from the connection; the routing connector's table (OTTL ``route() where
attributes["k8s.namespace.name"] == "<ns>"``, resource context) picks a pipeline, else its default pipelines; the
pipeline's exporter sends ``X-Scope-OrgID``. Each tenant's namespace -> its tenant, every other -> ``platform``.
"""

from __future__ import annotations

import copy
import re

import pytest

from components import traces
from components.mesh import control_plane
from components.serving.engines.base import ENDPOINT_LABEL
from config.loader import ConfigError
from config.logs import PLATFORM_TENANT
from tests.conftest import config_copy, run, run_stack, run_with
from tools.harness import Run

# Namespaces that are no tenant's and no platform namespace of the config: Kubernetes' own and a stray one.
OTHER_NAMESPACES = ("kube-system", "kube-public", "default", "some-operator")
ROUTE = re.compile(r'^route\(\) where attributes\["([^"]+)"\] == "([^"]*)"$')


def release(result: Run, chart: str):
    found = [r for r in result.releases if r.inputs["chart"].rsplit("/", 1)[-1] == chart]
    return found[0] if found else None


def values(result: Run, chart: str) -> dict:
    found = release(result, chart)
    assert found is not None, f"no {chart} release"
    return found.inputs["values"]


def collector_config(result: Run) -> dict:
    return values(result, "opentelemetry-collector")["alternateConfig"]


# --- the collector's configuration, read as the collector runs it --------------------------------------------------


def tenant_of(config: dict, namespace: str) -> str | None:
    """The Tempo tenant of a span from a pod of ``namespace``; None when the namespace is not derived from the pod
    (the entry pipeline must delete the sender's claim, then run k8sattributes by connection)."""
    entry = config["service"]["pipelines"]["traces"]
    processors = entry["processors"]
    if "k8sattributes" not in processors or "resource/untrusted" not in processors:
        return None
    if processors.index("resource/untrusted") > processors.index("k8sattributes"):
        return None
    deleted = {a["key"] for a in config["processors"]["resource/untrusted"]["attributes"] if a["action"] == "delete"}
    k8s = config["processors"]["k8sattributes"]
    if (
        "k8s.namespace.name" not in deleted
        or k8s["pod_association"] != [{"sources": [{"from": "connection"}]}]
        or "k8s.namespace.name" not in k8s["extract"]["metadata"]
    ):
        return None
    (connector,) = entry["exporters"]
    routing = config["connectors"][connector]
    pipelines = routing["default_pipelines"]
    for route in routing["table"]:
        match = ROUTE.match(route["statement"])
        assert match, route
        attribute, value = match.groups()
        if attribute == "k8s.namespace.name" and value == namespace:
            pipelines = route["pipelines"]
            break
    (pipeline,) = pipelines
    assert connector in config["service"]["pipelines"][pipeline]["receivers"]
    (exporter,) = config["service"]["pipelines"][pipeline]["exporters"]
    return config["exporters"][exporter]["headers"]["X-Scope-OrgID"]


def mapping_problems(config: dict, cfg) -> list[str]:
    """Every namespace whose spans would carry the wrong tenant id."""
    expected = {t.name: t.name for t in cfg.tenants}  # a tenant's namespace is named as the tenant
    expected.update({namespace: PLATFORM_TENANT for _, namespace in cfg.namespaces})
    expected.update({namespace: PLATFORM_TENANT for namespace in OTHER_NAMESPACES})
    expected.update({f"{t.name}-x": PLATFORM_TENANT for t in cfg.tenants if f"{t.name}-x" not in expected})
    return [
        f"{namespace}: tenant {tenant_of(config, namespace)!r}, expected {want!r}"
        for namespace, want in sorted(expected.items())
        if tenant_of(config, namespace) != want
    ]


@pytest.mark.invariant
def test_every_tenant_namespace_traces_carry_its_tenant_id(stack_run, cfg):
    if not cfg.traces.enabled:
        pytest.skip("traces off")
    config = collector_config(stack_run)
    assert mapping_problems(config, cfg) == []
    tempo = f"tempo.{cfg.namespaces.traces}.svc:4317"
    assert {e["endpoint"] for e in config["exporters"].values()} == {tempo}
    assert values(stack_run, "tempo")["tempo"]["multitenancyEnabled"] is True


def test_the_mapping_check_catches_a_broken_mapping():
    """The invariant's reader is not vacuous: a table that forgets a tenant, maps it to another, or trusts the
    sender's namespace fails it."""
    result, cfg = run_stack("dev"), _cfg("dev")
    config = collector_config(result)
    assert mapping_problems(config, cfg) == []
    forgot = copy.deepcopy(config)
    forgot["connectors"]["routing"]["table"] = [
        r for r in forgot["connectors"]["routing"]["table"] if '"research"' not in r["statement"]
    ]
    assert mapping_problems(forgot, cfg) == ["research: tenant 'platform', expected 'research'"]
    swapped = copy.deepcopy(config)
    swapped["exporters"]["otlp/research"]["headers"]["X-Scope-OrgID"] = "product"
    assert mapping_problems(swapped, cfg) == ["research: tenant 'product', expected 'research'"]
    trusting = copy.deepcopy(config)
    trusting["service"]["pipelines"]["traces"]["processors"].remove("resource/untrusted")
    assert "research: tenant None, expected 'research'" in mapping_problems(trusting, cfg)


def _cfg(stack: str):
    from tests.conftest import stack_cfg

    return stack_cfg(stack)


# --- senders ------------------------------------------------------------------------------------------------------


def _containers(result: Run, namespace: str) -> list[dict]:
    return [
        c
        for d in result.of_kind("Deployment")
        if d.namespace == namespace
        for c in d.inputs["spec"]["template"]["spec"]["containers"]
    ]


@pytest.mark.invariant
def test_vllm_and_triton_servers_send_their_spans_to_the_collector(stack_run, cfg):
    if not cfg.traces.enabled:
        pytest.skip("traces off")
    collector = f"opentelemetry-collector.{cfg.namespaces.traces}.svc.cluster.local"
    vllm_endpoints = {m.name for m in cfg.models if m.engine == "vllm"}
    traced = set()
    for endpoint in cfg.models:
        for name, container in _servers(stack_run, endpoint.tenant):
            args = container.get("args", [])
            if container["name"] == "vllm":
                assert_vllm_traced(container, name, f"http://{collector}:4317", cfg.traces.sampling_percent)
                traced.add(name)
            if container["name"] == "triton":
                assert "--trace-config=mode=opentelemetry" in args
                assert f"--trace-config=opentelemetry,url=http://{collector}:4318/v1/traces" in args
    assert traced == vllm_endpoints


@pytest.mark.invariant
def test_istio_proxies_send_their_spans_to_the_collector(stack_run, cfg):
    if not (cfg.traces.enabled and cfg.mesh.enabled):
        pytest.skip("traces or mesh off")
    mesh_config = values(stack_run, "istiod")["meshConfig"]
    (provider,) = mesh_config["extensionProviders"]
    assert provider == {
        "name": control_plane.TRACING_PROVIDER,
        "opentelemetry": {
            "service": f"opentelemetry-collector.{cfg.namespaces.traces}.svc.cluster.local",
            "port": 4317,
        },
    }
    telemetry = stack_run.one("Telemetry", control_plane.TELEMETRY, cfg.namespaces.mesh)
    assert telemetry.inputs["apiVersion"] == "telemetry.istio.io/v1"
    (tracing,) = telemetry.inputs["spec"]["tracing"]
    assert tracing["providers"] == [{"name": control_plane.TRACING_PROVIDER}]
    assert tracing["randomSamplingPercentage"] == cfg.traces.sampling_percent


def test_the_sampling_percent_reaches_the_mesh_and_the_servers():
    result = run_with(traces={"samplingPercent": 10, "size": "small", "collectorReplicas": 1})
    (tracing,) = result.one("Telemetry", control_plane.TELEMETRY, "istio-system").inputs["spec"]["tracing"]
    assert tracing["randomSamplingPercentage"] == 10
    triton = [c for c in _containers(result, "product") if c["name"] == "triton"]
    assert all("--trace-config=rate=10" in c["args"] for c in triton)
    vllm = [(name, c) for name, c in _servers(result, "research") if c["name"] == "vllm"]
    assert vllm, "dev serves a vLLM endpoint in research"
    collector = f"http://opentelemetry-collector.{_cfg('dev').namespaces.traces}.svc.cluster.local:4317"
    for name, container in vllm:
        assert_vllm_traced(container, name, collector, 10)


def test_vllm_sends_nothing_at_zero_percent():
    """0%: no flag and no variable (vLLM would still export every request without a trace context), like Triton."""
    result = run_with(traces={"samplingPercent": 0, "size": "small", "collectorReplicas": 1})
    servers = _containers(result, "research")
    assert "vllm" in [c["name"] for c in servers]
    for container in servers:
        assert "--otlp-traces-endpoint" not in container["args"]
        assert not [e for e in container["env"] if e["name"].startswith("OTEL_")]


def _servers(result: Run, namespace: str) -> list[tuple[str, dict]]:
    """(endpoint name, container) of every Deployment's server container in ``namespace``."""
    return [
        (d.inputs["metadata"]["labels"][ENDPOINT_LABEL], c)
        for d in result.of_kind("Deployment")
        if d.namespace == namespace and ENDPOINT_LABEL in d.inputs["metadata"].get("labels", {})
        for c in d.inputs["spec"]["template"]["spec"]["containers"]
    ]


def assert_vllm_traced(container: dict, endpoint: str, collector_grpc: str, sampling_percent: float) -> None:
    """A vLLM container that sends one span per request to the platform's collector over OTLP gRPC (vLLM v0.33.0
    vllm/tracing/otel.py get_span_exporter: the protocol from OTEL_EXPORTER_OTLP_TRACES_PROTOCOL; the SDK reads the
    sampler and service name from the environment), vLLM's own environment kept."""
    args, env = container["args"], {e["name"]: e.get("value") for e in container["env"]}
    assert len(env) == len(container["env"]), "a variable set twice"
    assert args.count("--otlp-traces-endpoint") == 1
    assert args[args.index("--otlp-traces-endpoint") + 1] == collector_grpc
    assert "--collect-detailed-traces" not in args  # costly per request (vllm/config/observability.py): not set
    assert env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "grpc"
    assert env["OTEL_SERVICE_NAME"] == endpoint
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert float(env["OTEL_TRACES_SAMPLER_ARG"]) == pytest.approx(sampling_percent / 100)
    # The server's own variables stay (caches on /tmp, offline hub): tracing only adds to them.
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CACHE_ROOT"] == "/tmp/vllm" and "HOME" in env


# --- reachability, storage, Grafana -------------------------------------------------------------------------------


def test_tenants_reach_the_collector_on_otlp_ports_only():
    result = run_stack("dev")
    policies = {p.k8s_name: p.inputs["spec"] for p in result.of_kind("NetworkPolicy") if p.namespace == "tracing"}
    assert set(policies) == {"default-deny-ingress", "allow-same-namespace", "allow-from-monitoring", "allow-otlp"}
    otlp = policies["allow-otlp"]
    assert otlp["podSelector"] == {"matchLabels": traces.COLLECTOR_POD_LABELS}
    (rule,) = otlp["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 4317}, {"protocol": "TCP", "port": 4318}]
    egress = next(
        p.inputs["spec"]
        for p in result.of_kind("NetworkPolicy")
        if p.namespace == "research" and p.k8s_name == "allow-to-trace-collector"
    )
    (rule,) = egress["egress"]
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tracing"}},
            "podSelector": {"matchLabels": traces.COLLECTOR_POD_LABELS},
        }
    ]
    assert [p["port"] for p in rule["ports"]] == [4317, 4318]


def test_tempo_keeps_its_blocks_in_its_bucket_with_keys_from_a_secret():
    result = run_stack("dev")
    tempo = values(result, "tempo")["tempo"]
    s3 = tempo["storage"]["trace"]["s3"]
    assert tempo["storage"]["trace"]["backend"] == "s3"
    assert s3["bucket"] == "tempo" and s3["endpoint"] == "seaweedfs-s3.object-store.svc:8333" and s3["insecure"]
    assert s3["access_key"] == "${AWS_ACCESS_KEY_ID}" and s3["secret_key"] == "${AWS_SECRET_ACCESS_KEY}"
    assert tempo["extraEnvFrom"] == [{"secretRef": {"name": traces.S3_SECRET}}]
    assert tempo["extraArgs"] == {"config.expand-env": "true"}
    assert tempo["retention"] == "72h"
    assert "tempo" in [b["name"] for b in values(result, "seaweedfs")["s3"]["createBuckets"]]
    prod = values(run_stack("prod"), "tempo")
    assert prod["tempo"]["storage"]["trace"]["s3"]["bucket"] == "example-ai-prod-tempo"
    assert "extraEnvFrom" not in prod["tempo"] and "annotations" in prod["serviceAccount"]
    assert prod["tempo"]["resources"] == traces.TEMPO_RESOURCES["large"]
    assert tempo["resources"] == traces.TEMPO_RESOURCES["small"]


def test_collector_and_tempo_run_restricted():
    result = run_stack("dev")
    collector = values(result, "opentelemetry-collector")
    assert collector["mode"] == "deployment" and collector["command"] == {"name": "otelcol-k8s"}
    assert collector["securityContext"]["readOnlyRootFilesystem"] is True
    assert collector["podSecurityContext"]["runAsNonRoot"] is True
    tempo = values(result, "tempo")
    assert tempo["tempo"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert tempo["securityContext"]["runAsNonRoot"] is True
    namespace = result.one("Namespace", "tracing")
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_grafana_queries_every_tenant_and_links_traces_to_logs():
    sources = values(run_stack("dev"), "kube-prometheus-stack")["grafana"]["additionalDataSources"]
    (tempo,) = [s for s in sources if s["type"] == "tempo"]
    assert tempo["url"] == "http://tempo.tracing.svc:3200"
    assert tempo["secureJsonData"]["httpHeaderValue1"] == "platform|product|research"
    assert tempo["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"


def test_traces_off_removes_it_all():
    result = run_with(traces={"enabled": False})
    assert release(result, "tempo") is None and release(result, "opentelemetry-collector") is None
    assert not [r for r in result.objects if r.namespace == "tracing" or r.k8s_name == "tracing"]
    assert "tempo" not in [b["name"] for b in values(result, "seaweedfs")["s3"]["createBuckets"]]
    assert "extensionProviders" not in values(result, "istiod")["meshConfig"]
    assert not result.of_kind("Telemetry")
    servers = _containers(result, "research")
    assert "vllm" in [c["name"] for c in servers]  # not vacuous: dev's vLLM endpoint is traced with traces on
    for container in servers:
        assert not [a for a in container.get("args", []) if "otlp" in a or "trace-config" in a]
        assert not [e for e in container.get("env", []) if e["name"].startswith("OTEL_")]
    sources = values(result, "kube-prometheus-stack")["grafana"]["additionalDataSources"]
    assert [s["type"] for s in sources] == ["loki"]
    assert not [r for r in result.resources if "ai-platform:traces:Traces" in r.type]


# --- config errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "edit", "expected"),
    [
        (
            "prod",
            lambda c: c["ai-platform:objectStore"].pop("tempoBucket"),
            "stack prod: ai-platform:objectStore.tempoBucket: an external object store needs the bucket of Tempo's",
        ),
        ("dev", lambda c: c["ai-platform:traces"].update(retention="14d"), "stack dev: ai-platform:traces.retention"),
        (
            "dev",
            lambda c: c["ai-platform:traces"].update(samplingPercent=150),
            "stack dev: ai-platform:traces.samplingPercent",
        ),
        ("dev", lambda c: c["ai-platform:traces"].update(size="huge"), "stack dev: ai-platform:traces.size"),
    ],
    ids=["external store without Tempo's bucket", "retention in days", "sampling over 100", "unknown size"],
)
def test_bad_traces_config_fails_before_registration(stack, edit, expected):
    config = config_copy(stack)
    config.setdefault("ai-platform:traces", {})
    edit(config)
    result = run(stack, config)
    assert isinstance(result.error, ConfigError), result.error
    assert expected in str(result.error)
    assert not result.registered_beyond_stack


# --- monitoring the pipeline --------------------------------------------------------------------------------------


def test_tempo_and_the_collector_are_scraped_by_the_platforms_prometheus_once_its_crds_exist():
    result = run_stack("dev")
    monitoring = release(result, "kube-prometheus-stack")
    tempo, collector = values(result, "tempo"), values(result, "opentelemetry-collector")
    part_of = {"app.kubernetes.io/part-of": "ai-platform"}
    assert tempo["serviceMonitor"] == {"enabled": True, "additionalLabels": part_of}
    # opentelemetry-collector-0.170.0 values.yaml: the ServiceMonitor scrapes port metrics, which must be on.
    assert collector["serviceMonitor"] == {"enabled": True, "extraLabels": part_of}
    assert collector["ports"]["metrics"] == {"enabled": True}
    # The collector serves its metrics on localhost unless told (v0.158.0 otelconftelemetry/factory.go).
    (reader,) = collector_config(result)["service"]["telemetry"]["metrics"]["readers"]
    assert reader["pull"]["exporter"]["prometheus"] == {"host": "${env:MY_POD_IP}", "port": 8888}
    for chart in ("tempo", "opentelemetry-collector"):
        assert monitoring.urn in release(result, chart).dependencies, chart
    without = run_with(monitoring={"enabled": False})
    assert values(without, "tempo")["serviceMonitor"]["enabled"] is False
    assert values(without, "opentelemetry-collector")["serviceMonitor"]["enabled"] is False
