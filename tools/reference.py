"""The config reference and the stack file JSON Schema, generated from the config models (``config/``), and the
platform profiles' page, generated from ``platforms/``.

    python -m tools.reference            # rewrite docs/config-reference.md, docs/stack-schema.json, docs/platforms.md
    python -m tools.reference --check    # exit 1 when either committed file differs from what the models give

Everything comes from the models: keys as a stack file spells them (camelCase aliases), types and their bounds,
the values of ``Literal``s, defaults, required marks, and the field docstrings (pydantic's
``use_attribute_docstrings``: the docstring under a field is its description). A field without a docstring gets
its model's class docstring. The rules that read more than one section are the docstrings of
``config.model.CROSS_CHECKS``; the secret keys are ``config.loader``'s. ``tests/test_reference.py`` fails when
the committed files are stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

import platforms
from components.serving import engines
from config import base, loader
from config.model import CROSS_CHECKS, PlatformConfig
from config.protection import TENANT_OWNER, DataProtection
from config.quantity import _QUANTITY, normalize_quantity
from config.services import protected_services
from config.serving import Endpoint

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path("docs/config-reference.md")
SCHEMA = Path("docs/stack-schema.json")
PLATFORMS = Path("docs/platforms.md")
PREFIX = loader.PREFIX

# Field types the page names by what they are rather than by their validator.
NAMED_TYPES: list[tuple[Any, str]] = [
    (base.Quantity, "Kubernetes quantity (`500m`, `4`, `64Gi`)"),
    (base.DnsLabel, "DNS-1123 label"),
    (base.DnsSubdomain, "DNS-1123 subdomain"),
    (base.Cidr, "CIDR"),
    (base.HttpUrl, "http(s) URL"),
    (base.HttpsUrl, "https URL"),
    (base.EmailAddress, "e-mail address"),
]

# Values a validator restricts beyond the type (a registry of kinds): (model, field) -> (words for the page,
# JSON Schema of one value). Derived from the registries, so a new engine or service shows up by itself.
RestrictedValues = Callable[[], tuple[str, dict[str, Any]]]


def _engines() -> tuple[str, dict[str, Any]]:
    return _one_of(engines.names()), {"type": "string", "enum": engines.names()}


def _decommission() -> tuple[str, dict[str, Any]]:
    services = list(protected_services())
    return (
        f"list of: {_one_of(services)} or `tenant:<name>`",
        {"type": "array", "items": {"anyOf": [{"enum": services}, {"type": "string", "pattern": _TENANT_OWNER}]}},
    )


_TENANT_OWNER = f"^{TENANT_OWNER.pattern}$"
RESTRICTED: dict[tuple[type[BaseModel], str], RestrictedValues] = {
    (Endpoint, "engine"): _engines,
    (DataProtection, "decommission"): _decommission,
}


# --- the page ---------------------------------------------------------------------------------------------------


def _text(doc: str | None) -> str:
    """A docstring as one Markdown line: reST double backticks as code spans, whitespace collapsed."""
    return re.sub(r"\s+", " ", (doc or "").replace("``", "`")).strip()


def _one_of(values: typing.Iterable[Any]) -> str:
    return "one of " + ", ".join(f"`{_scalar(v)}`" for v in values)


def _scalar(value: Any) -> str:
    """A value as YAML writes it, on one line."""
    if value is None:
        return "null"
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _bounds(metadata: typing.Iterable[Any]) -> list[str]:
    words = []
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            words.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            words.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            words.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            words.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.MinLen):
            words.append("non-empty" if item.min_length == 1 else f"at least {item.min_length} characters")
        elif isinstance(item, annotated_types.MaxLen):
            words.append(f"at most {item.max_length} characters")
        elif getattr(item, "pattern", None):
            words.append(f"matching `{item.pattern}`")
        elif hasattr(item, "metadata"):  # a pydantic FieldInfo inside Annotated: its constraints
            words += _bounds(item.metadata)
    return words


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def describe_type(annotation: Any) -> str:
    """A field type in words: ``integer ≥ 1``, ``list of DNS-1123 label``, ``one of `a`, `b```, ``object``."""
    annotation = _unwrap_optional(annotation)
    for named, words in NAMED_TYPES:
        if annotation == named:
            return words
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        inner, bounds = describe_type(args[0]), _bounds(args[1:])
        return f"{inner} ({', '.join(bounds)})" if bounds else inner
    if origin is typing.Literal:
        return _one_of(args)
    if origin is list:
        return f"list of {describe_type(args[0])}"
    if origin is dict:
        return f"map of {describe_type(args[0])} to {describe_type(args[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args if a is not type(None))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(annotation, str(annotation))


def _models_in(annotation: Any, path: str) -> Iterator[tuple[type[BaseModel], str]]:
    """The models a field's type holds and the path suffix of their keys: ``[]`` in a list, ``.<key>`` in a map."""
    annotation = _unwrap_optional(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _models_in(args[0], path)
    elif origin is list:
        yield from _models_in(args[0], path + "[]")
    elif origin is dict:
        yield from _models_in(args[1], path + ".<key>")
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _models_in(arg, path)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, path


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "default: unset"
    if isinstance(value, BaseModel):
        try:
            if value == type(value)():
                return "default: the defaults of its keys"
        except ValueError:  # a model with required keys
            pass
        value = value.model_dump(by_alias=True)
    return f"default `{_scalar(value)}`"


def keys(model: type[BaseModel], path: str) -> Iterator[str]:
    """One Markdown list item per key of ``model`` (at ``path``) and, depth first, of the models it holds."""
    hints = typing.get_type_hints(model, include_extras=True)
    for name, field in model.model_fields.items():
        annotation = hints[name]
        at = f"{path}.{field.alias}"
        nested = list(_models_in(annotation, at))
        doc = field.description or (nested[0][0].__doc__ if nested else None)
        kind = RESTRICTED[(model, name)]()[0] if (model, name) in RESTRICTED else describe_type(annotation)
        if typing.get_origin(_unwrap_optional(annotation)) is list and nested:
            kind = "list of objects"
        about = f": {_text(doc)}" if doc else ""
        yield f"- **`{at}`** ({kind}; {_default(field)}){about}\n"
        for sub_model, sub_path in nested:
            yield from keys(sub_model, sub_path)


INTRO = """\
# Config reference

<!-- Generated by `python -m tools.reference` from the config models in config/: do not edit by hand. -->

Every key a stack file (`Pulumi.<stack>.yaml`) may set under `config:`, one section per `ai-platform:<key>`,
generated from the config models' field docstrings, types and defaults (`python -m tools.reference`; a test
fails when this page is stale). Keys are written as in the stack file (camelCase); nested keys as dotted paths,
`[]` marking the entries of a list (`models[].traffic.timeout`). **required** means: whenever the object that
holds the key is given. Unknown keys are errors. A Kubernetes quantity may be written as a number (`2`, `0.5`)
or a string (`500m`, `64Gi`).

## Completion and validation in your editor

[`stack-schema.json`](stack-schema.json) is a JSON Schema of stack files, generated from the same models: with
the [YAML language server](https://github.com/redhat-developer/yaml-language-server) (VS Code's YAML
extension by Red Hat, Neovim, Emacs, JetBrains via LSP) it gives completion, hover documentation and validation
of every `ai-platform:` key as you type. The cross-section rules below and the removal check are not in the
schema: `python -m tools.render --stack <stack>` checks everything.

Either put a modeline as the first line of a stack file (the path is relative to that file):

```yaml
# yaml-language-server: $schema=docs/stack-schema.json
```

or map the stack files to the schema in the workspace's `.vscode/settings.json`:

```json
{
  "yaml.schemas": {
    "./docs/stack-schema.json": ["Pulumi.*.yaml"]
  }
}
```

(`Pulumi.*.yaml` matches the stack files, not the project file `Pulumi.yaml`.) Other JSON Schema validators
work too, e.g. `check-jsonschema --schemafile docs/stack-schema.json Pulumi.dev.yaml`.
"""


def reference() -> str:
    """The config reference page."""
    parts = [INTRO]
    hints = typing.get_type_hints(PlatformConfig, include_extras=True)
    for name, field in PlatformConfig.model_fields.items():
        section = f"{PREFIX}{field.alias}"
        nested = list(_models_in(hints[name], ""))
        model, suffix = nested[0]
        about = _text(field.description).split(": ", 1)[-1].rstrip(".")
        shape = "a list, one entry per item" if suffix.endswith("[]") else "an object"
        required = "required" if field.is_required() else "optional"
        parts.append(
            f"\n## `{section}`\n\n{about[:1].upper()}{about[1:]} ({shape}, {required}). {_text(model.__doc__)}\n\n"
        )
        parts += keys(model, f"{field.alias}{suffix}")
    parts.append(
        "\n## Secrets\n\nKept out of the section models and read only as Pulumi secrets: set them with "
        "`pulumi config set --secret <key>` (the stack file then holds `{secure: ...}`); a value in clear is "
        "an error.\n\n"
    )
    for key, about in loader.SECRET_KEYS.items():
        parts.append(f"- **`{PREFIX}{key}`**: {_text(about)}\n")
    parts.append(
        f"- **`{PREFIX}{loader.RECEIVER_SECRET_PREFIX}<receiver>`**: the credential of an alert receiver "
        "that needs one (`monitoring.receivers[].name`, or `tenant-<tenant>` for `tenants[].alertReceiver`): "
        "Slack or webhook URL, PagerDuty routing key, SMTP password\n"
    )
    parts.append("\n## Rules across sections\n\nChecked after every section parsed, in this order:\n\n")
    for check in CROSS_CHECKS:
        parts.append(f"- **{check.__module__.rsplit('.', 1)[-1]}**: {_text(check.__doc__)}\n")
    return "".join(parts)


# --- the JSON Schema ----------------------------------------------------------------------------------------------

DEFINITIONS = "definitions"  # draft-07, what the YAML language server implements


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, with Kubernetes quantities as a stack file may write them (number or string)."""

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> dict[str, Any]:
        if schema["function"].get("function") is normalize_quantity:
            pattern = re.sub(r"\(\?P<\w+>", "(", _QUANTITY.pattern).replace("[+-]?", r"\+?")
            return {"anyOf": [{"type": "string", "pattern": pattern}, {"type": "number", "minimum": 0}]}
        return super().function_before_schema(schema)


SECURE = {
    "type": "object",
    "description": "A Pulumi secret: set it with `pulumi config set --secret <key>`.",
    "properties": {"secure": {"type": "string", "minLength": 1}},
    "required": ["secure"],
    "additionalProperties": False,
}


def _tidy(node: Any) -> Any:
    """Descriptions in Markdown; property titles dropped (the keys say it); ``$ref`` alone in its object (draft-07
    ignores its siblings), the field's description and default kept around it in ``allOf``."""
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _tidy(value) for key, value in node.items()}
    if isinstance(node.get("description"), str):
        node["description"] = _text(node["description"])
    if isinstance(node.get("properties"), dict):
        for prop in node["properties"].values():
            if isinstance(prop, dict):
                prop.pop("title", None)
    if "$ref" in node and len(node) > 1:
        node = {"allOf": [{"$ref": node.pop("$ref")}], **node}
    return node


