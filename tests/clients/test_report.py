"""The benchmark report on result files in benchmark_serving's exact schema."""

from __future__ import annotations

import json
import struct
import sys
import types
from pathlib import Path
from typing import ClassVar

import pytest
from rich.console import Console

from clients import report
from tests.clients.benchmark_results import job_metadata, result

FIXTURES = Path(__file__).parent / "fixtures"
# (ISL, OSL, concurrency, output tokens/s, mean TPOT ms): the stack's default matrix, roughly.
CASES = [(512, 128, 8, 1500.0, 5.0), (1024, 1024, 1, 250.0, 4.0), (1024, 1024, 64, 9000.0, 7.0)]


def write(folder: Path, name: str, data: dict) -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    # benchmark_serving also writes a PyTorch-benchmark-format side file.
    (folder / name.replace(".json", ".pytorch.json")).write_text("[]")
    return path


@pytest.fixture
def results_dir(tmp_path) -> Path:
    for isl, osl, concurrency, tps, tpot in CASES:
        data = result(
            isl, osl, concurrency, tps, tpot, metadata=job_metadata(isl, osl, concurrency)
        )
        write(tmp_path, f"isl{isl}_osl{osl}_c{concurrency}.json", data)
    return tmp_path


def render(argv: list[str]) -> tuple[int, str]:
    console = Console(record=True, width=250)
    code = report.main(argv, console=console)
    return code, console.export_text()


def row(text: str, shape: str, users: str) -> str:
    """The lines of one case: its throughput row and its latency row."""
    lines = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if shape in cells and users in cells:
            lines.append(line)
    assert len(lines) == 2, f"no rows {shape} x {users} in:\n{text}"
    return "\n".join(lines)


def test_the_static_fixture_has_the_key_set_the_builder_makes():
    """The hand-checked file and the builder agree, key for key and in order."""
    fixture = json.loads((FIXTURES / "isl1024_osl1024_c64.json").read_text())
    built = result(1024, 1024, 64, 9000.0, 7.0, metadata=job_metadata(1024, 1024, 64))
    assert list(fixture) == list(built)
    assert fixture["request_goodput:"] is None  # the source's key has the colon
    assert list(fixture["avg_decoded_tokens_per_iter"]["percentiles"]) == [
        "p50.0",
        "p90.0",
        "p99.0",
    ]


def test_every_case_is_reported_with_the_recipe_metrics(results_dir):
    code, text = render([str(results_dir)])
    assert code == 0
    assert (
        "DeepSeek-R1-0528 | precision fp8 | TP8 PP1 EP8 | profile latency | 8x nvidia-b200 | "
        "run b9c85acbb3b2" in text
    )
    line = row(text, "1024/1024", "64")
    assert "320/320" in line  # completed / prompts
    assert "9000.0" in line and "18000.0" in line  # output and total tokens/s
    assert "1125.0" in line  # 9000 tokens/s over 8 GPUs
    assert "138.2" in line  # user_throughput: 1024 tokens / 7.411 s
    assert "250.0 / 245.0 / 375.0" in line  # TTFT mean / median / p99
    assert "7.0 / 6.9 / 10.5" in line  # TPOT
    assert "6.3 / 6.2 / 9.4" in line  # ITL
    assert "7411.0 / 7262.8 / 11116.5" in line  # end-to-end
    small = row(text, "512/128", "8")
    assert "1500.0" in small and "187.5" in small and "5.0 / 4.9 / 7.5" in small


def test_the_other_published_schema_reads_the_same(tmp_path):
    """benchmark_serving at f61d71d9: scalar avg_decoded_tokens_per_iter, other key order."""
    data = result(1024, 1024, 64, 9000.0, 7.0, metadata=job_metadata(1024, 1024, 64))
    older = result(
        1024, 1024, 64, 9000.0, 7.0, metadata=job_metadata(1024, 1024, 64), schema="f61d71d9"
    )
    assert isinstance(older["avg_decoded_tokens_per_iter"], float)
    assert list(older) != list(data)
    (tmp_path / "new").mkdir()
    (tmp_path / "old").mkdir()
    write(tmp_path / "new", "r.json", data)
    write(tmp_path / "old", "r.json", older)
    new_text, old_text = render([str(tmp_path / "new")])[1], render([str(tmp_path / "old")])[1]
    assert row(new_text, "1024/1024", "64") == row(old_text, "1024/1024", "64")


def test_results_are_ordered_by_shape_and_concurrency(results_dir):
    results, problems = report.load(str(results_dir))
    assert problems == []
    assert [(r.isl, r.osl, r.concurrency) for r in results] == [(c[0], c[1], c[2]) for c in CASES]


