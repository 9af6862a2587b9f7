"""Benchmark (verification tier 4): CPU time and peak memory of the real program, as ``pulumi`` runs it, for growing
generated stacks, against a fair floor.

    python -m tools.bench [--sizes 10,50,200,500] [--repeat 3] [--json]
    python -m tools.bench --pool run1.json run2.json ...   # the table of several --json runs together

Owns the generated benchmark stack (``generated_config``: Pulumi.prod.yaml's sections with N tenants, one model
endpoint and one pipeline per tenant, the GPU inventory scaled to their quotas), the floor and the measurement.

- The program: ``__main__.py`` through ``tools.harness`` (compact records: no inputs kept) in a fresh interpreter
  that sets nothing the program does not set itself (``components/interpreter.py``).
- The floor (``tools/bench_floor.py``): what the SDK alone costs for the same registrations. One
  ``ComponentResource`` whose constructor registers raw ``pulumi.CustomResource``s (``kubernetes:core/v1:ConfigMap``)
  until there are as many registrations as the program's, each with inputs of the program's average shape (nested
  dicts, leaves; ``_shape``: from one full run) and serialized size (from the paired run); run through ``runpy``
  like ``__main__.py``, under the same mocks, recording monitor and collector settings.
- Runs are paired and interleaved (program, floor, program, floor, ...) and go in rounds (every size once, smallest
  first, then largest first, and so on), each in a fresh interpreter; each child
  measures its own CPU time (user + sys of all its threads, ``time.process_time``) around the run only: interpreter
  start and imports (the program's modules are imported first) are the same fixed cost for both and not the run's.

Per size it reports the median CPU time of both, the median of the per-pair ratios program / floor and their range,
the growth of CPU time per resource per doubling of the work from the previous size (geometric mean over rounds of the
growth within a round, and its range; the floor's beside it) and the peak RSS (``ru_maxrss``) of the children.
Never used for a timed assertion.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import math
import resource
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

from google.protobuf import struct_pb2

from .harness import ROOT, stack_config

STACK = "bench"  # no state/bench.json: a new stack for the strict removal check
SIZES = (10, 50, 200, 500)
SHAPE_SIZE = 10  # the full run the floor's payload shape comes from
FLOOR_TYPE = "kubernetes:core/v1:ConfigMap"
ENGINES = ("vllm", "triton", "kserve")
# Budget (docs/benchmark.md, "The budget"): program CPU <= 1.3 x floor from 50x50 up; x2 resources -> <= x2.2 time;
# peak RSS under 1 GiB at 500x500 and 1.5 GiB at 1000x1000.
MAX_RATIO, RATIO_FROM, MAX_GROWTH = 1.3, 50, 1.1
MAX_RSS = {500: 1 << 30, 1000: 3 << 29}


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


def _shape(run) -> dict:
    """The program's average registration (over all of them, the stack and components too): containers (dicts and
    lists, the inputs object itself included) and leaves of its inputs."""
    counts = {"containers": 0, "leaves": 0}

    def walk(value: object) -> None:
        if isinstance(value, (dict, list)):
            counts["containers"] += 1
            for item in value.values() if isinstance(value, dict) else value:
                walk(item)
        else:
            counts["leaves"] += 1

    for registered in run.resources:
        walk(registered.inputs)
    return {key: round(count / len(run.resources)) for key, count in counts.items()}


def floor_inputs(name: str, containers: int, leaves: int, size: int) -> dict:
    """ConfigMap-like inputs with ``containers`` dicts and ``leaves`` values, one padded so that the inputs
    serialize (a protobuf ``Struct``, as the SDK sends them) to ``size`` bytes."""
    groups = max(1, containers - 3)  # besides the inputs object, metadata and data
    data: dict[str, dict] = {f"g{group}": {} for group in range(groups)}
    for leaf in range(max(1, leaves - 4)):  # besides apiVersion, kind, name and namespace
        data[f"g{leaf % groups}"][f"k{leaf}"] = "v"
    inputs = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": STACK}, "data": data}
    for _ in range(2):  # a longer pad lengthens the length prefixes around it too: measure again
        struct = struct_pb2.Struct()
        struct.update(inputs)
        data["g0"]["k0"] = "v" * max(1, len(data["g0"]["k0"]) + size - struct.ByteSize())
    return inputs


def _floor_program(count: int, containers: int = 4, leaves: int = 5, size: int = 0):
    """The SDK floor (``tools/bench_floor.py``): ``count`` raw custom resources with ``floor_inputs``, registered by
    one component's constructor, the program run through ``runpy`` as the harness runs ``__main__.py``."""
    floor = {"count": count, "containers": containers, "leaves": leaves, "size": size}
    path = str(ROOT / "tools" / "bench_floor.py")
    return lambda: runpy.run_path(path, init_globals={"FLOOR": floor}, run_name="__main__")


