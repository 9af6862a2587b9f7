"""``KServe``: the KServe control plane in Standard mode (plain Deployments, no Knative).

Owns the KServe namespace (Pod Security ``restricted``: the controller pod runs with ``runAsNonRoot`` and seccomp
``RuntimeDefault``, its manager and kube-rbac-proxy containers without privilege escalation or capabilities; the
model pods run in the tenants' namespaces, not here) and three Helm releases of the pinned OCI charts:

- ``kserve-crd``: InferenceService, ServingRuntime, ClusterServingRuntime, ... CRDs. They are chart templates,
  not ``crds/``: a new pin upgrades them with the release, and uninstalling this release deletes them and every
  InferenceService with them;
- ``kserve-resources``: controller, webhooks and ``inferenceservice-config``. Depends on the CRD release and on
  the cert-manager release, since its webhook certificate is a cert-manager Certificate (self-signed Issuer).
  ``defaultDeploymentMode`` is ``Standard``; KServe creates no Ingress, HTTPRoute or VirtualService
  (``disableIngressCreation``, ``disableIstioVirtualHost``): the mesh component routes to the predictor Services
  with Istio VirtualServices on the ``<ingress>/ai-platform-gateway`` Gateway. The storage initializer runs
  without privilege escalation, as non-root, with every capability dropped;
- ``kserve-runtime-configs``: the ClusterServingRuntimes (``kserve.servingruntime.enabled``, off by default in
  the chart). They are checked by KServe's validating webhook, so the release depends on the CRD and the
  resources releases. The vLLM and Triton runtimes use the platform's pinned images (the chart's vLLM tag is
  ``latest``).

The v0.20.0 chart has no replica key for the controller (its Deployment sets no ``replicas``): it runs one
replica whatever ``serving.replicas`` says, with ``--leader-elect`` already on.

``cluster.imageRegistry`` replaces the registry host of every image the charts name (Docker Hub for names
without one) and keeps the path: ``kserve/kserve-controller`` -> ``<mirror>/kserve/kserve-controller``,
``nvcr.io/nvidia/tritonserver`` -> ``<mirror>/nvidia/tritonserver``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi

from config import versions
from config.cluster import Cluster, Namespaces
from config.serving import Serving

from ..meta import ComponentArgs, helm_release, mirrored, platform_namespace
from ..pods import restricted_container

COMPONENT = "kserve"
POD_SECURITY = "restricted"
DEPLOYMENT_MODE = "Standard"
GATEWAY = "ai-platform-gateway"

# Image values of the kserve-resources chart and their chart defaults (a test checks them against the upstream
# values.yaml). The localmodel images are left out: the local model cache stays off.
RESOURCES_IMAGES = {
    "kserve.controller.image": "kserve/kserve-controller",
    "kserve.controller.rbacProxyImage": versions.KSERVE_RBAC_PROXY_IMAGE,
    "kserve.agent.image": "kserve/agent",
    "kserve.router.image": "kserve/router",
    "kserve.storage.image": "kserve/storage-initializer",
    "kserve.servingruntime.art.image": "kserve/art-explainer",
}
# Image values of the kserve-runtime-configs chart (one per ClusterServingRuntime) and their chart defaults.
RUNTIME_IMAGES = {
    f"kserve.servingruntime.{runtime}.image": image
    for runtime, image in {
        "tensorflow": "tensorflow/serving",
        "mlserver": "docker.io/seldonio/mlserver",
        "sklearnserver": "kserve/sklearnserver",
        "xgbserver": "kserve/xgbserver",
        "huggingfaceserver": "kserve/huggingfaceserver",
        "tritonserver": "nvcr.io/nvidia/tritonserver",
        "pmmlserver": "kserve/pmmlserver",
        "predictiveserver": "kserve/predictiveserver",
        "paddleserver": "kserve/paddleserver",
        "lgbserver": "kserve/lgbserver",
        "autogluonserver": "kserve/autogluonserver",
        "torchserve": "pytorch/torchserve-kfs",
        "vllmserver": "vllm/vllm-openai",
        "art": "kserve/art-explainer",
    }.items()
}
# Restricted-compatible container securityContext of the storage initializer (the chart's key takes no
# seccompProfile; restricted pods set it at pod level).
STORAGE_INITIALIZER_SECURITY = {**restricted_container(read_only_root=False, non_root=True), "privileged": False}


def _tag(image: str) -> str:
    return image.rsplit(":", 1)[1]


def _set(values: dict, path: str, value: object) -> None:
    *parents, key = path.split(".")
    for parent in parents:
        values = values.setdefault(parent, {})
    values[key] = value


def _mirror(values: dict, images: dict[str, str], cluster: Cluster) -> dict:
    if cluster.image_registry:
        for path, image in images.items():
            _set(values, path, mirrored(image, cluster.image_registry))
    return values


def resources_values(cluster: Cluster, namespaces: Namespaces) -> dict:
    """Values of the kserve-resources chart (keys checked against the upstream values.yaml by the schema tier)."""
    values = {
        "kserve": {
            "controller": {
                "deploymentMode": DEPLOYMENT_MODE,
                "imagePullPolicy": "IfNotPresent",
                "gateway": {
                    "domain": cluster.domain,
                    "disableIngressCreation": True,
                    "disableIstioVirtualHost": True,
                    "ingressGateway": {
                        "gateway": f"{namespaces.ingress}/{GATEWAY}",
                        "createGateway": False,
                        "enableGatewayApi": False,
                    },
                },
            },
            "storage": {"containerSecurityContext": STORAGE_INITIALIZER_SECURITY},
        }
    }
    return _mirror(values, RESOURCES_IMAGES, cluster)


def runtime_values(cluster: Cluster) -> dict:
    """Values of the kserve-runtime-configs chart: the ClusterServingRuntimes on, vLLM and Triton pinned."""
    values = {
        "kserve": {
            "servingruntime": {
                "enabled": True,
                "vllmserver": {"tag": _tag(versions.VLLM_IMAGE)},
                "tritonserver": {"tag": _tag(versions.TRITON_IMAGE)},
            }
        }
    }
    return _mirror(values, RUNTIME_IMAGES, cluster)


@dataclass(frozen=True)
class KServeArgs(ComponentArgs):
    """What ``KServe`` is built from (besides the cluster and namespaces): the serving config; keyword-only, the
    cert-manager release its controller waits for (webhook certificates)."""

    serving: Serving
    _: KW_ONLY
    cert_manager_release: pulumi.Resource


class KServe(pulumi.ComponentResource):
    """KServe namespace and the CRD, controller and serving-runtime Helm releases."""

    def __init__(self, name: str, args: KServeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:serving:KServe", name, None, opts)
        cluster, namespaces, protect, cert_manager_release = (
            args.cluster,
            args.namespaces,
            args.protect,
            args.cert_manager_release,
        )
        self.namespace = platform_namespace(
            f"{name}-namespace", namespaces.kserve, COMPONENT, POD_SECURITY, cluster.kubernetes_version, self
        )
        ns = self.namespace.metadata["name"]
        self.crd_release = helm_release(
            f"{name}-crd-release", versions.KSERVE_CRD, ns, {}, self, cluster=args.cluster, protect=protect
        )
        self.release = helm_release(
            f"{name}-release",
            versions.KSERVE_RESOURCES,
            ns,
            resources_values(cluster, namespaces),
            self,
            cluster=args.cluster,
            depends_on=[self.crd_release, cert_manager_release],
        )
        self.runtimes_release = helm_release(
            f"{name}-runtimes-release",
            versions.KSERVE_RUNTIME_CONFIGS,
            ns,
            runtime_values(cluster),
            self,
            cluster=args.cluster,
            depends_on=[self.crd_release, self.release],
        )
        self.register_outputs({"namespace": self.namespace.metadata["name"], "release": self.release.name})