def test_a_malformed_file_is_named_and_the_others_still_read(results_dir, capsys):
    (results_dir / "broken.json").write_text('{"output_throughput": ')
    (results_dir / "other.json").write_text(json.dumps({"hello": "world"}))
    (results_dir / "list.json").write_text("[1, 2]")
    bad = result(512, 128, 1, 200.0, 5.0)
    bad["mean_tpot_ms"] = "fast"
    (results_dir / "text.json").write_text(json.dumps(bad))
    (results_dir / "failed.json").write_text(json.dumps(result(512, 128, 1, 0.0, 5.0, completed=0)))
    (results_dir / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    code, text = render([str(results_dir)])
    assert code == 0
    err = capsys.readouterr().err
    assert "skipped broken.json: not JSON" in err
    assert "skipped other.json: not a benchmark_serving result (missing output_throughput" in err
    assert "skipped list.json: not a benchmark_serving result (expected a JSON object)" in err
    assert "skipped text.json: mean_tpot_ms is 'fast', not a number" in err
    assert "skipped failed.json: no request completed (all 5 failed)" in err
    assert "skipped binary.json: cannot read it (UnicodeDecodeError" in err
    assert "Traceback" not in err
    for isl, osl, concurrency, *_ in CASES:
        row(text, f"{isl}/{osl}", str(concurrency))


def test_nothing_readable_is_an_error(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("nope")
    code, _ = render([str(tmp_path)])
    assert code == 1
    assert "no readable benchmark result" in capsys.readouterr().err
    code, _ = render([str(tmp_path / "missing")])
    assert code == 1
    assert "missing is neither a folder nor a file" in capsys.readouterr().err


def test_one_file_can_be_reported(results_dir):
    code, text = render([str(results_dir / "isl512_osl128_c8.json")])
    assert code == 0
    row(text, "512/128", "8")
    assert "1024/1024" not in text


def test_failed_requests_show_in_the_done_column(tmp_path):
    data = result(1024, 1024, 8, 2000.0, 5.0, metadata=job_metadata(1024, 1024, 8), completed=35)
    write(tmp_path, "r.json", data)
    _, text = render([str(tmp_path)])
    assert "35/40" in row(text, "1024/1024", "8")


def test_without_metadata_the_shape_comes_from_the_token_totals(tmp_path):
    write(tmp_path, "plain.json", result(2048, 256, 16, 3000.0, 6.0))
    code, text = render([str(tmp_path)])
    assert code == 0
    assert "DeepSeek-R1-0528 | 8x GPU" in text  # model_id; no parallelism or precision known
    line = row(text, "~2048/~256", "16")  # derived shape, max_concurrency
    assert "375.0" in line  # 3000 tokens/s over the default 8 GPUs
    (loaded,), _ = report.load(str(tmp_path))
    assert (loaded.isl, loaded.osl, loaded.concurrency, loaded.gpus) == (2048, 256, 16, 8)


def test_gpus_fall_back_to_tp_times_pp(tmp_path):
    meta = job_metadata(1024, 1024, 4, tp="4", pp="1")
    del meta["gpus"]
    write(tmp_path, "r.json", result(1024, 1024, 4, 1000.0, 5.0, metadata=meta))
    (loaded,), _ = report.load(str(tmp_path))
    assert loaded.gpus == 4 and loaded.per_gpu == 250.0


def test_per_user_falls_back_to_tpot(tmp_path):
    data = result(1024, 1024, 4, 1000.0, 5.0)
    del data["user_throughput"]
    write(tmp_path, "r.json", data)
    (loaded,), _ = report.load(str(tmp_path))
    assert loaded.per_user == 200.0


def test_each_setup_gets_its_own_table(tmp_path):
    for run, precision in (("run-a", "fp8"), ("run-b", "nvfp4")):
        meta = job_metadata(1024, 1024, 8, run_id=run, precision=precision)
        write(tmp_path, f"{run}.json", result(1024, 1024, 8, 2000.0, 5.0, metadata=meta))
    _, text = render([str(tmp_path)])
    assert "precision fp8 | TP8 PP1 EP8 | profile latency | 8x nvidia-b200 | run run-a" in text
    assert "precision nvfp4 | TP8 PP1 EP8 | profile latency | 8x nvidia-b200 | run run-b" in text


def test_nvidias_published_figure_is_shown_beside_the_same_shape(tmp_path):
    meta = job_metadata(1024, 2048, 1, precision="nvfp4")
    write(tmp_path, "r.json", result(1024, 2048, 1, 300.0, 4.0, metadata=meta))
    code, text = render([str(tmp_path)])
    assert code == 0
    assert "368 tok/s/user (NVIDIA tech blog, TP8/EP2 MTP3)" in row(text, "1024/2048", "1")
    (loaded,), _ = report.load(str(tmp_path))
    assert [p.per_user for p in loaded.published()] == [368.0]


def test_published_figures_match_gpu_precision_shape_and_concurrency(results_dir):
    results, _ = report.load(str(results_dir))
    by_case = {(r.isl, r.osl, r.concurrency): r.published() for r in results}
    assert by_case[(1024, 1024, 1)] == [] and by_case[(1024, 1024, 64)] == []  # none for FP8 B200
    assert by_case[(512, 128, 8)] == []
    nvfp4 = report.Result("x", {**results[-1].data, "precision": "nvfp4"})
    assert [p.per_gpu for p in nvfp4.published()] == [6430.0]  # any concurrency
    h200 = report.Result("x", {**nvfp4.data, "gpu": "nvidia-h200-141gb"})
    assert h200.published() == []


def assert_png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"
    width, height = struct.unpack(">II", data[16:24])
    from PIL import Image

    with Image.open(path) as image:
        image.load()  # decodes every chunk: fails on a truncated or corrupt file
        colors = image.convert("L").getextrema()
    assert colors[0] < colors[1], "a blank image"
    return width, height


def test_the_plot_is_a_png_with_every_case(results_dir, tmp_path):
    target = tmp_path / "plot.png"
    code, text = render([str(results_dir), "--plot", str(target)])
    assert code == 0
    assert f"plot: {target}" in text
    assert assert_png(target) == (1200, 780)  # 10 x 6.5 in at 120 dpi
    assert target.stat().st_size > 20_000


def test_the_plot_draws_published_figures_and_several_setups(tmp_path):
    for run, precision, isl, osl in (("a", "nvfp4", 1024, 2048), ("b", "nvfp4", 1024, 1024)):
        meta = job_metadata(isl, osl, 1, run_id=run, precision=precision)
        write(tmp_path, f"{run}.json", result(isl, osl, 1, 300.0, 4.0, metadata=meta))
    target = tmp_path / "plot.png"
    assert render([str(tmp_path), "--plot", str(target)])[0] == 0
    assert_png(target)


def test_an_unwritable_plot_is_a_clear_error(results_dir, tmp_path, capsys):
    code, _ = render([str(results_dir), "--plot", str(tmp_path / "no" / "such" / "dir.png")])
    assert code == 1
    assert "cannot write the plot" in capsys.readouterr().err


# --- gs:// through the Cloud Storage client, mocked at its boundary -----------


class FakeBlob:
    def __init__(self, name: str, text: str | None):
        self.name, self._text = name, text

    def download_as_text(self) -> str:
        if self._text is None:
            raise PermissionError("403 storage.objects.get denied")
        return self._text


class FakeStorageClient:
    """The two calls of google.cloud.storage.Client the report makes."""

    instances: ClassVar[list[FakeStorageClient]] = []
    blobs: ClassVar[list[FakeBlob]] = []
    listing_error: ClassVar[Exception | None] = None

    def __init__(self, *args, **kwargs):
        self.asked: list[tuple[str, str | None]] = []
        FakeStorageClient.instances.append(self)

    def list_blobs(self, bucket, prefix=None):
        if self.listing_error is not None:
            raise self.listing_error
        self.asked.append((bucket, prefix))
        return iter(self.blobs)


@pytest.fixture
def fake_storage(monkeypatch):
    """google.cloud.storage with Client replaced: the report's own import finds it."""
    module = types.ModuleType("google.cloud.storage")
    module.Client = FakeStorageClient
    monkeypatch.setitem(sys.modules, "google.cloud.storage", module)
    import google.cloud

    monkeypatch.setattr(google.cloud, "storage", module, raising=False)
    FakeStorageClient.instances, FakeStorageClient.blobs = [], []
    FakeStorageClient.listing_error = None
    return FakeStorageClient


def bucket_blobs(results_dir: Path, prefix: str) -> list[FakeBlob]:
    return [FakeBlob(f"{prefix}{p.name}", p.read_text()) for p in sorted(results_dir.iterdir())]


def test_results_are_read_from_the_bucket(results_dir, fake_storage):
    fake_storage.blobs = [
        *bucket_blobs(results_dir, "benchmarks/run/"),
        FakeBlob("benchmarks/run/denied.json", None),
    ]
    code, text = render(["gs://my-bucket/benchmarks/run"])
    assert code == 0
    (client,) = fake_storage.instances
    assert client.asked == [("my-bucket", "benchmarks/run/")]
    for isl, osl, concurrency, *_ in CASES:
        row(text, f"{isl}/{osl}", str(concurrency))
    results, problems = report.load("gs://my-bucket/benchmarks/run/")
    assert [r.name for r in results] == [
        "isl512_osl128_c8.json",
        "isl1024_osl1024_c1.json",
        "isl1024_osl1024_c64.json",
    ]
    assert problems == [
        "denied.json: cannot read it (PermissionError: 403 storage.objects.get denied)"
    ]


def test_a_whole_bucket_is_listed_without_prefix(results_dir, fake_storage):
    fake_storage.blobs = bucket_blobs(results_dir, "")
    results, _ = report.load("gs://my-bucket")
    assert fake_storage.instances[0].asked == [("my-bucket", None)]
    assert len(results) == 3


def test_a_bucket_that_cannot_be_listed_is_one_clear_error(fake_storage, capsys):
    fake_storage.listing_error = RuntimeError("403 caller does not have storage.objects.list")
    code, _ = render(["gs://my-bucket/benchmarks/run"])
    assert code == 1
    err = capsys.readouterr().err
    assert "error: cannot list gs://my-bucket/benchmarks/run: RuntimeError: 403" in err
    assert "Traceback" not in err
