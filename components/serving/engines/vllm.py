"""vLLM (``vllm/vllm-openai``): the OpenAI-compatible server, run by the platform.

Loads ``hf://``, ``s3://`` (downloaded once into the model cache) or ``pvc://`` models, offline; one HTTP port 8000
serving the API and ``/metrics``; scales on ``vllm:num_requests_waiting`` (default 5 per replica); needs GPUs;
``models[].vllm`` options; alerts on latency, time to first token, engine errors, queue and KV cache; the
inference dashboard's vLLM row; with traces on, one span per request to the platform's collector (``tracing``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from config import images

from ...monitoring.promql import RATE, num, p95, ratio_of_rates, selector
from .base import HOME_ENV, MODELS, READ_ONLY_ROOT, TMP_MOUNT, AlertContext, Problems, ServerEngine, model_path, probe

if TYPE_CHECKING:
    from config.gpu import EndpointGpu
    from config.monitoring import Alerts
    from config.serving import Endpoint

    from ...traces import Otlp

SOURCE = (
    "vLLM v0.33 OpenAI server /metrics (vllm/v1/metrics/loggers.py PrometheusStatLogger; listed in "
    "docs/design/metrics.md 'v1 Metrics')"
)
# Tracing at v0.33.0, read in the vllm-0.33.0 wheel on PyPI (the one the vllm-openai image installs with its
# dependencies: docker/Dockerfile, vllm-base stage, `uv pip install --system dist/*.whl`):
# - METADATA Requires-Dist (unconditional): opentelemetry-sdk>=1.27.0, opentelemetry-api>=1.27.0,
#   opentelemetry-exporter-otlp>=1.27.0 (both the gRPC and the HTTP exporter), opentelemetry-semantic-conventions-ai
#   >=0.4.1 (added to requirements/common.txt by vllm-project/vllm#34466): the image carries the SDK.
# - vllm/config/observability.py: --otlp-traces-endpoint refuses to start without those packages ("OpenTelemetry is
#   not available"); --collect-detailed-traces (model, worker, all) is opt-in and costly: not set.
# - vllm/tracing/otel.py get_span_exporter: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL "grpc" (the default: OTLPSpanExporter
#   of proto.grpc with insecure=True) or "http/protobuf"; TracerProvider(resource=Resource.create(...)) without a
#   sampler, so the OpenTelemetry SDK reads OTEL_TRACES_SAMPLER/OTEL_TRACES_SAMPLER_ARG and OTEL_SERVICE_NAME
#   (opentelemetry-python opentelemetry-sdk sdk/trace/sampling.py _get_from_env_or_default, default
#   parentbased_always_on; sdk/resources/__init__.py OTELResourceDetector; read at 1.45.2).
# - vllm/v1/engine/output_processor.py do_tracing: one SERVER span "llm_request" per finished request, child of the
#   W3C trace context of the request's headers (traceparent, tracestate).
TRACE_PROTOCOL = "grpc"
TRACE_SAMPLER = "parentbased_traceidratio"


def _options(endpoint: Endpoint):
    """The endpoint's vLLM options, or their defaults when it has no ``vllm:`` section."""
    from config.serving import VllmOptions  # at call time: config.serving imports the engines

    return endpoint.vllm or VllmOptions()


def _gpu(endpoint: Endpoint) -> EndpointGpu:
    """The GPUs of a vLLM endpoint's replica: ``Vllm.config_problems`` (run by ``Endpoint._engine_rules``) refuses a
    vLLM endpoint without ``gpu``."""
    gpu = endpoint.gpu
    assert gpu is not None, "guaranteed by Vllm.config_problems"
    return gpu


def tensor_parallel(endpoint: Endpoint) -> int:
    return (endpoint.vllm and endpoint.vllm.tensor_parallel) or _gpu(endpoint).count


