"""Milvus: release and mode per stack, the object store wiring, no credential in any value, the Secrets behind the env
hooks, authentication, volumes, metrics, images, switching it off."""

import json
import re
from typing import NamedTuple

import pulumi
import pytest
import yaml
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components import milvus as component
from components.meta import mirrored
from components.monitoring import chart as monitoring_chart
from components.objectstore import S3Credentials
from components.secrets import PlatformSecrets, SecretRef
from config import ConfigError, versions
from tests.conftest import config_copy, run, run_with, stack_cfg
from tools.harness import CANARY, SECRET
from tools.validate import upstream_dir

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
COMPONENT_TYPE = "ai-platform:milvus:Milvus"
# What each stack file asks for, restated so that a changed stack file or default shows up here.
MODES = {"dev": "standalone", "prod": "cluster"}
# The chart's values sections of the Milvus pods per mode; every one of them loads the storage configuration.
STORAGE_COMPONENTS = {
    "standalone": ["standalone"],
    "cluster": ["proxy", "mixCoordinator", "queryNode", "dataNode", "streamingNode"],
}
CLUSTER_ONLY = [
    "proxy",
    "mixCoordinator",
    "queryNode",
    "dataNode",
    "streamingNode",
    "rootCoordinator",
    "queryCoordinator",
    "indexCoordinator",
    "indexNode",
    "dataCoordinator",
]
ROOTCOORD = {"standalone": "standalone", "cluster": "mixCoordinator"}
SECRET_LOOKING = re.compile(r"(access|secret)_?key|password|passwd|token|credential", re.I)


def milvus_release(result):
    found = [r for r in result.releases if r.inputs["chart"] == "milvus"]
    assert len(found) == 1, f"expected one milvus release, found {len(found)}"
    return found[0]


def milvus_values(result) -> dict:
    return milvus_release(result).inputs["values"]


def upstream_values(*path: str) -> dict:
    return yaml.safe_load((upstream_dir().joinpath("milvus", *path) / "values.yaml").read_text())


def env_of(values: dict, section: str) -> dict[str, dict]:
    return {e["name"]: e for e in values.get(section, {}).get("extraEnv", [])}


@pytest.fixture(scope="module")
def milvus_off():
    return run_with(milvus={"enabled": False})


@pytest.fixture(scope="module")
def tuned_without_monitoring():
    """dev (standalone) with every volume setting changed and monitoring off."""
    return run_with(
        monitoring={"enabled": False},
        milvus={"mode": "standalone", "storage": {"etcd": "7Gi", "messageQueue": "33Gi", "storageClass": "fast-ssd"}},
    )


@pytest.fixture(scope="module")
def keys_from_secret():
    """prod with an external store that gives keys through credentialsSecret instead of workload identity."""
    return run_with(
        "prod",
        objectStore={
            "mode": "external",
            "region": "eu-west-1",
            "endpoint": "https://objects.example.com:9443",
            "mlflowBucket": "ai-mlflow",
            "milvusBucket": "ai-milvus",
            "workflowsBucket": "ai-workflows",
            "lokiBucket": "ai-loki",
            "tempoBucket": "ai-tempo",
            "credentialsSecret": "platform-s3",
        },
    )


# --- release, namespace, mode -------------------------------------------------------------------------------------


def test_release_is_pinned_in_the_milvus_namespace(stack_run, cfg):
    chart = versions.MILVUS
    assert chart == ("milvus", "https://zilliztech.github.io/milvus-helm", "5.0.19")
    assert versions.CHARTS["milvus"] is chart
    release = milvus_release(stack_run)
    assert release.inputs["name"] == component.RELEASE == "milvus"
    assert (release.inputs["chart"], release.inputs["version"]) == (chart.name, chart.version)
    assert release.inputs["repositoryOpts"] == {"repo": chart.repo}
    assert release.inputs["namespace"] == cfg.namespaces.milvus
    namespace = stack_run.one("Namespace", cfg.namespaces.milvus)
    assert namespace.urn in release.dependencies
    owner = next(r for r in stack_run.resources if r.type == COMPONENT_TYPE)
    assert release.parent == owner.urn and namespace.parent == owner.urn


