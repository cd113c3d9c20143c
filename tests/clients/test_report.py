"""The benchmark report on result files in benchmark_serving's exact schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from clients import report


def benchmark_serving_result(
    isl: int, osl: int, concurrency: int, output_tps: float, tpot_ms: float
) -> dict:
    """A result file as `benchmark_serving --save-result --metadata ...` writes it.

    Key set and order from NVIDIA/TensorRT-LLM tensorrt_llm/serve/scripts/
    benchmark_serving.py (commit 0228a71): setup keys, --metadata pairs (as
    strings), the benchmark's result (per-request lists dropped without
    --save-detailed, mean/median/std/pNN per --percentile-metrics and
    --metric-percentiles 50,90,99), then the traffic keys.
    """
    completed = concurrency * 5
    result = {
        "date": "20261128-061500",
        "backend": "openai",
        "model_id": "DeepSeek-R1-0528",
        "tokenizer_id": "/models/deepseek-ai/DeepSeek-R1-0528",
        "num_prompts": completed,
        # --metadata (workloads/benchmark.py)
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
        # benchmark result
        "duration": 120.5,
        "completed": completed,
        "total_input_tokens": completed * isl,
        "total_output_tokens": completed * osl,
        "request_throughput": completed / 120.5,
        "request_goodput:": None,
        "output_throughput": output_tps,
        "total_token_throughput": output_tps * (isl + osl) / osl,
        "user_throughput": 1000.0 / tpot_ms,
        "avg_decoded_tokens_per_iter": {
            "mean": 2.4,
            "min": 1.0,
            "max": 4.0,
            "median": 2.5,
            "std": 0.3,
            "percentiles": {"p50": 2.5, "p90": 3.0, "p99": 3.5},
        },
    }
    for metric, mean in (
        ("ttft", 250.0),
        ("tpot", tpot_ms),
        ("itl", tpot_ms * 0.9),
        ("e2el", 250.0 + tpot_ms * osl),
    ):
        result[f"std_{metric}_ms"] = mean * 0.1
        result[f"mean_{metric}_ms"] = mean
        result[f"median_{metric}_ms"] = mean * 0.98
        for p, factor in (("50", 0.98), ("90", 1.2), ("99", 1.5)):
            result[f"p{p}_{metric}_ms"] = mean * factor
    result.update(request_rate="inf", burstiness=1.0, max_concurrency=concurrency)
    return result


CASES = [(512, 128, 8, 1500.0, 5.0), (1024, 1024, 1, 250.0, 4.0), (1024, 1024, 64, 9000.0, 7.0)]


@pytest.fixture
def results_dir(tmp_path) -> Path:
    for isl, osl, concurrency, tps, tpot in CASES:
        name = f"isl{isl}_osl{osl}_c{concurrency}.json"
        (tmp_path / name).write_text(
            json.dumps(benchmark_serving_result(isl, osl, concurrency, tps, tpot))
        )
        # benchmark_serving also writes a PyTorch-benchmark-format side file.
        (tmp_path / name.replace(".json", ".pytorch.json")).write_text("[]")
    return tmp_path


def render(argv) -> tuple[int, str]:
    console = Console(record=True, width=220)
    code = report.main(argv, console=console)
    return code, console.export_text()


def test_every_case_is_reported_with_the_recipe_metrics(results_dir):
    code, text = render([str(results_dir)])
    assert code == 0
    assert (
        "DeepSeek-R1-0528 | precision fp8 | TP8 PP1 EP8 | profile latency | 8x nvidia-b200" in text
    )
    for isl, osl, _concurrency, tps, _ in CASES:
        assert f"{isl}/{osl}" in text
        assert f"{tps:.1f}" in text
    assert "250.0 / 245.0 / 375.0" in text  # TTFT mean / median / p99
    assert "5.0 / 4.9 / 7.5" in text  # TPOT of the 512/128 case
    assert "200.0" in text  # tokens/s per user at 5 ms per token
    assert "1125.0" in text  # 9000 tokens/s over 8 GPUs


def test_results_are_ordered_by_shape_and_concurrency(results_dir):
    results, problems = report.load(str(results_dir))
    assert problems == []
    assert [(r.isl, r.osl, r.concurrency) for r in results] == [(c[0], c[1], c[2]) for c in CASES]


def test_a_malformed_file_is_named_and_the_others_still_read(results_dir, capsys):
    (results_dir / "broken.json").write_text('{"output_throughput": ')
    (results_dir / "other.json").write_text(json.dumps({"hello": "world"}))
    code, text = render([str(results_dir)])
    assert code == 0
    err = capsys.readouterr().err
    assert "skipped broken.json: not JSON" in err
    assert "skipped other.json: not a benchmark_serving result (missing output_throughput" in err
    assert "1024/1024" in text


def test_nothing_readable_is_an_error(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("nope")
    code, _ = render([str(tmp_path)])
    assert code == 1
    assert "no readable benchmark result" in capsys.readouterr().err
    assert render([str(tmp_path / "missing")])[0] == 1


def test_nvidias_published_figure_is_shown_beside_the_same_shape(tmp_path):
    data = benchmark_serving_result(1024, 2048, 1, 300.0, 4.0)
    data["precision"] = "nvfp4"
    (tmp_path / "r.json").write_text(json.dumps(data))
    code, text = render([str(tmp_path)])
    assert code == 0
    assert "368 tok/s/user (NVIDIA tech blog: TP8/EP2, MTP 3)" in text
    (result,), _ = report.load(str(tmp_path))
    assert [p.per_user for p in result.published()] == [368.0]


def test_no_published_figure_for_other_hardware(results_dir):
    results, _ = report.load(str(results_dir))
    assert all(r.published() == [] for r in results)  # FP8 on B200: none published


def test_the_plot_is_a_png_with_every_case(results_dir, tmp_path):
    target = tmp_path / "plot.png"
    code, _ = render([str(results_dir), "--plot", str(target)])
    assert code == 0
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


class FakeBlob:
    def __init__(self, name: str, text: str):
        self.name, self._text = name, text

    def download_as_text(self) -> str:
        return self._text


class FakeStorageClient:
    """google.cloud.storage.Client's two calls the report makes."""

    def __init__(self, blobs):
        self.blobs, self.asked = blobs, []

    def list_blobs(self, bucket, prefix=None):
        self.asked.append((bucket, prefix))
        return list(self.blobs)


def test_results_are_read_from_the_bucket(results_dir):
    blobs = [FakeBlob(f"benchmarks/run/{p.name}", p.read_text()) for p in results_dir.iterdir()]
    client = FakeStorageClient(blobs)
    results, problems = report.load("gs://my-bucket/benchmarks/run", gcs_client=client)
    assert client.asked == [("my-bucket", "benchmarks/run/")]
    assert len(results) == 3 and problems == []
