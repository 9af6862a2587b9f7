"""Server contracts: every model server the platform declares is held to the facts in ``tests/contracts/servers.py``.

For every endpoint of both stacks and of a fixture stack with every engine and a canary each: the flags passed exist
in the pinned server, the server loads its model before it reports ready, and stable and canary answer to the same
model names on the same paths (the VirtualService splits one request path between them, so a name only one version
knows answers 404 for the other's share).
"""

from __future__ import annotations

import pytest

from tests.conftest import FIXTURE_STACKS, run_stack, run_with, stack_cfg
from tests.contracts import servers

# A stack with a canary on every engine (and Triton in explicit mode): the canary rules hold for each.
CANARIES = [
    {
        "name": "chat",
        "tenant": "research",
        "engine": "vllm",
        "source": "hf://Qwen/Qwen2.5-1.5B-Instruct",
        "gpu": {"count": 1},
        "resources": {"cpu": "2", "memory": "8Gi"},
        "cache": {"size": "20Gi"},
        "canary": {"source": "hf://Qwen/Qwen2.5-3B-Instruct"},
        "traffic": {"weights": {"stable": 90, "canary": 10}},
    },
    {
        "name": "ranker",
        "tenant": "product",
        "engine": "triton",
        "source": "s3://models/ranker",
        "s3": {"credentialsSecret": "model-keys"},
        "resources": {"cpu": "1", "memory": "2Gi"},
        "triton": {"models": ["ranker", "tokenizer"]},
        "canary": {"source": "s3://models/ranker-v2"},
        "traffic": {"weights": {"stable": 50, "canary": 50}},
    },
    {
        "name": "iris",
        "tenant": "product",
        "engine": "kserve",
        "source": "gs://kfserving-examples/models/sklearn/1.0/model",
        "resources": {"cpu": "500m", "memory": "1Gi"},
        "kserve": {"modelFormat": "sklearn"},
        "canary": {"source": "gs://kfserving-examples/models/sklearn/1.0/model-2"},
        "traffic": {"weights": {"stable": 80, "canary": 20}},
    },
]


@pytest.fixture(scope="module")
def runs():
    return {**{stack: run_stack(stack) for stack in FIXTURE_STACKS}, "canaries": run_with("dev", models=CANARIES)}


def flags(args: list[str]) -> dict[str, list[str]]:
    """``--flag value`` and ``--flag=value`` pairs of an argument list (values in order of appearance)."""
    result: dict[str, list[str]] = {}
    for index, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        flag, eq, value = arg.partition("=")
        if not eq:
            value = args[index + 1] if index + 1 < len(args) and not args[index + 1].startswith("--") else ""
        result.setdefault(flag, []).append(value)
    return result


def server_containers(run, engine: str):
    """(endpoint name, version, container, pod spec) of every Deployment-served version of ``engine``."""
    for deployment in run.of_kind("Deployment"):
        labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
        if labels.get("ai-platform/engine") != engine:
            continue
        pod = deployment.inputs["spec"]["template"]["spec"]
        server = next(c for c in pod["containers"] if c["name"] == engine)
        yield labels["ai-platform/endpoint"], labels["version"], server, pod


def names_answered(run) -> dict[tuple[str, str, str], dict[str, set[str]]]:
    """(namespace, endpoint, engine) -> version -> the model names that version's server answers to."""
    answered: dict[tuple[str, str, str], dict[str, set[str]]] = {}
    for engine in ("vllm", "triton"):
        for deployment in run.of_kind("Deployment"):
            labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
            if labels.get("ai-platform/engine") != engine:
                continue
            server = next(c for c in deployment.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == engine)
            given = flags(server["args"])
            if engine == "vllm":  # default: the model path (the positional argument)
                names = set(given.get("--served-model-name") or [server["args"][0]])
            else:
                names = set(given.get("--load-model", []))
            key = (deployment.namespace, labels["ai-platform/endpoint"], engine)
            answered.setdefault(key, {})[labels["version"]] = names
    for isvc in run.of_kind("InferenceService"):
        labels = isvc.inputs["metadata"]["labels"]
        names = {kserve_model_name(isvc)}
        answered.setdefault((isvc.namespace, labels["ai-platform/endpoint"], "kserve"), {})[labels["version"]] = names
    return answered


def kserve_runtime(isvc) -> str:
    model = isvc.inputs["spec"]["predictor"]["model"]
    return model.get("runtime") or servers.KSERVE_FORMAT_RUNTIME[model["modelFormat"]["name"]]


def kserve_model_name(isvc) -> str:
    """The name the predictor's server registers: the runtime's args with ``{{.Name}}`` filled in, then the
    predictor's own, parsed as the server's argparse does (the last value counts)."""
    runtime = kserve_runtime(isvc)
    args = [a.replace("{{.Name}}", isvc.k8s_name) for a in servers.KSERVE_RUNTIME_ARGS[runtime]]
    args += isvc.inputs["spec"]["predictor"]["model"].get("args", [])
    return flags(args)[servers.KSERVE_NAME_FLAG][-1]