def test_namespace_is_baseline_because_of_the_charts_security_contexts(stack_run, cfg):
    labels = stack_run.one("Namespace", cfg.namespaces.milvus).inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "baseline"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == f"v{cfg.cluster.kubernetes_version}"
    # Why not restricted: Milvus pods get no securityContext (the image runs as root), and etcd runs as 1001 without
    # dropping capabilities or a seccomp profile. Why not privileged: nothing asks for the host.
    upstream = upstream_values()
    assert upstream["securityContext"] == {} and upstream["containerSecurityContext"] == {}
    for section in ("standalone", "proxy", "mixCoordinator", "queryNode", "dataNode", "streamingNode"):
        assert upstream[section]["securityContext"] == {} and upstream[section]["containerSecurityContext"] == {}
    etcd = upstream_values("charts", "etcd")["containerSecurityContext"]
    assert etcd["runAsNonRoot"] is True and "capabilities" not in etcd and "seccompProfile" not in etcd
    assert "containerSecurityContext" not in milvus_values(stack_run)


def test_mode_follows_the_stack(stack_run, stack, cfg):
    mode = MODES[stack]
    assert cfg.milvus.mode == mode
    values = milvus_values(stack_run)
    assert values["cluster"] == {"enabled": mode == "cluster"}
    if mode == "standalone":
        assert values["standalone"]["messageQueue"] == "woodpecker"
        assert not set(CLUSTER_ONLY) & set(values)
    else:
        assert "standalone" not in values
        for section in STORAGE_COMPONENTS["cluster"]:
            assert values[section]["replicas"] >= 2, section
        assert values["mixCoordinator"]["activeStandby"] == {"enabled": True}


def test_resources_are_requested_for_every_milvus_pod(stack_run, stack):
    values = milvus_values(stack_run)
    for section in STORAGE_COMPONENTS[MODES[stack]]:
        resources = values[section]["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"], section
        assert resources["limits"]["memory"], section
    etcd = values["etcd"]
    assert etcd["resources"]["requests"]["memory"]
    assert (etcd["replicaCount"], etcd["pdb"]["create"]) == ((1, False) if stack == "dev" else (3, True))


def test_message_queue_is_embedded_woodpecker_on_the_object_store(stack_run):
    values = milvus_values(stack_run)
    assert values["woodpecker"] == {"enabled": True}
    assert values["streaming"] == {"enabled": True, "woodpecker": {"embedded": True, "storage": {"type": "minio"}}}
    # The chart's default cluster MQ is Pulsar v3: it must be switched off, as must Pulsar v2 and Kafka.
    assert upstream_values()["pulsarv3"]["enabled"] is True
    for off in ("pulsarv3", "pulsar", "kafka", "minio", "attu"):
        assert values[off] == {"enabled": False}, off
    # Embedded Woodpecker runs no StatefulSet, so the chart's `latest` woodpecker image is never pulled.
    assert upstream_values()["woodpecker"]["image"]["tag"] == "latest"
    assert "image" not in values["woodpecker"]


# --- object store ---------------------------------------------------------------------------------------------------


def test_object_store_is_external_s3_on_the_milvus_bucket(stack_run, cfg):
    store = cfg.object_store
    s3 = milvus_values(stack_run)["externalS3"]
    assert milvus_values(stack_run)["minio"] == {"enabled": False}
    assert s3["enabled"] is True
    assert s3["bucketName"] == store.buckets["milvus"]
    assert s3["region"] == store.region
    if store.mode == "in-cluster":
        from components import objectstore

        assert (s3["host"], s3["port"], s3["useSSL"]) == (
            f"{objectstore.S3_SERVICE}.{cfg.namespaces.object_store}.svc",
            objectstore.S3_PORT,
            False,
        )
        assert s3["useIAM"] is False
    else:
        assert (s3["host"], s3["port"], s3["useSSL"]) == (f"s3.{store.region}.amazonaws.com", 443, True)
        assert s3["useIAM"] is True


