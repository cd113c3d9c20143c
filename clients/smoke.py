"""Smoke check of the endpoint: does it answer, and answer right?

    python -m clients.smoke                       # through the port-forward
    python -m clients.smoke --base-url http://HOST:8000/v1 --out verdict.json

Checks, in order: `/health` answers 200; `/v1/models` lists the served model;
one short `/v1/chat/completions` answer, not streamed and streamed, with the
reasoning separated from the answer (`reasoning_content`, as trtllm-serve
returns it with `--reasoning_parser deepseek-r1`); one `/v1/completions`
answer, not streamed and streamed. Every check has a verdict, a time and a
detail; the whole verdict can be written as JSON (`--out`). Exit code 0 when
every check passes, 1 when one fails, 2 for bad arguments.

Standard library only: the stack's smoke-check Job runs this file as it is,
from a ConfigMap, in a plain Python image.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

DEFAULT_BASE_URL = "http://localhost:8000/v1"
CHAT_PROMPT = "What is 7 times 6? Answer with the number only."
COMPLETION_PROMPT = "The capital of France is"
OPEN_TAG, CLOSE_TAG = "<think>", "</think>"
PORT_FORWARD_HINT = (
    "start the port-forward first: `$(pulumi stack output portForward) &`, or pass --base-url"
)
LOGS_HINT = "see the server's log: `$(pulumi stack output logs)`"
# Kubernetes keeps at most 4096 bytes of a container's termination message.
TERMINATION_MESSAGE_MAX = 4096
# /health is a cheap GET; every 2 s the ready server is seen within 2 s of its start.
HEALTH_POLL_SECONDS = 2.0

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CheckFailed(Exception):
    """A check's failure, with the message the user sees."""


@dataclass
class Check:
    name: str
    status: str = "skipped"  # passed, failed or skipped
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Verdict:
    base_url: str
    model: str | None
    started: str
    verdict: str = "fail"
    seconds: float = 0.0
    summary: str = ""
    checks: list[Check] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


# --------------------------------------------------------------------------
# HTTP, standard library only


@dataclass
class Client:
    base_url: str  # the OpenAI API root, e.g. http://localhost:8000/v1
    api_key: str
    timeout: float

    @property
    def root(self) -> str:
        """The server's root (where /health is): the base URL without /v1."""
        base = self.base_url.rstrip("/")
        return base[: -len("/v1")] if base.endswith("/v1") else base

    def _request(self, url: str, body: dict | None = None) -> urllib.request.Request:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return urllib.request.Request(url, data=data, headers=headers)

    def open(self, url: str, body: dict | None = None) -> http.client.HTTPResponse:
        """The response, or CheckFailed with what went wrong and what to do."""
        try:
            return urllib.request.urlopen(self._request(url, body), timeout=self.timeout)
        except urllib.error.HTTPError as err:
            raise CheckFailed(http_error(url, err.code, err.read())) from None
        except urllib.error.URLError as err:
            raise CheckFailed(unreachable(url, err.reason)) from None
        except TimeoutError:
            raise CheckFailed(f"{url} gave no answer within {self.timeout:g} s") from None
        except (ConnectionError, http.client.HTTPException) as err:
            raise CheckFailed(
                f"{url} closed the connection without an answer ({err!r}); {LOGS_HINT}"
            ) from None

    def get_json(self, path: str) -> tuple[int, Any]:
        with self.open(self.base_url.rstrip("/") + path) as response:
            return response.status, _json_body(path, response.read())

    def post_json(self, path: str, body: dict) -> Any:
        with self.open(self.base_url.rstrip("/") + path, body) as response:
            return _json_body(path, response.read())

    def stream(self, path: str, body: dict) -> Iterator[dict]:
        """The JSON events of a server-sent event stream, until `data: [DONE]` or the
        end of the body (not every server sends [DONE]); CheckFailed if the
        connection breaks mid-stream."""
        url = self.base_url.rstrip("/") + path
        events = 0
        with self.open(url, body) as response:
            try:
                for raw in response:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except json.JSONDecodeError:
                        raise CheckFailed(f"{path}: an event is not JSON: {data[:200]!r}") from None
                    if isinstance(event, dict) and "error" in event:
                        raise CheckFailed(f"{path}: the stream carried an error: {event['error']}")
                    events += 1
                    yield event
            except (ConnectionError, http.client.HTTPException, TimeoutError, OSError) as err:
                raise CheckFailed(cut(path, events, repr(err))) from None


