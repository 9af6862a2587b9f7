"""The offline renderer: files per object and release, plan.md, determinism, the error exit."""

import os

import pytest
import yaml

from tools import render
from tools.harness import ROOT


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = {}
    for stack in ("dev", "prod"):
        out[stack] = tmp_path_factory.mktemp(stack)
        assert render.main(["--stack", stack, "--out", str(out[stack])]) == 0
    return out


def test_every_object_and_release_is_a_file(rendered):
    prod = rendered["prod"]
    for tenant in ("research", "product", "analytics"):
        names = {p.name for p in (prod / "manifests" / tenant).iterdir()}
        assert {
            "rolebinding-ai-platform-tenant-admin.yaml",
            "rolebinding-ai-platform-tenant-viewer.yaml",
            "resourcequota-tenant-quota.yaml",
            "limitrange-tenant-limits.yaml",
            "networkpolicy-default-deny.yaml",
        } <= names
        assert (prod / "manifests" / "_cluster" / f"queue-{tenant}.yaml").exists()
        assert not [name for name in names if name.startswith("role-")]  # the roles are ClusterRoles
        namespace = yaml.safe_load((prod / "manifests" / "_cluster" / f"namespace-{tenant}.yaml").read_text())
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    header = (prod / "helm" / "volcano.values.yaml").read_text().splitlines()[:4]
    assert header == [
        "# chart: volcano",
        "# repo: https://volcano-sh.github.io/helm-charts",
        "# version: 1.15.1",
        "# namespace: volcano-system",
    ]
    assert (prod / "helm" / "gpu-operator.values.yaml").exists()
    assert (prod / "kubernetes-version").read_text().strip() == "1.34"


def test_plan_lists_dependencies_and_gpu_capacity(rendered):
    plan = (rendered["prod"] / "plan.md").read_text()
    assert "- Queue research `tenant-research-queue` — depends on: `volcano-release`" in plan
    assert "## GPU capacity" in plan
    assert "| `nvidia.com/mig-3g.40gb` | 16 | 0 | 0 | 8 | 8 | 8 |" in plan
    assert "| h100-mig | H100-80GB | 2 | 16 | mig |" in plan
    assert "| l4 | L4 | 2 | 2 | time-slicing | 8 `nvidia.com/gpu` |" in (rendered["dev"] / "plan.md").read_text()


def test_render_is_deterministic(rendered, tmp_path):
    assert render.main(["--stack", "prod", "--out", str(tmp_path)]) == 0
    first = {p.relative_to(rendered["prod"]): p.read_text() for p in rendered["prod"].rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    assert first == second


def test_bad_stack_exits_2_with_the_config_error(tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("__main__.py", "Pulumi.yaml", "config", "components"):
        os.symlink(ROOT / name, project / name)
    (project / "Pulumi.broken.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text().replace("gpu: 2", "gpu: -2"))
    with pytest.raises(Exception) as error:
        render.render("broken", tmp_path / "out", root=project)
    assert "stack broken: ai-platform:tenants[0].quota.gpu: must be >= 0" in str(error.value)
    assert not (tmp_path / "out").exists()
    assert render.main(["--stack", "nosuchstack", "--out", str(tmp_path / "out")]) == 2
    assert "no stack file Pulumi.nosuchstack.yaml" in capsys.readouterr().err


class _PurePython(yaml.SafeDumper):
    """PyYAML's own emitter with the renderer's representer: the bytes a render must keep."""


_PurePython.add_representer(str, render._literal_blocks)


def test_dump_writes_the_bytes_pyyaml_writes():
    """libyaml writes a render where its bytes are PyYAML's; the corners where they differ go through PyYAML."""
    long = "word " * 40
    fast = {"plain": long, "config": "a: 1\n  b: [2]\n", "n": 1.5, "none": None, "list": [long, "x", {"k": True}]}
    corners = [
        {"tab": "a\t" + long},  # double-quoted (libyaml folds long ones elsewhere)
        {"unicode": "µs " + long},
        {"space before a break": "a \n" + long},
        {"kept final breaks": "a\n\n", "then": 1},  # `|+`: libyaml adds a `...` marker
        {"k" * 125: 1},  # a complex key (`? k...`) for PyYAML only
        {"": 1},
    ]
    assert render._libyaml_same(fast) and not any(render._libyaml_same(data) for data in corners)
    for data in [fast, *corners]:
        assert render._dump(data) == yaml.dump(
            data, Dumper=_PurePython, sort_keys=True, default_flow_style=False, width=120
        )


def test_make_validate_renders_again_only_when_something_a_render_reads_changed():
    """`make render` then `make validate` runs the program once (the review loop); a changed source or stack file
    makes `make validate` render first."""
    import subprocess

    render.render("dev", ROOT / "build" / "dev")

    def dry_run(*args: str) -> str:
        done = subprocess.run(["make", "-n", *args, "validate", "STACK=dev"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "tools.render" not in dry_run() and "tools.validate" in dry_run()
    for changed in ("Pulumi.dev.yaml", "components/meta.py", "config/model.py", "requirements.lock"):
        assert "tools.render" in dry_run("-W", changed), changed