def test_workload_identity_goes_on_the_charts_service_account(stack_run, cfg):
    account = milvus_values(stack_run)["serviceAccount"]
    assert (account["create"], account["name"]) == (True, component.SERVICE_ACCOUNT)
    annotations = cfg.object_store.service_account_annotations
    assert account.get("annotations", {}) == annotations
    assert bool(annotations) == (cfg.object_store.mode == "external")


def test_release_waits_for_the_in_cluster_store(stack_run, cfg):
    deps = set(milvus_release(stack_run).dependencies)
    store = [r for r in stack_run.releases if r.inputs["chart"] == "seaweedfs"]
    if cfg.object_store.mode == "in-cluster":
        assert len(store) == 1 and store[0].urn in deps
    else:
        assert not store


def test_external_endpoint_and_keys_from_the_stores_secret(keys_from_secret):
    values = milvus_values(keys_from_secret)
    s3 = values["externalS3"]
    assert (s3["host"], s3["port"], s3["useSSL"], s3["useIAM"]) == ("objects.example.com", 9443, True, False)
    assert s3["bucketName"] == "ai-milvus"
    assert "annotations" not in values["serviceAccount"]
    for section in STORAGE_COMPONENTS["cluster"]:
        env = env_of(values, section)
        for name, key in (
            ("MINIO_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
            ("MINIO_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
        ):
            assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "platform-s3", "key": key}}}
    assert not [s for s in keys_from_secret.of_kind("Secret") if s.k8s_name == component.S3_SECRET]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://seaweedfs-s3.object-store.svc:8333", ("seaweedfs-s3.object-store.svc", 8333, False)),
        ("https://s3.example.com", ("s3.example.com", 443, True)),
        ("http://minio.example.com/", ("minio.example.com", 80, False)),
    ],
)
def test_endpoint_urls_become_host_port_and_tls(url, expected):
    parsed = component._parse_endpoint(url)
    assert (parsed["host"], parsed["port"], parsed["useSSL"]) == expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("s3.example.com:9000", "string should match pattern"),
        ("ftp://s3.example.com", "string should match pattern"),
        ("https://s3.example.com/bucket", "Milvus (milvus.enabled) reaches the object store by host and port only"),
        ("https://s3.example.com?region=x", "Milvus (milvus.enabled) reaches the object store by host and port only"),
        ("https://s3.example.com:99999", "not a valid port"),
    ],
)
def test_endpoint_urls_milvus_cannot_use_are_refused_by_the_config(url, expected):
    """Before anything is registered (tests/test_config_errors.py proves that for the path); with Milvus off, MLflow
    takes a path."""
    raw = config_copy("prod")
    raw["ai-platform:objectStore"] = {**raw["ai-platform:objectStore"], "endpoint": url}
    result = run("prod", raw)
    assert isinstance(result.error, ConfigError)
    assert f"stack prod: ai-platform:objectStore.endpoint: {expected}" in str(result.error)
    if "pattern" not in expected:
        raw["ai-platform:milvus"] = {"enabled": False}
        raw["ai-platform:dataProtection"] = {"mode": "strict", "decommission": ["milvus"]}
        assert run("prod", raw).error is None


# --- no credential in values; where the credentials come from ---------------------------------------------------------


def _walk(value, path="values"):
    if isinstance(value, dict):
        for key, child in value.items():
            yield f"{path}.{key}", key, child
            yield from _walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}[{index}]")


@pytest.mark.invariant
def test_no_credential_in_the_values(stack_run, cfg):
    if not cfg.milvus.enabled:
        pytest.skip("milvus off")
    values = milvus_values(stack_run)
    for path, key, value in _walk(values):
        if SECRET_LOOKING.search(str(key)) and not isinstance(value, (dict, list)):
            assert value in (None, "", False), f"{path} holds a value"
    s3 = values["externalS3"]
    assert not s3.get("accessKey") and not s3.get("secretKey")
    # A secret Output in the values would be recorded as [secret]: Helm stores values in clear, so none may be there.
    dumped = json.dumps(values)
    assert SECRET not in dumped and "generated-" not in dumped and CANARY not in dumped
    # Env entries whose names look secret get them from a Secret, never as a value.
    for path, key, value in _walk(values):
        if key == "extraEnv":
            for entry in value:
                if SECRET_LOOKING.search(entry["name"]):
                    assert "value" not in entry and set(entry["valueFrom"]) == {"secretKeyRef"}, path


