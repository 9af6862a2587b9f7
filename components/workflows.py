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
  ``mainContainer.securityContext`` for the main ones;
- the default artifact repository (controller config ``artifactRepository``, platform-owned: a per-namespace
  ``artifact-repositories`` ConfigMap would be editable by tenant developers, who manage ConfigMaps): the platform's
  object store, bucket ``objectStore.buckets["workflows"]``. In-cluster: the SeaweedFS gateway, plain HTTP, keys from
  the Secret ``argo-artifacts-s3`` created in every tenant namespace (the executor mounts it from the workflow's
  namespace). External: ``objectStore.endpoint`` (AWS S3 when unset) and region, keys from
  ``objectStore.credentialsSecret`` (an ExternalSecret per tenant namespace when secrets come from a store), or the
  SDK's credentials (workload identity: ``objectStore.serviceAccountAnnotations`` on the executor ServiceAccounts);
- per tenant: ServiceAccount ``workflow-executor`` and its Role (the emissary executor's ``workflowtaskresults``
  create/patch, and get/create/patch of InferenceServices for the pipeline's deploy step) with its RoleBinding; the
  NetworkPolicy ``allow-workflow-https`` (workflow pods to public addresses on 443: datasets, an external store);
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
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
import yaml

from config import versions
from config.model import Cluster, Gpu, Namespaces, Pipeline
from config.model import ObjectStore as ObjectStoreConfig
from config.model import Tenant as TenantConfig
from config.model import Workflows as WorkflowsConfig

from .batch import QUEUE_ANNOTATION
from .gpu import gpu_scheduling
from .meta import helm_release, labels, metadata, mirrored, platform_namespace
from .objectstore import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ObjectStore
from .secrets import PlatformSecrets
from .serving.endpoint import CONTAINER_SECURITY
from .serving.endpoint import POD_SECURITY as SERVING_POD_SECURITY

COMPONENT = "workflows"
POD_SECURITY = "restricted"
RELEASE = versions.ARGO_WORKFLOWS.name

# What tenant developers manage and everyone in a tenant reads (as the chart's aggregated roles, less ClusterWorkflow-
# Templates, which are off).
TENANT_WORKLOADS = {"argoproj.io": ["workflows", "workflowtemplates", "cronworkflows"]}
TENANT_READABLE = {"argoproj.io": ["workflowtaskresults", "workflowtasksets", "workflowartifactgctasks",
                                   "workfloweventbindings"]}

EXECUTOR_SA = "workflow-executor"
ARTIFACT_SECRET = "argo-artifacts-s3"
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
# The uid of Argo's images (argocli, workflow-controller); the executor image defines none.
UID = 8737
WORKFLOW_POD_SECURITY = {"runAsNonRoot": True, "runAsUser": UID, "seccompProfile": {"type": "RuntimeDefault"}}
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
STEP_COMMAND = ["python", "-m", "pipeline"]
MODEL_FORMAT = "sklearn"
REGISTER_SCRIPT = """\
import os
import tarfile
import urllib.parse

import mlflow

model_dir, archive = "/work/model", "/work/model.tar.gz"
with tarfile.open(archive, "w:gz") as tar:
    tar.add(model_dir, arcname=".")
mlflow.set_experiment(os.environ["EXPERIMENT"])
with mlflow.start_run() as run:
    mlflow.log_param("dataset_uri", os.environ["DATASET_URI"])
    mlflow.log_metric(os.environ["METRIC_NAME"], float(os.environ["METRIC_VALUE"]))
    mlflow.log_artifacts(model_dir, "model")
    mlflow.log_artifact(archive)
    archive_uri = mlflow.get_artifact_uri("model.tar.gz")
mlflow.register_model(f"runs:/{run.info.run_id}/model", os.environ["REGISTERED_MODEL"])
# KServe fetches (and unpacks) the archive over HTTP from the tracking server's artifact proxy.
path = urllib.parse.urlparse(archive_uri).path.lstrip("/")
with open("/work/model-uri", "w") as out:
    out.write(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow-artifacts/artifacts/" + path)
"""


def _image_registry(cluster: Cluster) -> dict:
    return {"image": {"registry": cluster.image_registry}} if cluster.image_registry else {}


def artifact_repository(store: ObjectStoreConfig, in_cluster_endpoint: str | None) -> tuple[dict, bool]:
    """The S3 artifact repository values and whether the executors use the SDK's credentials (workload identity)."""
    sdk = store.mode == "external" and not store.credentials_secret
    endpoint = in_cluster_endpoint if store.mode == "in-cluster" else store.endpoint
    url = urlsplit(endpoint) if endpoint else None
    s3: dict = {"bucket": store.buckets["workflows"], "endpoint": url.netloc if url else "s3.amazonaws.com",
                "insecure": bool(url and url.scheme == "http")}
    if store.mode == "external":
        s3["region"] = store.region
    if sdk:
        s3["useSDKCreds"] = True
    else:
        secret = ARTIFACT_SECRET if store.mode == "in-cluster" else store.credentials_secret
        s3["accessKeySecret"] = {"name": secret, "key": ACCESS_KEY_ID}
        s3["secretKeySecret"] = {"name": secret, "key": SECRET_ACCESS_KEY}
    return s3, sdk


def helm_values(workflows: WorkflowsConfig, cluster: Cluster, tenants: list[TenantConfig], store: ObjectStoreConfig,
                in_cluster_endpoint: str | None) -> dict:
    """Values of the argo-workflows chart (keys checked against the upstream values.yaml by the schema tier)."""
    s3, sdk = artifact_repository(store, in_cluster_endpoint)
    pod_security = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    server: dict = {
        "replicas": workflows.server_replicas, "podSecurityContext": pod_security,
        "authModes": [workflows.auth_mode],
        "clusterWorkflowTemplates": {"enabled": False},
        **_image_registry(cluster),
    }
    if workflows.sso:
        sso = workflows.sso
        server["sso"] = {
            "enabled": True, "issuer": sso.issuer, "redirectUrl": sso.redirect_url, "scopes": list(sso.scopes),
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
            "replicas": workflows.controller_replicas, "podSecurityContext": pod_security,
            "workflowNamespaces": [t.name for t in tenants],
            "clusterWorkflowTemplates": {"enabled": False},
            "workflowDefaults": workflow_defaults(),
            **_image_registry(cluster),
        },
        "server": server,
        "executor": {"securityContext": CONTAINER_SECURITY, "resources": EXECUTOR_RESOURCES,
                     **_image_registry(cluster)},
        "mainContainer": {"securityContext": CONTAINER_SECURITY},
        "useStaticCredentials": not sdk,
        "artifactRepository": {"s3": s3},
    }


