"""Secrets from Pulumi or from an external store (issue 10): the pulumi source registers Secrets of generated values,
the external-secrets source the operator, its store and one ExternalSecret per platform Secret, with the same names
and keys the workloads reference, no generated password and no value anywhere."""

import json
import re

import pytest
import yaml

import config
from components import milvus, mlflow, mlflow_auth
from components import secrets as component
from components.ai_platform import AiPlatform, AiPlatformArgs
from components.meta import pod_security_labels
from config import versions
from tests.conftest import accept_loss, config_copy, load, run, run_stack, stack_cfg
from tools.harness import CANARY, SECRET
from tools.render import plan
from tools.validate import upstream_dir, validate_helm_values, validate_object

PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
# The generated passwords and their Pulumi logical names, unchanged since before PlatformSecrets (URN stability).
GENERATED = {
    "monitoring-grafana-admin-password",
    "mlflow-db-password",
    "milvus-root-password",
    "object-store-access-key-id",
    "object-store-secret-access-key",
}
VAULT = config_copy("prod")["ai-platform:secrets"]
AWS = {
    "source": "external-secrets",
    "keyPrefix": "ai-platform/prod",
    "store": {
        "provider": "aws",
        "aws": {"region": "eu-west-1", "auth": {"roleArn": "arn:aws:iam::111122223333:role/ai-platform-secrets"}},
    },
}
GCP = {
    "source": "external-secrets",
    "keyPrefix": "ai-platform/prod.eu",
    "huggingFaceToken": True,
    "replicas": 3,
    "store": {
        "provider": "gcp",
        "gcp": {
            "projectId": "example-secrets",
            "auth": {
                "serviceAccount": "eso@example-secrets.iam.gserviceaccount.com",
                "clusterLocation": "europe-west4",
                "clusterName": "ai-prod",
            },
        },
    },
}
DEV_EXTERNAL = {**VAULT, "keyPrefix": "ai-platform/dev", "replicas": 1}
# Go template references the ExternalSecret templates use, and the kinds of keys that name a Secret in a spec or values.
REFERENCE = re.compile(r"\{\{ \.([A-Za-z0-9_]+) \}\}")
SECRET_REF_KEY = re.compile(r"(?i)secret(KeyRef|Ref)?$")
EXISTING_SECRET_KEY = re.compile(r"(?i)^existing\w*Secret$")


def _run(stack: str, **sections):
    """A stack with whole sections replaced: the run (which must succeed) and its typed config."""
    config = accept_loss(config_copy(stack))
    for key, value in sections.items():
        config[f"ai-platform:{key}"] = value
    result = run(stack, config)
    assert result.error is None, result.error
    cfg = load(stack, {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("ai-platform:")})
    return result, cfg


@pytest.fixture(scope="module")
def dev():
    return run_stack("dev"), stack_cfg("dev")


@pytest.fixture(scope="module")
def prod():
    return run_stack("prod"), stack_cfg("prod")


@pytest.fixture(scope="module")
def aws():
    """prod on AWS Secrets Manager, with an external object store whose keys come from a named Secret."""
    store = {
        key: value
        for key, value in config_copy("prod")["ai-platform:objectStore"].items()
        if key != "serviceAccountAnnotations"
    }
    return _run("prod", secrets=AWS, objectStore={**store, "credentialsSecret": "platform-s3"})


@pytest.fixture(scope="module")
def gcp():
    return _run("prod", secrets=GCP)


@pytest.fixture(scope="module")
def dev_external():
    """dev (in-cluster object store and Postgres, a gated hf:// model) switched to the Vault store."""
    return _run("dev", secrets={**DEV_EXTERNAL, "huggingFaceToken": True})


EXTERNAL = ["prod", "aws", "gcp", "dev_external"]


@pytest.fixture(params=EXTERNAL)
def external(request):
    return request.getfixturevalue(request.param)


def of_kind(result, kind):
    return [r for r in result.objects if r.kind == kind]


