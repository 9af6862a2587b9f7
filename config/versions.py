"""Every chart version, chart repository and image tag the platform installs: the only place that names one.

Chart pins match the upstream data in ``../shared/upstream/`` (see its ``SOURCES.md``); a test checks that
each pinned chart version equals the upstream ``Chart.yaml``. Never ``latest``.
"""

from typing import NamedTuple


class Chart(NamedTuple):
    """A pinned Helm chart: its name in the repository, the repository URL and the exact version."""

    name: str
    repo: str
    version: str


VOLCANO = Chart("volcano", "https://volcano-sh.github.io/helm-charts", "1.15.1")
# The Volcano chart takes one tag for all of its images (basic.image_tag_version).
VOLCANO_IMAGE_TAG = "v1.15.1"

GPU_OPERATOR = Chart("gpu-operator", "https://helm.ngc.nvidia.com/nvidia", "v26.7.0")
# NVIDIA data-center driver the GPU Operator installs where the driver is not preinstalled.
GPU_DRIVER = "595.91.07"
# Image repositories of the GPU Operator chart's components, by values path (the chart's defaults; the chart
# pins their tags).
# A stack's cluster.imageRegistry replaces the registry host of each (nvcr.io/nvidia/k8s -> <mirror>/nvidia/k8s).
GPU_OPERATOR_REPOSITORIES = {
    "operator": "nvcr.io/nvidia",
    "validator": "nvcr.io/nvidia",
    "driver": "nvcr.io/nvidia",
    "toolkit": "nvcr.io/nvidia/k8s",
    "devicePlugin": "nvcr.io/nvidia",
    "dcgmExporter": "nvcr.io/nvidia/k8s",
    "gfd": "nvcr.io/nvidia",
    "migManager": "nvcr.io/nvidia/cloud-native",
    "nodeStatusExporter": "nvcr.io/nvidia",
    "driver.manager": "nvcr.io/nvidia/cloud-native",
    "node-feature-discovery.image": "registry.k8s.io/nfd/node-feature-discovery",
}

# The kserve-resources chart's default kube-rbac-proxy image, restated because a registry mirror replaces the
# whole image value (the chart keeps repository and tag in one string).
KSERVE_RBAC_PROXY_IMAGE = "quay.io/brancz/kube-rbac-proxy:v0.18.0"
# Model server images.
VLLM_IMAGE = "vllm/vllm-openai:v0.33.0"
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:26.09-py3"
# Copies s3:// model sources into an endpoint's model cache.
AWS_CLI_IMAGE = "amazon/aws-cli:2.27.0"

CERT_MANAGER = Chart("cert-manager", "https://charts.jetstack.io", "v1.21.1")
KEDA = Chart("keda", "https://kedacore.github.io/charts", "2.20.2")
# KServe publishes its charts as OCI artifacts: a Release takes chart=f"{repo}/{name}" and no repository_opts.
KSERVE_CRD = Chart("kserve-crd", "oci://ghcr.io/kserve/charts", "v0.20.0")
KSERVE_RESOURCES = Chart("kserve-resources", "oci://ghcr.io/kserve/charts", "v0.20.0")
KSERVE_RUNTIME_CONFIGS = Chart("kserve-runtime-configs", "oci://ghcr.io/kserve/charts", "v0.20.0")

# Istio (sidecar mode with the CNI node agent). The charts take their images from `global.hub` (default below)
# and `global.tag` (the chart's appVersion); the gateway's proxy image comes from istiod's injector.
ISTIO_REPO = "https://istio-release.storage.googleapis.com/charts"
ISTIO_BASE = Chart("base", ISTIO_REPO, "1.30.3")
ISTIOD = Chart("istiod", ISTIO_REPO, "1.30.3")
ISTIO_CNI = Chart("cni", ISTIO_REPO, "1.30.3")
ISTIO_GATEWAY = Chart("gateway", ISTIO_REPO, "1.30.3")
ISTIO_HUB = "docker.io/istio"

# Prometheus Operator (and its CRDs), Prometheus, Alertmanager, Grafana, kube-state-metrics, node-exporter. The chart
# pins every image tag (its appVersion and its subcharts'); a stack's cluster.imageRegistry replaces the registries.
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts", "88.5.3")

# Milvus vector database (appVersion 2.6.15). The chart pins its image tags: milvusdb/milvus v2.6.15 and, for its
# bundled Bitnami etcd subchart, milvusdb/etcd 3.5.25-r1 (Milvus's own etcd build on Docker Hub: the parent chart
# overrides the subchart's bitnami/etcd default, which the Bitnami registry change put behind a paid catalogue).
# Their repositories (the chart's defaults, image.all and etcd.image), for a stack's cluster.imageRegistry mirror.
MILVUS = Chart("milvus", "https://zilliztech.github.io/milvus-helm", "5.0.19")
MILVUS_IMAGE = "milvusdb/milvus"
MILVUS_ETCD_IMAGE = "milvusdb/etcd"

