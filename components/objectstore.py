"""``ObjectStore``: the in-cluster S3-compatible object store of MLflow artifacts and Milvus segments (SeaweedFS).

Created only when ``objectStore.mode`` is ``in-cluster`` (and a service that needs it is on); with an external S3
service the platform creates nothing here. MinIO is not an option: its community edition is source-only since
October 2025, with no maintained images.

Owns:
- the namespace ``namespaces.objectStore``, Pod Security ``restricted``: every SeaweedFS pod runs as the image's
  ``seaweed`` user (uid/gid 1000, ``fsGroup`` 1000 so the volumes are writable), ``runAsNonRoot``, seccomp
  ``RuntimeDefault``, no privilege escalation, every capability dropped, through each component's
  ``podSecurityContext``/``containerSecurityContext`` (``enabled: true``; the chart sets none by default); the bucket
  hook Job takes the filer's. The chart's defaults (hostPath data and log volumes) would need ``privileged``: data
  goes to PersistentVolumeClaims, logs to ``emptyDir``;
- the S3 credentials: two ``RandomPassword``s (access key id, 20 characters; secret key, 40; letters and digits) and
  the Secret ``seaweedfs-s3-config`` holding them (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) and SeaweedFS's
  identities file (key ``seaweedfs_s3_config``: the platform's identity with Admin, Read, Write, List and Tagging),
  built as a secret Output (``Output.json_dumps``). The chart only gets the Secret's name (``s3.existingConfigSecret``):
  no key is in a Helm value, and the chart's own ``<release>-s3-secret`` (random keys, regenerated on every ``helm
  template``) is not rendered. Only the platform's services (MLflow, Milvus) get ``credentials``;
- per tenant (``tenants``, given when workflows are on): the bucket ``<workflows bucket>-<tenant>``
  (``ObjectStoreConfig.tenant_bucket``) and an identity ``tenant-<tenant>`` with its own generated keys (remote key
  ``object-store-tenant-<tenant>``, ``tenant_credentials``) whose actions are ``Read``/``Write``/``List``/``Tagging``
  limited to that bucket (``<action>:<bucket>``, SeaweedFS ``weed/s3api/auth_credentials.go`` ``canDo``: an
  action without ``*`` matches that bucket exactly, so ``argo-artifacts-a`` never reaches ``argo-artifacts-ab``; no
  ``Admin``: no bucket creation, ACLs or other buckets). The Workflows component puts them into the tenant's
  ``argo-artifacts-s3``;
- the Helm release ``seaweedfs`` of the pinned chart: one master, one volume server, one filer (dev sizing; the
  stack's S3 clients only need one endpoint) and the standalone S3 gateway (``s3.enabled``, Deployment and Service
  ``seaweedfs-s3``, port 8333) with authentication on (``s3.enableAuth``). The buckets (``objectStore.buckets`` of
  the services that are on: MLflow's, Milvus's, Loki's; with workflows one per tenant instead of a shared one) are created by
  the chart's bucket hook Job (``s3.createBuckets``, ``weed shell s3.bucket.create``, on install and upgrade);
  values.yaml documents that key only as a commented-out example under ``s3``, which ``tools.validate`` accepts;
- volumes: the volume server's data on one PVC of ``objectStore.size`` (``storageClass`` from config, else the
  cluster default), the master's and filer's metadata on PVCs of ``MASTER_SIZE``/``FILER_SIZE``. StatefulSet volume
  claims cannot change size: growing ``objectStore.size`` later means expanding the PVC ``data1-seaweedfs-volume-0``
  by hand. The chart's resize hook (``volume.resizeHook``, an ``alpine/k8s`` Job without a security context that
  ``restricted`` would reject) is off.

The S3 gateway's pods carry ``S3_POD_LABELS`` (the chart's selector labels); NetworkPolicies of the services'
namespaces allow those pods on ``S3_PORT``. ``cluster.imageRegistry`` replaces the registry of every SeaweedFS image
(``global.imageRegistry``, the image name ``chrislusf/seaweedfs`` and the chart's tag stay).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import NamedTuple

import pulumi

from config import versions
from config.cluster import Cluster
from config.data import ObjectStore as ObjectStoreConfig
from config.services import service

from .meta import ComponentArgs, helm_release, platform_namespace
from .pods import restricted_container, restricted_pod
from .secrets import PlatformSecrets, SecretRef, Template

COMPONENT = "object-store"
POD_SECURITY = "restricted"
RELEASE = versions.SEAWEEDFS.name
# The chart's fullname is the release name when that contains the chart name: objects are seaweedfs-<component>.
S3_SERVICE = f"{RELEASE}-s3"
S3_PORT = service("objectStore").port  # the S3 gateway: what tenant workflow pods may reach
# Selector labels of the chart's S3 gateway Deployment (templates/s3/s3-deployment.yaml).
S3_POD_LABELS = {
    "app.kubernetes.io/name": versions.SEAWEEDFS.name,
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "s3",
}
CONFIG_SECRET = "seaweedfs-s3-config"
CONFIG_KEY = "seaweedfs_s3_config"  # the key the chart mounts as /etc/sw/seaweedfs_s3_config
ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
IDENTITY = "ai-platform"
# Where the keys live in an external secret store (``<secrets.keyPrefix>/object-store``).
REMOTE_KEY = "object-store"
ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]
# What a tenant identity may do, each limited to the tenant's bucket: objects (Read: GET/HEAD; Write: PUT, DELETE,
# multipart), listing, object tags. SeaweedFS's s3_constants/s3_actions.go names them.
TENANT_ACTIONS = ("Read", "Write", "List", "Tagging")
MASTER_SIZE = "1Gi"
FILER_SIZE = "10Gi"
# The image's seaweed user (docker/entrypoint.sh drops to it; the chart's command bypasses the entrypoint).
SEAWEED_UID = 1000
COMPONENTS = ("master", "volume", "filer", "s3")


class S3Credentials(NamedTuple):
    """The generated keys of the in-cluster store (copy them into Secrets with ``PlatformSecrets.secret``)."""

    access_key_id: SecretRef
    secret_access_key: SecretRef


class TenantIdentity(NamedTuple):
    """A tenant's identity in the identities file: its bucket and keys (Outputs or template references)."""

    tenant: str
    bucket: str
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]


