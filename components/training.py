"""``Training``: Kubeflow Trainer v2 (TrainJob on JobSet) with the platform's torch runtimes, gang-scheduled by Volcano.

Owns:
- the Trainer namespace (``namespaces.training``), Pod Security ``restricted``: the manager pod runs with seccomp
  ``RuntimeDefault`` and a container that is non-root, without privilege escalation and with every capability
  dropped (chart ``manager.securityContext``); the JobSet controller likewise (``controller.podSecurityContext``:
  non-root, RuntimeDefault; ``controller.securityContext``: no privilege escalation, capabilities dropped, read-only
  root); neither asks for host namespaces or host paths;
- the Helm release ``kubeflow-trainer`` of the pinned OCI chart with its JobSet subchart (``jobset.install``). The
  chart's built-in runtimes are all off, and with them the post-install hook Job that would install them (an
  ``alpine`` pod that downloads kubectl from the internet at run time); the data cache (LeaderWorkerSet) is off.
  The release waits for the Volcano release: the Trainer's Volcano plugin needs no feature gate (it is always
  registered) but watches PodGroups only if their CRD exists when the manager starts;
- the ClusterTrainingRuntime ``torch-distributed-volcano``, modelled on the Trainer's own ``torch-distributed``
  runtime (replicated job and container ``node``, label ``trainer.kubeflow.org/trainjob-ancestor-step: trainer``,
  the same torch image), with ``mlPolicy.numNodes``/``torch`` and ``podGroupPolicy.volcano`` (the Trainer creates a
  PodGroup per TrainJob); it names no queue, so its PodGroups get Volcano's ``default`` queue, which the tenant queue
  fence refuses in tenant namespaces: tenants use their own runtime;
- one TrainingRuntime ``torch-distributed`` per tenant, in the tenant namespace, with the same spec bound to the
  tenant's Volcano queue (named after the tenant): the Trainer takes the PodGroup's queue from the annotation
  ``scheduling.volcano.sh/queue-name`` of the runtime's ``spec.template.metadata`` (the JobSet template's metadata);
  the annotation is also on the runtime itself (for people) and on the pod template. GPU placement follows the
  tenant's ``gpuIsolation``.

Training pods: ``schedulerName: volcano``; GPU toleration, node affinity and the GPU resource from
``components.gpu.gpu_scheduling``, CPU and memory with requests == limits; Pod Security ``restricted`` (UID/GID 1000
because the torch image defaults to root); the torch image defines no user for that UID (``config.images.TORCH``) and
torch calls ``getpass.getuser()`` for its Inductor cache, so the node container sets ``USER``/``LOGNAME`` and
``HOME=/tmp``; a read-only root file system with an ``emptyDir`` on ``/tmp`` (HOME, the Inductor, Triton, torch hub and
Hugging Face caches: every path the image writes); ``/dev/shm`` in memory for NCCL (it counts against the memory
limit); ``sidecar.istio.io/inject: "false"``: a Job whose pod keeps a classic sidecar never completes, and
torch's rendezvous between the nodes breaks behind Envoy.

CRDs: since chart 2.3 the Trainer's CRDs are chart templates (``crds.enabled``), so a pin change upgrades them with
the release, and removing the release deletes them with every TrainJob and TrainingRuntime. The JobSet CRD is in the
subchart's ``crds/`` folder: Helm installs it once and never upgrades it; apply it first when the JobSet subchart
version changes. Custom resources ``depends_on`` the release.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi

from config import images, versions
from config.batch import Training as TrainingConfig
from config.gpu import Gpu
from config.tenancy import Tenant as TenantConfig

from .batch import QUEUE_ANNOTATION
from .gpu import gpu_scheduling
from .meta import TENANT_LABEL, ComponentArgs, helm_release, kube, metadata, mirrored, platform_namespace
from .pods import TMP, restricted_container, restricted_pod, tmp_mount, tmp_volume

COMPONENT = "training"
POD_SECURITY = "restricted"
RELEASE = versions.KUBEFLOW_TRAINER.name
API_VERSION = "trainer.kubeflow.org/v1alpha1"
CLUSTER_RUNTIME = "torch-distributed-volcano"
TENANT_RUNTIME = "torch-distributed"
# The Trainer's names: the replicated job and container it fills from a TrainJob's spec.trainer, and the label that
# marks the replicated job as the trainer step (webhook: it must contain a container named "node").
NODE = "node"
ANCESTOR_LABELS = {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}
# The framework label the Trainer's own runtimes carry (chart 2.3.0's runtime templates).
FRAMEWORK_LABELS = {"trainer.kubeflow.org/framework": "torch"}
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
# The node's user and group; it writes HOME and the caches (config.images.TORCH.writes) on the emptyDir at TMP.
UID = 1000

# What tenant developers manage and everyone in a tenant reads (Tenant's role rules): TrainJobs; the runtimes they
# reference and the JobSets the Trainer makes of them (pods, Jobs and PodGroups are tenant workloads already).
TENANT_WORKLOADS = {"trainer.kubeflow.org": ["trainjobs"]}
TENANT_READABLE = {"trainer.kubeflow.org": ["trainingruntimes"], "jobset.x-k8s.io": ["jobsets"]}

# Every runtime the chart can install, off: none of them is bound to a tenant queue, and any one of them turns on
# the installer hook Job.
BUILT_IN_RUNTIMES_OFF = {
    "defaultEnabled": False,
    **{
        runtime: {"enabled": False}
        for runtime in (
            "torchDistributed",
            "deepspeedDistributed",
            "mlxDistributed",
            "jaxDistributed",
            "xgboostDistributed",
        )
    },
    "torchtuneDistributed": {model: {"enabled": False} for model in ("llama3_2_1B", "llama3_2_3B", "qwen2_5_1_5B")},
}


def helm_values(training: TrainingConfig, image_registry: str | None) -> dict:
    """Values of the kubeflow-trainer chart (keys checked against the upstream values.yaml by the schema tier)."""
    image: dict = {"tag": versions.TRAINER_IMAGE_TAG}
    # The JobSet controller (subchart) runs every TrainJob's JobSet: as many replicas as the Trainer manager.
    jobset: dict = {"install": True, "controller": {"replicas": training.replicas}}
    if image_registry:
        image["registry"] = image_registry
        jobset["image"] = {"repository": mirrored(versions.JOBSET_IMAGE, image_registry)}
    return {
        "crds": {"enabled": True},
        "jobset": jobset,
        "image": image,
        "manager": {"replicas": training.replicas},
        "dataCache": {"enabled": False, "runtimes": {"torchDistributedWithCache": {"enabled": False}}},
        "runtimes": BUILT_IN_RUNTIMES_OFF,
    }


def node_pod_template(
    training: TrainingConfig, gpu: Gpu, image_registry: str | None, exclusive: bool, tenant: str | None = None
) -> dict:
    """The pod template of a training node; with ``tenant``, labelled for it and annotated with its queue."""
    scheduling = gpu_scheduling(gpu, training.gpu, exclusive=exclusive)
    compute = training.resources.model_dump()
    resources = {side: {**compute, **scheduling["resources"][side]} for side in ("requests", "limits")}
    image = mirrored(versions.TORCH_IMAGE, image_registry)
    template_metadata: dict = {"labels": dict(NO_SIDECAR)}
    if tenant:
        template_metadata["labels"][TENANT_LABEL] = tenant
        template_metadata["annotations"] = {QUEUE_ANNOTATION: tenant}
    return {
        "metadata": template_metadata,
        "spec": {
            "schedulerName": "volcano",
            "securityContext": restricted_pod(UID, gid=UID),
            "tolerations": scheduling["tolerations"],
            "affinity": scheduling["affinity"],
            "containers": [
                {
                    "name": NODE,
                    "image": image,
                    "env": images.identity_env(TMP),
                    "resources": resources,
                    "securityContext": restricted_container(),
                    "volumeMounts": [tmp_mount(), {"name": "dshm", "mountPath": "/dev/shm"}],
                }
            ],
            "volumes": [tmp_volume(), {"name": "dshm", "emptyDir": {"medium": "Memory"}}],
        },
    }


def runtime_spec(
    training: TrainingConfig, gpu: Gpu, image_registry: str | None, exclusive: bool, tenant: str | None = None
) -> dict:
    """The spec of a torch runtime gang-scheduled by Volcano; with ``tenant``, bound to the tenant's queue."""
    template: dict = {
        "spec": {
            "replicatedJobs": [
                {
                    "name": NODE,
                    "template": {
                        "metadata": {"labels": ANCESTOR_LABELS},
                        "spec": {"template": node_pod_template(training, gpu, image_registry, exclusive, tenant)},
                    },
                }
            ]
        }
    }
    if tenant:
        # Where the Trainer's Volcano plugin reads the queue of the PodGroup it creates.
        template["metadata"] = {"annotations": {QUEUE_ANNOTATION: tenant}}
    return {
        "mlPolicy": {"numNodes": training.num_nodes, "torch": {}},
        "podGroupPolicy": {"volcano": {}},
        "template": template,
    }


