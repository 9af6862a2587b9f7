"""KV-cache- and queue-aware routing of vLLM endpoints (``ai-platform:inferenceRouting``, ``models[].traffic.picker``):
which endpoints sit behind an ``InferencePool`` with the Gateway API Inference Extension's endpoint picker, and how the
picker scores replicas. Built by ``components.mesh.inference_pools``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from .base import ComputeResources, ConfigProblems, Model, Problems

if TYPE_CHECKING:
    from .model import PlatformConfig
    from .serving import Endpoint

Weight = Annotated[int, Field(ge=0, le=100, strict=True)]

# Config key -> the picker's plugin type (gateway-api-inference-extension v1.5.0, pkg/epp/framework/plugins/scheduling/
# scorer: queuedepth/queue.go QueueScorerType, kvcacheutilization/kvcache_utilization.go KvCacheUtilizationScorerType,
# prefix/plugin.go PrefixCacheScorerPluginType).
SCORER_PLUGINS = {
    "queue": "queue-scorer",
    "kv_cache_utilization": "kv-cache-utilization-scorer",
    "prefix_cache": "prefix-cache-scorer",
}


class Scorers(Model):
    """How much each signal counts when the picker chooses a replica (relative weights; 0 leaves a scorer out). The
    defaults are the ``inferencepool`` chart's v1.5.0 (epplib templates/_config.yaml: queue 2, KV cache 2, prefix 3)."""

    queue: Weight = 2
    """Prefer replicas with fewer waiting requests (vLLM ``vllm:num_requests_waiting``)."""
    kv_cache_utilization: Weight = 2
    """Prefer replicas with more free KV cache (vLLM ``vllm:kv_cache_usage_perc``)."""
    prefix_cache: Weight = 3
    """Prefer the replica that most likely holds the prompt's prefix in its KV cache (the picker's own index of the
    prompts it routed): long shared system prompts and multi-turn chats skip recomputing their prefix."""

    @model_validator(mode="after")
    def _some_scorer(self) -> Scorers:
        if not any(getattr(self, key) for key in SCORER_PLUGINS):
            raise ConfigProblems([("queue", "at least one scorer needs a weight above 0")])
        return self

    def weights(self) -> dict[str, int]:
        """Plugin type -> weight, scorers with weight 0 left out."""
        return {plugin: getattr(self, key) for key, plugin in SCORER_PLUGINS.items() if getattr(self, key)}


class Picker(Model):
    """An endpoint's choice about the picker (``models[].traffic.picker``)."""

    enabled: bool = True
    """Route this vLLM endpoint through its InferencePool when ``inferenceRouting.enabled``; false: mesh routing."""
    scorers: Scorers | None = None
    """This endpoint's scorer weights; unset: ``inferenceRouting.scorers``."""


class PickerPods(Model):
    """Each endpoint version's picker: one replica (the chart's recommended pattern: its prefix-cache index is in
    memory), in the tenant's namespace and quota."""

    resources: ComputeResources = ComputeResources(cpu="1", memory="1Gi")
    """CPU and memory requests; the memory is also the limit, the CPU has none. The ``inferencepool`` chart asks 4
    CPUs and 8Gi, sized for high request rates."""


class InferenceRouting(Model):
    """The Gateway API Inference Extension on the Istio ingress gateway: an ``InferencePool`` and an endpoint picker per
    vLLM endpoint version, an ``HTTPRoute`` per endpoint host on the platform's Gateway API ``Gateway``."""

    enabled: bool = False
    """Route external requests to vLLM endpoints by the picker's choice of replica; off: the mesh's routing only."""
    scorers: Scorers = Scorers()
    """Default scorer weights of every picker."""
    failure_mode: Literal["FailOpen", "FailClose"] = "FailOpen"
    """When a picker cannot answer: ``FailOpen`` lets the gateway balance the request itself, ``FailClose`` refuses
    it (the InferencePool's ``endpointPickerRef.failureMode``)."""
    picker: PickerPods = PickerPods()
    """The pickers' pods."""

    def pooled(self, endpoint: Endpoint) -> bool:
        """Whether the endpoint is routed through InferencePools."""
        from components.serving import engines  # at call time: config.serving imports the engines

        picker = endpoint.traffic.picker
        return self.enabled and engines.get(endpoint.engine).endpoint_picker and (picker is None or picker.enabled)

    def scorers_of(self, endpoint: Endpoint) -> Scorers:
        picker = endpoint.traffic.picker
        return (picker and picker.scorers) or self.scorers


def cross_checks(cfg: PlatformConfig) -> Problems:
    """The picker needs the mesh's gateway, the API server and an engine whose metrics it reads; its pods fit the
    tenant's LimitRange."""
    from components.serving import engines  # at call time: config.serving imports the engines

    problems: Problems = []
    routing = cfg.inference_routing
    if routing.enabled and not cfg.mesh.enabled:
        problems.append(
            (
                "inferenceRouting.enabled",
                "the pools are routed by the ingress gateway: set mesh.enabled, or turn it off",
            )
        )
    if routing.enabled and not cfg.cluster.api_server_cidrs:
        problems.append(
            (
                "cluster.apiServerCidrs",
                "the endpoint pickers watch their pods and InferencePool in the Kubernetes API: give the API server's "
                "endpoint addresses",
            )
        )
    for index, endpoint in enumerate(cfg.models):
        picker = endpoint.traffic.picker
        if picker is None:
            continue
        at = f"models[{index}].traffic.picker"
        if not engines.get(endpoint.engine).endpoint_picker:
            pickable = ", ".join(engine.name for engine in engines.all_engines() if engine.endpoint_picker)
            problems.append(
                (
                    at,
                    f"the endpoint picker reads the model server's queue and KV-cache metrics: {pickable} endpoints only (got {endpoint.engine})",
                )
            )
        elif picker.scorers is not None and not routing.enabled:
            problems.append((f"{at}.scorers", "scorers need inferenceRouting.enabled"))
    if routing.enabled:
        pooled_tenants = {endpoint.tenant for endpoint in cfg.models if routing.pooled(endpoint)}
        for tenant_index, tenant in enumerate(cfg.tenants):
            if tenant.name in pooled_tenants:
                problems += tenant.container_problems(
                    "inferenceRouting.picker", f"tenants[{tenant_index}]", routing.picker.resources, 0
                )
    return problems
