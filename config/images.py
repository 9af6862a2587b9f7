"""Runtime contracts of the images the platform runs itself (it sets their ``image:``; chart images are the charts'):
who each image runs as, which UIDs it knows, its HOME, what it writes at run time, its entrypoint, and whether it is
a Python program that calls ``getpass.getuser()``. Keyed by the pins of ``config.versions`` (the only place naming a
tag); ``contract(image)`` finds the record of an image as a container names it (mirrored or not).

Why it matters. Pod Security ``restricted`` makes the platform run images under a UID of its choosing. A UID the image's
``/etc/passwd`` does not list has no user name and no home: ``HOME`` falls back to ``/`` (unwritable) and
``getpass.getuser()`` raises (``KeyError: 'getpwuid(): uid not found: 1000'`` up to Python 3.12, ``OSError`` from 3.13;
CPython ``Lib/getpass.py``: it reads ``LOGNAME``, ``USER``, ``LNAME``, ``USERNAME`` first and only then ``pwd``). torch
calls it when it picks its Inductor cache directory (pytorch ``torch/_inductor/runtime/cache_dir_utils.py``
``default_cache_dir``), at import time in vLLM (vllm-project/vllm#44548, kserve/kserve#5666); MLflow's client calls it
for the run's user tag (mlflow ``mlflow/tracking/context/default_context.py`` ``_get_user`` catches ``ImportError``
only). So a container runs under a UID its image defines, or sets ``USER`` and ``HOME`` (``identity_env``). With
``readOnlyRootFilesystem`` every path in ``writes`` must be on a writable volume, or moved there by its variable.

Facts are read from the upstream sources named next to them. Where the pinned tag could not be read here, the
record says which revision was read instead (``sources``).
"""

from __future__ import annotations

import posixpath
from typing import NamedTuple

from config import versions

# The user name a container announces (USER, LOGNAME) when it runs under a UID its image does not define.
ANONYMOUS_USER = "ai-platform"


class Write(NamedTuple):
    """A path an image writes at run time: absolute, or ``~/...`` under HOME; ``env`` moves it elsewhere (None: fixed
    path). ``fatal``: the program fails when it cannot write there (False: it carries on without, e.g. bytecode)."""

    path: str
    env: str | None
    what: str
    fatal: bool = True


class ImageContract(NamedTuple):
    """What running one pinned image requires of its container (see the module docstring)."""

    image: str
    """The pinned image (``config.versions``); ``TENANT_STEP`` names no image."""
    user: str
    """The user it runs as by default (no ``USER`` in its Dockerfile: root)."""
    uid: int
    users: dict[int, tuple[str, str]]
    """UIDs with a passwd entry that a container may run as: uid -> (name, home directory in passwd)."""
    home: str
    """HOME of the default user."""
    entrypoint: tuple[str, ...]
    python: bool
    """A Python program (its ``writes`` include bytecode and ``tempfile``'s directory)."""
    calls_getuser: bool
    """Calls ``getpass.getuser()``: under an unknown UID the container must set ``USER``."""
    writes: tuple[Write, ...]
    read_only_root: str | None
    """None: runs with a read-only root file system given ``writes`` on volumes; else why it cannot."""
    sources: tuple[str, ...]
    programs: tuple[str, ...] = ("python", "python3")
    """The commands that run the image's program (the contract's subject); a container that runs only a shell loop
    in the image (e.g. waiting for a file) runs none of them."""

    def runs_program(self, command: list[str] | None, args: list[str] | None = None) -> bool:
        """Whether a container with this ``command``/``args`` runs the image's program: the entrypoint (no command),
        one of ``programs``, or a shell script that calls one."""
        if not command:
            return True
        words = [
            posixpath.basename(word)
            for part in (command, args or [])
            for item in part
            for word in str(item).replace(";", " ").replace("&&", " ").replace("|", " ").split()
        ]
        return any(word in self.programs for word in words)

    def knows(self, uid: int) -> bool:
        """Whether ``uid`` has a passwd entry in the image."""
        return uid in self.users

    def home_of(self, uid: int) -> str | None:
        """HOME of ``uid`` from the image's passwd (None: the UID has no entry; HOME falls back to ``/``)."""
        return self.users[uid][1] if uid in self.users else None


