"""Shared fixtures: each stack file runs once per test session under mocks.

Two kinds of stack files, so that editing ``Pulumi.<stack>.yaml`` never breaks a test that is not about it:

- the **project's** (``STACKS``: every ``Pulumi.*.yaml`` in the project folder, or in the folder the environment
  variable ``AI_PLATFORM_PROJECT`` names, and in its ``examples/``: one stack per platform profile the project's
  own stacks do not use), whatever their contents. Only tests marked ``invariant`` run on them:
  what must hold for any valid stack (schema-valid, GPU invariant, quota and queue, isolation and reachability,
  secrets never in clear, every reference resolves, snapshot current, contracts);
- the **fixtures** (``FIXTURE_STACKS``: ``tests/stacks/Pulumi.<stack>.yaml``, copies of the project's stacks as
  they were when the tests were written, named dev and prod like them). Every other test runs on them: behaviour
  asserted on specific tenants, endpoints, counts and messages. A stack name given as a plain string (``"dev"``)
  is a fixture.

A fixture stack's snapshot (``state/<stack>.json``, which the strict removal check compares with) is taken from the
program at the start of the session into a scratch copy of ``tests/stacks`` (``FIXTURE_FOLDER``): the fixtures
behave like a real stack whose snapshot is current, and nothing under ``tests/`` goes stale when the program
changes. The project's own snapshots are checked by the invariant ``tests/test_snapshots.py``.
"""

import atexit
import copy
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from config import loader
from tools import harness, snapshot
from tools.harness import ROOT, Run, stack_folder


def stack_names(folder: Path) -> list[str]:
    """The stacks of the ``Pulumi.<stack>.yaml`` files in ``folder``."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in folder.glob("Pulumi.*.yaml"))


class Stack(str):
    """A stack name that knows the folder of its stack file (a plain string is a fixture stack)."""

    folder: Path

    def __new__(cls, name: str, folder: Path) -> "Stack":
        stack = super().__new__(cls, name)
        stack.folder = folder
        return stack


PROJECT = Path(os.environ.get("AI_PLATFORM_PROJECT") or ROOT).resolve()
"""The folder whose stack files the invariants check."""
FIXTURES = Path(__file__).resolve().parent / "stacks"
FIXTURE_FOLDER = Path(tempfile.mkdtemp(prefix="ai-platform-fixture-stacks-"))
"""``tests/stacks`` with the snapshots of its stacks, taken when first run."""
atexit.register(shutil.rmtree, FIXTURE_FOLDER, ignore_errors=True)
for _file in FIXTURES.glob("Pulumi.*.yaml"):
    shutil.copy(_file, FIXTURE_FOLDER / _file.name)

STACKS = [Stack(name, folder) for folder in (PROJECT, PROJECT / "examples") for name in stack_names(folder)]
FIXTURE_STACKS = [Stack(name, FIXTURE_FOLDER) for name in stack_names(FIXTURE_FOLDER)]
_runs: dict[tuple[Path, str], Run] = {}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "invariant: holds for any valid stack; runs on every stack file of the project (STACKS)"
    )


def pytest_generate_tests(metafunc):
    """``stack``: the project's stacks for an ``invariant`` test, else the fixture stacks (unless the test
    parametrises it itself)."""
    if "stack" in metafunc.fixturenames and not any(
        "stack" in marker.args[0] for marker in metafunc.definition.iter_markers("parametrize")
    ):
        invariant = metafunc.definition.get_closest_marker("invariant") is not None
        metafunc.parametrize("stack", STACKS if invariant else FIXTURE_STACKS)


def folder_of(stack: str) -> Path:
    """The folder of a stack's file (and of its ``state/``): the project's or the fixtures'."""
    folder = getattr(stack, "folder", FIXTURE_FOLDER)
    if folder == FIXTURE_FOLDER and not snapshot.path_for(stack, folder).exists():
        run_stack(stack)  # takes the snapshot
    return folder


