"""Benchmark (verification tier 4): time and peak memory of the real program for growing generated stacks.

    python -m tools.bench [--sizes 10,50,200,500] [--repeat 1] [--json]

Owns the generated benchmark stack (``generated_config``: Pulumi.prod.yaml's sections with N tenants, one model
endpoint and one pipeline per tenant, the GPU inventory scaled to their quotas) and the measurement. For each size
it runs the real ``__main__.py`` through ``tools.harness`` (compact records: no inputs kept) in a fresh subprocess,
then, in another fresh subprocess, the SDK floor: as many plain ``ConfigMap``s as the program registered, under the
same mocks and the same recording monitor. Each child first runs size 1 (imports, warm caches), then times the run.
It reports resources, wall time, peak RSS of the child (``ru_maxrss``), the ratio program time / floor time, the
growth of time per resource since the previous size (and per doubling of the work: the budget's x2 -> <= x2.2) and
the serialized inputs per resource of both. Never used for a timed assertion.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

from .harness import ROOT, stack_config

STACK = "bench"  # no state/bench.json: a new stack for the strict removal check
SIZES = (10, 50, 200, 500)
ENGINES = ("vllm", "triton", "kserve")
# Budget (docs/benchmark.md, "The budget"): program time <= 1.3 x floor; x2 resources -> <= x2.2 time; 500x500 under 1 GiB.
MAX_RATIO, MAX_GROWTH, MAX_RSS = 1.3, 1.1, 1 << 30


def _tenant(index: int) -> dict:
    """Tenant ``index``: the shapes of prod's research, product and analytics tenants in turn."""
    name, shape = f"team{index:03d}", index % 3
    tenant = {
        "name": name,
        "objectStore": {
            "serviceAccountAnnotations": {
                "eks.amazonaws.com/role-arn": f"arn:aws:iam::111122223333:role/ai-platform-bench-artifacts-{name}"
            }
        },
        "access": {
            "admins": {"groups": [f"{name}-leads"]},
            "developers": {"groups": [name]},
            "viewers": {"groups": ["ai-observers"]},
        },
        "quota": {
            "cpu": {"requests": "64", "limits": "128"},
            "memory": {"requests": "512Gi", "limits": "1Ti"},
            "gpu": (4, 4, 2)[shape],
            "mig": ({"3g.40gb": 2}, {"2g.20gb": 4}, {"1g.10gb": 4})[shape],
            "storage": "4Ti",
            "pods": 200,
            "counts": {"jobs.batch": 100},
        },
        "limitRange": {"container": {"max": {"cpu": "32", "memory": "256Gi"}, "maxGpus": 4}},
        "queue": {"weight": (4, 3, 1)[shape], "reclaimable": shape != 1},
    }
    if shape == 0:
        tenant["gpuIsolation"] = "exclusive"
    return tenant


def _endpoint(index: int) -> dict:
    """The endpoint of tenant ``index``; engines cycle vLLM (with a canary), Triton (MIG), KServe (with a canary)."""
    tenant, engine = f"team{index:03d}", ENGINES[index % 3]
    if engine == "vllm":
        return {
            "name": "llm",
            "tenant": tenant,
            "engine": "vllm",
            "source": "hf://meta-llama/Llama-3.1-8B-Instruct",
            "gpu": {"count": 1, "model": "A100-80GB"},
            "resources": {"cpu": "8", "memory": "64Gi"},
            "replicas": {"min": 1, "max": 2},
            "vllm": {"maxModelLen": 16384, "dtype": "bfloat16"},
            "canary": {"source": "hf://RedHatAI/Llama-3.1-8B-Instruct-FP8-dynamic", "replicas": {"max": 1}},
            "traffic": {"weights": {"stable": 90, "canary": 10}, "timeout": "300s"},
        }
    if engine == "triton":
        return {
            "name": "reranker",
            "tenant": tenant,
            "engine": "triton",
            "source": f"s3://models-bench/{tenant}/reranker",
            "s3": {"region": "eu-west-1", "credentialsSecret": "triton-model-store"},
            "gpu": {"migProfile": "2g.20gb"},
            "resources": {"cpu": "4", "memory": "16Gi"},
            "replicas": {"min": 2, "max": 4},
            "triton": {"models": ["reranker"]},
            "traffic": {"timeout": "10s", "retryAttempts": 3},
        }
    return {
        "name": "fraud-xgb",
        "tenant": tenant,
        "engine": "kserve",
        "source": f"s3://models-bench/{tenant}/fraud",
        "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": f"arn:aws:iam::111122223333:role/{tenant}"},
        "resources": {"cpu": "1", "memory": "2Gi"},
        "replicas": {"min": 2, "max": 6},
        "kserve": {"modelFormat": "xgboost"},
        "canary": {"source": f"s3://models-bench/{tenant}/fraud-v2", "replicas": {"max": 2}},
        "traffic": {"weights": {"stable": 80, "canary": 20}, "timeout": "5s"},
    }