class Vllm(ServerEngine):
    name = "vllm"
    position = 1
    schemes = ("hf", "s3", "pvc")
    default_target = 5
    options_key = "vllm"
    endpoint_picker = True
    reports_token_usage = True  # the inferencepool chart's default modelServerType (vllm metric names)
    contract = images.VLLM
    ports = (("http", 8000, "http"),)
    metrics_scrape: ClassVar[dict] = {"port": "http", "path": "/metrics"}
    load_query = 'sum(vllm:num_requests_waiting{{namespace="{namespace}",pod=~"{pods}"}})'
    metric_sources: ClassVar[dict[str, str]] = {
        "vllm:e2e_request_latency_seconds_bucket": f"{SOURCE}: histogram vllm:e2e_request_latency_seconds",
        "vllm:time_to_first_token_seconds_bucket": f"{SOURCE}: histogram vllm:time_to_first_token_seconds",
        "vllm:request_success_total": f"{SOURCE}: counter vllm:request_success by finished_reason (stop, length, "
        "abort, error, repetition; vllm/v1/engine/__init__.py FinishReason: 'error' is "
        "an internal request error, always answered with HTTP 500)",
        "vllm:num_requests_waiting": f"{SOURCE}: gauge, requests waiting to be scheduled",
        "vllm:num_requests_running": f"{SOURCE}: gauge, requests in model execution batches",
        "vllm:kv_cache_usage_perc": f"{SOURCE}: gauge, KV-cache usage 0-1 (vllm:gpu_cache_usage_perc was deprecated "
        "in 0.9 and removed, vllm-project/vllm#29330)",
        "vllm:generation_tokens_total": f"{SOURCE}: counter vllm:generation_tokens",
        "vllm:prompt_tokens_total": f"{SOURCE}: counter vllm:prompt_tokens",
    }

    def config_problems(self, endpoint: Endpoint) -> Problems:
        if endpoint.gpu is None:
            return [("gpu", "a vLLM endpoint needs GPUs")]
        if endpoint.vllm and endpoint.vllm.tensor_parallel and endpoint.gpu.count % endpoint.vllm.tensor_parallel:
            return [
                (
                    "vllm.tensorParallel",
                    f"must divide gpu.count (got {endpoint.vllm.tensor_parallel} for {endpoint.gpu.count} GPUs)",
                )
            ]
        return []

    def needs_cache(self, endpoint: Endpoint) -> bool:
        return endpoint.scheme != "pvc"

    def container(self, endpoint: Endpoint, image: str) -> dict:
        options = _options(endpoint)
        # One name for both versions: a canary answers to the stable version's name on the same paths.
        args = [
            model_path(endpoint),
            "--served-model-name",
            endpoint.name,
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "--tensor-parallel-size",
            str(tensor_parallel(endpoint)),
            "--gpu-memory-utilization",
            str(options.gpu_memory_utilization),
            "--dtype",
            options.dtype,
        ]
        if options.max_model_len:
            args += ["--max-model-len", str(options.max_model_len)]
        return {
            "name": "vllm",
            "image": image,
            "command": ["vllm", "serve"],
            "args": args + options.extra_args,
            # Every cache the server (torch.compile, Triton kernels, FlashInfer via HOME) writes, on /tmp.
            "env": HOME_ENV
            + [
                {"name": "HF_HUB_OFFLINE", "value": "1"},
                {"name": "HF_HOME", "value": "/tmp/hf"},
                {"name": "VLLM_CACHE_ROOT", "value": "/tmp/vllm"},
                {"name": "TORCHINDUCTOR_CACHE_DIR", "value": "/tmp/torchinductor"},
                {"name": "TRITON_CACHE_DIR", "value": "/tmp/triton"},
                {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
            ],
            "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
            # Loading a large model takes minutes: the startup probe allows 30 of them before liveness counts.
            "startupProbe": probe("/health", "http", 10, 180),
            "readinessProbe": probe("/health", "http", 5, 3),
            "livenessProbe": probe("/health", "http", 15, 4),
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "15"]}}},
            "volumeMounts": [
                {"name": "models", "mountPath": MODELS, "readOnly": True},
                {"name": "shm", "mountPath": "/dev/shm"},
                TMP_MOUNT,
            ],
            "securityContext": READ_ONLY_ROOT,
        }

    def token_usage_args(self) -> list[str]:
        """``--enable-force-include-usage``: usage in every request, streamed ones too, whatever the client's
        ``stream_options`` (vllm-0.33.0 wheel: entrypoints/common/cli_args.py "If set to True, including usage on every
        request"; entrypoints/serve/utils/api_utils.py ``should_include_usage`` returns (True, True): the final chunk's
        usage and cumulative usage on every chunk)."""
        return ["--enable-force-include-usage"]

    def tracing(self, endpoint: Endpoint, otlp: Otlp) -> tuple[list[str], list[dict]]:
        """``--otlp-traces-endpoint`` at the collector's OTLP gRPC port, the endpoint's name as ``service.name``, and
        the mesh's sampling percent as a parent-based ratio: a request that arrives with a trace context (the Istio
        proxy's) keeps its sampling decision, one without is sampled at ``samplingPercent`` (see ``TRACE_PROTOCOL``
        for the sources). Nothing at 0%, like Triton."""
        if not otlp.sampling_percent:
            return [], []
        return ["--otlp-traces-endpoint", otlp.grpc_endpoint], [
            {"name": "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "value": TRACE_PROTOCOL},
            {"name": "OTEL_SERVICE_NAME", "value": endpoint.name},
            {"name": "OTEL_TRACES_SAMPLER", "value": TRACE_SAMPLER},
            {"name": "OTEL_TRACES_SAMPLER_ARG", "value": format(otlp.sampling_percent / 100, "g")},
        ]

    def volumes(self, endpoint: Endpoint) -> list[dict]:
        """Shared memory for the tensor-parallel workers."""
        return [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{2 * tensor_parallel(endpoint)}Gi"}}]

    def alert_rules(self, context: AlertContext) -> list[dict]:
        alert, it, pods, labels, platform = context.alert, context.it, context.pods, context.labels, context.platform
        latency, ttft, errors = context.latency, context.ttft, context.errors
        return [
            alert(
                "AiPlatformEndpointLatencyHigh",
                f"{p95('vllm:e2e_request_latency_seconds_bucket', pods)} > {latency}",
                "10m",
                "warning",
                f"{it}: p95 latency above {latency}s",
                f"{it} (vLLM) answers 95% of requests within {{{{ $value | humanizeDuration }}}}; "
                f"the threshold is {latency}s (models[].alerts.p95LatencySeconds).",
                **labels,
            ),
            alert(
                "AiPlatformEndpointTtftHigh",
                f"{p95('vllm:time_to_first_token_seconds_bucket', pods)} > {ttft}",
                "10m",
                "warning",
                f"{it}: p95 time to first token above {ttft}s",
                f"{it} takes {{{{ $value | humanizeDuration }}}} to the first token (p95); the threshold is "
                f"{ttft}s. Usually prefill is queued behind long prompts: see waiting "
                "requests and KV-cache use.",
                **labels,
            ),
            alert(
                "AiPlatformEndpointErrorRate",
                ratio_of_rates(
                    "vllm:request_success_total",
                    {**pods, "finished_reason": "error"},
                    "vllm:request_success_total",
                    pods,
                )
                + f" > {errors}",
                "10m",
                "critical",
                f"{it}: more than {errors} of requests fail in the engine",
                f"{{{{ $value | humanizePercentage }}}} of the requests vLLM finished in {it} ended in an "
                f"internal error (finished_reason=error); the threshold is {errors}.",
                **labels,
            ),
            alert(
                "AiPlatformVllmQueueGrowing",
                f"max by (pod) ({selector('vllm:num_requests_waiting', **pods)}) > "
                f"{num(platform.vllm_waiting_requests)}",
                "10m",
                "warning",
                f"{it}: requests queue up in vLLM",
                f"{{{{ $labels.pod }}}} has {{{{ $value }}}} requests waiting (threshold "
                f"{num(platform.vllm_waiting_requests)}) for 10 minutes: the endpoint is at its replica limit "
                f"(models[].replicas.max {context.endpoint.replicas.max}) or new replicas cannot be placed (GPU "
                "quota, free GPUs).",
                **labels,
            ),
            alert(
                "AiPlatformVllmKvCacheSaturated",
                f"max by (pod) ({selector('vllm:kv_cache_usage_perc', **pods)}) > {num(platform.vllm_kv_cache_usage)}",
                "15m",
                "warning",
                f"{it}: KV cache nearly full",
                "{{ $labels.pod }} uses {{ $value | humanizePercentage }} of its KV cache; vLLM "
                "preempts and recomputes requests when it runs out. Lower maxModelLen, raise "
                "gpuMemoryUtilization or add replicas.",
                **labels,
            ),
        ]

    def dashboard_row(self, board, pods: dict[str, str], thresholds: Alerts) -> None:
        by_endpoint, legend = "namespace, model_name", "{{namespace}}/{{model_name}}"
        (
            board.row("vLLM")
            .timeseries(
                "p95 end-to-end latency",
                [(p95("vllm:e2e_request_latency_seconds_bucket", pods, by=f"{by_endpoint}, le"), legend)],
                "s",
                threshold=thresholds.endpoint_p95_latency_seconds,
            )
            .timeseries(
                "p95 time to first token",
                [(p95("vllm:time_to_first_token_seconds_bucket", pods, by=f"{by_endpoint}, le"), legend)],
                "s",
                threshold=thresholds.endpoint_ttft_p95_seconds,
            )
            .timeseries(
                "Tokens per second",
                [
                    (
                        f"sum by ({by_endpoint}) (rate({selector('vllm:generation_tokens_total', **pods)}[{RATE}]))",
                        f"{legend} generated",
                    ),
                    (
                        f"sum by ({by_endpoint}) (rate({selector('vllm:prompt_tokens_total', **pods)}[{RATE}]))",
                        f"{legend} prompt",
                    ),
                ],
                "short",
            )
            .timeseries(
                "Requests waiting and running",
                [
                    (f"sum by ({by_endpoint}) ({selector('vllm:num_requests_waiting', **pods)})", f"{legend} waiting"),
                    (f"sum by ({by_endpoint}) ({selector('vllm:num_requests_running', **pods)})", f"{legend} running"),
                ],
                "short",
            )
            .timeseries(
                "KV-cache use by pod",
                [
                    (
                        f"max by (namespace, pod) ({selector('vllm:kv_cache_usage_perc', **pods)})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
                "percentunit",
                threshold=thresholds.vllm_kv_cache_usage,
                min=0,
                max=1,
            )
            .timeseries(
                "Requests finished in error",
                [
                    (
                        ratio_of_rates(
                            "vllm:request_success_total",
                            {**pods, "finished_reason": "error"},
                            "vllm:request_success_total",
                            pods,
                            by=by_endpoint,
                        ),
                        legend,
                    )
                ],
                "percentunit",
                threshold=thresholds.endpoint_error_ratio,
                min=0,
            )
        )


ENGINE = Vllm()
