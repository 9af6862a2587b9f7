"""``components.meta.kube``: what the engine receives is what the typed pulumi_kubernetes classes would send."""

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime.sync_await import _sync_await

from components.meta import kube
from tests.conftest import run


def _run(program):
    result = run("dev", program=program)
    assert result.error is None, result.error
    return result


def test_same_type_urn_and_inputs_as_the_typed_classes():
    def typed():
        k8s.core.v1.ConfigMap("cm", metadata={"name": "a", "namespace": "n"}, data={"k": "v"})
        k8s.rbac.v1.RoleBinding(
            "rb",
            metadata={"name": "b", "namespace": "n"},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
            subjects=[{"kind": "Group", "name": "g"}],
        )
        k8s.apiextensions.CustomResource(
            "q", api_version="scheduling.volcano.sh/v1beta1", kind="Queue", metadata={"name": "q"}, spec={"weight": 1}
        )

    def generic():
        kube("cm", "v1", "ConfigMap", metadata={"name": "a", "namespace": "n"}, data={"k": "v"}, immutable=None)
        kube(
            "rb",
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            metadata={"name": "b", "namespace": "n"},
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
            subjects=[{"kind": "Group", "name": "g"}],
        )
        kube("q", "scheduling.volcano.sh/v1beta1", "Queue", metadata={"name": "q"}, spec={"weight": 1})

    def seen(result):
        return {(r.urn, r.type): r.inputs for r in result.resources if r.custom}

    assert seen(_run(generic)) == seen(_run(typed))
    assert {r.type for r in _run(generic).resources if r.custom} == {
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        "kubernetes:scheduling.volcano.sh/v1beta1:Queue",
    }


def test_a_secrets_data_stays_a_secret_output():
    made = {}

    def program():
        made["secret"] = kube("s", "v1", "Secret", metadata={"name": "s"}, stringData={"password": "x"})
        made["config"] = kube("c", "v1", "ConfigMap", metadata={"name": "c"}, data={"key": "x"})

    _run(program)
    assert _sync_await(made["secret"].stringData.is_secret())
    assert not _sync_await(made["config"].data.is_secret())
    assert _sync_await(made["secret"].metadata.apply(lambda m: m["name"]).future()) == "s"
    assert isinstance(made["secret"], pulumi.CustomResource)
