"""Chat with the DeepSeek-R1 endpoint (or any OpenAI-compatible server).

    python -m clients.chat "Which is larger, 9.9 or 9.11?"

Streams the answer as it arrives, shows the model's reasoning apart from the
answer, and ends with a summary: time to first token, completion tokens,
tokens/s, total time. Reasoning comes either in the `reasoning_content` field
(trtllm-serve with `--reasoning_parser deepseek-r1`, as this stack runs it) or
inside `<think>...</think>` in the content (servers without a reasoning
parser; DeepSeek-R1's chat template opens `<think>` itself, so there only
`</think>` appears).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import ssl
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO
from urllib.parse import urlsplit

try:
    import openai
except ModuleNotFoundError as missing:  # `pulumi up` installs the program's requirements only
    sys.exit(
        f"error: the chat client needs {missing.name}, which is not installed: run `make clients` "
        "(or .venv/bin/python -m pip install -r requirements-clients.txt)"
    )

DEFAULT_BASE_URL = "http://localhost:8000/v1"
OPEN_TAG, CLOSE_TAG = "<think>", "</think>"
PORT_FORWARD_HINT = (
    "start the port-forward first: `$(pulumi stack output portForward) &` "
    "(kubectl -n NAMESPACE port-forward svc/SERVICE 8000:8000), or pass --base-url"
)
LOGS_HINT = "follow the server with `$(pulumi stack output logs)` and try again"

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for bad arguments
EXIT_UNREACHABLE = 3
EXIT_LOADING = 4
EXIT_INCOMPLETE = 5
EXIT_API_ERROR = 6
EXIT_LENGTH = 7
EXIT_INTERRUPTED = 130
# The stack setting behind trtllm-serve's max_seq_len (infra/config.py).
MAX_SEQ_LEN_SETTING = "maxSeqLen"

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}    the answer was complete
  {EXIT_USAGE}    bad arguments
  {EXIT_UNREACHABLE}    the server cannot be reached (connection refused: start the port-forward;
       closed without an answer: the server is not listening yet, as while
       trtllm-serve loads the model; an unknown host or a TLS handshake with a
       plain-HTTP server: check --base-url)
  {EXIT_LOADING}    the server answered HTTP 503: it is up but reports the model unavailable
       (trtllm-serve: its engine stopped; see the server logs)
  {EXIT_INCOMPLETE}    the answer stopped before the server said it was finished
       (no finish_reason: the connection dropped or the server restarted)
  {EXIT_API_ERROR}    any other API error (HTTP 4xx/5xx, an error from the server mid-answer,
       timeout, no model listed); a 404 or an unknown --model says which to fix
  {EXIT_LENGTH}    the answer was cut by the length limit (finish_reason length): raise
       --max-tokens, or the server's max_seq_len (the stack's {MAX_SEQ_LEN_SETTING} setting)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)"""


class ChatError(Exception):
    """A failure with a message for the user and an exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------
# Separating reasoning from the answer in content text


class Section(StrEnum):
    """What a piece of the model's output is."""

    REASONING = "reasoning"
    ANSWER = "answer"


class ThinkPrefilled(StrEnum):
    """`--think-prefilled`: whether the chat template opens <think> itself."""

    AUTO = "auto"
    YES = "yes"
    NO = "no"


