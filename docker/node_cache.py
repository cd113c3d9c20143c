"""The checkpoint's copy on the GPU node's local SSD, and the pod's timeline events.

    node_cache.py sync SOURCE TARGET      copy the staged checkpoint to local SSD
    node_cache.py record PHASE EVENT      add a timeline event (start/end/failed/mark)
    node_cache.py await-ready URL         wait for the server's 200, then record `ready`

`sync` runs in the serving pod's init container once the bucket's completion
marker exists. SOURCE is the checkpoint folder in the bucket (GCS FUSE, read
only), TARGET a folder on the node's local SSD (a hostPath, so it outlives the
pod). When TARGET's marker equals SOURCE's, nothing is copied: a re-created pod
on the same node starts from local SSD. Otherwise the files whose size or
recorded hash differ are copied (several at once, each to a temporary name,
then renamed), files the checkpoint no longer has are removed, and the
manifest and the marker are written last. The GCS FUSE CSI driver's own file
cache cannot do this: it lives in a per-pod volume and gcsfuse does not reuse
a cache across mounts.

Timeline: TIMELINE_FILE (one JSON document per pod, in the bucket's
`timeline/` folder, read by clients/timeline.py), POD_NAME, NODE_NAME, MODEL_ID.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

MARKER = ".download-complete"
MANIFEST = ".manifest.json"
PARTIAL = ".partial"
WRITER = "serving-pod"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log(message: str) -> None:
    print(f"[{now()}] node-cache: {message}", flush=True)


def record(phase: str, event: str, **detail) -> None:
    """Append an event to this pod's timeline document (never fails the caller)."""
    path = os.environ.get("TIMELINE_FILE")
    if not path:
        return
    try:
        target = Path(path)
        document = (
            json.loads(target.read_text())
            if target.is_file()
            else {
                "writer": WRITER,
                "run": os.environ.get("POD_NAME", "pod"),
                "model": os.environ.get("MODEL_ID", ""),
                "host": os.environ.get("NODE_NAME", ""),
                "events": [],
            }
        )
        entry = {"phase": phase, "event": event, "time": now()}
        if detail:
            entry["detail"] = detail
        document["events"].append(entry)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, indent=1))
    except Exception as err:
        log(f"timeline not written: {err}")


def manifest_of(folder: Path) -> dict[str, dict]:
    """path -> {size, hash}: from the stager's manifest, else from the files themselves
    (a checkpoint staged by hand has only the marker)."""
    manifest = folder / MANIFEST
    if manifest.is_file():
        return {f["path"]: f for f in json.loads(manifest.read_text())["files"]}
    return {
        p.relative_to(folder).as_posix(): {
            "path": p.relative_to(folder).as_posix(),
            "size": p.stat().st_size,
            "hash": None,
        }
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _read_text(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def sync(source: Path, target: Path, workers: int = 32) -> int:
    wanted_marker = _read_text(source / MARKER)
    if wanted_marker is None:
        log(f"{source} has no completion marker")
        return 1
    if _read_text(target / MARKER) == wanted_marker:
        log(f"local SSD already holds {wanted_marker.strip()}: nothing to copy")
        record("node-copy", "mark", copied_bytes=0)
        return 0
    record("node-copy", "start")
    started = time.monotonic()
    target.mkdir(parents=True, exist_ok=True)
    (target / MARKER).unlink(missing_ok=True)
    wanted = manifest_of(source)
    have = json.loads(_read_text(target / MANIFEST) or '{"files": []}')
    have_hash = {f["path"]: f.get("hash") for f in have["files"]}

    def current(entry: dict) -> bool:
        local = target / entry["path"]
        return (
            local.is_file()
            and local.stat().st_size == entry["size"]
            and entry.get("hash") is not None
            and have_hash.get(entry["path"]) == entry["hash"]
        )

    todo = [entry for entry in wanted.values() if not current(entry)]

    def copy(entry: dict) -> int:
        final = target / entry["path"]
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(final.name + PARTIAL)
        shutil.copyfile(source / entry["path"], partial)
        size = partial.stat().st_size
        if size != entry["size"]:
            partial.unlink()
            raise OSError(f"{entry['path']}: copied {size} bytes, expected {entry['size']}")
        partial.replace(final)
        return size

    try:
        with ThreadPoolExecutor(workers) as pool:
            copied = sum(pool.map(copy, todo))
    except OSError as err:
        log(f"copy failed: {err}")
        record("node-copy", "failed", error=str(err))
        return 1
    for path in sorted(target.rglob("*"), reverse=True):
        relative = path.relative_to(target).as_posix()
        if path.is_file() and not path.name.startswith(".") and relative not in wanted:
            path.unlink()
    (target / MANIFEST).write_text(json.dumps({"files": list(wanted.values())}))
    (target / MARKER).write_text(wanted_marker)
    seconds = time.monotonic() - started
    log(
        f"copied {len(todo)} of {len(wanted)} files, {copied / 1e9:.1f} GB in {seconds:.0f} s "
        f"({copied / 1e9 / max(seconds, 1e-3):.2f} GB/s)"
    )
    record("node-copy", "end", copied_bytes=copied, files=len(todo))
    return 0


def await_ready(url: str, poll: float = 10, limit: float = 6 * 3600) -> int:
    """Poll the server until it answers 200; record `ready` (runs beside it)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    record("server", "end")
                    record("ready", "mark")
                    return 0
        except OSError:
            pass
        time.sleep(poll)
    return 1


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "sync":
        return sync(Path(args[0]), Path(args[1]), int(os.environ.get("COPY_WORKERS", "32")))
    if command == "record":
        record(args[0], args[1])
        return 0
    if command == "await-ready":
        return await_ready(
            args[0],
            float(os.environ.get("READY_POLL_SECONDS", "10")),
            float(os.environ.get("READY_LIMIT_SECONDS", str(6 * 3600))),
        )
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
