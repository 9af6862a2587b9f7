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

Authentication and tenant isolation: MLflow's own basic-auth app (``mlflow server --app-name basic-auth``), not an
auth proxy in front of the server. A proxy can only say who may reach the server; it cannot filter inside MLflow, so
every tenant would see every experiment, run, artifact and registered model. The basic-auth app keeps users and
per-resource permissions and checks them on every REST call, on the artifact proxy and on searches (results filtered
to what the caller may read). Its config file (``MLFLOW_AUTH_CONFIG_PATH``, key ``basic_auth.ini`` of the Secret
``mlflow-auth``, mounted alone): ``default_permission = NO_PERMISSIONS``; ``database_uri`` = the backend store's URI,
so users and permissions live in the same Postgres database that every replica shares (their migrations keep their own
``alembic_version_auth`` table), with the credentials again from ``PGUSER``/``PGPASSWORD``, none in the file; the admin
account ``admin`` with a generated password (property ``admin-password`` of ``<keyPrefix>/mlflow-auth``), which MLflow
applies when it first creates the admin only (change it later with the API); the Flask secret key every replica shares
(``MLFLOW_FLASK_SERVER_SECRET_KEY``, generated, from the same Secret). The Secret is built by ``PlatformSecrets``
(a ``Template`` over the generated admin password; an ExternalSecret template with the store). With no default
permission, an account reads and changes only the experiments and registered models it created (MLflow grants the
creator MANAGE) or was granted; searches list only those. Accounts: one per tenant (``add_tenant_accounts``), user
``tenant-<tenant>``, its generated password (``<keyPrefix>/mlflow-tenant-<tenant>``) in the Secret
``mlflow-credentials`` of the tenant's namespace (``MLFLOW_TRACKING_USERNAME``, ``MLFLOW_TRACKING_PASSWORD``,
``MLFLOW_TRACKING_URI``: what MLflow's client reads); and, with monitoring, ``prometheus`` for the PodMonitor (the app
protects ``/metrics`` too; ``/health`` stays open for the probes). A setup Job ``mlflow-accounts-<hash>`` in the MLflow
namespace creates missing accounts and sets every account's password to its Secret's value, as the admin, through the
auth REST API; it reads every credential from Secrets (and waits for them), polls the server's ``/health`` instead
of waiting for its Deployment (see ``add_tenant_accounts``), and is named after the hash of the account list, script
and image, so a changed tenant list runs it again (a changed password in the store does not: replace the Job). Known
limit: experiment and registered model names are global, so a tenant can take a name another tenant has not created
yet; it cannot read or change the other's.

Database schema: on an empty database the server creates MLflow's tables at start. A new MLflow pin whose schema
changed refuses to start on the old schema: run ``mlflow db upgrade`` with the new image first (same environment).
``cluster.imageRegistry`` replaces the registry of the MLflow, Postgres and operator images (tags stay pinned).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass

import pulumi

from config import images, versions
from config.data import Mlflow as MlflowConfig
from config.data import ObjectStore as ObjectStoreConfig
from config.services import service

from . import postgres as pg
from .meta import ComponentArgs, kube, labels, metadata, mirrored, platform_namespace, setup_job
from .objectstore import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ObjectStore
from .pods import TMP, restricted_container, restricted_pod, tmp_mount, tmp_volume
from .programs import source
from .secrets import PlatformSecrets, SecretRef, Template

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

