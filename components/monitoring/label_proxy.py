"""The label-enforcing Prometheus proxy of the tenant Grafana organizations: prometheus-community's prom-label-proxy.

Pure functions, no Pulumi resources: ``Monitoring.tenant_orgs`` registers the Deployment, Service and NetworkPolicy.

Facts from prometheus-community/prom-label-proxy at tag v0.14.0 (commit c68b3c8f0a1b8e7961113e26961bc8a637c994b1):
- main.go: ``-insecure-listen-address`` (the address it serves on, no default), ``-upstream`` (http or https only),
  ``-label`` (required: the label it enforces), and at most one of ``-label-value`` (fixed), ``-query-param`` and
  ``-header-name`` (``injectproxy.HTTPHeaderEnforcer``: the value is every value of that header, ``http.
  CanonicalHeaderKey``; a missing or empty header is refused with HTTP 400 "missing HTTP header");
  ``-header-uses-list-syntax`` (off: a header value is one label value, commas included); ``-enable-label-apis``
  (inject into /api/v1/labels and /api/v1/label/<name>/values too; Prometheus >= 2.24); ``-error-on-replace`` (HTTP 400
  when a query already has a different matcher on the label, instead of silently replacing it); ``-regex-match``
  (off: the value is matched exactly).
- injectproxy/routes.go ``NewRoutes``: it serves /federate, /api/v1/query, /api/v1/query_range, /api/v1/series,
  /api/v1/query_exemplars, /api/v1/rules, /api/v1/alerts (filtered), with ``-enable-label-apis`` /api/v1/labels and
  /api/v1/label/, the Alertmanager /api/v2 silence and alert paths, and /healthz; every other path (the TSDB admin
  API, /api/v1/status/*, /api/v1/metadata, /api/v1/targets, the UI) is a 404 of its ``http.ServeMux``, and a method
  not listed for a path is a 404 too (``enforceMethods``). ``-unsafe-passthrough-paths`` is not set.
- Dockerfile: ``USER nobody`` (busybox, UID 65534), ``ENTRYPOINT ["/bin/prom-label-proxy"]``; no file written.

One shared proxy, the namespace from a header. Grafana's Prometheus data source of each tenant organization sends
``HEADER: <tenant namespace>`` as a custom header (``jsonData.httpHeaderName1``, ``secureJsonData.httpHeaderValue1``),
which Grafana's HTTP client sets on every outgoing request with ``req.Header.Set`` (grafana/grafana-plugin-sdk-go
backend/httpclient/custom_headers_middleware.go ``CustomHeadersMiddleware``, as stored at 0e2072e): a value a browser
sent under the same name is replaced, never added. The proxy is safe with a header because only Grafana reaches it
(``network_policy``: ingress from Grafana's pods only) and Grafana takes the value from the organization's data source,
which tenant users cannot edit (they are Editors or Viewers, never org Admins: ``grafana_access``). A per-tenant
Deployment with ``-label-value`` would not trust a header at all, at one pod per tenant; the header keeps one pod.
"""

from __future__ import annotations

from ..pods import restricted_container, restricted_pod

NAME = "prom-label-proxy"
PORT = 8080
PORT_NAME = "http"
LABEL = "namespace"
HEADER = "X-Prom-Label-Namespace"
UID = 65534  # nobody in the image's busybox passwd (Dockerfile USER nobody)
POD_LABELS = {"app.kubernetes.io/name": NAME}
# Grafana's pods (kube-prometheus-stack 88.5.3 charts/grafana templates/_helpers.tpl grafana.selectorLabels).
GRAFANA_POD_LABELS = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"}
# Prometheus's pods (prometheus-operator: app.kubernetes.io/name=prometheus on every Prometheus pod it runs).
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}


def args(prometheus_url: str) -> list[str]:
    """The proxy's flags: listen on ``PORT``, forward to Prometheus, enforce ``LABEL`` exactly from ``HEADER``, on the
    label APIs too, and refuse (rather than rewrite) a query that names another namespace."""
    return [
        f"-insecure-listen-address=0.0.0.0:{PORT}",
        f"-upstream={prometheus_url}",
        f"-label={LABEL}",
        f"-header-name={HEADER}",
        "-enable-label-apis",
        "-error-on-replace",
    ]


def url(namespace: str) -> str:
    """The proxy's in-cluster URL (its Service in the monitoring namespace)."""
    return f"http://{NAME}.{namespace}.svc:{PORT}"


def deployment_spec(image: str, prometheus_url: str, replicas: int) -> dict:
    """Pod Security ``restricted``, read-only root, no token, no sidecar; probes on /healthz."""
    probe = {"httpGet": {"path": "/healthz", "port": PORT_NAME}, "periodSeconds": 10}
    container = {
        "name": "proxy",
        "image": image,
        "args": args(prometheus_url),
        "ports": [{"name": PORT_NAME, "containerPort": PORT}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
        "securityContext": restricted_container(non_root=True, seccomp=True),
    }
    return {
        "replicas": replicas,
        "selector": {"matchLabels": dict(POD_LABELS)},
        "template": {
            "metadata": {"labels": {**POD_LABELS, "sidecar.istio.io/inject": "false"}},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": restricted_pod(UID, gid=UID),
                "containers": [container],
            },
        },
    }


def service_spec() -> dict:
    return {
        "selector": dict(POD_LABELS),
        "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
    }


def network_policy() -> dict:
    """Ingress from Grafana's pods on ``PORT`` only; egress to Prometheus's pods on 9090 and to DNS."""
    return {
        "podSelector": {"matchLabels": dict(POD_LABELS)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": dict(GRAFANA_POD_LABELS)}}],
                "ports": [{"port": PORT, "protocol": "TCP"}],
            }
        ],
        "egress": [
            {
                "to": [{"podSelector": {"matchLabels": dict(PROMETHEUS_POD_LABELS)}}],
                "ports": [{"port": 9090, "protocol": "TCP"}],
            },
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            },
        ],
    }
