"""Issue 21 part 3: an organization per tenant in Grafana, whose data sources see only that tenant.

Over the rendered objects of both stacks: each tenant organization's data sources reach only the label proxy (with
exactly the tenant's namespace), Loki and Tempo (with exactly the tenant's id); no tenant user is an org Admin; the
main organization gives a first login no role; the proxy enforces ``namespace`` from the header Grafana sets, and only
Grafana reaches it. Against a fake Grafana on loopback: the CronJob's program creates the organizations, roles, data
sources and dashboards, and a second run changes nothing.

Not here: prom-label-proxy's own behaviour. It is a Go program (prometheus-community/prom-label-proxy v0.14.0) and
this machine has no Go toolchain or module download; its behaviour is taken from its source at that tag
(``components.monitoring.label_proxy``), not re-implemented as a fake."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from components import logs, traces
from components.monitoring import grafana_access, label_proxy
from components.monitoring.stack import PROMETHEUS_PORT, PROMETHEUS_SERVICE
from tests.conftest import run_stack, stack_cfg
from tests.test_tenant_isolation_services import FakeGrafana, run_access_script

STACKS = ["dev", "prod"]


def config_of(result, cfg) -> dict:
    data = result.one("ConfigMap", grafana_access.ACCESS_NAME, cfg.namespaces.monitoring).inputs["data"]
    return json.loads(data[grafana_access.CONFIG_KEY])


@pytest.fixture(scope="module", params=STACKS)
def stacked(request):
    return run_stack(request.param), stack_cfg(request.param)


def test_each_tenant_org_sees_only_its_own_tenant(stacked):
    result, cfg = stacked
    config = config_of(result, cfg)
    proxy = label_proxy.url(cfg.namespaces.monitoring)
    prometheus = f"{PROMETHEUS_SERVICE}.{cfg.namespaces.monitoring}.svc:{PROMETHEUS_PORT}"
    allowed = {"prometheus": proxy}
    if cfg.logs.enabled:
        allowed["loki"] = logs.query_url(cfg.logs, cfg.namespaces.logs)
    if cfg.traces.enabled:
        allowed["tempo"] = traces.tempo_url(cfg.namespaces)
    assert [t["folder"] for t in config["tenants"]] == [t.name for t in cfg.tenants]
    orgs = [t["org"]["name"] for t in config["tenants"]]
    assert orgs == [f"tenant-{t.name}" for t in cfg.tenants] and len(set(orgs)) == len(orgs)
    for tenant in config["tenants"]:
        name, sources = tenant["folder"], tenant["org"]["datasources"]
        assert sorted(s["type"] for s in sources) == sorted(allowed)  # one of each, nothing else
        for source in sources:
            assert source["url"] == allowed[source["type"]], source
            assert prometheus not in source["url"]
            header = label_proxy.HEADER if source["type"] == "prometheus" else logs.TENANT_HEADER
            assert source["jsonData"]["httpHeaderName1"] == header
            # Exactly this tenant: no list, no other tenant, not the platform's id.
            assert source["secureJsonData"] == {"httpHeaderValue1": name}
            assert not any(k.startswith("httpHeaderName") and k != "httpHeaderName1" for k in source["jsonData"])
            assert source["editable"] is False


def test_no_tenant_user_is_an_org_admin_and_every_listed_user_has_a_role(stacked):
    _, cfg = stacked
    config = config_of(*stacked)
    for tenant, entry in zip(cfg.tenants, config["tenants"], strict=True):
        roles = entry["org"]["roles"]
        assert set(roles.values()) <= {"Editor", "Viewer"}
        listed = tenant.access.admins.users + tenant.access.developers.users + tenant.access.viewers.users
        assert set(roles) == set(listed)
        for user in tenant.access.viewers.users:
            if user not in tenant.access.admins.users + tenant.access.developers.users:
                assert roles[user] == "Viewer"
    assert config["mainOrg"] == {"id": 1, "tenantRole": "None"}


def test_roles_take_the_highest_level_and_never_admin():
    cfg = stack_cfg("prod")
    tenant = cfg.tenants[0].model_copy(
        update={
            "access": cfg.tenants[0].access.model_copy(
                update={
                    "admins": cfg.tenants[0].access.admins.model_copy(update={"users": ["ann"]}),
                    "developers": cfg.tenants[0].access.developers.model_copy(update={"users": ["dev", "both"]}),
                    "viewers": cfg.tenants[0].access.viewers.model_copy(update={"users": ["vic", "both", "ann"]}),
                }
            )
        }
    )
    assert grafana_access.roles(tenant) == {"ann": "Editor", "both": "Editor", "dev": "Editor", "vic": "Viewer"}


def test_the_main_org_gives_a_first_login_no_role(stacked):
    result, _ = stacked
    (release,) = [r for r in result.releases if r.inputs["name"] == "kube-prometheus-stack"]
    env = release.inputs["values"]["grafana"]["env"]
    assert env["GF_USERS_AUTO_ASSIGN_ORG_ROLE"] == "None"  # [users] auto_assign_org_role


def test_the_proxy_enforces_the_namespace_from_grafanas_header_and_only_grafana_reaches_it(stacked):
    result, cfg = stacked
    ns = cfg.namespaces.monitoring
    deployment = result.one("Deployment", label_proxy.NAME, ns).inputs["spec"]
    (container,) = deployment["template"]["spec"]["containers"]
    flags = dict(
        a.removeprefix("-").split("=", 1) if "=" in a else (a.removeprefix("-"), True) for a in container["args"]
    )
    assert flags["label"] == "namespace"
    assert flags["header-name"] == label_proxy.HEADER
    assert flags["upstream"] == f"http://{PROMETHEUS_SERVICE}.{ns}.svc:{PROMETHEUS_PORT}"
    assert flags["error-on-replace"] is True and flags["enable-label-apis"] is True
    # Nothing that would widen what a header selects or let paths through unenforced.
    assert not {
        "regex-match",
        "header-uses-list-syntax",
        "unsafe-passthrough-paths",
        "label-value",
        "query-param",
    } & set(flags)
    assert container["image"].endswith(":v0.14.0")
    pod = deployment["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"]
    policy = result.one("NetworkPolicy", label_proxy.NAME, ns).inputs["spec"]
    assert policy["podSelector"]["matchLabels"] == label_proxy.POD_LABELS
    (ingress,) = policy["ingress"]
    assert ingress["from"] == [{"podSelector": {"matchLabels": label_proxy.GRAFANA_POD_LABELS}}]


def test_the_cronjob_mounts_each_tenants_dashboards_where_the_config_says(stacked):
    result, cfg = stacked
    ns = cfg.namespaces.monitoring
    config = config_of(result, cfg)
    pod = result.one("CronJob", grafana_access.ACCESS_NAME, ns).inputs["spec"]["jobTemplate"]["spec"]["template"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "dashboards"]
    mounted = {
        item["path"]: (source["configMap"]["name"], item["key"])
        for source in volume["projected"]["sources"]
        for item in source["configMap"]["items"]
    }
    listed = [path for t in config["tenants"] for path in t["org"]["dashboards"]]
    assert listed and sorted(listed) == sorted(mounted)
    for path, (name, key) in mounted.items():
        tenant = path.split("/")[0]
        config_map = result.one("ConfigMap", name, ns).inputs
        assert key in config_map["data"]
        assert config_map["metadata"]["annotations"][grafana_access.FOLDER_ANNOTATION] == tenant


# --- the program against a fake Grafana ------------------------------------------------------------------------------


class FakeGrafanaOrgs(FakeGrafana):
    """FakeGrafana plus organizations, their users, data sources and dashboards, selected by ``X-Grafana-Org-Id``
    (org 1 when absent), as Grafana's HTTP API answers them."""

    orgs: dict[int, dict] = {}  # id -> {"name", "users": {userId: role}, "datasources": {uid: body}, "dashboards"}
    logins: dict[int, str] = {}
    calls: list[tuple[str, str, str]] = []

    def _org_route(self, method: str, parts: list[str], body):
        org = int(self.headers.get("X-Grafana-Org-Id") or 1)
        if parts[:2] == ["orgs", "name"]:
            found = [i for i, o in self.orgs.items() if o["name"] == parts[2]]
            return self._reply(200, {"id": found[0], "name": parts[2]}) if found else self._reply(404, {})
        if parts == ["orgs"] and method == "POST":
            new = max(self.orgs) + 1
            self.orgs[new] = {"name": body["name"], "users": {1: "Admin"}, "datasources": {}, "dashboards": {}}
            return self._reply(200, {"orgId": new})
        if parts[0] == "orgs" and parts[2] == "users":
            users = self.orgs[int(parts[1])]["users"]
            if method == "GET":
                return self._reply(200, [{"userId": u, "login": self.logins[u], "role": r} for u, r in users.items()])
            if method == "POST":
                user = self.users.get(body["loginOrEmail"])
                if user is None:
                    return self._reply(404, {})
                users[user] = body["role"]
            elif method == "PATCH":
                users[int(parts[3])] = body["role"]
            elif method == "DELETE":
                users.pop(int(parts[3]))
            return self._reply(200, {})
        if parts[0] == "datasources":
            sources = self.orgs[org]["datasources"]
            if method == "GET" and parts[1] == "uid":
                found = sources.get(parts[2])
                return self._reply(200, found) if found else self._reply(404, {})
            if method == "POST":
                sources[body["uid"]] = {**body, "id": len(sources) + 100}
                return self._reply(200, {})
            if method == "PUT":
                sources[parts[2]] = body
                return self._reply(200, {})
        if parts == ["dashboards", "db"] and method == "POST":
            assert body["overwrite"] is True and "id" not in body["dashboard"]
            self.orgs[org]["dashboards"][body["dashboard"]["uid"]] = body["dashboard"]
            return self._reply(200, {})
        return None

    def _route(self, method: str):
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")[1:]
        self.calls.append((method, url.path, self.headers.get("X-Grafana-Org-Id") or ""))
        if parts and parts[0] in ("orgs", "datasources", "dashboards"):
            if self.headers.get("Authorization") != self.auth:
                return self._reply(401, {})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            if self._org_route(method, parts, body) is None:
                self._reply(404, {})
            return None
        return super()._route(method)

    def do_PUT(self):
        self._route("PUT")

    def do_PATCH(self):
        self._route("PATCH")