# ML services. SeaweedFS is the in-cluster S3-compatible object store of MLflow artifacts and Milvus segments (MinIO is
# source-only since October 2025, with no maintained images). Every SeaweedFS component runs chrislusf/seaweedfs:<the
# chart's appVersion, 4.44> from Docker Hub, pinned by the chart; cluster.imageRegistry replaces the registry.
SEAWEEDFS = Chart("seaweedfs", "https://seaweedfs.github.io/seaweedfs/helm", "4.44.0")
# CloudNativePG operator (and its CRDs) for MLflow's in-cluster Postgres. The chart pins the operator's tag (its
# appVersion 1.30.0); the repository is the chart's default, restated because a registry mirror replaces it.
CLOUDNATIVE_PG = Chart("cloudnative-pg", "https://cloudnative-pg.github.io/charts", "0.29.0")
CLOUDNATIVE_PG_REPOSITORY = "ghcr.io/cloudnative-pg/cloudnative-pg"
# The Postgres operand of the CNPG Cluster: PostgreSQL 18, "standard" image (all locales, pgvector, pgaudit) on
# Debian trixie. Tags read <major.minor>-<type>-<os>; the rolling ":18" tags are not used.
POSTGRES_IMAGE = "ghcr.io/cloudnative-pg/postgresql:18.6-standard-trixie"
# MLflow tracking server. The plain ghcr.io/mlflow/mlflow:<version> image has neither psycopg2 nor boto3; the
# "-full" variant of the same release (published since v3.9.0) adds the database drivers and cloud storage clients
# (mlflow[extras,db,...]).
MLFLOW_VERSION = "v3.18.0"
MLFLOW_IMAGE = f"ghcr.io/mlflow/mlflow:{MLFLOW_VERSION}-full"

