"""``Workflows``: Argo Workflows; workflows run only in tenant namespaces, each tenant gets the seeds' pipeline.

Owns:
- the namespace ``namespaces.workflows``, Pod Security ``restricted``: the chart's controller and server containers
  are non-root (their images run as uid 8737), drop every capability and forbid privilege escalation by default;
  the pods get seccomp ``RuntimeDefault`` here (``controller.podSecurityContext``/``server.podSecurityContext``);
- the Helm release ``argo-workflows`` of the pinned chart. CRDs: the chart's minified CRDs as templates
  (``crds.install``, ``crds.full: false``: no pre-install hook Job that downloads the full CRDs from GitHub), kept on
  uninstall (``crds.keep``), upgraded with the release. Images: controller, server and executor from the chart's
  ``images.tag``, which defaults to the chart's appVersion (v4.0.6): the chart version pins them;
  ``cluster.imageRegistry`` replaces their registry (``*.image.registry``). Replicas from config. Server auth
  ``workflows.authMode`` (``client`` or ``sso``; never ``server``);
- where workflows run. The controller has no mode for a set of namespaces (``singleNamespace`` is one namespace, the
  release's own): it keeps its ClusterRole and acts on Workflows in any namespace. What keeps workflows in the tenant
  namespaces is who may create them: only the tenant Roles grant ``argoproj.io`` rights (``createAggregateRoles:
  false``: the chart adds none to the built-in admin/edit/view ClusterRoles), and the Argo server acts with the
  caller's token (``client``) or a tenant ServiceAccount (``sso``). ``controller.workflowNamespaces`` only says where
  the chart would create its workflow ServiceAccount and RBAC; both are off (``workflow.*.create: false``), the
  platform creates its own. ClusterWorkflowTemplates are off (no CRD, no RBAC for controller and server);
- workflow defaults (controller config): ServiceAccount ``workflow-executor``, pod GC of succeeded pods, TTLs, pods
  labelled ``sidecar.istio.io/inject: "false"`` (a classic sidecar keeps a pod from completing), and the ``restricted``
  profile for every container of a workflow pod: pod ``securityContext`` (non-root uid 8737, RuntimeDefault; the
  executor image defines no user), ``executor.securityContext`` for the ``init``/``wait`` containers and
  ``mainContainer.securityContext`` for the main ones. Neither the tenant's step image nor the MLflow image defines
  uid 8737: the pipeline's steps set ``USER``/``LOGNAME`` and ``HOME`` on an emptyDir at ``/tmp``;
- one artifact repository per tenant, no controller-wide one: the ConfigMap ``artifact-repositories`` in each tenant
  namespace, its key ``default`` named by the annotation ``workflows.argoproj.io/default-artifact-repository``
  (Argo's order: a workflow's ``artifactRepositoryRef``, then that ConfigMap of the workflow's namespace, then the
  controller's default, which is not set). In-cluster: the SeaweedFS gateway, plain HTTP, the tenant's bucket
  ``<workflows bucket>-<tenant>`` and the tenant's own keys in the Secret ``argo-artifacts-s3`` of its namespace (the
  store's ``tenant-<tenant>`` identity, which reaches that bucket only; never the platform's keys). External:
  ``objectStore.endpoint`` (AWS S3 when unset) and region, the tenant's ``objectStore.bucket`` or the prefix
  ``<tenant>/`` of ``objectStore.workflowsBucket`` (``keyFormat``), keys from ``objectStore.credentialsSecret`` (an
  ExternalSecret per tenant namespace when secrets come from a store) or the SDK's credentials (workload identity:
  the tenant's ``objectStore.serviceAccountAnnotations``, else the store's, on its executor ServiceAccount).
  Tenant developers manage ConfigMaps, so they can edit or replace this one, and any workflow may name another
  repository: what isolates tenants is the credential, not the ConfigMap. The keys in a tenant namespace reach only
  that tenant's bucket, so pointing the repository at another tenant's bucket gets access denied. External stores
  isolate only as far as the cloud identity does: give each tenant a role allowed only on its bucket or prefix, whose
  trust policy admits only ``system:serviceaccount:<tenant>:workflow-executor`` and ``...:<tenant>:model-reader``;
- per tenant: ServiceAccount ``workflow-executor`` and its RoleBinding to the ClusterRole
  ``ai-platform-workflow-executor`` (one for all tenants: the emissary executor's ``workflowtaskresults``
  create/patch, and get/create/patch of InferenceServices for the pipeline's deploy step; granted in the tenant's
  namespace only); the
  NetworkPolicy ``allow-workflow-https`` (workflow pods to public addresses on 443: datasets, an external store);
- per tenant, for the models the pipeline serves (MLflow's artifact proxy needs a login, KServe's storage initializer
  has none): the ServiceAccount ``model-reader`` (no Role, no token) that the deploy step's InferenceServices run as.
  The register step uploads the archive to the tenant's artifact storage (``model_store``: its bucket, or its prefix
  of the shared one, under ``models/<model>/<run>/``) with the tenant's keys or the executor's identity, and passes
  on its ``s3://`` URI. KServe reads S3 credentials from the Secrets a predictor's ServiceAccount lists and S3
  settings from their annotations (``serving.kserve.io/s3-endpoint``, ``s3-usehttps``, ``s3-region``), or from the
  ServiceAccount's own annotations when it has an IRSA role (``eks.amazonaws.com/role-arn``). In-cluster:
  ``model-reader`` lists the Secret ``model-reader-s3`` (the tenant identity's keys, annotated with the gateway);
  external with ``credentialsSecret``: it lists that Secret (annotated when it comes from the store; otherwise the
  operator annotates it for a non-AWS endpoint); workload identity: it carries the executor's annotations and the S3
  settings. External: the NetworkPolicy ``allow-pipeline-model-https`` lets those pods (``ai-platform/role:
  pipeline-model``) reach public addresses on 443;
- with ``sso``: RBAC with namespace delegation. A login ServiceAccount in the workflows namespace (no rights) that
  every tenant group maps to, and per tenant ``workflows-developer``/``workflows-viewer`` ServiceAccounts chosen by
  the tenant's developer/viewer groups (``workflows.argoproj.io/rbac-rule``, higher ``rbac-rule-precedence``), bound
  to the tenant's ``developer``/``viewer`` Roles; each with its token Secret ``<sa>.service-account-token`` (Argo
  >= 3.4 reads it by that name; Kubernetes fills it). The server may read only those Secrets and the SSO client
  Secret ``sso.clientSecret`` (``server.sso.rbac.secretWhitelist``);
- one WorkflowTemplate per ``workflows.pipelines`` entry (see ``pipeline_spec``), depending on the release.
"""

