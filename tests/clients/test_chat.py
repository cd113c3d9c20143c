"""The chat client against a real OpenAI-compatible server on loopback.

`transformers serve` runs the tiny deterministic models of tiny_models.py, so
each reasoning format comes through a real server's streaming and
non-streaming paths. Failures a healthy server does not produce (503 while
loading, a cut stream, a dropped connection) come from a scripted loopback
server.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from clients import chat
from tests.clients.conftest import REPO, run_chat
from tests.clients.tiny_models import ANSWER, REASONING
from tests.loopback import JsonHandler, base_url, serving

QUESTION = "how many r in strawberry ?"
# Exit codes are literals, as README.md and `--help` document them: 2 bad arguments,
# 3 unreachable, 4 HTTP 503 (loading), 5 incomplete answer, 6 other API error, 130 Ctrl-C.


def sections(stdout: str) -> dict[str, str]:
    """`[reasoning]` / `[answer]` blocks of the client's output, whitespace-normalised."""
    found: dict[str, str] = {}
    current = None
    for line in stdout.splitlines():
        if line in ("[reasoning]", "[answer]"):
            current = line.strip("[]")
            assert current not in found, f"a second {line} section:\n{stdout}"
            found[current] = ""
        elif line.startswith("-- "):
            current = None
        elif current:
            found[current] += line + " "
    return {k: " ".join(v.split()) for k, v in found.items()}


def summary_line(stdout: str) -> str:
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("-- time to first token"), stdout
    return last


# --- against transformers serve --------------------------------------------------


@pytest.mark.parametrize("model", ["reasoning", "think-tags", "r1-prefilled"])
@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_reasoning_and_answer_are_separated(server, tiny_models_dir, model, mode):
    done = run_chat(QUESTION, "--base-url", server, "--model", str(tiny_models_dir[model]), *mode)
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout) == {"reasoning": REASONING, "answer": ANSWER}
    assert "<think>" not in done.stdout and "</think>" not in done.stdout
    # Reasoning first, each section starting right under its header.
    assert done.stdout.startswith(f"[reasoning]\n{REASONING.split()[0]}")
    assert f"\n[answer]\n{ANSWER.split()[0]}" in done.stdout
    assert summary_line(done.stdout).endswith("| finish: stop")


def test_streaming_summary_has_first_token_time_and_the_servers_token_count(
    server, tiny_models_dir
):
    done = run_chat(QUESTION, "--base-url", server, "--model", str(tiny_models_dir["reasoning"]))
    summary = summary_line(done.stdout)
    # 9 generated words and the end token, as the server counted them (stream_options usage).
    assert "| 10 completion tokens (server usage) |" in summary
    ttft = float(summary.split("time to first token ")[1].split(" s")[0])
    total = float(summary.split("total ")[1].split(" s")[0])
    assert 0 < ttft <= total
    assert float(summary.split(" tokens/s")[0].rsplit("| ", 1)[1]) > 0


def test_non_streaming_summary_has_no_first_token_time(server, tiny_models_dir):
    done = run_chat(
        QUESTION, "--base-url", server, "--model", str(tiny_models_dir["reasoning"]), "--no-stream"
    )
    summary = summary_line(done.stdout)
    assert summary.startswith("-- time to first token n/a (not streamed) |")
    assert "| 10 completion tokens (server usage) |" in summary


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_an_answer_cut_by_the_length_limit_fails_and_names_the_setting(
    server, tiny_models_dir, mode
):
    done = run_chat(
        QUESTION, "--base-url", server, "--model", str(tiny_models_dir["think-tags"]),
        "--max-tokens", "3", *mode,
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert sections(done.stdout) == {"reasoning": "i should"}  # what came is still shown
    assert summary_line(done.stdout).endswith(
        "finish: length (cut at --max-tokens or the server's max_seq_len)"
    )
    assert "error: the answer was cut at the length limit (finish_reason: length)" in done.stderr
    assert "raise --max-tokens (3) or the server's max_seq_len" in done.stderr
    assert "maxSeqLen" in done.stderr


def test_a_length_cut_without_max_tokens_names_only_the_server_setting(scripted):
    done = run_chat(QUESTION, "--base-url", scripted(cut_by_length), "--model", "m")
    assert done.returncode == 7
    assert "--max-tokens" not in done.stderr.split("error:")[1]
    assert "the stack's maxSeqLen setting" in done.stderr
    assert "pulumi config set maxSeqLen" in done.stderr


def test_without_model_the_first_listed_one_is_used(server, tiny_models_dir):
    first = run_chat(QUESTION, "--base-url", server, "--model", str(tiny_models_dir["think-tags"]))
    assert first.returncode == 0  # now loaded, so listed by /v1/models
    done = run_chat(QUESTION, "--base-url", server, "--no-stream")
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout)["answer"] == ANSWER


