"""Benchmarks the server with NVIDIA's AIPerf for a matrix of cases.

Runs in the benchmark Job (the small benchmark image, docker/benchmark/),
on whatever node it is scheduled: AIPerf is a pure-Python HTTP client, so
nothing here needs a GPU or TensorRT-LLM.

For each case of MATRIX:
- `ISLxOSLxC`: one AIPerf run at concurrency C, C warm-up requests first
  (not counted), then PROMPTS_PER_USER x C measured requests with ISL-token
  synthetic prompts and OSL output tokens (EXTRA_INPUTS, e.g.
  `ignore_eos:true`, makes the server generate all of them);
- `ISLxOSLxslo`: the SLO search, like MLPerf's server scenario: the highest
  concurrency whose p99 TTFT and p99 TPOT stay within SLO_TTFT_MS and
  SLO_TPOT_MS, found by doubling from 1 (at most SLO_MAX_CONCURRENCY), then
  bisecting between the last pass and the first failure.

Every AIPerf run writes its own artifact folder under RESULT_DIR
(`profile_export_aiperf.json` and friends), and beside it `case.json`: the
stack's metadata, the case, its time window, the server's KV-cache use
(polled from trtllm-serve's /metrics iteration stats, where it reports them)
and, once all cases are done, the GPUs' DCGM samples for that window, read
from Managed Service for Prometheus. `python -m clients.report` reads both.

Environment:
  BASE_URL          server, e.g. http://dsr1-trtllm-serve.deepseek.svc.cluster.local:8000
  MODEL             served model name (what /v1/models reports)
  TOKENIZER         local path of the checkpoint (its tokenizer files)
  MATRIX            comma-separated cases, e.g. 512x128x8,1024x1024xslo
  RESULT_DIR        where the results go (the bucket, mounted)
  METADATA          space-separated key=value pairs stored in every case.json
  PROMPTS_PER_USER  5 (NVIDIA's sweep: prompts = 5 x concurrency)
  EXTRA_INPUTS      space-separated key:value request fields (trtllm-serve: ignore_eos:true)
  SLO_TTFT_MS 2000, SLO_TPOT_MS 80, SLO_MAX_CONCURRENCY 512
  PROJECT           project of the Managed Prometheus query API (empty: no GPU metrics)
  DCGM_SELECTOR     PromQL label selector of the server's GPUs
  DCGM_DELAY_SECONDS  wait for the last samples to be queryable (150)
  READY_TIMEOUT_SECONDS 7200; AIPERF (the aiperf command); PROMETHEUS_URL and
  METADATA_SERVER (for tests)
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SLO = "slo"
# Managed Service for Prometheus' Prometheus-compatible query API
# (cloud.google.com/stackdriver/docs/managed-prometheus/query-api-ui); the
# caller needs roles/monitoring.viewer on the project.
PROMETHEUS_URL = (
    "https://monitoring.googleapis.com/v1/projects/{project}/location/global/prometheus"
)
# The GKE metadata server gives a pod its Workload Identity access token
# (cloud.google.com/kubernetes-engine/docs/concepts/workload-identity).
METADATA_SERVER = "http://metadata.google.internal"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
# DCGM fields GKE's managed DCGM exporter reports (cloud.google.com/kubernetes-
# engine/docs/how-to/dcgm-metrics): framebuffer used and free (MiB) and GPU
# utilization (%).
DCGM_METRICS = {
    "memory_used_mib": "DCGM_FI_DEV_FB_USED",
    "memory_free_mib": "DCGM_FI_DEV_FB_FREE",
    "gpu_utilization_pct": "DCGM_FI_DEV_GPU_UTIL",
}
DCGM_STEP_SECONDS = 15


@dataclass(frozen=True)
class Case:
    isl: int
    osl: int
    concurrency: int | None  # None: the SLO search

    @property
    def name(self) -> str:
        users = SLO if self.concurrency is None else f"c{self.concurrency}"
        return f"isl{self.isl}_osl{self.osl}_{users}"


def parse_matrix(text: str) -> list[Case]:
    cases = []
    for item in text.split(","):
        isl, osl, users = item.strip().split("x")
        cases.append(Case(int(isl), int(osl), None if users == SLO else int(users)))
    return cases


def parse_pairs(text: str, sep: str) -> dict[str, str]:
    return dict(pair.split(sep, 1) for pair in text.split())


def wait_until_ready(base_url: str, timeout: float, poll: float = 15.0) -> None:
    """Until /health answers 200. While trtllm-serve loads the model its port
    refuses connections; a 503 means the engine is up but unhealthy."""
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


def aiperf_args(
    aiperf: list[str],
    env: dict[str, str],
    isl: int,
    osl: int,
    concurrency: int,
    artifact_dir: Path,
) -> list[str]:
    prompts = int(env.get("PROMPTS_PER_USER", "5")) * concurrency
    args = [
        *aiperf,
        "profile",
        f"--model={env['MODEL']}",
        f"--tokenizer={env['TOKENIZER']}",
        f"--url={env['BASE_URL'].rstrip('/')}",
        "--endpoint-type=chat",
        "--streaming",
        f"--synthetic-input-tokens-mean={isl}",
        "--synthetic-input-tokens-stddev=0",
        f"--output-tokens-mean={osl}",
        "--output-tokens-stddev=0",
        f"--concurrency={concurrency}",
        f"--request-count={prompts}",
        f"--warmup-request-count={concurrency}",
        # Token counts from the server's usage (exact; the reasoning parser
        # streams most tokens as reasoning_content) rather than re-tokenized text.
        "--use-server-token-count",
        "--random-seed=42",
        "--ui-type=none",
        # GPU metrics come from the platform (DCGM), the server's from /metrics.
        "--no-server-metrics",
        "--no-gpu-telemetry",
        f"--artifact-dir={artifact_dir}",
    ]
    extra = env.get("EXTRA_INPUTS", "").split()
    if extra:
        args += ["--extra-inputs", *extra]
    return args


# --------------------------------------------------------------------------
# The server's KV-cache use, while a case runs


class KvCachePoller:
    """Polls trtllm-serve's /metrics (JSON iteration stats; reported only with
    `enable_iter_perf_stats`) for kvCacheStats.usedNumBlocks / maxNumBlocks."""

    def __init__(self, url: str, interval: float = 5.0):
        self.url, self.interval = url, interval
        self.samples: list[list[float]] = []
        self.problem: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> KvCachePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=10) as response:
                stats = json.loads(response.read() or b"[]")
        except urllib.error.HTTPError as err:
            self.problem = f"{self.url} answered HTTP {err.code}"
            return
        except (urllib.error.URLError, OSError, ValueError) as err:
            self.problem = f"{self.url}: {err}"
            return
        for stat in stats if isinstance(stats, list) else []:
            kv = stat.get("kvCacheStats") or {}
            if kv.get("maxNumBlocks"):
                self.samples.append(
                    [time.time(), float(kv.get("usedNumBlocks", 0)), float(kv["maxNumBlocks"])]
                )

    def record(self) -> dict:
        if self.samples:
            return {"samples": self.samples}
        return {
            "samples": [],
            "note": self.problem
            or "no kvCacheStats: trtllm-serve reports iteration stats only with "
            "enable_iter_perf_stats (the stack's prometheusMetrics setting)",
        }


# --------------------------------------------------------------------------
# DCGM samples from Managed Service for Prometheus


def access_token(metadata_server: str) -> str:
    request = urllib.request.Request(
        metadata_server.rstrip("/") + TOKEN_PATH, headers={"Metadata-Flavor": "Google"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["access_token"]


def query_range(
    base: str, token: str, promql: str, start: float, end: float, step: int = DCGM_STEP_SECONDS
) -> list[dict]:
    query = urllib.parse.urlencode(
        {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}s"}
    )
    request = urllib.request.Request(
        f"{base.rstrip('/')}/api/v1/query_range?{query}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise ValueError(f"query failed: {body.get('error', body)}")
    return body["data"]["result"]


def dcgm_samples(env: dict[str, str], start: float, end: float) -> dict:
    """Per metric, [time, gpu, value] rows for the server's GPUs in the window."""
    project = env.get("PROJECT", "")
    if not project:
        return {"note": "PROJECT not set: no GPU metrics"}
    base = env.get("PROMETHEUS_URL") or PROMETHEUS_URL.format(project=project)
    selector = env.get("DCGM_SELECTOR", "")
    record: dict = {"source": base, "selector": selector, "samples": {}}
    try:
        token = access_token(env.get("METADATA_SERVER", METADATA_SERVER))
        for key, metric in DCGM_METRICS.items():
            series = query_range(base, token, f"{metric}{{{selector}}}", start, end)
            record["samples"][key] = [
                [float(t), s["metric"].get("gpu", "?"), float(v)]
                for s in series
                for t, v in s.get("values", [])
            ]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as err:
        record["note"] = f"cannot read DCGM metrics: {type(err).__name__}: {err}"
        return record
    if not any(record["samples"].values()):
        record["note"] = f"no DCGM series matched {{{selector}}} in the case's window"
    return record


