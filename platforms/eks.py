"""Amazon Elastic Kubernetes Service (``cluster.platform: eks``).

What it changes: the ingress gateway's Service becomes a Network Load Balancer of the AWS Load Balancer Controller;
the monitoring stack stops scraping the control plane AWS runs. What it refuses: a stack that does not name its
NetworkPolicy provider (the VPC CNI enforces none unless its network policy agent is on, and the program cannot turn
it on), a model cache several replicas read without a ReadWriteMany storage class (EKS has none built in), the
operator's container toolkit over an accelerated AMI's, identity annotations of other clouds. Each rule cites its
source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Profile, Rule, annotated_accounts, operator_driver, platform_driver, platform_driver_toolkit
from .identities import EKS_POD_IDENTITY, IRSA

if TYPE_CHECKING:
    from config.base import Problems
    from config.model import PlatformConfig

EKS_GUIDE = "https://docs.aws.amazon.com/eks/latest/userguide"
VPC_CNI_POLICY = f"{EKS_GUIDE}/cni-network-policy-configure.html"
NVIDIA_EKS = "https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/amazon-eks.html"
NLB = f"{EKS_GUIDE}/network-load-balancing.html"


def _irsa(cfg: PlatformConfig) -> bool:
    return any(IRSA.annotation in account for _, account in annotated_accounts(cfg))


class Eks(Profile):
    name = "eks"
    title = "Amazon EKS"
    network_policy_providers = {
        "vpc-cni": 'the Amazon VPC CNI add-on 1.14 or later with {"enableNetworkPolicy": "true"} in its '
        f"configuration values ({VPC_CNI_POLICY})",
        "calico": "Calico for policy only, chained with the VPC CNI",
        "cilium": "Cilium for policy only, chained with the VPC CNI",
    }
    identities = (IRSA, EKS_POD_IDENTITY)
    managed_control_plane = True
    # AWS Load Balancer Controller annotations: an internet-facing NLB with IP targets instead of the in-tree
    # controller's Classic Load Balancer (NLB page; the EKS Blueprints Istio pattern sets the same).
    gateway_service_annotations = {
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
    }
    rules = (
        Rule(
            "The Amazon VPC CNI enforces NetworkPolicies only when its network policy agent is enabled; without it "
            "every tenant policy is accepted and ignored, silently. Enforced on EC2 Linux nodes only (not Fargate, "
            "not Windows), on kernels 5.10 or later",
            f"{VPC_CNI_POLICY}; {EKS_GUIDE}/cni-network-policy.html",
            refuses="a stack without cluster.networkPolicy, or with a provider EKS does not offer",
            user="Keep tenant pods off Fargate and Windows nodes",
        ),
        Rule(
            "When Calico or Cilium replaces the VPC CNI (an overlay), the control plane AWS runs cannot reach pod "
            "addresses: every admission webhook (istiod, KServe, Volcano, cert-manager, the Prometheus Operator) times "
            "out",
            f"{EKS_GUIDE}/alternate-cni-plugins.html; prometheus-community/helm-charts@kube-prometheus-stack-88.5.3:"
            "charts/kube-prometheus-stack/values.yaml (admission webhook hostNetwork note); "
            "cert-manager/cert-manager@v1.21.1:deploy/charts/cert-manager/values.yaml (webhook.hostNetwork)",
            user="Run Calico or Cilium for policy only, chained with the VPC CNI (the platform's webhooks run on pod "
            "addresses)",
            applies=lambda cfg: cfg.cluster.network_policy in ("calico", "cilium"),
        ),
        Rule(
            "A LoadBalancer Service without annotations gets a Classic Load Balancer from the in-tree controller; AWS "
            "recommends the AWS Load Balancer Controller, whose NLBs are internal unless told otherwise",
            NLB,
            program="ingress gateway Service annotated for an internet-facing NLB with IP targets (aws-load-balancer-"
            "type external, nlb-target-type ip, scheme internet-facing)",
            user="Install the AWS Load Balancer Controller 2.7.2 or later (with its IAM role) and tag the public "
            "subnets kubernetes.io/role/elb=1",
            applies=lambda cfg: cfg.mesh.enabled,
        ),
        Rule(
            "PersistentVolumeClaims need the Amazon EBS CSI driver; clusters created at 1.30 or later have no default "
            "StorageClass",
            f"{EKS_GUIDE}/ebs-csi.html; {EKS_GUIDE}/kubernetes-versions-standard.html",
            user="Install the aws-ebs-csi-driver add-on (with its IAM role) and make a StorageClass the default "
            "(defaultStorageClass.enabled, or annotate gp3): every volume whose storageClass the stack leaves unset "
            "uses it",
        ),
        Rule(
            "ReadWriteMany needs the Amazon EFS CSI driver and a StorageClass of it, which EKS does not create",
            f"{EKS_GUIDE}/efs-csi.html",
            refuses="a model cache read by several replicas without a storage class",
            user="Install the EFS CSI driver, an EFS file system with mount targets (NFS 2049 from the nodes) and an "
            "efs-ap StorageClass; name it in serving.storageClass",
            applies=lambda cfg: bool(cfg.models),
        ),
        Rule(
            "The EKS accelerated AMIs (AL2023 NVIDIA) ship the driver and the NVIDIA container toolkit with containerd "
            "set to it, and no device plugin; Bottlerocket NVIDIA ships the device plugin too. NVIDIA lists only "
            "Ubuntu nodes for the GPU Operator on EKS",
            f"{EKS_GUIDE}/ml-eks-optimized-ami.html; {EKS_GUIDE}/ml-eks-k8s-device-plugin.html; {NVIDIA_EKS}",
            refuses="gpu.toolkit with the AMI's driver (gpu.driver.enabled false)",
            user="GPU node groups on the AL2023 NVIDIA AMI (not Bottlerocket: its device plugin would meet the "
            "operator's), without eksctl's device plugin (--install-nvidia-plugin=false)",
            applies=platform_driver,
        ),
        Rule(
            "With the GPU Operator's driver the nodes must run an OS it supports: Ubuntu (the EKS AMIs ship no driver "
            "there)",
            NVIDIA_EKS,
            user="GPU node groups on an Ubuntu EKS AMI",
            applies=operator_driver,
        ),
        Rule(
            "IRSA: the cluster's OIDC issuer must be an IAM identity provider and each role must trust the "
            "ServiceAccount that names it",
            IRSA.source,
            user="Create the cluster's IAM OIDC provider; give each role in an eks.amazonaws.com/role-arn annotation a "
            "trust policy for system:serviceaccount:<namespace>:<service account> with audience sts.amazonaws.com",
            applies=_irsa,
        ),
        Rule(
            "EKS Pod Identity: the Pod Identity Agent add-on serves credentials on 169.254.170.23:80 to the pods of "
            "ServiceAccounts that an association in the EKS API maps to an IAM role",
            EKS_POD_IDENTITY.source,
            program="egress to 169.254.170.23:80 for the pods that fetch models of endpoints with podIdentity",
            user="Install the eks-pod-identity-agent add-on; give each role a trust policy for pods.eks.amazonaws.com "
            "(sts:AssumeRole, sts:TagSession) and create the associations the checklist names",
            applies=lambda cfg: any(e.pod_identity for e in cfg.models),
        ),
        Rule(
            "The control plane reaches webhooks on nodes through the cluster security group, which managed node groups "
            "carry; restricted node security groups open only 443 and 10250",
            f"{EKS_GUIDE}/sec-group-reqs.html",
            user="With custom or self-managed node security groups, allow the cluster security group on TCP 8443 "
            "(Volcano), 9443 (KServe), 15017 (istiod) and 10250",
        ),
        Rule(
            "The VPA recommender reads the resource metrics API, which EKS serves only with metrics-server installed",
            f"{EKS_GUIDE}/metrics-server.html",
            user="Install the metrics-server add-on",
            applies=lambda cfg: cfg.vpa.enabled,
        ),
        Rule(
            "The control plane is AWS's: kube-scheduler, kube-controller-manager and etcd cannot be scraped",
            f"{EKS_GUIDE}/view-raw-metrics.html",
            program="the monitoring stack's scheduler, controller manager and etcd scrapes (and their alerts) off",
            applies=lambda cfg: cfg.monitoring.enabled,
        ),
    )

    def checklist(self, cfg: PlatformConfig) -> dict[str, list[str]]:
        """The profile's checklist, and one EKS Pod Identity association per endpoint that uses it."""
        result = super().checklist(cfg)
        result["prerequisites"] += [
            f"aws eks create-pod-identity-association --cluster-name <cluster> --namespace {e.tenant} "
            f"--service-account {e.service_account} --role-arn <role that reads {e.source}>"
            for e in cfg.models
            if e.pod_identity
        ]
        return result

    def extra_problems(self, cfg: PlatformConfig) -> Problems:
        from config.serving import unclassed_shared_caches

        problems = platform_driver_toolkit(cfg, self.name, f"{EKS_GUIDE}/ml-eks-optimized-ami.html")
        problems += [
            (
                f"models[{index}].cache.storageClass",
                f"{version.name} may run {version.replicas.max} replicas of a version that share its cache "
                "(ReadWriteMany), and EKS has no ReadWriteMany storage class built in: name an EFS CSI class here or "
                "in serving.storageClass",
            )
            for index, version in unclassed_shared_caches(cfg)
        ]
        return problems


PROFILE = Eks()