@pytest.mark.invariant
def test_no_generated_secret_leaks_into_any_input_or_output(stack_run, cfg):
    if not cfg.milvus.enabled:
        pytest.skip("milvus off")
    passwords = [r for r in stack_run.resources if r.type == PASSWORD_TYPE and r.name.startswith("milvus-")]
    if cfg.secrets.source == "external-secrets":  # prod: the store holds the root password
        assert passwords == []
        assert stack_run.one("ExternalSecret", component.ROOT_SECRET, cfg.namespaces.milvus)
    else:  # the root password and one per tenant account
        assert sorted(r.name for r in passwords) == sorted(
            ["milvus-root-password"] + [f"milvus-{t.name}-password" for t in cfg.tenants]
        )
        assert stack_run.one("Secret", component.ROOT_SECRET, cfg.namespaces.milvus).inputs["stringData"] == SECRET
    for resource in stack_run.resources:
        dumped = json.dumps(resource.inputs)
        assert "generated-" not in dumped and CANARY not in dumped, resource.name
    assert "generated-" not in json.dumps(stack_run.outputs, default=str)


def test_s3_keys_reach_every_milvus_pod_from_a_secret(stack_run, stack, cfg):
    values = milvus_values(stack_run)
    mode = MODES[stack]
    sections = [s for s in values if isinstance(values[s], dict) and "extraEnv" in values[s]]
    if cfg.object_store.mode == "in-cluster":
        from components import objectstore

        secret = stack_run.one("Secret", component.S3_SECRET, cfg.namespaces.milvus)
        assert secret.inputs["stringData"] == SECRET
        # Its values are the store's generated platform keys (not a tenant's): it depends on those two RandomPasswords.
        generated = {
            r.urn
            for r in stack_run.resources
            if r.type == PASSWORD_TYPE and r.name in ("object-store-access-key-id", "object-store-secret-access-key")
        }
        assert len(generated) == 2 and generated <= set(secret.dependencies)
        assert not [urn for urn in secret.dependencies if "tenant" in urn.rsplit("::", 1)[-1]]
        # The release does not wait for it: the pods' secretKeyRefs keep them from starting until it exists.
        assert secret.urn not in milvus_release(stack_run).dependencies
        assert set(STORAGE_COMPONENTS[mode]) <= set(sections)
        for section in STORAGE_COMPONENTS[mode]:
            env = env_of(values, section)
            assert env["MINIO_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
                "name": component.S3_SECRET,
                "key": objectstore.ACCESS_KEY_ID,
            }, section
            assert env["MINIO_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
                "name": component.S3_SECRET,
                "key": objectstore.SECRET_ACCESS_KEY,
            }, section
    else:  # workload identity: no keys anywhere
        assert not [s for s in stack_run.of_kind("Secret") if s.k8s_name == component.S3_SECRET]
        for section in sections:
            assert not {"MINIO_ACCESS_KEY_ID", "MINIO_SECRET_ACCESS_KEY"} & set(env_of(values, section)), section


def test_authentication_is_on_and_the_root_password_only_a_secret_reference(stack_run, stack, cfg):
    values = milvus_values(stack_run)
    user = yaml.safe_load(values["extraConfigFiles"]["user.yaml"])
    assert user["common"]["security"]["authorizationEnabled"] is True
    # The public role every user holds gets no privilege (by default: describe any collection in any database).
    assert user["common"]["security"]["enablePublicPrivilege"] is False
    assert "defaultRootPassword" not in user["common"]["security"]
    if cfg.secrets.source == "external-secrets":  # prod: an ExternalSecret fills the Secret of the same name
        secret = stack_run.one("ExternalSecret", component.ROOT_SECRET, cfg.namespaces.milvus)
        assert secret.inputs["spec"]["target"]["name"] == component.ROOT_SECRET
        assert set(secret.inputs["spec"]["target"]["template"]["data"]) == {
            component.ROOT_USER_KEY,
            component.ROOT_PASSWORD_KEY,
        }
    else:
        secret = stack_run.one("Secret", component.ROOT_SECRET, cfg.namespaces.milvus)
        password = next(r for r in stack_run.resources if r.name == "milvus-root-password")
        assert password.inputs["length"] >= 16 and password.urn in secret.dependencies
    # The release does not wait for it: no container starts without it (so none with a default root password).
    assert secret.urn not in milvus_release(stack_run).dependencies
    mode = MODES[stack]
    holders = [s for s in values if "COMMON_SECURITY_DEFAULTROOTPASSWORD" in env_of(values, s)]
    assert holders == [ROOTCOORD[mode]]
    assert env_of(values, ROOTCOORD[mode])["COMMON_SECURITY_DEFAULTROOTPASSWORD"] == {
        "name": "COMMON_SECURITY_DEFAULTROOTPASSWORD",
        "valueFrom": {"secretKeyRef": {"name": component.ROOT_SECRET, "key": component.ROOT_PASSWORD_KEY}},
    }


