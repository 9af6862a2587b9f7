"""What changed between two renders of ``tools.render``: a short summary for a reviewer or a pull-request comment.

    python -m tools.diff OLD_DIR NEW_DIR [--format markdown|text]
    python -m tools.render --stack dev --out build/dev --diff OLD_DIR     # render, then the same summary

Lists the Kubernetes objects added, removed and changed (``Kind namespace/name``, each change as a dotted path:
``old → new`` for short values, ``changed`` for large blocks, ``(+a −r lines)`` for multi-line strings), the Helm
releases added, removed and changed (chart header and values, dotted paths), the Kubernetes version, and the
``plan.md`` sections that changed with their changed lines (all of them for replacements and data protection).
Values are printed as rendered, so secrets stay ``[secret]``. Output is sorted, hence deterministic, and each
section is cut after ``SECTION_LINES`` lines; identical renders give the heading and ``No changes.``
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

SHORT = 60  # longest value printed in full
FIELDS_PER_ITEM = 25  # changed paths listed per object or release
PLAN_LINES = 12  # changed lines listed per plan.md section...
PLAN_LINES_IMPORTANT = 50  # ...and for these sections
IMPORTANT_SECTIONS = ("Replacements", "Data protection")
SECTION_LINES = 80  # lines per section (objects, releases, plan.md), so that two stacks fit a pull-request comment
HEADER_KEYS = ("chart", "repo", "version", "namespace")  # a Helm values file's comment header
ABSENT = object()


def _value(value: Any) -> str | None:
    """``value`` as it reads in the summary, or None when it is too large to print."""
    if isinstance(value, str):
        text = value if value and value.strip() == value else json.dumps(value)
    else:
        text = json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return text if len(text) <= SHORT and "\n" not in text else None


def _named(items: list) -> dict | None:
    """A list of mappings with distinct ``name``s (containers, env, ports, volumes) keyed by name, else None."""
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    names = {i["name"]: i for i in items}
    return names if len(names) == len(items) else None


def _lines_changed(old: str, new: str) -> tuple[int, int]:
    added = removed = 0
    for tag, a1, a2, b1, b2 in difflib.SequenceMatcher(None, old.splitlines(), new.splitlines()).get_opcodes():
        removed += (a2 - a1) if tag in ("replace", "delete") else 0
        added += (b2 - b1) if tag in ("replace", "insert") else 0
    return added, removed


def field_changes(old: Any, new: Any, path: str = "") -> list[tuple[str, str]]:
    """``(dotted path, what changed)`` for every leaf that differs between two parsed YAML documents."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            change
            for key in sorted(set(old) | set(new), key=str)
            for change in field_changes(
                old.get(key, ABSENT), new.get(key, ABSENT), f"{path}.{key}" if path else str(key)
            )
        ]
    if isinstance(old, list) and isinstance(new, list):
        old_named, new_named = _named(old), _named(new)
        if old_named is not None and new_named is not None:
            return [
                change
                for name in sorted(set(old_named) | set(new_named))
                for change in field_changes(old_named.get(name, ABSENT), new_named.get(name, ABSENT), f"{path}[{name}]")
            ]
        if _value(old) is None or _value(new) is None:  # too long to print whole
            if len(old) != len(new):
                return [(path, f"changed ({len(old)} → {len(new)} items)")]
            return [
                change
                for index, (a, b) in enumerate(zip(old, new, strict=True))
                for change in field_changes(a, b, f"{path}[{index}]")
            ]
    if old is ABSENT:
        return [(path, f"added: {_value(new)}" if _value(new) is not None else "added")]
    if new is ABSENT:
        return [(path, f"removed (was {_value(old)})" if _value(old) is not None else "removed")]
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        return [(path, "changed (+{} −{} lines)".format(*_lines_changed(old, new)))]
    if _value(old) is not None and _value(new) is not None:
        return [(path, f"{_value(old)} → {_value(new)}")]
    return [(path, "changed")]


def _load_object(path: Path) -> tuple[str, Any]:
    """A manifest's label (``Kind namespace/name``) and content."""
    data = yaml.safe_load(path.read_text())
    metadata = (data.get("metadata") or {}) if isinstance(data, dict) else {}
    if not isinstance(data, dict) or "kind" not in data or "name" not in metadata:
        return str(path), data
    where = f"{metadata['namespace']}/{metadata['name']}" if metadata.get("namespace") else metadata["name"]
    return f"{data['kind']} {where}", data


def _load_release(path: Path) -> tuple[str, Any]:
    """A release's label and its values, with the header's fields as ``# chart``, ``# version``, ..."""
    text = path.read_text()
    header = {}
    for line in text.splitlines():
        key, _, value = line[2:].partition(": ") if line.startswith("# ") else ("", "", "")
        if key not in HEADER_KEYS:
            break
        header[key] = value
    release = path.name.removesuffix(".values.yaml")
    label = f"{header['namespace']}/{release}" if header.get("namespace") else release
    return label, {**{f"# {key}": value for key, value in header.items()}, **(yaml.safe_load(text) or {})}


def _documents(root: Path, folder: str, pattern: str, load) -> dict[str, tuple[str, Any]]:
    base = root / folder
    return {str(p.relative_to(base)): load(p) for p in sorted(base.rglob(pattern))} if base.is_dir() else {}


def _plan_sections(root: Path) -> tuple[str, dict[str, list[str]]]:
    """plan.md's title and its sections (``## `` headings; the lines before the first are the ``summary``)."""
    path = root / "plan.md"
    lines = path.read_text().splitlines() if path.exists() else []
    title = lines[0].removeprefix("# Plan: ").removeprefix("# ") if lines and lines[0].startswith("# ") else ""
    sections: dict[str, list[str]] = {"summary": []}
    current = "summary"
    for line in lines[1:] if title else lines:
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
        elif line.strip():
            sections[current].append(line)
    return title, {name: body for name, body in sections.items() if body or name != "summary"}