from __future__ import annotations

import json
from dataclasses import KW_ONLY, dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

import pulumi
import yaml

from config import images, versions
from config.batch import Pipeline
from config.batch import Workflows as WorkflowsConfig
from config.cluster import Cluster
from config.data import ObjectStore as ObjectStoreConfig
from config.gpu import Gpu
from config.tenancy import Tenant as TenantConfig

from .batch import QUEUE_ANNOTATION
from .gpu import gpu_scheduling
from .meta import ComponentArgs, KubeObject, helm_release, kube, labels, metadata, mirrored, platform_namespace
from .mlflow import CREDENTIALS_SECRET as MLFLOW_CREDENTIALS
from .mlflow import PASSWORD_ENV as MLFLOW_PASSWORD_ENV
from .mlflow import USERNAME_ENV as MLFLOW_USERNAME_ENV
from .objectstore import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ObjectStore
from .pods import TMP, restricted_container, restricted_pod, tmp_mount, tmp_volume
from .programs import source
from .secrets import PlatformSecrets
from .tenancy import cluster_role, public_https_egress

COMPONENT = "workflows"
POD_SECURITY = "restricted"
RELEASE = versions.ARGO_WORKFLOWS.name

# What tenant developers manage and everyone in a tenant reads (as the chart's aggregated roles, less ClusterWorkflow-
# Templates, which are off).
TENANT_WORKLOADS = {"argoproj.io": ["workflows", "workflowtemplates", "cronworkflows"]}
TENANT_READABLE = {
    "argoproj.io": ["workflowtaskresults", "workflowtasksets", "workflowartifactgctasks", "workfloweventbindings"]
}

