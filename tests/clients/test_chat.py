"""The chat client against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading

import pytest

from clients import chat
from tests.clients.conftest import REPO, run_chat
from tests.clients.tiny_models import ANSWER, REASONING

QUESTION = "how many r in strawberry ?"


def sections(stdout: str) -> dict[str, str]:
    """`[reasoning]` / `[answer]` blocks of the client's output."""
    found, current = {}, None
    for line in stdout.splitlines():
        if line in ("[reasoning]", "[answer]"):
            current = line.strip("[]")
            found[current] = ""
        elif line.startswith("-- "):
            current = None
        elif current:
            found[current] += line
    return {k: " ".join(v.split()) for k, v in found.items()}


@pytest.mark.parametrize("model", ["reasoning", "think-tags", "r1-prefilled"])
@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_reasoning_and_answer_are_separated(server, tiny_models_dir, model, mode):
    done = run_chat(QUESTION, "--base-url", server, "--model", str(tiny_models_dir[model]), *mode)
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout) == {"reasoning": REASONING, "answer": ANSWER}
    assert "<think>" not in done.stdout and "</think>" not in done.stdout
    summary = done.stdout.strip().splitlines()[-1]
    assert "tokens/s" in summary and "total" in summary and "(finish: stop)" in summary


def test_streaming_reports_time_to_first_token_and_token_count(server, tiny_models_dir):
    done = run_chat(QUESTION, "--base-url", server, "--model", str(tiny_models_dir["reasoning"]))
    summary = done.stdout.strip().splitlines()[-1]
    assert "time to first token n/a" not in summary
    assert "time to first token" in summary
    # 9 generated words + the end token, counted by the server or from the stream.
    assert " 10 tokens" in summary or " 9 tokens (streamed chunks)" in summary


def test_without_model_the_first_listed_one_is_used(server, tiny_models_dir):
    first = run_chat(QUESTION, "--base-url", server, "--model", str(tiny_models_dir["think-tags"]))
    assert first.returncode == 0
    done = run_chat(QUESTION, "--base-url", server, "--no-stream")
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout)["answer"] == ANSWER


def test_the_seed_wrapper_script_still_works(server, tiny_models_dir):
    done = subprocess.run(
        [
            "./stream_chat.sh",
            QUESTION,
            "--base-url",
            server,
            "--model",
            str(tiny_models_dir["r1-prefilled"]),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout) == {"reasoning": REASONING, "answer": ANSWER}


def test_server_down_says_to_start_the_port_forward():
    done = run_chat(QUESTION, "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert done.returncode == chat.EXIT_UNREACHABLE
    assert "cannot reach http://127.0.0.1:9/v1" in done.stderr
    assert "port-forward" in done.stderr
    assert "Traceback" not in done.stderr


class _Scripted(http.server.BaseHTTPRequestHandler):
    """A loopback server for failures a healthy server will not produce:
    503 while loading (trtllm-serve's /health contract) and a cut stream."""

    mode = "503"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if _Scripted.mode == "503":
            body = json.dumps(
                {"error": {"message": "model is loading", "type": "unavailable"}}
            ).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for word in ("the", " answer"):
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        # ...and the connection closes: no finish_reason, no [DONE].

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_503_says_the_model_is_still_loading(scripted_server):
    _Scripted.mode = "503"
    done = run_chat(QUESTION, "--base-url", scripted_server, "--model", "m")
    assert done.returncode == chat.EXIT_LOADING
    assert "answered 503" in done.stderr and "not ready" in done.stderr


def test_a_stream_that_ends_early_is_an_error(scripted_server):
    _Scripted.mode = "cut"
    done = run_chat(
        QUESTION, "--base-url", scripted_server, "--model", "m", "--think-prefilled", "no"
    )
    assert done.returncode == chat.EXIT_INCOMPLETE, done.stderr
    assert "ended before the answer was complete" in done.stderr


# --- the splitter on its own -------------------------------------------------


def split(chunks, prefilled=False):
    splitter = chat.ReasoningSplitter(prefilled=prefilled)
    pieces = [p for c in chunks for p in splitter.feed(c)] + splitter.flush()
    merged: dict[str, str] = {}
    for kind, text in pieces:
        merged[kind] = merged.get(kind, "") + text
    return {k: v.strip() for k, v in merged.items()}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_tags_split_across_chunks_are_recognised(size):
    text = "<think>i should count</think>the answer"
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    assert split(chunks) == {"reasoning": "i should count", "answer": "the answer"}


@pytest.mark.parametrize("size", [1, 4, 100])
def test_a_prefilled_think_has_only_the_closing_tag(size):
    text = "i should count</think>the answer"
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    assert split(chunks, prefilled=True) == {"reasoning": "i should count", "answer": "the answer"}
    assert split(chunks, prefilled=False) == {"reasoning": "i should count", "answer": "the answer"}


def test_content_without_tags_is_the_answer():
    assert split(["plain ", "text"]) == {"answer": "plain text"}
    long = ["x" * 500, " more"]
    assert split(long) == {"answer": "x" * 500 + " more"}


def test_content_is_the_answer_once_the_server_sends_reasoning_separately():
    splitter = chat.ReasoningSplitter(prefilled=True)
    splitter.content_is_answer()
    assert splitter.feed("the answer") == [("answer", "the answer")]


def test_r1_models_are_assumed_to_open_think_in_their_template():
    assert chat.looks_prefilled("DeepSeek-R1-0528", "auto")
    assert not chat.looks_prefilled("llama-3", "auto")
    assert chat.looks_prefilled("llama-3", "yes") and not chat.looks_prefilled("DeepSeek-R1", "no")
