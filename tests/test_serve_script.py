"""docker/serve.sh, run for real with a stand-in trtllm-serve on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "serve.sh"


def run(tmp_path: Path, *args: str, wait: str = "0", marker: bool = True):
    root = tmp_path / "models"
    model = root / "deepseek-ai" / "DeepSeek-R1-0528"
    model.mkdir(parents=True, exist_ok=True)
    if marker:
        (model / ".download-complete").write_text("deepseek-ai/DeepSeek-R1-0528@main\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "trtllm-serve"
    stub.write_text('#!/usr/bin/env bash\necho "trtllm-serve $*"\n')
    stub.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MODEL_ID": "deepseek-ai/DeepSeek-R1-0528",
        "MODEL_ROOT": str(root),
        "WEIGHTS_WAIT_SECONDS": wait,
        "POLL_SECONDS": "1",
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_serves_the_local_checkpoint_with_the_given_arguments(tmp_path):
    done = run(tmp_path, "--host=0.0.0.0", "--port=8000")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == f"trtllm-serve {tmp_path}/models/deepseek-ai/DeepSeek-R1-0528 --host=0.0.0.0 --port=8000"
    )


def test_wait_mode_returns_once_the_weights_are_complete(tmp_path):
    done = run(tmp_path, "--wait-for-weights")
    assert done.returncode == 0
    assert "trtllm-serve" not in done.stdout


def test_missing_weights_fail_after_the_budget_with_a_pointer_to_the_job(tmp_path):
    done = run(tmp_path, "--wait-for-weights", wait="2", marker=False)
    assert done.returncode == 1
    assert "did not appear within 2s" in done.stderr
    assert "fetch-weights" in done.stderr


def test_model_id_is_required(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MODEL_ID"}
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0
    assert "MODEL_ID must name the Hugging Face repository" in done.stderr