def test_the_base_url_can_come_from_the_environment(server, tiny_models_dir):
    done = run_chat(
        QUESTION, "--model", str(tiny_models_dir["reasoning"]), env={"OPENAI_BASE_URL": server}
    )
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout)["answer"] == ANSWER


def test_a_server_error_is_reported_with_its_status(server):
    done = run_chat(QUESTION, "--base-url", server, "--model", "/no/such/model")
    assert done.returncode == 6
    assert f"error: {server} answered HTTP 500: Internal Server Error" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_seed_wrapper_script_still_works(server, tiny_models_dir):
    done = subprocess.run(
        ["./stream_chat.sh", QUESTION, "--base-url", server,
         "--model", str(tiny_models_dir["r1-prefilled"])],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout) == {"reasoning": REASONING, "answer": ANSWER}


# --- failures -------------------------------------------------------------------


def test_server_down_says_to_start_the_port_forward():
    done = run_chat(QUESTION, "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert done.returncode == 3
    assert "cannot connect to http://127.0.0.1:9/v1 ([Errno 111] Connection refused)" in done.stderr
    assert "port-forward" in done.stderr and "pulumi stack output portForward" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_wrapper_script_passes_the_exit_code_on():
    done = subprocess.run(
        ["./stream_chat.sh", QUESTION, "--base-url", "http://127.0.0.1:9/v1", "--model", "m"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr


def sse(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
    chunk = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        chunk["usage"] = usage
    return f"data: {json.dumps(chunk)}\n\n".encode()


class Scripted(JsonHandler):
    """Loopback answers a healthy server does not give; `script` picks one."""

    protocol_version = "HTTP/1.1"
    script: Callable[[Scripted], None]

    def do_GET(self):
        self.script()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append(json.loads(body))  # type: ignore[attr-defined]
        self.script()

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


def loading(h: Scripted) -> None:
    """trtllm-serve's answer while the model is unavailable (/health's 503)."""
    h.reply(503, {"object": "error", "message": "model is loading", "code": 503})


def bad_request(h: Scripted) -> None:
    """trtllm-serve's error body: {"object": "error", "message", "type", "code"}."""
    h.reply(400, {"object": "error", "message": "max_tokens too large", "type": "BadRequestError", "code": 400})  # fmt: skip


def cut_mid_answer(h: Scripted) -> None:
    """Chunked stream, then the connection closes without the last chunk."""
    h.start_stream()
    for text in ("<think>i should", " count</think>", "the answer"):
        h.send_chunk(sse({"content": text}))


def no_finish_reason(h: Scripted) -> None:
    """A well-formed stream ([DONE] and all) that never gives a finish_reason."""
    h.start_stream()
    h.send_chunk(sse({"content": "the answer"}))
    h.send_chunk(b"data: [DONE]\n\n")
    h.end_stream()


def without_usage(h: Scripted) -> None:
    """A complete stream from a server that ignores stream_options."""
    h.start_stream()
    h.send_chunk(sse({"role": "assistant", "content": ""}))
    for text in ("<think>", "hm", "</think>", "the", " answer"):
        h.send_chunk(sse({"content": text}))
    h.send_chunk(sse({}, finish="stop"))
    h.send_chunk(b"data: [DONE]\n\n")
    h.end_stream()


def reasoning_field(h: Scripted) -> None:
    """Newer vLLM's `reasoning` field (not `reasoning_content`)."""
    h.start_stream()
    h.send_chunk(sse({"reasoning": "let me think"}))
    time.sleep(1)  # thinking: the first token came before this
    h.send_chunk(sse({"content": "the answer"}, finish="stop"))
    h.send_chunk(b"data: [DONE]\n\n")
    h.end_stream()


def trtllm_reasoning_parser(h: Scripted) -> None:
    """trtllm-serve with --reasoning_parser deepseek-r1: reasoning_content, then content,
    several tokens a chunk (stream_interval), usage in a last chunk without choices."""
    h.start_stream()
    h.send_chunk(sse({"role": "assistant", "content": ""}))
    for text in ("\nOkay, 9.9 is ", "9.90, so it is larger", ".\n"):
        h.send_chunk(sse({"reasoning_content": text}))
    for text in ("\n\n**9.9** is larger", " than 9.11."):
        h.send_chunk(sse({"content": text}))
    h.send_chunk(sse({}, finish="stop"))
    usage = {"prompt_tokens": 20, "completion_tokens": 31, "total_tokens": 51}
    h.send_chunk(f"data: {json.dumps({'id': 'x', 'object': 'chat.completion.chunk', 'created': 0, 'model': 'm', 'choices': [], 'usage': usage})}\n\n".encode())  # fmt: skip
    h.send_chunk(b"data: [DONE]\n\n")
    h.end_stream()


def cut_by_length(h: Scripted) -> None:
    """trtllm-serve at its max_seq_len: the reasoning stops with finish_reason length."""
    h.start_stream()
    h.send_chunk(sse({"reasoning_content": "Compare 9.9 and 9.11: 9.9 is 9.90 and"}))
    h.send_chunk(sse({}, finish="length"))
    h.send_chunk(b"data: [DONE]\n\n")
    h.end_stream()


def hang_up(h: Scripted) -> None:
    """What `kubectl port-forward` does while nothing listens in the pod."""
    h.close_connection = True
    h.connection.close()


def silent(h: Scripted) -> None:
    time.sleep(3)
    h.close_connection = True


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[Scripted], None]], str]]:
    with contextlib.ExitStack() as servers:

        def start(script: Callable[[Scripted], None]) -> str:
            """Base URL of a new loopback server; its `.requests` are on `start.last`."""
            handler = type("Handler", (Scripted,), {"script": script})
            httpd = servers.enter_context(serving(handler, requests=[]))
            start.last = httpd  # type: ignore[attr-defined]
            return base_url(httpd) + "/v1"

        yield start


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_503_says_the_server_reports_the_model_unavailable(scripted, mode):
    url = scripted(loading)
    done = run_chat(QUESTION, "--base-url", url, "--model", "m", *mode)
    assert done.returncode == 4
    assert len(scripted.last.requests) == 1, "a 503 is reported, not retried"
    assert f"error: {url} answered 503 Service Unavailable" in done.stderr
    # trtllm-serve refuses connections while loading; 503 is an engine that stopped.
    assert "reports the model unavailable" in done.stderr
    assert "while loading it refuses connections" in done.stderr
    assert "pulumi stack output logs" in done.stderr


