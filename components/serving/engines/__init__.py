"""The inference engines: one module per engine in this package (``vllm``, ``triton``, ``kserve``), each defining
``ENGINE`` (``base.Engine``), which owns everything about that engine: URI schemes, default autoscaling target and
load query, Service and metrics ports, the container or custom resource it builds, the names of its objects per
version, its config rules, alerts, dashboard row and image contract.

The registry imports every module of the package and keeps the ``ENGINE`` it defines: adding an engine is adding a
file. Config validation (``config.serving``), ``ModelEndpoint``, ``EndpointTraffic`` and monitoring ask ``get``/``of``;
an engine the registry lacks is refused at config load. ``registered`` adds an engine from elsewhere for a while
(tests). Pure data and functions: no Pulumi, no ``config`` models at import time.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .base import Engine

if TYPE_CHECKING:
    from config.serving import Endpoint


def _discover() -> dict[str, Engine]:
    found = [
        getattr(importlib.import_module(f"{__name__}.{module.name}"), "ENGINE", None)
        for module in pkgutil.iter_modules(__path__)
    ]
    return {engine.name: engine for engine in sorted((e for e in found if e), key=lambda e: e.position)}


_ENGINES = _discover()


def all_engines() -> list[Engine]:
    """Every registered engine, in ``position`` order."""
    return list(_ENGINES.values())


def names() -> list[str]:
    return list(_ENGINES)


def get(name: str) -> Engine:
    """The engine called ``name``; KeyError naming the registered ones if there is none."""
    try:
        return _ENGINES[name]
    except KeyError:
        raise KeyError(f"no engine {name!r} (registered: {', '.join(_ENGINES)})") from None


def of(endpoint: Endpoint) -> Engine:
    """The engine serving ``endpoint``."""
    return get(endpoint.engine)


@contextmanager
def registered(engine: Engine) -> Iterator[Engine]:
    """``engine`` in the registry for the duration of the ``with`` block."""
    if engine.name in _ENGINES:
        raise ValueError(f"engine {engine.name!r} is registered already")
    _ENGINES[engine.name] = engine
    try:
        yield engine
    finally:
        del _ENGINES[engine.name]
