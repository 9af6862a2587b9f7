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


# --------------------------------------------------------------------------------------------------------------
# The Deployments and StatefulSets each pinned chart creates, at the release name the program gives it: each gets a
# VerticalPodAutoscaler (``components.vpa``). Derived by rendering the pinned chart (its sources at the tag of
# ../shared/upstream/SOURCES.md, subcharts included) with ``helm template`` and the values the program gives, for
# every stack of the project and of examples/ (dev, prod, aks, generic); the template that names each is its source.
# DaemonSets get none (one pod per node, sized by the node's work), nor Jobs. Not here: what operators create at run
# time from custom resources (the Prometheus and Alertmanager StatefulSets of the Prometheus Operator, CloudNativePG's
# Postgres pods, KServe's predictors: an endpoint's with ``models[].vpa``), and the charts without workloads (Istio
# base and CNI, KServe's CRDs and runtime configs).


class ChartWorkload(NamedTuple):
    """A Deployment or StatefulSet of a chart's release named ``release``; ``when``: (values path, the chart's
    default, the value that creates it) when a values key decides whether it exists."""

    kind: str
    name: str
    source: str
    when: tuple[str, object, object] | None = None


def _workloads(release: str, source: str, *found: tuple) -> tuple[str, tuple[ChartWorkload, ...]]:
    """A chart's entry: ``found`` as (kind, name, template under ``source``[, when])."""
    return release, tuple(
        ChartWorkload(kind, name, f"{source}/{template}", *when) for kind, name, template, *when in found
    )


KEDA_SOURCE = "kedacore/charts@v2.20.2:keda/templates"
MILVUS_SOURCE = "zilliztech/milvus-helm@milvus-5.0.19:charts/milvus/templates"
MILVUS_CLUSTER = ("cluster.enabled", True, True)
MILVUS_STANDALONE = ("cluster.enabled", True, False)
LOKI_SOURCE = "grafana-community/helm-charts@loki-18.11.0:charts/loki/templates"
LOKI_MONOLITHIC = ("deploymentMode", "Monolithic", "Monolithic")
LOKI_SCALABLE = ("deploymentMode", "Monolithic", "SimpleScalable")
TEMPO_SOURCE = "grafana-community/helm-charts@tempo-2.2.4:charts/tempo/templates"
OTEL_COLLECTOR_SOURCE = (
    "open-telemetry/opentelemetry-helm-charts@opentelemetry-collector-0.170.0:charts/opentelemetry-collector/templates"
)

