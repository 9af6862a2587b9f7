"""``AiPlatform``: the top-level component; creates the platform's components in dependency order.

Owns the stack's Kubernetes provider (kubeconfig context from ``ai-platform:cluster``) and hands it to every
child through ``providers``, and the ``RegistrationWindow`` every resource of the stack is declared through;
creates nothing else itself but the three tenant ClusterRoles (``tenancy.tenant_roles``: the same for every tenant)
and, last, the external secret store (``_create_secret_store_last``). With ``vpa.enabled``, ``vpa.Workloads`` sees every
release and workload the stack declares, and the VPA component right-sizes them all at the end (``_rightsize``).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi
import pulumi_kubernetes as k8s

from config import PlatformConfig
from config.services import SERVICES, store_users

from . import ray, training, workflows
from . import traces as traces_module
from .autoscaling import Keda, KedaArgs
from .batch import Volcano, VolcanoArgs
from .certs import CertManager, CertManagerArgs
from .gpu import GpuOperator, GpuOperatorArgs
from .logs import Logs, LogsArgs, grafana_datasource
from .logs import tenant_datasource as logs_tenant_datasource
from .mesh.control_plane import GATEWAY_LABELS, Mesh, MeshArgs
from .mesh.inference_pools import (
    PICKER_PODS,
    EndpointPools,
    EndpointPoolsArgs,
    InferenceGateway,
    InferenceGatewayArgs,
)
from .mesh.rate_limits import RateLimits, RateLimitsArgs
from .mesh.traffic import EndpointTraffic, EndpointTrafficArgs
from .meta import RegistrationWindow
from .milvus import Milvus, MilvusArgs
from .mlflow import Mlflow, MlflowArgs
from .monitoring import dashboards, rules
from .monitoring.stack import Monitoring, MonitoringArgs
from .objectstore import ObjectStore, ObjectStoreArgs
from .postgres import CloudNativePg, CloudNativePgArgs
from .secrets import ExternalSecrets, ExternalSecretsArgs, PlatformSecrets
from .serving.endpoint import ModelEndpoint, ModelEndpointArgs
from .serving.kserve import KServe, KServeArgs
from .serving.model_access import model_credentials
from .tenancy import (
    ApiServer,
    OtlpCollector,
    SharedService,
    Tenant,
    TenantArgs,
    shared_service_policies,
    tenant_roles,
)
from .vpa import VerticalPodAutoscaler, VerticalPodAutoscalerArgs, Workload, Workloads


@dataclass(frozen=True)
class AiPlatformArgs:
    """What ``AiPlatform`` is built from: the stack's config; keyword-only, the secrets read from the stack's Pulumi
    config (the Hugging Face token; the alert receivers' credentials by receiver, with ``secrets.source`` pulumi)."""

    cfg: PlatformConfig
    _: KW_ONLY
    hf_token: pulumi.Output | None = None
    alert_secrets: dict | None = None


class AiPlatform(pulumi.ComponentResource):
    """The whole platform for one stack: what it contains, in the order it is declared."""

    def __init__(self, name: str, args: AiPlatformArgs, opts: pulumi.ResourceOptions | None = None):
        window = RegistrationWindow()  # every child inherits the transformation: bounded memory at any size
        # What the stack installs, for the VPAs (only with vpa.enabled: otherwise nothing needs it).
        workloads = Workloads() if args.cfg.vpa.enabled else None
        transformations: list[pulumi.ResourceTransformation] = [window.transformation]
        if workloads:
            transformations.append(workloads.transformation)
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(transformations=transformations))
        super().__init__("ai-platform:index:AiPlatform", name, None, opts)
        self.cfg = cfg = args.cfg
        self.provider = k8s.Provider(
            f"{name}-kubernetes", context=cfg.cluster.kube_context, opts=pulumi.ResourceOptions(parent=self)
        )
        self._child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": self.provider})
        self.external_secrets, self.secrets = self._secrets()
        self.vpa = (
            VerticalPodAutoscaler(
                "vpa", VerticalPodAutoscalerArgs(cfg.cluster, cfg.namespaces, protect=cfg.protects("vpa")), self._child
            )
            if cfg.vpa.enabled
            else None
        )
        self.monitoring = self._monitoring(args.alert_secrets or {})
        self.gpu = self._gpu_operator()
        self.object_store, self.postgres, self.mlflow, self.milvus = self._data_services()
        self.logs = self._logs()
        self.traces = self._traces()
        self.cert_manager, self.keda, self.kserve = self._serving_operators()
        self.volcano = self._volcano()
        self.tenants = self._tenants()
        tenant_namespaces: dict[str, pulumi.Input[str]] = {
            name: t.namespace.metadata["name"] for name, t in self.tenants.items()
        }
        # One MLflow and one Milvus account per tenant, its credentials in the tenant's namespace.
        for service in (self.mlflow, self.milvus):
            if service:
                service.add_tenant_accounts(tenant_namespaces)
        self.training, self.ray, self.workflows = self._batch_services(tenant_namespaces)
        self.mesh = self._mesh(tenant_namespaces)
        model_credentials(cfg, self.secrets, tenant_namespaces, self.tenants)
        self.endpoints = self._endpoints(args.hf_token)
        if self.monitoring:
            self._monitor_everything(self.monitoring)
        if self.mesh:
            self._mesh_routes(self.mesh)
        if self.vpa and workloads:
            self._rightsize(self.vpa, workloads)
        self._create_secret_store_last()
        self.register_outputs({})

    def _secrets(self) -> tuple[ExternalSecrets | None, PlatformSecrets]:
        """Every component's Secrets come through ``PlatformSecrets`` (Pulumi values, or ExternalSecrets from the
        store). External: the operator first; each ExternalSecret waits for its release (the CRD), the store is
        created last (``_create_secret_store_last``)."""
        cfg = self.cfg
        operator = (
            ExternalSecrets(
                "external-secrets",
                ExternalSecretsArgs(cfg.cluster, cfg.namespaces, cfg.secrets, protect=cfg.protects("secrets")),
                self._child,
            )
            if cfg.secrets.source == "external-secrets"
            else None
        )
        return operator, PlatformSecrets(cfg.secrets, store=operator.release if operator else None)

    def _tenant_namespace(self, tenant: str) -> pulumi.Output[str]:
        return self.tenants[tenant].namespace.metadata["name"]

    def _monitoring(self, alert_secrets: dict) -> Monitoring | None:
        """kube-prometheus-stack, and a PodMonitor on the External Secrets operator when the stack has it."""
        cfg = self.cfg
        if not cfg.monitoring.enabled:
            return None
        monitoring = Monitoring(
            "monitoring",
            MonitoringArgs(
                cfg.cluster,
                cfg.namespaces,
                cfg.monitoring,
                cfg.mesh.enabled,
                cfg.alert_receivers,
                cfg.vpa.enabled,
                self._grafana_datasources(),
                protect=cfg.protects("monitoring"),
                platform_secrets=self.secrets,
                receiver_secrets=alert_secrets,
            ),
            self._child,
        )
        if self.external_secrets:
            monitoring.scrape_external_secrets(self.external_secrets.namespace.metadata["name"])
        return monitoring

    @property
    def _monitoring_ready(self) -> pulumi.Resource | None:
        """What waits for monitoring (the Prometheus Operator's CRDs): its release, when the stack has it."""
        return self.monitoring.ready if self.monitoring else None

    def _gpu_operator(self) -> GpuOperator:
        cfg = self.cfg
        return GpuOperator(
            "gpu",
            GpuOperatorArgs(
                cfg.cluster, cfg.namespaces, cfg.gpu, protect=cfg.protects("gpu"), monitoring=self._monitoring_ready
            ),
            self._child,
        )

    def _data_services(self) -> tuple[ObjectStore | None, CloudNativePg | None, Mlflow | None, Milvus | None]:
        """The in-cluster object store, the CloudNativePG operator, MLflow and Milvus: those the stack has."""
        cfg, child = self.cfg, self._child
        store = (
            ObjectStore(
                "object-store",
                ObjectStoreArgs(
                    cfg.cluster,
                    cfg.namespaces,
                    cfg.object_store,
                    store_users(cfg),
                    tuple(t.name for t in cfg.tenants) if cfg.workflows.enabled else (),
                    protect=cfg.protects("objectStore"),
                    secrets=self.secrets,
                ),
                child,
            )
            if SERVICES["objectStore"].on(cfg)
            else None
        )
        # One CloudNativePG operator for every service that runs a Postgres: protected while any of them is.
        postgres_users = [service.key for service in SERVICES.values() if service.runs_postgres(cfg)]
        postgres = (
            CloudNativePg(
                "cloudnative-pg",
                CloudNativePgArgs(
                    cfg.cluster, cfg.namespaces, protect=any(cfg.protects(user) for user in postgres_users)
                ),
                child,
            )
            if postgres_users
            else None
        )
        mlflow = (
            Mlflow(
                "mlflow",
                MlflowArgs(
                    cfg.cluster,
                    cfg.namespaces,
                    cfg.mlflow,
                    cfg.object_store,
                    protect=cfg.protects("mlflow"),
                    object_store=store,
                    monitoring=self._monitoring_ready,
                    postgres=postgres,
                    platform_secrets=self.secrets,
                ),
                child,
            )
            if cfg.mlflow.enabled
            else None
        )
        milvus = (
            Milvus(
                "milvus",
                MilvusArgs(
                    cfg.cluster,
                    cfg.namespaces,
                    cfg.milvus,
                    cfg.object_store,
                    protect=cfg.protects("milvus"),
                    object_store=store,
                    monitoring=self._monitoring_ready,
                    platform_secrets=self.secrets,
                ),
                child,
            )
            if cfg.milvus.enabled
            else None
        )
        return store, postgres, mlflow, milvus

    def _logs(self) -> Logs | None:
        """Loki and the Alloy agent, with logs on: each tenant's namespace (named as the tenant) its Loki tenant."""
        cfg = self.cfg
        if not cfg.logs.enabled:
            return None
        return Logs(
            "logs",
            LogsArgs(
                cfg.cluster,
                cfg.namespaces,
                cfg.logs,
                cfg.object_store,
                {t.name: t.name for t in cfg.tenants},
                protect=cfg.protects("logs"),
                object_store=self.object_store,
                platform_secrets=self.secrets,
                monitoring=self._monitoring_ready,
            ),
            self._child,
        )

    def _grafana_datasources(self) -> list[dict]:
        """Grafana's Loki and Tempo datasources, of the stack's log and trace services (each over every tenant)."""
        cfg = self.cfg
        tenants = [t.name for t in cfg.tenants]
        sources = []
        if cfg.logs.enabled:
            sources.append(grafana_datasource(cfg.logs, cfg.namespaces, tenants))
        if cfg.traces.enabled:
            logs_uid = sources[0]["uid"] if sources else None
            sources.append(traces_module.grafana_datasource(cfg.namespaces, tenants, logs_uid))
        return sources

    def _tenant_grafana_datasources(self) -> dict[str, list[dict]]:
        """Per tenant, the Loki and Tempo datasources of its Grafana organization (its own tenant id only)."""
        cfg, found = self.cfg, {}
        for tenant in cfg.tenants:
            sources = []
            if cfg.logs.enabled:
                sources.append(logs_tenant_datasource(cfg.logs, cfg.namespaces, tenant.name))
            if cfg.traces.enabled:
                logs_uid = sources[0]["uid"] if sources else None
                sources.append(traces_module.tenant_datasource(cfg.namespaces, tenant.name, logs_uid))
            found[tenant.name] = sources
        return found

    def _traces(self) -> traces_module.Traces | None:
        """Tempo and the OpenTelemetry Collector, with traces on: each tenant's namespace its Tempo tenant."""
        cfg = self.cfg
        if not cfg.traces.enabled:
            return None
        return traces_module.Traces(
            "traces",
            traces_module.TracesArgs(
                cfg.cluster,
                cfg.namespaces,
                cfg.traces,
                cfg.object_store,
                {t.name: t.name for t in cfg.tenants},
                protect=cfg.protects("traces"),
                object_store=self.object_store,
                platform_secrets=self.secrets,
                monitoring=self._monitoring_ready,
            ),
            self._child,
        )

    def _otlp(self) -> traces_module.Otlp | None:
        """Where the servers and the mesh's proxies send spans, with traces on."""
        return traces_module.otlp(self.cfg.traces, self.cfg.namespaces) if self.cfg.traces.enabled else None

    def _serving_operators(self) -> tuple[CertManager | None, Keda | None, KServe | None]:
        """cert-manager, KEDA and KServe, with serving on."""
        cfg = self.cfg
        if not cfg.serving.enabled:
            return None, None, None
        protect = cfg.protects("serving")
        cert_manager = CertManager(
            "cert-manager",
            CertManagerArgs(cfg.cluster, cfg.namespaces, cfg.serving.replicas, protect=protect),
            self._child,
        )
        keda = Keda("keda", KedaArgs(cfg.cluster, cfg.namespaces, cfg.serving.replicas, protect=protect), self._child)
        kserve = KServe(
            "kserve",
            KServeArgs(
                cfg.cluster, cfg.namespaces, cfg.serving, protect=protect, cert_manager_release=cert_manager.release
            ),
            self._child,
        )
        return cert_manager, keda, kserve

    def _volcano(self) -> Volcano | None:
        """Volcano, and with monitoring its scrape."""
        cfg = self.cfg
        if not cfg.volcano.enabled:
            return None
        volcano = Volcano(
            "volcano",
            VolcanoArgs(cfg.cluster, cfg.namespaces, cfg.volcano, protect=cfg.protects("volcano")),
            self._child,
        )
        if self.monitoring:
            self.monitoring.scrape_volcano(volcano.namespace.metadata["name"])
        return volcano

    def _shared_services(self) -> tuple[SharedService, ...]:
        """Shared services tenants may call (config.services): their serving pods and port, fenced in their own
        namespaces too; the object store's namespace also admits the services whose own pods use it."""
        cfg, shared = self.cfg, []
        for service in SERVICES.values():
            if service.called_by_tenants(cfg):
                component, namespace = getattr(self, service.attribute), getattr(cfg.namespaces, service.attribute)
                shared.append(SharedService(namespace, component.pod_labels, service.port))
                label = service.attribute.replace("_", "-")  # object-store: the logical name and component label
                clients = (
                    [getattr(cfg.namespaces, SERVICES[user].attribute) for user in store_users(cfg, "service")]
                    if service.key == "objectStore"
                    else None
                )
                shared_service_policies(
                    label,
                    shared[-1],
                    component.namespace.metadata["name"],
                    cfg.namespaces,
                    component=label,
                    parent=component,
                    clients=clients,
                )
        return tuple(shared)

    def _tenant_workloads(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Custom resources of the optional services that tenant developers manage / everyone in a tenant reads."""
        workloads: dict[str, list[str]] = {}
        readable: dict[str, list[str]] = {}
        for service, enabled in (
            (training, self.cfg.training.enabled),
            (ray, self.cfg.ray.enabled),
            (workflows, self.cfg.workflows.enabled),
        ):
            if enabled:
                workloads.update(service.TENANT_WORKLOADS)
                readable.update(service.TENANT_READABLE)
        return workloads, readable

    def _tenants(self) -> dict[str, Tenant]:
        """The shared services' fences, the tenant ClusterRoles, and one Tenant per tenant: its pods may call the
        shared services and, for workflow pods (their executor) and Ray heads (the autoscaler sidecar), the API
        server."""
        cfg = self.cfg
        shared = self._shared_services()
        if cfg.tenants:
            tenant_roles(*self._tenant_workloads(), self._child)
        api_clients: dict[str, dict] = {
            **({"allow-kube-apiserver": workflows.WORKFLOW_PODS} if cfg.workflows.enabled else {}),
            **({"allow-kube-apiserver-ray-head": ray.HEAD_PODS} if cfg.ray.enabled else {}),
            **({"allow-kube-apiserver-picker": {"matchLabels": PICKER_PODS}} if cfg.inference_routing.enabled else {}),
        }
        api_server = (
            ApiServer(list(cfg.cluster.api_server_cidrs), cfg.cluster.api_server_port, api_clients)
            if api_clients and cfg.cluster.api_server_cidrs
            else None
        )
        volcano_release = self.volcano.release if self.volcano else None
        # A loop, not a comprehension: the SDK sends with each registration the frames under the third ``__init__`` on the
        # stack (pulumi/runtime/resource.py _get_stack_trace), and a comprehension is one more (docs/benchmark.md).
        tenants = {}
        for tenant in cfg.tenants:
            tenants[tenant.name] = Tenant(
                f"tenant-{tenant.name}",
                TenantArgs(
                    cfg.cluster,
                    cfg.namespaces,
                    tenant,
                    cfg.mesh.enabled,
                    shared,
                    api_server,
                    OtlpCollector(cfg.namespaces.traces, traces_module.COLLECTOR_POD_LABELS, traces_module.OTLP_PORTS)
                    if cfg.traces.enabled
                    else None,
                    protect=cfg.protects(f"tenant:{tenant.name}"),
                    volcano_release=volcano_release,
                ),
                self._child,
            )
        return tenants

    def _batch_services(self, tenant_namespaces: dict[str, pulumi.Input[str]]) -> tuple:
        """Training, Ray and Argo Workflows, those the stack has: objects in tenant namespaces (Volcano is on with the
        first two: config.batch.cross_checks requires it)."""
        cfg, child, volcano = self.cfg, self._child, self.volcano
        trainer = (
            training.Training(
                "training",
                training.TrainingArgs(
                    cfg.cluster,
                    cfg.namespaces,
                    cfg.training,
                    cfg.gpu,
                    cfg.tenants,
                    protect=cfg.protects("training"),
                    tenant_namespaces=tenant_namespaces,
                    volcano_release=volcano.release,
                ),
                child,
            )
            if cfg.training.enabled and volcano
            else None
        )
        kuberay = (
            ray.Ray(
                "ray",
                ray.RayArgs(
                    cfg.cluster,
                    cfg.namespaces,
                    cfg.ray,
                    protect=cfg.protects("ray"),
                    tenant_namespaces=tenant_namespaces,
                    volcano_release=volcano.release,
                ),
                child,
            )
            if cfg.ray.enabled and volcano
            else None
        )
        argo = (
            workflows.Workflows(
                "workflows",
                workflows.WorkflowsArgs(
                    cfg.cluster,
                    cfg.namespaces,
                    cfg.workflows,
                    cfg.object_store,
                    cfg.gpu,
                    cfg.tenants,
                    protect=cfg.protects("workflows"),
                    tenant_namespaces=tenant_namespaces,
                    object_store=self.object_store,
                    mlflow_url=self.mlflow.url if self.mlflow else None,
                    platform_secrets=self.secrets,
                ),
                child,
            )
            if cfg.workflows.enabled
            else None
        )
        return trainer, kuberay, argo

    def _mesh(self, tenant_namespaces: dict[str, pulumi.Input[str]]) -> Mesh | None:
        """Istio, with the mesh on (the config then requires serving: cert-manager)."""
        cfg = self.cfg
        if not cfg.mesh.enabled:
            return None
        assert self.cert_manager is not None  # config.mesh.cross_checks: the mesh needs serving.enabled
        return Mesh(
            "mesh",
            MeshArgs(
                cfg.cluster,
                cfg.namespaces,
                cfg.mesh,
                [cfg.endpoint_host(e) for e in cfg.models],
                self._otlp(),
                cfg.inference_routing.enabled,
                protect=cfg.protects("mesh"),
                tenant_namespaces=tenant_namespaces,
                cert_manager_release=self.cert_manager.release,
            ),
            self._child,
        )

    def _endpoints(self, hf_token: pulumi.Output | None) -> list[ModelEndpoint]:
        """One ModelEndpoint per model, in its tenant's namespace."""
        cfg, kserve, keda = self.cfg, self.kserve, self.keda
        if kserve is None or keda is None:  # serving off: no models (config.serving.cross_checks)
            return []
        endpoints = []
        for endpoint in cfg.models:  # a loop, not a comprehension: one frame fewer (see _tenants)
            endpoints.append(
                ModelEndpoint(
                    f"model-{endpoint.tenant}-{endpoint.name}",
                    ModelEndpointArgs(
                        endpoint,
                        cfg.tenant(endpoint.tenant),
                        cfg.gpu,
                        cfg.serving,
                        cfg.prometheus_url,
                        cfg.cluster,
                        namespace=self._tenant_namespace(endpoint.tenant),
                        hf_token=hf_token,
                        kserve_release=kserve.release,
                        keda_release=keda.release,
                        platform_secrets=self.secrets,
                        otlp=self._otlp(),
                        meter_tokens=cfg.rate_limits.meters_tokens(cfg, endpoint),
                    ),
                    self._child,
                )
            )
        return endpoints

    def _monitor_everything(self, monitoring: Monitoring) -> None:
        """Monitors of every endpoint (and, with the mesh, of every tenant's proxies), the platform's rules and
        dashboards, and the tenants' dashboard folders."""
        cfg = self.cfg
        for endpoint in cfg.models:
            monitoring.scrape_endpoint(
                f"monitor-{endpoint.tenant}-{endpoint.name}", endpoint, self._tenant_namespace(endpoint.tenant)
            )
        if self.mesh:
            for name in self.tenants:
                monitoring.scrape_mesh_proxies(
                    f"monitor-{name}-istio-proxies", self._tenant_namespace(name), tenant=name
                )
        monitoring.publish(rules.alert_groups(cfg), rules.recording_groups(), dashboards.dashboards(cfg))
        monitoring.tenant_folders(cfg.tenants, dashboards.tenant_dashboards(cfg), self._tenant_grafana_datasources())

    def _mesh_routes(self, mesh: Mesh) -> None:
        """With the mesh: Ray's operator admitted in plain text (it calls the Ray heads from outside the mesh), the
        gateway's rate limits (``rateLimits``) and one EndpointTraffic per model (routes, canary split,
        authorization)."""
        cfg = self.cfg
        if self.ray:
            self.ray.admit_operator_through_mesh(mesh.ready)
        if cfg.rate_limits.active(cfg):
            RateLimits(
                "rate-limits",
                RateLimitsArgs(
                    cfg.cluster,
                    cfg.namespaces,
                    cfg,
                    GATEWAY_LABELS,
                    namespace=mesh.ingress_namespace.metadata["name"],
                    istiod=mesh.ready,
                    platform_secrets=self.secrets,
                    monitoring=self._monitoring_ready,
                ),
                self._child,
            )
        if cfg.inference_routing.enabled:
            self._inference_pools(mesh)
        for endpoint in cfg.models:
            EndpointTraffic(
                f"traffic-{endpoint.tenant}-{endpoint.name}",
                EndpointTrafficArgs(
                    endpoint,
                    cfg.endpoint_host(endpoint),
                    cfg.namespaces,
                    namespace=self._tenant_namespace(endpoint.tenant),
                    mesh=mesh,
                ),
                self._child,
            )

    def _inference_pools(self, mesh: Mesh) -> None:
        """With ``inferenceRouting``: the Gateway API Gateway on the ingress gateway and, per vLLM endpoint that
        takes it, its InferencePools, pickers and HTTPRoute."""
        cfg = self.cfg
        InferenceGateway(
            "inference-gateway",
            InferenceGatewayArgs(cfg, namespace=mesh.ingress_namespace.metadata["name"], mesh=mesh),
            self._child,
        )
        for endpoint in cfg.models:
            if cfg.inference_routing.pooled(endpoint):
                EndpointPools(
                    f"pools-{endpoint.tenant}-{endpoint.name}",
                    EndpointPoolsArgs(
                        cfg,
                        endpoint,
                        namespace=self._tenant_namespace(endpoint.tenant),
                        ingress_namespace=cfg.namespaces.ingress,
                        mesh=mesh,
                        monitoring=self._monitoring_ready,
                    ),
                    self._child,
                )

    def _rightsize(self, vpa: VerticalPodAutoscaler, workloads: Workloads) -> None:
        """A VerticalPodAutoscaler (Off mode) for every Deployment/StatefulSet the stack installs (what ``workloads``
        saw declared) and for the model servers of every endpoint with ``models[].vpa``."""
        servers = [
            Workload(f"model-{endpoint.tenant}-{deployment}", "Deployment", deployment, namespace, endpoint.tenant)
            for endpoint in self.cfg.models
            if endpoint.vpa
            for namespace in [self._tenant_namespace(endpoint.tenant)]
            for deployment in rules.endpoint_deployments(endpoint)
        ]
        vpa.rightsize([*workloads.found, *servers])

    def _create_secret_store_last(self) -> None:
        """Last: every component has asked for its Secrets. Closing ``PlatformSecrets`` refuses any later one, and the
        external store (``secrets.source: external-secrets``) serves exactly the namespaces they were placed in."""
        namespaces = self.secrets.close()
        if self.external_secrets:
            self.external_secrets.create_store(namespaces)
