"""docker/run_benchmarks.py against a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import importlib.util
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "run_benchmarks.py"
spec = importlib.util.spec_from_file_location("run_benchmarks", SCRIPT)
run_benchmarks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_benchmarks)


class Health(http.server.BaseHTTPRequestHandler):
    ready_after = 0  # requests answered 503 before 200

    def do_GET(self):
        Health.seen = getattr(Health, "seen", 0) + 1
        self.send_response(200 if Health.seen > Health.ready_after else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Health.seen = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_matrix_parsing_and_file_names():
    assert run_benchmarks.parse_matrix("512x128x8, 1024x1024x64") == [
        (512, 128, 8),
        (1024, 1024, 64),
    ]
    assert run_benchmarks.result_filename(512, 128, 8) == "isl512_osl128_c8.json"


def test_waits_through_503_then_runs_warmup_and_measured_rounds(server, tmp_path):
    Health.ready_after = 2
    calls = []

    def fake_runner(args, check):
        calls.append(args)
        return SimpleNamespace(returncode=0)

    env = {
        "BASE_URL": server,
        "MODEL": "DeepSeek-R1-0528",
        "TOKENIZER": "/models/deepseek-ai/DeepSeek-R1-0528",
        "MATRIX": "512x128x8,1024x1024x1",
        "RESULT_DIR": str(tmp_path / "run"),
        "METADATA": "run_id=abc precision=fp8",
        "READY_TIMEOUT_SECONDS": "30",
    }
    original_sleep = run_benchmarks.time.sleep
    run_benchmarks.time.sleep = lambda s: original_sleep(0.01)
    try:
        assert run_benchmarks.run(env, runner=fake_runner) == 0
    finally:
        run_benchmarks.time.sleep = original_sleep
    assert Health.seen == 3
    assert len(calls) == 4
    warmup, measured = calls[0], calls[1]
    assert "--num-prompts=8" in warmup and "--save-result" not in warmup
    assert "--num-prompts=40" in measured and "--max-concurrency=8" in measured
    for flag in (
        "--random-ids",
        "--ignore-eos",
        "--tokenize-on-client",
        "--dataset-name=random",
        "--random-prefix-len=0",
    ):
        assert flag in measured
    assert "--result-filename=isl512_osl128_c8.json" in measured
    metadata = measured[measured.index("--metadata") + 1 :]
    assert metadata == ["run_id=abc", "precision=fp8", "isl=512", "osl=128", "concurrency=8"]
    assert measured[1:3] == ["-m", "tensorrt_llm.serve.scripts.benchmark_serving"]


def test_a_failing_case_is_reported_and_the_rest_still_run(server, tmp_path, capsys):
    results = iter([0, 1, 0, 0])

    def flaky(args, check):
        return SimpleNamespace(returncode=next(results))

    env = {
        "BASE_URL": server,
        "MODEL": "m",
        "TOKENIZER": "t",
        "MATRIX": "512x128x8,1024x1024x1",
        "RESULT_DIR": str(tmp_path),
    }
    Health.ready_after = 0
    assert run_benchmarks.run(env, runner=flaky) == 1
    assert "failed cases: 512x128x8" in capsys.readouterr().err


def test_a_server_that_never_gets_ready_times_out(tmp_path):
    with pytest.raises(TimeoutError, match="did not answer 200"):
        run_benchmarks.wait_until_ready("http://127.0.0.1:9", timeout=0.05, poll=0.01)
