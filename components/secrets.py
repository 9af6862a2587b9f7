"""``PlatformSecrets``: how every component gets its Secrets, from Pulumi or from an external store;
``ExternalSecrets``: the External Secrets Operator and the store it reads.

Components never create ``Secret`` objects or ``RandomPassword``s themselves: they ask ``PlatformSecrets`` for
values (``generated`` credentials, ``provided`` config secrets) and for a Secret of a given name, namespace and keys
(``secret``; ``existing`` for a Secret the stack names and the operator provides). ``secrets.source`` decides what
that registers:

- ``pulumi``: a ``RandomPassword`` per generated value (its result is secret), and a ``Secret`` whose ``stringData``
  holds the values, each wrapped as a secret Output (plain strings, such as a user name, stay literals);
- ``external-secrets``: no password is generated; each Secret is an ``ExternalSecret`` (external-secrets.io/v1)
  with the same name in the same namespace, whose target Secret (same name, same keys, same type) the operator
  fills from the ``ClusterSecretStore`` ``STORE_NAME``: value ``property`` of remote key ``<keyPrefix>/<remote>``
  (``remote_key``). Its template (engine v2, ``mergePolicy: Replace``) writes exactly the requested keys: each value
  is ``{{ .<remote>_<property> }}`` of a ``data`` entry, literals stay literals, a ``Template`` renders around the
  references (the SeaweedFS identities JSON: the keys sit inside JSON strings, so a value the store holds for them
  must not contain ``"`` or ``\\``). ``creationPolicy: Owner`` (the Secret goes with its ExternalSecret),
  ``deletionPolicy: Retain`` (a key deleted in the store leaves the last Secret in place rather than breaking
  workloads).

Either way a workload's ``secretKeyRef`` names the same Secret and key: no component changes its references.
``remote_keys()`` lists what the store must hold (stack output ``secretStoreKeys``, the plan, docs/secrets.md);
``close()``, once every component has asked, where ExternalSecrets were placed (the only namespaces the store
serves); a Secret asked for after that is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import pulumi
import pulumi_random as random

from config import versions
from config.cluster import Cluster
from config.secrets import AwsStore, GcpStore, SecretStore, VaultStore
from config.secrets import Secrets as SecretsConfig

from .meta import ComponentArgs, helm_release, kube, metadata, mirrored, platform_namespace

STORE_NAME = "ai-platform"
EXTERNAL_SECRET_API = "external-secrets.io/v1"


class SecretRef(NamedTuple):
    """One secret value: where the store keeps it (``remote``/``property``) and, from Pulumi, the value."""

    remote: str
    property: str
    value: pulumi.Output | None


class Template(NamedTuple):
    """A Secret value built from other secret values (e.g. a JSON config holding keys). ``render`` gets a function
    that turns a ``SecretRef`` into something to embed: the Output (Pulumi) or a template reference (external)."""

    render: Callable[[Callable[[SecretRef], Any]], pulumi.Input[str]]


Value = SecretRef | Template | str


class PlatformSecrets:
    """Delivers the platform's Secrets from ``secrets.source``; ``store`` is the resource every ExternalSecret waits
    for in external mode: the operator's release, which installs the ExternalSecret CRD (see ``ExternalSecrets``)."""

    def __init__(self, cfg: SecretsConfig, store: pulumi.Resource | None = None):
        self.cfg = cfg
        self.external = cfg.source == "external-secrets"
        self.store = store
        self._remote: dict[str, set[str]] = {}
        self._namespaces: list[pulumi.Input[str]] = []
        self._user_provided: list[dict] = []
        self._closed = False

    def generated(
        self, logical_name: str, length: int, remote: str, property: str, parent: pulumi.Resource
    ) -> SecretRef:
        """A random credential of ``length`` letters and digits (Pulumi), or the store's ``remote``/``property``."""
        if self.external:
            return self._ref(remote, property)
        password = random.RandomPassword(
            logical_name, length=length, special=False, opts=pulumi.ResourceOptions(parent=parent)
        )
        return SecretRef(remote, property, password.result)

    def provided(
        self, value: pulumi.Output | None, remote: str, property: str, available: bool = True
    ) -> SecretRef | None:
        """A value the operator provides: a Pulumi config secret, or the store's ``remote``/``property``. None when
        the source has none (no Pulumi secret set; ``available`` false for the store)."""
        if self.external:
            return self._ref(remote, property) if available else None
        return None if value is None else SecretRef(remote, property, value)

    def existing(
        self,
        logical_name: str,
        name: str,
        namespace: pulumi.Input[str],
        component: str,
        parent: pulumi.Resource,
        keys: list[str],
        type: str = "Opaque",
        tenant: str | None = None,
        annotations: dict[str, str] | None = None,
        remote: str | None = None,
    ) -> pulumi.Resource | None:
        """A Secret the stack references by name (``database.passwordSecret``, ``sso.clientSecret``, ...): with
        source pulumi the operator creates it, nothing is registered (None) and ``user_provided()`` lists it; from the
        store it is an ExternalSecret of the remote key ``remote`` (default ``<name>``) with ``keys`` as properties
        (and ``annotations`` on its target)."""
        if not self.external:
            self._user_provided.append(
                {
                    "namespace": namespace,
                    "name": name,
                    "keys": sorted(keys),
                    "type": type,
                    **({"annotations": dict(annotations)} if annotations else {}),
                }
            )
            return None
        remote = remote or name
        return self.secret(
            logical_name,
            name,
            namespace,
            component,
            parent,
            {key: self._ref(remote, key) for key in keys},
            type=type,
            tenant=tenant,
            annotations=annotations,
        )

    def user_provided(self) -> list[dict]:
        """The Secrets the operator must create before ``pulumi up`` (source pulumi): namespace, name, keys, type and
        the annotations they need (stack output ``userProvidedSecrets``)."""
        return list(self._user_provided)

    def _ref(self, remote: str, property: str) -> SecretRef:
        self._remote.setdefault(remote, set()).add(property)
        return SecretRef(remote, property, None)

    def remote_key(self, remote: str) -> str:
        """The store's key of ``remote``: ``<keyPrefix>/<remote>``. Google Secret Manager names allow only letters,
        digits, ``-`` and ``_`` (the operator puts the key into ``projects/<p>/secrets/<key>``): there ``/`` and ``.``
        become ``_``."""
        key = f"{self.cfg.key_prefix}/{remote}"
        store = self.cfg.store
        return re.sub(r"[/.]", "_", key) if store is not None and store.provider == "gcp" else key

    def remote_keys(self) -> dict[str, list[str]]:
        """Remote keys (with the prefix) and their properties that the store must hold (external mode)."""
        return {self.remote_key(remote): sorted(props) for remote, props in sorted(self._remote.items())}

    def close(self) -> list[pulumi.Input[str]]:
        """No more Secrets: the namespaces of every ExternalSecret (Outputs where the caller passed one), which the
        store serves. ``secret`` refuses from now on, so a Secret asked for too late fails loudly instead of sitting
        in a namespace the store does not serve."""
        self._closed = True
        return list(self._namespaces)

    def secret(
        self,
        logical_name: str,
        name: str,
        namespace: pulumi.Input[str],
        component: str,
        parent: pulumi.Resource,
        data: Mapping[str, Value],
        type: str = "Opaque",
        tenant: str | None = None,
        depends_on: list[pulumi.Resource] | None = None,
        extra_labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> pulumi.Resource:
        """The Secret ``name`` in ``namespace`` with ``data`` (key -> value): a Secret, or an ExternalSecret that
        creates it. Plain strings are non-secret literals (a user name). ``annotations`` go on the Secret (its
        ``metadata``, or the ExternalSecret's ``spec.target.template.metadata``), not on the ExternalSecret."""
        if self._closed:
            raise RuntimeError(
                f"Secret {logical_name} asked for after PlatformSecrets.close(): every component must "
                "ask for its Secrets before AiPlatform creates the secret store"
            )
        meta = metadata(name, component, namespace=namespace, tenant=tenant, extra_labels=extra_labels)
        if not self.external:
            if annotations:
                meta["annotations"] = dict(annotations)

            def value(ref: SecretRef) -> pulumi.Output | None:
                return ref.value

            string_data = {
                key: pulumi.Output.secret(item.render(value))
                if isinstance(item, Template)
                else pulumi.Output.secret(item.value)
                if isinstance(item, SecretRef)
                else item
                for key, item in data.items()
            }
            return kube(
                logical_name,
                api_version="v1",
                kind="Secret",
                metadata=meta,
                type=type,
                stringData=string_data,
                opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or []),
            )
        self._namespaces.append(namespace)
        return self._external_secret(logical_name, meta, name, data, type, parent, depends_on or [], annotations)

    def _external_secret(
        self,
        logical_name: str,
        meta: dict,
        name: str,
        data: Mapping[str, Value],
        type: str,
        parent: pulumi.Resource,
        depends_on: list[pulumi.Resource],
        annotations: dict[str, str] | None = None,
    ) -> pulumi.Resource:
        fetched: dict[str, SecretRef] = {}

        def fetch(ref: SecretRef) -> str:
            # A Go template field name: letters, digits and underscores only.
            key = re.sub(r"[^A-Za-z0-9_]", "_", f"{ref.remote}_{ref.property}")
            fetched[key] = ref
            return "{{ ." + key + " }}"

        template_data: dict[str, pulumi.Input[str]] = {}
        for key, item in data.items():
            if isinstance(item, SecretRef):
                template_data[key] = fetch(item)
            elif isinstance(item, Template):
                template_data[key] = item.render(fetch)
            else:
                template_data[key] = item
        template: dict = {"type": type, "engineVersion": "v2", "mergePolicy": "Replace", "data": template_data}
        if annotations:
            template["metadata"] = {"annotations": dict(annotations)}
        spec = {
            "refreshInterval": self.cfg.refresh_interval,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": STORE_NAME},
            "target": {"name": name, "creationPolicy": "Owner", "deletionPolicy": "Retain", "template": template},
            "data": [
                {"secretKey": key, "remoteRef": {"key": self.remote_key(ref.remote), "property": ref.property}}
                for key, ref in sorted(fetched.items())
            ],
        }
        return kube(
            logical_name,
            api_version=EXTERNAL_SECRET_API,
            kind="ExternalSecret",
            metadata=meta,
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=parent, depends_on=depends_on + ([self.store] if self.store is not None else [])
            ),
        )


