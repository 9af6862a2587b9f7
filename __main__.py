"""Pulumi entry point: load the stack config, build the platform, export what users need."""

import pulumi

import config
from components.ai_platform import AiPlatform
from components.gpu import capacity_report

cfg = config.load()
platform = AiPlatform("ai-platform", cfg, hf_token=config.secret("huggingFaceToken"))

pulumi.export("cluster", cfg.cluster.name)
pulumi.export("tenants", {
    name: {"namespace": tenant.namespace.metadata["name"],
           "queue": tenant.queue.metadata["name"] if tenant.queue else None}
    for name, tenant in platform.tenants.items()
})
pulumi.export("gpuCapacity", capacity_report(cfg))
# What the external secret store must hold: remote key -> properties (empty with secrets.source pulumi).
pulumi.export("secretStoreKeys", platform.secrets.remote_keys())
pulumi.export("services", {name: service.url for name, service in
                           (("mlflow", platform.mlflow), ("milvus", platform.milvus)) if service})
