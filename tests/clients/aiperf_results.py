"""Benchmark results as the benchmark Job writes them, for report tests.

`fixtures/aiperf_profile_export.json` is a real `profile_export_aiperf.json`
(aiperf 0.13.0 against `transformers serve` with a tiny model; local paths
replaced); `summary()` copies it and sets the figures a test needs, keeping
AIPerf's key set and stat layout. `case()` builds the Job's case.json
(docker/benchmark/run_benchmarks.py) around DCGM samples in the answer format
of the Prometheus query API (`fixtures/dcgm/*.json`, built in that format:
no cluster is reachable here).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
REAL = json.loads((FIXTURES / "aiperf_profile_export.json").read_text())
DCGM_KEYS = {
    "memory_used_mib": "DCGM_FI_DEV_FB_USED",
    "memory_free_mib": "DCGM_FI_DEV_FB_FREE",
    "gpu_utilization_pct": "DCGM_FI_DEV_GPU_UTIL",
}


def _set(summary: dict, metric: str, avg: float, p99: float | None = None) -> None:
    entry = summary[metric]
    entry["avg"] = avg
    if p99 is not None:
        for stat in ("p50", "p90", "p99", "max"):
            if stat in entry:
                entry[stat] = {"p50": avg * 0.98, "p90": avg * 1.2}.get(stat, p99)


def summary(
    output_tps: float,
    tpot_ms: float,
    ttft_ms: float = 250.0,
    *,
    completed: int = 40,
    errors: int = 0,
    ttft_p99_ms: float | None = None,
    tpot_p99_ms: float | None = None,
) -> dict[str, Any]:
    data = copy.deepcopy(REAL)
    _set(data, "output_token_throughput", output_tps)
    _set(data, "total_token_throughput", output_tps * 2)
    _set(data, "request_count", completed)
    if errors:
        data["error_request_count"] = {"unit": "requests", "avg": float(errors)}
    _set(data, "output_token_throughput_per_user", 1000.0 / tpot_ms, 1000.0 / tpot_ms)
    _set(data, "time_to_first_token", ttft_ms, ttft_p99_ms or ttft_ms * 1.5)
    _set(data, "inter_token_latency", tpot_ms, tpot_p99_ms or tpot_ms * 1.5)
    _set(data, "inter_chunk_latency", tpot_ms * 0.9, tpot_ms * 3)
    _set(data, "request_latency", ttft_ms + 1000 * tpot_ms, (ttft_ms + 1000 * tpot_ms) * 1.5)
    return data


def job_metadata(**overrides: str) -> dict[str, str]:
    """What the benchmark Job passes in METADATA (workloads/benchmark.py)."""
    pairs = {
        "run_id": "b9c85acbb3b2",
        "model": "DeepSeek-R1-0528",
        "checkpoint": "deepseek-ai/DeepSeek-R1-0528",
        "precision": "fp8",
        "profile": "latency",
        "tp": "8",
        "pp": "1",
        "ep": "8",
        "max_seq_len": "40960",
        "gpu": "nvidia-b200",
        "gpus": "8",
        "machine": "a4-highgpu-8g",
    }
    return {**pairs, **overrides}


def dcgm_samples() -> dict[str, list[list]]:
    """[time, gpu, value] rows, as run_benchmarks.dcgm_samples keeps them."""
    out = {}
    for key, metric in DCGM_KEYS.items():
        body = json.loads((FIXTURES / "dcgm" / f"{metric}.json").read_text())
        out[key] = [
            [float(t), s["metric"]["gpu"], float(v)]
            for s in body["data"]["result"]
            for t, v in s["values"]
        ]
    return out


def case(
    isl: int,
    osl: int,
    concurrency: int,
    *,
    mode: str = "fixed",
    metadata: dict[str, str] | None = None,
    gpu: bool = True,
    kv: list[list[float]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "metadata": metadata or job_metadata(),
        "case": {"isl": isl, "osl": osl, "concurrency": concurrency, "mode": mode, **extra},
        "window": {"start": 1795878809.0, "end": 1795878860.0},
        "kv_cache": {"samples": kv or []},
        "aiperf_exit_code": 0,
    }
    if gpu:
        record["gpu"] = {"source": "test", "selector": "", "samples": dcgm_samples()}
    return record


def write(folder: Path, name: str, data: dict, case_data: dict | None) -> Path:
    """One case's folder, as the Job writes it (with AIPerf's per-phase copy)."""
    path = folder / name
    (path / "phases" / "profiling").mkdir(parents=True)
    (path / "profile_export_aiperf.json").write_text(json.dumps(data))
    (path / "phases" / "profiling" / "profile_export_aiperf.json").write_text(json.dumps(data))
    if case_data is not None:
        (path / "case.json").write_text(json.dumps(case_data))
    return path
