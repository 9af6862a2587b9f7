"""Workload identities: how a ServiceAccount gets a cloud identity on each platform (the annotation that grants it,
what its value looks like), and what a pod needs for it under the platform's NetworkPolicies. Each from its
provider's documentation."""

from __future__ import annotations

from typing import NamedTuple


class Identity(NamedTuple):
    """One kind of workload identity: the ServiceAccount annotation that grants it (and the other annotations of the
    same system a ServiceAccount may carry), what its value looks like, and what it needs of a pod under the
    platform's NetworkPolicies (egress to link-local addresses) and labels."""

    name: str
    annotation: str
    value_pattern: str
    example: str
    source: str
    other_annotations: tuple[str, ...] = ()
    egress: tuple[tuple[str, int], ...] = ()
    pod_labels: dict[str, str] = {}

    @property
    def prefix(self) -> str:
        """The annotation namespace of its system (``eks.amazonaws.com/``)."""
        return self.annotation.split("/")[0] + "/"


# The SDKs call STS AssumeRoleWithWebIdentity over HTTPS with the token the pod identity webhook mounts: public HTTPS
# egress only, which every fetching pod has.
IRSA = Identity(
    name="EKS IAM roles for service accounts (IRSA)",
    annotation="eks.amazonaws.com/role-arn",
    value_pattern=r"arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}",
    example="arn:aws:iam::111122223333:role/my-role",
    source="https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html; "
    "github.com/aws/amazon-eks-pod-identity-webhook README (annotations)",
    other_annotations=(
        "eks.amazonaws.com/audience",
        "eks.amazonaws.com/sts-regional-endpoints",
        "eks.amazonaws.com/token-expiration",
    ),
)

# Tokens come from the GKE metadata server: with NetworkPolicies, 169.254.169.254:80 (Dataplane V2) and
# 169.254.169.252:988 must stay open ("Restrict egress" note of the how-to).
GKE_WORKLOAD_IDENTITY = Identity(
    name="GKE Workload Identity Federation",
    annotation="iam.gke.io/gcp-service-account",
    value_pattern=r"[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.:]+\.iam\.gserviceaccount\.com",
    example="models@my-project.iam.gserviceaccount.com",
    source="https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity",
    egress=(("169.254.169.254/32", 80), ("169.254.169.252/32", 988)),
)

# The mutating webhook acts only on pods labelled azure.workload.identity/use=true; tokens come from Microsoft Entra ID
# over HTTPS.
AZURE_WORKLOAD_IDENTITY = Identity(
    name="Microsoft Entra Workload ID (AKS)",
    annotation="azure.workload.identity/client-id",
    value_pattern=r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    example="00000000-0000-0000-0000-000000000000",
    source="https://azure.github.io/azure-workload-identity/docs/topics/service-account-labels-and-annotations.html",
    other_annotations=("azure.workload.identity/tenant-id", "azure.workload.identity/service-account-token-expiration"),
    pod_labels={"azure.workload.identity/use": "true"},
)

# EKS Pod Identity: no annotation (the association lives in the EKS API, ``models[].podIdentity`` says the endpoint
# has one); the SDKs fetch credentials from the Pod Identity Agent, a host-network DaemonSet on the link-local
# 169.254.170.23 port 80 (AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials): opened to the
# pods under default-deny egress (IPv6 clusters: [fd00:ec2::23], not opened).
EKS_POD_IDENTITY = Identity(
    name="EKS Pod Identity",
    annotation="",
    value_pattern="",
    example="models[].podIdentity: true",
    source="https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html; "
    "https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html",
    egress=(("169.254.170.23/32", 80),),
)

# The systems recognised by their ServiceAccount annotation.
ALL_IDENTITIES = (IRSA, GKE_WORKLOAD_IDENTITY, AZURE_WORKLOAD_IDENTITY)
