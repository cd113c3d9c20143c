"""Stages a Hugging Face checkpoint into Cloud Storage: verified, resumable, marked complete last.

Runs as a Cloud Build step (docker/weights/cloudbuild.yaml) on a slim Python
image: it needs neither the GKE cluster nor the serving image, so it starts as
soon as the bucket and its IAM exist. Each file is downloaded by
huggingface_hub (Xet, HF_XET_HIGH_PERFORMANCE) to local scratch space, checked
against the size and hash the Hub records for it (LFS sha256, or the git blob
id of small files), uploaded to gs://BUCKET/PREFIX/MODEL_ID/ with that hash in
the object's metadata, and deleted locally; several files are in flight at
once. A rerun skips objects whose recorded hash and size already match
(resume). The manifest and then the completion marker are written only after
every file is in the bucket and verified; serving pods wait for the marker.

Several builds can stage one checkpoint together (SHARD of SHARDS): each takes
a share of the files, balanced by size, so the download runs at the sum of
their rates. Each build, its share staged, checks the whole listing in the
bucket; the one that finds every file there and verified writes the manifest
and the marker. Cloud Storage is strongly consistent for object reads,
metadata and listings after a write ("Cloud Storage consistency"), so the build
whose check starts last sees every upload, and no build marks the checkpoint
complete while a file is missing. A build that fails leaves no marker; the
next `pulumi up` runs it again and it resumes.

Environment: MODEL_ID, MODEL_REVISION (main), BUCKET, PREFIX (models),
TIMELINE_PREFIX (timeline), HF_TOKEN_SECRET (optional: a Secret Manager
version, `projects/P/secrets/S/versions/V`, read at run time so the token is
never in the build's arguments or logs), SCRATCH (/workspace/scratch),
WORKERS (8 files in flight), ATTEMPTS (4 per file), BUILD_ID (run id),
SHARD and SHARDS (this build's share: 0 of 1 by default, the whole checkpoint).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

MARKER = ".download-complete"
MANIFEST = ".manifest.json"
# The original FP8 repositories also carry a second copy of the weights under
# original/; the server does not read it.
IGNORE = ("original/*", "*.pth")
# Object metadata keys: the Hub's hash of the file, checked before upload.
HASH_KEY = "hub-hash"
WRITER = "stage-weights"
CHUNK = 16 * 1024 * 1024


class VerificationError(Exception):
    """A downloaded file does not match what the Hub records for it."""


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    # `sha256:<hex>` for LFS/Xet files, `git-sha1:<hex>` (git blob id) for small ones.
    hash: str


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    metadata: dict[str, str]


class Store(Protocol):
    """Where the checkpoint goes: a bucket prefix (GcsStore) or, in tests, a folder."""

    def stat(self, name: str) -> ObjectInfo | None: ...
    def upload(self, local: Path, name: str, metadata: dict[str, str]) -> None: ...
    def read_text(self, name: str) -> str | None: ...
    def write_text(self, name: str, text: str) -> None: ...
    def delete(self, name: str) -> None: ...


def marker_text(model_id: str, commit: str) -> str:
    return f"{model_id}@{commit}\n"


def wanted(path: str) -> bool:
    return not any(fnmatch.fnmatch(path, pattern) for pattern in IGNORE)


def hub_files(info) -> tuple[str, list[HubFile]]:
    """(commit, files) from `HfApi.model_info(..., files_metadata=True)`."""
    files = []
    for sibling in info.siblings or []:
        if not wanted(sibling.rfilename):
            continue
        if sibling.lfs is not None:
            files.append(
                HubFile(sibling.rfilename, sibling.lfs.size, f"sha256:{sibling.lfs.sha256}")
            )
        elif sibling.size is not None and sibling.blob_id:
            files.append(HubFile(sibling.rfilename, sibling.size, f"git-sha1:{sibling.blob_id}"))
        else:
            raise VerificationError(f"the Hub records no size or hash for {sibling.rfilename}")
    if not files:
        raise VerificationError("the Hub lists no files for this revision")
    return info.sha, sorted(files, key=lambda f: f.path)


def shard_files(files: list[HubFile], shard: int, shards: int) -> list[HubFile]:
    """Build `shard`'s share of `files` (0 <= shard < shards): the largest files
    first, each to the build with the fewest bytes so far (ties: the lowest
    number), so every build computes the same split from the same listing."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards}: expected 0 <= shard < shards")
    loads = [0] * shards
    shares: list[list[HubFile]] = [[] for _ in range(shards)]
    for hub_file in sorted(files, key=lambda f: (-f.size, f.path)):
        least = min(range(shards), key=lambda k: (loads[k], k))
        loads[least] += hub_file.size
        shares[least].append(hub_file)
    return sorted(shares[shard], key=lambda f: f.path)


