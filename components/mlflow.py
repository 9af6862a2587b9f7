"""``Mlflow``: the shared MLflow tracking server, its Postgres backend and its S3 artifact store wiring.

Server: a Deployment this module owns, not the community ``mlflow`` chart (1.11.5). The chart could take the
database password and S3 keys from Secrets (``backendStore.existingDatabaseSecret``,
``artifactRoot.s3.existingSecret``) and its Bitnami postgresql/mysql and MinIO subcharts can stay off, but it is built
around its own image ``burakince/mlflow:3.15.1`` (a community build, behind the pinned release; its init containers
run scripts that image ships), it generates a Flask secret key Secret in a template (``randAlphaNum``: a credential
Pulumi neither generates nor sees, new on every ``helm template``), and it writes the Prometheus multiprocess files to
``/mlflow/metrics``, which the official image cannot write with a read-only root file system. The Deployment runs
the pinned official image ``ghcr.io/mlflow/mlflow:<MLFLOW_VERSION>-full``: the plain image ships neither psycopg2
nor boto3, the ``-full`` variant of the same release does.

Owns:
- the MLflow namespace ``namespaces.mlflow``, Pod Security ``restricted``: the server runs as uid/gid 1000 (the image
  defines no user, ``config.images.MLFLOW``: ``runAsUser`` is set, and ``USER``/``LOGNAME`` and ``HOME=/tmp`` for
  ``getpass.getuser()`` and the home directory), ``runAsNonRoot``, seccomp ``RuntimeDefault``, no privilege
  escalation, every capability dropped, read-only root file system with an ``emptyDir`` on ``/tmp`` (Prometheus
  multiprocess files, job queue); CloudNativePG's Postgres pods run non-root with the same restrictions;
- the backend store. ``in-cluster``: on the shared CloudNativePG operator (``components.postgres``, given as
  ``postgres``), the Cluster ``mlflow-db`` with the app user's Secret ``mlflow-db-credentials`` (``username`` the
  literal ``database.user``; ``postgres.database_cluster``: ``database.instances``, ``size``, ``storageClass``,
  ``bootstrap.initdb`` creates ``database.name`` owned by ``database.user``), reached as
  ``mlflow-db-rw.<ns>.svc:5432``. ``external``: the
  password comes from the Secret ``database.passwordSecret`` (key ``password``), which the operator creates (source
  pulumi) or an ExternalSecret of ``<keyPrefix>/<passwordSecret>`` provides;
- the artifact store. In-cluster SeaweedFS: the store's generated keys copied into the Secret ``mlflow-s3``
  (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) and ``MLFLOW_S3_ENDPOINT_URL`` set to the gateway. External S3: the
  Secret ``objectStore.credentialsSecret`` referenced by name (from the store: an ExternalSecret of that name in the
  MLflow namespace), or the workload identity
  ``objectStore.serviceAccountAnnotations`` on the ServiceAccount ``mlflow``; ``MLFLOW_S3_ENDPOINT_URL`` only for a
  custom ``objectStore.endpoint``. Bucket ``objectStore.buckets["mlflow"]``. The server proxies artifacts
  (``--serve-artifacts --artifacts-destination s3://<bucket>``): clients in tenant namespaces log and fetch
  artifacts through MLflow and never hold S3 credentials;
- the server: ServiceAccount, Deployment ``mlflow`` (``mlflow.replicas``, requests == limits from
  ``mlflow.resources``, startup/readiness/liveness probes on ``/health``, rolling updates without unavailability, a
  PodDisruptionBudget with more than one replica), Service ``mlflow`` (port ``http`` 5000), and with monitoring a
  PodMonitor on the server's ``/metrics`` (``--expose-prometheus``) and one on the CNPG instances' exporter (port
  ``metrics``; the Cluster's own ``monitoring.enablePodMonitor`` is deprecated).

Credentials never appear in a value: the backend store URI names host, port and database only
(``postgresql+psycopg2://<host>:<port>/<db>``); libpq takes the user and password from ``PGUSER``/``PGPASSWORD``,
which come from the Secret by ``secretKeyRef`` (so any password works, no URL quoting, and it is in no process
argument). The S3 keys come the same way. Host header checks (MLflow's ``--allowed-hosts``, by
``MLFLOW_SERVER_ALLOWED_HOSTS``) accept the Service's names, localhost and private addresses (Prometheus scrapes by
pod IP); ``/health`` is exempt.

Authentication and tenant isolation: MLflow's own basic-auth app with no default permission, one account per tenant
(``add_tenant_accounts``) and, with monitoring, Prometheus's, created by a setup Job: ``components.mlflow_auth`` builds
them and says why.

Database schema: on an empty database the server creates MLflow's tables at start. A new MLflow pin whose schema
changed refuses to start on the old schema: run ``mlflow db upgrade`` with the new image first (same environment).
``cluster.imageRegistry`` replaces the registry of the MLflow, Postgres and operator images (tags stay pinned).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass

import pulumi

from config import images, versions
from config.data import Mlflow as MlflowConfig
from config.data import ObjectStore as ObjectStoreConfig
from config.services import service

from . import mlflow_auth as auth
from . import postgres as pg
from .meta import ComponentArgs, kube, labels, metadata, mirrored, platform_namespace
from .objectstore import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ObjectStore
from .pods import TMP, restricted_container, restricted_pod, tmp_mount, tmp_volume
from .secrets import PlatformSecrets, SecretRef

COMPONENT = "mlflow"
POD_SECURITY = "restricted"

SERVER = "mlflow"
PORT = service("mlflow").port  # what tenants may reach (config.services)
PORT_NAME = "http"
# Labels of the tracking server's pods (the Deployment's selector), for NetworkPolicies and monitors.
SERVER_POD_LABELS = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/component": COMPONENT}
SERVICE_ACCOUNT = "mlflow"
UID = 1000
PROMETHEUS_DIR = f"{TMP}/prometheus"

DB_CLUSTER = "mlflow-db"
DB_APP_SECRET = pg.credentials_secret(DB_CLUSTER)
S3_SECRET = "mlflow-s3"
PASSWORD_KEY = pg.PASSWORD_KEY
USERNAME_KEY = pg.USERNAME_KEY

# MLflow's default allowed hosts (localhost and RFC 1918/4193 private addresses, mlflow/server/security_utils.py),
# restated because setting MLFLOW_SERVER_ALLOWED_HOSTS replaces them.
PRIVATE_HOSTS = [
    "localhost",
    "localhost:*",
    "127.0.0.1",
    "127.0.0.1:*",
    "10.*",
    "192.168.*",
    *[f"172.{i}.*" for i in range(16, 32)],
    "fc00:*",
    "fd00:*",
]


def allowed_hosts(namespace: str) -> list[str]:
    """Host headers the server accepts: the Service's in-cluster names (with any port), then the defaults."""
    names = [SERVER, f"{SERVER}.{namespace}", f"{SERVER}.{namespace}.svc", f"{SERVER}.{namespace}.svc.cluster.local"]
    return [host for name in names for host in (name, f"{name}:*")] + PRIVATE_HOSTS