@pytest.mark.parametrize("name", [*FIXTURE_STACKS, "canaries"])
def test_vllm_flags_exist_and_it_loads_before_ready(runs, name):
    found = list(server_containers(runs[name], "vllm"))
    assert found or name == "dev" and not any(e.engine == "vllm" for e in stack_cfg("dev").models)
    check_vllm(found)


def check_vllm(found: list) -> None:
    for endpoint, version, server, _ in found:
        assert server["command"] == servers.VLLM_COMMAND
        assert not server["args"][0].startswith("--"), "vllm serve takes the model as its first argument"
        given = flags(server["args"])
        unknown = set(given) - servers.VLLM_FLAGS
        assert not unknown, f"{endpoint} ({version}): flags vLLM does not know: {sorted(unknown)}"
        assert set(given.get("--dtype", ["auto"])) <= servers.VLLM_DTYPES
        for probe in ("startupProbe", "readinessProbe"):
            assert server[probe]["httpGet"]["path"] == servers.VLLM_HEALTH


@pytest.mark.parametrize("name", ["prod", "canaries"])
def test_triton_flags_exist_and_it_loads_its_models_before_ready(runs, name):
    found = list(server_containers(runs[name], "triton"))
    assert found
    check_triton(found)


def check_triton(found: list) -> None:
    for endpoint, version, server, _ in found:
        given = flags(server["args"])
        unknown = set(given) - servers.TRITON_FLAGS
        assert not unknown, f"{endpoint} ({version}): flags Triton does not know: {sorted(unknown)}"
        mode = given["--model-control-mode"][-1]
        assert mode in servers.TRITON_CONTROL_MODES
        loaded = given.get("--load-model", [])
        if mode == "explicit":
            assert loaded, f"{endpoint} ({version}): explicit mode without --load-model serves no model"
            assert "*" not in loaded or loaded == ["*"]
        else:
            assert not loaded, "--load-model only takes effect in explicit mode"
        assert given["--strict-readiness"] == ["true"]
        startup = server["startupProbe"]["httpGet"]["path"]
        ready_models = [m for m in loaded if servers.TRITON_MODEL_READY.format(name=m) == startup]
        assert ready_models or mode != "explicit", f"{endpoint}: the startup probe waits for no loaded model"


@pytest.mark.parametrize("name", ["dev", "prod", "canaries"])
def test_kserve_predictors_name_their_model_after_the_endpoint_and_probe_it(runs, name):
    services = runs[name].of_kind("InferenceService")
    assert services
    check_kserve(services)


def check_kserve(services: list) -> None:
    for isvc in services:
        endpoint = isvc.inputs["metadata"]["labels"]["ai-platform/endpoint"]
        runtime = kserve_runtime(isvc)
        if runtime not in servers.KSERVE_PYTHON_RUNTIMES:
            continue
        assert kserve_model_name(isvc) == endpoint
        probe = isvc.inputs["spec"]["predictor"]["model"]["readinessProbe"]["httpGet"]
        assert probe == {"path": servers.KSERVE_V1_READY.format(name=endpoint), "port": 8080}


@pytest.mark.parametrize("name", ["prod", "canaries"])
def test_stable_and_canary_answer_to_the_same_model_names(runs, name):
    answered = names_answered(runs[name])
    with_canary = {key: by_version for key, by_version in answered.items() if "canary" in by_version}
    assert with_canary, "the stack has no canary to check"
    for (namespace, endpoint, engine), by_version in with_canary.items():
        assert by_version["canary"] == by_version["stable"], (
            f"{namespace}/{endpoint} ({engine}): stable answers {sorted(by_version['stable'])}, canary "
            f"{sorted(by_version['canary'])}: the canary's share of a request naming the other fails"
        )


@pytest.mark.parametrize("name", ["prod", "canaries"])
def test_routes_send_the_same_paths_to_both_versions(runs, name):
    """The split sends a request unchanged to either version: no rewrite, one destination port per route."""
    for vs in runs[name].of_kind("VirtualService"):
        for route in vs.inputs["spec"]["http"]:
            assert "rewrite" not in route
            ports = {d["destination"]["port"]["number"] for d in route["route"]}
            assert len(ports) == 1, f"{vs.k8s_name}: {route['name']} sends versions to different ports"


@pytest.mark.invariant
def test_every_server_of_a_stack_keeps_its_contract(stack_run):
    """Whatever endpoints a stack declares: the vLLM and Triton flags exist, KServe models are named and probed."""
    check_vllm(list(server_containers(stack_run, "vllm")))
    check_triton(list(server_containers(stack_run, "triton")))
    check_kserve(stack_run.of_kind("InferenceService"))
