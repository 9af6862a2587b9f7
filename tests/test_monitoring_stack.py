"""The monitoring stack: release, namespace, Grafana's credentials, what Prometheus selects and keeps, the scraping
objects (Volcano, model endpoints, the GPU Operator's DCGM exporter), the mesh's mTLS plumbing, switching it off."""

import json

import pytest
import yaml

from components.monitoring import stack
from components.serving.endpoint import versions_of
from config import versions
from tests.conftest import run_with
from tools.harness import SECRET
from tools.validate import upstream_dir

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
COMPONENT_TYPE = "ai-platform:monitoring:Monitoring"
PART_OF = "app.kubernetes.io/part-of"
SELECTORS = ("serviceMonitorSelector", "podMonitorSelector", "ruleSelector")


def release(result, name):
    found = [r for r in result.releases if r.inputs["name"] == name]
    assert len(found) == 1, f"expected one release {name}, found {len(found)}"
    return found[0]


def monitoring_values(result) -> dict:
    return release(result, "kube-prometheus-stack").inputs["values"]


def gpu_values(result) -> dict:
    return release(result, "gpu-operator").inputs["values"]


def upstream_values(*path: str) -> dict:
    return yaml.safe_load((upstream_dir().joinpath(*path) / "values.yaml").read_text())


