"""``ModelEndpoint``: one model endpoint of a tenant, from its ten-line ``models:`` entry.

Owns, in the tenant's namespace, per version (stable, and canary when configured; names: ``engines.base``):
- for an engine whose server the platform runs (``engines.base.ServerEngine``: vLLM, Triton): a Deployment of the
  engine's container, a PodDisruptionBudget and a KEDA ScaledObject on the engine's load query (left out when
  min == max); when the engine downloads the model first (vLLM with ``hf://`` or ``s3://``), a model-cache PVC
  (ReadWriteMany when more than one replica may run) filled once by a download Job (``hf://`` with the vLLM image's
  huggingface_hub, ``s3://`` with the AWS CLI) that the server waits for and then loads offline (restarts and new
  replicas never pull the weights again), and the Hugging Face token, when the stack has one (``huggingFaceToken``,
  or ``secrets.huggingFaceToken`` with the external store: ``<keyPrefix>/huggingface-token``, property ``token``),
  as the Secret ``<version>-hf-token`` (``PlatformSecrets``: a Secret or an ExternalSecret) the Job reads by name;
  one Service with the engine's ports for both versions;
- for an engine run by a controller (KServe): the custom resource the engine builds (an InferenceService);
- the ServiceAccount every pod of the endpoint runs under and the NetworkPolicy letting the pods that fetch the
  model (the engine says which) reach object stores, Hugging Face and what their workload identity needs
  (``model_access``).

What each engine runs, and how, is its module's (``engines``). Every version answers to the endpoint's name on the
same paths, so a split request never asks a version for a name it does not know. Images go through
``cluster.imageRegistry`` when set.

Every pod runs under the Pod Security ``restricted`` profile: non-root with a fixed UID/GID and fsGroup, no
privilege escalation, all capabilities dropped, RuntimeDefault seccomp; servers and the download Job with a
read-only root file system, ``USER``/``HOME`` and every cache on the writable ``/tmp`` volume (the vLLM and AWS CLI
images define no user 1000 and their Python asks for one: ``getpass.getuser()``). GPU settings come from
``components.gpu.gpu_scheduling``. The load metric comes from Prometheus (``serving.prometheusUrl``).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi

from config import versions
from config.cluster import Cluster
from config.gpu import Gpu
from config.serving import Endpoint, Serving, cache_storage_class
from config.tenancy import Tenant

from ..gpu import gpu_scheduling
from ..meta import kube, metadata, mirrored
from ..pods import tmp_volume
from ..secrets import PlatformSecrets
from ..traces import Otlp
from . import engines, model_access
from .engines.base import (
    ENDPOINT_LABEL,
    HOME_ENV,
    MODELS,
    POD_SECURITY,
    READ_ONLY_ROOT,
    ROLE_LABEL,
    TMP_MOUNT,
    ServerEngine,
    model_path,
    s3_env,
    version_name,
    versions_of,
)

__all__ = ["ENDPOINT_LABEL", "ModelEndpoint", "model_path", "versions_of"]

COMPONENT = "serving"
HF_TOKEN_SECRET_KEY = "token"
# Where an external store keeps the token (``<keyPrefix>/huggingface-token``, property ``token``).
HF_TOKEN_REMOTE = "huggingface-token"
TMP_VOLUME = tmp_volume("10Gi")
SMALL = {"cpu": "100m", "memory": "128Mi"}


def _resources(endpoint: Endpoint, gpu_settings: dict | None) -> dict:
    """Requests == limits for CPU and memory (Guaranteed QoS) plus the GPU resource from the helper."""
    amounts = endpoint.resources.model_dump()
    if gpu_settings:
        amounts.update(gpu_settings["resources"]["limits"])
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _gpu_pod_fields(gpu_settings: dict | None) -> dict:
    return {"tolerations": gpu_settings["tolerations"], "affinity": gpu_settings["affinity"]} if gpu_settings else {}


def download_script(endpoint: Endpoint) -> str:
    """Fill the cache once; the marker file tells servers (and later runs) that the model is complete."""
    target = model_path(endpoint)
    if endpoint.scheme == "hf":
        fetch = (
            f"python3 -c 'from huggingface_hub import snapshot_download; "
            f'snapshot_download(repo_id="{endpoint.location}", local_dir="{target}")\''
        )
    else:
        fetch = f"aws s3 sync '{endpoint.source}' '{target}'"
    return f"set -eu\nif [ -f '{target}/.ready' ]; then exit 0; fi\nmkdir -p '{target}'\n{fetch}\ntouch '{target}/.ready'\n"


@dataclass(frozen=True)
class ModelEndpointArgs:
    """What ``ModelEndpoint`` is built from: the endpoint, its tenant, the GPU and serving config, where Prometheus
    answers (autoscaling queries) and the cluster (image registry, platform profile); keyword-only, the tenant's namespace (an Output: every
    object waits for it), the Hugging Face token, the KServe and KEDA releases (CRDs) and the platform's Secrets."""

    endpoint: Endpoint
    tenant: Tenant
    gpu: Gpu
    serving: Serving
    prometheus_url: str
    cluster: Cluster
    _: KW_ONLY
    namespace: pulumi.Input[str]
    hf_token: pulumi.Output | None
    kserve_release: pulumi.Resource
    keda_release: pulumi.Resource
    platform_secrets: PlatformSecrets
    otlp: Otlp | None = None
    """Where the server sends its spans (the collector), with traces on."""
    meter_tokens: bool = False
    """The gateway charges its responses' tokens (``RateLimits.meters_tokens``): usage in every response."""