def operator_release(result):
    found = [r for r in result.releases if r.inputs["chart"] == versions.EXTERNAL_SECRETS.name]
    assert len(found) == 1, f"expected one external-secrets release, found {len(found)}"
    return found[0]


def store_of(result):
    (store,) = of_kind(result, "ClusterSecretStore")
    return store


def _walk_references(value, found: set, path: str = "") -> None:
    """(name, path) of every Secret reference in ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict) and SECRET_REF_KEY.search(key):  # secretKeyRef, secretRef, initdb.secret, ...
                name = item.get("name") or item.get("secretName")  # volumes[].secret.secretName
                if isinstance(name, str) and name:
                    found.add((name, f"{path}.{key}"))
            if isinstance(item, str) and item and EXISTING_SECRET_KEY.match(key):  # existingSecret, existingConfig...
                found.add((item, f"{path}.{key}"))
            if key == "basicAuth" and isinstance(item, dict):  # a monitor's basicAuth.username/password selectors
                found |= {(selector["name"], f"{path}.{key}") for selector in item.values()}
            if key == "secrets" and path.endswith("Spec") and isinstance(item, list):  # Secrets the Prometheus
                found |= {(name, f"{path}.{key}") for name in item}  # Operator mounts by name
            _walk_references(item, found, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            _walk_references(item, found, path)


def references(result, cfg) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret a rendered object or a Helm release's values refers to, including the
    repositories (YAML text) of Argo's per-namespace ``artifact-repositories`` ConfigMaps and the Secrets a
    ServiceAccount lists (KServe reads a predictor's storage credentials from those)."""
    found: set[tuple[str, str]] = set()
    for obj in result.objects:
        if obj.kind not in ("Secret", "ExternalSecret", "ClusterSecretStore"):
            names: set = set()
            _walk_references(obj.inputs, names)
            if obj.kind == "ServiceAccount":
                names |= {(entry["name"], ".secrets") for entry in obj.inputs.get("secrets") or []}
            if obj.kind == "ConfigMap" and obj.k8s_name == "artifact-repositories":
                for text in obj.inputs["data"].values():
                    _walk_references(yaml.safe_load(text), names)
            found |= {(obj.namespace, name) for name, _ in names}
    for release in result.releases:
        names = set()
        _walk_references(release.inputs.get("values") or {}, names)
        found |= {(release.inputs["namespace"], name) for name, _ in names}
    return found


def for_tenants(cfg) -> set[tuple[str, str]]:
    """Secrets the platform delivers to each tenant namespace for the tenant's own workloads (service accounts)."""
    names = [
        name
        for name, on in (("mlflow-credentials", cfg.mlflow.enabled), ("milvus-credentials", cfg.milvus.enabled))
        if on
    ]
    return {(t.name, name) for t in cfg.tenants for name in names}


def tenant_provided(cfg) -> set[tuple[str, str]]:
    """With source pulumi, the endpoints' model-store keys are the operator's to create (stack output
    ``userProvidedSecrets``); from the store the platform creates them like any other."""
    if cfg.secrets.source == "external-secrets":
        return set()
    return {(m.tenant, m.s3.credentials_secret) for m in cfg.models if m.s3 and m.s3.credentials_secret}


# --- source pulumi -------------------------------------------------------------------------------------------------


def test_pulumi_source_installs_no_operator_and_no_external_secret(dev):
    result, cfg = dev
    assert cfg.secrets.source == "pulumi"
    assert not [r for r in result.releases if r.inputs["chart"] == versions.EXTERNAL_SECRETS.name]
    assert of_kind(result, "ExternalSecret") == [] and of_kind(result, "ClusterSecretStore") == []
    assert not [
        r for r in result.objects if r.k8s_name in (cfg.namespaces.external_secrets, component.STORE_SERVICE_ACCOUNT)
    ]
    assert not [r for r in result.resources if r.type == "ai-platform:secrets:ExternalSecrets"]
    assert result.outputs["secretStoreKeys"] == {}
    assert "External secret store" not in plan(result)


