"""Volcano's tenant queue fence: the ValidatingAdmissionPolicy the platform declares, evaluated with a CEL
interpreter against objects a tenant (or a controller acting for it) could create."""

import itertools

import celpy
import pytest

from components.batch import QUEUE_ANNOTATION, QUEUE_FENCE, RAY_QUEUE_LABEL
from components.meta import TENANT_LABEL


def fence(run) -> dict:
    return run.one("ValidatingAdmissionPolicy", QUEUE_FENCE).inputs["spec"]


def admitted(spec: dict, obj: dict, tenant: str) -> bool:
    """Whether the policy admits ``obj`` into the namespace of ``tenant`` (every validation holds)."""
    env = celpy.Environment()
    namespace = {"metadata": {"name": tenant, "labels": {TENANT_LABEL: tenant}}}
    activation = {"object": obj, "namespaceObject": namespace}
    variables = {
        v["name"]: env.program(env.compile(v["expression"])).evaluate(celpy.json_to_cel(activation))
        for v in spec["variables"]
    }
    activation = celpy.json_to_cel({**activation, "variables": {k: str(v) for k, v in variables.items()}})
    return all(bool(env.program(env.compile(rule["expression"])).evaluate(activation)) for rule in spec["validations"])


def pod_group(queue: str) -> dict:
    return {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "PodGroup",
        "metadata": {"name": "pg"},
        "spec": {"minMember": 2, "queue": queue},
    }


def volcano_job(queue: str | None) -> dict:
    spec = {"minAvailable": 2, "tasks": []}
    if queue:
        spec["queue"] = queue
    return {"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "metadata": {"name": "job"}, "spec": spec}


def annotated(kind: str, api_version: str, queue: str, where: str = "metadata") -> dict:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": {}}
    obj[where]["annotations"] = {QUEUE_ANNOTATION: queue}
    return obj


@pytest.mark.invariant
def test_the_fence_is_declared_for_tenant_namespaces(stack_run, cfg):
    policy = stack_run.one("ValidatingAdmissionPolicy", QUEUE_FENCE)
    binding = stack_run.one("ValidatingAdmissionPolicyBinding", QUEUE_FENCE)
    assert binding.inputs["spec"] == {"policyName": QUEUE_FENCE, "validationActions": ["Deny"]}
    assert policy.urn in binding.dependencies
    spec = policy.inputs["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["namespaceSelector"] == {
        "matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]
    }
    resources = {
        (group, resource)
        for rule in spec["matchConstraints"]["resourceRules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert {
        ("scheduling.volcano.sh", "podgroups"),
        ("batch.volcano.sh", "jobs"),
        ("trainer.kubeflow.org", "trainjobs"),
        ("ray.io", "rayclusters"),
        ("", "pods"),
    } <= resources
    # Every tenant namespace carries the label the fence reads its queue from, equal to the queue's name.
    for tenant in cfg.tenants:
        labels = stack_run.one("Namespace", tenant.name).inputs["metadata"]["labels"]
        queue = stack_run.one("Queue", tenant.name)
        assert labels[TENANT_LABEL] == tenant.name == queue.inputs["metadata"]["name"]


@pytest.mark.invariant
def test_a_tenant_can_name_only_its_own_queue(stack_run, cfg):
    spec = fence(stack_run)
    tenants = [t.name for t in cfg.tenants]
    if len(tenants) < 2:
        pytest.skip("one tenant: no other tenant's queue to name")
    for own, other in itertools.permutations(tenants, 2):
        assert admitted(spec, pod_group(own), own)
        assert not admitted(spec, pod_group(other), own)
        assert admitted(spec, volcano_job(own), own)
        assert not admitted(spec, volcano_job(other), own)
        for kind, api_version in (("Pod", "v1"), ("TrainJob", "trainer.kubeflow.org/v1alpha1")):
            assert admitted(spec, annotated(kind, api_version, own), own)
            assert not admitted(spec, annotated(kind, api_version, other), own)
        assert not admitted(spec, annotated("TrainJob", "trainer.kubeflow.org/v1alpha1", other, "spec"), own)
        ray = {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": {"name": "r", "labels": {RAY_QUEUE_LABEL: other}},
            "spec": {},
        }
        assert not admitted(spec, ray, own)


@pytest.mark.invariant
def test_the_shared_default_queue_is_closed_to_tenants(stack_run, cfg):
    spec = fence(stack_run)
    tenant = cfg.tenants[0].name
    assert not admitted(spec, pod_group("default"), tenant)  # the PodGroup CRD defaults an unset queue to this
    assert not admitted(spec, volcano_job(None), tenant)
    plain_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    assert admitted(spec, plain_pod, tenant)  # pods that name no queue are not Volcano's business


@pytest.mark.invariant
def test_tenant_training_runtimes_bind_their_own_queue_and_pass_the_fence(stack_run, cfg):
    """A TrainJob of a tenant's runtime gets the runtime's queue: it is the tenant's own, which the fence admits
    there and denies in every other tenant's namespace."""
    if not cfg.training.enabled:
        pytest.skip("training off in this stack")
    spec = fence(stack_run)
    runtimes = stack_run.of_kind("TrainingRuntime")
    assert sorted(r.namespace for r in runtimes) == sorted(t.name for t in cfg.tenants)
    for runtime in runtimes:
        # Where the Trainer's Volcano plugin reads the PodGroup's queue (the runtime's JobSet template).
        queue = runtime.inputs["spec"]["template"]["metadata"]["annotations"][QUEUE_ANNOTATION]
        assert queue == runtime.namespace
        for tenant in cfg.tenants:
            assert admitted(spec, pod_group(queue), tenant.name) == (tenant.name == runtime.namespace)


def test_old_clusters_are_refused_rather_than_left_unfenced():
    from tests.conftest import config_copy, load

    config = config_copy("dev")
    config["ai-platform:cluster"]["kubernetesVersion"] = "1.29"
    with pytest.raises(Exception, match="cluster.kubernetesVersion: Volcano's tenant queue fence"):
        load("dev", {key.split(":", 1)[1]: value for key, value in config.items()})
