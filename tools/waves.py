"""Dependency depth: how many waves ``pulumi up`` must run one after another, and which resources form the chain.

A wave is what the engine can do in parallel: a custom resource starts once every resource in its ``dependencies``
(explicit ``depends_on`` plus the resources behind its Output inputs) has finished. Components are not waits: a
dependency on a component is a dependency on every custom resource under it (the engine expands ``depends_on`` a
component the same way); a parent imposes no wait on its children. A custom resource with no dependencies is in
wave 1, any other one wave after its latest dependency. The depth is the highest wave.
"""

from __future__ import annotations

from .harness import Registered, Run

RELEASE = "kubernetes:helm.sh/v3:Release"


def _custom_under(urn: str, children: dict[str, list[Registered]]) -> list[Registered]:
    """Every custom resource below the component ``urn`` (through nested components)."""
    found = []
    for child in children.get(urn, []):
        found += [child] if child.custom else _custom_under(child.urn, children)
    return found


def waits(resources: list[Registered]) -> dict[str, list[tuple[Registered, Registered]]]:
    """Per custom resource URN: what it waits for, as (custom resource waited for, the dependency that named it:
    itself or the component it sits under)."""
    by_urn = {r.urn: r for r in resources}
    children: dict[str, list[Registered]] = {}
    for resource in resources:
        children.setdefault(resource.parent, []).append(resource)
    result = {}
    for resource in resources:
        if not resource.custom:
            continue
        found: dict[str, tuple[Registered, Registered]] = {}
        for urn in resource.dependencies:
            named = by_urn.get(urn)
            if named is None:
                continue
            for target in [named] if named.custom else _custom_under(urn, children):
                if target.urn != resource.urn:
                    found.setdefault(target.urn, (target, named))
        result[resource.urn] = list(found.values())
    return result


def reason(resource: Registered, waited: Registered, named: Registered) -> str:
    """Why ``resource`` waits for ``waited``, for plan.md: what ``waited`` is (its namespace, a Helm release, a
    Secret...), and the component when the dependency named a component rather than ``waited`` itself."""
    kind = waited.kind or waited.type.rsplit(":", 1)[-1]
    if kind == "Namespace":
        what = (
            "its namespace"
            if waited.k8s_name in (resource.namespace, resource.inputs.get("namespace"))
            else "the namespace"
        )
    elif waited.type == RELEASE:
        what = "the Helm release"
    elif kind in ("Secret", "ExternalSecret"):
        what = f"the {kind} (a credential it reads)"
    elif kind == "RandomPassword":
        what = "the generated value"
    else:
        what = f"the {kind}"
    through = "" if named.urn == waited.urn else f" (it depends on the component `{named.name}`)"
    return f"{what} `{waited.name}`{through}"


def waves(run: Run) -> tuple[int, list[tuple[Registered, Registered | None]]]:
    """``(depth, chain)``: the number of waves and one longest chain, first wave first, each entry the resource and
    the dependency through which it waits for the previous one (``None`` for the first)."""
    resources = [r for r in run.resources if r.type != "pulumi:pulumi:Stack"]
    by_urn = {r.urn: r for r in resources}
    edges = waits(resources)
    if not edges:
        return 0, []
    wave: dict[str, int] = {}
    via: dict[str, tuple[Registered, Registered] | None] = {}
    visiting: set[str] = set()

    def level(urn: str) -> int:
        if urn not in wave:
            if urn in visiting:
                raise ValueError(f"dependency cycle through {urn}")
            visiting.add(urn)
            best = None
            for target, named in sorted(edges[urn], key=lambda edge: edge[0].urn):
                if level(target.urn) > (0 if best is None else wave[best[0].urn]):
                    best = (target, named)
            wave[urn], via[urn] = (1, None) if best is None else (wave[best[0].urn] + 1, best)
            visiting.discard(urn)
        return wave[urn]

    last = max(sorted(edges), key=level)
    chain: list[tuple[Registered, Registered | None]] = []
    urn: str | None = last
    while urn is not None:
        step = via[urn]
        chain.append((by_urn[urn], None if step is None else step[1]))
        urn = None if step is None else step[0].urn
    chain.reverse()
    return wave[last], chain
