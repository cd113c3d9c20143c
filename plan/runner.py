"""Run the real Pulumi program in-process under mocks, for a stack file.

This is how both the offline plan and the tests execute `__main__.py`: fresh
each time (`runpy`), with config taken from `Pulumi.<stack>.yaml` the way the
CLI would pass it, every resource registration and every `apply` executed
(`preview=False`), and every registration captured with its options.
Every plan is then checked against the platform's documented preconditions
(plan/platform.py): a plan the real platform would refuse raises PlatformError.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import runpy
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import Stack, run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from infra.values import Secret
from plan import platform
from plan.mocks import CapturingMonitor, Invocation, PlanMocks, Registration

REPO = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["name"]
# What the plan gives a program for a secret it cannot decrypt.
SECRET_PLACEHOLDER = "plan-placeholder-secret"
_imports_frozen = False


@dataclass
class PlanResult:
    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]
    messages: list[tuple[str, str]] = field(default_factory=list)
    # Each data-source call: unpacks as (token, arguments, provider reference),
    # with `.depends_on` and `.result` (plan/mocks.py Invocation).
    invokes: list[Invocation] = field(default_factory=list)
    # Values the mocks invented that only apply would know: value -> meaning.
    invented: dict[str, str] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Registration:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(typ)]
            raise AssertionError(f"expected one {typ} named {name!r}, found {names}")
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    @property
    def warnings(self) -> list[str]:
        return [m for level, m in self.messages if level == "warning"]


def read_stack_file(stack: str, repo: Path = REPO) -> tuple[dict[str, Any], list[str]]:
    """The stack file's own config: (values keyed `<project>:<key>`, secret keys)."""
    path = repo / f"Pulumi.{stack}.yaml"
    if not path.exists():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in repo.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(
            f"no stack file {path.name}; stacks here: {', '.join(stacks)}. To make one: "
            f"`pulumi stack init {stack}`, then `pulumi config set project ...` and the other "
            f"required settings (README.md, Deploy for real); or copy a stack file: "
            f"cp Pulumi.{stacks[0] if stacks else 'dev'}.yaml {path.name}"
        )
    document = yaml.safe_load(path.read_text()) or {}
    values: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            # Encrypted with the stack's secrets provider: a plan cannot read it.
            value = SECRET_PLACEHOLDER
            secret_keys.append(key)
        values[key] = value
    return values, secret_keys


def _as_cli_string(value: Any) -> str:
    """Config values as the CLI hands them to a program: strings, JSON for lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname.lower(), record.getMessage()))


def run(
    stack: str = "dev",
    overrides: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    repo: Path = REPO,
    use_stack_file: bool = True,
    monitor: CapturingMonitor | None = None,
    strict: bool = True,
) -> PlanResult:
    """Execute `__main__.py` for `stack` under mocks and return what it registered.

    `overrides` and `secrets` are bare keys (`nodeCount`), applied over the
    stack file; `secrets` are passed as secret config, as `pulumi config set
    --secret` would. A key mapped to None is removed. Pass `monitor` to see
    what was registered when the program raises. With `strict` (the default)
    a plan that breaks a platform rule raises `platform.PlatformError`.
    """
    config, secret_keys = read_stack_file(stack, repo) if use_stack_file else ({}, [])
    for key, value in (overrides or {}).items():
        # `nodeCount` or, as `pulumi config set` also takes them, `a4-deepseek:nodeCount`
        # and other namespaces' keys (`gcp:project`, which the program ignores).
        full = key if ":" in key else f"{PROJECT}:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    for key, value in (secrets or {}).items():
        config[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")

    pulumi.runtime.set_all_config(
        {k: _as_cli_string(v) for k, v in config.items()}, secret_keys=secret_keys
    )
    monitor = monitor or CapturingMonitor(PlanMocks())
    handler = _ListHandler()
    logger = logging.getLogger(f"plan.{stack}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)

    pulumi_settings.ROOT.set(None)  # a fresh root stack for every run
    pulumi.runtime.set_mocks(
        monitor.mocks, project=PROJECT, stack=stack, preview=False, logger=logger, monitor=monitor
    )
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))

    def program() -> None:
        runpy.run_path(str(repo / "__main__.py"), run_name="__main__")

    try:
        with _no_cyclic_collections(), _no_source_positions():
            _sync_await(run_pulumi_func(program))
    except BaseException:
        _drain_event_loop()
        raise
    root = pulumi_settings.get_root_resource()
    assert isinstance(root, Stack)
    outputs = _resolve_outputs(root.outputs)
    result = PlanResult(
        stack,
        monitor.registrations,
        outputs,
        handler.records,
        monitor.invokes,
        monitor.mocks.invented,
    )
    if strict:
        violations = platform.check(result)
        if violations:
            raise platform.PlatformError(violations)
    return result


def _drain_event_loop() -> None:
    """Finish what a failed program left running (outputs that depend on the
    one that raised), so that the next run in this process starts clean."""
    # The SDK keeps the apply tasks it awaits at the end of a run in a
    # process-wide set; a failed run leaves them there for the next one.
    settings = pulumi_settings.SETTINGS
    with settings.lock:
        settings.outputs.clear()
    loop = _ensure_event_loop()
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


@contextlib.contextmanager
def _no_cyclic_collections() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a run, then freeze what it imported.

    The first run imports the SDK modules the program uses (`pulumi_gcp.compute`
    alone is ~290 modules, millions of objects), and the collector walked them
    over and over during the import, then once more at interpreter exit: about
    40% of a whole `python -m plan` process (`benchmarks/plan_speed.py`).
    Nothing a run creates needs collecting before it ends. After the first run,
    `gc.freeze()` moves everything alive (the SDK modules, and once the first
    run's garbage) out of later collections.
    """
    global _imports_frozen
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        if not _imports_frozen:
            _imports_frozen = True
            gc.freeze()


@contextlib.contextmanager
def _no_source_positions() -> Iterator[None]:
    """Skip the stack capture the SDK makes for every registration during a run.

    The SDK sends the engine each resource's source position (the Python stack
    at its constructor, `pulumi/runtime/resource.py` `_get_stack_trace`); only the
    CLI's display reads it, never the mocks or the plan. Capturing it walks and
    reads every frame's source line: about a quarter of an in-process run.
    """
    capture = pulumi_resource._get_stack_trace
    pulumi_resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        pulumi_resource._get_stack_trace = capture


def _resolve_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    async def resolve() -> dict[str, Any]:
        resolved = {}
        for name, value in outputs.items():
            output = pulumi.Output.from_input(value)
            plain = await output.future()
            secret = await output.is_secret()
            resolved[name] = Secret(plain) if secret else plain
        return resolved

    return _sync_await(resolve())
