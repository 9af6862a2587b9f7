"""The reachability contract: every path the platform needs open (controllers, webhook callers, scrapers -> pods;
pods -> DNS, the mesh, shared services) and every path that must stay closed (tenant -> another tenant, a platform
database or store internals, the API server where not granted, the cloud metadata service), each with its source.

Pods the program renders (Deployments, Jobs, InferenceServices' predictors) come from the rendered objects; pods
that Helm charts or operators create are described here as data, each from its upstream chart or code at the pinned
tag (``/work/shared/upstream/SOURCES.md``). ``tests/reachability.py`` evaluates the rows; ``tests/test_reachability.py``
asserts them for every stack file.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tests.reachability import Address, Cluster, Pod, Request, match_labels

# --- facts from upstream, with their sources ------------------------------------------------------------------------

# kubernetes/kubernetes cluster/addons/dns/coredns/coredns.yaml.base (and kubeadm's CoreDNS): pods labelled
# k8s-app=kube-dns in kube-system, ports dns 53/UDP, dns-tcp 53/TCP.
KUBE_DNS = Pod(
    "coredns",
    "kube-system",
    {"k8s-app": "kube-dns"},
    {"dns": 53, "dns-tcp": 53},
    source="kubernetes cluster/addons/dns/coredns/coredns.yaml.base",
)
# istio/istio 1.30.3 manifests/charts/istio-control/istio-discovery/templates/deployment.yaml: labels app=istiod,
# istio=pilot, sidecar.istio.io/inject=false; ports 8080, 15010 (xDS, plain), 15012 (xDS and CA, TLS), 15014
# (monitoring), 15017 (webhooks). Istio "Application Requirements": sidecars reach istiod on 15012.
ISTIOD_SOURCE = "istio/istio 1.30.3 manifests/charts/istio-control/istio-discovery/templates/deployment.yaml"
ISTIOD_PORTS = {"grpc-xds": 15010, "https-dns": 15012, "http-monitoring": 15014, "https-webhook": 15017}
# istio/istio 1.30.3 manifests/charts/gateway/templates/deployment.yaml and _helpers.tpl: pods labelled
# sidecar.istio.io/inject=true (the injector's gateway template makes the pod a proxy with the release's identity),
# app=<release>, istio=<release without istio->; port http-envoy-prom 15090; service account <release>.
GATEWAY_SOURCE = "istio/istio 1.30.3 manifests/charts/gateway/templates/deployment.yaml, _helpers.tpl"
# Injected pods (istio/istio 1.30.3 manifests/charts/istio-control/istio-discovery/files/injection-template.yaml):
# the injector adds the label security.istio.io/tlsMode=istio and the proxy's port http-envoy-prom 15090.
INJECTED_LABELS = {"security.istio.io/tlsMode": "istio"}
ENVOY_PROM_PORT = {"http-envoy-prom": 15090}
# prometheus-operator (kube-prometheus-stack 88.5.3, operator v0.93.1): Prometheus pods carry
# app.kubernetes.io/name=prometheus and prometheus=<name> besides podMetadata.labels; the chart names the Prometheus
# <fullname>-prometheus (fullnameOverride kube-prometheus-stack) with that service account; web port 9090.
PROMETHEUS_SOURCE = "kube-prometheus-stack 88.5.3 templates/prometheus/prometheus.yaml; prometheus-operator v0.93.1"
PROMETHEUS_NAME = "kube-prometheus-stack-prometheus"
# NVIDIA/gpu-operator v26.7.0 assets/state-dcgm-exporter/0800_daemonset.yaml: app=nvidia-dcgm-exporter, port
# metrics 9400 (the ServiceMonitor's job label, components/monitoring/rules.py DCGM_JOB).
DCGM_SOURCE = "NVIDIA/gpu-operator v26.7.0 assets/state-dcgm-exporter/0800_daemonset.yaml"
# kedacore/charts v2.20.2 keda/templates: the operator (app=keda-operator) queries Prometheus for ScaledObjects;
# the metrics API server (app=keda-operator-metrics-apiserver) serves external metrics to the API server on 6443.
KEDA_SOURCE = "kedacore/charts v2.20.2 keda/templates/manager/deployment.yaml, metrics-server/deployment.yaml"
# kserve/kserve v0.20.0 charts/kserve-resources/templates/deployment.yaml: control-plane=kserve-controller-manager,
# webhook-server 9443. Predictor pods: label serving.kserve.io/inferenceservice=<name>; the xgboost and sklearn
# runtimes serve (and expose metrics) on 8080 (charts/kserve-runtime-configs/templates/runtimes/
# clusterservingruntime_kserve-xgbserver.yaml: --http_port=8080, prometheus.kserve.io/port "8080").
KSERVE_SOURCE = "kserve/kserve v0.20.0 charts/kserve-resources, charts/kserve-runtime-configs"
KSERVE_PREDICTOR_PORT = 8080
# ray-project/kuberay v1.7.0: the chart's operator pods (helm-chart/kuberay-operator/templates/_helpers.tpl:
# app.kubernetes.io/name=kuberay-operator); Ray pods (ray-operator/controllers/ray/common/pod.go labelPod:
# ray.io/node-type head|worker, ray.io/is-ray-node=yes, ray.io/cluster, ray.io/group, app.kubernetes.io/name=kuberay,
# app.kubernetes.io/created-by=kuberay-operator); ports (utils/constant.go): gcs-server 6379, client 10001,
# dashboard 8265, metrics 8080, serve 8000, dashboard agent 52365.
KUBERAY_SOURCE = "ray-project/kuberay v1.7.0 ray-operator/controllers/ray/common/pod.go, utils/constant.go"
RAY_PORTS = {
    "gcs-server": 6379,
    "client": 10001,
    "dashboard": 8265,
    "metrics": 8080,
    "serve": 8000,
    "dashboard-agent": 52365,
}
# zilliztech/milvus-helm milvus-5.0.19 charts/milvus: components labelled app.kubernetes.io/name=milvus,
# app.kubernetes.io/instance=<release>, component=<proxy|standalone|mixcoord|querynode|datanode|streamingnode>;
# gRPC/REST 19530 on the proxy (standalone in standalone mode), metrics/management 9091 on every component;
# its etcd (charts/etcd) labelled app.kubernetes.io/name=etcd, client 2379, peer 2380.
MILVUS_SOURCE = "zilliztech/milvus-helm milvus-5.0.19 charts/milvus values.yaml, templates; charts/etcd"
# seaweedfs/seaweedfs 4.44 k8s/charts/seaweedfs values.yaml: master 9333, volume 8080, filer 8888, s3 8333,
# admin 23646; pods labelled app.kubernetes.io/name=seaweedfs, app.kubernetes.io/instance, app.kubernetes.io/component.
SEAWEEDFS_SOURCE = "seaweedfs/seaweedfs 4.44 k8s/charts/seaweedfs/values.yaml"
SEAWEEDFS_INTERNALS = {"master": 9333, "volume": 8080, "filer": 8888, "admin": 23646}
# cloudnative-pg 1.30.0 (pkg/utils/labels.go): instance pods labelled cnpg.io/cluster=<cluster>; postgresql 5432,
# metrics 9187.
CNPG_SOURCE = "cloudnative-pg/cloudnative-pg 1.30.0 pkg/utils/labels.go"
# grafana-community/helm-charts loki-18.11.0 charts/loki templates/_helpers.tpl (loki.selectorLabels) and
# <target>/workload.yaml: pods labelled app.kubernetes.io/name=loki, app.kubernetes.io/instance=<release>,
# app.kubernetes.io/component=single-binary|write|read|backend; ports http-metrics 3100 (push, query), grpc 9095,
# http-memberlist 7946 (values.yaml loki.server, memberlist).
LOKI_SOURCE = "grafana-community/helm-charts loki-18.11.0 charts/loki templates/_helpers.tpl, */workload.yaml"
LOKI_PORTS = {"http-metrics": 3100, "grpc": 9095, "http-memberlist": 7946}
# grafana/alloy helm-chart/1.11.1 operations/helm/charts/alloy templates/_helpers.tpl (alloy.selectorLabels):
# app.kubernetes.io/name=alloy, app.kubernetes.io/instance=<release>; port http-metrics 12345 (values.yaml
# alloy.listenPort).
ALLOY_SOURCE = "grafana/alloy helm-chart/1.11.1 operations/helm/charts/alloy templates/_helpers.tpl, values.yaml"
# grafana-community/helm-charts tempo-2.2.4 charts/tempo templates/_helpers.tpl (tempo.selectorLabels):
# app.kubernetes.io/name=tempo, app.kubernetes.io/instance=<release>; ports 3200 (tempo.server.http_listen_port) and
# the OTLP gRPC receiver 4317 (the program's tempo.receivers).
TEMPO_SOURCE = "grafana-community/helm-charts tempo-2.2.4 charts/tempo templates/_helpers.tpl, values.yaml"
TEMPO_PORTS = {"tempo-prom-metrics": 3200, "otlp-grpc": 4317}
# open-telemetry/opentelemetry-helm-charts opentelemetry-collector-0.170.0 templates/_helpers.tpl (selectorLabels,
# component standalone-collector in deployment mode); ports otlp 4317, otlp-http 4318, metrics 8888 (values.yaml
# ports; metrics enabled by components/traces.py collector_values).
OTEL_COLLECTOR_SOURCE = (
    "open-telemetry/opentelemetry-helm-charts opentelemetry-collector-0.170.0 templates/_helpers.tpl, values.yaml"
)
# kube-prometheus-stack 88.5.3 charts/grafana templates/_helpers.tpl (grafana.selectorLabels): app.kubernetes.io/name=
# grafana, app.kubernetes.io/instance=<release>; container port grafana 3000.
GRAFANA_SOURCE = "kube-prometheus-stack 88.5.3 charts/grafana templates/_helpers.tpl, deployment.yaml"
# The cloud metadata service (AWS IMDS, GCE metadata server): 169.254.169.254 port 80.
METADATA = Address("cloud metadata service", "169.254.169.254", source="AWS IMDS / GCE metadata server docs")
# A private address outside the API server's: what an external platform database (e.g. prod's MLflow Postgres at
# mlflow-db.prod.example.internal) resolves to.
PRIVATE_DATABASE = Address("external platform database", "10.99.0.10", source="RFC 1918 private range")
# A service in the shared address space (RFC 6598), where EKS custom networking and other CNIs put pods and nodes.
SHARED_SPACE_SERVICE = Address("service in 100.64.0.0/10", "100.64.12.7", source="RFC 6598 shared address space")
PUBLIC_HTTPS = Address("public HTTPS host (Hugging Face Hub, S3)", "18.160.0.1")


# Platform pods a tenant's ingress admits (components/tenancy.py allow-from-platform): the ingress and monitoring
# namespaces (Prometheus, Grafana); kube-dns and istiod call no tenant pod.
ADMITTED_INTO_TENANTS = {"gateway", "prometheus", "grafana", "kube-dns", "istiod"}


@dataclass(frozen=True)
class Path:
    """One row: ``client`` reaches (or must not reach) ``server:port`` over ``tls`` (``auto``: what the client's
    sidecar does; ``plain``: the client speaks plain text itself; ``istio-cert``: it presents its own mesh
    certificate) with ``request``; ``source``: the upstream code or doc that says the path is used (or closed)."""

    name: str
    client: Pod | Address
    server: Pod | Address
    port: int
    source: str
    protocol: str = "TCP"
    tls: str = "auto"
    request: Request = Request()

    def check(self, cluster: Cluster):
        return cluster.connect(self.client, self.server, self.port, self.protocol, self.tls, self.request)


# --- the pods -------------------------------------------------------------------------------------------------------


def _with_mesh(cluster: Cluster, pod: Pod) -> Pod:
    """The pod as the injector leaves it: with the sidecar's label and port."""
    if not cluster.injected(pod):
        return pod
    return Pod(
        pod.name,
        pod.namespace,
        {**pod.labels, **INJECTED_LABELS},
        {**pod.ports, **ENVOY_PROM_PORT},
        pod.service_account,
        pod.annotations,
        pod.source,
    )


