"""Bad stack config: each case fails with the stack and config path named, and registers nothing."""

import copy

import pytest

from config import ConfigError
from tests.conftest import config_copy, run


def tenant(config: dict, index: int = 0) -> dict:
    return config["ai-platform:tenants"][index]


def set_path(*keys_and_value):
    """A mutation setting config[key1][key2]... = value."""
    *keys, value = keys_and_value

    def mutate(config: dict) -> None:
        target = config
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


def delete_path(*keys):
    def mutate(config: dict) -> None:
        target = config
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return mutate


T = "ai-platform:tenants"
C = "ai-platform:cluster"

# (case id, mutation of the dev config, text the error must contain)
CASES = [
    ("unknown top-level key", set_path("ai-platform:tenant", []), "ai-platform:tenant: unknown key (allowed: cluster"),
    ("unknown tenant key", set_path(T, 0, "quotas", {}), "ai-platform:tenants[0].quotas: unknown key (allowed: access"),
    ("unknown quota key", set_path(T, 1, "quota", "gpus", 1), "ai-platform:tenants[1].quota.gpus: unknown key"),
    ("tenants not a list", set_path(T, {"research": {}}), "ai-platform:tenants: input should be a valid list"),
    ("tenant not an object", set_path(T, 1, "product"), "ai-platform:tenants[1]: input should be a valid dictionary"),
    ("gpu quota a string", set_path(T, 0, "quota", "gpu", "two"), "ai-platform:tenants[0].quota.gpu:"),
    ("negative gpu quota", set_path(T, 0, "quota", "gpu", -2), "ai-platform:tenants[0].quota.gpu: must be >= 0"),
    ("fractional gpu quota", set_path(T, 0, "quota", "gpu", 1.5), "ai-platform:tenants[0].quota.gpu: input should be"),
    (
        "bad cpu quantity",
        set_path(T, 0, "quota", "cpu", "requests", "8 cores"),
        "ai-platform:tenants[0].quota.cpu.requests: not a Kubernetes quantity",
    ),
    (
        "negative memory",
        set_path(T, 0, "quota", "memory", "requests", "-1Gi"),
        "ai-platform:tenants[0].quota.memory.requests: must not be negative",
    ),
    ("bad storage quantity", set_path(T, 1, "quota", "storage", "lots"), "ai-platform:tenants[1].quota.storage:"),
    (
        "cpu limits below requests",
        set_path(T, 0, "quota", "cpu", "limits", "4"),
        "ai-platform:tenants[0].quota.cpu.requests: must be <= limits (got 8 > 4)",
    ),
    (
        "negative load balancers",
        set_path(T, 0, "quota", "loadBalancers", -1),
        "ai-platform:tenants[0].quota.loadBalancers: must be >= 0",
    ),
    (
        "bad object count key",
        set_path(T, 0, "quota", "counts", {"Jobs/Batch!": 3}),
        'ai-platform:tenants[0].quota.counts["Jobs/Batch!"]: must be a resource name',
    ),
    (
        "duplicate tenant",
        set_path(T, 1, "name", "research"),
        "ai-platform:tenants[1].name: duplicate tenant 'research' (also tenants[0])",
    ),
    (
        "invalid DNS name",
        set_path(T, 0, "name", "Research_Team"),
        "ai-platform:tenants[0].name: must be a DNS-1123 label",
    ),
    ("name too long", set_path(T, 0, "name", "a" * 64), "ai-platform:tenants[0].name: must be a DNS-1123 label"),
    (
        "reserved kube namespace",
        set_path(T, 0, "name", "kube-system"),
        "ai-platform:tenants[0].name: 'kube-system' is reserved",
    ),
    (
        "reserved platform namespace",
        set_path(T, 1, "name", "volcano-system"),
        "ai-platform:tenants[1].name: 'volcano-system' is reserved",
    ),
    (
        "unknown pod security level",
        set_path(T, 0, "podSecurity", "strict"),
        "ai-platform:tenants[0].podSecurity: not an allowed value (allowed: 'baseline' or 'restricted', got: 'strict')",
    ),
    ("privileged tenant", set_path(T, 0, "podSecurity", "privileged"), "ai-platform:tenants[0].podSecurity:"),
    ("missing quota", delete_path(T, 0, "quota"), "ai-platform:tenants[0].quota: required key is missing"),
    ("missing access", delete_path(T, 1, "access"), "ai-platform:tenants[1].access: required key is missing"),
    (
        "tenant without admins",
        set_path(T, 0, "access", "admins", {"groups": []}),
        "ai-platform:tenants[0].access.admins: a tenant needs at least one admin",
    ),
    ("missing cluster", delete_path(C), "ai-platform:cluster: required key is missing"),
    (
        "unsupported kubernetes version",
        set_path(C, "kubernetesVersion", "1.20"),
        "ai-platform:cluster.kubernetesVersion: not an allowed value (allowed: '1.25'",
    ),
    (
        "invalid domain",
        set_path(C, "domain", "AI.Example.com"),
        "ai-platform:cluster.domain: must be a DNS-1123 subdomain",
    ),
    (
        "invalid image registry",
        set_path(C, "imageRegistry", "https://registry.example.com"),
        "ai-platform:cluster.imageRegistry: must be a registry host",
    ),
    ("queue weight zero", set_path(T, 0, "queue", "weight", 0), "ai-platform:tenants[0].queue.weight: must be >= 1"),
    (
        "queue reclaimable not a bool",
        set_path(T, 0, "queue", "reclaimable", "sometimes"),
        "ai-platform:tenants[0].queue.reclaimable:",
    ),
    (
        "default limit above max",
        set_path(T, 0, "limitRange", "container", "max", {"cpu": "500m", "memory": "1Gi"}),
        "ai-platform:tenants[0].limitRange.container.default.cpu: must be <= limitRange.container.max.cpu",
    ),
    (
        "pvc max above storage quota",
        set_path(T, 1, "limitRange", {"pvc": {"max": "1Ti"}}),
        "ai-platform:tenants[1].limitRange.pvc.max: must be <= quota.storage (got 1Ti > 100Gi)",
    ),
    (
        "namespace names clash",
        set_path("ai-platform:namespaces", {"monitoring": "volcano-system"}),
        "ai-platform:namespaces.monitoring: 'volcano-system' is already the volcano namespace",
    ),
    (
        "volcano replicas zero",
        set_path("ai-platform:volcano", "replicas", 0),
        "ai-platform:volcano.replicas: must be >= 1",
    ),
    (
        "volcano resources limits below requests",
        set_path(
            "ai-platform:volcano",
            "resources",
            {"scheduler": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
        ),
        "ai-platform:volcano.resources.scheduler.requests.cpu: must be <= limits.cpu (got 2 > 1)",
    ),
]


G = "ai-platform:gpu"
P = (G, "nodePools")

# GPU layer: (case id, stack whose config is mutated, mutation, text the error must contain)
GPU_CASES = [
    (
        "MIG profile not of the GPU model",
        "prod",
        set_path(*P, 0, "migProfiles", {"3g.71gb": 1}),
        "ai-platform:gpu.nodePools[0].migProfiles: '3g.71gb' is not a MIG profile of H100-80GB (allowed: 1g.10gb",
    ),
    (
        "MIG layout larger than the GPU",
        "prod",
        set_path(*P, 0, "migProfiles", {"3g.40gb": 2, "2g.20gb": 1}),
        "ai-platform:gpu.nodePools[0].migProfiles: layout needs 8/7 compute",
    ),
    (
        "MIG on a GPU without MIG",
        "prod",
        set_path(*P, 0, "gpuModel", "L40S"),
        "ai-platform:gpu.nodePools[0].migProfiles: L40S does not support MIG",
    ),
    (
        "GPU quotas over capacity",
        "prod",
        set_path(T, 0, "quota", "gpu", 30),
        "ai-platform:tenants: quotas ask for 42 nvidia.com/gpu (research 30, product 8, analytics 4) but gpu.nodePools "
        "schedule 32",
    ),
    (
        "MIG quota no pool provides",
        "prod",
        set_path(T, 1, "quota", "mig", {"4g.40gb": 1}),
        "ai-platform:tenants: quotas ask for 1 nvidia.com/mig-4g.40gb (product 1) but gpu.nodePools schedule 0",
    ),
    (
        "exclusive tenant beyond unshared GPUs",
        "dev",
        set_path(T, 0, "gpuIsolation", "exclusive"),
        "ai-platform:tenants: exclusive tenants (research 2) ask for 2 unshared nvidia.com/gpu but pools with sharing "
        "none have 0",
    ),
    (
        "time-slicing replicas below 2",
        "dev",
        set_path(G, "timeSlicing", "replicas", 1),
        "ai-platform:gpu.timeSlicing.replicas: must be >= 2",
    ),
    (
        "unknown sharing mode",
        "dev",
        set_path(G, "sharing", "mps"),
        "ai-platform:gpu.sharing: not an allowed value (allowed: 'none', 'time-slicing' or 'mig', got: 'mps')",
    ),
    (
        "pool without GPUs",
        "dev",
        set_path(*P, 0, "gpusPerNode", 0),
        "ai-platform:gpu.nodePools[0].gpusPerNode: must be >= 1",
    ),
    (
        "pool without nodes",
        "prod",
        set_path(*P, 1, "nodes", []),
        "ai-platform:gpu.nodePools[1].nodes: give either nodes (node names) or nodeSelector",
    ),
    (
        "pool with nodes and selector",
        "prod",
        set_path(*P, 1, "nodeSelector", {"pool": "a100"}),
        "ai-platform:gpu.nodePools[1].nodes: give either nodes (node names) or nodeSelector",
    ),
    (
        "selector pool without node count",
        "dev",
        delete_path(*P, 0, "nodeCount"),
        "ai-platform:gpu.nodePools[0].nodeCount: required with nodeSelector",
    ),
    (
        "single MIG strategy with two profiles",
        "prod",
        set_path(G, "mig", {"strategy": "single"}),
        "ai-platform:gpu.nodePools[0].migProfiles: the single MIG strategy allows one profile per pool",
    ),
    (
        "MIG profiles on an unshared pool",
        "prod",
        set_path(*P, 1, "migProfiles", {"1g.10gb": 7}),
        "ai-platform:gpu.nodePools[1].migProfiles: only for MIG pools (this pool's sharing is none)",
    ),
    (
        "MIG pool chosen by selector",
        "dev",
        set_path(
            *P,
            0,
            {
                "name": "a100",
                "gpuModel": "A100-80GB",
                "gpusPerNode": 8,
                "nodeSelector": {"pool": "a100"},
                "nodeCount": 1,
                "sharing": "mig",
                "migProfiles": {"7g.80gb": 1},
            },
        ),
        "ai-platform:gpu.nodePools[0].nodeSelector: MIG pools must name their nodes",
    ),
    (
        "node in two pools",
        "prod",
        set_path(*P, 1, "nodes", ["gpu-a100-01", "gpu-h100-01"]),
        "ai-platform:gpu.nodePools[1].nodes: node 'gpu-h100-01' is already in pool 'h100-mig'",
    ),
    (
        "duplicate pool",
        "prod",
        set_path(*P, 1, "name", "h100-mig"),
        "ai-platform:gpu.nodePools[1].name: duplicate pool 'h100-mig'",
    ),
    (
        "unknown GPU model",
        "dev",
        set_path(*P, 0, "gpuModel", "A100"),
        "ai-platform:gpu.nodePools[0].gpuModel: not an allowed value (allowed: 'A100-40GB'",
    ),
    (
        "oversubscription below 1",
        "dev",
        set_path(G, "oversubscription", 0.5),
        "ai-platform:gpu.oversubscription: must be >= 1.0",
    ),
    (
        "negative GPUs per container",
        "prod",
        set_path(T, 0, "limitRange", "container", "maxGpus", -1),
        "ai-platform:tenants[0].limitRange.container.maxGpus: must be >= 0",
    ),
]


M = "ai-platform:models"

# Model endpoints: (case id, stack, mutation, text the error must contain)
SERVING_CASES = [
    (
        "unknown engine",
        "dev",
        set_path(M, 0, "engine", "tgi"),
        "ai-platform:models[0].engine: not an allowed value (allowed: 'vllm', 'triton' or 'kserve', got: 'tgi')",
    ),
    (
        "unknown tenant",
        "dev",
        set_path(M, 1, "tenant", "marketing"),
        "ai-platform:models[1].tenant: no tenant 'marketing' (tenants: research, product)",
    ),
    (
        "GPUs over the tenant quota",
        "prod",
        set_path(M, 0, "replicas", {"min": 1, "max": 5}),
        "ai-platform:models[0].gpu: endpoints of tenant 'research' need up to 24 nvidia.com/gpu at max replicas "
        "(models[0] 24) but tenants[0].quota allows 16",
    ),
    (
        "tensor parallel not dividing GPUs",
        "prod",
        set_path(M, 0, "vllm", "tensorParallel", 3),
        "ai-platform:models[0].vllm.tensorParallel: must divide gpu.count (got 3 for 4 GPUs)",
    ),
    (
        "bad storage URI scheme",
        "dev",
        set_path(M, 0, "source", "ftp://models/qwen"),
        "ai-platform:models[0].source: must be a URI with scheme hf://, s3://, pvc:// for vllm (got 'ftp://models/qwen')",
    ),
    (
        "Hugging Face source for Triton",
        "prod",
        set_path(M, 1, "source", "hf://org/model"),
        "ai-platform:models[1].source: must be a URI with scheme s3://, pvc:// for triton",
    ),
    (
        "duplicate endpoint",
        "prod",
        lambda config: config[M].append(copy.deepcopy(config[M][0])),
        "ai-platform:models[3].name: duplicate endpoint 'llama-70b' in tenant 'research' (also models[0])",
    ),
    (
        "min above max replicas",
        "dev",
        set_path(M, 0, "replicas", {"min": 3, "max": 2}),
        "ai-platform:models[0].replicas.min: must be <= max (got min 3 > max 2)",
    ),
    (
        "missing model source",
        "dev",
        delete_path(M, 0, "source"),
        "ai-platform:models[0].source: required key is missing",
    ),
    ("vLLM without GPUs", "dev", delete_path(M, 0, "gpu"), "ai-platform:models[0].gpu: a vLLM endpoint needs GPUs"),
    (
        "options of another engine",
        "dev",
        set_path(M, 1, "vllm", {"dtype": "half"}),
        "ai-platform:models[1].vllm: options for vllm on a kserve endpoint",
    ),
    (
        "KServe without a model format",
        "dev",
        delete_path(M, 1, "kserve"),
        "ai-platform:models[1].kserve: a kserve endpoint needs kserve.modelFormat",
    ),
    (
        "MIG profile no pool offers",
        "prod",
        set_path(M, 1, "gpu", {"migProfile": "4g.40gb"}),
        "ai-platform:models[1].gpu: no GPU node pool can serve 1 x 4g.40gb",
    ),
    (
        "exclusive tenant on time-sliced GPUs",
        "dev",
        set_path(T, 0, "gpuIsolation", "exclusive"),
        "ai-platform:models[0].gpu: no GPU node pool can serve 1 x GPU for an exclusive tenant",
    ),
    (
        "endpoint larger than the tenant allows",
        "prod",
        set_path(M, 1, "resources", {"cpu": "48", "memory": "16Gi"}),
        "ai-platform:models[1].resources.cpu: must be <= tenants[1] container maximum (got 48 > 32)",
    ),
    (
        "GPUs per container above the cap",
        "prod",
        set_path(M, 0, "gpu", "count", 12),
        "ai-platform:models[0].gpu.count: must be <= tenants[0].limitRange.container.maxGpus (got 12 > 8)",
    ),
    (
        "endpoints without serving",
        "dev",
        set_path("ai-platform:serving", {"enabled": False}),
        "ai-platform:models: model endpoints need serving.enabled",
    ),
    (
        "cache size not a quantity",
        "dev",
        set_path(M, 0, "cache", {"size": "big"}),
        "ai-platform:models[0].cache.size: not a Kubernetes quantity",
    ),
    (
        "bad S3 endpoint URL",
        "prod",
        set_path(M, 1, "s3", "endpoint", "minio:9000"),
        "ai-platform:models[1].s3.endpoint: string should match pattern",
    ),
    (
        "bad Prometheus URL",
        "dev",
        set_path("ai-platform:serving", "prometheusUrl", "prometheus"),
        "ai-platform:serving.prometheusUrl: string should match pattern",
    ),
    # How an endpoint reads and serves its model (issue 16).
    (
        "Triton without the models it serves",
        "prod",
        delete_path(M, 1, "triton"),
        "ai-platform:models[1].triton: a triton endpoint names the models it serves (triton.models)",
    ),
    (
        "Triton with an empty model list",
        "prod",
        set_path(M, 1, "triton", {"models": []}),
        "ai-platform:models[1].triton.models: list should have at least 1 item",
    ),
    (
        "Triton loading a model twice",
        "prod",
        set_path(M, 1, "triton", {"models": ["a", "a"]}),
        "ai-platform:models[1].triton.models: model names must be distinct",
    ),
    (
        "s3 model without keys or identity",
        "prod",
        delete_path(M, 2, "serviceAccountAnnotations"),
        "ai-platform:models[2].s3.credentialsSecret: an s3:// model needs keys (s3.credentialsSecret) or workload "
        "identity (serviceAccountAnnotations, or podIdentity on eks)",
    ),
    (
        "s3 keys and identity at once",
        "prod",
        set_path(M, 2, "s3", {"credentialsSecret": "keys"}),
        "ai-platform:models[2].s3.credentialsSecret: either keys or workload identity",
    ),
    (
        "s3 settings on a Hugging Face model",
        "dev",
        set_path(M, 0, "s3", {"region": "eu-west-1"}),
        "ai-platform:models[0].s3: only for an s3:// source (got hf://)",
    ),
    (
        "KServe format only a v2 runtime serves",
        "dev",
        set_path(M, 1, "kserve", {"modelFormat": "onnx"}),
        "ai-platform:models[1].kserve.modelFormat: no runtime of the pinned KServe serves this format with protocol v1",
    ),
    (
        "KServe canary on a runtime the platform cannot name",
        "prod",
        set_path(M, 2, "kserve", {"modelFormat": "xgboost", "runtime": "my-runtime"}),
        "ai-platform:models[2].kserve.runtime: a canary must answer to the stable version's model name",
    ),
]

MESH = "ai-platform:mesh"

# Traffic and mesh: (case id, stack, mutation, text the error must contain)
TRAFFIC_CASES = [
    (
        "weights not summing to 100",
        "prod",
        set_path(M, 0, "traffic", "weights", {"stable": 90, "canary": 20}),
        "ai-platform:models[0].traffic.weights.canary: stable + canary must be 100 (got 90 + 20)",
    ),
    (
        "canary without a version",
        "prod",
        set_path(M, 0, "canary", {"replicas": {"min": 1, "max": 1}}),
        "ai-platform:models[0].canary.source: required key is missing",
    ),
    (
        "timeout not a duration",
        "dev",
        set_path(M, 0, "traffic", {"timeout": "two minutes"}),
        "ai-platform:models[0].traffic.timeout: string should match pattern",
    ),
    (
        "unknown issuer kind",
        "dev",
        set_path(MESH, "tls", {"kind": "vault"}),
        "ai-platform:mesh.tls.kind: not an allowed value (allowed: 'selfSigned', 'clusterIssuer' or 'acme', got: 'vault')",
    ),
    (
        "header route on a missing subset",
        "dev",
        set_path(M, 0, "traffic", {"headerRoutes": [{"value": "next", "subset": "canary"}]}),
        "ai-platform:models[0].traffic.headerRoutes[0].subset: routes to canary, but there is no canary",
    ),
    (
        "JWT without JWKS",
        "prod",
        delete_path(MESH, "jwt", "jwksUri"),
        "ai-platform:mesh.jwt.jwksUri: required key is missing",
    ),
    (
        "JWKS not https",
        "prod",
        set_path(MESH, "jwt", "jwksUri", "http://login.example.com/certs"),
        "ai-platform:mesh.jwt.jwksUri: string should match pattern",
    ),
    (
        "cluster issuer without a name",
        "prod",
        set_path(MESH, "tls", {"kind": "clusterIssuer"}),
        "ai-platform:mesh.tls.name: a clusterIssuer needs the name of an existing ClusterIssuer",
    ),
    (
        "ACME without an e-mail",
        "dev",
        set_path(MESH, "tls", {"kind": "acme"}),
        "ai-platform:mesh.tls.email: an acme issuer needs an account e-mail",
    ),
    (
        "canary with the mesh off",
        "prod",
        set_path(MESH, "enabled", False),
        "ai-platform:models[0].canary: splitting traffic to a canary (traffic.weights, header routes) needs the mesh: "
        "without it the endpoint's Service selects both versions and traffic splits by replica count; set "
        "mesh.enabled, or drop the canary and roll out by changing source",
    ),
    (
        "canary and a header route to it with the mesh off",
        "dev",
        lambda c: (
            c[MESH].update(enabled=False),
            c[M][1].update(
                canary={"source": "gs://kfserving-examples/models/sklearn/1.0/model-2"},
                traffic={"headerRoutes": [{"value": "next", "subset": "canary"}]},
            ),
        ),
        "ai-platform:models[1].canary: splitting traffic to a canary (traffic.weights, header routes) needs the mesh",
    ),
    (
        "canary weight without a canary",
        "dev",
        set_path(M, 0, "traffic", {"weights": {"stable": 50, "canary": 50}}),
        "ai-platform:models[0].traffic.weights.canary: a canary weight needs a canary",
    ),
    (
        "canary from another kind of store",
        "prod",
        set_path(M, 2, "canary", "source", "gs://bucket/fraud-v2"),
        "ai-platform:models[2].canary.source: must use the stable source's scheme s3://",
    ),
    (
        "unknown mesh mode",
        "dev",
        set_path(MESH, "mode", "ambient"),
        "ai-platform:mesh.mode: not an allowed value (allowed: 'sidecar', got: 'ambient')",
    ),
    (
        "mesh without serving",
        "dev",
        lambda c: c.update({"ai-platform:serving": {"enabled": False}, "ai-platform:models": []}),
        "ai-platform:mesh.enabled: the mesh's ingress certificate comes from cert-manager",
    ),
    (
        "canary GPUs over quota",
        "prod",
        set_path(M, 0, "canary", "replicas", {"min": 1, "max": 3}),
        "ai-platform:models[0].gpu: endpoints of tenant 'research' need up to 20 nvidia.com/gpu at max replicas",
    ),
]

MON = "ai-platform:monitoring"

MONITORING_CASES = [
    (
        "negative alert threshold",
        "dev",
        set_path(MON, {"alerts": {"gpuTemperatureCelsius": -5}}),
        "ai-platform:monitoring.alerts.gpuTemperatureCelsius: must be > 0",
    ),
    (
        "alert window not a duration",
        "dev",
        set_path(MON, {"alerts": {"gpuIdleFor": "two hours"}}),
        "ai-platform:monitoring.alerts.gpuIdleFor: string should match pattern",
    ),
    (
        "retention not a duration",
        "dev",
        set_path(MON, {"retention": "15 days"}),
        "ai-platform:monitoring.retention: string should match pattern",
    ),
    (
        "ratio above one",
        "dev",
        set_path(MON, {"alerts": {"quotaUsedRatio": 1.5}}),
        "ai-platform:monitoring.alerts.quotaUsedRatio: must be <= 1",
    ),
    (
        "negative endpoint threshold",
        "dev",
        set_path(M, 0, "alerts", {"p95LatencySeconds": -1}),
        "ai-platform:models[0].alerts.p95LatencySeconds: must be > 0",
    ),
    (
        "runbook URL not https",
        "dev",
        set_path(MON, {"runbookUrl": "runbooks.example.com"}),
        "ai-platform:monitoring.runbookUrl: string should match pattern",
    ),
    (
        "route to a missing receiver",
        "dev",
        set_path(MON, "routing", "critical", ["dev-mail", "pager"]),
        "ai-platform:monitoring.routing.critical[1]: no receiver 'pager' (receivers: dev-mail)",
    ),
    (
        "tenant receiver without a kind",
        "prod",
        set_path(T, 0, "alertReceiver", {"channel": "#research"}),
        "ai-platform:tenants[0].alertReceiver.kind: required key is missing",
    ),
    (
        "unknown receiver kind",
        "dev",
        set_path(MON, "receivers", 0, "kind", "teams"),
        "ai-platform:monitoring.receivers[0].kind: not an allowed value (allowed: 'slack', 'pagerduty', 'webhook' or "
        "'email', got: 'teams')",
    ),
    (
        "email receiver without its relay",
        "dev",
        delete_path(MON, "receivers", 0, "smarthost"),
        "ai-platform:monitoring.receivers[0].smarthost: an email receiver needs to, sender and smarthost",
    ),
    (
        "slack channel on a pagerduty receiver",
        "prod",
        set_path(MON, "receivers", 0, "channel", "#oncall"),
        "ai-platform:monitoring.receivers[0].channel: only for kind slack (kind is pagerduty)",
    ),
    (
        "receiver named like a tenant's",
        "dev",
        set_path(MON, "receivers", 0, "name", "tenant-research"),
        "ai-platform:monitoring.receivers[0].name: 'tenant-research' is reserved",
    ),
    (
        "receiver without its secret",
        "dev",
        set_path(MON, {"receivers": [{"name": "team", "kind": "slack"}], "routing": {"warning": ["team"]}}),
        "ai-platform:alertReceiver-team: alert receiver 'team' needs its credential; set it with "
        "`pulumi config set --secret ai-platform:alertReceiver-team`",
    ),
    (
        "tenant receiver without its secret",
        "dev",
        set_path(T, 1, "alertReceiver", {"kind": "webhook"}),
        "ai-platform:alertReceiver-tenant-product: alert receiver 'tenant-product' needs its credential",
    ),
    (
        "receiver secret in clear",
        "dev",
        lambda c: c.update(
            {
                MON: {"receivers": [{"name": "team", "kind": "pagerduty"}], "routing": {"critical": ["team"]}},
                "ai-platform:alertReceiver-team": "0123456789abcdef",
            }
        ),
        "ai-platform:alertReceiver-team: holds a secret but is stored in clear",
    ),
    (
        "secret of no receiver",
        "dev",
        set_path("ai-platform:alertReceiver-pager", {"secure": "AAAA"}),
        "ai-platform:alertReceiver-pager: no alert receiver 'pager' with a credential (receivers: none)",
    ),
    (
        "receiver secret with the external source",
        "prod",
        set_path("ai-platform:alertReceiver-oncall", {"secure": "AAAA"}),
        "ai-platform:alertReceiver-oncall: secrets come from the external store (secrets.source external-secrets): "
        "put it at <keyPrefix>/alertmanager-receivers, property oncall",
    ),
]

OS, MLF, MIL = "ai-platform:objectStore", "ai-platform:mlflow", "ai-platform:milvus"

ML_SERVICE_CASES = [
    (
        "missing bucket",
        "prod",
        delete_path(OS, "milvusBucket"),
        "ai-platform:objectStore.milvusBucket: an external object store needs the bucket name",
    ),
    (
        "invalid S3 endpoint URL",
        "prod",
        set_path(OS, "endpoint", "s3.example.com"),
        "ai-platform:objectStore.endpoint: string should match pattern",
    ),
    (
        "external store without credentials",
        "prod",
        set_path(OS, "serviceAccountAnnotations", {}),
        "ai-platform:objectStore.credentialsSecret: an external object store needs credentialsSecret or "
        "serviceAccountAnnotations",
    ),
    (
        "unknown Milvus mode",
        "dev",
        set_path(MIL, "mode", "distributed"),
        "ai-platform:milvus.mode: not an allowed value (allowed: 'standalone' or 'cluster', got: 'distributed')",
    ),
    (
        "storage size not a quantity",
        "dev",
        set_path(MIL, "storage", {"etcd": "ten gigs"}),
        "ai-platform:milvus.storage.etcd: not a Kubernetes quantity",
    ),
    (
        "external database without a password secret",
        "prod",
        delete_path(MLF, "database", "passwordSecret"),
        "ai-platform:mlflow.database.passwordSecret: an external database needs the Secret holding its password",
    ),
    (
        "external database without a host",
        "prod",
        delete_path(MLF, "database", "host"),
        "ai-platform:mlflow.database.host: an external database needs its host",
    ),
    (
        "bucket name invalid",
        "prod",
        set_path(OS, "mlflowBucket", "My_Bucket"),
        "ai-platform:objectStore.mlflowBucket: string should match pattern",
    ),
    (
        "in-cluster store with an endpoint",
        "dev",
        set_path(OS, "endpoint", "https://s3.example.com"),
        "ai-platform:objectStore.endpoint: only for an external object store",
    ),
    (
        "external store endpoint with a path, Milvus on",
        "prod",
        set_path(OS, "endpoint", "https://s3.example.com/bucket"),
        "ai-platform:objectStore.endpoint: Milvus (milvus.enabled) reaches the object store by host and port only "
        "(allowed: http(s)://host[:port], got: 'https://s3.example.com/bucket')",
    ),
]


TRN, WF, RAY, SEC = "ai-platform:training", "ai-platform:workflows", "ai-platform:ray", "ai-platform:secrets"
BATCH_CASES = [
    (
        "unknown secrets source",
        "dev",
        set_path(SEC, {"source": "sops"}),
        "ai-platform:secrets.source: not an allowed value (allowed: 'pulumi' or 'external-secrets', got: 'sops')",
    ),
    (
        "external secrets without a store",
        "prod",
        delete_path(SEC, "store"),
        "ai-platform:secrets.store: source external-secrets needs the store",
    ),
    (
        "vault store without auth",
        "prod",
        delete_path(SEC, "store", "vault", "auth"),
        "ai-platform:secrets.store.vault.auth: required",
    ),
    (
        "aws store without its role",
        "prod",
        set_path(SEC, "store", {"provider": "aws", "aws": {"region": "eu-west-1", "auth": {}}}),
        "ai-platform:secrets.store.aws.auth.roleArn: required",
    ),
    (
        "store provider without its block",
        "prod",
        set_path(SEC, "store", "provider", "gcp"),
        "ai-platform:secrets.store.gcp: provider gcp needs its settings block",
    ),
    (
        "store with the pulumi source",
        "dev",
        set_path(
            SEC,
            {
                "store": {
                    "provider": "aws",
                    "aws": {"region": "eu-west-1", "auth": {"roleArn": "arn:aws:iam::111122223333:role/secrets"}},
                }
            },
        ),
        "ai-platform:secrets.store: only for source external-secrets",
    ),
    (
        "clear token with the external source",
        "prod",
        set_path("ai-platform:huggingFaceToken", {"secure": "AAAA"}),
        "ai-platform:huggingFaceToken: secrets come from the external store",
    ),
    (
        "pipeline of a missing tenant",
        "dev",
        set_path(WF, "pipelines", 1, "tenant", "marketing"),
        "ai-platform:workflows.pipelines[1].tenant: no tenant 'marketing' (tenants: research, product)",
    ),
    (
        "duplicate pipeline",
        "dev",
        lambda c: c[WF]["pipelines"].append(dict(c[WF]["pipelines"][0])),
        "ai-platform:workflows.pipelines[2].name: duplicate pipeline 'train-evaluate-deploy' in tenant 'research'",
    ),
    (
        "negative threshold",
        "dev",
        set_path(WF, "pipelines", 0, "threshold", -0.5),
        "ai-platform:workflows.pipelines[0].threshold: must be >= 0",
    ),
    (
        "argo server auth mode",
        "dev",
        set_path(WF, "authMode", "server"),
        "ai-platform:workflows.authMode: not an allowed value (allowed: 'client' or 'sso', got: 'server')",
    ),
    (
        "sso mode without its settings",
        "prod",
        delete_path(WF, "sso"),
        "ai-platform:workflows.sso: authMode sso needs the sso settings",
    ),
    (
        "pipelines without MLflow",
        "dev",
        set_path("ai-platform:mlflow", {"enabled": False}),
        "ai-platform:workflows.pipelines: the pipeline registers models in MLflow: needs mlflow.enabled",
    ),
    (
        "workflows without the API server address",
        "dev",
        delete_path(C, "apiServerCidrs"),
        "ai-platform:cluster.apiServerCidrs: workflow pods report their results to the Kubernetes API",
    ),
    (
        "API server address not a CIDR",
        "dev",
        set_path(C, "apiServerCidrs", ["10.0.0.300/32"]),
        "ai-platform:cluster.apiServerCidrs[0]: must be a CIDR",
    ),
    (
        "external store without the workflows bucket",
        "prod",
        delete_path("ai-platform:objectStore", "workflowsBucket"),
        "ai-platform:objectStore.workflowsBucket: an external object store needs the bucket",
    ),
    (
        "training runtime wider than any node",
        "prod",
        set_path(TRN, "gpu", {"count": 9, "model": "A100-80GB"}),
        "ai-platform:training.gpu: 9 x GPU on A100-80GB must fit on one node, but the pools that could serve it have "
        "at most 8 nvidia.com/gpu per node (tenant 'research')",
    ),
    (
        "time-sliced training runtime asking for two GPUs",
        "dev",
        set_path(TRN, "gpu", {"count": 2}),
        "ai-platform:training.gpu: no GPU node pool can serve 2 x GPU (tenant 'research')",
    ),
    (
        "training runtime beyond a tenant's container maximum",
        "prod",
        set_path(TRN, "resources", "cpu", "48"),
        "ai-platform:training.resources.cpu: must be <= tenants[1] container maximum (got 48 > 32)",
    ),
    (
        "pipeline step wider than any node",
        "prod",
        set_path(WF, "pipelines", 0, "gpu", {"count": 9}),
        "ai-platform:workflows.pipelines[0].gpu.count: must be <= tenants[0].limitRange.container.maxGpus",
    ),
    (
        "training without Volcano",
        "dev",
        set_path("ai-platform:volcano", {"enabled": False}),
        "ai-platform:training.enabled: gang scheduling needs volcano.enabled",
    ),
    (
        "ray with an unknown scheduler",
        "prod",
        set_path(RAY, "batchScheduler", "yunikorn"),
        "ai-platform:ray.batchScheduler: not an allowed value (allowed: 'volcano', got: 'yunikorn')",
    ),
    (
        "ray without Volcano",
        "prod",
        lambda c: c.update(
            {"ai-platform:volcano": {"enabled": False}, TRN: {"enabled": False}, WF: {"enabled": False}}
        ),
        "ai-platform:ray.enabled: gang scheduling needs volcano.enabled",
    ),
]


DP = "ai-platform:dataProtection"


def rename_tenant(old: str, new: str | None):
    """A coherent rename (or, with ``new`` None, removal) of a tenant: its entry and every reference to it."""

    def mutate(config: dict) -> None:
        config[T] = [t for t in config[T] if new or t["name"] != old]
        for entry in config[T]:
            entry["name"] = new if entry["name"] == old else entry["name"]
        for section in (config["ai-platform:models"], config["ai-platform:workflows"]["pipelines"]):
            section[:] = [item for item in section if new or item["tenant"] != old]
            for item in section:
                item["tenant"] = new if item["tenant"] == old else item["tenant"]

    return mutate


PROTECTION_CASES = [
    (
        "removing a protected service under strict",
        "prod",
        set_path("ai-platform:milvus", {"enabled": False}),
        "ai-platform:milvus.enabled: dropping milvus would delete its ",
    ),
    (
        "renaming a tenant without migration",
        "prod",
        rename_tenant("analytics", "analytics-eu"),
        "ai-platform:tenants: tenant 'analytics' is gone (a rename deletes its namespace and creates another): "
        "pulumi up would delete its ",
    ),
    (
        "removing a tenant under strict",
        "prod",
        rename_tenant("product", None),
        "ai-platform:tenants: tenant 'product' is gone",
    ),
    (
        "relaxed protection in production",
        "prod",
        set_path(DP, {"mode": "relaxed"}),
        "ai-platform:dataProtection.mode: relaxed protection is not allowed for a production stack",
    ),
    (
        "decommissioning an unknown service",
        "prod",
        set_path(DP, {"decommission": ["postgres"]}),
        "ai-platform:dataProtection.decommission[0]: not an allowed value (allowed: 'mlflow', 'milvus', 'objectStore', "
        "'monitoring', 'gpu', 'volcano', 'serving', 'mesh', 'training', 'workflows', 'ray', 'secrets', "
        "'vpa', 'logs', 'traces' or 'tenant:<name>', got: 'postgres')",
    ),
    (
        "unknown protection mode",
        "dev",
        set_path(DP, {"mode": "paranoid"}),
        "ai-platform:dataProtection.mode: not an allowed value (allowed: 'strict' or 'relaxed', got: 'paranoid')",
    ),
]


def assert_rejected(stack: str, mutate, expected: str) -> None:
    config = config_copy(stack)
    mutate(config)
    result = run(stack, config)
    assert isinstance(result.error, ConfigError), result.error
    message = str(result.error)
    assert f"stack {stack}: {expected}" in message, message
    assert result.registered_beyond_stack == []


@pytest.mark.parametrize("mutate, expected", [pytest.param(m, e, id=i) for i, m, e in CASES])
def test_bad_config_is_rejected_with_path_and_registers_nothing(mutate, expected):
    assert_rejected("dev", mutate, expected)


@pytest.mark.parametrize(
    "stack, mutate, expected",
    [
        pytest.param(s, m, e, id=i)
        for i, s, m, e in GPU_CASES
        + SERVING_CASES
        + TRAFFIC_CASES
        + MONITORING_CASES
        + ML_SERVICE_CASES
        + BATCH_CASES
        + PROTECTION_CASES
    ],
)
def test_bad_gpu_config_is_rejected_with_path_and_registers_nothing(stack, mutate, expected):
    assert_rejected(stack, mutate, expected)


def test_every_problem_is_listed_at_once():
    config = config_copy()
    tenant(config, 0)["quota"]["gpu"] = -1
    tenant(config, 1)["podSecurity"] = "strict"
    config[C]["kubernetesVersion"] = "1.99"
    result = run("dev", config)
    message = str(result.error)
    assert "(3 problems)" in message
    for path in ("tenants[0].quota.gpu", "tenants[1].podSecurity", "cluster.kubernetesVersion"):
        assert f"stack dev: ai-platform:{path}:" in message


def test_structured_values_arrive_as_json_strings_like_the_engine_sends_them():
    """The harness passes config exactly as the engine does; the loader decodes it (no silent pass-through)."""
    from tools.harness import _engine_config

    values, secret_keys = _engine_config(
        {"ai-platform:tenants": [{"name": "a"}], "ai-platform:x": True, "ai-platform:token": {"secure": "AAAA"}}
    )
    assert values["ai-platform:tenants"] == '[{"name": "a"}]'
    assert values["ai-platform:x"] == "true"
    assert secret_keys == ["ai-platform:token"]
