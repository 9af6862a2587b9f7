"""Tenants apart in the shared services, from the rendered objects of both stack files: a tenant's service
credentials live only in its namespace, come from values no other tenant's do, are readable through no binding a
tenant outside it holds, and each tenant's network reach to shared services is exactly the services it has
accounts on."""

import itertools

import pytest

PASSWORD = "random:index/randomPassword:RandomPassword"
# A tenant's service credentials (Secret or ExternalSecret target name) -> the config namespace of the service.
CREDENTIALS = {"mlflow-credentials": "mlflow", "milvus-credentials": "milvus", "argo-artifacts-s3": "object_store"}


def credentials(stack_run, tenant: str) -> dict:
    """The tenant namespace's service credentials: name -> the Secret or ExternalSecret declaring it."""
    found = {}
    for obj in stack_run.objects:
        if obj.namespace == tenant and obj.kind in ("Secret", "ExternalSecret") and obj.k8s_name in CREDENTIALS:
            found[obj.k8s_name] = obj
    return found


def sources(stack_run, obj) -> set[str]:
    """Where a credential's values come from: the RandomPasswords it depends on, or the remote keys it reads."""
    if obj.kind == "ExternalSecret":
        return {ref["remoteRef"]["key"] for ref in obj.inputs["spec"]["data"]}
    return {urn for urn in obj.dependencies if stack_run.by_urn(urn).type == PASSWORD}


def expected_services(cfg) -> set[str]:
    services = {"mlflow-credentials"} if cfg.mlflow.enabled else set()
    services |= {"milvus-credentials"} if cfg.milvus.enabled else set()
    if cfg.workflows.enabled and cfg.object_store.mode == "in-cluster":
        services.add("argo-artifacts-s3")
    return services


@pytest.mark.invariant
def test_each_tenant_has_its_own_service_credentials_in_its_own_namespace(stack_run, cfg):
    tenants = [t.name for t in cfg.tenants]
    for tenant in tenants:
        assert set(credentials(stack_run, tenant)) == expected_services(cfg)
    # Nowhere else: a credential Secret named like a tenant's only exists in tenant namespaces.
    elsewhere = [
        f"{o.namespace}/{o.k8s_name}"
        for o in stack_run.objects
        if o.kind in ("Secret", "ExternalSecret") and o.k8s_name in CREDENTIALS and o.namespace not in tenants
    ]
    assert elsewhere == []


@pytest.mark.invariant
def test_no_two_tenants_share_a_credential_source(stack_run, cfg):
    by_tenant = {
        t.name: {name: sources(stack_run, obj) for name, obj in credentials(stack_run, t.name).items()}
        for t in cfg.tenants
    }
    for tenant, found in by_tenant.items():
        for name, origin in found.items():
            assert origin, f"{tenant}/{name} has no generated or stored source"
    for (a, found_a), (b, found_b) in itertools.combinations(by_tenant.items(), 2):
        for name in set(found_a) & set(found_b):
            assert not found_a[name] & found_b[name], f"{a} and {b} share the source of {name}"


@pytest.mark.invariant
def test_no_binding_lets_anyone_outside_a_tenant_read_its_secrets(stack_run, cfg):
    tenants = {t.name: t for t in cfg.tenants}
    members = {
        name: {("Group", g) for s in (t.access.admins, t.access.developers, t.access.viewers) for g in s.groups}
        | {("User", u) for s in (t.access.admins, t.access.developers, t.access.viewers) for u in s.users}
        for name, t in tenants.items()
    }
    roles = {(r.namespace, r.k8s_name): r.inputs["rules"] for r in stack_run.of_kind("Role")}
    cluster_roles = {r.k8s_name: r.inputs.get("rules", []) for r in stack_run.of_kind("ClusterRole")}

    def reads_secrets(rules: list[dict]) -> bool:
        return any(
            "" in rule.get("apiGroups", [])
            and {"secrets", "*"} & set(rule.get("resources", []))
            and {"get", "list", "watch", "*"} & set(rule.get("verbs", []))
            for rule in rules
        )

    for binding in stack_run.of_kind("RoleBinding"):
        namespace = binding.namespace
        if namespace not in tenants:
            continue
        ref = binding.inputs["roleRef"]
        rules = roles.get((namespace, ref["name"])) if ref["kind"] == "Role" else cluster_roles.get(ref["name"], [])
        if not reads_secrets(rules or []):
            continue
        for subject in binding.inputs.get("subjects", []):
            if subject["kind"] == "ServiceAccount":
                assert subject.get("namespace", namespace) == namespace, binding.k8s_name
            else:
                assert (subject["kind"], subject["name"]) in members[namespace], (
                    f"{namespace}/{binding.k8s_name} lets {subject} read the tenant's Secrets"
                )
    # No cluster-wide binding hands a tenant's people or service accounts a role that reads Secrets.
    tenant_people = set().union(*members.values())
    for binding in stack_run.of_kind("ClusterRoleBinding"):
        if not reads_secrets(cluster_roles.get(binding.inputs["roleRef"]["name"], [])):
            continue
        for subject in binding.inputs.get("subjects", []):
            assert (subject["kind"], subject["name"]) not in tenant_people
            assert subject.get("namespace") not in tenants


@pytest.mark.invariant
def test_tenants_reach_exactly_the_shared_services_they_have_accounts_on(stack_run, cfg):
    for tenant in cfg.tenants:
        policy = stack_run.one("NetworkPolicy", "allow-to-shared-services", tenant.name)
        reached = {
            rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in policy.inputs["spec"]["egress"]
        }
        accounts = {getattr(cfg.namespaces, CREDENTIALS[name]) for name in credentials(stack_run, tenant.name)}
        assert reached == accounts
