"""The service mesh (``ai-platform:mesh``): Istio, the ingress gateway, its certificate and end-user JWTs; and how the
mesh routes to one endpoint (``models[].traffic``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from .base import ConfigProblems, DnsSubdomain, EmailAddress, HttpsUrl, Model, PositiveInt, Problems, valid
from .routing import Picker

if TYPE_CHECKING:
    from .model import PlatformConfig

Duration = Annotated[str, Field(pattern=r"^\d+(\.\d+)?(ms|s|m|h)$")]


class Issuer(Model):
    """Who signs the ingress certificate (cert-manager)."""

    kind: Literal["selfSigned", "clusterIssuer", "acme"] = "selfSigned"
    """``selfSigned`` (dev), an existing ``clusterIssuer`` by name, or an ``acme`` issuer the platform creates
    (HTTP-01 through the ingress gateway)."""
    name: DnsSubdomain | None = None
    """Name of the existing ClusterIssuer (kind clusterIssuer)."""
    server: HttpsUrl = "https://acme-v02.api.letsencrypt.org/directory"
    """ACME directory (kind acme)."""
    email: EmailAddress | None = None
    """ACME account e-mail (kind acme)."""

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Issuer:
        problems = []
        if self.kind == "clusterIssuer" and not self.name:
            problems.append(("name", "a clusterIssuer needs the name of an existing ClusterIssuer"))
        if self.kind != "clusterIssuer" and self.name:
            problems.append(("name", f"only for kind clusterIssuer (got kind {self.kind})"))
        if self.kind == "acme" and not self.email:
            problems.append(("email", "an acme issuer needs an account e-mail"))
        return valid(self, problems)


class Jwt(Model):
    """End-user authentication at the ingress: requests to endpoint hosts must carry a valid JWT."""

    issuer: Annotated[str, Field(min_length=1)]
    """Expected ``iss`` claim."""
    jwks_uri: HttpsUrl
    """Where the issuer publishes its signing keys."""
    audiences: list[str] = []
    """Accepted ``aud`` values; empty: any."""
    consumer_claim: Annotated[str, Field(pattern=r"^[A-Za-z0-9_:-]+$")] = "sub"
    """The top-level string claim that names a consumer (``tenants[].consumers[].claimValue``): ``sub``, a client id
    claim such as ``azp`` or ``client_id``."""


class Mesh(Model):
    """Istio service mesh (sidecar mode with the Istio CNI agent) and the platform's ingress gateway."""

    enabled: bool = True
    """Install Istio and route every endpoint through it; tenants get sidecars, strict mTLS, authorization."""
    mode: Literal["sidecar"] = "sidecar"
    """Data plane mode. Sidecar: per-endpoint L7 policy (timeouts, retries, outlier detection, authorization)
    runs in each client's and server's proxy with no extra waypoints; ambient would need waypoint proxies and
    the Gateway API CRDs, which the platform installs only for ``inferenceRouting``."""
    access_logging: bool = True
    """Envoy access logs on stdout for every proxy."""
    outbound_traffic: Literal["ALLOW_ANY", "REGISTRY_ONLY"] = "ALLOW_ANY"
    """Proxies' policy for hosts outside the mesh registry (NetworkPolicies still bound egress)."""
    gateway_replicas: Annotated[int, Field(ge=1, le=10, strict=True)] = 2
    """Ingress gateway replicas."""
    tls: Issuer = Issuer()
    """Issuer of the ingress certificate."""
    jwt: Jwt | None = None
    """Require an end-user JWT on the external hosts."""


class Weights(Model):
    """Weighted split between the stable and the canary version (percent; sums to 100)."""

    stable: Annotated[int, Field(ge=0, le=100, strict=True)] = 100
    canary: Annotated[int, Field(ge=0, le=100, strict=True)] = 0

    @model_validator(mode="after")
    def _sum(self) -> Weights:
        if self.stable + self.canary != 100:
            raise ConfigProblems([("canary", f"stable + canary must be 100 (got {self.stable} + {self.canary})")])
        return self


class HeaderRoute(Model):
    """Requests with this header value go to one version, before the weighted split."""

    header: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")] = "x-model-version"
    value: Annotated[str, Field(min_length=1)]
    subset: Literal["stable", "canary"]


class ConnectionPool(Model):
    """Per-client limits towards one endpoint (Istio connectionPool)."""

    max_connections: PositiveInt = 100
    max_pending_requests: PositiveInt = 64
    """Queued requests before the proxy answers 503 (a full server should shed load, not queue forever)."""
    max_requests: PositiveInt = 256
    """Concurrent requests (HTTP/2) to the endpoint."""


class OutlierDetection(Model):
    """Circuit breaker: eject replicas that keep failing (Istio outlierDetection)."""

    consecutive5xx_errors: Annotated[int, Field(ge=1, strict=True, alias="consecutive5xxErrors")] = 5
    consecutive_gateway_errors: PositiveInt = 3
    interval: Duration = "30s"
    base_ejection_time: Duration = "60s"
    max_ejection_percent: Annotated[int, Field(ge=1, le=100, strict=True)] = 50


class Traffic(Model):
    """How the mesh routes to an endpoint; defaults suit long LLM generations."""

    weights: Weights = Weights()
    """Weighted split stable/canary."""
    header_routes: list[HeaderRoute] = []
    """Extra header routes; with a canary, ``x-model-version: canary`` always routes to it."""
    timeout: Duration = "120s"
    """Request timeout (a generation may stream for minutes)."""
    retry_attempts: Annotated[int, Field(ge=0, le=5, strict=True)] = 2
    """Retries, only where the request never reached a server (connect-failure, refused-stream, 503)."""
    connection_pool: ConnectionPool = ConnectionPool()
    outlier_detection: OutlierDetection = OutlierDetection()
    picker: Picker | None = None
    """vLLM endpoints with ``inferenceRouting.enabled``: opt out of the endpoint picker, or set its scorers."""


def cross_checks(cfg: PlatformConfig) -> Problems:
    """The mesh needs what serving installs."""
    if cfg.mesh.enabled and not cfg.serving.enabled:
        return [
            ("mesh.enabled", "the mesh's ingress certificate comes from cert-manager, which serving.enabled installs")
        ]
    return []
