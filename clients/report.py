"""Report of the benchmark Job's results, with a throughput-vs-latency plot.

    python -m clients.report gs://BUCKET/benchmarks/RUN_ID --plot results.png
    python -m clients.report ./results/            (or one case's folder or file)

Reads what the benchmark Job (docker/benchmark/run_benchmarks.py) writes for
every case: NVIDIA AIPerf's `profile_export_aiperf.json` and, beside it, the
Job's `case.json` (the stack's metadata, the case, the GPUs' DCGM samples and
the server's KV-cache samples). Found recursively in a folder or under a
gs:// prefix; AIPerf's per-phase copies (`phases/`) are skipped. It prints,
per setup (model, precision, parallelism, profile, run):
- throughput: output tokens/s, per GPU and per user;
- latency: mean and p99 of TTFT, TPOT, ITL and end-to-end latency;
- GPUs, as the seed recipe's report had them: memory used (GB per GPU, mean
  and peak), memory utilization and GPU utilization (%), from GKE's managed
  DCGM metrics, and the server's KV-cache use where trtllm-serve reports it;
- the SLO search: each concurrency tried against p99 TTFT and TPOT, and the
  highest that met them;
- comparisons with published figures, only like with like (same GPU,
  precision, ISL/OSL and concurrency), then the published reference figures
  for the same GPU (NVIDIA's engine-level figures are offline upper bounds;
  MLPerf Inference v5.1's use the DeepSeek-R1 dataset, not a fixed shape).
With --plot it draws output tokens/s per GPU against tokens/s per user; a
published point beyond the measured ones is marked at the edge, not allowed
to stretch the axes. A result that cannot be read is named on stderr and
skipped; the exit code is 1 only when none could be read.

AIPerf keys read (profile_export_aiperf.json, schema 1.4, aiperf 0.13):
request_count, error_request_count, output_token_throughput,
total_token_throughput, output_token_throughput_per_user, and avg / p50 /
p99 of time_to_first_token, inter_token_latency (AIPerf's per-request
(latency - TTFT) / (output tokens - 1): benchmark_serving's and MLPerf's
TPOT), inter_chunk_latency (between streamed chunks: benchmark_serving's ITL)
and request_latency; input_config when there is no case.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

try:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
except ModuleNotFoundError as missing:  # `pulumi up` installs the program's requirements only
    sys.exit(
        f"error: the report needs {missing.name}, which is not installed: run `make clients` "
        "(or .venv/bin/python -m pip install -r requirements-clients.txt)"
    )

RESULT_FILE = "profile_export_aiperf.json"
CASE_FILE = "case.json"
REQUIRED = ("output_token_throughput", "request_count", "time_to_first_token")
SETUP_KEYS = ("model", "precision", "tp", "pp", "ep", "profile", "gpu", "gpus", "run_id")
DEFAULT_GPUS = 8  # one a4-highgpu-8g node
MIB = 2**20


class SourceError(Exception):
    """The source as a whole cannot be read (missing folder, bucket, credentials)."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------
# Published figures


@dataclass(frozen=True)
class Published:
    who: str
    gpu: str  # GKE accelerator type, as the `gpu` metadata key
    gpus: int
    precision: str | None  # None: the source does not state it
    isl: int | None  # None: a dataset of mixed lengths, not one shape
    osl: int | None
    concurrency: int | None  # the concurrency the figure was measured at, when given
    regime: str
    per_user: float | None  # output tokens/s per user
    total: float | None  # output tokens/s of the whole system
    kind: str
    source: str

    @property
    def per_gpu(self) -> float | None:
        return None if self.total is None else self.total / self.gpus

    @property
    def shape(self) -> str:
        return "dataset" if self.isl is None else f"{self.isl}/{self.osl}"

    def figures(self) -> str:
        parts = []
        if self.per_user is not None:
            parts.append(f"{self.per_user:,.0f} tok/s/user")
        if self.total is not None:
            parts.append(f"{self.total:,.0f} tok/s ({self.per_gpu:,.0f}/GPU)")
        return ", ".join(parts)

    @property
    def users(self) -> str:
        if not self.concurrency:
            return self.regime
        return f"{self.concurrency} user{'s' if self.concurrency > 1 else ''}"

    def setup(self) -> str:
        precision = self.precision or "precision not stated"
        return f"{self.gpus}x {self.gpu}, {precision}, {self.shape}, {self.users}"


