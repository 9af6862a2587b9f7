"""How an endpoint's pods read their model: the endpoint's ServiceAccount, its object-store keys, its egress.

- The ServiceAccount ``<endpoint>-model`` in the tenant namespace: every pod of the endpoint (servers of both versions,
  the vLLM download Job, KServe predictors and their storage initializer) runs under it, with
  ``models[].serviceAccountAnnotations`` (workload identity) and no API token (``automountServiceAccountToken: false``:
  the identity webhooks of EKS and AKS mount their own projected token; GKE's metadata server needs none). For KServe,
  the region and endpoint of an ``s3://`` source as KServe's annotations on it (kserve/kserve v0.20.0
  ``pkg/credentials/s3/s3_service_account.go`` reads them from the ServiceAccount with IRSA) and the keys' Secret in
  its ``secrets`` (``pkg/credentials/service_account_credentials.go``: the storage initializer gets the keys of every
  Secret the ServiceAccount lists).
- The keys of an ``s3://`` source (``models[].s3.credentialsSecret``, keys ``AWS_ACCESS_KEY_ID`` and
  ``AWS_SECRET_ACCESS_KEY``, the names the kserve-resources chart configures too: ``kserve.storage.s3.accessKeyIdName``):
  with ``secrets.source: external-secrets`` an ExternalSecret of the store's ``<keyPrefix>/tenants/<tenant>/<name>``;
  with ``pulumi`` the operator creates it, and the stack output ``userProvidedSecrets`` says so. One per tenant and name,
  however many endpoints share it (``model_credentials``).
- The NetworkPolicy ``<endpoint>-model-egress``: the pods that fetch the model may reach HTTPS outside the cluster's
  and the nodes' networks (object stores, Hugging Face, cloud token services: ``tenancy.public_https_egress``) and,
  with workload identity, what the identity needs on the node on the cluster's platform (``platforms.identities``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from config.model import PlatformConfig
from config.serving import Endpoint
from platforms import Profile

from ..meta import kube
from ..secrets import PlatformSecrets
from ..tenancy import public_https_egress
from . import engines

S3_KEYS = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]


def service_account_name(endpoint: Endpoint) -> str:
    return endpoint.service_account


def identity_pod_labels(endpoint: Endpoint, profile: Profile) -> dict[str, str]:
    """Labels the endpoint's pods need for their workload identity on the cluster's platform."""
    identity = profile.identity(endpoint.service_account_annotations, endpoint.pod_identity)
    return dict(identity.pod_labels) if identity else {}


def service_account(name: str, endpoint: Endpoint, meta: dict, parent: pulumi.Resource) -> pulumi.Resource:
    """The endpoint's ServiceAccount (``meta``: its metadata without annotations)."""
    annotations = dict(endpoint.service_account_annotations)
    fields: dict = {}
    engine_annotations = engines.of(endpoint).credential_annotations(endpoint)
    if engine_annotations:
        annotations.update(engine_annotations)
        if endpoint.s3.credentials_secret:
            fields["secrets"] = [{"name": endpoint.s3.credentials_secret}]
    return kube(
        f"{name}-service-account",
        api_version="v1",
        kind="ServiceAccount",
        metadata={**meta, **({"annotations": annotations} if annotations else {})},
        automountServiceAccountToken=False,
        **fields,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def model_credentials(
    cfg: PlatformConfig,
    secrets: PlatformSecrets,
    tenant_namespaces: dict[str, pulumi.Input[str]],
    tenants: Mapping[str, pulumi.Resource],
) -> None:
    """The keys' Secret of every ``s3.credentialsSecret`` the endpoints name, once per tenant and name, under the
    tenant's component (it outlives any one endpoint)."""
    seen: set[tuple[str, str]] = set()
    for endpoint in cfg.models:
        name = endpoint.s3.credentials_secret
        if not name or (endpoint.tenant, name) in seen:
            continue
        seen.add((endpoint.tenant, name))
        users = [e for e in cfg.models if e.tenant == endpoint.tenant and e.s3.credentials_secret == name]
        # KServe reads region and endpoint from the Secret's annotations (s3_secret.go BuildSecretEnvs).
        annotations = next((a for e in users if (a := engines.of(e).credential_annotations(e))), None)
        secrets.existing(
            f"tenant-{endpoint.tenant}-model-credentials-{name}",
            name,
            tenant_namespaces[endpoint.tenant],
            "serving",
            tenants[endpoint.tenant],
            S3_KEYS,
            tenant=endpoint.tenant,
            remote=f"tenants/{endpoint.tenant}/{name}",
            annotations=annotations,
        )


def egress_spec(endpoint: Endpoint, fetchers: dict, profile: Profile) -> dict:
    """NetworkPolicy spec: the pods ``fetchers`` selects may reach HTTPS outside the private ranges, and what their
    workload identity needs on the cluster's platform."""
    rules = [public_https_egress()]
    identity = profile.identity(endpoint.service_account_annotations, endpoint.pod_identity)
    for cidr, port in identity.egress if identity else ():
        rules.append({"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": "TCP", "port": port}]})
    return {"podSelector": fetchers, "policyTypes": ["Egress"], "egress": rules}