# --- the operator and its store ---------------------------------------------------------------------------------------

COMPONENT = "external-secrets"
POD_SECURITY = "restricted"
RELEASE = versions.EXTERNAL_SECRETS.name
STORE_SERVICE_ACCOUNT = "external-secrets-store"
# The chart's pod selector labels (app.kubernetes.io/name is the chart name plus the component's suffix, instance the
# release) and the container port every one of them serves metrics on.
POD_NAMES = [RELEASE, f"{RELEASE}-webhook", f"{RELEASE}-cert-controller"]
METRICS_PORT = "metrics"
# Workload identity annotations of the store's service account, per provider.
IDENTITY_ANNOTATIONS = {"aws": "eks.amazonaws.com/role-arn", "gcp": "iam.gke.io/gcp-service-account"}


def helm_values(secrets: SecretsConfig, cluster: Cluster) -> dict:
    """Values of the external-secrets chart (keys checked against the upstream values.yaml and values.schema.json)."""
    replicas = secrets.replicas
    # The controller's settings sit at the top level, the webhook's and cert-controller's in their sections.
    values: dict = {"webhook": {}, "certController": {}}
    for section in (values, values["webhook"], values["certController"]):
        section["replicaCount"] = replicas
        if replicas > 1:
            section["podDisruptionBudget"] = {"enabled": True, "minAvailable": 1}
        if cluster.image_registry:
            section["image"] = {"repository": mirrored(versions.EXTERNAL_SECRETS_IMAGE, cluster.image_registry)}
    values.update(
        {
            # One controller reconciles at a time; the webhook and cert-controller need no election.
            "leaderElect": replicas > 1,
            # CRDs are chart templates: a pin change upgrades them with the release; ``keep`` leaves them (and with them
            # every ExternalSecret and, through ownerReferences, every Secret) in place when the release goes.
            "installCRDs": True,
            "crds": {"annotations": {"helm.sh/resource-policy": "keep"}},
            # The chart's ServiceMonitors would need the Prometheus Operator CRDs before this release, and every
            # ExternalSecret would wait one wave longer: the monitoring component scrapes the pods with a PodMonitor.
            "serviceMonitor": {"enabled": False},
            # The chart would add ExternalSecret rights to the built-in edit and admin ClusterRoles: whoever holds those
            # in a namespace the store serves could read every key of it. Only the platform creates ExternalSecrets.
            "rbac": {"aggregateToEdit": False, "aggregateToAdmin": False},
        }
    )
    return values


