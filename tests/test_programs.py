"""``components/programs``: each program compiles, passes ruff, loads without running, and ships self-contained (the
wait helper inlined) as exactly what its Job, CronJob or workflow step runs; the wait helper waits, then gives up.
The programs' behaviour against fake servers: tests/test_service_accounts.py (setup Jobs),
tests/test_tenant_isolation_services.py (Grafana access), tests/test_workflows.py (register step)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components import programs
from components.programs import wait
from tests.conftest import run_stack, stack_cfg

PROGRAMS = ["grafana_tenant_access", "milvus_accounts", "mlflow_accounts", "register_model"]
RUFF = Path(sys.executable).parent / "ruff"


def test_every_file_here_is_a_known_program_or_the_helper():
    assert sorted(p.stem for p in programs.HERE.glob("*.py")) == sorted(["__init__", "wait", *PROGRAMS])


@pytest.mark.parametrize("name", PROGRAMS)
def test_a_shipped_program_compiles_and_needs_no_package(name):
    text = programs.source(name)
    tree = ast.parse(compile(text, f"{name}.py", "exec", ast.PyCF_ONLY_AST))
    assert not [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
    imports_wait = "from .wait import" in (programs.HERE / f"{name}.py").read_text()
    assert ((programs.HERE / "wait.py").read_text() in text) == imports_wait
    assert ast.unparse(tree.body[-1]) == "if __name__ == '__main__':\n    main()"  # runs when run, only then


@pytest.mark.parametrize("name", PROGRAMS)
def test_importing_a_program_runs_nothing(name, monkeypatch):
    monkeypatch.delenv("ACCOUNTS", raising=False)
    module = importlib.import_module(f"components.programs.{name}")
    assert callable(module.main)


def test_ruff_finds_nothing_in_the_programs_and_the_pod_helper():
    if not RUFF.exists():
        pytest.skip("ruff is not installed next to this Python")
    done = subprocess.run(
        [str(RUFF), "check", "--no-cache", str(programs.HERE), str(programs.HERE.parent / "pods.py")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_pod_runs_its_program():
    result, cfg = run_stack("dev"), stack_cfg("dev")

    def job_command(prefix: str, namespace: str) -> list[str]:
        (found,) = [j for j in result.of_kind("Job") if j.namespace == namespace and j.k8s_name.startswith(prefix)]
        return found.inputs["spec"]["template"]["spec"]["containers"][0]["command"]

    assert job_command("mlflow-accounts-", cfg.namespaces.mlflow) == [
        "python",
        "-c",
        programs.source("mlflow_accounts"),
    ]
    assert job_command("milvus-accounts-", cfg.namespaces.milvus) == [
        "python",
        "-c",
        programs.source("milvus_accounts"),
    ]
    access = result.one("ConfigMap", "grafana-tenant-access", cfg.namespaces.monitoring).inputs["data"]
    assert access["access.py"] == programs.source("grafana_tenant_access")
    registers = [
        t["script"]
        for w in result.of_kind("WorkflowTemplate")
        for t in w.inputs["spec"]["templates"]
        if t["name"] == "register"
    ]
    assert registers and all(s["source"] == programs.source("register_model") for s in registers)
    assert all(s["command"] == ["python"] for s in registers)


# --- the wait helper ------------------------------------------------------------------------------------------------


def test_wait_for_returns_the_first_success(monkeypatch):
    slept, calls = [], []
    monkeypatch.setattr(wait.time, "sleep", slept.append)

    def attempt():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError
        return "up"

    assert wait.wait_for(attempt, "Milvus") == "up"
    assert len(calls) == 3 and slept == [10, 10]


def test_wait_for_gives_up_after_ten_minutes_saying_what(monkeypatch):
    slept = []
    monkeypatch.setattr(wait.time, "sleep", slept.append)

    def attempt():
        raise TimeoutError

    with pytest.raises(SystemExit, match="^Milvus at http://milvus:19530 is not reachable$"):
        wait.wait_for(attempt, "Milvus at http://milvus:19530")
    assert slept == [10] * 60  # the deployed default: 60 tries 10 s apart (the Jobs retry on top)


def test_wait_for_does_not_wait_out_a_refusal(monkeypatch):
    """Only a server that does not answer is waited for: an answer the program rejects ends it at once."""
    monkeypatch.setattr(wait.time, "sleep", lambda _: pytest.fail("slept"))

    def attempt():
        raise SystemExit("roles/list: 1800 user hasn't authenticated")

    with pytest.raises(SystemExit, match="1800"):
        wait.wait_for(attempt, "Milvus")


class Starting(BaseHTTPRequestHandler):
    """A server that answers 503 to its first ``failures`` requests, then 200."""

    failures = 2
    seen: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.seen.append(self.path)
        self.send_response(503 if len(self.seen) <= self.failures else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_wait_for_url_waits_for_a_success_status():
    Starting.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Starting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/health"
    try:
        wait.wait_for_url(url, "MLflow", attempts=5, delay=0)
        assert Starting.seen == ["/health"] * 3
        Starting.seen = []
        with pytest.raises(SystemExit, match=f"^MLflow at {url} is not reachable$"):
            wait.wait_for_url(url, "MLflow", attempts=2, delay=0)
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(SystemExit, match="is not reachable"):  # nothing listens any more
        wait.wait_for_url(url, "MLflow", attempts=2, delay=0)


def test_the_register_step_is_a_script_argo_can_template():
    """Argo substitutes ``{{...}}`` in a script's source: the program has none of its own."""
    assert "{{" not in programs.source("register_model")
