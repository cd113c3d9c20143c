"""docker/benchmark/run_benchmarks.py: its pure parts, and its runs against
loopback stand-ins of the server, the metadata server and the query API (the
real AIPerf run is in tests/clients/test_benchmark_live.py)."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.clients.aiperf_results import summary
from tests.platform_fakes import Platform, platform

SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "benchmark" / "run_benchmarks.py"
spec = importlib.util.spec_from_file_location("run_benchmarks", SCRIPT)
rb = importlib.util.module_from_spec(spec)
sys.modules["run_benchmarks"] = rb
spec.loader.exec_module(rb)


def test_matrix_cases_and_their_folders():
    assert rb.parse_matrix("512x128x8, 1024x1024xslo") == [
        rb.Case(512, 128, 8),
        rb.Case(1024, 1024, None),
    ]
    assert [c.name for c in rb.parse_matrix("512x128x8,1024x2048xslo")] == [
        "isl512_osl128_c8",
        "isl1024_osl2048_slo",
    ]


def test_aiperf_runs_nvidias_methodology(tmp_path):
    env = {
        "BASE_URL": "http://server:8000/",
        "MODEL": "DeepSeek-R1-0528",
        "TOKENIZER": "/models/deepseek-ai/DeepSeek-R1-0528",
        "PROMPTS_PER_USER": "5",
        "EXTRA_INPUTS": "ignore_eos:true",
    }
    args = rb.aiperf_args(["aiperf"], env, 1024, 2048, 8, tmp_path)
    assert args[:2] == ["aiperf", "profile"]
    for flag in (
        "--model=DeepSeek-R1-0528",
        "--tokenizer=/models/deepseek-ai/DeepSeek-R1-0528",
        "--url=http://server:8000",
        "--streaming",
        "--synthetic-input-tokens-mean=1024",
        "--synthetic-input-tokens-stddev=0",
        "--output-tokens-mean=2048",
        "--output-tokens-stddev=0",
        "--concurrency=8",
        "--request-count=40",  # 5 x concurrency
        "--warmup-request-count=8",  # one per user, not counted
        "--use-server-token-count",
        f"--artifact-dir={tmp_path}",
    ):
        assert flag in args, flag
    assert args[-2:] == ["--extra-inputs", "ignore_eos:true"]
    assert "--extra-inputs" not in rb.aiperf_args(
        ["aiperf"], {**env, "EXTRA_INPUTS": ""}, 1, 1, 1, tmp_path
    )


def search(limit: int, ceiling: int = 512) -> tuple[list[int], int | None]:
    """The probes next_probe asks for when concurrencies up to `limit` meet the SLO."""
    outcomes: dict[int, bool] = {}
    while (c := rb.next_probe(outcomes, ceiling)) is not None:
        outcomes[c] = c <= limit
    return list(outcomes), max((c for c, ok in outcomes.items() if ok), default=None)


def test_the_slo_search_doubles_then_bisects():
    assert search(37) == ([1, 2, 4, 8, 16, 32, 64, 48, 40, 36], 36)
    assert search(3) == ([1, 2, 4, 3], 3)
    assert search(0) == ([1], None)  # not even one user meets it
    assert search(600) == ([1, 2, 4, 8, 16, 32, 64, 128, 256, 512], 512)  # the ceiling
    assert search(37, ceiling=40) == ([1, 2, 4, 8, 16, 32, 40, 36, 38, 37], 37)


def test_the_slo_holds_p99_ttft_and_tpot_and_no_errors():
    ok = summary(1000.0, 50.0, ttft_p99_ms=1900.0, tpot_p99_ms=79.0)
    assert rb.meets_slo(ok, 2000, 80)
    assert not rb.meets_slo(summary(1000.0, 50.0, ttft_p99_ms=2100.0, tpot_p99_ms=79.0), 2000, 80)
    assert not rb.meets_slo(summary(1000.0, 50.0, ttft_p99_ms=1900.0, tpot_p99_ms=81.0), 2000, 80)
    assert not rb.meets_slo(
        summary(1000.0, 50.0, ttft_p99_ms=1900.0, tpot_p99_ms=79.0, errors=1), 2000, 80
    )


TRTLLM_STATS = [  # trtllm-serve /metrics: a list of iteration stats (its docs' example keys)
    {
        "iter": 154,
        "kvCacheStats": {"maxNumBlocks": 1000, "usedNumBlocks": 250, "tokensPerBlock": 32},
    },
    {
        "iter": 155,
        "kvCacheStats": {"maxNumBlocks": 1000, "usedNumBlocks": 300, "tokensPerBlock": 32},
    },
]


def test_kv_cache_use_is_polled_from_the_servers_iteration_stats():
    with platform() as url:
        Platform.iteration_stats = list(TRTLLM_STATS)
        poller = rb.KvCachePoller(f"{url}/metrics")
        poller.poll()
        poller.poll()  # the server hands each stat out once
    assert [row[1:] for row in poller.record()["samples"]] == [[250.0, 1000.0], [300.0, 1000.0]]


def test_no_iteration_stats_says_which_setting_turns_them_on():
    with platform() as url:
        poller = rb.KvCachePoller(f"{url}/metrics")
        poller.poll()
        assert "enable_iter_perf_stats" in poller.record()["note"]
        poller = rb.KvCachePoller(f"{url}/nothing")
        poller.poll()
        assert poller.record()["note"] == f"{url}/nothing answered HTTP 404"


def test_dcgm_samples_come_from_the_query_api_with_the_pods_token():
    with platform() as url:
        env = {
            "PROJECT": "my-a4-project",
            "PROMETHEUS_URL": url,
            "METADATA_SERVER": url,
            "DCGM_SELECTOR": 'exported_namespace="deepseek",exported_pod=~"dsr1-trtllm-serve-.*"',
        }
        record = rb.dcgm_samples(env, 1795878800.0, 1795878860.0)
        assert Platform.token_requests == 1
        queries = list(Platform.queries)
    assert [q["query"] for q in queries] == [
        'DCGM_FI_DEV_FB_USED{exported_namespace="deepseek",exported_pod=~"dsr1-trtllm-serve-.*"}',
        'DCGM_FI_DEV_FB_FREE{exported_namespace="deepseek",exported_pod=~"dsr1-trtllm-serve-.*"}',
        'DCGM_FI_DEV_GPU_UTIL{exported_namespace="deepseek",exported_pod=~"dsr1-trtllm-serve-.*"}',
    ]
    assert (queries[0]["start"], queries[0]["end"], queries[0]["step"]) == (
        "1795878800.000",
        "1795878860.000",
        "15s",
    )
    used = record["samples"]["memory_used_mib"]
    assert len(used) == 32  # 8 GPUs x 4 samples
    assert {row[1] for row in used} == {str(g) for g in range(8)}
    assert max(row[2] for row in used) == 170000.0
    assert "note" not in record


def test_the_real_query_api_address_and_failures_are_explained():
    assert rb.PROMETHEUS_URL.format(project="p") == (
        "https://monitoring.googleapis.com/v1/projects/p/location/global/prometheus"
    )
    assert rb.dcgm_samples({}, 0, 1) == {"note": "PROJECT not set: no GPU metrics"}
    with platform() as url:
        env = {"PROJECT": "p", "PROMETHEUS_URL": url, "METADATA_SERVER": url + "/nope"}
        record = rb.dcgm_samples(env, 0, 1)
    assert record["note"].startswith("cannot read DCGM metrics: HTTPError")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_waits_while_the_port_refuses_then_through_503(monkeypatch):
    port = free_port()
    original_sleep = time.sleep
    monkeypatch.setattr(rb.time, "sleep", lambda s: original_sleep(0.02))
    started = threading.Event()

    def later():
        original_sleep(0.3)  # connection refused until then, as while the model loads
        with platform(port):
            Platform.health = [503, 503, 200]
            started.set()
            original_sleep(2)

    threading.Thread(target=later, daemon=True).start()
    rb.wait_until_ready(f"http://127.0.0.1:{port}", timeout=10, poll=0.02)
    assert started.is_set() and Platform.health == [200]


def test_a_server_that_never_gets_ready_times_out():
    with pytest.raises(TimeoutError, match="did not answer 200"):
        rb.wait_until_ready(f"http://127.0.0.1:{free_port()}", timeout=0.05, poll=0.01)


def fake_aiperf(outcomes: dict[int, dict | None]):
    """Stands in for `aiperf profile`: writes the summary chosen for its concurrency."""
    calls = []

    def run(args, check):
        calls.append(args)
        concurrency = int(next(a for a in args if a.startswith("--concurrency=")).split("=")[1])
        folder = Path(next(a for a in args if a.startswith("--artifact-dir=")).split("=", 1)[1])
        data = outcomes.get(concurrency)
        if data is None:
            return SimpleNamespace(returncode=1)
        (folder / "profile_export_aiperf.json").write_text(json.dumps(data))
        return SimpleNamespace(returncode=0)

    return run, calls


def test_a_matrix_run_writes_cases_searches_the_slo_and_adds_gpu_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(rb.time, "sleep", lambda s: None)
    good = summary(1000.0, 50.0, ttft_p99_ms=1500.0, tpot_p99_ms=70.0)
    slow = summary(1500.0, 90.0, ttft_p99_ms=2500.0, tpot_p99_ms=95.0)
    runner, calls = fake_aiperf({8: good, 1: good, 2: good, 4: slow, 3: good})
    with platform() as url:
        Platform.iteration_stats = list(TRTLLM_STATS)
        env = {
            "BASE_URL": url,
            "MODEL": "m",
            "TOKENIZER": "t",
            "MATRIX": "512x128x8,1024x1024xslo",
            "RESULT_DIR": str(tmp_path / "run"),
            "METADATA": "run_id=abc precision=fp8",
            "SLO_MAX_CONCURRENCY": "4",
            "PROJECT": "my-a4-project",
            "PROMETHEUS_URL": url,
            "METADATA_SERVER": url,
            "DCGM_SELECTOR": 'x="y"',
        }
        assert rb.Benchmark(env, runner).run() == 0
    run = tmp_path / "run"
    assert [int(a.split("=")[1]) for c in calls for a in c if a.startswith("--concurrency=")] == [
        8, 1, 2, 4, 3,
    ]  # fmt: skip
    fixed = json.loads((run / "isl512_osl128_c8" / "case.json").read_text())
    assert fixed["metadata"] == {"run_id": "abc", "precision": "fp8"}
    assert fixed["case"] == {"isl": 512, "osl": 128, "concurrency": 8, "mode": "fixed"}
    assert fixed["window"]["start"] <= fixed["window"]["end"]
    assert len(fixed["gpu"]["samples"]["gpu_utilization_pct"]) == 32
    slo = json.loads((run / "isl1024_osl1024_slo" / "slo.json").read_text())
    assert slo == {
        "slo": {"ttft_p99_ms": 2000.0, "tpot_p99_ms": 80.0},
        "probes": {"1": True, "2": True, "3": True, "4": False},
        "best": 3,
    }
    best = json.loads((run / "isl1024_osl1024_slo" / "c3" / "case.json").read_text())
    assert best["case"]["slo_best"] is True and best["case"]["slo_met"] is True
    failed = json.loads((run / "isl1024_osl1024_slo" / "c4" / "case.json").read_text())
    assert failed["case"]["slo_met"] is False and "slo_best" not in failed["case"]


def test_a_failing_case_is_reported_and_the_rest_still_run(tmp_path, capsys):
    runner, calls = fake_aiperf({1: summary(100.0, 5.0)})
    with platform() as url:
        env = {"BASE_URL": url, "MODEL": "m", "TOKENIZER": "t",
               "MATRIX": "512x128x8,1024x1024x1", "RESULT_DIR": str(tmp_path)}  # fmt: skip
        assert rb.Benchmark(env, runner).run() == 1
    assert len(calls) == 2
    assert "failed cases: isl512_osl128_c8" in capsys.readouterr().err
    assert (
        json.loads((tmp_path / "isl512_osl128_c8" / "case.json").read_text())["aiperf_exit_code"]
        == 1
    )