def store_provider(store: SecretStore, namespace: str) -> dict:
    """``spec.provider`` of the ClusterSecretStore: the configured store, authenticating as ``STORE_SERVICE_ACCOUNT``
    (a ClusterSecretStore must name the account's namespace)."""
    settings = store.settings
    account = {"name": STORE_SERVICE_ACCOUNT, "namespace": namespace}
    if isinstance(settings, VaultStore):
        vault = settings
        provider = {
            "server": vault.server.rstrip("/"),
            "path": vault.path,
            "version": vault.version,
            "auth": {
                "kubernetes": {
                    "mountPath": vault.auth.kubernetes.mount_path,
                    "role": vault.auth.kubernetes.role,
                    "serviceAccountRef": account,
                }
            },
        }
        if vault.namespace:
            provider["namespace"] = vault.namespace
        return {"vault": provider}
    if isinstance(settings, AwsStore):
        return {
            "aws": {
                "service": "SecretsManager",
                "region": settings.region,
                "auth": {"jwt": {"serviceAccountRef": account}},
            }
        }
    gcp = settings
    return {
        "gcpsm": {
            "projectID": gcp.project_id,
            "auth": {
                "workloadIdentity": {
                    "clusterLocation": gcp.auth.cluster_location,
                    "clusterName": gcp.auth.cluster_name,
                    "serviceAccountRef": account,
                }
            },
        }
    }


