"""Who sees what in Grafana: an organization per tenant with its own data sources, and in the platform (main)
organization a folder per tenant viewable only by the tenant's team.

Pure functions, no Pulumi resources: ``Monitoring.tenant_folders`` turns them into ConfigMaps and a CronJob.

Folders. The dashboard sidecar (``grafana.sidecar.dashboards``) writes each dashboard ConfigMap into the directory its
``FOLDER_ANNOTATION`` names (relative to the sidecar's folder, kiwigrid/k8s-sidecar ``_get_destination_folder``) and
Grafana's file provider, with ``foldersFromFilesStructure``, makes each directory a folder of that title. The
platform's dashboards go to ``PLATFORM_FOLDER``, the chart's own to ``CHART_FOLDER`` (kube-prometheus-stack puts
``grafana.sidecar.dashboards.annotations`` on its dashboard ConfigMaps), a tenant's to a folder named after the tenant
(titles with a capital or a space cannot be tenant names, which are DNS labels).

Permissions. Grafana OSS (the chart pins 13.2) has no file provisioning for teams or folder permissions; Team Sync
(IdP groups to teams) and data source permissions are Grafana Enterprise and Cloud only. What OSS offers is the HTTP
API, which the CronJob ``grafana-tenant-access`` calls as Grafana's admin (``SCRIPT``: the program
``components/programs/grafana_tenant_access.py``, Python standard library in the pinned MLflow image), every
``SCHEDULE``, idempotently:
- per tenant the team ``tenant-<name>``, whose members are exactly the tenant's ``access.*.users`` that exist in
  Grafana (``/api/users/lookup`` by login or e-mail; a user exists once signed in; others are added by a later run;
  members not listed are removed);
- the tenant folder's permissions set to that team as Viewer only (``POST /api/folders/<uid>/permissions`` replaces
  every grant, so the Viewer and Editor role grants go; org admins keep access, Grafana never restricts them);
- the platform and chart folders set to the Editor role only (no Viewer grant): tenant users, org Viewers, see
  neither the fleet nor the other tenants' endpoints.
A run fails (and the next retries) while a folder is not provisioned yet.

Why a CronJob rather than a one-shot Job: the chart keeps Grafana's database on an ``emptyDir`` (``persistence``
off), so teams, memberships and folder permissions vanish with the pod and the provisioner recreates the folders with
its default grants; users appear only after their first login. Every run re-applies the whole state, so a Grafana
restart or a new user is covered within one period, and a tenant change reaches Grafana at the next run: it changes
the ConfigMap ``grafana-tenant-access`` (``config.json``) that each run reads.

Groups. ``tenants[].access.*.groups`` are not mapped: Grafana OSS cannot sync IdP groups to teams. An
``[auth.generic_oauth]`` ``role_attribute_path`` maps groups to an org-wide role (Viewer, Editor, Admin), which
reaches every folder open to that role, not one tenant's: it suits a platform-operators group (Editor), not tenants.
List tenant members under ``users`` (their Grafana login or e-mail).

What folders do not isolate: any member of the main organization with a role may query its Prometheus data source
directly (Explore, the query API), every tenant's series included. Hence the organizations below.

Organizations (issue 21 part 3). The same CronJob, in the same run, ensures per tenant the organization ``org(name)``
(``tenant-<name>``; ``GET /api/orgs/name/<name>``, else ``POST /api/orgs``, whose creator, the admin, becomes the new
organization's Admin) and in it:
- the tenant's users (``GET``/``POST /api/orgs/<id>/users``, ``PATCH``/``DELETE /api/orgs/<id>/users/<userId>``) with
  ``ROLES``: developers and admins Editor, viewers Viewer (a user in several lists gets the highest); users not listed
  are removed (the platform admin stays). Never org Admin: Grafana grants data source create/write/delete only to the
  org Admin role (the fixed role ``fixed:datasources:writer``, Grants ``org.RoleAdmin``, grafana/grafana
  pkg/api/accesscontrol.go ``declareFixedRoles`` as stored; Editors get no ``datasources:create``/``write``); an org
  Admin could add a data source with any URL and header (Prometheus directly, Loki with another tenant's
  ``X-Scope-OrgID``) and undo the isolation;
- its data sources, created or updated by uid (``GET``/``PUT /api/datasources/uid/<uid>``, else ``POST
  /api/datasources``) with the ``X-Grafana-Org-Id`` header that selects the organization of an API call (grafana/grafana
  pkg/services/authn/authnimpl ``orgIDHeaderName``, as stored): Prometheus through the label proxy (``label_proxy``,
  the tenant's namespace in a secure header, uid ``prometheus`` and default like the chart's own), Loki and Tempo with
  ``X-Scope-OrgID`` = the tenant's id only (``components.logs``/``components.traces`` ``tenant_datasource``);
- its dashboards (``POST /api/dashboards/db``, ``overwrite``), read from the tenant's dashboard ConfigMaps, which the
  CronJob mounts (a projected volume at ``DASHBOARDS``): the dashboards are already ConfigMaps, so mounting them costs a
  volume entry where copying them into ``config.json`` would double their size. They stay in the main organization's
  tenant folder too: the platform organization keeps the whole view.
Each listed tenant user's role in the main organization (id ``MAIN_ORG``) is set to ``None`` (``PATCH``; Grafana's
``org.RoleNone``, a valid role: pkg/services/org roletype ``IsValid``), and ``[users] auto_assign_org_role`` is
``None`` (``chart``: ``GF_USERS_AUTO_ASSIGN_ORG_ROLE``), so that a first login gives no data access until the CronJob adds the
user to the tenant's organization. Platform operators are given a role in the main organization by the Grafana admin
(or an OAuth ``role_attribute_path``), as before. The org API calls need a Grafana server admin: the chart's admin is.
"""

