"""``Tenant``: one team's isolated slice of the cluster.

Owns the tenant namespace (Pod Security labels; sidecar injection when the mesh is on), the RoleBindings of the
tenant's groups to the roles ``admin``/``developer``/``viewer``, the ResourceQuota, the LimitRange, the
NetworkPolicies and the tenant's Volcano Queue, whose capability equals the quota's cpu, memory and GPU requests.
The three roles are the same for every tenant: one ClusterRole each (``tenant_roles``, created once by the
platform), granted only inside the tenant's namespace by its RoleBindings (the pattern of Kubernetes' own
``admin``/``edit``/``view``).

RBAC is least privilege and spelled out resource by resource (no ``*``):
- viewer reads workloads, events and logs; not Secrets, no exec or port-forward;
- developer also manages workloads, may exec and port-forward; no Secrets, no RBAC;
- admin also manages Secrets and service accounts and binds the three tenant roles.
Nobody in the tenant may change its ResourceQuota, LimitRange or NetworkPolicies: the platform owns them.
Optional platform services (training, workflows, Ray) add their custom resources to the developer's workloads.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import NamedTuple

import pulumi

from config.cluster import Namespaces
from config.tenancy import Tenant as TenantConfig

from .meta import TENANT_LABEL, ComponentArgs, kube, metadata, platform_namespace

COMPONENT = "tenancy"
ROLES = ("admin", "developer", "viewer")
READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete", "deletecollection"]

# Workloads developers manage, by API group.
WORKLOADS = {
    "": ["configmaps", "persistentvolumeclaims", "pods", "services"],
    "apps": ["deployments", "statefulsets"],
    "batch": ["cronjobs", "jobs"],
    "autoscaling": ["horizontalpodautoscalers"],
    "policy": ["poddisruptionbudgets"],
    "batch.volcano.sh": ["jobs"],
    "scheduling.volcano.sh": ["podgroups"],
    "serving.kserve.io": ["inferenceservices"],
}
# What everyone in the tenant may read besides the workloads.
OBSERVABLE = {
    "": ["endpoints", "events", "limitranges", "pods/log", "resourcequotas", "serviceaccounts"],
    "apps": ["daemonsets", "replicasets"],
    "discovery.k8s.io": ["endpointslices"],
    "events.k8s.io": ["events"],
    "networking.k8s.io": ["networkpolicies"],
}


def _rules(groups: dict[str, list[str]], verbs: list[str]) -> list[dict]:
    return [{"apiGroups": [group], "resources": resources, "verbs": verbs} for group, resources in groups.items()]


def _merged(*groups: dict[str, list[str]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for group in groups:
        for api_group, resources in group.items():
            merged.setdefault(api_group, [])
            merged[api_group] += [r for r in resources if r not in merged[api_group]]
    return merged


def role_rules(
    workloads: dict[str, list[str]] | None = None, readable: dict[str, list[str]] | None = None
) -> dict[str, list[dict]]:
    """The PolicyRules of the three tenant roles. ``workloads`` and ``readable`` add the resources of optional
    platform services (developers manage the first and everyone reads both), by API group."""
    workloads = _merged(WORKLOADS, workloads or {})
    viewer = _rules(workloads, READ) + _rules(_merged(OBSERVABLE, readable or {}), READ)
    developer = (
        viewer
        + _rules(workloads, WRITE)
        + [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments/scale", "statefulsets/scale"],
                "verbs": ["get", "update", "patch"],
            },
            {"apiGroups": [""], "resources": ["pods/exec", "pods/portforward"], "verbs": ["create", "get"]},
        ]
    )
    admin = developer + [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": READ + WRITE},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": WRITE},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": READ + WRITE},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": READ},
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "verbs": ["bind"],
            "resourceNames": [cluster_role(role) for role in ROLES],
        },
    ]
    return {"admin": admin, "developer": developer, "viewer": viewer}


def cluster_role(role: str) -> str:
    """The ClusterRole of a tenant role (``admin``, ``developer``, ``viewer``)."""
    return f"ai-platform-tenant-{role}"


def tenant_roles(
    workloads: dict[str, list[str]] | None, readable: dict[str, list[str]] | None, opts: pulumi.ResourceOptions
) -> None:
    """The three tenant roles as ClusterRoles, once for all tenants (a RoleBinding grants one in its namespace only;
    every rule is of a namespaced resource)."""
    for role, rules in role_rules(workloads, readable).items():
        kube(
            f"tenant-role-{role}",
            api_version="rbac.authorization.k8s.io/v1",
            kind="ClusterRole",
            metadata=metadata(cluster_role(role), COMPONENT),
            rules=rules,
            opts=opts,
        )


def quota_hard(tenant: TenantConfig) -> dict[str, str]:
    """The ResourceQuota's ``hard`` map."""
    quota = tenant.quota
    hard = {
        "requests.cpu": quota.cpu.requests,
        "limits.cpu": quota.cpu.limits,
        "requests.memory": quota.memory.requests,
        "limits.memory": quota.memory.limits,
        "requests.storage": quota.storage,
        "persistentvolumeclaims": str(quota.persistent_volume_claims),
        "pods": str(quota.pods),
        "services": str(quota.services),
        "services.loadbalancers": str(quota.load_balancers),
        "services.nodeports": str(quota.node_ports),
    }
    hard.update({f"requests.{resource}": str(count) for resource, count in quota.gpu_resources().items()})
    hard.update({f"count/{resource}": str(count) for resource, count in quota.counts.items()})
    return hard


