"""``ModelEndpoint``: one model endpoint of a tenant, from its ten-line ``models:`` entry.

Owns, in the tenant's namespace:
- vLLM: a model-cache PVC (ReadWriteMany when more than one replica may run) filled once by a download
  Job (``hf://`` with the vLLM image's huggingface_hub, ``s3://`` with the AWS CLI), a Deployment of the
  OpenAI-compatible server that waits for the cache and then loads from it offline (restarts and new
  replicas never pull the weights again), a Service, a PodDisruptionBudget and a KEDA ScaledObject on
  ``vllm:num_requests_waiting``; the Hugging Face token, when the stack has one (``huggingFaceToken``, or
  ``secrets.huggingFaceToken`` with the external store: ``<keyPrefix>/huggingface-token``, property ``token``), as
  the Secret ``<version>-hf-token`` (``PlatformSecrets``: a Secret or an ExternalSecret) the Job reads by name.
- Triton: a Deployment reading the model repository from S3 or a PVC and loading ``triton.models`` at start
  (``--load-model`` in explicit mode; started once the first is ready, ready while all are), a Service (http 8000,
  grpc 8001, metrics 8002), a PodDisruptionBudget and a ScaledObject on ``nv_inference_pending_request_count``.
- KServe: an InferenceService (Standard mode) with the model format, storage URI, resources, replica bounds
  and CPU scale target; the model registered under the endpoint's name in every version (``config/runtimes.py``)
  and probed on the runtime's model-ready path.
- the ServiceAccount every pod of the endpoint runs under and the NetworkPolicy letting the pods that fetch the
  model reach object stores, Hugging Face and what their workload identity needs (``model_access``).

Every version answers to the endpoint's name (``served_name``) on the same paths, so a split request never asks a
version for a name it does not know. Images go through ``cluster.imageRegistry`` when set.

Every pod runs under the Pod Security ``restricted`` profile: non-root with a fixed UID/GID and fsGroup, no
privilege escalation, all capabilities dropped, RuntimeDefault seccomp; vLLM, Triton and the download Job with a
read-only root file system, ``USER``/``HOME`` and every cache on the writable ``/tmp`` volume (the vLLM and AWS CLI
images define no user 1000 and their Python asks for one: ``getpass.getuser()``). GPU settings come from ``components.gpu.gpu_scheduling``. The load
metric comes from Prometheus (``serving.prometheusUrl``); the autoscaler is left out when min == max.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config import runtimes, versions
from config.model import Endpoint, Gpu, Serving, Tenant, VllmOptions

from ..gpu import gpu_scheduling
from ..meta import kube, metadata, mirrored
from ..secrets import PlatformSecrets
from . import model_access

COMPONENT = "serving"
UID = 1000
ENDPOINT_LABEL = "ai-platform/endpoint"
ROLE_LABEL = "ai-platform/role"
MODELS = "/models"
HF_TOKEN_SECRET_KEY = "token"
# Where an external store keeps the token (``<keyPrefix>/huggingface-token``, property ``token``).
HF_TOKEN_REMOTE = "huggingface-token"

POD_SECURITY = {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                      "seccompProfile": {"type": "RuntimeDefault"}}
# vLLM, Triton and the download Job write only to the mounts they are given (/tmp, the model cache, /dev/shm).
READ_ONLY_ROOT = {**CONTAINER_SECURITY, "readOnlyRootFilesystem": True}
# The vLLM and AWS CLI images define no user for UID 1000 and their Python calls getpass.getuser() (torch, via
# vLLM: KeyError 'getpwuid(): uid not found: 1000', vllm-project/vllm#44548, kserve/kserve#5666); getuser() reads
# LOGNAME/USER first (CPython Lib/getpass.py). HOME and the XDG cache sit on the writable /tmp volume.
HOME_ENV = [{"name": "HOME", "value": "/tmp/home"}, {"name": "XDG_CACHE_HOME", "value": "/tmp/cache"},
            {"name": "USER", "value": "model-server"}, {"name": "LOGNAME", "value": "model-server"}]
TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "10Gi"}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
SMALL = {"cpu": "100m", "memory": "128Mi"}

# Per engine: (port name, port, protocol) of the Service, and the load query (per endpoint) KEDA scales on.
PORTS = {"vllm": [("http", 8000, "http")],
         "triton": [("http", 8000, "http"), ("grpc", 8001, "grpc"), ("metrics", 8002, "http")]}
LOAD_QUERIES = {
    "vllm": 'sum(vllm:num_requests_waiting{{namespace="{namespace}",pod=~"{pods}"}})',
    "triton": 'sum(nv_inference_pending_request_count{{namespace="{namespace}",pod=~"{pods}"}})',
}


def model_path(endpoint: Endpoint) -> str:
    """Where the server finds the model: the cache directory, or the path inside a mounted claim."""
    if endpoint.scheme == "pvc":
        return f"{MODELS}/{endpoint.location.partition('/')[2]}".rstrip("/")
    return f"{MODELS}/{endpoint.scheme}/{endpoint.location}"


def needs_cache(endpoint: Endpoint) -> bool:
    return endpoint.engine == "vllm" and endpoint.scheme != "pvc"


def _probe(path: str, port: str, period: int, failures: int) -> dict:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": 5,
            "failureThreshold": failures}


def _s3_env(endpoint: Endpoint) -> list[dict]:
    env = [{"name": "AWS_DEFAULT_REGION", "value": endpoint.s3.region}]
    if endpoint.s3.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": endpoint.s3.endpoint})
    if endpoint.s3.credentials_secret:
        env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": endpoint.s3.credentials_secret, "key": key}}}
                for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    return env


def _resources(endpoint: Endpoint, gpu_settings: dict | None) -> dict:
    """Requests == limits for CPU and memory (Guaranteed QoS) plus the GPU resource from the helper."""
    amounts = endpoint.resources.model_dump()
    if gpu_settings:
        amounts.update(gpu_settings["resources"]["limits"])
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _gpu_pod_fields(gpu_settings: dict | None) -> dict:
    return {"tolerations": gpu_settings["tolerations"], "affinity": gpu_settings["affinity"]} if gpu_settings else {}


def served_name(endpoint: Endpoint) -> str:
    """The model name clients use, the same for every version of the endpoint."""
    return endpoint.name


def vllm_container(endpoint: Endpoint, registry: str | None = None) -> dict:
    options = endpoint.vllm or VllmOptions()
    tensor_parallel = options.tensor_parallel or endpoint.gpu.count
    # One name for both versions: a canary answers to the stable version's name on the same paths.
    args = [model_path(endpoint), "--served-model-name", served_name(endpoint), "--host", "0.0.0.0", "--port", "8000",
            "--tensor-parallel-size", str(tensor_parallel),
            "--gpu-memory-utilization", str(options.gpu_memory_utilization), "--dtype", options.dtype]
    if options.max_model_len:
        args += ["--max-model-len", str(options.max_model_len)]
    return {
        "name": "vllm",
        "image": mirrored(versions.VLLM_IMAGE, registry),
        "command": ["vllm", "serve"],
        "args": args + options.extra_args,
        # Every cache the server (torch.compile, Triton kernels, FlashInfer via HOME) writes, on /tmp.
        "env": HOME_ENV + [{"name": "HF_HUB_OFFLINE", "value": "1"},
                           {"name": "HF_HOME", "value": "/tmp/hf"},
                           {"name": "VLLM_CACHE_ROOT", "value": "/tmp/vllm"},
                           {"name": "TORCHINDUCTOR_CACHE_DIR", "value": "/tmp/torchinductor"},
                           {"name": "TRITON_CACHE_DIR", "value": "/tmp/triton"},
                           {"name": "VLLM_NO_USAGE_STATS", "value": "1"}],
        "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
        # Loading a large model takes minutes: the startup probe allows 30 of them before liveness counts.
        "startupProbe": _probe("/health", "http", 10, 180),
        "readinessProbe": _probe("/health", "http", 5, 3),
        "livenessProbe": _probe("/health", "http", 15, 4),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "15"]}}},
        "volumeMounts": [{"name": "models", "mountPath": MODELS, "readOnly": True},
                         {"name": "shm", "mountPath": "/dev/shm"}, TMP_MOUNT],
        "securityContext": READ_ONLY_ROOT,
    }


def triton_container(endpoint: Endpoint, registry: str | None = None) -> dict:
    options = endpoint.triton
    repository = endpoint.source if endpoint.scheme == "s3" else model_path(endpoint)
    if endpoint.scheme == "s3" and endpoint.s3.endpoint:  # Triton's form for S3-compatible stores
        repository = f"s3://{endpoint.s3.endpoint}/{endpoint.location}"
    container = {
        "name": "triton",
        "image": mirrored(versions.TRITON_IMAGE, registry),
        "command": ["tritonserver"],
        # explicit mode loads only --load-model models (triton-inference-server/server src/command_line_parser.cc);
        # without them it serves nothing and still reports ready. Strict readiness: ready once every loaded model is.
        "args": [f"--model-repository={repository}", f"--model-control-mode={options.model_control_mode}",
                 *([f"--load-model={model}" for model in options.models]
                   if options.model_control_mode == "explicit" else []),
                 "--strict-readiness=true", "--exit-on-error=true",
                 "--http-port=8000", "--grpc-port=8001", "--metrics-port=8002", "--allow-metrics=true"],
        "env": HOME_ENV + (_s3_env(endpoint) if endpoint.scheme == "s3" else []),
        "ports": [{"name": name, "containerPort": port, "protocol": "TCP"} for name, port, _ in PORTS["triton"]],
        # Started once the endpoint's first model is loaded (a repository without it never starts).
        "startupProbe": _probe(f"/v2/models/{options.models[0]}/ready", "http", 10, 90),
        "readinessProbe": _probe("/v2/health/ready", "http", 5, 3),
        "livenessProbe": _probe("/v2/health/live", "http", 15, 4),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "15"]}}},
        "volumeMounts": [TMP_MOUNT],
        "securityContext": READ_ONLY_ROOT,
    }
    if endpoint.scheme == "pvc":
        container["volumeMounts"].append({"name": "models", "mountPath": MODELS, "readOnly": True})
    return container


def download_script(endpoint: Endpoint) -> str:
    """Fill the cache once; the marker file tells servers (and later runs) that the model is complete."""
    target = model_path(endpoint)
    if endpoint.scheme == "hf":
        fetch = (f"python3 -c 'from huggingface_hub import snapshot_download; "
                 f"snapshot_download(repo_id=\"{endpoint.location}\", local_dir=\"{target}\")'")
    else:
        fetch = f"aws s3 sync '{endpoint.source}' '{target}'"
    return f"set -eu\nif [ -f '{target}/.ready' ]; then exit 0; fi\nmkdir -p '{target}'\n{fetch}\ntouch '{target}/.ready'\n"


class ModelEndpoint(pulumi.ComponentResource):
    """A tenant's model endpoint: per version (stable, and canary when configured) a vLLM or Triton Deployment
    with its PDB, autoscaler and model storage, or a KServe InferenceService; one Service for both versions."""

    def __init__(self, name: str, endpoint: Endpoint, tenant: Tenant, namespace: pulumi.Input[str], gpu: Gpu,
                 serving: Serving, prometheus_url: str, hf_token: pulumi.Output | None,
                 kserve_release: pulumi.Resource, keda_release: pulumi.Resource,
                 opts: pulumi.ResourceOptions | None = None, *, platform_secrets: PlatformSecrets,
                 registry: str | None = None):
        super().__init__("ai-platform:serving:ModelEndpoint", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        # The tenant namespace's Output: every object waits for the namespace to exist.
        self.endpoint, self.tenant, self.namespace, self.registry = endpoint, tenant.name, namespace, registry
        self.storage_class = endpoint.cache.storage_class or serving.storage_class
        self.prometheus_url, self.hf_token, self.keda_release = prometheus_url, hf_token, keda_release
        self.platform_secrets = platform_secrets
        self.gpu_settings = (gpu_scheduling(gpu, endpoint.gpu, tenant.gpu_isolation == "exclusive")
                             if endpoint.gpu else None)

        self.service_account = model_access.service_account_name(endpoint)
        model_access.service_account(name, endpoint, self._meta(self.service_account), self)
        for version, variant in versions_of(endpoint):
            suffix = "" if version == "stable" else f"-{version}"
            if endpoint.engine == "kserve":
                self._inference_service(f"{name}{suffix}", f"{endpoint.name}{suffix}", version, variant,
                                        kserve_release)
            else:
                self._deployment(f"{name}{suffix}", f"{endpoint.name}{suffix}", version, variant)
        if endpoint.engine != "kserve":
            kube(
                f"{name}-service", api_version="v1", kind="Service", metadata=self._meta(endpoint.name),
                spec={"selector": {ENDPOINT_LABEL: endpoint.name},
                      "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP",
                                 "appProtocol": protocol} for port_name, port, protocol in PORTS[endpoint.engine]]},
                opts=self._child)
        if endpoint.scheme in ("hf", "s3", "gs"):
            self._model_egress(name)
        self.register_outputs({})

    def _meta(self, object_name: str, **labels: str) -> dict:
        extra = {"app.kubernetes.io/name": self.endpoint.name, ENDPOINT_LABEL: self.endpoint.name,
                 "ai-platform/engine": self.endpoint.engine, **labels}
        return metadata(object_name, COMPONENT, namespace=self.namespace, tenant=self.tenant, extra_labels=extra)

    def _pod_labels(self, object_name: str, **labels: str) -> dict:
        """Labels of the endpoint's pods: the objects' labels and what the workload identity needs."""
        return {**self._meta(object_name, **labels)["labels"], **model_access.identity_pod_labels(self.endpoint)}

    def _deployment(self, name: str, object_name: str, version: str, variant: Endpoint) -> None:
        """One version's Deployment with its model cache and download Job, PDB and autoscaler."""
        volumes = [TMP_VOLUME]
        init_containers = []
        if variant.engine == "vllm":
            container = vllm_container(variant, self.registry)
            tensor_parallel = (variant.vllm and variant.vllm.tensor_parallel) or variant.gpu.count
            volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{2 * tensor_parallel}Gi"}})
        else:
            container = triton_container(variant, self.registry)
        container["resources"] = _resources(variant, self.gpu_settings)

        if needs_cache(variant):
            claim = self._model_cache(name, object_name, variant)
            volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
            self._download_job(name, object_name, variant, claim)
            marker = f"{model_path(variant)}/.ready"
            init_containers.append({
                "name": "wait-for-model", "image": container["image"],
                "command": ["sh", "-c", f"until [ -f '{marker}' ]; do echo waiting for {marker}; sleep 10; done"],
                "volumeMounts": [{"name": "models", "mountPath": MODELS, "readOnly": True}],
                "resources": {"requests": SMALL, "limits": SMALL}, "securityContext": READ_ONLY_ROOT})
        elif variant.scheme == "pvc":
            claim_name = variant.location.partition("/")[0]
            volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": claim_name, "readOnly": True}})

        selector = {ENDPOINT_LABEL: variant.name, "version": version}
        autoscaled = variant.replicas.min < variant.replicas.max
        spec = {
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": self._pod_labels(object_name, version=version)},
                "spec": {
                    "serviceAccountName": self.service_account,
                    "automountServiceAccountToken": False,
                    "securityContext": POD_SECURITY,
                    "terminationGracePeriodSeconds": 120,
                    "enableServiceLinks": False,
                    "initContainers": init_containers,
                    "containers": [container],
                    "volumes": volumes,
                    **_gpu_pod_fields(self.gpu_settings),
                },
            },
        }
        if not autoscaled:  # with an autoscaler the HPA owns the replica count
            spec["replicas"] = variant.replicas.min
        kube(f"{name}-deployment", api_version="apps/v1", kind="Deployment",
             metadata=self._meta(object_name, version=version),
             spec=spec, opts=self._child)
        kube(
            f"{name}-pdb", api_version="policy/v1", kind="PodDisruptionBudget",
            metadata=self._meta(object_name, version=version),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": selector},
                  "unhealthyPodEvictionPolicy": "AlwaysAllow"},
            opts=self._child)
        if autoscaled:
            self._scaled_object(name, object_name, version, variant)

    def _model_cache(self, name: str, object_name: str, variant: Endpoint) -> pulumi.Output:
        spec = {"accessModes": ["ReadWriteMany" if variant.replicas.max > 1 else "ReadWriteOnce"],
                "resources": {"requests": {"storage": variant.cache.size}}}
        if self.storage_class:
            spec["storageClassName"] = self.storage_class
        claim = kube(
            f"{name}-model-cache", api_version="v1", kind="PersistentVolumeClaim",
            metadata=self._meta(f"{object_name}-model-cache"), spec=spec, opts=self._child)
        return claim.metadata["name"]

    def _download_job(self, name: str, object_name: str, variant: Endpoint, claim: pulumi.Output) -> None:
        env = HOME_ENV + [{"name": "HF_HOME", "value": "/tmp/hf"}]
        secrets = self.platform_secrets
        token = (secrets.provided(self.hf_token, HF_TOKEN_REMOTE, HF_TOKEN_SECRET_KEY,
                                  available=secrets.cfg.hugging_face_token)
                 if variant.scheme == "hf" else None)
        after: list[pulumi.Resource] = []
        if token is not None:
            secret_name = f"{object_name}-hf-token"
            after.append(secrets.secret(f"{name}-hf-token", secret_name, self.namespace, COMPONENT, self,
                                        {HF_TOKEN_SECRET_KEY: token}, tenant=self.tenant,
                                        extra_labels=self._meta(secret_name)["labels"]))
            env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": secret_name, "key": HF_TOKEN_SECRET_KEY}}})
        if variant.scheme == "s3":
            env += _s3_env(variant)
        # No mesh sidecar: the Job only talks to the internet, and a sidecar would keep it from completing.
        labels = {**self._pod_labels("download"), ROLE_LABEL: "model-download", "sidecar.istio.io/inject": "false"}
        kube(
            f"{name}-download", api_version="batch/v1", kind="Job",
            metadata={**self._meta(f"{object_name}-download"),
                      # Downloads take long; servers wait for the cache themselves, so `pulumi up` need not.
                      "annotations": {"pulumi.com/skipAwait": "true"}},
            spec={"backoffLimit": 6, "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "serviceAccountName": self.service_account,
                    "automountServiceAccountToken": False,
                    "securityContext": POD_SECURITY,
                    "containers": [{
                        "name": "download",
                        "image": mirrored(versions.VLLM_IMAGE if variant.scheme == "hf" else versions.AWS_CLI_IMAGE,
                                          self.registry),
                        "command": ["sh", "-c", download_script(variant)],
                        "env": env,
                        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
                        "volumeMounts": [{"name": "models", "mountPath": MODELS}, TMP_MOUNT],
                        "securityContext": READ_ONLY_ROOT,
                    }],
                    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": claim}}, TMP_VOLUME],
                },
            }},
            opts=pulumi.ResourceOptions(parent=self, depends_on=after))

    def _scaled_object(self, name: str, object_name: str, version: str, variant: Endpoint) -> None:
        # The Deployment's pods are <deployment>-<replicaset hash>-<pod hash>: the anchored regex keeps the
        # stable version's query from counting canary pods and the other way round.
        query = LOAD_QUERIES[variant.engine].format(namespace=self.tenant, pods=f"{object_name}-[a-z0-9]+-[a-z0-9]+")
        kube(
            f"{name}-autoscaler",
            api_version="keda.sh/v1alpha1", kind="ScaledObject",
            metadata=self._meta(object_name, version=version),
            spec={
                "scaleTargetRef": {"name": object_name},
                "minReplicaCount": variant.replicas.min,
                "maxReplicaCount": variant.replicas.max,
                "pollingInterval": 15,
                "fallback": {"failureThreshold": 3, "replicas": variant.replicas.min},
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                    # GPU pods take minutes to become ready: add one at a time, remove slowly.
                    "scaleUp": {"stabilizationWindowSeconds": 60,
                                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
                    "scaleDown": {"stabilizationWindowSeconds": 900,
                                  "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]},
                }}},
                "triggers": [{"type": "prometheus", "metricType": "AverageValue", "metadata": {
                    "serverAddress": self.prometheus_url, "query": query, "threshold": f"{variant.target:g}"}}],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.keda_release]))

    def _inference_service(self, name: str, object_name: str, version: str, variant: Endpoint,
                           kserve_release: pulumi.Resource) -> None:
        model: dict = {"modelFormat": {"name": variant.kserve.model_format}, "storageUri": variant.source,
                       "resources": _resources(variant, self.gpu_settings), "securityContext": CONTAINER_SECURITY}
        if variant.kserve.runtime:
            model["runtime"] = variant.kserve.runtime
        runtime = runtimes.runtime_of(variant.kserve.model_format, variant.kserve.runtime)
        if runtime and runtime.name_arg:  # after the runtime's --model_name={{.Name}}: the last one counts
            model["args"] = [f"{runtime.name_arg}={served_name(variant)}"]
        if runtime and runtime.ready_path:  # KServe's default probe is a TCP check of port 8080
            model["readinessProbe"] = {"httpGet": {"path": runtime.ready_path.format(name=served_name(variant)),
                                                   "port": 8080},
                                       "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3}
        predictor = {"minReplicas": variant.replicas.min, "maxReplicas": variant.replicas.max,
                     "scaleMetric": "cpu", "scaleTarget": int(variant.target),
                     "serviceAccountName": self.service_account,
                     "securityContext": POD_SECURITY, "model": model, **_gpu_pod_fields(self.gpu_settings)}
        identity_labels = model_access.identity_pod_labels(variant)
        if identity_labels:  # KServe copies the InferenceService's labels to its pods
            predictor["labels"] = identity_labels
        kube(
            f"{name}-inferenceservice",
            api_version="serving.kserve.io/v1beta1", kind="InferenceService",
            metadata=self._meta(object_name, version=version),
            spec={"predictor": predictor},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[kserve_release]))

    def _model_egress(self, name: str) -> None:
        """Let the pods that fetch the model reach object stores and Hugging Face over HTTPS (tenant
        NetworkPolicies deny egress by default); cluster-internal ranges stay closed."""
        endpoint = self.endpoint
        if needs_cache(endpoint):
            fetchers = {"matchLabels": {ENDPOINT_LABEL: endpoint.name, ROLE_LABEL: "model-download"}}
        elif endpoint.engine == "kserve":  # the storage initializer runs in the predictor pods of both versions
            names = [endpoint.name] + ([f"{endpoint.name}-canary"] if endpoint.canary else [])
            fetchers = {"matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "In",
                                              "values": names}]}
        else:  # Triton reads S3 itself
            fetchers = {"matchLabels": {ENDPOINT_LABEL: endpoint.name}}
        kube(
            f"{name}-model-egress", api_version="networking.k8s.io/v1", kind="NetworkPolicy",
            metadata=self._meta(f"{endpoint.name}-model-egress"),
            spec=model_access.egress_spec(endpoint, fetchers), opts=self._child)


def versions_of(endpoint: Endpoint) -> list[tuple[str, Endpoint]]:
    """The endpoint's versions: stable, and the canary (same spec, its own source and replicas)."""
    result = [("stable", endpoint)]
    if endpoint.canary:
        result.append(("canary", endpoint.model_copy(update={"source": endpoint.canary.source,
                                                             "replicas": endpoint.canary.replicas})))
    return result
