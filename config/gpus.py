"""Facts about GPU models: which ones the platform knows, and the MIG profiles each supports.

Source: NVIDIA MIG User Guide, "Supported MIG Profiles" (A30, A100, H100, H200, B200 tables). A profile
``<c>g.<m>gb`` takes ``c`` compute slices and some memory slices of the GPU; ``max`` is how many instances
of it one GPU can hold. The media-extension variants (``+me``) are left out: one per GPU, rarely wanted.
"""

from __future__ import annotations

from typing import NamedTuple


class MigProfile(NamedTuple):
    compute: int
    memory: int
    max: int


class GpuModel(NamedTuple):
    """A GPU model: its compute and memory slices (0 when it has no MIG) and its MIG profiles."""

    compute_slices: int
    memory_slices: int
    mig_profiles: dict[str, MigProfile]


def _seven_slice(small: str, double: str, two: str, three: str, four: str, seven: str) -> dict[str, MigProfile]:
    """Profile names of the 7-compute / 8-memory-slice GPUs (A100, H100, H200, B200), smallest first."""
    return {
        small: MigProfile(1, 1, 7),
        double: MigProfile(1, 2, 4),
        two: MigProfile(2, 2, 3),
        three: MigProfile(3, 4, 2),
        four: MigProfile(4, 4, 1),
        seven: MigProfile(7, 8, 1),
    }


GPU_MODELS: dict[str, GpuModel] = {
    "A100-40GB": GpuModel(7, 8, _seven_slice("1g.5gb", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")),
    "A100-80GB": GpuModel(7, 8, _seven_slice("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")),
    "H100-80GB": GpuModel(7, 8, _seven_slice("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")),
    "H200": GpuModel(7, 8, _seven_slice("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb")),
    "B200": GpuModel(7, 8, _seven_slice("1g.23gb", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb")),
    "A30": GpuModel(
        4, 4, {"1g.6gb": MigProfile(1, 1, 4), "2g.12gb": MigProfile(2, 2, 2), "4g.24gb": MigProfile(4, 4, 1)}
    ),
    "L40S": GpuModel(0, 0, {}),
    "L4": GpuModel(0, 0, {}),
    "A10G": GpuModel(0, 0, {}),
    "T4": GpuModel(0, 0, {}),
}


def mig_layout_problems(model: str, layout: dict[str, int]) -> list[str]:
    """Why a per-GPU MIG layout (profile -> instances) does not fit the model; empty when it fits."""
    gpu = GPU_MODELS[model]
    if not gpu.mig_profiles:
        return [
            f"{model} does not support MIG (MIG models: {', '.join(m for m, g in GPU_MODELS.items() if g.mig_profiles)})"
        ]
    problems = []
    for profile, count in layout.items():
        if profile not in gpu.mig_profiles:
            problems.append(f"{profile!r} is not a MIG profile of {model} (allowed: {', '.join(gpu.mig_profiles)})")
        elif count > gpu.mig_profiles[profile].max:
            problems.append(f"{model} holds at most {gpu.mig_profiles[profile].max} x {profile} (got {count})")
    if problems:
        return problems
    compute = sum(gpu.mig_profiles[p].compute * n for p, n in layout.items())
    memory = sum(gpu.mig_profiles[p].memory * n for p, n in layout.items())
    if compute > gpu.compute_slices or memory > gpu.memory_slices:
        problems.append(
            f"layout needs {compute}/{gpu.compute_slices} compute and {memory}/{gpu.memory_slices} "
            f"memory slices of one {model}"
        )
    return problems
