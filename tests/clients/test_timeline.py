"""clients/timeline.py: reading the stager's and the pods' timeline documents, and showing them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from clients import report, timeline
from tests.clients.aiperf_results import case, summary, write

STAGER = {
    "writer": "stage-weights",
    "run": "build-1",
    "model": "deepseek-ai/DeepSeek-R1-0528",
    "events": [
        {"phase": "download", "event": "start", "time": "2026-01-01T10:02:00.000Z"},
        {"phase": "download", "event": "end", "time": "2026-01-01T10:40:30.000Z"},
    ],
}
POD = {
    "writer": "serving-pod",
    "run": "dsr1-trtllm-serve-abc",
    "host": "gke-a4-node-1",
    "events": [
        {"phase": "image-pulled", "event": "mark", "time": "2026-01-01T10:32:00Z"},
        {"phase": "weights-wait", "event": "start", "time": "2026-01-01T10:32:01Z"},
        {"phase": "weights-wait", "event": "end", "time": "2026-01-01T10:40:45Z"},
        {"phase": "node-copy", "event": "start", "time": "2026-01-01T10:40:46Z"},
        {"phase": "node-copy", "event": "failed", "time": "2026-01-01T10:41:46Z"},
        {"phase": "server", "event": "start", "time": "2026-01-01T10:45:00Z"},
    ],
}


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "stage-weights-build-1.json").write_text(json.dumps(STAGER))
    (tmp_path / "dsr1-trtllm-serve-abc.json").write_text(json.dumps(POD))
    return tmp_path


def test_runs_are_ordered_by_their_first_event_and_phases_paired(folder):
    stager, pod = timeline.load(folder)
    assert stager.writer == "stage-weights" and pod.host == "gke-a4-node-1"
    (download,) = timeline.phases(stager)
    assert download.seconds == 38 * 60 + 30
    phases = {p.name: p for p in timeline.phases(pod)}
    assert phases["image-pulled"].seconds == 0
    assert phases["weights-wait"].seconds == 8 * 60 + 44
    assert phases["node-copy"].failed is True and phases["node-copy"].seconds == 60
    assert phases["server"].end is None  # not ready (yet)


def test_the_table_shows_offsets_from_the_first_event_and_durations(folder):
    console = Console(record=True, width=140)
    timeline.render(timeline.load(folder), console)
    text = console.export_text()
    assert "t=0 at 2026-01-01T10:02:00+00:00" in text
    download = next(line for line in text.splitlines() if "download" in line)
    assert "0:00" in download and "38:30" in download
    copy = next(line for line in text.splitlines() if "node-copy" in line)
    assert "FAILED" in copy and "38:46" in copy
    assert "running" in next(line for line in text.splitlines() if " server " in line)


def test_bad_documents_are_named_and_skipped(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(STAGER))
    (tmp_path / "notjson.json").write_text("{")
    bad_event = {
        **STAGER,
        "events": [{"phase": "x", "event": "begin", "time": "2026-01-01T00:00:00Z"}],
    }
    (tmp_path / "badevent.json").write_text(json.dumps(bad_event))
    naive = {**STAGER, "events": [{"phase": "x", "event": "start", "time": "2026-01-01T00:00:00"}]}
    (tmp_path / "naive.json").write_text(json.dumps(naive))
    runs, problems = timeline.load_with_problems(tmp_path)
    assert [r.run for r in runs] == ["build-1"]
    assert any(p.startswith("notjson.json: not JSON") for p in problems)
    assert any("badevent.json: event 0: event 'begin' is not one of" in p for p in problems)
    assert any(
        "naive.json: event 0: time '2026-01-01T00:00:00' has no time zone" in p for p in problems
    )


def test_a_gcs_prefix_is_read_through_the_storage_client():
    class Blob:
        def __init__(self, name, text):
            self.name, self._text = name, text

        def download_as_text(self):
            return self._text

    class Client:
        def list_blobs(self, bucket, prefix=None):
            assert (bucket, prefix) == ("my-bucket", "timeline/")
            return [Blob("timeline/a.json", json.dumps(STAGER)), Blob("timeline/README", "x")]

    (run,) = timeline.load("gs://my-bucket/timeline/", client=Client())
    assert run.run == "build-1"


def test_the_cli_fails_clearly_without_a_timeline(tmp_path, capsys):
    assert timeline.main([str(tmp_path / "missing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert timeline.main([str(tmp_path)]) == 1
    assert "no readable timeline" in capsys.readouterr().err


def test_the_benchmark_report_shows_the_timeline_when_asked(folder, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write(results, "isl1024_osl1024_c1", summary(250.0, 4.0), case(1024, 1024, 1))
    console = Console(record=True, width=160)
    assert report.main([str(results), "--timeline", str(folder)], console=console) == 0
    text = console.export_text()
    assert "cold-start timeline" in text and "node-copy" in text
