"""Azure Kubernetes Service (``cluster.platform: aks``).

What it changes: ``azurefile-csi`` for model caches several replicas read; with AKS's GPU driver, the GPU Operator's
runtime class; the ``azure.workload.identity/use`` pod label for pods with Workload ID; the monitoring stack stops
scraping the control plane Azure runs. What it refuses: a stack without a NetworkPolicy provider (AKS enforces none
unless one is chosen for the cluster), the operator's container toolkit over AKS's, identity annotations of other
clouds. Each rule cites its source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    Profile,
    Rule,
    annotated_accounts,
    operator_driver,
    platform_driver,
    platform_driver_toolkit,
    unclassed_caches,
)
from .identities import AZURE_WORKLOAD_IDENTITY

if TYPE_CHECKING:
    from config.base import Problems
    from config.gpu import Gpu
    from config.model import PlatformConfig

AKS_DOCS = "https://learn.microsoft.com/azure/aks"
NVIDIA_AKS = "https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/microsoft-aks.html"
# The runtime class of AKS's preinstalled NVIDIA container runtime (NVIDIA's AKS page; the chart's default is nvidia).
AKS_RUNTIME_CLASS = "nvidia-container-runtime"


def _identity(cfg: PlatformConfig) -> bool:
    return any(AZURE_WORKLOAD_IDENTITY.annotation in account for _, account in annotated_accounts(cfg))


class Aks(Profile):
    name = "aks"
    title = "Azure Kubernetes Service"
    network_policy_providers = {
        "cilium": "az aks create ... --network-plugin azure --network-dataplane cilium --network-policy cilium",
        "calico": "az aks create ... --network-policy calico (az aks update reimages every node pool)",
        "azure": "az aks create ... --network-policy azure (Azure NPM; retiring on Linux in September 2028)",
    }
    identities = (AZURE_WORKLOAD_IDENTITY,)
    rwx_storage_class = "azurefile-csi"
    managed_control_plane = True
    rules = (
        Rule(
            "AKS enforces NetworkPolicies only with a network policy engine chosen for the cluster (default none: "
            "policies are accepted and ignored). With Cilium an ipBlock never selects pod or node addresses: the "
            "platform's ipBlocks name only addresses outside the cluster and the API server",
            f"{AKS_DOCS}/use-network-policies; {AKS_DOCS}/azure-cni-powered-by-cilium",
            refuses="a stack without cluster.networkPolicy, or with a provider AKS does not offer",
        ),
        Rule(
            "AKS installs the NVIDIA driver on GPU node pools unless told not to (the SkipGPUDriverInstall tag is "
            "retired); the GPU Operator's driver must not meet another one",
            f"{AKS_DOCS}/use-nvidia-gpu#skip-gpu-driver-installation; {AKS_DOCS}/nvidia-gpu-operator",
            user="Create the GPU node pools with --gpu-driver none (Azure CLI 2.72.2 or later), not as AKS-managed "
            "GPU pools (--enable-managed-gpu) and without AKS MIG profiles",
            applies=operator_driver,
        ),
        Rule(
            "AKS's GPU node image ships the driver and the NVIDIA container toolkit; the operator then runs without "
            "both, on the runtime class of AKS's runtime",
            NVIDIA_AKS,
            program=f"GPU Operator `operator.runtimeClass: {AKS_RUNTIME_CLASS}`",
            refuses="gpu.toolkit with AKS's driver (gpu.driver.enabled false)",
            user="GPU node pools as AKS creates them (driver installed), without AKS-managed GPU pools "
            "(--enable-managed-gpu), whose device plugin would meet the operator's",
            applies=platform_driver,
        ),
        Rule(
            "Model caches read by several replicas need ReadWriteMany: AKS's azurefile-csi class (Azure Files)",
            f"{AKS_DOCS}/concepts-storage#storage-classes; {AKS_DOCS}/azure-files-csi",
            program="storage class azurefile-csi for caches of endpoints with replicas.max > 1 where none is set",
            user="Keep the Azure Files CSI driver enabled (the default)",
            applies=unclassed_caches,
        ),
        Rule(
            "Workload ID: the webhook mutates only pods labelled azure.workload.identity/use=true; the cluster needs "
            "the OIDC issuer and workload identity, each identity a federated credential for its ServiceAccount",
            f"{AZURE_WORKLOAD_IDENTITY.source}; {AKS_DOCS}/workload-identity-overview",
            program="the label on every pod that runs under an annotated ServiceAccount",
            user="az aks update --enable-oidc-issuer --enable-workload-identity; a federated credential per "
            "ServiceAccount (subject system:serviceaccount:<namespace>:<service account>); egress to "
            "login.microsoftonline.com:443",
            applies=_identity,
        ),
        Rule(
            "The AKS Istio add-on does not work beside a self-managed Istio",
            f"{AKS_DOCS}/istio-about",
            user="Keep the Istio-based service mesh add-on off (az aks mesh disable)",
            applies=lambda cfg: cfg.mesh.enabled,
        ),
        Rule(
            "AKS's admissions enforcer keeps custom webhooks off kube-system and namespaces labelled control-plane: "
            "the platform runs nothing in kube-system and labels no namespace so",
            f"{AKS_DOCS}/faq#can-admission-controller-webhooks-impact-kube-system-and-internal-aks-namespaces",
        ),
        Rule(
            "The control plane is Azure's: kube-scheduler, kube-controller-manager and etcd cannot be scraped",
            f"{AKS_DOCS}/monitor-control-plane-metrics",
            program="the monitoring stack's scheduler, controller manager and etcd scrapes (and their alerts) off",
            applies=lambda cfg: cfg.monitoring.enabled,
        ),
    )

    def gpu_operator_values(self, gpu: Gpu, kubernetes_version: str) -> dict:
        return {} if gpu.driver.enabled else {"operator": {"runtimeClass": AKS_RUNTIME_CLASS}}

    def extra_problems(self, cfg: PlatformConfig) -> Problems:
        return platform_driver_toolkit(cfg, self.name, NVIDIA_AKS)


PROFILE = Aks()
