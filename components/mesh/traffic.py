"""``EndpointTraffic``: how the mesh routes to and guards one model endpoint, the same way for every engine.

Owns, in the tenant namespace:
- a VirtualService for the external host ``<endpoint>.<tenant>.<domain>`` (on the platform gateway) and the
  in-mesh Service host: header routes first (``x-model-version: canary`` to the canary, plus configured
  ones), then the weighted stable/canary split; a per-route timeout (long by default: generations stream)
  and retries only where the request never reached a server (connect-failure, refused-stream, 503), so a
  generation is never sent twice;
- DestinationRules: ``LEAST_REQUEST`` balancing, connection-pool limits and outlier detection (the circuit
  breaker), with subsets ``stable``/``canary`` by the pods' ``version`` label, or one per version where the engine
  gives each version its own Service (``separate_services``: KServe);
- AuthorizationPolicies: only the ingress gateway's service account, the tenant's own namespace and, on the
  metrics port, the monitoring namespace may call the endpoint.
Every object waits for the mesh (its CRDs and webhooks). Services, ports and pod labels are the engine's
(``components.serving.engines``).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi

from config.cluster import Namespaces
from config.mesh import HeaderRoute
from config.serving import Endpoint

from ..meta import kube, metadata
from ..serving import engines
from ..serving.engines.base import ENDPOINT_LABEL, STABLE, VERSION_LABEL, version_name, versions_of
from .control_plane import Mesh

COMPONENT = "mesh"
RETRY_ON = "connect-failure,refused-stream,503"


@dataclass(frozen=True)
class EndpointTrafficArgs:
    """What ``EndpointTraffic`` is built from: the endpoint, its external host and the namespaces; keyword-only, the
    tenant's namespace (an Output) and the mesh (its gateway, the gateway's principal, and istiod to wait for)."""

    endpoint: Endpoint
    host: str
    namespaces: Namespaces
    _: KW_ONLY
    namespace: pulumi.Input[str]
    mesh: Mesh


class EndpointTraffic(pulumi.ComponentResource):
    """VirtualService, DestinationRules and AuthorizationPolicies of one endpoint."""

    def __init__(self, name: str, args: EndpointTrafficArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:mesh:EndpointTraffic", name, None, opts)
        endpoint, host, namespace, namespaces = args.endpoint, args.host, args.namespace, args.namespaces
        gateway, gateway_principal, mesh_ready = args.mesh.gateway, args.mesh.gateway_principal, args.mesh.ready
        self.endpoint, self.namespace = endpoint, namespace
        after_mesh = pulumi.ResourceOptions(parent=self, depends_on=[mesh_ready])
        tenant = endpoint.tenant
        engine = engines.of(endpoint)
        by_host = engine.separate_services  # one Service per version: route by host, not by subset
        versions = [version for version, _ in versions_of(endpoint)]
        fqdn = {v: f"{s}.{tenant}.svc.cluster.local" for v, s in engine.services(endpoint).items()}

        def destination(version: str, port: int) -> dict:
            target = {"host": fqdn[version], "port": {"number": port}}
            return target if by_host else {**target, "subset": version}

        traffic = endpoint.traffic
        policy: dict = {"timeout": traffic.timeout}
        if traffic.retry_attempts:
            policy["retries"] = {
                "attempts": traffic.retry_attempts,
                "perTryTimeout": traffic.timeout,
                "retryOn": RETRY_ON,
            }
        header_routes = list(traffic.header_routes)
        if endpoint.canary and not any(r.header == "x-model-version" and r.value == "canary" for r in header_routes):
            header_routes.insert(0, HeaderRoute(value="canary", subset="canary"))
        # (gateway, port on the Service) pairs: external traffic reaches the HTTP port; in-mesh traffic keeps its port.
        ports = engine.traffic_ports
        entries = [(gateway, None, ports[0][1])] + [("mesh", port, port) for _, port in ports]
        routes = []
        for route_gateway, port, target_port in entries:
            base_match = {"gateways": [route_gateway], **({"port": port} if port else {})}
            for route in header_routes:
                routes.append(
                    {
                        "name": f"{route.header}-{route.value}-{target_port}",
                        "match": [{**base_match, "headers": {route.header: {"exact": route.value}}}],
                        "route": [{"destination": destination(route.subset, target_port)}],
                        **policy,
                    }
                )
            split = [{"destination": destination("stable", target_port), "weight": traffic.weights.stable}]
            if endpoint.canary:
                split.append({"destination": destination("canary", target_port), "weight": traffic.weights.canary})
            routes.append(
                {
                    "name": f"split-{'gateway' if route_gateway == gateway else 'mesh'}-{target_port}",
                    "match": [base_match],
                    "route": split,
                    **policy,
                }
            )
        kube(
            f"{name}-virtualservice",
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            metadata=self._meta(endpoint.name),
            spec={"hosts": [host, fqdn["stable"]], "gateways": [gateway, "mesh"], "http": routes},
            opts=after_mesh,
        )

        pool = traffic.connection_pool
        outliers = traffic.outlier_detection
        traffic_policy = {
            "loadBalancer": {"simple": "LEAST_REQUEST"},
            "connectionPool": {
                "tcp": {"maxConnections": pool.max_connections},
                "http": {"http1MaxPendingRequests": pool.max_pending_requests, "http2MaxRequests": pool.max_requests},
            },
            "outlierDetection": {
                "consecutive5xxErrors": outliers.consecutive5xx_errors,
                "consecutiveGatewayErrors": outliers.consecutive_gateway_errors,
                "interval": outliers.interval,
                "baseEjectionTime": outliers.base_ejection_time,
                "maxEjectionPercent": outliers.max_ejection_percent,
            },
        }
        rules = (
            {v: {"host": fqdn[v], "trafficPolicy": traffic_policy} for v in versions}
            if by_host
            else {
                STABLE: {
                    "host": fqdn[STABLE],
                    "trafficPolicy": traffic_policy,
                    "subsets": [{"name": v, "labels": {VERSION_LABEL: v}} for v in versions],
                }
            }
        )
        for version, spec in rules.items():
            kube(
                f"{version_name(name, version)}-destinationrule",
                api_version="networking.istio.io/v1",
                kind="DestinationRule",
                metadata=self._meta(version_name(endpoint.name, version)),
                spec=spec,
                opts=after_mesh,
            )

        for version, selector in engine.policy_selectors(endpoint).items():
            kube(
                f"{version_name(name, version)}-authorizationpolicy",
                api_version="security.istio.io/v1",
                kind="AuthorizationPolicy",
                metadata=self._meta(version_name(endpoint.name, version)),
                spec={
                    "selector": {"matchLabels": selector},
                    "action": "ALLOW",
                    "rules": [
                        {"from": [{"source": {"principals": [gateway_principal]}}]},
                        {"from": [{"source": {"namespaces": [tenant]}}]},
                        {
                            "from": [{"source": {"namespaces": [namespaces.monitoring]}}],
                            "to": [{"operation": {"ports": [str(engine.metrics_port)], "paths": ["/metrics"]}}],
                        },
                    ],
                },
                opts=after_mesh,
            )
        self.register_outputs({})

    def _meta(self, object_name: str) -> dict:
        return metadata(
            object_name,
            COMPONENT,
            namespace=self.namespace,
            tenant=self.endpoint.tenant,
            extra_labels={ENDPOINT_LABEL: self.endpoint.name},
        )
