"""The registration window (components.meta.RegistrationWindow): a bounded number of declared resources wait for
their registration at once, and bounding them changes nothing the engine receives."""

import dataclasses
import runpy

import pulumi
import pytest

from components import meta
from tools import harness
from tools.harness import ROOT

from .conftest import run, run_stack

SMALL = 25


def _counted_program(peaks: list[int]):
    """``__main__.py``, with a stack transformation (independent of the window) that counts declared resources; the
    monitor below compares that count with the registrations it has received."""
    declared = [0]

    def program():
        def count(args):
            declared[0] += 1

        pulumi.runtime.register_stack_transformation(count)
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    return program, declared


def _run(stack: str, monkeypatch, limit: int | None):
    """A run of ``stack`` with the window at ``limit`` (None: no bound), and the most declared-but-unregistered
    resources the monitor saw at any registration."""
    monkeypatch.setattr(meta, "REGISTRATION_WINDOW", limit or 10**9)
    peaks: list[int] = []
    program, declared = _counted_program(peaks)
    register = harness._RecordingMonitor.RegisterResource

    def counting(self, request):
        response = register(self, request)
        peaks.append(declared[0] - len(self.run.resources))
        return response

    monkeypatch.setattr(harness._RecordingMonitor, "RegisterResource", counting)
    result = run(stack, program=program)
    assert result.error is None, result.error
    return result, max(peaks)


def _registrations(result) -> dict[str, dict]:
    return {r.urn: dataclasses.asdict(r) for r in result.resources}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_small_window_bounds_waiting_registrations_and_changes_nothing(stack, monkeypatch):
    bounded, bounded_peak = _run(stack, monkeypatch, SMALL)
    unbounded, unbounded_peak = _run(stack, monkeypatch, None)
    # Without a bound the whole stack is declared before the first registration; with one, at most the window
    # (plus the resources whose constructors are running while it settles: one per nesting level).
    assert unbounded_peak >= len(unbounded.resources) - 2
    assert bounded_peak <= SMALL + 5, bounded_peak
    assert _registrations(bounded) == _registrations(unbounded)
    assert _registrations(bounded) == _registrations(run_stack(stack))
    assert bounded.outputs == unbounded.outputs
