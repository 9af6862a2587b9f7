"""The whole stack config (``PlatformConfig``): one section per ``ai-platform:<key>`` of a stack file, each from the
module of its concern, and the order in which the rules that read more than one section run.

Each concern's module owns its sections and those rules (``cross_checks``); ``config.base`` holds what they share.
"""

from __future__ import annotations

from functools import cached_property

from pydantic import model_validator

import platforms

from . import batch, data, gpu, logs, mesh, protection, ratelimits, rightsizing, routing, serving, tenancy, traces
from .base import Model, valid
from .batch import Ray, Training, Volcano, Workflows
from .cluster import Cluster, Namespaces
from .data import Milvus, Mlflow, ObjectStore
from .gpu import Gpu
from .logs import Logs
from .mesh import Mesh
from .monitoring import TENANT_RECEIVER_PREFIX, Monitoring, Receiver
from .protection import TENANT_OWNER, DataProtection
from .ratelimits import RateLimits
from .rightsizing import Vpa
from .routing import InferenceRouting
from .secrets import Secrets
from .services import SERVICES, service
from .serving import Endpoint, Serving
from .tenancy import Tenant
from .traces import Traces

# The rules that read more than one section, by concern, in the order their problems are listed.
CROSS_CHECKS = (
    tenancy.cross_checks,
    gpu.cross_checks,
    serving.cross_checks,
    mesh.cross_checks,
    ratelimits.cross_checks,
    routing.cross_checks,
    protection.cross_checks,
    batch.cross_checks,
    data.cross_checks,
    rightsizing.cross_checks,
    logs.cross_checks,
    traces.cross_checks,
    platforms.cross_checks,
)


class PlatformConfig(Model):
    """The whole stack config: one attribute per ``ai-platform:<key>`` of the stack file."""

    cluster: Cluster
    """``ai-platform:cluster``: the target cluster."""
    namespaces: Namespaces = Namespaces()
    """``ai-platform:namespaces``: the platform's own namespace names."""
    volcano: Volcano = Volcano()
    """``ai-platform:volcano``: batch scheduler."""
    gpu: Gpu = Gpu()
    """``ai-platform:gpu``: GPU Operator, sharing and GPU node inventory."""
    tenants: list[Tenant] = []
    """``ai-platform:tenants``: one entry per tenant."""
    serving: Serving = Serving()
    """``ai-platform:serving``: cert-manager, KServe, KEDA."""
    models: list[Endpoint] = []
    """``ai-platform:models``: one model endpoint per entry."""
    mesh: Mesh = Mesh()
    """``ai-platform:mesh``: Istio, ingress gateway, mTLS, authorization."""
    rate_limits: RateLimits = RateLimits()
    """``ai-platform:rateLimits``: per-consumer and per-endpoint request limits at the ingress gateway."""
    inference_routing: InferenceRouting = InferenceRouting()
    """``ai-platform:inferenceRouting``: InferencePools and endpoint pickers for vLLM endpoints at the ingress gateway."""
    monitoring: Monitoring = Monitoring()
    """``ai-platform:monitoring``: Prometheus, Alertmanager, Grafana, alerts, dashboards."""
    object_store: ObjectStore = ObjectStore()
    """``ai-platform:objectStore``: S3-compatible storage of MLflow and Milvus."""
    mlflow: Mlflow = Mlflow()
    """``ai-platform:mlflow``: tracking server and its Postgres."""
    milvus: Milvus = Milvus()
    """``ai-platform:milvus``: vector database."""
    training: Training = Training()
    """``ai-platform:training``: Kubeflow Trainer and the torch runtime."""
    workflows: Workflows = Workflows()
    """``ai-platform:workflows``: Argo Workflows and the tenants' pipelines."""
    ray: Ray = Ray()
    """``ai-platform:ray``: KubeRay operator."""
    secrets: Secrets = Secrets()
    """``ai-platform:secrets``: Pulumi secrets or the External Secrets Operator."""
    data_protection: DataProtection = DataProtection()
    """``ai-platform:dataProtection``: protection of stateful resources."""
    vpa: Vpa = Vpa()
    """``ai-platform:vpa``: the Vertical Pod Autoscaler's recommendations for the platform's workloads."""
    logs: Logs = Logs()
    """``ai-platform:logs``: Loki and the log agent, one Loki tenant per tenant."""
    traces: Traces = Traces()
    """``ai-platform:traces``: Tempo and the OpenTelemetry Collector, one Tempo tenant per tenant."""

    def protects(self, owner: str) -> bool:
        """Whether the data or CRDs of ``owner`` (a service of ``config.services`` or ``tenant:<name>``) are
        protected; an owner that is neither is an error."""
        if not TENANT_OWNER.fullmatch(owner):
            service(owner)
        return self.data_protection.mode == "strict" and owner not in self.data_protection.decommission

    @property
    def data_owners(self) -> list[str]:
        """The services and tenants of this stack whose removal loses data or CRDs (what the strict check keeps)."""
        return [s.key for s in SERVICES.values() if s.on(self)] + [f"tenant:{t.name}" for t in self.tenants]

    def endpoint_host(self, endpoint: Endpoint) -> str:
        """The external host name of an endpoint: ``<endpoint>.<tenant>.<domain>``."""
        return f"{endpoint.name}.{endpoint.tenant}.{self.cluster.domain}"

    def tenant(self, name: str) -> Tenant:
        return self.tenants_by_name[name]

    @cached_property
    def tenants_by_name(self) -> dict[str, Tenant]:
        """Tenant name -> tenant (one lookup per endpoint or pipeline, not a scan of the tenants)."""
        return {t.name: t for t in self.tenants}

    @property
    def alert_receivers(self) -> dict[str, Receiver]:
        """Every Alertmanager receiver of the stack by name: the platform's (``monitoring.receivers``) and one per
        tenant with an ``alertReceiver`` (``tenant-<tenant>``)."""
        return {
            **{r.name: r for r in self.monitoring.receivers},
            **{f"{TENANT_RECEIVER_PREFIX}{t.name}": t.alert_receiver for t in self.tenants if t.alert_receiver},
        }

    @property
    def prometheus_url(self) -> str:
        """Prometheus that endpoint autoscalers query."""
        return (
            self.serving.prometheus_url
            or f"http://kube-prometheus-stack-prometheus.{self.namespaces.monitoring}.svc:9090"
        )

    @model_validator(mode="after")
    def _cross_checks(self) -> PlatformConfig:
        """Rules that span sections; every problem is reported, not just the first."""
        return valid(self, [problem for check in CROSS_CHECKS for problem in check(self)])