def test_pulumi_source_generates_every_password_under_its_old_name(dev):
    result, _ = dev
    passwords = {r.name: r for r in result.resources if r.type == PASSWORD_TYPE}
    assert GENERATED <= set(passwords)
    owners = {r.urn: r.type for r in result.resources}
    assert owners[passwords["monitoring-grafana-admin-password"].parent] == "ai-platform:monitoring:Monitoring"
    assert owners[passwords["mlflow-db-password"].parent] == "ai-platform:mlflow:Mlflow"
    assert owners[passwords["milvus-root-password"].parent] == "ai-platform:milvus:Milvus"
    assert owners[passwords["object-store-access-key-id"].parent] == "ai-platform:objectstore:ObjectStore"
    for password in passwords.values():
        assert password.inputs["special"] is False and password.inputs["length"] >= 20, password.name


def test_pulumi_secrets_hold_their_values_only_as_secrets(dev):
    result, _ = dev
    valued = [s for s in of_kind(result, "Secret") if "stringData" in s.inputs]
    names = {s.k8s_name for s in valued}
    assert {
        "grafana-admin",
        "mlflow-db-credentials",
        "milvus-root",
        "seaweedfs-s3-config",
        "mlflow-s3",
        "milvus-object-store",
    } <= names
    for secret in valued:
        assert secret.inputs["stringData"] == SECRET and "data" not in secret.inputs, secret.k8s_name
    # Each one carries generated values: it depends on a RandomPassword (their results are secret in the harness).
    passwords = {r.urn for r in result.resources if r.type == PASSWORD_TYPE}
    for name in ("grafana-admin", "mlflow-db-credentials", "milvus-root", "seaweedfs-s3-config"):
        (secret,) = [s for s in valued if s.k8s_name == name]
        assert passwords & set(secret.dependencies), name
    dumped = json.dumps([r.inputs for r in result.resources]) + json.dumps(result.outputs, default=str)
    assert "generated-" not in dumped
    holders = [r for r in result.resources if SECRET in json.dumps(r.inputs)]
    assert holders and {r.kind for r in holders} == {"Secret"}


def test_pulumi_secrets_are_exactly_what_workloads_reference(dev):
    result, cfg = dev
    secrets = {(s.namespace, s.k8s_name) for s in of_kind(result, "Secret") if "stringData" in s.inputs}
    referenced = references(result, cfg) - tenant_provided(cfg)
    assert ("monitoring", "grafana-admin") in referenced and ("mlflow", "mlflow-db-credentials") in referenced
    assert referenced | for_tenants(cfg) == secrets


def test_the_hugging_face_token_secret_carries_the_config_secret_only_as_a_secret():
    config = config_copy("dev")
    config["ai-platform:huggingFaceToken"] = {"secure": "v1:ciphertext"}
    result = run("dev", config)
    assert result.error is None, result.error
    secret = result.one("Secret", "qwen-chat-hf-token", "research")
    assert secret.inputs["stringData"] == SECRET
    assert secret.inputs["metadata"]["labels"]["ai-platform/endpoint"] == "qwen-chat"
    job = result.one("Job", "qwen-chat-download", "research")
    assert secret.urn in job.dependencies
    assert CANARY not in json.dumps([r.inputs for r in result.resources]) + json.dumps(result.outputs)


# --- source external-secrets: the operator --------------------------------------------------------------------------


