"""A toy engine, all in this one module: the proof that adding an engine is one file (``tests/test_engines.py``
registers it for the length of a test; a real engine is a module of ``components/serving/engines/`` and its own pinned
image in ``config/versions.py`` and ``config/images.py``).

It serves ``pvc://`` models on port 9000, publishes ``toy_queue_length`` on its metrics port 9100, scales on it,
alerts when it grows and has a dashboard row.
"""

from __future__ import annotations

from typing import ClassVar

from components.monitoring.promql import selector
from components.serving.engines.base import (
    HOME_ENV,
    MODELS,
    READ_ONLY_ROOT,
    TMP_MOUNT,
    AlertContext,
    ServerEngine,
    model_path,
    probe,
)
from config import images


class Toy(ServerEngine):
    name = "toy"
    position = 99
    schemes = ("pvc",)
    default_target = 3
    contract = images.TRITON  # borrowed: a real engine names its own pinned image's contract
    ports = (("http", 9000, "http"), ("metrics", 9100, "http"))
    metrics_scrape: ClassVar[dict] = {"port": "metrics", "path": "/metrics"}
    load_query = 'sum(toy_queue_length{{namespace="{namespace}",pod=~"{pods}"}})'
    metric_sources: ClassVar[dict[str, str]] = {
        "toy_queue_length": "the toy server's /metrics: gauge, requests waiting"
    }

    def container(self, endpoint, image: str) -> dict:
        return {
            "name": "toy",
            "image": image,
            "command": ["toy-server"],
            "args": [f"--model={model_path(endpoint)}", "--name", endpoint.name],
            "env": HOME_ENV,
            "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p, _ in self.ports],
            "readinessProbe": probe("/ready", "http", 5, 3),
            "volumeMounts": [TMP_MOUNT, {"name": "models", "mountPath": MODELS, "readOnly": True}],
            "securityContext": READ_ONLY_ROOT,
        }

    def alert_rules(self, context: AlertContext) -> list[dict]:
        return [
            context.alert(
                "ToyQueueLong",
                f"max({selector('toy_queue_length', **context.pods)}) > 10",
                "5m",
                "warning",
                f"{context.it}: toy queue long",
                "Requests wait in the toy server.",
                **context.labels,
            )
        ]

    def dashboard_row(self, board, pods: dict[str, str], thresholds) -> None:
        board.row("Toy").timeseries("Queue", [(selector("toy_queue_length", **pods), "{{pod}}")], "short")


ENGINE = Toy()