def identity_env(home: str) -> list[dict]:
    """``USER``, ``LOGNAME`` and ``HOME`` for a container that runs under a UID its image does not define:
    ``getpass.getuser()`` answers from ``USER`` without a passwd lookup; ``home`` must be writable."""
    return [
        {"name": "USER", "value": ANONYMOUS_USER},
        {"name": "LOGNAME", "value": ANONYMOUS_USER},
        {"name": "HOME", "value": home},
    ]


# Paths every Python program may write: the compiled bytecode beside its modules (CPython skips it silently when the
# directory is read-only: importlib ``SourceFileLoader._cache_bytecode``/``set_data`` ignore ``OSError``) and
# ``tempfile``'s directory (``TMPDIR``, else /tmp; ``tempfile.gettempdir``).
PYTHON_WRITES = (
    Write("__pycache__", "PYTHONDONTWRITEBYTECODE", "bytecode of imported modules", fatal=False),
    Write("/tmp", "TMPDIR", "tempfile.gettempdir(): temporary files and directories"),
)

# Caches of the torch stack, by the variable that moves each (defaults from the sources named).
TORCH_WRITES = (
    # pytorch torch/_inductor/runtime/cache_dir_utils.py: default_cache_dir() = <tempdir>/torchinductor_<getuser()>
    Write("/tmp", "TORCHINDUCTOR_CACHE_DIR", "torch.compile (Inductor) cache: <tmp>/torchinductor_<user>"),
    # triton-lang/triton python/triton/runtime/cache.py: default_cache_dir() = $HOME/.triton/cache
    Write("~/.triton", "TRITON_CACHE_DIR", "Triton kernel cache"),
    # pytorch torch/hub.py _get_torch_home(): $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch
    Write("~/.cache/torch", "TORCH_HOME", "torch hub and kernel caches"),
    Write("/dev/shm", None, "shared memory of DataLoader workers and NCCL"),
)

# huggingface_hub constants.py: HF_HOME = $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
HF_WRITES = (Write("~/.cache/huggingface", "HF_HOME", "Hugging Face hub cache and token"),)

VLLM = ImageContract(
    image=versions.VLLM_IMAGE,
    user="root",
    uid=0,
    # The vllm-base stage creates `vllm` (UID 2000, GID 0, home /home/vllm, group-0 writable); the vllm-openai target
    # keeps root ("The default `vllm-openai` image keeps `USER root`"); its nvidia/cuda Ubuntu base defines no other
    # login user the platform may rely on.
    users={0: ("root", "/root"), 2000: ("vllm", "/home/vllm")},
    home="/root",
    entrypoint=("vllm", "serve"),
    programs=("vllm", "python", "python3", "hf", "huggingface-cli"),
    python=True,
    calls_getuser=True,
    writes=(
        *PYTHON_WRITES,
        *TORCH_WRITES,
        *HF_WRITES,
        # vllm/envs.py: VLLM_CACHE_ROOT = $XDG_CACHE_HOME/vllm, else ~/.cache/vllm (torch.compile artifacts);
        # VLLM_CONFIG_ROOT = ~/.config/vllm (usage stats); VLLM_RPC_BASE_PATH = tempfile.gettempdir() (IPC sockets)
        Write("~/.cache/vllm", "VLLM_CACHE_ROOT", "vLLM compile cache and assets"),
        Write("~/.config/vllm", "VLLM_CONFIG_ROOT", "vLLM config and usage stats"),
        Write("/tmp", "VLLM_RPC_BASE_PATH", "vLLM IPC sockets"),
        # docker/entrypoints/vllm-nonroot-entrypoint.sh: "every cache dir (HF, Triton, Inductor, vLLM, Numba,
        # Outlines) that defaults to `$HOME/.cache/...`"
        Write("~/.cache", "XDG_CACHE_HOME", "Numba, Outlines and other library caches"),
    ),
    read_only_root=None,
    sources=(
        "vllm-project/vllm docker/Dockerfile, stages vllm-base ('Non-root support (opt-in)': useradd --uid 2000 "
        '--gid 0 --home-dir /home/vllm vllm), vllm-openai (ENTRYPOINT ["vllm", "serve"], no USER) and '
        "vllm-openai-nonroot; added by vllm-project/vllm#40275. The v0.33.0 tag could not be fetched here (repository "
        "snapshot over the size limit): read from the Dockerfile as of the 2026-07 main branch.",
        "vllm-project/vllm vllm/envs.py (VLLM_CACHE_ROOT, VLLM_CONFIG_ROOT, VLLM_RPC_BASE_PATH)",
        "vllm-project/vllm#44548: torch's getuser() at vLLM start under an unknown UID; "
        "vllm-project/vllm docker/entrypoints/vllm-nonroot-entrypoint.sh sets USER and HOME for that case",
    ),
)