def test_503_while_listing_models_says_the_same(scripted):
    done = run_chat(QUESTION, "--base-url", scripted(loading))
    assert done.returncode == 4


def test_other_api_errors_show_the_servers_message(scripted):
    url = scripted(bad_request)
    done = run_chat(QUESTION, "--base-url", url, "--model", "m")
    assert done.returncode == 6
    assert f"error: {url} answered HTTP 400: max_tokens too large" in done.stderr


def test_a_stream_cut_mid_answer_is_incomplete_and_keeps_what_came(scripted):
    done = run_chat(QUESTION, "--base-url", scripted(cut_mid_answer), "--model", "m")
    assert done.returncode == 5, done.stderr
    assert "the answer stopped before it was complete (peer closed connection" in done.stderr
    assert sections(done.stdout) == {"reasoning": "i should count", "answer": "the answer"}
    assert "-- time to first token" not in done.stdout


def test_a_stream_without_finish_reason_is_incomplete(scripted):
    done = run_chat(QUESTION, "--base-url", scripted(no_finish_reason), "--model", "m")
    assert done.returncode == 5, done.stderr
    assert "(the stream ended without a finish_reason)" in done.stderr
    assert sections(done.stdout) == {"answer": "the answer"}


def test_without_usage_the_summary_counts_chunks_and_says_so(scripted):
    done = run_chat(QUESTION, "--base-url", scripted(without_usage), "--model", "m")
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout) == {"reasoning": "hm", "answer": "the answer"}
    assert "| 5 chunks (no usage from the server; a chunk can hold several tokens) |" in (
        summary_line(done.stdout)
    )


