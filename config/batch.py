"""Batch (``ai-platform:volcano``, ``training``, ``workflows``, ``ray``): the Volcano scheduler and what runs on it,
Kubeflow Trainer, Argo Workflows with the tenants' pipelines, KubeRay; what they need of Volcano, the tenants, the
GPU pools and the other services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from .base import (
    ComputeResources,
    ConfigProblems,
    DnsLabel,
    DnsSubdomain,
    HttpsUrl,
    Model,
    PositiveInt,
    Problems,
    RequestsWithinLimits,
)
from .cluster import SUPPORTED_KUBERNETES
from .gpu import EndpointGpu, gpu_placement
from .tenancy import of_existing_tenants

if TYPE_CHECKING:
    from .model import PlatformConfig


class ContainerResources(RequestsWithinLimits):
    """Requests and limits of a container."""

    requests: ComputeResources
    limits: ComputeResources


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> ContainerResources:
    return ContainerResources(
        requests=ComputeResources(cpu=cpu, memory=memory), limits=ComputeResources(cpu=cpu_limit, memory=memory_limit)
    )


class VolcanoResources(Model):
    """Resources of the Volcano components."""

    scheduler: ContainerResources = _resources("500m", "512Mi", "2", "2Gi")
    controller: ContainerResources = _resources("250m", "256Mi", "1", "1Gi")
    admission: ContainerResources = _resources("100m", "128Mi", "500m", "512Mi")


class Volcano(Model):
    """The Volcano batch scheduler (gang scheduling, per-tenant queues)."""

    enabled: bool = True
    """Install Volcano and give every tenant a queue. Off: no release, no queues."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 2
    """Replicas of scheduler, controller and admission webhook; more than one turns on leader election."""
    resources: VolcanoResources = VolcanoResources()
    """Requests and limits per Volcano component."""


class Training(Model):
    """Kubeflow Trainer v2 (TrainJob on JobSet) with the platform's torch runtime, gang-scheduled by Volcano."""

    enabled: bool = False
    """Install the Trainer (and its JobSet controller), the cluster torch runtime and one runtime per tenant."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Replicas of the Trainer controller manager (leader election picks the active one)."""
    num_nodes: PositiveInt = 1
    """Default training nodes (pods) of the torch runtime; a TrainJob's ``spec.trainer.numNodes`` overrides it."""
    gpu: EndpointGpu = EndpointGpu()
    """GPUs of each training node (pod); they must fit on one node of a GPU pool."""
    resources: ComputeResources = ComputeResources(cpu="4", memory="16Gi")
    """CPU and memory of each training node (requests == limits)."""


class Sso(Model):
    """OIDC single sign-on of the Argo Workflows server."""

    issuer: HttpsUrl
    """OIDC issuer URL."""
    client_secret: DnsSubdomain
    """Existing Secret in the workflows namespace with keys ``client-id`` and ``client-secret``."""
    redirect_url: HttpsUrl
    """Callback URL registered at the issuer, e.g. https://argo.example.com/oauth2/callback."""
    scopes: list[Annotated[str, Field(min_length=1)]] = ["openid", "profile", "email", "groups"]
    """Scopes requested from the issuer (``groups`` maps users to tenant service accounts)."""


class Pipeline(Model):
    """The seeds' pipeline for one tenant, shipped as a WorkflowTemplate: preprocess -> train (GPU, Volcano) ->
    evaluate -> register in MLflow -> deploy only if the metric passes the threshold."""

    tenant: DnsLabel
    """Tenant whose namespace gets the WorkflowTemplate; its steps run there, in its Volcano queue."""
    name: DnsLabel = "train-evaluate-deploy"
    """WorkflowTemplate name."""
    metric: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")] = "accuracy"
    """Evaluation metric (as logged to MLflow) that gates the deployment."""
    threshold: Annotated[float, Field(ge=0)] = 0.9
    """Deploy only if the metric is >= this value."""
    gpu: EndpointGpu = EndpointGpu()
    """GPUs of the train step."""
    resources: ComputeResources = ComputeResources(cpu="4", memory="16Gi")
    """CPU and memory of the train step (requests == limits)."""