def workflow_defaults() -> dict:
    """The controller's ``workflowDefaults``: what every workflow gets unless it says otherwise."""
    return {"spec": {
        "serviceAccountName": EXECUTOR_SA,
        "securityContext": WORKFLOW_POD_SECURITY,
        "podMetadata": {"labels": dict(NO_SIDECAR)},
        "podGC": {"strategy": "OnPodSuccess"},
        "ttlStrategy": {"secondsAfterSuccess": SUCCEEDED_TTL, "secondsAfterFailure": FAILED_TTL},
    }}


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
        arguments["artifacts"] = [{"name": a, "from": f"{{{{steps.{ARTIFACTS[a][0]}.outputs.artifacts.{a}}}}}"}
                                  for a in artifacts]
    if parameters:
        arguments["parameters"] = [{"name": key, "value": value} for key, value in parameters.items()]
    return {"name": name, "template": name, **({"arguments": arguments} if arguments else {}), **extra}


def _user_step(name: str, args: list[str], inputs: tuple[str, ...], outputs: dict) -> dict:
    """A step that runs the tenant's image, with its work files on an emptyDir."""
    return {
        "name": name,
        **({"inputs": {"artifacts": [{"name": a, "path": ARTIFACTS[a][1]} for a in inputs]}} if inputs else {}),
        "outputs": outputs,
        "volumes": [{"name": "work", "emptyDir": {}}],
        "container": {"image": "{{workflow.parameters.image}}", "command": STEP_COMMAND, "args": [name, *args],
                      "securityContext": CONTAINER_SECURITY, "volumeMounts": [{"name": "work", "mountPath": WORK}]},
    }


