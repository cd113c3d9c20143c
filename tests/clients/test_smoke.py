"""The smoke check, as a user runs it, against real and broken servers on loopback.

A real OpenAI-compatible server (`transformers serve` with the tiny models of
tiny_models.py) must pass it, and fail it where it really falls short (no
reasoning parser, another model). The failures a healthy server does not
produce (503 while loading, a stream cut mid-answer) come from a stand-in
that otherwise answers like trtllm-serve.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import REPO
from tests.clients.tiny_models import ANSWER, REASONING
from tests.loopback import JsonHandler, base_url, serving

SERVED = "DeepSeek-R1-0528"


def run_smoke(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m clients.smoke ...` as a user runs it (no OPENAI_* from this shell)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run(
        [sys.executable, "-m", "clients.smoke", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean,
    )


def load(server: str, model: Path) -> None:
    """transformers serve lists a local model once it has loaded it."""
    body = json.dumps(
        {"model": str(model), "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    ).encode()
    request = urllib.request.Request(
        f"{server}/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200


# --- against transformers serve -------------------------------------------------


def test_a_real_server_passes_every_check(server, tiny_models_dir, tmp_path):
    model = tiny_models_dir["reasoning"]
    load(server, model)
    verdict_file = tmp_path / "out" / "verdict.json"
    done = run_smoke(
        "--base-url", server, "--model", str(model), "--completion-prompt", "the answer",
        "--out", str(verdict_file),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = json.loads(verdict_file.read_text())
    assert verdict["verdict"] == "pass"
    assert [(c["name"], c["status"]) for c in verdict["checks"]] == [
        ("health", "passed"),
        ("models", "passed"),
        ("chat", "passed"),
        ("chat (stream)", "passed"),
        ("completion", "passed"),
        ("completion (stream)", "passed"),
    ]
    chat = {c["name"]: c["detail"] for c in verdict["checks"]}
    # The reasoning came apart from the answer, in both modes.
    for name in ("chat", "chat (stream)"):
        assert chat[name] == (
            f"{len(REASONING)} characters of reasoning, then the answer {ANSWER!r} (finish: stop)"
        )
    assert chat["completion"] == chat["completion (stream)"] == "'is three' (finish: stop)"
    assert (
        done.stdout.strip()
        .splitlines()[-1]
        .startswith(f"-- smoke check passed: 6 checks against {server} (model '{model}')")
    )


def test_a_server_without_a_reasoning_parser_fails(server, tiny_models_dir):
    model = tiny_models_dir["think-tags"]  # reasoning inside <think> tags in the content
    load(server, model)
    done = run_smoke(
        "--base-url", server, "--model", str(model), "--completion-prompt", "the answer"
    )
    assert done.returncode == 1
    assert "FAIL chat (" in done.stdout and "FAIL chat (stream) (" in done.stdout
    assert "PASS completion (" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == (
        "-- smoke check failed at chat: the answer carries <think>/</think> tags: the server "
        "does not separate the reasoning (trtllm-serve needs --reasoning_parser deepseek-r1) "
        "(and 1 more failed)"
    )
    assert "Traceback" not in done.stderr


def test_another_model_than_expected_fails_and_stops_there(server, tiny_models_dir):
    load(server, tiny_models_dir["reasoning"])
    done = run_smoke("--base-url", server, "--model", SERVED)
    assert done.returncode == 1
    assert f"not '{SERVED}': the server runs another model than the stack expects" in done.stdout
    for name in ("chat", "chat (stream)", "completion", "completion (stream)"):
        assert f"SKIP {name} (0.00 s): not run: models failed" in done.stdout


# --- against a stand-in that answers like trtllm-serve, or breaks ----------------


class StandIn(JsonHandler):
    """trtllm-serve's shapes: /health, /v1/models, reasoning_content, SSE with [DONE].
    `server.faults` breaks it: 'loading' (503 until `healthy_after` calls), 'cut'."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        state = self.server  # type: ignore[attr-defined]
        if self.path == "/health":
            state.health_calls += 1
            if "loading" in state.faults and state.health_calls <= state.healthy_after:
                return self.reply(503, {"object": "error", "message": "loading", "code": 503})
            return self.reply(200, {})
        if self.path == "/v1/models":
            return self.reply(200, {"object": "list", "data": [{"id": SERVED, "object": "model"}]})
        self.reply(404, {"object": "error", "message": "not found", "code": 404})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        chat = self.path == "/v1/chat/completions"
        if not body.get("stream"):
            if chat:
                message = {"role": "assistant", "reasoning_content": "6 times 7", "content": "42"}
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
            else:
                choice = {"index": 0, "text": " Paris.", "finish_reason": "stop"}
            return self.reply(200, {"id": "x", "choices": [choice]})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        if chat:
            deltas = [
                {"reasoning_content": "6 times"},
                {"reasoning_content": " 7"},
                {"content": "42"},
            ]
            events = [
                {"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
            ]
        else:
            events = [{"choices": [{"index": 0, "text": " Paris", "finish_reason": None}]}]
        if chat and "cut" in self.server.faults:  # type: ignore[attr-defined]
            for event in events[:2]:
                self.chunk(f"data: {json.dumps(event)}\n\n".encode())
            return  # the connection closes without the last chunk
        events.append({"choices": [{"index": 0, "delta": {}, "text": "", "finish_reason": "stop"}]})
        for event in events:
            self.chunk(f"data: {json.dumps(event)}\n\n".encode())
        self.chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def stand_in(*faults: str, healthy_after: int = 10**6) -> Iterator[str]:
    with serving(StandIn, faults=set(faults), health_calls=0, healthy_after=healthy_after) as httpd:
        yield base_url(httpd) + "/v1"


@pytest.fixture
def healthy():
    yield from stand_in()


@pytest.fixture
def loading():
    yield from stand_in("loading")


@pytest.fixture
def cut_stream():
    yield from stand_in("cut")


@pytest.fixture
def loads_for_two_polls():
    yield from stand_in("loading", healthy_after=2)


def test_a_trtllm_shaped_server_passes_without_naming_the_model(healthy, tmp_path):
    done = run_smoke("--base-url", healthy, "--out", str(tmp_path / "v.json"))
    assert done.returncode == 0, done.stdout
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["model"] == SERVED
    assert {c["name"]: c["detail"] for c in verdict["checks"]}["chat (stream)"] == (
        "9 characters of reasoning, then the answer '42' (finish: stop)"
    )


def test_a_loading_server_fails_at_health_with_a_clear_message(loading, tmp_path):
    termination = tmp_path / "termination-log"
    done = run_smoke(
        "--base-url", loading, "--out", str(tmp_path / "v.json"),
        "--termination-log", str(termination),
    )  # fmt: skip
    assert done.returncode == 1
    root = loading.removesuffix("/v1")
    expected = (
        f"smoke check failed at health: {root}/health answered 503 Service Unavailable: the "
        "server is up but the model is not ready yet (loading weights, compiling kernels); "
        "see the server's log: `$(pulumi stack output logs)`"
    )
    # What Kubernetes keeps as the Job's message, which `pulumi up` shows.
    assert termination.read_text() == expected
    assert done.stdout.strip().splitlines()[-1] == f"-- {expected}"
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["verdict"] == "fail" and verdict["summary"] == expected
    assert [c["status"] for c in verdict["checks"]] == ["failed"] + ["skipped"] * 5


def test_wait_polls_health_until_the_model_is_loaded(loads_for_two_polls):
    done = run_smoke("--base-url", loads_for_two_polls, "--wait", "30")
    assert done.returncode == 0, done.stdout


def test_a_stream_cut_mid_answer_fails(cut_stream):
    done = run_smoke("--base-url", cut_stream)
    assert done.returncode == 1
    assert "PASS chat (" in done.stdout and "PASS completion (stream)" in done.stdout
    assert (
        "-- smoke check failed at chat (stream): /chat/completions: the stream was cut after "
        "2 event(s)" in done.stdout
    )
    assert "the connection dropped or the server restarted" in done.stdout


def test_no_server_says_to_start_the_port_forward():
    done = run_smoke("--base-url", "http://127.0.0.1:9/v1")
    assert done.returncode == 1
    assert (
        "cannot connect to http://127.0.0.1:9/health (connection refused); start the "
        "port-forward first: `$(pulumi stack output portForward) &`" in done.stdout
    )
    assert "Traceback" not in done.stderr


def test_bad_arguments_exit_2():
    assert run_smoke("--max-tokens", "0").returncode == 2


def test_the_script_needs_only_the_standard_library():
    """The Job runs the file alone in a plain Python image: no project imports, no packages."""
    source = (REPO / "clients" / "smoke.py").read_text()
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import runpy, sys; sys.argv=['smoke','--help'];"
         f"runpy.run_path({str(REPO / 'clients' / 'smoke.py')!r}, run_name='__main__')"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--termination-log" in done.stdout
    assert "import openai" not in source and "from clients" not in source