def _template_pod(name: str, namespace: str, template: dict, source: str) -> Pod:
    spec = template.get("spec") or {}
    ports = {
        p["name"]: p["containerPort"]
        for c in spec.get("containers") or []
        for p in c.get("ports") or []
        if p.get("name")
    }
    meta = template.get("metadata") or {}
    return Pod(
        name,
        namespace,
        dict(meta.get("labels") or {}),
        ports,
        spec.get("serviceAccountName", "default"),
        dict(meta.get("annotations") or {}),
        source,
    )


def rendered_pods(objects: list[dict]) -> list[Pod]:
    """Pods of the rendered Deployments and Jobs, and the predictor pods of InferenceServices."""
    pods = []
    for obj in objects:
        kind, meta = obj.get("kind"), obj.get("metadata") or {}
        where = f"rendered {kind} {meta.get('namespace')}/{meta.get('name')}"
        if kind in ("Deployment", "Job"):
            pods.append(_template_pod(meta["name"], meta["namespace"], obj["spec"]["template"], where))
        elif kind == "InferenceService":
            labels = {
                **(meta.get("labels") or {}),
                "serving.kserve.io/inferenceservice": meta["name"],
                "component": "predictor",
            }
            pods.append(
                Pod(f"{meta['name']}-predictor", meta["namespace"], labels, {}, source=where + "; " + KSERVE_SOURCE)
            )
    return pods


