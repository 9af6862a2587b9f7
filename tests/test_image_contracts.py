"""Image contracts (issue 16, "Images"): every container the platform declares runs an image of ``config.images``, under
a UID that image knows (or with ``USER``/``HOME`` set), with a read-only root file system whose written paths are on
volumes; and with ``cluster.imageRegistry`` every image it sets, in objects and in Helm values, comes from the mirror.

Pod templates walked: Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, InferenceService components, KServe
ServingRuntimes, (Cluster)TrainingRuntimes' replicated jobs, Argo WorkflowTemplates' container and script templates
(with the controller's ``workflowDefaults`` and ``mainContainer`` from the release) and the InferenceService the
pipeline's deploy step applies. An object that names an image anywhere else fails: nothing escapes the walk."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import NamedTuple

import pytest
import yaml

from config import images, versions
from tests.conftest import accept_loss, config_copy, run, run_stack, stack_cfg
from tools.harness import Run

MIRROR = "registry.example.com/mirror"
# Writable in every container whatever the root file system: the runtime mounts a tmpfs on /dev/shm.
RUNTIME_TMPFS = ("/dev/shm",)
# Volume types a container can write to.
WRITABLE_VOLUMES = ("emptyDir", "persistentVolumeClaim", "ephemeral", "hostPath")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")
ISVC_COMPONENTS = ("predictor", "transformer", "explainer")
# The model-serving container of an InferenceService component and the kinds of model it may name.
ISVC_MODEL_KEYS = ("model", "sklearn", "xgboost", "pytorch", "tensorflow", "onnx", "triton", "huggingface")
# Value keys through which the platform names an image, a repository or a registry in Helm values.
IMAGE_VALUE_KEYS = {"image", "repository", "registry", "imageRegistry", "image_registry", "hub", "rbacProxyImage"}
# Charts with no image of their own: Istio's base (CRDs and RBAC), KServe's CRDs, and the Istio gateway (its pod is
# injected: the proxy image comes from istiod's injector, whose hub the istiod release mirrors).
IMAGELESS_CHARTS = {versions.ISTIO_BASE.name, versions.KSERVE_CRD.name, versions.ISTIO_GATEWAY.name}


class Container(NamedTuple):
    """One container of a declared pod template, with what decides how it runs."""

    where: str  # kind/namespace/name and the path to the container
    container: dict
    pod_security: dict
    volumes: list[dict]


def full_run() -> tuple[Run, str]:
    """dev with every optional service on (Ray too), a Triton endpoint and a registry mirror: (run, registry)."""
    config = accept_loss(config_copy("dev"))
    config["ai-platform:cluster"] = {**config["ai-platform:cluster"], "imageRegistry": MIRROR}
    config["ai-platform:ray"] = {"enabled": True}
    triton = {
        "name": "ranker",
        "tenant": "product",
        "engine": "triton",
        "source": "s3://models/ranker",
        "s3": {"region": "eu-west-1", "credentialsSecret": "ranker-store"},
        "gpu": {"count": 1},
        "resources": {"cpu": "2", "memory": "8Gi"},
        "triton": {"models": ["ranker"]},
    }
    config["ai-platform:models"] = [*config.get("ai-platform:models", []), triton]
    result = run("dev", config)
    assert result.error is None, result.error
    return result, MIRROR


RUNS = {
    "dev": lambda: (run_stack("dev"), stack_cfg("dev").cluster.image_registry),
    "prod": lambda: (run_stack("prod"), stack_cfg("prod").cluster.image_registry),
    "all-on": full_run,
}
_cache: dict[str, tuple[Run, str | None]] = {}


def declared_by(name: str) -> tuple[Run, str | None]:
    """(run, image registry) of a stack file or of the all-services-on fixture, run once per session."""
    if name not in _cache:
        _cache[name] = RUNS[name]()
    return _cache[name]


@pytest.fixture(params=list(RUNS), scope="module")
def declared(request) -> tuple[Run, str | None]:
    return declared_by(request.param)


def argo_defaults(result: Run) -> tuple[dict, dict]:
    """The pod ``securityContext`` of the controller's ``workflowDefaults`` and ``mainContainer`` defaults."""
    for release in result.releases:
        if release.inputs.get("chart") == versions.ARGO_WORKFLOWS.name:
            values = release.inputs["values"]
            defaults = values["controller"].get("workflowDefaults", {}).get("spec", {})
            return defaults.get("securityContext", {}), values.get("mainContainer", {})
    return {}, {}


def pod_containers(where: str, pod: dict) -> Iterator[Container]:
    """The containers and init containers of a pod spec."""
    for field in ("initContainers", "containers"):
        for container in pod.get(field) or []:
            yield Container(
                f"{where} {field}[{container.get('name')}]",
                container,
                pod.get("securityContext") or {},
                pod.get("volumes") or [],
            )