def file_hash(path: Path, kind: str) -> str:
    """`sha256:<hex>` or `git-sha1:<hex>` (git's blob id: sha1 of `blob <size>\\0` + bytes)."""
    if kind == "sha256":
        digest = hashlib.sha256()
    else:
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return f"{kind}:{digest.hexdigest()}"


def verify(path: Path, expected: HubFile) -> None:
    """Refuse a partial or corrupt download before it reaches the bucket."""
    size = path.stat().st_size
    if size != expected.size:
        raise VerificationError(
            f"{expected.path}: {size} bytes, the Hub records {expected.size} (partial download)"
        )
    actual = file_hash(path, expected.hash.split(":", 1)[0])
    if actual != expected.hash:
        raise VerificationError(f"{expected.path}: hash {actual}, the Hub records {expected.hash}")


def already_staged(store: Store, name: str, expected: HubFile) -> bool:
    found = store.stat(name)
    return (
        found is not None
        and found.size == expected.size
        and found.metadata.get(HASH_KEY) == expected.hash
    )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Timeline:
    """Phase start/end events of this run, rewritten whole at each event
    (`<timeline prefix>/<run>.json`, read by clients/timeline.py)."""

    def __init__(self, store: Store | None, name: str, run: str, model: str):
        self.store, self.name = store, name
        self.document = {"writer": WRITER, "run": run, "model": model, "events": []}
        self.lock = threading.Lock()

    def record(self, phase: str, event: str, **detail) -> None:
        with self.lock:
            entry = {"phase": phase, "event": event, "time": now()}
            if detail:
                entry["detail"] = detail
            self.document["events"].append(entry)
            if self.store is not None:
                try:
                    self.store.write_text(self.name, json.dumps(self.document, indent=1))
                except Exception as err:  # the timeline never fails the staging
                    log(f"timeline not written: {err}")


def log(message: str) -> None:
    print(f"[{now()}] {message}", flush=True)


def rate(nbytes: int, seconds: float) -> str:
    return (
        f"{nbytes / 1e9:.2f} GB in {seconds:.0f} s ({nbytes / 1e6 / max(seconds, 1e-3):.0f} MB/s)"
    )


