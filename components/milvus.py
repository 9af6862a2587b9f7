"""``Milvus``: the vector database the tenants share, standalone in dev, cluster in prod.

Owns:
- the Milvus namespace, Pod Security ``baseline``: the chart sets no securityContext on the Milvus pods (the
  ``milvusdb/milvus`` image runs as root) and its bundled etcd (Bitnami etcd chart, image ``milvusdb/etcd``) runs as
  UID 1001 without dropping capabilities or a seccomp profile, so ``restricted`` would reject both; nothing asks
  for host namespaces, hostPath or privilege, which ``baseline`` forbids;
- the root password in the Secret ``milvus-root`` (keys ``username``, the literal ``root``, and ``password``: a
  ``RandomPassword`` of 32 characters, or from the external store the property ``password`` of
  ``<keyPrefix>/milvus-root``), through ``PlatformSecrets``;
- with the in-cluster object store: the Secret ``milvus-object-store`` holding the store's generated S3 keys (keys
  ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, the same keys ``objectStore.credentialsSecret`` must have); with an
  external store's ``credentialsSecret`` and ``secrets.source: external-secrets``, an ExternalSecret of that name;
- the Helm release ``milvus`` of the pinned chart: ``standalone`` (one pod) or ``cluster`` (proxy, mixCoordinator,
  queryNode, dataNode, streamingNode) per ``milvus.mode``, with etcd (the chart's bundled subchart) as metadata store.

Dependencies the 5.0 chart / Milvus 2.6 expect. Object storage is the platform's store, never the chart's MinIO
(``minio.enabled: false``, ``externalS3.*``: host/port/TLS from the store's endpoint URL, or AWS S3 of the region;
bucket ``objectStore.milvusBucket``). The write-ahead log is Woodpecker embedded in the streaming node (standalone:
in the standalone pod) on that same object storage (``woodpecker.enabled``, ``streaming.woodpecker.embedded``,
``storage.type: minio``), as the Milvus 2.6 Helm guide installs it; Pulsar (the chart's default ``pulsarv3``) and
Kafka stay off. So ``milvus.storage.messageQueue`` sizes the standalone pod's data volume (``/var/lib/milvus``);
a cluster has no message-queue volume: its log lives in the bucket. ``milvus.storage.etcd`` sizes etcd's volumes;
``storageClass`` applies to both.

Credentials never go into Helm values. The chart renders ``externalS3.accessKey``/``secretKey`` in clear into its
ConfigMap (zilliztech/milvus-helm#296), so they stay empty. Milvus reads every configuration key also from the
environment, and the environment wins over the files: its config manager adds an environment source whose keys are
lower-cased with ``_`` and ``.`` removed, at a higher priority than the YAML files. ``MINIO_ACCESS_KEY_ID`` and
``MINIO_SECRET_ACCESS_KEY`` (documented for ``minio.accessKeyID``/``minio.secretAccessKey``) therefore override
the empty keys, and ``COMMON_SECURITY_DEFAULTROOTPASSWORD`` sets ``common.security.defaultRootPassword``, the root
password rootcoord gives the ``root`` user when it first creates it. Each comes from a ``secretKeyRef`` in the chart's
per-component ``extraEnv``: the S3 keys in every Milvus pod (all of them load the storage config), the root password
only where rootcoord runs (standalone, mixCoordinator). With an external store and ``serviceAccountAnnotations`` (no
``credentialsSecret``) there are no keys at all: ``externalS3.useIAM`` and the annotations on the chart's
ServiceAccount ``milvus`` (workload identity). Authentication is on (``common.security.authorizationEnabled`` in
``extraConfigFiles.user.yaml``). The root password applies at first start only: changing the Secret later does not
change the password of an existing installation (do that with the Milvus API).

Tenant isolation (``add_tenant_accounts``): per tenant a database ``tenant_<tenant>`` (``-`` becomes ``_``), a user and
a role of the same name (``tenant_user``: at most 32 characters, shortened with a hash), the role granted the
built-in privilege groups ``DatabaseAdmin`` and ``CollectionAdmin`` on that database only (``grant_privilege_v2``
with ``db_name`` = the tenant's database, ``collection_name`` ``*``), nothing at cluster level; the ``public`` role
every user holds is granted nothing (``common.security.enablePublicPrivilege: false``). The tenant's credentials reach
its namespace only, as the Secret ``milvus-credentials`` (``MILVUS_URI``, ``MILVUS_USER``, ``MILVUS_PASSWORD``,
``MILVUS_DB_NAME``, ``MILVUS_TOKEN`` = ``user:password``), the password generated (from the store: property
``password`` of ``<keyPrefix>/milvus-tenant-<tenant>``). A setup Job ``milvus-accounts-<hash>`` in the Milvus
namespace applies it as root through the RESTful API v2 (``/v2/vectordb/...`` on the API port) after the release:
idempotent, credentials from Secrets only, renamed (so run again) when the tenant list changes. Milvus cannot reset a
password without the old one unless the caller is a configured superuser: the Job drops and recreates a user whose
stored password differs from its Secret (its data stays: it belongs to the database, not to the user).

Clients reach the gRPC API at ``url`` (``milvus.<namespace>.svc:19530``); the pods behind it (the standalone pod or the
proxies) carry ``pod_labels``, for NetworkPolicies. Metrics are on; with monitoring, the chart's ServiceMonitor
(labelled ``app.kubernetes.io/part-of: ai-platform`` so that Prometheus selects it) and the release waits for the
monitoring release that installs its CRD. ``cluster.imageRegistry`` replaces the registry of the Milvus and etcd
images; the chart pins their tags. The chart keeps the standalone data PVC (``helm.sh/resource-policy: keep``) and
etcd's StatefulSet PVCs on uninstall: delete them by hand to drop the data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from urllib.parse import urlsplit

import pulumi
import yaml

from config import versions
from config.cluster import Cluster
from config.data import Milvus as MilvusConfig
from config.data import ObjectStore
from config.services import service

from . import objectstore
from .meta import PART_OF, ComponentArgs, helm_release, mirrored, platform_namespace, setup_job
from .objectstore import S3_ACCESS_KEY, S3_SECRET_KEY
from .programs import source
from .secrets import PlatformSecrets, SecretRef, Template

COMPONENT = "milvus"
POD_SECURITY = "baseline"
RELEASE = versions.MILVUS.name
# The chart's fullname is the release name when it contains the chart name: Service `milvus`, port 19530.
SERVICE = RELEASE
PORT = service("milvus").port  # the chart's API port (19530), what tenants may reach

ROOT_SECRET = "milvus-root"
# Per tenant: a database, a user and a role with privileges on that database only. The Secret CREDENTIALS_SECRET in
# the tenant namespace holds what a client needs (keys CREDENTIAL_KEYS); the password comes from the remote key
# ``milvus-tenant-<tenant>`` (property ``password``), for the setup Job also through ACCOUNTS_SECRET in the Milvus
# namespace.
CREDENTIALS_SECRET = "milvus-credentials"
URI_KEY, USER_KEY, PASSWORD_ENV_KEY, DATABASE_KEY, TOKEN_KEY = (
    "MILVUS_URI",
    "MILVUS_USER",
    "MILVUS_PASSWORD",
    "MILVUS_DB_NAME",
    "MILVUS_TOKEN",
)
ACCOUNTS_SECRET = "milvus-tenant-accounts"
ACCOUNTS_JOB = "milvus-accounts"
# Milvus's built-in privilege groups (2.5+): everything on the database's collections and data, and creating,
# describing, altering and dropping collections in it; granted with db_name = the tenant's database and
# collection_name "*". Nothing at cluster level.
TENANT_PRIVILEGE_GROUPS = ("DatabaseAdmin", "CollectionAdmin")
# Milvus user names: a letter, then letters, digits and underscores, at most proxy.maxUsernameLength (32) characters.
MAX_USERNAME = 32
ROOT_USER = "root"
ROOT_USER_KEY = "username"
ROOT_PASSWORD_KEY = "password"
S3_SECRET = "milvus-object-store"
SERVICE_ACCOUNT = "milvus"

# Environment variables Milvus maps onto minio.accessKeyID, minio.secretAccessKey, common.security.defaultRootPassword.
ENV_ACCESS_KEY = "MINIO_ACCESS_KEY_ID"
ENV_SECRET_KEY = "MINIO_SECRET_ACCESS_KEY"
ENV_ROOT_PASSWORD = "COMMON_SECURITY_DEFAULTROOTPASSWORD"

# Values sections of the Milvus pods per mode (all load the storage config), and where rootcoord runs.
COMPONENTS = {
    "standalone": ["standalone"],
    "cluster": ["proxy", "mixCoordinator", "queryNode", "dataNode", "streamingNode"],
}
ROOTCOORD = {"standalone": "standalone", "cluster": "mixCoordinator"}
# The chart's pod labels: its matchLabels (app.kubernetes.io/name is the chart name) plus `component`.
API_COMPONENT = {"standalone": "standalone", "cluster": "proxy"}


def _resources(cpu: str, memory: str, memory_limit: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


# Requests for a development standalone pod and for a production cluster (replicas, requests, memory limits; no CPU
# limits: Milvus's search threads are latency-sensitive and CPU throttling hurts more than it protects).
STANDALONE_RESOURCES = _resources("1", "4Gi", "8Gi")
CLUSTER_SIZING = {
    "proxy": (2, _resources("1", "2Gi", "4Gi")),
    "mixCoordinator": (2, _resources("1", "2Gi", "4Gi")),  # two with active-standby
    "queryNode": (2, _resources("4", "16Gi", "32Gi")),
    "dataNode": (2, _resources("2", "4Gi", "8Gi")),
    "streamingNode": (2, _resources("2", "4Gi", "8Gi")),
}
ETCD_SIZING = {"standalone": (1, _resources("100m", "256Mi", "1Gi")), "cluster": (3, _resources("500m", "1Gi", "2Gi"))}


def proxy_pod_labels(mode: str) -> dict[str, str]:
    """Labels of the pods serving the gRPC API: the standalone pod, or the proxies of a cluster."""
    return {
        "app.kubernetes.io/name": versions.MILVUS.name,
        "app.kubernetes.io/instance": RELEASE,
        "component": API_COMPONENT[mode],
    }


def _parse_endpoint(url: str) -> dict:
    """host, port and TLS of an S3 endpoint URL, ``http(s)://host[:port]``: Milvus's S3 client refuses endpoints with
    paths ("Endpoint url cannot have fully qualified paths"), and so does the config (``objectStore.endpoint``)."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    return {"host": parts.hostname, "port": parts.port or (443 if tls else 80), "useSSL": tls}


