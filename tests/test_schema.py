"""Schema tier: what the program declares is valid for the real API server and the real charts."""

import pytest
import yaml

from config import versions
from tools.validate import upstream_dir, validate_helm_values, validate_object


@pytest.mark.invariant
def test_every_object_validates_against_kubernetes_or_its_upstream_crd(stack_run, cfg):
    errors = [
        error for obj in stack_run.objects for error in validate_object(obj.inputs, cfg.cluster.kubernetes_version)
    ]
    assert errors == []


@pytest.mark.invariant
def test_every_helm_value_key_exists_upstream(stack_run):
    assert stack_run.releases
    errors = [
        error
        for release in stack_run.releases
        for error in validate_helm_values(release.inputs["chart"].rsplit("/", 1)[-1], release.inputs["values"])
    ]
    assert errors == []


def test_chart_pins_match_upstream_chart_yaml():
    for chart in versions.CHARTS.values():
        upstream = yaml.safe_load((upstream_dir() / chart.name / "Chart.yaml").read_text())
        assert upstream["version"].lstrip("v") == chart.version.lstrip("v"), chart.name


def test_no_pin_is_latest():
    pins = [value for name, value in vars(versions).items() if name.isupper() and isinstance(value, str)]
    pins += [field for chart in versions.CHARTS.values() for field in chart]
    assert pins and not [pin for pin in pins if "latest" in pin]


def test_mirrored_gpu_operator_repositories_are_the_chart_defaults():
    values = yaml.safe_load((upstream_dir() / "gpu-operator" / "values.yaml").read_text())
    values["node-feature-discovery"] = yaml.safe_load(
        (upstream_dir() / "gpu-operator" / "charts" / "node-feature-discovery" / "values.yaml").read_text()
    )
    for path, repository in versions.GPU_OPERATOR_REPOSITORIES.items():
        section = values
        for key in path.split("."):
            section = section[key]
        assert section["repository"] == repository, path