TRITON = ImageContract(
    image=versions.TRITON_IMAGE,
    user="root",
    uid=0,
    # build.py dockerfile_prepare_container_linux: userdel ubuntu; useradd triton-server; asserts uid == gid == 1000.
    # useradd without -m: the passwd home /home/triton-server is not created, so HOME must be set to a volume.
    users={0: ("root", "/root"), 1000: ("triton-server", "/home/triton-server")},
    home="/root",
    entrypoint=("/opt/nvidia/nvidia_entrypoint.sh",),
    programs=("tritonserver", "python", "python3"),
    # A C++ server; its Python backend runs model.py stubs (which may import torch: they then call getuser()).
    python=True,
    calls_getuser=True,
    writes=(
        *PYTHON_WRITES,
        # triton-inference-server/python_backend: stubs exchange tensors with the server through POSIX shared
        # memory regions (--backend-config=python,shm-region-prefix-name=..., shm-default-byte-size).
        Write("/dev/shm", None, "Python backend shared memory regions"),
    ),
    read_only_root=None,
    sources=(
        "triton-inference-server/server build.py dockerfile_prepare_container_linux (TRITON_SERVER_USER=triton-server, "
        "'Make sure that this user is given ID 1000', WORKDIR /opt/tritonserver, entrypoint.d) at branch r26.08 "
        "(6fa22ae) and main (26.09dev, e1db8a6); branch r26.09 is not in the snapshot read here",
        "triton-inference-server/server docs/customization_guide/deploy.md '3. Run as a Non-Root User' "
        "(docker run --user triton-server)",
    ),
)

AWS_CLI = ImageContract(
    image=versions.AWS_CLI_IMAGE,
    user="root",
    uid=0,
    users={0: ("root", "/root")},  # amazonlinux:2 base: system accounts only
    home="/root",
    entrypoint=("/usr/local/bin/aws",),
    programs=("aws",),
    # A frozen (PyInstaller) Python program: it does not read the image's Python, writes no bytecode and does not
    # ask for the user name; it writes its credential caches under ~/.aws.
    python=False,
    calls_getuser=False,
    writes=(
        Write("~/.aws", None, "CLI caches (~/.aws/cli/cache, ~/.aws/sso/cache)"),
        Write("/tmp", "TMPDIR", "temporary files"),
    ),
    read_only_root=None,
    sources=(
        "aws/aws-cli docker/Dockerfile at tag 2.27.0 (FROM amazonlinux:2, ./aws/install, WORKDIR /aws, "
        'ENTRYPOINT ["/usr/local/bin/aws"], no USER)',
    ),
)