# --------------------------------------------------------------------------
# Running cases


Runner = Callable[..., subprocess.CompletedProcess]


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True))


def p99(summary: dict, metric: str) -> float | None:
    value = (summary.get(metric) or {}).get("p99")
    return None if value is None else float(value)


def meets_slo(summary: dict, ttft_ms: float, tpot_ms: float) -> bool:
    """AIPerf's inter_token_latency is (latency - TTFT) / (output tokens - 1),
    benchmark_serving's and MLPerf's TPOT."""
    ttft, tpot = p99(summary, "time_to_first_token"), p99(summary, "inter_token_latency")
    errors = (summary.get("error_request_count") or {}).get("avg") or 0
    return (
        ttft is not None
        and tpot is not None
        and not errors
        and (ttft <= ttft_ms and tpot <= tpot_ms)
    )


def next_probe(outcomes: dict[int, bool], ceiling: int, bisect_steps: int = 3) -> int | None:
    """The next concurrency to try: doubling from 1 until a failure or the
    ceiling, then up to `bisect_steps` bisections between the last pass and
    the first failure. None when done."""
    doubling = [1]
    while doubling[-1] < ceiling:
        doubling.append(min(doubling[-1] * 2, ceiling))
    best = max((c for c, ok in outcomes.items() if ok), default=0)
    above = [c for c, ok in outcomes.items() if not ok and c > best]
    if not above:
        untried = [c for c in doubling if c > best and c not in outcomes]
        return untried[0] if untried else None
    worst = min(above)
    bisections = len([c for c in outcomes if c not in doubling])
    if best == 0 or worst - best <= 1 or bisections >= bisect_steps:
        return None
    return (best + worst) // 2


