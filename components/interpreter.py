"""What the program sets in the Python interpreter it runs in (``__main__.py`` calls ``tune_gc`` first): under
``pulumi preview``/``up`` nothing else sets it, and the benchmark's floor runs under the same settings."""

from __future__ import annotations

import gc

# Collect young objects after 50,000 net allocations (default 700), the middle generation every 20 young collections,
# the oldest every 100 middle ones.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Raise the cyclic collector's thresholds. Everything the program declares stays alive until the SDK has
    registered it, so with the defaults the collector keeps rescanning a growing live heap that holds no garbage:
    a third of the CPU time of a 50-tenant run, more per resource the larger the stack (python -m tools.bench)."""
    gc.set_threshold(*GC_THRESHOLDS)