def test_operator_release_namespace_and_values(prod):
    result, cfg = prod
    release = operator_release(result)
    chart = versions.EXTERNAL_SECRETS
    assert (release.inputs["chart"], release.inputs["version"]) == (chart.name, chart.version)
    assert release.inputs["repositoryOpts"] == {"repo": chart.repo}
    assert release.inputs["namespace"] == cfg.namespaces.external_secrets == "external-secrets"
    values = release.inputs["values"]
    assert validate_helm_values(chart.name, values) == []
    assert validate_helm_values(chart.name, {**values, "replicas": 2})  # the key check is not vacuous
    replicas = cfg.secrets.replicas
    assert replicas == 2
    for section in (values, values["webhook"], values["certController"]):
        assert section["replicaCount"] == replicas
        assert section["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
        assert section["image"] == {"repository": f"{cfg.cluster.image_registry}/external-secrets/external-secrets"}
    assert values["leaderElect"] is True
    assert values["installCRDs"] is True and values["crds"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert values["serviceMonitor"] == {"enabled": False}
    namespace = result.one("Namespace", cfg.namespaces.external_secrets)
    assert namespace.urn in release.dependencies
    assert (
        pod_security_labels("restricted", cfg.cluster.kubernetes_version).items()
        <= namespace.inputs["metadata"]["labels"].items()
    )


def test_one_replica_needs_no_election_and_no_budget(dev_external):
    values = operator_release(dev_external[0]).inputs["values"]
    assert values["replicaCount"] == 1 and values["leaderElect"] is False
    assert "podDisruptionBudget" not in values and "image" not in values  # dev has no registry mirror


def test_only_the_platform_may_create_external_secrets(prod):
    """The store serves tenant namespaces (Hugging Face tokens): an ExternalSecret a tenant could create there would
    read any key of the store. Tenant roles grant nothing of external-secrets.io, and the chart adds no rights to the
    built-in edit/admin ClusterRoles."""
    result, cfg = prod
    tenants = {t.name for t in cfg.tenants}
    assert tenants & {es.namespace for es in of_kind(result, "ExternalSecret")}
    bound = {b.inputs["roleRef"]["name"] for b in of_kind(result, "RoleBinding") if b.namespace in tenants}
    roles = [
        r
        for r in of_kind(result, "Role") + of_kind(result, "ClusterRole")
        if r.namespace in tenants or r.k8s_name in bound
    ]
    assert len(roles) >= 4  # the three tenant roles and the workflow executor's
    for role in roles:
        for rule in role.inputs.get("rules", []):
            assert not {"*", "external-secrets.io"} & set(rule.get("apiGroups", [])), (role.namespace, role.k8s_name)
    rbac = operator_release(result).inputs["values"]["rbac"]
    assert rbac == {"aggregateToEdit": False, "aggregateToAdmin": False}
    upstream = yaml.safe_load((upstream_dir() / "external-secrets" / "values.yaml").read_text())["rbac"]
    assert upstream["aggregateToEdit"] is True and upstream["aggregateToAdmin"] is True  # the defaults it overrides


def test_the_charts_pods_comply_with_restricted():
    upstream = yaml.safe_load((upstream_dir() / "external-secrets" / "values.yaml").read_text())
    assert upstream["image"]["repository"] == versions.EXTERNAL_SECRETS_IMAGE
    for section in (upstream, upstream["webhook"], upstream["certController"]):
        context = section["securityContext"]
        assert context["enabled"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]} and context["runAsNonRoot"] is True
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert section["hostNetwork"] is False
        assert section["image"]["repository"] == versions.EXTERNAL_SECRETS_IMAGE


def test_monitoring_scrapes_the_operator_without_a_dependency_cycle(prod):
    result, cfg = prod
    eso = operator_release(result)
    (monitoring,) = [r for r in result.releases if r.inputs["chart"] == "kube-prometheus-stack"]
    grafana = result.one("ExternalSecret", "grafana-admin", cfg.namespaces.monitoring)
    # Grafana's admin Secret needs the operator (the ExternalSecret CRD); the monitoring release does not wait for it
    # (Grafana's pod does). The operator's release must not wait for monitoring, or every ExternalSecret would be a
    # wave later: its metrics are scraped by a PodMonitor that waits for monitoring instead.
    assert eso.urn in grafana.dependencies and grafana.urn not in monitoring.dependencies
    assert monitoring.urn not in eso.dependencies
    monitor = result.one("PodMonitor", component.RELEASE, cfg.namespaces.external_secrets)
    assert monitoring.urn in monitor.dependencies
    selector = monitor.inputs["spec"]["selector"]
    assert selector["matchLabels"] == {"app.kubernetes.io/instance": eso.inputs["name"]}
    assert selector["matchExpressions"] == [
        {
            "key": "app.kubernetes.io/name",
            "operator": "In",
            "values": ["external-secrets", "external-secrets-webhook", "external-secrets-cert-controller"],
        }
    ]
    assert monitor.inputs["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics", "scheme": "http"}]
    assert monitor.inputs["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ai-platform"
    assert validate_object(monitor.inputs, cfg.cluster.kubernetes_version) == []


def test_no_monitor_without_monitoring():
    result, _ = _run("prod", monitoring={"enabled": False})
    assert of_kind(result, "PodMonitor") == []
    assert operator_release(result) and store_of(result)


# --- the store and its service account ------------------------------------------------------------------------------


def test_vault_store_authenticates_as_the_store_service_account(prod):
    result, cfg = prod
    vault = cfg.secrets.store.vault
    namespace = cfg.namespaces.external_secrets
    account = result.one("ServiceAccount", component.STORE_SERVICE_ACCOUNT, namespace)
    assert "annotations" not in account.inputs["metadata"]
    assert account.inputs["automountServiceAccountToken"] is False
    store = store_of(result)
    assert (store.inputs["apiVersion"], store.k8s_name, store.namespace) == (
        "external-secrets.io/v1",
        "ai-platform",
        None,
    )
    assert store.inputs["spec"]["provider"] == {
        "vault": {
            "server": "https://vault.example.com:8200",
            "path": vault.path,
            "version": "v2",
            "auth": {
                "kubernetes": {
                    "mountPath": "kubernetes-ai-prod",
                    "role": "ai-platform-prod",
                    "serviceAccountRef": {"name": "external-secrets-store", "namespace": namespace},
                }
            },
        }
    }
    assert {operator_release(result).urn, account.urn} <= set(store.dependencies)
    binding = result.one("ClusterRoleBinding", "external-secrets-store-auth-delegator")
    assert binding.inputs["roleRef"]["name"] == "system:auth-delegator"
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "external-secrets-store", "namespace": namespace}
    ]