def identity_annotations(store: SecretStore) -> dict[str, str]:
    """Annotations of the store's service account: the cloud identity it stands for (none for Vault)."""
    settings = store.settings
    if isinstance(settings, AwsStore):
        return {IDENTITY_ANNOTATIONS["aws"]: settings.auth.role_arn}
    if isinstance(settings, GcpStore):
        return {IDENTITY_ANNOTATIONS["gcp"]: settings.auth.service_account}
    return {}


@dataclass(frozen=True)
class ExternalSecretsArgs(ComponentArgs):
    """What ``ExternalSecrets`` is built from (besides the cluster and namespaces): the secrets config (``source:
    external-secrets``)."""

    secrets: SecretsConfig


class ExternalSecrets(pulumi.ComponentResource):
    """The External Secrets Operator and the store the platform's ExternalSecrets read (``secrets.source:
    external-secrets``).

    Owns:
    - the namespace ``namespaces.externalSecrets``, Pod Security ``restricted``: the chart's controller, webhook and
      cert-controller containers run non-root (uid 1000), without privilege escalation, with every capability
      dropped, a read-only root file system and the RuntimeDefault seccomp profile (their ``securityContext``
      defaults), and use no host namespace;
    - the Helm release ``external-secrets`` of the pinned chart: ``secrets.replicas`` controllers (leader election
      above one), webhooks and cert-controllers (PodDisruptionBudgets above one), images from
      ``cluster.imageRegistry`` (the chart pins the tag). The CRDs are chart templates (``installCRDs``): a pin change
      upgrades them with the release, and ``helm.sh/resource-policy: keep`` keeps them when the release is removed.
      No chart ServiceMonitor: ``Monitoring.scrape_external_secrets`` adds a PodMonitor after its own release. The
      chart's aggregation of ExternalSecret rights into the built-in ``edit``/``admin`` ClusterRoles is off: only the
      platform creates ExternalSecrets (tenant Roles name no external-secrets.io resource), since anyone who could
      create one in a namespace the store serves could read every key of the store;
    - the ServiceAccount ``external-secrets-store`` the store authenticates as: Vault's Kubernetes auth (the operator
      requests a token for it; with the Vault provider it is bound to ``system:auth-delegator``, which Vault needs when
      it reviews tokens with the client's own JWT), AWS IRSA (``eks.amazonaws.com/role-arn``), GKE workload identity
      (``iam.gke.io/gcp-service-account``);
    - the ClusterSecretStore ``STORE_NAME`` (``create_store``, from ``PlatformSecrets.close()`` once every component
      has asked for its Secrets), whose ``spec.conditions`` restrict it to the namespaces holding the platform's
      ExternalSecrets.

    The operator talks to the API server and the store; its namespace has no NetworkPolicy, and no platform policy
    covers it, so nothing is opened for it.
    """

    def __init__(self, name: str, args: ExternalSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:secrets:ExternalSecrets", name, None, opts)
        secrets, cluster, protect = args.secrets, args.cluster, args.protect
        namespace = args.namespaces.external_secrets
        if secrets.source != "external-secrets":
            raise ValueError("ExternalSecrets is for secrets.source external-secrets")
        store = secrets.external_store
        self._name, self._store_config = name, store
        self.namespace_name = namespace
        self.namespace = platform_namespace(
            f"{name}-namespace", namespace, COMPONENT, POD_SECURITY, cluster.kubernetes_version, self
        )
        ns = self.namespace.metadata["name"]
        self.release = helm_release(
            f"{name}-release",
            versions.EXTERNAL_SECRETS,
            ns,
            helm_values(secrets, cluster),
            self,
            cluster=args.cluster,
            release_name=RELEASE,
            protect=protect,
        )
        annotations = identity_annotations(store)
        self.service_account = kube(
            f"{name}-store-service-account",
            api_version="v1",
            kind="ServiceAccount",
            metadata={
                **metadata(STORE_SERVICE_ACCOUNT, COMPONENT, namespace=ns),
                **({"annotations": annotations} if annotations else {}),
            },
            automountServiceAccountToken=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.auth_delegator = (
            kube(
                f"{name}-store-auth-delegator",
                api_version="rbac.authorization.k8s.io/v1",
                kind="ClusterRoleBinding",
                metadata=metadata(f"{STORE_SERVICE_ACCOUNT}-auth-delegator", COMPONENT),
                roleRef={
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:auth-delegator",
                },
                subjects=[{"kind": "ServiceAccount", "name": STORE_SERVICE_ACCOUNT, "namespace": ns}],
                opts=pulumi.ResourceOptions(parent=self),
            )
            if store.provider == "vault"
            else None
        )
        self.store: pulumi.Resource | None = None
        self.register_outputs({"namespace": ns, "release": self.release.name})

    def create_store(self, namespaces: list[pulumi.Input[str]]) -> pulumi.Resource:
        """The ClusterSecretStore, serving exactly ``namespaces`` (``PlatformSecrets.close()`` after every component
        ran). It waits for the release (CRD) and its service account."""
        names = pulumi.Output.all(*namespaces).apply(lambda found: sorted(set(found)))
        self.store = kube(
            f"{self._name}-store",
            api_version=EXTERNAL_SECRET_API,
            kind="ClusterSecretStore",
            metadata=metadata(STORE_NAME, COMPONENT),
            spec={
                "conditions": [{"namespaces": names}],
                "provider": store_provider(self._store_config, self.namespace_name),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, self.service_account]),
        )
        return self.store
