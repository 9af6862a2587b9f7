"""Grafana folders and who may see them: a folder per tenant viewable only by the tenant's team.

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

What folders do not isolate: any org member may query the Prometheus data source directly (Explore, the query API),
every tenant's series included; per-tenant data needs data source permissions (Enterprise) or an org per tenant with
its own label-enforcing data source.
"""

from __future__ import annotations

import json

from config.tenancy import Tenant

from ..programs import source

FOLDER_ANNOTATION = "grafana_folder"
PLATFORM_FOLDER = "AI platform"
CHART_FOLDER = "Kubernetes"
ACCESS_NAME = "grafana-tenant-access"
SCHEDULE = "*/5 * * * *"
SCRIPT_KEY = "access.py"
CONFIG_KEY = "config.json"
MOUNT = "/etc/grafana-access"


def team(tenant: str) -> str:
    return f"tenant-{tenant}"


def access_config(tenants: list[Tenant]) -> dict:
    """What the script applies: the platform folders (Editor role only) and, per tenant, its folder, team and users."""
    return {
        "platformFolders": [PLATFORM_FOLDER, CHART_FOLDER],
        "tenants": [
            {
                "folder": tenant.name,
                "team": team(tenant.name),
                "users": sorted(
                    {
                        user
                        for subjects in (tenant.access.admins, tenant.access.developers, tenant.access.viewers)
                        for user in subjects.users
                    }
                ),
            }
            for tenant in tenants
        ],
    }


def config_json(tenants: list[Tenant]) -> str:
    return json.dumps(access_config(tenants), indent=1, sort_keys=True)


SCRIPT = source("grafana_tenant_access")