class Stager:
    def __init__(
        self,
        store: Store,
        model_id: str,
        commit: str,
        files: list[HubFile],
        download: Callable[[str, Path], Path],
        scratch: Path,
        workers: int = 8,
        attempts: int = 4,
        timeline: Timeline | None = None,
        sleep: Callable[[float], None] = time.sleep,
        shard: int = 0,
        shards: int = 1,
    ):
        self.store, self.model_id, self.commit, self.files = store, model_id, commit, files
        self.share = shard_files(files, shard, shards)
        self.shard, self.shards = shard, shards
        self.download, self.scratch = download, scratch
        self.workers, self.attempts, self.sleep = workers, attempts, sleep
        self.timeline = timeline or Timeline(None, "", "", model_id)
        self.done_bytes = 0
        self.lock = threading.Lock()
        self.started = time.monotonic()

    def name(self, path: str) -> str:
        return f"{self.model_id}/{path}"

    def run(self) -> int:
        marker = self.name(MARKER)
        expected = marker_text(self.model_id, self.commit)
        present = self.store.read_text(marker)
        if present == expected:
            log(f"{self.model_id}@{self.commit} is already complete")
            return 0
        if present is not None:
            # Another revision: un-mark it before any file changes, so no new
            # serving pod starts on a half-replaced checkpoint.
            log(f"replacing {present.strip()} with {self.model_id}@{self.commit}")
            self.store.delete(marker)
        total = sum(f.size for f in self.share)
        log(
            f"build {self.shard + 1} of {self.shards}: staging {len(self.share)} of "
            f"{len(self.files)} files, {total / 1e9:.1f} GB, {self.workers} in flight"
        )
        build = f"{self.shard + 1}/{self.shards}"
        self.timeline.record("download", "start", files=len(self.share), bytes=total, build=build)
        self.scratch.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(self.workers) as pool:
            failures = [err for err in pool.map(self.stage_one, self.share) if err]
        elapsed = time.monotonic() - self.started
        if failures:
            for err in failures:
                log(f"FAILED {err}")
            self.timeline.record("download", "failed", failed=len(failures))
            log(f"{len(failures)} file(s) not staged; no completion marker written")
            return 1
        missing = self.missing_elsewhere()
        if missing:
            self.timeline.record("download", "end", bytes=self.done_bytes, seconds=round(elapsed))
            log(
                f"build {build} done: {rate(self.done_bytes, elapsed)}; {len(missing)} file(s) "
                "of the other builds are not staged yet: the last build to finish writes the marker"
            )
            return 0
        # Every file is in the bucket and matched the Hub: manifest, then marker.
        manifest = {
            "model": self.model_id,
            "commit": self.commit,
            "files": [{"path": f.path, "size": f.size, "hash": f.hash} for f in self.files],
        }
        self.store.write_text(self.name(MANIFEST), json.dumps(manifest, indent=1))
        self.store.write_text(marker, expected)
        self.timeline.record("download", "end", bytes=self.done_bytes, seconds=round(elapsed))
        log(f"complete: {rate(self.done_bytes, elapsed)} transferred this run")
        return 0

    def missing_elsewhere(self) -> list[str]:
        """The other builds' files not (yet) in the bucket with the Hub's size and hash."""
        mine = set(self.share)
        others = [f for f in self.files if f not in mine]
        with ThreadPoolExecutor(self.workers) as pool:
            staged = pool.map(lambda f: already_staged(self.store, self.name(f.path), f), others)
            return [f.path for f, ok in zip(others, staged, strict=True) if not ok]

    def stage_one(self, hub_file: HubFile) -> str | None:
        name = self.name(hub_file.path)
        if already_staged(self.store, name, hub_file):
            log(f"skip {hub_file.path}: already in the bucket and verified")
            return None
        for attempt in range(1, self.attempts + 1):
            local = None
            try:
                start = time.monotonic()
                local = self.download(hub_file.path, self.scratch)
                fetched = time.monotonic() - start
                verify(local, hub_file)
                self.store.upload(local, name, {HASH_KEY: hub_file.hash})
                self.progress(hub_file, fetched, time.monotonic() - start)
                return None
            except Exception as err:  # retried the same way, then reported
                log(f"{hub_file.path}: attempt {attempt}/{self.attempts} failed: {err}")
                if attempt < self.attempts:
                    self.sleep(min(300, 15 * 2 ** (attempt - 1)))
            finally:
                if local is not None and local.exists():
                    local.unlink()
        return f"{hub_file.path} after {self.attempts} attempts"

    def progress(self, hub_file: HubFile, fetched: float, total: float) -> None:
        with self.lock:
            self.done_bytes += hub_file.size
            overall = rate(self.done_bytes, time.monotonic() - self.started)
        log(
            f"{hub_file.path}: download {rate(hub_file.size, fetched)}, "
            f"verified and uploaded in {total:.0f} s; so far {overall}"
        )


# --------------------------------------------------------------------------
# Cloud Storage and Hugging Face, as used in Cloud Build


