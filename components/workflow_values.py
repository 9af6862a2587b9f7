"""Argo Workflows' values (pure builders, no resources): the names of what ``workflows.Workflows`` creates, the
profile every workflow pod runs with, the chart's values and the controller's workflow defaults, each tenant's
artifact repository and model store with their credentials and KServe's S3 settings, and the SSO RBAC rules.
"""

from __future__ import annotations

import json
from typing import NamedTuple
from urllib.parse import urlsplit

import yaml

from config.batch import Workflows as WorkflowsConfig
from config.cluster import Cluster
from config.data import ObjectStore as ObjectStoreConfig
from config.tenancy import Tenant as TenantConfig

from .objectstore import ACCESS_KEY_ID, SECRET_ACCESS_KEY
from .pods import restricted_container, restricted_pod

COMPONENT = "workflows"

EXECUTOR_SA = "workflow-executor"
EXECUTOR_ROLE = "ai-platform-workflow-executor"
ARTIFACT_SECRET = "argo-artifacts-s3"
# The per-namespace artifact repository Argo reads by default (docs: artifact-repository-ref.md).
ARTIFACT_REPOSITORIES = "artifact-repositories"
DEFAULT_REPOSITORY_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"
REPOSITORY_KEY = "default"
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
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
# What the deploy step's InferenceServices run as, the label of their pods, and the Secret with their keys.
MODEL_READER = "model-reader"
MODEL_READER_SECRET = "model-reader-s3"
MODEL_POD_LABELS = {"ai-platform/role": "pipeline-model"}
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
    return {REPOSITORY_KEY: yaml.dump({"s3": s3}, Dumper=yaml.CSafeDumper, sort_keys=True)}


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


def sso_groups(tenant: TenantConfig) -> list[str]:
    """The tenant's groups that SSO maps to a tenant ServiceAccount."""
    return tenant.access.developers.groups + tenant.access.viewers.groups
