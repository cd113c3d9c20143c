"""The benchmark report on AIPerf's result files and the Job's case records."""

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
from tests.clients.aiperf_results import REAL, case, job_metadata, summary, write

# (ISL, OSL, concurrency, output tokens/s, mean TPOT ms): part of the default matrix.
CASES = [(512, 128, 8, 1500.0, 5.0), (1024, 1024, 1, 250.0, 4.0), (1024, 1024, 64, 9000.0, 7.0)]
KV = [[1.0, 100.0, 1000.0], [2.0, 500.0, 1000.0], [3.0, 800.0, 1000.0]]


@pytest.fixture
def results_dir(tmp_path) -> Path:
    for isl, osl, concurrency, tps, tpot in CASES:
        write(
            tmp_path,
            f"isl{isl}_osl{osl}_c{concurrency}",
            summary(tps, tpot),
            case(isl, osl, concurrency, kv=KV),
        )
    return tmp_path


def render(argv: list[str], width: int = 200) -> tuple[int, str]:
    console = Console(record=True, width=width)
    code = report.main(argv, console=console)
    return code, console.export_text()


def rows(text: str, shape: str, users: str) -> list[str]:
    """The table lines of one case."""
    found = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1] == shape and cells[2] == users:
            found.append(line)
    assert found, f"no rows {shape} x {users} in:\n{text}"
    return found


def test_the_real_aiperf_file_is_read_as_it_came():
    (result,) = [report.parse_result("x", json.dumps(REAL))]
    assert (result.isl, result.osl, result.concurrency) == (24, 8, 2)  # from input_config
    assert result.completed == 6 and result.errors == 0
    assert result.output_tps == pytest.approx(REAL["output_token_throughput"]["avg"])
    assert result.setup[0] == "/models/tiny-think-tags"


def test_every_case_is_reported_with_throughput_latency_and_gpus(results_dir):
    code, text = render([str(results_dir)])
    assert code == 0
    assert "DeepSeek-R1-0528 | fp8 | TP8 PP1 EP8 | profile latency | 8x nvidia-b200" in text
    throughput, latency, gpus = rows(text, "1024/1024", "64")
    assert "40/40" in throughput  # completed / sent
    assert "9,000" in throughput and "1,125" in throughput  # total, and per GPU over 8
    assert "142.9" in throughput  # per user: 1000 / 7 ms
    assert "250.0 / 375.0" in latency  # TTFT mean / p99
    assert "7.0 / 10.5" in latency  # TPOT
    assert "7,250 / 10,875" in latency  # E2E: 250 + 1000 x 7
    # The seed's GPU lines: memory used (GB per GPU, mean and peak), memory and GPU %.
    # 160,000 MiB mean and 170,000 MiB peak (fixtures/dcgm) are 167.8 and 178.3 GB.
    assert "167.8 / 178.3" in gpus
    assert "87.3" in gpus  # 160,000 / 183,359 MiB
    assert "95.0" in gpus  # DCGM_FI_DEV_GPU_UTIL mean
    assert "46.7 / 80.0" in gpus  # KV-cache blocks in use, mean / peak
    assert "phases" not in text


def test_missing_gpu_samples_and_kv_stats_show_why(tmp_path):
    record = case(1024, 1024, 8, gpu=False)
    record["gpu"] = {"note": "no DCGM series matched {x} in the case's window", "samples": {}}
    write(tmp_path, "c8", summary(2000.0, 5.0), record)
    code, text = render([str(tmp_path)])
    assert code == 0
    *_, gpus = rows(text, "1024/1024", "8")
    assert [c.strip() for c in gpus.split("│")][3:7] == ["-", "-", "-", "-"]
    assert "GPU metrics: no DCGM series matched {x} in the case's window" in text


def test_the_tables_fit_80_columns_without_cut_headers(results_dir):
    code, text = render([str(results_dir)], width=80)
    assert code == 0
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for header in ("per GPU", "per user", "mean / peak", "TTFT", "TPOT", "E2E"):
        assert header in text, header


def test_failed_requests_show_in_the_done_column(tmp_path):
    write(tmp_path, "c8", summary(2000.0, 5.0, completed=35, errors=5), case(1024, 1024, 8))
    _, text = render([str(tmp_path)])
    assert "35/40" in rows(text, "1024/1024", "8")[0]