# Authentication (MLflow's basic-auth app). The Secret AUTH_SECRET holds the auth config file (mounted), the admin
# account and the Flask secret key; remote key AUTH_SECRET in the external store (properties ADMIN_PASSWORD_KEY,
# FLASK_KEY).
APP_NAME = "basic-auth"
AUTH_SECRET = "mlflow-auth"
AUTH_CONFIG_KEY = "basic_auth.ini"
AUTH_DIR = "/etc/mlflow/auth"
ADMIN_USER = "admin"
ADMIN_USERNAME_KEY = "admin-username"
ADMIN_PASSWORD_KEY = "admin-password"
FLASK_KEY = "flask-secret-key"
DEFAULT_PERMISSION = "NO_PERMISSIONS"
# Per tenant: the Secret CREDENTIALS_SECRET in the tenant namespace (the variables MLflow's client reads), its
# password from the remote key ``mlflow-tenant-<tenant>``; all accounts' passwords again in ACCOUNTS_SECRET in the
# MLflow namespace, for the setup Job. Prometheus scrapes /metrics (protected too) as METRICS_USER.
CREDENTIALS_SECRET = "mlflow-credentials"
USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
URI_ENV = "MLFLOW_TRACKING_URI"
ACCOUNTS_SECRET = "mlflow-accounts"
METRICS_USER = "prometheus"
METRICS_SECRET = "mlflow-metrics"
ACCOUNTS_JOB = "mlflow-accounts"

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


def tenant_user(tenant: str) -> str:
    """The MLflow account of a tenant."""
    return f"tenant-{tenant}"


def tenant_remote(tenant: str) -> str:
    """The external store's key of a tenant's MLflow password (property ``password``)."""
    return f"mlflow-tenant-{tenant}"


def auth_config(database_uri: str, admin_password: pulumi.Input[str]) -> pulumi.Output[str]:
    """The basic-auth app's config file (``MLFLOW_AUTH_CONFIG_PATH``): nobody may read what they were not granted,
    users and permissions in the backend store's database (``database_uri`` names no credentials: libpq takes them
    from ``PGUSER``/``PGPASSWORD``), the admin account created at first start. MLflow reads it with ``configparser``
    interpolation: a store-provided admin password must not contain ``%``."""
    return pulumi.Output.from_input(admin_password).apply(
        lambda password: "\n".join(
            [
                "[mlflow]",
                f"default_permission = {DEFAULT_PERMISSION}",
                f"database_uri = {database_uri}",
                f"admin_username = {ADMIN_USER}",
                f"admin_password = {password}",
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
                "grant_default_workspace_access = false",
                "",
            ]
        )
    )