def _import_program() -> None:
    """Import what ``__main__.py`` imports, so that the timed run is the program's run, not its imports."""
    for node in ast.parse((ROOT / "__main__.py").read_text()).body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            importlib.import_module(node.module)


def measure(kind: str, size: int, floor: dict | None = None) -> dict:
    """Run the program (``kind`` program), the floor (``floor``: ``_floor_program``'s arguments) or a full run for
    ``_shape`` (``kind`` shape) in this process; what a child reports. CPU time is this process's (all threads,
    user + sys) around the run alone."""
    from components.interpreter import tune_gc

    from . import harness

    config = generated_config(size)
    if kind == "shape":
        result = harness.run(STACK, config)
        if result.error is not None:
            raise SystemExit(f"full run of size {size} failed: {result.error}")
        return _shape(result)
    program = None
    if kind == "floor":
        tune_gc()  # the collector settings the program runs under (it sets them itself)
        program = _floor_program(**(floor or {}))
    else:
        _import_program()
    wall, cpu = time.perf_counter(), time.process_time()
    result = harness.run(STACK, config, program=program, compact=True)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if result.error is not None:
        raise SystemExit(f"{kind} run of size {size} failed: {result.error}")
    return {
        "resources": len(result.resources),
        "cpu": cpu,
        "wall": wall,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "input_bytes": sum(r.input_bytes for r in result.resources),
    }


def _child(kind: str, size: int, floor: dict | None = None) -> dict:
    """``measure`` in a fresh interpreter, so that runs do not share memory, caches or collector settings."""
    command = [sys.executable, "-m", "tools.bench", "--child", kind, "--sizes", str(size)]
    command += ["--floor", json.dumps(floor)] if floor else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr.strip() or f"{kind} child of size {size} exited {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _pair(size: int, shape: dict) -> tuple[dict, dict]:
    """One program run, then the floor for as many registrations with the same average inputs."""
    program = _child("program", size)
    count = program["resources"] - 2  # besides the root stack and the floor's component
    floor = {"count": count, **shape, "size": round(program["input_bytes"] / program["resources"])}
    return program, _child("floor", size, floor)


def growth_per_doubling(smaller: dict, larger: dict) -> float:
    """How CPU time per resource grew from the ``smaller`` run to the ``larger`` (program or floor), per doubling of
    the resources (1.0: linear)."""
    per_resource = (larger["cpu"] / larger["resources"]) / (smaller["cpu"] / smaller["resources"])
    return per_resource ** (1 / math.log2(larger["resources"] / smaller["resources"]))


def bench(sizes: list[int], repeat: int = 3) -> list[dict[int, tuple[dict, dict]]]:
    """``repeat`` rounds of one interleaved pair per size, smallest first in odd rounds and largest first in even
    ones; each round's (program, floor) pair by size.

    The machine's speed drifts by a fifth within minutes (a fixed loop: 0.98 s, then 1.10-1.27 s twenty minutes
    later; the same 200x200 program: 19.7 to 29.3 s CPU in five runs in a row). The ratio cancels it by pairing; growth
    compares sizes within a round (a few minutes apart) and takes the geometric mean over rounds whose order
    alternates, so a steady drift cancels over each two rounds instead of reading as growth; the floor's growth in the
    same rounds is reported beside it."""
    shape = _child("shape", SHAPE_SIZE)
    rounds: list[dict[int, tuple[dict, dict]]] = []
    for number in range(1, repeat + 1):
        rounds.append({})
        for size in sizes if number % 2 else reversed(sizes):
            program, floor = rounds[-1][size] = _pair(size, shape)
            print(f"round {number}, size {size}: {program['cpu']:.1f}s CPU, floor {floor['cpu']:.1f}s", file=sys.stderr)
    return rounds