def test_a_malformed_result_is_named_and_the_others_still_read(results_dir, capsys):
    (results_dir / "broken").mkdir()
    (results_dir / "broken" / "profile_export_aiperf.json").write_text('{"output_token_')
    (results_dir / "other").mkdir()
    (results_dir / "other" / "profile_export_aiperf.json").write_text('{"hello": 1}')
    none = summary(10.0, 5.0, completed=0)
    write(results_dir, "none", none, None)
    bad_case = write(results_dir, "badcase", summary(10.0, 5.0), None)
    (bad_case / "case.json").write_text("{")
    code, text = render([str(results_dir)])
    assert code == 0
    err = capsys.readouterr().err
    assert "skipped broken: not JSON" in err
    assert "skipped other: not an AIPerf result (missing output_token_throughput" in err
    assert "skipped none: no request completed" in err
    assert "skipped badcase: case.json is not JSON" in err
    assert "Traceback" not in err
    for isl, osl, concurrency, *_ in CASES:
        rows(text, f"{isl}/{osl}", str(concurrency))


def test_nothing_readable_is_an_error(tmp_path, capsys):
    code, _ = render([str(tmp_path)])
    assert code == 1
    assert "no readable AIPerf result (profile_export_aiperf.json)" in capsys.readouterr().err
    code, _ = render([str(tmp_path / "missing")])
    assert code == 1
    assert "missing is neither a folder nor a file" in capsys.readouterr().err


def test_one_file_can_be_reported_with_its_case(results_dir):
    code, text = render([str(results_dir / "isl512_osl128_c8" / "profile_export_aiperf.json")])
    assert code == 0
    rows(text, "512/128", "8")
    assert "1024/1024" not in text[: text.index("Published reference")]


def test_each_setup_gets_its_own_tables(tmp_path):
    for run, precision in (("run-a", "fp8"), ("run-b", "nvfp4")):
        meta = job_metadata(run_id=run, precision=precision)
        write(tmp_path, run, summary(2000.0, 5.0), case(1024, 1024, 8, metadata=meta))
    _, text = render([str(tmp_path)])
    assert (
        "DeepSeek-R1-0528 | fp8 | TP8 PP1 EP8 | profile latency | 8x nvidia-b200 | run run-a"
        in text
    )
    assert "| nvfp4 | TP8 PP1 EP8 | profile latency | 8x nvidia-b200 | run run-b" in text


def slo_dir(tmp_path: Path, best: int = 32) -> Path:
    """An SLO search at 1k/1k: 1..64 by doubling, 48 bisected; `best` met it last."""
    probes = {
        1: 180.0,
        2: 330.0,
        4: 600.0,
        8: 1100.0,
        16: 2000.0,
        32: 3500.0,
        48: 4200.0,
        64: 4600.0,
    }
    slo = {"ttft_p99_ms": 2000.0, "tpot_p99_ms": 80.0}
    for users, tps in probes.items():
        met = users <= best
        data = summary(tps, 10.0 + users, tpot_p99_ms=(60.0 if met else 95.0))
        extra = {"slo": slo, "slo_met": met, **({"slo_best": True} if users == best else {})}
        write(tmp_path / "isl1024_osl1024_slo", f"c{users}", data,
              case(1024, 1024, users, mode="slo-probe", **extra))  # fmt: skip
    write(tmp_path, "isl1024_osl1024_c1", summary(250.0, 4.0), case(1024, 1024, 1))
    return tmp_path


def test_the_slo_search_is_a_table_and_a_verdict(tmp_path):
    code, text = render([str(slo_dir(tmp_path))], width=80)
    assert code == 0
    assert "SLO search 1024/1024: p99 TTFT <= 2,000 ms, p99 TPOT <= 80.0 ms" in text
    assert (
        "highest concurrency meeting the SLO: 32 users, 3,500 output tokens/s (437.5 per GPU)"
        in " ".join(text.split())
    )
    (no,) = [line for line in rows(text, "1024/1024", "48") if "no" in line]
    assert "95.0" in no  # p99 TPOT over the limit
    # The main tables show the fixed case and the search's answer (marked), not every probe.
    assert len(rows(text, "1024/1024", "32*")) == 3
    assert len(rows(text, "1024/1024", "64")) == 1  # the SLO table only
    assert max(len(line) for line in text.splitlines()) <= 80


def test_an_slo_search_that_never_met_it_says_so(tmp_path):
    slo = {"ttft_p99_ms": 2000.0, "tpot_p99_ms": 80.0}
    write(
        tmp_path,
        "c1",
        summary(100.0, 90.0),
        case(1024, 1024, 1, mode="slo-probe", slo=slo, slo_met=False),
    )
    _, text = render([str(tmp_path)])
    assert "no concurrency tried met the SLO" in text


# --- comparisons: like with like only -----------------------------------------


def test_the_default_fp8_stack_has_no_published_match_but_the_seeds_row(results_dir):
    results, _ = report.load(str(results_dir))
    by_case = {(r.isl, r.osl, r.concurrency): r.published() for r in results}
    assert by_case[(1024, 1024, 1)] == [] and by_case[(1024, 1024, 64)] == []
    (seed,) = by_case[(512, 128, 8)]
    assert seed.who == "seed recipe" and seed.kind.startswith("illustrative")
    _, text = render([str(results_dir)])
    assert "Compared with published figures" in text
    (line,) = [row for row in rows(text, "512/128", "8") if "172.4 tok/s" in row]
    assert "1,500 tok/s" in line


