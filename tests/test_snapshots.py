"""URN stability and the replacement audit: the live program against ``state/<stack>.json``.

A URN that vanishes without an alias on its successor is a resource ``pulumi up`` deletes (and re-creates): that
fails ``test_no_urn_change_without_an_alias``. Any other difference (added resources, a renamed one that kept its
alias, a changed replace-deciding field) only makes the snapshot stale: ``test_snapshot_is_exact`` says what
differs and how to update it.
"""

import json

import pulumi
import pytest

from components.serving import endpoint
from tests.conftest import config_copy, folder_of, run, run_stack, run_with
from tools import render, snapshot
from tools.harness import Registered, Run

CLAIM = "model-research-qwen-chat-model-cache"  # dev's vLLM model cache (a PVC: its data goes with it)


def checked_in(stack: str) -> dict:
    old = snapshot.load(snapshot.path_for(stack, folder_of(stack)))
    assert old is not None, f"no state/{stack}.json: run `python -m tools.snapshot --stack {stack}`"
    return old


@pytest.mark.invariant
def test_no_urn_change_without_an_alias(stack, stack_run):
    changes = snapshot.compare(checked_in(stack), stack_run)
    if changes.deletes:
        pytest.fail(snapshot.unsafe_report(stack, changes), pytrace=False)


@pytest.mark.invariant
def test_snapshot_is_exact(stack, stack_run):
    changes = snapshot.compare(checked_in(stack), stack_run)
    if not changes.exact:
        pytest.fail(snapshot.stale_report(stack, changes, f"state/{stack}.json"), pytrace=False)
    text = snapshot.path_for(stack, folder_of(stack)).read_text()
    assert text == snapshot.dumps(json.loads(text)), "write it with `python -m tools.snapshot`, not by hand"


def urn_of(result: Run, name: str) -> str:
    return next(r.urn for r in result.resources if r.name == name)


def run_with_renamed_claim(monkeypatch, alias: bool) -> Run:
    """dev with the model cache's logical name changed (as a refactoring would), optionally aliased to the old one."""
    original = endpoint.kube

    def renamed(resource_name, *args, **kwargs):
        if resource_name == CLAIM:
            resource_name = f"{CLAIM}-v2"
            if alias:
                kwargs["opts"] = pulumi.ResourceOptions.merge(
                    kwargs.get("opts"), pulumi.ResourceOptions(aliases=[pulumi.Alias(name=CLAIM)])
                )
        return original(resource_name, *args, **kwargs)

    monkeypatch.setattr(endpoint, "kube", renamed)
    result = run("dev")
    assert result.error is None, result.error
    return result


def test_a_rename_without_alias_fails_listing_exactly_that_resource(monkeypatch):
    before = run_stack("dev")
    old_urn = urn_of(before, CLAIM)
    after = run_with_renamed_claim(monkeypatch, alias=False)
    changes = snapshot.compare(snapshot.take(before), after)
    new_urn = urn_of(after, f"{CLAIM}-v2")
    assert changes.deletes and changes.replaced == [(old_urn, new_urn)]
    assert not changes.removed and not changes.added and not changes.renamed
    report = snapshot.unsafe_report("dev", changes)
    assert "would be DELETED and re-CREATED by pulumi up (URN changed without an alias)" in report
    assert [line for line in report.splitlines() if " -> " in line] == [f"  {old_urn} -> {new_urn}"]
    section = "\n".join(snapshot.plan_section(changes, "state/dev.json"))
    assert (
        "- DELETED and re-created (URN changed without an alias): PersistentVolumeClaim "
        f"research/qwen-chat-model-cache: `{old_urn}` -> `{new_urn}`"
    ) in section


def test_an_alias_makes_the_rename_safe(monkeypatch):
    before = run_stack("dev")
    after = run_with_renamed_claim(monkeypatch, alias=True)
    changes = snapshot.compare(snapshot.take(before), after)
    assert not changes.deletes, snapshot.unsafe_report("dev", changes)
    assert changes.renamed == [(urn_of(before, CLAIM), urn_of(after, f"{CLAIM}-v2"))]
    assert not changes.added and not changes.fields
    assert not changes.exact  # the snapshot still has to be updated


def test_children_inherit_a_component_alias():
    """A component renamed and re-typed with an alias; its child, named after it, keeps its URN through it."""
    stack = "urn:pulumi:dev::ai-platform::pulumi:pulumi:Stack::ai-platform-dev"
    old_parent = "urn:pulumi:dev::ai-platform::ai-platform:old:Store::store"
    old_child = "urn:pulumi:dev::ai-platform::ai-platform:old:Store$kubernetes:core/v1:Namespace::store-namespace"
    parent = "urn:pulumi:dev::ai-platform::ai-platform:objects:ObjectStore::objects"
    child = f"{parent.rsplit('::', 1)[0]}$kubernetes:core/v1:Namespace::objects-namespace"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "object-store"}}
    result = Run(
        "dev",
        [
            Registered(stack, "pulumi:pulumi:Stack", "ai-platform-dev", {}, "", [], "", False),
            Registered(
                parent,
                "ai-platform:objects:ObjectStore",
                "objects",
                {},
                stack,
                [],
                "",
                False,
                aliases=[{"spec": {"name": "store", "type": "ai-platform:old:Store", "parentUrn": ""}}],
            ),
            Registered(child, "kubernetes:core/v1:Namespace", "objects-namespace", namespace, parent, [], "", True),
        ],
    )
    old = {stack: {}, old_parent: {}, old_child: {"metadata.name": "object-store"}}
    changes = snapshot.compare(old, result)
    assert sorted(changes.renamed) == sorted([(old_parent, parent), (old_child, child)])
    assert not changes.deletes and not changes.fields


