"""Result files exactly as TensorRT-LLM's benchmark_serving writes them.

Key set and order from NVIDIA/TensorRT-LLM
tensorrt_llm/serve/scripts/benchmark_serving.py, for the benchmark Job's
arguments (docker/run_benchmarks.py): `--save-result` without
`--save-detailed` (the per-request lists are dropped), no `--goodput`,
`--percentile-metrics ttft,tpot,itl,e2el`, `--metric-percentiles 50,90,99`,
`--metadata key=value ...` (values kept as strings), no /energy_metrics.

- schema "0228a71" (commit 0228a71223416496ff056a157936bad2e42c762f):
  avg_decoded_tokens_per_iter is a dict (its percentiles keyed "p50.0", ...)
  and, as its mean is > 0, also flat std_/min_/max_/mean_/median_/pNN_ keys;
  each latency metric writes std_, mean_, median_, then pNN_.
- schema "f61d71d9" (commit f61d71d9fe7b0127ae4c20c3e9aa77dc4d78396f):
  avg_decoded_tokens_per_iter is one number; each metric writes mean_,
  median_, std_, then pNN_.
"""

from __future__ import annotations

from typing import Any

PERCENTILES = (50.0, 90.0, 99.0)
DECODED_PERCENTILES = (2.5, 3.2, 3.8)  # avg_decoded_tokens_per_iter (MTP)


def job_metadata(isl: int, osl: int, concurrency: int, **overrides: str) -> dict[str, str]:
    """What the benchmark Job passes with --metadata (workloads/benchmark.py)."""
    pairs = {
        "run_id": "b9c85acbb3b2",
        "model": "DeepSeek-R1-0528",
        "checkpoint": "deepseek-ai/DeepSeek-R1-0528",
        "precision": "fp8",
        "profile": "latency",
        "tp": "8",
        "pp": "1",
        "ep": "8",
        "gpu": "nvidia-b200",
        "gpus": "8",
        "machine": "a4-highgpu-8g",
        "isl": str(isl),
        "osl": str(osl),
        "concurrency": str(concurrency),
    }
    return {**pairs, **overrides}


def result(
    isl: int,
    osl: int,
    concurrency: int,
    output_tps: float,
    tpot_ms: float,
    *,
    metadata: dict[str, str] | None = None,
    schema: str = "0228a71",
    completed: int | None = None,
) -> dict[str, Any]:
    prompts = 5 * concurrency
    done = prompts if completed is None else completed
    duration = done * osl / output_tps if output_tps else 60.0
    data: dict[str, Any] = {
        "date": "20261128-061500",
        "backend": "openai",
        "model_id": "DeepSeek-R1-0528",
        "tokenizer_id": "/models/deepseek-ai/DeepSeek-R1-0528",
        "num_prompts": prompts,
        **(metadata or {}),
        "duration": duration,
        "completed": done,
        "total_input_tokens": done * isl,
        "total_output_tokens": done * osl,
        "request_throughput": done / duration,
        "request_goodput:": None,
        "output_throughput": output_tps,
        "total_token_throughput": output_tps * (isl + osl) / osl,
        "user_throughput": osl / (250.0 / 1000 + tpot_ms * (osl - 1) / 1000),
    }
    latencies = {
        "ttft": 250.0,
        "tpot": tpot_ms,
        "itl": tpot_ms * 0.9,
        "e2el": 250.0 + tpot_ms * (osl - 1),
    }
    if schema == "0228a71":
        decoded = {"mean": 2.4, "min": 1.0, "max": 4.0, "median": 2.5, "std": 0.3}
        data["avg_decoded_tokens_per_iter"] = {
            **decoded,
            "percentiles": {
                f"p{p}": v for p, v in zip(PERCENTILES, DECODED_PERCENTILES, strict=True)
            },
        }
        for stat in ("std", "min", "max", "mean", "median"):
            data[f"{stat}_avg_decoded_tokens_per_iter"] = decoded[stat]
        for p, v in zip(PERCENTILES, DECODED_PERCENTILES, strict=True):
            data[f"p{int(p)}_avg_decoded_tokens_per_iter"] = v
        order = ("std", "mean", "median")
    elif schema == "f61d71d9":
        data["avg_decoded_tokens_per_iter"] = 2.4
        order = ("mean", "median", "std")
    else:
        raise ValueError(schema)
    for metric, mean in latencies.items():
        stats = {"mean": mean, "median": mean * 0.98, "std": mean * 0.1}
        for stat in order:
            data[f"{stat}_{metric}_ms"] = stats[stat]
        for p, factor in zip(PERCENTILES, (0.98, 1.2, 1.5), strict=True):
            data[f"p{int(p)}_{metric}_ms"] = mean * factor
    data.update(request_rate="inf", burstiness=1.0, max_concurrency=concurrency)
    return data