EXECUTOR_SA = "workflow-executor"
EXECUTOR_ROLE = "ai-platform-workflow-executor"
ARTIFACT_SECRET = "argo-artifacts-s3"
# The per-namespace artifact repository Argo reads by default (docs: artifact-repository-ref.md).
ARTIFACT_REPOSITORIES = "artifact-repositories"
DEFAULT_REPOSITORY_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"
REPOSITORY_KEY = "default"
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
# Every pod of a workflow carries the label workflows.argoproj.io/workflow (argoproj/argo-workflows
# workflow/common/common.go LabelKeyWorkflow): the pods whose executor calls the API server (WorkflowTaskResults).
WORKFLOW_PODS = {"matchExpressions": [{"key": "workflows.argoproj.io/workflow", "operator": "Exists"}]}
# The uid of Argo's images (argocli, workflow-controller); the executor image defines none.
UID = 8737
WORKFLOW_POD_SECURITY = restricted_pod(UID)
# Every container of a workflow pod (Argo's init/wait, the steps); the register step's with a read-only root.
STEP_SECURITY = restricted_container(read_only_root=False, non_root=True, seccomp=True)
EXECUTOR_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
SUCCEEDED_TTL = 24 * 3600
FAILED_TTL = 7 * 24 * 3600

# SSO RBAC: annotations the Argo server reads, and the ServiceAccounts the platform maps groups to.
RBAC_RULE = "workflows.argoproj.io/rbac-rule"
RBAC_PRECEDENCE = "workflows.argoproj.io/rbac-rule-precedence"
LOGIN_SA = "workflows-login"
SSO_ACCOUNTS = {"developer": ("workflows-developer", 2), "viewer": ("workflows-viewer", 1)}  # role: (sa, precedence)
SSO_CLIENT_KEYS = ["client-id", "client-secret"]

# The pipeline: the tenant's image provides ``python -m pipeline <step>``; work files live on an emptyDir.
WORK = "/work"
# Steps run as UID, which neither the tenant's image (config.images.TENANT_STEP: unknown) nor the MLflow image of the
# register step (config.images.MLFLOW) defines: USER/LOGNAME and HOME on an emptyDir at TMP.
# The register step's MLflow image writes only HOME and tempfile's directory: a read-only root file system.
REGISTER_SECURITY = restricted_container(non_root=True, seccomp=True)
STEP_COMMAND = ["python", "-m", "pipeline"]
MODEL_FORMAT = "sklearn"
REGISTER_SCRIPT = source("register_model")
# What the deploy step's InferenceServices run as, and the label of their pods.
MODEL_READER = "model-reader"
MODEL_READER_SECRET = "model-reader-s3"
MODEL_POD_LABELS = {"ai-platform/role": "pipeline-model"}
MODEL_UID = 1000  # the deploy step's model server pods run as the platform's endpoints do (uid/gid/fsGroup 1000)
# KServe's S3 settings for its storage initializer, read from the annotations of an S3 Secret listed by the
# predictor's ServiceAccount, or of the ServiceAccount itself when it has an IRSA role (kserve
# pkg/credentials/s3/s3_secret.go and utils.go, service_account_credentials.go). The endpoint is host[:port].
S3_ENDPOINT_ANNOTATION = "serving.kserve.io/s3-endpoint"
S3_USE_HTTPS_ANNOTATION = "serving.kserve.io/s3-usehttps"
S3_REGION_ANNOTATION = "serving.kserve.io/s3-region"


class ModelStore(NamedTuple):
    """Where the register step puts the model archive: the tenant's bucket, a key prefix ("" or ``<tenant>/`` of
    the shared bucket), the endpoint URL (None: AWS S3 of the region) and the Secret with keys (None: the SDK's
    credentials, i.e. the executor's workload identity)."""

    bucket: str
    prefix: str
    endpoint: str | None
    keys_secret: str | None


def _image_registry(cluster: Cluster) -> dict:
    return {"image": {"registry": cluster.image_registry}} if cluster.image_registry else {}


def artifact_repository(store: ObjectStoreConfig, in_cluster_endpoint: str | None, tenant: TenantConfig) -> dict:
    """A tenant's S3 artifact repository: with keys from a Secret, or the SDK's credentials (workload identity)."""
    endpoint = in_cluster_endpoint if store.mode == "in-cluster" else store.endpoint
    url = urlsplit(endpoint) if endpoint else None
    own = tenant.object_store.bucket if tenant.object_store else None
    bucket = store.tenant_bucket(tenant.name) if store.mode == "in-cluster" else own or store.buckets["workflows"]
    s3: dict = {
        "bucket": bucket,
        "endpoint": url.netloc if url else "s3.amazonaws.com",
        "insecure": bool(url and url.scheme == "http"),
    }
    if store.mode == "external":
        s3["region"] = store.region
        if not own:  # the shared bucket: the tenant's prefix (Argo's default key format is workflow/pod)
            s3["keyFormat"] = f"{tenant.name}/{{{{workflow.name}}}}/{{{{pod.name}}}}"
    secret = keys_secret(store)
    if secret is None:
        s3["useSDKCreds"] = True
    else:
        s3["accessKeySecret"] = {"name": secret, "key": ACCESS_KEY_ID}
        s3["secretKeySecret"] = {"name": secret, "key": SECRET_ACCESS_KEY}
    return s3


