"""The Grafana access CronJob (``components.monitoring.grafana_access``, which says why): as Grafana's admin, through
its HTTP API, gives each tenant's team exactly the tenant's users that exist in Grafana, leaves each tenant folder to
that team as Viewer only, and the platform's folders to the Editor role only. Idempotent, re-run every period; exits
non-zero while a folder is not provisioned yet (the next run retries).

Environment: ``GRAFANA_URL``, the admin's ``GRAFANA_USER``/``GRAFANA_PASSWORD``, and ``CONFIG``: the path of the
JSON file ``{"platformFolders": [title], "tenants": [{"folder", "team", "users"}]}``.
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

    def call(method, path, body=None, missing_ok=False):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            url + path,
            data=data,
            method=method,
            headers={
                "Authorization": "Basic " + token,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
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
        user = call("GET", "/api/users/lookup?" + urllib.parse.urlencode({"loginOrEmail": login}), missing_ok=True)
        if user is None:
            print(f"{name}: {login} has not signed in to Grafana yet")
        else:
            wanted.add(user["id"])
    current = {member["userId"] for member in call("GET", f"/api/teams/{team}/members")}
    for user in sorted(wanted - current):
        call("POST", f"/api/teams/{team}/members", {"userId": user})
    for user in sorted(current - wanted):
        call("DELETE", f"/api/teams/{team}/members/{user}")


def main():
    url = os.environ["GRAFANA_URL"].rstrip("/")
    call = api(url, os.environ["GRAFANA_USER"], os.environ["GRAFANA_PASSWORD"])
    with open(os.environ["CONFIG"]) as file:
        config = json.load(file)
    wait_for_url(url + "/api/health", "Grafana", attempts=30)
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
