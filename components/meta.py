"""What every component uses: Kubernetes objects (``kube``), the registration window, the platform's labels, Pod
Security labels of namespaces, image mirroring, Helm releases and setup Jobs."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes._utilities import get_version

from config import charts
from config.cluster import Cluster, Namespaces
from config.images import identity_env
from config.versions import Chart

from .pods import TMP, restricted_container, restricted_pod, tmp_mount, tmp_volume

K8S_PLUGIN_VERSION = get_version()  # the provider plugin the typed classes would ask for
PART_OF = "ai-platform"
TENANT_LABEL = "ai-platform/tenant"


def labels(component: str, tenant: str | None = None) -> dict[str, str]:
    """The labels every platform object carries (plus the tenant label on tenant objects)."""
    result = {
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": component,
    }
    if tenant:
        result[TENANT_LABEL] = tenant
    return result


def metadata(
    name: str,
    component: str,
    namespace: object = None,
    tenant: str | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict:
    """``metadata`` with an explicit name, the platform labels and, for namespaced objects, the namespace."""
    result: dict = {"name": name, "labels": {**labels(component, tenant), **(extra_labels or {})}}
    if namespace is not None:
        result["namespace"] = namespace
    return result


class KubeObject(pulumi.CustomResource):
    """What ``kube`` registers: a plain custom resource whose outputs are untyped dicts (``obj.metadata["name"]``);
    the annotation only tells the type checker what the SDK sets from the registered properties (at run time the
    SDK would read it back through ``typing.get_type_hints`` for every registration: about 3% of a run)."""

    if TYPE_CHECKING:
        metadata: pulumi.Output[Any]


def kube(
    resource_name: str, api_version: str, kind: str, opts: pulumi.ResourceOptions | None = None, **fields: object
) -> KubeObject:
    """A Kubernetes object as the provider's resource ``kubernetes:<group>/<version>:<kind>`` (the type, URN and
    inputs the typed ``pulumi_kubernetes`` classes register), with camelCase ``fields`` as given and untyped dict
    outputs (``obj.metadata["name"]``). The typed classes cost twice as much per registration (python -m
    tools.bench): they turn every returned value into output classes nothing here reads. A Secret's ``data`` and
    ``stringData`` stay secret outputs, as with the typed class."""
    group, _, version = api_version.rpartition("/")
    opts = copy.copy(opts) if opts is not None else pulumi.ResourceOptions()  # the caller's may be shared
    opts.version = K8S_PLUGIN_VERSION  # a copy, not ResourceOptions.merge: 2% of a run for two scalar options
    if (api_version, kind) == ("v1", "Secret"):
        opts.additional_secret_outputs = [*(opts.additional_secret_outputs or []), "data", "stringData"]
    props = {"apiVersion": api_version, "kind": kind, **{k: v for k, v in fields.items() if v is not None}}
    return KubeObject(f"kubernetes:{group or 'core'}/{version}:{kind}", resource_name, props, opts)


# At most this many declared resources wait for their registration at once (RegistrationWindow).
REGISTRATION_WINDOW = 1000


class RegistrationWindow:
    """Bounds how many resources the program has declared that the engine has not registered yet.

    The SDK registers nothing while a (synchronous) program runs: every resource is declared first, each holding its
    inputs, serialized request and a dozen futures until the event loop drains them after the program returns
    (about 60 KB a resource; a 500-tenant stack would peak near 2 GiB). As a ``transformations`` entry of the
    top-level component, this sees every resource being declared; past ``limit`` waiting ones it pumps the event
    loop (``_pump``: what the SDK's ``_sync_await`` for synchronous invokes does) until half have their URN, so memory stays at
    what registered resources keep. Under ``pulumi up`` a URN comes when the resource is created, so a full window
    pauses the program until any of them is: ``limit`` stays far above what a cluster creates at once. Nothing
    else changes: the same registrations with the same inputs, options and dependencies."""

    def __init__(self, limit: int | None = None):
        self.limit = limit or REGISTRATION_WINDOW
        self.declared: list[pulumi.Resource] = []
        self.waiting: set[asyncio.Future] = set()
        self.drained: asyncio.Future | None = None  # resolved when at most half the window waits
        self.settling = False
        # The most handles the event loop's iteration that runs the program can still take from its ready queue:
        # they are all queued now, at the front (see _pump).
        self.outer_ready = len(asyncio.get_event_loop()._ready)  # type: ignore[attr-defined]

    def transformation(self, args: pulumi.ResourceTransformationArgs) -> None:
        """Record the resource being declared (unchanged); settle first if too many wait."""
        if len(self.declared) + len(self.waiting) >= self.limit and not self.settling:
            self.settle()
        self.declared.append(args.resource)

    def settle(self) -> None:
        self.settling = True
        try:
            registering = [resource for resource in self.declared if "urn" in resource.__dict__]
            # one without a URN output is still in its constructor (an enclosing one): next time
            self.declared = [resource for resource in self.declared if "urn" not in resource.__dict__]
            for resource in registering:
                self._wait_for(resource)
            if len(self.waiting) > self.limit // 2:
                self.drained = asyncio.get_event_loop().create_future()
                self._pump(self.drained)
        finally:
            self.settling = False

    def _pump(self, future: asyncio.Future) -> None:
        """Run the event loop until ``future`` is done, from inside the program, as the SDK's ``_sync_await`` does
        (pulumi/runtime/sync_await.py: the kernel of ``run_forever``). Afterwards the ready queue must hold at least
        as many handles as the iteration running the program will still take from it, or that iteration pops an
        empty queue. ``_sync_await`` refills it with cancelled handles up to its length at the call, which includes
        every earlier call's filler: called once per window, the queue and the time spent filling it grew with the
        square of the stack (a fifth of a 200x200 run). Refilling to ``outer_ready`` is enough."""
        loop = asyncio.get_event_loop()
        if not loop.is_running():
            loop.run_until_complete(future)
            return
        task = asyncio.current_task(loop)
        if task is not None:
            asyncio.tasks._leave_task(loop, task)
        while not future.done():
            loop._run_once()  # type: ignore[attr-defined]
        ready = loop._ready  # type: ignore[attr-defined]
        while len(ready) < self.outer_ready:
            filler = asyncio.Handle(lambda: None, [], loop)
            filler.cancel()
            ready.append(filler)
        if task is not None:
            asyncio.tasks._enter_task(loop, task)

    def _wait_for(self, resource: pulumi.Resource) -> None:
        task = asyncio.ensure_future(resource.urn.future())
        self.waiting.add(task)
        task.add_done_callback(self._registered)

    def _registered(self, task: asyncio.Future) -> None:
        self.waiting.discard(task)
        if not task.cancelled():
            task.exception()  # a failed registration is the SDK's to report, not an unretrieved task's
        if self.drained is not None and not self.drained.done() and len(self.waiting) <= self.limit // 2:
            self.drained.set_result(None)


def pod_security_labels(level: str, kubernetes_version: str) -> dict[str, str]:
    """Enforce, audit and warn one Pod Security level, pinned to the cluster's Kubernetes minor."""
    result = {}
    for mode in ("enforce", "audit", "warn"):
        result[f"pod-security.kubernetes.io/{mode}"] = level
        result[f"pod-security.kubernetes.io/{mode}-version"] = f"v{kubernetes_version}"
    return result


def mirrored(image: str, registry: str | None) -> str:
    """``image`` pulled from ``registry``: its registry host (Docker Hub if it names none) replaced, path kept;
    ``image`` itself without a registry (``cluster.imageRegistry`` unset)."""
    if not registry:
        return image
    host, _, path = image.partition("/")
    if path and ("." in host or ":" in host or host == "localhost"):
        return f"{registry}/{path}"
    return f"{registry}/{image}"


def holds_data(
    parent: pulumi.Resource,
    protect: bool,
    depends_on: list[pulumi.Resource] | None = None,
    aliases: list[pulumi.Alias] | None = None,
) -> pulumi.ResourceOptions:
    """Options of a resource whose deletion loses data (a namespace, a release with volumes, a database): with
    ``protect`` (``dataProtection: strict``) Pulumi refuses to delete or replace it, and if it is ever deleted from
    the stack, Kubernetes keeps it (``retain_on_delete``: no cascade to its volumes). ``aliases``: its former URNs."""
    return pulumi.ResourceOptions(
        parent=parent, depends_on=depends_on or [], protect=protect, retain_on_delete=protect, aliases=aliases
    )


def platform_namespace(
    logical_name: str,
    name: str,
    component: str,
    pod_security: str,
    kubernetes_version: str,
    parent: pulumi.Resource,
    tenant: str | None = None,
    extra_labels: dict[str, str] | None = None,
    protect: bool = False,
    aliases: list[pulumi.Alias] | None = None,
) -> KubeObject:
    """A namespace with the platform labels and one Pod Security level (enforced, audited, warned); ``protect``
    for one that holds data (deleting a namespace deletes every volume claim in it)."""
    return kube(
        logical_name,
        api_version="v1",
        kind="Namespace",
        metadata=metadata(
            name,
            component,
            tenant=tenant,
            extra_labels={**pod_security_labels(pod_security, kubernetes_version), **(extra_labels or {})},
        ),
        opts=holds_data(parent, protect, aliases=aliases),
    )


def helm_release(
    logical_name: str,
    chart: Chart,
    namespace: pulumi.Input[str],
    values: dict,
    parent: pulumi.Resource,
    *,
    cluster: Cluster,
    depends_on: list[pulumi.Resource] | None = None,
    timeout: int = 600,
    release_name: str | None = None,
    protect: bool = False,
    aliases: list[pulumi.Alias] | None = None,
) -> k8s.helm.v3.Release:
    """A Helm release of a pinned chart, named after the chart unless ``release_name`` says otherwise (an
    ``oci://`` repo is referenced in the chart); ``protect`` for one whose uninstall would lose data or CRDs.

    Where the cluster's platform admits system-critical pods only beside a quota scoped to their priority classes
    (``Profile.critical_pods_need_quota``) and the chart runs such pods with these values (``config.charts``), the
    quota comes first, in the release's namespace."""
    name = release_name or chart.name
    location = (
        {"chart": f"{chart.repo}/{chart.name}"}
        if chart.repo.startswith("oci://")
        else {"chart": chart.name, "repository_opts": {"repo": chart.repo}}
    )
    classes = charts.critical_priority_classes(chart.name, values)
    if classes and cluster.profile.critical_pods_need_quota:
        depends_on = [*(depends_on or []), critical_pods_quota(logical_name, name, namespace, parent)]
    return k8s.helm.v3.Release(
        logical_name,
        name=name,
        version=chart.version,
        namespace=namespace,
        values=values,
        max_history=10,
        timeout=timeout,
        cleanup_on_fail=True,
        **location,
        opts=holds_data(parent, protect, depends_on, aliases),
    )


def critical_pods_quota(
    release_logical_name: str, release: str, namespace: pulumi.Input[str], parent: pulumi.Resource
) -> KubeObject:
    """A ResourceQuota scoped to ``system-node-critical`` and ``system-cluster-critical`` beside ``release``: on
    platforms that admit such pods outside kube-system only where one exists (NVIDIA's GKE guide gives this quota).
    It admits; its pod limit is set far above any cluster so that it never binds."""
    return kube(
        f"{release_logical_name}-critical-pods",
        api_version="v1",
        kind="ResourceQuota",
        metadata=metadata(f"critical-pods-{release}", "platform-profile", namespace),
        spec={
            "hard": {"pods": CRITICAL_PODS_LIMIT},
            "scopeSelector": {
                "matchExpressions": [
                    {"scopeName": "PriorityClass", "operator": "In", "values": list(charts.CRITICAL_CLASSES)}
                ]
            },
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


CRITICAL_PODS_LIMIT = "100000"


JOB_UID = 1000  # a setup Job's user and group (its images define no user)
JOB_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}


def setup_job(
    logical_name: str,
    prefix: str,
    namespace: pulumi.Input[str],
    component: str,
    image: str,
    script: str,
    env: list[dict],
    fingerprint: object,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
) -> KubeObject:
    """A Job that runs the Python ``script`` (standard library only) once in ``image``, ``restricted`` and without a
    mesh sidecar. Its name is ``<prefix>-<hash>`` of ``fingerprint`` (what it sets up, never a secret), script and
    image: a change of any of them is a new Job, which runs again; ``pulumi.com/replaceUnready`` replaces a failed one
    on the next update (``delete_before_replace``: the replacement has the same name). It runs as ``JOB_UID``, which
    the images it runs define no user for: ``USER``/``LOGNAME`` and ``HOME`` on the ``/tmp`` emptyDir
    (``config.images.identity_env``)."""
    digest = hashlib.sha256(json.dumps([fingerprint, script, image], sort_keys=True).encode()).hexdigest()[:10]
    return kube(
        logical_name,
        api_version="batch/v1",
        kind="Job",
        metadata={
            **metadata(f"{prefix}-{digest}", component, namespace=namespace),
            "annotations": {"pulumi.com/replaceUnready": "true"},
        },
        spec={
            "backoffLimit": 6,
            "activeDeadlineSeconds": 1800,
            "template": {
                "metadata": {"labels": {**labels(component), "sidecar.istio.io/inject": "false"}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": restricted_pod(JOB_UID, gid=JOB_UID),
                    "containers": [
                        {
                            "name": "setup",
                            "image": image,
                            "command": ["python", "-c", script],
                            "env": [*env, *identity_env(TMP)],
                            "resources": JOB_RESOURCES,
                            "securityContext": restricted_container(),
                            "volumeMounts": [tmp_mount()],
                        }
                    ],
                    "volumes": [tmp_volume()],
                },
            },
        },
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=depends_on,
            delete_before_replace=True,
            custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m"),
        ),
    )


@dataclass(frozen=True)
class ComponentArgs:
    """What every platform component is built from, the base of its ``<Component>Args``: the cluster (Kubernetes
    minor, image registry) and the platform's namespaces (each component picks its own); keyword-only, whether its
    objects that hold data or state are protected (``protect``)."""

    cluster: Cluster
    namespaces: Namespaces
    _: KW_ONLY
    protect: bool = False