def summarize(rounds: list[dict[int, tuple[dict, dict]]]) -> list[dict]:
    """The rows of the table, a size a row, from rounds of one run or of several (``--pool``): every pair of a size
    counts, and growth from the next smaller size counts the rounds that ran both."""
    rows: list[dict] = []
    sizes = sorted({size for pairs_by_size in rounds for size in pairs_by_size})
    for previous, size in zip([0, *sizes], sizes, strict=False):  # no round has a size 0: no growth for the first
        pairs = [pairs_by_size[size] for pairs_by_size in rounds if size in pairs_by_size]
        programs, floors = [p for p, _ in pairs], [f for _, f in pairs]
        ratios = [p["cpu"] / f["cpu"] for p, f in pairs]
        resources = programs[0]["resources"]
        cpu = statistics.median(p["cpu"] for p in programs)
        growths, floor_growths = [], []
        for pairs_by_size in (r for r in rounds if previous in r and size in r):
            (program_before, floor_before), (program_now, floor_now) = pairs_by_size[previous], pairs_by_size[size]
            growths.append(growth_per_doubling(program_before, program_now))
            floor_growths.append(growth_per_doubling(floor_before, floor_now))
        rows.append(
            {
                "size": size,
                "resources": resources,
                "cpu": cpu,
                "floor_cpu": statistics.median(f["cpu"] for f in floors),
                "ratio": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "ms_per_resource": 1000 * cpu / resources,
                "growth_per_doubling": statistics.geometric_mean(growths) if growths else None,
                "growth_min": min(growths, default=None),
                "growth_max": max(growths, default=None),
                "floor_growth_per_doubling": statistics.geometric_mean(floor_growths) if floor_growths else None,
                "wall": statistics.median(p["wall"] for p in programs),
                "peak_rss": max(p["peak_rss"] for p in programs),
                "floor_peak_rss": max(f["peak_rss"] for f in floors),
                "input_bytes_per_resource": programs[0]["input_bytes"] / resources,
                "floor_input_bytes_per_resource": floors[0]["input_bytes"] / floors[0]["resources"],
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    header = (
        "tenants x endpoints",
        "resources",
        "CPU s",
        "floor CPU s",
        "ratio (min-max)",
        "ms/resource",
        "growth per x2",
        "floor growth",
        "peak RSS MiB",
        "floor RSS MiB",
        "input B/res (floor)",
    )
    lines = [
        [
            f"{r['size']}x{r['size']}",
            str(r["resources"]),
            f"{r['cpu']:.2f}",
            f"{r['floor_cpu']:.2f}",
            f"{r['ratio']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})",
            f"{r['ms_per_resource']:.2f}",
            "-"
            if r["growth_per_doubling"] is None
            else f"{r['growth_per_doubling']:.2f} ({r['growth_min']:.2f}-{r['growth_max']:.2f})",
            "-" if r["floor_growth_per_doubling"] is None else f"{r['floor_growth_per_doubling']:.2f}",
            f"{r['peak_rss'] / 2**20:.0f}",
            f"{r['floor_peak_rss'] / 2**20:.0f}",
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
    """What misses the budget: the median ratio from 50x50 up, the growth of CPU time per resource per doubling of
    the work, peak RSS from 500x500 and from 1000x1000 up."""
    problems = [
        f"{r['size']}x{r['size']}: ratio {r['ratio']:.2f} > {MAX_RATIO}"
        for r in rows
        if r["size"] >= RATIO_FROM and r["ratio"] > MAX_RATIO
    ]
    problems += [
        f"{r['size']}x{r['size']}: CPU time per resource grew x{r['growth_per_doubling']:.2f} per doubling > {MAX_GROWTH}"
        f" (the floor's: x{r['floor_growth_per_doubling']:.2f})"
        for r in rows
        if (r["growth_per_doubling"] or 0) > MAX_GROWTH
    ]
    for r in rows:
        limit = max((limit for size, limit in MAX_RSS.items() if r["size"] >= size), default=None)
        if limit is not None and r["peak_rss"] > limit:
            problems.append(f"{r['size']}x{r['size']}: peak RSS {r['peak_rss'] / 2**20:.0f} MiB > {limit >> 20} MiB")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="tenants (= endpoints) per run, e.g. 10,50")
    parser.add_argument("--repeat", type=int, default=3, help="program/floor pairs per size; medians count")
    parser.add_argument("--json", action="store_true", help="print the rounds and rows as JSON instead of a table")
    parser.add_argument("--pool", nargs="+", metavar="JSON", help="the table of several --json runs' rounds together")
    parser.add_argument("--child", choices=("program", "floor", "shape"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    if args.child:
        print(json.dumps(measure(args.child, sizes[0], args.floor)))
        return 0
    if args.pool:
        rounds = [
            {int(size): tuple(pair) for size, pair in pairs_by_size.items()}
            for path in args.pool
            for pairs_by_size in json.loads(Path(path).read_text())["rounds"]
        ]
    else:
        rounds = bench(sizes, args.repeat)
    rows = summarize(rounds)
    if args.json:
        print(json.dumps({"rounds": rounds, "rows": rows, "over_budget": over_budget(rows)}, indent=2))
    else:
        print(table(rows))
        for problem in over_budget(rows):
            print(f"over budget: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