def _values(run, release: str) -> dict:
    found = [r for r in run.releases if r.inputs.get("name") == release]
    return (found[0].inputs.get("values") or {}) if found else {}


def chart_pods(cfg, run) -> dict[str, Pod]:
    """Pods that charts and operators create, by role, for the services the stack turns on."""
    ns = cfg.namespaces
    pods = {"kube-dns": KUBE_DNS}
    if cfg.mesh.enabled:
        pods["istiod"] = Pod(
            "istiod",
            ns.mesh,
            {"app": "istiod", "istio": "pilot", "sidecar.istio.io/inject": "false"},
            ISTIOD_PORTS,
            "istiod",
            source=ISTIOD_SOURCE,
        )
        pods["gateway"] = Pod(
            "istio-ingressgateway",
            ns.ingress,
            {"app": "istio-ingressgateway", "istio": "ingressgateway", "sidecar.istio.io/inject": "true"},
            dict(ENVOY_PROM_PORT),
            "istio-ingressgateway",
            source=GATEWAY_SOURCE,
        )
    if cfg.monitoring.enabled:
        metadata = (_values(run, "kube-prometheus-stack").get("prometheus") or {}).get("prometheusSpec", {}).get(
            "podMetadata"
        ) or {}
        pods["prometheus"] = Pod(
            "prometheus",
            ns.monitoring,
            {"app.kubernetes.io/name": "prometheus", "prometheus": PROMETHEUS_NAME, **(metadata.get("labels") or {})},
            {"http-web": 9090},
            PROMETHEUS_NAME,
            dict(metadata.get("annotations") or {}),
            source=PROMETHEUS_SOURCE + " (podMetadata from the rendered values)",
        )
    if cfg.gpu.enabled:
        pods["dcgm-exporter"] = Pod(
            "nvidia-dcgm-exporter",
            ns.gpu_operator,
            {"app": "nvidia-dcgm-exporter"},
            {"metrics": 9400},
            source=DCGM_SOURCE,
        )
    if cfg.serving.enabled:
        pods["keda-operator"] = Pod(
            "keda-operator", ns.keda, {"app": "keda-operator"}, {}, "keda-operator", source=KEDA_SOURCE
        )
        pods["keda-metrics-apiserver"] = Pod(
            "keda-operator-metrics-apiserver",
            ns.keda,
            {"app": "keda-operator-metrics-apiserver"},
            {"https": 6443},
            source=KEDA_SOURCE,
        )
        pods["kserve-controller"] = Pod(
            "kserve-controller-manager",
            ns.kserve,
            {"control-plane": "kserve-controller-manager"},
            {"webhook-server": 9443},
            source=KSERVE_SOURCE,
        )
    if cfg.ray.enabled:
        pods["kuberay-operator"] = Pod(
            "kuberay-operator",
            ns.ray,
            {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay-operator"},
            {},
            "kuberay-operator",
            source=KUBERAY_SOURCE,
        )
    if cfg.milvus.enabled:
        serving = "standalone" if cfg.milvus.mode == "standalone" else "proxy"
        base = {"app.kubernetes.io/name": "milvus", "app.kubernetes.io/instance": "milvus"}
        pods["milvus-serving"] = Pod(
            f"milvus-{serving}",
            ns.milvus,
            {**base, "component": serving},
            {"milvus": 19530, "metrics": 9091},
            source=MILVUS_SOURCE,
        )
        pods["milvus-etcd"] = Pod(
            "milvus-etcd",
            ns.milvus,
            {"app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": "milvus"},
            {"client": 2379, "peer": 2380},
            source=MILVUS_SOURCE,
        )
        if serving == "proxy":
            pods["milvus-internal"] = Pod(
                "milvus-querynode",
                ns.milvus,
                {**base, "component": "querynode"},
                {"metrics": 9091},
                source=MILVUS_SOURCE,
            )
    if cfg.object_store.mode == "in-cluster":
        base = {"app.kubernetes.io/name": "seaweedfs", "app.kubernetes.io/instance": "seaweedfs"}
        pods["object-store-s3"] = Pod(
            "seaweedfs-s3",
            ns.object_store,
            {**base, "app.kubernetes.io/component": "s3"},
            {"swfs-s3": 8333},
            source=SEAWEEDFS_SOURCE,
        )
        for component, port in SEAWEEDFS_INTERNALS.items():
            pods[f"object-store-{component}"] = Pod(
                f"seaweedfs-{component}",
                ns.object_store,
                {**base, "app.kubernetes.io/component": component},
                {component: port},
                source=SEAWEEDFS_SOURCE,
            )
    if cfg.logs.enabled:
        loki = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki"}
        for target in loki_targets(cfg):
            pods[f"loki-{target}"] = Pod(
                f"loki-{target}",
                ns.logs,
                {**loki, "app.kubernetes.io/component": target},
                LOKI_PORTS,
                "loki",
                source=LOKI_SOURCE,
            )
        pods["alloy"] = Pod(
            "alloy",
            ns.logs,
            {"app.kubernetes.io/name": "alloy", "app.kubernetes.io/instance": "alloy"},
            {"http-metrics": 12345},
            "alloy",
            source=ALLOY_SOURCE,
        )
    if cfg.traces.enabled:
        pods["tempo"] = Pod(
            "tempo-0",
            ns.traces,
            {"app.kubernetes.io/name": "tempo", "app.kubernetes.io/instance": "tempo"},
            TEMPO_PORTS,
            "tempo",
            source=TEMPO_SOURCE,
        )
        pods["otel-collector"] = Pod(
            "opentelemetry-collector",
            ns.traces,
            {
                "app.kubernetes.io/name": "opentelemetry-collector",
                "app.kubernetes.io/instance": "opentelemetry-collector",
                "component": "standalone-collector",
            },
            {"otlp": 4317, "otlp-http": 4318, "metrics": 8888},
            "opentelemetry-collector",
            source=OTEL_COLLECTOR_SOURCE,
        )
    if (cfg.logs.enabled or cfg.traces.enabled) and cfg.monitoring.enabled:
        pods["grafana"] = Pod(
            "kube-prometheus-stack-grafana",
            ns.monitoring,
            {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"},
            {"grafana": 3000},
            "kube-prometheus-stack-grafana",
            source=GRAFANA_SOURCE,
        )
    for obj in (r.inputs for r in run.objects if r.kind == "Cluster" and r.namespace == ns.mlflow):
        pods["mlflow-db"] = Pod(
            f"{obj['metadata']['name']}-1",
            ns.mlflow,
            {"cnpg.io/cluster": obj["metadata"]["name"], "cnpg.io/instanceRole": "primary"},
            {"postgresql": 5432, "metrics": 9187},
            source=CNPG_SOURCE,
        )
    return pods


def loki_targets(cfg) -> tuple[str, ...]:
    """Loki's pods by component label: the single binary, or write, read and backend."""
    return ("single-binary",) if cfg.logs.mode == "single-binary" else ("write", "read", "backend")


def tenant_pods(cfg, tenant: str) -> dict[str, Pod]:
    """The kinds of pod a tenant runs that the platform's rules tell apart: any workload, a workflow step, a
    model download, a pipeline's model step; with Ray, a Ray head and worker."""
    pods = {
        "workload": Pod("workload", tenant, {"app": "notebook"}, {"http": 8888}, source="any tenant pod"),
        "model-download": Pod(
            "model-download",
            tenant,
            {"ai-platform/role": "model-download", "sidecar.istio.io/inject": "false"},
            source="components/serving/endpoint.py download Job",
        ),
    }
    if cfg.workflows.enabled:
        pods["workflow-step"] = Pod(
            "workflow-step",
            tenant,
            {"workflows.argoproj.io/workflow": "train"},
            source="argo-workflows v4.0.6: workflow pods labelled workflows.argoproj.io/workflow",
        )
        pods["pipeline-model"] = Pod(
            "pipeline-model", tenant, {"ai-platform/role": "pipeline-model"}, source="components/workflows.py"
        )
    if cfg.ray.enabled:
        for node_type in ("head", "worker"):
            group = "headgroup" if node_type == "head" else "workers"
            pods[f"ray-{node_type}"] = Pod(
                f"raycluster-{node_type}",
                tenant,
                {
                    "ray.io/node-type": node_type,
                    "ray.io/is-ray-node": "yes",
                    "ray.io/cluster": "raycluster",
                    "ray.io/group": group,
                    "app.kubernetes.io/name": "kuberay",
                    "app.kubernetes.io/created-by": "kuberay-operator",
                },
                dict(RAY_PORTS),
                source=KUBERAY_SOURCE,
            )
    return pods


def api_server(cfg) -> Address:
    cidrs = cfg.cluster.api_server_cidrs
    ip = str(ipaddress.ip_network(cidrs[0]).network_address) if cidrs else "172.16.0.2"
    return Address("kube-apiserver", ip, source="cluster.apiServerCidrs")


def build(run, cfg) -> tuple[Cluster, dict[str, Pod], dict[str, dict[str, Pod]]]:
    """The cluster of a stack run: its objects, chart pods and tenant pods (as the injector leaves them)."""
    objects = [r.inputs for r in run.objects]
    namespaces = {"kube-system": {}, "default": {}}
    injector = Cluster(objects, namespaces, mesh_root=cfg.namespaces.mesh)  # namespaces only: who gets a sidecar
    charts = {k: _with_mesh(injector, p) for k, p in chart_pods(cfg, run).items()}
    tenants = {t.name: {k: _with_mesh(injector, p) for k, p in tenant_pods(cfg, t.name).items()} for t in cfg.tenants}
    rendered = [_with_mesh(injector, p) for p in rendered_pods(objects)]
    cluster = Cluster(
        objects,
        namespaces,
        [*charts.values(), *(p for pods in tenants.values() for p in pods.values()), *rendered],
        mesh_root=cfg.namespaces.mesh,
    )
    return cluster, charts, tenants


# --- the rows ----------------------------------------------------------------------------------------------------


def _monitor_paths(cluster: Cluster, prometheus: Pod) -> list[Path]:
    """Prometheus -> every target of every PodMonitor the platform declares, as the monitor says to scrape it."""
    paths = []
    for monitor in cluster.of_kind("PodMonitor"):
        namespace = monitor["metadata"]["namespace"]
        spec = monitor["spec"]
        tls = "istio-cert" if spec.get("scrapeClass") == "istio-mtls" else "plain"
        for pod in cluster.pods:
            if pod.namespace != namespace or not _selects(spec.get("selector"), pod.labels):
                continue
            for endpoint in spec["podMetricsEndpoints"]:
                port = endpoint.get("portNumber") or pod.ports.get(endpoint.get("port"))
                if port is None:
                    continue  # a monitor naming a port the pod lacks: the monitoring tier checks that
                paths.append(
                    Path(
                        f"prometheus -> {namespace}/{pod.name}:{port} ({monitor['metadata']['name']})",
                        prometheus,
                        pod,
                        port,
                        f"PodMonitor {namespace}/{monitor['metadata']['name']}",
                        tls=tls,
                        request=Request(path=endpoint.get("path", "/metrics")),
                    )
                )
    return paths


def _selects(selector, labels) -> bool:
    return match_labels(selector, labels)


def _endpoint_ports(cluster: Cluster) -> list[tuple[Pod, int, str]]:
    """Each model server pod, the port the gateway routes to, and the endpoint's external host (from the rendered
    VirtualServices: destination Service and port -> the Service's targetPort -> the pod's port)."""
    services = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in cluster.of_kind("Service")}
    found = []
    for route in cluster.of_kind("VirtualService"):
        namespace, spec = route["metadata"]["namespace"], route["spec"]
        host = spec["hosts"][0]
        for http in spec.get("http") or []:
            for destination in http.get("route") or []:
                target = destination["destination"]
                name = target["host"].split(".")[0]
                port = (target.get("port") or {}).get("number")
                service = services.get((namespace, name))
                for pod in cluster.pods:
                    if pod.namespace != namespace:
                        continue
                    if service and _selects({"matchLabels": service["spec"]["selector"]}, pod.labels):
                        target_port = next(
                            (p["targetPort"] for p in service["spec"]["ports"] if p["port"] == port), port
                        )
                        number = pod.ports.get(target_port, target_port)
                        if isinstance(number, int) or str(number).isdigit():  # a pod without the port serves not
                            found.append((pod, int(number), host))
                    elif not service and pod.labels.get("serving.kserve.io/inferenceservice") == name.removesuffix(
                        "-predictor"
                    ):
                        found.append((pod, KSERVE_PREDICTOR_PORT, host))
    return list(dict.fromkeys(found))


def needed(cfg, run) -> list[Path]:
    """Every path the platform needs open in this stack."""
    cluster, charts, tenants = build(run, cfg)
    paths: list[Path] = []
    mesh = cfg.mesh.enabled
    for tenant, pods in tenants.items():
        for kind, pod in pods.items():
            for protocol in ("UDP", "TCP"):
                paths.append(
                    Path(
                        f"{tenant} {kind} -> DNS {protocol}",
                        pod,
                        charts["kube-dns"],
                        53,
                        "Kubernetes DNS for Services and Pods",
                        protocol=protocol,
                    )
                )
            if mesh and cluster.injected(pod):
                paths.append(
                    Path(
                        f"{tenant} {kind} sidecar -> istiod 15012",
                        pod,
                        charts["istiod"],
                        15012,
                        ISTIOD_SOURCE + "; istio.io Application Requirements (ports used by Istio)",
                    )
                )
        workload = pods["workload"]
        if cfg.mlflow.enabled:
            mlflow = next(
                p
                for p in cluster.pods
                if p.namespace == cfg.namespaces.mlflow and p.labels.get("app.kubernetes.io/name") == "mlflow"
            )
            paths.append(Path(f"{tenant} -> MLflow 5000", workload, mlflow, 5000, "components/mlflow.py (granted)"))
        if cfg.milvus.enabled:
            paths.append(Path(f"{tenant} -> Milvus 19530", workload, charts["milvus-serving"], 19530, MILVUS_SOURCE))
        if cfg.workflows.enabled:
            step = pods["workflow-step"]
            paths.append(
                Path(
                    f"{tenant} workflow step -> kube-apiserver",
                    step,
                    api_server(cfg),
                    cfg.cluster.api_server_port,
                    "argo-workflows v4.0.6 executor: WorkflowTaskResults",
                )
            )
            if "object-store-s3" in charts:
                paths.append(
                    Path(
                        f"{tenant} workflow step -> object store S3",
                        step,
                        charts["object-store-s3"],
                        8333,
                        "components/workflows.py artifact repository",
                    )
                )
        if cfg.ray.enabled:
            head, worker, operator = pods["ray-head"], pods["ray-worker"], charts["kuberay-operator"]
            for port, path in ((8265, "/api/jobs/"), (8265, "/api/serve/applications/"), (8000, "/-/healthz")):
                paths.append(
                    Path(
                        f"KubeRay -> {tenant} Ray head {port}{path}",
                        operator,
                        head,
                        port,
                        KUBERAY_SOURCE + "; utils/util.go http:// dashboard and Serve proxy clients",
                        tls="plain",
                        request=Request(path=path),
                    )
                )
            for port in (6379, 8265, 52365):
                paths.append(Path(f"{tenant} Ray worker -> head {port}", worker, head, port, KUBERAY_SOURCE))
            paths.append(Path(f"{tenant} Ray head -> worker 52365", head, worker, 52365, KUBERAY_SOURCE))
            # Ray processes call each other by pod IP on ports no Service declares (worker ports 10002-19999 by
            # default: ray start --min-worker-port/--max-worker-port): a client sidecar passes them through
            # unencrypted (Istio PassthroughCluster), so the server side must accept plain text.
            for client, server in ((worker, worker), (head, worker), (worker, head)):
                paths.append(
                    Path(
                        f"{tenant} Ray {client.labels['ray.io/node-type']} -> "
                        f"{server.labels['ray.io/node-type']} worker port 10002 (pod IP)",
                        client,
                        server,
                        10002,
                        "docs.ray.io cluster/kubernetes/k8s-ecosystem/istio (STRICT needs fixed "
                        "worker ports and a headless Service per pod); ray start --min-worker-port",
                        tls="plain",
                    )
                )
            paths.append(Path(f"{tenant} workload -> Ray client 10001", workload, head, 10001, KUBERAY_SOURCE))
            if cfg.cluster.api_server_cidrs:
                paths.append(
                    Path(
                        f"{tenant} Ray head (autoscaler) -> kube-apiserver",
                        head,
                        api_server(cfg),
                        cfg.cluster.api_server_port,
                        KUBERAY_SOURCE + " BuildAutoscalerContainer: the "
                        "autoscaler sidecar scales worker groups through the API",
                    )
                )
    for (
        pod
    ) in cluster.pods:  # model fetchers: a download Job (hf://, s3://) or a KServe predictor's storage initializer
        if pod.namespace in tenants and (
            pod.labels.get("ai-platform/role") == "model-download"
            and pod.source.startswith("rendered")
            or "serving.kserve.io/inferenceservice" in pod.labels
        ):
            paths.append(
                Path(
                    f"{pod.namespace}/{pod.name} -> public HTTPS (model source)",
                    pod,
                    PUBLIC_HTTPS,
                    443,
                    "components/serving/endpoint.py model sources; " + KSERVE_SOURCE,
                )
            )
    if mesh:
        for who in ("gateway", "prometheus"):
            if who in charts and cluster.injected(charts[who]):
                paths.append(
                    Path(f"{who} sidecar -> istiod 15012", charts[who], charts["istiod"], 15012, ISTIOD_SOURCE)
                )
        for pod, port, host in _endpoint_ports(cluster):
            paths.append(
                Path(
                    f"gateway -> {pod.namespace}/{pod.name}:{port}",
                    charts["gateway"],
                    pod,
                    port,
                    "components/mesh/traffic.py VirtualService; " + GATEWAY_SOURCE,
                    request=Request(host=host),
                )
            )
        paths.append(
            Path("kube-apiserver -> istiod webhooks 15017", api_server(cfg), charts["istiod"], 15017, ISTIOD_SOURCE)
        )
    if "prometheus" in charts:
        prometheus = charts["prometheus"]
        paths += _monitor_paths(cluster, prometheus)
        if "dcgm-exporter" in charts:
            paths.append(
                Path(
                    "prometheus -> DCGM exporter 9400",
                    prometheus,
                    charts["dcgm-exporter"],
                    9400,
                    DCGM_SOURCE,
                    tls="plain",
                )
            )
        if cfg.milvus.enabled:
            paths.append(
                Path(
                    "prometheus -> Milvus metrics 9091",
                    prometheus,
                    charts["milvus-serving"],
                    9091,
                    MILVUS_SOURCE + " (the chart's ServiceMonitor, components/milvus.py)",
                    tls="plain",
                )
            )
        paths += _pipeline_scrape_paths(cfg, charts, prometheus)
        if cfg.serving.enabled:
            paths.append(
                Path(
                    "KEDA -> Prometheus 9090",
                    charts["keda-operator"],
                    prometheus,
                    9090,
                    "rendered ScaledObjects' serverAddress; " + KEDA_SOURCE,
                    tls="plain",
                )
            )
    if cfg.serving.enabled:
        paths.append(
            Path(
                "kube-apiserver -> KServe webhook 9443",
                api_server(cfg),
                charts["kserve-controller"],
                9443,
                KSERVE_SOURCE,
            )
        )
        paths.append(
            Path(
                "kube-apiserver -> KEDA metrics API 6443",
                api_server(cfg),
                charts["keda-metrics-apiserver"],
                6443,
                KEDA_SOURCE,
            )
        )
    if "mlflow-db" in charts:
        mlflow = next(
            p
            for p in cluster.pods
            if p.namespace == cfg.namespaces.mlflow and p.labels.get("app.kubernetes.io/name") == "mlflow"
        )
        paths.append(Path("MLflow -> its Postgres 5432", mlflow, charts["mlflow-db"], 5432, CNPG_SOURCE))
    if "object-store-s3" in charts:
        if cfg.mlflow.enabled:
            mlflow = next(
                p
                for p in cluster.pods
                if p.namespace == cfg.namespaces.mlflow and p.labels.get("app.kubernetes.io/name") == "mlflow"
            )
            paths.append(
                Path(
                    "MLflow -> object store S3",
                    mlflow,
                    charts["object-store-s3"],
                    8333,
                    "components/mlflow.py artifact store",
                )
            )
        if cfg.milvus.enabled:
            paths.append(
                Path(
                    "Milvus -> object store S3",
                    charts["milvus-serving"],
                    charts["object-store-s3"],
                    8333,
                    "components/milvus.py externalS3",
                )
            )
    paths += _log_paths(cfg, charts)
    paths += _trace_paths(cfg, charts, tenants)
    paths += _label_proxy_paths(cluster, charts)
    paths += _rate_limit_paths(cluster, charts)
    paths += _picker_paths(cfg, cluster, charts)
    return paths


RATE_LIMIT_SOURCE = "components/mesh/rate_limits.py (envoyproxy/ratelimit f2fb157 src/settings/settings.go ports)"


def rate_limit_pods(cluster: Cluster) -> tuple[Pod | None, Pod | None]:
    """The rendered rate-limit service and store pods (with consumers or endpoint limits declared)."""
    found = {p.name: p for p in cluster.pods if p.name in ("ratelimit", "ratelimit-store")}
    return found.get("ratelimit"), found.get("ratelimit-store")


def _rate_limit_paths(cluster: Cluster, charts: dict[str, Pod]) -> list[Path]:
    """The gateway -> the rate-limit service (gRPC, the ratelimit filter's cluster), Prometheus -> its metrics, the
    service -> its store and DNS."""
    service, store = rate_limit_pods(cluster)
    if service is None or store is None:
        return []
    paths = [
        Path("ingress gateway -> rate-limit service 8081", charts["gateway"], service, 8081, RATE_LIMIT_SOURCE),
        Path("rate-limit service -> store 6379", service, store, 6379, RATE_LIMIT_SOURCE),
    ]
    if "prometheus" in charts:
        paths.append(
            Path("Prometheus -> rate-limit metrics 9090", charts["prometheus"], service, 9090, RATE_LIMIT_SOURCE)
        )
    return paths


PICKER_SOURCE = (
    "components/mesh/inference_pools.py (gateway-api-inference-extension v1.5.0 epplib templates/_deployment.yaml: "
    "ext-proc 9002, metrics 9090; the picker reads each pod's /metrics and watches pods and its InferencePool; "
    "istio/istio 1.30.3 route.go: the gateway's ext_proc to endpointPickerRef, then to the picked pod)"
)


def pooled_pods(cfg, cluster: Cluster) -> list[tuple[str, Pod, Pod]]:
    """(host, picker, model server) per pooled endpoint version, as rendered."""
    from components.mesh import inference_pools
    from components.serving.engines.base import version_name, versions_of

    found = []
    for endpoint in cfg.models:
        if not cfg.inference_routing.pooled(endpoint):
            continue
        for version, _ in versions_of(endpoint):
            pool = inference_pools.pool_name(endpoint, version)
            server_name = version_name(endpoint.name, version)
            by_name = {p.name: p for p in cluster.pods if p.namespace == endpoint.tenant}
            found.append(
                (cfg.endpoint_host(endpoint), by_name[inference_pools.picker_name(pool)], by_name[server_name])
            )
    return found


def _picker_paths(cfg, cluster: Cluster, charts: dict[str, Pod]) -> list[Path]:
    """The gateway -> each picker (ext_proc) and -> the pod it picks; the picker -> the pods' metrics in plain text
    (it has no sidecar), the API server and DNS; Prometheus -> its metrics."""
    paths = []
    for host, picker, server in pooled_pods(cfg, cluster):
        at = f"{picker.namespace}/{picker.name}"
        paths += [
            Path(f"ingress gateway -> picker {at} 9002", charts["gateway"], picker, 9002, PICKER_SOURCE),
            Path(
                f"ingress gateway -> picked {server.namespace}/{server.name} 8000",
                charts["gateway"],
                server,
                8000,
                PICKER_SOURCE,
                request=Request(host=host, path="/v1/chat/completions", method="POST"),
            ),
            Path(
                f"picker {at} -> {server.name} GET /metrics 8000 (plain text)",
                picker,
                server,
                8000,
                PICKER_SOURCE,
                tls="plain",
                request=Request(path="/metrics", method="GET"),
            ),
            Path(f"picker {at} -> kube-apiserver", picker, api_server(cfg), cfg.cluster.api_server_port, PICKER_SOURCE),
        ]
        paths += [
            Path(f"picker {at} -> DNS {protocol}", picker, charts["kube-dns"], 53, "Kubernetes DNS", protocol=protocol)
            for protocol in ("UDP", "TCP")
        ]
        if "prometheus" in charts:
            paths.append(Path(f"Prometheus -> picker {at} 9090", charts["prometheus"], picker, 9090, PICKER_SOURCE))
    return paths


def _picker_forbidden(cfg, cluster: Cluster) -> list[Path]:
    """What the picker's plain-text opening does not open: anything but ``GET /metrics`` on the model server."""
    paths = []
    for host, picker, server in pooled_pods(cfg, cluster):
        for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models")):
            paths.append(
                Path(
                    f"picker {picker.namespace}/{picker.name} -> {server.name} {method} {path} (plain text)",
                    picker,
                    server,
                    8000,
                    "components/mesh/inference_pools.py metrics_read_policy: plain text is for GET /metrics only",
                    tls="plain",
                    request=Request(host=host, path=path, method=method),
                )
            )
    return paths


LABEL_PROXY_SOURCE = "components/monitoring/label_proxy.py (prom-label-proxy v0.14.0 main.go, -upstream)"


def label_proxy_pod(cluster: Cluster) -> Pod | None:
    """The rendered prom-label-proxy pod (the tenant Grafana organizations' Prometheus), with monitoring on."""
    found = [p for p in cluster.pods if p.name == "prom-label-proxy"]
    return found[0] if found else None


def _label_proxy_paths(cluster: Cluster, charts: dict[str, Pod]) -> list[Path]:
    """Grafana -> the label proxy (each tenant organization's Prometheus data source), the proxy -> Prometheus and
    DNS."""
    proxy = label_proxy_pod(cluster)
    if proxy is None or "grafana" not in charts:
        return []
    source = "components/monitoring/grafana_access.py prometheus_datasource"
    paths = [
        Path("Grafana -> label proxy 8080", charts["grafana"], proxy, 8080, source),
        Path("label proxy -> Prometheus 9090", proxy, charts["prometheus"], 9090, LABEL_PROXY_SOURCE),
    ]
    for protocol in ("UDP", "TCP"):
        paths.append(
            Path(f"label proxy -> DNS {protocol}", proxy, charts["kube-dns"], 53, "Kubernetes DNS", protocol=protocol)
        )
    return paths


def _pipeline_scrape_paths(cfg, charts: dict[str, Pod], prometheus: Pod) -> list[Path]:
    """Prometheus -> the metrics port of every logs and traces pod the charts' ServiceMonitors scrape (components/logs.py
    and components/traces.py turn them on; the ports: the charts' Services)."""
    targets = []
    if cfg.logs.enabled:
        targets += [(charts[f"loki-{t}"], 3100, LOKI_SOURCE) for t in loki_targets(cfg)]
        targets.append((charts["alloy"], 12345, ALLOY_SOURCE))
    if cfg.traces.enabled:
        targets += [(charts["tempo"], 3200, TEMPO_SOURCE), (charts["otel-collector"], 8888, OTEL_COLLECTOR_SOURCE)]
    return [
        Path(
            f"prometheus -> {pod.namespace}/{pod.name} metrics {port}",
            prometheus,
            pod,
            port,
            source + " (the chart's ServiceMonitor)",
            tls="plain",
        )
        for pod, port, source in targets
    ]


def _trace_paths(cfg, charts: dict[str, Pod], tenants: dict[str, dict[str, Pod]]) -> list[Path]:
    """Traces: tenant pods (their proxies, vLLM, Triton) and the ingress gateway's proxy -> the collector's OTLP ports;
    the collector -> Tempo and the API server (k8sattributes); Grafana -> Tempo; Tempo -> the object store."""
    if not cfg.traces.enabled:
        return []
    collector, tempo = charts["otel-collector"], charts["tempo"]
    source = "components/traces.py otlp (collector Service); allow-otlp"
    paths = []
    for tenant, pods in tenants.items():
        for port in (4317, 4318):
            paths.append(Path(f"{tenant} -> collector OTLP {port}", pods["workload"], collector, port, source))
    if "gateway" in charts:
        paths.append(Path("ingress gateway proxy -> collector OTLP 4317", charts["gateway"], collector, 4317, source))
    paths += [
        Path("collector -> Tempo OTLP 4317", collector, tempo, 4317, "components/traces.py collector_config"),
        Path(
            "collector -> kube-apiserver (k8sattributes)",
            collector,
            api_server(cfg),
            cfg.cluster.api_server_port,
            "k8sattributes processor: pods, namespaces, replicasets",
        ),
    ]
    if "grafana" in charts:
        paths.append(
            Path(
                "Grafana -> Tempo query 3200", charts["grafana"], tempo, 3200, "components/traces.py grafana_datasource"
            )
        )
    if "object-store-s3" in charts:
        paths.append(
            Path("Tempo -> object store S3", tempo, charts["object-store-s3"], 8333, "components/traces.py tempo s3")
        )
    return paths


def _log_paths(cfg, charts: dict[str, Pod]) -> list[Path]:
    """Logs: Alloy tails through the API server and pushes to Loki's write path, Grafana queries the read path,
    Loki's targets talk to each other (gRPC, memberlist) and to the object store."""
    if not cfg.logs.enabled:
        return []
    single = cfg.logs.mode == "single-binary"
    write, read = (charts["loki-single-binary"],) * 2 if single else (charts["loki-write"], charts["loki-read"])
    alloy = charts["alloy"]
    paths = [
        Path("Alloy -> Loki push 3100", alloy, write, 3100, "components/logs.py push_url (loki.write)"),
        Path(
            "Alloy -> kube-apiserver (pods, pods/log)",
            alloy,
            api_server(cfg),
            cfg.cluster.api_server_port,
            "Alloy loki.source.kubernetes, discovery.kubernetes: " + ALLOY_SOURCE,
        ),
    ]
    if "grafana" in charts:
        paths.append(
            Path("Grafana -> Loki query 3100", charts["grafana"], read, 3100, "components/logs.py grafana_datasource")
        )
    targets = [charts[f"loki-{t}"] for t in loki_targets(cfg)]
    for client in targets:
        for server in targets:
            if client is not server:
                for port in (9095, 7946):
                    paths.append(Path(f"{client.name} -> {server.name} {port}", client, server, port, LOKI_SOURCE))
        if "object-store-s3" in charts:
            paths.append(
                Path(
                    f"{client.name} -> object store S3",
                    client,
                    charts["object-store-s3"],
                    8333,
                    "components/logs.py loki.storage.s3",
                )
            )
    return paths


def forbidden(cfg, run) -> list[Path]:
    """Every path that must stay closed in this stack."""
    cluster, charts, tenants = build(run, cfg)
    paths: list[Path] = []
    internals = [k for k in ("mlflow-db", "milvus-etcd", "milvus-internal") if k in charts]
    # Loki trusts the X-Scope-OrgID it is sent, and Alloy's API would show its targets: no tenant reaches either.
    internals += [k for k in charts if k.startswith("loki-") or k == "alloy"]
    # Tempo trusts the X-Scope-OrgID it is sent: tenants reach only the collector, which sets it.
    internals += [k for k in charts if k == "tempo"]
    internals += [k for k in charts if k.startswith("object-store-") and k != "object-store-s3"]
    for tenant, pods in tenants.items():
        others = [p for p in cluster.pods if p.namespace not in (tenant,) and p.namespace in tenants]
        for kind, pod in pods.items():
            for other in others:
                for port in sorted(set(other.ports.values()) | {80, 443, 8000, 8080}):
                    paths.append(
                        Path(
                            f"{tenant} {kind} -> {other.namespace}/{other.name}:{port}",
                            pod,
                            other,
                            port,
                            "tenant isolation (DESIGN.md §9)",
                        )
                    )
            for key in internals:
                for port in charts[key].ports.values():
                    paths.append(
                        Path(
                            f"{tenant} {kind} -> {key}:{port}",
                            pod,
                            charts[key],
                            port,
                            f"platform internals ({charts[key].source})",
                        )
                    )
            if "milvus-serving" in charts:
                paths.append(
                    Path(
                        f"{tenant} {kind} -> Milvus metrics/management 9091",
                        pod,
                        charts["milvus-serving"],
                        9091,
                        MILVUS_SOURCE,
                    )
                )
            if cfg.mesh.enabled:
                for port in (15010, 15014, 15017):
                    paths.append(
                        Path(
                            f"{tenant} {kind} -> istiod {port}",
                            pod,
                            charts["istiod"],
                            port,
                            ISTIOD_SOURCE + ": sidecars need 15012 only",
                        )
                    )
            service, store = rate_limit_pods(cluster)
            if store is not None:  # the counters: a tenant could reset or inflate another's
                paths.append(Path(f"{tenant} {kind} -> rate-limit store 6379", pod, store, 6379, RATE_LIMIT_SOURCE))
            if service is not None:  # a tenant asking it directly learns nothing but could spend others' budgets
                paths.append(Path(f"{tenant} {kind} -> rate-limit service 8081", pod, service, 8081, RATE_LIMIT_SOURCE))
            proxy = label_proxy_pod(cluster)
            if proxy is not None:  # it trusts the namespace header it is sent: only Grafana reaches it
                paths.append(Path(f"{tenant} {kind} -> label proxy 8080", pod, proxy, 8080, LABEL_PROXY_SOURCE))
            paths.append(Path(f"{tenant} {kind} -> metadata service 80", pod, METADATA, 80, METADATA.source))
            paths.append(
                Path(
                    f"{tenant} {kind} -> private database 5432",
                    pod,
                    PRIVATE_DATABASE,
                    5432,
                    "platform databases outside the cluster",
                )
            )
            for address in (PRIVATE_DATABASE, SHARED_SPACE_SERVICE, METADATA):  # "the internet" rules exclude them
                paths.append(Path(f"{tenant} {kind} -> {address.name} 443", pod, address, 443, address.source))
            for key, platform in charts.items():  # platform pods the tenant does not admit (ingress side)
                if key in ADMITTED_INTO_TENANTS:
                    continue
                for port in sorted(set(pod.ports.values()) | {8080}):
                    if key == "kuberay-operator" and kind == "ray-head" and port in (8265, 8000):
                        continue
                    paths.append(
                        Path(
                            f"{key} -> {tenant} {kind}:{port}",
                            platform,
                            pod,
                            port,
                            "tenant ingress admits only the gateway, monitoring and (Ray heads) KubeRay",
                        )
                    )
            if kind not in ("workflow-step", "ray-head"):
                paths.append(
                    Path(
                        f"{tenant} {kind} -> kube-apiserver (not granted)",
                        pod,
                        api_server(cfg),
                        cfg.cluster.api_server_port,
                        "components/tenancy.py: granted to workflow pods (their "
                        "executor) and Ray heads (their autoscaler) and endpoint pickers only",
                    )
                )
    paths += _picker_forbidden(cfg, cluster)
    return paths