def selects(selector: dict, labels: dict) -> bool:
    """Kubernetes label-selector semantics for matchLabels and In/NotIn/Exists/DoesNotExist expressions."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def monitors(result):
    return result.of_kind("ServiceMonitor") + result.of_kind("PodMonitor")


@pytest.fixture(scope="module")
def monitoring_off():
    return run_with(monitoring={"enabled": False})


@pytest.fixture(scope="module")
def tuned_without_mesh():
    """Storage class, replicas and retention set; no mesh (plaintext scraping); no Volcano."""
    return run_with(
        monitoring={
            "retention": "30d",
            "prometheusReplicas": 2,
            "storage": {"size": "200Gi", "storageClass": "fast-ssd"},
        },
        mesh={"enabled": False},
        volcano={"enabled": False},
        training={"enabled": False},
        workflows={"enabled": False},
    )


# --- release, namespace --------------------------------------------------------------------------------------------


def test_release_is_pinned_in_the_monitoring_namespace(stack_run, cfg):
    chart = versions.KUBE_PROMETHEUS_STACK
    assert chart == ("kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts", "88.5.3")
    assert versions.CHARTS["kube-prometheus-stack"] is chart
    found = release(stack_run, "kube-prometheus-stack")
    assert found.inputs["chart"] == chart.name
    assert found.inputs["version"] == chart.version
    assert found.inputs["repositoryOpts"] == {"repo": chart.repo}
    assert found.inputs["namespace"] == cfg.namespaces.monitoring
    namespace = stack_run.one("Namespace", cfg.namespaces.monitoring)
    assert namespace.urn in found.dependencies
    component = next(r for r in stack_run.resources if r.type == COMPONENT_TYPE)
    assert found.parent == component.urn and namespace.parent == component.urn


def test_prometheus_service_is_where_the_autoscalers_look(stack_run, cfg):
    """fullnameOverride fixes the objects' prefix: Service <fullname>-prometheus:9090, PlatformConfig's default."""
    values = monitoring_values(stack_run)
    assert values["fullnameOverride"] == "kube-prometheus-stack"
    assert upstream_values("kube-prometheus-stack")["prometheus"]["service"]["port"] == 9090
    expected = f"http://{values['fullnameOverride']}-prometheus.{cfg.namespaces.monitoring}.svc:9090"
    assert cfg.serving.prometheus_url is None
    assert cfg.prometheus_url == expected
    for scaled in stack_run.of_kind("ScaledObject"):
        assert scaled.inputs["spec"]["triggers"][0]["metadata"]["serverAddress"] == expected


def test_namespace_is_privileged_for_node_exporter(stack_run, cfg):
    labels = stack_run.one("Namespace", cfg.namespaces.monitoring).inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "privileged"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == f"v{cfg.cluster.kubernetes_version}"
    assert labels[PART_OF] == "ai-platform"
    # Why: node-exporter (on by default) uses the host's network and PID namespaces and mounts its root fs.
    assert upstream_values("kube-prometheus-stack")["nodeExporter"]["enabled"] is True
    exporter = upstream_values("kube-prometheus-stack", "charts", "prometheus-node-exporter")
    assert exporter["hostNetwork"] is True and exporter["hostPID"] is True and exporter["hostRootFsMount"]["enabled"]


def test_images_follow_the_registry_mirror(stack_run, cfg):
    values = monitoring_values(stack_run)
    if cfg.cluster.image_registry:
        assert values["global"] == {"imageRegistry": cfg.cluster.image_registry}
    else:
        assert "global" not in values


# --- Grafana credentials ------------------------------------------------------------------------------------------


def test_grafana_admin_comes_from_the_generated_secret(stack_run, cfg):
    grafana = monitoring_values(stack_run)["grafana"]
    upstream = upstream_values("kube-prometheus-stack", "charts", "grafana")["admin"]
    assert grafana["admin"]["userKey"] == upstream["userKey"] == stack.GRAFANA_USER_KEY
    assert grafana["admin"]["passwordKey"] == upstream["passwordKey"] == stack.GRAFANA_PASSWORD_KEY
    assert "adminPassword" not in grafana
    component = next(r for r in stack_run.resources if r.type == COMPONENT_TYPE)
    passwords = [r for r in stack_run.resources if r.type == PASSWORD_TYPE and r.parent == component.urn]
    if cfg.secrets.source == "external-secrets":  # prod: the store holds the password, nothing is generated
        secret = stack_run.one("ExternalSecret", "grafana-admin", cfg.namespaces.monitoring)
        target = secret.inputs["spec"]["target"]
        assert grafana["admin"]["existingSecret"] == target["name"] == secret.k8s_name
        assert target["template"]["type"] == "Opaque"
        assert set(target["template"]["data"]) == {stack.GRAFANA_USER_KEY, stack.GRAFANA_PASSWORD_KEY}
        assert target["template"]["data"][stack.GRAFANA_USER_KEY] == stack.GRAFANA_ADMIN_USER
        assert passwords == []
    else:
        secret = stack_run.one("Secret", "grafana-admin", cfg.namespaces.monitoring)
        assert grafana["admin"]["existingSecret"] == secret.k8s_name
        assert secret.inputs["type"] == "Opaque"
        (password,) = passwords
        assert password.inputs["length"] == 32 and password.inputs["special"] is False
        assert password.urn in secret.dependencies
    # The release does not wait for it (Grafana's pod does, by secretKeyRef): the monitors and rules, and the releases
    # that need its CRDs, stay in the third wave (tests/test_dependency_depth.py).
    assert secret.urn not in release(stack_run, "kube-prometheus-stack").dependencies


@pytest.mark.invariant
def test_grafana_password_never_appears_in_clear(stack_run, cfg):
    if cfg.secrets.source == "external-secrets":
        pytest.skip("no password in the program: the store holds it (tests/test_secrets.py)")
    secret = stack_run.one("Secret", "grafana-admin", cfg.namespaces.monitoring)
    assert secret.inputs["stringData"] == SECRET
    # The harness's RandomPassword result is "generated-<name>" (marked secret like the engine does): it must not
    # show up anywhere else, in any registered input or any stack output.
    assert [r for r in stack_run.resources if r.type == PASSWORD_TYPE]
    assert "generated-" not in json.dumps([r.inputs for r in stack_run.resources], default=str)
    assert "generated-" not in json.dumps(stack_run.outputs, default=str)


# --- Prometheus ---------------------------------------------------------------------------------------------------


def test_prometheus_selects_platform_and_chart_monitors_in_every_namespace(stack_run):
    spec = monitoring_values(stack_run)["prometheus"]["prometheusSpec"]
    for flag in (
        "serviceMonitorSelectorNilUsesHelmValues",
        "podMonitorSelectorNilUsesHelmValues",
        "ruleSelectorNilUsesHelmValues",
    ):
        assert spec[flag] is False, flag
    for key in ("serviceMonitorNamespaceSelector", "podMonitorNamespaceSelector", "ruleNamespaceSelector"):
        assert spec[key] == {}, key
    for key in SELECTORS:
        selector = spec[key]
        assert selects(selector, {PART_OF: "ai-platform"}), key
        # The chart's own monitors and rules (parent chart, kube-state-metrics, node-exporter) stay selected.
        for chart in ("kube-prometheus-stack", "kube-state-metrics", "prometheus-node-exporter"):
            assert selects(selector, {PART_OF: chart}), (key, chart)
        assert not selects(selector, {PART_OF: "someone-else"}), key
        assert not selects(selector, {"release": "kube-prometheus-stack"}), key
    # Grafana's ServiceMonitor carries no part-of label of its own: it gets one.
    labels = monitoring_values(stack_run)["grafana"]["serviceMonitor"]["labels"]
    assert selects(spec["serviceMonitorSelector"], labels)


@pytest.mark.invariant
def test_every_platform_monitor_is_selected(stack_run):
    spec = monitoring_values(stack_run)["prometheus"]["prometheusSpec"]
    found = monitors(stack_run)
    assert found
    for monitor in found:
        key = "serviceMonitorSelector" if monitor.kind == "ServiceMonitor" else "podMonitorSelector"
        assert selects(spec[key], monitor.inputs["metadata"]["labels"]), monitor.k8s_name
    dcgm_labels = gpu_values(stack_run)["dcgmExporter"]["serviceMonitor"]["additionalLabels"]
    assert selects(spec["serviceMonitorSelector"], dcgm_labels)


def test_retention_storage_and_replicas_follow_the_config(stack_run, cfg):
    spec = monitoring_values(stack_run)["prometheus"]["prometheusSpec"]
    assert spec["retention"] == cfg.monitoring.retention
    assert spec["replicas"] == cfg.monitoring.prometheus_replicas
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == cfg.monitoring.storage.size
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert claim.get("storageClassName") == cfg.monitoring.storage.storage_class


def test_tuned_retention_storage_class_and_replicas(tuned_without_mesh):
    spec = monitoring_values(tuned_without_mesh)["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["replicas"] == 2
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "200Gi"}},
        "storageClassName": "fast-ssd",
    }


def test_kube_state_metrics_exports_tenant_and_endpoint_labels(stack_run):
    allowlist = monitoring_values(stack_run)["kube-state-metrics"]["metricLabelsAllowlist"]
    assert "pods=[ai-platform/tenant,ai-platform/endpoint]" in allowlist
    assert "namespaces=[ai-platform/tenant,ai-platform/endpoint]" in allowlist


def test_grafana_loads_dashboards_only_from_the_monitoring_namespace_into_folders(stack_run, cfg):
    """Not every namespace (tenant developers manage ConfigMaps there): only the platform's, each dashboard in the
    folder its grafana_folder annotation names, the chart's own in their folder."""
    dashboards = monitoring_values(stack_run)["grafana"]["sidecar"]["dashboards"]
    assert dashboards == {
        "enabled": True,
        "label": "grafana_dashboard",
        "labelValue": "1",
        "searchNamespace": cfg.namespaces.monitoring,
        "folderAnnotation": "grafana_folder",
        "provider": {"foldersFromFilesStructure": True},
        "annotations": {"grafana_folder": "Kubernetes"},
    }
    upstream = upstream_values("kube-prometheus-stack", "charts", "grafana")["sidecar"]["dashboards"]
    assert upstream["provider"]["folder"] == "" and upstream["provider"]["folderUid"] == ""  # required by the option
    for config_map in stack_run.of_kind("ConfigMap"):
        if "grafana_dashboard" in config_map.inputs["metadata"]["labels"]:
            assert config_map.namespace == cfg.namespaces.monitoring
            assert config_map.inputs["metadata"]["annotations"]["grafana_folder"]


