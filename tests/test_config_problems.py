"""Every problem of a bad stack config in one run (issue 18): cross-field rules on the sections that parsed, "did
you mean" for unknown keys and values, a misspelled required key counted once, plurals, and the line of each
problem in the stack file."""

from pathlib import Path

import pytest
import yaml

from config import ConfigError
from config.loader import StackFile
from config.serving import Endpoint
from tests.conftest import config_copy, load, run

T, M, C, DP = "ai-platform:tenants", "ai-platform:models", "ai-platform:cluster", "ai-platform:dataProtection"


def write_stack(folder: Path, config: dict, stack: str = "dev") -> Path:
    path = folder / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def line_of(path: Path, text: str, after: str = "") -> int:
    """The 1-based number of the first line of ``path`` containing ``text`` (after the first containing ``after``)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines) if i >= start and text in line) + 1


def problems(stack: str, config: dict, stack_file: Path | None = None) -> str:
    raw = {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("ai-platform:")}
    with pytest.raises(ConfigError) as error:
        load(stack, raw, stack_file=stack_file)
    return str(error.value)


def test_the_issue_example_lists_field_error_key_typo_and_cross_field_error_at_once(tmp_path):
    """A field error, a misspelled required key and a cross-field error: all three in one run of the program, each
    with its line in the stack file, the typo with the key it meant and counted once."""
    config = config_copy()
    config[T][0]["quota"]["gpu"] = -1  # field error
    config[M][0]["tenat"] = config[M][0].pop("tenant")  # misspelled required key
    config[C]["environment"] = "production"  # cross-field: relaxed protection in production
    config[DP] = {"mode": "relaxed"}
    stack_file = write_stack(tmp_path, config)

    result = run("dev", config, stacks=tmp_path)  # where the program finds Pulumi.<stack>.yaml

    assert isinstance(result.error, ConfigError), result.error
    assert result.registered_beyond_stack == []
    message = str(result.error)
    gpu, typo = line_of(stack_file, "gpu: -1"), line_of(stack_file, "tenat:")
    mode = line_of(stack_file, "mode: relaxed", after=DP)
    endpoint_keys = ", ".join(sorted(field.alias or name for name, field in Endpoint.model_fields.items()))
    assert message.splitlines() == [
        "invalid stack config (3 problems):",
        f"stack dev: ai-platform:tenants[0].quota.gpu: must be >= 0 (allowed: >= 0, got: -1) (Pulumi.dev.yaml:{gpu})",
        f"stack dev: ai-platform:models[0].tenat: unknown key (allowed: {endpoint_keys}) (did you mean 'tenant'?) "
        f"(Pulumi.dev.yaml:{typo})",
        "stack dev: ai-platform:dataProtection.mode: relaxed protection is not allowed for a production stack "
        f"(cluster.environment production) (Pulumi.dev.yaml:{mode})",
    ]
    assert "models[0].tenant: required key is missing" not in message


def test_one_problem_is_singular():
    config = config_copy()
    config[T][0]["podSecurity"] = "strict"
    assert "invalid stack config (1 problem):\n" in problems("dev", config)


def test_an_unknown_value_names_the_closest_allowed_one():
    config = config_copy()
    config[T][1]["podSecurity"] = "restricteed"
    config[T][0]["podSecurity"] = "open"  # nothing close: no guess
    config[C]["kubernetesVersion"] = "1.99"  # a number: "did you mean '1.29'" would mislead
    message = problems("dev", config)
    assert (
        "ai-platform:tenants[1].podSecurity: not an allowed value (allowed: 'baseline' or 'restricted', got: "
        "'restricteed') (did you mean 'restricted'?)"
    ) in message
    assert message.count("did you mean") == 1, message


def test_an_unknown_key_names_the_closest_allowed_one_even_when_it_is_optional():
    config = config_copy()
    config[T][0]["quota"]["gpus"] = 1
    assert "ai-platform:tenants[0].quota.gpus: unknown key (allowed: " in problems("dev", config)
    assert "(did you mean 'gpu'?)" in problems("dev", config)


def test_a_cross_field_rule_runs_when_another_section_failed():
    """The mesh rule reads mesh and serving, which parse; a tenant's field error does not hide it."""
    config = config_copy()
    config[T][0]["quota"]["gpu"] = -1
    config["ai-platform:serving"] = {"enabled": False}
    message = problems("dev", config)
    assert "ai-platform:tenants[0].quota.gpu: must be >= 0" in message
    assert "ai-platform:mesh.enabled: the mesh's ingress certificate comes from cert-manager" in message


def test_a_cross_field_rule_whose_inputs_failed_is_skipped():
    """The endpoints' tenant rule reads the tenants; with a tenant invalid it would report nonsense, so it is not
    run (the rules of the same concern that read only parsed sections are not run either: one function)."""
    config = config_copy()
    config[T][0]["quota"]["gpu"] = -1
    config[M][0]["tenant"] = "marketing"
    message = problems("dev", config)
    assert "invalid stack config (1 problem):" in message, message
    assert "no tenant" not in message


def test_the_strict_removal_check_runs_when_a_cross_field_rule_failed():
    config = config_copy("prod")
    config["ai-platform:mesh"]["enabled"] = False  # the canaries need the mesh; strict: dropping it loses data
    message = problems("prod", config)
    assert "ai-platform:models[0].canary: splitting traffic to a canary" in message
    assert "ai-platform:mesh.enabled: dropping mesh would delete its " in message


def test_no_line_where_the_file_holds_another_value_than_was_loaded(tmp_path):
    """A test's changed copy, or a value from elsewhere (ESC), must not point at a line that says something else."""
    config = config_copy()
    config[T][0]["quota"]["cpu"]["limits"] = "4"
    stack_file = write_stack(tmp_path, config)
    config[T][1]["podSecurity"] = "open"  # not in the file
    message = problems("dev", config, stack_file)
    requests = line_of(stack_file, "requests:", after="cpu:")
    assert f"ai-platform:tenants[0].quota.cpu.requests: must be <= limits (got 8 > 4) (Pulumi.dev.yaml:{requests})" in (
        message
    )
    assert message.endswith(
        "ai-platform:tenants[1].podSecurity: not an allowed value (allowed: 'baseline' or 'restricted', got: 'open')"
    ), message


def test_locate_finds_keys_items_quoted_keys_and_the_place_of_a_missing_key(tmp_path):
    config = config_copy()
    config[T][0]["quota"]["counts"] = {"Jobs/Batch!": 3}
    config["ai-platform:alertReceiver-team"] = "xoxb"
    del config[T][1]["access"]
    stack_file = write_stack(tmp_path, config)
    raw = {key.split(":", 1)[1]: value for key, value in config.items()}
    where = StackFile(stack_file, raw)
    assert where.locate('tenants[0].quota.counts["Jobs/Batch!"]') == line_of(stack_file, "Jobs/Batch!")
    assert where.locate("alertReceiver-team") == line_of(stack_file, "ai-platform:alertReceiver-team")
    second = config[T][1]["name"]
    assert where.locate("tenants[1].access") == line_of(stack_file, f"- name: {second}", after=T)  # its tenant
    assert where.locate("tenant") is None  # not in the file
    assert StackFile(tmp_path / "Pulumi.none.yaml", raw).locate("tenants") is None
