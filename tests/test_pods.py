"""``components.pods``: the restricted security context and the writable /tmp, said once; no other module of
``components/`` writes the fields of that context itself."""

from __future__ import annotations

import ast
from pathlib import Path

from components.pods import restricted_container, restricted_pod, tmp_mount, tmp_volume
from tests.test_serving import restricted_problems

ROOT = Path(__file__).resolve().parent.parent
# The fields of the restricted context: only components/pods.py writes them (chart values that merely carry
# ``seccompProfile`` use pods.RUNTIME_DEFAULT).
CONTEXT_FIELDS = {
    "allowPrivilegeEscalation",
    "capabilities",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "RuntimeDefault",
}


def _pod(pod_context: dict, container_context: dict) -> dict:
    return {
        "securityContext": pod_context,
        "containers": [{"name": "c", "securityContext": container_context}],
        "volumes": [tmp_volume()],
    }


def test_every_combination_passes_restricted():
    for pod in (restricted_pod(), restricted_pod(8737), restricted_pod(1000, gid=1000, fs_group=1000)):
        for container in (
            restricted_container(),
            restricted_container(read_only_root=False),
            restricted_container(non_root=True, seccomp=True),
        ):
            assert restricted_problems(_pod(pod, container)) == [], (pod, container)
    # a container that restates the pod's fields passes whatever its pod says; one that does not, does not
    assert restricted_problems(_pod({}, restricted_container(non_root=True, seccomp=True))) == []
    assert restricted_problems(_pod({}, restricted_container())) == ["c: runAsNonRoot", "c: seccompProfile"]


def test_each_context_is_what_its_parameters_say():
    seccomp = {"type": "RuntimeDefault"}
    assert restricted_pod() == {"runAsNonRoot": True, "seccompProfile": seccomp}
    assert restricted_pod(8737) == {"runAsNonRoot": True, "runAsUser": 8737, "seccompProfile": seccomp}
    assert restricted_pod(1000, gid=1000, fs_group=1000) == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": seccomp,
    }
    base = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert restricted_container(read_only_root=False) == base
    assert restricted_container() == {**base, "readOnlyRootFilesystem": True}
    assert restricted_container(read_only_root=False, non_root=True) == {**base, "runAsNonRoot": True}
    assert restricted_container(non_root=True, seccomp=True) == {
        **base,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": seccomp,
    }
    assert tmp_volume() == {"name": "tmp", "emptyDir": {}}
    assert tmp_volume("64Mi") == {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
    assert tmp_mount() == {"name": "tmp", "mountPath": "/tmp"}


def test_each_call_gives_its_own_objects():
    """A caller that changes what it got changes no other pod."""
    pod, container = restricted_pod(), restricted_container()
    pod["seccompProfile"]["type"] = "Unconfined"
    container["capabilities"]["drop"].clear()
    assert restricted_pod()["seccompProfile"] == {"type": "RuntimeDefault"}
    assert restricted_container()["capabilities"] == {"drop": ["ALL"]}


def test_no_other_component_writes_the_restricted_context():
    found = []
    for path in sorted((ROOT / "components").rglob("*.py")):
        if path == ROOT / "components" / "pods.py" or "programs" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in CONTEXT_FIELDS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert found == []
