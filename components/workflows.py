"""``Workflows``: Argo Workflows; workflows run only in tenant namespaces, each tenant gets the seeds' pipeline.

Owns:
- the namespace ``namespaces.workflows``, Pod Security ``restricted``: the chart's controller and server containers
  are non-root (their images run as uid 8737), drop every capability and forbid privilege escalation by default;
  the pods get seccomp ``RuntimeDefault`` here (``controller.podSecurityContext``/``server.podSecurityContext``);
- the Helm release ``argo-workflows`` of the pinned chart. CRDs: the chart's minified CRDs as templates
  (``crds.install``, ``crds.full: false``: no pre-install hook Job that downloads the full CRDs from GitHub), kept on
  uninstall (``crds.keep``), upgraded with the release. Images: controller, server and executor from the chart's
  ``images.tag``, which defaults to the chart's appVersion (v4.0.6): the chart version pins them;
  ``cluster.imageRegistry`` replaces their registry (``*.image.registry``). Replicas from config. Server auth
  ``workflows.authMode`` (``client`` or ``sso``; never ``server``);
- where workflows run. The controller has no mode for a set of namespaces (``singleNamespace`` is one namespace, the
  release's own): it keeps its ClusterRole and acts on Workflows in any namespace. What keeps workflows in the tenant
  namespaces is who may create them: only the tenant Roles grant ``argoproj.io`` rights (``createAggregateRoles:
  false``: the chart adds none to the built-in admin/edit/view ClusterRoles), and the Argo server acts with the
  caller's token (``client``) or a tenant ServiceAccount (``sso``). ``controller.workflowNamespaces`` only says where
  the chart would create its workflow ServiceAccount and RBAC; both are off (``workflow.*.create: false``), the
  platform creates its own. ClusterWorkflowTemplates are off (no CRD, no RBAC for controller and server);
- workflow defaults (controller config): ServiceAccount ``workflow-executor``, pod GC of succeeded pods, TTLs, pods
  labelled ``sidecar.istio.io/inject: "false"`` (a classic sidecar keeps a pod from completing), and the ``restricted``
  profile for every container of a workflow pod: pod ``securityContext`` (non-root uid 8737, RuntimeDefault; the
  executor image defines no user), ``executor.securityContext`` for the ``init``/``wait`` containers and
  ``mainContainer.securityContext`` for the main ones. Neither the tenant's step image nor the MLflow image defines
  uid 8737: the pipeline's steps set ``USER``/``LOGNAME`` and ``HOME`` on an emptyDir at ``/tmp``;
- one artifact repository per tenant, no controller-wide one: the ConfigMap ``artifact-repositories`` in each tenant
  namespace, its key ``default`` named by the annotation ``workflows.argoproj.io/default-artifact-repository``
  (Argo's order: a workflow's ``artifactRepositoryRef``, then that ConfigMap of the workflow's namespace, then the
  controller's default, which is not set). In-cluster: the SeaweedFS gateway, plain HTTP, the tenant's bucket
  ``<workflows bucket>-<tenant>`` and the tenant's own keys in the Secret ``argo-artifacts-s3`` of its namespace (the
  store's ``tenant-<tenant>`` identity, which reaches that bucket only; never the platform's keys). External:
  ``objectStore.endpoint`` (AWS S3 when unset) and region, the tenant's ``objectStore.bucket`` or the prefix
  ``<tenant>/`` of ``objectStore.workflowsBucket`` (``keyFormat``), keys from ``objectStore.credentialsSecret`` (an
  ExternalSecret per tenant namespace when secrets come from a store) or the SDK's credentials (workload identity:
  the tenant's ``objectStore.serviceAccountAnnotations``, else the store's, on its executor ServiceAccount).
  Tenant developers manage ConfigMaps, so they can edit or replace this one, and any workflow may name another
  repository: what isolates tenants is the credential, not the ConfigMap. The keys in a tenant namespace reach only
  that tenant's bucket, so pointing the repository at another tenant's bucket gets access denied. External stores
  isolate only as far as the cloud identity does: give each tenant a role allowed only on its bucket or prefix, whose
  trust policy admits only ``system:serviceaccount:<tenant>:workflow-executor`` and ``...:<tenant>:model-reader``;
- per tenant: ServiceAccount ``workflow-executor`` and its RoleBinding to the ClusterRole
  ``ai-platform-workflow-executor`` (one for all tenants: the emissary executor's ``workflowtaskresults``
  create/patch, and get/create/patch of InferenceServices for the pipeline's deploy step; granted in the tenant's
  namespace only); the
  NetworkPolicy ``allow-workflow-https`` (workflow pods to public addresses on 443: datasets, an external store);
- per tenant, for the models the pipeline serves (MLflow's artifact proxy needs a login, KServe's storage initializer
  has none): the ServiceAccount ``model-reader`` (no Role, no token) that the deploy step's InferenceServices run as.
  The register step uploads the archive to the tenant's artifact storage (``model_store``: its bucket, or its prefix
  of the shared one, under ``models/<model>/<run>/``) with the tenant's keys or the executor's identity, and passes
  on its ``s3://`` URI. KServe reads S3 credentials from the Secrets a predictor's ServiceAccount lists and S3
  settings from their annotations (``serving.kserve.io/s3-endpoint``, ``s3-usehttps``, ``s3-region``), or from the
  ServiceAccount's own annotations when it has an IRSA role (``eks.amazonaws.com/role-arn``). In-cluster:
  ``model-reader`` lists the Secret ``model-reader-s3`` (the tenant identity's keys, annotated with the gateway);
  external with ``credentialsSecret``: it lists that Secret (annotated when it comes from the store; otherwise the
  operator annotates it for a non-AWS endpoint); workload identity: it carries the executor's annotations and the S3
  settings. External: the NetworkPolicy ``allow-pipeline-model-https`` lets those pods (``ai-platform/role:
  pipeline-model``) reach public addresses on 443;
- with ``sso``: RBAC with namespace delegation. A login ServiceAccount in the workflows namespace (no rights) that
  every tenant group maps to, and per tenant ``workflows-developer``/``workflows-viewer`` ServiceAccounts chosen by
  the tenant's developer/viewer groups (``workflows.argoproj.io/rbac-rule``, higher ``rbac-rule-precedence``), bound
  to the tenant's ``developer``/``viewer`` Roles; each with its token Secret ``<sa>.service-account-token`` (Argo
  >= 3.4 reads it by that name; Kubernetes fills it). The server may read only those Secrets and the SSO client
  Secret ``sso.clientSecret`` (``server.sso.rbac.secretWhitelist``);
- one WorkflowTemplate per ``workflows.pipelines`` entry (``workflow_pipeline.pipeline_spec``), depending on the
  release.

What these objects are made of (names, chart values, the tenants' storage, SSO rules) is built in
``workflow_values``; the pipeline's WorkflowTemplate spec in ``workflow_pipeline``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import pulumi

from config import versions
from config.batch import Workflows as WorkflowsConfig
from config.data import ObjectStore as ObjectStoreConfig
from config.gpu import Gpu
from config.tenancy import Tenant as TenantConfig

from .meta import ComponentArgs, KubeObject, helm_release, kube, metadata, platform_namespace
from .objectstore import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ObjectStore
from .secrets import PlatformSecrets
from .tenancy import cluster_role, public_https_egress
from .workflow_pipeline import pipeline_spec
from .workflow_values import (
    ARTIFACT_REPOSITORIES,
    ARTIFACT_SECRET,
    COMPONENT,
    DEFAULT_REPOSITORY_ANNOTATION,
    EXECUTOR_ROLE,
    EXECUTOR_SA,
    LOGIN_SA,
    MODEL_POD_LABELS,
    MODEL_READER,
    MODEL_READER_SECRET,
    RBAC_PRECEDENCE,
    RBAC_RULE,
    REPOSITORY_KEY,
    SSO_ACCOUNTS,
    SSO_CLIENT_KEYS,
    ModelStore,
    artifact_repository,
    executor_annotations,
    executor_rules,
    helm_values,
    kserve_s3_annotations,
    model_store,
    rbac_rule,
    repository_config_map,
    sso_groups,
    token_secret,
)

POD_SECURITY = "restricted"
RELEASE = versions.ARGO_WORKFLOWS.name

# What tenant developers manage and everyone in a tenant reads (as the chart's aggregated roles, less ClusterWorkflow-
# Templates, which are off).
TENANT_WORKLOADS = {"argoproj.io": ["workflows", "workflowtemplates", "cronworkflows"]}
TENANT_READABLE = {
    "argoproj.io": ["workflowtaskresults", "workflowtasksets", "workflowartifactgctasks", "workfloweventbindings"]
}

# Every pod of a workflow carries the label workflows.argoproj.io/workflow (argoproj/argo-workflows
# workflow/common/common.go LabelKeyWorkflow): the pods whose executor calls the API server (WorkflowTaskResults).
WORKFLOW_PODS = {"matchExpressions": [{"key": "workflows.argoproj.io/workflow", "operator": "Exists"}]}


@dataclass(frozen=True)
class WorkflowsArgs(ComponentArgs):
    """What ``Workflows`` is built from (besides the cluster and namespaces): its config, the object store's, the GPU
    config and the tenants; keyword-only, the tenants' namespaces (Outputs), the in-cluster object store (endpoint,
    the tenants' keys), MLflow's URL (pipelines log there) and the platform's Secrets."""

    workflows: WorkflowsConfig
    store: ObjectStoreConfig
    gpu: Gpu
    tenants: list[TenantConfig]
    _: KW_ONLY
    tenant_namespaces: dict[str, pulumi.Input[str]]
    object_store: ObjectStore | None
    mlflow_url: str | None
    platform_secrets: PlatformSecrets