def test_aws_store_uses_irsa(aws):
    result, cfg = aws
    account = result.one("ServiceAccount", component.STORE_SERVICE_ACCOUNT, cfg.namespaces.external_secrets)
    assert account.inputs["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/ai-platform-secrets"
    }
    assert store_of(result).inputs["spec"]["provider"] == {
        "aws": {
            "service": "SecretsManager",
            "region": "eu-west-1",
            "auth": {"jwt": {"serviceAccountRef": {"name": "external-secrets-store", "namespace": "external-secrets"}}},
        }
    }
    assert not [b for b in of_kind(result, "ClusterRoleBinding") if b.k8s_name.startswith("external-secrets-store")]


def test_gcp_store_uses_workload_identity_and_valid_secret_names(gcp):
    result, cfg = gcp
    account = result.one("ServiceAccount", component.STORE_SERVICE_ACCOUNT, cfg.namespaces.external_secrets)
    assert account.inputs["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "eso@example-secrets.iam.gserviceaccount.com"
    }
    assert store_of(result).inputs["spec"]["provider"] == {
        "gcpsm": {
            "projectID": "example-secrets",
            "auth": {
                "workloadIdentity": {
                    "clusterLocation": "europe-west4",
                    "clusterName": "ai-prod",
                    "serviceAccountRef": {"name": "external-secrets-store", "namespace": "external-secrets"},
                }
            },
        }
    }
    # Google Secret Manager names: letters, digits, '-' and '_' (the prefix's '/' and '.' become '_').
    keys = result.outputs["secretStoreKeys"]
    assert "ai-platform_prod_eu_grafana-admin" in keys
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", key) for key in keys), keys
    values = operator_release(result).inputs["values"]
    assert values["replicaCount"] == values["webhook"]["replicaCount"] == values["certController"]["replicaCount"] == 3


@pytest.mark.invariant
def test_store_serves_exactly_the_namespaces_of_the_external_secrets(external):
    result, _ = external
    placed = {es.namespace for es in of_kind(result, "ExternalSecret")}
    assert {"monitoring", "milvus", "mlflow"} <= placed
    conditions = store_of(result).inputs["spec"]["conditions"]
    assert conditions == [{"namespaces": sorted(placed)}]


