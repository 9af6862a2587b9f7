"""Offline renderer: run the real program for a stack under mocks and write what it declares.

    python -m tools.render --stack dev --out build/dev

writes ``manifests/<namespace or _cluster>/<kind>-<name>.yaml`` per Kubernetes object,
``helm/<release>.values.yaml`` per Helm release (chart, repo, version and namespace in a comment header),
``plan.md`` (what ``pulumi up`` would replace or delete since ``state/<stack>.json``, component tree,
every resource with its dependencies, the dependency depth (``waves.py``), counts, the external store's keys) and
``kubernetes-version``.
Output is deterministic; secrets appear as ``[secret]``. An invalid stack exits 2 with the config error.
``--diff OTHER_DIR`` then prints what changed since the render in OTHER_DIR (``tools/diff.py``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import yaml

from config.loader import ConfigError

from . import diff
from . import snapshot as snapshots
from .harness import ROOT, Registered, Run, run, stack_config
from .waves import reason, waves

OUTPUTS = ("manifests", "helm", "plan.md", "kubernetes-version")


def _literal_blocks(dumper: yaml.representer.SafeRepresenter, text: str) -> yaml.ScalarNode:
    """Multi-line strings (embedded configs) as literal blocks, so they read and diff as text."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


class _Dumper(yaml.SafeDumper):
    """The pure-Python safe dumper: the reference for what a render writes."""


class _FastDumper(yaml.CSafeDumper):
    """libyaml's safe dumper: the same bytes as _Dumper, several times faster, for data _libyaml_same accepts."""


_Dumper.add_representer(str, _literal_blocks)
_FastDumper.add_representer(str, _literal_blocks)

_NOT_PRINTABLE_ASCII = re.compile(r"[^\n\x20-\x7e]")


def _libyaml_differs(text: str) -> bool:
    """Whether libyaml may write text otherwise than PyYAML: PyYAML double-quotes it (a character outside printable
    ASCII, a space before a line break, a multi-line string ending in a space) and libyaml folds long ones at other
    places; or it is a literal block keeping its final line breaks (``|+``), after which libyaml writes a document end
    marker ``...`` even where more follows."""
    return (
        bool(_NOT_PRINTABLE_ASCII.search(text))
        or " \n" in text
        or ("\n" in text and text.endswith(" "))
        or text == "\n"
        or text.endswith("\n\n")
    )


def _libyaml_same(data: object) -> bool:
    """Whether libyaml writes data as PyYAML does: no string it may write otherwise (_libyaml_differs), every key a
    short one-line string (PyYAML and libyaml disagree on when a key is written as a complex ``? key``)."""
    if isinstance(data, dict):
        return all(
            isinstance(key, str) and 0 < len(key) <= 100 and "\n" not in key and not _libyaml_differs(key)
            for key in data
        ) and all(_libyaml_same(value) for value in data.values())
    if isinstance(data, list):
        return all(_libyaml_same(item) for item in data)
    return not (isinstance(data, str) and _libyaml_differs(data))


def _dump(data: object) -> str:
    """A mapping as YAML: sorted keys, block style; libyaml where it writes the same bytes as PyYAML, else PyYAML."""
    dumper = _FastDumper if isinstance(data, dict) and _libyaml_same(data) else _Dumper
    return yaml.dump(data, Dumper=dumper, sort_keys=True, default_flow_style=False, width=120)


def _short_type(resource: Registered) -> str:
    return resource.kind or resource.type.rsplit(":", 1)[-1]


def _label(resource: Registered) -> str:
    """How plan.md names a resource: kind, Kubernetes name (with namespace) and Pulumi logical name."""
    where = f" {resource.namespace + '/' if resource.namespace else ''}{resource.k8s_name}" if resource.k8s_name else ""
    if resource.type == "kubernetes:helm.sh/v3:Release":
        where = f" {resource.inputs.get('namespace')}/{resource.inputs.get('name')}"
    return f"{_short_type(resource)}{where} `{resource.name}`"


def write_manifests(result: Run, out: Path) -> None:
    for obj in result.objects:
        folder = out / "manifests" / (obj.namespace or "_cluster")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{obj.kind.lower()}-{obj.k8s_name}.yaml").write_text(_dump(obj.inputs))


