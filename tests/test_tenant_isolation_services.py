"""Tenant isolation in the shared services: Grafana (a folder per tenant with its dashboards, viewable only by the
tenant's team) and the object store (per tenant a bucket, an identity that reaches only it, its keys in the tenant's
argo-artifacts-s3 and its own Argo artifact repository), for both stack files."""

import base64
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from components.monitoring import grafana_access
from config import versions
from config.loader import ConfigError
from tests.conftest import config_copy, load, run_stack, run_with, stack_cfg
from tools.harness import CANARY, SECRET

PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
ARTIFACT_SECRET = "argo-artifacts-s3"
REFERENCE = re.compile(r"\{\{ \.([A-Za-z0-9_]+) \}\}")
# Label matchers that scope a query to tenants.
SCOPE = re.compile(r'\b(namespace|tenant|queue_name|destination_workload_namespace)(=~|!=|=)"([^"]*)"')


@pytest.fixture(scope="module")
def dev_external():
    """dev (in-cluster store, workflows on) with secrets from Vault: the identities file is a readable template."""
    secrets = {**config_copy("prod")["ai-platform:secrets"], "keyPrefix": "ai-platform/dev", "replicas": 1}
    return run_with("dev", secrets=secrets), stack_cfg("dev")


def can_do(actions: list[str], action: str, bucket: str) -> bool:
    """SeaweedFS's authorisation of an identity (weed/s3api/auth_credentials.go ``canDo`` for a whole-bucket request):
    Admin, the bare action, ``<action>:<bucket>`` or a ``*`` prefix pattern."""
    if "Admin" in actions or action in actions:
        return True
    for granted in actions:
        if granted.endswith("*") and f"{action}:{bucket}".startswith(granted[:-1]):
            return True
        if granted in (f"{action}:{bucket}", f"Admin:{bucket}"):
            return True
    return False


def tenant_configmaps(result, cfg, folder: str) -> dict[str, dict]:
    return {
        c.k8s_name: c
        for c in result.of_kind("ConfigMap")
        if c.namespace == cfg.namespaces.monitoring
        and (c.inputs["metadata"].get("annotations") or {}).get("grafana_folder") == folder
    }


def access_config(result, cfg) -> dict:
    config_map = result.one("ConfigMap", "grafana-tenant-access", cfg.namespaces.monitoring)
    return json.loads(config_map.inputs["data"]["config.json"])


# --- Grafana: folders and dashboards -----------------------------------------------------------------------------


@pytest.mark.invariant
def test_each_tenant_has_its_folder_with_its_dashboards_scoped_to_it(stack_run, cfg):
    for tenant in cfg.tenants:
        maps = tenant_configmaps(stack_run, cfg, tenant.name)
        endpoints = [e.name for e in cfg.models if e.tenant == tenant.name]
        assert set(maps) == {f"dashboard-{tenant.name}-usage"} | (
            {f"dashboard-{tenant.name}-inference"} if endpoints else set()
        )
        for config_map in maps.values():
            assert config_map.inputs["metadata"]["labels"]["grafana_dashboard"] == "1"
            (board,) = [json.loads(text) for text in config_map.inputs["data"].values()]
            assert board["uid"].startswith(tenant.name) and len(board["uid"]) <= 40
            assert not {v["name"] for v in board["templating"]["list"]} & {"namespace", "tenant"}
            exprs = [t["expr"] for p in board["panels"] for t in p.get("targets") or []]
            assert exprs
            for expr in exprs:  # every query names this tenant, and only it
                scopes = SCOPE.findall(expr)
                assert scopes and all((op, value) == ("=", tenant.name) for _, op, value in scopes), expr
            if config_map.k8s_name.endswith("-inference"):
                (endpoint,) = [v for v in board["templating"]["list"] if v["name"] == "endpoint"]
                assert endpoint["query"] == ",".join(endpoints)
    # The platform's own dashboards (every tenant in them) stay in the platform folder.
    assert set(tenant_configmaps(stack_run, cfg, grafana_access.PLATFORM_FOLDER)) == {
        "dashboard-gpu-fleet",
        "dashboard-inference",
        "dashboard-tenant-usage",
    } | ({"dashboard-rightsizing"} if cfg.vpa.enabled else set()) | (
        {"dashboard-pipeline"} if cfg.logs.enabled or cfg.traces.enabled else set()
    )