class Workflows(Model):
    """Argo Workflows: controller and server; workflows run only in tenant namespaces."""

    enabled: bool = False
    """Install Argo Workflows, a per-tenant executor service account and the tenants' pipelines."""
    auth_mode: Literal["client", "sso"] = "client"
    """How the Argo server authenticates: ``client`` (the caller's Kubernetes token) or ``sso`` (OIDC).
    ``server`` mode (the server's own identity for every caller) is not offered."""
    sso: Sso | None = None
    """OIDC settings; required with ``authMode: sso``."""
    controller_replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Workflow controller replicas (leader election picks the active one)."""
    server_replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Argo server replicas."""
    pipelines: list[Pipeline] = []
    """One WorkflowTemplate of the seeds' pipeline per entry."""

    @model_validator(mode="after")
    def _sso_for_sso_mode(self) -> Workflows:
        if self.auth_mode == "sso" and self.sso is None:
            raise ConfigProblems([("sso", "authMode sso needs the sso settings (issuer, clientSecret, redirectUrl)")])
        if self.auth_mode != "sso" and self.sso is not None:
            raise ConfigProblems([("sso", f"only for authMode sso (authMode is {self.auth_mode})")])
        return self


class Ray(Model):
    """KubeRay operator: tenants run RayCluster, RayJob and RayService, gang-scheduled by Volcano."""

    enabled: bool = False
    """Install the KubeRay operator and give tenant developers rights on Ray resources."""
    batch_scheduler: Literal["volcano"] = "volcano"
    """Batch scheduler of Ray pods: the platform's Volcano (the only scheduler it installs)."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Operator replicas (leader election picks the active one)."""


def cross_checks(cfg: PlatformConfig) -> Problems:
    """Volcano's Kubernetes version; gang scheduling for training, workflows and Ray; training and pipeline pods
    that fit every tenant (training) or theirs (pipelines); what workflows and pipelines need of the cluster and
    the other services."""
    problems: Problems = []
    if cfg.volcano.enabled and cfg.cluster.kubernetes_version in SUPPORTED_KUBERNETES[:5]:
        problems.append(
            (
                "cluster.kubernetesVersion",
                "Volcano's tenant queue fence is a ValidatingAdmissionPolicy "
                "(admissionregistration.k8s.io/v1): needs Kubernetes >= 1.30, or volcano.enabled false",
            )
        )
    for section, enabled in (
        ("training", cfg.training.enabled),
        ("workflows", cfg.workflows.enabled),
        ("ray", cfg.ray.enabled),
    ):
        if enabled and not cfg.volcano.enabled:
            problems.append((f"{section}.enabled", "gang scheduling needs volcano.enabled"))
    if cfg.training.enabled:
        try:  # the cluster runtime, whatever the tenants
            gpu_placement(cfg.gpu, cfg.training.gpu, exclusive=False)
        except ValueError as error:
            problems.append(("training.gpu", str(error)))
        for index in range(len(cfg.tenants)):
            problems += [
                (path, message)
                for path, message in _pod_problems(cfg, "training", index, cfg.training.gpu, cfg.training.resources)
                if (path, message) not in problems
            ]
    workflows = cfg.workflows
    if workflows.enabled and not cfg.cluster.api_server_cidrs:
        problems.append(
            (
                "cluster.apiServerCidrs",
                "workflow pods report their results to the Kubernetes API: give the API server's endpoint addresses",
            )
        )
    if workflows.pipelines and not workflows.enabled:
        problems.append(("workflows.pipelines", "pipelines need workflows.enabled"))
    if workflows.pipelines and not cfg.mlflow.enabled:
        problems.append(("workflows.pipelines", "the pipeline registers models in MLflow: needs mlflow.enabled"))
    if workflows.pipelines and not cfg.serving.enabled:
        problems.append(("workflows.pipelines", "the pipeline deploys an InferenceService: needs serving.enabled"))
    for index, pipeline, tenant_index in of_existing_tenants(
        cfg, "workflows.pipelines", "pipeline", workflows.pipelines, problems
    ):
        problems += _pod_problems(cfg, f"workflows.pipelines[{index}]", tenant_index, pipeline.gpu, pipeline.resources)
    return problems


def _pod_problems(
    cfg: PlatformConfig, at: str, tenant_index: int, gpu: EndpointGpu, resources: ComputeResources
) -> Problems:
    """Problems of a batch pod (training node, pipeline step) that a tenant's limits or the GPU pools refuse."""
    tenant = cfg.tenants[tenant_index]
    problems = tenant.container_problems(at, f"tenants[{tenant_index}]", resources, gpu.count)
    try:
        gpu_placement(cfg.gpu, gpu, tenant.gpu_isolation == "exclusive")
    except ValueError as error:
        problems.append((f"{at}.gpu", f"{error} (tenant {tenant.name!r})"))
    return problems
