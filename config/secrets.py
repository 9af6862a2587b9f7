"""Secrets (``ai-platform:secrets``): Pulumi-generated and Pulumi config secrets, or an external store (Vault, AWS
Secrets Manager, Google Secret Manager) read through the External Secrets Operator."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import HttpsUrl, Model, Problems, valid


class VaultKubernetesAuth(Model):
    """Vault's Kubernetes auth method, logging in with the secret store's service account token."""

    role: Annotated[str, Field(min_length=1)]
    """Vault role bound to the service account ``external-secrets-store`` in the external-secrets namespace."""
    mount_path: Annotated[str, Field(min_length=1)] = "kubernetes"
    """Mount path of the auth method."""


class VaultAuth(Model):
    kubernetes: VaultKubernetesAuth
    """Kubernetes service account auth."""


class VaultStore(Model):
    """HashiCorp Vault KV store."""

    server: HttpsUrl
    """Vault address, e.g. https://vault.example.com:8200."""
    path: Annotated[str, Field(min_length=1)] = "secret"
    """Mount path of the KV engine."""
    version: Literal["v1", "v2"] = "v2"
    """KV engine version."""
    namespace: str | None = None
    """Vault Enterprise namespace."""
    auth: VaultAuth
    """How the store authenticates (by service account)."""


class AwsAuth(Model):
    role_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")]
    """IAM role the store's service account assumes (IRSA annotation ``eks.amazonaws.com/role-arn``)."""


class AwsStore(Model):
    """AWS Secrets Manager."""

    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    auth: AwsAuth
    """How the store authenticates (by service account)."""


class GcpAuth(Model):
    service_account: Annotated[str, Field(pattern=r"^[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com$")]
    """Google service account the store's Kubernetes service account impersonates (workload identity)."""
    cluster_location: Annotated[str, Field(min_length=1)]
    cluster_name: Annotated[str, Field(min_length=1)]


class GcpStore(Model):
    """Google Secret Manager."""

    project_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    auth: GcpAuth
    """How the store authenticates (by service account, workload identity)."""


class SecretStore(Model):
    """The ClusterSecretStore the platform's ExternalSecrets read from."""

    provider: Literal["vault", "aws", "gcp"]
    vault: VaultStore | None = None
    aws: AwsStore | None = None
    gcp: GcpStore | None = None

    @property
    def settings(self) -> VaultStore | AwsStore | GcpStore:
        """The settings block of ``provider``, which ``_one_provider`` requires."""
        settings = {"vault": self.vault, "aws": self.aws, "gcp": self.gcp}[self.provider]
        if settings is None:  # only on a model built without validation
            raise ValueError(f"secrets.store: provider {self.provider} needs its settings block")
        return settings

    @model_validator(mode="after")
    def _one_provider(self) -> SecretStore:
        problems: Problems = []
        if getattr(self, self.provider) is None:
            problems.append((self.provider, f"provider {self.provider} needs its settings block"))
        for other in ("vault", "aws", "gcp"):
            if other != self.provider and getattr(self, other) is not None:
                problems.append((other, f"only for provider {other} (provider is {self.provider})"))
        return valid(self, problems)


class Secrets(Model):
    """Where the platform's secrets come from: Pulumi (generated or ``pulumi config set --secret``) or an external
    store through the External Secrets Operator; either way workloads read the same Secret names."""

    source: Literal["pulumi", "external-secrets"] = "pulumi"
    """``pulumi``: generated passwords and Pulumi config secrets become Kubernetes Secrets; ``external-secrets``:
    each Secret is an ExternalSecret reading ``<keyPrefix>/<secret>`` from the store."""
    store: SecretStore | None = None
    """The external store (required for external-secrets)."""
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")] = "ai-platform"
    """Prefix of the remote keys, e.g. ``ai-platform/prod``."""
    refresh_interval: Annotated[str, Field(pattern=r"^\d+(s|m|h)$")] = "1h"
    """How often the operator re-reads the store."""
    replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """External Secrets Operator replicas (and of its webhook)."""
    hugging_face_token: bool = False
    """external-secrets: the store holds a Hugging Face token (``<keyPrefix>/huggingface-token``, property
    ``token``) that ``hf://`` downloads use. With source pulumi, set ``ai-platform:huggingFaceToken`` instead."""

    @property
    def external_store(self) -> SecretStore:
        """The store of source external-secrets, which ``_store_for_external`` requires."""
        if self.store is None:  # only with source pulumi (or a model built without validation)
            raise ValueError(f"secrets.store: unset (source is {self.source})")
        return self.store

    @model_validator(mode="after")
    def _store_for_external(self) -> Secrets:
        problems = []
        if self.source == "external-secrets" and self.store is None:
            problems.append(("store", "source external-secrets needs the store (provider vault, aws or gcp)"))
        if self.source == "pulumi":
            if self.store is not None:
                problems.append(("store", "only for source external-secrets (source is pulumi)"))
            if self.hugging_face_token:
                problems.append(
                    (
                        "huggingFaceToken",
                        "only for source external-secrets; with source pulumi set "
                        "the secret ai-platform:huggingFaceToken",
                    )
                )
        return valid(self, problems)