def test_env_names_map_to_the_milvus_config_keys():
    """Milvus's environment source lower-cases names and drops `_`/`.`: these must land on the keys they replace."""

    def fold(key: str) -> str:
        return re.sub(r"[_./]", "", key.lower())

    assert fold(component.ENV_ACCESS_KEY) == fold("minio.accessKeyID")
    assert fold(component.ENV_SECRET_KEY) == fold("minio.secretAccessKey")
    assert fold(component.ENV_ROOT_PASSWORD) == fold("common.security.defaultRootPassword")


# --- volumes, metrics, images ---------------------------------------------------------------------------------------


def test_volumes_follow_the_storage_config(stack_run, stack, cfg):
    values, storage = milvus_values(stack_run), cfg.milvus.storage
    etcd = values["etcd"]["persistence"]
    assert etcd["enabled"] is True and etcd["size"] == storage.etcd
    assert etcd.get("storageClass") == storage.storage_class
    if MODES[stack] == "standalone":
        claim = values["standalone"]["persistence"]["persistentVolumeClaim"]
        assert values["standalone"]["persistence"]["enabled"] is True
        assert claim["size"] == storage.message_queue
        assert claim.get("storageClass") == storage.storage_class
    else:  # a cluster keeps its write-ahead log in the bucket: no standalone volume, no Woodpecker StatefulSet
        assert "standalone" not in values and "persistence" not in values["woodpecker"]


def test_standalone_volumes_take_size_and_storage_class(tuned_without_monitoring):
    values = milvus_values(tuned_without_monitoring)
    assert values["etcd"]["persistence"] == {"enabled": True, "size": "7Gi", "storageClass": "fast-ssd"}
    assert values["standalone"]["persistence"] == {
        "enabled": True,
        "persistentVolumeClaim": {"size": "33Gi", "storageClass": "fast-ssd"},
    }


def test_metrics_are_on_and_prometheus_selects_the_service_monitor(stack_run, cfg):
    values = milvus_values(stack_run)
    monitor = values["metrics"]["serviceMonitor"]
    assert values["metrics"]["enabled"] is True
    assert monitor["enabled"] is cfg.monitoring.enabled is True
    part_of = monitor["additionalLabels"]["app.kubernetes.io/part-of"]
    assert part_of in monitoring_chart.SELECTED_PART_OF
    monitoring = next(r for r in stack_run.releases if r.inputs["chart"] == "kube-prometheus-stack")
    assert monitoring.urn in milvus_release(stack_run).dependencies


def test_without_monitoring_there_is_no_service_monitor_to_wait_for(tuned_without_monitoring):
    values = milvus_values(tuned_without_monitoring)
    assert values["metrics"]["enabled"] is True
    assert values["metrics"]["serviceMonitor"]["enabled"] is False
    assert not [r for r in tuned_without_monitoring.releases if r.inputs["chart"] == "kube-prometheus-stack"]
    assert all("monitoring" not in d for d in milvus_release(tuned_without_monitoring).dependencies)


