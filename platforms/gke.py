"""Google Kubernetes Engine, Standard clusters (``cluster.platform: gke``).

What it changes: a ResourceQuota scoped to the system-critical priority classes beside every release whose charts run
such pods; the Istio CNI chart's ``global.platform: gke`` and GKE's CNI binary directory; the GPU Operator's driver and
toolkit paths with Google's driver installer, and the toolkit's containerd workaround on 1.33+; ``standard-rwx``
(Filestore) for model caches several replicas read; metadata-server egress for pods with Workload Identity; no scrapes
of the control plane Google runs. What it refuses: a stack without a NetworkPolicy provider, identity annotations of
other clouds. Each rule cites its source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Profile, Rule, annotated_accounts, operator_driver, platform_driver, unclassed_caches
from .identities import GKE_WORKLOAD_IDENTITY

if TYPE_CHECKING:
    from config.gpu import Gpu
    from config.model import PlatformConfig

NVIDIA_GKE_GUIDE = "https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/google-gke.html"
# Where Google's driver installer puts the driver and where the toolkit must go (NVIDIA's GKE guide).
GKE_NVIDIA_DIR = "/home/kubernetes/bin/nvidia"
# GKE keeps CNI binaries here; the cni chart's top-level cniBinDir (default /opt/cni/bin) overrides its own GKE
# detection, so it is set (istio/istio@1.30.3 manifests/charts/istio-cni/templates/daemonset.yaml:8-14, README.md:60).
GKE_CNI_BIN_DIR = "/home/kubernetes/bin"
# NVIDIA's known issue on GKE 1.33+: the toolkit misconfigures containerd's config.toml unless it reads the file
# (GKE guide, Prerequisites note; release notes 25.10.0 known issues, not fixed by v26.7.0).
TOOLKIT_FILE_CONFIG = {"name": "RUNTIME_CONFIG_SOURCE", "value": "file"}


def _minor(cfg: PlatformConfig) -> int:
    return int(cfg.cluster.kubernetes_version.split(".")[1])


def _identity(cfg: PlatformConfig) -> bool:
    return any(GKE_WORKLOAD_IDENTITY.annotation in account for _, account in annotated_accounts(cfg))


class Gke(Profile):
    name = "gke"
    title = "Google Kubernetes Engine (Standard)"
    network_policy_providers = {
        "dataplane-v2": "create the cluster with --enable-dataplane-v2",
        "calico": "gcloud container clusters update CLUSTER --update-addons=NetworkPolicy=ENABLED, then "
        "--enable-network-policy",
    }
    identities = (GKE_WORKLOAD_IDENTITY,)
    rwx_storage_class = "standard-rwx"
    critical_pods_need_quota = True
    istio_platform = "gke"
    cni_bin_dir = GKE_CNI_BIN_DIR
    managed_control_plane = True
    rules = (
        Rule(
            "GKE enforces NetworkPolicies only with GKE Dataplane V2 or the Calico network policy add-on; without "
            "either they are accepted and ignored",
            "https://cloud.google.com/kubernetes-engine/docs/how-to/network-policy",
            refuses="a stack without cluster.networkPolicy, or with a provider GKE does not offer",
        ),
        Rule(
            "Pods of priority class system-node-critical or system-cluster-critical are admitted outside kube-system "
            "only in a namespace with a ResourceQuota scoped to those classes (GPU Operator daemonsets, Volcano, "
            "istio-cni-node stay pending otherwise)",
            f"{NVIDIA_GKE_GUIDE}; github.com/NVIDIA/gpu-operator/issues/660; github.com/volcano-sh/volcano/issues/2379",
            program="a ResourceQuota `critical-pods-<release>` scoped to both classes beside every release whose pods "
            "run at them (config.charts.CHART_PRIORITY); the release waits for it",
        ),
        Rule(
            "The Istio CNI agent must install into GKE's CNI binary directory /home/kubernetes/bin; the chart's "
            "cniBinDir default overrides its own GKE detection",
            "istio/istio@1.30.3:manifests/charts/istio-cni/templates/daemonset.yaml, files/profile-platform-gke.yaml; "
            "https://istio.io/latest/docs/ambient/install/platform-prerequisites/#google-kubernetes-engine-gke",
            program=f"cni chart `global.platform: gke` (Istio's GKE profile: its own critical-pods quota) and "
            f"`cniBinDir: {GKE_CNI_BIN_DIR}`",
            applies=lambda cfg: cfg.mesh.enabled,
        ),
        Rule(
            "With Google's driver installer the GPU Operator must use its driver and toolkit directory, and GKE's own "
            "device plugin must stay off the pools",
            NVIDIA_GKE_GUIDE,
            program=f"GPU Operator `hostPaths.driverInstallDir` and `toolkit.installDir` {GKE_NVIDIA_DIR}, "
            "`cdi.enabled`; with MIG, the MIG manager's WITH_REBOOT",
            user="Create the GPU node pools with --accelerator type=...,gpu-driver-version=disabled and "
            "--node-labels=gke-no-default-nvidia-gpu-device-plugin=true, then apply Google's driver installer "
            "DaemonSet for the node image (container-engine-accelerators nvidia-driver-installer)",
            applies=platform_driver,
        ),
        Rule(
            "With operator-installed drivers the nodes must run Ubuntu (the operator's driver does not support COS) "
            "and GKE must install no driver nor device plugin",
            NVIDIA_GKE_GUIDE,
            user="Create the GPU node pools with --image-type=UBUNTU_CONTAINERD, --accelerator type=...,"
            "gpu-driver-version=disabled and --node-labels=gke-no-default-nvidia-gpu-device-plugin=true",
            applies=operator_driver,
        ),
        Rule(
            "On GKE 1.33 and later the container toolkit misconfigures containerd unless it reads the runtime "
            "configuration from the file",
            f"{NVIDIA_GKE_GUIDE} (Prerequisites note); NVIDIA GPU Operator release notes 25.10.0, known issues",
            program="GPU Operator `toolkit.env` RUNTIME_CONFIG_SOURCE=file",
            applies=lambda cfg: bool(cfg.gpu.node_pools) and cfg.gpu.toolkit and _minor(cfg) >= 33,
        ),
        Rule(
            "The control plane is Google's: kube-scheduler, kube-controller-manager and etcd cannot be scraped "
            "(GKE exports their metrics itself)",
            "https://cloud.google.com/kubernetes-engine/docs/how-to/configure-metrics#control-plane-metrics",
            program="the monitoring stack's scheduler, controller manager and etcd scrapes (and their alerts) off",
            applies=lambda cfg: cfg.monitoring.enabled,
        ),
        Rule(
            "The GPU Operator runs on GKE Standard only (not Autopilot)",
            NVIDIA_GKE_GUIDE,
            user="A GKE Standard cluster",
        ),
        Rule(
            "Model caches read by several replicas need ReadWriteMany: GKE's standard-rwx class (Filestore)",
            "https://cloud.google.com/kubernetes-engine/docs/how-to/persistent-volumes/filestore-csi-driver",
            program="storage class standard-rwx for caches of endpoints with replicas.max > 1 where none is set",
            user="Enable the Filestore CSI driver (--update-addons=GcpFilestoreCsiDriver=ENABLED)",
            applies=unclassed_caches,
        ),
        Rule(
            "Workload Identity: pods get tokens from the GKE metadata server, which NetworkPolicies must let them reach",
            GKE_WORKLOAD_IDENTITY.source,
            program="egress to 169.254.169.254:80 and 169.254.169.252:988 for the pods that fetch models with it",
            user="Cluster with --workload-pool=PROJECT_ID.svc.id.goog, node pools with --workload-metadata=GKE_METADATA, "
            "and roles/iam.workloadIdentityUser for each Kubernetes ServiceAccount on its Google service account",
            applies=_identity,
        ),
        Rule(
            "On private clusters the control plane reaches nodes on 443 and 10250 only: admission webhooks on other "
            "ports need a firewall rule (the charts' webhook ports: values.yaml of each pinned chart)",
            "https://cloud.google.com/kubernetes-engine/docs/concepts/firewall-rules; "
            "https://cloud.google.com/kubernetes-engine/docs/how-to/private-clusters#add_firewall_rules",
            user="On a private cluster, allow the control plane's range to the nodes on TCP 6443 (KEDA metrics API), "
            "8443 (Volcano), 9443 (KServe, KEDA, Kubeflow Trainer, JobSet, CloudNativePG) and 15017 (istiod)",
        ),
    )

    def gpu_operator_values(self, gpu: Gpu, kubernetes_version: str) -> dict:
        values: dict = {}
        if not gpu.driver.enabled:
            values["hostPaths"] = {"driverInstallDir": GKE_NVIDIA_DIR}
            values["toolkit"] = {"installDir": GKE_NVIDIA_DIR}
            values["cdi"] = {"enabled": True}
            if gpu.uses_mig:
                values["migManager"] = {"env": [{"name": "WITH_REBOOT", "value": "true"}]}
        if gpu.toolkit and int(kubernetes_version.split(".")[1]) >= 33:
            values.setdefault("toolkit", {})["env"] = [TOOLKIT_FILE_CONFIG]
        return values


PROFILE = Gke()