def queue_capability(tenant: TenantConfig) -> dict[str, str]:
    """The Volcano queue's capability: the quota's cpu, memory and GPU requests (same resource names)."""
    quota = tenant.quota
    return {
        "cpu": quota.cpu.requests,
        "memory": quota.memory.requests,
        **{resource: str(count) for resource, count in quota.gpu_resources().items()},
    }


def container_limits(tenant: TenantConfig) -> dict:
    """The LimitRange's Container item. A GPU cap needs a default GPU limit of 0: LimitRange rejects a
    container that has no limit for a resource it caps, so pods without GPUs get requests == limits == 0."""
    container = tenant.limit_range.container
    default, largest = container.default.model_dump(), tenant.container_max.model_dump()
    if container.max_gpus is not None:
        for resource in tenant.quota.gpu_resources():
            largest[resource] = str(container.max_gpus)
            default[resource] = "0"
    return {
        "type": "Container",
        "defaultRequest": container.default_request.model_dump(),
        "default": default,
        "max": largest,
    }


def _namespaces_in(names: list[str]) -> dict:
    return {
        "namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(names)}]
        }
    }


# What "outside the cluster" excludes: private networks (RFC 1918), the shared address space (RFC 6598: pod and node
# ranges of EKS custom networking, Azure CNI overlay and other CNIs) and link-local addresses (the nodes' metadata and
# identity agents; opened only where a workload identity needs them: components.serving.model_access).
NON_PUBLIC_RANGES = ["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"]


def public_https_egress() -> dict:
    """A NetworkPolicy egress rule: HTTPS to addresses outside the cluster's and the nodes' networks (object stores,
    Hugging Face, cloud token services)."""
    return {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(NON_PUBLIC_RANGES)}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }


class SharedService(NamedTuple):
    """A platform service tenants may call: its namespace, the labels of the pods that serve it, its port."""

    namespace: str
    pod_labels: dict[str, str]
    port: int


class OtlpCollector(NamedTuple):
    """The trace collector tenant pods send spans to (``components.traces``): its namespace, pod labels, OTLP ports.
    Not a shared service: nothing to hold an account on, it sets the tenant itself from the sending pod."""

    namespace: str
    pod_labels: dict[str, str]
    ports: tuple[int, ...]


# istiod's xDS and certificate port: what an injected sidecar must reach in the mesh namespace.
ISTIOD_PORTS = [15012]


class ApiServer(NamedTuple):
    """The Kubernetes API server's endpoint addresses and port, and the tenant pods that must call it: NetworkPolicy
    name -> pod selector; only they get the egress."""

    cidrs: list[str]
    port: int
    clients: dict[str, dict]


