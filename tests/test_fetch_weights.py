"""docker/fetch_weights.py: skip when complete, retry, mark completion last."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "fetch_weights.py"
spec = importlib.util.spec_from_file_location("fetch_weights", SCRIPT)
fetch_weights = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_weights)


class FakeHub:
    """Stands in for huggingface_hub.snapshot_download: fails `failures` times."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if len(self.calls) <= self.failures:
            raise OSError("connection reset")
        Path(kwargs["local_dir"], "model-00001-of-00002.safetensors").write_text("w")


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(fetch_weights.time, "sleep", lambda seconds: None)


def test_downloads_once_then_marks_complete(tmp_path):
    hub = FakeHub()
    target = tmp_path / "deepseek-ai" / "DeepSeek-R1-0528"
    assert fetch_weights.fetch("deepseek-ai/DeepSeek-R1-0528", "main", target, 3, 8, hub) == 0
    assert (target / ".download-complete").read_text() == "deepseek-ai/DeepSeek-R1-0528@main\n"
    (call,) = hub.calls
    assert call["ignore_patterns"] == ["original/*", "*.pth"]
    assert call["revision"] == "main" and call["max_workers"] == 8


def test_a_complete_copy_is_not_downloaded_again(tmp_path):
    hub = FakeHub()
    fetch_weights.fetch("m/x", "main", tmp_path, 3, 8, hub)
    assert fetch_weights.fetch("m/x", "main", tmp_path, 3, 8, hub) == 0
    assert len(hub.calls) == 1


def test_another_revision_is_downloaded(tmp_path):
    hub = FakeHub()
    fetch_weights.fetch("m/x", "main", tmp_path, 3, 8, hub)
    fetch_weights.fetch("m/x", "abc123", tmp_path, 3, 8, hub)
    assert len(hub.calls) == 2


def test_failures_are_retried_and_the_marker_waits_for_success(tmp_path):
    hub = FakeHub(failures=2)
    assert fetch_weights.fetch("m/x", "main", tmp_path, 3, 8, hub) == 0
    assert len(hub.calls) == 3
    assert (tmp_path / ".download-complete").exists()


def test_giving_up_leaves_no_marker_and_fails(tmp_path, capsys):
    hub = FakeHub(failures=5)
    assert fetch_weights.fetch("m/x", "main", tmp_path, 3, 8, hub) == 1
    assert not (tmp_path / ".download-complete").exists()
    assert "attempt 3/3 failed: connection reset" in capsys.readouterr().err


def test_the_token_comes_from_the_environment_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_secret")
    hub = FakeHub()
    fetch_weights.fetch("m/x", "main", tmp_path, 1, 8, hub)
    assert hub.calls[0]["token"] == "hf_from_secret"
