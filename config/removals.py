"""The strict removal check: a stack config may not drop a service or tenant that the stack had.

What the stack had is its URN snapshot, ``state/<stack>.json`` (the reviewed state of the stack, updated
with ``make snapshot``; see ``tools.snapshot``). Each service and each tenant is recognised there by its component
(a service by the components its record in ``config.services`` names, ``ai-platform:milvus:Milvus``; a tenant by
``ai-platform:tenancy:Tenant::tenant-<name>``). Under ``dataProtection.mode:
strict`` every one of them that the config no longer has is a problem that names what ``pulumi up`` would delete,
unless ``dataProtection.decommission`` lists it. No snapshot (a new stack): nothing to compare.
"""

from __future__ import annotations

import json
from pathlib import Path

from .model import PlatformConfig
from .services import SERVICES

SNAPSHOTS = Path(__file__).resolve().parents[1] / "state"

TENANT = "ai-platform:tenancy:Tenant"
# What the message names: the resources whose deletion loses data or CRDs.
NAMED_TYPES = (
    "kubernetes:core/v1:Namespace",
    "kubernetes:helm.sh/v3:Release",
    "kubernetes:postgresql.cnpg.io/v1:Cluster",
)


def _split(urn: str) -> tuple[list[str], str]:
    """A URN's type chain (parents first) and logical name."""
    _, _, types, name = urn.split("::", 3)
    return types.split("$"), name


def snapshot_owners(urns: list[str]) -> dict[str, tuple[str, list[str]]]:
    """Owner (service name or ``tenant:<name>``) -> (config path, URNs of the snapshot that belong to it). A URN
    belongs to each service one of whose ``components`` is in its type chain (a shared operator to every service that
    names it)."""
    owners: dict[str, tuple[str, list[str]]] = {}
    tenants = {name[len("tenant-") :] for urn in urns for chain, name in [_split(urn)] if chain[-1] == TENANT}
    for urn in urns:
        chain, name = _split(urn)
        types = f"${'$'.join(chain)}$"
        for service in SERVICES.values():
            if any(f"${component}$" in types for component in service.components):
                owners.setdefault(service.key, (service.switch, []))[1].append(urn)
        if TENANT in chain:
            tenant = next(t for t in tenants if name == f"tenant-{t}" or name.startswith(f"tenant-{t}-"))
            owners.setdefault(f"tenant:{tenant}", ("tenants", []))[1].append(urn)
    return owners


def _named(urns: list[str], snapshot: dict[str, dict]) -> str:
    """The namespaces, releases and databases among ``urns``, by their Kubernetes (or release) names."""
    names = []
    for urn in urns:
        chain, name = _split(urn)
        if chain[-1] in NAMED_TYPES:
            fields = snapshot.get(urn) or {}
            names.append(f"{chain[-1].rsplit(':', 1)[-1]} {fields.get('metadata.name') or fields.get('name') or name}")
    return ", ".join(sorted(names)) or "no namespace or release"


def removal_problems(stack: str, cfg: PlatformConfig, snapshots: Path = SNAPSHOTS) -> list[tuple[str, str]]:
    """(config path, message) for each service or tenant of the stack's snapshot that ``cfg`` drops under strict
    protection without listing it in ``dataProtection.decommission``."""
    path = snapshots / f"{stack}.json"
    if cfg.data_protection.mode != "strict" or not path.exists():
        return []
    snapshot = json.loads(path.read_text())
    owners = snapshot_owners(list(snapshot))
    kept = set(cfg.data_owners) | set(cfg.data_protection.decommission)
    problems = []
    for owner, (config_path, urns) in sorted(owners.items()):
        if owner in kept:
            continue
        what = (
            f"tenant {owner.split(':', 1)[1]!r} is gone (a rename deletes its namespace and creates another): "
            f"pulumi up would delete its {len(urns)} resources, among them {_named(urns, snapshot)}, with every object "
            "and volume in the namespace"
            if owner.startswith("tenant:")
            else f"dropping {owner} would delete its {len(urns)} resources, among them {_named(urns, snapshot)}"
        )
        problems.append(
            (
                config_path,
                f"{what} (per state/{stack}.json). With dataProtection.mode strict, "
                f'first add "{owner}" to dataProtection.decommission and run pulumi up, then '
                "remove it from the stack and update the snapshot (make snapshot)",
            )
        )
    return problems
