"""The tenants' pipeline (``workflows.pipelines``): the WorkflowTemplate spec ``pipeline_spec`` builds for
``workflows.Workflows``, preprocess -> train -> evaluate -> register (MLflow, the tenant's model store) -> deploy (a
KServe InferenceService as the tenant's ``model-reader``), and the steps' containers.
"""

from __future__ import annotations

import yaml

from config import images, versions
from config.batch import Pipeline
from config.cluster import Cluster
from config.data import ObjectStore as ObjectStoreConfig
from config.gpu import Gpu
from config.tenancy import Tenant as TenantConfig

from .batch import QUEUE_ANNOTATION
from .gpu import gpu_scheduling
from .meta import labels, mirrored
from .mlflow_auth import CREDENTIALS_SECRET as MLFLOW_CREDENTIALS
from .mlflow_auth import PASSWORD_ENV as MLFLOW_PASSWORD_ENV
from .mlflow_auth import USERNAME_ENV as MLFLOW_USERNAME_ENV
from .objectstore import ACCESS_KEY_ID, SECRET_ACCESS_KEY
from .pods import TMP, restricted_container, restricted_pod, tmp_mount, tmp_volume
from .programs import source
from .workflow_values import COMPONENT, EXECUTOR_SA, MODEL_POD_LABELS, MODEL_READER, STEP_SECURITY, ModelStore

# The pipeline: the tenant's image provides ``python -m pipeline <step>``; work files live on an emptyDir.
WORK = "/work"
# Steps run as workflow_values.UID, which neither the tenant's image (config.images.TENANT_STEP: unknown) nor the
# MLflow image of the register step (config.images.MLFLOW) defines: USER/LOGNAME and HOME on an emptyDir at TMP.
# The register step's MLflow image writes only HOME and tempfile's directory: a read-only root file system.
REGISTER_SECURITY = restricted_container(non_root=True, seccomp=True)
STEP_COMMAND = ["python", "-m", "pipeline"]
MODEL_FORMAT = "sklearn"
REGISTER_SCRIPT = source("register_model")
MODEL_UID = 1000  # the deploy step's model server pods run as the platform's endpoints do (uid/gid/fsGroup 1000)

# The pipeline's artifacts: the step that makes each, and its directory in the work volume.
ARTIFACTS = {"dataset": ("preprocess", f"{WORK}/data"), "model": ("train", f"{WORK}/model")}


def _step(name: str, artifacts: tuple[str, ...] = (), parameters: dict[str, str] | None = None, **extra) -> dict:
    """A step of the pipeline's steps template: the template of the same name, with its inputs."""
    arguments: dict = {}
    if artifacts:
        arguments["artifacts"] = [
            {"name": a, "from": f"{{{{steps.{ARTIFACTS[a][0]}.outputs.artifacts.{a}}}}}"} for a in artifacts
        ]
    if parameters:
        arguments["parameters"] = [{"name": key, "value": value} for key, value in parameters.items()]
    return {"name": name, "template": name, **({"arguments": arguments} if arguments else {}), **extra}


def _user_step(name: str, args: list[str], inputs: tuple[str, ...], outputs: dict) -> dict:
    """A step that runs the tenant's image, with its work files, /tmp and HOME on emptyDirs. Its root file system
    stays writable: the tenant's code may write anywhere in its own image (``config.images.TENANT_STEP``)."""
    return {
        "name": name,
        **({"inputs": {"artifacts": [{"name": a, "path": ARTIFACTS[a][1]} for a in inputs]}} if inputs else {}),
        "outputs": outputs,
        "volumes": [{"name": "work", "emptyDir": {}}, tmp_volume()],
        "container": {
            "image": "{{workflow.parameters.image}}",
            "command": STEP_COMMAND,
            "args": [name, *args],
            "env": images.identity_env(TMP),
            "securityContext": STEP_SECURITY,
            "volumeMounts": [{"name": "work", "mountPath": WORK}, tmp_mount()],
        },
    }


