"""What a platform engineer does to a stack file on day one, as a function of whatever the file holds: add a tenant
and an endpoint in it (README, "Adding a tenant"), remove a tenant and what names it. Used by
``tests/test_any_stack.py`` to show that the invariant tests hold for any valid stack, not only for ours."""

from __future__ import annotations

import copy
from typing import Any

TENANTS = "ai-platform:tenants"


def new_tenant(name: str) -> dict[str, Any]:
    """The README's example tenant, without GPUs (so it fits any GPU inventory)."""
    return {
        "name": name,
        "access": {"admins": {"groups": [f"{name}-leads"]}, "developers": {"groups": [name]}},
        "quota": {
            "cpu": {"requests": "16", "limits": "32"},
            "memory": {"requests": "64Gi", "limits": "128Gi"},
            "gpu": 0,
            "storage": "1Ti",
        },
        "queue": {"weight": 2},
    }


def new_endpoint(name: str, tenant: str) -> dict[str, Any]:
    """A CPU-only KServe endpoint (a scikit-learn model) of ``tenant``."""
    return {
        "name": name,
        "tenant": tenant,
        "engine": "kserve",
        "source": "gs://kfserving-examples/models/sklearn/1.0/model",
        "resources": {"cpu": "500m", "memory": "1Gi"},
        "kserve": {"modelFormat": "sklearn"},
    }


def _without(value: Any, tenant: str) -> Any:
    """``value`` without the list items that belong to ``tenant`` (``tenant: <name>``) or name it (``tenants:``)."""
    if isinstance(value, dict):
        return {
            key: [t for t in item if t != tenant]
            if key == "tenants" and isinstance(item, list)
            else _without(item, tenant)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _without(item, tenant) for item in value if not (isinstance(item, dict) and item.get("tenant") == tenant)
        ]
    return value


def _free(name: str, taken: set[str]) -> str:
    return next(f"{name}{n or ''}" for n in range(100) if f"{name}{n or ''}" not in taken)


def day_one(config: dict[str, Any]) -> tuple[dict[str, Any], str, str | None]:
    """``config`` (a stack file's ``config:`` mapping) with a new tenant and a new endpoint in it, and its last
    tenant (when it has two or more) removed with every endpoint, pipeline and list entry that names it; under
    strict data protection the removed tenant is listed in ``dataProtection.decommission``, as the README's
    decommissioning steps say. Returns the config, the added tenant and the removed one."""
    config = copy.deepcopy(config)
    tenants = config.setdefault(TENANTS, [])
    names = {t["name"] for t in tenants}
    removed = tenants[-1]["name"] if len(tenants) >= 2 else None
    if removed:
        config = {key: _without(value, removed) for key, value in config.items() if key != TENANTS} | {
            TENANTS: [t for t in tenants if t["name"] != removed]
        }
        protection = config.get("ai-platform:dataProtection") or {}
        if protection.get("mode", "strict") == "strict":
            protection["decommission"] = sorted({*protection.get("decommission", []), f"tenant:{removed}"})
            config["ai-platform:dataProtection"] = protection
    added = _free("vision", names)
    config[TENANTS].append(new_tenant(added))
    models = config.setdefault("ai-platform:models", [])
    models.append(new_endpoint(_free("sentiment", {m["name"] for m in models}), added))
    return config, added, removed
