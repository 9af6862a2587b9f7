"""Read every ``ai-platform:*`` key of the running stack into a ``PlatformConfig``, or fail with one error.

The error lists every problem as ``stack dev: ai-platform:tenants[1].quota.gpu: <what is wrong> (allowed: …,
got: …) (Pulumi.dev.yaml:42)`` and is raised before the program registers any resource. Every problem at once: the
rules that span sections also run when other sections failed, on the sections that parsed (a rule that reads a
section that failed is skipped); an unknown key or value names the closest allowed one ("did you mean"), and a
misspelled required key is one problem, not two; each problem ends with its line in the stack file where the path
is found there holding the value that was loaded.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from .base import ConfigProblems, Problems
from .model import CROSS_CHECKS, PlatformConfig
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


def load(stack: str | None = None, raw: dict[str, Any] | None = None, stack_file: Path | None = None) -> PlatformConfig:
    """Validate the stack config (``raw`` defaults to the running program's) and return the typed model.

    ``stack_file`` (default ``Pulumi.<stack>.yaml`` of the project folder) is only read for the line numbers of the
    problems; a path whose value there differs from ``raw``'s (a test's changed copy, a value from elsewhere) gets
    none."""
    stack = stack or pulumi.get_stack()
    raw = raw_config() if raw is None else raw
    problems: Problems = [
        (
            key,
            "holds a secret but is stored in clear; set it with "
            f"`pulumi config set --secret {PREFIX}{key}` (or from Pulumi ESC)",
        )
        for key in raw
        if _is_secret_key(key) and not runtime_config.is_config_secret(PREFIX + key)
    ]
    sections = {k: v for k, v in raw.items() if not _is_secret_key(k)}
    try:
        cfg = PlatformConfig.model_validate(sections)
    except ValidationError as error:
        problems += field_problems(error)
        # The cross-field rules ran if every section parsed (their problems are the error at the top, loc ()).
        ran = any(item["loc"] == () for item in error.errors())
        checks = [*([] if ran else CROSS_CHECKS), *_stack_checks(stack, raw)]
        problems += _unless_missing(_parsed_sections(sections, error), checks)
    else:
        problems += [problem for check in _stack_checks(stack, raw) for problem in check(cfg)]
    if problems:
        where = StackFile(stack_file or PROJECT / f"Pulumi.{stack}.yaml", raw)
        lines = [f"stack {stack}: {PREFIX}{path}: {message}{where.suffix(path)}" for path, message in problems]
        raise ConfigError(f"invalid stack config ({_count(len(lines), 'problem')}):\n" + "\n".join(lines))
    return cfg


PROJECT = Path(__file__).resolve().parents[1]
"""The project folder: ``Pulumi.yaml``, ``__main__.py`` and the stack files ``Pulumi.<stack>.yaml``."""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


Check = Callable[[PlatformConfig], Problems]


def _stack_checks(stack: str, raw: dict[str, Any]) -> list[Check]:
    """The rules beyond the model: the strict removal check and where the secrets come from."""

    def token(cfg: PlatformConfig) -> Problems:
        if cfg.secrets.source == "external-secrets" and "huggingFaceToken" in raw:
            return [
                (
                    "huggingFaceToken",
                    "secrets come from the external store (secrets.source external-secrets): put the token at "
                    "<keyPrefix>/huggingface-token and set secrets.huggingFaceToken: true",
                )
            ]
        return []

    return [lambda cfg: removal_problems(stack, cfg), token, lambda cfg: _receiver_secret_problems(cfg, raw)]


class MissingSection(Exception):
    """A rule read a section of a partial config that failed validation: the rule is skipped."""


class _PartialConfig(PlatformConfig):
    """The sections of a stack config that parsed; reading one that did not raises ``MissingSection``."""

    def __getattr__(self, name: str) -> Any:
        if name in PlatformConfig.model_fields:
            raise MissingSection(name)
        return super().__getattr__(name)  # type: ignore[misc]


def _parsed_sections(sections: dict[str, Any], error: ValidationError) -> PlatformConfig:
    """The sections that parsed (validated one by one) and the defaults of those not given; no cross-field rule
    has run on them."""
    failed = {item["loc"][0] for item in error.errors() if item["loc"]}
    values, missing = {}, []
    for name, field in PlatformConfig.model_fields.items():
        keys = [key for key in (field.alias, name) if key in sections]
        if failed & {field.alias, name}:
            missing.append(name)
        elif keys:
            try:
                values[name] = _section_adapter(name).validate_python(sections[keys[0]])
            except ValidationError:  # valid in the whole model, not alone: do not guess
                missing.append(name)
    partial = _PartialConfig.model_construct(**values)
    for name in missing:
        partial.__dict__.pop(name, None)
    return partial


@functools.cache
def _section_adapter(name: str) -> TypeAdapter:
    return TypeAdapter(PlatformConfig.model_fields[name].rebuild_annotation())


def _unless_missing(partial: PlatformConfig, checks: list[Check]) -> Problems:
    """The problems of each check on ``partial``, skipping those that read a section that failed."""
    problems: Problems = []
    for check in checks:
        try:
            problems += check(partial)
        except MissingSection:
            continue
    return problems


def _receiver_secret_problems(cfg: PlatformConfig, raw: dict[str, Any]) -> Problems:
    """Alert receivers whose credential is missing (source pulumi) or set where the store holds it; secret keys of
    no receiver."""
    wanted = {
        RECEIVER_SECRET_PREFIX + name: name for name, receiver in cfg.alert_receivers.items() if receiver.needs_secret
    }
    external = cfg.secrets.source == "external-secrets"
    problems: Problems = [
        (
            key,
            f"no alert receiver {key[len(RECEIVER_SECRET_PREFIX) :]!r} with a credential (receivers: "
            f"{', '.join(wanted.values()) or 'none'})",
        )
        for key in raw
        if key.startswith(RECEIVER_SECRET_PREFIX) and key not in wanted
    ]
    for key, name in wanted.items():
        if external and key in raw:
            problems.append(
                (
                    key,
                    "secrets come from the external store (secrets.source external-secrets): put it "
                    f"at <keyPrefix>/alertmanager-receivers, property {name}",
                )
            )
        elif not external and key not in raw:
            problems.append(
                (
                    key,
                    f"alert receiver {name!r} needs its credential; set it with `pulumi config set --secret {PREFIX}{key}`",
                )
            )
    return problems


def receiver_secret(name: str) -> pulumi.Output | None:
    """The credential of alert receiver ``name`` (Pulumi secret ``alertReceiver-<name>``), or None."""
    return pulumi.Config(PREFIX.rstrip(":")).get_secret(RECEIVER_SECRET_PREFIX + name)


def secret(key: str) -> pulumi.Output | None:
    """A secret config value (one of ``SECRET_KEYS``) as a secret Output, or None when the stack has none."""
    return pulumi.Config(PREFIX.rstrip(":")).get_secret(key)


def field_problems(error: ValidationError) -> Problems:
    """(path below ``ai-platform:``, message) per problem in a validation error; an unknown key that is the
    misspelling of a missing required key is one problem (the missing key is not listed)."""
    items = error.errors()
    missing = {item["loc"] for item in items if item["type"] == "missing"}
    suggested: dict[tuple, str] = {}  # loc of an unknown key -> the key it probably meant
    for item in items:
        loc = item["loc"]
        if item["type"] == "extra_forbidden" and isinstance(loc[-1], str):
            absent = [m[-1] for m in missing if m[:-1] == loc[:-1] and isinstance(m[-1], str)]
            match = _closest(loc[-1], absent) or _closest(loc[-1], _allowed_keys(loc[:-1]))
            if match:
                suggested[loc] = match
    meant = {loc[:-1] + (key,) for loc, key in suggested.items()}
    problems: Problems = []
    for item in items:
        loc = item["loc"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigProblems):
            problems += [(_path(loc, sub), _did_you_mean(message)) for sub, message in cause.problems]
        elif loc not in meant or item["type"] != "missing":
            message = _message(item)
            if loc in suggested:
                message += f" (did you mean {suggested[loc]!r}?)"
            problems.append((_path(loc), _did_you_mean(message)))
    return problems


def _closest(word: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1)
    return matches[0] if matches else None


_NOT_ALLOWED = re.compile(r"not an allowed value \(allowed: (?P<allowed>.*), got: '(?P<got>[^']*)'\)$")


def _did_you_mean(message: str) -> str:
    """A value not among the allowed ones (``not an allowed value (allowed: 'a' or 'b', got: 'x')``, from a
    ``Literal`` or a rule) names the closest allowed value, if one is close; not for numbers such as versions."""
    found = _NOT_ALLOWED.search(message)
    if not found or not re.search(r"[A-Za-z]", found["got"]):
        return message
    match = _closest(found["got"], re.findall(r"'([^']*)'", found["allowed"]))
    return f"{message} (did you mean {match!r}?)" if match else message


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
    return text.lstrip(".")


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


class StackFile:
    """Where config paths are in a stack file (``Pulumi.<stack>.yaml``): ``locate(path) -> line | None``."""

    def __init__(self, path: Path, raw: dict[str, Any]):
        self.name, self.raw = path.name, raw
        try:
            document = yaml.compose(path.read_text(), Loader=yaml.CSafeLoader)
        except (OSError, yaml.YAMLError):
            document = None
        entry = _entry(document, "config") if document is not None else None
        self.config = entry[1] if entry else None

    def locate(self, path: str) -> int | None:
        """The line of ``path`` (``tenants[0].quota.gpu``, below ``ai-platform:``) in the stack file, else of the
        nearest section or entry above it that is there (a missing key: where it belongs); None when the file
        is missing or holds another value there than the config that was loaded."""
        parts = _parts(path)
        node, found = self.config, []  # (line, node) of each part found, in order
        for depth, part in enumerate(parts):
            entry = _entry(node, f"{PREFIX}{part}" if depth == 0 else part)
            if entry is None:
                break
            found.append(entry)
            node = entry[1]
        if not found:
            return None
        line, node = found[-1]
        return line if self._same(node, parts[: len(found)]) else None

    def suffix(self, path: str) -> str:
        line = self.locate(path)
        return f" ({self.name}:{line})" if line else ""

    def _same(self, node: yaml.Node, parts: list[str | int]) -> bool:
        """Whether the file holds at ``parts`` the value that was loaded (a structured value decoded; a scalar of the
        top level as the engine passes it, a string; an encrypted value: whatever it decrypts to)."""
        loaded: Any = self.raw
        for part in parts:
            try:
                loaded = loaded[part]
            except (KeyError, IndexError, TypeError):
                return False
        try:
            held = yaml.SafeLoader("").construct_object(node, deep=True)
        except yaml.YAMLError:
            return False
        if isinstance(held, dict) and set(held) == {"secure"}:
            return True
        if held == loaded:
            return True
        as_passed = json.dumps(held) if isinstance(held, bool) else str(held)  # how the engine passes a scalar
        return isinstance(loaded, str) and not isinstance(held, (dict, list)) and as_passed == loaded


def _entry(node: yaml.Node | None, part: str | int) -> tuple[int, yaml.Node] | None:
    """(1-based line, value node) of key ``part`` of a mapping node or item ``part`` of a sequence node."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return key.start_mark.line + 1, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def _parts(path: str) -> list[str | int]:
    """``tenants[0].quota.counts["a/b"]`` -> ``["tenants", 0, "quota", "counts", "a/b"]`` (as ``_path`` writes
    them); the first part is a whole top-level key (``alertReceiver-team``)."""
    top = re.match(r"[^.\[]+", path)
    if not top:
        return []
    parts: list[str | int] = [top[0]]
    position = top.end()
    while position < len(path):
        match = _PART.match(path, position)
        if not match:
            break
        name, index, quoted = match.groups()
        parts.append(name if name is not None else int(index) if index is not None else json.loads(quoted))
        position = match.end()
    return parts