class ReasoningSplitter:
    """Splits streamed content into ("reasoning", text) and ("answer", text).

    Handles tags split across chunks. With `prefilled` (DeepSeek-R1's chat
    template opens `<think>` itself) content is reasoning until `</think>`.
    Otherwise it holds back up to `decide_after` characters until it knows:
    content that starts with `<think>` is reasoning until `</think>`; a
    `</think>` with no opening tag makes everything before it reasoning;
    content that shows neither is the answer.
    """

    def __init__(self, prefilled: bool = False, decide_after: int = 400):
        # The section the content is in; None while undecided.
        self.state: Section | None = Section.REASONING if prefilled else None
        self.at_start = True
        self.buffer = ""
        self.decide_after = decide_after

    def content_is_answer(self) -> None:
        """The server sends reasoning separately: all content is the answer."""
        self.state = Section.ANSWER

    def feed(self, text: str) -> list[tuple[Section, str]]:
        self.buffer += text
        out: list[tuple[Section, str]] = []
        while self._step(out):
            pass
        return out

    def _step(self, out: list[tuple[Section, str]]) -> bool:
        """Move what is decidable from the buffer to `out`; True to go on."""
        if self.state == Section.ANSWER:
            if self.buffer:
                out.append((Section.ANSWER, self.buffer))
                self.buffer = ""
            return False
        if self.at_start:
            opening = self._leading_open_tag()
            if opening is None:
                return False  # a leading <think> may still be arriving
            if opening:
                self.state = Section.REASONING
            self.at_start = not self.buffer.strip()
        if self._close_reasoning(out):
            return True
        if self.state == Section.REASONING:
            keep = _partial_tag_suffix(self.buffer, CLOSE_TAG)
            emit, self.buffer = (
                self.buffer[: len(self.buffer) - keep],
                self.buffer[len(self.buffer) - keep :],
            )
            if emit:
                out.append((Section.REASONING, emit))
            return False
        if len(self.buffer) >= self.decide_after:  # undecided long enough: no tags
            self.state = Section.ANSWER
            return True
        return False

    def _leading_open_tag(self) -> bool | None:
        """Strip a leading <think>: True if stripped, False if absent, None if unsure."""
        stripped = self.buffer.lstrip()
        if stripped.startswith(OPEN_TAG):
            self.buffer = stripped[len(OPEN_TAG) :]
            return True
        if stripped and OPEN_TAG.startswith(stripped):
            return None
        return False

    def _close_reasoning(self, out: list[tuple[Section, str]]) -> bool:
        """Everything before `</think>` is reasoning (the tag may have been opened
        by the chat template); what follows is the answer."""
        close = self.buffer.find(CLOSE_TAG)
        if close < 0:
            return False
        out.append((Section.REASONING, self.buffer[:close]))
        self.buffer = self.buffer[close + len(CLOSE_TAG) :]
        self.state = Section.ANSWER
        return True

    def flush(self) -> list[tuple[Section, str]]:
        """The rest, at the end of the stream."""
        rest, self.buffer = self.buffer, ""
        if not rest:
            return []
        kind = Section.REASONING if self.state == Section.REASONING else Section.ANSWER
        if self.state is None:
            rest = rest.strip() if rest.strip() != OPEN_TAG else ""
        return [(kind, rest)] if rest else []


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could begin `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


def reasoning_of(part: Any) -> str | None:
    """The reasoning text of a delta or message: `reasoning_content` (trtllm-serve,
    vLLM, SGLang, transformers serve) or `reasoning` (newer vLLM)."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(part, name, None)
        if isinstance(value, str) and value:
            return value
    return None


# --------------------------------------------------------------------------
# Printing


HEADERS = {Section.REASONING: "[reasoning]", Section.ANSWER: "[answer]"}
DIM, RESET = "\x1b[2m", "\x1b[0m"


@dataclass
class Transcript:
    """What was received, printed as it arrives under a header per section."""

    out: TextIO
    color: bool = False
    reasoning: str = ""
    answer: str = ""
    first_token_at: float | None = None
    chunks: int = 0
    usage_tokens: int | None = None
    finish_reason: str | None = None
    streamed: bool = True
    _section: Section | None = field(default=None, repr=False)

    def token_arrived(self) -> None:
        """A delta with text came from the server (whether or not printable yet)."""
        self.chunks += 1
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def add(self, kind: Section, text: str) -> None:
        if kind != self._section:
            text = text.lstrip()  # "\n\n" after </think> would only push the answer down
            if not text:
                return
            self._open_section(kind)
        if kind == Section.REASONING:
            self.reasoning += text
        else:
            self.answer += text
        self.out.write(text)
        self.out.flush()

    def add_all(self, pieces: Iterable[tuple[Section, str]]) -> None:
        for kind, text in pieces:
            self.add(kind, text)

    def _open_section(self, kind: Section) -> None:
        if self._section is not None:
            self.out.write(RESET + "\n" if self.color else "\n")
        self.out.write(HEADERS[kind] + "\n")
        if self.color and kind == Section.REASONING:
            self.out.write(DIM)
        self._section = kind

    def close(self) -> None:
        """End the last section (before the summary or an error)."""
        if self._section is not None:
            self.out.write(RESET + "\n" if self.color else "\n")
            self.out.flush()


@dataclass
class Summary:
    ttft_s: float | None
    tokens: int
    counted_by: str  # "usage" (the server's count) or "chunks" (an estimate)
    tokens_per_s: float | None
    total_s: float
    finish_reason: str

    def render(self) -> str:
        ttft = f"{self.ttft_s:.2f} s" if self.ttft_s is not None else "n/a (not streamed)"
        if self.counted_by == "usage":
            count = f"{self.tokens} completion tokens (server usage)"
        else:
            count = (
                f"{self.tokens} chunks (no usage from the server; a chunk can hold several tokens)"
            )
        rate = f"{self.tokens_per_s:.1f}" if self.tokens_per_s is not None else "n/a"
        finish = self.finish_reason
        if finish == "length":
            finish += " (cut at --max-tokens or the server's max_seq_len)"
        return (
            f"time to first token {ttft} | {count} | {rate} tokens/s | "
            f"total {self.total_s:.2f} s | finish: {finish}"
        )


def summarize(transcript: Transcript, started: float, ended: float) -> Summary:
    """Streaming: tokens/s over the time after the first token (generation speed).
    Non-streaming: no first-token time; tokens/s over the whole request."""
    usage = transcript.usage_tokens
    tokens, counted_by = (usage, "usage") if usage is not None else (transcript.chunks, "chunks")
    total = ended - started
    finish = transcript.finish_reason or "?"
    if not transcript.streamed or transcript.first_token_at is None:
        rate = tokens / total if total > 0 and tokens else None
        return Summary(None, tokens, counted_by, rate, total, finish)
    generating = ended - transcript.first_token_at
    rate = tokens / generating if generating > 0 and tokens else None
    return Summary(transcript.first_token_at - started, tokens, counted_by, rate, total, finish)


# --------------------------------------------------------------------------
# Talking to the server


def _root_cause(err: BaseException) -> BaseException:
    """The transport error under the SDK's wrapper (the deepest cause)."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return err


def _chain(err: BaseException) -> Iterable[BaseException]:
    seen: BaseException | None = err
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _connect_failed(err: BaseException) -> bool:
    """True when no connection was made at all (refused, no route, unknown host)."""
    return any(
        type(e).__name__ == "ConnectError" or isinstance(e, ConnectionRefusedError)
        for e in _chain(err)
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unreachable(err: BaseException, base_url: str) -> ChatError:
    """Why no connection was made, and what to do about it."""
    cause = _root_cause(err)
    url = urlsplit(base_url)
    host = url.hostname or base_url
    if any(isinstance(e, socket.gaierror) for e in _chain(err)):
        return ChatError(
            f"cannot resolve the host {host!r} of {base_url} ({cause}); check --base-url "
            "(or OPENAI_BASE_URL)",
            EXIT_UNREACHABLE,
        )
    if any(isinstance(e, ssl.SSLError) for e in _chain(err)):
        plain = url._replace(scheme="http").geturl()
        return ChatError(
            f"the TLS handshake with {base_url} failed ({cause}): the server speaks plain "
            f"HTTP, as trtllm-serve and the port-forward do; use --base-url {plain}",
            EXIT_UNREACHABLE,
        )
    if _is_loopback(host):
        advice = PORT_FORWARD_HINT
    else:
        advice = (
            f"check --base-url, and that {host} is reachable from here (an internal load "
            "balancer answers only inside the VPC: `pulumi stack output internalEndpoint`)"
        )
    return ChatError(f"cannot connect to {base_url} ({cause}); {advice}", EXIT_UNREACHABLE)


def _not_found_hint(base_url: str) -> str:
    path = urlsplit(base_url).path.rstrip("/")
    if path.endswith("/v1"):
        return ""
    root = base_url.rstrip("/") + "/v1"
    return f"; the OpenAI API root ends in /v1: --base-url {root}"


def _model_hint(client: openai.OpenAI | None, model: str | None) -> str:
    """When --model names a model the server does not list, say so and list them."""
    if client is None or not model:
        return ""
    try:
        # Retries: a server may close the connection of the failed request.
        listed = [m.id for m in client.with_options(max_retries=2).models.list().data]
    except Exception:  # a hint must never hide the error it explains
        return ""
    if model in listed:
        return ""
    offered = ", ".join(listed[:5]) or "none"
    return (
        f"; the server does not list the model {model!r} (it lists: {offered}): check --model, "
        "or leave it out to use the first one listed"
    )


def explain(
    err: openai.OpenAIError,
    base_url: str,
    timeout: float,
    client: openai.OpenAI | None = None,
    model: str | None = None,
) -> ChatError:
    """The user-facing message and exit code for a failure before the answer began."""
    if isinstance(err, openai.APITimeoutError):
        return ChatError(
            f"{base_url} gave no answer within {timeout:g} s (--timeout)", EXIT_API_ERROR
        )
    if isinstance(err, openai.APIConnectionError):
        cause = _root_cause(err)
        if _connect_failed(err):
            return _unreachable(err, base_url)
        return ChatError(
            f"{base_url} closed the connection without an answer ({cause}). Through "
            "`kubectl port-forward` this means the server in the pod is not listening yet "
            f"(trtllm-serve opens its port once the model is loaded): {LOGS_HINT}",
            EXIT_UNREACHABLE,
        )
    if isinstance(err, openai.APIStatusError) and err.status_code == 503:
        return ChatError(
            f"{base_url} answered 503 Service Unavailable: the server is up but reports the "
            "model unavailable (trtllm-serve answers 503 once its engine has stopped; while "
            f"loading it refuses connections instead); {LOGS_HINT}",
            EXIT_LOADING,
        )
    if isinstance(err, openai.APIStatusError):
        hint = _not_found_hint(base_url) if err.status_code == 404 else ""
        hint = hint or _model_hint(client, model)
        return ChatError(
            f"{base_url} answered HTTP {err.status_code}: {_status_detail(err)}{hint}",
            EXIT_API_ERROR,
        )
    if type(err) is openai.APIError:  # an error event in the stream, from the server itself
        return ChatError(
            f"{base_url} stopped the answer with an error: {_stream_error_detail(err)}"
            f"{_model_hint(client, model)}",
            EXIT_API_ERROR,
        )
    return ChatError(f"API error from {base_url}: {err}", EXIT_API_ERROR)


def _stream_error_detail(err: openai.APIError) -> str:
    body = err.body
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return err.message


def _status_detail(err: openai.APIStatusError) -> str:
    """The server's own error message: OpenAI's {"error": {"message"}} (the SDK
    keeps the inner object), trtllm-serve's {"message"}, else the body text."""
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    text = err.response.text.strip() if err.response is not None else ""
    return text[:500] or err.message


def incomplete(reason: str) -> ChatError:
    return ChatError(
        f"the answer stopped before it was complete ({reason}); the connection dropped or "
        f"the server restarted: {LOGS_HINT}",
        EXIT_INCOMPLETE,
    )


def pick_model(client: openai.OpenAI) -> str:
    """The first model the server lists (trtllm-serve lists the one it serves)."""
    models = client.models.list().data
    if not models:
        raise ChatError("the server lists no models; pass --model", EXIT_API_ERROR)
    return models[0].id


def build_messages(question: str, system: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": question}]


def looks_prefilled(model: str, choice: ThinkPrefilled) -> bool:
    """Whether the chat template opens <think> itself (DeepSeek-R1's does)."""
    if choice == ThinkPrefilled.AUTO:
        return "r1" in model.lower()
    return choice == ThinkPrefilled.YES


def _stream(
    client: openai.OpenAI, request: dict[str, Any], splitter: ReasoningSplitter, t: Transcript
) -> None:
    stream = client.chat.completions.create(
        **request, stream=True, stream_options={"include_usage": True}
    )
    try:
        for chunk in stream:
            if chunk.usage is not None and chunk.usage.completion_tokens is not None:
                t.usage_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices or []:
                _take_delta(choice.delta, splitter, t)
                if choice.finish_reason:
                    t.finish_reason = choice.finish_reason
    except openai.OpenAIError as err:  # after the answer began: it was cut short
        t.add_all(splitter.flush())
        if type(err) is openai.APIError:  # the server sent an error event: not a dropped line
            raise
        raise incomplete(str(_root_cause(err))) from err
    t.add_all(splitter.flush())
    if t.finish_reason is None:
        raise incomplete("the stream ended without a finish_reason")


def _take_delta(delta: Any, splitter: ReasoningSplitter, t: Transcript) -> None:
    if delta is None:
        return
    reasoning, content = reasoning_of(delta), delta.content
    if reasoning or content:
        t.token_arrived()
    if reasoning:
        splitter.content_is_answer()
        t.add(Section.REASONING, reasoning)
    if content:
        t.add_all(splitter.feed(content))


def _complete(
    client: openai.OpenAI, request: dict[str, Any], splitter: ReasoningSplitter, t: Transcript
) -> None:
    t.streamed = False
    response = client.chat.completions.create(**request)
    if not response.choices:
        raise ChatError("the server's answer has no choices", EXIT_API_ERROR)
    choice = response.choices[0]
    reasoning = reasoning_of(choice.message)
    if reasoning:
        splitter.content_is_answer()
        t.add(Section.REASONING, reasoning)
    t.add_all(splitter.feed(choice.message.content or ""))
    t.add_all(splitter.flush())
    t.finish_reason = choice.finish_reason
    if response.usage is not None:
        t.usage_tokens = response.usage.completion_tokens
    if t.finish_reason is None:
        raise incomplete("the response has no finish_reason")


def chat(args: argparse.Namespace, out: TextIO | None = None) -> Summary:
    """Ask the question, print the answer as it comes (on `out`, by default
    the standard output of the moment), then the summary."""
    out = sys.stdout if out is None else out
    client = openai.OpenAI(
        base_url=args.base_url, api_key=args.api_key, timeout=args.timeout, max_retries=0
    )
    transcript = Transcript(out, color=_wants_color(out))
    try:
        model = args.model or pick_model(client)
        request = {
            "model": model,
            "messages": build_messages(args.question, args.system),
            "temperature": args.temperature,
            "top_p": args.top_p,
        }
        if args.max_tokens is not None:
            request["max_tokens"] = args.max_tokens
        prefilled = looks_prefilled(model, ThinkPrefilled(args.think_prefilled))
        splitter = ReasoningSplitter(prefilled=prefilled)
        started = time.perf_counter()
        if args.no_stream:
            _complete(client, request, splitter, transcript)
        else:
            _stream(client, request, splitter, transcript)
        ended = time.perf_counter()
    except openai.OpenAIError as err:
        raise explain(err, args.base_url, args.timeout, client, args.model) from err
    finally:
        transcript.close()
    summary = summarize(transcript, started, ended)
    out.write(f"\n-- {summary.render()}\n")
    return summary


def _wants_color(out: TextIO) -> bool:
    return out.isatty() and not os.environ.get("NO_COLOR")


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 token, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m clients.chat",
        description=__doc__.split("\n\n")[0],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("question", help="what to ask")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
        help=f"OpenAI-compatible API root (default: $OPENAI_BASE_URL or {DEFAULT_BASE_URL}, "
        "the port-forwarded service)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("OPENAI_API_KEY") or "not-needed",
        help="API key (default: $OPENAI_API_KEY or a dummy, for servers that check none)",
    )
    parser.add_argument("--model", help="model name (default: the first one the server lists)")
    parser.add_argument(
        "--system", default="You are a helpful AI assistant", help="system prompt ('' for none)"
    )
    parser.add_argument("--temperature", type=float, default=0.6, help="default: %(default)s")
    parser.add_argument("--top-p", type=float, default=0.95, help="default: %(default)s")
    parser.add_argument(
        "--max-tokens",
        type=_at_least_one,
        default=None,
        help="completion token limit (default: none, so the server allows what fits in its "
        f"max_seq_len after the prompt; trtllm-serve lowers a larger value to that; the "
        f"stack sets max_seq_len with {MAX_SEQ_LEN_SETTING})",
    )
    parser.add_argument(
        "--no-stream", action="store_true", help="wait for the whole answer, then print it"
    )
    parser.add_argument(
        "--think-prefilled",
        choices=[c.value for c in ThinkPrefilled],  # plain: argparse errors show repr(choice)
        default=ThinkPrefilled.AUTO.value,
        help="whether the chat template opens <think> itself, so content is reasoning until "
        "</think> when the server sends no reasoning_content (auto: yes for R1 models)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for the server to answer"
    )
    return parser.parse_args(argv)


def length_cut(args: argparse.Namespace) -> ChatError:
    """An answer the length limit ended: which setting raises the limit."""
    limit = (
        f"--max-tokens ({args.max_tokens}) or " if args.max_tokens is not None else ""
    ) + f"the server's max_seq_len (prompt + answer; the stack's {MAX_SEQ_LEN_SETTING} setting)"
    return ChatError(
        f"the answer was cut at the length limit (finish_reason: length), not finished: "
        f"raise {limit}, e.g. `pulumi config set {MAX_SEQ_LEN_SETTING} 65536 && pulumi up`",
        EXIT_LENGTH,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = chat(args)
        if summary.finish_reason == "length":
            raise length_cut(args)
    except ChatError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
