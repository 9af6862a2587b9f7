"""Read every ``ai-platform:*`` key of the running stack into a ``PlatformConfig``, or fail with one error.

The error lists every problem as ``stack dev: ai-platform:tenants[1].quota.gpu: <what is wrong> (allowed: …,
got: …)`` and is raised before the program registers any resource.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .base import ConfigProblems
from .model import PlatformConfig
from .removals import removal_problems

PREFIX = "ai-platform:"
# Keys that hold secrets: kept out of the typed model, read only as Pulumi secrets (``secret()``).
SECRET_KEYS = {
    "huggingFaceToken": "Hugging Face token the model downloads use for gated models",
}
# One more per alert receiver with a credential (``PlatformConfig.alert_receivers``): ``alertReceiver-<receiver>``.
RECEIVER_SECRET_PREFIX = "alertReceiver-"


def _is_secret_key(key: str) -> bool:
    return key in SECRET_KEYS or key.startswith(RECEIVER_SECRET_PREFIX)


class ConfigError(pulumi.RunError):
    """The stack config is invalid; the message lists every problem, one per line."""


def raw_config() -> dict[str, Any]:
    """Every ``ai-platform:*`` key the engine passed to the program, structured values decoded from JSON."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw = {}
    for key, value in merged.items():
        if key.startswith(PREFIX):
            if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
                value = json.loads(value)
            raw[key[len(PREFIX) :]] = value
    return raw


def load(stack: str | None = None, raw: dict[str, Any] | None = None) -> PlatformConfig:
    """Validate the stack config (``raw`` defaults to the running program's) and return the typed model."""
    stack = stack or pulumi.get_stack()
    raw = raw_config() if raw is None else raw
    lines = [
        f"stack {stack}: {PREFIX}{key}: holds a secret but is stored in clear; set it with "
        f"`pulumi config set --secret {PREFIX}{key}` (or from Pulumi ESC)"
        for key in raw
        if _is_secret_key(key) and not runtime_config.is_config_secret(PREFIX + key)
    ]
    try:
        cfg = PlatformConfig.model_validate({k: v for k, v in raw.items() if not _is_secret_key(k)})
    except ValidationError as error:
        lines += [f"stack {stack}: {problem}" for problem in describe(error)]
    else:
        lines += [f"stack {stack}: {PREFIX}{path}: {message}" for path, message in removal_problems(stack, cfg)]
        if cfg.secrets.source == "external-secrets" and "huggingFaceToken" in raw:
            lines.append(
                f"stack {stack}: {PREFIX}huggingFaceToken: secrets come from the external store (secrets.source "
                "external-secrets): put the token at <keyPrefix>/huggingface-token and set "
                "secrets.huggingFaceToken: true"
            )
        lines += [f"stack {stack}: {PREFIX}{problem}" for problem in _receiver_secret_problems(cfg, raw)]
    if lines:
        raise ConfigError(f"invalid stack config ({len(lines)} problems):\n" + "\n".join(lines))
    return cfg


def _receiver_secret_problems(cfg: PlatformConfig, raw: dict[str, Any]) -> list[str]:
    """Alert receivers whose credential is missing (source pulumi) or set where the store holds it; secret keys of
    no receiver."""
    wanted = {
        RECEIVER_SECRET_PREFIX + name: name for name, receiver in cfg.alert_receivers.items() if receiver.needs_secret
    }
    external = cfg.secrets.source == "external-secrets"
    problems = [
        f"{key}: no alert receiver {key[len(RECEIVER_SECRET_PREFIX) :]!r} with a credential (receivers: "
        f"{', '.join(wanted.values()) or 'none'})"
        for key in raw
        if key.startswith(RECEIVER_SECRET_PREFIX) and key not in wanted
    ]
    for key, name in wanted.items():
        if external and key in raw:
            problems.append(
                f"{key}: secrets come from the external store (secrets.source external-secrets): put it "
                f"at <keyPrefix>/alertmanager-receivers, property {name}"
            )
        elif not external and key not in raw:
            problems.append(
                f"{key}: alert receiver {name!r} needs its credential; set it with "
                f"`pulumi config set --secret {PREFIX}{key}`"
            )
    return problems


def receiver_secret(name: str) -> pulumi.Output | None:
    """The credential of alert receiver ``name`` (Pulumi secret ``alertReceiver-<name>``), or None."""
    return pulumi.Config(PREFIX.rstrip(":")).get_secret(RECEIVER_SECRET_PREFIX + name)


def secret(key: str) -> pulumi.Output | None:
    """A secret config value (one of ``SECRET_KEYS``) as a secret Output, or None when the stack has none."""
    return pulumi.Config(PREFIX.rstrip(":")).get_secret(key)


def describe(error: ValidationError) -> list[str]:
    """One ``ai-platform:<path>: <message>`` line per problem in a validation error."""
    lines = []
    for item in error.errors():
        loc = item["loc"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigProblems):
            lines += [f"{_path(loc, sub)}: {message}" for sub, message in cause.problems]
        else:
            lines.append(f"{_path(loc)}: {_message(item)}")
    return lines


def _path(loc: tuple, sub: str = "") -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for "the key itself is invalid"
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
    if sub:
        text += sub if sub.startswith("[") else f".{sub}"
    return PREFIX + text.lstrip(".")


def _message(item: ErrorDetails) -> str:
    kind, ctx, got = item["type"], item.get("ctx") or {}, _show(item.get("input"))
    if kind == "extra_forbidden":
        return f"unknown key (allowed: {', '.join(_allowed_keys(item['loc'][:-1]))})"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"not an allowed value (allowed: {ctx['expected']}, got: {got})"
    if kind == "value_error":
        return f"{ctx['error']} (got: {got})"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        limit = next(iter(ctx.values()))
        return f"must be {bound} {limit} (allowed: {bound} {limit}, got: {got})"
    return f"{item['msg'][0].lower()}{item['msg'][1:]} (got: {got})"


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys a stack file may use at ``loc``, found by walking the model's type annotations."""
    annotation: Any = PlatformConfig
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next((f for f in annotation.model_fields.values() if f.alias == part), None)
            annotation = field.annotation if field else None
        else:
            args = typing.get_args(annotation)
            annotation = args[-1] if args else None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sorted(f.alias or name for name, f in annotation.model_fields.items())
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that has the keys."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation
