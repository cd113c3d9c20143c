"""Behaviour that survivors of the mutation check (benchmarks/mutate.py) showed untested.

Each test names the mutant it kills; each checks behaviour a user relies on,
against literals or documented platform values.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from tests import test_fetch_weights as staging
from tests import test_run_benchmarks as benchmarks
from tests import test_serve_script as serve
from tests.clients.aiperf_results import summary
from tests.platform_fakes import platform
from tests.weights_hub import HubRepo, StandInHub
from workloads import pod


def test_a_read_only_bucket_mount_turns_the_gcs_fuse_file_cache_on():
    """pod-file-cache-off. GKE's Cloud Storage FUSE CSI driver: `fileCacheCapacity`
    defaults to "0", which disables the file cache; "-1" lets it use the whole
    cache volume (cloud.google.com/kubernetes-engine/docs/reference/
    cloud-storage-fuse-csi-driver/volume-attr)."""
    cached = pod.gcsfuse_volume("models", "bucket", "models", read_only=True)
    attributes = cached.csi.volume_attributes
    assert attributes["fileCacheCapacity"] == "-1"
    assert attributes["fileCacheForRangeRead"] == "true"
    written = pod.gcsfuse_volume("results", "bucket", "benchmarks", read_only=False)
    assert "fileCacheCapacity" not in written.csi.volume_attributes


def test_no_file_under_original_is_downloaded_or_staged(tmp_path):
    """fetch-original-folder: the repository's original/ folder (a second copy of
    the weights, whatever its file types) is neither downloaded nor uploaded."""
    data = HubRepo(
        staging.MODEL,
        files={
            "config.json": b"{}\n",
            "model-00001-of-00001.safetensors": b"\x05" * 50_000,
            "original/config.json": b'{"copy": true}\n',
            "original/model-00001-of-00001.safetensors": b"\x06" * 50_000,
        },
        lfs={"model-00001-of-00001.safetensors", "original/model-00001-of-00001.safetensors"},
    )
    bucket = staging.FolderBucket(tmp_path / "bucket")
    with StandInHub(data) as hub:
        assert staging.stage(hub, bucket, tmp_path) == 0
    assert sorted(bucket.uploads) == [
        f"{staging.MODEL}/config.json",
        f"{staging.MODEL}/model-00001-of-00001.safetensors",
    ]
    assert not [d for d in data.downloads if "original/" in d]


def test_a_failed_aiperf_run_is_a_failed_case_even_if_it_left_a_summary(tmp_path, capsys):
    """benchmarks-failed-measure-ignored: AIPerf exiting non-zero fails the case,
    whatever files it wrote before it stopped."""
    calls = []

    def aiperf(args, check):
        calls.append(args)
        folder = Path(next(a for a in args if a.startswith("--artifact-dir=")).split("=", 1)[1])
        (folder / "profile_export_aiperf.json").write_text(json.dumps(summary(100.0, 5.0)))
        return SimpleNamespace(returncode=2)

    with platform() as url:
        env = {"BASE_URL": url, "MODEL": "m", "TOKENIZER": "t",
               "MATRIX": "512x128x8", "RESULT_DIR": str(tmp_path)}  # fmt: skip
        assert benchmarks.rb.Benchmark(env, aiperf).run() == 1
    assert len(calls) == 1
    assert "failed cases: isl512_osl128_c8" in capsys.readouterr().err


def test_a_failed_copy_of_a_new_revision_leaves_the_node_without_a_marker(tmp_path):
    """node-cache-stale-marker: while a new revision is copied the node's old
    marker is gone, so a copy cut short is never taken for a complete one."""
    serve.stage(tmp_path / "models")
    assert serve.run(tmp_path, "--wait-for-weights").returncode == 0
    local = tmp_path / "ssd" / serve.MODEL
    assert (local / ".download-complete").read_text() == serve.MARKER
    new_files = {"config.json": b"{}\n", "model-00001-of-00001.safetensors": b"\x03" * 4096}
    model = serve.stage(tmp_path / "models", files=new_files, marker=f"{serve.MODEL}@feedbeef\n")
    manifest = json.loads((model / ".manifest.json").read_text())
    manifest["files"][1]["size"] += 1  # the bucket's new shard is shorter than recorded
    (model / ".manifest.json").write_text(json.dumps(manifest))
    assert serve.run(tmp_path, "--wait-for-weights").returncode == 1
    assert not (local / ".download-complete").exists()


def test_a_local_copy_without_its_marker_is_not_served(tmp_path):
    """serve-partial-local-copy: a folder on the local SSD that holds no
    completion marker (a copy still running, or cut short) is not served; the
    server reads the bucket's complete copy."""
    serve.stage(tmp_path / "models")
    serve.stage(tmp_path / "ssd", marker=None)
    done = serve.run(tmp_path, "--port=8000")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == (
        f"trtllm-serve {tmp_path}/models/{serve.MODEL} --port=8000"
    )