# The setup Job's program: creates missing accounts, sets every account's password to its Secret's value.
ACCOUNTS_SCRIPT = source("mlflow_accounts")


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
        # Authentication: the auth config file (users and permissions in the backend store's database), the admin
        # account the setup Job acts as, and the Flask secret key every replica must share.
        admin_password = platform_secrets.generated(
            f"{name}-admin-password", 32, AUTH_SECRET, ADMIN_PASSWORD_KEY, parent=self
        )
        flask_key = platform_secrets.generated(f"{name}-flask-secret-key", 48, AUTH_SECRET, FLASK_KEY, parent=self)
        self.auth_secret = platform_secrets.secret(
            f"{name}-auth",
            AUTH_SECRET,
            ns,
            COMPONENT,
            self,
            {
                AUTH_CONFIG_KEY: Template(lambda value: auth_config(backend_store_uri, value(admin_password))),
                ADMIN_USERNAME_KEY: ADMIN_USER,
                ADMIN_PASSWORD_KEY: admin_password,
                FLASK_KEY: flask_key,
            },
        )
        secrets.append(self.auth_secret)
        env = [
            {"name": "PGUSER", **db_user},
            {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": db_password_secret, "key": PASSWORD_KEY}}},
            *s3_env,
            {"name": "MLFLOW_SERVER_ALLOWED_HOSTS", "value": ",".join(allowed_hosts(namespaces.mlflow))},
            {"name": "MLFLOW_AUTH_CONFIG_PATH", "value": f"{AUTH_DIR}/{AUTH_CONFIG_KEY}"},
            {
                "name": "MLFLOW_FLASK_SERVER_SECRET_KEY",
                "valueFrom": {"secretKeyRef": {"name": AUTH_SECRET, "key": FLASK_KEY}},
            },
            *images.identity_env(TMP),
        ]
        server_args = [
            "server",
            "--app-name",
            APP_NAME,
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
                                "volumeMounts": [
                                    tmp_mount(),
                                    {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
                                ],
                            }
                        ],
                        # Only the config file of the auth Secret, not its other keys.
                        "volumes": [
                            tmp_volume(),
                            {
                                "name": "auth",
                                "secret": {
                                    "secretName": AUTH_SECRET,
                                    "items": [{"key": AUTH_CONFIG_KEY, "path": AUTH_CONFIG_KEY}],
                                },
                            },
                        ],
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
            # The auth app protects /metrics too (only /health and static files are open): Prometheus logs in as
            # METRICS_USER, which is granted nothing (default NO_PERMISSIONS) and so reads no experiment.
            metrics_password = platform_secrets.generated(
                f"{name}-metrics-password", 32, METRICS_SECRET, PASSWORD_KEY, parent=self
            )
            self._accounts[METRICS_USER] = metrics_password
            metrics_secret = platform_secrets.secret(
                f"{name}-metrics-credentials",
                METRICS_SECRET,
                ns,
                COMPONENT,
                self,
                {USERNAME_KEY: METRICS_USER, PASSWORD_KEY: metrics_password},
                type="kubernetes.io/basic-auth",
            )
            basic_auth = {
                "username": {"name": METRICS_SECRET, "key": USERNAME_KEY},
                "password": {"name": METRICS_SECRET, "key": PASSWORD_KEY},
            }
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
        """One account per tenant (``tenant_user``, a generated password, or from the store the property
        ``password`` of ``mlflow-tenant-<tenant>``), delivered as the Secret CREDENTIALS_SECRET in the tenant's
        namespace and nowhere else of the tenants'; and the setup Job (``setup_job``) that creates the accounts
        (Prometheus's too) as the admin. With default NO_PERMISSIONS an account sees only what it created (MLflow
        grants the creator MANAGE) or was granted."""
        name, secrets = self._name, self._secrets
        accounts = dict(self._accounts)
        for tenant, namespace in sorted(tenant_namespaces.items()):
            password = secrets.generated(
                f"{name}-{tenant}-password", 32, tenant_remote(tenant), PASSWORD_KEY, parent=self
            )
            accounts[tenant_user(tenant)] = password
            secrets.secret(
                f"{name}-{tenant}-credentials",
                CREDENTIALS_SECRET,
                namespace,
                COMPONENT,
                self,
                {USERNAME_ENV: tenant_user(tenant), PASSWORD_ENV: password, URI_ENV: self.url},
                tenant=tenant,
            )
        # The same values for the Job, which runs in the MLflow namespace.
        accounts_secret = secrets.secret(f"{name}-accounts", ACCOUNTS_SECRET, self._ns, COMPONENT, self, accounts)
        variables = {user: "PASSWORD_" + user.upper().replace("-", "_") for user in sorted(accounts)}
        env: list[dict] = [
            {"name": URI_ENV, "value": self.url},
            {"name": USERNAME_ENV, "valueFrom": {"secretKeyRef": {"name": AUTH_SECRET, "key": ADMIN_USERNAME_KEY}}},
            {"name": PASSWORD_ENV, "valueFrom": {"secretKeyRef": {"name": AUTH_SECRET, "key": ADMIN_PASSWORD_KEY}}},
            {"name": "ACCOUNTS", "value": json.dumps(variables, sort_keys=True)},
            *[
                {"name": variable, "valueFrom": {"secretKeyRef": {"name": ACCOUNTS_SECRET, "key": user}}}
                for user, variable in variables.items()
            ],
        ]
        # Not after the Deployment and Service: the script polls /health for up to 10 minutes per attempt and the Job
        # retries (``setup_job``: 6 retries, a 30-minute deadline; Pulumi waits 20), so it can start with the server.
        # From the store the server waits for ExternalSecrets (wave 3): after it, the Job would be a fifth wave.
        self.accounts_job = setup_job(
            f"{name}-accounts-job",
            ACCOUNTS_JOB,
            self._ns,
            COMPONENT,
            self._image,
            ACCOUNTS_SCRIPT,
            env,
            {"accounts": sorted(accounts), "url": self.url},
            self,
            [self.auth_secret, accounts_secret],
        )
        return self.accounts_job
