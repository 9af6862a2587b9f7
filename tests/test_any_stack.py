"""The invariant tests hold for any valid stack, not only for ours: a copy of the project's ``Pulumi.dev.yaml``
with a tenant and an endpoint added and a tenant removed (``tests/stack_edits.py``), snapshotted as ``make
snapshot`` would, passes every test marked ``invariant``, run by a separate pytest on the copy's folder
(``AI_PLATFORM_PROJECT``, which ``tests/conftest.py`` reads)."""

import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import PROJECT, Stack, run, stack_config
from tests.stack_edits import day_one
from tools import snapshot
from tools.harness import ROOT


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """(folder, added tenant, removed tenant, run): a project folder with the edited copy of dev, and dev's snapshot
    as ``make snapshot`` writes it after the edit."""
    if not (PROJECT / "Pulumi.dev.yaml").exists():
        pytest.skip("the project has no Pulumi.dev.yaml")
    folder = tmp_path_factory.mktemp("project")
    config, added, removed = day_one(stack_config(Stack("dev", PROJECT)))
    (folder / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    old = snapshot.path_for("dev", PROJECT)
    if old.exists():  # the removal check compares the edit with the stack's snapshot (strict: decommission listed)
        snapshot.path_for("dev", folder).parent.mkdir()
        snapshot.path_for("dev", folder).write_text(old.read_text())
    result = run("dev", stacks=folder)
    assert result.error is None, f"the edited copy does not run: {result.error}"
    snapshot.write(result, snapshot.path_for("dev", folder))
    return folder, added, removed, result


def test_the_edit_adds_a_tenant_and_an_endpoint_and_removes_a_tenant(edited):
    _, added, removed, result = edited
    namespaces = {r.k8s_name for r in result.of_kind("Namespace")}
    assert added in namespaces
    assert removed is None or removed not in namespaces
    assert any(r.namespace == added for r in result.of_kind("InferenceService"))


def test_the_invariant_suite_passes_on_the_edited_copy(edited):
    folder = edited[0]
    env = {**os.environ, "AI_PLATFORM_PROJECT": str(folder)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "invariant", "tests"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]