def test_the_access_program_makes_each_tenant_org_and_a_second_run_changes_nothing(tmp_path):
    """prod's config, with users of every level added to the first tenant and a stale member and data source in its
    organization: the program leaves exactly the listed users with their roles (the admin stays), the tenant's data
    sources and dashboards in its organization only, and the tenant users without a role in the main organization;
    the second run only reads and re-applies (no organization, user or data source created)."""
    result, cfg = run_stack("prod"), stack_cfg("prod")
    config = config_of(result, cfg)
    first, second = config["tenants"][0], config["tenants"][1]
    first["org"]["roles"] = {"alice": "Editor", "vic": "Viewer"}
    second["org"]["roles"] = {"bob": "Editor"}
    # The dashboards as the projected volume mounts them.
    for entry in config["tenants"]:
        for path in entry["org"]["dashboards"]:
            tenant, file = path.split("/")
            data = result.one("ConfigMap", f"dashboard-{file.removesuffix('.json')}", cfg.namespaces.monitoring)
            (tmp_path / tenant).mkdir(exist_ok=True)
            (tmp_path / path).write_text(json.dumps({**json.loads(data.inputs["data"][file]), "id": 3}))
    (tmp_path / "config.json").write_text(json.dumps(config))
    FakeGrafanaOrgs.folders = {
        f"uid-{i}": {"title": title, "items": []}
        for i, title in enumerate(config["platformFolders"] + [t.name for t in cfg.tenants])
    }
    FakeGrafanaOrgs.teams = {}
    FakeGrafanaOrgs.users = {"admin": 1, "alice": 2, "vic": 3, "bob": 4, "mallory": 5}
    FakeGrafanaOrgs.logins = {i: login for login, i in FakeGrafanaOrgs.users.items()}
    stale_org = {
        "name": first["org"]["name"],
        "users": {1: "Admin", 5: "Admin", 3: "Editor"},  # mallory is not listed; vic has the wrong role
        "datasources": {"prometheus": {"uid": "prometheus", "id": 7, "url": "http://prometheus:9090"}},
        "dashboards": {},
    }
    main = {"name": "Main Org.", "users": {1: "Admin", 2: "Viewer", 3: "Viewer", 4: "Viewer"}, "datasources": {}}
    FakeGrafanaOrgs.orgs = {1: {**main, "dashboards": {}}, 2: stale_org}
    writes = []

    def new_run():
        if FakeGrafanaOrgs.calls:
            writes.append([c for c in FakeGrafanaOrgs.calls if c[0] != "GET"])
        FakeGrafanaOrgs.calls = []

    FakeGrafanaOrgs.calls = []
    for done in run_access_script(FakeGrafanaOrgs, tmp_path, runs=2, between=new_run):
        assert done.returncode == 0, done.stdout + done.stderr
    new_run()
    orgs = {o["name"]: (i, o) for i, o in FakeGrafanaOrgs.orgs.items()}
    assert set(orgs) == {"Main Org.", *(f"tenant-{t.name}" for t in cfg.tenants)}
    assert orgs[first["org"]["name"]][1]["users"] == {1: "Admin", 2: "Editor", 3: "Viewer"}
    assert orgs[second["org"]["name"]][1]["users"] == {1: "Admin", 4: "Editor"}
    for entry in config["tenants"]:
        org_id, org = orgs[entry["org"]["name"]]
        assert {uid: {k: v for k, v in s.items() if k != "id"} for uid, s in org["datasources"].items()} == {
            s["uid"]: s for s in entry["org"]["datasources"]
        }
        assert sorted(org["dashboards"]) == sorted(
            json.loads((tmp_path / p).read_text())["uid"] for p in entry["org"]["dashboards"]
        )
    # The main organization: no tenant data source or dashboard, the tenant users without a role.
    assert FakeGrafanaOrgs.orgs[1]["datasources"] == {} and FakeGrafanaOrgs.orgs[1]["dashboards"] == {}
    assert FakeGrafanaOrgs.orgs[1]["users"] == {1: "Admin", 2: "None", 3: "None", 4: "None"}
    # Idempotent: the second run creates nothing and changes no membership.
    assert not [c for c in writes[1] if c[0] in ("POST", "PATCH", "DELETE") and "/orgs" in c[1]]
    assert not [c for c in writes[1] if c[0] == "POST" and c[1] == "/api/datasources"]
    # Every data source and dashboard write named its organization, never the main one.
    tenant_ids = {str(orgs[t["org"]["name"]][0]) for t in config["tenants"]}
    for method, path, org in writes[0] + writes[1]:
        if path.startswith(("/api/datasources", "/api/dashboards")):
            assert org in tenant_ids, (method, path, org)