def network_policies(
    namespaces: Namespaces,
    mesh: bool,
    shared: tuple[SharedService, ...],
    api_server: ApiServer | None = None,
    collector: OtlpCollector | None = None,
) -> dict[str, dict]:
    """NetworkPolicy specs by name: deny by default, then allow what a tenant workload needs (with the mesh:
    its sidecars' control-plane connection; the ingress gateway is one of the platform namespaces; the shared
    services' serving pods and ports, nothing else of their namespaces; the API server where a service's pods
    call it; with traces, the collector's OTLP ports)."""
    everything: dict = {}
    policies = {
        "default-deny": {"podSelector": everything, "policyTypes": ["Ingress", "Egress"]},
        "allow-same-namespace": {
            "podSelector": everything,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": everything}]}],
            "egress": [{"to": [{"podSelector": everything}]}],
        },
        "allow-dns": {
            "podSelector": everything,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
        "allow-from-platform": {
            "podSelector": everything,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [_namespaces_in([namespaces.ingress, namespaces.monitoring])]}],
        },
    }
    if shared:
        policies["allow-to-shared-services"] = {
            "podSelector": everything,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": s.namespace}},
                            "podSelector": {"matchLabels": s.pod_labels},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": s.port}],
                }
                for s in shared
            ],
        }
    if api_server:
        for name, clients in api_server.clients.items():
            policies[name] = {
                "podSelector": clients,
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": cidr}} for cidr in api_server.cidrs],
                        "ports": [{"protocol": "TCP", "port": api_server.port}],
                    }
                ],
            }
    if collector:
        policies["allow-to-trace-collector"] = {
            "podSelector": everything,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": collector.namespace}},
                            "podSelector": {"matchLabels": collector.pod_labels},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": port} for port in collector.ports],
                }
            ],
        }
    if mesh:
        policies["allow-mesh-control-plane"] = {
            "podSelector": everything,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespaces.mesh}},
                            "podSelector": {"matchLabels": {"app": "istiod"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": port} for port in ISTIOD_PORTS],
                }
            ],
        }
    return policies


@dataclass(frozen=True)
class TenantArgs(ComponentArgs):
    """What ``Tenant`` is built from (besides the cluster and namespaces): its config, whether the mesh is on, the
    shared services its pods may call and the API server its workflow and Ray pods call; keyword-only, the Volcano
    release its queue waits for (None without Volcano)."""

    tenant: TenantConfig
    mesh: bool
    shared: tuple[SharedService, ...] = ()
    api_server: ApiServer | None = None
    collector: OtlpCollector | None = None
    """The trace collector its pods send spans to, with traces on."""
    _: KW_ONLY
    volcano_release: pulumi.Resource | None


class Tenant(pulumi.ComponentResource):
    """A tenant: namespace, roles and bindings, quota, limits, network policies and Volcano queue."""

    def __init__(self, name: str, args: TenantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:tenancy:Tenant", name, None, opts)
        tenant, namespaces, mesh = args.tenant, args.namespaces, args.mesh
        kubernetes_version = args.cluster.kubernetes_version
        shared, api_server, protect, volcano_release = args.shared, args.api_server, args.protect, args.volcano_release
        child = pulumi.ResourceOptions(parent=self)

        def meta(object_name: str, **extra) -> dict:
            return metadata(object_name, COMPONENT, tenant=tenant.name, **extra)

        self.namespace = platform_namespace(
            f"{name}-namespace",
            tenant.name,
            COMPONENT,
            tenant.pod_security,
            kubernetes_version,
            self,
            tenant=tenant.name,
            extra_labels={"istio-injection": "enabled"} if mesh else None,
            protect=protect,
        )
        ns = self.namespace.metadata["name"]

        access = {"admin": tenant.access.admins, "developer": tenant.access.developers, "viewer": tenant.access.viewers}
        for role in ROLES:
            subjects = access[role]
            kube(
                f"{name}-rolebinding-{role}",
                api_version="rbac.authorization.k8s.io/v1",
                kind="RoleBinding",
                metadata=meta(cluster_role(role), namespace=ns),
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role(role)},
                subjects=[
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
                    for group in subjects.groups
                ]
                + [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user} for user in subjects.users],
                opts=child,
            )

        kube(
            f"{name}-quota",
            api_version="v1",
            kind="ResourceQuota",
            metadata=meta("tenant-quota", namespace=ns),
            spec={"hard": quota_hard(tenant)},
            opts=child,
        )

        kube(
            f"{name}-limits",
            api_version="v1",
            kind="LimitRange",
            metadata=meta("tenant-limits", namespace=ns),
            spec={
                "limits": [
                    container_limits(tenant),
                    {
                        "type": "PersistentVolumeClaim",
                        "min": {"storage": tenant.limit_range.pvc.min},
                        "max": {"storage": tenant.pvc_max},
                    },
                ]
            },
            opts=child,
        )

        for policy, spec in network_policies(namespaces, mesh, shared, api_server, args.collector).items():
            kube(
                f"{name}-netpol-{policy}",
                api_version="networking.k8s.io/v1",
                kind="NetworkPolicy",
                metadata=meta(policy, namespace=ns),
                spec=spec,
                opts=child,
            )

        self.queue = None
        if volcano_release is not None:
            self.queue = kube(
                f"{name}-queue",
                api_version="scheduling.volcano.sh/v1beta1",
                kind="Queue",
                metadata=meta(tenant.name),
                spec={
                    "weight": tenant.queue.weight,
                    "reclaimable": tenant.queue.reclaimable,
                    "capability": queue_capability(tenant),
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[volcano_release]),
            )

        self.register_outputs({"namespace": ns, "queue": self.queue.metadata["name"] if self.queue else None})


