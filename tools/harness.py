"""Run the real Pulumi program (``__main__.py``) in-process under ``pulumi.runtime.set_mocks``.

Used by the tests, the offline renderer and the benchmark. It records every resource registration as the
engine would see it (type, name, inputs, parent, dependencies, provider), and emulates two engine
behaviours the SDK's mocks leave out:
- ``secure:`` config values cannot be decrypted without the CLI: each is replaced by ``CANARY`` marked
  secret, so a leak test can search every registered input and export for the canary;
- ``additional_secret_outputs`` (e.g. ``RandomPassword.result``) come back marked secret;
- URNs are the engine's (``engine_urn``): the SDK's mock monitor leaves out the grandparents' types and adds the
  root stack's, so its URNs are not the ones ``pulumi stack --show-urns`` prints and aliases name.
Secret values are recorded as ``[secret]``: whatever else contains ``CANARY`` leaked in clear.
"""

from __future__ import annotations

import functools
import json
import runpy
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "ai-platform"
CANARY = "canary-secret-value-5b1f0e"
SECRET = "[secret]"


@dataclass
class Registered:
    """One resource registration as the engine received it."""

    urn: str
    type: str
    name: str
    inputs: dict
    parent: str
    dependencies: list[str]
    provider: str
    custom: bool
    protect: bool = False
    retain_on_delete: bool = False
    aliases: list = field(default_factory=list)
    input_bytes: int = 0
    """Size of the serialized inputs (what the SDK sent)."""

    @property
    def kind(self) -> str | None:
        return self.inputs.get("kind")

    @property
    def k8s_name(self) -> str | None:
        return (self.inputs.get("metadata") or {}).get("name")

    @property
    def namespace(self) -> str | None:
        return (self.inputs.get("metadata") or {}).get("namespace")

    @property
    def is_kubernetes_object(self) -> bool:
        """A Kubernetes object (not a Helm release, provider or component)."""
        return self.custom and self.type.startswith("kubernetes:") and "apiVersion" in self.inputs


@dataclass
class Run:
    """What one run of the program registered and exported, or the error it stopped with."""

    stack: str
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def of_kind(self, kind: str) -> list[Registered]:
        return [r for r in self.resources if r.is_kubernetes_object and r.kind == kind]

    def one(self, kind: str, name: str, namespace: str | None = None) -> Registered:
        found = [r for r in self.of_kind(kind) if r.k8s_name == name and r.namespace == namespace]
        assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
        return found[0]

    @property
    def releases(self) -> list[Registered]:
        return [r for r in self.resources if r.type == "kubernetes:helm.sh/v3:Release"]

    @property
    def objects(self) -> list[Registered]:
        return [r for r in self.resources if r.is_kubernetes_object]

    @property
    def registered_beyond_stack(self) -> list[Registered]:
        return [r for r in self.resources if r.type != "pulumi:pulumi:Stack"]


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The ``config:`` mapping of ``Pulumi.<stack>.yaml`` as Python values (``secure:`` entries kept)."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack file {path.name} (stacks: {', '.join(stacks)})")
    return (yaml.load(path.read_text(), Loader=yaml.CSafeLoader) or {}).get("config") or {}