@pytest.mark.invariant
def test_the_access_config_names_each_tenants_team_on_its_own_folder_only(stack_run, cfg):
    config = access_config(stack_run, cfg)
    assert config["platformFolders"] == ["AI platform", "Kubernetes"]
    by_folder = {entry["folder"]: entry for entry in config["tenants"]}
    assert len(by_folder) == len(config["tenants"]) == len(cfg.tenants)
    teams = [entry["team"] for entry in config["tenants"]]
    assert len(set(teams)) == len(teams)
    for tenant in cfg.tenants:
        entry = by_folder[tenant.name]
        assert entry["team"] == f"tenant-{tenant.name}"
        access = tenant.access
        assert entry["users"] == sorted(set(access.admins.users + access.developers.users + access.viewers.users))
    assert not set(by_folder) & set(config["platformFolders"])


def test_the_access_cronjob_is_restricted_pinned_and_reads_the_admin_secret(stack_run, cfg):
    ns = cfg.namespaces.monitoring
    cron = stack_run.one("CronJob", "grafana-tenant-access", ns)
    release = next(r for r in stack_run.releases if r.inputs["chart"] == "kube-prometheus-stack")
    config_map = stack_run.one("ConfigMap", "grafana-tenant-access", ns)
    assert {release.urn, config_map.urn} <= set(cron.dependencies)
    spec = cron.inputs["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["schedule"] == grafana_access.SCHEDULE
    pod = spec["jobTemplate"]["spec"]["template"]
    assert pod["metadata"]["labels"] == {"sidecar.istio.io/inject": "false"}
    pod_spec = pod["spec"]
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["securityContext"]["runAsNonRoot"] is True and pod_spec["securityContext"]["runAsUser"] > 0
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod_spec["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    image = versions.MLFLOW_IMAGE
    if cfg.cluster.image_registry:
        image = f"{cfg.cluster.image_registry}/{image.split('/', 1)[1]}"
    assert container["image"] == image and "latest" not in image
    env = {e["name"]: e for e in container["env"]}
    assert env["GRAFANA_URL"]["value"] == f"http://kube-prometheus-stack-grafana.{ns}.svc:80"
    assert env["GRAFANA_USER"]["valueFrom"] == {"secretKeyRef": {"name": "grafana-admin", "key": "admin-user"}}
    assert env["GRAFANA_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "grafana-admin", "key": "admin-password"}}
    assert "value" not in env["GRAFANA_PASSWORD"]
    assert config_map.inputs["data"]["access.py"] == grafana_access.SCRIPT
    compile(grafana_access.SCRIPT, "access.py", "exec")


class FakeGrafana(BaseHTTPRequestHandler):
    """Just enough of Grafana's HTTP API (folders, folder permissions, teams, members, user lookup) to run the script
    against; state in class attributes."""

    folders: dict[str, dict] = {}  # uid -> {"title", "items"}
    teams: dict[int, dict] = {}  # id -> {"name", "members": set}
    users: dict[str, int] = {}  # login -> id
    auth = ""

    def log_message(self, *args):
        pass

    def _reply(self, status: int, body=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str):
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")[1:]
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        if parts == ["health"]:
            return self._reply(200, {})
        if self.headers.get("Authorization") != self.auth:
            return self._reply(401, {})
        if parts == ["folders"]:
            return self._reply(200, [{"uid": uid, "title": f["title"]} for uid, f in self.folders.items()])
        if parts[0] == "folders" and parts[2] == "permissions" and method == "POST":
            self.folders[parts[1]]["items"] = body["items"]
            return self._reply(200, {})
        if parts == ["teams", "search"]:
            found = [{"id": i, "name": t["name"]} for i, t in self.teams.items() if t["name"] == query["name"]]
            return self._reply(200, {"teams": found})
        if parts == ["teams"] and method == "POST":
            team_id = len(self.teams) + 1
            self.teams[team_id] = {"name": body["name"], "members": set()}
            return self._reply(200, {"teamId": team_id})
        if parts[0] == "teams" and parts[2] == "members":
            members = self.teams[int(parts[1])]["members"]
            if method == "GET":
                return self._reply(200, [{"userId": user} for user in sorted(members)])
            if method == "POST":
                members.add(body["userId"])
            else:
                members.discard(int(parts[3]))
            return self._reply(200, {})
        if parts == ["users", "lookup"]:
            user = self.users.get(query["loginOrEmail"])
            return self._reply(200, {"id": user}) if user else self._reply(404, {})
        return self._reply(404, {})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")


def run_access_script(handler, directory, runs: int = 1, between=None) -> list[subprocess.CompletedProcess]:
    """The access CronJob's program (``grafana_access.SCRIPT``) ``runs`` times against the fake Grafana ``handler``
    on loopback, as admin/pw, with ``directory``/config.json and the dashboards under ``directory``; ``between``
    is called before each run."""
    handler.auth = "Basic " + base64.b64encode(b"admin:pw").decode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "GRAFANA_URL": f"http://127.0.0.1:{server.server_port}",
        "GRAFANA_USER": "admin",
        "GRAFANA_PASSWORD": "pw",
        "CONFIG": str(directory / "config.json"),
        "DASHBOARDS": str(directory),
    }
    done = []
    try:
        for _ in range(runs):
            if between:
                between()
            command = [sys.executable, "-c", grafana_access.SCRIPT]
            done.append(subprocess.run(command, env=env, capture_output=True, text=True, timeout=60))
    finally:
        server.shutdown()
    return done


def test_the_access_script_leaves_each_tenant_folder_to_its_team_only(tmp_path):
    """Run the CronJob's script (prod's config) against a fake Grafana whose folders carry the provisioner's default
    grants, twice: each tenant folder ends up with exactly its team as Viewer, the platform folders with the Editor
    role only; team members are exactly the listed users that exist."""
    cfg = stack_cfg("prod")
    config = access_config(run_stack("prod"), cfg)
    # The organizations part of the same run has its own fake and test: tests/test_grafana_orgs.py.
    config.pop("mainOrg")
    for entry in config["tenants"]:
        entry.pop("org")
    (tmp_path / "config.json").write_text(json.dumps(config))
    defaults = [{"role": "Viewer", "permission": 1}, {"role": "Editor", "permission": 2}]
    titles = config["platformFolders"] + [t.name for t in cfg.tenants]
    FakeGrafana.folders = {f"uid-{i}": {"title": title, "items": list(defaults)} for i, title in enumerate(titles)}
    FakeGrafana.teams = {1: {"name": "tenant-analytics", "members": {99}}}  # a member the config no longer lists
    FakeGrafana.users = {"oncall@example.com": 7}
    for done in run_access_script(FakeGrafana, tmp_path, runs=2):  # idempotent
        assert done.returncode == 0, done.stderr
    teams = {t["name"]: i for i, t in FakeGrafana.teams.items()}
    assert set(teams) == {f"tenant-{t.name}" for t in cfg.tenants}
    for folder in FakeGrafana.folders.values():
        if folder["title"] in config["platformFolders"]:
            assert folder["items"] == [{"role": "Editor", "permission": 2}]
        else:
            assert folder["items"] == [{"teamId": teams[f"tenant-{folder['title']}"], "permission": 1}]
    assert FakeGrafana.teams[teams["tenant-analytics"]]["members"] == {7}
    assert FakeGrafana.teams[teams["tenant-research"]]["members"] == set()


def test_the_access_script_fails_while_a_folder_is_not_provisioned(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"platformFolders": [], "tenants": [{"folder": "research", "team": "tenant-research", "users": []}]})
    )
    FakeGrafana.folders, FakeGrafana.teams, FakeGrafana.users = {}, {}, {}
    (done,) = run_access_script(FakeGrafana, tmp_path)
    assert done.returncode != 0 and "research" in done.stderr


