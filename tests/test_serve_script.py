"""docker/serve.sh and docker/node_cache.py, run for real with a stand-in trtllm-serve on PATH.

The bucket's checkpoint folder and the node's local SSD are folders here; the
init container's mode (`--wait-for-weights`) copies one to the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from clients import timeline

SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "serve.sh"
MODEL = "deepseek-ai/DeepSeek-R1-0528"
MARKER = f"{MODEL}@0123abcd\n"
FILES = {"config.json": b"{}\n", "model-00001-of-00001.safetensors": b"\x01" * 4096}


def stage(root: Path, files=FILES, marker: str | None = MARKER, manifest: bool = True) -> Path:
    """A staged checkpoint as docker/weights/fetch_weights.py leaves it."""
    model = root / MODEL
    model.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (model / name).write_bytes(data)
    if manifest:
        entries = [
            {"path": name, "size": len(data), "hash": "sha256:" + hashlib.sha256(data).hexdigest()}
            for name, data in files.items()
        ]
        (model / ".manifest.json").write_text(json.dumps({"files": entries}))
    if marker is not None:
        (model / ".download-complete").write_text(marker)
    return model


def run(tmp_path: Path, *args: str, wait: str = "0", node_cache: bool = True, timeline_file=None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "trtllm-serve"
    stub.write_text('#!/usr/bin/env bash\necho "trtllm-serve $*"\n')
    stub.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MODEL_ID": MODEL,
        "MODEL_ROOT": str(tmp_path / "models"),
        "NODE_CACHE": str(tmp_path / "ssd") if node_cache else "",
        "WEIGHTS_WAIT_SECONDS": wait,
        "POLL_SECONDS": "1",
        "POD_NAME": "server-abc",
        "NODE_NAME": "node-1",
        "READY_POLL_SECONDS": "0.2",
        "READY_LIMIT_SECONDS": "1",
    }
    env.pop("TIMELINE_FILE", None)
    if timeline_file:
        env["TIMELINE_FILE"] = str(timeline_file)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_init_mode_copies_the_checkpoint_to_local_ssd_and_marks_it_last(tmp_path):
    stage(tmp_path / "models")
    done = run(tmp_path, "--wait-for-weights")
    assert done.returncode == 0, done.stderr + done.stdout
    local = tmp_path / "ssd" / MODEL
    for name, data in FILES.items():
        assert (local / name).read_bytes() == data
    assert (local / ".download-complete").read_text() == MARKER
    assert "copied 2 of 2 files" in done.stdout


def test_a_recreated_pod_on_the_same_node_reads_local_ssd_without_copying(tmp_path):
    stage(tmp_path / "models")
    assert run(tmp_path, "--wait-for-weights").returncode == 0
    # The next pod: the bucket's copy is unreadable, the node's copy is used.
    for path in (tmp_path / "models" / MODEL).glob("*.safetensors"):
        path.write_bytes(b"")
    again = run(tmp_path, "--wait-for-weights")
    assert again.returncode == 0
    assert "nothing to copy" in again.stdout
    served = run(tmp_path, "--port=8000")
    assert served.returncode == 0, served.stderr
    assert f"trtllm-serve {tmp_path}/ssd/{MODEL} --port=8000" in served.stdout


def test_a_new_revision_replaces_only_changed_files_and_drops_removed_ones(tmp_path):
    stage(tmp_path / "models")
    run(tmp_path, "--wait-for-weights")
    local = tmp_path / "ssd" / MODEL
    (local / "config.json").write_bytes(b"{}\n")  # unchanged content, kept
    bucket = tmp_path / "models" / MODEL
    (bucket / "model-00001-of-00001.safetensors").unlink()
    new_files = {"config.json": FILES["config.json"], "model-new.safetensors": b"\x02" * 100}
    stage(tmp_path / "models", files=new_files, marker=f"{MODEL}@feedbeef\n")
    done = run(tmp_path, "--wait-for-weights")
    assert done.returncode == 0, done.stdout
    assert "copied 1 of 2 files" in done.stdout
    assert not (local / "model-00001-of-00001.safetensors").exists()
    assert (local / "model-new.safetensors").read_bytes() == b"\x02" * 100
    assert (local / ".download-complete").read_text() == f"{MODEL}@feedbeef\n"


def test_a_checkpoint_staged_by_hand_without_a_manifest_is_copied_whole(tmp_path):
    stage(tmp_path / "models", manifest=False)
    assert run(tmp_path, "--wait-for-weights").returncode == 0
    assert (tmp_path / "ssd" / MODEL / "config.json").read_bytes() == FILES["config.json"]


def test_a_short_copy_is_refused_and_leaves_no_local_marker(tmp_path):
    model = stage(tmp_path / "models")
    manifest = json.loads((model / ".manifest.json").read_text())
    manifest["files"][1]["size"] += 1  # the bucket's file is shorter than recorded
    (model / ".manifest.json").write_text(json.dumps(manifest))
    done = run(tmp_path, "--wait-for-weights")
    assert done.returncode == 1
    assert "expected 4097" in done.stdout
    assert not (tmp_path / "ssd" / MODEL / ".download-complete").exists()


def test_without_a_node_cache_the_server_reads_the_bucket(tmp_path):
    stage(tmp_path / "models")
    done = run(tmp_path, "--host=0.0.0.0", "--port=8000", node_cache=False)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip().splitlines()[-1]
        == f"trtllm-serve {tmp_path}/models/{MODEL} --host=0.0.0.0 --port=8000"
    )


def test_missing_weights_fail_after_the_budget_with_a_pointer_to_the_build(tmp_path):
    stage(tmp_path / "models", marker=None)
    done = run(tmp_path, "--wait-for-weights", wait="2")
    assert done.returncode == 1
    assert "did not appear within 2s" in done.stderr
    assert "gcloud builds list" in done.stderr
    assert not (tmp_path / "ssd" / MODEL).exists()


def test_the_pod_records_its_phases_in_a_timeline_the_report_reads(tmp_path):
    stage(tmp_path / "models")
    document = tmp_path / "timeline" / "server-abc.json"
    assert run(tmp_path, "--wait-for-weights", timeline_file=document).returncode == 0
    assert run(tmp_path, "--port=8000", timeline_file=document).returncode == 0
    (pod,) = timeline.load(tmp_path / "timeline")
    assert (pod.writer, pod.run, pod.host, pod.model) == (
        "serving-pod",
        "server-abc",
        "node-1",
        MODEL,
    )
    names = [(p.name, p.end is not None) for p in timeline.phases(pod)]
    assert names[:3] == [("image-pulled", True), ("weights-wait", True), ("node-copy", True)]
    assert ("server", False) in names  # the stand-in server never becomes ready


def test_model_id_is_required(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MODEL_ID"}
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0
    assert "MODEL_ID must name the Hugging Face repository" in done.stderr
