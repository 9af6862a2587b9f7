"""Schema tier: check rendered Kubernetes objects and Helm values against upstream schemas.

* Built-in Kubernetes kinds are checked with ``kubernetes-validate`` (the Kubernetes OpenAPI schemas, strict:
  unknown fields are errors) for the cluster's minor version.
* Custom resources are checked against the CustomResourceDefinitions the upstream charts install
  (``<upstream>/**/crds/*.yaml``), converted to JSON Schema the way the API server applies a structural schema.
* Helm values are checked key by key against the chart's upstream ``values.yaml`` (and its subcharts'; Istio's
  defaults under ``_internal_defaults_do_not_set`` count as top-level keys; a key the file documents only as a
  commented-out example inside its parent mapping, such as SeaweedFS's ``s3.createBuckets``, counts too), and
  against ``values.schema.json`` where the chart ships one.

The upstream data folder is ``$AI_PLATFORM_UPSTREAM`` or ``<repo root>/../shared/upstream`` (see its SOURCES.md).
Its parsed YAML files (CRDs, values.yaml) are cached in ``build/.cache/validate/`` by content hash
(``cached_yaml_documents``): a warm run skips parsing them; ``make clean`` or deleting the folder empties it.

CLI: ``python -m tools.validate BUILD_DIR [--k8s-version 1.35]`` checks ``BUILD_DIR/manifests/**/*.yaml`` (one
object per file) and ``BUILD_DIR/helm/*.values.yaml`` (header comment ``# chart: <name>``, then the values).
"""

from __future__ import annotations

import argparse
import difflib
import functools
import hashlib
import json
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml
from kubernetes_validate.utils import VersionNotSupportedError, all_versions
from referencing import Registry, Resource

# API groups served by Kubernetes itself (all groups kubernetes-validate 1.37 has schemas for); anything else
# must come from a CRD. Note that e.g. gateway.networking.k8s.io is a CRD group, not a built-in one.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "admission.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "extensions",
        "flowcontrol.apiserver.k8s.io",
        "imagepolicy.k8s.io",
        "internal.apiserver.k8s.io",
        "lifecycle.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)

_MAX_MESSAGE = 300  # jsonschema messages quote the offending instance, which can be a whole pod spec


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML safe loader that also reads a bare ``=`` scalar (tag:yaml.org,2002:value) as the string "=".

    alertmanagerconfigs.monitoring.coreos.com has such an enum value, which plain safe_load rejects.
    """


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_yaml_documents(text: str) -> list[Any]:
    """Parse every document of a YAML stream, skipping empty ones."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]


# Parsed upstream YAML files, one pickle per file content: build/.cache/validate/<format>-<sha256 of the bytes>.pickle.
# Bump CACHE_FORMAT when what is stored changes (the loader, what load_yaml_documents returns).
CACHE_DIR = Path(__file__).resolve().parent.parent / "build" / ".cache" / "validate"
CACHE_FORMAT = f"1-pyyaml{yaml.__version__}"


def cached_yaml_documents(path: Path) -> list[Any]:
    """load_yaml_documents of an upstream file, from CACHE_DIR when it holds the file's content (a changed file has
    another sha256: it is parsed again); parsing stores the result there. An unreadable cache entry is parsed
    again; an unwritable cache folder only costs the parse."""
    data = path.read_bytes()
    entry = CACHE_DIR / f"{CACHE_FORMAT}-{hashlib.sha256(data).hexdigest()}.pickle"
    try:
        return pickle.loads(entry.read_bytes())
    except Exception:  # noqa: BLE001 - no entry or an unreadable one (pickle raises many kinds): parse again
        pass
    docs = load_yaml_documents(path.read_text())
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=CACHE_DIR, suffix=".tmp", delete=False) as tmp:
            tmp.write(pickle.dumps(docs, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp.name, entry)  # atomic: a concurrent reader sees the whole entry or none
    except OSError:
        pass
    return docs


def upstream_dir() -> Path:
    """The upstream reference data folder: $AI_PLATFORM_UPSTREAM, else <repo root>/../shared/upstream."""
    repo_root = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("AI_PLATFORM_UPSTREAM") or repo_root.parent / "shared" / "upstream")