def tenant_remote_key(tenant: str) -> str:
    """Where a tenant's keys live in an external secret store (``<secrets.keyPrefix>/object-store-tenant-<t>``)."""
    return f"{REMOTE_KEY}-tenant-{tenant}"


def tenant_actions(bucket: str) -> list[str]:
    return [f"{action}:{bucket}" for action in TENANT_ACTIONS]


def identities_file(
    access_key_id: pulumi.Input[str], secret_access_key: pulumi.Input[str], tenants: tuple[TenantIdentity, ...] = ()
) -> pulumi.Output[str]:
    """SeaweedFS's S3 identities file: the platform's identity, then one per tenant reaching only its bucket."""
    return pulumi.Output.json_dumps(
        {
            "identities": [
                {
                    "name": IDENTITY,
                    "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                    "actions": ACTIONS,
                }
            ]
            + [
                {
                    "name": f"tenant-{t.tenant}",
                    "credentials": [{"accessKey": t.access_key_id, "secretKey": t.secret_access_key}],
                    "actions": tenant_actions(t.bucket),
                }
                for t in tenants
            ]
        }
    )


def s3_endpoint(namespace: str) -> str:
    """The S3 gateway's in-cluster URL (the chart's Service ``seaweedfs-s3`` in ``namespace``)."""
    return f"http://{S3_SERVICE}.{namespace}.svc:{S3_PORT}"


def _security_contexts() -> dict:
    return {
        "podSecurityContext": {"enabled": True, **restricted_pod(SEAWEED_UID, gid=SEAWEED_UID, fs_group=SEAWEED_UID)},
        "containerSecurityContext": {"enabled": True, **restricted_container(read_only_root=False)},
    }


def _claim(size: str, storage_class: str | None) -> dict:
    claim = {"type": "persistentVolumeClaim", "size": size}
    if storage_class:
        claim["storageClass"] = storage_class
    return claim


def helm_values(
    store: ObjectStoreConfig, cluster: Cluster, services: tuple[str, ...], tenants: tuple[str, ...] = ()
) -> dict:
    """Values of the seaweedfs chart (keys checked against the upstream values.yaml by the schema tier). The
    workflows' artifacts live in the tenants' buckets: no shared workflows bucket."""
    buckets = {store.buckets[s] for s in services if s != "workflows"} | {store.tenant_bucket(t) for t in tenants}
    values: dict = {
        "master": {
            "replicas": 1,
            "data": _claim(MASTER_SIZE, store.storage_class),
            "logs": {"type": "emptyDir"},
            **_security_contexts(),
        },
        "volume": {
            "replicas": 1,
            "dataDirs": [{"name": "data1", **_claim(store.size, store.storage_class), "maxVolumes": 0}],
            "resizeHook": {"enabled": False},
            **_security_contexts(),
        },
        "filer": {
            "replicas": 1,
            "data": _claim(FILER_SIZE, store.storage_class),
            "logs": {"type": "emptyDir"},
            **_security_contexts(),
        },
        "s3": {
            "enabled": True,
            "replicas": 1,
            "port": S3_PORT,
            "enableAuth": True,
            "existingConfigSecret": CONFIG_SECRET,
            "logs": {"type": "emptyDir"},
            "createBuckets": [{"name": bucket} for bucket in sorted(buckets)],
            **_security_contexts(),
        },
    }
    if cluster.image_registry:
        values["global"] = {"imageRegistry": cluster.image_registry}
    return values


@dataclass(frozen=True)
class ObjectStoreArgs(ComponentArgs):
    """What ``ObjectStore`` is built from (besides the cluster and namespaces): its config, the services that keep
    buckets in it, the tenants that get a bucket of their own (with workflows on), and the platform's Secrets."""

    store: ObjectStoreConfig
    services: tuple[str, ...]
    tenants: tuple[str, ...] = ()
    _: KW_ONLY
    secrets: PlatformSecrets