def inference_service(tenant: str) -> dict:
    """The deploy step's InferenceService: the registered model's archive, fetched over HTTP from MLflow."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "{{workflow.parameters.model-name}}",
                     "labels": {**labels(COMPONENT, tenant), "app.kubernetes.io/managed-by": "argo-workflows"}},
        "spec": {"predictor": {
            "securityContext": SERVING_POD_SECURITY,
            "model": {"modelFormat": {"name": "{{workflow.parameters.model-format}}"},
                      "storageUri": "{{inputs.parameters.model-uri}}", "securityContext": CONTAINER_SECURITY},
        }},
    }


def pipeline_spec(pipeline: Pipeline, tenant: TenantConfig, gpu: Gpu, mlflow_url: str, cluster: Cluster) -> dict:
    """The WorkflowTemplate's spec: preprocess -> train (GPUs, Volcano queue of the tenant) -> evaluate (writes the
    metric) -> register in MLflow -> deploy an InferenceService only when the metric >= the threshold parameter."""
    scheduling = gpu_scheduling(gpu, pipeline.gpu, exclusive=tenant.gpu_isolation == "exclusive")
    cpu_memory = {"cpu": pipeline.resources.cpu, "memory": pipeline.resources.memory}
    train = _user_step("train", ["--data", f"{WORK}/data", "--output", f"{WORK}/model"], ("dataset",),
                       {"artifacts": [{"name": "model", "path": f"{WORK}/model"}]})
    train["container"]["resources"] = {kind: {**cpu_memory, **scheduling["resources"][kind]}
                                       for kind in ("requests", "limits")}
    train["container"]["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
    train["volumes"].append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
    train.update(schedulerName="volcano", metadata={"annotations": {QUEUE_ANNOTATION: tenant.name}},
                 tolerations=scheduling["tolerations"], affinity=scheduling["affinity"])
    image = mirrored(versions.MLFLOW_IMAGE, cluster.image_registry) if cluster.image_registry else versions.MLFLOW_IMAGE
    model = "{{workflow.parameters.model-name}}"
    register = {
        "name": "register",
        "inputs": {"parameters": [{"name": "metric"}], "artifacts": [{"name": "model", "path": f"{WORK}/model"}]},
        "outputs": {"parameters": [{"name": "model-uri", "valueFrom": {"path": f"{WORK}/model-uri"}}]},
        "volumes": [{"name": "work", "emptyDir": {}}],
        "script": {
            "image": image, "command": ["python"], "source": REGISTER_SCRIPT,
            "securityContext": CONTAINER_SECURITY, "volumeMounts": [{"name": "work", "mountPath": WORK}],
            "env": [{"name": "MLFLOW_TRACKING_URI", "value": mlflow_url}, {"name": "HOME", "value": "/tmp"},
                    {"name": "EXPERIMENT", "value": f"{tenant.name}/{model}"},
                    {"name": "REGISTERED_MODEL", "value": f"{tenant.name}-{model}"},
                    {"name": "DATASET_URI", "value": "{{workflow.parameters.dataset-uri}}"},
                    {"name": "METRIC_NAME", "value": pipeline.metric},
                    {"name": "METRIC_VALUE", "value": "{{inputs.parameters.metric}}"}],
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
        "arguments": {"parameters": [
            {"name": "image", "description": "the training code's image (provides python -m pipeline <step>)"},
            {"name": "dataset-uri", "description": "where preprocess reads the dataset"},
            {"name": "model-name", "value": pipeline.name, "description": "registered model and InferenceService"},
            {"name": "model-format", "value": MODEL_FORMAT, "description": "KServe model format"},
            {"name": "threshold", "value": f"{pipeline.threshold:g}",
             "description": f"deploy only if {pipeline.metric} >= threshold"},
        ]},
        "templates": [
            {"name": "pipeline", "steps": [
                [_step("preprocess")],
                [_step("train", ("dataset",))],
                [_step("evaluate", ("dataset", "model"))],
                [_step("register", ("model",), {"metric": metric})],
                [_step("deploy", parameters={"model-uri": "{{steps.register.outputs.parameters.model-uri}}"},
                       when=f"{metric} >= {{{{workflow.parameters.threshold}}}}")],
            ]},
            _user_step("preprocess", ["--dataset-uri", "{{workflow.parameters.dataset-uri}}", "--output",
                                      f"{WORK}/data"], (),
                       {"artifacts": [{"name": "dataset", "path": f"{WORK}/data"}]}),
            train,
            _user_step("evaluate", ["--data", f"{WORK}/data", "--model", f"{WORK}/model", "--metric", pipeline.metric,
                                    "--output", f"{WORK}/metric"], ("dataset", "model"),
                       {"parameters": [{"name": "metric", "valueFrom": {"path": f"{WORK}/metric"}}]}),
            register,
            deploy,
        ],
    }


class Workflows(pulumi.ComponentResource):
    """Argo Workflows namespace and release, per-tenant executor accounts, artifact credentials, SSO RBAC and the
    tenants' pipeline WorkflowTemplates (see the module docstring)."""

    def __init__(self, name: str, workflows: WorkflowsConfig, cluster: Cluster, namespaces: Namespaces,
                 store: ObjectStoreConfig, gpu: Gpu, tenants: list[TenantConfig],
                 tenant_namespaces: dict[str, pulumi.Input[str]], object_store: ObjectStore | None,
                 platform_secrets: PlatformSecrets, mlflow_url: str | None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:workflows:Workflows", name, None, opts)
        if store.mode == "in-cluster" and object_store is None:
            raise ValueError("an in-cluster object store must be created before Argo Workflows and passed to it")
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = platform_namespace(f"{name}-namespace", namespaces.workflows, COMPONENT, POD_SECURITY,
                                            cluster.kubernetes_version, self)
        ns = self.namespace.metadata.name
        _, sdk = artifact_repository(store, object_store.endpoint if object_store else None)

        before_release = []
        if workflows.sso:
            client = platform_secrets.existing(f"{name}-sso-client", workflows.sso.client_secret, ns, COMPONENT,
                                               self, SSO_CLIENT_KEYS)
            before_release += [client] if client else []
            self._service_account(f"{name}-sso-login", LOGIN_SA, ns, None,
                                  {RBAC_RULE: rbac_rule(sorted({g for t in tenants for g in sso_groups(t)})),
                                   RBAC_PRECEDENCE: "0"})

        for tenant in tenants:
            tns = tenant_namespaces[tenant.name]
            prefix = f"{name}-{tenant.name}"
            annotations = dict(store.service_account_annotations) if sdk else {}
            k8s.core.v1.ServiceAccount(
                f"{prefix}-executor-sa",
                metadata={**metadata(EXECUTOR_SA, COMPONENT, namespace=tns, tenant=tenant.name),
                          **({"annotations": annotations} if annotations else {})},
                opts=child)
            k8s.rbac.v1.Role(f"{prefix}-executor-role",
                             metadata=metadata(EXECUTOR_SA, COMPONENT, namespace=tns, tenant=tenant.name),
                             rules=executor_rules(), opts=child)
            k8s.rbac.v1.RoleBinding(
                f"{prefix}-executor-rolebinding",
                metadata=metadata(EXECUTOR_SA, COMPONENT, namespace=tns, tenant=tenant.name),
                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": EXECUTOR_SA},
                subjects=[{"kind": "ServiceAccount", "name": EXECUTOR_SA, "namespace": tns}],
                opts=child)
            if store.mode == "in-cluster":
                platform_secrets.secret(f"{prefix}-artifacts-s3", ARTIFACT_SECRET, tns, COMPONENT, self,
                                        {ACCESS_KEY_ID: object_store.credentials.access_key_id,
                                         SECRET_ACCESS_KEY: object_store.credentials.secret_access_key},
                                        tenant=tenant.name)
            elif store.credentials_secret:
                platform_secrets.existing(f"{prefix}-artifacts-s3", store.credentials_secret, tns, COMPONENT, self,
                                          [ACCESS_KEY_ID, SECRET_ACCESS_KEY], tenant=tenant.name)
            k8s.networking.v1.NetworkPolicy(
                f"{prefix}-netpol-https",
                metadata=metadata("allow-workflow-https", COMPONENT, namespace=tns, tenant=tenant.name),
                spec={"podSelector": {"matchExpressions": [{"key": "workflows.argoproj.io/workflow",
                                                            "operator": "Exists"}]},
                      "policyTypes": ["Egress"],
                      "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                                                      "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                                  "ports": [{"protocol": "TCP", "port": 443}]}]},
                opts=child)
            if workflows.sso:
                access = {"developer": tenant.access.developers.groups, "viewer": tenant.access.viewers.groups}
                for role, (account, precedence) in SSO_ACCOUNTS.items():
                    if access[role]:
                        self._service_account(f"{prefix}-sso-{role}", account, tns, tenant.name,
                                              {RBAC_RULE: rbac_rule(access[role]), RBAC_PRECEDENCE: str(precedence)},
                                              role=role)

        self.release = helm_release(
            f"{name}-release", versions.ARGO_WORKFLOWS, ns,
            helm_values(workflows, cluster, tenants, store, object_store.endpoint if object_store else None), self,
            depends_on=before_release, release_name=RELEASE)

        after_release = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        self.templates = [
            k8s.apiextensions.CustomResource(
                f"{name}-{pipeline.tenant}-{pipeline.name}",
                api_version="argoproj.io/v1alpha1", kind="WorkflowTemplate",
                metadata=metadata(pipeline.name, COMPONENT, namespace=tenant_namespaces[pipeline.tenant],
                                  tenant=pipeline.tenant),
                spec=pipeline_spec(pipeline, next(t for t in tenants if t.name == pipeline.tenant), gpu,
                                   mlflow_url, cluster),
                opts=after_release)
            for pipeline in workflows.pipelines
        ]
        self.register_outputs({"namespace": ns, "release": self.release.name})

    def _service_account(self, logical: str, account: str, namespace: pulumi.Input[str], tenant: str | None,
                         annotations: dict[str, str], role: str | None = None) -> None:
        """An SSO ServiceAccount with its rule, its token Secret and, for a tenant role, its RoleBinding."""
        sa = k8s.core.v1.ServiceAccount(
            f"{logical}-sa",
            metadata={**metadata(account, COMPONENT, namespace=namespace, tenant=tenant), "annotations": annotations},
            opts=pulumi.ResourceOptions(parent=self))
        # Kubernetes writes the token into it; no value comes from Pulumi or a store (so not PlatformSecrets).
        k8s.core.v1.Secret(
            f"{logical}-token",
            metadata={**metadata(token_secret(account), COMPONENT, namespace=namespace, tenant=tenant),
                      "annotations": {"kubernetes.io/service-account.name": account}},
            type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[sa]))
        if role:
            k8s.rbac.v1.RoleBinding(
                f"{logical}-rolebinding", metadata=metadata(account, COMPONENT, namespace=namespace, tenant=tenant),
                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                subjects=[{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
                opts=pulumi.ResourceOptions(parent=self))


def sso_groups(tenant: TenantConfig) -> list[str]:
    """The tenant's groups that SSO maps to a tenant ServiceAccount."""
    return tenant.access.developers.groups + tenant.access.viewers.groups