def keys_secret(store: ObjectStoreConfig) -> str | None:
    """The Secret with a tenant's S3 keys in its namespace; None with workload identity."""
    return ARTIFACT_SECRET if store.mode == "in-cluster" else store.credentials_secret


def model_store(store: ObjectStoreConfig, in_cluster_endpoint: str | None, tenant: TenantConfig) -> ModelStore:
    """The tenant's storage for models to serve: the bucket (or prefix) and credentials of its artifacts."""
    if store.mode == "in-cluster":
        return ModelStore(store.tenant_bucket(tenant.name), "", in_cluster_endpoint, keys_secret(store))
    own = tenant.object_store.bucket if tenant.object_store else None
    return ModelStore(
        own or store.buckets["workflows"], "" if own else f"{tenant.name}/", store.endpoint, keys_secret(store)
    )


def kserve_s3_annotations(store: ObjectStoreConfig, endpoint: str | None) -> dict[str, str]:
    """KServe's S3 settings for the storage initializer: region, and for a non-AWS endpoint its host[:port] and
    whether to use HTTPS (``"0"``: plain HTTP)."""
    annotations = {S3_REGION_ANNOTATION: store.region}
    if endpoint:
        url = urlsplit(endpoint)
        annotations[S3_ENDPOINT_ANNOTATION] = url.netloc
        annotations[S3_USE_HTTPS_ANNOTATION] = "0" if url.scheme == "http" else "1"
    return annotations


def executor_annotations(store: ObjectStoreConfig, tenant: TenantConfig) -> dict[str, str]:
    """Workload identity of a tenant's executor: with the SDK's credentials, the tenant's annotations or the store's."""
    if store.mode != "external" or store.credentials_secret:
        return {}
    own = tenant.object_store.service_account_annotations if tenant.object_store else {}
    return dict(own or store.service_account_annotations)


def repository_config_map(s3: dict) -> dict[str, str]:
    """The ``data`` of a tenant's ``artifact-repositories`` ConfigMap: one repository under ``REPOSITORY_KEY``."""
    return {REPOSITORY_KEY: yaml.safe_dump({"s3": s3}, sort_keys=True)}


def helm_values(workflows: WorkflowsConfig, cluster: Cluster, tenants: list[TenantConfig]) -> dict:
    """Values of the argo-workflows chart (keys checked against the upstream values.yaml by the schema tier). No
    ``artifactRepository``: each tenant namespace has its own (``repository_config_map``)."""
    pod_security = restricted_pod()  # the images' own user (uid 8737)
    server: dict = {
        "replicas": workflows.server_replicas,
        "podSecurityContext": pod_security,
        "authModes": [workflows.auth_mode],
        "clusterWorkflowTemplates": {"enabled": False},
        **_image_registry(cluster),
    }
    if workflows.sso:
        sso = workflows.sso
        server["sso"] = {
            "enabled": True,
            "issuer": sso.issuer,
            "redirectUrl": sso.redirect_url,
            "scopes": list(sso.scopes),
            "clientId": {"name": sso.client_secret, "key": "client-id"},
            "clientSecret": {"name": sso.client_secret, "key": "client-secret"},
            "rbac": {"enabled": True, "secretWhitelist": [sso.client_secret] + sso_token_secrets()},
        }
        server["extraEnv"] = [{"name": "SSO_DELEGATE_RBAC_TO_NAMESPACE", "value": "true"}]
    return {
        "crds": {"install": True, "full": False, "keep": True},
        "images": {"pullPolicy": "IfNotPresent"},
        "createAggregateRoles": False,
        "singleNamespace": False,
        "workflow": {"serviceAccount": {"create": False}, "rbac": {"create": False}},
        "controller": {
            "replicas": workflows.controller_replicas,
            "podSecurityContext": pod_security,
            "workflowNamespaces": [t.name for t in tenants],
            "clusterWorkflowTemplates": {"enabled": False},
            "workflowDefaults": workflow_defaults(),
            **_image_registry(cluster),
        },
        "server": server,
        "executor": {"securityContext": STEP_SECURITY, "resources": EXECUTOR_RESOURCES, **_image_registry(cluster)},
        "mainContainer": {"securityContext": STEP_SECURITY},
    }