# --- scraping objects ---------------------------------------------------------------------------------------------


def test_dcgm_service_monitor_is_on_and_waits_for_the_crds(stack_run):
    monitor = gpu_values(stack_run)["dcgmExporter"]["serviceMonitor"]
    assert monitor["enabled"] is True
    assert monitor["additionalLabels"] == {PART_OF: "ai-platform"}
    assert release(stack_run, "kube-prometheus-stack").urn in release(stack_run, "gpu-operator").dependencies


def test_one_pod_monitor_per_endpoint_version(stack_run, cfg):
    mesh = cfg.mesh.enabled
    release_urn = release(stack_run, "kube-prometheus-stack").urn
    component = next(r for r in stack_run.resources if r.type == COMPONENT_TYPE)
    expected = set()
    for endpoint in cfg.models:
        tenant_namespace = stack_run.one("Namespace", endpoint.tenant)
        for version, _ in versions_of(endpoint):
            name = endpoint.name if version == "stable" else f"{endpoint.name}-{version}"
            expected.add((endpoint.tenant, name))
            monitor = stack_run.one("PodMonitor", name, endpoint.tenant)
            assert monitor.inputs["apiVersion"] == "monitoring.coreos.com/v1"
            assert monitor.name == f"monitor-{endpoint.tenant}-{name}"
            assert monitor.parent == component.urn
            assert {release_urn, tenant_namespace.urn} <= set(monitor.dependencies)
            assert monitor.inputs["metadata"]["labels"]["ai-platform/tenant"] == endpoint.tenant
            spec = monitor.inputs["spec"]
            if endpoint.engine == "kserve":
                assert spec["selector"] == {"matchLabels": {"serving.kserve.io/inferenceservice": name}}
            else:
                assert spec["selector"] == {"matchLabels": {"ai-platform/endpoint": endpoint.name, "version": version}}
            (scrape,) = spec["podMetricsEndpoints"]
            assert scrape["path"] == "/metrics"
            port = {"vllm": {"port": "http"}, "triton": {"port": "metrics"}, "kserve": {"portNumber": 8080}}[
                endpoint.engine
            ]
            assert {k: scrape[k] for k in ("port", "portNumber") if k in scrape} == port
            assert scrape["scheme"] == ("https" if mesh else "http")
            assert spec.get("scrapeClass") == ("istio-mtls" if mesh else None)
    endpoint_monitors = {
        (m.namespace, m.k8s_name)
        for m in stack_run.of_kind("PodMonitor")
        if "ai-platform/endpoint" in m.inputs["metadata"]["labels"]
    }
    assert endpoint_monitors == expected
    assert len(expected) > len(cfg.models) or not any(e.canary for e in cfg.models)


