"""Engines as descriptors (``components/serving/engines``): one module per engine is all the platform needs.

A toy engine from one test-only module (``tests/toy_engine.py``), registered for this module's tests, loads in a stack
and gets its objects, routing, scraping, alerts and dashboard row; an engine the registry lacks is refused at config
load with the stack, the path and the engines there are; and no module outside the engines asks for an engine by name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components.serving import engines
from config import ConfigError
from tests import toy_engine
from tests.conftest import accept_loss, config_copy, run, run_with

ROOT = Path(__file__).resolve().parents[1]
TOY = {
    "name": "echo",
    "tenant": "product",
    "engine": "toy",
    "source": "pvc://toy-models/v1",
    "resources": {"cpu": "500m", "memory": "1Gi"},
    "replicas": {"min": 1, "max": 2},
    "canary": {"source": "pvc://toy-models/v2"},
    "traffic": {"weights": {"stable": 90, "canary": 10}},
}


@pytest.fixture(scope="module")
def toy_run():
    with engines.registered(toy_engine.ENGINE):
        return run_with("dev", models=[TOY])


def named(result, kind: str, name: str):
    matches = [o for o in result.objects if o.kind == kind and o.k8s_name == name and o.namespace == "product"]
    assert len(matches) == 1, f"{kind} product/{name}: {len(matches)} found"
    return matches[0].inputs


def test_a_toy_engine_in_one_module_gets_its_servers(toy_run):
    for version, name in (("stable", "echo"), ("canary", "echo-canary")):
        pod = named(toy_run, "Deployment", name)["spec"]["template"]
        assert pod["metadata"]["labels"]["ai-platform/engine"] == "toy"
        assert pod["metadata"]["labels"]["version"] == version
        [server] = pod["spec"]["containers"]
        assert server["name"] == "toy" and f"--model=/models/{version == 'stable' and 'v1' or 'v2'}" in server["args"]
        assert named(toy_run, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"] == {
            "ai-platform/endpoint": "echo",
            "version": version,
        }
    ports = named(toy_run, "Service", "echo")["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in ports] == [("http", 9000), ("metrics", 9100)]
    trigger = named(toy_run, "ScaledObject", "echo")["spec"]["triggers"][0]["metadata"]
    assert trigger["query"].startswith("sum(toy_queue_length{") and trigger["threshold"] == "3"


def test_the_mesh_and_monitoring_pick_the_toy_engine_up(toy_run):
    routes = named(toy_run, "VirtualService", "echo")["spec"]["http"]
    assert {d["destination"]["port"]["number"] for r in routes for d in r["route"]} == {9000}
    assert {d["destination"]["subset"] for r in routes for d in r["route"]} == {"stable", "canary"}
    policy = named(toy_run, "AuthorizationPolicy", "echo")["spec"]
    assert policy["rules"][-1]["to"][0]["operation"]["ports"] == ["9100"]
    for version, name in (("stable", "echo"), ("canary", "echo-canary")):
        monitor = named(toy_run, "PodMonitor", name)["spec"]
        assert monitor["podMetricsEndpoints"][0]["port"] == "metrics"
        assert monitor["selector"]["matchLabels"] == {"ai-platform/endpoint": "echo", "version": version}
    rules = next(o for o in toy_run.objects if o.kind == "PrometheusRule" and o.k8s_name == "ai-platform-inference")
    group = next(g for g in rules.inputs["spec"]["groups"] if g["name"].endswith("-product-echo"))
    alerts = {r["alert"]: r for r in group["rules"]}
    assert 'toy_queue_length{namespace="product",pod=~"(echo|echo-canary)-' in alerts["ToyQueueLong"]["expr"]
    assert alerts["ToyQueueLong"]["labels"]["engine"] == "toy"
    assert {"AiPlatformEndpointHttp5xxRate", "AiPlatformEndpointNoReadyReplicas"} <= set(alerts)
    board = next(o for o in toy_run.objects if o.kind == "ConfigMap" and o.k8s_name == "dashboard-inference")
    rows = [
        p["title"] for data in board.inputs["data"].values() for p in json.loads(data)["panels"] if p["type"] == "row"
    ]
    assert rows[:3] == ["vLLM", "Triton", "Toy"]


def test_an_engine_the_registry_lacks_fails_at_config_load():
    config = accept_loss(config_copy("dev"))
    config["ai-platform:models"] = [TOY]  # toy_engine is not registered here
    result = run("dev", config)
    assert isinstance(result.error, ConfigError), result.error
    assert (
        "stack dev: ai-platform:models[0].engine: not an allowed value (allowed: 'vllm', 'triton' or 'kserve', "
        "got: 'toy')"
    ) in str(result.error)
    assert result.registered_beyond_stack == []


def test_the_registry_holds_every_engine_module_once():
    modules = {p.stem for p in (ROOT / "components/serving/engines").glob("*.py")} - {"__init__", "base"}
    assert engines.names() == ["vllm", "triton", "kserve"] and set(engines.names()) == modules
    with pytest.raises(KeyError, match="no engine 'toy' .registered: vllm, triton, kserve"):
        engines.get("toy")
    with (
        engines.registered(toy_engine.ENGINE),
        pytest.raises(ValueError, match="registered already"),
        engines.registered(toy_engine.ENGINE),
    ):
        pass
    assert "toy" not in engines.names()


def test_nothing_outside_the_engines_asks_for_an_engine_by_name():
    """What differs per engine is the engine module's: no ``endpoint.engine == "vllm"``, no table keyed by engine
    name (``PORTS[endpoint.engine]``, ``{"vllm": ...}``) elsewhere in the program."""
    by_name = re.compile(r"""engine\s*(==|!=)|\.engine\s+(not\s+)?in\b|\[[\w.]*engine\]|["'](vllm|triton)["']\s*:""")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in ("components", "config")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "engines" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if by_name.search(line)
    ]
    assert not found, "\n".join(found)
