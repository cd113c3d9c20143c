"""The benchmark client for real: NVIDIA AIPerf (its own venv, .venv-aiperf,
made by `make aiperf`) driven by docker/benchmark/run_benchmarks.py against
`transformers serve` on loopback with a tiny model, DCGM samples from a
loopback stand-in of the Prometheus query API, then `clients.report` on what
they wrote: the same files the Job leaves in the bucket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients.conftest import REPO
from tests.platform_fakes import Platform, platform

AIPERF = Path(os.environ.get("AIPERF_VENV", REPO / ".venv-aiperf")) / "bin" / "aiperf"
SCRIPT = REPO / "docker" / "benchmark" / "run_benchmarks.py"

pytestmark = pytest.mark.skipif(
    not AIPERF.is_file() and not os.environ.get("REQUIRE_AIPERF"),
    reason=f"AIPerf is not installed at {AIPERF}: run `make aiperf`",
)


@pytest.fixture(scope="module")
def benchmarked(server, tiny_models_dir, tmp_path_factory) -> Path:
    """A real matrix run: one fixed case and an SLO probe at one user (the
    search's doubling and bisection over many probes: tests/test_run_benchmarks.py).
    Each AIPerf run costs ~12 s of CPU, so the live run keeps to two."""
    assert AIPERF.is_file(), f"REQUIRE_AIPERF is set but {AIPERF} is missing: run `make aiperf`"
    results = tmp_path_factory.mktemp("benchmarks") / "run"
    model = str(tiny_models_dir["think-tags"])
    with platform() as fake:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OPENAI_"))},
            "BASE_URL": server.removesuffix("/v1"),
            "MODEL": model,
            "TOKENIZER": model,
            "MATRIX": "24x8x2,24x8xslo",
            "RESULT_DIR": str(results),
            "METADATA": "run_id=live model=tiny-think-tags precision=fp8 tp=8 pp=1 ep=8 "
            "gpu=nvidia-b200 gpus=8",
            "PROMPTS_PER_USER": "3",
            # The tiny model stops on its own; trtllm-serve's ignore_eos is not an
            # OpenAI field and transformers serve refuses unknown fields (HTTP 422).
            "EXTRA_INPUTS": "",
            "SLO_TTFT_MS": "60000",
            "SLO_TPOT_MS": "5000",
            "SLO_MAX_CONCURRENCY": "1",
            "PROJECT": "my-a4-project",
            "PROMETHEUS_URL": fake,
            "METADATA_SERVER": fake,
            "DCGM_SELECTOR": 'exported_namespace="deepseek"',
            "DCGM_DELAY_SECONDS": "0",
            "READY_TIMEOUT_SECONDS": "60",
            "AIPERF": str(AIPERF),
            "HF_HOME": str(tmp_path_factory.mktemp("hf")),
        }
        done = subprocess.run(
            [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=400
        )
        queries = len(Platform.queries)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert queries == 3 * 2  # three DCGM metrics for each of the two AIPerf runs
    return results


def test_aiperf_wrote_its_results_and_the_job_its_case_records(benchmarked):
    fixed = benchmarked / "isl24_osl8_c2"
    data = json.loads((fixed / "profile_export_aiperf.json").read_text())
    assert data["aiperf_version"] == "0.13.0"
    assert data["request_count"]["avg"] == 6  # 3 prompts per user x 2 users
    assert data["time_to_first_token"]["p99"] > 0
    case = json.loads((fixed / "case.json").read_text())
    assert case["case"] == {"isl": 24, "osl": 8, "concurrency": 2, "mode": "fixed"}
    assert case["kv_cache"]["note"].endswith("answered HTTP 404")  # transformers serve has none
    slo = json.loads((benchmarked / "isl24_osl8_slo" / "slo.json").read_text())
    assert slo["probes"] == {"1": True} and slo["best"] == 1
    probe = json.loads((benchmarked / "isl24_osl8_slo" / "c1" / "case.json").read_text())
    assert probe["case"]["concurrency"] == 1 and probe["case"]["mode"] == "slo-probe"


def test_the_report_reads_the_real_results(benchmarked, tmp_path):
    plot = tmp_path / "plot.png"
    done = subprocess.run(
        [sys.executable, "-m", "clients.report", str(benchmarked), "--plot", str(plot)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "tiny-think-tags | fp8 | TP8 PP1 EP8 | 8x nvidia-b200 | run live" in text
    lines = [line for line in text.splitlines() if "│" in line and "24/8" in line]
    fixed = [line for line in lines if line.split("│")[2].strip() == "2"]
    assert len(fixed) == 3  # throughput, latency, GPUs
    assert "6/6" in fixed[0]
    # GPU memory and utilization from the DCGM samples (tests/clients/fixtures/dcgm).
    assert "167.8 / 178.3" in fixed[2] and "87.3" in fixed[2] and "95.0" in fixed[2]
    assert "highest concurrency meeting the SLO: 1 user," in " ".join(text.split())
    assert max(len(line) for line in text.splitlines()) <= 80
    assert plot.stat().st_size > 10_000