def _engine_config(config: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Config as the engine passes it: strings, structured values JSON-encoded, secrets as the canary."""
    values, secret_keys = {}, []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key], secret_keys = CANARY, secret_keys + [key]
        elif isinstance(value, (dict, list)):
            values[key] = json.dumps(value)
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        else:
            values[key] = str(value)
    return values, secret_keys


def _plain(value: Any) -> Any:
    """Wire values to plain Python: secrets to ``[secret]``, integral floats (protobuf numbers) to ints."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET
        return {k: _plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def engine_urn(stack: str, project: str, parent: str | None, type_: str, name: str) -> str:
    """The URN the engine gives a resource: its parent's type chain (none under the root stack), type and name."""
    parent_type = parent.split("::")[2] if parent else ""
    qualified = f"{parent_type}${type_}" if parent_type and parent_type != "pulumi:pulumi:Stack" else type_
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs, secret_outputs: Iterable[str] = ()):
        """The resource's state: its inputs, a generated password's ``result``, ``secret_outputs`` marked secret."""
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"generated-{args.name}"
        for key in secret_outputs:
            if key in state:
                state[key] = {rpc._special_sig_key: rpc._special_secret_sig, "value": state[key]}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mock: _Mocks, run: Run, compact: bool = False):
        super().__init__(mock)
        self.run = run
        self.compact = compact

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return engine_urn(pulumi.get_stack(), pulumi.get_project(), parent, type_, name)

    def RegisterResource(self, request):
        """``MockMonitor.RegisterResource`` (transforms aside: they do not run under mocks), inputs deserialized once
        for the mocks and the record, and echoed back as sent when the mocks return them unchanged. ``compact``:
        record no inputs or aliases and keep no state (what a benchmark needs)."""
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            inputs, response = {}, resource_pb2.RegisterResourceResponse(urn=urn)
        else:
            _ensure_event_loop()  # deserializing resource references needs an event loop on this thread
            inputs = rpc.deserialize_properties(request.object)
            args = pulumi.runtime.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=inputs,
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom or False,
            )
            id_, state = self.mocks.new_resource(args, request.additionalSecretOutputs)
            if not self.compact:
                self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, state)
            state_struct = request.object if state == inputs else _sync_await(rpc.serialize_properties(state, {}))
            response = resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=state_struct)
        self.run.resources.append(
            Registered(
                urn=urn,
                type=request.type,
                name=request.name,
                inputs={} if self.compact else _plain(inputs),
                parent=request.parent,
                dependencies=sorted(set(request.dependencies)),
                provider=request.provider,
                custom=request.custom,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                input_bytes=request.object.ByteSize(),
                aliases=[]
                if self.compact
                else [json_format.MessageToDict(alias) for alias in request.aliases] + list(request.aliasURNs),
            )
        )
        return response


@contextmanager
def stack_folder(stacks: Path) -> Iterator[None]:
    """While the program runs, ``config.load`` reads ``stacks``' stack files (for line numbers) and ``stacks/state``
    (the strict removal check's snapshots) instead of the project folder's."""
    from config import loader, removals

    if stacks.resolve() == loader.PROJECT:
        yield
        return
    project, check = loader.PROJECT, loader.removal_problems
    loader.PROJECT = stacks
    loader.removal_problems = functools.partial(removals.removal_problems, snapshots=stacks / "state")
    try:
        yield
    finally:
        loader.PROJECT, loader.removal_problems = project, check


def run(
    stack: str,
    config: dict[str, Any] | None = None,
    root: Path = ROOT,
    program: Callable[[], Any] | None = None,
    compact: bool = False,
    stacks: Path | None = None,
) -> Run:
    """Run the program for a stack file (or for ``config``, a stack file's ``config:`` mapping).

    ``stacks``: the folder of the stack file ``Pulumi.<stack>.yaml`` and of its snapshot ``state/<stack>.json``
    (default ``root``, the project folder); the tests' fixture stacks and a copied project live elsewhere.
    ``program`` replaces ``__main__.py`` (the benchmark's SDK floor runs under the same mocks and monitor);
    ``compact`` records each registration without its inputs (``_RecordingMonitor``)."""
    stacks = root if stacks is None else stacks
    config = stack_config(stack, stacks) if config is None else config
    result = Run(stack)
    values, secret_keys = _engine_config(config)
    settings.reset_options()
    mock = _Mocks()
    pulumi.runtime.set_mocks(
        mock, project=PROJECT, stack=stack, preview=False, monitor=_RecordingMonitor(mock, result, compact)
    )
    set_all_config(values, secret_keys)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    program = program or (lambda: runpy.run_path(str(root / "__main__.py"), run_name="__main__"))
    try:  # with the interpreter's settings as they are: the program sets its own (components/interpreter.py)
        with stack_folder(stacks):
            _sync_await(run_pulumi_func(program))
    except Exception as error:  # noqa: BLE001 - the caller decides what a failed run means
        result.error = error
        return result
    result.outputs = _resolve_outputs()
    return result


def _resolve_outputs() -> dict[str, Any]:
    outputs = {}
    for name, value in settings.get_root_resource().outputs.items():
        output = pulumi.Output.from_input(value)
        outputs[name] = SECRET if _sync_await(output.is_secret()) else _sync_await(output.future())
    return outputs
