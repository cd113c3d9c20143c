"""Runs TensorRT-LLM's benchmark_serving against the server for a matrix of cases.

Runs in the benchmark Job (serving image). For each `ISLxOSLxCONCURRENCY` case:
a warm-up round (one request per concurrent user, not saved), then the
measured round with NVIDIA's methodology (random token ids, exact input length
tokenized on the client, ignore EOS, prompts = PROMPTS_PER_USER x concurrency),
saving one JSON per case, with the stack's metadata, into RESULT_DIR.

Environment:
  BASE_URL        server, e.g. http://dsr1-trtllm-serve.deepseek:8000
  MODEL           served model name (what /v1/models reports)
  TOKENIZER       local path of the checkpoint (its tokenizer files)
  MATRIX          comma-separated cases, e.g. 1024x1024x1,1024x1024x64
  RESULT_DIR      where the JSON files go (the bucket, mounted)
  METADATA        space-separated key=value pairs stored in every result
  PROMPTS_PER_USER  5 (NVIDIA's multi_round); READY_TIMEOUT_SECONDS 7200
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCHMARK_MODULE = "tensorrt_llm.serve.scripts.benchmark_serving"


def parse_matrix(text: str) -> list[tuple[int, int, int]]:
    cases = []
    for item in text.split(","):
        isl, osl, concurrency = (int(part) for part in item.strip().split("x"))
        cases.append((isl, osl, concurrency))
    return cases


def result_filename(isl: int, osl: int, concurrency: int) -> str:
    return f"isl{isl}_osl{osl}_c{concurrency}.json"


def wait_until_ready(base_url: str, timeout: float, poll: float = 15.0) -> None:
    """Until /health answers 200 (connection refused while the model loads)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{base_url}/health did not answer 200 within {timeout:.0f}s")
        time.sleep(poll)


def benchmark_args(
    base_url: str,
    model: str,
    tokenizer: str,
    isl: int,
    osl: int,
    concurrency: int,
    prompts: int,
    result_dir: str | None,
    metadata: list[str],
) -> list[str]:
    args = [
        sys.executable,
        "-m",
        BENCHMARK_MODULE,
        "--backend=openai",
        f"--base-url={base_url}",
        f"--model={model}",
        f"--tokenizer={tokenizer}",
        "--dataset-name=random",
        f"--random-input-len={isl}",
        f"--random-output-len={osl}",
        "--random-prefix-len=0",
        "--random-ids",
        "--tokenize-on-client",
        "--ignore-eos",
        f"--num-prompts={prompts}",
        f"--max-concurrency={concurrency}",
        "--percentile-metrics=ttft,tpot,itl,e2el",
        "--metric-percentiles=50,90,99",
    ]
    if result_dir is not None:
        args += [
            "--save-result",
            f"--result-dir={result_dir}",
            f"--result-filename={result_filename(isl, osl, concurrency)}",
            "--metadata",
            *metadata,
            f"isl={isl}",
            f"osl={osl}",
            f"concurrency={concurrency}",
        ]
    return args


def run(env: dict[str, str], runner=subprocess.run) -> int:
    base_url = env["BASE_URL"].rstrip("/")
    result_dir = env["RESULT_DIR"]
    prompts_per_user = int(env.get("PROMPTS_PER_USER", "5"))
    metadata = env.get("METADATA", "").split()
    wait_until_ready(base_url, float(env.get("READY_TIMEOUT_SECONDS", "7200")))
    Path(result_dir).mkdir(parents=True, exist_ok=True)
    failed = []
    for isl, osl, concurrency in parse_matrix(env["MATRIX"]):
        common = (base_url, env["MODEL"], env["TOKENIZER"], isl, osl, concurrency)
        print(f"== {isl}/{osl} at concurrency {concurrency}: warm-up", flush=True)
        warmup = runner(benchmark_args(*common, concurrency, None, []), check=False)
        print(f"== {isl}/{osl} at concurrency {concurrency}: measured", flush=True)
        measured = runner(
            benchmark_args(*common, prompts_per_user * concurrency, result_dir, metadata),
            check=False,
        )
        if warmup.returncode or measured.returncode:
            failed.append(f"{isl}x{osl}x{concurrency}")
    if failed:
        print(f"failed cases: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(dict(os.environ)))
