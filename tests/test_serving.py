"""Model endpoints from the ten-line spec: the objects per engine, Pod Security, autoscaling, secrets."""

import json

import pytest

from components.meta import mirrored
from components.serving.endpoint import model_path
from config import ConfigError, versions
from tests.conftest import config_copy, run, run_stack, stack_cfg
from tests.test_gpu import pod_specs
from tools.harness import CANARY

RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def endpoints(cfg, engine):
    return [e for e in cfg.models if e.engine == engine]


def container(obj, name):
    return next(c for c in obj.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def test_vllm_endpoint_is_a_cached_probed_disruption_safe_deployment(stack_run, cfg):
    for endpoint in endpoints(cfg, "vllm"):
        ns = endpoint.tenant
        deployment = stack_run.one("Deployment", endpoint.name, ns).inputs
        spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
        server = container(stack_run.one("Deployment", endpoint.name, ns), "vllm")
        assert server["image"] == mirrored(versions.VLLM_IMAGE, cfg.cluster.image_registry) and server["command"] == [
            "vllm",
            "serve",
        ]
        assert server["args"][0] == model_path(endpoint)
        tensor_parallel = (endpoint.vllm and endpoint.vllm.tensor_parallel) or endpoint.gpu.count
        assert server["args"][server["args"].index("--tensor-parallel-size") + 1] == str(tensor_parallel)
        startup = server["startupProbe"]
        assert startup["httpGet"]["path"] == "/health"
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 20 * 60
        assert server["readinessProbe"]["httpGet"]["path"] == "/health"
        assert server["livenessProbe"]["httpGet"]["path"] == "/health"
        assert server["livenessProbe"].get("initialDelaySeconds", 0) == 0
        assert server["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "15"]
        assert {"name": "HF_HUB_OFFLINE", "value": "1"} in server["env"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert pod["terminationGracePeriodSeconds"] >= 60
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
        assert volumes["shm"]["emptyDir"]["sizeLimit"] == f"{2 * tensor_parallel}Gi"
        claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
        assert claim == f"{endpoint.name}-model-cache"
        assert pod["initContainers"][0]["name"] == "wait-for-model"
        assert f"{model_path(endpoint)}/.ready" in pod["initContainers"][0]["command"][-1]
        autoscaled = endpoint.replicas.min < endpoint.replicas.max
        assert ("replicas" in spec) is not autoscaled

        pvc = stack_run.one("PersistentVolumeClaim", claim, ns).inputs["spec"]
        assert pvc["accessModes"] == ["ReadWriteMany" if endpoint.replicas.max > 1 else "ReadWriteOnce"]
        assert pvc["resources"]["requests"]["storage"] == endpoint.cache.size
        assert pvc.get("storageClassName") == (endpoint.cache.storage_class or cfg.serving.storage_class)

        job = stack_run.one("Job", f"{endpoint.name}-download", ns).inputs
        assert job["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
        job_pod = job["spec"]["template"]["spec"]
        assert job_pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
        script = job_pod["containers"][0]["command"][-1]
        assert f'repo_id="{endpoint.location}"' in script and script.rstrip().endswith(".ready'")


def test_endpoint_services_pdbs_and_autoscalers(stack_run, cfg):
    keda = next((r for r in stack_run.releases if r.inputs["name"] == "keda"), None)
    for endpoint in [e for e in cfg.models if e.engine != "kserve"]:
        ns = endpoint.tenant
        ports = {p["name"]: p["port"] for p in stack_run.one("Service", endpoint.name, ns).inputs["spec"]["ports"]}
        assert ports == ({"http": 8000} if endpoint.engine == "vllm" else {"http": 8000, "grpc": 8001, "metrics": 8002})
        pdb = stack_run.one("PodDisruptionBudget", endpoint.name, ns).inputs["spec"]
        deployment = stack_run.one("Deployment", endpoint.name, ns).inputs
        assert pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        assert pdb["maxUnavailable"] == 1
        scaled = [s for s in stack_run.of_kind("ScaledObject") if s.namespace == ns and s.k8s_name == endpoint.name]
        if endpoint.replicas.min == endpoint.replicas.max:
            assert scaled == []
            continue
        (scaled,) = scaled
        spec = scaled.inputs["spec"]
        assert spec["scaleTargetRef"] == {"name": endpoint.name}
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (endpoint.replicas.min, endpoint.replicas.max)
        (trigger,) = spec["triggers"]
        metric = "vllm:num_requests_waiting" if endpoint.engine == "vllm" else "nv_inference_pending_request_count"
        assert trigger["type"] == "prometheus" and metric in trigger["metadata"]["query"]
        assert f'namespace="{ns}"' in trigger["metadata"]["query"]
        assert trigger["metadata"]["serverAddress"] == cfg.prometheus_url
        assert float(trigger["metadata"]["threshold"]) == endpoint.target
        assert (
            spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
            >= 600
        )
        assert keda.urn in scaled.dependencies


def test_triton_reads_its_repository_with_keys_from_a_secret(stack_run, cfg):
    for endpoint in endpoints(cfg, "triton"):
        server = container(stack_run.one("Deployment", endpoint.name, endpoint.tenant), "triton")
        assert server["image"] == mirrored(versions.TRITON_IMAGE, cfg.cluster.image_registry)
        assert f"--model-repository={endpoint.source}" in server["args"]
        assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in server["env"] if "valueFrom" in e}
        assert refs == {
            "AWS_ACCESS_KEY_ID": endpoint.s3.credentials_secret,
            "AWS_SECRET_ACCESS_KEY": endpoint.s3.credentials_secret,
        }


def test_kserve_endpoint_is_an_inference_service(stack_run, cfg):
    kserve = next(r for r in stack_run.releases if r.inputs["name"] == "kserve-resources")
    for endpoint in endpoints(cfg, "kserve"):
        isvc = stack_run.one("InferenceService", endpoint.name, endpoint.tenant)
        predictor = isvc.inputs["spec"]["predictor"]
        assert predictor["model"]["modelFormat"] == {"name": endpoint.kserve.model_format}
        assert predictor["model"]["storageUri"] == endpoint.source
        assert (predictor["minReplicas"], predictor["maxReplicas"]) == (endpoint.replicas.min, endpoint.replicas.max)
        assert predictor["scaleTarget"] == int(endpoint.target)
        assert predictor["model"]["resources"]["requests"] == predictor["model"]["resources"]["limits"]
        assert kserve.urn in isvc.dependencies


def restricted_problems(spec: dict) -> list[str]:
    """Violations of the Pod Security Standard ``restricted`` (v1.25+) in a pod spec."""
    problems = []
    pod = spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(key)
    for volume in spec.get("volumes", []):
        if not set(volume) - {"name"} <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        ctx = c.get("securityContext", {})
        if ctx.get("privileged"):
            problems.append(f"{c['name']}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: allowPrivilegeEscalation")
        if "ALL" not in ctx.get("capabilities", {}).get("drop", []):
            problems.append(f"{c['name']}: capabilities not dropped")
        if set(ctx.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{c['name']}: capabilities added")
        if not (ctx.get("runAsNonRoot", pod.get("runAsNonRoot"))):
            problems.append(f"{c['name']}: runAsNonRoot")
        if ctx.get("runAsUser", pod.get("runAsUser")) == 0:
            problems.append(f"{c['name']}: runAsUser 0")
        if ctx.get("seccompProfile", pod.get("seccompProfile", {})).get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{c['name']}: seccompProfile")
    return problems


def tenant_pod_specs(stack_run, cfg):
    """Pod specs of what runs in tenant namespaces: endpoints, download Jobs, InferenceServices, the training
    runtimes' nodes (the cluster runtime's too: TrainJobs in tenant namespaces would use it) and every step of the
    tenants' WorkflowTemplates."""
    tenants = {t.name for t in cfg.tenants}
    for obj in stack_run.objects:
        if obj.namespace in tenants:
            if obj.kind in ("Deployment", "Job"):
                yield obj, obj.inputs["spec"]["template"]["spec"]
            elif obj.kind == "InferenceService":
                predictor = obj.inputs["spec"]["predictor"]
                yield obj, {**predictor, "containers": [{"name": "kserve-container", **predictor["model"]}]}
            elif obj.kind in ("TrainingRuntime", "WorkflowTemplate"):
                yield from ((obj, spec) for spec in pod_specs(obj.inputs["spec"]))
        elif obj.kind == "ClusterTrainingRuntime":
            yield from ((obj, spec) for spec in pod_specs(obj.inputs["spec"]))


@pytest.mark.invariant
def test_every_tenant_pod_passes_pod_security_restricted(stack_run, cfg):
    specs = list(tenant_pod_specs(stack_run, cfg))
    assert len(specs) >= len(cfg.models)
    kinds = {obj.kind for obj, _ in specs}
    assert ({"TrainingRuntime", "ClusterTrainingRuntime"} <= kinds) == cfg.training.enabled
    assert ("WorkflowTemplate" in kinds) == bool(cfg.workflows.enabled and cfg.workflows.pipelines)
    # Four steps of each pipeline run containers (the deploy step is a resource template run by the executor).
    assert sum(obj.kind == "WorkflowTemplate" for obj, _ in specs) == 4 * len(cfg.workflows.pipelines)
    problems = [
        f"{obj.kind} {obj.namespace}/{obj.k8s_name}: {p}" for obj, spec in specs for p in restricted_problems(spec)
    ]
    assert problems == []


def test_the_restricted_check_catches_a_root_pod():
    root = {
        "containers": [{"name": "c", "securityContext": {"runAsUser": 0}}],
        "volumes": [{"name": "h", "hostPath": {}}],
    }
    assert len(restricted_problems(root)) == 6


def test_hugging_face_token_reaches_the_download_only_as_a_secret_reference():
    config = config_copy("dev")
    config["ai-platform:huggingFaceToken"] = {"secure": "v1:ciphertext"}
    result = run("dev", config)
    assert result.error is None, result.error
    secret = result.one("Secret", "qwen-chat-hf-token", "research").inputs
    assert secret["stringData"] == "[secret]"
    job = result.one("Job", "qwen-chat-download", "research").inputs["spec"]["template"]["spec"]
    env = {e["name"]: e for e in job["containers"][0]["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "qwen-chat-hf-token", "key": "token"}
    assert CANARY not in json.dumps([r.inputs for r in result.resources]) + json.dumps(result.outputs)


def test_a_token_in_clear_is_refused():
    config = config_copy("dev")
    config["ai-platform:huggingFaceToken"] = "hf_plaintext"
    result = run("dev", config)
    assert isinstance(result.error, ConfigError)
    assert "ai-platform:huggingFaceToken: holds a secret but is stored in clear" in str(result.error)
    assert result.registered_beyond_stack == []


def test_model_fetchers_may_reach_https_but_not_the_cluster(stack_run, cfg):
    for endpoint in cfg.models:
        if endpoint.scheme == "pvc":
            continue
        policy = stack_run.one("NetworkPolicy", f"{endpoint.name}-model-egress", endpoint.tenant).inputs["spec"]
        (rule,) = policy["egress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
        assert "10.0.0.0/8" in rule["to"][0]["ipBlock"]["except"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.invariant
def test_endpoint_objects_carry_tenant_and_endpoint_labels(stack):
    result = run_stack(stack)
    serving = [
        o for o in result.objects if o.inputs["metadata"]["labels"].get("app.kubernetes.io/component") == "serving"
    ]
    assert serving
    # A tenant's object-store keys serve every endpoint of the tenant that names them: no endpoint label.
    shared_keys = {(e.tenant, e.s3.credentials_secret) for e in stack_cfg(stack).models if e.s3.credentials_secret}
    for obj in serving:
        labels = obj.inputs["metadata"]["labels"]
        assert labels["ai-platform/tenant"] == obj.namespace
        assert labels.get("ai-platform/endpoint") or (obj.namespace, obj.k8s_name) in shared_keys