def test_a_secret_asked_for_after_the_store_is_created_is_refused():
    """The store serves the namespaces of the ExternalSecrets declared before it, so one declared later would never
    fill: AiPlatform creates the store last, from ``PlatformSecrets.close()``, and a Secret asked for after that fails
    the run instead."""

    def program():
        platform = AiPlatform("ai-platform", AiPlatformArgs(config.load()))
        platform.secrets.secret("late", "late", "default", "test", platform, {"key": "value"})

    result = run("prod", program=program)
    assert isinstance(result.error, RuntimeError), result.error
    assert "Secret late asked for after PlatformSecrets.close()" in str(result.error)


@pytest.mark.invariant
def test_external_objects_validate_against_the_pinned_crds(external):
    result, cfg = external
    objects = of_kind(result, "ExternalSecret") + of_kind(result, "ClusterSecretStore")
    for obj in objects:
        assert validate_object(obj.inputs, cfg.cluster.kubernetes_version) == [], obj.k8s_name
    bad = json.loads(json.dumps(objects[0].inputs))
    bad["spec"]["target"]["template"]["engineVersion"] = "v3"
    assert validate_object(bad, cfg.cluster.kubernetes_version)  # not vacuous


# --- one ExternalSecret per platform Secret -------------------------------------------------------------------------


@pytest.mark.invariant
def test_no_generated_password_and_no_value_in_external_mode(external):
    result, _ = external
    assert not [r for r in result.resources if r.type == PASSWORD_TYPE]
    assert not [s for s in of_kind(result, "Secret") if "stringData" in s.inputs or "data" in s.inputs]
    # Nothing secret is registered at all: no value exists in the program.
    dumped = json.dumps([r.inputs for r in result.resources]) + json.dumps(result.outputs, default=str)
    assert SECRET not in dumped and CANARY not in dumped and "generated-" not in dumped


@pytest.mark.invariant
def test_every_external_secret_is_well_formed(external):
    result, cfg = external
    release = operator_release(result)
    prefix = (
        re.sub(r"[/.]", "_", cfg.secrets.key_prefix) if cfg.secrets.store.provider == "gcp" else cfg.secrets.key_prefix
    )
    literals = {"admin", "root", cfg.mlflow.database.user}
    # The service accounts' user names, databases and URLs (tests/test_service_accounts.py checks them one by one).
    literals |= {
        mlflow_auth.METRICS_USER,
        mlflow.server_url(cfg.namespaces.mlflow),
        f"http://milvus.{cfg.namespaces.milvus}.svc:19530",
    }
    literals |= {
        name
        for t in cfg.tenants
        for name in (mlflow_auth.tenant_user(t.name), milvus.tenant_user(t.name), milvus.tenant_database(t.name))
    }
    for es in of_kind(result, "ExternalSecret"):
        spec = es.inputs["spec"]
        assert release.urn in es.dependencies, es.k8s_name
        assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": component.STORE_NAME}
        assert spec["refreshInterval"] == cfg.secrets.refresh_interval
        target = spec["target"]
        assert target["name"] == es.k8s_name
        assert (target["creationPolicy"], target["deletionPolicy"]) == ("Owner", "Retain")
        template = target["template"]
        assert (template["engineVersion"], template["mergePolicy"]) == ("v2", "Replace")
        fetched = {entry["secretKey"] for entry in spec["data"]}
        used = set()
        for key, value in template["data"].items():
            names = REFERENCE.findall(value)
            used |= set(names)
            # A value is references (inside a JSON config) or a known literal, never anything else.
            assert names or value in literals, (es.k8s_name, key)
        assert used == fetched, es.k8s_name
        for entry in spec["data"]:
            assert entry["remoteRef"]["key"].startswith(prefix), entry


