"""What a tenant gets, for every tenant of both stack files: namespace, RBAC, quota, limits, network, queue."""

import pytest

from components.tenancy import ROLES, cluster_role
from tests.conftest import config_copy, run, stack_cfg

RBAC = "rbac.authorization.k8s.io"


def allows(rules: list[dict], group: str, resource: str, verb: str, name: str | None = None) -> bool:
    """Whether a Role's rules allow ``verb`` on ``group/resource`` (optionally one object ``name``)."""
    for rule in rules:
        if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
            names = rule.get("resourceNames")
            if not names or (name is not None and name in names):
                return True
    return False


def roles(stack_run, tenant: str) -> dict[str, list[dict]]:
    """The rules each tenant role grants in the tenant's namespace: its binding's ClusterRole."""

    def bound(role: str) -> list[dict]:
        ref = stack_run.one("RoleBinding", cluster_role(role), tenant).inputs["roleRef"]
        assert ref["kind"] == "ClusterRole"
        return stack_run.one("ClusterRole", ref["name"]).inputs["rules"]

    return {role: bound(role) for role in ROLES}


@pytest.mark.invariant
def test_namespace_has_pod_security_and_platform_labels(stack_run, cfg):
    for tenant in cfg.tenants:
        labels = stack_run.one("Namespace", tenant.name).inputs["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == tenant.pod_security
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == f"v{cfg.cluster.kubernetes_version}"
        assert labels["ai-platform/tenant"] == tenant.name
        assert labels["app.kubernetes.io/part-of"] == "ai-platform"
        assert labels["app.kubernetes.io/managed-by"] == "pulumi"


@pytest.mark.invariant
def test_every_object_carries_the_platform_labels(stack_run):
    for obj in stack_run.objects:
        if obj.kind == "Node":  # a patch of a node the platform does not own: only pool labels
            continue
        labels = obj.inputs["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "pulumi", obj.name
        assert labels["app.kubernetes.io/part-of"] == "ai-platform", obj.name
        assert labels["app.kubernetes.io/component"], obj.name
        parent = stack_run.by_urn(obj.parent)
        if parent.type == "ai-platform:tenancy:Tenant":
            assert labels["ai-platform/tenant"] == parent.name.removeprefix("tenant-"), obj.name


@pytest.mark.invariant
def test_three_roles_bound_to_the_configured_subjects(stack_run, cfg):
    for tenant in cfg.tenants:
        configured = {
            "admin": tenant.access.admins,
            "developer": tenant.access.developers,
            "viewer": tenant.access.viewers,
        }
        for role in ROLES:
            binding = stack_run.one("RoleBinding", cluster_role(role), tenant.name).inputs
            assert binding["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole", "name": cluster_role(role)}
            subjects = {(s["kind"], s["name"]) for s in binding.get("subjects", [])}
            assert subjects == (
                {("Group", g) for g in configured[role].groups} | {("User", u) for u in configured[role].users}
            )


@pytest.mark.invariant
def test_no_wildcards_in_any_role(stack_run):
    for role in stack_run.of_kind("Role") + stack_run.of_kind("ClusterRole"):
        for rule in role.inputs["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (role.name, rule)


WORKLOADS = [
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("batch", "jobs"),
    ("", "pods"),
    ("", "services"),
    ("", "configmaps"),
    ("", "persistentvolumeclaims"),
    ("batch.volcano.sh", "jobs"),
    ("serving.kserve.io", "inferenceservices"),
]
PLATFORM_OWNED = [("", "resourcequotas"), ("", "limitranges"), ("networking.k8s.io", "networkpolicies")]
WRITE = ["create", "update", "patch", "delete"]


@pytest.mark.invariant
def test_viewer_reads_workloads_and_logs_only(stack_run, cfg):
    for tenant in cfg.tenants:
        viewer = roles(stack_run, tenant.name)["viewer"]
        for group, resource in WORKLOADS:
            assert allows(viewer, group, resource, "list"), resource
            assert not any(allows(viewer, group, resource, verb) for verb in WRITE), resource
        assert allows(viewer, "", "pods/log", "get")
        for verb in ("get", "list", "watch"):
            assert not allows(viewer, "", "secrets", verb)
        assert not allows(viewer, "", "pods/exec", "create")
        assert not allows(viewer, "", "pods/portforward", "create")
        assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in viewer)


@pytest.mark.invariant
def test_developer_manages_workloads_but_not_secrets_rbac_or_platform_objects(stack_run, cfg):
    for tenant in cfg.tenants:
        developer = roles(stack_run, tenant.name)["developer"]
        for group, resource in WORKLOADS:
            for verb in WRITE + ["get", "list", "watch"]:
                assert allows(developer, group, resource, verb), (resource, verb)
        assert not any(allows(developer, "", "secrets", verb) for verb in WRITE + ["get", "list", "watch"])
        for group, resource in PLATFORM_OWNED + [(RBAC, "roles"), (RBAC, "rolebindings")]:
            assert not any(allows(developer, group, resource, verb) for verb in WRITE), resource
        assert not allows(developer, RBAC, "clusterroles", "bind", cluster_role("admin"))


@pytest.mark.invariant
def test_admin_manages_secrets_and_binds_only_tenant_roles(stack_run, cfg):
    for tenant in cfg.tenants:
        admin = roles(stack_run, tenant.name)["admin"]
        for verb in WRITE + ["get", "list"]:
            assert allows(admin, "", "secrets", verb)
            assert allows(admin, RBAC, "rolebindings", verb)
        for role in ROLES:
            assert allows(admin, RBAC, "clusterroles", "bind", cluster_role(role))
        assert not allows(admin, RBAC, "clusterroles", "bind", "cluster-admin")
        assert not allows(admin, RBAC, "clusterroles", "bind", "admin")
        assert not any(allows(admin, RBAC, "roles", verb) for verb in WRITE)
        for group, resource in PLATFORM_OWNED:
            assert not any(allows(admin, group, resource, verb) for verb in WRITE), resource
        assert not allows(admin, RBAC, "roles", "escalate")


@pytest.mark.invariant
def test_resource_quota_matches_config(stack_run, cfg):
    for tenant in cfg.tenants:
        hard = stack_run.one("ResourceQuota", "tenant-quota", tenant.name).inputs["spec"]["hard"]
        quota = tenant.quota
        expected = {
            "requests.cpu": quota.cpu.requests,
            "limits.cpu": quota.cpu.limits,
            "requests.memory": quota.memory.requests,
            "limits.memory": quota.memory.limits,
            "requests.nvidia.com/gpu": str(quota.gpu),
            "requests.storage": quota.storage,
            **{f"requests.nvidia.com/mig-{profile}": str(count) for profile, count in quota.mig.items()},
            "persistentvolumeclaims": str(quota.persistent_volume_claims),
            "pods": str(quota.pods),
            "services": str(quota.services),
            "services.loadbalancers": str(quota.load_balancers),
            "services.nodeports": str(quota.node_ports),
            **{f"count/{key}": str(value) for key, value in quota.counts.items()},
        }
        assert hard == expected
        assert "limits.nvidia.com/gpu" not in hard
        assert hard["services.loadbalancers"] == "0" and hard["services.nodeports"] == "0"


@pytest.mark.invariant
def test_limit_range_admits_pods_without_resources(stack_run, cfg):
    for tenant in cfg.tenants:
        limits = stack_run.one("LimitRange", "tenant-limits", tenant.name).inputs["spec"]["limits"]
        container = next(item for item in limits if item["type"] == "Container")
        pvc = next(item for item in limits if item["type"] == "PersistentVolumeClaim")
        gpu_resources = tenant.quota.gpu_resources()
        max_gpus = tenant.limit_range.container.max_gpus
        gpu_max = {r: str(max_gpus) for r in gpu_resources} if max_gpus is not None else {}
        gpu_default = {r: "0" for r in gpu_max}
        assert container["defaultRequest"] == tenant.limit_range.container.default_request.model_dump()
        assert container["default"] == {**tenant.limit_range.container.default.model_dump(), **gpu_default}
        assert container["max"] == {**tenant.container_max.model_dump(), **gpu_max}
        assert pvc == {
            "type": "PersistentVolumeClaim",
            "min": {"storage": tenant.limit_range.pvc.min},
            "max": {"storage": tenant.pvc_max},
        }


def _policies(stack_run, tenant: str) -> dict[str, dict]:
    return {
        p.k8s_name: p.inputs["spec"]
        for p in stack_run.of_kind("NetworkPolicy")
        if p.namespace == tenant and p.inputs["metadata"]["labels"]["app.kubernetes.io/component"] == "tenancy"
    }


@pytest.mark.invariant
def test_network_policies_deny_by_default_and_allow_what_workloads_need(stack_run, cfg):
    namespaces = cfg.namespaces
    for tenant in cfg.tenants:
        policies = _policies(stack_run, tenant.name)
        assert set(policies) == {
            "default-deny",
            "allow-same-namespace",
            "allow-dns",
            "allow-from-platform",
            "allow-to-shared-services",
        } | ({"allow-mesh-control-plane"} if cfg.mesh.enabled else set()) | (
            {"allow-kube-apiserver"} if cfg.workflows.enabled else set()
        ) | ({"allow-kube-apiserver-ray-head"} if cfg.ray.enabled else set()) | (
            {"allow-to-trace-collector"} if cfg.traces.enabled else set()
        ) | ({"allow-kube-apiserver-picker"} if cfg.inference_routing.enabled else set())
        deny = policies["default-deny"]
        assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
        assert "ingress" not in deny and "egress" not in deny
        dns = policies["allow-dns"]["egress"][0]
        assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
        assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
        sources = policies["allow-from-platform"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]
        assert sorted(sources["values"]) == sorted([namespaces.ingress, namespaces.monitoring])
        shared = {
            (r["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], r["ports"][0]["port"]): r[
                "to"
            ][0]["podSelector"]["matchLabels"]
            for r in policies["allow-to-shared-services"]["egress"]
        }
        assert set(shared) == ({(namespaces.mlflow, 5000)} if cfg.mlflow.enabled else set()) | (
            {(namespaces.milvus, 19530)} if cfg.milvus.enabled else set()
        ) | (
            {(namespaces.object_store, 8333)}
            if cfg.workflows.enabled and cfg.object_store.mode == "in-cluster"
            else set()
        )  # workflow artifacts in the in-cluster store
        assert all(labels for labels in shared.values())  # the serving pods only, not the whole namespace
        # Workflow pods' executor and Ray heads' autoscaler call the API server: only they, only its endpoints and port.
        clients = {
            "allow-kube-apiserver": (
                {"matchExpressions": [{"key": "workflows.argoproj.io/workflow", "operator": "Exists"}]},
                cfg.workflows.enabled,
            ),
            "allow-kube-apiserver-ray-head": ({"matchLabels": {"ray.io/node-type": "head"}}, cfg.ray.enabled),
            "allow-kube-apiserver-picker": (
                {"matchLabels": {"ai-platform/role": "endpoint-picker"}},
                cfg.inference_routing.enabled,
            ),
        }
        for name, (selector, enabled) in clients.items():
            if enabled:
                assert policies[name]["podSelector"] == selector
                (rule,) = policies[name]["egress"]
                assert [peer["ipBlock"]["cidr"] for peer in rule["to"]] == cfg.cluster.api_server_cidrs
                assert rule["ports"] == [{"protocol": "TCP", "port": cfg.cluster.api_server_port}]


@pytest.mark.invariant
def test_mesh_traffic_is_allowed_exactly_as_the_mesh_needs(stack_run, cfg):
    """Sidecars reach istiod on its xDS/CA port only; the gateway reaches tenants through allow-from-platform."""
    from components.tenancy import ISTIOD_PORTS

    istiod = next(r for r in stack_run.releases if r.inputs["chart"] == "istiod")
    gateway = next(r for r in stack_run.releases if r.inputs["chart"] == "gateway")
    assert ISTIOD_PORTS == [15012]
    for tenant in cfg.tenants:
        namespace = stack_run.one("Namespace", tenant.name).inputs["metadata"]["labels"]
        assert namespace["istio-injection"] == "enabled"
        policies = _policies(stack_run, tenant.name)
        (rule,) = policies["allow-mesh-control-plane"]["egress"]
        assert rule["to"] == [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": istiod.inputs["namespace"]}},
                "podSelector": {"matchLabels": {"app": "istiod"}},
            }
        ]
        assert rule["ports"] == [{"protocol": "TCP", "port": 15012}]
        sources = policies["allow-from-platform"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]
        assert gateway.inputs["namespace"] in sources["values"]


def test_no_mesh_no_injection_and_no_mesh_policy():
    config = config_copy()
    config["ai-platform:mesh"] = {"enabled": False}
    result = run("dev", config)
    assert result.error is None, result.error
    assert "istio-injection" not in result.one("Namespace", "research").inputs["metadata"]["labels"]
    assert "allow-mesh-control-plane" not in _policies(result, "research")


def test_network_policies_follow_configured_namespace_names():
    config = config_copy()
    config["ai-platform:namespaces"] = {"ingress": "edge", "monitoring": "observability", "mlflow": "tracking"}
    result = run("dev", config)
    assert result.error is None, result.error
    policies = _policies(result, "research")
    ingress = policies["allow-from-platform"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]
    assert sorted(ingress["values"]) == ["edge", "observability"]
    egress = {
        r["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for r in policies["allow-to-shared-services"]["egress"]
    }
    assert egress == {"milvus", "tracking", "object-store"}  # the store: dev's workflows keep artifacts there


@pytest.mark.invariant
def test_queue_capability_equals_quota_and_waits_for_volcano(stack_run, cfg):
    release = next(r for r in stack_run.releases if r.inputs["chart"] == "volcano")
    for tenant in cfg.tenants:
        queue = stack_run.one("Queue", tenant.name)
        hard = stack_run.one("ResourceQuota", "tenant-quota", tenant.name).inputs["spec"]["hard"]
        assert queue.inputs["apiVersion"] == "scheduling.volcano.sh/v1beta1"
        assert queue.inputs["spec"]["capability"] == {
            "cpu": hard["requests.cpu"],
            "memory": hard["requests.memory"],
            **{
                key.removeprefix("requests."): value
                for key, value in hard.items()
                if key.startswith("requests.nvidia.com/")
            },
        }
        assert queue.inputs["spec"]["capability"]["nvidia.com/gpu"] == str(tenant.quota.gpu)
        assert queue.inputs["spec"]["weight"] == tenant.queue.weight
        assert queue.inputs["spec"]["reclaimable"] == tenant.queue.reclaimable
        assert release.urn in queue.dependencies


def test_prod_tenants_are_distinct():
    cfg = stack_cfg("prod")
    assert len(cfg.tenants) >= 3
    assert len({t.quota.gpu for t in cfg.tenants}) == len(cfg.tenants)
    assert len({t.queue.weight for t in cfg.tenants}) == len(cfg.tenants)
    assert len({tuple(t.access.developers.groups) for t in cfg.tenants}) == len(cfg.tenants)


@pytest.mark.invariant
def test_stack_outputs_name_each_tenant_namespace_and_queue(stack_run, cfg):
    assert stack_run.outputs["tenants"] == {t.name: {"namespace": t.name, "queue": t.name} for t in cfg.tenants}


@pytest.mark.invariant
def test_shared_service_namespaces_admit_tenants_only_on_the_serving_port(stack_run, cfg):
    for service, namespace, port in (("mlflow", cfg.namespaces.mlflow, 5000), ("milvus", cfg.namespaces.milvus, 19530)):
        if not getattr(cfg, service).enabled:
            continue
        policies = {
            p.k8s_name: p.inputs["spec"] for p in stack_run.of_kind("NetworkPolicy") if p.namespace == namespace
        }
        assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
        (rule,) = policies["allow-from-tenants"]["ingress"]
        assert rule["from"] == [
            {"namespaceSelector": {"matchExpressions": [{"key": "ai-platform/tenant", "operator": "Exists"}]}}
        ]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        assert policies["allow-from-tenants"]["podSelector"]["matchLabels"]
        sources = policies["allow-from-monitoring"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"]
        assert sources[0]["values"] == [cfg.namespaces.monitoring]


def test_tenants_reach_only_the_services_that_exist():
    config = config_copy()
    config["ai-platform:mlflow"] = {"enabled": False}
    config["ai-platform:workflows"] = {"enabled": False}
    result = run("dev", config)
    assert result.error is None, result.error
    (rule,) = _policies(result, "research")["allow-to-shared-services"]["egress"]
    assert rule["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "milvus"}
    assert not [p for p in result.of_kind("NetworkPolicy") if p.namespace == "mlflow"]