def _json_body(path: str, raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise CheckFailed(f"{path}: the answer is not JSON: {raw[:200]!r}") from None


def http_error(url: str, status: int, body: bytes) -> str:
    detail = _server_message(body)
    if status == 503:
        return (
            f"{url} answered 503 Service Unavailable: the server is up but the model is not "
            f"ready yet (loading weights, compiling kernels); {LOGS_HINT}"
        )
    return f"{url} answered HTTP {status}: {detail}"


def _server_message(body: bytes) -> str:
    """OpenAI's {"error": {"message"}}, trtllm-serve's {"message"}, else the text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text[:300] or "(empty body)"
    inner = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    message = inner.get("message") if isinstance(inner, dict) else inner
    return str(message or text)[:300]


def unreachable(url: str, reason: Any) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot connect to {url} (connection refused); {PORT_FORWARD_HINT}"
    if isinstance(reason, TimeoutError):
        return f"{url} gave no answer in time ({reason})"
    return f"cannot reach {url} ({reason}); {PORT_FORWARD_HINT}"


def cut(path: str, events: int, how: str) -> str:
    return (
        f"{path}: the stream was cut after {events} event(s): {how}; the connection dropped "
        f"or the server restarted; {LOGS_HINT}"
    )


# --------------------------------------------------------------------------
# The checks


@dataclass
class Answer:
    reasoning: str = ""
    content: str = ""
    finish_reason: str | None = None


def reasoning_of(part: dict) -> str:
    """`reasoning_content` (trtllm-serve, vLLM, SGLang) or `reasoning` (newer vLLM)."""
    for key in ("reasoning_content", "reasoning"):
        value = part.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def judge_chat(answer: Answer, require_reasoning: bool, max_tokens: int) -> str:
    """The detail of a good chat answer; CheckFailed otherwise."""
    if answer.finish_reason is None:
        raise CheckFailed("the answer has no finish_reason: it was cut short")
    if CLOSE_TAG in answer.content or OPEN_TAG in answer.content:
        raise CheckFailed(
            "the answer carries <think>/</think> tags: the server does not separate the "
            "reasoning (trtllm-serve needs --reasoning_parser deepseek-r1)"
        )
    if require_reasoning and not answer.reasoning:
        raise CheckFailed(
            "no reasoning_content: the server returned no separate reasoning "
            "(trtllm-serve needs --reasoning_parser deepseek-r1; for a model without "
            "reasoning pass --no-reasoning-check)"
        )
    if answer.finish_reason == "length":
        if answer.content.strip() or answer.reasoning:
            return (
                f"cut at {max_tokens} tokens ({len(answer.reasoning.strip())} characters of "
                "reasoning, separated); raise --max-tokens to see the answer"
            )
        raise CheckFailed(f"nothing came back before the {max_tokens}-token limit")
    if not answer.content.strip():
        raise CheckFailed(f"finish_reason {answer.finish_reason!r} but no answer text")
    thought = answer.reasoning.strip()
    reasoning = f"{len(thought)} characters of reasoning, then " if thought else ""
    return f"{reasoning}the answer {_short(answer.content)} (finish: {answer.finish_reason})"


def judge_completion(answer: Answer) -> str:
    if answer.finish_reason is None:
        raise CheckFailed("the answer has no finish_reason: it was cut short")
    if not answer.content.strip():
        raise CheckFailed(f"finish_reason {answer.finish_reason!r} but no text")
    return f"{_short(answer.content)} (finish: {answer.finish_reason})"


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


class SmokeCheck:
    def __init__(self, args: argparse.Namespace, client: Client, out: TextIO = sys.stdout):
        self.args = args
        self.client = client
        self.out = out
        self.model: str | None = args.model

    def chat_body(self, stream: bool) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": self.args.chat_prompt}],
            "max_tokens": self.args.max_tokens,
            # DeepSeek's advice for R1: 0.5-0.7, else it may repeat itself endlessly.
            "temperature": 0.6,
            "top_p": 0.95,
        }
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return body

    def completion_body(self, stream: bool) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": self.args.completion_prompt,
            "max_tokens": 16,
            "temperature": 0.0,
        }
        if stream:
            body["stream"] = True
        return body

    # Each check returns its detail or raises CheckFailed.

    def health(self) -> str:
        deadline = time.monotonic() + self.args.wait
        url = self.client.root + "/health"
        while True:
            try:
                with self.client.open(url) as response:
                    if response.status == 200:
                        return "HTTP 200"
                    problem = f"{url} answered HTTP {response.status}"
            except CheckFailed as err:
                problem = str(err)
            if time.monotonic() >= deadline:
                raise CheckFailed(problem)
            time.sleep(min(HEALTH_POLL_SECONDS, max(0.1, deadline - time.monotonic())))

    def models(self) -> str:
        _, listed = self.client.get_json("/models")
        data = listed.get("data") if isinstance(listed, dict) else None
        if not isinstance(data, list):
            raise CheckFailed(f"/models: expected {{'data': [...]}}, got {_short(str(listed))}")
        names = [m.get("id") for m in data if isinstance(m, dict)]
        if not names:
            raise CheckFailed("/models lists no model")
        if self.model is None:
            self.model = names[0]
            return f"serves {self.model!r}"
        if self.model not in names:
            raise CheckFailed(
                f"/models lists {', '.join(map(repr, names))}, not {self.model!r}: the server "
                "runs another model than the stack expects"
            )
        return f"lists {self.model!r}"

    def chat(self) -> str:
        reply = self.client.post_json("/chat/completions", self.chat_body(stream=False))
        choice = _first_choice("/chat/completions", reply)
        message = choice.get("message") or {}
        answer = Answer(
            reasoning_of(message), message.get("content") or "", choice.get("finish_reason")
        )
        return judge_chat(answer, not self.args.no_reasoning_check, self.args.max_tokens)

    def chat_stream(self) -> str:
        answer, events = Answer(), 0
        for event in self.client.stream("/chat/completions", self.chat_body(stream=True)):
            events += 1
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                answer.reasoning += reasoning_of(delta)
                answer.content += delta.get("content") or ""
                answer.finish_reason = choice.get("finish_reason") or answer.finish_reason
        if answer.finish_reason is None:
            raise CheckFailed(cut("/chat/completions", events, "it ended before a finish_reason"))
        return judge_chat(answer, not self.args.no_reasoning_check, self.args.max_tokens)

    def completion(self) -> str:
        reply = self.client.post_json("/completions", self.completion_body(stream=False))
        choice = _first_choice("/completions", reply)
        return judge_completion(Answer("", choice.get("text") or "", choice.get("finish_reason")))

    def completion_stream(self) -> str:
        answer, events = Answer(), 0
        for event in self.client.stream("/completions", self.completion_body(stream=True)):
            events += 1
            for choice in event.get("choices") or []:
                answer.content += choice.get("text") or ""
                answer.finish_reason = choice.get("finish_reason") or answer.finish_reason
        if answer.finish_reason is None:
            raise CheckFailed(cut("/completions", events, "it ended before a finish_reason"))
        return judge_completion(answer)

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("health", self.health),
            ("models", self.models),
            ("chat", self.chat),
            ("chat (stream)", self.chat_stream),
            ("completion", self.completion),
            ("completion (stream)", self.completion_stream),
        ]

    def run(self) -> Verdict:
        started = time.monotonic()
        verdict = Verdict(
            self.client.base_url, self.model, datetime.now(UTC).isoformat(timespec="seconds")
        )
        blocked = None
        for name, step in self.steps():
            check = Check(name)
            verdict.checks.append(check)
            if blocked:
                check.detail = f"not run: {blocked} failed"
                self._print(check)
                continue
            began = time.monotonic()
            try:
                check.detail = step()
                check.status = "passed"
            except CheckFailed as err:
                check.status, check.detail = "failed", str(err)
                if name in ("health", "models"):
                    blocked = name  # nothing else can pass
            check.seconds = round(time.monotonic() - began, 3)
            self._print(check)
        failed = [c for c in verdict.checks if c.status == "failed"]
        verdict.model = self.model
        verdict.verdict = "fail" if failed else "pass"
        verdict.seconds = round(time.monotonic() - started, 3)
        verdict.summary = summary(verdict)
        return verdict

    def _print(self, check: Check) -> None:
        mark = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[check.status]
        self.out.write(f"{mark} {check.name} ({check.seconds:.2f} s): {check.detail}\n")
        self.out.flush()


def _first_choice(path: str, reply: Any) -> dict:
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise CheckFailed(f"{path}: the answer has no choices: {_short(str(reply))}")
    return choices[0]


def summary(verdict: Verdict) -> str:
    failed = [c for c in verdict.checks if c.status == "failed"]
    if not failed:
        return (
            f"smoke check passed: {len(verdict.checks)} checks against {verdict.base_url} "
            f"(model {verdict.model!r}) in {verdict.seconds:.1f} s"
        )
    first = failed[0]
    rest = f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else ""
    return f"smoke check failed at {first.name}: {first.detail}{rest}"


# --------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m clients.smoke",
        description=__doc__.split("\n\n")[0],
        epilog="exit codes: 0 every check passed, 1 a check failed, 2 bad arguments",
    )
    parser.add_argument(
        "--base-url",
        default=os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
        help=f"OpenAI-compatible API root (default: $OPENAI_BASE_URL or {DEFAULT_BASE_URL})",
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("OPENAI_API_KEY") or "not-needed", help="API key"
    )
    parser.add_argument(
        "--model", help="the model the server must list (default: the first it lists)"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=1024, help="chat token limit (default: %(default)s)"
    )
    parser.add_argument("--chat-prompt", default=CHAT_PROMPT, help="the chat question")
    parser.add_argument(
        "--completion-prompt", default=COMPLETION_PROMPT, help="the completion prompt"
    )
    parser.add_argument(
        "--no-reasoning-check",
        action="store_true",
        help="do not require reasoning_content (a model that does not reason)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="seconds to keep polling /health until it answers 200 (default: 0, ask once)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per request (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, help="write the JSON verdict to this file")
    parser.add_argument(
        "--termination-log",
        type=Path,
        help="write the one-line summary here too (a Kubernetes termination message)",
    )
    args = parser.parse_args(argv)
    if args.max_tokens < 1 or args.timeout <= 0 or args.wait < 0:
        parser.error("--max-tokens and --timeout must be positive, --wait not negative")
    return args


def write_outputs(verdict: Verdict, args: argparse.Namespace) -> None:
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_name(args.out.name + ".partial")
        partial.write_text(verdict.to_json())
        partial.replace(args.out)
    if args.termination_log:
        encoded = verdict.summary.encode()[:TERMINATION_MESSAGE_MAX]
        args.termination_log.write_bytes(encoded)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    client = Client(args.base_url, args.api_key, args.timeout)
    verdict = SmokeCheck(args, client).run()
    print(f"-- {verdict.summary}")
    write_outputs(verdict, args)
    return EXIT_PASS if verdict.verdict == "pass" else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
