"""Server contracts: what each model server does with the flags the platform passes, at the pinned versions.

Facts recorded from upstream, each with its source; ``tests/test_server_contracts.py`` holds every endpoint the
platform declares to them. When a pin in ``config/versions.py`` moves, re-read the sources named here at the new tag.
"""

# --- vLLM (vllm/vllm-openai:v0.33.0) ------------------------------------------------------------------------------
# `vllm serve <model>`: the model is the first positional argument (vllm/entrypoints/cli/serve.py, `model_tag`).
# Flags: EngineArgs.add_cli_args (vllm/engine/arg_utils.py: --served-model-name, --tensor-parallel-size,
# --gpu-memory-utilization, --dtype, --max-model-len, ...) and the OpenAI server's make_arg_parser
# (vllm/entrypoints/openai/cli_args.py: --host, --port). The vLLM repository is too large to fetch here at v0.33.0;
# these flags were read in the stored vllm-project/vllm sources and have kept their names since v0.2.
VLLM_COMMAND = ["vllm", "serve"]
VLLM_FLAGS = {
    "--served-model-name",
    "--host",
    "--port",
    "--tensor-parallel-size",
    "--pipeline-parallel-size",
    "--gpu-memory-utilization",
    "--dtype",
    "--max-model-len",
    "--max-num-seqs",
    "--max-num-batched-tokens",
    "--enable-prefix-caching",
    "--no-enable-prefix-caching",
    "--kv-cache-dtype",
    "--quantization",
    "--trust-remote-code",
    "--enforce-eager",
    "--swap-space",
    "--block-size",
    "--seed",
    "--revision",
    "--tokenizer",
    "--download-dir",
    "--load-format",
    "--otlp-traces-endpoint",
    # vllm-0.33.0 wheel (PyPI): vllm/entrypoints/common/cli_args.py field enable_force_include_usage, "If set to True,
    # including usage on every request" (the server's dataclass fields are its --flags; chat_completion/serving.py
    # names it ``--enable-force-include-usage``).
    "--enable-force-include-usage",
    "--disable-log-requests",
    "--enable-chunked-prefill",
    "--max-loras",
    "--enable-lora",
    "--uvicorn-log-level",
    "--api-key",
}
VLLM_DTYPES = {"auto", "half", "float16", "bfloat16", "float", "float32"}  # arg_utils.py --dtype choices
# The OpenAI server answers under every --served-model-name (default: the model path) and nothing else
# (vllm/entrypoints/openai/serving_models.py: a request's "model" must be one of base_model_paths' names, else 404
# "The model `x` does not exist."). /health answers 200 once the engine is up: the HTTP server starts only after the
# engine client is built, i.e. after the weights are loaded (vllm/entrypoints/openai/api_server.py run_server:
# build_async_engine_client before serve_http).
VLLM_HEALTH = "/health"
VLLM_PATHS = ["/v1/models", "/v1/completions", "/v1/chat/completions"]

# --- Triton (nvcr.io/nvidia/tritonserver:26.09-py3, Triton 2.73) -------------------------------------------------
# Options of tritonserver: triton-inference-server/server src/command_line_parser.cc. The r26.09 branch is not in the
# stored snapshot; read at r26.08 (TRITON_VERSION 2.72.0), whose option table these flags have been part of since
# r22 unchanged.
TRITON_FLAGS = {
    "--model-repository",
    "--model-store",
    "--model-control-mode",
    "--load-model",
    "--repository-poll-secs",
    "--strict-readiness",
    "--exit-on-error",
    "--exit-timeout-secs",
    "--http-port",
    "--grpc-port",
    "--metrics-port",
    "--allow-metrics",
    "--allow-gpu-metrics",
    "--allow-cpu-metrics",
    "--allow-http",
    "--allow-grpc",
    "--log-verbose",
    "--log-info",
    "--log-format",
    "--model-load-thread-count",
    "--backend-config",
    "--trace-config",
    "--cache-config",
    "--rate-limit",
    "--http-restricted-api",
    "--disable-auto-complete-config",
}
TRITON_CONTROL_MODES = {"none", "poll", "explicit"}
# --load-model: "Note that this option will only take effect if --model-control-mode=explicit is true"; in explicit
# mode nothing else is loaded at start. --strict-readiness: "/v2/health/ready endpoint indicates ready if the server
# is responsive and all models are available" — with no model loaded that is vacuously true.
# KServe v2 protocol paths (docs/protocol/ in the same repository): /v2/health/ready, /v2/health/live,
# /v2/models/<name>/ready (200 only when that model is ready), /v2/models/<name>/infer.
TRITON_MODEL_READY = "/v2/models/{name}/ready"

# --- KServe (v0.20.0) --------------------------------------------------------------------------------------------
# The runtimes' container args as the pinned kserve-runtime-configs chart installs them
# (kserve/kserve v0.20.0 charts/kserve-runtime-configs/files/runtimes/resources.yaml); `{{.Name}}` is the
# InferenceService's name. The predictor's args are appended after them (pkg/controller/v1beta1/inferenceservice/
# utils/utils.go MergeRuntimeContainers: "Args are concatenated (runtime + isvc) rather than replaced").
KSERVE_RUNTIME_ARGS = {
    "kserve-sklearnserver": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
    "kserve-xgbserver": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080", "--nthread=1"],
    "kserve-lgbserver": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080", "--nthread=1"],
    "kserve-pmmlserver": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
    "kserve-paddleserver": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
    "kserve-huggingfaceserver": ["--model_name={{.Name}}"],
    "kserve-tensorflow-serving": [
        "--model_name={{.Name}}",
        "--port=9000",
        "--rest_api_port=8080",
        "--model_base_path=/mnt/models",
        "--rest_api_timeout_in_ms=60000",
    ],
    "kserve-torchserve": [
        "torchserve",
        "--start",
        "--model-store=/mnt/models/model-store",
        "--ts-config=/mnt/models/config/config.properties",
    ],
}
# Which runtime KServe picks per model format under protocol v1 (same file: supportedModelFormats, autoSelect,
# priority; pkg/apis/serving/v1beta1/predictor_model.go sorts by priority, highest first, among runtimes that
# support the protocol).
KSERVE_FORMAT_RUNTIME = {
    "sklearn": "kserve-sklearnserver",
    "xgboost": "kserve-xgbserver",
    "lightgbm": "kserve-lgbserver",
    "pmml": "kserve-pmmlserver",
    "paddle": "kserve-paddleserver",
    "huggingface": "kserve-huggingfaceserver",
    "tensorflow": "kserve-tensorflow-serving",
    "pytorch": "kserve-torchserve",
}
# The Python model servers parse --model_name with argparse (python/kserve/kserve/model_server.py: type=str, a
# later occurrence replaces an earlier one) and answer /v1/models/<name> (200 {"ready": true} once loaded,
# protocol/rest/v1_endpoints.py model_ready) and /v1/models/<name>:predict.
KSERVE_PYTHON_RUNTIMES = {
    "kserve-sklearnserver",
    "kserve-xgbserver",
    "kserve-lgbserver",
    "kserve-pmmlserver",
    "kserve-paddleserver",
    "kserve-huggingfaceserver",
}
KSERVE_NAME_FLAG = "--model_name"
KSERVE_V1_READY = "/v1/models/{name}"
