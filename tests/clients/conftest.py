"""A real OpenAI-compatible server on loopback (`transformers serve`) with tiny models."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clients import tiny_models

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every pytest-xdist worker of this run sees (each worker's own
    temporary folder is in it); without xdist, this run's temporary folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on `path` (made if missing) against the other workers."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> dict[str, Path]:
    """The tiny models, built once per run (the first worker to need them builds them)."""
    root = shared_root(tmp_path_factory)
    built = root / "models" / "built.json"
    with locked(root / "models.lock"):
        if not built.exists():
            models = tiny_models.build_all(root / "models")
            built.write_text(json.dumps({name: str(path) for name, path in models.items()}))
        return {name: Path(path) for name, path in json.loads(built.read_text()).items()}


@pytest.fixture(scope="session")
def server(tiny_models_dir, tmp_path_factory) -> Iterator[str]:
    """Base URL (`.../v1`) of `transformers serve` on a free loopback port: one
    server per run, which the pytest-xdist workers share. The worker that
    started it stops it once no other worker uses it (or has crashed)."""
    root = shared_root(tmp_path_factory)
    state, lock = root / "serve.json", root / "serve.lock"
    process = None
    with locked(lock):
        if state.exists():
            shared = json.loads(state.read_text())
        else:
            process, url = start_server(root)
            shared = {"url": url, "users": []}
        shared["users"].append(os.getpid())
        state.write_text(json.dumps(shared))
    try:
        yield shared["url"]
    finally:
        with locked(lock):
            shared = json.loads(state.read_text())
            shared["users"].remove(os.getpid())
            state.write_text(json.dumps(shared))
        while process is not None:
            with locked(lock):
                if not any(map(alive, json.loads(state.read_text())["users"])):
                    state.unlink()  # a worker that comes later starts its own
                    stop_server(process)
                    process = None
            time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = root / "serve.log"
    # No hub access, and an empty cache: /v1/models lists the cache's models first.
    cache = root / "hf-cache"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(cache),
        "HF_HUB_CACHE": str(cache / "hub"),
    }
    command = [
        str(Path(sys.executable).parent / "transformers"),
        "serve",
        "--host=127.0.0.1",
        f"--port={port}",
        "--device=cpu",
    ]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            pytest.fail(f"transformers serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_chat(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m clients.chat ...` as a user runs it (no OPENAI_* from this shell),
    in this process: what `python -m` runs (`sys.exit(main())`), with its output
    and exit code captured. Starting a Python with the OpenAI SDK takes about a
    second; the tests that need a real process (the wrapper script, a missing
    package) start one themselves."""
    from clients import chat

    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        for key in set(os.environ) - set(clean):
            patch.delenv(key)
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        patch.chdir(REPO)
        try:
            code: Any = chat.main(list(args))
        except SystemExit as exit:
            code = exit.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): the message on stderr, status 1
        print(code, file=err)
        code = 1
    command = [sys.executable, "-m", "clients.chat", *args]
    return subprocess.CompletedProcess(command, code, out.getvalue(), err.getvalue())