def test_trtllm_serves_reasoning_apart_and_the_request_asks_for_usage(scripted):
    url = scripted(trtllm_reasoning_parser)
    done = run_chat(
        "Which is larger, 9.9 or 9.11?", "--base-url", url, "--model", "DeepSeek-R1-0528",
        "--system", "", "--temperature", "0.3", "--top-p", "0.9", "--max-tokens", "77",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout) == {
        "reasoning": "Okay, 9.9 is 9.90, so it is larger.",
        "answer": "**9.9** is larger than 9.11.",
    }
    assert "| 31 completion tokens (server usage) |" in summary_line(done.stdout)
    (request,) = scripted.last.requests
    assert request == {
        "model": "DeepSeek-R1-0528",
        "messages": [{"role": "user", "content": "Which is larger, 9.9 or 9.11?"}],
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 77,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_the_default_request_follows_the_seed(scripted):
    run_chat(QUESTION, "--base-url", scripted(trtllm_reasoning_parser), "--model", "m")
    (request,) = scripted.last.requests
    assert request["messages"][0] == {"role": "system", "content": "You are a helpful AI assistant"}
    assert (request["temperature"], request["top_p"]) == (0.6, 0.95)
    # No client-side cap: the server allows what fits in max_seq_len after the prompt.
    assert "max_tokens" not in request


def test_the_reasoning_field_of_newer_servers_is_reasoning(scripted):
    done = run_chat(QUESTION, "--base-url", scripted(reasoning_field), "--model", "m")
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout) == {"reasoning": "let me think", "answer": "the answer"}
    summary = summary_line(done.stdout)
    assert "| 2 chunks (no usage from the server" in summary
    ttft = float(summary.split("time to first token ")[1].split(" s")[0])
    total = float(summary.split("total ")[1].split(" s")[0])
    assert ttft < 1 <= total  # the first token is the first reasoning token


def test_a_connection_closed_without_answer_says_the_server_is_not_listening(scripted):
    url = scripted(hang_up)
    done = run_chat(QUESTION, "--base-url", url, "--model", "m")
    assert done.returncode == 3
    assert f"error: {url} closed the connection without an answer" in done.stderr
    assert "not listening yet" in done.stderr


def test_no_answer_within_the_timeout(scripted):
    url = scripted(silent)
    done = run_chat(QUESTION, "--base-url", url, "--model", "m", "--timeout", "0.5")
    assert done.returncode == 6
    assert f"error: {url} gave no answer within 0.5 s (--timeout)" in done.stderr


def test_help_lists_the_exit_codes():
    done = run_chat("--help")
    assert done.returncode == 0
    for code, meaning in (
        (3, "the server cannot be reached"),
        (4, "the server answered HTTP 503"),
        (5, "the answer stopped before the server said it was finished"),
        (6, "any other API error"),
        (130, "interrupted"),
    ):
        assert f"\n  {code} " in done.stdout and meaning in done.stdout.split(f"\n  {code} ")[1]
    assert "503" in done.stdout and "port-forward" in done.stdout
    assert f"\n  {7} " in done.stdout and "maxSeqLen" in done.stdout
    assert "while\n       trtllm-serve loads the model" in done.stdout  # refused, not 503