def server_url(namespace: str) -> str:
    """The tracking server's in-cluster URL (the Service ``mlflow`` in ``namespace``)."""
    return f"http://{SERVER}.{namespace}.svc:{PORT}"


@dataclass(frozen=True)
class MlflowArgs(ComponentArgs):
    """What ``Mlflow`` is built from (besides the cluster and namespaces): its config and the object store's;
    keyword-only, the components it uses: the in-cluster object store, the monitoring release (its ServiceMonitor's
    CRD), the CloudNativePG operator (an in-cluster database) and the platform's Secrets."""

    mlflow: MlflowConfig
    store: ObjectStoreConfig
    _: KW_ONLY
    object_store: ObjectStore | None
    monitoring: pulumi.Resource | None
    postgres: pg.CloudNativePg | None
    platform_secrets: PlatformSecrets


class Mlflow(pulumi.ComponentResource):
    """MLflow namespace, Postgres (CloudNativePG or external), artifact credentials, tracking server (see the module
    docstring)."""

    def __init__(self, name: str, args: MlflowArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:mlflow:Mlflow", name, None, opts)
        mlflow, store, cluster, namespaces = args.mlflow, args.store, args.cluster, args.namespaces
        object_store, monitoring, postgres = args.object_store, args.monitoring, args.postgres
        platform_secrets, protect = args.platform_secrets, args.protect
        if store.mode == "in-cluster" and object_store is None:
            raise ValueError("an in-cluster object store must be created before MLflow and passed to it")
        if mlflow.database.mode == "in-cluster" and postgres is None:
            raise ValueError("an in-cluster database needs the CloudNativePG operator (postgres) passed to MLflow")
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = platform_namespace(
            f"{name}-namespace",
            namespaces.mlflow,
            COMPONENT,
            POD_SECURITY,
            cluster.kubernetes_version,
            self,
            protect=protect,
        )
        ns = self.namespace.metadata["name"]
        secrets: list[pulumi.Resource] = []

        database = mlflow.database
        self.postgres: pulumi.CustomResource | None
        self.db_secret: pulumi.Resource | None
        db_user: dict[str, object]
        if database.mode == "in-cluster" and postgres is not None:
            # The backend store of every tenant: protected with MLflow.
            db = pg.database_cluster(
                f"{name}-db",
                DB_CLUSTER,
                database,
                cluster,
                ns,
                COMPONENT,
                postgres,
                platform_secrets,
                self,
                protect=protect,
            )
            self.postgres, self.db_secret = db.cluster, db.secret
            secrets.append(self.db_secret)
            self.db_host, self.db_port = pg.host(DB_CLUSTER, namespaces.mlflow), pg.PORT
            db_user = {"valueFrom": {"secretKeyRef": {"name": db.secret_name, "key": USERNAME_KEY}}}
            db_password_secret = db.secret_name
        else:
            self.postgres = None
            # The operator's Secret (source pulumi: nothing registered) or its ExternalSecret.
            self.db_secret = platform_secrets.existing(
                f"{name}-db-password-secret", database.external_password_secret, ns, COMPONENT, self, [PASSWORD_KEY]
            )
            secrets += [self.db_secret] if self.db_secret else []
            self.db_host, self.db_port = database.external_host, database.port
            db_user = {"value": database.user}
            db_password_secret = database.external_password_secret

        bucket = store.buckets["mlflow"]
        s3_env: list[dict] = []
        s3_secret_name = None
        endpoint_url: str | None
        self.s3_secret: pulumi.Resource | None
        if store.mode == "in-cluster" and object_store is not None:
            self.s3_secret = platform_secrets.secret(
                f"{name}-s3",
                S3_SECRET,
                ns,
                COMPONENT,
                self,
                {
                    ACCESS_KEY_ID: object_store.credentials.access_key_id,
                    SECRET_ACCESS_KEY: object_store.credentials.secret_access_key,
                },
            )
            secrets.append(self.s3_secret)
            s3_secret_name = S3_SECRET
            endpoint_url = object_store.endpoint
        else:
            self.s3_secret = (
                platform_secrets.existing(
                    f"{name}-s3-credentials",
                    store.credentials_secret,
                    ns,
                    COMPONENT,
                    self,
                    [ACCESS_KEY_ID, SECRET_ACCESS_KEY],
                )
                if store.credentials_secret
                else None
            )
            secrets += [self.s3_secret] if self.s3_secret else []
            s3_secret_name = store.credentials_secret
            endpoint_url = str(store.endpoint).rstrip("/") if store.endpoint else None
        if s3_secret_name:
            s3_env += [
                {"name": key, "valueFrom": {"secretKeyRef": {"name": s3_secret_name, "key": key}}}
                for key in (ACCESS_KEY_ID, SECRET_ACCESS_KEY)
            ]
        if endpoint_url:
            s3_env.append({"name": "MLFLOW_S3_ENDPOINT_URL", "value": endpoint_url})
        s3_env.append({"name": "AWS_DEFAULT_REGION", "value": store.region})

        self.service_account = kube(
            f"{name}-service-account",
            api_version="v1",
            kind="ServiceAccount",
            metadata={
                **metadata(SERVICE_ACCOUNT, COMPONENT, namespace=ns),
                **(
                    {"annotations": dict(store.service_account_annotations)}
                    if store.mode == "external" and store.service_account_annotations
                    else {}
                ),
            },
            automountServiceAccountToken=False,
            opts=child,
        )

        backend_store_uri = f"postgresql+psycopg2://{self.db_host}:{self.db_port}/{database.name}"
        # Authentication: the auth config file, the admin account and the Flask secret key.
        self.auth_secret = auth.auth_secret(name, platform_secrets, ns, COMPONENT, self, backend_store_uri)
        secrets.append(self.auth_secret)
        env = [
            {"name": "PGUSER", **db_user},
            {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": db_password_secret, "key": PASSWORD_KEY}}},
            *s3_env,
            {"name": "MLFLOW_SERVER_ALLOWED_HOSTS", "value": ",".join(allowed_hosts(namespaces.mlflow))},
            *auth.server_env(),
            *images.identity_env(TMP),
        ]
        server_args = [
            "server",
            "--app-name",
            auth.APP_NAME,
            "--host",
            "0.0.0.0",
            "--port",
            str(PORT),
            "--backend-store-uri",
            backend_store_uri,
            "--serve-artifacts",
            "--artifacts-destination",
            f"s3://{bucket}",
            "--expose-prometheus",
            PROMETHEUS_DIR,
        ]
        probe: dict = {"httpGet": {"path": "/health", "port": PORT_NAME}, "timeoutSeconds": 5}
        resources = {"cpu": mlflow.resources.cpu, "memory": mlflow.resources.memory}
        image = mirrored(versions.MLFLOW_IMAGE, cluster.image_registry)
        pod_labels = {**labels(COMPONENT), **SERVER_POD_LABELS}
        self.deployment = kube(
            f"{name}-server",
            api_version="apps/v1",
            kind="Deployment",
            metadata=metadata(SERVER, COMPONENT, namespace=ns, extra_labels=SERVER_POD_LABELS),
            spec={
                "replicas": mlflow.replicas,
                "selector": {"matchLabels": dict(SERVER_POD_LABELS)},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "serviceAccountName": SERVICE_ACCOUNT,
                        "automountServiceAccountToken": False,
                        "securityContext": restricted_pod(UID, gid=UID),
                        "containers": [
                            {
                                "name": "mlflow",
                                "image": image,
                                "command": ["mlflow"],
                                "args": server_args,
                                "env": env,
                                "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
                                "startupProbe": {**probe, "periodSeconds": 10, "failureThreshold": 30},
                                "readinessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3},
                                "livenessProbe": {**probe, "periodSeconds": 20, "failureThreshold": 3},
                                "resources": {"requests": resources, "limits": dict(resources)},
                                "securityContext": restricted_container(),
                                "volumeMounts": [tmp_mount(), auth.config_mount()],
                            }
                        ],
                        "volumes": [tmp_volume(), auth.config_volume()],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service_account, *secrets]),
        )
        self.service = kube(
            f"{name}-service",
            api_version="v1",
            kind="Service",
            metadata=metadata(SERVER, COMPONENT, namespace=ns),
            spec={
                "type": "ClusterIP",
                "selector": dict(SERVER_POD_LABELS),
                "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
            },
            opts=child,
        )
        self.disruption_budget = (
            kube(
                f"{name}-server-pdb",
                api_version="policy/v1",
                kind="PodDisruptionBudget",
                metadata=metadata(SERVER, COMPONENT, namespace=ns),
                spec={"maxUnavailable": 1, "selector": {"matchLabels": dict(SERVER_POD_LABELS)}},
                opts=child,
            )
            if mlflow.replicas > 1
            else None
        )

        self.monitors = []
        # Accounts the setup Job creates: the tenants' (``add_tenant_accounts``) and Prometheus's.
        self._accounts: dict[str, SecretRef] = {}
        if monitoring is not None:
            after = pulumi.ResourceOptions(parent=self, depends_on=[monitoring])
            # The auth app protects /metrics too: Prometheus logs in with an account of its own.
            metrics_password, metrics_secret, basic_auth = auth.metrics_credentials(
                name, platform_secrets, ns, COMPONENT, self
            )
            self._accounts[auth.METRICS_USER] = metrics_password
            self.monitors.append(
                kube(
                    f"{name}-server-monitor",
                    api_version="monitoring.coreos.com/v1",
                    kind="PodMonitor",
                    metadata=metadata(SERVER, COMPONENT, namespace=ns),
                    spec={
                        "selector": {"matchLabels": dict(SERVER_POD_LABELS)},
                        "podMetricsEndpoints": [
                            {"port": PORT_NAME, "path": "/metrics", "scheme": "http", "basicAuth": basic_auth}
                        ],
                    },
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[monitoring, metrics_secret]),
                )
            )
            if self.postgres is not None:
                self.monitors.append(
                    kube(
                        f"{name}-db-monitor",
                        api_version="monitoring.coreos.com/v1",
                        kind="PodMonitor",
                        metadata=metadata(DB_CLUSTER, COMPONENT, namespace=ns),
                        spec=pg.monitor_spec(DB_CLUSTER),
                        opts=after,
                    )
                )

        self.url = server_url(namespaces.mlflow)
        self.pod_labels = dict(SERVER_POD_LABELS)
        self.port = PORT
        self.namespace_name = namespaces.mlflow
        self._secrets, self._ns, self._image = platform_secrets, ns, image
        self.accounts_job: pulumi.Resource | None = None
        self.register_outputs({"namespace": ns, "url": self.url, "deployment": self.deployment.metadata["name"]})

    def add_tenant_accounts(self, tenant_namespaces: Mapping[str, pulumi.Input[str]]) -> pulumi.Resource:
        """One account per tenant, its credentials Secret in the tenant's namespace, and the setup Job that creates
        the accounts (Prometheus's too) as the admin (``mlflow_auth.tenant_accounts``). With default NO_PERMISSIONS an
        account sees only what it created (MLflow grants the creator MANAGE) or was granted."""
        self.accounts_job = auth.tenant_accounts(
            self._name,
            self._secrets,
            self._ns,
            COMPONENT,
            self,
            self.url,
            self._image,
            self._accounts,
            tenant_namespaces,
            self.auth_secret,
        )
        return self.accounts_job