def test_scrape_ports_are_the_ones_the_mesh_allows_and_the_servers_expose(stack_run, cfg):
    """The PodMonitors' ports are the metrics ports the endpoints' AuthorizationPolicies open to the monitoring
    namespace (on /metrics), and the named ones exist on the server containers."""
    from components.serving import engines

    for engine in engines.all_engines():
        scrape = engine.metrics_scrape
        assert scrape["path"] == "/metrics"
        if "port" in scrape:
            assert (scrape["port"], engine.metrics_port) in [(n, p) for n, p, _ in engine.ports]
        else:
            assert scrape["portNumber"] == engine.metrics_port
    endpoint_policies = [  # the mesh's per-endpoint policies (not the pickers' plain-text GET /metrics opening)
        p
        for p in stack_run.of_kind("AuthorizationPolicy")
        if p.inputs["spec"].get("action") == "ALLOW"
        and "selector" in p.inputs["spec"]
        and p.inputs["metadata"]["labels"]["app.kubernetes.io/component"] == "mesh"
    ]
    assert len(endpoint_policies) >= len(cfg.models)
    for policy in endpoint_policies:
        rules = [
            r
            for r in policy.inputs["spec"]["rules"]
            if r["from"][0]["source"].get("namespaces") == [cfg.namespaces.monitoring]
        ]
        assert rules and rules[0]["to"][0]["operation"]["paths"] == ["/metrics"]