class GcsStore:
    """gs://bucket/prefix/ through google-cloud-storage (CRC32C-checked uploads)."""

    def __init__(self, bucket: str, prefix: str):
        from google.cloud import storage

        self.bucket = storage.Client().bucket(bucket)
        self.prefix = prefix.strip("/")

    def _blob(self, name: str):
        return self.bucket.blob(f"{self.prefix}/{name}" if self.prefix else name)

    def stat(self, name: str) -> ObjectInfo | None:
        blob = self.bucket.get_blob(self._blob(name).name)
        return None if blob is None else ObjectInfo(blob.size or 0, dict(blob.metadata or {}))

    def upload(self, local: Path, name: str, metadata: dict[str, str]) -> None:
        blob = self._blob(name)
        blob.metadata = metadata
        blob.chunk_size = 256 * 1024 * 1024  # resumable upload in 256 MiB parts
        blob.upload_from_filename(str(local), checksum="crc32c", timeout=600)

    def read_text(self, name: str) -> str | None:
        from google.api_core.exceptions import NotFound

        try:
            return self._blob(name).download_as_text()
        except NotFound:
            return None

    def write_text(self, name: str, text: str) -> None:
        self._blob(name).upload_from_string(text, content_type="application/json")

    def delete(self, name: str) -> None:
        from google.api_core.exceptions import NotFound

        # Another build of the same run may have deleted it first.
        with contextlib.suppress(NotFound):
            self._blob(name).delete()


def secret_token(version: str) -> str | None:
    """The Hugging Face token from Secret Manager (REST, with the build's credentials)."""
    if not version:
        return None
    import base64

    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    response = AuthorizedSession(credentials).get(
        f"https://secretmanager.googleapis.com/v1/{version}:access", timeout=60
    )
    response.raise_for_status()
    return base64.b64decode(response.json()["payload"]["data"]).decode().strip()


def hub_listing(
    model_id: str, revision: str, token: str | None, endpoint: str | None = None
) -> tuple[str, list[HubFile]]:
    """The revision's commit and its files with their recorded sizes and hashes."""
    from huggingface_hub import HfApi

    info = HfApi(endpoint=endpoint).model_info(
        model_id, revision=revision, files_metadata=True, token=token or False
    )
    return hub_files(info)


def hub_downloader(
    model_id: str, commit: str, token: str | None, endpoint: str | None = None
) -> Callable[[str, Path], Path]:
    """One file into local scratch space (Xet when the repository is Xet-backed)."""
    from huggingface_hub import hf_hub_download

    def download(path: str, scratch: Path) -> Path:
        return Path(
            hf_hub_download(
                model_id,
                path,
                revision=commit,
                local_dir=scratch,
                token=token or False,
                endpoint=endpoint,
            )
        )

    return download


# Logged when staging gives up; infra/monitoring.py alerts on it.
GAVE_UP = "weights staging failed"


def main() -> int:
    code = stage()
    if code:
        log(f"{GAVE_UP}: no completion marker; fix the cause above and run again to resume")
    return code


def stage() -> int:
    model_id = os.environ["MODEL_ID"]
    revision = os.environ.get("MODEL_REVISION", "main")
    bucket, prefix = os.environ["BUCKET"], os.environ.get("PREFIX", "models")
    run = os.environ.get("BUILD_ID") or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    token = secret_token(os.environ.get("HF_TOKEN_SECRET", ""))
    endpoint = os.environ.get("HF_ENDPOINT") or None
    store = GcsStore(bucket, prefix)
    timeline = Timeline(
        GcsStore(bucket, os.environ.get("TIMELINE_PREFIX", "timeline")),
        f"{WRITER}-{run}.json",
        run,
        model_id,
    )
    attempts = int(os.environ.get("ATTEMPTS", "4"))
    for attempt in range(1, attempts + 1):
        try:
            commit, files = hub_listing(model_id, revision, token, endpoint)
            break
        except Exception as err:  # the Hub's API, like any file, gets retries
            log(f"listing {model_id}@{revision}: attempt {attempt}/{attempts} failed: {err}")
            if attempt == attempts:
                return 1
            time.sleep(15 * 2 ** (attempt - 1))
    log(f"{model_id}@{revision} is commit {commit}")
    scratch = Path(os.environ.get("SCRATCH", "/workspace/scratch"))
    stager = Stager(
        store,
        model_id,
        commit,
        files,
        hub_downloader(model_id, commit, token, endpoint),
        scratch,
        workers=int(os.environ.get("WORKERS", "8")),
        attempts=attempts,
        timeline=timeline,
        shard=int(os.environ.get("SHARD", "0")),
        shards=int(os.environ.get("SHARDS", "1")),
    )
    try:
        return stager.run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