MLFLOW = ImageContract(
    image=versions.MLFLOW_IMAGE,
    user="root",
    uid=0,
    users={0: ("root", "/root")},  # python:3.11-slim (Debian): system accounts only, no login user
    home="/root",
    entrypoint=(),  # python's image: CMD ["python3"]; the platform always sets the command
    programs=("mlflow", "python", "python3"),
    python=True,
    calls_getuser=True,
    # The server's Prometheus multiprocess files go where its --expose-prometheus argument says (the platform: /tmp).
    writes=PYTHON_WRITES,
    read_only_root=None,
    sources=(
        "mlflow/mlflow docker/Dockerfile.full (FROM python:3.11-slim-bookworm; pip install "
        "mlflow[extras,azure,db,gateway,genai,auth]==$VERSION; no USER, no ENTRYPOINT) as stored (092ba8b); "
        "the v3.18.0 tag could not be fetched (repository snapshot over the size limit)",
        "mlflow/mlflow mlflow/tracking/context/default_context.py _get_user: getpass.getuser(), catching only "
        "ImportError (as stored, 0153e0f)",
    ),
)

TORCH = ImageContract(
    image=versions.TORCH_IMAGE,
    user="root",
    uid=0,
    users={0: ("root", "/root")},  # ubuntu:22.04 base: system accounts only
    home="/root",
    entrypoint=(),  # no ENTRYPOINT; WORKDIR /workspace
    programs=("python", "python3", "torchrun"),
    python=True,
    calls_getuser=True,
    writes=(*PYTHON_WRITES, *TORCH_WRITES, *HF_WRITES),
    read_only_root=None,
    sources=(
        "pytorch/pytorch Dockerfile, stage official (FROM ubuntu:22.04, /opt/conda, WORKDIR /workspace, no USER, no "
        "ENTRYPOINT) as stored (01343dc); the v2.10.0 tag could not be fetched (repository snapshot over the size "
        "limit)",
        "pytorch/pytorch torch/_inductor/runtime/cache_dir_utils.py default_cache_dir (getpass.getuser())",
    ),
)

POSTGRES = ImageContract(
    image=versions.POSTGRES_IMAGE,
    user="postgres",
    uid=26,
    users={26: ("postgres", "/var/lib/postgresql")},
    home="/var/lib/postgresql",
    entrypoint=(),  # the CloudNativePG operator injects its instance manager and runs the pod
    programs=("postgres",),
    python=False,
    calls_getuser=False,
    writes=(Write("/var/lib/postgresql", None, "PGDATA on the operator's volume"),),
    # The operator writes the pod spec (its own read-only root, volumes and UID 26): nothing for the platform to set.
    read_only_root=None,
    sources=("cloudnative-pg/postgres-containers Dockerfile (usermod -u 26 postgres; USER 26) as stored (22f0691)",),
)

# The tenant's own image of a pipeline step (``python -m pipeline <step>``, Argo WorkflowTemplates): unknown to the
# platform, so assumed a Python program that may call getuser() and knows no UID the platform picks.
TENANT_STEP = ImageContract(
    image="",
    user="unknown",
    uid=0,
    users={},
    home="/",
    entrypoint=(),
    python=True,
    calls_getuser=True,
    writes=(*PYTHON_WRITES, *TORCH_WRITES, *HF_WRITES),
    read_only_root="the tenant's code may write anywhere in its own image; the platform gives it /work, /tmp and HOME "
    "on volumes",
    sources=("workflows pipeline contract (components/workflows.py)",),
)

PROM_LABEL_PROXY = ImageContract(
    image=versions.PROM_LABEL_PROXY_IMAGE,
    user="nobody",
    uid=65534,
    # busybox's passwd: nobody is 65534 with home /home (the rootfs of quay.io/prometheus/busybox is a binary
    # archive, not read here: the platform sets runAsUser 65534 explicitly, and the static Go binary never looks the
    # user up).
    users={65534: ("nobody", "/home")},
    home="/home",
    entrypoint=("/bin/prom-label-proxy",),
    programs=("prom-label-proxy",),
    python=False,
    calls_getuser=False,
    writes=(),  # an HTTP proxy: no file written (main.go, injectproxy/routes.go)
    read_only_root=None,
    sources=(
        "prometheus-community/prom-label-proxy Dockerfile at tag v0.14.0 (c68b3c8): FROM "
        "quay.io/prometheus/busybox-${OS}-${ARCH}:glibc, COPY .build/... /bin/prom-label-proxy, USER nobody, "
        'ENTRYPOINT [ "/bin/prom-label-proxy" ]',
    ),
)