def workflow_defaults() -> dict:
    """The controller's ``workflowDefaults``: what every workflow gets unless it says otherwise."""
    return {
        "spec": {
            "serviceAccountName": EXECUTOR_SA,
            "securityContext": WORKFLOW_POD_SECURITY,
            "podMetadata": {"labels": dict(NO_SIDECAR)},
            "podGC": {"strategy": "OnPodSuccess"},
            "ttlStrategy": {"secondsAfterSuccess": SUCCEEDED_TTL, "secondsAfterFailure": FAILED_TTL},
        }
    }


def executor_rules() -> list[dict]:
    """The executor's Role: report step results (emissary executor), and the pipeline's deploy step."""
    return [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["get", "create", "patch"]},
    ]


def sso_token_secrets() -> list[str]:
    """Names of the SSO ServiceAccounts' token Secrets (Argo finds a token by ``<sa>.service-account-token``)."""
    return [token_secret(sa) for sa in [LOGIN_SA] + [sa for sa, _ in SSO_ACCOUNTS.values()]]


def token_secret(service_account: str) -> str:
    return f"{service_account}.service-account-token"


def rbac_rule(groups: list[str]) -> str:
    """An expr rule matching users in any of ``groups`` (JSON string literals are valid expr strings)."""
    return " || ".join(f"{json.dumps(group)} in groups" for group in groups) or "false"


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
        "resource": {"action": "apply", "manifest": yaml.safe_dump(inference_service(tenant.name), sort_keys=True)},
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


@dataclass(frozen=True)
class WorkflowsArgs(ComponentArgs):
    """What ``Workflows`` is built from (besides the cluster and namespaces): its config, the object store's, the GPU
    config and the tenants; keyword-only, the tenants' namespaces (Outputs), the in-cluster object store (endpoint,
    the tenants' keys), MLflow's URL (pipelines log there) and the platform's Secrets."""

    workflows: WorkflowsConfig
    store: ObjectStoreConfig
    gpu: Gpu
    tenants: list[TenantConfig]
    _: KW_ONLY
    tenant_namespaces: dict[str, pulumi.Input[str]]
    object_store: ObjectStore | None
    mlflow_url: str | None
    platform_secrets: PlatformSecrets