# chart -> (the release name the names assume, its workloads)
CHART_WORKLOADS: dict[str, tuple[str, tuple[ChartWorkload, ...]]] = {
    "gpu-operator": _workloads(
        "gpu-operator",
        "NVIDIA/gpu-operator@v26.7.0:deployments/gpu-operator",
        ("Deployment", "gpu-operator", "templates/operator.yaml"),
        (
            "Deployment",
            "gpu-operator-node-feature-discovery-master",
            "charts/node-feature-discovery/templates/master.yaml",
            ("nfd.enabled", True, True),
        ),
        (
            "Deployment",
            "gpu-operator-node-feature-discovery-gc",
            "charts/node-feature-discovery/templates/nfd-gc.yaml",
            ("nfd.enabled", True, True),
        ),
    ),
    "volcano": _workloads(
        "volcano",
        VOLCANO,
        ("Deployment", "volcano-admission", "admission.yaml", ("custom.admission_enable", True, True)),
        ("Deployment", "volcano-controllers", "controllers.yaml", ("custom.controller_enable", True, True)),
        ("Deployment", "volcano-scheduler", "scheduler.yaml", ("custom.scheduler_enable", True, True)),
    ),
    "cert-manager": _workloads(
        "cert-manager",
        "cert-manager/cert-manager@v1.21.1:deploy/charts/cert-manager/templates",
        ("Deployment", "cert-manager", "deployment.yaml"),
        ("Deployment", "cert-manager-cainjector", "cainjector-deployment.yaml", ("cainjector.enabled", True, True)),
        ("Deployment", "cert-manager-webhook", "webhook-deployment.yaml"),
    ),
    "keda": _workloads(
        "keda",
        KEDA_SOURCE,
        ("Deployment", "keda-operator", "manager/deployment.yaml"),
        ("Deployment", "keda-operator-metrics-apiserver", "metrics-server/deployment.yaml"),
        ("Deployment", "keda-admission-webhooks", "webhooks/deployment.yaml", ("webhooks.enabled", True, True)),
    ),
    "kserve-resources": _workloads(
        "kserve-resources",
        "kserve/kserve@v0.20.0:charts/kserve-resources/templates",
        ("Deployment", "kserve-controller-manager", "kserve/resources.yaml (from files/kserve/resources.yaml)"),
    ),
    "istiod": _workloads(
        "istiod",
        "istio/istio@1.30.3:manifests/charts/istio-control/istio-discovery/templates",
        ("Deployment", "istiod", "deployment.yaml"),
    ),
    "gateway": _workloads(
        "istio-ingressgateway",
        "istio/istio@1.30.3:manifests/charts/gateway/templates",
        ("Deployment", "istio-ingressgateway", "deployment.yaml"),
    ),
    "kube-prometheus-stack": _workloads(
        "kube-prometheus-stack",
        "prometheus-community/helm-charts@kube-prometheus-stack-88.5.3:charts/kube-prometheus-stack",
        ("Deployment", "kube-prometheus-stack-operator", "templates/prometheus-operator/deployment.yaml"),
        ("Deployment", "kube-prometheus-stack-grafana", "charts/grafana/templates/deployment.yaml"),
        (
            "Deployment",
            "kube-prometheus-stack-kube-state-metrics",
            "charts/kube-state-metrics/templates/deployment.yaml",
        ),
    ),
    "milvus": _workloads(
        "milvus",
        MILVUS_SOURCE,
        ("Deployment", "milvus-standalone", "standalone-deployment.yaml", MILVUS_STANDALONE),
        ("Deployment", "milvus-proxy", "proxy-deployment.yaml", MILVUS_CLUSTER),
        ("Deployment", "milvus-mixcoord", "mixcoord-deployment.yaml", MILVUS_CLUSTER),
        ("Deployment", "milvus-datanode", "datanode-deployment.yaml", MILVUS_CLUSTER),
        ("Deployment", "milvus-querynode", "querynode-deployment.yaml", MILVUS_CLUSTER),
        ("Deployment", "milvus-streamingnode", "streamingnode-deployment.yaml", MILVUS_CLUSTER),
        (
            "StatefulSet",
            "milvus-etcd",
            "(subchart charts/etcd-8.12.0.tgz) statefulset.yaml",
            ("etcd.enabled", True, True),
        ),
    ),
    "seaweedfs": _workloads(
        "seaweedfs",
        "seaweedfs/seaweedfs@4.44:k8s/charts/seaweedfs/templates",
        ("StatefulSet", "seaweedfs-master", "master/master-statefulset.yaml", ("master.enabled", True, True)),
        ("StatefulSet", "seaweedfs-volume", "volume/volume-statefulset.yaml", ("volume.enabled", True, True)),
        ("StatefulSet", "seaweedfs-filer", "filer/filer-statefulset.yaml", ("filer.enabled", True, True)),
        ("Deployment", "seaweedfs-s3", "s3/s3-deployment.yaml", ("s3.enabled", False, True)),
    ),
    "cloudnative-pg": _workloads(
        "cloudnative-pg",
        "cloudnative-pg/charts@cloudnative-pg-v0.29.0:charts/cloudnative-pg/templates",
        ("Deployment", "cloudnative-pg", "deployment.yaml"),
    ),
    "kubeflow-trainer": _workloads(
        "kubeflow-trainer",
        "kubeflow/trainer@v2.3.0:charts/kubeflow-trainer",
        ("Deployment", "kubeflow-trainer-controller-manager", "templates/manager/deployment.yaml"),
        (
            "Deployment",
            "jobset-controller",
            "charts/jobset (kubernetes-sigs/jobset@v0.12.0) templates/controller/deployment.yaml",
            ("jobset.install", True, True),
        ),
    ),
    "argo-workflows": _workloads(
        "argo-workflows",
        "argoproj/argo-helm@argo-workflows-1.0.18:charts/argo-workflows/templates",
        ("Deployment", "argo-workflows-workflow-controller", "controller/workflow-controller-deployment.yaml"),
        ("Deployment", "argo-workflows-server", "server/server-deployment.yaml", ("server.enabled", True, True)),
    ),
    "kuberay-operator": _workloads(
        "kuberay-operator",
        "ray-project/kuberay@v1.7.0:helm-chart/kuberay-operator/templates",
        ("Deployment", "kuberay-operator", "deployment.yaml"),
    ),
    "external-secrets": _workloads(
        "external-secrets",
        "external-secrets/external-secrets@helm-chart-2.9.0:deploy/charts/external-secrets/templates",
        ("Deployment", "external-secrets", "deployment.yaml"),
        ("Deployment", "external-secrets-webhook", "webhook-deployment.yaml", ("webhook.create", True, True)),
        (
            "Deployment",
            "external-secrets-cert-controller",
            "cert-controller-deployment.yaml",
            ("certController.create", True, True),
        ),
    ),
    "vertical-pod-autoscaler": _workloads(
        "vertical-pod-autoscaler",
        "kubernetes/autoscaler@vertical-pod-autoscaler-chart-0.11.0:vertical-pod-autoscaler/charts/"
        "vertical-pod-autoscaler/templates",
        (
            "Deployment",
            "vertical-pod-autoscaler-recommender",
            "recommender-deployment.yaml",
            ("recommender.enabled", True, True),
        ),
        (
            "Deployment",
            "vertical-pod-autoscaler-updater",
            "updater-deployment.yaml",
            ("updater.enabled", True, True),
        ),
        (
            "Deployment",
            "vertical-pod-autoscaler-admission-controller",
            "admission-controller-deployment.yaml",
            ("admissionController.enabled", True, True),
        ),
    ),
    "loki": _workloads(
        "loki",
        LOKI_SOURCE,
        ("StatefulSet", "loki", "monolithic/workload.yaml", LOKI_MONOLITHIC),
        ("StatefulSet", "loki-write", "write/workload.yaml", LOKI_SCALABLE),
        ("Deployment", "loki-read", "read/workload.yaml", LOKI_SCALABLE),
        ("StatefulSet", "loki-backend", "backend/workload.yaml", LOKI_SCALABLE),
        ("StatefulSet", "loki-chunks-cache", "chunks-cache/statefulset.yaml", ("chunksCache.enabled", True, True)),
        ("StatefulSet", "loki-results-cache", "results-cache/statefulset.yaml", ("resultsCache.enabled", True, True)),
        ("Deployment", "loki-gateway", "gateway/deployment.yaml", ("gateway.enabled", True, True)),
    ),
    "tempo": _workloads("tempo", TEMPO_SOURCE, ("StatefulSet", "tempo", "statefulset.yaml")),
    # mode has no default (values.yaml mode: ""): the program sets deployment.
    "opentelemetry-collector": _workloads(
        "opentelemetry-collector",
        OTEL_COLLECTOR_SOURCE,
        ("Deployment", "opentelemetry-collector", "deployment.yaml", ("mode", "", "deployment")),
    ),
}
# Charts that create no Deployment or StatefulSet with the program's values (rendered: none). Alloy: a DaemonSet
# (controller.type daemonset, grafana/alloy helm-chart/1.11.1 operations/helm/charts/alloy/templates/controllers).
CHARTS_WITHOUT_WORKLOADS = ("base", "cni", "kserve-crd", "kserve-runtime-configs", "alloy")


def chart_workloads(chart: str, release: str, values: dict) -> tuple[ChartWorkload, ...]:
    """The Deployments and StatefulSets a release ``release`` of ``chart`` creates with ``values``; a chart this table
    lacks, or a release name other than the one its names were recorded for, is an error (record them first)."""
    if chart in CHARTS_WITHOUT_WORKLOADS:
        return ()
    if chart not in CHART_WORKLOADS:
        raise KeyError(
            f"chart {chart!r} has no entry in config.charts.CHART_WORKLOADS: render it and record its workloads"
        )
    recorded, workloads = CHART_WORKLOADS[chart]
    if release != recorded:
        raise KeyError(f"chart {chart!r}: workloads recorded for release {recorded!r}, not {release!r}")
    found = []
    for workload in workloads:
        if workload.when:
            path, default, wanted = workload.when
            value = _lookup(values, path)
            if (default if value is None else value) != wanted:
                continue
        found.append(workload)
    return tuple(found)