def test_meshed_prometheus_gets_workload_certificates(stack_run, cfg):
    spec = monitoring_values(stack_run)["prometheus"]["prometheusSpec"]
    assert cfg.mesh.enabled
    metadata = spec["podMetadata"]
    assert metadata["labels"] == {"sidecar.istio.io/inject": "true"}
    annotations = metadata["annotations"]
    # The sidecar intercepts nothing: it only writes certificates.
    assert annotations["traffic.sidecar.istio.io/includeInboundPorts"] == ""
    assert annotations["traffic.sidecar.istio.io/includeOutboundIPRanges"] == ""
    output = yaml.safe_load(annotations["proxy.istio.io/config"])["proxyMetadata"]["OUTPUT_CERTS"]
    (mount,) = json.loads(annotations["sidecar.istio.io/userVolumeMount"])
    assert mount["mountPath"] == output
    (volume,) = spec["volumes"]
    assert volume["name"] == mount["name"] and volume["emptyDir"] == {"medium": "Memory"}
    (prometheus_mount,) = spec["volumeMounts"]
    assert prometheus_mount["name"] == volume["name"] and prometheus_mount["readOnly"] is True
    (scrape_class,) = spec["scrapeClasses"]
    assert scrape_class["name"] == "istio-mtls"
    tls = scrape_class["tlsConfig"]
    for key, file in (("caFile", "root-cert.pem"), ("certFile", "cert-chain.pem"), ("keyFile", "key.pem")):
        assert tls[key] == f"{prometheus_mount['mountPath']}/{file}"
    assert tls["insecureSkipVerify"] is True


def test_without_mesh_scraping_is_plaintext(tuned_without_mesh):
    spec = monitoring_values(tuned_without_mesh)["prometheus"]["prometheusSpec"]
    assert not {"podMetadata", "volumes", "volumeMounts", "scrapeClasses"} & set(spec)
    pod_monitors = tuned_without_mesh.of_kind("PodMonitor")
    assert pod_monitors
    for monitor in pod_monitors:
        assert "scrapeClass" not in monitor.inputs["spec"]
        assert monitor.inputs["spec"]["podMetricsEndpoints"][0]["scheme"] == "http"


# The Volcano chart's metrics Services (volcano-sh/volcano v1.15.1 installer/helm/chart/volcano/templates/
# scheduler.yaml, controllers.yaml): monitor -> (Service label app, the value that makes the component serve metrics).
VOLCANO_METRICS = {
    "volcano-scheduler": ("volcano-scheduler", "scheduler_metrics_enable"),
    "volcano-controllers": ("volcano-controller", "controller_metrics_enable"),
}


@pytest.mark.parametrize("name", sorted(VOLCANO_METRICS))
def test_volcano_metrics_monitors(stack_run, cfg, name):
    """The scheduler's and the controllers' metrics Services are scraped: the controllers publish the queue
    metrics (volcano_queue_pod_group_*) the batch alert reads."""
    app, enable = VOLCANO_METRICS[name]
    monitor = stack_run.one("ServiceMonitor", name, cfg.namespaces.volcano)
    spec = monitor.inputs["spec"]
    assert spec["selector"] == {"matchLabels": {"app": app}}
    assert spec["endpoints"] == [{"port": "metrics", "path": "/metrics", "scheme": "http"}]
    assert release(stack_run, "volcano").inputs["values"]["custom"][enable] is True
    volcano_namespace = stack_run.one("Namespace", cfg.namespaces.volcano)
    assert {release(stack_run, "kube-prometheus-stack").urn, volcano_namespace.urn} <= set(monitor.dependencies)
    assert release(stack_run, "volcano").urn not in monitor.dependencies  # only the CRD's release is waited for


