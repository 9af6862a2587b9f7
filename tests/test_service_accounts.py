"""MLflow and Milvus accounts per tenant (issue 11, item 5): no tenant reads another's experiments or vectors.

MLflow runs its basic-auth app with NO_PERMISSIONS by default, Milvus has a database, user and role per tenant; each
tenant's credentials reach its own namespace only, as a Secret; setup Jobs in the services' namespaces create the
accounts from Secrets only, pass Pod Security ``restricted`` and grant nothing beyond the tenant's own database. For
both stack files, and for dev with the external store (whose ExternalSecret templates show keys and literals)."""

import base64
import configparser
import copy
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pulumi
import pytest
import yaml
from pulumi.runtime.sync_await import _sync_await

from components import milvus, mlflow_auth
from tests.conftest import config_copy, load, run, run_stack, stack_cfg
from tests.test_secrets import DEV_EXTERNAL, REFERENCE
from tests.test_serving import restricted_problems
from tools.harness import CANARY, SECRET
from tools.validate import validate_object

PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
MLFLOW_KEYS = {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"}
MILVUS_KEYS = {"MILVUS_URI", "MILVUS_USER", "MILVUS_PASSWORD", "MILVUS_DB_NAME", "MILVUS_TOKEN"}
CREDENTIALS = {"mlflow-credentials": MLFLOW_KEYS, "milvus-credentials": MILVUS_KEYS}


def _run(stack: str, config: dict):
    """A run of ``config`` (which must succeed) and its typed config."""
    result = run(stack, config)
    assert result.error is None, result.error
    return result, load(stack, {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("ai-platform:")})


@pytest.fixture(scope="module")
def dev_external():
    config = config_copy("dev")
    config["ai-platform:secrets"] = DEV_EXTERNAL
    return _run("dev", config)


@pytest.fixture(scope="module")
def dev_with_a_third_tenant():
    """dev plus the tenant ``lab`` (a copy of ``product`` without GPUs)."""
    config = config_copy("dev")
    lab = copy.deepcopy(next(t for t in config["ai-platform:tenants"] if t["name"] == "product"))
    lab.update(name="lab", access={"admins": {"groups": ["ai-lab"]}})
    lab["quota"]["gpu"] = 0
    config["ai-platform:tenants"] = [*config["ai-platform:tenants"], lab]
    return _run("dev", config)


@pytest.fixture(params=["dev", "prod", "dev_external"])
def any_run(request):
    """(run, config) of both stack files and of dev with the external store."""
    if request.param == "dev_external":
        return request.getfixturevalue("dev_external")
    return run_stack(request.param), stack_cfg(request.param)


@pytest.fixture(params=["prod", "dev_external"])
def external(request):
    if request.param == "prod":
        return run_stack("prod"), stack_cfg("prod")
    return request.getfixturevalue(request.param)


def secret_like(result, name: str | None = None):
    """Secrets and ExternalSecrets (the Secret they write has their name), optionally of one name."""
    return [r for r in result.objects if r.kind in ("Secret", "ExternalSecret") and name in (None, r.k8s_name)]


def template_data(es) -> dict[str, str]:
    return es.inputs["spec"]["target"]["template"]["data"]


def remote_of(es, key: str) -> tuple[str, str]:
    """(remote key, property) behind the single reference of template key ``key``."""
    (name,) = REFERENCE.findall(template_data(es)[key])
    (entry,) = [e for e in es.inputs["spec"]["data"] if e["secretKey"] == name]
    return entry["remoteRef"]["key"], entry["remoteRef"]["property"]


def job(result, prefix: str, namespace: str):
    found = [j for j in result.of_kind("Job") if j.namespace == namespace and j.k8s_name.startswith(f"{prefix}-")]
    assert len(found) == 1, f"expected one {prefix} Job in {namespace}, found {len(found)}"
    return found[0]


def env_of(obj) -> dict[str, dict]:
    (container,) = obj.inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


# --- credentials: in each tenant namespace, only there -------------------------------------------------------------


@pytest.mark.invariant
def test_each_tenant_gets_its_credentials_in_its_own_namespace_only(any_run):
    result, cfg = any_run
    tenants = {t.name for t in cfg.tenants}
    assert tenants
    for name in CREDENTIALS:
        found = secret_like(result, name)
        assert sorted(s.namespace for s in found) == sorted(tenants), name
        for secret in found:  # labelled with the tenant it belongs to
            assert secret.inputs["metadata"]["labels"]["ai-platform/tenant"] == secret.namespace
    # No tenant namespace holds a service's admin, root or accounts Secret.
    platform = {
        mlflow_auth.AUTH_SECRET,
        mlflow_auth.ACCOUNTS_SECRET,
        mlflow_auth.METRICS_SECRET,
        milvus.ROOT_SECRET,
        milvus.ACCOUNTS_SECRET,
    }
    assert not [s for s in secret_like(result) if s.namespace in tenants and s.k8s_name in platform]


def test_credentials_name_the_tenants_own_account_and_database(external):
    result, cfg = external
    prefix = cfg.secrets.key_prefix
    for tenant in (t.name for t in cfg.tenants):
        data = template_data(result.one("ExternalSecret", "mlflow-credentials", tenant))
        assert set(data) == MLFLOW_KEYS
        assert data["MLFLOW_TRACKING_USERNAME"] == f"tenant-{tenant}"
        assert data["MLFLOW_TRACKING_URI"] == f"http://mlflow.{cfg.namespaces.mlflow}.svc:5000"
        es = result.one("ExternalSecret", "mlflow-credentials", tenant)
        assert remote_of(es, "MLFLOW_TRACKING_PASSWORD") == (f"{prefix}/mlflow-tenant-{tenant}", "password")

        es = result.one("ExternalSecret", "milvus-credentials", tenant)
        data = template_data(es)
        assert set(data) == MILVUS_KEYS
        user, database = milvus.tenant_user(tenant), milvus.tenant_database(tenant)
        assert (data["MILVUS_USER"], data["MILVUS_DB_NAME"]) == (user, database)
        assert data["MILVUS_URI"] == f"http://milvus.{cfg.namespaces.milvus}.svc:19530"
        assert remote_of(es, "MILVUS_PASSWORD") == (f"{prefix}/milvus-tenant-{tenant}", "password")
        assert data["MILVUS_TOKEN"] == f"{user}:{data['MILVUS_PASSWORD']}"


@pytest.mark.invariant
def test_generated_credentials_are_per_tenant_and_only_in_secrets(stack_run, cfg):
    if cfg.secrets.source != "pulumi":
        pytest.skip("external store: nothing is generated")
    passwords = {r.name: r for r in stack_run.resources if r.type == PASSWORD_TYPE}
    for tenant in (t.name for t in cfg.tenants):
        for service in (s for s in ("mlflow", "milvus") if getattr(cfg, s).enabled):
            password = passwords[f"{service}-{tenant}-password"]
            assert password.inputs["length"] >= 32 and password.inputs["special"] is False
            secret = stack_run.one("Secret", f"{service}-credentials", tenant)
            assert secret.inputs["stringData"] == SECRET and password.urn in secret.dependencies
            # The other tenants' passwords are not in it.
            others = {passwords[f"{service}-{t.name}-password"].urn for t in cfg.tenants if t.name != tenant}
            assert not others & set(secret.dependencies)


@pytest.mark.invariant
def test_no_password_appears_in_clear(any_run):
    """The harness turns generated passwords into 'generated-<name>' and secure config into the canary, both marked
    secret: neither may appear in any registered input or output outside a secret wrapper."""
    result, _ = any_run
    dumped = json.dumps([r.inputs for r in result.resources]) + json.dumps(result.outputs, default=str)
    assert "generated-" not in dumped and CANARY not in dumped
    holders = {r.type for r in result.resources if SECRET in json.dumps(r.inputs)}
    assert holders <= {"kubernetes:core/v1:Secret", PASSWORD_TYPE}


# --- MLflow: the auth app ------------------------------------------------------------------------------------------


def test_server_runs_the_basic_auth_app_with_its_config_from_a_secret(any_run):
    result, cfg = any_run
    deployment = result.one("Deployment", "mlflow", cfg.namespaces.mlflow)
    pod = deployment.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[args.index("--app-name") + 1] == "basic-auth"
    env = {e["name"]: e for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "auth")
    assert mount["readOnly"] is True
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"] == f"{mount['mountPath']}/basic_auth.ini"
    volume = next(v for v in pod["volumes"] if v["name"] == "auth")
    # Only the config file: the admin password and the Flask key are not mounted.
    assert volume["secret"] == {
        "secretName": "mlflow-auth",
        "items": [{"key": "basic_auth.ini", "path": "basic_auth.ini"}],
    }
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == {
        "name": "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "valueFrom": {"secretKeyRef": {"name": "mlflow-auth", "key": "flask-secret-key"}},
    }
    auth = [s for s in secret_like(result, "mlflow-auth") if s.namespace == cfg.namespaces.mlflow]
    assert len(auth) == 1 and auth[0].urn in deployment.dependencies


def test_auth_config_denies_by_default_and_holds_no_password_in_clear(external):
    """The config file as the store's template writes it: NO_PERMISSIONS, the backend store's database without
    credentials (libpq reads PGUSER/PGPASSWORD), the admin password only as a reference to the store."""
    result, cfg = external
    es = result.one("ExternalSecret", "mlflow-auth", cfg.namespaces.mlflow)
    text = template_data(es)["basic_auth.ini"]
    parser = configparser.ConfigParser()
    parser.read_string(REFERENCE.sub("stored-value", text))
    section = parser["mlflow"]
    assert section["default_permission"] == "NO_PERMISSIONS"
    (container,) = result.one("Deployment", "mlflow", cfg.namespaces.mlflow).inputs["spec"]["template"]["spec"][
        "containers"
    ]
    assert section["database_uri"] == container["args"][container["args"].index("--backend-store-uri") + 1]
    assert "@" not in section["database_uri"]
    assert section["admin_username"] == template_data(es)["admin-username"] == "admin"
    assert REFERENCE.fullmatch(text.split("admin_password = ", 1)[1].splitlines()[0])
    assert remote_of(es, "admin-password") == (f"{cfg.secrets.key_prefix}/mlflow-auth", "admin-password")


def test_auth_config_file_from_pulumi_values():
    """The same file built from a plain value (the function the Pulumi source uses): every line as MLflow reads it."""
    text = _sync_await(mlflow_auth.auth_config("postgresql+psycopg2://db:5432/mlflow", "s3cretpassw0rd").future())
    parser = configparser.ConfigParser()
    parser.read_string(text)
    assert dict(parser["mlflow"]) == {
        "default_permission": "NO_PERMISSIONS",
        "database_uri": "postgresql+psycopg2://db:5432/mlflow",
        "admin_username": "admin",
        "admin_password": "s3cretpassw0rd",
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        "grant_default_workspace_access": "false",
    }
    assert isinstance(mlflow_auth.auth_config("x", pulumi.Output.secret("y")), pulumi.Output)


def test_prometheus_logs_in_with_its_own_account(any_run):
    result, cfg = any_run
    monitor = result.one("PodMonitor", "mlflow", cfg.namespaces.mlflow)
    (endpoint,) = monitor.inputs["spec"]["podMetricsEndpoints"]
    assert {selector["name"] for selector in endpoint["basicAuth"].values()} == {"mlflow-metrics"}
    (secret,) = [s for s in secret_like(result, "mlflow-metrics") if s.namespace == cfg.namespaces.mlflow]
    if secret.kind == "ExternalSecret":
        assert template_data(secret)["username"] == mlflow_auth.METRICS_USER
    accounts = json.loads(env_of(job(result, "mlflow-accounts", cfg.namespaces.mlflow))["ACCOUNTS"]["value"])
    assert mlflow_auth.METRICS_USER in accounts


# --- setup Jobs ----------------------------------------------------------------------------------------------------


def _jobs(result, cfg):
    return [
        job(result, "mlflow-accounts", cfg.namespaces.mlflow),
        job(result, "milvus-accounts", cfg.namespaces.milvus),
    ]


def test_setup_jobs_pass_restricted_and_skip_the_mesh(any_run):
    result, cfg = any_run
    for found in _jobs(result, cfg):
        spec = found.inputs["spec"]["template"]["spec"]
        assert restricted_problems(spec) == [], found.k8s_name
        assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
        assert found.inputs["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
        assert found.inputs["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
        (container,) = spec["containers"]
        assert container["command"][:2] == ["python", "-c"]
        assert (
            container["image"]
            == result.one("Deployment", "mlflow", cfg.namespaces.mlflow).inputs["spec"]["template"]["spec"][
                "containers"
            ][0]["image"]
        )  # the pinned MLflow image: Python, nothing installed
        assert validate_object(found.inputs, cfg.cluster.kubernetes_version) == []
    # The check itself is not vacuous.
    assert restricted_problems({"containers": [{"name": "c", "securityContext": {"privileged": True}}]})


def test_setup_jobs_take_every_credential_from_secrets_that_exist(any_run):
    result, cfg = any_run
    for found in _jobs(result, cfg):
        existing = {(s.namespace, s.k8s_name): s for s in secret_like(result)}
        for name, entry in env_of(found).items():
            if "value" in entry:
                assert not re.search(r"(?i)password|token|secret", name), name
                continue
            ref = entry["valueFrom"]["secretKeyRef"]
            secret = existing.get((found.namespace, ref["name"]))
            assert secret is not None, (found.k8s_name, ref)
            if secret.kind == "ExternalSecret":
                assert ref["key"] in template_data(secret), (found.k8s_name, ref)
            assert secret.urn in found.dependencies, (found.k8s_name, ref)


def test_setup_jobs_wait_for_their_service(any_run):
    result, cfg = any_run
    mlflow_job, milvus_job = _jobs(result, cfg)
    # MLflow's Job starts with the server (a wave earlier, tests/test_dependency_depth.py): its program polls /health
    # for up to 10 minutes per attempt (programs/wait.py, tests/test_programs.py), and the Job retries with a deadline.
    assert result.one("Deployment", "mlflow", cfg.namespaces.mlflow).urn not in mlflow_job.dependencies
    script = mlflow_job.inputs["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert 'wait_for_url(server + "/health", "MLflow")' in script and "def wait_for_url(" in script
    assert mlflow_job.inputs["spec"]["backoffLimit"] >= 3 and mlflow_job.inputs["spec"]["activeDeadlineSeconds"]
    (release,) = [r for r in result.releases if r.inputs["chart"] == "milvus"]
    assert release.urn in milvus_job.dependencies


def test_mlflow_job_sets_up_exactly_the_tenants_accounts(any_run):
    result, cfg = any_run
    found = job(result, "mlflow-accounts", cfg.namespaces.mlflow)
    env = env_of(found)
    accounts = json.loads(env["ACCOUNTS"]["value"])
    expected = {f"tenant-{t.name}" for t in cfg.tenants} | ({"prometheus"} if cfg.monitoring.enabled else set())
    assert set(accounts) == expected
    for user, variable in accounts.items():
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": "mlflow-accounts", "key": user}
    # As the admin, against the in-cluster server.
    assert env["MLFLOW_TRACKING_USERNAME"]["valueFrom"]["secretKeyRef"] == {
        "name": "mlflow-auth",
        "key": "admin-username",
    }
    assert env["MLFLOW_TRACKING_URI"]["value"] == f"http://mlflow.{cfg.namespaces.mlflow}.svc:5000"


def test_milvus_grants_name_only_the_tenants_own_database(any_run):
    result, cfg = any_run
    found = job(result, "milvus-accounts", cfg.namespaces.milvus)
    env = env_of(found)
    accounts = {a["user"]: a for a in json.loads(env["ACCOUNTS"]["value"])}
    assert set(accounts) == {milvus.tenant_user(t.name) for t in cfg.tenants}
    databases = {milvus.tenant_database(t.name) for t in cfg.tenants}
    for tenant in (t.name for t in cfg.tenants):
        account = accounts[milvus.tenant_user(tenant)]
        assert account["database"] == milvus.tenant_database(tenant)
        assert account["grants"] == [
            {"roleName": account["user"], "dbName": account["database"], "collectionName": "*", "privilege": group}
            for group in ("DatabaseAdmin", "CollectionAdmin")
        ]
        assert not {g["dbName"] for g in account["grants"]} & (databases - {account["database"]})
        assert env[account["password"]]["valueFrom"]["secretKeyRef"] == {
            "name": "milvus-tenant-accounts",
            "key": account["user"],
        }
    assert env["MILVUS_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "milvus-root", "key": "password"}
    script = found.inputs["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "roles/grant_privilege_v2" in script and "users/grant_role" in script


def test_milvus_names_fit_its_rules():
    """User and role: a letter, then letters, digits, underscores, at most 32; distinct for distinct tenants."""
    names = ["a", "research", "team-7", "x" * 63, "x" * 62 + "y"]
    users = [milvus.tenant_user(n) for n in names]
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", u) for u in users)
    assert len(set(users)) == len(users)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", milvus.tenant_database(n)) for n in names)


def test_public_role_is_granted_nothing(any_run):
    result, _ = any_run
    (release,) = [r for r in result.releases if r.inputs["chart"] == "milvus"]
    security = yaml.safe_load(release.inputs["values"]["extraConfigFiles"]["user.yaml"])["common"]["security"]
    assert security == {"authorizationEnabled": True, "enablePublicPrivilege": False}


def test_a_new_tenant_gets_accounts_and_the_jobs_run_again(dev_with_a_third_tenant):
    result, cfg = dev_with_a_third_tenant
    dev = run_stack("dev")
    for name in CREDENTIALS:
        assert [s.namespace for s in secret_like(result, name) if s.namespace == "lab"] == ["lab"]
    for prefix, namespace in (("mlflow-accounts", cfg.namespaces.mlflow), ("milvus-accounts", cfg.namespaces.milvus)):
        assert job(result, prefix, namespace).k8s_name != job(dev, prefix, namespace).k8s_name
    accounts = json.loads(env_of(job(result, "mlflow-accounts", cfg.namespaces.mlflow))["ACCOUNTS"]["value"])
    assert "tenant-lab" in accounts


# --- reach: the Jobs run in the services' namespaces, tenants reach only the serving pods ----------------------------


def test_jobs_reach_their_server_and_tenants_only_the_serving_pods(any_run):
    result, cfg = any_run
    for namespace in (cfg.namespaces.mlflow, cfg.namespaces.milvus):
        policies = {p.k8s_name: p.inputs["spec"] for p in result.of_kind("NetworkPolicy") if p.namespace == namespace}
        assert policies["allow-same-namespace"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    for tenant in cfg.tenants:
        egress = result.one("NetworkPolicy", "allow-to-shared-services", tenant.name).inputs["spec"]["egress"]
        reached = {
            rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: rule["ports"]
            for rule in egress
        }
        assert reached[cfg.namespaces.mlflow] == [{"protocol": "TCP", "port": 5000}]
        assert reached[cfg.namespaces.milvus] == [{"protocol": "TCP", "port": 19530}]


# --- the setup scripts, run against fake servers -------------------------------------------------------------------


def _serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _run_job(found, server, secrets: dict[str, str], uri_variable: str) -> subprocess.CompletedProcess:
    """The Job's container command with its env: values as rendered (the server URL pointed at the fake), each
    secretKeyRef replaced by ``secrets[(secret, key)]``."""
    env = {"PATH": os.environ.get("PATH", "")}
    for name, entry in env_of(found).items():
        if "value" in entry:
            env[name] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[name] = secrets[(ref["name"], ref["key"])]
    env[uri_variable] = f"http://127.0.0.1:{server.server_port}"
    command = found.inputs["spec"]["template"]["spec"]["containers"][0]["command"]
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=60)


class FakeMlflow(BaseHTTPRequestHandler):
    """MLflow's auth REST API as the script uses it (mlflow/server/auth: users/get 404 for an unknown user, admin-only
    create and update-password, /health open)."""

    admin = ("admin", "admin-pw")
    users: dict[str, str] = {}

    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: dict | None = None):
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        url = urlsplit(self.path)
        if url.path == "/health":
            return self._reply(200)
        expected = "Basic " + base64.b64encode(":".join(self.admin).encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._reply(401)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        action = (self.command, url.path.removeprefix("/api/2.0/mlflow/users/"))
        if action == ("GET", "get"):
            user = parse_qs(url.query)["username"][0]
            return self._reply(200 if user in self.users else 404)
        if action == ("POST", "create") and body["username"] not in self.users:
            self.users[body["username"]] = body["password"]
            return self._reply(200)
        if action == ("PATCH", "update-password") and body["username"] in self.users:
            self.users[body["username"]] = body["password"]
            return self._reply(200)
        return self._reply(400)

    do_GET = do_POST = do_PATCH = _handle


def test_mlflow_setup_creates_missing_accounts_and_resets_passwords(stack_run, cfg):
    found = job(stack_run, "mlflow-accounts", cfg.namespaces.mlflow)
    users = json.loads(env_of(found)["ACCOUNTS"]["value"])
    passwords = {user: f"pw-{user}-0123456789" for user in users}
    secrets = {
        ("mlflow-auth", "admin-username"): "admin",
        ("mlflow-auth", "admin-password"): "admin-pw",
        **{("mlflow-accounts", user): password for user, password in passwords.items()},
    }
    FakeMlflow.users = {"tenant-" + cfg.tenants[0].name: "an-old-password", "someone-else": "kept"}
    server = _serve(FakeMlflow)
    try:
        for _ in range(2):  # idempotent
            done = _run_job(found, server, secrets, "MLFLOW_TRACKING_URI")
            assert done.returncode == 0, done.stderr
        assert FakeMlflow.users == {**passwords, "someone-else": "kept"}
        assert not [p for p in passwords.values() if p in done.stdout + done.stderr]  # no password in the log
        secrets[("mlflow-auth", "admin-password")] = "wrong"
        assert _run_job(found, server, secrets, "MLFLOW_TRACKING_URI").returncode != 0  # a refused call fails the Job
    finally:
        server.shutdown()


class FakeMilvus(BaseHTTPRequestHandler):
    """Milvus's RESTful API v2 as the script uses it (POST, JSON, HTTP 200 with ``code``; Bearer user:password;
    update_password checks the old password; grants and bindings that exist are accepted again)."""

    root = "root:root-pw"
    databases: set[str] = set()
    roles: set[str] = set()
    users: dict[str, str] = {}
    grants: set[tuple] = set()
    bindings: set[tuple] = set()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        path = self.path.removeprefix("/v2/vectordb/")
        reply: dict = {"code": 0, "data": {}}
        if self.headers.get("Authorization") != "Bearer " + self.root:
            reply = {"code": 1800, "message": "user hasn't authenticated"}
        elif path == "databases/list":
            reply["data"] = sorted(self.databases)
        elif path == "roles/list":
            reply["data"] = sorted(self.roles)
        elif path == "users/list":
            reply["data"] = sorted(self.users)
        elif path == "databases/create":
            self.databases.add(body["dbName"])
        elif path == "roles/create":
            self.roles.add(body["roleName"])
        elif path == "roles/grant_privilege_v2":
            assert body["dbName"] in self.databases and body["roleName"] in self.roles
            self.grants.add((body["roleName"], body["dbName"], body["collectionName"], body["privilege"]))
        elif path == "users/update_password":
            if self.users.get(body["userName"]) != body["password"]:
                reply = {"code": 1400, "message": "old password not correct"}
            else:
                self.users[body["userName"]] = body["newPassword"]
        elif path == "users/drop":
            self.users.pop(body["userName"])
            self.bindings = {b for b in self.bindings if b[0] != body["userName"]}
        elif path == "users/create":
            assert body["userName"] not in self.users
            self.users[body["userName"]] = body["password"]
        elif path == "users/grant_role":
            self.bindings.add((body["userName"], body["roleName"]))
        else:
            reply = {"code": 1100, "message": f"unknown {path}"}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_milvus_setup_gives_each_tenant_its_database_and_only_it(stack_run, cfg):
    found = job(stack_run, "milvus-accounts", cfg.namespaces.milvus)
    accounts = json.loads(env_of(found)["ACCOUNTS"]["value"])
    passwords = {a["user"]: f"pw-{a['user']}-0123456789" for a in accounts}
    secrets = {
        ("milvus-root", "username"): "root",
        ("milvus-root", "password"): "root-pw",
        **{("milvus-tenant-accounts", user): password for user, password in passwords.items()},
    }
    first = accounts[0]["user"]
    FakeMilvus.databases, FakeMilvus.roles = {"default"}, {"admin", "public"}
    FakeMilvus.users, FakeMilvus.grants = {"root": "root-pw", first: "an-old-password"}, set()
    FakeMilvus.bindings = {(first, first)}
    server = _serve(FakeMilvus)
    try:
        for _ in range(2):  # idempotent
            done = _run_job(found, server, secrets, "MILVUS_URI")
            assert done.returncode == 0, done.stderr
        secrets[("milvus-root", "password")] = "wrong"
        assert _run_job(found, server, secrets, "MILVUS_URI").returncode != 0
    finally:
        server.shutdown()
    assert FakeMilvus.users == {"root": "root-pw", **passwords}  # the old password was replaced
    assert not [p for p in passwords.values() if p in done.stdout + done.stderr]
    for tenant in (t.name for t in cfg.tenants):
        user, database = milvus.tenant_user(tenant), milvus.tenant_database(tenant)
        assert database in FakeMilvus.databases
        assert (user, user) in FakeMilvus.bindings
        assert {g for g in FakeMilvus.grants if g[0] == user} == {
            (user, database, "*", "DatabaseAdmin"),
            (user, database, "*", "CollectionAdmin"),
        }
