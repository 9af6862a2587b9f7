"""Shared fixtures: each stack file runs once per test session under mocks."""

import copy

import pytest

from config.loader import load
from tools.harness import Run, run, stack_config

STACKS = ["dev", "prod"]
_runs: dict[str, Run] = {}


def run_stack(stack: str) -> Run:
    """The (cached) run of a real stack file; fails the test if the program failed."""
    if stack not in _runs:
        _runs[stack] = run(stack)
    result = _runs[stack]
    assert result.error is None, f"stack {stack} failed: {result.error}"
    return result


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


@pytest.fixture
def stack_run(stack) -> Run:
    return run_stack(stack)


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
