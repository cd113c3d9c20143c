"""Contracts across module boundaries: what one part writes, the next one reads.

Each test takes one side's real output (the plan's rendered objects) and runs
the real consumer on it:
- the benchmark Job reads the checkpoint and asks for the model the server serves.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

from plan.runner import REPO
from tests.conftest import plan_of


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "docker" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _containers(plan, kind: str, name: str, group: str = "containers") -> list[dict]:
    return plan.one(f"kubernetes:{kind}", name).inputs["spec"]["template"]["spec"][group]


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _flag(args: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return value


def test_the_benchmark_tokenizes_with_the_served_checkpoint_and_asks_for_its_name():
    plan = plan_of("dev", model="nvfp4")
    server = _env(_containers(plan, "apps/v1:Deployment", "server")[0])
    job = _containers(plan, "batch/v1:Job", "benchmark")[0]
    env = _env(job)
    # trtllm-serve names a local checkpoint after its folder (serve.sh serves
    # $MODEL_ROOT/$MODEL_ID), and that is the name /v1/models reports.
    assert env["MODEL"] == server["MODEL_ID"].rsplit("/", 1)[1] == "DeepSeek-R1-0528-FP4-v2"
    assert env["TOKENIZER"] == f"{server['MODEL_ROOT']}/{server['MODEL_ID']}"
    mounts = {m["name"]: m["mountPath"] for m in job["volumeMounts"]}
    assert mounts["models"] == server["MODEL_ROOT"]