def test_images_are_the_charts_and_follow_the_registry_mirror(stack_run, cfg):
    upstream = upstream_values()
    assert upstream["image"]["all"]["repository"] == versions.MILVUS_IMAGE
    # etcd: the parent chart's milvusdb/etcd, not the Bitnami subchart's own (bitnami/etcd) default.
    assert upstream["etcd"]["image"]["repository"] == versions.MILVUS_ETCD_IMAGE
    assert upstream_values("charts", "etcd")["image"]["repository"] == "bitnami/etcd"
    values = milvus_values(stack_run)
    # Tags stay the chart's: we only ever replace a repository or a registry.
    assert set(values.get("image", {}).get("all", {})) <= {"repository"}
    assert set(values["etcd"].get("image", {})) <= {"registry"}
    if cfg.cluster.image_registry:
        assert values["image"] == {"all": {"repository": mirrored(versions.MILVUS_IMAGE, cfg.cluster.image_registry)}}
        assert values["etcd"]["image"] == {"registry": cfg.cluster.image_registry}
    else:
        assert "image" not in values and "image" not in values["etcd"]


# --- what the component exposes -------------------------------------------------------------------------------------


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        return {}


class _Store(NamedTuple):
    """What Milvus uses of the in-cluster object store."""

    endpoint: str
    credentials: S3Credentials
    release: pulumi.Resource


def _build(stack: str, in_cluster_store: bool = True):
    """A Milvus component of a stack's config, built alone under mocks (with a stand-in for the in-cluster object
    store unless ``in_cluster_store`` is false)."""
    cfg = stack_cfg(stack)
    built = {}
    in_cluster = cfg.object_store.mode == "in-cluster"

    def program():
        store = _Store(
            "http://s3.store.svc:8333",
            S3Credentials(
                SecretRef("object-store", "a", pulumi.Output.secret("a")),
                SecretRef("object-store", "b", pulumi.Output.secret("b")),
            ),
            pulumi.ComponentResource("test:index:Store", "object-store"),
        )
        args = component.MilvusArgs(
            cfg.cluster,
            cfg.namespaces,
            cfg.milvus,
            cfg.object_store,
            object_store=store if in_cluster and in_cluster_store else None,
            monitoring=None,
            platform_secrets=PlatformSecrets(cfg.secrets),
        )
        built["milvus"] = component.Milvus("milvus", args)

    settings.reset_options()
    pulumi.runtime.set_mocks(_Mocks(), project="ai-platform", stack=stack, preview=False)
    _sync_await(run_pulumi_func(program))
    return cfg, built["milvus"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_component_exposes_url_port_and_the_api_pods_labels(stack):
    cfg, milvus = _build(stack)
    upstream = upstream_values()
    chart = yaml.safe_load((upstream_dir() / "milvus" / "Chart.yaml").read_text())
    assert milvus.port == upstream["service"]["port"] == 19530
    # The chart's Service is named after the release (which contains the chart name) and selects these pods.
    assert milvus.url == f"{component.RELEASE}.{cfg.namespaces.milvus}.svc:19530"
    assert milvus.pod_labels == {
        "app.kubernetes.io/name": chart["name"],
        "app.kubernetes.io/instance": component.RELEASE,
        "component": "standalone" if MODES[stack] == "standalone" else "proxy",
    }


def test_in_cluster_store_without_its_keys_is_refused():
    with pytest.raises(ValueError, match="credentials"):
        _build("dev", in_cluster_store=False)


# --- switching it off -----------------------------------------------------------------------------------------------


def test_switching_milvus_off_removes_everything_it_owns(milvus_off):
    assert not [r for r in milvus_off.releases if r.inputs["chart"] == "milvus"]
    assert not [r for r in milvus_off.of_kind("Namespace") if r.k8s_name == "milvus"]
    assert not [r for r in milvus_off.of_kind("Secret") if r.k8s_name in (component.ROOT_SECRET, component.S3_SECRET)]
    assert not [r for r in milvus_off.resources if r.type == COMPONENT_TYPE or r.name.startswith("milvus")]
    assert not [r for r in milvus_off.objects if r.namespace == "milvus"]
    # The rest of the platform is still there, the object store too (MLflow still uses it).
    charts = {r.inputs["chart"] for r in milvus_off.releases}
    assert {"volcano", "kube-prometheus-stack", "seaweedfs"} <= charts
