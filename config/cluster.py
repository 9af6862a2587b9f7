"""The cluster a stack targets (``ai-platform:cluster``) and the platform's own namespaces
(``ai-platform:namespaces``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

import platforms

from .base import Cidr, DnsLabel, DnsSubdomain, Model, valid

# Versions kubernetes-validate (and so the schema tier) knows.
SUPPORTED_KUBERNETES = [f"1.{minor}" for minor in range(25, 38)]


class Cluster(Model):
    """The cluster this stack targets."""

    name: DnsLabel
    """Short cluster name, used in labels and outputs."""
    kube_context: str | None = None
    """kubeconfig context the stack's Kubernetes provider uses; unset means the current context."""
    kubernetes_version: Literal[tuple(SUPPORTED_KUBERNETES)]  # type: ignore[valid-type]
    """Kubernetes minor the cluster runs, e.g. "1.35"; pins Pod Security versions and schema validation."""
    domain: DnsSubdomain
    """DNS domain under which the platform exposes endpoints."""
    image_registry: str | None = None
    """Registry mirror that replaces the charts' default registries (air-gapped clusters); tags stay pinned."""
    environment: Literal["development", "staging", "production"] = "production"
    """What the stack is for; ``production`` forbids ``dataProtection.mode: relaxed``."""
    api_server_cidrs: list[Cidr] = []
    """Addresses of the Kubernetes API server's endpoints (``kubectl get endpointslices -l
    kubernetes.io/service-name=kubernetes``) as CIDRs. Tenant pods that call the API (Argo Workflows' executor)
    may reach them; required with workflows on."""
    api_server_port: Annotated[int, Field(ge=1, le=65535, strict=True)] = 443
    """Port of those endpoints (443 on most managed clusters, 6443 on kubeadm)."""
    platform: Literal[tuple(platforms.PROFILES)] = "generic"  # type: ignore[valid-type]
    """Managed platform the cluster runs on: ``gke``, ``eks``, ``aks`` or ``generic``. Its profile (``platforms/``)
    adds what the platform needs, refuses what cannot work there and lists what must be done on the cluster first
    (stack output ``platformProfile``, plan.md; docs/platforms.md)."""
    network_policy: Literal[tuple(platforms.NETWORK_POLICY_PROVIDERS)] | None = None  # type: ignore[valid-type]
    """What enforces NetworkPolicies in the cluster (tenant isolation is made of them); required on gke
    (``dataplane-v2``, ``calico``), eks (``vpc-cni`` with its network policy agent on, ``calico``, ``cilium``) and aks
    (``azure``, ``calico``, ``cilium``)."""

    @property
    def profile(self) -> platforms.Profile:
        """The rules of ``platform``."""
        return platforms.of(self.platform)

    @field_validator("image_registry")
    @classmethod
    def _registry_host(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*", value):
            raise ValueError("must be a registry host with an optional path, e.g. registry.example.com/mirror")
        return value


class Namespaces(Model):
    """Names of the platform's own namespaces; tenants may not use them and network policies refer to them."""

    volcano: DnsLabel = "volcano-system"
    """Volcano scheduler, controllers and admission webhook."""
    gpu_operator: DnsLabel = "gpu-operator"
    """NVIDIA GPU Operator and its node daemonsets (Pod Security privileged)."""
    ingress: DnsLabel = "istio-ingress"
    """Ingress gateway: tenants accept traffic from it."""
    monitoring: DnsLabel = "monitoring"
    """Prometheus and Grafana: tenants accept metrics scraping from it."""
    mesh: DnsLabel = "istio-system"
    """Service mesh control plane (istiod)."""
    mesh_cni: DnsLabel = "istio-cni"
    """Istio CNI node agent (Pod Security privileged: it edits the nodes' CNI config)."""
    cert_manager: DnsLabel = "cert-manager"
    """cert-manager (certificates for KServe's webhooks and the ingress)."""
    kserve: DnsLabel = "kserve"
    """KServe controller."""
    keda: DnsLabel = "keda"
    """KEDA: autoscaling of model endpoints on inference metrics."""
    mlflow: DnsLabel = "mlflow"
    """MLflow tracking server: a shared service tenants may reach."""
    milvus: DnsLabel = "milvus"
    """Milvus vector database: a shared service tenants may reach."""
    object_store: DnsLabel = "object-store"
    """In-cluster S3-compatible object store (SeaweedFS) for MLflow artifacts and Milvus segments."""
    cnpg: DnsLabel = "cnpg-system"
    """CloudNativePG operator (the in-cluster Postgres of MLflow)."""
    training: DnsLabel = "kubeflow-system"
    """Kubeflow Trainer controller and its JobSet controller."""
    workflows: DnsLabel = "argo"
    """Argo Workflows controller and server (workflows themselves run in tenant namespaces)."""
    ray: DnsLabel = "ray-system"
    """KubeRay operator (Ray clusters run in tenant namespaces)."""
    external_secrets: DnsLabel = "external-secrets"
    """External Secrets Operator and the secret store's service account."""
    vpa: DnsLabel = "vertical-pod-autoscaler"
    """Vertical Pod Autoscaler recommender."""
    logs: DnsLabel = "logging"
    """Loki and the Alloy log agent (no tenant may reach it: Loki trusts the tenant header it is sent)."""
    traces: DnsLabel = "tracing"
    """Tempo and the OpenTelemetry Collector (tenants reach the collector's OTLP ports only: it sets the tenant from
    the sending pod's namespace; Tempo trusts the tenant header it is sent)."""

    @model_validator(mode="after")
    def _distinct(self) -> Namespaces:
        seen: dict[str, str] = {}
        problems = []
        for field, value in self:
            if value in seen:
                problems.append((to_camel(field), f"{value!r} is already the {to_camel(seen[value])} namespace"))
            seen.setdefault(value, field)
        return valid(self, problems)