class Workflows(pulumi.ComponentResource):
    """Argo Workflows namespace and release, per-tenant executor accounts, artifact credentials, SSO RBAC and the
    tenants' pipeline WorkflowTemplates (see the module docstring)."""

    def __init__(self, name: str, args: WorkflowsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:workflows:Workflows", name, None, opts)
        workflows, cluster, namespaces, store, gpu = args.workflows, args.cluster, args.namespaces, args.store, args.gpu
        tenants, tenant_namespaces, object_store = args.tenants, args.tenant_namespaces, args.object_store
        platform_secrets, mlflow_url, protect = args.platform_secrets, args.mlflow_url, args.protect
        if store.mode == "in-cluster" and object_store is None:
            raise ValueError("an in-cluster object store must be created before Argo Workflows and passed to it")
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = platform_namespace(
            f"{name}-namespace", namespaces.workflows, COMPONENT, POD_SECURITY, cluster.kubernetes_version, self
        )
        ns = self.namespace.metadata["name"]

        self.model_stores: dict[str, ModelStore] = {}
        if workflows.sso:
            platform_secrets.existing(
                f"{name}-sso-client", workflows.sso.client_secret, ns, COMPONENT, self, SSO_CLIENT_KEYS
            )
            self._service_account(
                f"{name}-sso-login",
                LOGIN_SA,
                ns,
                None,
                {RBAC_RULE: rbac_rule(sorted({g for t in tenants for g in sso_groups(t)})), RBAC_PRECEDENCE: "0"},
            )

        if tenants:  # the executor's rights, granted in each tenant namespace by a RoleBinding
            kube(
                f"{name}-executor-role",
                api_version="rbac.authorization.k8s.io/v1",
                kind="ClusterRole",
                metadata=metadata(EXECUTOR_ROLE, COMPONENT),
                rules=executor_rules(),
                opts=child,
            )
        for tenant in tenants:
            tns = tenant_namespaces[tenant.name]
            prefix = f"{name}-{tenant.name}"
            annotations = executor_annotations(store, tenant)
            kube(
                f"{prefix}-executor-sa",
                api_version="v1",
                kind="ServiceAccount",
                metadata={
                    **metadata(EXECUTOR_SA, COMPONENT, namespace=tns, tenant=tenant.name),
                    **({"annotations": annotations} if annotations else {}),
                },
                opts=child,
            )
            kube(
                f"{prefix}-executor-rolebinding",
                api_version="rbac.authorization.k8s.io/v1",
                kind="RoleBinding",
                metadata=metadata(EXECUTOR_SA, COMPONENT, namespace=tns, tenant=tenant.name),
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": EXECUTOR_ROLE},
                subjects=[{"kind": "ServiceAccount", "name": EXECUTOR_SA, "namespace": tns}],
                opts=child,
            )
            s3 = artifact_repository(store, object_store.endpoint if object_store else None, tenant)
            kube(
                f"{prefix}-artifact-repositories",
                api_version="v1",
                kind="ConfigMap",
                metadata={
                    **metadata(ARTIFACT_REPOSITORIES, COMPONENT, namespace=tns, tenant=tenant.name),
                    "annotations": {DEFAULT_REPOSITORY_ANNOTATION: REPOSITORY_KEY},
                },
                data=repository_config_map(s3),
                opts=child,
            )
            models = self.model_stores[tenant.name] = model_store(
                store, object_store.endpoint if object_store else None, tenant
            )
            s3_settings = kserve_s3_annotations(store, models.endpoint)
            if store.mode == "in-cluster":  # the tenant's own identity, never the platform's keys
                assert object_store is not None, "checked at the top of __init__ (ValueError)"
                keys = object_store.tenant_credentials[tenant.name]
                tenant_keys = {ACCESS_KEY_ID: keys.access_key_id, SECRET_ACCESS_KEY: keys.secret_access_key}
                platform_secrets.secret(
                    f"{prefix}-artifacts-s3", ARTIFACT_SECRET, tns, COMPONENT, self, tenant_keys, tenant=tenant.name
                )
                platform_secrets.secret(
                    f"{prefix}-model-reader-s3",
                    MODEL_READER_SECRET,
                    tns,
                    COMPONENT,
                    self,
                    tenant_keys,
                    tenant=tenant.name,
                    annotations=s3_settings,
                )
            elif store.credentials_secret:  # from the store: its target carries KServe's settings too
                platform_secrets.existing(
                    f"{prefix}-artifacts-s3",
                    store.credentials_secret,
                    tns,
                    COMPONENT,
                    self,
                    [ACCESS_KEY_ID, SECRET_ACCESS_KEY],
                    tenant=tenant.name,
                    annotations=s3_settings,
                )
            self._model_reader(prefix, tns, tenant.name, store, annotations, s3_settings)
            kube(
                f"{prefix}-netpol-https",
                api_version="networking.k8s.io/v1",
                kind="NetworkPolicy",
                metadata=metadata("allow-workflow-https", COMPONENT, namespace=tns, tenant=tenant.name),
                spec={"podSelector": WORKFLOW_PODS, "policyTypes": ["Egress"], "egress": [public_https_egress()]},
                opts=child,
            )
            if workflows.sso:
                access = {"developer": tenant.access.developers.groups, "viewer": tenant.access.viewers.groups}
                for role, (account, precedence) in SSO_ACCOUNTS.items():
                    if access[role]:
                        self._service_account(
                            f"{prefix}-sso-{role}",
                            account,
                            tns,
                            tenant.name,
                            {RBAC_RULE: rbac_rule(access[role]), RBAC_PRECEDENCE: str(precedence)},
                            role=role,
                        )

        # No wait for the SSO client Secret (from the store it comes one wave after the External Secrets operator's
        # release): argo-server reads it at start and exits until it exists, and the kubelet restarts it (crash-loop
        # backoff, at most 5 minutes apart); 900 s instead of 600 leaves room for that. Waiting would put the release,
        # and the WorkflowTemplates that need its CRDs, a wave later (a fifth wave).
        self.release = helm_release(
            f"{name}-release",
            versions.ARGO_WORKFLOWS,
            ns,
            helm_values(workflows, cluster, tenants),
            self,
            timeout=900,
            release_name=RELEASE,
            protect=protect,
        )

        after_release = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        by_name = {t.name: t for t in tenants}
        self.templates: list[KubeObject] = []
        if workflows.pipelines:
            # pipelines need mlflow.enabled (config/batch.py), so AiPlatform passes MLflow's URL
            assert mlflow_url is not None, "guaranteed by config/batch.py: pipelines need mlflow.enabled"
            self.templates = [
                kube(
                    f"{name}-{pipeline.tenant}-{pipeline.name}",
                    api_version="argoproj.io/v1alpha1",
                    kind="WorkflowTemplate",
                    metadata=metadata(
                        pipeline.name, COMPONENT, namespace=tenant_namespaces[pipeline.tenant], tenant=pipeline.tenant
                    ),
                    spec=pipeline_spec(
                        pipeline,
                        by_name[pipeline.tenant],
                        gpu,
                        mlflow_url,
                        cluster,
                        store,
                        self.model_stores[pipeline.tenant],
                    ),
                    opts=after_release,
                )
                for pipeline in workflows.pipelines
            ]
        self.register_outputs({"namespace": ns, "release": self.release.name})

    def _model_reader(
        self,
        prefix: str,
        namespace: pulumi.Input[str],
        tenant: str,
        store: ObjectStoreConfig,
        identity: dict[str, str],
        s3_settings: dict[str, str],
    ) -> None:
        """The ServiceAccount ``model-reader`` of the deploy step's InferenceServices (no Role, no token): it lists
        the tenant's S3 Secret, whose annotations tell KServe the endpoint; with workload identity it carries the
        executor's identity and those settings itself. With an external store, its pods may reach HTTPS."""
        secret = MODEL_READER_SECRET if store.mode == "in-cluster" else store.credentials_secret
        meta = metadata(MODEL_READER, COMPONENT, namespace=namespace, tenant=tenant)
        if secret is None:
            meta["annotations"] = {**identity, **s3_settings}
        kube(
            f"{prefix}-model-reader-sa",
            api_version="v1",
            kind="ServiceAccount",
            metadata=meta,
            secrets=[{"name": secret}] if secret else None,
            automountServiceAccountToken=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if store.mode == "external":
            kube(
                f"{prefix}-netpol-model-https",
                api_version="networking.k8s.io/v1",
                kind="NetworkPolicy",
                metadata=metadata("allow-pipeline-model-https", COMPONENT, namespace=namespace, tenant=tenant),
                spec={
                    "podSelector": {"matchLabels": dict(MODEL_POD_LABELS)},
                    "policyTypes": ["Egress"],
                    "egress": [public_https_egress()],
                },
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _service_account(
        self,
        logical: str,
        account: str,
        namespace: pulumi.Input[str],
        tenant: str | None,
        annotations: dict[str, str],
        role: str | None = None,
    ) -> None:
        """An SSO ServiceAccount with its rule, its token Secret and, for a tenant role, its RoleBinding."""
        sa = kube(
            f"{logical}-sa",
            api_version="v1",
            kind="ServiceAccount",
            metadata={**metadata(account, COMPONENT, namespace=namespace, tenant=tenant), "annotations": annotations},
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Kubernetes writes the token into it; no value comes from Pulumi or a store (so not PlatformSecrets).
        kube(
            f"{logical}-token",
            api_version="v1",
            kind="Secret",
            metadata={
                **metadata(token_secret(account), COMPONENT, namespace=namespace, tenant=tenant),
                "annotations": {"kubernetes.io/service-account.name": account},
            },
            type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[sa]),
        )
        if role:
            kube(
                f"{logical}-rolebinding",
                api_version="rbac.authorization.k8s.io/v1",
                kind="RoleBinding",
                metadata=metadata(account, COMPONENT, namespace=namespace, tenant=tenant),
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role(role)},
                subjects=[{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
                opts=pulumi.ResourceOptions(parent=self),
            )


def sso_groups(tenant: TenantConfig) -> list[str]:
    """The tenant's groups that SSO maps to a tenant ServiceAccount."""
    return tenant.access.developers.groups + tenant.access.viewers.groups
