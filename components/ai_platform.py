"""``AiPlatform``: the top-level component; creates the platform's components in dependency order.

Owns the stack's Kubernetes provider (kubeconfig context from ``ai-platform:cluster``) and hands it to every
child through ``providers``, and the ``RegistrationWindow`` every resource of the stack is declared through;
creates nothing else itself but the three tenant ClusterRoles (``tenancy.tenant_roles``: the same for every tenant).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config import PlatformConfig
from config.services import SERVICES, store_users

from .autoscaling import Keda
from .batch import Volcano
from .certs import CertManager
from .gpu import GpuOperator
from .mesh import EndpointTraffic, Mesh
from .meta import RegistrationWindow
from .milvus import Milvus
from .mlflow import Mlflow
from .monitoring import dashboards, rules
from .monitoring.stack import Monitoring
from . import ray, training, workflows
from .objectstore import ObjectStore
from .postgres import CloudNativePg
from .secrets import ExternalSecrets, PlatformSecrets
from .serving.endpoint import ModelEndpoint
from .serving.kserve import KServe
from .serving.model_access import model_credentials
from .tenancy import ApiServer, SharedService, Tenant, shared_service_policies, tenant_roles


class AiPlatform(pulumi.ComponentResource):
    """The whole platform for one stack."""

    def __init__(self, name: str, cfg: PlatformConfig, hf_token: pulumi.Output | None = None,
                 opts: pulumi.ResourceOptions | None = None, alert_secrets: dict | None = None):
        window = RegistrationWindow()  # every child inherits the transformation: bounded memory at any size
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(transformations=[window.transformation]))
        super().__init__("ai-platform:index:AiPlatform", name, None, opts)
        self.provider = k8s.Provider(f"{name}-kubernetes", context=cfg.cluster.kube_context,
                                     opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": self.provider})
        # Every component's Secrets come through here (Pulumi values, or ExternalSecrets from the store). External:
        # the operator first; each ExternalSecret waits for its release (the CRD), the store is created last (below).
        self.external_secrets = (ExternalSecrets("external-secrets", cfg.secrets, cfg.cluster,
                                                 cfg.namespaces.external_secrets, child, protect=cfg.protects("secrets"))
                                 if cfg.secrets.source == "external-secrets" else None)
        self.secrets = PlatformSecrets(cfg.secrets,
                                       store=self.external_secrets.release if self.external_secrets else None)
        # Custom resources of the optional services that tenant developers manage / everyone in a tenant reads.
        workloads: dict[str, list[str]] = {}
        readable: dict[str, list[str]] = {}
        for service, enabled in ((training, cfg.training.enabled), (ray, cfg.ray.enabled),
                                 (workflows, cfg.workflows.enabled)):
            if enabled:
                workloads.update(service.TENANT_WORKLOADS)
                readable.update(service.TENANT_READABLE)

        self.monitoring = (Monitoring("monitoring", cfg.monitoring, cfg.cluster, cfg.namespaces, child,
                                      mesh=cfg.mesh.enabled, platform_secrets=self.secrets,
                                      protect=cfg.protects("monitoring"), receivers=cfg.alert_receivers,
                                      receiver_secrets=alert_secrets or {})
                           if cfg.monitoring.enabled else None)
        if self.monitoring and self.external_secrets:
            self.monitoring.scrape_external_secrets(self.external_secrets.namespace.metadata["name"])
        self.gpu = GpuOperator("gpu", cfg.gpu, cfg.cluster, cfg.namespaces.gpu_operator,
                               service_monitor=cfg.monitoring.enabled, opts=child,
                               after=[self.monitoring.ready] if self.monitoring else None, protect=cfg.protects("gpu"))
        self.object_store = (ObjectStore("object-store", cfg.object_store, cfg.cluster, cfg.namespaces,
                                         store_users(cfg), self.secrets, child, protect=cfg.protects("objectStore"),
                                         tenants=tuple(t.name for t in cfg.tenants) if cfg.workflows.enabled else ())
                             if SERVICES["objectStore"].on(cfg) else None)
        # One CloudNativePG operator for every service that runs a Postgres: protected while any of them is.
        postgres_users = [service.key for service in SERVICES.values() if service.runs_postgres(cfg)]
        self.postgres = (CloudNativePg("cloudnative-pg", cfg.cluster, cfg.namespaces.cnpg, child,
                                       protect=any(cfg.protects(user) for user in postgres_users))
                         if postgres_users else None)
        self.mlflow = (Mlflow("mlflow", cfg.mlflow, cfg.object_store, cfg.cluster, cfg.namespaces, self.object_store,
                              self.monitoring.ready if self.monitoring else None, self.secrets, child,
                              protect=cfg.protects("mlflow"), postgres=self.postgres)
                       if cfg.mlflow.enabled else None)
        self.milvus = (Milvus("milvus", cfg.milvus, cfg.object_store, cfg.cluster, cfg.namespaces,
                              self.object_store.endpoint if self.object_store else None,
                              self.object_store.credentials if self.object_store else None,
                              [self.object_store.release] if self.object_store else [],
                              self.monitoring.ready if self.monitoring else None, self.secrets, child,
                              protect=cfg.protects("milvus"))
                       if cfg.milvus.enabled else None)
        if cfg.serving.enabled:
            protect = cfg.protects("serving")
            self.cert_manager = CertManager("cert-manager", cfg.cluster, cfg.namespaces.cert_manager,
                                            cfg.serving.replicas, child, protect=protect)
            self.keda = Keda("keda", cfg.cluster, cfg.namespaces.keda, cfg.serving.replicas, child, protect=protect)
            self.kserve = KServe("kserve", cfg.serving, cfg.cluster, cfg.namespaces, self.cert_manager.release, child,
                                 protect=protect)
        else:
            self.cert_manager = self.keda = self.kserve = None
        self.volcano = (Volcano("volcano", cfg.volcano, cfg.cluster, cfg.namespaces.volcano, child,
                                protect=cfg.protects("volcano"))
                        if cfg.volcano.enabled else None)
        if self.monitoring and self.volcano:
            self.monitoring.scrape_volcano(self.volcano.namespace.metadata["name"])
        # Shared services tenants may call (config.services): their serving pods and port, fenced in their own
        # namespaces too; the object store's namespace also admits the services whose own pods use it.
        shared = []
        for service in SERVICES.values():
            if service.called_by_tenants(cfg):
                component, namespace = getattr(self, service.attribute), getattr(cfg.namespaces, service.attribute)
                shared.append(SharedService(namespace, component.pod_labels, service.port))
                label = service.attribute.replace("_", "-")  # object-store: the logical name and component label
                clients = ([getattr(cfg.namespaces, SERVICES[user].attribute)
                            for user in store_users(cfg, "service")] if service.key == "objectStore" else None)
                shared_service_policies(label, shared[-1], component.namespace.metadata["name"], cfg.namespaces,
                                        component=label, parent=component, clients=clients)
        if cfg.tenants:
            tenant_roles(workloads, readable, child)
        # Tenant pods that call the API server: workflow pods (their executor) and Ray heads (the autoscaler sidecar).
        api_clients = {**({"allow-kube-apiserver": workflows.WORKFLOW_PODS} if cfg.workflows.enabled else {}),
                       **({"allow-kube-apiserver-ray-head": ray.HEAD_PODS} if cfg.ray.enabled else {})}
        api_server = (ApiServer(list(cfg.cluster.api_server_cidrs), cfg.cluster.api_server_port, api_clients)
                      if api_clients and cfg.cluster.api_server_cidrs else None)
        self.tenants = {
            tenant.name: Tenant(f"tenant-{tenant.name}", tenant, cfg.namespaces, cfg.cluster.kubernetes_version,
                                self.volcano.release if self.volcano else None, cfg.mesh.enabled, child,
                                shared=tuple(shared),
                                api_server=api_server, protect=cfg.protects(f"tenant:{tenant.name}"))
            for tenant in cfg.tenants
        }
        tenant_namespaces = {name: t.namespace.metadata["name"] for name, t in self.tenants.items()}
        # One MLflow and one Milvus account per tenant, its credentials in the tenant's namespace.
        for service in (self.mlflow, self.milvus):
            if service:
                service.add_tenant_accounts(tenant_namespaces)
        # Batch services with objects in tenant namespaces (Volcano is on with them: the config requires it).
        self.training = (training.Training("training", cfg.training, cfg, tenant_namespaces,
                                                   self.volcano.release, child, protect=cfg.protects("training"))
                         if cfg.training.enabled else None)
        self.ray = (ray.Ray("ray", cfg.ray, cfg.cluster, cfg.namespaces, tenant_namespaces,
                                    self.volcano.release, child, protect=cfg.protects("ray"))
                    if cfg.ray.enabled else None)
        self.workflows = (workflows.Workflows("workflows", cfg.workflows, cfg.cluster, cfg.namespaces, cfg.object_store, cfg.gpu,
                                    cfg.tenants, tenant_namespaces, self.object_store, self.secrets,
                                    self.mlflow.url if self.mlflow else None, child,
                                    protect=cfg.protects("workflows"))
                          if cfg.workflows.enabled else None)
        self.mesh = Mesh("mesh", cfg.mesh, cfg.cluster, cfg.namespaces,
                         {name: t.namespace.metadata["name"] for name, t in self.tenants.items()},
                         [cfg.endpoint_host(e) for e in cfg.models],
                         self.cert_manager.release, child,  # the config requires serving (cert-manager)
                         protect=cfg.protects("mesh")) if cfg.mesh.enabled else None
        model_credentials(cfg, self.secrets, tenant_namespaces, self.tenants)
        self.endpoints = [
            ModelEndpoint(f"model-{endpoint.tenant}-{endpoint.name}", endpoint, cfg.tenant(endpoint.tenant),
                          self.tenants[endpoint.tenant].namespace.metadata["name"], cfg.gpu, cfg.serving,
                          cfg.prometheus_url, hf_token, self.kserve.release, self.keda.release, child,
                          platform_secrets=self.secrets, registry=cfg.cluster.image_registry)
            for endpoint in cfg.models
        ]
        if self.monitoring:
            for endpoint in cfg.models:
                self.monitoring.scrape_endpoint(f"monitor-{endpoint.tenant}-{endpoint.name}", endpoint,
                                                self.tenants[endpoint.tenant].namespace.metadata["name"])
            if self.mesh:
                for name, tenant in self.tenants.items():
                    self.monitoring.scrape_mesh_proxies(f"monitor-{name}-istio-proxies",
                                                        tenant.namespace.metadata["name"], tenant=name)
            self.monitoring.publish(rules.alert_groups(cfg), rules.recording_groups(), dashboards.dashboards(cfg))
            self.monitoring.tenant_folders(cfg.tenants, dashboards.tenant_dashboards(cfg))
        if self.mesh and self.ray:  # the operator calls the Ray heads in plain text, from outside the mesh
            self.ray.admit_operator_through_mesh(self.mesh.ready)
        if self.mesh:
            for endpoint in cfg.models:
                EndpointTraffic(f"traffic-{endpoint.tenant}-{endpoint.name}", endpoint, cfg.endpoint_host(endpoint),
                                self.tenants[endpoint.tenant].namespace.metadata["name"], cfg.namespaces,
                                self.mesh.gateway, self.mesh.gateway_principal, self.mesh.ready, child)
        if self.external_secrets:
            # Last: every component has asked for its Secrets, so the store serves exactly their namespaces.
            self.external_secrets.create_store(self.secrets.namespaces())
        self.register_outputs({})
