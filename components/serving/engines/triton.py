"""Triton Inference Server (``nvcr.io/nvidia/tritonserver``), run by the platform.

Reads its model repository from ``s3://`` itself or from a ``pvc://`` claim and loads ``triton.models`` at start
(``--load-model`` in explicit mode; started once the first is ready, ready while all are); Service ports http 8000,
grpc 8001, metrics 8002; scales on ``nv_inference_pending_request_count`` (default 10 per replica); alerts on mean
latency, failures and queue time; the inference dashboard's Triton row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from config import images

from ...monitoring.promql import RATE, num, ratio_of_rates, selector
from .base import (
    HOME_ENV,
    MODELS,
    READ_ONLY_ROOT,
    TMP_MOUNT,
    AlertContext,
    Problems,
    ServerEngine,
    model_path,
    probe,
    s3_env,
)

if TYPE_CHECKING:
    from config.monitoring import Alerts
    from config.serving import Endpoint, TritonOptions

    from ...traces import Otlp


def _options(endpoint: Endpoint) -> TritonOptions:
    """A Triton endpoint's options: ``Triton.config_problems`` (run by ``Endpoint._engine_rules``) refuses a Triton
    endpoint without ``triton``."""
    options = endpoint.triton
    assert options is not None, "guaranteed by Triton.config_problems"
    return options


SOURCE = (
    "Triton 26.09 /metrics on port 8002, default counters: triton-inference-server/server docs/user_guide/metrics.md"
)


class Triton(ServerEngine):
    name = "triton"
    position = 2
    schemes = ("s3", "pvc")
    default_target = 10
    options_key = "triton"
    contract = images.TRITON
    ports = (("http", 8000, "http"), ("grpc", 8001, "grpc"), ("metrics", 8002, "http"))
    metrics_scrape: ClassVar[dict] = {"port": "metrics", "path": "/metrics"}
    load_query = 'sum(nv_inference_pending_request_count{{namespace="{namespace}",pod=~"{pods}"}})'
    metric_sources: ClassVar[dict[str, str]] = {
        "nv_inference_request_success": f"{SOURCE}: counter, successful requests per model",
        "nv_inference_request_failure": f"{SOURCE}: counter, failed requests per model (label reason)",
        "nv_inference_request_duration_us": f"{SOURCE}: counter, cumulative request time in us (Triton publishes no "
        "request-latency histogram by default)",
        "nv_inference_queue_duration_us": f"{SOURCE}: counter, cumulative scheduler queue time in us",
        "nv_inference_pending_request_count": f"{SOURCE}: gauge, requests awaiting execution (the Triton autoscaler "
        "metric, load_query)",
    }

    def config_problems(self, endpoint: Endpoint) -> Problems:
        if endpoint.triton is None:
            return [("triton", "a triton endpoint names the models it serves (triton.models)")]
        return []

    def container(self, endpoint: Endpoint, image: str) -> dict:
        options = _options(endpoint)
        repository = endpoint.source if endpoint.scheme == "s3" else model_path(endpoint)
        if endpoint.scheme == "s3" and endpoint.s3.endpoint:  # Triton's form for S3-compatible stores
            repository = f"s3://{endpoint.s3.endpoint}/{endpoint.location}"
        container: dict = {
            "name": "triton",
            "image": image,
            "command": ["tritonserver"],
            # explicit mode loads only --load-model models (triton-inference-server/server src/command_line_parser.cc);
            # without them it serves nothing and still reports ready. Strict readiness: ready once every loaded model
            # is.
            "args": [
                f"--model-repository={repository}",
                f"--model-control-mode={options.model_control_mode}",
                *(
                    [f"--load-model={model}" for model in options.models]
                    if options.model_control_mode == "explicit"
                    else []
                ),
                "--strict-readiness=true",
                "--exit-on-error=true",
                "--http-port=8000",
                "--grpc-port=8001",
                "--metrics-port=8002",
                "--allow-metrics=true",
            ],
            "env": HOME_ENV + (s3_env(endpoint) if endpoint.scheme == "s3" else []),
            "ports": [{"name": name, "containerPort": port, "protocol": "TCP"} for name, port, _ in self.ports],
            # Started once the endpoint's first model is loaded (a repository without it never starts).
            "startupProbe": probe(f"/v2/models/{options.models[0]}/ready", "http", 10, 90),
            "readinessProbe": probe("/v2/health/ready", "http", 5, 3),
            "livenessProbe": probe("/v2/health/live", "http", 15, 4),
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "15"]}}},
            "volumeMounts": [TMP_MOUNT],
            "securityContext": READ_ONLY_ROOT,
        }
        if endpoint.scheme == "pvc":
            container["volumeMounts"].append({"name": "models", "mountPath": MODELS, "readOnly": True})
        return container

    def tracing(self, endpoint: Endpoint, otlp: Otlp) -> tuple[list[str], list[dict]]:
        """OpenTelemetry trace mode (triton-inference-server/server docs/user_guide/trace.md at the 26.09 branch:
        ``--trace-config mode=opentelemetry``, OTLP/HTTP to ``opentelemetry,url``; level ``TIMESTAMPS``, the only
        level that mode supports; ``rate``: one request in N, from the mesh's sampling percent)."""
        rate = max(1, round(100 / otlp.sampling_percent)) if otlp.sampling_percent else 0
        if not rate:
            return [], []
        return [
            "--trace-config=mode=opentelemetry",
            "--trace-config=level=TIMESTAMPS",
            f"--trace-config=rate={rate}",
            f"--trace-config=opentelemetry,url={otlp.http_traces_url}",
            f"--trace-config=opentelemetry,resource=service.name={endpoint.name}",
        ], []

    def alert_rules(self, context: AlertContext) -> list[dict]:
        alert, it, pods, labels = context.alert, context.it, context.pods, context.labels
        latency, errors, queue_ms = context.latency, context.errors, num(context.platform.triton_queue_ms)
        return [
            alert(
                "AiPlatformEndpointLatencyHigh",
                ratio_of_rates("nv_inference_request_duration_us", pods, "nv_inference_request_success", pods)
                + f" / 1e6 > {latency}",
                "10m",
                "warning",
                f"{it}: mean latency above {latency}s",
                f"{it} (Triton) takes {{{{ $value | humanizeDuration }}}} per request on average (Triton "
                f"publishes no latency histogram by default); the threshold is {latency}s.",
                **labels,
            ),
            alert(
                "AiPlatformEndpointErrorRate",
                f"sum (rate({selector('nv_inference_request_failure', **pods)}[{RATE}])) / "
                f"(sum (rate({selector('nv_inference_request_success', **pods)}[{RATE}])) + "
                f"sum (rate({selector('nv_inference_request_failure', **pods)}[{RATE}]))) > {errors}",
                "10m",
                "critical",
                f"{it}: more than {errors} of inference requests fail",
                f"{{{{ $value | humanizePercentage }}}} of the inference requests of {it} fail in Triton "
                f"(rejected by the scheduler, canceled or failed in the backend); the threshold is {errors}.",
                **labels,
            ),
            alert(
                "AiPlatformTritonQueueTimeHigh",
                ratio_of_rates("nv_inference_queue_duration_us", pods, "nv_inference_request_success", pods)
                + f" / 1e3 > {queue_ms}",
                "10m",
                "warning",
                f"{it}: requests wait in Triton's queue",
                f"Requests of {it} wait {{{{ $value | humanize }}}}ms on average in Triton's scheduler queue "
                f"(threshold {queue_ms}ms): more instances or replicas are needed.",
                **labels,
            ),
        ]

    def dashboard_row(self, board, pods: dict[str, str], thresholds: Alerts) -> None:
        by, legend = "namespace, model", "{{namespace}}/{{model}}"
        (
            board.row("Triton")
            .timeseries(
                "Mean request latency",
                [
                    (
                        ratio_of_rates(
                            "nv_inference_request_duration_us", pods, "nv_inference_request_success", pods, by=by
                        )
                        + " / 1e3",
                        legend,
                    )
                ],
                "ms",
                description="Triton publishes cumulative durations, not a latency histogram, by default.",
            )
            .timeseries(
                "Mean queue time",
                [
                    (
                        ratio_of_rates(
                            "nv_inference_queue_duration_us", pods, "nv_inference_request_success", pods, by=by
                        )
                        + " / 1e3",
                        legend,
                    )
                ],
                "ms",
                threshold=thresholds.triton_queue_ms,
            )
            .timeseries(
                "Pending requests",
                [
                    (
                        f"sum by (namespace, pod) ({selector('nv_inference_pending_request_count', **pods)})",
                        "{{namespace}}/{{pod}}",
                    )
                ],
                "short",
            )
            .timeseries(
                "Requests per second",
                [
                    (
                        f"sum by ({by}) (rate({selector('nv_inference_request_success', **pods)}[{RATE}]))",
                        f"{legend} ok",
                    ),
                    (
                        f"sum by ({by}) (rate({selector('nv_inference_request_failure', **pods)}[{RATE}]))",
                        f"{legend} failed",
                    ),
                ],
                "reqps",
            )
        )


ENGINE = Triton()