@dataclass(frozen=True)
class TrainingArgs(ComponentArgs):
    """What ``Training`` is built from (besides the cluster and namespaces): its config, the GPU config and the tenants
    (one runtime each); keyword-only, the tenants' namespaces (Outputs) and the Volcano release the trainer waits
    for."""

    training: TrainingConfig
    gpu: Gpu
    tenants: list[TenantConfig]
    _: KW_ONLY
    tenant_namespaces: dict[str, pulumi.Input[str]]
    volcano_release: pulumi.Resource


class Training(pulumi.ComponentResource):
    """Trainer namespace and release (with JobSet), the cluster torch runtime and one torch runtime per tenant."""

    def __init__(self, name: str, args: TrainingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:training:Training", name, None, opts)
        training, gpu, tenant_namespaces = args.training, args.gpu, args.tenant_namespaces
        registry = args.cluster.image_registry
        self.namespace = platform_namespace(
            f"{name}-namespace",
            args.namespaces.training,
            COMPONENT,
            POD_SECURITY,
            args.cluster.kubernetes_version,
            self,
        )
        self.release = helm_release(
            f"{name}-release",
            versions.KUBEFLOW_TRAINER,
            self.namespace.metadata["name"],
            helm_values(training, registry),
            self,
            cluster=args.cluster,
            depends_on=[args.volcano_release],
            release_name=RELEASE,
            protect=args.protect,
        )
        after_release = pulumi.ResourceOptions(parent=self, depends_on=[self.release])

        # No tenant can run on it (the queue fence refuses its default queue in tenant namespaces): no exclusivity.
        self.cluster_runtime = kube(
            f"{name}-cluster-runtime",
            api_version=API_VERSION,
            kind="ClusterTrainingRuntime",
            metadata=metadata(CLUSTER_RUNTIME, COMPONENT, extra_labels=FRAMEWORK_LABELS),
            spec=runtime_spec(training, gpu, registry, exclusive=False),
            opts=after_release,
        )

        self.tenant_runtimes = {}
        for tenant in args.tenants:
            runtime_metadata = metadata(
                TENANT_RUNTIME,
                COMPONENT,
                namespace=tenant_namespaces[tenant.name],
                tenant=tenant.name,
                extra_labels=FRAMEWORK_LABELS,
            )
            runtime_metadata["annotations"] = {QUEUE_ANNOTATION: tenant.name}
            self.tenant_runtimes[tenant.name] = kube(
                f"{name}-runtime-{tenant.name}",
                api_version=API_VERSION,
                kind="TrainingRuntime",
                metadata=runtime_metadata,
                spec=runtime_spec(training, gpu, registry, tenant.gpu_isolation == "exclusive", tenant.name),
                opts=after_release,
            )
        self.register_outputs({"namespace": self.namespace.metadata["name"], "release": self.release.name})
