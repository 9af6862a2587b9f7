"""URN snapshots and the replacement audit: what ``pulumi up`` would delete, re-create or replace.

``state/<stack>.json`` maps every URN the program registers for a stack file to the few inputs whose
change makes Pulumi or Kubernetes replace the resource instead of updating it (``fields``), one line per URN.
``take(run)`` builds that mapping; ``compare(old, run)`` says what changed since: URNs added or removed, renamed
through an alias (``pulumi up`` keeps the resource), changed without an alias (deleted and re-created), and
recorded fields that changed, each marked whether it replaces. ``tests/test_snapshots.py`` and the renderer's
``plan.md`` use it. Not recorded: ConfigMap and Secret data (pulumi-kubernetes replaces those objects on a data
change too, but they hold no state; Secret data is not visible here) and immutable fields inside charts other than
storage classes in Helm values.

    python -m tools.snapshot --stack dev      # or --all: rewrite state/<stack>.json from the program
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.loader import ConfigError
from config.quantity import parse_quantity

from .harness import ROOT, Registered, Run, engine_urn, run

RELEASE = "kubernetes:helm.sh/v3:Release"
PASSWORD = "random:index/randomPassword:RandomPassword"
PROVIDER = "pulumi:providers:kubernetes"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"

# Fields whose change replaces a Kubernetes object, by [group/]kind: pulumi-kubernetes v4's forceNew table
# (provider/pkg/provider/diff.go). Every object adds metadata.name and metadata.namespace.
OBJECT_FIELDS = {
    "apps/Deployment": ["spec.selector"],
    "apps/DaemonSet": ["spec.selector"],
    "apps/StatefulSet": [
        "spec.selector",
        "spec.serviceName",
        "spec.podManagementPolicy",
        "spec.revisionHistoryLimit",
        "spec.volumeClaimTemplates",
    ],
    "batch/Job": ["spec.selector", "spec.template", "spec.completions", "spec.parallelism"],
    "PersistentVolumeClaim": [
        "spec.accessModes",
        "spec.storageClassName",
        "spec.volumeName",
        "spec.selector",
        "spec.resources.requests.storage",
    ],
    "Service": ["spec.clusterIP", "spec.type"],
    "Secret": ["type"],
    "ResourceQuota": ["spec.scopes"],
    "rbac.authorization.k8s.io/RoleBinding": ["roleRef"],
    "rbac.authorization.k8s.io/ClusterRoleBinding": ["roleRef"],
    "storage.k8s.io/StorageClass": ["provisioner", "parameters"],
}
DIGESTED = {"spec.template", "spec.volumeClaimTemplates"}  # large: recorded as a digest
RELEASE_FIELDS = ["name", "namespace", "chart"]  # the provider replaces on name/namespace; see NOTES for chart
PROVIDER_FIELDS = ["cluster", "clusterIdentifier", "context"]
STORAGE_CLASS_KEYS = ("storageClass", "storageClassName")
VOLUME_NOTE = (
    "a volume keeps the class it was created with: the change fails, or takes effect only by "
    "re-creating the volume and losing its data"
)
NOTES = {
    "chart": "an upgrade to another chart: the old chart's objects are deleted",
    "cluster": "a provider for another cluster replaces every object it manages",
    "context": "a provider for another cluster replaces every object it manages",
    "spec.resources.requests.storage": "a claim cannot shrink: only re-creating it (and losing its data) applies this",
}


def _get(data: dict, path: str) -> Any:
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _storage_classes(value: Any, path: str) -> dict[str, Any]:
    """Every ``storageClass``/``storageClassName`` leaf under ``value`` (Helm values, a custom resource's spec)."""
    found = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key in STORAGE_CLASS_KEYS and not isinstance(item, (dict, list)):
                found[f"{path}.{key}"] = item
            else:
                found.update(_storage_classes(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_storage_classes(item, f"{path}[{index}]"))
    return found


def _group_kind(resource: Registered) -> str:
    api_version = resource.inputs.get("apiVersion", "")
    return f"{api_version.rsplit('/', 1)[0]}/{resource.kind}" if "/" in api_version else resource.kind


def _is_custom_resource(resource: Registered) -> bool:
    group = resource.inputs.get("apiVersion", "").rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def fields(resource: Registered) -> dict[str, Any]:
    """The inputs of ``resource`` whose change replaces it (or, for volumes, needs it re-created)."""
    inputs = resource.inputs
    if resource.type == PASSWORD:
        return dict(sorted(inputs.items()))  # every RandomPassword input forces a new password
    if resource.type == PROVIDER:
        paths, extra = PROVIDER_FIELDS, {}
    elif resource.type == RELEASE:
        paths, extra = RELEASE_FIELDS, _storage_classes(inputs.get("values") or {}, "values")
    elif resource.is_kubernetes_object:
        paths = ["metadata.name", "metadata.namespace"] + OBJECT_FIELDS.get(_group_kind(resource), [])
        extra = _storage_classes(inputs.get("spec") or {}, "spec") if _is_custom_resource(resource) else {}
    else:
        return {}
    found = {path: _get(inputs, path) for path in paths}
    found = {path: _digest(value) if path in DIGESTED else value for path, value in found.items() if value is not None}
    return dict(sorted({**found, **extra}.items()))


def _digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def take(result: Run) -> dict[str, dict]:
    """URN -> replace-deciding fields of every resource of a run, sorted by URN."""
    snapshot: dict[str, dict] = {}
    for resource in result.resources:
        if resource.urn in snapshot:
            raise ValueError(f"two resources with the URN {resource.urn}: pulumi up refuses the program")
        snapshot[resource.urn] = fields(resource)
    return dict(sorted(snapshot.items()))


def _split(urn: str) -> list[str]:
    """``[stack, project, qualified type, name]`` of a URN."""
    return urn.removeprefix("urn:pulumi:").split("::", 3)


def _type(urn: str) -> str:
    return _split(urn)[2].rsplit("$", 1)[-1]


def alias_urns(result: Run) -> dict[str, set[str]]:
    """The former URNs each resource claims through its aliases, as the engine resolves them: an alias spec
    defaults to the resource's own name, type, stack, project and parent, and a child inherits its parent's aliases."""
    by_urn = {r.urn: r for r in result.resources}
    found: dict[str, set[str]] = {}

    def resolve(resource: Registered) -> set[str]:
        if resource.urn in found:
            return found[resource.urn]
        stack, project = _split(resource.urn)[:2]
        parent = by_urn.get(resource.parent)
        parent_aliases = sorted(resolve(parent)) if parent else []
        parents = [resource.parent or None] + parent_aliases
        urns = set()
        for alias in resource.aliases:
            if isinstance(alias, str) or "urn" in alias:
                urns.add(alias if isinstance(alias, str) else alias["urn"])
                continue
            spec = alias.get("spec", {})
            options = [None] if spec.get("noParent") else [spec["parentUrn"]] if spec.get("parentUrn") else parents
            for option in options:
                urns.add(
                    engine_urn(
                        spec.get("stack") or stack,
                        spec.get("project") or project,
                        option,
                        spec.get("type") or resource.type,
                        spec.get("name") or resource.name,
                    )
                )
        for parent_alias in parent_aliases:  # a child named after its parent follows the parent's old name
            name = resource.name
            if name.startswith(parent.name):
                name = _split(parent_alias)[3] + name[len(parent.name) :]
            urns.add(engine_urn(stack, project, parent_alias, resource.type, name))
        urns.discard(resource.urn)
        found[resource.urn] = urns
        return urns

    for resource in result.resources:
        resolve(resource)
    return found


@dataclass
class FieldChange:
    """A recorded field of one resource that differs from the snapshot."""

    urn: str  # as in the snapshot
    field: str
    old: Any
    new: Any
    replaces: bool
    note: str = ""


@dataclass
class Changes:
    """What a run changes against a snapshot (URNs sorted)."""

    old: dict[str, dict]
    new: dict[str, dict]
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old, new): an alias keeps the resource
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (old, new): the same object, no alias
    fields: list[FieldChange] = field(default_factory=list)

    @property
    def deletes(self) -> bool:
        """``pulumi up`` would delete a resource: a URN vanished without an alias."""
        return bool(self.removed or self.replaced)

    @property
    def replacements(self) -> list[FieldChange]:
        return [change for change in self.fields if change.replaces]

    @property
    def exact(self) -> bool:
        return self.old == self.new

    def label(self, urn: str) -> str:
        """``Kind namespace/name`` of a resource as the snapshot knows it (``Kind `logical name``` without a
        Kubernetes name)."""
        entry = self.old.get(urn, self.new.get(urn, {}))
        kind = _type(urn).rsplit(":", 1)[-1]
        if _type(urn).startswith("pulumi:providers:"):
            kind = f"{kind} provider"
        if _type(urn) == RELEASE:
            kind, namespace, name = "Helm release", entry.get("namespace"), entry.get("name")
        else:
            namespace, name = entry.get("metadata.namespace"), entry.get("metadata.name")
        if name is None:
            return f"{kind} `{_split(urn)[3]}`"
        return f"{kind} {namespace + '/' if namespace else ''}{name}"


def _identity(urn: str, entry: dict) -> tuple | None:
    """What names the same object across a URN change: its namespace and Kubernetes (or release) name."""
    name = entry.get("name") if _type(urn) == RELEASE else entry.get("metadata.name")
    namespace = entry.get("namespace") if _type(urn) == RELEASE else entry.get("metadata.namespace")
    return None if name is None else (namespace, name)


def _same_object(old_urn: str, old_entry: dict, new_urn: str, new_entry: dict) -> bool:
    """Whether a vanished URN and a new one are one resource: same type, and same logical or Kubernetes name."""
    if _type(old_urn) != _type(new_urn):
        return False
    identity = _identity(old_urn, old_entry)
    return _split(old_urn)[3] == _split(new_urn)[3] or (
        identity is not None and identity == _identity(new_urn, new_entry)
    )


def _replaces(urn: str, path: str, old: Any, new: Any) -> tuple[bool, str]:
    """Whether changing ``path`` from ``old`` to ``new`` replaces the resource, and why when it is not plain."""
    if path == "spec.type":  # Service: only a change to or from ExternalName re-creates it
        return "ExternalName" in (old, new), ""
    if path == "spec.resources.requests.storage":  # a claim grows in place
        shrinks = old is not None and new is not None and parse_quantity(str(new)) < parse_quantity(str(old))
        return shrinks, NOTES[path] if shrinks else ""
    if path.rsplit(".", 1)[-1] in STORAGE_CLASS_KEYS and _type(urn) != PVC:  # Helm values, custom resources
        return True, VOLUME_NOTE
    return True, NOTES.get(path, "")


def compare(old: dict[str, dict], result: Run) -> Changes:
    """What ``result`` changes against the snapshot ``old``."""
    new = take(result)
    aliases = alias_urns(result)
    changes = Changes(old, new)
    claimed = set()
    for urn in new:
        if urn not in old:
            former = sorted(a for a in aliases.get(urn, ()) if a in old and a not in new and a not in claimed)
            if former:
                changes.renamed.append((former[0], urn))
                claimed.add(former[0])
    renamed_to = {urn for _, urn in changes.renamed}
    added = [urn for urn in new if urn not in old and urn not in renamed_to]
    for urn in (u for u in old if u not in new and u not in claimed):
        match = next((a for a in added if _same_object(urn, old[urn], a, new[a])), None)
        if match:
            changes.replaced.append((urn, match))
            added.remove(match)
        else:
            changes.removed.append(urn)
    changes.added = added
    for before, after in [(urn, urn) for urn in new if urn in old] + changes.renamed:
        for path in sorted(set(old[before]) | set(new[after])):
            was, now = old[before].get(path), new[after].get(path)
            if was != now:
                replaces, note = _replaces(after, path, was, now)
                changes.fields.append(FieldChange(before, path, was, now, replaces, note))
    return changes


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _describe(changes: list[FieldChange]) -> str:
    """``field: old -> new; …`` and, once each, the notes."""
    texts = [
        f"{c.field} changed"
        if str(c.old).startswith("sha256:") and str(c.new).startswith("sha256:")
        else f"{c.field}: {_show(c.old)} -> {_show(c.new)}"
        for c in changes
    ]
    notes = list(dict.fromkeys(c.note for c in changes if c.note))
    return "; ".join(texts) + "".join(f" — {note}" for note in notes)


def unsafe_report(stack: str, changes: Changes) -> str:
    """The data-safety failure: every URN that vanished without an alias, and what appeared."""
    lines = [
        f"stack {stack}: these resources would be DELETED and re-CREATED by pulumi up (URN changed without an alias):"
    ]
    lines += [f"  {old} -> {new}" for old, new in changes.replaced]
    lines += [f"  {old} -> removed" for old in changes.removed]
    lines += [f"  added -> {new}" for new in changes.added]
    lines += [
        "To keep a renamed or moved resource, give the new one `aliases=[pulumi.Alias(name=<old name>)]` "
        "(or `parent=<old parent>`) in its ResourceOptions.",
        f"If the deletion is intended: `python -m tools.snapshot --stack {stack}` and commit the diff.",
    ]
    return "\n".join(lines)


def stale_report(stack: str, changes: Changes, path: str) -> str:
    """The exactness failure: everything that differs from the checked-in snapshot."""
    lines = [f"{path} is out of date for stack {stack}:"]
    lines += [f"  added: {urn}" for urn in changes.added]
    lines += [f"  removed: {urn}" for urn in changes.removed]
    lines += [f"  renamed through an alias: {old} -> {new}" for old, new in changes.renamed]
    lines += [f"  re-created (no alias): {old} -> {new}" for old, new in changes.replaced]
    lines += [
        f"  {'REPLACES' if c.replaces else 'in place:'} {changes.label(c.urn)}: {_describe([c])}"
        for c in changes.fields
    ]
    lines.append(f"Update it: `python -m tools.snapshot --stack {stack}` (or `make snapshot`) and commit the diff.")
    return "\n".join(lines)


def plan_section(changes: Changes | None, source: str) -> list[str]:
    """plan.md's section on what ``pulumi up`` would replace or delete since the snapshot at ``source``."""
    lines = ["## Replacements (since the last snapshot)", ""]
    if changes is None:
        return lines + [f"No snapshot at `{source}`: replacements not audited (`make snapshot` writes one).", ""]
    lines += [f"Compared with `{source}`.", ""]
    by_resource: dict[tuple[str, bool], list[FieldChange]] = {}
    for change in changes.replacements:
        by_resource.setdefault((change.urn, change.note == VOLUME_NOTE), []).append(change)
    for (urn, volumes), found in by_resource.items():
        what = f"needs the volumes of {changes.label(urn)} RE-CREATED" if volumes else f"REPLACES {changes.label(urn)}"
        lines.append(f"- this change {what} ({_describe(found)})")
    lines += [
        f"- DELETED and re-created (URN changed without an alias): {changes.label(old)}: `{old}` -> `{new}`"
        for old, new in changes.replaced
    ]
    if not by_resource and not changes.replaced:
        lines += ["No replacements since the last snapshot.", ""]
    lines += [f"- DELETED (no longer declared): {changes.label(urn)} `{urn}`" for urn in changes.removed]
    lines += [f"- renamed through an alias (kept): `{old}` -> `{new}`" for old, new in changes.renamed]
    if changes.added:
        lines.append(f"- added ({len(changes.added)}): " + ", ".join(changes.label(urn) for urn in changes.added))
    return lines if lines[-1] == "" else lines + [""]


def path_for(stack: str, root: Path = ROOT) -> Path:
    return root / "state" / f"{stack}.json"


def load(path: Path) -> dict[str, dict] | None:
    return json.loads(path.read_text()) if path.exists() else None


def dumps(snapshot: dict[str, dict]) -> str:
    """JSON with one line per URN, so a diff shows one line per resource."""
    lines = [f"{json.dumps(urn)}: {json.dumps(entry, sort_keys=True)}" for urn, entry in sorted(snapshot.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write(result: Run, path: Path) -> str:
    """Write the snapshot of ``result`` to ``path``; return what changed against the one it replaces."""
    old = load(path)
    changes = None if old is None else compare(old, result)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(take(result)))
    if changes is None:
        return "new"
    if changes.exact:
        return "unchanged"
    return (
        f"{len(changes.added)} added, {len(changes.removed)} removed, {len(changes.renamed)} renamed, "
        f"{len(changes.replaced)} re-created, {len(changes.replacements)} replacing field changes"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.snapshot", description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", action="append", help="stack name (repeatable): snapshots Pulumi.<stack>.yaml")
    which.add_argument("--all", action="store_true", help="every Pulumi.<stack>.yaml")
    parser.add_argument(
        "--stacks", type=Path, default=ROOT, help="folder of the stack files and their state/ (default: the project)"
    )
    args = parser.parse_args(argv)
    folder = args.stacks.resolve()
    stacks = args.stack or sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in folder.glob("Pulumi.*.yaml"))
    failed = []
    for stack in stacks:  # every stack that runs is updated, whatever the others do
        try:
            result = run(stack, stacks=folder)
        except FileNotFoundError as error:
            print(error, file=sys.stderr)
            failed.append(stack)
            continue
        if isinstance(result.error, ConfigError):
            print(result.error, file=sys.stderr)
            failed.append(stack)
            continue
        if result.error is not None:
            raise result.error
        path = path_for(stack, folder)
        summary = write(result, path)
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {len(result.resources)} resources ({summary})"
        )
    if failed:
        print(f"not updated (fix the stack file first): {', '.join(failed)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