# Optional platform services (issue 10). Kubeflow Trainer v2 is published as an OCI chart; its JobSet subchart pins
# the JobSet image. Image tags of these services are pinned below their charts.
KUBEFLOW_TRAINER = Chart("kubeflow-trainer", "oci://ghcr.io/kubeflow/charts", "2.3.0")
# Argo Workflows: the chart pins controller, server and executor images at its appVersion v4.0.6 (images.tag
# defaults to it); the pipeline's register step reuses MLFLOW_IMAGE.
ARGO_WORKFLOWS = Chart("argo-workflows", "https://argoproj.github.io/argo-helm", "1.0.18")
KUBERAY_OPERATOR = Chart("kuberay-operator", "https://ray-project.github.io/kuberay-helm", "1.7.0")
# Kubeflow Trainer: the chart has no appVersion and derives the manager's tag as "v" + chart version; restated here
# (image.tag) so the tag is pinned where every tag is. Repositories restated for a registry mirror: the manager's
# (image.registry + image.repository) and the JobSet subchart's (jobset.image.repository; the subchart pins v0.12.0).
TRAINER_IMAGE_TAG = "v2.3.0"
TRAINER_IMAGE = "ghcr.io/kubeflow/trainer/trainer-controller-manager"
JOBSET_IMAGE = "registry.k8s.io/jobset/jobset"
# The torch image of the Trainer's own torch-distributed runtime at v2.3.0; the platform's torch runtimes use it too.
TORCH_IMAGE = "pytorch/pytorch:2.10.0-cuda12.8-cudnn9-runtime"
# KubeRay operator image repository (the chart pins the tag, v1.7.0), restated for a registry mirror.
KUBERAY_OPERATOR_IMAGE = "quay.io/kuberay/operator"
EXTERNAL_SECRETS = Chart("external-secrets", "https://charts.external-secrets.io", "2.9.0")
# The image of its controller, webhook and cert-controller (the chart pins the tag, its appVersion v2.9.0),
# restated for a registry mirror.
EXTERNAL_SECRETS_IMAGE = "ghcr.io/external-secrets/external-secrets"
# Vertical Pod Autoscaler (kubernetes/autoscaler, tag vertical-pod-autoscaler-chart-0.11.0): the chart pins the
# recommender's tag (its appVersion 1.7.1); the repository, restated for a registry mirror (recommender.image).
VPA = Chart("vertical-pod-autoscaler", "https://kubernetes.github.io/autoscaler", "0.11.0")
VPA_RECOMMENDER_IMAGE = "registry.k8s.io/autoscaling/vpa-recommender"
# Logs (issue 21). Loki's OSS chart moved to grafana-community/helm-charts (forked at 6.55.0); 18.11.0 pins Loki 3.7.6
# (docker.io/grafana/loki), memcached 1.6.45-alpine and memcached-exporter v0.17.0 for its caches. Alloy's chart
# (grafana/alloy helm-chart/1.11.1) pins Alloy v1.18.1 (docker.io/grafana/alloy) and its config reloader
# (quay.io/prometheus-operator/prometheus-config-reloader v0.91.0). Both charts take a registry mirror as one value
# (Loki ``global.imageRegistry``, Alloy ``global.image.registry``): paths and tags stay the charts'.
# Rate limits (issue 22): Envoy's global rate-limit service. No versioned release since v1.4.0 (2020): every commit to
# main is pushed as docker.io/envoyproxy/ratelimit:<8-char sha> (envoyproxy/ratelimit Makefile GIT_REF/VERSION,
# .github/workflows/main.yaml); f2fb1577 is main at 2026-07-05, after the Prometheus sink (USE_PROMETHEUS, #681).
RATELIMIT_IMAGE = "docker.io/envoyproxy/ratelimit:f2fb1577"
# Its counters' store: Valkey (BSD, the Redis fork) 8.0.2, Debian-based image, user valkey uid 999
# (valkey-io/valkey-container versions.json and 8.0/debian/Dockerfile).
VALKEY_IMAGE = "docker.io/valkey/valkey:8.0.2"
# KV-cache- and queue-aware routing (issue 22). No chart installs the Gateway API or Inference Extension CRDs: the
# projects publish them as release manifests (`kubectl apply -f`), applied here from the pinned release's URL
# (gateway-api-inference-extension v1.6.0 hack/release-quickstart.sh: releases/download/<tag>/manifests.yaml; Gateway
# API: releases/download/<tag>/standard-install.yaml). Their contents are ../shared/upstream/gateway-api-crds/crds and
# inference-extension/crds (InferencePool v1), which the schema tier validates against.
GATEWAY_API_CRDS = "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.1/standard-install.yaml"
INFERENCE_EXTENSION_CRDS = (
    "https://github.com/kubernetes-sigs/gateway-api-inference-extension/releases/download/v1.6.0/manifests.yaml"
)
# The endpoint picker the inferencepool chart v1.5.0 (the last release that ships it) runs: its values.yaml
# inferenceExtension.image (registry.k8s.io, gateway-api-inference-extension/epp, v1.5.0).
EPP_IMAGE = "registry.k8s.io/gateway-api-inference-extension/epp:v1.5.0"
LOKI = Chart("loki", "https://grafana-community.github.io/helm-charts", "18.11.0")
ALLOY = Chart("alloy", "https://grafana.github.io/helm-charts", "1.11.1")
# Traces (issue 21). Tempo's monolithic chart (grafana-community/helm-charts tempo-2.2.4) pins Tempo 2.10.8
# (docker.io/grafana/tempo; ``tempo.registry`` takes a mirror). The OpenTelemetry Collector's chart
# (open-telemetry/opentelemetry-helm-charts opentelemetry-collector-0.170.0, appVersion 0.158.0) has no default image:
# the Kubernetes distribution (otelcol-k8s: the OTLP receiver, the k8sattributes and resource processors, the routing
# connector and the OTLP exporter), its tag the chart's appVersion.
TEMPO = Chart("tempo", "https://grafana-community.github.io/helm-charts", "2.2.4")
OTEL_COLLECTOR = Chart(
    "opentelemetry-collector", "https://open-telemetry.github.io/opentelemetry-helm-charts", "0.170.0"
)
OTEL_COLLECTOR_IMAGE = "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-k8s"

# Tenant isolation in Grafana (issue 21 part 3): prometheus-community/prom-label-proxy v0.14.0 (newest tag, commit
# c68b3c8f0a1b8e7961113e26961bc8a637c994b1), image published on quay.io (README.md "Docker"). What the platform relies
# on, from that tag: Dockerfile (FROM quay.io/prometheus/busybox-linux-amd64:glibc, USER nobody, ENTRYPOINT
# /bin/prom-label-proxy); main.go flags (components.monitoring.label_proxy says which and why).
PROM_LABEL_PROXY_IMAGE = "quay.io/prometheuscommunity/prom-label-proxy:v0.14.0"

CHARTS: dict[str, Chart] = {
    chart.name: chart
    for chart in (
        VOLCANO,
        GPU_OPERATOR,
        CERT_MANAGER,
        KEDA,
        KSERVE_CRD,
        KSERVE_RESOURCES,
        KSERVE_RUNTIME_CONFIGS,
        ISTIO_BASE,
        ISTIOD,
        ISTIO_CNI,
        ISTIO_GATEWAY,
        KUBE_PROMETHEUS_STACK,
        MILVUS,
        SEAWEEDFS,
        CLOUDNATIVE_PG,
        KUBEFLOW_TRAINER,
        ARGO_WORKFLOWS,
        KUBERAY_OPERATOR,
        EXTERNAL_SECRETS,
        VPA,
        LOKI,
        ALLOY,
        TEMPO,
        OTEL_COLLECTOR,
    )
}
