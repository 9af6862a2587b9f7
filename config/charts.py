"""What the pinned charts deploy that the program must know at run time, each fact with its source at the pinned tag:
which of their pods run at a system-critical priority class (some platforms admit those only beside a quota scoped to
the classes: ``components.meta.helm_release``).

A class comes either from a values key (``values_path``, dotted; the chart's default when the release leaves it unset)
or from the chart's templates or operator code (``values_path`` None: always). ``tests/test_platforms.py`` derives the
same from the charts' ``values.yaml`` files and the rendered values, so a chart whose values set a critical class that
this table misses fails there.
"""

from __future__ import annotations

from typing import NamedTuple

CRITICAL_CLASSES = ("system-node-critical", "system-cluster-critical")


class PriorityClassSetting(NamedTuple):
    """Where the priority class of some of a chart's pods comes from: ``values_path`` (dotted) when a values key sets
    it, else the templates or the operator's code; ``default`` when the release leaves the key unset (or, with
    ``empty_is_default``, sets it empty); ``enabled_by``: the values key (and its default) that turns those pods on."""

    pods: str
    values_path: str | None
    default: str
    source: str
    empty_is_default: bool = False
    enabled_by: tuple[str, bool] | None = None


GPU_OPERATOR = "NVIDIA/gpu-operator@v26.7.0"
VOLCANO = "volcano-sh/volcano@v1.15.1:installer/helm/chart/volcano/templates"
CLUSTER_CRITICAL, NODE_CRITICAL = "system-cluster-critical", "system-node-critical"

CHART_PRIORITY: dict[str, tuple[PriorityClassSetting, ...]] = {
    "gpu-operator": (
        PriorityClassSetting(
            "the operator Deployment",
            "operator.priorityClassName",
            NODE_CRITICAL,
            f"{GPU_OPERATOR}:deployments/gpu-operator/values.yaml:80",
        ),
        PriorityClassSetting(
            "the operand DaemonSets (driver, toolkit, validator, device plugin, GFD, DCGM exporter, MIG manager)",
            "daemonsets.priorityClassName",
            NODE_CRITICAL,
            f"{GPU_OPERATOR}:assets/ (hard-coded), controllers/object_controls.go:813-823 (a non-empty value replaces it)",
            empty_is_default=True,
        ),
        PriorityClassSetting(
            "Node Feature Discovery (master, worker, gc)",
            "node-feature-discovery.priorityClassName",
            NODE_CRITICAL,
            f"{GPU_OPERATOR}:deployments/gpu-operator/values.yaml:619",
            enabled_by=("nfd.enabled", True),
        ),
    ),
    "volcano": tuple(
        PriorityClassSetting(
            pods, None, CLUSTER_CRITICAL, f"{VOLCANO}/{template}", enabled_by=(f"custom.{switch}_enable", True)
        )
        for pods, template, switch in (
            ("the admission-init Job (a pre-install hook)", "admission-init.yaml:98", "admission"),
            ("the admission Deployment", "admission.yaml:131", "admission"),
            ("the controllers Deployment", "controllers.yaml:163", "controller"),
            ("the scheduler Deployment", "scheduler.yaml:191", "scheduler"),
        )
    ),
    "cni": (
        PriorityClassSetting(
            "the istio-cni-node DaemonSet",
            None,
            NODE_CRITICAL,
            "istio/istio@1.30.3:manifests/charts/istio-cni/templates/daemonset.yaml:84",
        ),
    ),
}


def _lookup(values: dict, path: str) -> object:
    node: object = values
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def critical_priority_classes(chart: str, values: dict) -> set[str]:
    """The system-critical priority classes the pods of ``chart`` run at with these release values."""
    classes = set()
    for setting in CHART_PRIORITY.get(chart, ()):
        if setting.enabled_by:
            path, default = setting.enabled_by
            enabled = _lookup(values, path)
            if not (default if enabled is None else enabled):
                continue
        value = None if setting.values_path is None else _lookup(values, setting.values_path)
        if value is None or (value == "" and setting.empty_is_default):
            value = setting.default
        if value in CRITICAL_CLASSES:
            classes.add(str(value))
    return classes
