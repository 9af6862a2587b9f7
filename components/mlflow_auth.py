"""MLflow's authentication and tenant isolation, for ``components.mlflow`` (``Mlflow`` registers what this module
builds, as its children): the basic-auth app's config file and its Secret (``auth_secret``), the accounts and their
names (``tenant_user``), Prometheus's credentials (``metrics_credentials``), the tenants' credentials Secrets and the
setup Job that creates the accounts (``tenant_accounts``).

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
creator MANAGE) or was granted; searches list only those. Accounts: one per tenant (``tenant_accounts``), user
``tenant-<tenant>``, its generated password (``<keyPrefix>/mlflow-tenant-<tenant>``) in the Secret
``mlflow-credentials`` of the tenant's namespace (``MLFLOW_TRACKING_USERNAME``, ``MLFLOW_TRACKING_PASSWORD``,
``MLFLOW_TRACKING_URI``: what MLflow's client reads); and, with monitoring, ``prometheus`` for the PodMonitor (the app
protects ``/metrics`` too; ``/health`` stays open for the probes). A setup Job ``mlflow-accounts-<hash>`` in the MLflow
namespace creates missing accounts and sets every account's password to its Secret's value, as the admin, through the
auth REST API; it reads every credential from Secrets (and waits for them), polls the server's ``/health`` instead
of waiting for its Deployment (see ``tenant_accounts``), and is named after the hash of the account list, script
and image, so a changed tenant list runs it again (a changed password in the store does not: replace the Job). Known
limit: experiment and registered model names are global, so a tenant can take a name another tenant has not created
yet; it cannot read or change the other's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi

from .meta import setup_job
from .postgres import PASSWORD_KEY, USERNAME_KEY
from .programs import source
from .secrets import PlatformSecrets, SecretRef, Template

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


def auth_secret(
    name: str,
    platform_secrets: PlatformSecrets,
    namespace: pulumi.Input[str],
    component: str,
    parent: pulumi.Resource,
    database_uri: str,
) -> pulumi.Resource:
    """The Secret AUTH_SECRET: the auth config file (users and permissions in the backend store's database at
    ``database_uri``), the admin account the setup Job acts as, and the Flask secret key every replica must share."""
    admin_password = platform_secrets.generated(
        f"{name}-admin-password", 32, AUTH_SECRET, ADMIN_PASSWORD_KEY, parent=parent
    )
    flask_key = platform_secrets.generated(f"{name}-flask-secret-key", 48, AUTH_SECRET, FLASK_KEY, parent=parent)
    return platform_secrets.secret(
        f"{name}-auth",
        AUTH_SECRET,
        namespace,
        component,
        parent,
        {
            AUTH_CONFIG_KEY: Template(lambda value: auth_config(database_uri, value(admin_password))),
            ADMIN_USERNAME_KEY: ADMIN_USER,
            ADMIN_PASSWORD_KEY: admin_password,
            FLASK_KEY: flask_key,
        },
    )


def server_env() -> list[dict]:
    """The tracking server's variables for the auth app: where its config file is, the shared Flask secret key."""
    return [
        {"name": "MLFLOW_AUTH_CONFIG_PATH", "value": f"{AUTH_DIR}/{AUTH_CONFIG_KEY}"},
        {
            "name": "MLFLOW_FLASK_SERVER_SECRET_KEY",
            "valueFrom": {"secretKeyRef": {"name": AUTH_SECRET, "key": FLASK_KEY}},
        },
    ]


def config_volume() -> dict:
    """The server's volume ``auth``: only the config file of the auth Secret, not its other keys."""
    return {
        "name": "auth",
        "secret": {
            "secretName": AUTH_SECRET,
            "items": [{"key": AUTH_CONFIG_KEY, "path": AUTH_CONFIG_KEY}],
        },
    }


def config_mount() -> dict:
    """Where the server mounts ``config_volume`` (read-only)."""
    return {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True}


def metrics_credentials(
    name: str,
    platform_secrets: PlatformSecrets,
    namespace: pulumi.Input[str],
    component: str,
    parent: pulumi.Resource,
) -> tuple[SecretRef, pulumi.Resource, dict]:
    """Prometheus's account: the auth app protects /metrics too (only /health and static files are open), so
    Prometheus logs in as METRICS_USER, which is granted nothing (default NO_PERMISSIONS) and so reads no experiment.
    Its password (for the setup Job's accounts), the basic-auth Secret METRICS_SECRET and the PodMonitor's
    ``basicAuth`` that reads it."""
    password = platform_secrets.generated(f"{name}-metrics-password", 32, METRICS_SECRET, PASSWORD_KEY, parent=parent)
    secret = platform_secrets.secret(
        f"{name}-metrics-credentials",
        METRICS_SECRET,
        namespace,
        component,
        parent,
        {USERNAME_KEY: METRICS_USER, PASSWORD_KEY: password},
        type="kubernetes.io/basic-auth",
    )
    basic_auth = {
        "username": {"name": METRICS_SECRET, "key": USERNAME_KEY},
        "password": {"name": METRICS_SECRET, "key": PASSWORD_KEY},
    }
    return password, secret, basic_auth


def tenant_accounts(
    name: str,
    platform_secrets: PlatformSecrets,
    namespace: pulumi.Input[str],
    component: str,
    parent: pulumi.Resource,
    url: str,
    image: str,
    accounts: Mapping[str, SecretRef],
    tenant_namespaces: Mapping[str, pulumi.Input[str]],
    auth: pulumi.Resource,
) -> pulumi.Resource:
    """One account per tenant (``tenant_user``, a generated password, or from the store the property ``password`` of
    ``mlflow-tenant-<tenant>``), delivered as the Secret CREDENTIALS_SECRET in the tenant's namespace and nowhere else
    of the tenants'; and the setup Job (``setup_job``) in ``namespace`` that creates these and the other ``accounts``
    (Prometheus's) as the admin, after the auth Secret ``auth``, against the server at ``url``, in ``image``."""
    accounts = dict(accounts)
    for tenant, tenant_namespace in sorted(tenant_namespaces.items()):
        password = platform_secrets.generated(
            f"{name}-{tenant}-password", 32, tenant_remote(tenant), PASSWORD_KEY, parent=parent
        )
        accounts[tenant_user(tenant)] = password
        platform_secrets.secret(
            f"{name}-{tenant}-credentials",
            CREDENTIALS_SECRET,
            tenant_namespace,
            component,
            parent,
            {USERNAME_ENV: tenant_user(tenant), PASSWORD_ENV: password, URI_ENV: url},
            tenant=tenant,
        )
    # The same values for the Job, which runs in the MLflow namespace.
    accounts_secret = platform_secrets.secret(
        f"{name}-accounts", ACCOUNTS_SECRET, namespace, component, parent, accounts
    )
    variables = {user: "PASSWORD_" + user.upper().replace("-", "_") for user in sorted(accounts)}
    env: list[dict] = [
        {"name": URI_ENV, "value": url},
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
    return setup_job(
        f"{name}-accounts-job",
        ACCOUNTS_JOB,
        namespace,
        component,
        image,
        ACCOUNTS_SCRIPT,
        env,
        {"accounts": sorted(accounts), "url": url},
        parent,
        [auth, accounts_secret],
    )
