"""What every config section is built from: the base ``Model``, ``ConfigProblems`` and the common field types.

Stack files spell keys in camelCase (``kubernetesVersion``); Python code uses the snake_case attributes.
Field docstrings are the config reference. Cross-field rules live in ``model_validator``s and raise
``ConfigProblems`` so that each problem keeps the config path it belongs to.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from .quantity import normalize_quantity, parse_quantity

Problems = list[tuple[str, str]]
"""Problems as (config path, message); the path is below the model that finds them."""


class ConfigProblems(ValueError):
    """Problems found by a cross-field rule, each as (path below the model, message)."""

    def __init__(self, problems: Problems):
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems


class Model(BaseModel):
    """Base of every config model: unknown keys rejected, immutable, camelCase keys in the stack file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


M = TypeVar("M", bound=Model)


def valid(model: M, problems: Problems) -> M:
    """The end of a model validator: ``model`` when ``problems`` is empty, else ``ConfigProblems`` raised."""
    if problems:
        raise ConfigProblems(problems)
    return model


def _dns_label(value: str) -> str:
    if len(value) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value):
        raise ValueError(
            "must be a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", part) for part in value.split(".")):
        raise ValueError("must be a DNS-1123 subdomain such as ai.example.com")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as error:
        raise ValueError(f"must be a CIDR such as 10.0.0.10/32 ({error})") from None


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Quantity = Annotated[str, BeforeValidator(normalize_quantity)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
PositiveInt = Annotated[int, Field(ge=1, strict=True)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
HttpsUrl = Annotated[str, Field(pattern=r"^https://[^\s/]+(/\S*)?$")]
EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]


def at_most(problems: Problems, small_path: str, small: str | None, large_path: str, large: str | None) -> None:
    """Record a problem if quantity ``small`` exceeds quantity ``large`` (None means unset: no rule)."""
    if small is not None and large is not None and parse_quantity(small) > parse_quantity(large):
        problems.append((small_path, f"must be <= {large_path} (got {small} > {large})"))


class ComputeResources(Model):
    """CPU and memory of a container."""

    cpu: Quantity
    """CPU, e.g. 500m or 2."""
    memory: Quantity
    """Memory, e.g. 512Mi."""


class RequestsWithinLimits(Model):
    """Base of a model with ``requests`` and ``limits`` (quantities, or ``ComputeResources`` compared by cpu and
    memory): each request must be at most its limit."""

    @model_validator(mode="after")
    def _limits_cover_requests(self: M) -> M:
        problems: Problems = []
        requests, limits = self.requests, self.limits  # type: ignore[attr-defined]
        if isinstance(requests, ComputeResources):
            for field in ("cpu", "memory"):
                at_most(
                    problems, f"requests.{field}", getattr(requests, field), f"limits.{field}", getattr(limits, field)
                )
        else:
            at_most(problems, "requests", requests, "limits", limits)
        return valid(self, problems)
