"""``CloudNativePg``: the CloudNativePG operator every in-cluster Postgres of the platform runs on, and
``database_cluster``, the Postgres (a CNPG ``Cluster``) one service creates for itself on it.

Owns:
- the operator (created when a service's record says it runs a Postgres, ``config.services``): the namespace
  ``namespaces.cnpg``, Pod Security ``restricted`` (the chart's operator pod is non-root, RuntimeDefault,
  capabilities dropped), and the release ``cloudnative-pg`` of the pinned chart, CRDs from the chart as templates
  (``crds.create``) with ``helm.sh/resource-policy: keep``, so a pin change upgrades them and removing the release
  keeps them; cluster-wide, so one operator serves every namespace. Protected while any of its users is;
- ``database_cluster``: in the user's namespace and under the user's component (its data is the user's), the app
  user's password in the ``kubernetes.io/basic-auth`` Secret ``<cluster>-credentials`` (``username``, ``password``: a
  ``RandomPassword`` of 32 letters and digits, or from the external store the property ``password`` of
  ``<keyPrefix>/<cluster>-credentials``) and the ``Cluster`` (the pinned PostgreSQL image, ``instances``, ``size``,
  ``storageClass``; ``bootstrap.initdb`` creates the database owned by the user with that Secret; no superuser
  access), which ``depends_on`` the operator release (it installs the CRD and the webhook) and is reached as
  ``<cluster>-rw.<ns>.svc:5432``. Not CNPG's own ``<cluster>-app`` Secret name: the operator creates and manages
  that Secret when initdb names none. ``monitor_spec``: a PodMonitor of the instances' exporter (the Cluster's own
  ``monitoring.enablePodMonitor`` is deprecated).

``cluster.imageRegistry`` replaces the registry of the operator and Postgres images (tags stay pinned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pulumi

from config import versions
from config.cluster import Cluster
from config.data import Database

from .meta import PART_OF, ComponentArgs, helm_release, holds_data, kube, metadata, mirrored, platform_namespace
from .secrets import PlatformSecrets

TYPE = "ai-platform:postgres:CloudNativePg"
COMPONENT = "cloudnative-pg"
POD_SECURITY = "restricted"
RELEASE = versions.CLOUDNATIVE_PG.name
PORT = 5432
METRICS_PORT = "metrics"  # the instances' exporter port (9187)
CLUSTER_LABEL = "cnpg.io/cluster"
PART_OF_LABEL = "app.kubernetes.io/part-of"
USERNAME_KEY = "username"
PASSWORD_KEY = "password"
# Until the operator had a component of its own, MLflow's created it: its namespace and release keep their state
# through aliases to their logical names under that component.
FORMER_PARENT = ("mlflow", "ai-platform:mlflow:Mlflow")
FORMER_NAMES = {"namespace": "mlflow-cnpg-namespace", "release": "mlflow-cnpg-release"}


def operator_values(cluster: Cluster) -> dict:
    """Values of the cloudnative-pg operator chart (keys checked against the upstream values.yaml)."""
    values: dict = {
        "crds": {"create": True},
        "config": {"clusterWide": True},
        "monitoring": {"podMonitorEnabled": False},
    }
    if cluster.image_registry:
        values["image"] = {"repository": mirrored(versions.CLOUDNATIVE_PG_REPOSITORY, cluster.image_registry)}
    return values


@dataclass(frozen=True)
class CloudNativePgArgs(ComponentArgs):
    """What ``CloudNativePg`` is built from: the cluster and namespaces only; protected while any service that runs a
    Postgres is."""


class CloudNativePg(pulumi.ComponentResource):
    """The CloudNativePG operator's namespace and release (see the module docstring)."""

    def __init__(self, name: str, args: CloudNativePgArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE, name, None, opts)
        cluster, namespace, protect = args.cluster, args.namespaces.cnpg, args.protect
        former_parent = pulumi.create_urn(*FORMER_PARENT, parent=opts.parent if opts else None)

        def formerly(part: str) -> list[pulumi.Alias]:
            return [pulumi.Alias(name=FORMER_NAMES[part], parent=former_parent)]

        self.namespace = platform_namespace(
            f"{name}-namespace",
            namespace,
            COMPONENT,
            POD_SECURITY,
            cluster.kubernetes_version,
            self,
            aliases=formerly("namespace"),
        )
        self.release = helm_release(
            f"{name}-release",
            versions.CLOUDNATIVE_PG,
            self.namespace.metadata["name"],
            operator_values(cluster),
            self,
            cluster=args.cluster,
            release_name=RELEASE,
            protect=protect,
            aliases=formerly("release"),
        )
        self.register_outputs({"namespace": self.namespace.metadata["name"], "release": self.release.name})