def inference_service(tenant: str) -> dict:
    """The deploy step's InferenceService: the model archive in the tenant's bucket (``s3://``), fetched by KServe's
    storage initializer as the tenant's ``model-reader`` (its keys or its workload identity)."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "{{workflow.parameters.model-name}}",
            "labels": {**labels(COMPONENT, tenant), "app.kubernetes.io/managed-by": "argo-workflows"},
        },
        "spec": {
            "predictor": {
                "serviceAccountName": MODEL_READER,
                "labels": dict(MODEL_POD_LABELS),
                "securityContext": restricted_pod(MODEL_UID, gid=MODEL_UID, fs_group=MODEL_UID),
                "model": {
                    "modelFormat": {"name": "{{workflow.parameters.model-format}}"},
                    "storageUri": "{{inputs.parameters.model-uri}}",
                    "securityContext": restricted_container(read_only_root=False, non_root=True, seccomp=True),
                },
            }
        },
    }


def model_store_env(models: ModelStore, store: ObjectStoreConfig) -> list[dict]:
    """The register step's S3 settings: where to upload, and the tenant's keys by secretKeyRef (none: the SDK finds
    the executor's workload identity)."""
    env: list[dict] = [
        {"name": "MODEL_BUCKET", "value": models.bucket},
        {"name": "MODEL_PREFIX", "value": models.prefix},
        {"name": "AWS_DEFAULT_REGION", "value": store.region},
    ]
    if models.endpoint:
        env.append({"name": "S3_ENDPOINT_URL", "value": models.endpoint})
    if models.keys_secret:
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": models.keys_secret, "key": key}}}
            for key in (ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        ]
    return env


def pipeline_spec(
    pipeline: Pipeline,
    tenant: TenantConfig,
    gpu: Gpu,
    mlflow_url: str,
    cluster: Cluster,
    store: ObjectStoreConfig,
    models: ModelStore,
) -> dict:
    """The WorkflowTemplate's spec: preprocess -> train (GPUs, Volcano queue of the tenant) -> evaluate (writes the
    metric) -> register in MLflow and upload the archive to the tenant's ``models`` -> deploy an InferenceService
    of it only when the metric >= the threshold parameter."""
    scheduling = gpu_scheduling(gpu, pipeline.gpu, exclusive=tenant.gpu_isolation == "exclusive")
    cpu_memory = {"cpu": pipeline.resources.cpu, "memory": pipeline.resources.memory}
    train = _user_step(
        "train",
        ["--data", f"{WORK}/data", "--output", f"{WORK}/model"],
        ("dataset",),
        {"artifacts": [{"name": "model", "path": f"{WORK}/model"}]},
    )
    train["container"]["resources"] = {
        kind: {**cpu_memory, **scheduling["resources"][kind]} for kind in ("requests", "limits")
    }
    train["container"]["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
    train["volumes"].append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
    train.update(
        schedulerName="volcano",
        metadata={"annotations": {QUEUE_ANNOTATION: tenant.name}},
        tolerations=scheduling["tolerations"],
        affinity=scheduling["affinity"],
    )
    image = mirrored(versions.MLFLOW_IMAGE, cluster.image_registry)
    model = "{{workflow.parameters.model-name}}"
    register = {
        "name": "register",
        "inputs": {"parameters": [{"name": "metric"}], "artifacts": [{"name": "model", "path": f"{WORK}/model"}]},
        "outputs": {"parameters": [{"name": "model-uri", "valueFrom": {"path": f"{WORK}/model-uri"}}]},
        "volumes": [{"name": "work", "emptyDir": {}}, tmp_volume()],
        "script": {
            "image": image,
            "command": ["python"],
            "source": REGISTER_SCRIPT,
            "securityContext": REGISTER_SECURITY,
            "volumeMounts": [{"name": "work", "mountPath": WORK}, tmp_mount()],
            # The tenant's own MLflow account (Mlflow.add_tenant_accounts): it sees only the tenant's experiments.
            # MLflow tags each run with getpass.getuser(): USER answers it under the workflow's UID.
            "env": [
                {"name": "MLFLOW_TRACKING_URI", "value": mlflow_url},
                *images.identity_env(TMP),
                *[
                    {"name": variable, "valueFrom": {"secretKeyRef": {"name": MLFLOW_CREDENTIALS, "key": variable}}}
                    for variable in (MLFLOW_USERNAME_ENV, MLFLOW_PASSWORD_ENV)
                ],
                {"name": "EXPERIMENT", "value": f"{tenant.name}/{model}"},
                {"name": "REGISTERED_MODEL", "value": f"{tenant.name}-{model}"},
                {"name": "DATASET_URI", "value": "{{workflow.parameters.dataset-uri}}"},
                {"name": "METRIC_NAME", "value": pipeline.metric},
                {"name": "METRIC_VALUE", "value": "{{inputs.parameters.metric}}"},
                {"name": "MODEL_NAME", "value": model},
                *model_store_env(models, store),
            ],
        },
    }
    deploy = {
        "name": "deploy",
        "inputs": {"parameters": [{"name": "model-uri"}]},
        "resource": {
            "action": "apply",
            "manifest": yaml.dump(inference_service(tenant.name), Dumper=yaml.CSafeDumper, sort_keys=True),
        },
    }
    metric = "{{steps.evaluate.outputs.parameters.metric}}"
    return {
        "entrypoint": "pipeline",
        # Explicit (also the controller's default): its Role is what the deploy step needs.
        "serviceAccountName": EXECUTOR_SA,
        "arguments": {
            "parameters": [
                {"name": "image", "description": "the training code's image (provides python -m pipeline <step>)"},
                {"name": "dataset-uri", "description": "where preprocess reads the dataset"},
                {"name": "model-name", "value": pipeline.name, "description": "registered model and InferenceService"},
                {"name": "model-format", "value": MODEL_FORMAT, "description": "KServe model format"},
                {
                    "name": "threshold",
                    "value": f"{pipeline.threshold:g}",
                    "description": f"deploy only if {pipeline.metric} >= threshold",
                },
            ]
        },
        "templates": [
            {
                "name": "pipeline",
                "steps": [
                    [_step("preprocess")],
                    [_step("train", ("dataset",))],
                    [_step("evaluate", ("dataset", "model"))],
                    [_step("register", ("model",), {"metric": metric})],
                    [
                        _step(
                            "deploy",
                            parameters={"model-uri": "{{steps.register.outputs.parameters.model-uri}}"},
                            when=f"{metric} >= {{{{workflow.parameters.threshold}}}}",
                        )
                    ],
                ],
            },
            _user_step(
                "preprocess",
                ["--dataset-uri", "{{workflow.parameters.dataset-uri}}", "--output", f"{WORK}/data"],
                (),
                {"artifacts": [{"name": "dataset", "path": f"{WORK}/data"}]},
            ),
            train,
            _user_step(
                "evaluate",
                [
                    "--data",
                    f"{WORK}/data",
                    "--model",
                    f"{WORK}/model",
                    "--metric",
                    pipeline.metric,
                    "--output",
                    f"{WORK}/metric",
                ],
                ("dataset", "model"),
                {"parameters": [{"name": "metric", "valueFrom": {"path": f"{WORK}/metric"}}]},
            ),
            register,
            deploy,
        ],
    }
