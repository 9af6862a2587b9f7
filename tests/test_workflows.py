"""Argo Workflows: the release (CRDs without the hook job, auth mode, where workflows run), the per-tenant executor
accounts, workflow defaults, the artifact repository and its credentials, SSO RBAC, the object store shared with
tenants, the tenants' pipeline WorkflowTemplates, and switching it off."""

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from components.gpu import GPU_TOLERATION, POOL_LABEL
from config import versions
from tests.conftest import config_copy, run_stack, run_with, stack_cfg
from tests.test_secrets import DEV_EXTERNAL
from tests.test_tenancy import roles
from tools.harness import CANARY, SECRET
from tools.validate import upstream_dir, validate_object

COMPONENT_TYPE = "ai-platform:workflows:Workflows"
PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
EXECUTOR = "workflow-executor"
EXECUTOR_ROLE = "ai-platform-workflow-executor"
ARTIFACT_SECRET = "argo-artifacts-s3"
STEPS = ["preprocess", "train", "evaluate", "register", "deploy"]
# The executor's Role, spelled out: what the emissary executor and the deploy step need, nothing else.
EXECUTOR_RULES = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["get", "create", "patch"]},
]
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
S3_LABELS = {
    "app.kubernetes.io/name": "seaweedfs",
    "app.kubernetes.io/instance": "seaweedfs",
    "app.kubernetes.io/component": "s3",
}
READER = "model-reader"
READER_SECRET = "model-reader-s3"
KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# KServe's S3 settings (kserve pkg/credentials/s3/s3_secret.go): on the Secret a predictor's ServiceAccount lists, or
# on the ServiceAccount itself when it has an IRSA role.
S3_ENDPOINT, S3_USE_HTTPS, S3_REGION = (
    "serving.kserve.io/s3-endpoint",
    "serving.kserve.io/s3-usehttps",
    "serving.kserve.io/s3-region",
)
# Stand-ins for the MLflow client and boto3, to run the register step's script: they record what it uploads.
FAKE_MLFLOW = """\
import contextlib, types
def set_experiment(name): pass
def log_param(*args): pass
def log_metric(*args): pass
def log_artifacts(*args): pass
def log_artifact(*args): pass
def set_tag(*args): pass
def register_model(*args): pass
@contextlib.contextmanager
def start_run():
    yield types.SimpleNamespace(info=types.SimpleNamespace(run_id="run0123"))
"""
FAKE_BOTO3 = """\
import json, os
class _Client:
    def __init__(self, endpoint_url):
        self.endpoint_url = endpoint_url
    def upload_file(self, path, bucket, key):
        with open(os.environ["UPLOADS"], "w") as out:
            json.dump({"endpoint_url": self.endpoint_url, "bucket": bucket, "key": key,
                       "exists": os.path.exists(path)}, out)
def client(service, endpoint_url=None):
    assert service == "s3"
    return _Client(endpoint_url)
"""


def release(result):
    (found,) = [r for r in result.releases if r.inputs["chart"] == "argo-workflows"]
    return found


def values(result) -> dict:
    return release(result).inputs["values"]


def templates(result, cfg, pipeline) -> dict[str, dict]:
    workflow_template = result.one("WorkflowTemplate", pipeline.name, pipeline.tenant)
    return {t["name"]: t for t in workflow_template.inputs["spec"]["templates"]}


def annotations(obj) -> dict:
    return obj.inputs["metadata"].get("annotations") or {}


def repository(result, tenant: str) -> dict:
    """The S3 repository a tenant's workflows use by default: its namespace's artifact-repositories ConfigMap, the key
    its annotation names (what Argo reads when a workflow names no repository)."""
    config_map = result.one("ConfigMap", "artifact-repositories", tenant)
    key = annotations(config_map)["workflows.argoproj.io/default-artifact-repository"]
    return yaml.safe_load(config_map.inputs["data"][key])["s3"]