B200, H200 = "nvidia-b200", "nvidia-h200-141gb"
OFFLINE_BOUND = "offline upper bound"
MLPERF = "mlcommons/inference_results_v5.1, closed division"
# Published DeepSeek-R1 figures. NVIDIA's (shared/reference/trtllm-deepseek.md,
# "Published numbers") are engine-level offline runs. MLPerf Inference v5.1
# (closed, 8x B200, TensorRT-LLM): mlperf_log_summary.txt of Google's
# closed/Google/results/B200-SXM-180GBx8_TRT/deepseek-r1/{Server,Offline}/
# performance/run_1 and NVIDIA's closed/NVIDIA/results/B200-SXM-180GBx8_TRT/
# summary.html; their server scenario holds p99 TTFT <= 2 s and TPOT <= 80 ms
# on the MLPerf DeepSeek-R1 dataset (about 3,500 output tokens a sample); the
# summaries do not state the weights' precision. The seed recipe's figures
# are its README's example output (a TensorRT-LLM 0.17 engine flow that never
# served DeepSeek-R1), shown for its table's row only.
PUBLISHED = tuple(
    Published(*row)
    for row in (
        # who, GPU, GPUs, precision, ISL, OSL, concurrency, regime, tok/s/user, tok/s, kind, source
        ("NVIDIA", B200, 8, "nvfp4", 1024, 2048, 1, "min latency", 368.0, None, OFFLINE_BOUND,
         "NVIDIA tech blog, TP8/EP2 MTP3"),
        ("NVIDIA", B200, 8, "nvfp4", 1024, 2048, 7168, "max throughput", None, 43146.0,
         OFFLINE_BOUND, "NVIDIA DeepSeek-R1 best-perf doc, DP8/EP8"),
        ("NVIDIA", B200, 4, "nvfp4", 1024, 1024, None, "max throughput", None, 4 * 6430.0,
         OFFLINE_BOUND, "TRT-LLM perf overview, DEP4"),
        ("NVIDIA", H200, 8, "fp8", 1024, 2048, 1, "min latency", 158.0, None, OFFLINE_BOUND,
         "NVIDIA DeepSeek-R1 best-perf doc, TP8/EP4 MTP3"),
        ("NVIDIA", H200, 8, "fp8", 1024, 2048, 1024, "max throughput", None, 11489.0,
         OFFLINE_BOUND, "NVIDIA DeepSeek-R1 best-perf doc, DP8/EP8"),
        ("NVIDIA", H200, 8, "fp8", 1024, 1024, None, "max throughput", None, 8 * 1620.0,
         OFFLINE_BOUND, "TRT-LLM perf overview, DEP8"),
        ("Google, MLPerf v5.1", B200, 8, None, None, None, None, "server (p99 SLO)", None,
         14630.74, "MLPerf server: online, p99 TTFT <= 2 s, TPOT <= 80 ms",
         f"{MLPERF}, Google B200-SXM-180GBx8_TRT"),
        ("Google, MLPerf v5.1", B200, 8, None, None, None, None, "offline", None, 31920.3,
         "MLPerf offline: all requests at once, no latency limit",
         f"{MLPERF}, Google B200-SXM-180GBx8_TRT"),
        ("NVIDIA, MLPerf v5.1", B200, 8, None, None, None, None, "server (p99 SLO)", None,
         18592.20, "MLPerf server: online, p99 TTFT <= 2 s, TPOT <= 80 ms",
         f"{MLPERF}, NVIDIA B200-SXM-180GBx8_TRT"),
        ("NVIDIA, MLPerf v5.1", B200, 8, None, None, None, None, "offline", None, 33379.0,
         "MLPerf offline: all requests at once, no latency limit",
         f"{MLPERF}, NVIDIA B200-SXM-180GBx8_TRT"),
        ("seed recipe", B200, 8, "fp8", 512, 128, 8, "batch 8", None, 172.4,
         "illustrative: example output (TTFT 752 ms, 62.3 GB, 93.4% GPU memory)",
         "the seed's README (TensorRT-LLM 0.17 engine benchmark)"),
    )
)  # fmt: skip


