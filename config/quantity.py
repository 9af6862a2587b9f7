"""Kubernetes resource quantities (``500m``, ``64Gi``, ``2``): validation and comparison."""

import re
from decimal import Decimal

_QUANTITY = re.compile(r"^(?P<number>[+-]?(\d+(\.\d*)?|\.\d+))(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(text: str) -> Decimal:
    """Return the value of a Kubernetes quantity string; raise ``ValueError`` if it is not one."""
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError("not a Kubernetes quantity such as 500m, 4, 64Gi")
    number, suffix = Decimal(match["number"]), match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Decimal(10) ** int(suffix[1:])


def normalize_quantity(value: object) -> str:
    """Accept a non-negative quantity as YAML gives it (``2``, ``0.5``, ``"64Gi"``) and return it as a string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("must be a Kubernetes quantity such as 500m, 4, 64Gi")
    text = str(value).strip()
    if parse_quantity(text) < 0:
        raise ValueError("must not be negative")
    return text