class ObjectStore(pulumi.ComponentResource):
    """SeaweedFS namespace, generated S3 credentials, their Secret, the Helm release and its buckets (see the module
    docstring)."""

    def __init__(self, name: str, args: ObjectStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:objectstore:ObjectStore", name, None, opts)
        store, cluster, namespaces, services = args.store, args.cluster, args.namespaces, args.services
        secrets, protect, tenants = args.secrets, args.protect, args.tenants
        if store.mode != "in-cluster":
            raise ValueError("ObjectStore is the in-cluster store: create it only when objectStore.mode is in-cluster")
        self.namespace = platform_namespace(
            f"{name}-namespace",
            namespaces.object_store,
            COMPONENT,
            POD_SECURITY,
            cluster.kubernetes_version,
            self,
            protect=protect,
        )
        ns = self.namespace.metadata["name"]
        self.credentials = S3Credentials(
            secrets.generated(f"{name}-access-key-id", 20, REMOTE_KEY, ACCESS_KEY_ID, parent=self),
            secrets.generated(f"{name}-secret-access-key", 40, REMOTE_KEY, SECRET_ACCESS_KEY, parent=self),
        )
        self.tenant_buckets = {tenant: store.tenant_bucket(tenant) for tenant in tenants}
        self.tenant_credentials = {
            tenant: S3Credentials(
                secrets.generated(
                    f"{name}-{tenant}-access-key-id", 20, tenant_remote_key(tenant), ACCESS_KEY_ID, parent=self
                ),
                secrets.generated(
                    f"{name}-{tenant}-secret-access-key", 40, tenant_remote_key(tenant), SECRET_ACCESS_KEY, parent=self
                ),
            )
            for tenant in tenants
        }

        def identities(value) -> pulumi.Output[str]:
            return identities_file(
                value(self.credentials.access_key_id),
                value(self.credentials.secret_access_key),
                tuple(
                    TenantIdentity(
                        tenant, self.tenant_buckets[tenant], value(keys.access_key_id), value(keys.secret_access_key)
                    )
                    for tenant, keys in self.tenant_credentials.items()
                ),
            )

        self.secret = secrets.secret(
            f"{name}-s3-config",
            CONFIG_SECRET,
            ns,
            COMPONENT,
            self,
            {
                CONFIG_KEY: Template(identities),
                ACCESS_KEY_ID: self.credentials.access_key_id,
                SECRET_ACCESS_KEY: self.credentials.secret_access_key,
            },
        )
        # No wait for the Secret: the S3 gateway mounts it by name (``existingConfigSecret``) and the kubelet retries
        # the mount until it exists, well within the release's 900 s wait (from the store it comes one wave later).
        # Waiting would put Milvus, which waits for this release, one wave later.
        self.release = helm_release(
            f"{name}-release",
            versions.SEAWEEDFS,
            ns,
            helm_values(store, cluster, services, tenants),
            self,
            cluster=args.cluster,
            timeout=900,
            release_name=RELEASE,
            protect=protect,
        )
        self.buckets = {service: store.buckets[service] for service in services}
        self.endpoint = s3_endpoint(namespaces.object_store)
        self.pod_labels = dict(S3_POD_LABELS)  # the S3 gateway's
        self.port = S3_PORT
        self.namespace_name = namespaces.object_store
        self.register_outputs({"namespace": ns, "release": self.release.name, "endpoint": self.endpoint})


# The key names of a service's S3 keys Secret (the AWS SDKs' environment variables).
S3_ACCESS_KEY, S3_SECRET_KEY = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"


def service_keys(
    name: str,
    secret_name: str,
    namespace: pulumi.Input[str],
    component: str,
    parent: pulumi.Resource,
    store: ObjectStoreConfig,
    in_cluster: ObjectStore | None,
    secrets: PlatformSecrets,
) -> pulumi.Resource | None:
    """A service's S3 keys in its namespace: with the in-cluster store, its generated keys as the Secret
    ``secret_name`` (``<name>-object-store``); with an external store, its ``credentialsSecret`` (the operator's, or an
    ExternalSecret: ``<name>-s3-credentials``); None with workload identity."""
    if store.mode == "in-cluster":
        if in_cluster is None:
            raise ValueError(
                f"{component} with the in-cluster object store needs the store (its generated credentials)"
            )
        keys = {
            S3_ACCESS_KEY: in_cluster.credentials.access_key_id,
            S3_SECRET_KEY: in_cluster.credentials.secret_access_key,
        }
        return secrets.secret(f"{name}-object-store", secret_name, namespace, component, parent, keys)
    if store.credentials_secret:
        return secrets.existing(
            f"{name}-s3-credentials",
            store.credentials_secret,
            namespace,
            component,
            parent,
            [S3_ACCESS_KEY, S3_SECRET_KEY],
        )
    return None
