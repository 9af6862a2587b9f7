"""Pulumi entry point: load the stack config, build the platform, export what users need."""

import pulumi

import config
from components.ai_platform import AiPlatform, AiPlatformArgs
from components.gpu import capacity_report
from components.interpreter import tune_gc
from config.loader import receiver_secret
from config.services import SERVICES

tune_gc()  # the collector's settings for a program that keeps what it declares (components/interpreter.py)
cfg = config.load()
# Alert receivers' credentials with secrets.source pulumi (the loader checked that each one is set).
platform = AiPlatform(
    "ai-platform",
    AiPlatformArgs(
        cfg,
        hf_token=config.secret("huggingFaceToken"),
        alert_secrets={name: receiver_secret(name) for name in cfg.alert_receivers},
    ),
)

pulumi.export("cluster", cfg.cluster.name)
# What the platform profile (cluster.platform) changed, and what must be done on the cluster first.
pulumi.export("platformProfile", {"platform": cfg.cluster.platform, **cfg.cluster.profile.checklist(cfg)})
pulumi.export(
    "tenants",
    {
        name: {
            "namespace": tenant.namespace.metadata["name"],
            "queue": tenant.queue.metadata["name"] if tenant.queue else None,
        }
        for name, tenant in platform.tenants.items()
    },
)
pulumi.export("gpuCapacity", capacity_report(cfg))
# What the external secret store must hold: remote key -> properties (empty with secrets.source pulumi).
pulumi.export("secretStoreKeys", platform.secrets.remote_keys())
# Secrets the platform references but the operator creates before `pulumi up` (secrets.source pulumi).
pulumi.export("userProvidedSecrets", platform.secrets.user_provided())
# In-cluster URLs of the shared services that export one (config.services) and the stack has.
pulumi.export(
    "services",
    {
        service.key: getattr(platform, service.attribute).url
        for service in SERVICES.values()
        if service.exports_url and service.on(cfg)
    },
)
