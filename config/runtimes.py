"""KServe's ClusterServingRuntimes at the pinned chart, as far as the platform relies on them: which runtime KServe
picks for a model format, and how that runtime names the model it serves.

Source: kserve/kserve v0.20.0 ``charts/kserve-runtime-configs/files/runtimes/resources.yaml`` (the runtimes the pinned
``kserve-runtime-configs`` chart installs) and ``pkg/controller/v1beta1/inferenceservice/utils/utils.go``
``MergeRuntimeContainers`` ("Args are concatenated (runtime + isvc) rather than replaced").

KServe registers a model under the InferenceService's name (``--model_name={{.Name}}``), so a canary
``<endpoint>-canary`` would answer ``/v1/models/<endpoint>-canary`` while clients call ``/v1/models/<endpoint>``. The
platform appends the runtime's own naming flag with the endpoint's name to the predictor's args (after the runtime's:
argparse keeps the last value), so stable and canary answer to the same name on the same paths. Runtimes that take
model names from the model repository (Triton, TorchServe) name both versions alike already (``name_arg`` None).
"""

from __future__ import annotations

from typing import NamedTuple


class Runtime(NamedTuple):
    """A ClusterServingRuntime of the pinned chart."""

    name: str
    name_arg: str | None
    """Flag naming the served model (its value in the runtime is ``{{.Name}}``); None: names from the repository."""
    ready_path: str | None
    """HTTP path on port 8080 that answers 200 only once the model named ``{name}`` is loaded; None: not probed."""


_PYTHON_SERVER = "--model_name"  # python/kserve/kserve/model_server.py: argparse, type=str: the last one wins
_V1_READY = "/v1/models/{name}"  # python/kserve/kserve/protocol/rest/v1_endpoints.py model_ready: 503 until ready

RUNTIMES: dict[str, Runtime] = {runtime.name: runtime for runtime in (
    Runtime("kserve-sklearnserver", _PYTHON_SERVER, _V1_READY),
    Runtime("kserve-xgbserver", _PYTHON_SERVER, _V1_READY),
    Runtime("kserve-lgbserver", _PYTHON_SERVER, _V1_READY),
    Runtime("kserve-pmmlserver", _PYTHON_SERVER, _V1_READY),
    Runtime("kserve-paddleserver", _PYTHON_SERVER, _V1_READY),
    Runtime("kserve-huggingfaceserver", _PYTHON_SERVER, _V1_READY),
    Runtime("kserve-tensorflow-serving", _PYTHON_SERVER, None),
    Runtime("kserve-tritonserver", None, None),
    Runtime("kserve-torchserve", None, None),
)}

# Model format -> the runtime KServe selects for it with the default protocol v1 (pkg/apis/serving/v1beta1/
# predictor_model.go: runtimes with autoSelect that support the format and the protocol, highest priority first;
# kserve-mlserver and kserve-tritonserver speak only v2, kserve-predictiveserver has autoSelect false). Formats only
# v2 runtimes serve (onnx, tensorrt, triton, mlflow) have no runtime under protocol v1: use the triton engine.
FORMATS: dict[str, str] = {
    "sklearn": "kserve-sklearnserver",
    "xgboost": "kserve-xgbserver",
    "lightgbm": "kserve-lgbserver",
    "pmml": "kserve-pmmlserver",
    "paddle": "kserve-paddleserver",
    "huggingface": "kserve-huggingfaceserver",
    "tensorflow": "kserve-tensorflow-serving",
    "pytorch": "kserve-torchserve",
}


def runtime_of(model_format: str, runtime: str | None) -> Runtime | None:
    """The runtime serving an endpoint: the named one, else the one KServe selects for the format (None: unknown)."""
    return RUNTIMES.get(runtime or FORMATS.get(model_format, ""))