class ModelEndpoint(pulumi.ComponentResource):
    """A tenant's model endpoint: per version (stable, and canary when configured) a vLLM or Triton Deployment
    with its PDB, autoscaler and model storage, or a KServe InferenceService; one Service for both versions."""

    def __init__(self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:serving:ModelEndpoint", name, None, opts)
        endpoint, tenant, gpu, serving, namespace = args.endpoint, args.tenant, args.gpu, args.serving, args.namespace
        prometheus_url, hf_token, keda_release = args.prometheus_url, args.hf_token, args.keda_release
        kserve_release, platform_secrets, registry = (
            args.kserve_release,
            args.platform_secrets,
            args.cluster.image_registry,
        )
        self.profile = args.cluster.profile
        self._child = pulumi.ResourceOptions(parent=self)
        # The tenant namespace's Output: every object waits for the namespace to exist.
        self.endpoint, self.tenant, self.namespace, self.registry = endpoint, tenant.name, namespace, registry
        self.otlp, self.meter_tokens = args.otlp, args.meter_tokens
        self.serving = serving
        self.prometheus_url, self.hf_token, self.keda_release = prometheus_url, hf_token, keda_release
        self.platform_secrets = platform_secrets
        self.gpu_settings = (
            gpu_scheduling(gpu, endpoint.gpu, tenant.gpu_isolation == "exclusive") if endpoint.gpu else None
        )

        self.service_account = model_access.service_account_name(endpoint)
        model_access.service_account(name, endpoint, self._meta(self.service_account), self)
        self.engine = engine = engines.of(endpoint)
        for version, variant in versions_of(endpoint):
            logical, object_name = version_name(name, version), version_name(endpoint.name, version)
            if isinstance(engine, ServerEngine):
                self._deployment(logical, object_name, version, variant, engine)
            else:
                self._custom_resource(logical, object_name, version, variant, kserve_release)
        if isinstance(engine, ServerEngine):
            kube(
                f"{name}-service",
                api_version="v1",
                kind="Service",
                metadata=self._meta(endpoint.name),
                spec={
                    "selector": {ENDPOINT_LABEL: endpoint.name},
                    "ports": [
                        {
                            "name": port_name,
                            "port": port,
                            "targetPort": port_name,
                            "protocol": "TCP",
                            "appProtocol": protocol,
                        }
                        for port_name, port, protocol in engine.ports
                    ],
                },
                opts=self._child,
            )
        if endpoint.scheme in ("hf", "s3", "gs"):
            self._model_egress(name)
        self.register_outputs({})

    def _meta(self, object_name: str, **labels: str) -> dict:
        extra = {
            "app.kubernetes.io/name": self.endpoint.name,
            ENDPOINT_LABEL: self.endpoint.name,
            "ai-platform/engine": self.endpoint.engine,
            **labels,
        }
        return metadata(object_name, COMPONENT, namespace=self.namespace, tenant=self.tenant, extra_labels=extra)

    def _pod_labels(self, object_name: str, **labels: str) -> dict:
        """Labels of the endpoint's pods: the objects' labels and what the workload identity needs."""
        return {
            **self._meta(object_name, **labels)["labels"],
            **model_access.identity_pod_labels(self.endpoint, self.profile),
        }

    def _deployment(self, name: str, object_name: str, version: str, variant: Endpoint, engine: ServerEngine) -> None:
        """One version's Deployment with its model cache and download Job, PDB and autoscaler."""
        volumes = [TMP_VOLUME, *engine.volumes(variant)]
        init_containers = []
        container = engine.container(variant, mirrored(engine.contract.image, self.registry))
        if self.otlp:
            trace_args, trace_env = engine.tracing(variant, self.otlp)
            container["args"] = [*container["args"], *trace_args]
            container["env"] = [*container.get("env", []), *trace_env]
        if self.meter_tokens:
            container["args"] = [*container["args"], *engine.token_usage_args()]
        container["resources"] = _resources(variant, self.gpu_settings)

        if engine.needs_cache(variant):
            claim = self._model_cache(name, object_name, variant)
            volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
            self._download_job(name, object_name, variant, claim)
            marker = f"{model_path(variant)}/.ready"
            init_containers.append(
                {
                    "name": "wait-for-model",
                    "image": container["image"],
                    "command": ["sh", "-c", f"until [ -f '{marker}' ]; do echo waiting for {marker}; sleep 10; done"],
                    "volumeMounts": [{"name": "models", "mountPath": MODELS, "readOnly": True}],
                    "resources": {"requests": SMALL, "limits": SMALL},
                    "securityContext": READ_ONLY_ROOT,
                }
            )
        elif variant.scheme == "pvc":
            claim_name = variant.location.partition("/")[0]
            volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": claim_name, "readOnly": True}})

        selector = engine.pod_selector(variant, version)
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
        kube(
            f"{name}-deployment",
            api_version="apps/v1",
            kind="Deployment",
            metadata=self._meta(object_name, version=version),
            spec=spec,
            opts=self._child,
        )
        kube(
            f"{name}-pdb",
            api_version="policy/v1",
            kind="PodDisruptionBudget",
            metadata=self._meta(object_name, version=version),
            spec={
                "maxUnavailable": 1,
                "selector": {"matchLabels": selector},
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
            opts=self._child,
        )
        if autoscaled:
            self._scaled_object(name, object_name, version, variant, engine)

    def _model_cache(self, name: str, object_name: str, variant: Endpoint) -> pulumi.Output:
        spec = {
            "accessModes": ["ReadWriteMany" if variant.replicas.max > 1 else "ReadWriteOnce"],
            "resources": {"requests": {"storage": variant.cache.size}},
        }
        storage_class = cache_storage_class(variant, self.serving, self.profile.rwx_storage_class)
        if storage_class:
            spec["storageClassName"] = storage_class
        claim = kube(
            f"{name}-model-cache",
            api_version="v1",
            kind="PersistentVolumeClaim",
            metadata=self._meta(f"{object_name}-model-cache"),
            spec=spec,
            opts=self._child,
        )
        return claim.metadata["name"]

    def _download_job(self, name: str, object_name: str, variant: Endpoint, claim: pulumi.Output) -> None:
        env = HOME_ENV + [{"name": "HF_HOME", "value": "/tmp/hf"}]
        secrets = self.platform_secrets
        token = (
            secrets.provided(
                self.hf_token, HF_TOKEN_REMOTE, HF_TOKEN_SECRET_KEY, available=secrets.cfg.hugging_face_token
            )
            if variant.scheme == "hf"
            else None
        )
        after: list[pulumi.Resource] = []
        if token is not None:
            secret_name = f"{object_name}-hf-token"
            after.append(
                secrets.secret(
                    f"{name}-hf-token",
                    secret_name,
                    self.namespace,
                    COMPONENT,
                    self,
                    {HF_TOKEN_SECRET_KEY: token},
                    tenant=self.tenant,
                    extra_labels=self._meta(secret_name)["labels"],
                )
            )
            env.append(
                {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": HF_TOKEN_SECRET_KEY}}}
            )
        if variant.scheme == "s3":
            env += s3_env(variant)
        # No mesh sidecar: the Job only talks to the internet, and a sidecar would keep it from completing.
        labels = {**self._pod_labels("download"), ROLE_LABEL: "model-download", "sidecar.istio.io/inject": "false"}
        kube(
            f"{name}-download",
            api_version="batch/v1",
            kind="Job",
            metadata={
                **self._meta(f"{object_name}-download"),
                # Downloads take long; servers wait for the cache themselves, so `pulumi up` need not.
                "annotations": {"pulumi.com/skipAwait": "true"},
            },
            spec={
                "backoffLimit": 6,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "serviceAccountName": self.service_account,
                        "automountServiceAccountToken": False,
                        "securityContext": POD_SECURITY,
                        "containers": [
                            {
                                "name": "download",
                                "image": mirrored(
                                    versions.VLLM_IMAGE if variant.scheme == "hf" else versions.AWS_CLI_IMAGE,
                                    self.registry,
                                ),
                                "command": ["sh", "-c", download_script(variant)],
                                "env": env,
                                "resources": {
                                    "requests": {"cpu": "1", "memory": "2Gi"},
                                    "limits": {"cpu": "2", "memory": "4Gi"},
                                },
                                "volumeMounts": [{"name": "models", "mountPath": MODELS}, TMP_MOUNT],
                                "securityContext": READ_ONLY_ROOT,
                            }
                        ],
                        "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": claim}}, TMP_VOLUME],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    def _scaled_object(
        self, name: str, object_name: str, version: str, variant: Endpoint, engine: ServerEngine
    ) -> None:
        # The Deployment's pods are <deployment>-<replicaset hash>-<pod hash>: the anchored regex keeps the
        # stable version's query from counting canary pods and the other way round.
        query = engine.load_query.format(namespace=self.tenant, pods=f"{object_name}-[a-z0-9]+-[a-z0-9]+")
        kube(
            f"{name}-autoscaler",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata=self._meta(object_name, version=version),
            spec={
                "scaleTargetRef": {"name": object_name},
                "minReplicaCount": variant.replicas.min,
                "maxReplicaCount": variant.replicas.max,
                "pollingInterval": 15,
                "fallback": {"failureThreshold": 3, "replicas": variant.replicas.min},
                "advanced": {
                    "horizontalPodAutoscalerConfig": {
                        "behavior": {
                            # GPU pods take minutes to become ready: add one at a time, remove slowly.
                            "scaleUp": {
                                "stabilizationWindowSeconds": 60,
                                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                            },
                            "scaleDown": {
                                "stabilizationWindowSeconds": 900,
                                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                            },
                        }
                    }
                },
                "triggers": [
                    {
                        "type": "prometheus",
                        "metricType": "AverageValue",
                        "metadata": {
                            "serverAddress": self.prometheus_url,
                            "query": query,
                            "threshold": f"{variant.target:g}",
                        },
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.keda_release]),
        )

    def _custom_resource(
        self, name: str, object_name: str, version: str, variant: Endpoint, kserve_release: pulumi.Resource
    ) -> None:
        """One version's custom resource (KServe's InferenceService), which the engine's controller serves."""
        pod = {"serviceAccountName": self.service_account, **_gpu_pod_fields(self.gpu_settings)}
        identity_labels = model_access.identity_pod_labels(variant, self.profile)
        if identity_labels:  # KServe copies the InferenceService's labels to its pods
            pod["labels"] = identity_labels
        api_version, kind, spec = self.engine.custom_resource(variant, _resources(variant, self.gpu_settings), pod)
        kube(
            f"{name}-{kind.lower()}",
            api_version=api_version,
            kind=kind,
            metadata=self._meta(object_name, version=version),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[kserve_release]),
        )

    def _model_egress(self, name: str) -> None:
        """Let the pods that fetch the model reach object stores and Hugging Face over HTTPS (tenant
        NetworkPolicies deny egress by default); cluster-internal ranges stay closed."""
        endpoint = self.endpoint
        kube(
            f"{name}-model-egress",
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=self._meta(f"{endpoint.name}-model-egress"),
            spec=model_access.egress_spec(endpoint, self.engine.fetchers(endpoint), self.profile),
            opts=self._child,
        )