def isvc_containers(where: str, spec: dict) -> Iterator[Container]:
    """The containers of an InferenceService's components that name their image (a ``model`` without one runs the
    image of KServe's ServingRuntime for its format: the chart's image, not the platform's)."""
    for component in ISVC_COMPONENTS:
        part = spec.get(component)
        if not part:
            continue
        pod = {**part, "containers": list(part.get("containers") or [])}
        for key in ISVC_MODEL_KEYS:
            if isinstance(part.get(key), dict) and "image" in part[key]:
                pod["containers"].append({"name": f"kserve-container({key})", **part[key]})
        yield from pod_containers(f"{where} {component}", pod)


def workflow_containers(where: str, spec: dict, defaults: tuple[dict, dict]) -> Iterator[Container]:
    """The main container of each container/script template (Argo: the template's pod fields, the workflow's pod
    securityContext, else the controller's defaults), and what each resource template applies."""
    pod_default, main_default = defaults
    pod_security = spec.get("securityContext") or pod_default
    for template in spec.get("templates", []):
        main = template.get("container") or template.get("script")
        if main:
            container = {"name": template["name"], **main}
            if "securityContext" not in container and main_default.get("securityContext"):
                container["securityContext"] = main_default["securityContext"]
            yield Container(
                f"{where} template[{template['name']}]",
                container,
                template.get("securityContext") or pod_security,
                template.get("volumes") or [],
            )
        manifest = template.get("resource", {}).get("manifest")
        if manifest:
            applied = yaml.safe_load(manifest)
            if applied.get("kind") == "InferenceService":
                yield from isvc_containers(f"{where} template[{template['name']}] applies", applied["spec"])


def containers(result: Run) -> Iterator[Container]:
    """Every container of every pod template the run declares."""
    defaults = argo_defaults(result)
    for obj in result.objects:
        spec = obj.inputs.get("spec") or {}
        where = f"{obj.kind} {obj.namespace or '-'}/{obj.k8s_name}"
        if obj.kind in WORKLOAD_KINDS:
            yield from pod_containers(where, spec["template"]["spec"])
        elif obj.kind == "CronJob":
            yield from pod_containers(where, spec["jobTemplate"]["spec"]["template"]["spec"])
        elif obj.kind == "InferenceService":
            yield from isvc_containers(where, spec)
        elif obj.kind in ("ServingRuntime", "ClusterServingRuntime"):
            yield from pod_containers(where, spec)
        elif obj.kind in ("TrainingRuntime", "ClusterTrainingRuntime"):
            for job in spec["template"]["spec"]["replicatedJobs"]:
                yield from pod_containers(f"{where} {job['name']}", job["template"]["spec"]["template"]["spec"])
        elif obj.kind == "WorkflowTemplate":
            yield from workflow_containers(where, spec, defaults)