def test_a_single_user_case_is_never_set_beside_a_max_throughput_figure(tmp_path):
    meta = job_metadata(precision="nvfp4")
    write(tmp_path, "c1", summary(300.0, 3.0), case(1024, 2048, 1, metadata=meta))
    (result,), _ = report.load(str(tmp_path))
    assert [(p.concurrency, p.per_user) for p in result.published()] == [(1, 368.0)]
    _, text = render([str(tmp_path)])
    (line,) = [row for row in rows(text, "1024/2048", "1") if "/user" in row]
    assert "333.3/user" in line and "368.0/user" in line and "offline upper bound" in line


def test_the_same_shape_at_another_concurrency_or_gpu_does_not_match(tmp_path):
    meta = job_metadata(precision="nvfp4")
    write(tmp_path, "c64", summary(9000.0, 7.0), case(1024, 2048, 64, metadata=meta))
    (result,), _ = report.load(str(tmp_path))
    assert result.published() == []  # NVIDIA's 1k/2k figures are at 1 and 7168 users
    h200 = report.Result("x", result.summary, {**result.case, "metadata": job_metadata(gpu="x")})
    assert h200.published() == []


def test_the_reference_table_has_mlperf_and_labels_nvidia_as_offline_bounds(results_dir):
    _, text = render([str(results_dir)], width=80)
    reference = text[text.index("Published reference figures") :]
    for figure in ("14,631 tok/s", "31,920 tok/s", "18,592 tok/s", "33,379 tok/s"):
        assert figure in reference, figure
    assert "Google, MLPerf" in reference and "NVIDIA, MLPerf" in reference
    assert reference.count("offline upper") >= 3
    assert "precision not" in reference  # the MLPerf summaries do not state it
    assert "nvidia-h200" not in reference  # only this GPU's figures


# --- the plot --------------------------------------------------------------------


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


def test_an_off_scale_published_point_is_marked_and_keeps_the_axes(tmp_path, monkeypatch):
    """NVIDIA's 368 tok/s/user against a 40 tok/s/user measurement: the x axis
    stays at the measured scale and the figure is marked at its edge."""
    import matplotlib.axes

    meta = job_metadata(precision="nvfp4")
    write(tmp_path, "c1", summary(40.0, 25.0), case(1024, 2048, 1, metadata=meta))
    seen = {}
    original = matplotlib.axes.Axes.annotate

    def spy(self, text, xy, *args, **kwargs):
        seen[text] = (xy, self.get_xlim())
        return original(self, text, xy, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", spy)
    target = tmp_path / "plot.png"
    assert render([str(tmp_path), "--plot", str(target)])[0] == 0
    assert_png(target)
    (xy, xlim) = seen["368 tok/s/user →"]
    assert xlim[1] == pytest.approx(40.0 * 1.25)  # measured 1000/25, plus a margin
    assert xy[0] == pytest.approx(xlim[1])  # drawn at the edge


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
    return [
        FakeBlob(f"{prefix}{p.relative_to(results_dir).as_posix()}", p.read_text())
        for p in sorted(results_dir.rglob("*.json"))
    ]


def test_results_are_read_from_the_bucket_with_their_cases(results_dir, fake_storage):
    fake_storage.blobs = [
        *bucket_blobs(results_dir, "benchmarks/run/"),
        FakeBlob("benchmarks/run/denied/profile_export_aiperf.json", None),
    ]
    code, text = render(["gs://my-bucket/benchmarks/run"])
    assert code == 0
    (client,) = fake_storage.instances
    assert client.asked == [("my-bucket", "benchmarks/run/")]
    assert "167.8 / 178.3" in rows(text, "1024/1024", "64")[2]  # case.json read too
    results, problems = report.load("gs://my-bucket/benchmarks/run/")
    assert [r.name for r in results] == [
        "isl512_osl128_c8",
        "isl1024_osl1024_c1",
        "isl1024_osl1024_c64",
    ]
    assert problems == ["denied: cannot read it (PermissionError: 403 storage.objects.get denied)"]


def test_a_bucket_that_cannot_be_listed_is_one_clear_error(fake_storage, capsys):
    fake_storage.listing_error = RuntimeError("403 caller does not have storage.objects.list")
    code, _ = render(["gs://my-bucket/benchmarks/run"])
    assert code == 1
    err = capsys.readouterr().err
    assert "error: cannot list gs://my-bucket/benchmarks/run: RuntimeError: 403" in err
    assert "Traceback" not in err