class Postgres(NamedTuple):
    """A service's Postgres: the Cluster and the Secret of its app user (keys ``USERNAME_KEY``, ``PASSWORD_KEY``)."""

    cluster: pulumi.CustomResource
    secret: pulumi.Resource
    secret_name: str


def host(cluster_name: str, namespace: str) -> str:
    """Where clients reach a Cluster's primary (on ``PORT``)."""
    return f"{cluster_name}-rw.{namespace}.svc"


def credentials_secret(cluster_name: str) -> str:
    """The Secret (and remote key) of a Cluster's app user."""
    return f"{cluster_name}-credentials"


def cluster_spec(database: Database, cluster_name: str, cluster: Cluster) -> dict:
    """Spec of a CNPG Cluster holding ``database.name``, owned by ``database.user``."""
    storage: dict = {"size": database.size}
    if database.storage_class:
        storage["storageClass"] = database.storage_class
    return {
        "instances": database.instances,
        "imageName": mirrored(versions.POSTGRES_IMAGE, cluster.image_registry),
        "enableSuperuserAccess": False,
        "enablePDB": database.instances > 1,  # a PDB on a single instance would block node drains
        "storage": storage,
        "bootstrap": {
            "initdb": {
                "database": database.name,
                "owner": database.user,
                "secret": {"name": credentials_secret(cluster_name)},
            }
        },
        # Only part-of: CNPG sets its own app.kubernetes.io/name, instance, component and managed-by on the pods.
        "inheritedMetadata": {"labels": {PART_OF_LABEL: PART_OF}},
    }


def database_cluster(
    logical_name: str,
    cluster_name: str,
    database: Database,
    cluster: Cluster,
    namespace: pulumi.Input[str],
    component: str,
    operator: CloudNativePg,
    platform_secrets: PlatformSecrets,
    parent: pulumi.Resource,
    protect: bool = False,
) -> Postgres:
    """The Postgres ``cluster_name`` of a service in its ``namespace`` (under its component ``parent``): the app
    user's generated password and Secret, and the Cluster after the operator (logical names ``<logical_name>``,
    ``-password``, ``-credentials``)."""
    secret_name = credentials_secret(cluster_name)
    password = platform_secrets.generated(f"{logical_name}-password", 32, secret_name, PASSWORD_KEY, parent=parent)
    secret = platform_secrets.secret(
        f"{logical_name}-credentials",
        secret_name,
        namespace,
        component,
        parent,
        {USERNAME_KEY: database.user, PASSWORD_KEY: password},
        type="kubernetes.io/basic-auth",
    )
    postgres = kube(
        logical_name,
        api_version="postgresql.cnpg.io/v1",
        kind="Cluster",
        metadata=metadata(cluster_name, component, namespace=namespace),
        spec=cluster_spec(database, cluster_name, cluster),
        # Deleting the Cluster deletes its volumes (owner references): the service's data.
        opts=holds_data(parent, protect, depends_on=[operator.release, secret]),
    )
    return Postgres(postgres, secret, secret_name)


def monitor_spec(cluster_name: str) -> dict:
    """Spec of a PodMonitor on a Cluster's instances' exporter."""
    return {
        "selector": {"matchLabels": {CLUSTER_LABEL: cluster_name}},
        "podMetricsEndpoints": [{"port": METRICS_PORT, "scheme": "http"}],
    }