def _literal(text: str) -> str:
    """``text`` as a regular expression that both Python and ECMAScript (``u`` flag: no ``\\-``) read literally."""
    return re.sub(r"([.^$*+?()[\]{}|\\])", r"\\\1", text)


def schema() -> dict[str, Any]:
    """The JSON Schema of a stack file: Pulumi's stack keys, ``config:`` with one property per section."""
    full = PlatformConfig.model_json_schema(
        by_alias=True, ref_template=f"#/{DEFINITIONS}/{{model}}", schema_generator=_Generator
    )
    definitions = full.pop("$defs")
    for (model, name), values in RESTRICTED.items():
        alias = model.model_fields[name].alias or name
        prop = definitions[model.__name__]["properties"][alias]
        prop.update(values()[1])
        prop.pop("anyOf", None)
    sections = {f"{PREFIX}{key}": value for key, value in full["properties"].items()}
    secrets = {
        f"{PREFIX}{key}": {"$ref": f"#/{DEFINITIONS}/Secure", "description": about}
        for key, about in loader.SECRET_KEYS.items()
    }
    receiver = f"^{_literal(PREFIX + loader.RECEIVER_SECRET_PREFIX)}[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    return _tidy(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "ai-platform stack file (Pulumi.<stack>.yaml)",
            "description": "Generated by `python -m tools.reference` from the config models; see "
            "docs/config-reference.md.",
            "type": "object",
            "properties": {
                "config": {
                    "type": "object",
                    "description": "The stack's config: one `ai-platform:<key>` per section; keys of other "
                    "namespaces (e.g. `kubernetes:`) pass through.",
                    "properties": {**sections, **secrets},
                    "patternProperties": {
                        receiver: {"$ref": f"#/{DEFINITIONS}/Secure", "description": "An alert receiver's credential."},
                        f"^(?!{_literal(PREFIX)})[^:]+:.+$": {},
                    },
                    "additionalProperties": False,
                    "required": [f"{PREFIX}{key}" for key in full.get("required", [])],
                },
                "secretsprovider": {"type": "string"},
                "encryptedkey": {"type": "string"},
                "encryptionsalt": {"type": "string"},
                "environment": {"description": "Pulumi ESC environments the stack imports."},
            },
            "additionalProperties": False,
            DEFINITIONS: {**definitions, "Secure": SECURE},
        }
    )


