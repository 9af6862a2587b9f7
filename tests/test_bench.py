"""tools.bench: its generated stacks are valid and run under the harness, so does its SDK floor, and the program
(not the harness) sets the collector settings it runs under (no timing)."""

import gc
import json
import statistics
from types import SimpleNamespace

import pytest
from google.protobuf import struct_pb2

from components.interpreter import GC_THRESHOLDS
from config.loader import load
from tools import bench
from tools.harness import ROOT, run


@pytest.fixture
def default_gc():
    """The interpreter's default collector thresholds during the test, whatever ran before; restored after."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_generated_stack_loads_and_runs():
    config = bench.generated_config(3)
    assert not (ROOT / "state" / f"{bench.STACK}.json").exists()  # a new stack: no removal check
    cfg = load(bench.STACK, {key.split(":", 1)[1]: value for key, value in config.items()})
    assert [t.name for t in cfg.tenants] == ["team001", "team002", "team003"]
    assert sorted(m.engine for m in cfg.models) == ["kserve", "triton", "vllm"]
    assert sorted(p.tenant for p in cfg.workflows.pipelines) == ["team001", "team002", "team003"]
    assert cfg.training.enabled and cfg.mesh.enabled and cfg.monitoring.enabled and cfg.mlflow.enabled
    full = run(bench.STACK, config)
    assert full.error is None, full.error
    assert len(full.of_kind("WorkflowTemplate")) == 3 and len(full.of_kind("Namespace")) > 3
    compact = run(bench.STACK, config, compact=True)
    assert compact.error is None, compact.error
    assert sorted(r.urn for r in compact.resources) == sorted(r.urn for r in full.resources)
    assert compact.outputs == full.outputs


def test_program_sets_its_collector_thresholds(default_gc):
    result = run(bench.STACK, bench.generated_config(1), compact=True)
    assert result.error is None, result.error
    assert gc.get_threshold() == GC_THRESHOLDS  # __main__.py set them, and the harness left them


def test_harness_sets_no_collector_thresholds(default_gc):
    result = run(bench.STACK, bench.generated_config(1), program=bench._floor_program(3), compact=True)
    assert result.error is None, result.error
    assert gc.get_threshold() == (700, 10, 10)


def test_floor_registers_raw_resources_of_the_programs_size_under_one_component():
    result = run(bench.STACK, bench.generated_config(1), program=bench._floor_program(5, 16, 23, 1500), compact=True)
    assert result.error is None, result.error
    assert [r.type for r in result.resources].count(bench.FLOOR_TYPE) == 5
    components = [r for r in result.resources if not r.custom and r.type != "pulumi:pulumi:Stack"]
    assert len(components) == 1 and len(result.resources) == 7  # and the root stack
    assert {r.parent for r in result.resources if r.custom} == {components[0].urn}
    assert all(abs(r.input_bytes - 1500) <= 8 for r in result.resources if r.custom)


def test_floor_inputs_have_the_asked_shape_and_size():
    inputs = bench.floor_inputs("floor-1", containers=16, leaves=23, size=1500)
    assert bench._shape(SimpleNamespace(resources=[SimpleNamespace(inputs=inputs)])) == {"containers": 16, "leaves": 23}
    struct = struct_pb2.Struct()
    struct.update(inputs)
    assert abs(struct.ByteSize() - 1500) <= 1


def test_table_and_budget_report():
    row = {
        "size": 500,
        "resources": 25000,
        "cpu": 60.0,
        "floor_cpu": 40.0,
        "ratio": 1.5,
        "ratio_min": 1.4,
        "ratio_max": 1.6,
        "ms_per_resource": 2.4,
        "growth_per_doubling": 1.2,
        "growth_min": 1.15,
        "growth_max": 1.25,
        "floor_growth_per_doubling": 1.18,
        "peak_rss": 1100 << 20,
        "floor_peak_rss": 900 << 20,
        "input_bytes_per_resource": 1500,
        "floor_input_bytes_per_resource": 1500,
    }
    assert "500x500" in bench.table([row]) and "1.50 (1.40-1.60)" in bench.table([row])
    assert "1.20 (1.15-1.25)" in bench.table([row])
    assert bench.over_budget([row]) == [
        "500x500: ratio 1.50 > 1.3",
        "500x500: CPU time per resource grew x1.20 per doubling > 1.1 (the floor's: x1.18)",
        "500x500: peak RSS 1100 MiB > 1024 MiB",
    ]
    small = {**row, "size": 10, "growth_per_doubling": None, "floor_growth_per_doubling": None, "peak_rss": 100 << 20}
    assert bench.over_budget([small]) == []  # the ratio counts from 50x50, memory from 500x500
    assert bench.over_budget([{**row, "size": 1000, "ratio": 1.2, "growth_per_doubling": 1.0}]) == []


def drifting_child(calls: list):
    """``tools.bench._child`` on a machine 10% slower with each run, for a program and floor exactly linear (1 ms per
    resource; the program registers 10 x size x size resources)."""

    def child(kind, size, floor=None):
        calls.append((kind, size))
        resources = floor["count"] if kind == "floor" else 10 * size * size
        cpu = resources / 1000 * 1.1 ** len(calls)
        return {"resources": resources, "cpu": cpu, "wall": 0.0, "peak_rss": 0, "input_bytes": 0}

    return child


def test_growth_compares_sizes_within_rounds_of_alternating_order_so_drift_cancels(monkeypatch):
    """A program and floor exactly linear (1 ms per resource) on a machine 10% slower with each run: rounds of
    alternating order (every size once smallest first, then largest first) report growth 1.00 for both; rounds all
    smallest first would report 1.10 per doubling, and all runs of one size before the next (the order before) 1.21."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(bench, "_child", drifting_child(calls))
    rows = bench.summarize(bench.bench([10, 20], repeat=2))
    ascending = [("program", 10), ("floor", 10), ("program", 20), ("floor", 20)]
    assert calls[1:] == ascending + ascending[2:] + ascending[:2]
    assert rows[1]["growth_per_doubling"] == pytest.approx(1.0)
    assert rows[1]["floor_growth_per_doubling"] == pytest.approx(1.0)
    assert rows[1]["growth_min"] == pytest.approx(1.1**-1) and rows[1]["growth_max"] == pytest.approx(1.1)
    assert rows[0]["growth_per_doubling"] is None


