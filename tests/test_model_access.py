"""How endpoints read their models (issue 16, defects 3 and 7): a ServiceAccount per endpoint with its workload
identity, keys only from Secrets something creates, egress to what the identity needs; and every Secret a pod
references exists: created by the platform, or listed in the stack output ``userProvidedSecrets``."""

from __future__ import annotations

import pytest

from components.serving import model_access
from tests.conftest import STACKS, run_stack, run_with, stack_cfg
from tests.test_gpu import pod_specs

# Secrets operators create themselves, by namespace pattern and name (source next to each).
OPERATOR_SECRETS = {
    # cert-manager writes the Certificate's secretName (components/mesh/control_plane.py Certificate).
    "ai-platform-ingress-tls",
}


def referenced_secrets(obj: dict) -> set[str]:
    """Names of the Secrets the pod specs of ``obj`` (and a ServiceAccount's ``secrets``) reference."""
    names: set[str] = {s["name"] for s in obj.get("secrets", []) if obj.get("kind") == "ServiceAccount"}
    for spec in pod_specs(obj.get("spec", {})):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    names.add(ref["name"])
            for source in container.get("envFrom", []):
                if "secretRef" in source and not source["secretRef"].get("optional"):
                    names.add(source["secretRef"]["name"])
        for volume in spec.get("volumes", []):
            if "secret" in volume and not volume["secret"].get("optional"):
                names.add(volume["secret"]["secretName"])
            for source in (volume.get("projected") or {}).get("sources", []):
                if "secret" in source and not source["secret"].get("optional"):
                    names.add(source["secret"]["name"])
        names |= {s["name"] for s in spec.get("imagePullSecrets", [])}
    return names


def created_secrets(run) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret the stack creates: Secrets, ExternalSecrets' targets."""
    created = {(o.namespace, o.k8s_name) for o in run.of_kind("Secret")}
    for external in run.of_kind("ExternalSecret"):
        created.add((external.namespace, external.inputs["spec"]["target"].get("name") or external.k8s_name))
    return created


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_every_secret_a_pod_references_is_created_or_listed_for_the_user(stack):
    run = run_stack(stack)
    created = created_secrets(run)
    provided = {(s["namespace"], s["name"]) for s in run.outputs["userProvidedSecrets"]}
    missing = []
    for obj in run.objects:
        for name in referenced_secrets(obj.inputs):
            key = (obj.namespace, name)
            if key not in created and key not in provided and name not in OPERATOR_SECRETS:
                missing.append(f"{obj.kind} {obj.namespace}/{obj.k8s_name} -> Secret {name}")
    assert not missing, "Secrets nothing creates and the user is not told to:\n" + "\n".join(sorted(missing))


def test_user_provided_secrets_name_their_keys():
    """With secrets.source pulumi the operator creates the keys' Secret, once per tenant: the output says which."""
    ranker = {
        "tenant": "product",
        "engine": "triton",
        "s3": {"credentialsSecret": "model-keys"},
        "resources": {"cpu": "1", "memory": "2Gi"},
        "triton": {"models": ["ranker"]},
    }
    models = [
        {**ranker, "name": "ranker", "source": "s3://models/ranker"},
        {**ranker, "name": "ranker-2", "source": "s3://models/ranker-2"},
    ]
    run = run_with(
        "dev",
        models=models,
        mlflow={"database": {"mode": "external", "host": "db.example.internal", "passwordSecret": "mlflow-db"}},
    )
    listed = [(s["namespace"], s["name"], tuple(s["keys"])) for s in run.outputs["userProvidedSecrets"]]
    assert listed.count(("product", "model-keys", tuple(sorted(model_access.S3_KEYS)))) == 1
    assert ("mlflow", "mlflow-db", ("password",)) in listed  # the external database's password
    assert not run.of_kind("ExternalSecret") and not [o for o in run.of_kind("Secret") if o.k8s_name == "model-keys"]


def test_model_keys_from_the_external_store_are_per_tenant_and_created_once():
    run = run_stack("prod")
    keys = [o for o in run.of_kind("ExternalSecret") if o.k8s_name == "triton-model-store"]
    assert len(keys) == 1 and keys[0].namespace == "product"
    remotes = {d["remoteRef"]["key"] for d in keys[0].inputs["spec"]["data"]}
    assert remotes == {"ai-platform/prod/tenants/product/triton-model-store"}
    assert "ai-platform/prod/tenants/product/triton-model-store" in run.outputs["secretStoreKeys"]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.invariant
def test_every_endpoint_pod_runs_under_its_endpoint_service_account(stack):
    run, cfg = run_stack(stack), stack_cfg(stack)
    for endpoint in cfg.models:
        name = model_access.service_account_name(endpoint)
        account = run.one("ServiceAccount", name, endpoint.tenant).inputs
        assert account["automountServiceAccountToken"] is False
        for key, value in endpoint.service_account_annotations.items():
            assert account["metadata"]["annotations"][key] == value
        pods = []
        for obj in run.objects:
            if (
                obj.namespace == endpoint.tenant
                and obj.inputs["metadata"]["labels"].get("ai-platform/endpoint") == endpoint.name
                and obj.kind in ("Deployment", "Job", "InferenceService")
            ):
                spec = obj.inputs["spec"]
                pods.append(spec["predictor"] if obj.kind == "InferenceService" else spec["template"]["spec"])
        assert pods
        for pod in pods:
            assert pod["serviceAccountName"] == name


def test_s3_models_read_with_keys_or_identity_on_every_engine():
    run = run_stack("prod")
    cfg = stack_cfg("prod")
    for endpoint in cfg.models:
        if endpoint.scheme != "s3":
            continue
        account = run.one("ServiceAccount", model_access.service_account_name(endpoint), endpoint.tenant).inputs
        if endpoint.engine == "kserve":
            annotations = account["metadata"]["annotations"]
            assert annotations["serving.kserve.io/s3-region"] == endpoint.s3.region
            if endpoint.s3.credentials_secret:
                assert account["secrets"] == [{"name": endpoint.s3.credentials_secret}]
            else:
                assert set(endpoint.service_account_annotations) <= set(annotations)
        elif endpoint.s3.credentials_secret:
            server = run.one("Deployment", endpoint.name, endpoint.tenant).inputs["spec"]["template"]["spec"]
            refs = {
                e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
                for c in server["containers"]
                for e in c.get("env", [])
                if "valueFrom" in e
            }
            assert refs == {key: endpoint.s3.credentials_secret for key in model_access.S3_KEYS}


def test_gke_workload_identity_opens_the_metadata_server():
    """On GKE (dev) a model read with Workload Identity may reach the metadata server; AKS's identity: see
    tests/test_platforms.py."""
    models = [
        {
            "name": "gke",
            "tenant": "product",
            "engine": "kserve",
            "source": "gs://bucket/model",
            "serviceAccountAnnotations": {"iam.gke.io/gcp-service-account": "models@p.iam.gserviceaccount.com"},
            "resources": {"cpu": "500m", "memory": "1Gi"},
            "kserve": {"modelFormat": "sklearn"},
        },
    ]
    run = run_with("dev", models=models)
    gke = run.one("NetworkPolicy", "gke-model-egress", "product").inputs["spec"]["egress"]
    opened = {(rule["to"][0]["ipBlock"]["cidr"], rule["ports"][0]["port"]) for rule in gke}
    assert {("169.254.169.254/32", 80), ("169.254.169.252/32", 988)} <= opened
