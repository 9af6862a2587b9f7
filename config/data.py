"""The data services: the S3-compatible object store (``ai-platform:objectStore``, and a tenant's own part of an
external one), MLflow and its Postgres (``ai-platform:mlflow``), Milvus (``ai-platform:milvus``); what they need of
each other and of the object store's users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from .base import ComputeResources, DnsLabel, DnsSubdomain, HttpUrl, Model, Problems, Quantity, valid

if TYPE_CHECKING:
    from .model import PlatformConfig

BucketName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]


class ObjectStore(Model):
    """S3-compatible storage shared by MLflow (artifacts), Milvus (segments), Argo Workflows (artifacts), Loki
    (logs) and Tempo (traces): an in-cluster SeaweedFS with generated keys, or an external S3 service."""

    mode: Literal["in-cluster", "external"] = "in-cluster"
    """``in-cluster``: SeaweedFS in ``namespaces.objectStore``; ``external``: an S3 service (AWS S3 by default)."""
    endpoint: HttpUrl | None = None
    """External S3 endpoint URL; unset: AWS S3 of ``region``."""
    region: str = "us-east-1"
    mlflow_bucket: BucketName | None = None
    """Bucket of MLflow artifacts (required for external; in-cluster default ``mlflow``)."""
    milvus_bucket: BucketName | None = None
    """Bucket of Milvus data (required for external; in-cluster default ``milvus``)."""
    loki_bucket: BucketName | None = None
    """Bucket of Loki's chunks, index and rules (required for external with logs on; in-cluster default ``loki``)."""
    tempo_bucket: BucketName | None = None
    """Bucket of Tempo's trace blocks (required for external with traces on; in-cluster default ``tempo``)."""
    workflows_bucket: BucketName | None = None
    """Bucket of Argo Workflows artifacts (required for external with workflows on; in-cluster default
    ``argo-artifacts``)."""
    credentials_secret: DnsSubdomain | None = None
    """External: an existing Secret (in the MLflow, Milvus, logs and traces namespaces) with AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY; or use ``serviceAccountAnnotations`` for workload identity."""
    service_account_annotations: dict[str, str] = {}
    """External: annotations giving the services' ServiceAccounts a cloud identity (e.g. eks.amazonaws.com/role-arn)."""
    size: Quantity = "100Gi"
    """In-cluster: volume size of the store."""
    storage_class: str | None = None
    """In-cluster: storage class of its volumes."""

    @property
    def buckets(self) -> dict[str, str]:
        return {
            "mlflow": self.mlflow_bucket or "mlflow",
            "milvus": self.milvus_bucket or "milvus",
            "workflows": self.workflows_bucket or "argo-artifacts",
            "logs": self.loki_bucket or "loki",
            "traces": self.tempo_bucket or "tempo",
        }

    def tenant_bucket(self, tenant: str) -> str:
        """In-cluster: the bucket of a tenant's workflow artifacts, ``<workflows bucket>-<tenant>``."""
        return f"{self.buckets['workflows']}-{tenant}"

    @model_validator(mode="after")
    def _mode_fields(self) -> ObjectStore:
        problems = []
        if self.mode == "external":
            for field in ("mlflow_bucket", "milvus_bucket"):
                if getattr(self, field) is None:
                    problems.append((to_camel(field), "an external object store needs the bucket name"))
            if not self.credentials_secret and not self.service_account_annotations:
                problems.append(
                    (
                        "credentialsSecret",
                        "an external object store needs credentialsSecret or "
                        "serviceAccountAnnotations (workload identity)",
                    )
                )
        else:
            for field in ("endpoint", "credentials_secret"):
                if getattr(self, field) is not None:
                    problems.append((to_camel(field), "only for an external object store (mode is in-cluster)"))
        return valid(self, problems)


class Database(Model):
    """MLflow's Postgres: in-cluster (CloudNativePG) or external."""

    mode: Literal["in-cluster", "external"] = "in-cluster"
    host: DnsSubdomain | None = None
    """External: host name of the Postgres server."""
    port: Annotated[int, Field(ge=1, le=65535, strict=True)] = 5432
    name: DnsLabel = "mlflow"
    """Database name."""
    user: DnsLabel = "mlflow"
    """Database user."""
    password_secret: DnsSubdomain | None = None
    """External: an existing Secret in the MLflow namespace whose key ``password`` holds the user's password."""
    instances: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """In-cluster: Postgres instances (1 primary + replicas)."""
    size: Quantity = "20Gi"
    """In-cluster: volume size per instance."""
    storage_class: str | None = None

    @property
    def external_host(self) -> str:
        """External: ``host``, which ``_mode_fields`` requires."""
        return _external(self.host, "host", self.mode)

    @property
    def external_password_secret(self) -> str:
        """External: ``passwordSecret``, which ``_mode_fields`` requires."""
        return _external(self.password_secret, "passwordSecret", self.mode)

    @model_validator(mode="after")
    def _mode_fields(self) -> Database:
        problems = []
        if self.mode == "external":
            if not self.host:
                problems.append(("host", "an external database needs its host"))
            if not self.password_secret:
                problems.append(("passwordSecret", "an external database needs the Secret holding its password"))
        elif self.host or self.password_secret:
            problems.append(("host" if self.host else "passwordSecret", "only for an external database"))
        return valid(self, problems)