def _pipeline(index: int) -> dict:
    return {
        "tenant": f"team{index:03d}",
        "metric": "eval_accuracy",
        "threshold": 0.9,
        "gpu": {"count": 1},
        "resources": {"cpu": "8", "memory": "64Gi"},
    }


def _pools(tenants: list[dict]) -> list[dict]:
    """Prod's two pools with as many nodes as the tenants' quotas need (8 GPUs a node)."""
    whole = sum(t["quota"]["gpu"] for t in tenants)
    layout = {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}  # instances per GPU
    mig = {profile: sum(t["quota"]["mig"].get(profile, 0) for t in tenants) for profile in layout}
    mig_nodes = max(1, *(math.ceil(count / (8 * layout[profile])) for profile, count in mig.items()))
    a100_nodes = max(1, math.ceil(whole / 8))
    return [
        {
            "name": "h100-mig",
            "gpuModel": "H100-80GB",
            "gpusPerNode": 8,
            "sharing": "mig",
            "migProfiles": layout,
            "nodes": [f"gpu-h100-{n:03d}" for n in range(1, mig_nodes + 1)],
        },
        {
            "name": "a100",
            "gpuModel": "A100-80GB",
            "gpusPerNode": 8,
            "nodes": [f"gpu-a100-{n:03d}" for n in range(1, a100_nodes + 1)],
            "labels": {"node.example.com/tier": "gpu-training"},
        },
    ]


def generated_config(size: int) -> dict:
    """A prod-like stack ``config:`` mapping with ``size`` tenants and ``size`` model endpoints (one per tenant)."""
    config = stack_config("prod")
    tenants = [_tenant(i) for i in range(1, size + 1)]
    config["ai-platform:cluster"] = {**config["ai-platform:cluster"], "name": "bench", "kubeContext": "ai-bench"}
    config["ai-platform:tenants"] = tenants
    config["ai-platform:models"] = [_endpoint(i) for i in range(1, size + 1)]
    config["ai-platform:gpu"] = {**config["ai-platform:gpu"], "nodePools": _pools(tenants)}
    config["ai-platform:workflows"] = {
        **config["ai-platform:workflows"],
        "pipelines": [_pipeline(i) for i in range(1, size + 1)],
    }
    config["ai-platform:secrets"] = {**config["ai-platform:secrets"], "keyPrefix": "ai-platform/bench"}
    return config


def _floor_program(count: int):
    """The SDK floor: ``count`` plain ConfigMaps (the root stack is the program's resource too)."""

    def program():
        import pulumi_kubernetes as k8s

        for index in range(count):
            k8s.core.v1.ConfigMap(
                f"floor-{index}", metadata={"name": f"floor-{index}", "namespace": "bench"}, data={"key": "value"}
            )

    return program


def measure(kind: str, size: int, count: int = 0) -> dict:
    """Run the program (``kind`` program) or the floor in this process; what a child reports. A first run of size 1
    (or of one ConfigMap) imports and warms what the timed run uses, so wall time is the run's, not the imports'."""
    from . import harness

    harness.run(STACK, generated_config(1), program=_floor_program(1) if kind == "floor" else None, compact=True)
    config = generated_config(size)
    program = _floor_program(count) if kind == "floor" else None
    start = time.perf_counter()
    result = harness.run(STACK, config, program=program, compact=True)
    seconds = time.perf_counter() - start
    if result.error is not None:
        raise SystemExit(f"{kind} run of size {size} failed: {result.error}")
    return {
        "resources": len(result.resources),
        "seconds": seconds,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "input_bytes": sum(r.input_bytes for r in result.resources),
    }


