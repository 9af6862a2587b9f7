"""A small evaluator of who can reach whom: Kubernetes NetworkPolicy, Istio sidecar injection, PeerAuthentication
and AuthorizationPolicy semantics over the objects a stack declares, plus the pods Helm charts create (described
as data in ``tests/contracts/reachability.py``).

Semantics implemented, each from its upstream definition:

- NetworkPolicy (Kubernetes API ``networking.k8s.io/v1``, https://kubernetes.io/docs/concepts/services-networking/
  network-policies/): a pod selected by no policy of a direction is open in that direction; selected by one or
  more, a connection must match a rule of one of them (rules are unioned). A peer is ``podSelector`` (same
  namespace), ``namespaceSelector`` (every pod in those namespaces), both in one peer (AND), or ``ipBlock``
  (``cidr`` minus ``except``; pods are addressed from the pod CIDR, so private ``except`` ranges leave them out).
  ``ports``: number or the destination container's port name, ``endPort`` a range, protocol TCP by default; no
  ``ports`` = every port; no ``from``/``to`` = every peer. ``policyTypes`` defaults to ``[Ingress]`` plus
  ``Egress`` when egress rules are present. A connection needs the client's egress AND the server's ingress.
  Namespaces carry ``kubernetes.io/metadata.name`` (set by the API server on every namespace since 1.21).
- Sidecar injection (istio/istio 1.30.3 ``manifests/charts/istio-control/istio-discovery/templates/
  mutatingwebhook.yaml``, default revision): a namespace labelled ``istio-injection=enabled`` (or ``istio.io/rev``)
  injects every pod not labelled ``sidecar.istio.io/inject=false``; a namespace with neither label injects only
  pods labelled ``sidecar.istio.io/inject=true``.
- Inbound capture (istio 1.30.3 ``cni/pkg/plugin/sidecar_redirect.go``): ports 15020, 15021, 15090 are never
  redirected (the proxy serves them itself, in plain text); the annotation
  ``traffic.sidecar.istio.io/includeInboundPorts: ""`` captures no inbound port. An uncaptured port sees neither
  mTLS nor authorization.
- PeerAuthentication (istio 1.30.3 ``pilot/pkg/security/authn/policy_applier.go`` ``ComposePeerAuthentication``):
  PERMISSIVE by default; a selector-less policy in the root namespace is the mesh's, in another namespace that
  namespace's; a policy with a selector is the workload's; the oldest of each level wins (here: the first listed);
  mesh, then namespace, then workload override the mode unless UNSET; ``portLevelMtls`` applies only from the
  workload policy, UNSET inheriting the workload's mode. A STRICT port refuses plain text; a client's sidecar
  sends mTLS to an injected server and plain text to one without a sidecar.
- AuthorizationPolicy (https://istio.io/latest/docs/reference/config/security/authorization-policy/; matchers in
  istio 1.30.3 ``pilot/pkg/security/authz/matcher/header.go`` ``HostMatcher`` and ``string.go``): policies apply to
  a workload from the root namespace (no selector: every workload), from its namespace (no selector: every
  workload there; a selector: the matching ones). CUSTOM (a matching request goes to the external authorizer:
  modelled as refused, the platform declares none), then DENY: a matching DENY refuses; then ALLOW: with
  any ALLOW policy applying, a request must match one of its rules. A rule matches when every ``from`` (any
  source), ``to`` (any operation) and ``when`` matches; fields are ANDed, values ORed, ``not*`` fields refuse a
  match. ``principals``/``namespaces`` need an mTLS peer; ``requestPrincipals`` a validated JWT (``iss/sub``).
  Values: ``*`` any (for hosts: present), ``*x`` suffix, ``x*`` prefix, else exact; hosts compare case-insensitively.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
UNCAPTURED_PORTS = frozenset({15020, 15021, 15090})
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")


@dataclass(frozen=True)
class Pod:
    """A pod: its namespace, labels, annotations, container ports by name, service account; ``source`` says where
    the description comes from (a rendered object, or an upstream chart at its pinned tag)."""

    name: str
    namespace: str
    labels: dict = field(default_factory=dict, hash=False, compare=False)
    ports: dict = field(default_factory=dict, hash=False, compare=False)
    service_account: str = "default"
    annotations: dict = field(default_factory=dict, hash=False, compare=False)
    source: str = ""

    @property
    def principal(self) -> str:
        return f"cluster.local/ns/{self.namespace}/sa/{self.service_account}"


@dataclass(frozen=True)
class Address:
    """A peer that is not a pod: the API server, a node, the cloud metadata service, the internet."""

    name: str
    ip: str
    source: str = ""


@dataclass(frozen=True)
class Request:
    """What an HTTP request carries for authorization: Host header, path, method, the validated JWT's principal."""

    host: str | None = None
    path: str = "/"
    method: str = "GET"
    request_principal: str | None = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def match_labels(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions In/NotIn/Exists/DoesNotExist) against labels; ``{}``
    selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def istio_match(pattern: str, value: str | None, ignore_case: bool = False) -> bool:
    """Istio's string match: ``*`` any (present), ``*x`` suffix, ``x*`` prefix, else exact."""
    if value is None:
        return False
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