def images_named(value, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, image) of every ``image``/``imageName`` string anywhere inside an object."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("image", "imageName") and isinstance(item, str):
                yield f"{path}.{key}", item
            elif key == "manifest" and isinstance(item, str):
                yield from images_named(yaml.safe_load(item), f"{path}.manifest")
            else:
                yield from images_named(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from images_named(item, f"{path}[{index}]")


def env_of(container: dict) -> dict[str, str | None]:
    """A container's environment: name -> literal value (None when it comes from a Secret or ConfigMap)."""
    return {e["name"]: e.get("value") for e in container.get("env") or []}


def writable_mounts(c: Container) -> list[str]:
    """Mount paths of the container's writable volumes (emptyDir, PVC, ...; never configMap/secret or readOnly)."""
    kinds = {v["name"]: next((k for k in WRITABLE_VOLUMES if k in v), None) for v in c.volumes}
    return [
        m["mountPath"] for m in c.container.get("volumeMounts") or [] if kinds.get(m["name"]) and not m.get("readOnly")
    ] + list(RUNTIME_TMPFS)


def on_mount(path: str, mounts: list[str]) -> bool:
    path = posixpath.normpath(path)
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


def effective_uid(c: Container, contract: images.ImageContract) -> int:
    """The UID the container runs as: its securityContext, the pod's, else the image's default."""
    for context in (c.container.get("securityContext") or {}, c.pod_security):
        if "runAsUser" in context:
            return int(context["runAsUser"])
    return contract.uid


def contract_problems(c: Container, registry: str | None) -> list[str]:
    """What keeps a container from running its image as the image's contract says (empty: nothing)."""
    try:
        contract = images.contract(c.container["image"], registry)
    except KeyError as error:
        return [str(error)]
    if not contract.runs_program(c.container.get("command"), c.container.get("args")):
        return []  # a shell loop in the image (e.g. waiting for a file): none of its programs runs
    problems = []
    env = env_of(c.container)
    uid = effective_uid(c, contract)
    if not contract.knows(uid):
        if not env.get("HOME"):
            problems.append(f"runs as uid {uid}, which {contract.image or 'the image'} does not define, without HOME")
        if contract.calls_getuser and not (env.get("USER") or env.get("LOGNAME")):
            problems.append(
                f"runs as uid {uid}, which {contract.image or 'the image'} does not define, without USER "
                "(getpass.getuser() raises)"
            )
    read_only = (c.container.get("securityContext") or {}).get("readOnlyRootFilesystem") is True
    if contract.python and contract.read_only_root is None and not read_only:
        problems.append(f"a Python image ({contract.image}) without readOnlyRootFilesystem")
    if read_only:
        home = env.get("HOME") or contract.home_of(uid) or "/"
        mounts = writable_mounts(c)
        for write in contract.writes:
            if not write.fatal:
                continue
            target = env.get(write.env) if write.env and env.get(write.env) else write.path
            target = posixpath.join(home, target[2:]) if target.startswith("~/") else target
            if not on_mount(target, mounts):
                problems.append(
                    f"writes {target} ({write.what}; moved by {write.env}) outside its writable volumes {mounts}"
                )
    return problems


@pytest.mark.invariant
def test_the_walk_finds_every_image_an_object_names(declared):
    """Every image named anywhere in a declared object is in a walked container (CNPG's imageName aside: the
    operator builds that pod), so a new kind of pod template cannot escape the contract checks."""
    result, _ = declared
    walked = {c.container["image"] for c in containers(result)}
    missed = [
        f"{obj.kind} {obj.namespace}/{obj.k8s_name}{path}: {image}"
        for obj in result.objects
        for path, image in images_named(obj.inputs.get("spec") or {})
        if image not in walked and not path.endswith("imageName")
    ]
    assert not missed, "\n".join(missed)
    assert walked, "no container found"


@pytest.mark.invariant
def test_every_container_runs_its_image_as_the_image_allows(declared):
    """Each container's image is in config/images.py; its UID is one the image defines, or it sets HOME (and USER
    where the image calls getuser()); a Python image runs read-only unless the table says why not, and every path
    the image writes is on a writable volume or moved to one by its variable."""
    result, registry = declared
    problems = [f"{c.where}: {problem}" for c in containers(result) for problem in contract_problems(c, registry)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", ["prod", "all-on"])
def test_with_a_mirror_every_container_image_comes_from_it(stack):
    """Every image a declared pod template or CNPG Cluster names is pulled through ``cluster.imageRegistry`` (the
    tenant's own pipeline image, an Argo parameter, is the tenant's to mirror)."""
    result, registry = declared_by(stack)
    assert registry
    unmirrored = [
        f"{obj.kind} {obj.namespace}/{obj.k8s_name}{path}: {image}"
        for obj in result.objects
        for path, image in images_named(obj.inputs.get("spec") or {})
        if not image.startswith(registry + "/") and not image.startswith("{{")
    ]
    assert not unmirrored, "\n".join(unmirrored)


def image_values(values, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, value) of every string the values set under an image, repository, registry or hub key."""
    if isinstance(values, dict):
        for key, item in values.items():
            if key in IMAGE_VALUE_KEYS and isinstance(item, str):
                yield f"{path}.{key}", item
            else:
                yield from image_values(item, f"{path}.{key}")
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from image_values(item, f"{path}[{index}]")


@pytest.mark.parametrize("stack", ["prod", "all-on"])
def test_with_a_mirror_every_release_takes_its_images_from_it(stack):
    """Every image-bearing Helm value the platform sets starts with the mirror, and every chart with images of its
    own gets at least one (else it pulls from its default registries)."""
    result, registry = declared_by(stack)
    problems = []
    for release in result.releases:
        chart = release.inputs.get("chart", "").rsplit("/", 1)[-1]
        found = list(image_values(release.inputs.get("values") or {}))
        problems += [f"{chart}{path}: {value}" for path, value in found if not value.startswith(registry)]
        if chart not in IMAGELESS_CHARTS and not any(value.startswith(registry) for _, value in found):
            problems.append(f"{chart}: no image value points at {registry}")
    assert not problems, "\n".join(problems)


def test_every_pin_the_platform_runs_has_a_contract():
    """The images the platform sets itself, from config.versions, each have a record (and no record is stale)."""
    pins = {
        versions.VLLM_IMAGE,
        versions.TRITON_IMAGE,
        versions.AWS_CLI_IMAGE,
        versions.MLFLOW_IMAGE,
        versions.TORCH_IMAGE,
        versions.POSTGRES_IMAGE,
        versions.PROM_LABEL_PROXY_IMAGE,
        versions.RATELIMIT_IMAGE,
        versions.VALKEY_IMAGE,
        versions.EPP_IMAGE,
    }
    assert set(images.CONTRACTS) == pins
    for contract in images.CONTRACTS.values():
        assert (
            contract.sources
            and contract.home
            and contract.users.get(contract.uid, (contract.user,))[0] == contract.user
        ), contract.image


def test_an_image_the_table_lacks_fails_loudly():
    with pytest.raises(KeyError, match="no runtime contract"):
        images.contract("docker.io/library/busybox:1.37")
    assert images.contract(f"{MIRROR}/mlflow/mlflow:v3.18.0-full", MIRROR) is images.MLFLOW
    assert images.contract(f"{MIRROR}/vllm/vllm-openai:v0.33.0", MIRROR) is images.VLLM