def write_helm_values(result: Run, out: Path) -> None:
    folder = out / "helm"
    folder.mkdir(parents=True, exist_ok=True)
    for release in result.releases:
        inputs = release.inputs
        header = (
            f"# chart: {inputs['chart']}\n# repo: {inputs.get('repositoryOpts', {}).get('repo', '')}\n"
            f"# version: {inputs['version']}\n# namespace: {inputs['namespace']}\n"
        )
        (folder / f"{inputs['name']}.values.yaml").write_text(header + _dump(inputs.get("values") or {}))


def plan(result: Run, replacements: list[str] | None = None) -> str:
    """The plan: counts, the replacements section (``snapshot.plan_section``), the component tree with each
    resource's dependencies."""
    resources = [r for r in result.resources if r.type != "pulumi:pulumi:Stack"]
    children: dict[str, list[Registered]] = {}
    for resource in resources:
        children.setdefault(resource.parent, []).append(resource)
    by_urn = {r.urn: r for r in resources}

    def depends(resource: Registered) -> str:
        names = sorted(by_urn[urn].name for urn in resource.dependencies if urn in by_urn)
        return f" — depends on: {', '.join(f'`{n}`' for n in names)}" if names else ""

    lines = [
        f"# Plan: stack {result.stack}",
        "",
        f"{len(resources)} resources: {len(result.objects)} Kubernetes objects, {len(result.releases)} Helm "
        f"releases, {sum(not r.custom for r in resources)} components.",
        "",
    ]
    lines += replacements or []
    lines += ["## Counts", "", "| type | count |", "|---|---|"]
    counts = Counter(r.type for r in resources)
    lines += [f"| `{kind}` | {count} |" for kind, count in sorted(counts.items())]
    lines += ["", "## Component tree", ""]

    def walk(parent: str, depth: int) -> None:
        for resource in sorted(children.get(parent, []), key=lambda r: (r.custom, r.type, r.name)):
            lines.append(f"{'  ' * depth}- {_label(resource)}{depends(resource)}")
            walk(resource.urn, depth + 1)

    stack = next(r for r in result.resources if r.type == "pulumi:pulumi:Stack")
    walk(stack.urn, 0)
    lines += profile_section(result.outputs.get("platformProfile"))
    lines += depth_section(result)
    lines += protection_table(resources)
    lines += gpu_capacity_table(result.outputs.get("gpuCapacity"))
    lines += secret_store_table(result.outputs.get("secretStoreKeys"))
    lines += ["", "## Stack outputs", "", "```yaml", _dump(result.outputs).rstrip(), "```", ""]
    return "\n".join(lines)


def profile_section(profile: dict | None) -> list[str]:
    """plan.md's platform profile (``platformProfile``): what it changed, and the checklist of what must be done on
    the cluster first."""
    if not profile:
        return []
    lines = ["", "## Platform profile", "", f"`cluster.platform: {profile['platform']}`. What the profile changed:", ""]
    lines += [f"- {change}" for change in profile["changes"]] or ["- nothing"]
    lines += ["", "Before `pulumi up`, on the cluster:", ""]
    lines += [f"- [ ] {step}" for step in profile["prerequisites"]] or ["- nothing"]
    return lines


def depth_section(result: Run) -> list[str]:
    """plan.md's dependency depth (``waves.waves``): how many waves ``pulumi up`` runs one after another, and one
    longest chain with what each resource waits for."""
    depth, chain = waves(result)
    lines = [
        "",
        "## Dependency depth",
        "",
        f"`pulumi up` runs {depth} waves one after another: a resource starts when everything it depends on has "
        "finished (a dependency on a component waits for the component's resources). One longest chain:",
        "",
    ]
    for number, (resource, named) in enumerate(chain, 1):
        why = "no dependency" if named is None else f"waits for {reason(resource, chain[number - 2][0], named)}"
        lines.append(f"{number}. {_label(resource)} — {why}")
    return lines


def protection_table(resources: list[Registered]) -> list[str]:
    """plan.md's list of what ``dataProtection`` protects: resources ``pulumi up`` refuses to delete or replace,
    and those Kubernetes keeps if they are ever deleted from the stack."""
    kept = [r for r in resources if r.protect or r.retain_on_delete]
    lines = ["", "## Data protection", ""]
    if not kept:
        return lines + ["Nothing is protected (`dataProtection.mode: relaxed`, or everything decommissioned)."]
    lines += [
        f"{len(kept)} resources hold data or installed CRDs: `pulumi up` refuses to delete or replace the "
        "protected ones, and Kubernetes keeps the retained ones if they leave the stack.",
        "",
        "| resource | protect | retain on delete |",
        "|---|---|---|",
    ]
    lines += [
        f"| {_label(r)} | {'yes' if r.protect else 'no'} | {'yes' if r.retain_on_delete else 'no'} |"
        for r in sorted(kept, key=lambda r: (r.type, r.name))
    ]
    return lines


