"""What every component uses: the platform's labels, Pod Security labels of namespaces, image mirroring."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config.versions import Chart

PART_OF = "ai-platform"
TENANT_LABEL = "ai-platform/tenant"


def labels(component: str, tenant: str | None = None) -> dict[str, str]:
    """The labels every platform object carries (plus the tenant label on tenant objects)."""
    result = {
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": component,
    }
    if tenant:
        result[TENANT_LABEL] = tenant
    return result


def metadata(name: str, component: str, namespace: object = None, tenant: str | None = None,
             extra_labels: dict[str, str] | None = None) -> dict:
    """``metadata`` with an explicit name, the platform labels and, for namespaced objects, the namespace."""
    result: dict = {"name": name, "labels": {**labels(component, tenant), **(extra_labels or {})}}
    if namespace is not None:
        result["namespace"] = namespace
    return result


def pod_security_labels(level: str, kubernetes_version: str) -> dict[str, str]:
    """Enforce, audit and warn one Pod Security level, pinned to the cluster's Kubernetes minor."""
    result = {}
    for mode in ("enforce", "audit", "warn"):
        result[f"pod-security.kubernetes.io/{mode}"] = level
        result[f"pod-security.kubernetes.io/{mode}-version"] = f"v{kubernetes_version}"
    return result


def mirrored(image: str, registry: str) -> str:
    """``image`` pulled from ``registry``: its registry host (Docker Hub if it names none) replaced, path kept."""
    host, _, path = image.partition("/")
    if path and ("." in host or ":" in host or host == "localhost"):
        return f"{registry}/{path}"
    return f"{registry}/{image}"


def platform_namespace(logical_name: str, name: str, component: str, pod_security: str, kubernetes_version: str,
                       parent: pulumi.Resource, tenant: str | None = None,
                       extra_labels: dict[str, str] | None = None) -> k8s.core.v1.Namespace:
    """A namespace with the platform labels and one Pod Security level (enforced, audited, warned)."""
    return k8s.core.v1.Namespace(
        logical_name,
        metadata=metadata(name, component, tenant=tenant,
                          extra_labels={**pod_security_labels(pod_security, kubernetes_version), **(extra_labels or {})}),
        opts=pulumi.ResourceOptions(parent=parent))


def helm_release(logical_name: str, chart: Chart, namespace: pulumi.Input[str], values: dict,
                 parent: pulumi.Resource, depends_on: list[pulumi.Resource] | None = None,
                 timeout: int = 600, release_name: str | None = None) -> k8s.helm.v3.Release:
    """A Helm release of a pinned chart, named after the chart unless ``release_name`` says otherwise (an
    ``oci://`` repo is referenced in the chart)."""
    location = ({"chart": f"{chart.repo}/{chart.name}"} if chart.repo.startswith("oci://")
                else {"chart": chart.name, "repository_opts": {"repo": chart.repo}})
    return k8s.helm.v3.Release(
        logical_name,
        name=release_name or chart.name,
        version=chart.version,
        namespace=namespace,
        values=values,
        max_history=10,
        timeout=timeout,
        cleanup_on_fail=True,
        **location,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or []))
