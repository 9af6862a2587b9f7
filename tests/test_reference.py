"""The generated config reference (``docs/config-reference.md``) and stack file JSON Schema (``docs/stack-schema.json``):
current with the config models, and the schema accepts every stack file of the project and refuses a typo."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import FIXTURES, PROJECT
from tools import reference

ROOT = Path(__file__).resolve().parents[1]
STACKS = sorted(PROJECT.glob("Pulumi.*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads((ROOT / reference.SCHEMA).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, stack: dict) -> list[str]:
    return [f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(stack)]


def test_the_committed_reference_and_schema_are_current():
    assert reference.stale(ROOT) == [], "run `python -m tools.reference` and commit docs/"


def test_check_fails_on_a_stale_file_and_passes_once_regenerated(tmp_path, capsys):
    assert reference.main([], root=tmp_path) == 0
    assert reference.main(["--check"], root=tmp_path) == 0
    page = tmp_path / reference.REFERENCE
    page.write_text(page.read_text().replace("kubeContext", "kubeCtx", 1))
    assert reference.main(["--check"], root=tmp_path) == 1
    assert "docs/config-reference.md is stale" in capsys.readouterr().err


@pytest.mark.invariant
@pytest.mark.parametrize("stack", STACKS, ids=lambda path: path.name)
def test_every_stack_file_validates_against_the_schema(validator, stack):
    assert _errors(validator, yaml.safe_load(stack.read_text())) == []


@pytest.mark.parametrize(
    ("section", "edit", "wanted"),
    [
        ("ai-platform:cluster", lambda c: c.update(kubeContxt="ai-dev"), "'kubeContxt' was unexpected"),
        ("ai-platform:tenants", lambda t: t[0]["quota"].update(gpus=2), "'gpus' was unexpected"),
        ("ai-platform:models", lambda m: m[0].update(engine="vlm"), "'vlm' is not one of"),
        ("ai-platform:gpu", lambda g: g.update(sharing="timeslicing"), "'timeslicing' is not one of"),
        ("ai-platform:tenants", lambda t: t[0]["quota"].update(storage="lots"), "is not valid under any"),
    ],
    ids=["key-typo", "nested-key-typo", "engine", "literal", "quantity"],
)
def test_the_schema_refuses_a_typo(validator, section, edit, wanted):
    stack = yaml.safe_load((FIXTURES / "Pulumi.dev.yaml").read_text())
    broken = copy.deepcopy(stack)
    edit(broken["config"][section])
    assert any(wanted in error for error in _errors(validator, broken)), _errors(validator, broken)


def test_secret_keys_only_as_secure_values(validator):
    stack = yaml.safe_load((FIXTURES / "Pulumi.dev.yaml").read_text())
    config = stack["config"]
    config["ai-platform:huggingFaceToken"] = {"secure": "v1:AAAA"}
    config["ai-platform:alertReceiver-dev-mail"] = {"secure": "v1:AAAA"}
    config["kubernetes:context"] = "ai-dev"  # other namespaces pass through
    assert _errors(validator, stack) == []
    config["ai-platform:huggingFaceToken"] = "hf_in_clear"
    config["ai-platform:tenant"] = []
    errors = _errors(validator, stack)
    assert any(
        e.startswith("config.ai-platform:huggingFaceToken: 'hf_in_clear' is not of type 'object'") for e in errors
    )
    assert any("'ai-platform:tenant' does not match any of the regexes" in e for e in errors), errors
