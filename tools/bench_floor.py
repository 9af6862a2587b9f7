"""The benchmark's SDK floor as a Pulumi program (``tools.bench``), run by the harness as it runs ``__main__.py``:
through ``runpy``, as ``__main__``, with ``FLOOR`` (``tools.bench._floor_program``'s arguments) in its globals.

One ``ComponentResource`` registers, from its constructor as every component does, ``count`` raw
``pulumi.CustomResource``s with ``tools.bench.floor_inputs`` (built once and shared: building values is the
program's work, serializing them the SDK's). From a constructor, because that is where the SDK looks for the
frames it sends with each registration (the ones below the third ``__init__`` on the stack): a registration made
outside any constructor sends none, which no component and no typed resource ever does.
"""

from __future__ import annotations

import pulumi

from tools.bench import FLOOR_TYPE, STACK, floor_inputs


class Floor(pulumi.ComponentResource):
    def __init__(self, count: int, containers: int = 4, leaves: int = 5, size: int = 0):
        super().__init__("bench:index:Floor", "floor")
        template = floor_inputs(f"floor-{count}", containers, leaves, size)
        options = pulumi.ResourceOptions(parent=self)
        for index in range(count):
            name = f"floor-{index}"
            pulumi.CustomResource(
                FLOOR_TYPE, name, {**template, "metadata": {"name": name, "namespace": STACK}}, options
            )


if __name__ == "__main__":
    Floor(**FLOOR)  # type: ignore[name-defined]  # noqa: F821 - given by tools.bench._floor_program