def test_no_volcano_no_volcano_monitor(tuned_without_mesh):
    assert not tuned_without_mesh.of_kind("ServiceMonitor")
    assert tuned_without_mesh.of_kind("PodMonitor")


# --- switched off -------------------------------------------------------------------------------------------------


def test_monitoring_off_removes_everything_it_owns(monitoring_off):
    cfg_namespace = "monitoring"
    assert not [r for r in monitoring_off.releases if r.inputs["chart"] == "kube-prometheus-stack"]
    assert not [r for r in monitoring_off.of_kind("Namespace") if r.k8s_name == cfg_namespace]
    assert not [r for r in monitoring_off.of_kind("Secret") if r.k8s_name == "grafana-admin"]
    assert not [r for r in monitoring_off.resources if r.type == COMPONENT_TYPE]
    assert not [r for r in monitoring_off.resources if r.type == PASSWORD_TYPE and "grafana" in r.name]
    assert not monitors(monitoring_off)
    assert not [r for r in monitoring_off.resources if "monitoring.coreos.com" in r.type]
    assert not [c for c in monitoring_off.of_kind("ConfigMap") if "grafana_dashboard" in c.inputs["metadata"]["labels"]]
    # The rest of the platform is still there.
    assert {"volcano", "gpu-operator", "kserve-resources"} <= {r.inputs["name"] for r in monitoring_off.releases}
    assert monitoring_off.of_kind("Deployment")


def test_monitoring_off_turns_the_dcgm_service_monitor_off(monitoring_off):
    gpu = release(monitoring_off, "gpu-operator")
    assert gpu.inputs["values"]["dcgmExporter"]["serviceMonitor"]["enabled"] is False
    assert not {r.urn for r in monitoring_off.releases} & set(gpu.dependencies)


def test_mesh_proxies_are_scraped_in_every_tenant_namespace(stack_run, cfg):
    proxies = {m.namespace: m for m in stack_run.of_kind("PodMonitor") if m.k8s_name == "istio-proxies"}
    assert set(proxies) == ({t.name for t in cfg.tenants} if cfg.mesh.enabled else set())
    for monitor in proxies.values():
        (scrape,) = monitor.inputs["spec"]["podMetricsEndpoints"]
        assert (scrape["port"], scrape["path"]) == ("http-envoy-prom", "/stats/prometheus")


def test_alert_packs_recording_rules_and_dashboards_are_published(stack_run, cfg):
    from components.monitoring import dashboards, rules

    published = {r.k8s_name: r.inputs["spec"]["groups"] for r in stack_run.of_kind("PrometheusRule")}
    expected = {name: groups for name, groups in rules.alert_groups(cfg).items() if groups}
    expected["ai-platform-recording"] = rules.recording_groups()
    assert published == expected
    assert {"ai-platform-gpu", "ai-platform-inference", "ai-platform-tenancy"} <= set(published)
    for rule in stack_run.of_kind("PrometheusRule"):
        assert rule.namespace == cfg.namespaces.monitoring
        assert rule.inputs["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ai-platform"
    maps = {c.k8s_name: c for c in stack_run.of_kind("ConfigMap") if c.namespace == cfg.namespaces.monitoring}
    names = dashboards.dashboards(cfg)
    assert len(names) >= 3
    for name, dashboard in names.items():
        cm = maps[f"dashboard-{name}"].inputs
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"][f"{name}.json"])["uid"] == dashboard["uid"]