def ours(result):
    return [
        r
        for r in result.objects
        if r.inputs["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "workflows"
    ]


def sso_stack_config() -> dict:
    """dev with SSO, and an external S3 service whose keys are in an existing Secret (Pulumi secrets)."""
    workflows = copy.deepcopy(config_copy()["ai-platform:workflows"])
    workflows.update(
        authMode="sso",
        sso={
            "issuer": "https://login.example.com/realms/dev",
            "clientSecret": "argo-oidc",
            "redirectUrl": "https://argo.dev.example.com/oauth2/callback",
        },
    )
    return {
        "workflows": workflows,
        "objectStore": {
            "mode": "external",
            "endpoint": "https://s3.storage.example.com",
            "region": "eu-central-1",
            "mlflowBucket": "team-mlflow",
            "milvusBucket": "team-milvus",
            "workflowsBucket": "team-workflows",
            "lokiBucket": "team-loki",
            "tempoBucket": "team-tempo",
            "credentialsSecret": "s3-keys",
        },
    }


@pytest.fixture(scope="module")
def sso_keys():
    return run_with(**sso_stack_config())


@pytest.fixture(scope="module")
def workflows_off():
    return run_with(workflows={"enabled": False})


@pytest.fixture(scope="module")
def dev_external():
    """dev (in-cluster store) with secrets from Vault: the ExternalSecret templates show keys and annotations."""
    return run_with("dev", secrets=DEV_EXTERNAL)


def expected_model_store(cfg, tenant: str) -> tuple[str, str, str | None, str | None]:
    """Where a tenant's served models belong: bucket, key prefix, endpoint URL and the Secret with its keys."""
    store = cfg.object_store
    if store.mode == "in-cluster":
        return (
            f"argo-artifacts-{tenant}",
            "",
            f"http://seaweedfs-s3.{cfg.namespaces.object_store}.svc:8333",
            ARTIFACT_SECRET,
        )
    own = cfg.tenant(tenant).object_store.bucket if cfg.tenant(tenant).object_store else None
    return own or store.buckets["workflows"], "" if own else f"{tenant}/", store.endpoint, store.credentials_secret


def run_register_script(template: dict, tmp_path) -> tuple[dict, str, dict]:
    """Run the register step's script with stand-in mlflow and boto3 and its env (Argo's parameters filled in,
    secretKeyRefs as placeholders): the upload it made, the model-uri it wrote, and the secretKeyRefs by variable."""
    script = template["script"]
    work = tmp_path / "work"
    (work / "model").mkdir(parents=True)
    (work / "model" / "model.joblib").write_text("weights")
    (tmp_path / "mlflow.py").write_text(FAKE_MLFLOW)
    (tmp_path / "boto3.py").write_text(FAKE_BOTO3)
    fill = {
        "{{workflow.parameters.model-name}}": "iris",
        "{{workflow.parameters.dataset-uri}}": "s3://data/iris",
        "{{inputs.parameters.metric}}": "0.97",
    }
    env, refs = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path), "UPLOADS": str(tmp_path / "uploads")}, {}
    for entry in script["env"]:
        if "valueFrom" in entry:
            refs[entry["name"]] = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = f"from-{entry['valueFrom']['secretKeyRef']['name']}"
        else:
            env[entry["name"]] = fill.get(entry["value"], entry["value"])
    source = script["source"].replace("/work/", f"{work}/")
    done = subprocess.run(
        [sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "uploads").read_text()), (work / "model-uri").read_text(), refs


# --- the release --------------------------------------------------------------------------------------------------


def test_release_installs_minified_crds_without_the_hook_job(stack_run, cfg):
    found = release(stack_run)
    assert (found.inputs["version"], found.inputs["namespace"]) == (
        versions.ARGO_WORKFLOWS.version,
        cfg.namespaces.workflows,
    )
    assert values(stack_run)["crds"] == {"install": True, "full": False, "keep": True}
    # No tag of ours: images.tag defaults to the chart's appVersion, which the chart version pins.
    assert "tag" not in values(stack_run)["images"]
    chart = yaml.safe_load((upstream_dir() / "argo-workflows" / "Chart.yaml").read_text())
    assert chart["appVersion"].startswith("v4.0.")


def test_server_auth_mode_is_client_or_sso_never_server(stack_run, cfg):
    server = values(stack_run)["server"]
    assert server["authModes"] == [cfg.workflows.auth_mode]
    if cfg.workflows.auth_mode == "client":
        assert "sso" not in server and "extraEnv" not in server
    else:  # prod
        sso = cfg.workflows.sso
        assert server["sso"]["enabled"] and server["sso"]["rbac"]["enabled"]
        assert (server["sso"]["issuer"], server["sso"]["redirectUrl"]) == (sso.issuer, sso.redirect_url)
        assert server["sso"]["clientId"] == {"name": sso.client_secret, "key": "client-id"}
        assert server["sso"]["clientSecret"] == {"name": sso.client_secret, "key": "client-secret"}
        assert "groups" in server["sso"]["scopes"]
        assert {"name": "SSO_DELEGATE_RBAC_TO_NAMESPACE", "value": "true"} in server["extraEnv"]