PLATFORMS_INTRO = """\
# Platform profiles

<!-- Generated by `python -m tools.reference` from platforms/: edit the profiles, not this page. -->

Each managed platform decides in its own way whether the platform comes up: which pods it admits where, where the
nodes keep CNI and driver files, which load balancer a Service gets, whether NetworkPolicies are enforced at all.
`cluster.platform` (`gke`, `eks`, `aks` or `generic`) picks the profile that owns those rules: one module per
platform in `platforms/`, each rule with its source. The profile adds what the platform needs to the releases and
objects, refuses a config that cannot work there before anything is registered (stack, config path, why), and
lists what the profile changed and what must be done on the cluster first: the stack output `platformProfile` and
plan.md's "Platform profile" section (`make render`), generated from the rules that apply to the stack.

Dev runs as `gke`, prod as `eks`; `examples/Pulumi.aks.yaml` and `examples/Pulumi.generic.yaml` are the other two,
rendered and validated in CI (`make validate STACK=aks STACKS=examples`).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "—"


def platforms_page() -> str:
    """docs/platforms.md: per profile, its NetworkPolicy providers, workload identities, storage convention and the
    table of its rules (requirement, source, what the program does or refuses, what the user does first)."""
    lines = [PLATFORMS_INTRO]
    for profile in platforms.PROFILES.values():
        module = sys.modules[type(profile).__module__]
        about = (module.__doc__ or "").split("\n\n", 1)[-1]  # the docstring past its title line
        lines += [f"## {profile.title} (`cluster.platform: {profile.name}`)", "", _text(about), ""]
        if profile.network_policy_providers:
            lines += ["`cluster.networkPolicy` (required):", ""]
            lines += [f"- `{value}`: {how}" for value, how in profile.network_policy_providers.items()]
        else:
            lines += ["`cluster.networkPolicy`: optional, any provider (the cluster must enforce NetworkPolicies)."]
        lines += [
            "",
            "Workload identities (`serviceAccountAnnotations`; another system's annotations are refused):",
            "",
        ]
        lines += [
            f"- {identity.name}: "
            + (
                f"`{identity.annotation}`, e.g. `{identity.example}`"
                if identity.annotation
                else f"`{identity.example}`"
            )
            + (
                f"; pods labelled `{', '.join(f'{k}={v}' for k, v in identity.pod_labels.items())}`"
                if identity.pod_labels
                else ""
            )
            + (
                f"; egress to {', '.join(f'{cidr} port {port}' for cidr, port in identity.egress)}"
                if identity.egress
                else ""
            )
            + f" ({identity.source})"
            for identity in profile.identities
        ]
        rwx = (
            f"`{profile.rwx_storage_class}`"
            if profile.rwx_storage_class
            else "none: name one in `serving.storageClass`"
        )
        lines += ["", f"ReadWriteMany storage class for shared model caches: {rwx}.", ""]
        lines += [
            "| requirement | source | what the program does | what it refuses | what you do first |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(rule.requirement)} | {_cell(rule.source)} | "
            + (
                f"{_cell(rule.program)} | {_cell(rule.refuses)} | {_cell(rule.user)} |"
                if rule.program or rule.refuses or rule.user
                else "met by the platform's design (see the requirement) | — | — |"
            )
            for rule in profile.rules
        ]
        lines.append("")
    return "\n".join(lines)


def outputs() -> dict[Path, str]:
    """What the generator writes, by path relative to the project root."""
    return {
        REFERENCE: reference(),
        SCHEMA: json.dumps(schema(), indent=2, ensure_ascii=False) + "\n",
        PLATFORMS: platforms_page(),
    }


def stale(root: Path = ROOT) -> list[Path]:
    """The generated files under ``root`` that differ from what the models give now."""
    return [
        path for path, text in outputs().items() if not (root / path).is_file() or (root / path).read_text() != text
    ]


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.reference", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed file is stale; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale(root)
        for path in out_of_date:
            print(f"{path} is stale: run `python -m tools.reference`", file=sys.stderr)
        return 1 if out_of_date else 0
    for path, text in outputs().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