def _fence_specs(namespaces: Namespaces) -> dict[str, dict]:
    """A platform namespace's base fence: ingress denied by default, open within the namespace and from monitoring."""
    everything: dict = {}
    return {
        "default-deny-ingress": {"podSelector": everything, "policyTypes": ["Ingress"]},
        "allow-same-namespace": {
            "podSelector": everything,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": everything}]}],
        },
        "allow-from-monitoring": {
            "podSelector": everything,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [_namespaces_in([namespaces.monitoring])]}],
        },
    }


def _declare_policies(
    name: str, specs: dict[str, dict], namespace: pulumi.Input[str], component: str, parent: pulumi.Resource
) -> None:
    opts = pulumi.ResourceOptions(parent=parent)
    for policy, spec in specs.items():
        kube(
            f"{name}-netpol-{policy}",
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=metadata(policy, component, namespace=namespace),
            spec=spec,
            opts=opts,
        )


def fenced_namespace_policies(
    name: str, namespace: pulumi.Input[str], namespaces: Namespaces, component: str, parent: pulumi.Resource
) -> None:
    """NetworkPolicies of a platform namespace no tenant may reach (the logs namespace: Loki trusts the tenant header
    it is sent): ingress denied by default, open within the namespace and from monitoring."""
    _declare_policies(name, _fence_specs(namespaces), namespace, component, parent)


def shared_service_policies(
    name: str,
    service: SharedService,
    namespace: pulumi.Input[str],
    namespaces: Namespaces,
    component: str,
    parent: pulumi.Resource,
    clients: list[str] | None = None,
) -> None:
    """NetworkPolicies in a shared service's namespace: ingress denied by default, open within the namespace,
    from tenant namespaces (label ``ai-platform/tenant``) to the serving pods' port, from monitoring, and from the
    platform namespaces ``clients`` (services that use it too) to the serving pods' port."""
    fence = _fence_specs(namespaces)
    specs = {
        "default-deny-ingress": fence["default-deny-ingress"],
        "allow-same-namespace": fence["allow-same-namespace"],
        "allow-from-tenants": {
            "podSelector": {"matchLabels": service.pod_labels},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]}}
                    ],
                    "ports": [{"protocol": "TCP", "port": service.port}],
                }
            ],
        },
        "allow-from-monitoring": fence["allow-from-monitoring"],
    }
    if clients:
        specs["allow-from-platform-clients"] = {
            "podSelector": {"matchLabels": service.pod_labels},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [_namespaces_in(clients)], "ports": [{"protocol": "TCP", "port": service.port}]}],
        }
    _declare_policies(name, specs, namespace, component, parent)