@pytest.mark.invariant
def test_workflows_run_only_where_tenant_roles_allow(stack_run, cfg):
    """The controller keeps a ClusterRole: what confines workflows is who may create them. The chart adds no
    argoproj.io rights to the built-in roles, creates no workflow ServiceAccount or RBAC, and no
    ClusterWorkflowTemplates."""
    if not cfg.workflows.enabled:
        pytest.skip("workflows off")
    given = values(stack_run)
    assert given["createAggregateRoles"] is False and given["singleNamespace"] is False
    assert given["workflow"] == {"serviceAccount": {"create": False}, "rbac": {"create": False}}
    assert given["controller"]["workflowNamespaces"] == [t.name for t in cfg.tenants]
    assert given["controller"]["clusterWorkflowTemplates"] == {"enabled": False}
    assert given["server"]["clusterWorkflowTemplates"] == {"enabled": False}
    for tenant in cfg.tenants:
        rules = {
            r["apiGroups"][0]: r
            for r in roles(stack_run, tenant.name)["developer"]
            if r["apiGroups"] == ["argoproj.io"] and "create" in r["verbs"]
        }
        assert set(rules["argoproj.io"]["resources"]) == {"workflows", "workflowtemplates", "cronworkflows"}
        viewer = [r for r in roles(stack_run, tenant.name)["viewer"] if r["apiGroups"] == ["argoproj.io"]]
        assert {v for r in viewer for v in r["verbs"]} == {"get", "list", "watch"}
        assert "workflowtaskresults" in {res for r in viewer for res in r["resources"]}


def test_replicas_and_image_registry_from_config(stack_run, cfg):
    given = values(stack_run)
    assert (given["controller"]["replicas"], given["server"]["replicas"]) == (
        cfg.workflows.controller_replicas,
        cfg.workflows.server_replicas,
    )
    for part in ("controller", "server", "executor"):
        if cfg.cluster.image_registry:
            assert given[part]["image"] == {"registry": cfg.cluster.image_registry}
        else:
            assert "image" not in given[part]


def test_namespace_and_chart_pods_are_restricted(stack_run, cfg):
    labels = stack_run.one("Namespace", cfg.namespaces.workflows).inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    upstream = yaml.safe_load((upstream_dir() / "argo-workflows" / "values.yaml").read_text())
    for part in ("controller", "server"):  # the chart's containers comply; the pods add seccomp
        assert values(stack_run)[part]["podSecurityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        container = upstream[part]["securityContext"]
        assert container["runAsNonRoot"] and container["allowPrivilegeEscalation"] is False
        assert container["capabilities"] == {"drop": ["ALL"]}


# --- workflow pods: defaults, executor accounts ---------------------------------------------------------------------


def test_workflow_defaults_give_every_pod_the_executor_account_and_restricted_security(stack_run, cfg):
    given = values(stack_run)
    spec = given["controller"]["workflowDefaults"]["spec"]
    assert spec["serviceAccountName"] == EXECUTOR
    assert spec["podMetadata"]["labels"] == {"sidecar.istio.io/inject": "false"}
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["podGC"]["strategy"] and spec["ttlStrategy"]
    for part in ("executor", "mainContainer"):  # init/wait, and main containers
        assert RESTRICTED_CONTAINER.items() <= given[part]["securityContext"].items()
    resources = given["executor"]["resources"]
    assert resources["requests"] and resources["limits"]
    # The defaults are a Workflow spec: the full CRD accepts them.
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "defaults"},
        "spec": {**spec, "entrypoint": "main", "templates": [{"name": "main", "suspend": {}}]},
    }
    assert validate_object(workflow, cfg.cluster.kubernetes_version) == []


def test_each_tenant_has_a_least_privilege_executor_account(stack_run, cfg):
    store = cfg.object_store
    for tenant in cfg.tenants:
        account = stack_run.one("ServiceAccount", EXECUTOR, tenant.name)
        binding = stack_run.one("RoleBinding", EXECUTOR, tenant.name).inputs
        ref = binding["roleRef"]
        assert ref == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": EXECUTOR_ROLE}
        assert stack_run.one("ClusterRole", EXECUTOR_ROLE).inputs["rules"] == EXECUTOR_RULES
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": EXECUTOR, "namespace": tenant.name}]
        if store.mode == "external" and not store.credentials_secret:  # prod: workload identity, the tenant's role
            own = tenant.object_store.service_account_annotations if tenant.object_store else {}
            assert annotations(account) == (own or store.service_account_annotations)
            assert annotations(account) != store.service_account_annotations  # prod gives each tenant its own
        else:
            assert annotations(account) == {}


# --- artifacts ------------------------------------------------------------------------------------------------------