# --------------------------------------------------------------------------------------------------------
# Kubernetes objects
# --------------------------------------------------------------------------------------------------------


@functools.cache
def _schema_versions() -> dict[str, str]:
    """Kubernetes minor versions kubernetes-validate ships schemas for: {"1.35": "1.35.0", ...}."""
    return {".".join(v.split(".")[:2]): v for v in all_versions()}


def _schema_version(k8s_version: str) -> str | None:
    """Map "1.35" (also "v1.35", "1.35.2") to the kubernetes-validate version "1.35.0"; None if unknown."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", str(k8s_version).strip())
    return _schema_versions().get(f"{match[1]}.{match[2]}") if match else None


def _unsupported_version(k8s_version: str) -> str:
    known = list(_schema_versions())
    return (
        f"unsupported Kubernetes version {k8s_version!r}: kubernetes-validate {kubernetes_validate.__version__}"
        f" has schemas for {known[0]} to {known[-1]}"
    )


def _json_path(parts: Iterable[Any]) -> str:
    """Format a jsonschema error path as "$.spec.containers[0].name"."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _short(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "..."


def _describe(obj: Any) -> str:
    """ "Kind namespace/name" (or "Kind name" when there is no namespace) for error messages."""
    if not isinstance(obj, dict):
        return f"<{type(obj).__name__}>"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name") or meta.get("generateName") or "<no name>"
    namespace = meta.get("namespace")
    kind = obj.get("kind") or "<no kind>"
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _drop_none(value: Any) -> Any:
    """Copy of value without mapping keys whose value is None, recursively (the API server drops them)."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


# How the harness and the renderer show a secret value (tools.harness.SECRET). pulumi-kubernetes marks a Secret's
# whole ``data``/``stringData`` secret, so the marker stands where a mapping belongs: it cannot be checked offline.
SECRET_MARKER = "[secret]"


def _drop_secrets(value: Any) -> Any:
    """Copy of value without mapping keys whose value is the secret marker, recursively."""
    if isinstance(value, dict):
        return {k: _drop_secrets(v) for k, v in value.items() if v != SECRET_MARKER}
    if isinstance(value, list):
        return [_drop_secrets(v) for v in value]
    return value


def _metadata_errors(obj: dict) -> list[str]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return ["$.metadata: missing or not a mapping"]
    if isinstance(meta.get("name"), str) and meta["name"]:
        return []
    if isinstance(meta.get("generateName"), str) and meta["generateName"]:
        return []
    return ["$.metadata.name: missing or not a non-empty string"]


@functools.cache
def _k8s_schema(filename: str, schema_version: str) -> Any:
    """One of kubernetes-validate's schema files, parsed once (it parses them, the definitions 1.5 MB, per call)."""
    return kubernetes_validate.utils.schema_contents(filename, schema_version)