def test_the_access_program_refuses_an_admin_role(tmp_path):
    config = {
        "platformFolders": [],
        "tenants": [
            {
                "folder": "t",
                "team": "tenant-t",
                "users": [],
                "org": {"name": "tenant-t", "roles": {"eve": "Admin"}, "datasources": [], "dashboards": []},
            }
        ],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    FakeGrafanaOrgs.folders, FakeGrafanaOrgs.teams = {"u": {"title": "t", "items": []}}, {}
    FakeGrafanaOrgs.users, FakeGrafanaOrgs.logins = {"admin": 1, "eve": 2}, {1: "admin", 2: "eve"}
    FakeGrafanaOrgs.orgs = {1: {"name": "Main Org.", "users": {1: "Admin"}, "datasources": {}, "dashboards": {}}}
    (done,) = run_access_script(FakeGrafanaOrgs, tmp_path)
    assert done.returncode != 0 and "refusing role Admin" in done.stderr
    assert all(2 not in o["users"] for i, o in FakeGrafanaOrgs.orgs.items() if i != 1)


def test_the_reachability_rows_cover_the_label_proxy(stacked):
    """Not vacuous: tests/test_reachability.py checks these rows open (Grafana -> proxy -> Prometheus) and closed
    (every tenant pod -> proxy)."""
    from tests.contracts import reachability as contract

    result, cfg = stacked
    needed = [p.name for p in contract.needed(cfg, result)]
    closed = [p.name for p in contract.forbidden(cfg, result)]
    assert {"Grafana -> label proxy 8080", "label proxy -> Prometheus 9090", "label proxy -> DNS UDP"} <= set(needed)
    for tenant in cfg.tenants:
        assert f"{tenant.name} workload -> label proxy 8080" in closed