def test_each_tenant_has_its_artifact_repository_and_no_controller_wide_one(stack_run, cfg):
    given = values(stack_run)
    assert "artifactRepository" not in given and "useStaticCredentials" not in given
    for tenant in cfg.tenants:
        s3 = repository(stack_run, tenant.name)
        if cfg.object_store.mode == "in-cluster":  # dev: the tenant's bucket, with the tenant's keys
            assert s3["bucket"] == cfg.object_store.tenant_bucket(tenant.name) == f"argo-artifacts-{tenant.name}"
            assert (s3["endpoint"], s3["insecure"]) == (f"seaweedfs-s3.{cfg.namespaces.object_store}.svc:8333", True)
            assert s3["accessKeySecret"] == {"name": ARTIFACT_SECRET, "key": "AWS_ACCESS_KEY_ID"}
            assert s3["secretKeySecret"] == {"name": ARTIFACT_SECRET, "key": "AWS_SECRET_ACCESS_KEY"}
            assert "keyFormat" not in s3
            # the executor mounts it from the workflow's namespace; the keys are the tenant's generated pair only
            keys = {
                r.urn
                for r in stack_run.resources
                if r.type == PASSWORD_TYPE and r.name.startswith(f"object-store-{tenant.name}-")
            }
            secret = stack_run.one("Secret", ARTIFACT_SECRET, tenant.name)
            assert secret.inputs["stringData"] == SECRET
            passwords = {r.urn for r in stack_run.resources if r.type == PASSWORD_TYPE}
            assert len(keys) == 2 and set(secret.dependencies) & passwords == keys
            seaweedfs = next(r for r in stack_run.releases if r.inputs["chart"] == "seaweedfs")
            assert {"name": s3["bucket"]} in seaweedfs.inputs["values"]["s3"]["createBuckets"]
        else:  # prod: AWS S3 with workload identity, no keys anywhere; the tenant's prefix of the shared bucket
            assert (s3["bucket"], s3["endpoint"], s3["insecure"], s3["region"]) == (
                cfg.object_store.buckets["workflows"],
                "s3.amazonaws.com",
                False,
                cfg.object_store.region,
            )
            assert s3["keyFormat"] == f"{tenant.name}/{{{{workflow.name}}}}/{{{{pod.name}}}}"
            assert s3["useSDKCreds"] is True and "accessKeySecret" not in s3
    if cfg.object_store.mode == "external":
        assert not [r for r in stack_run.objects if r.k8s_name == ARTIFACT_SECRET]
    else:  # no shared workflows bucket any more
        seaweedfs = next(r for r in stack_run.releases if r.inputs["chart"] == "seaweedfs")
        assert {"name": "argo-artifacts"} not in seaweedfs.inputs["values"]["s3"]["createBuckets"]


def test_external_keys_are_referenced_by_name_and_not_created(sso_keys):
    for tenant in ("research", "product"):
        s3 = repository(sso_keys, tenant)
        assert (s3["bucket"], s3["endpoint"], s3["insecure"], s3["region"], s3["keyFormat"]) == (
            "team-workflows",
            "s3.storage.example.com",
            False,
            "eu-central-1",
            f"{tenant}/{{{{workflow.name}}}}/{{{{pod.name}}}}",
        )
        assert s3["accessKeySecret"] == {"name": "s3-keys", "key": "AWS_ACCESS_KEY_ID"}
        assert "useSDKCreds" not in s3
    # Pulumi secrets: the operator creates s3-keys in each tenant namespace; nothing is registered for it.
    assert not [r for r in sso_keys.objects if r.k8s_name in ("s3-keys", ARTIFACT_SECRET)]
    for tenant in ("research", "product"):
        assert annotations(sso_keys.one("ServiceAccount", EXECUTOR, tenant)) == {}


