"""tools.bench: its generated stacks are valid and run under the harness, and so does its SDK floor (no timing)."""

from config.loader import load
from tools import bench
from tools.harness import ROOT, run


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


def test_floor_registers_as_many_configmaps():
    result = run(bench.STACK, bench.generated_config(1), program=bench._floor_program(5), compact=True)
    assert result.error is None, result.error
    assert [r.type for r in result.resources].count("kubernetes:core/v1:ConfigMap") == 5
    assert len(result.resources) == 6  # and the root stack


def test_table_and_budget_report():
    rows = [
        {
            "size": 10,
            "resources": 600,
            "seconds": 1.5,
            "ms_per_resource": 2.5,
            "growth": None,
            "peak_rss": 100 << 20,
            "floor_seconds": 1.0,
            "floor_peak_rss": 90 << 20,
            "ratio": 1.5,
            "input_bytes_per_resource": 1500,
            "floor_input_bytes_per_resource": 100,
            "growth_per_doubling": None,
        }
    ]
    assert "10x10" in bench.table(rows)
    assert bench.over_budget(rows) == ["10x10: ratio 1.50 > 1.3"]
