"""A real OpenAI-compatible server on loopback (`transformers serve`) with tiny models."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
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


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> dict[str, Path]:
    return tiny_models.build_all(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def server(tiny_models_dir, tmp_path_factory) -> str:
    """Base URL (`.../v1`) of `transformers serve` on a free loopback port."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    # No hub access, and an empty cache: /v1/models lists the cache's models first.
    cache = tmp_path_factory.mktemp("hf-cache")
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
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


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