class Cluster:
    """The objects of a stack plus the pods and namespaces described as data; answers ``connect``."""

    def __init__(
        self,
        objects: Iterable[dict],
        namespaces: dict[str, dict] | None = None,
        pods: Iterable[Pod] = (),
        mesh_root: str = "istio-system",
    ):
        self.objects = list(objects)
        self.namespaces: dict[str, dict] = {}
        for obj in self.objects:
            if obj.get("kind") == "Namespace":
                name = obj["metadata"]["name"]
                self.namespaces[name] = dict(obj["metadata"].get("labels") or {})
        for name, labels in (namespaces or {}).items():
            self.namespaces.setdefault(name, dict(labels))
        for name, labels in self.namespaces.items():
            labels[NAMESPACE_NAME_LABEL] = name
        self.mesh_root = mesh_root
        self.pods = list(pods)
        self._ips = {pod: str(POD_CIDR[index + 10]) for index, pod in enumerate(self.pods)}

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o.get("kind") == kind]

    def ip(self, peer: Pod | Address) -> str:
        if isinstance(peer, Address):
            return peer.ip
        if peer not in self._ips:
            self._ips[peer] = str(POD_CIDR[len(self._ips) + 10])
        return self._ips[peer]

    # --- NetworkPolicy ----------------------------------------------------------------------------------------

    @staticmethod
    def _types(spec: dict) -> list[str]:
        if spec.get("policyTypes"):
            return spec["policyTypes"]
        return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]

    def _peer_matches(self, peer: dict, policy_namespace: str, other: Pod | Address) -> bool:
        if "ipBlock" in peer:
            address = ipaddress.ip_address(self.ip(other))
            block = peer["ipBlock"]
            return address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(e) for e in block.get("except") or []
            )
        if not isinstance(other, Pod):
            return False  # pod and namespace selectors select pods only
        if "namespaceSelector" in peer:
            if not match_labels(peer["namespaceSelector"], self.namespaces.get(other.namespace, {})):
                return False
        elif other.namespace != policy_namespace:
            return False
        return match_labels(peer.get("podSelector"), other.labels) if "podSelector" in peer else True

    @staticmethod
    def _port_matches(rule_ports: list[dict] | None, server: Pod | Address, port: int, protocol: str) -> bool:
        if not rule_ports:
            return True
        for entry in rule_ports:
            if entry.get("protocol", "TCP") != protocol:
                continue
            wanted = entry.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str) and not wanted.isdigit():
                if isinstance(server, Pod) and server.ports.get(wanted) == port:
                    return True
                continue
            first = int(wanted)
            if first <= port <= int(entry.get("endPort", first)):
                return True
        return False

    def _direction_allows(
        self, pod: Pod, direction: str, other: Pod | Address, server: Pod | Address, port: int, protocol: str
    ) -> tuple[bool, str]:
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        selecting = [
            p
            for p in self.of_kind("NetworkPolicy")
            if p["metadata"].get("namespace") == pod.namespace
            and direction in self._types(p["spec"])
            and match_labels(p["spec"].get("podSelector"), pod.labels)
        ]
        if not selecting:
            return True, f"no {direction} policy selects {pod.name}"
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if peers and not any(self._peer_matches(peer, pod.namespace, other) for peer in peers):
                    continue
                if self._port_matches(rule.get("ports"), server, port, protocol):
                    return True, f"{direction} allowed by {policy['metadata']['name']}"
        return (
            False,
            f"{direction} of {pod.namespace}/{pod.name} denied by NetworkPolicies "
            f"{sorted(p['metadata']['name'] for p in selecting)}",
        )

    def network_allows(self, client: Pod | Address, server: Pod | Address, port: int, protocol: str = "TCP") -> Verdict:
        """The client's egress and the server's ingress under every NetworkPolicy."""
        if isinstance(client, Pod):
            ok, why = self._direction_allows(client, "Egress", server, server, port, protocol)
            if not ok:
                return Verdict(False, why)
        if isinstance(server, Pod):
            ok, why = self._direction_allows(server, "Ingress", client, server, port, protocol)
            if not ok:
                return Verdict(False, why)
        return Verdict(True, "network open")

    # --- Istio ------------------------------------------------------------------------------------------------

    def injected(self, pod: Pod) -> bool:
        """Whether Istio's injector gives the pod a sidecar (default revision's webhooks)."""
        ns = self.namespaces.get(pod.namespace, {})
        pod_says = pod.labels.get("sidecar.istio.io/inject")
        if ns.get("istio-injection") == "disabled":
            return False
        if ns.get("istio-injection") == "enabled" or "istio.io/rev" in ns:
            return pod_says != "false"
        return pod_says == "true"

    def captured(self, pod: Pod, port: int) -> bool:
        """Whether the sidecar intercepts inbound traffic to ``port``."""
        if not self.injected(pod) or port in UNCAPTURED_PORTS:
            return False
        include = pod.annotations.get("traffic.sidecar.istio.io/includeInboundPorts")
        if include is not None and include.strip() != "*":
            return str(port) in [p.strip() for p in include.split(",") if p.strip()]
        exclude = pod.annotations.get("traffic.sidecar.istio.io/excludeInboundPorts", "")
        return str(port) not in [p.strip() for p in exclude.split(",")]

    def mtls_mode(self, pod: Pod, port: int) -> str:
        """The PeerAuthentication mode of a workload's port (ComposePeerAuthentication)."""
        mesh = namespace = workload = None
        for policy in self.of_kind("PeerAuthentication"):
            ns, spec = policy["metadata"].get("namespace"), policy.get("spec") or {}
            labels = (spec.get("selector") or {}).get("matchLabels") or {}
            if not labels:
                if ns == self.mesh_root:
                    mesh = mesh or spec
                elif ns == pod.namespace:
                    namespace = namespace or spec
            elif ns == pod.namespace and ns != self.mesh_root and match_labels({"matchLabels": labels}, pod.labels):
                workload = workload or spec

        def mode_of(mtls: dict | None) -> str | None:
            mode = (mtls or {}).get("mode")
            return None if mode in (None, "UNSET") else mode

        mode = "PERMISSIVE"
        for spec in (mesh, namespace, workload):
            mode = mode_of((spec or {}).get("mtls")) or mode
        per_port = {int(k): v for k, v in ((workload or {}).get("portLevelMtls") or {}).items()}
        return mode_of(per_port[port]) or mode if port in per_port else mode

    def _applicable_authz(self, pod: Pod) -> list[dict]:
        found = []
        for policy in self.of_kind("AuthorizationPolicy"):
            ns, spec = policy["metadata"].get("namespace"), policy.get("spec") or {}
            if ns not in (self.mesh_root, pod.namespace):
                continue
            if "selector" in spec and not match_labels(spec["selector"], pod.labels):
                continue
            found.append(policy)
        return found

    @staticmethod
    def _source_matches(source: dict, peer: Pod | None, request: Request) -> bool:
        principal = peer.principal if peer else None
        namespace = peer.namespace if peer else None

        def field_ok(key: str, value: str | None, negated: bool = False) -> bool:
            patterns = source.get(key)
            if patterns is None:
                return True
            hit = any(istio_match(p, value) for p in patterns)
            return not hit if negated else hit

        return (
            field_ok("principals", principal)
            and field_ok("notPrincipals", principal, True)
            and field_ok("namespaces", namespace)
            and field_ok("notNamespaces", namespace, True)
            and field_ok("requestPrincipals", request.request_principal)
            and field_ok("notRequestPrincipals", request.request_principal, True)
            and "ipBlocks" not in source
            and "remoteIpBlocks" not in source
        )

    @staticmethod
    def _operation_matches(operation: dict, port: int, request: Request) -> bool:
        def field_ok(key: str, value: str | None, negated: bool = False, ignore_case: bool = False) -> bool:
            patterns = operation.get(key)
            if patterns is None:
                return True
            hit = any(istio_match(p, value, ignore_case) for p in patterns)
            return not hit if negated else hit

        return (
            field_ok("hosts", request.host, ignore_case=True)
            and field_ok("notHosts", request.host, True, ignore_case=True)
            and field_ok("ports", str(port))
            and field_ok("notPorts", str(port), True)
            and field_ok("paths", request.path)
            and field_ok("notPaths", request.path, True)
            and field_ok("methods", request.method)
            and field_ok("notMethods", request.method, True)
        )

    def _rule_matches(self, rule: dict, peer: Pod | None, port: int, request: Request) -> bool:
        sources = rule.get("from")
        if sources and not any(self._source_matches(s.get("source") or {}, peer, request) for s in sources):
            return False
        operations = rule.get("to")
        if operations and not any(self._operation_matches(o.get("operation") or {}, port, request) for o in operations):
            return False
        return not rule.get("when")  # `when` conditions are not modelled: a rule with one never matches here

    def authorize(self, pod: Pod, port: int, peer: Pod | None, request: Request = Request()) -> Verdict:
        """Istio authorization at ``pod``'s proxy for a request from ``peer`` (its mTLS identity; None when the
        connection is plain text)."""
        policies = self._applicable_authz(pod)
        by_action: dict[str, list[dict]] = {"CUSTOM": [], "DENY": [], "ALLOW": [], "AUDIT": []}
        for policy in policies:
            by_action[(policy.get("spec") or {}).get("action", "ALLOW")].append(policy)
        for action in ("CUSTOM", "DENY"):
            for policy in by_action[action]:
                if any(self._rule_matches(rule, peer, port, request) for rule in policy["spec"].get("rules") or []):
                    return Verdict(False, f"{action} by AuthorizationPolicy {policy['metadata']['name']}")
        if not by_action["ALLOW"]:
            return Verdict(True, "no ALLOW policy applies")
        for policy in by_action["ALLOW"]:
            if any(self._rule_matches(rule, peer, port, request) for rule in policy["spec"].get("rules") or []):
                return Verdict(True, f"ALLOW by {policy['metadata']['name']}")
        return Verdict(False, f"no ALLOW rule of {sorted(p['metadata']['name'] for p in by_action['ALLOW'])} matches")

    # --- one connection ---------------------------------------------------------------------------------------

    def connect(
        self,
        client: Pod | Address,
        server: Pod | Address,
        port: int,
        protocol: str = "TCP",
        tls: str = "auto",
        request: Request = Request(),
    ) -> Verdict:
        """Whether ``client`` reaches ``server:port``. ``tls``: ``auto`` (what the client's sidecar does: mTLS to
        an injected server, plain text otherwise; plain text without a sidecar), ``plain`` (the client speaks plain
        text itself, outside any sidecar), ``istio-cert`` (the client presents its own mesh certificate)."""
        network = self.network_allows(client, server, port, protocol)
        if not network or protocol != "TCP" or not isinstance(server, Pod) or not self.captured(server, port):
            return network
        client_pod = client if isinstance(client, Pod) else None
        sidecar = (
            client_pod is not None
            and self.injected(client_pod)
            and client_pod.annotations.get("traffic.sidecar.istio.io/includeOutboundIPRanges") != ""
        )
        mutual = tls == "istio-cert" or (tls == "auto" and sidecar)
        if not mutual and self.mtls_mode(server, port) == "STRICT":
            return Verdict(False, f"plain text refused: {server.namespace}/{server.name}:{port} is STRICT mTLS")
        return self.authorize(server, port, client_pod if mutual else None, request)