@functools.cache
def _builtin_validator(schema_version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    """The validator ``kubernetes_validate.validate(obj, schema_version, strict=True)`` builds for a kind, built once.

    Its schema for ``apps/v1`` Deployment is ``v<version>-local-strict/deployment-apps-v1.json`` (a group's domain
    dropped), whose references point into ``_definitions.json`` of the same folder.
    """
    folder = f"kubernetes-json-schema/v{schema_version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = _k8s_schema(f"{folder}/{kind.lower()}-{group_version}.json", schema_version)
    except FileNotFoundError:
        version = ".".join(schema_version.split(".")[:2])
        raise kubernetes_validate.SchemaNotFoundError(kind=kind, version=version, api_version=api_version) from None
    definitions = _k8s_schema(f"{folder}/_definitions.json", schema_version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _builtin_errors(obj: dict, schema_version: str) -> list[str]:
    """Errors from kubernetes-validate's schemas (strict: unknown fields are errors). Like kubernetes-validate, the
    first error only."""
    try:
        validator = _builtin_validator(schema_version, obj["apiVersion"], obj["kind"])
    except (
        kubernetes_validate.SchemaNotFoundError,
        kubernetes_validate.InvalidSchemaError,
        VersionNotSupportedError,
    ) as e:
        return [f"$: {e.message}"]
    error = next(validator.iter_errors(obj), None)
    return [] if error is None else [f"{_json_path(error.absolute_path)}: {_short(error.message)}"]


@functools.cache
def _crd_files(root: Path) -> dict[str, tuple[Path, ...]]:
    """CRD files under root by API group, from their names: crds/<plural>.<group>.yaml (the CRD's name).

    Files whose name does not look like that are listed under "*" and always searched.
    """
    index: dict[str, list[Path]] = {}
    for path in sorted(root.glob("**/crds/*.yaml")):
        group = path.stem.split(".", 1)[1] if "." in path.stem else "*"
        index.setdefault(group, []).append(path)
    return {group: tuple(paths) for group, paths in index.items()}


@functools.cache
def _load_crd(path: Path) -> dict | None:
    """The CustomResourceDefinition in path, or None if the file holds something else."""
    docs = cached_yaml_documents(path)
    crds = [d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
    return crds[0] if crds else None


def find_crd(group: str, kind: str) -> tuple[Path, dict] | None:
    """(file, CRD) for the upstream CRD defining group/kind, or None."""
    files = _crd_files(upstream_dir())
    for path in files.get(group, ()) + files.get("*", ()):
        crd = _load_crd(path)
        if crd and crd["spec"].get("group") == group and crd["spec"].get("names", {}).get("kind") == kind:
            return path, crd
    return None


def _python_regex(pattern: str) -> str | None:
    """A CRD pattern (Go RE2 syntax) as a Python regex, or None if Python cannot compile it.

    RE2 allows a flag group such as ``(?i)`` anywhere (it lasts to the end of the enclosing group); Python only
    at the start, so it is moved there, which makes the whole pattern case-insensitive (slightly more lenient).
    """
    for candidate in (pattern, "(?i)" + pattern.replace("(?i)", "")):
        try:
            re.compile(candidate)
            return candidate
        except re.error:
            continue
    return None


def structural_to_json_schema(node: dict, structural: bool = True) -> dict:
    """Convert a CRD structural schema node to JSON Schema with the API server's semantics.

    * a node with ``properties`` rejects unknown fields (``additionalProperties: false``) unless it says
      ``x-kubernetes-preserve-unknown-fields: true`` or sets ``additionalProperties`` itself;
    * ``x-kubernetes-int-or-string`` allows an integer or a string;
    * ``x-kubernetes-embedded-resource`` allows apiVersion, kind and metadata;
    * ``nullable: true`` allows null;
    * Go regex patterns are made to compile in Python (see _python_regex).

    Inside anyOf/allOf/oneOf/not (structural=False) nodes only add value checks, so no additionalProperties
    is added there.
    """
    out = dict(node)
    if isinstance(node.get("properties"), dict):
        out["properties"] = {k: structural_to_json_schema(v, structural) for k, v in node["properties"].items()}
    for key in ("additionalProperties", "items", "not"):
        if isinstance(node.get(key), dict):
            out[key] = structural_to_json_schema(node[key], structural and key != "not")
    for key in ("anyOf", "allOf", "oneOf"):
        if isinstance(node.get(key), list):
            out[key] = [structural_to_json_schema(n, False) for n in node[key]]
    if isinstance(node.get("pattern"), str):
        out["pattern"] = _python_regex(node["pattern"])
        if out["pattern"] is None:
            del out["pattern"]
    if node.get("x-kubernetes-embedded-resource") and "properties" in node:
        out["properties"] = {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **out["properties"],
        }
    if (
        structural
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable"):
        out = {"anyOf": [{"type": "null"}, out]}
    return out


@functools.cache
def _crd_validator(path: Path, version: str) -> jsonschema.Draft7Validator:
    """JSON Schema validator for one version of the CRD in path (the top-level metadata is checked apart).

    Top-level metadata is only required to be a mapping here; validate_object checks metadata.name.
    """
    crd = _load_crd(path)
    assert crd is not None
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    raw = (served.get("schema") or crd["spec"].get("validation") or {}).get("openAPIV3Schema") or {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    schema = structural_to_json_schema(raw)
    if isinstance(schema.get("properties"), dict):  # every object has these; some CRDs (Istio's) omit them
        schema["properties"] = {
            **schema["properties"],
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
        }
    return jsonschema.Draft7Validator(schema)


def _custom_errors(obj: dict, group: str, version: str, kind: str) -> list[str]:
    found = find_crd(group, kind)
    if found is None:
        return [f"$: no schema for {obj['apiVersion']} {kind}"]
    path, crd = found
    served = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
    if version not in served:
        return [
            f"$.apiVersion: {obj['apiVersion']} is not served by CRD {crd['metadata']['name']}"
            f" (served: {', '.join(served) or 'none'})"
        ]
    errors = sorted(_crd_validator(path, version).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{_json_path(e.absolute_path)}: {_short(e.message)}" for e in errors]


def validate_object(obj: dict, k8s_version: str) -> list[str]:
    """Check one Kubernetes object; return error strings (empty list = valid).

    Each error reads "Kind namespace/name: $.json.path: message". k8s_version is a minor version like "1.35".
    """
    label = _describe(obj)
    if _schema_version(k8s_version) is None:
        return [f"{label}: {_unsupported_version(k8s_version)}"]
    if not isinstance(obj, dict):
        return [f"{label}: $: not a mapping"]
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not (isinstance(api_version, str) and api_version and isinstance(kind, str) and kind):
        return [f"{label}: $: apiVersion and kind must be non-empty strings"]
    obj = _drop_none(_drop_secrets(obj))
    group, _, version = api_version.rpartition("/")
    errors = _metadata_errors(obj)
    if group in BUILTIN_GROUPS:
        errors += _builtin_errors(obj, _schema_version(k8s_version))
    else:
        errors += _custom_errors(obj, group, version, kind)
    return [f"{label}: {e}" for e in errors]


# --------------------------------------------------------------------------------------------------------
# Helm values
# --------------------------------------------------------------------------------------------------------


@functools.cache
def _read_values(chart_dir: Path) -> dict:
    path = chart_dir / "values.yaml"
    docs = cached_yaml_documents(path) if path.is_file() else []
    return docs[0] if docs and isinstance(docs[0], dict) else {}


# Istio's charts keep every default under this key; their templates/zzz_profile.yaml merges the user's top-level
# values over it (`--set foo=bar`, never `_internal_defaults_do_not_set.foo`), so its keys are top-level keys.
ISTIO_DEFAULTS = "_internal_defaults_do_not_set"
# Sections of those charts that are not values trees but whole Istio API documents rendered verbatim (istiod's
# `meshConfig` becomes the mesh ConfigMap: istio.mesh.v1alpha1.MeshConfig, whose fields values.yaml does not
# list): any key below them is accepted here.
ISTIO_PASSTHROUGH = ("meshConfig",)
# `global.platform` is not a values.yaml key: each Istio chart's templates/zzz_profile.yaml reads it to merge
# files/profile-platform-<platform>.yaml, and fails the render for a platform without a file (istio/istio@1.30.3
# manifests/charts/*/files: these).
ISTIO_PLATFORMS = ("gke", "k3d", "k3s", "microk8s", "minikube", "openshift")


@functools.cache
def _user_values(chart_dir: Path) -> dict:
    """The chart's values.yaml as users set it: Istio's internal defaults lifted to the top level.

    For other charts this is values.yaml itself. Helm coalesces (and checks values.schema.json against) the
    file as written, defaults still nested, so the schema check keeps using _read_values.
    """
    values = _read_values(chart_dir)
    defaults = values.get(ISTIO_DEFAULTS)
    if not isinstance(defaults, dict):
        return values
    lifted = deep_merge(defaults, {k: v for k, v in values.items() if k != ISTIO_DEFAULTS})
    return {**lifted, **{key: {} for key in ISTIO_PASSTHROUGH if key in lifted}}


# A mapping key in values.yaml (not a list item, not a comment), and a commented-out one (``# key:``, ``#   key: v``).
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.-]*|\"[^\"]+\"|'[^']+') *:(?P<rest>.*)$")
_COMMENTED_KEY_LINE = re.compile(r"^(?P<indent> *)#(?P<gap> +)(?P<key>[a-z_][\w-]*):(?:\s.*)?$")
_BLOCK_SCALAR = re.compile(r"^\s*[|>][-+0-9]*\s*(#.*)?$")


@functools.cache
def _commented_keys(chart_dir: Path) -> dict:
    """Keys the chart's values.yaml documents only as commented-out examples, as a tree by where they sit.

    Charts such as SeaweedFS's document optional keys that way (``s3.createBuckets``, ``s3.credentials``): the
    templates read them, values.yaml sets no default. A comment line ``# key:`` counts as a key of the mapping
    whose keys are indented like it (the column of ``#`` plus the spaces after it, less the one that separates
    ``#`` from the text); further commented lines indented deeper are its keys. Commented keys at the top level do
    not count: a comment in column 0 is as often an example of the preceding key's value (mlflow's ``# limits:``
    after ``resources: {}``) as a top-level key. Lines inside block scalars
    (``affinity: |``) are text, not keys. Istio's commented keys under its internal defaults count at the top, like
    the defaults. _with_commented adds only keys the file does not set for real, so those keep their checks. Below
    a commented key without commented keys of its own, anything goes (as below a null or empty default).
    """
    tree: dict = {}
    stack: list[tuple[int, str | None]] = []  # (indent, key) of the mappings the line is in, real or commented
    block_indent: int | None = None
    for line in _read_text(chart_dir / "values.yaml").splitlines():
        text = line.lstrip(" ")
        if not text:
            continue
        indent = len(line) - len(text)
        if block_indent is not None and indent > block_indent:
            continue
        block_indent = None
        if text.startswith("#"):
            match = _COMMENTED_KEY_LINE.match(line)
            if not match:
                continue
            indent, key, commented = len(match["indent"]) + len(match["gap"]) - 1, match["key"], True
        else:
            match = _KEY_LINE.match(line)
            if not match:
                continue
            key, commented = match["key"].strip("\"'"), False
            if _BLOCK_SCALAR.match(match["rest"]):
                block_indent = indent
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if commented and (not stack or None in (parent for _, parent in stack)):
            key = None  # a top-level comment is as often the preceding value's example: not counted, nor below it
        elif commented:
            node = tree
            for _, parent in stack:
                node = node.setdefault(parent, {})
            node.setdefault(key, {})
        stack.append((indent, key))
    lifted = tree.pop(ISTIO_DEFAULTS, None)
    return {**lifted, **tree} if isinstance(lifted, dict) else tree


def _with_commented(values: Any, commented: dict) -> Any:
    """``values`` plus the commented-out keys it does not set (see _commented_keys)."""
    if not isinstance(values, dict):
        return values
    merged = dict(values)
    for key, below in commented.items():
        if key not in values:
            merged[key] = below
        elif isinstance(values[key], dict) and values[key]:
            merged[key] = _with_commented(values[key], below)
    return merged


@functools.cache
def _read_text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


@functools.cache
def _schema_validator(path: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's coalescing: mappings merge recursively, override wins, lists are replaced, None deletes a key."""
    if not isinstance(override, dict):
        return override
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = deep_merge(merged.get(key), value)
    return merged


def _unknown_keys(trees: list[dict], ours: dict, prefix: str) -> Iterator[tuple[str, Any, list[str]]]:
    """(dotted path, key, close matches) for every key of ours that none of the upstream trees has.

    Below a key whose upstream value is None, {}, a scalar or a list (in any tree), anything goes.
    """
    for key, value in ours.items():
        path = f"{prefix}.{key}"
        here = [tree[key] for tree in trees if key in tree]
        if not here:
            candidates = sorted({str(k) for tree in trees for k in tree})
            yield path, key, difflib.get_close_matches(str(key), candidates)
        elif isinstance(value, dict) and all(isinstance(v, dict) and v for v in here):
            yield from _unknown_keys(here, value, path)


def _global_trees(chart_dir: Path) -> list[dict]:
    """The non-empty `global` sections of a chart's values.yaml and all its subcharts' (nested)."""
    files = [chart_dir / "values.yaml", *sorted((chart_dir / "charts").glob("**/values.yaml"))]
    trees = [_user_values(f.parent).get("global") for f in files]
    return [t for t in trees if isinstance(t, dict) and t]


def _check_chart(
    chart: str,
    chart_dir: Path,
    ours: dict,
    sections: list[dict],
    parent_global: dict | None,
    prefix: str,
    globals_: list[dict],
    value_files: list[Path],
) -> list[str]:
    """Key and schema errors for our values of one chart or subchart.

    sections: what the ancestors' values.yaml pass this subchart, parent first (Helm: outer ones win);
    parent_global: the parent's final `global` (None for the top chart); value_files: values.yaml files to
    search for commented-out keys.
    """
    own = _user_values(chart_dir)
    documented = _with_commented(own, _commented_keys(chart_dir))  # for the key check only
    rel = chart_dir.relative_to(upstream_dir() / chart)
    top = rel == Path(".")
    where = "upstream values.yaml" if top else f"upstream {rel}/values.yaml or the parent's {chart_dir.name} section"
    value_files = [chart_dir / "values.yaml", *value_files]
    subcharts = {
        k: v
        for k, v in ours.items()
        if k != "global" and isinstance(v, dict) and (chart_dir / "charts" / str(k)).is_dir()
    }
    plain = {k: v for k, v in ours.items() if k != "global" and k not in subcharts}
    trees = [t for t in (documented, *sections) if t]
    errors: list[str] = []

    if globals_ and isinstance(ours.get("global"), dict):
        errors += _key_errors(
            chart, globals_, ours["global"], f"{prefix}.global", "upstream global values", value_files
        )
    if top or trees:  # a subchart without any upstream values takes anything
        errors += _key_errors(chart, trees or [{}], plain, prefix, where, value_files)

    # What Helm coalesces and checks against values.schema.json (Istio's defaults still under their key).
    merged = deep_merge(functools.reduce(deep_merge, [_read_values(chart_dir), *sections]), ours)
    if parent_global is not None:  # Helm hands every subchart the parent's globals
        merged["global"] = deep_merge(merged.get("global") or {}, parent_global)

    for key, value in subcharts.items():
        sub_sections = [s[key] for s in (own, *sections) if isinstance(s.get(key), dict)]
        errors += _check_chart(
            chart,
            chart_dir / "charts" / str(key),
            value,
            sub_sections,
            merged.get("global") or {},
            f"{prefix}.{key}",
            globals_,
            value_files,
        )

    schema_path = chart_dir / "values.schema.json"
    if schema_path.is_file():
        schema_name = schema_path.relative_to(upstream_dir() / chart)
        for e in sorted(
            _schema_validator(schema_path).iter_errors(merged), key=lambda e: list(map(str, e.absolute_path))
        ):
            path = ".".join([prefix, *map(str, e.absolute_path)])
            errors.append(f"{chart}: {path}: {_short(e.message)} (upstream {schema_name})")
    return errors


def _key_errors(
    chart: str, trees: list[dict], ours: dict, prefix: str, where: str, value_files: list[Path]
) -> list[str]:
    """Error strings for the keys of ours missing from the upstream trees (see _unknown_keys)."""
    errors = []
    for path, key, matches in _unknown_keys(trees, ours, prefix):
        message = f"{chart}: {path}: not in {where}"
        if matches:
            message += f" (did you mean {', '.join(matches)}?)"
        pattern = re.compile(rf"^\s*#+\s*{re.escape(str(key))}\s*:", re.M)
        if any(pattern.search(_read_text(f)) for f in value_files):
            message += " (upstream values.yaml mentions it only in a comment)"
        errors.append(message)
    return errors


def validate_helm_values(chart: str, values: dict) -> list[str]:
    """Check our values for an upstream chart (folder name); return error strings (empty list = valid).

    Every key path we set must exist in the chart's values.yaml (or, for a subchart's section, in
    charts/<key>/values.yaml or the parent's section for it); below a key whose upstream value is None, {},
    a scalar or a list anything is accepted. In Istio's charts the defaults under
    ``_internal_defaults_do_not_set`` count as top-level keys (that is where users set them), and keys below
    istiod's ``meshConfig`` (a MeshConfig document) are not checked; their ``global.platform`` must name one of
    Istio's platform profiles (``ISTIO_PLATFORMS``). Where a chart or subchart ships
    values.schema.json, the values Helm would see (upstream values deep-merged with ours) must satisfy it.
    """
    chart_dir = upstream_dir() / chart
    if not (chart_dir / "Chart.yaml").is_file():
        return [f"{chart}: no upstream chart folder {chart_dir}"]
    if values is None:
        values = {}
    if not isinstance(values, dict):
        return [f"{chart}: values: not a mapping"]
    errors = []
    if ISTIO_DEFAULTS in _read_values(chart_dir) and "platform" in (values.get("global") or {}):
        platform = values["global"]["platform"]
        if platform not in ISTIO_PLATFORMS:
            errors.append(
                f"{chart}: values.global.platform: {platform!r} has no Istio profile (one of {', '.join(ISTIO_PLATFORMS)})"
            )
        values = {**values, "global": {k: v for k, v in values["global"].items() if k != "platform"}}
    return errors + _check_chart(chart, chart_dir, values, [], None, "values", _global_trees(chart_dir), [])


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------


def _chart_from_header(text: str) -> str | None:
    """The chart name from the leading comment block's "# chart: <name>" line."""
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match = re.match(r"#\s*chart:\s*(\S+)", line)
        if match:
            return match[1]
    return None


def main(argv: list[str] | None = None) -> int:
    """Validate a build folder; print each error and a summary; return 1 if there were errors, else 0."""
    parser = argparse.ArgumentParser(prog="python -m tools.validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=Path, help="folder with manifests/**/*.yaml and helm/*.values.yaml")
    parser.add_argument(
        "--k8s-version", help="Kubernetes minor version, e.g. 1.35 (default: BUILD_DIR/kubernetes-version)"
    )
    args = parser.parse_args(argv)

    build_dir: Path = args.build_dir
    if not build_dir.is_dir():
        parser.error(f"{build_dir} is not a folder")
    version = args.k8s_version
    if not version and (build_dir / "kubernetes-version").is_file():
        version = (build_dir / "kubernetes-version").read_text().strip()
    if not version:
        parser.error(f"no --k8s-version and no {build_dir / 'kubernetes-version'}")
    if _schema_version(version) is None:
        parser.error(_unsupported_version(version))

    errors: list[str] = []
    objects = 0
    for path in sorted((build_dir / "manifests").glob("**/*.yaml")):
        rel = path.relative_to(build_dir)
        try:
            docs = load_yaml_documents(path.read_text())
        except yaml.YAMLError as e:
            errors.append(f"{rel}: cannot parse YAML: {e}")
            continue
        if len(docs) != 1:
            errors.append(f"{rel}: expected one object, found {len(docs)}")
        for doc in docs:
            objects += 1
            errors += [f"{rel}: {e}" for e in validate_object(doc, version)]

    releases = sorted((build_dir / "helm").glob("*.values.yaml"))
    for path in releases:
        rel = path.relative_to(build_dir)
        text = path.read_text()
        chart = _chart_from_header(text)
        if chart is None:
            errors.append(f"{rel}: no '# chart: <name>' header line")
            continue
        chart = chart.rsplit("/", 1)[-1]  # an OCI chart reference (oci://host/path/<name>) names the folder last
        try:
            docs = load_yaml_documents(text)
        except yaml.YAMLError as e:
            errors.append(f"{rel}: cannot parse YAML: {e}")
            continue
        errors += [f"{rel}: {e}" for e in validate_helm_values(chart, docs[0] if docs else {})]

    for error in errors:
        print(error)
    print(f"validated {objects} objects and {len(releases)} releases: {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
