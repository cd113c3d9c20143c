"""docker/weights/fetch_weights.py against a stand-in Hub on loopback and a folder as the bucket.

The real huggingface_hub client downloads from the stand-in (tests/weights_hub.py);
the bucket is a folder with the object metadata beside each object.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from clients import timeline as timeline_reader
from tests.weights_hub import COMMIT, HubRepo, StandInHub

SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "weights" / "fetch_weights.py"
spec = importlib.util.spec_from_file_location("fetch_weights", SCRIPT)
fetch_weights = importlib.util.module_from_spec(spec)
sys.modules["fetch_weights"] = fetch_weights  # dataclasses look their module up
spec.loader.exec_module(fetch_weights)

MODEL = "deepseek-ai/DeepSeek-R1-0528"


class FolderBucket:
    """A stand-in bucket prefix: objects are files, metadata sits in a side table."""

    def __init__(self, root: Path):
        self.root = root
        self.metadata: dict[str, dict[str, str]] = {}
        self.uploads: list[str] = []
        self.writes: list[str] = []  # every write_text/delete, in order

    def stat(self, name):
        path = self.root / name
        if not path.is_file():
            return None
        return fetch_weights.ObjectInfo(path.stat().st_size, self.metadata.get(name, {}))

    def upload(self, local, name, metadata):
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(local).read_bytes())
        self.metadata[name] = dict(metadata)
        self.uploads.append(name)
        self.writes.append(f"upload {name}")

    def read_text(self, name):
        path = self.root / name
        return path.read_text() if path.is_file() else None

    def write_text(self, name, text):
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.writes.append(f"write {name}")

    def delete(self, name):
        (self.root / name).unlink()
        self.writes.append(f"delete {name}")


def repo() -> HubRepo:
    return HubRepo(
        MODEL,
        files={
            "config.json": b'{"architectures": ["DeepseekV3ForCausalLM"]}\n',
            "model-00001-of-00002.safetensors": bytes(range(256)) * 400,
            "model-00002-of-00002.safetensors": b"\x07" * 70_000,
            "original/model.pth": b"unused second copy",
        },
        lfs={"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"},
    )


def stage(
    hub: StandInHub,
    bucket: FolderBucket,
    tmp_path: Path,
    timeline=None,
    attempts=2,
    shard=0,
    shards=1,
):
    commit, files = fetch_weights.hub_listing(MODEL, "main", None, endpoint=hub.url)
    return fetch_weights.Stager(
        bucket,
        MODEL,
        commit,
        files,
        fetch_weights.hub_downloader(MODEL, commit, None, endpoint=hub.url),
        tmp_path / "scratch",
        workers=2,
        attempts=attempts,
        timeline=timeline,
        sleep=lambda seconds: None,
        shard=shard,
        shards=shards,
    ).run()


@pytest.fixture
def bucket(tmp_path):
    return FolderBucket(tmp_path / "bucket")


def test_the_listing_carries_the_hubs_sizes_and_hashes_and_skips_the_original_copy():
    data = repo()
    with StandInHub(data) as hub:
        commit, files = fetch_weights.hub_listing(MODEL, "main", None, endpoint=hub.url)
    assert commit == COMMIT
    by_path = {f.path: f for f in files}
    assert set(by_path) == {
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    }
    shard = data.files["model-00001-of-00002.safetensors"]
    assert by_path["model-00001-of-00002.safetensors"].hash == (
        "sha256:" + hashlib.sha256(shard).hexdigest()
    )
    config = data.files["config.json"]
    # git's blob id of a small (non-LFS) file
    assert (
        by_path["config.json"].hash
        == "git-sha1:" + hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest()
    )
    assert by_path["config.json"].size == len(config)


def test_stages_every_file_verified_then_the_manifest_then_the_marker(bucket, tmp_path):
    data = repo()
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path) == 0
    model_dir = bucket.root / MODEL
    for name in ("config.json", "model-00001-of-00002.safetensors"):
        assert (model_dir / name).read_bytes() == data.files[name]
    assert not (model_dir / "original").exists()
    assert (model_dir / ".download-complete").read_text() == f"{MODEL}@{COMMIT}\n"
    # The marker is the very last write; the manifest comes just before it.
    assert bucket.writes[-1] == f"write {MODEL}/.download-complete"
    assert bucket.writes[-2] == f"write {MODEL}/.manifest.json"
    manifest = json.loads((model_dir / ".manifest.json").read_text())
    assert manifest["commit"] == COMMIT
    assert {f["path"]: f["size"] for f in manifest["files"]} == {
        "config.json": len(data.files["config.json"]),
        "model-00001-of-00002.safetensors": 102_400,
        "model-00002-of-00002.safetensors": 70_000,
    }
    meta = bucket.metadata[f"{MODEL}/model-00002-of-00002.safetensors"]
    assert meta == {"hub-hash": "sha256:" + hashlib.sha256(b"\x07" * 70_000).hexdigest()}
    assert not any((tmp_path / "scratch").rglob("*.safetensors")), "scratch copies are deleted"


def test_a_corrupt_download_is_refused_and_fetched_again(bucket, tmp_path, capsys):
    data = repo()
    data.corrupt["model-00001-of-00002.safetensors"] = 1
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path) == 0
    out = capsys.readouterr().out
    assert "model-00001-of-00002.safetensors: attempt 1/2 failed" in out
    assert "the Hub records sha256:" in out
    assert data.downloads.count("model-00001-of-00002.safetensors") == 2
    staged = (bucket.root / MODEL / "model-00001-of-00002.safetensors").read_bytes()
    assert staged == data.files["model-00001-of-00002.safetensors"]


def test_a_file_that_stays_corrupt_never_reaches_the_bucket_and_no_marker_is_written(
    bucket, tmp_path, capsys
):
    data = repo()
    data.corrupt["model-00002-of-00002.safetensors"] = 5
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path, attempts=2) == 1
    assert f"{MODEL}/model-00002-of-00002.safetensors" not in bucket.uploads
    assert not (bucket.root / MODEL / ".download-complete").exists()
    assert not (bucket.root / MODEL / ".manifest.json").exists()
    assert "no completion marker written" in capsys.readouterr().out


def test_a_partial_download_is_refused(bucket, tmp_path, capsys):
    data = repo()
    data.truncated["model-00002-of-00002.safetensors"] = 5
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path, attempts=2) == 1
    assert f"{MODEL}/model-00002-of-00002.safetensors" not in bucket.uploads
    assert not (bucket.root / MODEL / ".download-complete").exists()


def test_the_verifier_names_a_short_file_and_a_wrong_hash(tmp_path):
    expected = fetch_weights.HubFile("a.bin", 4, "sha256:" + hashlib.sha256(b"abcd").hexdigest())
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    with pytest.raises(fetch_weights.VerificationError, match="3 bytes, the Hub records 4"):
        fetch_weights.verify(short, expected)
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"abce")
    with pytest.raises(fetch_weights.VerificationError, match="hash sha256:"):
        fetch_weights.verify(wrong, expected)
    right = tmp_path / "right"
    right.write_bytes(b"abcd")
    fetch_weights.verify(right, expected)


def test_a_rerun_resumes_skipping_verified_objects(bucket, tmp_path):
    data = repo()
    data.corrupt["model-00002-of-00002.safetensors"] = 5
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path, attempts=1) == 1
        first = list(data.downloads)
        data.corrupt.clear()
        data.downloads.clear()
        assert stage(hub, bucket, tmp_path) == 0
    assert "model-00001-of-00002.safetensors" in first
    # Only the file that failed is fetched again.
    assert data.downloads == ["model-00002-of-00002.safetensors"]
    assert (bucket.root / MODEL / ".download-complete").exists()


def test_an_object_with_the_wrong_recorded_hash_is_staged_again(bucket, tmp_path):
    data = repo()
    with StandInHub(data) as hub:
        stage(hub, bucket, tmp_path)
        (bucket.root / MODEL / ".download-complete").unlink()
        bucket.metadata[f"{MODEL}/config.json"] = {"hub-hash": "git-sha1:stale"}
        data.downloads.clear()
        assert stage(hub, bucket, tmp_path) == 0
    assert data.downloads == ["config.json"]


def test_a_complete_copy_is_not_touched(bucket, tmp_path):
    data = repo()
    with StandInHub(data) as hub:
        stage(hub, bucket, tmp_path)
        data.downloads.clear()
        writes = len(bucket.writes)
        assert stage(hub, bucket, tmp_path) == 0
    assert data.downloads == []
    assert len(bucket.writes) == writes


def test_another_revision_is_unmarked_before_any_file_changes(bucket, tmp_path):
    data = repo()
    marker = bucket.root / MODEL / ".download-complete"
    marker.parent.mkdir(parents=True)
    marker.write_text(f"{MODEL}@an-older-commit\n")
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path) == 0
    assert bucket.writes[0] == f"delete {MODEL}/.download-complete"
    assert marker.read_text() == f"{MODEL}@{COMMIT}\n"


# --- several builds, each a share of the files ----------------------------------


def test_the_shares_are_balanced_by_size_disjoint_and_the_same_for_every_build():
    files = [
        fetch_weights.HubFile(name, size, f"sha256:{name}")
        for name, size in (("a", 100), ("b", 90), ("c", 60), ("d", 50), ("e", 40))
    ]
    shares = [[f.path for f in fetch_weights.shard_files(files, n, 2)] for n in (0, 1)]
    # Largest first to the lighter build: a->0, b->1, c->1, d->0 (150/150), e->0 (tie: 0).
    assert shares == [["a", "d", "e"], ["b", "c"]]
    # The listing's order does not change the split.
    assert [f.path for f in fetch_weights.shard_files(files[::-1], 1, 2)] == ["b", "c"]
    assert [f.path for f in fetch_weights.shard_files(files, 0, 1)] == ["a", "b", "c", "d", "e"]
    with pytest.raises(ValueError, match="shard 2 of 2"):
        fetch_weights.shard_files(files, 2, 2)


def test_two_builds_fetch_their_own_shares_and_only_the_last_writes_the_marker(
    bucket, tmp_path, capsys
):
    data = repo()
    marker = bucket.root / MODEL / ".download-complete"
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path, shard=1, shards=2) == 0
        first = list(data.downloads)
        assert not marker.exists() and not (bucket.root / MODEL / ".manifest.json").exists()
        assert "the last build to finish writes the marker" in capsys.readouterr().out
        data.downloads.clear()
        assert stage(hub, bucket, tmp_path, shard=0, shards=2) == 0
    # 102,400 bytes alone in build 0; 70,000 + the small config.json in build 1.
    assert sorted(first) == ["config.json", "model-00002-of-00002.safetensors"]
    assert data.downloads == ["model-00001-of-00002.safetensors"]
    assert marker.read_text() == f"{MODEL}@{COMMIT}\n"
    assert bucket.writes[-1] == f"write {MODEL}/.download-complete"
    manifest = json.loads((bucket.root / MODEL / ".manifest.json").read_text())
    assert len(manifest["files"]) == 3


def test_a_failed_build_leaves_no_marker_and_its_rerun_completes_the_checkpoint(bucket, tmp_path):
    data = repo()
    data.corrupt["model-00001-of-00002.safetensors"] = 5
    marker = bucket.root / MODEL / ".download-complete"
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path, attempts=1, shard=0, shards=2) == 1
        assert stage(hub, bucket, tmp_path, shard=1, shards=2) == 0
        assert not marker.exists(), "build 0's file is missing"
        data.corrupt.clear()
        data.downloads.clear()
        assert stage(hub, bucket, tmp_path, shard=0, shards=2) == 0
    assert data.downloads == ["model-00001-of-00002.safetensors"]
    assert marker.read_text() == f"{MODEL}@{COMMIT}\n"


def test_a_file_of_another_build_with_a_stale_hash_keeps_the_marker_away(bucket, tmp_path):
    data = repo()
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path, shard=1, shards=2) == 0
        # An object from an older revision under the name build 1 staged.
        bucket.metadata[f"{MODEL}/config.json"] = {"hub-hash": "git-sha1:older"}
        assert stage(hub, bucket, tmp_path, shard=0, shards=2) == 0
    assert not (bucket.root / MODEL / ".download-complete").exists()


def test_the_timeline_records_the_download_phase_and_reads_back(bucket, tmp_path):
    data = repo()
    timeline_store = FolderBucket(tmp_path / "timeline")
    timeline = fetch_weights.Timeline(timeline_store, "stage-weights-b1.json", "b1", MODEL)
    with StandInHub(data) as hub:
        assert stage(hub, bucket, tmp_path, timeline=timeline) == 0
    runs = timeline_reader.load(tmp_path / "timeline")
    (run,) = runs
    assert run.writer == "stage-weights" and run.run == "b1"
    (phase,) = timeline_reader.phases(run)
    assert phase.name == "download" and phase.end is not None and phase.seconds >= 0


def test_the_token_comes_from_secret_manager_only_when_named(monkeypatch):
    assert fetch_weights.secret_token("") is None


def test_the_build_step_stages_into_the_bucket_and_its_timeline(tmp_path, monkeypatch):
    """main() as Cloud Build runs it, the bucket client swapped for folders."""
    buckets: dict[tuple[str, str], FolderBucket] = {}

    def folder_store(bucket, prefix):
        return buckets.setdefault((bucket, prefix), FolderBucket(tmp_path / bucket / prefix))

    monkeypatch.setattr(fetch_weights, "GcsStore", folder_store)
    data = repo()
    with StandInHub(data) as hub:
        for key, value in {
            "MODEL_ID": MODEL,
            "MODEL_REVISION": "main",
            "BUCKET": "stack-bucket",
            "PREFIX": "models",
            "TIMELINE_PREFIX": "timeline",
            "HF_TOKEN_SECRET": "",
            "HF_ENDPOINT": hub.url,
            "BUILD_ID": "b-42",
            "SCRATCH": str(tmp_path / "scratch"),
            "WORKERS": "2",
        }.items():
            monkeypatch.setenv(key, value)
        assert fetch_weights.main() == 0
    staged = tmp_path / "stack-bucket" / "models" / MODEL
    assert (staged / ".download-complete").read_text() == f"{MODEL}@{COMMIT}\n"
    (run,) = timeline_reader.load(tmp_path / "stack-bucket" / "timeline")
    assert run.run == "b-42" and run.model == MODEL
    assert not (tmp_path / "scratch").exists()


def test_giving_up_logs_the_line_the_alert_matches(tmp_path, monkeypatch, capsys):
    """An unreachable Hub: every listing attempt fails, nothing is staged, and the
    log ends with the line infra/monitoring.py's alert filter matches."""
    monkeypatch.setattr(fetch_weights, "GcsStore", lambda b, p: FolderBucket(tmp_path / b / p))
    monkeypatch.setattr(fetch_weights.time, "sleep", lambda seconds: None)
    for key, value in {
        "MODEL_ID": MODEL,
        "BUCKET": "stack-bucket",
        "HF_ENDPOINT": "http://127.0.0.1:9",  # discard port: connection refused
        "ATTEMPTS": "2",
        "SCRATCH": str(tmp_path / "scratch"),
    }.items():
        monkeypatch.setenv(key, value)
    assert fetch_weights.main() == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "weights staging failed" in last
    assert not (tmp_path / "stack-bucket" / "models" / MODEL / ".download-complete").exists()