class _Writer:
    """Markdown or plain text, in sections of entries (a bullet with its sub-bullets or code block), each section
    cut after ``SECTION_LINES`` lines at an entry's end."""

    def __init__(self, fmt: str):
        self.markdown = fmt == "markdown"
        self.sections: list[tuple[str, list[list[str]]]] = []

    def code(self, text: str) -> str:
        return f"`{text}`" if self.markdown else text

    def section(self, title: str) -> None:
        self.sections.append((title, []))

    def entry(self, text: str, details: Sequence[str] = (), block: Sequence[str] = ()) -> None:
        """A bullet, its sub-bullets and a block of diff lines."""
        lines = [f"- {text}", *(f"  - {line}" for line in details)]
        if block:
            lines += (
                ["", "  ```diff", *(f"  {line}" for line in block), "  ```"]
                if self.markdown
                else [f"    {line}" for line in block]
            )
        self.sections[-1][1].append(lines)

    def lines(self) -> list[str]:
        out = []
        for title, entries in self.sections:
            out += ["", f"#### {title}" if self.markdown else f"{title}:"]
            shown = 0
            for index, lines in enumerate(entries):
                if shown and shown + len(lines) > SECTION_LINES:
                    out.append(f"- … and {len(entries) - index} more: compare the renders themselves")
                    break
                out += lines
                shown += len(lines)
        return out


def _compare(out: _Writer, title: str, old: dict[str, tuple[str, Any]], new: dict[str, tuple[str, Any]]) -> str:
    """Write the added, removed and changed documents of one kind (added and removed ones grouped by their
    label's first word, the kind); return their counts."""
    added, removed = sorted(new[k][0] for k in set(new) - set(old)), sorted(old[k][0] for k in set(old) - set(new))
    changed = sorted(
        (new[k][0], field_changes(old[k][1], new[k][1])) for k in set(old) & set(new) if old[k][1] != new[k][1]
    )
    if added or removed or changed:
        out.section(title)
    for verb, labels in (("added", added), ("removed", removed)):
        groups: dict[str, list[str]] = {}
        for label in labels:
            kind, _, name = label.rpartition(" ")
            groups.setdefault(kind, []).append(name)
        for kind, names in groups.items():
            out.entry(
                f"{verb} {len(names)}{' ' + out.code(kind) if kind else ''}: "
                f"{', '.join(out.code(name) for name in names)}"
            )
    for label, changes in changed:
        details = [f"{out.code(path)}: {change}" for path, change in changes[:FIELDS_PER_ITEM]]
        more = [f"… and {len(changes) - FIELDS_PER_ITEM} more"] if len(changes) > FIELDS_PER_ITEM else []
        out.entry(f"changed {out.code(label)}", details + more)
    return f"{len(added)} added, {len(removed)} removed, {len(changed)} changed"


def _compare_plan(out: _Writer, old: dict[str, list[str]], new: dict[str, list[str]]) -> int:
    names = [n for n in new if n not in old or old[n] != new[n]] + [n for n in old if n not in new]
    if names:
        out.section("plan.md")
    for name in names:
        before, after = old.get(name, []), new.get(name, [])
        kept = set(before) & set(after)
        changed = [f"- {line}" for line in before if line not in kept] + [
            f"+ {line}" for line in after if line not in kept
        ]
        cap = PLAN_LINES_IMPORTANT if name.startswith(IMPORTANT_SECTIONS) else PLAN_LINES
        plus, minus = sum(line[0] == "+" for line in changed), sum(line[0] == "-" for line in changed)
        verb = "added" if name not in old else "removed" if name not in new else "changed"
        out.entry(
            f"{verb} section {out.code(name)} (+{plus} −{minus} lines)", block=changed if len(changed) <= cap else []
        )
    return len(names)


def summary(old: Path, new: Path, fmt: str = "markdown") -> str:
    """The summary of what changed from the render in ``old`` to the one in ``new``."""
    out = _Writer(fmt)
    old_title, old_plan = _plan_sections(old)
    new_title, new_plan = _plan_sections(new)
    title = new_title if old_title in ("", new_title) else f"{old_title} → {new_title}"
    objects = _compare(
        out,
        "Kubernetes objects",
        _documents(old, "manifests", "*.yaml", _load_object),
        _documents(new, "manifests", "*.yaml", _load_object),
    )
    releases = _compare(
        out,
        "Helm releases",
        _documents(old, "helm", "*.values.yaml", _load_release),
        _documents(new, "helm", "*.values.yaml", _load_release),
    )
    versions = [
        (root / "kubernetes-version").read_text().strip() if (root / "kubernetes-version").exists() else "none"
        for root in (old, new)
    ]
    if versions[0] != versions[1]:
        out.section("Kubernetes version")
        out.entry(f"{versions[0]} → {versions[1]}")
    sections = _compare_plan(out, old_plan, new_plan)
    head = f"Render diff: {title or new}"
    head = f"### {head}" if out.markdown else head
    if not out.sections:
        return f"{head}\n\nNo changes."
    counts = f"Objects: {objects}. Helm releases: {releases}. plan.md: {sections} sections changed."
    return "\n".join([head, "", counts, *out.lines()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.diff", description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path, help="the earlier render (e.g. of the base commit)")
    parser.add_argument("new", type=Path, help="the later render")
    parser.add_argument("--format", choices=("markdown", "text"), default="markdown")
    args = parser.parse_args(argv)
    for folder in (args.old, args.new):
        if not folder.is_dir():
            print(f"no render at {folder}", file=sys.stderr)
            return 2
    print(summary(args.old, args.new, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
