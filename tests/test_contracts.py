"""Contracts across module boundaries: what one part writes, the next one reads.

Each test takes one side's real output (the plan's rendered objects) and runs
the real consumer on it:
- benchmark Job env -> docker/run_benchmarks.py -> result files as
  benchmark_serving saves them -> clients/report.py;
- weights Job env -> docker/fetch_weights.py's marker -> docker/serve.sh
  waiting with the serving pod's env;
- the benchmark Job reads the checkpoint and asks for the model the server serves.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from rich.console import Console

from clients import report
from plan.runner import REPO
from tests.clients.benchmark_results import result
from tests.conftest import plan_of


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "docker" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_benchmarks = _script("run_benchmarks")
fetch_weights = _script("fetch_weights")


def _containers(plan, kind: str, name: str, group: str = "containers") -> list[dict]:
    return plan.one(f"kubernetes:{kind}", name).inputs["spec"]["template"]["spec"][group]


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _flag(args: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return value


class BenchmarkServing:
    """Stands in for `python -m tensorrt_llm.serve.scripts.benchmark_serving`:
    a measured round (--save-result) writes its result file, with each
    `--metadata KEY=VALUE` stored as a top-level key the way the source does it
    (`kvstring = item.split("=")`, both sides stripped)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str], check: bool) -> SimpleNamespace:
        self.calls.append(args)
        if "--save-result" in args:
            isl, osl = int(_flag(args, "random-input-len")), int(_flag(args, "random-output-len"))
            concurrency = int(_flag(args, "max-concurrency"))
            data = result(isl, osl, concurrency, 2000.0, 5.0)
            data["num_prompts"] = int(_flag(args, "num-prompts"))
            for item in args[args.index("--metadata") + 1 :]:
                key, value = item.split("=")[:2]
                data[key.strip()] = value.strip()
            folder = Path(_flag(args, "result-dir"))
            (folder / _flag(args, "result-filename")).write_text(json.dumps(data))
        return SimpleNamespace(returncode=0)


def run_the_benchmark_job(plan, tmp_path: Path, monkeypatch) -> tuple[dict[str, str], Path]:
    """docker/run_benchmarks.py with the benchmark Job's environment, results in tmp_path."""
    env = _env(_containers(plan, "batch/v1:Job", "benchmark")[0])
    results = tmp_path / env["RESULT_DIR"].lstrip("/")
    waited: list[str] = []
    monkeypatch.setattr(run_benchmarks, "wait_until_ready", lambda url, timeout: waited.append(url))
    assert run_benchmarks.run({**env, "RESULT_DIR": str(results)}, BenchmarkServing()) == 0
    assert waited == [env["BASE_URL"]]
    return env, results


def render(source: Path) -> tuple[int, str]:
    console = Console(record=True, width=250)
    code = report.main([str(source)], console=console)
    return code, console.export_text()


def test_the_report_shows_the_setup_the_benchmark_job_ran(tmp_path, monkeypatch):
    plan = plan_of("dev")
    env, results = run_the_benchmark_job(plan, tmp_path, monkeypatch)
    run = env["RESULT_DIR"].removeprefix("/results/")
    code, text = render(results)
    assert code == 0
    assert (
        f"DeepSeek-R1-0528 | precision fp8 | TP8 PP1 EP8 | profile latency | 8x nvidia-b200 "
        f"| run {run}"
    ) in text
    # Every case of the matrix, its shape read from the metadata (`~` marks an estimate).
    rows = [[c.strip() for c in line.split("│")] for line in text.splitlines()]
    for isl, osl, users in ((512, 128, 1), (512, 128, 8), (1024, 256, 8), (1024, 1024, 64)):
        found = [r for r in rows if f"{isl}/{osl}" in r and str(users) in r]
        assert len(found) == 2, f"{isl}/{osl} x {users}: no throughput and latency row\n{text}"
        # NVIDIA's 5 prompts per concurrent user, all completed.
        assert f"{5 * users}/{5 * users}" in found[0], found[0]


def test_nvidias_published_figure_is_matched_for_the_same_gpu_precision_and_shape(
    tmp_path, monkeypatch
):
    """The Job's gpu and precision keys are the ones the report's published table uses."""
    plan = plan_of("dev", model="nvfp4", benchmarkMatrix=["1024x2048x1"])
    _, results = run_the_benchmark_job(plan, tmp_path, monkeypatch)
    code, text = render(results)
    assert code == 0
    assert "368 tok/s/user (NVIDIA tech blog, TP8/EP2 MTP3)" in text


def test_metadata_survives_benchmark_servings_key_value_parsing():
    """benchmark_serving splits each item at `=` and keeps two parts; the Job's
    METADATA is split at whitespace: no value may hold either."""
    for stack, overrides in (("dev", {}), ("dev", {"model": "nvfp4"}), ("prod", {})):
        plan = plan_of(stack, **{"benchmarkEnabled": True, **overrides})
        metadata = _env(_containers(plan, "batch/v1:Job", "benchmark")[0])["METADATA"]
        pairs = metadata.split()
        assert all(pair.count("=") == 1 for pair in pairs), pairs
        keys = [pair.split("=")[0] for pair in pairs]
        assert set(report.METADATA_KEYS) - {"isl", "osl", "concurrency"} <= set(keys)


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


def test_the_server_starts_once_the_weights_job_has_marked_its_copy_complete(tmp_path):
    plan = plan_of("dev")
    job = _env(_containers(plan, "batch/v1:Job", "fetch-weights")[0])
    (init,) = _containers(plan, "apps/v1:Deployment", "server", "initContainers")
    root = tmp_path / "models"  # the bucket's models/ folder, as both pods mount it

    def hub(**kwargs):
        Path(kwargs["local_dir"], "model.safetensors").write_text("w")

    target = root / job["MODEL_ID"]
    assert fetch_weights.fetch(job["MODEL_ID"], job["MODEL_REVISION"], target, 1, 1, hub) == 0

    env = {**os.environ, **_env(init), "MODEL_ROOT": str(root), "POLL_SECONDS": "1"}
    assert init["command"][0] == "/opt/deepseek/serve.sh"
    waited = subprocess.run(
        ["bash", str(REPO / "docker" / "serve.sh"), *init["command"][1:]],
        env={**env, "WEIGHTS_WAIT_SECONDS": "0"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert waited.returncode == 0, waited.stderr


@pytest.mark.parametrize("model", ["fp8", "nvfp4"])
def test_the_weights_job_and_the_server_agree_on_the_checkpoint(model):
    plan = plan_of("dev", model=model)
    job = _env(_containers(plan, "batch/v1:Job", "fetch-weights")[0])
    server = _env(_containers(plan, "apps/v1:Deployment", "server")[0])
    for key in ("MODEL_ID", "MODEL_REVISION", "MODEL_ROOT"):
        assert job[key] == server[key], key