def _child(kind: str, size: int, count: int = 0) -> dict:
    """``measure`` in a fresh interpreter, so that sizes and the floor do not share memory or caches."""
    command = [sys.executable, "-m", "tools.bench", "--child", kind, "--sizes", str(size), "--count", str(count)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr.strip() or f"{kind} child of size {size} exited {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _best(kind: str, size: int, repeat: int, count: int = 0) -> dict:
    """The fastest of ``repeat`` fresh children (other load on the machine only ever slows a run down)."""
    return min((_child(kind, size, count) for _ in range(repeat)), key=lambda measured: measured["seconds"])


def bench(sizes: list[int], repeat: int = 1) -> list[dict]:
    rows: list[dict] = []
    for size in sizes:
        program = _best("program", size, repeat)
        floor = _best("floor", size, repeat, count=program["resources"] - 1)
        row = {
            "size": size,
            "tenants": size,
            "endpoints": size,
            "resources": program["resources"],
            "seconds": program["seconds"],
            "peak_rss": program["peak_rss"],
            "floor_seconds": floor["seconds"],
            "floor_peak_rss": floor["peak_rss"],
            "ratio": program["seconds"] / floor["seconds"],
            "ms_per_resource": 1000 * program["seconds"] / program["resources"],
            "growth": None,
            "growth_per_doubling": None,
            "floor_growth_per_doubling": None,
            "input_bytes_per_resource": program["input_bytes"] / program["resources"],
            "floor_input_bytes_per_resource": floor["input_bytes"] / floor["resources"],
        }
        if rows:  # time per resource relative to the previous size (1.0: linear), and per doubling of the work
            previous, doublings = rows[-1], math.log2(row["resources"] / rows[-1]["resources"])
            row["growth"] = row["ms_per_resource"] / previous["ms_per_resource"]
            row["growth_per_doubling"] = row["growth"] ** (1 / doublings)
            floor_growth = (row["floor_seconds"] / previous["floor_seconds"]) * previous["resources"] / row["resources"]
            row["floor_growth_per_doubling"] = floor_growth ** (1 / doublings)
        rows.append(row)
        print(f"size {size}: {row['resources']} resources in {row['seconds']:.1f}s", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    header = (
        "tenants x endpoints",
        "resources",
        "wall s",
        "ms/resource",
        "growth/res (per x2)",
        "peak RSS MiB",
        "floor s",
        "floor RSS MiB",
        "ratio",
        "input B/res (floor)",
    )
    lines = [
        [
            f"{r['size']}x{r['size']}",
            str(r["resources"]),
            f"{r['seconds']:.2f}",
            f"{r['ms_per_resource']:.2f}",
            "-" if r["growth"] is None else f"{r['growth']:.2f} ({r['growth_per_doubling']:.2f})",
            f"{r['peak_rss'] / 2**20:.0f}",
            f"{r['floor_seconds']:.2f}",
            f"{r['floor_peak_rss'] / 2**20:.0f}",
            f"{r['ratio']:.2f}",
            f"{r['input_bytes_per_resource']:.0f} ({r['floor_input_bytes_per_resource']:.0f})",
        ]
        for r in rows
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]
    out = [
        " | ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in [list(header), *lines]
    ]
    out.insert(1, "-|-".join("-" * width for width in widths))
    return "\n".join(out)


def over_budget(rows: list[dict]) -> list[str]:
    """What misses the budget: ratio, growth of time per resource per doubling of the work, peak RSS at 500."""
    problems = [
        f"{r['size']}x{r['size']}: ratio {r['ratio']:.2f} > {MAX_RATIO}" for r in rows if r["ratio"] > MAX_RATIO
    ]
    problems += [
        f"{r['size']}x{r['size']}: time per resource grew x{r['growth_per_doubling']:.2f} per doubling > {MAX_GROWTH}"
        for r in rows
        if (r["growth_per_doubling"] or 0) > MAX_GROWTH
    ]
    problems += [
        f"{r['size']}x{r['size']}: peak RSS {r['peak_rss'] / 2**20:.0f} MiB > 1024 MiB"
        for r in rows
        if r["size"] >= 500 and r["peak_rss"] > MAX_RSS
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="tenants (= endpoints) per run, e.g. 10,50")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest counts")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--child", choices=("program", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    if args.child:
        print(json.dumps(measure(args.child, sizes[0], args.count)))
        return 0
    rows = bench(sizes, args.repeat)
    if args.json:
        print(json.dumps({"rows": rows, "over_budget": over_budget(rows)}, indent=2))
    else:
        print(table(rows))
        for problem in over_budget(rows):
            print(f"over budget: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