from __future__ import annotations

import json

from config.tenancy import Tenant

from ..programs import source
from .label_proxy import HEADER

FOLDER_ANNOTATION = "grafana_folder"
PLATFORM_FOLDER = "AI platform"
CHART_FOLDER = "Kubernetes"
ACCESS_NAME = "grafana-tenant-access"
SCHEDULE = "*/5 * * * *"
SCRIPT_KEY = "access.py"
CONFIG_KEY = "config.json"
MOUNT = "/etc/grafana-access"
DASHBOARDS = "/etc/grafana-dashboards"
MAIN_ORG = 1
NO_ROLE = "None"
# Tenant access level -> role in the tenant's organization (never Admin: see the module docstring).
ROLES = {"admins": "Editor", "developers": "Editor", "viewers": "Viewer"}
RANK = {"Viewer": 1, "Editor": 2}
PROMETHEUS_UID = "prometheus"  # the chart's own Prometheus data source uid (grafana.sidecar.datasources.uid)


def team(tenant: str) -> str:
    return f"tenant-{tenant}"


def org(tenant: str) -> str:
    """The tenant's Grafana organization."""
    return f"tenant-{tenant}"


def roles(tenant: Tenant) -> dict[str, str]:
    """Login -> role in the tenant's organization: the highest of the lists the user is in."""
    found: dict[str, str] = {}
    for level, role in ROLES.items():
        for user in getattr(tenant.access, level).users:
            if RANK[role] > RANK.get(found.get(user, ""), 0):
                found[user] = role
    return dict(sorted(found.items()))


def prometheus_datasource(proxy_url: str, namespace: str) -> dict:
    """A tenant organization's Prometheus: the label proxy, which enforces ``namespace="<namespace>"`` from the
    header Grafana sets (``label_proxy``)."""
    return {
        "name": "Prometheus",
        "uid": PROMETHEUS_UID,
        "type": "prometheus",
        "access": "proxy",
        "url": proxy_url,
        "isDefault": True,
        "editable": False,
        "jsonData": {"httpHeaderName1": HEADER, "httpMethod": "POST"},
        "secureJsonData": {"httpHeaderValue1": namespace},
    }


def dashboard_files(boards: dict[str, dict[str, dict]]) -> dict[str, list[str]]:
    """Tenant -> the paths (under ``DASHBOARDS``) of its dashboards, as the CronJob's projected volume mounts them."""
    return {
        tenant: [f"{tenant}/{tenant}-{name}.json" for name in sorted(by_name)] for tenant, by_name in boards.items()
    }


def access_config(
    tenants: list[Tenant],
    datasources: dict[str, list[dict]] | None = None,
    boards: dict[str, dict[str, dict]] | None = None,
) -> dict:
    """What the script applies: the platform folders (Editor role only); per tenant its folder, team and users in the
    main organization, and its organization with roles, data sources (``datasources``: tenant -> data sources) and
    dashboards (``boards``: tenant -> name -> JSON)."""
    files = dashboard_files(boards or {})
    return {
        "platformFolders": [PLATFORM_FOLDER, CHART_FOLDER],
        "mainOrg": {"id": MAIN_ORG, "tenantRole": NO_ROLE},
        "tenants": [
            {
                "folder": tenant.name,
                "team": team(tenant.name),
                "users": sorted(roles(tenant)),
                "org": {
                    "name": org(tenant.name),
                    "roles": roles(tenant),
                    "datasources": list((datasources or {}).get(tenant.name, [])),
                    "dashboards": files.get(tenant.name, []),
                },
            }
            for tenant in tenants
        ],
    }


def config_json(
    tenants: list[Tenant],
    datasources: dict[str, list[dict]] | None = None,
    boards: dict[str, dict[str, dict]] | None = None,
) -> str:
    """The CronJob's ``config.json``: compact, since it grows with the tenants (about 1.2 KB each, mostly their data
    sources) and a ConfigMap holds at most 1 MiB (about 850 tenants)."""
    return json.dumps(access_config(tenants, datasources, boards), separators=(",", ":"), sort_keys=True)


SCRIPT = source("grafana_tenant_access")