def test_bad_arguments_exit_2():
    assert run_chat("q", "--temperature", "hot").returncode == 2


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted(args, out=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(chat, "chat", interrupted)
    assert chat.main(["q"]) == 130
    assert "interrupted" in capsys.readouterr().err


# --- pure parts -------------------------------------------------------------------


def split(chunks: list[str], prefilled: bool = False) -> dict[str, str]:
    splitter = chat.ReasoningSplitter(prefilled=prefilled)
    pieces = [p for c in chunks for p in splitter.feed(c)] + splitter.flush()
    merged: dict[str, str] = {}
    for kind, text in pieces:
        merged[kind] = merged.get(kind, "") + text
    return {k: v.strip() for k, v in merged.items()}


def chunked(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_tags_split_across_chunks_are_recognised(size):
    text = "<think>i should count</think>the answer"
    assert split(chunked(text, size)) == {"reasoning": "i should count", "answer": "the answer"}


@pytest.mark.parametrize("size", [1, 4, 100])
def test_a_prefilled_think_has_only_the_closing_tag(size):
    chunks = chunked("i should count</think>the answer", size)
    expected = {"reasoning": "i should count", "answer": "the answer"}
    assert split(chunks, prefilled=True) == expected
    assert split(chunks, prefilled=False) == expected


def test_a_prefilled_splitter_streams_reasoning_before_the_tag_arrives():
    splitter = chat.ReasoningSplitter(prefilled=True)
    assert splitter.feed("i should </th") == [("reasoning", "i should ")]  # the tag's start waits
    assert splitter.feed("ink>yes") == [("reasoning", ""), ("answer", "yes")]


@pytest.mark.parametrize("size", [1, 16, 1000])
def test_a_long_reasoning_before_a_bare_closing_tag_is_reasoning(size):
    """A template that opens <think> itself, for a model not named R1: the
    splitter waits for a closing tag through hundreds of characters of reasoning."""
    reasoning = " ".join(["counting the letters of strawberry one by one"] * 8)[:350]
    assert len(reasoning) == 350
    chunks = chunked(reasoning + "</think>three", size)
    assert split(chunks) == {"reasoning": reasoning.strip(), "answer": "three"}


def test_content_without_tags_is_the_answer():
    assert split(["plain ", "text"]) == {"answer": "plain text"}
    assert split(["x" * 500, " more"]) == {"answer": "x" * 500 + " more"}
    assert split(["<thi", "nking is fun"]) == {"answer": "<thinking is fun"}


def test_an_unfinished_reasoning_is_still_reasoning():
    assert split(["<think>i should"]) == {"reasoning": "i should"}
    assert split(["i should </thi"], prefilled=True) == {"reasoning": "i should </thi"}


def test_content_is_the_answer_once_the_server_sends_reasoning_separately():
    splitter = chat.ReasoningSplitter(prefilled=True)
    splitter.content_is_answer()
    assert splitter.feed("the answer") == [("answer", "the answer")]


def test_r1_models_are_assumed_to_open_think_in_their_template():
    assert chat.looks_prefilled("DeepSeek-R1-0528", "auto")
    assert not chat.looks_prefilled("llama-3", "auto")
    assert chat.looks_prefilled("llama-3", "yes") and not chat.looks_prefilled("DeepSeek-R1", "no")


def test_summary_rates():
    t = chat.Transcript(out=None)  # type: ignore[arg-type]
    t.first_token_at, t.usage_tokens, t.finish_reason = 10.5, 100, "stop"
    s = chat.summarize(t, started=10.0, ended=12.5)
    assert (s.ttft_s, s.tokens, s.counted_by, s.tokens_per_s, s.total_s) == (
        0.5,
        100,
        "usage",
        50.0,
        2.5,
    )
    t.streamed, t.usage_tokens, t.chunks = False, None, 20
    s = chat.summarize(t, started=10.0, ended=12.5)
    assert (s.ttft_s, s.tokens, s.counted_by, s.tokens_per_s) == (None, 20, "chunks", 8.0)