# --- object store: identities, buckets, tenant keys ----------------------------------------------------------------


def test_in_cluster_store_has_one_bucket_and_identity_per_tenant(dev_external):
    result, cfg = dev_external
    es = result.one("ExternalSecret", "seaweedfs-s3-config", cfg.namespaces.object_store).inputs["spec"]
    text = es["target"]["template"]["data"]["seaweedfs_s3_config"]
    refs = {entry["secretKey"]: entry["remoteRef"] for entry in es["data"]}
    identities = {i["name"]: i for i in json.loads(text)["identities"]}
    seaweedfs = next(r for r in result.releases if r.inputs["chart"] == "seaweedfs")
    buckets = {b["name"] for b in seaweedfs.inputs["values"]["s3"]["createBuckets"]}
    tenant_buckets = {t.name: f"argo-artifacts-{t.name}" for t in cfg.tenants}
    assert buckets == {"mlflow", "milvus", "loki", "tempo"} | set(tenant_buckets.values())
    assert identities["ai-platform"]["actions"] == ["Admin", "Read", "Write", "List", "Tagging"]
    assert set(identities) == {"ai-platform"} | {f"tenant-{t}" for t in tenant_buckets}
    for tenant, bucket in tenant_buckets.items():
        identity = identities[f"tenant-{tenant}"]
        assert identity["actions"] == [f"{a}:{bucket}" for a in ("Read", "Write", "List", "Tagging")]
        for action in ("Read", "Write", "List", "Tagging", "Admin"):
            for other in buckets:  # reaches its bucket, nothing else, and is never an admin
                assert can_do(identity["actions"], action, other) == (other == bucket and action != "Admin")
        (credentials,) = identity["credentials"]
        for field, prop in (("accessKey", "AWS_ACCESS_KEY_ID"), ("secretKey", "AWS_SECRET_ACCESS_KEY")):
            (name,) = REFERENCE.findall(credentials[field])
            assert refs[name] == {"key": f"ai-platform/dev/object-store-tenant-{tenant}", "property": prop}
    assert result.outputs["secretStoreKeys"]["ai-platform/dev/object-store-tenant-research"] == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]