class Workflows(pulumi.ComponentResource):
    """Argo Workflows namespace and release, per-tenant executor accounts, artifact credentials, SSO RBAC and the
    tenants' pipeline WorkflowTemplates (see the module docstring)."""

    def __init__(self, name: str, args: WorkflowsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:workflows:Workflows", name, None, opts)
        workflows, cluster, namespaces, store, gpu = args.workflows, args.cluster, args.namespaces, args.store, args.gpu
        tenants, tenant_namespaces, object_store = args.tenants, args.tenant_namespaces, args.object_store
        platform_secrets, mlflow_url, protect = args.platform_secrets, args.mlflow_url, args.protect
        if store.mode == "in-cluster" and object_store is None:
            raise ValueError("an in-cluster object store must be created before Argo Workflows and passed to it")
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = platform_namespace(
            f"{name}-namespace", namespaces.workflows, COMPONENT, POD_SECURITY, cluster.kubernetes_version, self
        )
        ns = self.namespace.metadata["name"]

        self.model_stores: dict[str, ModelStore] = {}
        if workflows.sso:
            platform_secrets.existing(
                f"{name}-sso-client", workflows.sso.client_secret, ns, COMPONENT, self, SSO_CLIENT_KEYS
            )
            self._service_account(
                f"{name}-sso-login",
                LOGIN_SA,
                ns,
                None,
                {RBAC_RULE: rbac_rule(sorted({g for t in tenants for g in sso_groups(t)})), RBAC_PRECEDENCE: "0"},
            )

        if tenants:  # the executor's rights, granted in each tenant namespace by a RoleBinding
            kube(
                f"{name}-executor-role",
                api_version="rbac.authorization.k8s.io/v1",
                kind="ClusterRole",
                metadata=metadata(EXECUTOR_ROLE, COMPONENT),
                rules=executor_rules(),
                opts=child,
            )
        for tenant in tenants:
            tns = tenant_namespaces[tenant.name]
            prefix = f"{name}-{tenant.name}"
            annotations = executor_annotations(store, tenant)
            kube(
                f"{prefix}-executor-sa",
                api_version="v1",
                kind="ServiceAccount",
                metadata={
                    **metadata(EXECUTOR_SA, COMPONENT, namespace=tns, tenant=tenant.name),
                    **({"annotations": annotations} if annotations else {}),
                },
                opts=child,
            )
            kube(
                f"{prefix}-executor-rolebinding",
                api_version="rbac.authorization.k8s.io/v1",
                kind="RoleBinding",
                metadata=metadata(EXECUTOR_SA, COMPONENT, namespace=tns, tenant=tenant.name),
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": EXECUTOR_ROLE},
                subjects=[{"kind": "ServiceAccount", "name": EXECUTOR_SA, "namespace": tns}],
                opts=child,
            )
            s3 = artifact_repository(store, object_store.endpoint if object_store else None, tenant)
            kube(
                f"{prefix}-artifact-repositories",
                api_version="v1",
                kind="ConfigMap",
                metadata={
                    **metadata(ARTIFACT_REPOSITORIES, COMPONENT, namespace=tns, tenant=tenant.name),
                    "annotations": {DEFAULT_REPOSITORY_ANNOTATION: REPOSITORY_KEY},
                },
                data=repository_config_map(s3),
                opts=child,
            )
            models = self.model_stores[tenant.name] = model_store(
                store, object_store.endpoint if object_store else None, tenant
            )
            s3_settings = kserve_s3_annotations(store, models.endpoint)
            if store.mode == "in-cluster":  # the tenant's own identity, never the platform's keys
                assert object_store is not None, "checked at the top of __init__ (ValueError)"
                keys = object_store.tenant_credentials[tenant.name]
                tenant_keys = {ACCESS_KEY_ID: keys.access_key_id, SECRET_ACCESS_KEY: keys.secret_access_key}
                platform_secrets.secret(
                    f"{prefix}-artifacts-s3", ARTIFACT_SECRET, tns, COMPONENT, self, tenant_keys, tenant=tenant.name
                )
                platform_secrets.secret(
                    f"{prefix}-model-reader-s3",
                    MODEL_READER_SECRET,
                    tns,
                    COMPONENT,
                    self,
                    tenant_keys,
                    tenant=tenant.name,
                    annotations=s3_settings,
                )
            elif store.credentials_secret:  # from the store: its target carries KServe's settings too
                platform_secrets.existing(
                    f"{prefix}-artifacts-s3",
                    store.credentials_secret,
                    tns,
                    COMPONENT,
                    self,
                    [ACCESS_KEY_ID, SECRET_ACCESS_KEY],
                    tenant=tenant.name,
                    annotations=s3_settings,
                )
            self._model_reader(prefix, tns, tenant.name, store, annotations, s3_settings)
            kube(
                f"{prefix}-netpol-https",
                api_version="networking.k8s.io/v1",
                kind="NetworkPolicy",
                metadata=metadata("allow-workflow-https", COMPONENT, namespace=tns, tenant=tenant.name),
                spec={"podSelector": WORKFLOW_PODS, "policyTypes": ["Egress"], "egress": [public_https_egress()]},
                opts=child,
            )
            if workflows.sso:
                access = {"developer": tenant.access.developers.groups, "viewer": tenant.access.viewers.groups}
                for role, (account, precedence) in SSO_ACCOUNTS.items():
                    if access[role]:
                        self._service_account(
                            f"{prefix}-sso-{role}",
                            account,
                            tns,
                            tenant.name,
                            {RBAC_RULE: rbac_rule(access[role]), RBAC_PRECEDENCE: str(precedence)},
                            role=role,
                        )

        # No wait for the SSO client Secret (from the store it comes one wave after the External Secrets operator's
        # release): argo-server reads it at start and exits until it exists, and the kubelet restarts it (crash-loop
        # backoff, at most 5 minutes apart); 900 s instead of 600 leaves room for that. Waiting would put the release,
        # and the WorkflowTemplates that need its CRDs, a wave later (a fifth wave).
        self.release = helm_release(
            f"{name}-release",
            versions.ARGO_WORKFLOWS,
            ns,
            helm_values(workflows, cluster, tenants),
            self,
            cluster=args.cluster,
            timeout=900,
            release_name=RELEASE,
            protect=protect,
        )

        after_release = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        by_name = {t.name: t for t in tenants}
        self.templates: list[KubeObject] = []
        if workflows.pipelines:
            # pipelines need mlflow.enabled (config/batch.py), so AiPlatform passes MLflow's URL
            assert mlflow_url is not None, "guaranteed by config/batch.py: pipelines need mlflow.enabled"
            self.templates = [
                kube(
                    f"{name}-{pipeline.tenant}-{pipeline.name}",
                    api_version="argoproj.io/v1alpha1",
                    kind="WorkflowTemplate",
                    metadata=metadata(
                        pipeline.name, COMPONENT, namespace=tenant_namespaces[pipeline.tenant], tenant=pipeline.tenant
                    ),
                    spec=pipeline_spec(
                        pipeline,
                        by_name[pipeline.tenant],
                        gpu,
                        mlflow_url,
                        cluster,
                        store,
                        self.model_stores[pipeline.tenant],
                    ),
                    opts=after_release,
                )
                for pipeline in workflows.pipelines
            ]
        self.register_outputs({"namespace": ns, "release": self.release.name})

    def _model_reader(
        self,
        prefix: str,
        namespace: pulumi.Input[str],
        tenant: str,
        store: ObjectStoreConfig,
        identity: dict[str, str],
        s3_settings: dict[str, str],
    ) -> None:
        """The ServiceAccount ``model-reader`` of the deploy step's InferenceServices (no Role, no token): it lists
        the tenant's S3 Secret, whose annotations tell KServe the endpoint; with workload identity it carries the
        executor's identity and those settings itself. With an external store, its pods may reach HTTPS."""
        secret = MODEL_READER_SECRET if store.mode == "in-cluster" else store.credentials_secret
        meta = metadata(MODEL_READER, COMPONENT, namespace=namespace, tenant=tenant)
        if secret is None:
            meta["annotations"] = {**identity, **s3_settings}
        kube(
            f"{prefix}-model-reader-sa",
            api_version="v1",
            kind="ServiceAccount",
            metadata=meta,
            secrets=[{"name": secret}] if secret else None,
            automountServiceAccountToken=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if store.mode == "external":
            kube(
                f"{prefix}-netpol-model-https",
                api_version="networking.k8s.io/v1",
                kind="NetworkPolicy",
                metadata=metadata("allow-pipeline-model-https", COMPONENT, namespace=namespace, tenant=tenant),
                spec={
                    "podSelector": {"matchLabels": dict(MODEL_POD_LABELS)},
                    "policyTypes": ["Egress"],
                    "egress": [public_https_egress()],
                },
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _service_account(
        self,
        logical: str,
        account: str,
        namespace: pulumi.Input[str],
        tenant: str | None,
        annotations: dict[str, str],
        role: str | None = None,
    ) -> None:
        """An SSO ServiceAccount with its rule, its token Secret and, for a tenant role, its RoleBinding."""
        sa = kube(
            f"{logical}-sa",
            api_version="v1",
            kind="ServiceAccount",
            metadata={**metadata(account, COMPONENT, namespace=namespace, tenant=tenant), "annotations": annotations},
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Kubernetes writes the token into it; no value comes from Pulumi or a store (so not PlatformSecrets).
        kube(
            f"{logical}-token",
            api_version="v1",
            kind="Secret",
            metadata={
                **metadata(token_secret(account), COMPONENT, namespace=namespace, tenant=tenant),
                "annotations": {"kubernetes.io/service-account.name": account},
            },
            type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[sa]),
        )
        if role:
            kube(
                f"{logical}-rolebinding",
                api_version="rbac.authorization.k8s.io/v1",
                kind="RoleBinding",
                metadata=metadata(account, COMPONENT, namespace=namespace, tenant=tenant),
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role(role)},
                subjects=[{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
                opts=pulumi.ResourceOptions(parent=self),
            )