def test_config_changes_that_replace_are_listed_with_their_field():
    dev = config_copy("dev")
    serving = {**dev["ai-platform:serving"], "storageClass": "fast-rwx"}
    object_store = {**dev["ai-platform:objectStore"], "storageClass": "fast-ssd"}
    changed = run_with("dev", serving=serving, objectStore=object_store, namespaces={"volcano": "batch-system"})
    changes = snapshot.compare(snapshot.take(run_stack("dev")), changed)
    assert not changes.deletes
    lines = snapshot.plan_section(changes, "state/dev.json")
    assert (
        "- this change REPLACES PersistentVolumeClaim research/qwen-chat-model-cache "
        "(spec.storageClassName: standard-rwx -> fast-rwx)"
    ) in lines
    assert (
        "- this change REPLACES Helm release volcano-system/volcano (namespace: volcano-system -> batch-system)"
        in lines
    )
    assert "- this change REPLACES Namespace volcano-system (metadata.name: volcano-system -> batch-system)" in lines
    seaweed = [line for line in lines if "needs the volumes of Helm release object-store/seaweedfs RE-CREATED" in line]
    assert seaweed and "storageClass: (unset) -> fast-ssd — a volume keeps the class" in seaweed[0]


def test_growing_a_claim_is_in_place_shrinking_replaces_and_service_type_only_with_external_name():
    result = run_stack("dev")
    claim, service = urn_of(result, CLAIM), urn_of(result, "mlflow-service")
    old = snapshot.take(result)
    old[claim] = {**old[claim], "spec.resources.requests.storage": "10Gi"}  # now 20Gi: grows
    old[service] = {**old[service], "spec.type": "NodePort"}
    changes = snapshot.compare(old, result)
    assert [(c.field, c.replaces) for c in changes.fields] == [
        ("spec.type", False),
        ("spec.resources.requests.storage", False),
    ]
    old[claim]["spec.resources.requests.storage"] = "40Gi"  # now 20Gi: shrinks
    old[service]["spec.type"] = "ExternalName"
    replaced = {c.field: c for c in snapshot.compare(old, result).replacements}
    assert set(replaced) == {"spec.type", "spec.resources.requests.storage"}
    assert "cannot shrink" in replaced["spec.resources.requests.storage"].note


def test_render_audits_against_a_snapshot(tmp_path):
    result = run_stack("dev")
    claim = urn_of(result, CLAIM)
    old = snapshot.take(result)
    old[claim] = {**old[claim], "spec.storageClassName": "old-class"}
    gone = claim.replace(CLAIM, "model-research-old-model-cache")
    old[gone] = {"metadata.name": "old-model-cache", "metadata.namespace": "research"}
    out, old_path = tmp_path / "out", tmp_path / "old.json"
    old_path.write_text(snapshot.dumps(old))
    assert render.main(["--stack", "dev", "--out", str(out), "--snapshot", str(old_path)]) == 0
    plan = (out / "plan.md").read_text()
    assert "## Replacements (since the last snapshot)" in plan
    assert (
        "- this change REPLACES PersistentVolumeClaim research/qwen-chat-model-cache "
        "(spec.storageClassName: old-class -> standard-rwx)"
    ) in plan
    assert f"- DELETED (no longer declared): PersistentVolumeClaim research/old-model-cache `{gone}`" in plan
    assert "No snapshot at `nowhere.json`" in "\n".join(snapshot.plan_section(None, "nowhere.json"))


def test_write_reports_what_changed(tmp_path):
    result = run_stack("dev")
    path = tmp_path / "dev.json"
    assert snapshot.write(result, path) == "new"
    assert snapshot.write(result, path) == "unchanged"
    text = path.read_text()
    assert json.loads(text) == snapshot.take(result) and len(text.splitlines()) == len(result.resources) + 2


def test_make_snapshot_updates_every_stack_it_can_and_names_the_others(monkeypatch, capsys, tmp_path):
    """One invalid stack file must not keep the others' snapshots stale: they are written, it is named, exit 2."""
    from config import ConfigError

    good = run_stack("dev")
    monkeypatch.setattr(
        snapshot,
        "run",
        lambda stack, stacks=None: good if stack == "dev" else Run(stack, error=ConfigError(f"stack {stack}: bad")),
    )
    written = []
    monkeypatch.setattr(snapshot, "path_for", lambda stack, root=None: tmp_path / f"{stack}.json")
    monkeypatch.setattr(snapshot, "write", lambda result, path: written.append(path.name) or "written")
    monkeypatch.setattr(snapshot, "ROOT", tmp_path)
    assert snapshot.main(["--stack", "broken", "--stack", "dev"]) == 2
    assert written == ["dev.json"]
    assert "not updated (fix the stack file first): broken" in capsys.readouterr().err