def test_each_tenants_artifact_secret_holds_its_identity_never_the_admins(dev_external):
    result, cfg = dev_external
    seen = set()
    for tenant in cfg.tenants:
        es = result.one("ExternalSecret", ARTIFACT_SECRET, tenant.name).inputs["spec"]
        remotes = {(d["remoteRef"]["key"], d["remoteRef"]["property"]) for d in es["data"]}
        assert remotes == {
            (f"ai-platform/dev/object-store-tenant-{tenant.name}", p)
            for p in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        assert not seen & remotes and "ai-platform/dev/object-store" not in {key for key, _ in remotes}
        seen |= remotes
        # its repository names the bucket that identity reaches, with that Secret
        config_map = result.one("ConfigMap", "artifact-repositories", tenant.name)
        key = config_map.inputs["metadata"]["annotations"]["workflows.argoproj.io/default-artifact-repository"]
        s3 = yaml.safe_load(config_map.inputs["data"][key])["s3"]
        assert s3["bucket"] == cfg.object_store.tenant_bucket(tenant.name)
        assert s3["accessKeySecret"]["name"] == s3["secretKeySecret"]["name"] == ARTIFACT_SECRET
    # the platform's services keep the admin identity
    mlflow = result.one("ExternalSecret", "mlflow-s3", cfg.namespaces.mlflow).inputs["spec"]
    assert {d["remoteRef"]["key"] for d in mlflow["data"]} == {"ai-platform/dev/object-store"}


def test_pulumi_source_tenant_keys_are_generated_per_tenant_and_stay_secret(stack_run, cfg):
    if cfg.object_store.mode != "in-cluster":  # prod: AWS S3, workload identity per tenant, no keys at all
        annotations = [
            stack_run.one("ServiceAccount", "workflow-executor", t.name).inputs["metadata"]["annotations"]
            for t in cfg.tenants
        ]
        assert len({json.dumps(a, sort_keys=True) for a in annotations}) == len(cfg.tenants)
        assert cfg.object_store.service_account_annotations not in annotations
        assert not [r for r in stack_run.objects if r.k8s_name == ARTIFACT_SECRET]
        return
    passwords = {r.name: r.urn for r in stack_run.resources if r.type == PASSWORD_TYPE}
    admin = {passwords["object-store-access-key-id"], passwords["object-store-secret-access-key"]}
    config = stack_run.one("Secret", "seaweedfs-s3-config", cfg.namespaces.object_store)
    for tenant in cfg.tenants:
        own = {
            passwords[f"object-store-{tenant.name}-access-key-id"],
            passwords[f"object-store-{tenant.name}-secret-access-key"],
        }
        secret = stack_run.one("Secret", ARTIFACT_SECRET, tenant.name)
        assert secret.inputs["stringData"] == SECRET
        assert set(secret.dependencies) & set(passwords.values()) == own and not own & admin
        assert own <= set(config.dependencies)  # the identities file holds them
    dumped = json.dumps([r.inputs for r in stack_run.resources]) + json.dumps(stack_run.outputs, default=str)
    assert "generated-" not in dumped and CANARY not in dumped


def test_external_store_tenants_get_their_prefix_or_bucket_and_role():
    """A tenant with its own bucket gets it (no prefix); one without, the shared bucket's <tenant>/ prefix."""
    store = {key: value for key, value in config_copy("prod")["ai-platform:objectStore"].items()}
    tenants = config_copy("prod")["ai-platform:tenants"]
    tenants[1] = {**tenants[1], "objectStore": {"bucket": "example-ai-prod-product-artifacts"}}
    result = run_with("prod", objectStore=store, tenants=tenants)
    product = yaml.safe_load(result.one("ConfigMap", "artifact-repositories", "product").inputs["data"]["default"])
    assert product["s3"]["bucket"] == "example-ai-prod-product-artifacts" and "keyFormat" not in product["s3"]
    research = yaml.safe_load(result.one("ConfigMap", "artifact-repositories", "research").inputs["data"]["default"])
    assert (research["s3"]["bucket"], research["s3"]["keyFormat"]) == (
        store["workflowsBucket"],
        "research/{{workflow.name}}/{{pod.name}}",
    )
    # no role of its own: the store's (shared) one
    account = result.one("ServiceAccount", "workflow-executor", "product").inputs["metadata"]["annotations"]
    assert account == store["serviceAccountAnnotations"]


def test_tenant_store_settings_are_refused_in_cluster_and_long_bucket_names_too():
    raw = {key.split(":", 1)[1]: value for key, value in config_copy("dev").items()}
    tenants = raw["tenants"]
    tenants[0] = {**tenants[0], "objectStore": {"bucket": "research-artifacts"}}
    tenants.append({**tenants[1], "name": "t" * 60})
    with pytest.raises(ConfigError) as error:
        load("dev", raw)
    message = str(error.value)
    assert "ai-platform:tenants[0].objectStore: only for an external object store" in message
    bucket = f"argo-artifacts-{'t' * 60}"
    assert f"ai-platform:tenants[2].name: the tenant's artifact bucket '{bucket}' exceeds 63" in message
