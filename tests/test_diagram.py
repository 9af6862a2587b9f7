"""The README's picture of what gets deployed (``tools/diagram.py``): generated from a run of the dev stack, current
in the committed README, and built from the component tree and its waits (not from a list kept by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import diagram, harness

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dev() -> harness.Run:
    run = harness.run("dev")
    assert run.error is None, run.error
    return run


def test_the_committed_diagram_is_current(dev):
    readme = (ROOT / diagram.README).read_text()
    block = f"{diagram.BEGIN}\n{diagram.mermaid(dev)}\n{diagram.END}"
    assert diagram.replace(readme, block) == readme, "run `python -m tools.diagram --write` and commit README.md"


def test_nodes_are_the_component_types_and_edges_what_waits_for_what(dev):
    components, edges = diagram.graph(dev)
    top = {r.type for r in dev.resources if not r.custom and r.parent.endswith("::ai-platform")}
    assert set(components) == top
    assert "ai-platform:tenancy:Tenant" in components and "ai-platform:serving:ModelEndpoint" in components
    # Facts of the program: endpoints' ScaledObjects wait for KEDA's release (its CRD), the Volcano queues of the
    # tenants for Volcano's, Istio objects of the endpoints for istiod.
    assert ("ai-platform:autoscaling:Keda", "ai-platform:serving:ModelEndpoint") in edges
    assert ("ai-platform:batch:Volcano", "ai-platform:tenancy:Tenant") in edges
    assert ("ai-platform:mesh:Mesh", "ai-platform:mesh:EndpointTraffic") in edges
    assert all(a != b for a, b in edges)


def test_check_fails_on_a_stale_readme_and_write_fixes_it(tmp_path, capsys):
    for name in ["Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"]:
        (tmp_path / name).write_text((ROOT / name).read_text())
    for folder in ["config", "components", "state"]:
        (tmp_path / folder).symlink_to(ROOT / folder)
    readme = (ROOT / diagram.README).read_text()
    stale = readme.replace("  Keda --> ModelEndpoint\n", "")
    assert stale != readme
    (tmp_path / diagram.README).write_text(stale)
    assert diagram.main(["--check"], root=tmp_path) == 1
    assert "the diagram is stale" in capsys.readouterr().err
    assert diagram.main(["--write"], root=tmp_path) == 0
    assert diagram.main(["--check"], root=tmp_path) == 0
    assert (tmp_path / diagram.README).read_text() == readme


def test_adding_a_tenant_and_an_endpoint_keeps_the_picture(dev):
    config = harness.stack_config("dev")
    tenant = dict(config["ai-platform:tenants"][0], name="vision")
    model = dict(config["ai-platform:models"][0], name="chat", tenant="vision")
    config["ai-platform:tenants"] = [*config["ai-platform:tenants"], tenant]
    config["ai-platform:models"] = [*config["ai-platform:models"], model]
    grown = harness.run("dev", config=config)
    assert grown.error is None, grown.error
    assert diagram.mermaid(grown) == diagram.mermaid(dev)
