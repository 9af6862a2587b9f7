"""Dependency depth: ``pulumi up`` runs at most four waves one after another (namespaces and CRD releases, the
controllers that need them, custom resources; one more where the platform admits system-critical pods only beside a
quota, which waits for its namespace and the release for it), and the cuts that got it there kept what correctness needs: every
custom resource waits for the release that installs its CRD, every object for its namespace."""

import pytest

from tests.conftest import run_stack, stack_cfg
from tests.test_data_protection import ALL_CRD_KINDS, crd_kinds, group_kind
from tools.harness import Registered, Run
from tools.render import depth_section
from tools.waves import waits, waves

# namespaces → CRD releases → controllers → custom resources (see the README's "Dependency depth").
MAX_DEPTH = 4


def max_depth(stack: str) -> int:
    """``MAX_DEPTH``, and one wave more for the critical-pods quotas of platforms that need them (GKE)."""
    return MAX_DEPTH + stack_cfg(stack).cluster.profile.critical_pods_need_quota


def resource(name: str, deps: list[str] = (), parent: str = "stack", custom: bool = True) -> Registered:
    return Registered(
        urn=name,
        type="test:index:Thing" if custom else "test:index:Component",
        name=name,
        inputs={},
        parent=parent,
        dependencies=list(deps),
        provider="",
        custom=custom,
    )


def synthetic(*resources: Registered) -> Run:
    return Run(
        "test",
        resources=[
            Registered(
                urn="stack",
                type="pulumi:pulumi:Stack",
                name="stack",
                inputs={},
                parent="",
                dependencies=[],
                provider="",
                custom=False,
            ),
            *resources,
        ],
    )


def test_a_chain_of_three_is_three_waves():
    depth, chain = waves(synthetic(resource("c", ["b"]), resource("a"), resource("b", ["a"]), resource("lone")))
    assert depth == 3
    assert [(r.name, named.name if named else None) for r, named in chain] == [("a", None), ("b", "a"), ("c", "b")]


def test_a_dependency_on_a_component_waits_for_its_custom_children_and_parents_impose_nothing():
    run = synthetic(
        resource("component", custom=False),
        resource("first", parent="component"),  # wave 1: its parent is no wait
        resource("nested", parent="component", custom=False),
        resource("second", ["first"], parent="nested"),  # wave 2, under a nested component
        resource("after", ["component"]),
    )  # waits for first and second: wave 3
    depth, chain = waves(run)
    assert depth == 3
    assert [(r.name, named.name if named else None) for r, named in chain] == [
        ("first", None),
        ("second", "first"),
        ("after", "component"),
    ]
    assert {target.name for target, _ in waits(run.resources)["after"]} == {"first", "second"}


def test_no_dependency_is_one_wave_and_nothing_is_zero():
    assert waves(synthetic(resource("a"), resource("b")))[0] == 1
    assert waves(synthetic()) == (0, [])


def test_a_cycle_is_an_error():
    with pytest.raises(ValueError, match="cycle"):
        waves(synthetic(resource("a", ["b"]), resource("b", ["a"])))


def test_stack_depth(stack, stack_run):
    depth, chain = waves(stack_run)
    print(f"stack {stack_run.stack}: {depth} waves: " + " -> ".join(r.name for r, _ in chain))
    assert depth <= max_depth(stack), [r.name for r, _ in chain]
    assert len(chain) == depth


def test_prod_depth_is_at_most_four():
    assert waves(run_stack("prod"))[0] <= MAX_DEPTH


def test_plan_reports_the_depth_and_the_chain(stack_run):
    depth, chain = waves(stack_run)
    section = "\n".join(depth_section(stack_run))
    assert f"`pulumi up` runs {depth} waves" in section
    assert all(f"`{r.name}`" in section for r, _ in chain)
    assert "waits for its namespace" in section


def _ancestors(stack_run: Run) -> dict[str, set[str]]:
    """Per custom resource, every resource it waits for, directly or through others."""
    edges = {urn: [target.urn for target, _ in found] for urn, found in waits(stack_run.resources).items()}
    memo: dict[str, set[str]] = {}

    def up(urn: str) -> set[str]:
        if urn not in memo:
            memo[urn] = set()
            for target in edges[urn]:
                memo[urn] |= {target} | up(target)
        return memo[urn]

    return {urn: up(urn) for urn in edges}


@pytest.mark.invariant
def test_every_custom_resource_waits_for_the_release_of_its_crd(stack_run):
    ancestors = _ancestors(stack_run)
    missing = []
    for obj in stack_run.objects:
        if group_kind(obj) not in ALL_CRD_KINDS:
            continue
        installers = {
            r.urn for r in stack_run.releases if group_kind(obj) in crd_kinds(r.inputs["chart"].rsplit("/", 1)[-1])
        }
        if installers and not installers & ancestors[obj.urn]:
            missing.append(f"{obj.kind} {obj.namespace}/{obj.k8s_name}")
    assert missing == []


@pytest.mark.invariant
def test_every_object_and_release_waits_for_its_namespace(stack_run):
    ancestors = _ancestors(stack_run)
    namespaces = {ns.k8s_name: ns.urn for ns in stack_run.of_kind("Namespace")}
    missing = []
    for item in stack_run.objects + stack_run.releases:
        namespace = item.namespace if item in stack_run.objects else item.inputs.get("namespace")
        if namespace in namespaces and namespaces[namespace] not in ancestors[item.urn]:
            missing.append(f"{item.kind or 'Release'} {namespace}/{item.k8s_name or item.inputs.get('name')}")
    assert missing == []
