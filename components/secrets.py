"""``PlatformSecrets``: how every component gets its Secrets, from Pulumi or from an external store.

Components never create ``Secret`` objects or ``RandomPassword``s themselves: they ask ``PlatformSecrets`` for
values (``generated`` credentials, ``provided`` config secrets) and for a Secret of a given name, namespace and keys
(``secret``). ``secrets.source`` decides what that registers:

- ``pulumi``: a ``RandomPassword`` per generated value (its result is secret), and a ``Secret`` whose ``stringData``
  holds the values;
- ``external-secrets``: no password is generated; each Secret is an ``ExternalSecret`` (external-secrets.io/v1)
  with the same name in the same namespace, whose target Secret (same name, same keys, same type) the operator
  fills from the ``ClusterSecretStore`` ``STORE_NAME``: value ``property`` of remote key ``<keyPrefix>/<remote>``.

Either way a workload's ``secretKeyRef`` names the same Secret and key: no component changes its references.
``remote_keys()`` lists what the store must hold (the renderer's plan and the README show it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from config.model import Secrets as SecretsConfig

from .meta import metadata

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
    for (the ClusterSecretStore) in external mode."""

    def __init__(self, cfg: SecretsConfig, store: pulumi.Resource | None = None):
        self.cfg = cfg
        self.external = cfg.source == "external-secrets"
        self.store = store
        self._remote: dict[str, set[str]] = {}

    def generated(self, logical_name: str, length: int, remote: str, property: str,
                  parent: pulumi.Resource) -> SecretRef:
        """A random credential of ``length`` letters and digits (Pulumi), or the store's ``remote``/``property``."""
        if self.external:
            return self._ref(remote, property)
        password = random.RandomPassword(logical_name, length=length, special=False,
                                         opts=pulumi.ResourceOptions(parent=parent))
        return SecretRef(remote, property, password.result)

    def provided(self, value: pulumi.Output | None, remote: str, property: str) -> SecretRef | None:
        """A value the operator provides: a Pulumi config secret, or the store's ``remote``/``property``. None when
        the source has none (no Pulumi secret set; ``available`` false in the store)."""
        if self.external:
            return self._ref(remote, property)
        return None if value is None else SecretRef(remote, property, value)

    def existing(self, logical_name: str, name: str, namespace: pulumi.Input[str], component: str,
                 parent: pulumi.Resource, keys: list[str], type: str = "Opaque",
                 tenant: str | None = None) -> pulumi.Resource | None:
        """A Secret the stack references by name (``database.passwordSecret``, ``sso.clientSecret``, ...): with
        source pulumi the operator creates it and nothing is registered (None); from the store it is an
        ExternalSecret of the remote key ``<name>`` with ``keys`` as properties."""
        if not self.external:
            return None
        return self.secret(logical_name, name, namespace, component, parent,
                           {key: self._ref(name, key) for key in keys}, type=type, tenant=tenant)

    def _ref(self, remote: str, property: str) -> SecretRef:
        self._remote.setdefault(remote, set()).add(property)
        return SecretRef(remote, property, None)

    def remote_keys(self) -> dict[str, list[str]]:
        """Remote keys (with the prefix) and their properties that the store must hold (external mode)."""
        return {f"{self.cfg.key_prefix}/{remote}": sorted(props) for remote, props in sorted(self._remote.items())}

    def secret(self, logical_name: str, name: str, namespace: pulumi.Input[str], component: str,
               parent: pulumi.Resource, data: Mapping[str, Value], type: str = "Opaque",
               tenant: str | None = None, depends_on: list[pulumi.Resource] | None = None) -> pulumi.Resource:
        """The Secret ``name`` in ``namespace`` with ``data`` (key -> value): a Secret, or an ExternalSecret that
        creates it. Plain strings are non-secret literals (a user name)."""
        meta = metadata(name, component, namespace=namespace, tenant=tenant)
        if not self.external:
            def value(ref: SecretRef) -> pulumi.Output:
                return ref.value

            string_data = {key: pulumi.Output.secret(item.render(value)) if isinstance(item, Template)
                           else item.value if isinstance(item, SecretRef) else item for key, item in data.items()}
            return k8s.core.v1.Secret(logical_name, metadata=meta, type=type, string_data=string_data,
                                      opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or []))
        return self._external_secret(logical_name, meta, name, data, type, parent, depends_on or [])

    def _external_secret(self, logical_name: str, meta: dict, name: str, data: Mapping[str, Value], type: str,
                         parent: pulumi.Resource, depends_on: list[pulumi.Resource]) -> pulumi.Resource:
        fetched: dict[str, SecretRef] = {}

        def fetch(ref: SecretRef) -> str:
            key = f"{ref.remote}_{ref.property}".replace("-", "_").replace(".", "_")
            fetched[key] = ref
            return "{{ ." + key + " }}"

        template_data: dict[str, str] = {}
        for key, item in data.items():
            if isinstance(item, SecretRef):
                template_data[key] = fetch(item)
            elif isinstance(item, Template):
                template_data[key] = item.render(fetch)
            else:
                template_data[key] = item
        spec = {
            "refreshInterval": self.cfg.refresh_interval,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": STORE_NAME},
            "target": {"name": name, "creationPolicy": "Owner", "deletionPolicy": "Retain",
                       "template": {"type": type, "engineVersion": "v2", "data": template_data}},
            "data": [{"secretKey": key, "remoteRef": {"key": f"{self.cfg.key_prefix}/{ref.remote}",
                                                       "property": ref.property}}
                     for key, ref in sorted(fetched.items())],
        }
        return k8s.apiextensions.CustomResource(
            logical_name, api_version=EXTERNAL_SECRET_API, kind="ExternalSecret", metadata=meta, spec=spec,
            opts=pulumi.ResourceOptions(parent=parent,
                                        depends_on=depends_on + ([self.store] if self.store is not None else [])))
