"""MLflow and the in-cluster object store: backend and artifact wiring per stack, generated credentials that only
reach the cluster as Secrets referenced by name, the CloudNativePG Cluster, Pod Security, monitors, switching off."""

import json
import re

import pytest
import yaml

from components import mlflow as mlflow_module
from components import mlflow_auth, objectstore
from config import versions
from tests.conftest import run_stack, run_with
from tools.harness import SECRET
from tools.validate import upstream_dir, validate_helm_values, validate_object

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
MLFLOW_TYPE = "ai-platform:mlflow:Mlflow"
STORE_TYPE = "ai-platform:objectstore:ObjectStore"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
# A URI with credentials in it: scheme://user:password@host.
URI_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")


def release(result, name):
    found = [r for r in result.releases if r.inputs["name"] == name]
    assert len(found) == 1, f"expected one release {name}, found {len(found)}"
    return found[0]


def releases_named(result, name):
    return [r for r in result.releases if r.inputs["name"] == name]


def component(result, type_):
    found = [r for r in result.resources if r.type == type_]
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0]


def server(result, cfg):
    return result.one("Deployment", "mlflow", cfg.namespaces.mlflow)


def container(result, cfg):
    (only,) = server(result, cfg).inputs["spec"]["template"]["spec"]["containers"]
    return only


def env(result, cfg) -> dict[str, dict]:
    return {e["name"]: e for e in container(result, cfg)["env"]}


def arg(result, cfg, flag: str) -> str:
    args = container(result, cfg)["args"]
    return args[args.index(flag) + 1]