# --------------------------------------------------------------------------
# Results


def _stats(values: Iterable[float]) -> tuple[float, float] | None:
    values = list(values)
    return (fmean(values), max(values)) if values else None


@dataclass(frozen=True)
class Result:
    name: str
    summary: dict[str, Any]
    case: dict[str, Any] = field(default_factory=dict)

    # --- what ran --------------------------------------------------------
    def meta(self, key: str) -> str | None:
        value = (self.case.get("metadata") or {}).get(key)
        return None if value in (None, "") else str(value)

    def _case(self, key: str) -> Any:
        return (self.case.get("case") or {}).get(key)

    def _config(self) -> dict[str, Any]:
        return self.summary.get("input_config") or {}

    def _requested(self, length: str) -> int | None:
        datasets = self._config().get("datasets") or [{}]
        value = _number(((datasets[0].get("prompts") or {}).get(length) or {}).get("mean"))
        return None if value is None else int(value)

    @property
    def isl(self) -> int | None:
        return self._case("isl") or self._requested("isl")

    @property
    def osl(self) -> int | None:
        return self._case("osl") or self._requested("osl")

    @property
    def concurrency(self) -> int | None:
        if self._case("concurrency"):
            return int(self._case("concurrency"))
        for phase in self._config().get("phases") or []:
            if phase.get("kind") == "profiling" and phase.get("concurrency"):
                return int(phase["concurrency"])
        return None

    @property
    def slo_probe(self) -> bool:
        return self._case("mode") == "slo-probe"

    @property
    def slo_best(self) -> bool:
        return bool(self._case("slo_best"))

    @property
    def gpus(self) -> int:
        tp, pp = _number(self.meta("tp")), _number(self.meta("pp")) or 1
        gpus = _number(self.meta("gpus"))
        return int(gpus or (tp * pp if tp else DEFAULT_GPUS))

    @property
    def setup(self) -> tuple[str | None, ...]:
        model = self.meta("model")
        if model is None:
            items = (self._config().get("models") or {}).get("items") or [{}]
            model = items[0].get("name")
        return (model, *map(self.meta, SETUP_KEYS[1:]))

    # --- AIPerf's figures ------------------------------------------------
    def stat(self, metric: str, stat: str = "avg") -> float | None:
        return _number((self.summary.get(metric) or {}).get(stat))

    @property
    def completed(self) -> int:
        return int(self.stat("request_count") or 0)

    @property
    def errors(self) -> int:
        return int(self.stat("error_request_count") or 0)

    @property
    def output_tps(self) -> float:
        return float(self.stat("output_token_throughput") or 0.0)

    @property
    def per_gpu(self) -> float:
        return self.output_tps / self.gpus

    @property
    def per_user(self) -> float | None:
        """AIPerf's output_token_throughput_per_user: the mean of each request's
        decode rate, 1000 / TPOT, as NVIDIA's interactivity axis."""
        return self.stat("output_token_throughput_per_user")

    # --- the platform's and the server's samples ---------------------------
    def _gpu_rows(self, key: str) -> list[float]:
        samples = ((self.case.get("gpu") or {}).get("samples") or {}).get(key) or []
        return [float(row[2]) for row in samples if _number(row[2]) is not None]

    @property
    def memory_used_gb(self) -> tuple[float, float] | None:
        """(mean, peak) GPU memory used per GPU, GB, over the case's window."""
        stats = _stats(self._gpu_rows("memory_used_mib"))
        return None if stats is None else (stats[0] * MIB / 1e9, stats[1] * MIB / 1e9)

    @property
    def memory_utilization(self) -> float | None:
        """Mean used / (used + free) framebuffer, %: the seed's "GPU memory utilization"."""
        used, free = self._gpu_rows("memory_used_mib"), self._gpu_rows("memory_free_mib")
        if not used or len(used) != len(free):
            return None
        return fmean(100.0 * u / (u + f) for u, f in zip(used, free, strict=True) if u + f)

    @property
    def gpu_utilization(self) -> float | None:
        stats = _stats(self._gpu_rows("gpu_utilization_pct"))
        return None if stats is None else stats[0]

    @property
    def kv_cache(self) -> tuple[float, float] | None:
        """(mean, peak) KV-cache blocks in use, % of the pool."""
        samples = (self.case.get("kv_cache") or {}).get("samples") or []
        return _stats(100.0 * row[1] / row[2] for row in samples if row[2])

    @property
    def gpu_note(self) -> str | None:
        return (self.case.get("gpu") or {}).get("note")

    # --- comparisons -----------------------------------------------------
    def published(self) -> list[Published]:
        """Published figures measured like this case: same GPU, precision,
        ISL/OSL and concurrency (an SLO case: an SLO figure of the same shape)."""
        return [
            p
            for p in PUBLISHED
            if p.gpu == self.meta("gpu")
            and p.precision is not None
            and p.precision == self.meta("precision")
            and (p.isl, p.osl) == (self.isl, self.osl)
            and (
                p.regime.startswith("server")
                if self.slo_best
                else p.concurrency == self.concurrency
            )
        ]