@pytest.mark.invariant
def test_remote_keys_output_lists_exactly_what_the_external_secrets_read(external):
    result, _ = external
    read: dict[str, set] = {}
    for es in of_kind(result, "ExternalSecret"):
        for entry in es.inputs["spec"]["data"]:
            read.setdefault(entry["remoteRef"]["key"], set()).add(entry["remoteRef"]["property"])
    exported = result.outputs["secretStoreKeys"]
    assert read and {key: set(props) for key, props in exported.items()} == read
    text = plan(result)
    assert "## External secret store" in text
    for key, props in exported.items():
        assert f"| `{key}` | {', '.join(f'`{p}`' for p in props)} |" in text


@pytest.mark.invariant
def test_external_secret_targets_are_exactly_what_workloads_reference(external):
    result, cfg = external
    targets = {(es.namespace, es.inputs["spec"]["target"]["name"]) for es in of_kind(result, "ExternalSecret")}
    referenced = references(result, cfg) - tenant_provided(cfg)
    assert ("monitoring", "grafana-admin") in referenced and ("milvus", "milvus-root") in referenced
    assert referenced | for_tenants(cfg) == targets


def test_annotations_go_on_the_secret_in_both_modes(dev, dev_external, aws):
    """``secret(annotations=...)`` (and ``existing``): on the Secret's metadata (Pulumi) or the ExternalSecret's
    ``spec.target.template.metadata`` (store), never on the ExternalSecret itself; a Secret asked for without any
    has none. The Workflows component uses it for KServe's S3 settings."""
    (result, cfg), (external, _) = dev, dev_external
    expected = {
        "serving.kserve.io/s3-endpoint": f"seaweedfs-s3.{cfg.namespaces.object_store}.svc:8333",
        "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-region": cfg.object_store.region,
    }
    for tenant in cfg.tenants:
        assert result.one("Secret", "model-reader-s3", tenant.name).inputs["metadata"]["annotations"] == expected
        es = external.one("ExternalSecret", "model-reader-s3", tenant.name).inputs
        assert es["spec"]["target"]["template"]["metadata"] == {"annotations": expected}
        assert "annotations" not in es["metadata"]
        assert "annotations" not in result.one("Secret", "argo-artifacts-s3", tenant.name).inputs["metadata"]
        plain = external.one("ExternalSecret", "argo-artifacts-s3", tenant.name).inputs["spec"]["target"]["template"]
        assert "metadata" not in plain
    result, cfg = aws
    for tenant in cfg.tenants:  # existing(): the stack's keys Secret, from the store, with KServe's settings for AWS
        template = result.one("ExternalSecret", "platform-s3", tenant.name).inputs["spec"]["target"]["template"]
        assert template["metadata"] == {"annotations": {"serving.kserve.io/s3-region": cfg.object_store.region}}
    mlflow_keys = result.one("ExternalSecret", "platform-s3", cfg.namespaces.mlflow).inputs["spec"]["target"]
    assert "metadata" not in mlflow_keys["template"]


def test_prod_has_one_external_secret_per_platform_secret(prod):
    result, cfg = prod
    names = {(es.namespace, es.k8s_name) for es in of_kind(result, "ExternalSecret")}
    expected = {
        ("monitoring", "grafana-admin"),
        ("milvus", "milvus-root"),
        ("mlflow", cfg.mlflow.database.password_secret),
        ("research", "llama-70b-hf-token"),
        ("research", "llama-70b-canary-hf-token"),
    }
    assert expected <= names
    assert len(names) == len(of_kind(result, "ExternalSecret"))
    database = result.one("ExternalSecret", "mlflow-db", "mlflow").inputs["spec"]
    assert database["data"] == [
        {"secretKey": "mlflow_db_password", "remoteRef": {"key": "ai-platform/prod/mlflow-db", "property": "password"}}
    ]