RATELIMIT = ImageContract(
    image=versions.RATELIMIT_IMAGE,
    user="nonroot",
    uid=65532,
    users={65532: ("nonroot", "/home/nonroot")},  # distroless's nonroot variant
    home="/home/nonroot",
    entrypoint=("/bin/ratelimit",),
    programs=("ratelimit",),
    python=False,
    calls_getuser=False,
    writes=(),  # reads its configuration from the mounted ConfigMap; counters in the store
    read_only_root=None,
    sources=(
        "envoyproxy/ratelimit Dockerfile at f2fb157: FROM gcr.io/distroless/static-debian12:nonroot, "
        'COPY ... /bin/ratelimit, ENTRYPOINT ["/bin/ratelimit"] (no USER: the nonroot base runs as 65532)',
    ),
)

VALKEY = ImageContract(
    image=versions.VALKEY_IMAGE,
    user="valkey",
    uid=999,
    users={999: ("valkey", "/home/valkey")},
    home="/home/valkey",
    entrypoint=("docker-entrypoint.sh",),
    programs=("valkey-server",),
    python=False,
    calls_getuser=False,
    # WORKDIR /data (VOLUME): with --save "" and --appendonly no nothing is written there, but it stays a volume.
    writes=(Write("/data", None, "the working directory (snapshots and append-only file, both off)"),),
    read_only_root=None,
    sources=(
        "valkey-io/valkey-container 8.0/debian/Dockerfile (valkey 8.0.2, versions.json; groupadd -g 999 / useradd "
        "-u 999 valkey, WORKDIR /data, ENTRYPOINT docker-entrypoint.sh: as a non-root user it execs its arguments)",
    ),
)

EPP = ImageContract(
    image=versions.EPP_IMAGE,
    user="nonroot",
    uid=65532,
    users={65532: ("nonroot", "/home/nonroot")},  # distroless's nonroot variant
    home="/home/nonroot",
    entrypoint=("/epp",),
    programs=("epp",),
    python=False,
    calls_getuser=False,
    writes=(),  # its serving certificate is generated in memory (pkg/epp/server/runserver.go CreateSelfSignedTLSCertificate)
    read_only_root=None,
    sources=(
        "kubernetes-sigs/gateway-api-inference-extension Dockerfile at v1.5.0: BASE_IMAGE "
        'gcr.io/distroless/static:nonroot, COPY --from=builder /epp /epp, ENTRYPOINT ["/epp"] (no USER: the nonroot '
        "base runs as 65532)",
    ),
)

CONTRACTS: dict[str, ImageContract] = {
    c.image: c for c in (VLLM, TRITON, AWS_CLI, MLFLOW, TORCH, POSTGRES, PROM_LABEL_PROXY, RATELIMIT, VALKEY, EPP)
}


def unmirrored(image: str, registry: str | None) -> str:
    """``image`` as pinned: the mirror ``registry`` prefix removed (``components.meta.mirrored`` in reverse)."""
    if registry and image.startswith(registry + "/"):
        path = image[len(registry) + 1 :]
        for pinned in CONTRACTS:
            host, _, rest = pinned.partition("/")
            if rest == path and ("." in host or ":" in host):
                return pinned
        return path
    return image


def contract(image: str, registry: str | None = None) -> ImageContract:
    """The contract of a container's image (mirrored through ``registry`` or not); an Argo parameter reference is the
    tenant's step image. An image the table lacks raises ``KeyError`` naming it."""
    if image.startswith("{{"):
        return TENANT_STEP
    pinned = unmirrored(image, registry)
    if pinned not in CONTRACTS:
        raise KeyError(f"image {image!r} has no runtime contract in config/images.py (known: {', '.join(CONTRACTS)})")
    return CONTRACTS[pinned]