def s3_location(store: ObjectStore, endpoint: str | None) -> dict:
    """``externalS3`` host, port and useSSL: the in-cluster store's endpoint (``objectstore.s3_endpoint``, a plain
    URL), the external endpoint, or AWS S3."""
    if store.mode == "in-cluster":
        if endpoint is None:
            raise ValueError("Milvus with the in-cluster object store needs the store's endpoint")
        return _parse_endpoint(endpoint)
    if store.endpoint is not None:
        return _parse_endpoint(str(store.endpoint))
    return {"host": f"s3.{store.region}.amazonaws.com", "port": 443, "useSSL": True}


def uses_iam(store: ObjectStore) -> bool:
    """Workload identity instead of keys: an external store without ``credentialsSecret`` (the config model then
    requires ``serviceAccountAnnotations``)."""
    return store.mode == "external" and not store.credentials_secret


def credentials_secret(store: ObjectStore) -> str | None:
    """Name of the Secret (in the Milvus namespace) whose S3 keys Milvus gets, or None with workload identity."""
    if store.mode == "in-cluster":
        return S3_SECRET
    return store.credentials_secret


def _secret_env(name: str, secret: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def component_env(mode: str, component: str, s3_secret: str | None) -> list[dict]:
    """``extraEnv`` of one Milvus component: S3 keys and (where rootcoord runs) the root password, from Secrets."""
    env = []
    if s3_secret:
        env += [
            _secret_env(ENV_ACCESS_KEY, s3_secret, S3_ACCESS_KEY),
            _secret_env(ENV_SECRET_KEY, s3_secret, S3_SECRET_KEY),
        ]
    if component == ROOTCOORD[mode]:
        env.append(_secret_env(ENV_ROOT_PASSWORD, ROOT_SECRET, ROOT_PASSWORD_KEY))
    return env


def user_config() -> str:
    """``extraConfigFiles.user.yaml``: authentication on; nothing secret (the root password comes from the env). The
    built-in ``public`` role every user has is granted nothing (``enablePublicPrivilege: false``): by default it may
    describe any collection and list aliases in every database, which would show a tenant the others' schemas."""
    return yaml.safe_dump(
        {"common": {"security": {"authorizationEnabled": True, "enablePublicPrivilege": False}}}, sort_keys=False
    )


def tenant_database(tenant: str) -> str:
    """A tenant's Milvus database (letters, digits and underscores; tenant names have no ``_``, so distinct)."""
    return "tenant_" + tenant.replace("-", "_")


def token(user: str, password: SecretRef) -> Template:
    """The token a tenant's client logs in with: ``<user>:<password>``."""
    return Template(lambda value: pulumi.Output.concat(user, ":", value(password)))


def tenant_user(tenant: str) -> str:
    """A tenant's Milvus user and role: ``tenant_database``, or within MAX_USERNAME by a hash of the tenant name."""
    name = tenant_database(tenant)
    if len(name) <= MAX_USERNAME:
        return name
    return f"{name[: MAX_USERNAME - 9]}_{hashlib.sha256(tenant.encode()).hexdigest()[:8]}"


def tenant_remote(tenant: str) -> str:
    """The external store's key of a tenant's Milvus password (property ``password``)."""
    return f"milvus-tenant-{tenant}"


def tenant_grants(tenant: str) -> list[dict]:
    """The grants of a tenant's role: request bodies of ``/v2/vectordb/roles/grant_privilege_v2``."""
    return [
        {"roleName": tenant_user(tenant), "dbName": tenant_database(tenant), "collectionName": "*", "privilege": group}
        for group in TENANT_PRIVILEGE_GROUPS
    ]


# The setup Job's program: databases, roles, grants, users and their passwords, as root.
ACCOUNTS_SCRIPT = source("milvus_accounts")


def helm_values(
    milvus: MilvusConfig,
    store: ObjectStore,
    cluster: Cluster,
    endpoint: str | None,
    metrics_monitor: bool,
) -> dict:
    """Values of the Milvus chart (keys checked against the upstream values.yaml by the schema tier)."""
    mode, storage = milvus.mode, milvus.storage
    s3_secret = credentials_secret(store)
    iam = uses_iam(store)

    s3 = {
        "enabled": True,
        **s3_location(store, endpoint),
        "bucketName": store.buckets["milvus"],
        "rootPath": "files",
        "useIAM": iam,
        "cloudProvider": "aws",
        "region": store.region,
        "useVirtualHost": False,
    }

    etcd_replicas, etcd_resources = ETCD_SIZING[mode]
    etcd_persistence: dict = {"enabled": True, "size": storage.etcd}
    if storage.storage_class:
        etcd_persistence["storageClass"] = storage.storage_class
    etcd: dict = {
        "enabled": True,
        "replicaCount": etcd_replicas,
        "persistence": etcd_persistence,
        "resources": etcd_resources,
        "pdb": {"create": etcd_replicas > 1},
    }

    service_account: dict = {"create": True, "name": SERVICE_ACCOUNT, "labels": {"app.kubernetes.io/part-of": PART_OF}}
    if store.service_account_annotations:
        service_account["annotations"] = dict(store.service_account_annotations)

    values: dict = {
        "cluster": {"enabled": mode == "cluster"},
        "labels": {"app.kubernetes.io/part-of": PART_OF},
        "serviceAccount": service_account,
        "extraConfigFiles": {"user.yaml": user_config()},
        "metrics": {
            "enabled": True,
            "serviceMonitor": {"enabled": metrics_monitor, "additionalLabels": {"app.kubernetes.io/part-of": PART_OF}},
        },
        "minio": {"enabled": False},
        "externalS3": s3,
        "etcd": etcd,
        # Write-ahead log: Woodpecker embedded in the streaming node / standalone pod, on the object store.
        "streaming": {"enabled": True, "woodpecker": {"embedded": True, "storage": {"type": "minio"}}},
        "woodpecker": {"enabled": True},
        "pulsarv3": {"enabled": False},
        "pulsar": {"enabled": False},
        "kafka": {"enabled": False},
        "attu": {"enabled": False},
    }
    if mode == "standalone":
        persistence: dict = {"enabled": True, "persistentVolumeClaim": {"size": storage.message_queue}}
        if storage.storage_class:
            persistence["persistentVolumeClaim"]["storageClass"] = storage.storage_class
        values["standalone"] = {
            "messageQueue": "woodpecker",
            "resources": STANDALONE_RESOURCES,
            "persistence": persistence,
            "extraEnv": component_env(mode, "standalone", s3_secret),
        }
    else:
        for component, (replicas, resources) in CLUSTER_SIZING.items():
            values[component] = {"replicas": replicas, "resources": resources}
            env = component_env(mode, component, s3_secret)
            if env:
                values[component]["extraEnv"] = env
        values["mixCoordinator"]["activeStandby"] = {"enabled": True}
    if cluster.image_registry:
        values["image"] = {"all": {"repository": mirrored(versions.MILVUS_IMAGE, cluster.image_registry)}}
        etcd["image"] = {"registry": cluster.image_registry}
    return values


@dataclass(frozen=True)
class MilvusArgs(ComponentArgs):
    """What ``Milvus`` is built from (besides the cluster and namespaces): its config and the object store's;
    keyword-only, the components it uses: the in-cluster object store (endpoint, generated keys, the release it
    waits for), the monitoring release (its ServiceMonitor's CRD) and the platform's Secrets."""

    milvus: MilvusConfig
    store: ObjectStore
    _: KW_ONLY
    object_store: objectstore.ObjectStore | None
    monitoring: pulumi.Resource | None
    platform_secrets: PlatformSecrets


class Milvus(pulumi.ComponentResource):
    """Milvus namespace, root password and S3 key Secrets, and the Milvus release (see the module docstring)."""

    def __init__(self, name: str, args: MilvusArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:milvus:Milvus", name, None, opts)
        milvus, store, cluster, namespaces = args.milvus, args.store, args.cluster, args.namespaces
        monitoring, platform_secrets, protect = args.monitoring, args.platform_secrets, args.protect
        in_cluster_store = args.object_store
        self.namespace = platform_namespace(
            f"{name}-namespace",
            namespaces.milvus,
            COMPONENT,
            POD_SECURITY,
            cluster.kubernetes_version,
            self,
            protect=protect,
        )
        ns = self.namespace.metadata["name"]

        password = platform_secrets.generated(f"{name}-root-password", 32, ROOT_SECRET, ROOT_PASSWORD_KEY, parent=self)
        self.root_secret = platform_secrets.secret(
            f"{name}-root", ROOT_SECRET, ns, COMPONENT, self, {ROOT_USER_KEY: ROOT_USER, ROOT_PASSWORD_KEY: password}
        )

        self.s3_secret = objectstore.service_keys(
            name, S3_SECRET, ns, COMPONENT, self, store, in_cluster_store, platform_secrets
        )

        values = helm_values(
            milvus,
            store,
            cluster,
            in_cluster_store.endpoint if in_cluster_store else None,
            metrics_monitor=monitoring is not None,
        )
        # Waits for the object store's release (Milvus exits while its storage is unreachable, and crash-loop backoff
        # could outlast the wait) and the monitoring release (the chart's ServiceMonitor needs its CRD). Not for its
        # Secrets: the pods name them in ``secretKeyRef``s, so no container starts (no root password is set without
        # the Secret) until they exist, and the kubelet retries within the 900 s wait. Waiting would put the release
        # one wave after the External Secrets operator's, and the accounts Job (which waits for it) one more.
        self.release = helm_release(
            f"{name}-release",
            versions.MILVUS,
            ns,
            values,
            self,
            cluster=args.cluster,
            depends_on=[
                *([in_cluster_store.release] if in_cluster_store else []),
                *([monitoring] if monitoring else []),
            ],
            timeout=900,
            release_name=RELEASE,
            protect=protect,
        )
        self.port = PORT
        self.url = f"{SERVICE}.{namespaces.milvus}.svc:{PORT}"
        self.pod_labels = proxy_pod_labels(milvus.mode)
        self._name, self._secrets, self._ns = name, platform_secrets, ns
        self._image = mirrored(versions.MLFLOW_IMAGE, cluster.image_registry)
        self.accounts_job: pulumi.Resource | None = None
        self.register_outputs({"namespace": ns, "release": self.release.name, "url": self.url})

    def add_tenant_accounts(self, tenant_namespaces: Mapping[str, pulumi.Input[str]]) -> pulumi.Resource:
        """Per tenant a database, a user and a role (``tenant_database``, ``tenant_user``) with a generated password
        (from the store: ``milvus-tenant-<tenant>``), delivered as the Secret CREDENTIALS_SECRET in the tenant's
        namespace only; and the setup Job in the Milvus namespace, after the release (see ``ACCOUNTS_SCRIPT``). Its
        image is the pinned MLflow image (Python; the script needs nothing else, nothing is installed at run time)."""
        name, secrets = self._name, self._secrets
        uri = f"http://{self.url}"
        passwords: dict[str, SecretRef] = {}
        accounts = []
        for tenant, namespace in sorted(tenant_namespaces.items()):
            user = tenant_user(tenant)
            password = secrets.generated(
                f"{name}-{tenant}-password", 32, tenant_remote(tenant), ROOT_PASSWORD_KEY, parent=self
            )
            passwords[user] = password
            secrets.secret(
                f"{name}-{tenant}-credentials",
                CREDENTIALS_SECRET,
                namespace,
                COMPONENT,
                self,
                {
                    URI_KEY: uri,
                    USER_KEY: user,
                    PASSWORD_ENV_KEY: password,
                    DATABASE_KEY: tenant_database(tenant),
                    TOKEN_KEY: token(user, password),
                },
                tenant=tenant,
            )
            accounts.append(
                {
                    "user": user,
                    "database": tenant_database(tenant),
                    "grants": tenant_grants(tenant),
                    "password": "PASSWORD_" + user.upper(),
                }
            )
        accounts_secret = secrets.secret(
            f"{name}-tenant-accounts", ACCOUNTS_SECRET, self._ns, COMPONENT, self, passwords
        )
        secret_env = {
            "MILVUS_ROOT_USERNAME": (ROOT_SECRET, ROOT_USER_KEY),
            "MILVUS_ROOT_PASSWORD": (ROOT_SECRET, ROOT_PASSWORD_KEY),
            **{account["password"]: (ACCOUNTS_SECRET, account["user"]) for account in accounts},
        }
        env: list[dict] = [
            {"name": "MILVUS_URI", "value": uri},
            {"name": "ACCOUNTS", "value": json.dumps(accounts)},
            *[
                {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
                for variable, (secret, key) in secret_env.items()
            ],
        ]
        self.accounts_job = setup_job(
            f"{name}-accounts-job",
            ACCOUNTS_JOB,
            self._ns,
            COMPONENT,
            self._image,
            ACCOUNTS_SCRIPT,
            env,
            {"accounts": accounts, "uri": uri},
            self,
            [self.release, self.root_secret, accounts_secret],
        )
        return self.accounts_job