def run_stack(stack: str) -> Run:
    """The (cached) run of a stack file (a fixture unless ``stack`` is one of ``STACKS``); fails the test if the
    program failed."""
    folder = getattr(stack, "folder", FIXTURE_FOLDER)
    key = (folder, str(stack))
    if key not in _runs:
        _runs[key] = harness.run(stack, stacks=folder)
        if folder == FIXTURE_FOLDER and _runs[key].error is None:
            snapshot.write(_runs[key], snapshot.path_for(stack, folder))
    result = _runs[key]
    assert result.error is None, f"stack {stack} failed: {result.error}"
    return result


def run(stack: str, config: dict | None = None, **options) -> Run:
    """``tools.harness.run`` on the fixture stack ``stack`` (or on a project stack of ``STACKS``)."""
    options.setdefault("stacks", folder_of(stack))
    return harness.run(stack, config, **options)


@pytest.fixture
def stack_run(stack) -> Run:
    return run_stack(stack)


def stack_config(stack: str) -> dict:
    """The ``config:`` mapping of a stack file (a fixture unless ``stack`` is one of ``STACKS``)."""
    return harness.stack_config(stack, getattr(stack, "folder", FIXTURE_FOLDER))


def load(stack: str, raw: dict | None = None, stack_file: Path | None = None):
    """``config.load`` for a fixture stack (or one of ``STACKS``): line numbers from its stack file, the strict
    removal check against its snapshot."""
    folder = folder_of(stack)
    with stack_folder(folder):
        return loader.load(stack, raw, stack_file=stack_file or folder / f"Pulumi.{stack}.yaml")


def stack_cfg(stack: str):
    """The typed config of a stack file."""
    raw = {key.split(":", 1)[1]: value for key, value in stack_config(stack).items() if key.startswith("ai-platform:")}
    return load(stack, raw)


@pytest.fixture
def cfg(stack):
    return stack_cfg(stack)


def config_copy(stack: str = "dev") -> dict:
    """A deep copy of a stack file's config mapping, for tests that change it."""
    return copy.deepcopy(stack_config(stack))


# The optional batch services, off: for tests that switch off what they need (Volcano, MLflow, serving).
BATCH_OFF = {
    "ai-platform:training": {"enabled": False},
    "ai-platform:workflows": {"enabled": False},
    "ai-platform:ray": {"enabled": False},
}


def accept_loss(config: dict) -> dict:
    """``config`` with every service and tenant of its stack file listed in ``dataProtection.decommission``: for
    tests that switch things off in a strict stack (the strict removal check would refuse them, as it should for
    a real change; tests/test_data_protection.py covers the refusal)."""
    from config.services import protected_services

    tenants = [f"tenant:{t['name']}" for t in config.get("ai-platform:tenants", [])]
    protection = config.setdefault("ai-platform:dataProtection", {})
    protection["decommission"] = sorted({*protection.get("decommission", []), *protected_services(), *tenants})
    return config


def run_with(stack: str = "dev", **sections) -> Run:
    """Run a stack file with whole ``ai-platform:<section>`` values replaced (losses accepted: ``accept_loss``);
    fails the test if the run fails."""
    config = accept_loss(config_copy(stack))
    for key, value in sections.items():
        config[f"ai-platform:{key}"] = value
    result = run(stack, config)
    assert result.error is None, result.error
    return result


def assert_refused(stack: str, edit, path: str, message: str) -> None:
    """``edit`` applied to a copy of a stack file's config is refused before anything is registered, with an error
    naming the stack, ``ai-platform:<path>`` and ``message``."""
    from config.loader import ConfigError

    config = config_copy(stack)
    edit(config)
    result = run(stack, config)
    assert isinstance(result.error, ConfigError), result.error
    assert f"stack {stack}: ai-platform:{path}" in str(result.error) and message in str(result.error), str(result.error)
    assert not result.registered_beyond_stack
