"""Copies a Hugging Face checkpoint into the stack's bucket, once.

Runs in the weights Job with the bucket mounted by GCS FUSE at MODEL_ROOT.
Files already complete are skipped (huggingface_hub compares them with the
hub's metadata), interrupted ones resume, failures are retried with backoff,
and a marker file written last tells the serving pods the copy is complete.

Environment: MODEL_ID, MODEL_REVISION (default main), MODEL_ROOT (default
/models), HF_TOKEN (optional, from the Kubernetes Secret), ATTEMPTS (5),
MAX_WORKERS (8).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

MARKER = ".download-complete"
# The original FP8 repositories also carry a second copy of the weights under
# original/; the server does not read it.
IGNORE = ["original/*", "*.pth"]


def marker_text(model_id: str, revision: str) -> str:
    return f"{model_id}@{revision}\n"


def is_complete(target: Path, model_id: str, revision: str) -> bool:
    marker = target / MARKER
    return marker.is_file() and marker.read_text() == marker_text(model_id, revision)


def fetch(
    model_id: str, revision: str, target: Path, attempts: int, workers: int, download=None
) -> int:
    """Download into `target` until complete; return a process exit code."""
    if is_complete(target, model_id, revision):
        print(f"{model_id}@{revision} is already complete in {target}")
        return 0
    if download is None:
        from huggingface_hub import snapshot_download as download
    target.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            download(
                repo_id=model_id,
                revision=revision,
                local_dir=str(target),
                ignore_patterns=IGNORE,
                max_workers=workers,
                token=os.environ.get("HF_TOKEN") or None,
            )
        except Exception as err:  # every failure is retried the same way
            wait = min(600, 30 * 2 ** (attempt - 1))
            print(f"attempt {attempt}/{attempts} failed: {err}", file=sys.stderr)
            if attempt < attempts:
                print(f"retrying in {wait}s", file=sys.stderr)
                time.sleep(wait)
            continue
        (target / MARKER).write_text(marker_text(model_id, revision))
        print(f"{model_id}@{revision} complete in {target}")
        return 0
    return 1


def main() -> int:
    model_id = os.environ["MODEL_ID"]
    revision = os.environ.get("MODEL_REVISION", "main")
    root = Path(os.environ.get("MODEL_ROOT", "/models"))
    os.environ.setdefault("HF_HUB_ENABLE_HF_TRANSFER", "1")
    return fetch(
        model_id,
        revision,
        root / model_id,
        attempts=int(os.environ.get("ATTEMPTS", "5")),
        workers=int(os.environ.get("MAX_WORKERS", "8")),
    )


if __name__ == "__main__":
    sys.exit(main())