def test_tenants_reach_the_in_cluster_store_on_its_s3_port_only(stack_run, cfg):
    namespace = cfg.namespaces.object_store
    policies = {p.k8s_name: p.inputs["spec"] for p in stack_run.of_kind("NetworkPolicy") if p.namespace == namespace}
    if cfg.object_store.mode != "in-cluster":
        assert policies == {}
        return
    for tenant in cfg.tenants:
        egress = [
            r
            for r in stack_run.one("NetworkPolicy", "allow-to-shared-services", tenant.name).inputs["spec"]["egress"]
            if r["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
        ]
        assert [(r["to"][0]["podSelector"]["matchLabels"], r["ports"]) for r in egress] == [
            (S3_LABELS, [{"protocol": "TCP", "port": 8333}])
        ]
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    (rule,) = policies["allow-from-tenants"]["ingress"]
    assert policies["allow-from-tenants"]["podSelector"] == {"matchLabels": S3_LABELS}
    assert rule["ports"] == [{"protocol": "TCP", "port": 8333}]
    # MLflow, Milvus, Loki and Tempo keep reaching the gateway, on that port only.
    (rule,) = policies["allow-from-platform-clients"]["ingress"]
    assert rule["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == sorted(
        [
            cfg.namespaces.mlflow,
            cfg.namespaces.milvus,
            *([cfg.namespaces.logs] if cfg.logs.enabled else []),
            *([cfg.namespaces.traces] if cfg.traces.enabled else []),
        ]
    )
    assert rule["ports"] == [{"protocol": "TCP", "port": 8333}]


# --- SSO ------------------------------------------------------------------------------------------------------------


def _check_sso(result, cfg_tenants, namespace, client_secret):
    sso = values(result)["server"]["sso"]
    tokens = [s for s in result.of_kind("Secret") if s.inputs.get("type") == "kubernetes.io/service-account-token"]
    assert sorted(sso["rbac"]["secretWhitelist"]) == sorted({client_secret} | {s.k8s_name for s in tokens})
    login = result.one("ServiceAccount", "workflows-login", namespace)
    assert annotations(login)["workflows.argoproj.io/rbac-rule-precedence"] == "0"
    groups = {g for t in cfg_tenants for g in t.access.developers.groups + t.access.viewers.groups}
    assert all(f'"{g}" in groups' in annotations(login)["workflows.argoproj.io/rbac-rule"] for g in groups)
    assert not [b for b in result.of_kind("RoleBinding") if b.k8s_name == "workflows-login"]  # no rights
    for tenant in cfg_tenants:
        for role, account, precedence in (
            ("developer", "workflows-developer", "2"),
            ("viewer", "workflows-viewer", "1"),
        ):
            groups = getattr(tenant.access, f"{role}s").groups
            found = [a for a in result.of_kind("ServiceAccount") if (a.k8s_name, a.namespace) == (account, tenant.name)]
            if not groups:
                assert found == []
                continue
            rule = annotations(found[0])
            assert rule["workflows.argoproj.io/rbac-rule"] == " || ".join(f'"{g}" in groups' for g in groups)
            assert rule["workflows.argoproj.io/rbac-rule-precedence"] == precedence
            binding = result.one("RoleBinding", account, tenant.name).inputs
            assert binding["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"ai-platform-tenant-{role}",
            }
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": tenant.name}]
            token = result.one("Secret", f"{account}.service-account-token", tenant.name)
            assert annotations(token) == {"kubernetes.io/service-account.name": account}
            assert "stringData" not in token.inputs and "data" not in token.inputs


def test_sso_maps_tenant_groups_to_tenant_service_accounts_in_prod():
    cfg = stack_cfg("prod")
    result = run_stack("prod")
    assert cfg.workflows.auth_mode == "sso"
    _check_sso(result, cfg.tenants, cfg.namespaces.workflows, cfg.workflows.sso.client_secret)
    # Secrets from the store: the SSO client Secret is an ExternalSecret. The release does not wait for it (argo-server
    # restarts until it exists, within the release's 900 s), or the WorkflowTemplates would be a fifth wave.
    client = result.one("ExternalSecret", cfg.workflows.sso.client_secret, cfg.namespaces.workflows)
    assert {d["remoteRef"]["property"] for d in client.inputs["spec"]["data"]} == {"client-id", "client-secret"}
    assert client.urn not in release(result).dependencies and release(result).inputs["timeout"] >= 900


def test_sso_with_pulumi_secrets_expects_the_client_secret_to_exist(sso_keys):
    tenants = stack_cfg("dev").tenants
    _check_sso(sso_keys, tenants, "argo", "argo-oidc")
    assert not [r for r in sso_keys.objects if r.k8s_name == "argo-oidc"]
    assert values(sso_keys)["server"]["authModes"] == ["sso"]


def test_client_mode_has_no_sso_accounts(stack_run, cfg):
    if cfg.workflows.auth_mode != "client":
        pytest.skip("dev only")
    assert not [a for a in stack_run.of_kind("ServiceAccount") if "workflows.argoproj.io/rbac-rule" in annotations(a)]
    assert not [s for s in stack_run.of_kind("Secret") if s.inputs.get("type") == "kubernetes.io/service-account-token"]


# --- the pipeline ---------------------------------------------------------------------------------------------------


def test_each_pipeline_is_a_workflow_template_of_the_seeds_chain(stack_run, cfg):
    assert cfg.workflows.pipelines
    for pipeline in cfg.workflows.pipelines:
        template = stack_run.one("WorkflowTemplate", pipeline.name, pipeline.tenant)
        assert release(stack_run).urn in template.dependencies
        spec = template.inputs["spec"]
        by_name = templates(stack_run, cfg, pipeline)
        (main,) = [t for t in spec["templates"] if t["name"] == spec["entrypoint"]]
        assert [[step["name"] for step in group] for group in main["steps"]] == [[name] for name in STEPS]
        steps = {group[0]["name"]: group[0] for group in main["steps"]}
        assert steps["deploy"]["when"] == (
            "{{steps.evaluate.outputs.parameters.metric}} >= {{workflow.parameters.threshold}}"
        )
        assert all("when" not in steps[name] for name in STEPS[:-1])
        parameters = {p["name"]: p for p in spec["arguments"]["parameters"]}
        assert float(parameters["threshold"]["value"]) == pipeline.threshold
        assert "value" not in parameters["image"] and "value" not in parameters["dataset-uri"]  # given at submit
        assert parameters["model-name"]["value"] == pipeline.name
        # evaluate writes the configured metric as an output parameter; register gets it
        evaluate = by_name["evaluate"]
        assert evaluate["outputs"]["parameters"][0]["name"] == "metric"
        assert evaluate["container"]["args"][evaluate["container"]["args"].index("--metric") + 1] == pipeline.metric
        assert steps["register"]["arguments"]["parameters"] == [
            {"name": "metric", "value": "{{steps.evaluate.outputs.parameters.metric}}"}
        ]


def test_register_step_uses_the_pinned_mlflow_client_and_the_in_cluster_server(stack_run, cfg):
    image = versions.MLFLOW_IMAGE
    if cfg.cluster.image_registry:
        image = f"{cfg.cluster.image_registry}/{image.split('/', 1)[1]}"
    for pipeline in cfg.workflows.pipelines:
        script = templates(stack_run, cfg, pipeline)["register"]["script"]
        assert script["image"] == image and "latest" not in image
        env = {e["name"]: e.get("value") for e in script["env"]}
        assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow.{cfg.namespaces.mlflow}.svc:5000"
        assert env["METRIC_NAME"] == pipeline.metric
        assert "mlflow.register_model(" in script["source"]


def test_register_step_logs_in_with_the_tenants_own_mlflow_account(stack_run, cfg):
    """MLflow's auth is on: the step takes the tenant's account from the tenant's mlflow-credentials Secret (which
    exists in that namespace), by secretKeyRef, never as a value."""
    credentials = "mlflow-credentials"
    for pipeline in cfg.workflows.pipelines:
        env = {e["name"]: e for e in templates(stack_run, cfg, pipeline)["register"]["script"]["env"]}
        for variable in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            assert env[variable] == {
                "name": variable,
                "valueFrom": {"secretKeyRef": {"name": credentials, "key": variable}},
            }
        if cfg.secrets.source == "external-secrets":  # prod: the keys are visible in the template
            data = stack_run.one("ExternalSecret", credentials, pipeline.tenant).inputs["spec"]["target"]["template"]
            assert {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= set(data["data"])
            assert data["data"]["MLFLOW_TRACKING_USERNAME"] == f"tenant-{pipeline.tenant}"
        else:  # dev: the values are secret (keys checked in tests/test_service_accounts.py)
            assert stack_run.one("Secret", credentials, pipeline.tenant).inputs["stringData"] == SECRET


def test_deploy_step_applies_a_valid_inference_service_in_the_tenant_namespace(stack_run, cfg):
    for pipeline in cfg.workflows.pipelines:
        deploy = templates(stack_run, cfg, pipeline)["deploy"]
        assert deploy["resource"]["action"] == "apply" and "container" not in deploy  # no kubectl image
        manifest = yaml.safe_load(deploy["resource"]["manifest"])
        assert (manifest["apiVersion"], manifest["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
        assert "namespace" not in manifest["metadata"]  # Argo applies it in the workflow's (tenant) namespace
        assert manifest["metadata"]["labels"]["ai-platform/tenant"] == pipeline.tenant
        filled = yaml.safe_load(
            deploy["resource"]["manifest"]
            .replace("{{workflow.parameters.model-name}}", "model")
            .replace("{{workflow.parameters.model-format}}", "sklearn")
            .replace("{{inputs.parameters.model-uri}}", "s3://bucket/model.tar.gz")
        )
        assert validate_object(filled, cfg.cluster.kubernetes_version) == []


def test_register_step_uploads_the_model_to_the_tenants_own_storage(stack_run, cfg, tmp_path):
    """Run the script: it uploads the archive to the tenant's bucket (or prefix) with the tenant's keys (or the
    executor's identity) and writes that s3:// URI as the model-uri output, which the deploy step serves."""
    for pipeline in cfg.workflows.pipelines:
        by_name = templates(stack_run, cfg, pipeline)
        register = by_name["register"]
        bucket, prefix, endpoint, keys = expected_model_store(cfg, pipeline.tenant)
        upload, uri, refs = run_register_script(register, tmp_path / f"{pipeline.tenant}-{pipeline.name}")
        key = f"{prefix}models/iris/run0123/model.tar.gz"
        assert upload == {"endpoint_url": endpoint, "bucket": bucket, "key": key, "exists": True}
        assert uri == f"s3://{bucket}/{key}"
        aws = {name: ref for name, ref in refs.items() if name.startswith("AWS_")}
        if keys:  # dev: the tenant identity's keys in its namespace, by reference only
            assert aws == {key: {"name": keys, "key": key} for key in KEYS}
        else:  # prod: no key at all, the SDK takes the executor's workload identity
            assert aws == {}
        env = {e["name"]: e for e in register["script"]["env"]}
        assert all("value" not in env[key] for key in aws)
        # the output the deploy step gets is the file the script wrote
        assert register["outputs"]["parameters"] == [{"name": "model-uri", "valueFrom": {"path": "/work/model-uri"}}]
        manifest = yaml.safe_load(by_name["deploy"]["resource"]["manifest"])
        assert manifest["spec"]["predictor"]["model"]["storageUri"] == "{{inputs.parameters.model-uri}}"
        steps = {group[0]["name"]: group[0] for group in by_name["pipeline"]["steps"]}
        assert steps["deploy"]["arguments"]["parameters"] == [
            {"name": "model-uri", "value": "{{steps.register.outputs.parameters.model-uri}}"}
        ]


def test_deployed_models_are_read_as_the_tenants_model_reader(stack_run, cfg):
    """The InferenceService runs as the tenant's model-reader, which has no rights and no token and gives KServe's
    storage initializer the tenant's own credentials and S3 settings, never another tenant's or the platform's."""
    store = cfg.object_store
    for pipeline in cfg.workflows.pipelines:
        predictor = yaml.safe_load(templates(stack_run, cfg, pipeline)["deploy"]["resource"]["manifest"])["spec"][
            "predictor"
        ]
        assert predictor["serviceAccountName"] == READER
        assert predictor["labels"] == {"ai-platform/role": "pipeline-model"}
    passwords = {r.name: r.urn for r in stack_run.resources if r.type == PASSWORD_TYPE}
    for tenant in cfg.tenants:
        account = stack_run.one("ServiceAccount", READER, tenant.name)
        assert account.inputs["automountServiceAccountToken"] is False
        assert not [
            b
            for b in stack_run.of_kind("RoleBinding")
            if {"kind": "ServiceAccount", "name": READER, "namespace": tenant.name} in b.inputs["subjects"]
        ]
        if store.mode == "in-cluster":  # dev: a Secret of the tenant identity's keys, annotated with the gateway
            assert account.inputs["secrets"] == [{"name": READER_SECRET}] and annotations(account) == {}
            secret = stack_run.one("Secret", READER_SECRET, tenant.name)
            assert annotations(secret) == {
                S3_ENDPOINT: f"seaweedfs-s3.{cfg.namespaces.object_store}.svc:8333",
                S3_USE_HTTPS: "0",
                S3_REGION: store.region,
            }
            assert secret.inputs["stringData"] == SECRET
            own = {passwords[f"object-store-{tenant.name}-{key}"] for key in ("access-key-id", "secret-access-key")}
            assert set(secret.dependencies) & set(passwords.values()) == own
        else:  # prod: the tenant's own role (IRSA) and the region on the account; no Secret
            assert "secrets" not in account.inputs or not account.inputs["secrets"]
            assert annotations(account) == {**tenant.object_store.service_account_annotations, S3_REGION: store.region}
            assert "eks.amazonaws.com/role-arn" in annotations(account)
            assert annotations(account)["eks.amazonaws.com/role-arn"] != store.service_account_annotations.get(
                "eks.amazonaws.com/role-arn"
            )
            # its pods (and only they, of the models) may reach S3 on 443; the policy selects the predictor's labels
            policy = stack_run.one("NetworkPolicy", "allow-pipeline-model-https", tenant.name).inputs["spec"]
            assert policy["podSelector"] == {"matchLabels": {"ai-platform/role": "pipeline-model"}}
            assert policy["egress"][0]["ports"] == [{"protocol": "TCP", "port": 443}]
    if store.mode == "in-cluster":
        assert not [p for p in stack_run.of_kind("NetworkPolicy") if p.k8s_name == "allow-pipeline-model-https"]
    dumped = json.dumps([r.inputs for r in stack_run.resources]) + json.dumps(stack_run.outputs, default=str)
    assert CANARY not in dumped and "generated-" not in dumped


def test_reader_secret_from_the_store_names_the_tenant_identitys_keys(dev_external):
    cfg = stack_cfg("dev")
    for tenant in cfg.tenants:
        spec = dev_external.one("ExternalSecret", READER_SECRET, tenant.name).inputs["spec"]
        assert {(d["remoteRef"]["key"], d["remoteRef"]["property"]) for d in spec["data"]} == {
            (f"ai-platform/dev/object-store-tenant-{tenant.name}", key) for key in KEYS
        }
        template = spec["target"]["template"]
        assert set(template["data"]) == set(KEYS)
        assert template["metadata"]["annotations"] == {
            S3_ENDPOINT: f"seaweedfs-s3.{cfg.namespaces.object_store}.svc:8333",
            S3_USE_HTTPS: "0",
            S3_REGION: cfg.object_store.region,
        }
        account = dev_external.one("ServiceAccount", READER, tenant.name)
        assert account.inputs["secrets"] == [{"name": READER_SECRET}]


def test_reader_with_an_existing_keys_secret_lists_it(sso_keys):
    """External store with keys in an operator-made Secret (Pulumi secrets): the reader lists that Secret, the
    register step uploads to the tenant's prefix at the custom endpoint with it; nothing is created for it."""
    for tenant in ("research", "product"):
        account = sso_keys.one("ServiceAccount", READER, tenant)
        assert account.inputs["secrets"] == [{"name": "s3-keys"}] and annotations(account) == {}
        assert sso_keys.one("NetworkPolicy", "allow-pipeline-model-https", tenant)
    assert not [r for r in sso_keys.objects if r.k8s_name in ("s3-keys", READER_SECRET)]
    (pipeline,) = [t for t in sso_keys.of_kind("WorkflowTemplate") if t.namespace == "research"]
    register = {t["name"]: t for t in pipeline.inputs["spec"]["templates"]}["register"]
    env = {e["name"]: e for e in register["script"]["env"]}
    assert (env["MODEL_BUCKET"]["value"], env["MODEL_PREFIX"]["value"], env["S3_ENDPOINT_URL"]["value"]) == (
        "team-workflows",
        "research/",
        "https://s3.storage.example.com",
    )
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {"secretKeyRef": {"name": "s3-keys", "key": "AWS_ACCESS_KEY_ID"}}


def test_only_the_train_step_asks_for_gpus_in_the_tenants_queue(stack_run, cfg):
    for pipeline in cfg.workflows.pipelines:
        tenant = cfg.tenant(pipeline.tenant)
        by_name = templates(stack_run, cfg, pipeline)
        train = by_name["train"]
        assert train["schedulerName"] == "volcano"
        assert train["metadata"]["annotations"] == {"scheduling.volcano.sh/queue-name": pipeline.tenant}
        resources = train["container"]["resources"]
        assert resources["requests"] == resources["limits"]
        assert (resources["limits"]["cpu"], resources["limits"]["memory"]) == (
            pipeline.resources.cpu,
            pipeline.resources.memory,
        )
        gpu_resource = cfg.gpu.resource_for(pipeline.gpu.mig_profile)
        assert resources["limits"][gpu_resource] == str(pipeline.gpu.count)
        assert GPU_TOLERATION in train["tolerations"]
        terms = train["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"]
        assert {"name": "dshm", "emptyDir": {"medium": "Memory"}} in train["volumes"]
        assert {"name": "dshm", "mountPath": "/dev/shm"} in train["container"]["volumeMounts"]
        if tenant.gpu_isolation == "exclusive" and pipeline.gpu.model == "A100-80GB":  # prod research
            pools = terms["nodeSelectorTerms"][0]["matchExpressions"][0]
            assert (pools["key"], pools["values"]) == (POOL_LABEL, ["a100"])
        for name, other in by_name.items():
            if name == "train":
                continue
            assert "tolerations" not in other and "schedulerName" not in other and "affinity" not in other
            body = other.get("container") or other.get("script") or {}
            assert not [r for kind in body.get("resources", {}).values() for r in kind if "nvidia.com" in r]


@pytest.mark.invariant
def test_every_pipeline_container_is_restricted(stack_run, cfg):
    for pipeline in cfg.workflows.pipelines:
        for name, template in templates(stack_run, cfg, pipeline).items():
            body = template.get("container") or template.get("script")
            if body:  # steps and resource templates have no container of ours
                assert RESTRICTED_CONTAINER.items() <= body["securityContext"].items(), name


# --- off ------------------------------------------------------------------------------------------------------------


def test_workflows_off_removes_everything_it_owns(workflows_off):
    assert not [r for r in workflows_off.resources if r.type == COMPONENT_TYPE]
    assert not [r for r in workflows_off.releases if r.inputs["chart"] == "argo-workflows"]
    assert ours(workflows_off) == []
    assert not workflows_off.of_kind("WorkflowTemplate")
    assert not [r for r in workflows_off.objects if r.k8s_name in ("argo", EXECUTOR, ARTIFACT_SECRET)]
    for role in workflows_off.of_kind("Role") + workflows_off.of_kind("ClusterRole"):
        assert not [r for r in role.inputs["rules"] if r["apiGroups"] == ["argoproj.io"]]
    names = {p.k8s_name for p in workflows_off.of_kind("NetworkPolicy")}
    assert "allow-kube-apiserver" not in names and "allow-from-platform-clients" not in names
    assert not [p for p in workflows_off.of_kind("NetworkPolicy") if p.namespace == "object-store"]
    seaweedfs = next(r for r in workflows_off.releases if r.inputs["chart"] == "seaweedfs")
    assert {"name": "argo-artifacts"} not in seaweedfs.inputs["values"]["s3"]["createBuckets"]


def test_dev_registers_what_the_off_run_does_not(stack_run, cfg, workflows_off):
    """Not vacuous: the same stack with workflows on has the objects the off run lacks."""
    if cfg.workflows.auth_mode != "client":
        pytest.skip("dev only")
    assert ours(stack_run) and stack_run.of_kind("WorkflowTemplate")
    assert [r for r in stack_run.objects if r.k8s_name == EXECUTOR]