def test_dev_external_secrets_keep_names_keys_and_types(dev_external):
    result, cfg = dev_external
    db = result.one("ExternalSecret", "mlflow-db-credentials", "mlflow").inputs["spec"]["target"]["template"]
    assert db["type"] == "kubernetes.io/basic-auth"
    assert db["data"] == {"username": cfg.mlflow.database.user, "password": "{{ .mlflow_db_credentials_password }}"}
    for name, namespace in (("mlflow-s3", "mlflow"), ("milvus-object-store", "milvus")):
        template = result.one("ExternalSecret", name, namespace).inputs["spec"]["target"]["template"]
        assert template["data"] == {
            "AWS_ACCESS_KEY_ID": "{{ .object_store_AWS_ACCESS_KEY_ID }}",
            "AWS_SECRET_ACCESS_KEY": "{{ .object_store_AWS_SECRET_ACCESS_KEY }}",
        }
    token = result.one("ExternalSecret", "qwen-chat-hf-token", "research").inputs["spec"]
    assert token["data"] == [
        {
            "secretKey": "huggingface_token_token",
            "remoteRef": {"key": "ai-platform/dev/huggingface-token", "property": "token"},
        }
    ]
    job = result.one("Job", "qwen-chat-download", "research").inputs["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "qwen-chat-hf-token", "key": "token"}}} in job[
        "env"
    ]
    assert result.outputs["secretStoreKeys"]["ai-platform/dev/object-store"] == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]


def test_seaweedfs_identities_template_renders_to_the_identities_json(dev_external):
    result, _ = dev_external
    es = result.one("ExternalSecret", "seaweedfs-s3-config", "object-store").inputs["spec"]
    text = es["target"]["template"]["data"]["seaweedfs_s3_config"]
    # Go's text/template sees only the two references: no other delimiter in the JSON around them.
    assert REFERENCE.sub("", text).count("{{") == REFERENCE.sub("", text).count("}}") == 0
    store_values = {
        "object_store_AWS_ACCESS_KEY_ID": "AKIAEXAMPLE0123",
        "object_store_AWS_SECRET_ACCESS_KEY": "wJalr/XUtnFEMI+K7MDENG",
    }
    tenants = ("research", "product")  # workflows on: one identity per tenant, its own keys and bucket
    store_values.update(
        {
            f"object_store_tenant_{t}_{key}": f"{t}-{key}"
            for t in tenants
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
    )
    assert {entry["secretKey"] for entry in es["data"]} == set(store_values)
    rendered = json.loads(REFERENCE.sub(lambda m: store_values[m.group(1)], text))
    assert rendered == {
        "identities": [
            {
                "name": "ai-platform",
                "credentials": [{"accessKey": "AKIAEXAMPLE0123", "secretKey": "wJalr/XUtnFEMI+K7MDENG"}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
        + [
            {
                "name": f"tenant-{t}",
                "credentials": [{"accessKey": f"{t}-AWS_ACCESS_KEY_ID", "secretKey": f"{t}-AWS_SECRET_ACCESS_KEY"}],
                "actions": [f"{action}:argo-artifacts-{t}" for action in ("Read", "Write", "List", "Tagging")],
            }
            for t in tenants
        ]
    }


def test_named_secrets_of_the_stack_come_from_the_store(aws):
    result, _ = aws
    for namespace in ("mlflow", "milvus"):
        es = result.one("ExternalSecret", "platform-s3", namespace).inputs["spec"]
        assert es["data"] == [
            {
                "secretKey": "platform_s3_AWS_ACCESS_KEY_ID",
                "remoteRef": {"key": "ai-platform/prod/platform-s3", "property": "AWS_ACCESS_KEY_ID"},
            },
            {
                "secretKey": "platform_s3_AWS_SECRET_ACCESS_KEY",
                "remoteRef": {"key": "ai-platform/prod/platform-s3", "property": "AWS_SECRET_ACCESS_KEY"},
            },
        ]


def test_no_hugging_face_token_unless_the_store_has_one(aws):
    result, cfg = aws
    assert cfg.secrets.hugging_face_token is False
    assert not [es for es in of_kind(result, "ExternalSecret") if es.k8s_name.endswith("-hf-token")]
    assert "ai-platform/prod/huggingface-token" not in result.outputs["secretStoreKeys"]
    for job in of_kind(result, "Job"):
        for container in job.inputs["spec"]["template"]["spec"]["containers"]:
            assert "HF_TOKEN" not in {e["name"] for e in container.get("env", [])}, job.k8s_name