# --------------------------------------------------------------------------
# Reading


def parse_result(name: str, text: str, case_text: str | None = None) -> Result:
    """A result's content, or ValueError saying what is wrong with it."""
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(summary, dict):
        raise ValueError("not an AIPerf result (expected a JSON object)")
    missing = [key for key in REQUIRED if key not in summary]
    if missing:
        raise ValueError(f"not an AIPerf result (missing {', '.join(missing)})")
    for key in REQUIRED:
        if not isinstance(summary[key], dict) or _number(summary[key].get("avg")) is None:
            raise ValueError(f"{key} has no numeric avg ({summary[key]!r})")
    if not _number(summary["request_count"]["avg"]):
        raise ValueError("no request completed")
    case: dict[str, Any] = {}
    if case_text is not None:
        try:
            case = json.loads(case_text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{CASE_FILE} is not JSON ({err.msg})") from None
    return Result(name, summary, case if isinstance(case, dict) else {})


@dataclass(frozen=True)
class SourceFile:
    name: str
    read: Callable[[], str]
    read_case: Callable[[], str | None]


def _is_result(relative: str) -> bool:
    parts = relative.split("/")
    return parts[-1] == RESULT_FILE and "phases" not in parts[:-1]


def _local_case(path: Path) -> Callable[[], str | None]:
    case = path.parent / CASE_FILE
    return lambda: case.read_text() if case.is_file() else None


def list_local(path: Path) -> list[SourceFile]:
    if path.is_file():
        return [SourceFile(path.parent.name or path.name, path.read_text, _local_case(path))]
    if not path.is_dir():
        raise SourceError(f"{path} is neither a folder nor a file")
    found = []
    for p in sorted(path.rglob(RESULT_FILE)):
        relative = p.relative_to(path).as_posix()
        if _is_result(relative):
            found.append(SourceFile(str(p.parent.relative_to(path)), p.read_text, _local_case(p)))
    return found


def list_gcs(url: str, client: Any = None) -> list[SourceFile]:
    """Every result under gs://BUCKET/PREFIX, through the Cloud Storage client."""
    bucket, _, prefix = url.removeprefix("gs://").partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    try:
        if client is None:
            client = _storage_client()
        blobs = sorted(client.list_blobs(bucket, prefix=prefix or None), key=lambda b: b.name)
    except SourceError:
        raise
    except Exception as err:  # credentials, permissions, missing bucket: one clear line
        raise SourceError(
            f"cannot list {url}: {type(err).__name__}: {err}{_gcs_hint(err, bucket)}"
        ) from err
    by_name = {blob.name: blob for blob in blobs}
    found = []
    for blob in blobs:
        relative = blob.name.removeprefix(prefix)
        if not _is_result(relative):
            continue
        case = by_name.get(blob.name.removesuffix(RESULT_FILE) + CASE_FILE)
        found.append(
            SourceFile(
                relative.removesuffix(f"/{RESULT_FILE}").removesuffix(RESULT_FILE) or ".",
                blob.download_as_text,
                case.download_as_text if case is not None else (lambda: None),
            )
        )
    return found


def _storage_client() -> Any:
    """A Cloud Storage client with the user's Application Default Credentials."""
    with warnings.catch_warnings():
        # google.api_core warns at import about Python versions it will drop
        # support for in the future; nothing for a report reader to act on.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            from google.cloud import storage  # only needed for gs:// sources
        except ModuleNotFoundError as missing:
            raise SourceError(
                f"reading gs:// needs {missing.name}: run `make clients`, or copy the files "
                "first: gcloud storage cp -r gs://BUCKET/PREFIX ./results"
            ) from None
        return storage.Client()


ADC_LOGIN = "gcloud auth application-default login"


def _gcs_hint(err: Exception, bucket: str) -> str:
    """What to do about a Cloud Storage failure, by the google-auth / api-core error class."""
    kind = type(err).__name__
    if kind == "DefaultCredentialsError":
        return f"; the report reads the bucket as you: run `{ADC_LOGIN}` and try again"
    if kind == "RefreshError":
        return f"; your Application Default Credentials were refused or expired: run `{ADC_LOGIN}`"
    if kind == "Forbidden" or getattr(err, "code", None) == 403:
        return (
            f"; your account needs roles/storage.objectViewer on gs://{bucket} (or log in as "
            f"one that has it: `{ADC_LOGIN}`)"
        )
    if kind == "NotFound" or getattr(err, "code", None) == 404:
        return f"; no bucket {bucket}: check the stack output benchmarkResults"
    return ""


def load(source: str, gcs_client: Any = None) -> tuple[list[Result], list[str]]:
    """(results, problems): every readable result and one line per bad one."""
    gcs = source.startswith("gs://")
    files = list_gcs(source, gcs_client) if gcs else list_local(Path(source))
    results, problems = [], []
    for file in files:
        try:
            text, case_text = file.read(), file.read_case()
        except Exception as err:  # a file that cannot be read is reported, not fatal
            problems.append(f"{file.name}: cannot read it ({type(err).__name__}: {err})")
            continue
        try:
            results.append(parse_result(file.name, text, case_text))
        except ValueError as err:
            problems.append(f"{file.name}: {err}")
    results.sort(key=lambda r: (r.isl or 0, r.osl or 0, r.slo_probe, r.concurrency or 0))
    return results, problems


def by_setup(results: list[Result]) -> dict[tuple[str | None, ...], list[Result]]:
    groups: dict[tuple[str | None, ...], list[Result]] = {}
    for result in results:
        groups.setdefault(result.setup, []).append(result)
    return groups


def shown(results: list[Result]) -> list[Result]:
    """The cases of the main tables: fixed cases and each SLO search's answer."""
    return [r for r in results if not r.slo_probe or r.slo_best]


# --------------------------------------------------------------------------
# Printing (every table fits an 80-column terminal)


def title(result: Result) -> str:
    model, precision, tp, pp, ep, profile, gpu, _, run_id = result.setup
    parallel = " ".join(f"{k}{v}" for k, v in (("TP", tp), ("PP", pp), ("EP", ep)) if v)
    parts = [
        model or "unknown model",
        precision,
        parallel or None,
        f"profile {profile}" if profile else None,
        f"{result.gpus}x {gpu or 'GPU'}",
        f"run {run_id}" if run_id else None,
    ]
    return " | ".join(p for p in parts if p)


def _n(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def _pair(values: tuple[float | None, float | None] | None, digits: int = 1) -> str:
    return "-" if values is None else f"{_n(values[0], digits)} / {_n(values[1], digits)}"


def _shape(r: Result) -> str:
    return f"{r.isl or '?'}/{r.osl or '?'}"


def _users(r: Result) -> str:
    return f"{r.concurrency or '-'}{'*' if r.slo_best else ''}"


def _table(title_text: str, caption: str | None = None) -> Table:
    table = Table(title=title_text, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("ISL/OSL", justify="right", no_wrap=True)
    table.add_column("users", justify="right", no_wrap=True)
    return table


SLO_MARK = "* the highest concurrency that met the SLO (see the SLO table)"


def throughput_table(results: list[Result]) -> Table:
    table = _table(
        "Throughput, output tokens/s",
        "done: completed / sent requests | per user: the mean decode rate of a "
        f"request (1000 / TPOT) | {SLO_MARK}",
    )
    for column in ("done", "total", "per GPU", "per user"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in results:
        done = f"{r.completed}/{r.completed + r.errors}"
        table.add_row(
            _shape(r),
            _users(r),
            f"[red]{done}[/red]" if r.errors else done,
            _n(r.output_tps),
            _n(r.per_gpu),
            _n(r.per_user),
        )
    return table


LATENCY = (
    ("TTFT", "time_to_first_token"),
    ("TPOT", "inter_token_latency"),
    ("ITL", "inter_chunk_latency"),
    ("E2E", "request_latency"),
)


def latency_table(results: list[Result]) -> Table:
    table = _table(
        "Latency, ms: mean / p99",
        "TTFT first token | TPOT per output token after the first | ITL between "
        "streamed chunks | E2E whole request",
    )
    for name, _ in LATENCY:
        table.add_column(name, justify="right", no_wrap=True)
    for r in results:
        table.add_row(
            _shape(r),
            _users(r),
            *(
                _pair((r.stat(m), r.stat(m, "p99"))) if r.stat(m) is not None else "-"
                for _, m in LATENCY
            ),
        )
    return table


def gpu_table(results: list[Result]) -> Table:
    table = _table(
        "GPUs (DCGM, per GPU) and KV cache",
        "memory used: DCGM_FI_DEV_FB_USED | memory %: used / (used + free) | GPU %: "
        "DCGM_FI_DEV_GPU_UTIL | KV cache: blocks in use, trtllm-serve /metrics",
    )
    for column in ("memory GB\nmean / peak", "memory\n%", "GPU\n%", "KV cache %\nmean / peak"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in results:
        table.add_row(
            _shape(r),
            _users(r),
            _pair(r.memory_used_gb),
            _n(r.memory_utilization),
            _n(r.gpu_utilization),
            _pair(r.kv_cache),
        )
    return table


def slo_tables(results: list[Result]) -> list[tuple[Table, str]]:
    """One table per SLO search (shape), with its conclusion."""
    out = []
    probes = [r for r in results if r.slo_probe]
    for shape in sorted({(r.isl or 0, r.osl or 0) for r in probes}):
        group = sorted(
            (r for r in probes if (r.isl or 0, r.osl or 0) == shape),
            key=lambda r: r.concurrency or 0,
        )
        slo = group[0]._case("slo") or {}
        ttft, tpot = slo.get("ttft_p99_ms"), slo.get("tpot_p99_ms")
        table = _table(f"SLO search {shape[0]}/{shape[1]}: p99 TTFT <= {_n(ttft)} ms, "
                       f"p99 TPOT <= {_n(tpot)} ms")  # fmt: skip
        for column in ("TTFT\np99 ms", "TPOT\np99 ms", "met", "tokens/s", "per GPU"):
            table.add_column(column, justify="right", no_wrap=True)
        for r in group:
            table.add_row(
                _shape(r),
                _users(r),
                _n(r.stat("time_to_first_token", "p99")),
                _n(r.stat("inter_token_latency", "p99")),
                "yes" if r._case("slo_met") else "[red]no[/red]",
                _n(r.output_tps),
                _n(r.per_gpu),
            )
        best = [r for r in group if r.slo_best]
        if best:
            b = best[0]
            verdict = (
                f"highest concurrency meeting the SLO: {b.concurrency} "
                f"{'user' if b.concurrency == 1 else 'users'}, "
                f"{_n(b.output_tps)} output tokens/s ({_n(b.per_gpu)} per GPU)"
            )
        else:
            verdict = "no concurrency tried met the SLO"
        out.append((table, verdict))
    return out


def comparison_table(results: list[Result]) -> Table | None:
    rows = [(r, p) for r in results for p in r.published()]
    if not rows:
        return None
    table = _table("Compared with published figures (same GPU, precision, shape, users)")
    table.add_column("measured", justify="right")
    table.add_column("published", justify="right")
    table.add_column("source and kind")
    for r, p in rows:
        if p.per_user is not None and r.per_user is not None:
            measured, published = f"{_n(r.per_user)}/user", f"{_n(p.per_user)}/user"
        else:
            measured, published = f"{_n(r.output_tps)} tok/s", f"{_n(p.total)} tok/s"
        table.add_row(_shape(r), _users(r), measured, published, f"{p.source}; {p.kind}")
    return table


def reference_table(gpus: set[str]) -> Table | None:
    rows = [p for p in PUBLISHED if p.gpu in gpus]
    if not rows:
        return None
    table = Table(
        title="Published reference figures for this GPU (not measured here; context only)",
        title_justify="left",
        caption="Beside a case only when GPU, precision, shape and users match. NVIDIA's "
        "figures are engine-level trtllm-bench runs without HTTP serving: offline upper "
        "bounds for an online benchmark. MLPerf's use its DeepSeek-R1 dataset (mixed "
        "lengths), not a fixed ISL/OSL.",
        caption_justify="left",
    )
    table.add_column("who")
    table.add_column("setup")
    table.add_column("result", justify="right")
    table.add_column("kind")
    for p in rows:
        table.add_row(escape(p.who), escape(p.setup()), escape(p.figures()), escape(p.kind))
    return table


def print_setup(console: Console, results: list[Result]) -> None:
    """One setup's report: what ran, then its tables."""
    console.rule()
    console.print(f"[bold]{escape(title(results[0]))}[/bold]")  # wraps, never cut
    main = shown(results)
    if main:
        console.print(throughput_table(main))
        console.print(latency_table(main))
        console.print(gpu_table(main))
        notes = sorted({n for n in (r.gpu_note for r in main) if n})
        for note in notes:
            console.print(f"GPU metrics: {escape(note)}")
    for table, verdict in slo_tables(results):
        console.print(table)
        console.print(verdict)
    comparison = comparison_table(main)
    if comparison is not None:
        console.print(comparison)
    else:
        console.print("No published figure matches these cases' GPU, precision, shape and users.")


# --------------------------------------------------------------------------
# Plotting


def plot(results: list[Result], path: Path) -> None:
    """Output tokens/s per GPU against tokens/s per user, one point per case.
    The axes fit the measured points; a published point beyond them is drawn
    at the edge with an arrow and its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 6.5))
    main = [r for r in shown(results) if r.per_user is not None]
    groups = by_setup(main)
    for setup, members in groups.items():
        _plot_measured(axes, setup if len(groups) > 1 else None, members)
    xmax = max((r.per_user or 0 for r in main), default=1.0) * 1.25 or 1.0
    ymax = max((r.per_gpu for r in main), default=1.0) * 1.25 or 1.0
    axes.set_xlim(0, xmax)
    axes.set_ylim(0, ymax)
    _plot_published(axes, main, xmax, ymax)
    axes.set_xlabel("output tokens/s per user (interactivity, 1000 / TPOT)")
    axes.set_ylabel("output tokens/s per GPU (throughput)")
    axes.set_title("DeepSeek-R1 on TensorRT-LLM: throughput vs interactivity (AIPerf)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_measured(axes: Any, setup: tuple[str | None, ...] | None, results: list[Result]) -> None:
    prefix = " ".join(s for s in (setup[0], setup[1], setup[5]) if s) if setup else "measured"
    for shape in sorted({(r.isl or 0, r.osl or 0) for r in results}):
        group = sorted(
            (r for r in results if (r.isl or 0, r.osl or 0) == shape),
            key=lambda r: r.concurrency or 0,
        )
        fixed = [r for r in group if not r.slo_best]
        name = f"{prefix} {shape[0]}/{shape[1]}"
        if fixed:
            line = axes.plot(
                [r.per_user for r in fixed], [r.per_gpu for r in fixed], marker="o", label=name
            )[0]
        for r in group:
            if r.slo_best:
                axes.scatter([r.per_user], [r.per_gpu], marker="D", s=70, zorder=3,
                             color=line.get_color() if fixed else None,
                             label=f"{name}: highest concurrency meeting the SLO")  # fmt: skip
            label = f"c={r.concurrency}" + (" (SLO)" if r.slo_best else "")
            axes.annotate(label, (r.per_user, r.per_gpu), textcoords="offset points",
                          xytext=(5, 5))  # fmt: skip


def _plot_published(axes: Any, results: list[Result], xmax: float, ymax: float) -> None:
    """Like-with-like published figures: a star where the source gives both
    axes, a dashed line where it gives one; clamped to the edge when beyond."""
    matched: list[Published] = []
    for r in results:
        matched += [p for p in r.published() if p not in matched]
    for index, p in enumerate(matched):
        color = f"C{(len(axes.get_lines()) + index) % 10}"
        label = f"published {p.shape}, {p.users}: {p.figures()} ({p.who}, {p.kind.split(':')[0]})"
        x, y = p.per_user, p.per_gpu
        off = (x is not None and x > xmax) or (y is not None and y > ymax)
        if off:
            label += ", off scale"
        if x is not None and y is not None:
            axes.scatter([min(x, xmax)], [min(y, ymax)], marker="*", s=180, color=color,
                         label=label, clip_on=False, zorder=3)  # fmt: skip
        elif y is not None:
            axes.axhline(min(y, ymax), linestyle="--", linewidth=1, color=color, label=label)
        elif x is not None:
            axes.axvline(min(x, xmax), linestyle="--", linewidth=1, color=color, label=label)
        if off:
            _mark_off_scale(axes, x, y, xmax, ymax, color)


def _mark_off_scale(
    axes: Any, x: float | None, y: float | None, xmax: float, ymax: float, color: str
) -> None:
    """An arrow at the edge pointing out, with the real value."""
    if x is not None and x > xmax:
        at = (xmax, min(y, ymax) if y is not None else ymax * 0.5)
        axes.annotate(f"{x:,.0f} tok/s/user →", at, xytext=(-8, 8), textcoords="offset points",
                      ha="right", color=color, fontweight="bold")  # fmt: skip
    if y is not None and y > ymax:
        at = (min(x, xmax) if x is not None else xmax * 0.5, ymax)
        axes.annotate(f"↑ {y:,.0f} tok/s/GPU", at, xytext=(0, -16), textcoords="offset points",
                      ha="center", color=color, fontweight="bold")  # fmt: skip


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.report",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 report printed (unreadable results are named on stderr); "
        "1 no readable result, or the source or plot cannot be used; 2 bad arguments.",
    )
    parser.add_argument(
        "source",
        help="a folder or file, or gs://BUCKET/PREFIX (the stack's benchmarkResults output)",
    )
    parser.add_argument("--plot", type=Path, help="write the throughput-vs-latency plot here (PNG)")
    parser.add_argument(
        "--timeline",
        help="also show the cold-start timeline from gs://BUCKET/timeline/ (clients/timeline.py)",
    )
    args = parser.parse_args(argv)
    console = console or Console()
    if args.timeline:
        from clients import timeline

        timeline.show(args.timeline, console)
    try:
        results, problems = load(args.source)
    except SourceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not results:
        print(f"error: no readable AIPerf result ({RESULT_FILE}) in {args.source}", file=sys.stderr)
        return 1
    for members in by_setup(results).values():
        print_setup(console, members)
    reference = reference_table({r.meta("gpu") or "" for r in results})
    if reference is not None:
        console.print(reference)
    if args.plot:
        try:
            plot(results, args.plot)
        except OSError as err:
            print(f"error: cannot write the plot: {err}", file=sys.stderr)
            return 1
        console.print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
