"""Chat with the DeepSeek-R1 endpoint (or any OpenAI-compatible server).

    python -m clients.chat "Which is larger, 9.9 or 9.11?"

Streams the answer as it arrives, shows the model's reasoning apart from the
answer, and ends with a summary: time to first token, tokens, tokens/s, total
time. Reasoning comes either in the `reasoning_content` field (trtllm-serve
with `--reasoning_parser deepseek-r1`, as this stack runs it) or inside
`<think>...</think>` in the content (servers without a reasoning parser;
DeepSeek-R1's chat template opens `<think>` itself, so there only `</think>`
appears).

Exit codes: 0 done; 2 bad arguments; 3 the server cannot be reached (is
`kubectl port-forward` running?); 4 the server answered 503 (the model is
still loading); 5 the answer stopped before it was complete; 6 any other API
error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import openai

DEFAULT_BASE_URL = "http://localhost:8000/v1"
OPEN_TAG, CLOSE_TAG = "<think>", "</think>"

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_LOADING = 4
EXIT_INCOMPLETE = 5
EXIT_API_ERROR = 6


class ChatError(Exception):
    """A failure with a message for the user and an exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------
# Separating reasoning from the answer in content text


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
        self.state = "reasoning" if prefilled else "undecided"
        self.at_start = True
        self.buffer = ""
        self.decide_after = decide_after

    def content_is_answer(self) -> None:
        """The server sends reasoning separately: all content is the answer."""
        self.state = "answer"

    def feed(self, text: str) -> list[tuple[str, str]]:
        self.buffer += text
        out: list[tuple[str, str]] = []
        while self._step(out):
            pass
        return out

    def _step(self, out: list[tuple[str, str]]) -> bool:
        """Move what is decidable from the buffer to `out`; True to go on."""
        if self.state == "answer":
            if self.buffer:
                out.append(("answer", self.buffer))
                self.buffer = ""
            return False
        if self.at_start:
            opening = self._leading_open_tag()
            if opening is None:
                return False  # a leading <think> may still be arriving
            if opening:
                self.state = "reasoning"
            self.at_start = not self.buffer.strip()
        if self._close_reasoning(out):
            return True
        if self.state == "reasoning":
            keep = _partial_tag_suffix(self.buffer, CLOSE_TAG)
            emit, self.buffer = (
                self.buffer[: len(self.buffer) - keep],
                self.buffer[len(self.buffer) - keep :],
            )
            if emit:
                out.append(("reasoning", emit))
            return False
        if len(self.buffer) >= self.decide_after:  # undecided long enough: no tags
            self.state = "answer"
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

    def _close_reasoning(self, out: list[tuple[str, str]]) -> bool:
        """Everything before `</think>` is reasoning (the tag may have been opened
        by the chat template); what follows is the answer."""
        close = self.buffer.find(CLOSE_TAG)
        if close < 0:
            return False
        out.append(("reasoning", self.buffer[:close]))
        self.buffer = self.buffer[close + len(CLOSE_TAG) :]
        self.state = "answer"
        return True

    def flush(self) -> list[tuple[str, str]]:
        """The rest, at the end of the stream."""
        rest, self.buffer = self.buffer, ""
        if not rest:
            return []
        kind = "reasoning" if self.state == "reasoning" else "answer"
        if self.state == "undecided":
            rest = rest.strip() if rest.strip() != OPEN_TAG else ""
        return [(kind, rest)] if rest else []


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could begin `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


# --------------------------------------------------------------------------
# Printing


@dataclass
class Transcript:
    reasoning: str = ""
    answer: str = ""
    first_token_at: float | None = None
    chunks: int = 0
    usage_tokens: int | None = None
    finish_reason: str | None = None
    streamed: bool = True
    _section: str | None = field(default=None, repr=False)

    def add(self, kind: str, text: str, out: TextIO) -> None:
        if not text:
            return
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if kind == "reasoning":
            self.reasoning += text
        else:
            self.answer += text
        if kind != self._section:
            if self._section is not None:
                out.write("\n")
            out.write("[reasoning]\n" if kind == "reasoning" else "[answer]\n")
            self._section = kind
        out.write(text)
        out.flush()


@dataclass
class Summary:
    ttft_s: float | None
    tokens: int
    tokens_counted: str  # "usage" (the server's count) or "chunks" (an estimate)
    tokens_per_s: float | None
    total_s: float

    def render(self) -> str:
        ttft = f"{self.ttft_s:.2f} s" if self.ttft_s is not None else "n/a"
        rate = f"{self.tokens_per_s:.1f}" if self.tokens_per_s is not None else "n/a"
        basis = "" if self.tokens_counted == "usage" else " (streamed chunks)"
        return (
            f"time to first token {ttft} | {self.tokens} tokens{basis} | "
            f"{rate} tokens/s | total {self.total_s:.2f} s"
        )


def summarize(transcript: Transcript, started: float, ended: float) -> Summary:
    """Streaming: tokens/s over the time after the first token (decode speed).
    Non-streaming: no first-token time; tokens/s over the whole request."""
    tokens = transcript.usage_tokens if transcript.usage_tokens is not None else transcript.chunks
    counted = "usage" if transcript.usage_tokens is not None else "chunks"
    if not transcript.streamed or transcript.first_token_at is None:
        total = ended - started
        return Summary(None, tokens, counted, tokens / total if total and tokens else None, total)
    ttft = transcript.first_token_at - started
    generating = ended - transcript.first_token_at
    rate = tokens / generating if generating and tokens else None
    return Summary(ttft, tokens, counted, rate, ended - started)


# --------------------------------------------------------------------------
# Talking to the server


def explain(err: Exception, base_url: str) -> ChatError:
    """The user-facing message and exit code for an API failure."""
    if isinstance(err, openai.APIConnectionError):
        return ChatError(
            f"cannot reach {base_url} ({err.__class__.__name__}). Is the port-forward running? "
            "Start it with: $(pulumi stack output portForward)",
            EXIT_UNREACHABLE,
        )
    if isinstance(err, openai.APIStatusError) and err.status_code == 503:
        return ChatError(
            f"{base_url} answered 503: the server is up but the model is not ready yet "
            "(loading weights, compiling kernels). Follow it with "
            "$(pulumi stack output logs) and try again.",
            EXIT_LOADING,
        )
    if isinstance(err, openai.APIStatusError):
        return ChatError(
            f"the server answered HTTP {err.status_code}: {err.message}", EXIT_API_ERROR
        )
    return ChatError(f"API error: {err}", EXIT_API_ERROR)


def pick_model(client: openai.OpenAI) -> str:
    models = client.models.list().data
    if not models:
        raise ChatError("the server lists no models; pass --model", EXIT_API_ERROR)
    return models[0].id


def build_messages(question: str, system: str | None) -> list[dict]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": question}]


def chat(args: argparse.Namespace, out: TextIO = sys.stdout) -> Summary:
    client = openai.OpenAI(
        base_url=args.base_url, api_key=args.api_key, timeout=args.timeout, max_retries=0
    )
    try:
        model = args.model or pick_model(client)
        request = {
            "model": model,
            "messages": build_messages(args.question, args.system),
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_tokens": args.max_tokens,
        }
        prefilled = looks_prefilled(model, args.think_prefilled)
        started = time.perf_counter()
        transcript = Transcript()
        if args.no_stream:
            _complete(client, request, prefilled, transcript, out)
        else:
            _stream(client, request, prefilled, transcript, out)
        ended = time.perf_counter()
    except openai.OpenAIError as err:
        raise explain(err, args.base_url) from err
    out.write("\n")
    if transcript.finish_reason is None:
        raise ChatError(
            "the stream ended before the answer was complete (no finish reason); "
            "the server may have restarted or the connection dropped",
            EXIT_INCOMPLETE,
        )
    summary = summarize(transcript, started, ended)
    out.write(f"\n-- {summary.render()} (finish: {transcript.finish_reason})\n")
    return summary


def looks_prefilled(model: str, choice: str) -> bool:
    """Whether the chat template opens <think> itself (DeepSeek-R1's does)."""
    if choice == "auto":
        return "r1" in model.lower()
    return choice == "yes"


def _stream(
    client: openai.OpenAI, request: dict, prefilled: bool, transcript: Transcript, out: TextIO
) -> None:
    splitter = ReasoningSplitter(prefilled=prefilled)
    stream = client.chat.completions.create(
        **request, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        if chunk.usage is not None and chunk.usage.completion_tokens is not None:
            transcript.usage_tokens = chunk.usage.completion_tokens
        for choice in chunk.choices:
            delta = choice.delta
            reasoning = getattr(delta, "reasoning_content", None)
            if reasoning:
                splitter.content_is_answer()
                transcript.chunks += 1
                transcript.add("reasoning", reasoning, out)
            if delta.content:
                transcript.chunks += 1
                for kind, text in splitter.feed(delta.content):
                    transcript.add(kind, text, out)
            if choice.finish_reason:
                transcript.finish_reason = choice.finish_reason
    for kind, text in splitter.flush():
        transcript.add(kind, text, out)


def _complete(
    client: openai.OpenAI, request: dict, prefilled: bool, transcript: Transcript, out: TextIO
) -> None:
    transcript.streamed = False
    splitter = ReasoningSplitter(prefilled=prefilled)
    response = client.chat.completions.create(**request)
    choice = response.choices[0]
    reasoning = getattr(choice.message, "reasoning_content", None)
    if reasoning:
        splitter.content_is_answer()
        transcript.add("reasoning", reasoning, out)
    for kind, text in [*splitter.feed(choice.message.content or ""), *splitter.flush()]:
        transcript.add(kind, text, out)
    transcript.finish_reason = choice.finish_reason
    if response.usage is not None:
        transcript.usage_tokens = response.usage.completion_tokens


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m clients.chat",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 done, 2 bad arguments, 3 server unreachable, "
        "4 model still loading (HTTP 503), 5 answer incomplete, 6 other API error.",
    )
    parser.add_argument("question")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
        help=f"OpenAI-compatible API root (default: $OPENAI_BASE_URL or {DEFAULT_BASE_URL})",
    )
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY") or "not-needed")
    parser.add_argument("--model", help="model name (default: the first one the server lists)")
    parser.add_argument("--system", default="You are a helpful AI assistant", help="system prompt")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    parser.add_argument(
        "--think-prefilled",
        choices=("auto", "yes", "no"),
        default="auto",
        help="whether the chat template opens <think> itself, so content is reasoning until "
        "</think> when the server sends no reasoning_content (auto: yes for R1 models)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        chat(args)
    except ChatError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return err.exit_code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