def gpu_capacity_table(report: dict | None) -> list[str]:
    """plan.md's GPU capacity section from the ``gpuCapacity`` stack output."""
    if not report:
        return []
    lines = [
        "",
        "## GPU capacity",
        "",
        "| pool | model | nodes | GPUs | sharing | schedulable units |",
        "|---|---|---|---|---|---|",
    ]
    for pool in report["pools"]:
        units = ", ".join(f"{count} `{resource}`" for resource, count in sorted(pool["units"].items()))
        lines.append(
            f"| {pool['name']} | {pool['model']} | {pool['nodes']} | {pool['gpus']} | {pool['sharing']} | {units} |"
        )
    tenants = sorted(report["quotas"])
    lines += [
        "",
        f"Oversubscription factor: {report['oversubscription']:g}.",
        "",
        "| resource | schedulable | " + " | ".join(f"quota {t}" for t in tenants) + " | quota total | headroom |",
        "|---|---|" + "---|" * len(tenants) + "---|---|",
    ]
    for resource, row in sorted(report["resources"].items()):
        per_tenant = " | ".join(str(report["quotas"][t].get(resource, 0)) for t in tenants)
        lines.append(f"| `{resource}` | {row['schedulable']} | {per_tenant} | {row['quota']} | {row['headroom']} |")
    return lines


def secret_store_table(keys: dict | None) -> list[str]:
    """plan.md's table of what the external secret store must hold (``secretStoreKeys``; empty with source pulumi)."""
    if not keys:
        return []
    lines = [
        "",
        "## External secret store",
        "",
        "`secrets.source: external-secrets`: the ClusterSecretStore must hold these keys, each with these "
        "properties, before the ExternalSecrets can fill their Secrets.",
        "",
        "| remote key | properties |",
        "|---|---|",
    ]
    lines += [f"| `{key}` | {', '.join(f'`{p}`' for p in properties)} |" for key, properties in sorted(keys.items())]
    return lines


def render(stack: str, out: Path, root: Path = ROOT, snapshot: Path | None = None, stacks: Path | None = None) -> Run:
    """Run the program for ``stack`` (its file in ``stacks``, default the project folder) and write the render to
    ``out`` (its earlier render replaced); plan.md audits replacements against ``snapshot`` (default
    ``state/<stack>.json`` beside the stack file)."""
    stacks = stacks or root
    result = run(stack, root=root, stacks=stacks)
    if result.error is not None:
        raise result.error
    snapshot = snapshot or snapshots.path_for(stack, stacks)
    old = snapshots.load(snapshot)
    source = snapshot.relative_to(root) if snapshot.is_relative_to(root) else snapshot
    replacements = snapshots.plan_section(None if old is None else snapshots.compare(old, result), str(source))
    for name in OUTPUTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    write_manifests(result, out)
    write_helm_values(result, out)
    (out / "plan.md").write_text(plan(result, replacements))
    version = stack_config(stack, stacks)["ai-platform:cluster"]["kubernetesVersion"]
    (out / "kubernetes-version").write_text(f"{version}\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: renders Pulumi.<stack>.yaml")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--stacks", type=Path, help="folder of the stack file and its state/ (default: the project; e.g. examples)"
    )
    parser.add_argument(
        "--snapshot", type=Path, help="URN snapshot to audit replacements against (default: state/<stack>.json)"
    )
    parser.add_argument(
        "--diff",
        type=Path,
        metavar="OTHER_DIR",
        help="after rendering, print what changed from the "
        "render in OTHER_DIR to this one (tools/diff.py; e.g. the base commit's render)",
    )
    parser.add_argument("--format", choices=("markdown", "text"), default="markdown", help="of --diff's summary")
    args = parser.parse_args(argv)
    if args.diff and not args.diff.is_dir():
        print(f"no render at {args.diff}", file=sys.stderr)
        return 2
    try:
        result = render(args.stack, args.out, snapshot=args.snapshot, stacks=args.stacks and args.stacks.resolve())
    except (ConfigError, FileNotFoundError) as error:
        print(error, file=sys.stderr)
        return 2
    print(
        f"rendered stack {args.stack} to {args.out}: {len(result.objects)} objects, "
        f"{len(result.releases)} Helm releases",
        file=sys.stderr if args.diff else sys.stdout,
    )
    if args.diff:
        print(diff.summary(args.diff, args.out, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