def secret_ref(entry: dict) -> tuple[str, str]:
    ref = entry["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def pod_specs(result):
    for obj in result.objects:
        spec = obj.inputs.get("spec") or {}
        template = (spec.get("jobTemplate") or {}).get("spec", spec).get("template") or {}
        if template.get("spec"):
            yield obj, template["spec"]


@pytest.fixture(scope="module")
def mlflow_off():
    """MLflow off, Milvus on: the object store stays for Milvus."""
    return run_with(mlflow={"enabled": False}, workflows={"enabled": False})


@pytest.fixture(scope="module")
def ml_services_off():
    return run_with(
        mlflow={"enabled": False},
        milvus={"enabled": False},
        workflows={"enabled": False},
        logs={"enabled": False},
        traces={"enabled": False},
    )


@pytest.fixture(scope="module")
def external_keys():
    """External S3 with an endpoint and a credentials Secret, external database, no monitoring, three replicas."""
    return run_with(
        objectStore={
            "mode": "external",
            "endpoint": "https://s3.storage.example.com",
            "region": "eu-central-1",
            "mlflowBucket": "team-mlflow",
            "milvusBucket": "team-milvus",
            "lokiBucket": "team-loki",
            "tempoBucket": "team-tempo",
            "credentialsSecret": "s3-keys",
        },
        mlflow={
            "replicas": 3,
            "database": {
                "mode": "external",
                "host": "pg.example.internal",
                "port": 6432,
                "name": "tracking",
                "user": "tracker",
                "passwordSecret": "pg-pass",
            },
        },
        monitoring={"enabled": False},
        milvus={"enabled": False},
        workflows={"enabled": False},
    )


# --- secrets: generated values reach the cluster only as Secrets ---------------------------------------------------


@pytest.mark.invariant
def test_generated_values_never_appear_in_clear(stack_run):
    """The harness returns RandomPassword results as 'generated-<name>', marked secret: outside a Secret's
    [secret]-shown data they must not appear in any registered input or stack output."""
    dumped = json.dumps([r.inputs for r in stack_run.resources], sort_keys=True) + json.dumps(stack_run.outputs)
    assert "generated-" not in dumped


@pytest.mark.invariant
def test_secret_values_sit_only_in_secret_objects(stack_run):
    """A secret Output in an env value, an argument or a Helm value would show as [secret] there: it would be in
    clear in that object on the cluster. Only Secrets (and the password resources themselves) may hold one."""
    holders = [
        r
        for r in stack_run.resources
        if r.type not in (PASSWORD_TYPE, "kubernetes:core/v1:Secret") and SECRET in json.dumps(r.inputs)
    ]
    assert [r.name for r in holders] == []


def test_generated_secrets_are_recorded_as_secret_in_dev(stack_run, cfg):
    """Not vacuous: dev generates four passwords (S3 key pair, Postgres app user, Grafana) and their Secrets carry
    them, shown as [secret]."""
    if cfg.object_store.mode != "in-cluster" or cfg.mlflow.database.mode != "in-cluster":
        pytest.skip("dev only")
    names = {r.name for r in stack_run.resources if r.type == PASSWORD_TYPE}
    assert {"object-store-access-key-id", "object-store-secret-access-key", "mlflow-db-password"} <= names
    for name, namespace in (
        (objectstore.CONFIG_SECRET, cfg.namespaces.object_store),
        (mlflow_module.DB_APP_SECRET, cfg.namespaces.mlflow),
        (mlflow_module.S3_SECRET, cfg.namespaces.mlflow),
    ):
        secret = stack_run.one("Secret", name, namespace)
        assert secret.inputs["stringData"] == SECRET, name
        assert "data" not in secret.inputs


@pytest.mark.invariant
def test_no_uri_with_a_password_in_any_env_value_or_argument(stack_run):
    found = []
    for obj, spec in pod_specs(stack_run):
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            texts = [*c.get("args", []), *c.get("command", []), *(e.get("value", "") for e in c.get("env", []))]
            found += [(obj.k8s_name, t) for t in texts if isinstance(t, str) and URI_WITH_PASSWORD.search(t)]
    assert found == []
    assert URI_WITH_PASSWORD.search("postgresql://mlflow:s3cret@db:5432/mlflow")  # the pattern does match one


@pytest.mark.invariant
def test_backend_store_uri_carries_no_credentials(stack_run, cfg):
    uri = arg(stack_run, cfg, "--backend-store-uri")
    assert "@" not in uri and "$(" not in uri
    database = cfg.mlflow.database
    host = f"mlflow-db-rw.{cfg.namespaces.mlflow}.svc" if database.mode == "in-cluster" else database.host
    assert uri == f"postgresql+psycopg2://{host}:{database.port}/{database.name}"
    variables = env(stack_run, cfg)
    assert "valueFrom" in variables["PGPASSWORD"] and "value" not in variables["PGPASSWORD"]


@pytest.mark.invariant
def test_helm_values_of_the_ml_releases_carry_no_secret(stack_run):
    for name in ("seaweedfs", "cloudnative-pg"):
        for found in releases_named(stack_run, name):
            dumped = json.dumps(found.inputs["values"])
            assert SECRET not in dumped and "generated-" not in dumped
            assert not re.search(r"(?i)(password|secretKey|accessKey)\"\s*:", dumped), name


# --- backend store ---------------------------------------------------------------------------------------------------


def test_backend_store_per_stack(stack_run, cfg):
    database = cfg.mlflow.database
    clusters = stack_run.of_kind("Cluster")
    variables = env(stack_run, cfg)
    if database.mode == "in-cluster":
        assert len(clusters) == 1
        secret = stack_run.one("Secret", mlflow_module.DB_APP_SECRET, cfg.namespaces.mlflow)
        assert secret.inputs["type"] == "kubernetes.io/basic-auth"
        assert secret_ref(variables["PGPASSWORD"]) == (secret.k8s_name, "password")
        assert secret_ref(variables["PGUSER"]) == (secret.k8s_name, "username")
    else:
        assert clusters == [] and releases_named(stack_run, "cloudnative-pg") == []
        assert not [r for r in stack_run.resources if r.type == PASSWORD_TYPE and r.name.startswith("mlflow")]
        assert secret_ref(variables["PGPASSWORD"]) == (database.password_secret, "password")
        assert variables["PGUSER"] == {"name": "PGUSER", "value": database.user}
        assert [s for s in stack_run.of_kind("Secret") if s.namespace == cfg.namespaces.mlflow] == []


def test_cnpg_cluster_from_config_depends_on_the_operator_and_validates(stack_run, cfg):
    database = cfg.mlflow.database
    if database.mode != "in-cluster":
        pytest.skip("external database")
    cluster = stack_run.one("Cluster", mlflow_module.DB_CLUSTER, cfg.namespaces.mlflow)
    assert cluster.inputs["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster.inputs["spec"]
    assert spec["instances"] == database.instances
    assert spec["storage"]["size"] == database.size
    assert ("storageClass" in spec["storage"]) == bool(database.storage_class)
    assert spec["imageName"] == versions.POSTGRES_IMAGE
    assert re.fullmatch(r"ghcr\.io/cloudnative-pg/postgresql:1[78]\.\d+-standard-trixie", versions.POSTGRES_IMAGE)
    assert spec["bootstrap"]["initdb"] == {
        "database": database.name,
        "owner": database.user,
        "secret": {"name": mlflow_module.DB_APP_SECRET},
    }
    assert spec["enableSuperuserAccess"] is False
    operator = release(stack_run, "cloudnative-pg")
    assert operator.urn in cluster.dependencies
    assert stack_run.one("Secret", mlflow_module.DB_APP_SECRET, cfg.namespaces.mlflow).urn in cluster.dependencies
    assert validate_object(cluster.inputs, cfg.cluster.kubernetes_version) == []
    bad = json.loads(json.dumps(cluster.inputs))
    bad["spec"]["bootstrap"]["initdb"]["ownr"] = "x"
    assert validate_object(bad, cfg.cluster.kubernetes_version)  # the CRD check is not vacuous


def test_cnpg_operator_release(stack_run, cfg):
    if cfg.mlflow.database.mode != "in-cluster":
        pytest.skip("external database")
    operator = release(stack_run, "cloudnative-pg")
    chart = versions.CLOUDNATIVE_PG
    assert (operator.inputs["chart"], operator.inputs["version"]) == (chart.name, chart.version)
    assert operator.inputs["repositoryOpts"] == {"repo": chart.repo}
    assert operator.inputs["namespace"] == cfg.namespaces.cnpg
    assert operator.inputs["values"]["crds"] == {"create": True}
    assert validate_helm_values("cloudnative-pg", operator.inputs["values"]) == []
    namespace = stack_run.one("Namespace", cfg.namespaces.cnpg)
    assert namespace.urn in operator.dependencies
    assert RESTRICTED.items() <= namespace.inputs["metadata"]["labels"].items()
    # Why restricted holds: the chart's operator pod is non-root with RuntimeDefault seccomp and drops everything.
    upstream = yaml.safe_load((upstream_dir() / "cloudnative-pg" / "values.yaml").read_text())
    assert upstream["podSecurityContext"]["runAsNonRoot"] is True
    assert upstream["containerSecurityContext"]["capabilities"]["drop"] == ["ALL"]
    assert upstream["containerSecurityContext"]["allowPrivilegeEscalation"] is False


# --- artifacts -------------------------------------------------------------------------------------------------------


def test_artifacts_per_stack(stack_run, cfg):
    store = cfg.object_store
    variables = env(stack_run, cfg)
    assert arg(stack_run, cfg, "--artifacts-destination") == f"s3://{store.buckets['mlflow']}"
    assert "--serve-artifacts" in container(stack_run, cfg)["args"]
    assert variables["AWS_DEFAULT_REGION"]["value"] == store.region
    account = stack_run.one("ServiceAccount", mlflow_module.SERVICE_ACCOUNT, cfg.namespaces.mlflow)
    assert server(stack_run, cfg).inputs["spec"]["template"]["spec"]["serviceAccountName"] == account.k8s_name
    if store.mode == "in-cluster":
        copy = stack_run.one("Secret", mlflow_module.S3_SECRET, cfg.namespaces.mlflow)
        assert secret_ref(variables["AWS_ACCESS_KEY_ID"]) == (copy.k8s_name, "AWS_ACCESS_KEY_ID")
        assert secret_ref(variables["AWS_SECRET_ACCESS_KEY"]) == (copy.k8s_name, "AWS_SECRET_ACCESS_KEY")
        assert variables["MLFLOW_S3_ENDPOINT_URL"]["value"] == objectstore.s3_endpoint(cfg.namespaces.object_store)
        keys = [r for r in stack_run.resources if r.type == PASSWORD_TYPE and r.name.startswith("object-store")]
        platform = [k for k in keys if k.name in ("object-store-access-key-id", "object-store-secret-access-key")]
        assert len(platform) == 2 and {k.urn for k in keys} & set(copy.dependencies) == {k.urn for k in platform}
        assert "annotations" not in account.inputs["metadata"]
    else:  # prod: workload identity, AWS S3
        assert store.service_account_annotations and not store.credentials_secret
        assert account.inputs["metadata"]["annotations"] == store.service_account_annotations
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"} & variables.keys()
        assert not [r for r in stack_run.resources if r.type == STORE_TYPE]
        assert releases_named(stack_run, "seaweedfs") == []


def test_external_credentials_secret_and_endpoint(external_keys):
    ns = "mlflow"
    variables = {
        e["name"]: e
        for e in external_keys.one("Deployment", "mlflow", ns).inputs["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert secret_ref(variables["AWS_ACCESS_KEY_ID"]) == ("s3-keys", "AWS_ACCESS_KEY_ID")
    assert secret_ref(variables["AWS_SECRET_ACCESS_KEY"]) == ("s3-keys", "AWS_SECRET_ACCESS_KEY")
    assert variables["MLFLOW_S3_ENDPOINT_URL"]["value"] == "https://s3.storage.example.com"
    assert variables["AWS_DEFAULT_REGION"]["value"] == "eu-central-1"
    assert secret_ref(variables["PGPASSWORD"]) == ("pg-pass", "password")
    assert variables["PGUSER"]["value"] == "tracker"
    args = external_keys.one("Deployment", "mlflow", ns).inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--backend-store-uri") + 1] == "postgresql+psycopg2://pg.example.internal:6432/tracking"
    assert args[args.index("--artifacts-destination") + 1] == "s3://team-mlflow"
    assert not [r for r in external_keys.resources if r.type == STORE_TYPE or r.name.startswith("object-store")]
    # No database or S3 password of ours: only the auth app's (admin, Flask key) and the accounts' are generated.
    passwords = {r.name for r in external_keys.resources if r.type == PASSWORD_TYPE and r.name.startswith("mlflow")}
    assert passwords == {
        "mlflow-admin-password",
        "mlflow-flask-secret-key",
        "mlflow-research-password",
        "mlflow-product-password",
    }
    assert {s.k8s_name for s in external_keys.of_kind("Secret") if s.namespace == ns} == {
        mlflow_auth.AUTH_SECRET,
        mlflow_auth.ACCOUNTS_SECRET,
    }
    assert external_keys.of_kind("PodMonitor") == []  # monitoring is off
    assert external_keys.one("PodDisruptionBudget", "mlflow", ns).inputs["spec"]["maxUnavailable"] == 1


# --- object store ----------------------------------------------------------------------------------------------------


def test_object_store_release_and_credentials(stack_run, cfg):
    store = cfg.object_store
    if store.mode != "in-cluster":
        pytest.skip("external object store")
    found = release(stack_run, "seaweedfs")
    chart = versions.SEAWEEDFS
    assert (found.inputs["chart"], found.inputs["version"]) == (chart.name, chart.version)
    assert found.inputs["namespace"] == cfg.namespaces.object_store
    values = found.inputs["values"]
    s3 = values["s3"]
    assert s3["enabled"] is True and s3["enableAuth"] is True and s3["port"] == objectstore.S3_PORT
    secret = stack_run.one("Secret", s3["existingConfigSecret"], cfg.namespaces.object_store)
    # Not waited for: the S3 gateway mounts it and the kubelet retries the mount (Milvus waits for this release).
    assert secret.urn not in found.dependencies
    # MLflow's, Milvus's, Loki's and Tempo's; the workflows' artifacts in one bucket per tenant
    # (tests/test_tenant_isolation_services.py)
    assert sorted(b["name"] for b in s3["createBuckets"]) == sorted(
        {store.buckets["mlflow"], store.buckets["milvus"]}
        | ({store.buckets["logs"]} if cfg.logs.enabled else set())
        | ({store.buckets["traces"]} if cfg.traces.enabled else set())
        | {store.tenant_bucket(t.name) for t in cfg.tenants}
    )
    assert values["volume"]["dataDirs"][0]["size"] == store.size
    assert values["volume"]["dataDirs"][0]["type"] == "persistentVolumeClaim"
    assert ("storageClass" in values["volume"]["dataDirs"][0]) == bool(store.storage_class)
    for name in objectstore.COMPONENTS:
        assert values[name]["replicas"] == 1
    assert validate_helm_values("seaweedfs", values) == []
    # The Service and selector labels the endpoint and NetworkPolicies rely on: the chart's fullname is the release.
    upstream = yaml.safe_load((upstream_dir() / "seaweedfs" / "values.yaml").read_text())
    assert upstream["s3"]["port"] == objectstore.S3_PORT and found.inputs["name"] == chart.name
    assert objectstore.S3_POD_LABELS == {
        "app.kubernetes.io/name": "seaweedfs",
        "app.kubernetes.io/instance": found.inputs["name"],
        "app.kubernetes.io/component": "s3",
    }


def test_object_store_pods_need_no_host_access(stack_run, cfg):
    """restricted forbids hostPath: every data and log volume is a PVC or an emptyDir, every component runs
    non-root with RuntimeDefault seccomp and no capabilities."""
    if cfg.object_store.mode != "in-cluster":
        pytest.skip("external object store")
    namespace = stack_run.one("Namespace", cfg.namespaces.object_store)
    assert RESTRICTED.items() <= namespace.inputs["metadata"]["labels"].items()
    values = release(stack_run, "seaweedfs").inputs["values"]
    upstream = yaml.safe_load((upstream_dir() / "seaweedfs" / "values.yaml").read_text())
    for name in objectstore.COMPONENTS:
        for volume in ("data", "logs"):
            if volume in upstream[name] and (upstream[name][volume] or {}).get("type") == "hostPath":
                assert values[name][volume]["type"] in ("persistentVolumeClaim", "emptyDir"), (name, volume)
        pod, box = values[name]["podSecurityContext"], values[name]["containerSecurityContext"]
        assert pod["enabled"] and pod["runAsNonRoot"] and pod["runAsUser"] > 0
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert box["enabled"] and box["allowPrivilegeEscalation"] is False and box["capabilities"] == {"drop": ["ALL"]}
    assert all(d["type"] != "hostPath" for d in values["volume"]["dataDirs"])
    assert values["volume"]["resizeHook"] == {"enabled": False}


# --- tracking server -------------------------------------------------------------------------------------------------


def test_server_deployment(stack_run, cfg):
    deployment = server(stack_run, cfg)
    spec = deployment.inputs["spec"]
    assert spec["replicas"] == cfg.mlflow.replicas
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"] == mlflow_module.SERVER_POD_LABELS
    assert mlflow_module.SERVER_POD_LABELS.items() <= spec["template"]["metadata"]["labels"].items()
    c = container(stack_run, cfg)
    image = versions.MLFLOW_IMAGE
    assert image == "ghcr.io/mlflow/mlflow:v3.18.0-full"
    if cfg.cluster.image_registry:
        assert c["image"] == f"{cfg.cluster.image_registry}/mlflow/mlflow:v3.18.0-full"
    else:
        assert c["image"] == image
    resources = {"cpu": cfg.mlflow.resources.cpu, "memory": cfg.mlflow.resources.memory}
    assert c["resources"] == {"requests": resources, "limits": resources}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}]
    assert "--expose-prometheus" in c["args"]
    hosts = env(stack_run, cfg)["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].split(",")
    assert f"mlflow.{cfg.namespaces.mlflow}.svc:*" in hosts and "10.*" in hosts
    # restricted: non-root, RuntimeDefault, no escalation, no capabilities.
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    namespace = stack_run.one("Namespace", cfg.namespaces.mlflow)
    assert RESTRICTED.items() <= namespace.inputs["metadata"]["labels"].items()
    assert component(stack_run, MLFLOW_TYPE).urn == deployment.parent


def test_service_and_url(stack_run, cfg):
    service = stack_run.one("Service", "mlflow", cfg.namespaces.mlflow)
    assert service.inputs["spec"]["selector"] == mlflow_module.SERVER_POD_LABELS
    assert service.inputs["spec"]["ports"] == [{"name": "http", "port": 5000, "targetPort": "http", "protocol": "TCP"}]
    assert mlflow_module.server_url(cfg.namespaces.mlflow) == (
        f"http://{service.k8s_name}.{service.namespace}.svc:{mlflow_module.PORT}"
    )
    assert mlflow_module.PORT == 5000


def test_disruption_budget_only_with_more_than_one_replica(stack_run, cfg):
    budgets = [b for b in stack_run.of_kind("PodDisruptionBudget") if b.namespace == cfg.namespaces.mlflow]
    assert len(budgets) == (1 if cfg.mlflow.replicas > 1 else 0)


def test_monitors_wait_for_the_monitoring_release(stack_run, cfg):
    monitors = {m.k8s_name: m for m in stack_run.of_kind("PodMonitor") if m.namespace == cfg.namespaces.mlflow}
    expected = {"mlflow"} | ({mlflow_module.DB_CLUSTER} if cfg.mlflow.database.mode == "in-cluster" else set())
    assert set(monitors) == expected
    monitoring = release(stack_run, "kube-prometheus-stack")
    for monitor in monitors.values():
        assert monitoring.urn in monitor.dependencies
        assert monitor.inputs["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ai-platform"
    endpoint = monitors["mlflow"].inputs["spec"]
    assert endpoint["selector"]["matchLabels"] == mlflow_module.SERVER_POD_LABELS
    # The auth app protects /metrics: Prometheus logs in with the account in mlflow-metrics (basic-auth Secret).
    metrics = mlflow_auth.METRICS_SECRET
    assert endpoint["podMetricsEndpoints"] == [
        {
            "port": "http",
            "path": "/metrics",
            "scheme": "http",
            "basicAuth": {
                "username": {"name": metrics, "key": "username"},
                "password": {"name": metrics, "key": "password"},
            },
        }
    ]
    kind = "ExternalSecret" if cfg.secrets.source == "external-secrets" else "Secret"
    assert stack_run.one(kind, metrics, cfg.namespaces.mlflow).urn in monitors["mlflow"].dependencies


@pytest.mark.invariant
def test_every_ml_object_validates(stack_run, cfg):
    ours = [r for r in stack_run.objects if r.namespace in (cfg.namespaces.mlflow, cfg.namespaces.object_store)]
    assert ours
    assert [e for r in ours for e in validate_object(r.inputs, cfg.cluster.kubernetes_version)] == []


# --- switching off ---------------------------------------------------------------------------------------------------


def _owned_by_mlflow(result):
    return [
        r
        for r in result.resources
        if r.type == MLFLOW_TYPE
        or r.name.startswith("mlflow-")
        or r.namespace in ("mlflow", "cnpg-system")
        or r.k8s_name in ("mlflow", "cnpg-system")
        or r.kind == "Cluster"
        or (r.type == RELEASE_TYPE and r.inputs["name"] == "cloudnative-pg")
    ]


def test_mlflow_off_removes_everything_it_owns(mlflow_off):
    assert _owned_by_mlflow(mlflow_off) == []
    assert not [r for r in mlflow_off.resources if r.type == PASSWORD_TYPE and r.name.startswith("mlflow")]
    # Milvus still needs the object store.
    assert len([r for r in mlflow_off.resources if r.type == STORE_TYPE]) == 1
    assert releases_named(mlflow_off, "seaweedfs")


def test_mlflow_and_milvus_off_remove_the_object_store(ml_services_off):
    assert _owned_by_mlflow(ml_services_off) == []
    store = [
        r
        for r in ml_services_off.resources
        if r.type == STORE_TYPE
        or r.name.startswith("object-store")
        or r.namespace == "object-store"
        or r.k8s_name == "object-store"
    ]
    assert store == [] and releases_named(ml_services_off, "seaweedfs") == []
    passwords = [r.name for r in ml_services_off.resources if r.type == PASSWORD_TYPE]
    assert passwords == ["monitoring-grafana-admin-password"]
    # ...and the same predicates do find them when the services are on.
    dev = run_stack("dev")
    assert _owned_by_mlflow(dev) and [r for r in dev.resources if r.type == STORE_TYPE]
