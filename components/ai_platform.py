"""``AiPlatform``: the top-level component; creates the platform's components in dependency order.

Owns the stack's Kubernetes provider (kubeconfig context from ``ai-platform:cluster``) and hands it to every
child through ``providers``; creates nothing else itself.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config import PlatformConfig

from .batch import Volcano
from .gpu import GpuOperator
from .tenancy import Tenant


class AiPlatform(pulumi.ComponentResource):
    """The whole platform for one stack."""

    def __init__(self, name: str, cfg: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:index:AiPlatform", name, None, opts)
        self.provider = k8s.Provider(f"{name}-kubernetes", context=cfg.cluster.kube_context,
                                     opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": self.provider})

        # No monitoring component yet: the DCGM exporter's ServiceMonitor would need the Prometheus Operator CRDs.
        self.gpu = GpuOperator("gpu", cfg.gpu, cfg.cluster, cfg.namespaces.gpu_operator, service_monitor=False,
                               opts=child)
        self.volcano = (Volcano("volcano", cfg.volcano, cfg.cluster, cfg.namespaces.volcano, child)
                        if cfg.volcano.enabled else None)
        self.tenants = {
            tenant.name: Tenant(f"tenant-{tenant.name}", tenant, cfg.namespaces, cfg.cluster.kubernetes_version,
                                self.volcano.release if self.volcano else None, child)
            for tenant in cfg.tenants
        }
        self.register_outputs({})
