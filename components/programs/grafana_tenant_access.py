"""The Grafana access CronJob (``components.monitoring.grafana_access``, which says why): as Grafana's admin, through
its HTTP API, gives each tenant's team exactly the tenant's users that exist in Grafana, leaves each tenant folder to
that team as Viewer only, and the platform's folders to the Editor role only; per tenant its own organization with
exactly the tenant's users (Editor or Viewer, never Admin), its data sources and dashboards, and the tenant's users
without a role (``None``) in the main organization. Idempotent, re-run every period; exits non-zero while a folder is
not provisioned yet (the next run retries).

Environment: ``GRAFANA_URL``, the admin's ``GRAFANA_USER``/``GRAFANA_PASSWORD``, ``CONFIG``: the path of the JSON file
``{"platformFolders": [title], "mainOrg": {"id", "tenantRole"}, "tenants": [{"folder", "team", "users", "org":
{"name", "roles": {login: role}, "datasources": [...], "dashboards": [path]}}]}``, and ``DASHBOARDS``: the directory
the dashboard paths are relative to.
"""

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request

from .wait import wait_for_url

# Grafana's folder permission levels (HTTP API, folder_permissions.md).
VIEW, EDIT = 1, 2


def api(url, user, password):
    """``call(method, path, body=None, missing_ok=False)``: a JSON request to Grafana as ``user``, its JSON reply
    (None for a 404 when ``missing_ok``); any other HTTP error ends the program."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(method, path, body=None, missing_ok=False, org=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": "Basic " + token, "Content-Type": "application/json", "Accept": "application/json"}
        if org is not None:
            headers["X-Grafana-Org-Id"] = str(org)  # the organization an API call acts in
        request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            if missing_ok and error.code == 404:
                return None
            raise SystemExit(f"{method} {path}: HTTP {error.code}") from None

    return call


def team_id(call, name):
    found = call("GET", "/api/teams/search?" + urllib.parse.urlencode({"name": name}))["teams"]
    return found[0]["id"] if found else call("POST", "/api/teams", {"name": name})["teamId"]


def sync_members(call, team, name, users):
    wanted = set()
    for login in users:
        user = lookup(call, login)
        if user is None:
            print(f"{name}: {login} has not signed in to Grafana yet")
        else:
            wanted.add(user["id"])
    current = {member["userId"] for member in call("GET", f"/api/teams/{team}/members")}
    for user in sorted(wanted - current):
        call("POST", f"/api/teams/{team}/members", {"userId": user})
    for user in sorted(current - wanted):
        call("DELETE", f"/api/teams/{team}/members/{user}")


def lookup(call, login):
    """The Grafana user of a login or e-mail (None: not signed in yet)."""
    return call("GET", "/api/users/lookup?" + urllib.parse.urlencode({"loginOrEmail": login}), missing_ok=True)


# Grafana's org API (grafana/grafana pkg/api/org.go and org_users.go, as stored; the v13.2.0 tag itself could not be
# fetched, its snapshot is over the size limit): GET /api/orgs/name/<name> -> {"id"}; POST /api/orgs {"name"} ->
# {"orgId", "message": "Organization created"}, the caller becoming the new org's Admin; /api/orgs/<id>/users GET,
# POST {"loginOrEmail", "role"}, PATCH and DELETE /<userId>. Data source and dashboard calls act in the organization
# the X-Grafana-Org-Id header names (pkg/services/authn/authnimpl orgIDHeaderName).
def org_id(call, name):
    found = call("GET", "/api/orgs/name/" + urllib.parse.quote(name, safe=""), missing_ok=True)
    return found["id"] if found else call("POST", "/api/orgs", {"name": name})["orgId"]


def sync_org_users(call, org, name, roles, admin):
    """Exactly ``roles`` (login -> role) among the users that exist, plus the admin (kept as it is)."""
    wanted = {}
    for login, role in roles.items():
        if role not in ("Viewer", "Editor"):  # never Admin: an org Admin could add any data source
            raise SystemExit(f"{name}: refusing role {role} for {login}")
        user = lookup(call, login)
        if user is None:
            print(f"{name}: {login} has not signed in to Grafana yet")
        else:
            wanted[user["id"]] = (login, role)
    current = {m["userId"]: m for m in call("GET", f"/api/orgs/{org}/users")}
    for user, (login, role) in sorted(wanted.items()):
        if user not in current:
            call("POST", f"/api/orgs/{org}/users", {"loginOrEmail": login, "role": role})
        elif current[user]["role"] != role:
            call("PATCH", f"/api/orgs/{org}/users/{user}", {"role": role})
    for user, member in sorted(current.items()):
        if user not in wanted and member["login"] != admin:
            call("DELETE", f"/api/orgs/{org}/users/{user}")


def sync_datasources(call, org, datasources):
    for source in datasources:
        found = call("GET", f"/api/datasources/uid/{source['uid']}", missing_ok=True, org=org)
        if found is None:
            call("POST", "/api/datasources", source, org=org)
        else:
            call("PUT", f"/api/datasources/uid/{source['uid']}", {**source, "id": found["id"]}, org=org)


def sync_dashboards(call, org, directory, paths):
    for path in paths:
        with open(os.path.join(directory, path)) as file:
            dashboard = json.load(file)
        dashboard.pop("id", None)
        call("POST", "/api/dashboards/db", {"dashboard": dashboard, "overwrite": True}, org=org)


def no_role_in_main_org(call, main, role, logins):
    """Listed tenant users keep a membership of the main organization (their first login put them there) without a
    role: they see none of its dashboards or data sources."""
    members = {m["userId"]: m for m in call("GET", f"/api/orgs/{main}/users")}
    for login in sorted(logins):
        user = lookup(call, login)
        if user is not None and user["id"] in members and members[user["id"]]["role"] != role:
            call("PATCH", f"/api/orgs/{main}/users/{user['id']}", {"role": role})


def organizations(call, config, admin, directory):
    for tenant in config["tenants"]:
        spec = tenant.get("org")
        if spec is None:
            continue
        org = org_id(call, spec["name"])
        sync_org_users(call, org, spec["name"], spec["roles"], admin)
        sync_datasources(call, org, spec["datasources"])
        sync_dashboards(call, org, directory, spec["dashboards"])
        print(f"org {spec['name']} ({org}): {len(spec['roles'])} users, {len(spec['datasources'])} data sources")
    main = config.get("mainOrg")
    if main is not None:
        logins = {login for t in config["tenants"] for login in t.get("org", {}).get("roles", {})}
        no_role_in_main_org(call, main["id"], main["tenantRole"], logins)


def main():
    url = os.environ["GRAFANA_URL"].rstrip("/")
    call = api(url, os.environ["GRAFANA_USER"], os.environ["GRAFANA_PASSWORD"])
    with open(os.environ["CONFIG"]) as file:
        config = json.load(file)
    wait_for_url(url + "/api/health", "Grafana", attempts=30)
    organizations(call, config, os.environ["GRAFANA_USER"], os.environ.get("DASHBOARDS", "/"))
    folders = {folder["title"]: folder["uid"] for folder in call("GET", "/api/folders?limit=1000")}
    missing = []
    for title in config["platformFolders"]:
        if title in folders:
            call(
                "POST",
                f"/api/folders/{folders[title]}/permissions",
                {"items": [{"role": "Editor", "permission": EDIT}]},
            )
        else:
            missing.append(title)
    for tenant in config["tenants"]:
        team = team_id(call, tenant["team"])
        sync_members(call, team, tenant["team"], tenant["users"])
        if tenant["folder"] not in folders:
            missing.append(tenant["folder"])
            continue
        call(
            "POST",
            f"/api/folders/{folders[tenant['folder']]}/permissions",
            {"items": [{"teamId": team, "permission": VIEW}]},
        )
        print(f"folder {tenant['folder']}: team {tenant['team']} may view, no role grants")
    if missing:
        raise SystemExit(f"folders not provisioned yet (retried next run): {missing}")


if __name__ == "__main__":
    main()