class Benchmark:
    def __init__(self, env: dict[str, str], runner: Runner = subprocess.run):
        self.env, self.runner = env, runner
        self.base_url = env["BASE_URL"].rstrip("/")
        self.result_dir = Path(env["RESULT_DIR"])
        self.metadata = parse_pairs(env.get("METADATA", ""), "=")
        self.aiperf = shlex.split(env.get("AIPERF", "aiperf"))
        self.windows: list[tuple[Path, float, float]] = []

    def run_case(self, case: Case, concurrency: int, folder: Path, extra: dict) -> dict | None:
        """One AIPerf run; its summary, or None when it failed."""
        folder.mkdir(parents=True, exist_ok=True)
        print(f"== {case.isl}/{case.osl} at concurrency {concurrency}", flush=True)
        args = aiperf_args(self.aiperf, self.env, case.isl, case.osl, concurrency, folder)
        started = time.time()
        with KvCachePoller(f"{self.base_url}/metrics") as kv:
            done = self.runner(args, check=False)
        ended = time.time()
        record = {
            "metadata": self.metadata,
            "case": {"isl": case.isl, "osl": case.osl, "concurrency": concurrency, **extra},
            "window": {"start": started, "end": ended},
            "kv_cache": kv.record(),
            "aiperf_exit_code": done.returncode,
        }
        write_json(folder / "case.json", record)
        self.windows.append((folder / "case.json", started, ended))
        summary_file = folder / "profile_export_aiperf.json"
        if done.returncode or not summary_file.exists():
            return None
        return json.loads(summary_file.read_text())

    def slo_search(self, case: Case) -> bool:
        ttft, tpot = (
            float(self.env.get("SLO_TTFT_MS", "2000")),
            float(self.env.get("SLO_TPOT_MS", "80")),
        )
        ceiling = int(self.env.get("SLO_MAX_CONCURRENCY", "512"))
        slo = {"ttft_p99_ms": ttft, "tpot_p99_ms": tpot}
        outcomes: dict[int, bool] = {}
        while (concurrency := next_probe(outcomes, ceiling)) is not None:
            folder = self.result_dir / case.name / f"c{concurrency}"
            summary = self.run_case(case, concurrency, folder, {"mode": "slo-probe", "slo": slo})
            outcomes[concurrency] = summary is not None and meets_slo(summary, ttft, tpot)
            record = json.loads((folder / "case.json").read_text())
            record["case"]["slo_met"] = outcomes[concurrency]
            write_json(folder / "case.json", record)
        best = max((c for c, ok in outcomes.items() if ok), default=None)
        write_json(
            self.result_dir / case.name / "slo.json",
            {
                "slo": slo,
                "probes": {str(c): ok for c, ok in sorted(outcomes.items())},
                "best": best,
            },
        )
        if best is not None:
            path = self.result_dir / case.name / f"c{best}" / "case.json"
            record = json.loads(path.read_text())
            record["case"]["slo_best"] = True
            write_json(path, record)
        print(f"== SLO {case.isl}/{case.osl}: highest concurrency meeting it: {best}", flush=True)
        return best is not None

    def add_gpu_metrics(self) -> None:
        if not self.env.get("PROJECT"):
            return
        # Samples reach the query API a little after they are scraped.
        time.sleep(float(self.env.get("DCGM_DELAY_SECONDS", "150")))
        for path, start, end in self.windows:
            record = json.loads(path.read_text())
            record["gpu"] = dcgm_samples(self.env, start, end)
            write_json(path, record)

    def run(self) -> int:
        wait_until_ready(self.base_url, float(self.env.get("READY_TIMEOUT_SECONDS", "7200")))
        self.result_dir.mkdir(parents=True, exist_ok=True)
        failed = []
        for case in parse_matrix(self.env["MATRIX"]):
            if case.concurrency is None:
                ok = self.slo_search(case)
            else:
                folder = self.result_dir / case.name
                ok = self.run_case(case, case.concurrency, folder, {"mode": "fixed"}) is not None
            if not ok:
                failed.append(case.name)
        self.add_gpu_metrics()
        if failed:
            print(f"failed cases: {', '.join(failed)}", file=sys.stderr)
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(Benchmark(dict(os.environ)).run())
