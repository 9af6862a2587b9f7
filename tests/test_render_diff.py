"""``python -m tools.render --diff`` / ``tools.diff``: the summary of what changed between two renders."""

import pytest

from tests.conftest import config_copy, run_with
from tools import diff, render


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = {}
    for stack in ("dev", "prod"):
        out[stack] = tmp_path_factory.mktemp(stack)
        render.render(stack, out[stack])
    return out


def _write(result, out):
    """A render of a run made in the test (what ``render.render`` writes for a stack file)."""
    render.write_manifests(result, out)
    render.write_helm_values(result, out)
    (out / "plan.md").write_text(render.plan(result))
    return out


def test_dev_to_prod_reads_as_a_summary(rendered):
    text = diff.summary(rendered["dev"], rendered["prod"])
    lines = text.splitlines()
    assert lines[0] == "### Render diff: stack dev → stack prod"
    assert lines[2].startswith("Objects: ") and "Helm releases: 2 added, 2 removed" in lines[2]
    # namespaces only prod has, one line per kind
    (namespaces,) = [line for line in lines if line.startswith("- added ") and " `Namespace`: " in line]
    assert "`analytics`" in namespaces and "`external-secrets`" in namespaces
    assert "- removed 1 `ClusterIssuer`: `ai-platform-selfsigned`" in lines
    # a release's values, as dotted paths with old → new
    release = lines.index("- changed `cert-manager/cert-manager`")
    assert "  - `replicaCount`: 1 → 2" in lines[release : release + 10]
    assert "  - `webhook.replicaCount`: 1 → 2" in lines[release : release + 10]
    assert "- added 2: `external-secrets/external-secrets`, `ray-system/kuberay-operator`" in lines
    # an object's fields, named lists by name, large values as "changed"
    assert "  - `spec.issuerRef.name`: ai-platform-selfsigned → letsencrypt-prod" in lines
    assert "#### Kubernetes version" in lines and "- 1.35 → 1.34" in lines
    # plan.md: the sections that changed, with the changed lines of the data protection section
    assert "#### plan.md" in lines
    protection = next(i for i, line in enumerate(lines) if line.startswith("- changed section `Data protection`"))
    assert (
        "  - Nothing is protected (`dataProtection.mode: relaxed`, or everything decommissioned)."
        in lines[protection : protection + 4]
    )
    assert any(line.startswith("- added section `External secret store` (+") for line in lines)


def test_text_format_and_secrets_stay_masked(rendered):
    text = diff.summary(rendered["dev"], rendered["prod"], "text")
    assert text.startswith("Render diff: stack dev → stack prod\n")
    assert "`" not in "\n".join(line for line in text.splitlines() if not line.startswith("    "))
    assert "Helm releases:\n- added 2: external-secrets/external-secrets, ray-system/kuberay-operator" in text
    assert "canary-secret-value" not in text


def test_a_render_against_itself_is_empty(rendered):
    assert diff.summary(rendered["prod"], rendered["prod"]) == "### Render diff: stack prod\n\nNo changes."
    assert diff.field_changes({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) == []


def test_a_config_change_shows_exactly_that_field(tmp_path):
    before = _write(run_with("dev"), tmp_path / "before")
    monitoring = {**config_copy("dev")["ai-platform:monitoring"], "retention": "30d"}
    after = _write(run_with("dev", monitoring=monitoring), tmp_path / "after")
    assert diff.summary(before, after, "text").splitlines() == [
        "Render diff: stack dev",
        "",
        "Objects: 0 added, 0 removed, 0 changed. Helm releases: 0 added, 0 removed, 1 changed. "
        "plan.md: 0 sections changed.",
        "",
        "Helm releases:",
        "- changed monitoring/kube-prometheus-stack",
        "  - prometheus.prometheusSpec.retention: 15d → 30d",
    ]


def test_field_changes():
    old = {
        "spec": {
            "replicas": 1,
            "containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y"}],
            "args": ["--a", "--b"],
            "config": "one\ntwo\n",
            "gone": True,
        }
    }
    new = {
        "spec": {
            "replicas": 2,
            "containers": [{"name": "b", "image": "y"}, {"name": "a", "image": "x:2"}, {"name": "c", "image": "z"}],
            "args": ["--a"],
            "config": "one\nthree\nfour\n",
            "data": "[secret]",
        }
    }
    assert diff.field_changes(old, new) == [
        ("spec.args", '["--a", "--b"] → ["--a"]'),
        ("spec.config", "changed (+2 −1 lines)"),
        ("spec.containers[a].image", "x:1 → x:2"),
        ("spec.containers[c]", 'added: {"image": "z", "name": "c"}'),
        ("spec.data", "added: [secret]"),
        ("spec.gone", "removed (was true)"),
        ("spec.replicas", "1 → 2"),
    ]
    assert diff.field_changes({"a": "x" * 100}, {"a": "y" * 100}) == [("a", "changed")]


def test_render_cli_renders_then_prints_the_diff(rendered, tmp_path, capsys):
    assert render.main(["--stack", "dev", "--out", str(tmp_path), "--diff", str(rendered["dev"])]) == 0
    captured = capsys.readouterr()
    assert captured.out == "### Render diff: stack dev\n\nNo changes.\n"
    assert captured.err.startswith("rendered stack dev to ")
    assert render.main(["--stack", "dev", "--out", str(tmp_path), "--diff", str(tmp_path / "nothing")]) == 2
    assert diff.main([str(rendered["dev"]), str(rendered["prod"]), "--format", "text"]) == 0
    assert capsys.readouterr().out.startswith("Render diff: stack dev → stack prod\n")