def _external(value: str | None, field: str, mode: str) -> str:
    """A field an external database requires (unset only in-cluster, or in a model built without validation)."""
    if value is None:
        raise ValueError(f"mlflow.database.{field}: unset (mode is {mode})")
    return value


class Mlflow(Model):
    """MLflow tracking server (experiments, model registry) shared by the tenants."""

    enabled: bool = True
    replicas: Annotated[int, Field(ge=1, le=10, strict=True)] = 1
    resources: ComputeResources = ComputeResources(cpu="500m", memory="1Gi")
    database: Database = Database()
    """Backend store."""


class MilvusStorage(Model):
    """Volume sizes of Milvus's dependencies."""

    etcd: Quantity = "10Gi"
    message_queue: Quantity = "50Gi"
    """Write-ahead log / message queue volume (the chart's streaming storage)."""
    storage_class: str | None = None


class Milvus(Model):
    """Milvus vector database shared by the tenants."""

    enabled: bool = True
    mode: Literal["standalone", "cluster"] = "cluster"
    """``standalone`` (one pod, dev) or ``cluster`` (separate proxy, coordinators, query/data/streaming nodes)."""
    storage: MilvusStorage = MilvusStorage()
    """Volumes."""


class TenantObjectStore(Model):
    """The tenant's workflow artifacts in an external object store (the platform cannot mint cloud identities)."""

    bucket: BucketName | None = None
    """The tenant's own bucket; unset: the prefix ``<tenant>/`` of ``objectStore.workflowsBucket``."""
    service_account_annotations: dict[str, str] = {}
    """Workload identity of the tenant's workflow executor (e.g. an IAM role allowed only on its bucket or prefix);
    unset: ``objectStore.serviceAccountAnnotations``, shared by every tenant."""


def cross_checks(cfg: PlatformConfig) -> Problems:
    """The object store as its users need it: the workflows' bucket, the tenants' own parts, Milvus's endpoint."""
    store, workflows = cfg.object_store, cfg.workflows.enabled
    problems: Problems = []
    if workflows and store.mode == "external" and not store.workflows_bucket:
        problems.append(
            ("objectStore.workflowsBucket", "an external object store needs the bucket of the workflows' artifacts")
        )
    for index, tenant in enumerate(cfg.tenants):
        if tenant.object_store is not None and store.mode == "in-cluster":
            problems.append(
                (
                    f"tenants[{index}].objectStore",
                    "only for an external object store (the in-cluster store gives each tenant its bucket and keys)",
                )
            )
        bucket = store.tenant_bucket(tenant.name)
        if workflows and store.mode == "in-cluster" and len(bucket) > 63:
            problems.append(
                (
                    f"tenants[{index}].name",
                    f"the tenant's artifact bucket {bucket!r} exceeds 63 "
                    "characters: shorten the name or objectStore.workflowsBucket",
                )
            )
    return problems + _milvus_store_endpoint(cfg)


def _milvus_store_endpoint(cfg: PlatformConfig) -> Problems:
    """Milvus's S3 client takes host, port and TLS only: an external store's endpoint with a path, query or
    fragment (or a bad port) is refused here, not by the component."""
    endpoint = cfg.object_store.endpoint
    if not (cfg.milvus.enabled and cfg.object_store.mode == "external" and endpoint):
        return []
    parts = urlsplit(endpoint)
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError:
        return [("objectStore.endpoint", f"not a valid port (allowed: http(s)://host[:port], got: {endpoint!r})")]
    if parts.path not in ("", "/") or parts.query or parts.fragment or not parts.hostname:
        return [
            (
                "objectStore.endpoint",
                "Milvus (milvus.enabled) reaches the object store by host and port "
                f"only (allowed: http(s)://host[:port], got: {endpoint!r})",
            )
        ]
    return []
