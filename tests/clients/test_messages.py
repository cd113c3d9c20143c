"""Chat and report messages that name the real cause and the fix (issue 12).

Each test names what a user saw before and checks what they see now. The chat
cases run against `transformers serve` on loopback (conftest's `server`) or the
scripted loopback server of test_chat.py; an unresolvable host is simulated
at the resolver, so no name is looked up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import google.api_core.exceptions as gexc
import httpx2 as httpx
import openai
import pytest

from clients import chat
from tests.clients.conftest import REPO, run_chat
from tests.clients.test_chat import Scripted, scripted, sse  # noqa: F401 (a fixture)
from tests.clients.test_report import fake_storage, render  # noqa: F401 (fixture)

QUESTION = "how many r in strawberry ?"


def last_error(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


# --- chat: the base URL ---------------------------------------------------------------


def test_a_base_url_without_v1_says_to_add_it(server, tiny_models_dir):
    # Before: "error: http://127.0.0.1:PORT answered HTTP 404: {"detail":"Not Found"}"
    root = server.removesuffix("/v1")
    done = run_chat(QUESTION, "--base-url", root, "--model", str(tiny_models_dir["reasoning"]))
    assert done.returncode == 6
    assert last_error(done.stderr).endswith(
        f"; the OpenAI API root ends in /v1: --base-url {root}/v1"
    )


def test_https_against_plain_http_says_to_use_http(scripted):  # noqa: F811
    # Before: "cannot connect to https://...; start the port-forward first ..."
    base = scripted(lambda h: h.reply(200, {}))  # a plain-HTTP server
    https = base.replace("http://", "https://")
    done = run_chat(QUESTION, "--base-url", https, "--model", "m")
    assert done.returncode == 3
    message = last_error(done.stderr)
    assert message.startswith(f"error: the TLS handshake with {https} failed")
    assert message.endswith(
        f"the server speaks plain HTTP, as trtllm-serve and the port-forward do; use --base-url {base}"
    )
    assert "port-forward first" not in message


def test_an_unresolvable_host_says_to_check_the_url(monkeypatch, capsys):
    # Before: "cannot connect to http://...: [Errno -2] ...; start the port-forward first"
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    code = chat.main([QUESTION, "--base-url", "http://dsr1-serve.example:8000/v1", "--model", "m"])
    assert code == 3
    message = last_error(capsys.readouterr().err)
    assert message.startswith(
        "error: cannot resolve the host 'dsr1-serve.example' of http://dsr1-serve.example:8000/v1"
    )
    assert message.endswith("check --base-url (or OPENAI_BASE_URL)")


def refused(base_url: str) -> chat.ChatError:
    request = httpx.Request("POST", base_url + "/chat/completions")
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as cause:
            raise httpx.ConnectError("Connection refused", request=request) from cause
    except httpx.ConnectError as connect:
        try:
            raise openai.APIConnectionError(request=request) from connect
        except openai.APIConnectionError as err:
            return chat.explain(err, base_url, 600)


def test_refused_on_localhost_says_to_start_the_port_forward():
    message = str(refused("http://localhost:8000/v1"))
    assert "start the port-forward first" in message


def test_refused_elsewhere_does_not_blame_the_port_forward():
    message = str(refused("http://10.128.0.9:8000/v1"))
    assert "port-forward" not in message
    assert message.endswith(
        "check --base-url, and that 10.128.0.9 is reachable from here (an internal load "
        "balancer answers only inside the VPC: `pulumi stack output internalEndpoint`)"
    )


# --- chat: the request --------------------------------------------------------------


def test_max_tokens_zero_is_a_usage_error():
    # Before: the request went out and ended in "the connection dropped" (exit 5).
    done = run_chat(QUESTION, "--max-tokens", "0")
    assert done.returncode == 2
    assert "argument --max-tokens: must be at least 1 token, got 0" in done.stderr


def test_an_unknown_model_says_to_check_model(server, tiny_models_dir):
    # Before: "error: .../v1 answered HTTP 500: Internal Server Error"
    listed = str(tiny_models_dir["reasoning"])
    assert run_chat(QUESTION, "--base-url", server, "--model", listed).returncode == 0
    done = run_chat(QUESTION, "--base-url", server, "--model", "no-such-model")
    assert done.returncode == 6
    message = last_error(done.stderr)
    assert "the server does not list the model 'no-such-model' (it lists: " in message
    assert listed in message
    assert message.endswith("check --model, or leave it out to use the first one listed")


def error_event(h: Scripted) -> None:
    h.start_stream()
    h.send_chunk(sse({"role": "assistant", "content": "Let me"}))
    h.send_chunk(b'data: {"error": "`max_new_tokens` must be greater than 0, but is 0."}\n\n')
    h.send_chunk(b"")


def test_an_error_event_in_the_stream_is_the_servers_error_not_a_dropped_line(scripted):  # noqa: F811
    # Before: "the answer stopped before it was complete (An error occurred during
    # streaming); the connection dropped or the server restarted" (exit 5)
    done = run_chat(QUESTION, "--base-url", scripted(error_event), "--model", "m")
    assert done.returncode == 6
    message = last_error(done.stderr)
    assert message.endswith(
        "stopped the answer with an error: `max_new_tokens` must be greater than 0, but is 0."
    )
    assert "connection dropped" not in message


def test_without_the_clients_requirements_the_chat_says_how_to_install_them():
    # Before: a traceback ending in "No module named 'openai'" after `pulumi up`.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runpy; sys.modules['openai'] = None; "
            "runpy.run_module('clients.chat', run_name='__main__')",
            "hi",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: the chat client needs openai, which is not installed: run `make clients` "
        "(or .venv/bin/python -m pip install -r requirements-clients.txt)"
    )


# --- report: gs:// -------------------------------------------------------------------


def test_gs_without_credentials_names_the_login_command_and_nothing_else(tmp_path):
    # Before: a FutureWarning from google.api_core, then an error without the command.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
    env.update(
        HOME=str(tmp_path),
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        # No metadata server probe: the check is off, and its address is loopback.
        NO_GCE_CHECK="true",
        GCE_METADATA_HOST="127.0.0.1:9",
        GCE_METADATA_IP="127.0.0.1:9",
    )
    done = subprocess.run(
        [sys.executable, "-m", "clients.report", "gs://my-bucket/benchmarks/run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # no warning before the error
    assert lines[0].startswith(
        "error: cannot list gs://my-bucket/benchmarks/run: DefaultCredentialsError"
    )
    assert lines[0].endswith(
        "the report reads the bucket as you: run `gcloud auth application-default login` "
        "and try again"
    )


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (
            gexc.Forbidden("caller does not have storage.objects.list"),
            "your account needs roles/storage.objectViewer on gs://my-bucket",
        ),
        (
            gexc.NotFound("bucket does not exist"),
            "no bucket my-bucket: check the stack output benchmarkResults",
        ),
    ],
)
def test_gs_permission_and_missing_bucket_say_what_to_do(fake_storage, capsys, error, hint):  # noqa: F811
    fake_storage.listing_error = error
    code, _ = render(["gs://my-bucket/benchmarks/run"])
    assert code == 1
    assert hint in capsys.readouterr().err