def test_pool_summarizes_the_rounds_of_several_json_runs(monkeypatch, capsys, tmp_path):
    """Two saved runs (10 and 20, then 20 and 40): the pooled table counts every pair of a size (four at 20) and takes
    growth from the rounds that ran both sizes."""
    monkeypatch.setattr(bench, "_child", drifting_child([]))
    for name, sizes in (("a.json", "10,20"), ("b.json", "20,40")):
        assert bench.main(["--sizes", sizes, "--repeat", "2", "--json"]) == 0
        (tmp_path / name).write_text(capsys.readouterr().out)
    saved = [json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json")]
    assert bench.main(["--pool", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--json"]) == 0
    rows = {row["size"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    ratios = [program["cpu"] / floor["cpu"] for run in saved for r in run["rounds"] for program, floor in [r["20"]]]
    assert len(ratios) == 4 and rows[20]["ratio"] == pytest.approx(statistics.median(ratios))
    assert rows[20]["ratio_min"] == pytest.approx(min(ratios)) and rows[20]["ratio_max"] == pytest.approx(max(ratios))
    assert rows[10]["growth_per_doubling"] is None
    assert rows[20]["growth_per_doubling"] == pytest.approx(1.0) == rows[40]["growth_per_doubling"]
    assert rows[40]["growth_min"] == pytest.approx(1.1**-1) and rows[40]["growth_max"] == pytest.approx(1.1)
