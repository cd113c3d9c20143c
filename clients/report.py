"""Report of the benchmark Job's results, with a throughput-vs-latency plot.

    python -m clients.report gs://BUCKET/benchmarks/RUN_ID --plot results.png
    python -m clients.report ./results/            (or one result file)

Reads the JSON files that TensorRT-LLM's `benchmark_serving --save-result`
wrote (one per ISL/OSL/concurrency case, in a folder or under a gs:// prefix,
recursively; the `*.pytorch.json` side files are skipped), prints one table per
setup (model, precision, parallelism, profile, run) and, with --plot, draws
output tokens/s per GPU against tokens/s per user. Where NVIDIA published a
figure for the same GPU, precision and ISL/OSL, it is shown beside the
measured one. A file that cannot be read is named on stderr and skipped; the
exit code is 1 only when no file could be read.

Keys read, as benchmark_serving writes them (NVIDIA/TensorRT-LLM,
tensorrt_llm/serve/scripts/benchmark_serving.py): date, model_id, num_prompts,
completed, max_concurrency, total_input_tokens, total_output_tokens,
output_throughput, total_token_throughput, user_throughput, and
mean_/median_/p99_ of ttft_ms, tpot_ms, itl_ms, e2el_ms (p99 needs 99 in
--metric-percentiles, e2el needs it in --percentile-metrics).

Metadata keys read (`--metadata key=value`, stored as strings; all optional):
model, precision, tp, pp, ep, profile, gpu, gpus, run_id, isl, osl,
concurrency (the benchmark Job also writes machine and checkpoint). Without
isl/osl the shape is derived from the token totals (shown with ~); without
concurrency, max_concurrency; without gpus, tp x pp (else 8); without model,
model_id.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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

REQUIRED = ("output_throughput", "total_token_throughput", "mean_ttft_ms", "mean_tpot_ms")
METRICS = ("ttft", "tpot", "itl", "e2el")
SETUP_KEYS = ("model", "precision", "tp", "pp", "ep", "profile", "gpu", "gpus", "run_id")
METADATA_KEYS = (*SETUP_KEYS, "isl", "osl", "concurrency")
DEFAULT_GPUS = 8  # one a4-highgpu-8g node


class SourceError(Exception):
    """The source as a whole cannot be read (missing folder, bucket, credentials)."""


@dataclass(frozen=True)
class Published:
    gpu: str  # GKE accelerator type, as the `gpu` metadata key
    precision: str
    isl: int
    osl: int
    concurrency: int | None  # None: the source's best throughput, any concurrency
    per_user: float | None  # output tokens/s per user
    per_gpu: float | None  # output tokens/s per GPU
    source: str

    def describe(self) -> str:
        figures = []
        if self.per_user is not None:
            figures.append(f"{self.per_user:.0f} tok/s/user")
        if self.per_gpu is not None:
            figures.append(f"{self.per_gpu:.0f} tok/s/GPU")
        return f"{', '.join(figures)} ({self.source})"


# Published DeepSeek-R1 figures (shared/reference/trtllm-deepseek.md, "Published
# numbers"). NVIDIA's are offline engine runs, so an upper bound for an online
# benchmark of the same shape. (The seed's 512/128 figures are illustrative,
# not measured, and are left out.)
B200, H200 = "nvidia-b200", "nvidia-h200-141gb"
PUBLISHED = tuple(
    Published(*row)
    for row in (
        # GPU, precision, ISL, OSL, concurrency, tok/s/user, tok/s/GPU, source
        (B200, "nvfp4", 1024, 2048, 1, 368.0, None, "NVIDIA tech blog, TP8/EP2 MTP3"),
        (B200, "nvfp4", 1024, 2048, 7168, None, 5393.0, "NVIDIA best-perf doc, DP8/EP8"),
        (B200, "nvfp4", 1024, 1024, None, None, 6430.0, "TRT-LLM perf overview, DEP4"),
        (H200, "fp8", 1024, 2048, 1, 158.0, None, "NVIDIA best-perf doc, TP8/EP4 MTP3"),
        (H200, "fp8", 1024, 2048, 1024, None, 11489.0 / 8, "NVIDIA best-perf doc, DP8/EP8"),
        (H200, "fp8", 1024, 1024, None, None, 1620.0, "TRT-LLM perf overview, DEP8"),
    )
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Result:
    name: str
    data: dict[str, Any]

    def meta(self, key: str) -> str | None:
        value = self.data.get(key)
        return None if value in (None, "") else str(value)

    def _meta_int(self, key: str) -> int | None:
        value = _number(self.data.get(key))
        return None if value is None else int(value)

    def _per_request(self, total_key: str) -> int | None:
        total, completed = _number(self.data.get(total_key)), _number(self.data.get("completed"))
        return round(total / completed) if total is not None and completed else None

    @property
    def shape_from_metadata(self) -> bool:
        return self._meta_int("isl") is not None and self._meta_int("osl") is not None

    @property
    def isl(self) -> int | None:
        return self._meta_int("isl") or self._per_request("total_input_tokens")

    @property
    def osl(self) -> int | None:
        return self._meta_int("osl") or self._per_request("total_output_tokens")

    @property
    def concurrency(self) -> int | None:
        return self._meta_int("concurrency") or self._meta_int("max_concurrency")

    @property
    def gpus(self) -> int:
        tp, pp = self._meta_int("tp"), self._meta_int("pp") or 1
        return self._meta_int("gpus") or (tp * pp if tp else DEFAULT_GPUS)

    @property
    def failed(self) -> int | None:
        prompts, completed = self._meta_int("num_prompts"), self._meta_int("completed")
        return None if prompts is None or completed is None else prompts - completed

    @property
    def per_gpu(self) -> float:
        return float(self.data["output_throughput"]) / self.gpus

    @property
    def per_user(self) -> float | None:
        """benchmark_serving's user_throughput (mean of output tokens / request
        latency, TTFT included); 1000 / mean TPOT in files without it."""
        value = _number(self.data.get("user_throughput"))
        if value:
            return value
        tpot = _number(self.data.get("mean_tpot_ms"))
        return 1000.0 / tpot if tpot else None

    @property
    def setup(self) -> tuple[str | None, ...]:
        return (self.meta("model") or self.meta("model_id"), *map(self.meta, SETUP_KEYS[1:]))

    def published(self) -> list[Published]:
        return [
            p
            for p in PUBLISHED
            if p.gpu == self.meta("gpu")
            and p.precision == self.meta("precision")
            and (p.isl, p.osl) == (self.isl, self.osl)
            and p.concurrency in (None, self.concurrency)
        ]


# --------------------------------------------------------------------------
# Reading


def parse_result(name: str, text: str) -> Result:
    """A result file's content, or ValueError saying what is wrong with it."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError("not a benchmark_serving result (expected a JSON object)")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ValueError(f"not a benchmark_serving result (missing {', '.join(missing)})")
    for key in REQUIRED:
        if _number(data[key]) is None:
            raise ValueError(f"{key} is {data[key]!r}, not a number")
    if _number(data.get("completed")) == 0:
        raise ValueError(f"no request completed (all {data.get('num_prompts', '?')} failed)")
    return Result(name, data)


@dataclass(frozen=True)
class SourceFile:
    name: str
    read: Callable[[], str]


def _is_result_name(name: str) -> bool:
    return name.endswith(".json") and not name.endswith(".pytorch.json")


def list_local(path: Path) -> list[SourceFile]:
    if path.is_file():
        return [SourceFile(path.name, path.read_text)]
    if not path.is_dir():
        raise SourceError(f"{path} is neither a folder nor a file")
    return [
        SourceFile(str(p.relative_to(path)), p.read_text)
        for p in sorted(path.rglob("*.json"))
        if _is_result_name(p.name)
    ]


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
    return [
        SourceFile(blob.name.removeprefix(prefix), blob.download_as_text)
        for blob in blobs
        if _is_result_name(blob.name)
    ]


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
    """(results, problems): every readable result and one line per bad file."""
    gcs = source.startswith("gs://")
    files = list_gcs(source, gcs_client) if gcs else list_local(Path(source))
    results, problems = [], []
    for file in files:
        try:
            text = file.read()
        except Exception as err:  # a file that cannot be read is reported, not fatal
            problems.append(f"{file.name}: cannot read it ({type(err).__name__}: {err})")
            continue
        try:
            results.append(parse_result(file.name, text))
        except ValueError as err:
            problems.append(f"{file.name}: {err}")
    results.sort(key=lambda r: (r.isl or 0, r.osl or 0, r.concurrency or 0))
    return results, problems


def by_setup(results: list[Result]) -> dict[tuple[str | None, ...], list[Result]]:
    groups: dict[tuple[str | None, ...], list[Result]] = {}
    for result in results:
        groups.setdefault(result.setup, []).append(result)
    return groups


# --------------------------------------------------------------------------
# Printing


def title(result: Result) -> str:
    model, precision, tp, pp, ep, profile, gpu, _, run_id = result.setup
    parallel = " ".join(f"{k}{v}" for k, v in (("TP", tp), ("PP", pp), ("EP", ep)) if v)
    parts = [
        model or "unknown model",
        f"precision {precision}" if precision else None,
        parallel or None,
        f"profile {profile}" if profile else None,
        f"{result.gpus}x {gpu or 'GPU'}",
        f"run {run_id}" if run_id else None,
        result.meta("date"),
    ]
    return " | ".join(p for p in parts if p)


def _ms(result: Result, metric: str) -> str:
    values = [_number(result.data.get(f"{stat}_{metric}_ms")) for stat in ("mean", "median", "p99")]
    return " / ".join("-" if v is None else f"{v:.1f}" for v in values)


def _shape(result: Result) -> str:
    mark = "" if result.shape_from_metadata else "~"
    return f"{mark}{result.isl or '?'}/{mark}{result.osl or '?'}"


def _done(result: Result) -> str:
    completed = result.data.get("completed", "?")
    prompts = result.data.get("num_prompts")
    return f"{completed}/{prompts}" if prompts is not None else str(completed)


def _case_columns(table: Table) -> None:
    table.add_column("ISL/OSL", justify="right")
    table.add_column("users", justify="right")


def _case(result: Result) -> tuple[str, str]:
    return _shape(result), str(result.concurrency or "-")


def throughput_table(results: list[Result]) -> Table:
    table = Table(
        title="Throughput",
        title_justify="left",
        caption="done: completed / prompts | tok/s/user: output tokens over request latency, "
        "TTFT included (benchmark_serving's user_throughput)",
        caption_justify="left",
    )
    _case_columns(table)
    for column in ("done", "output tok/s", "total tok/s", "output tok/s/GPU", "tok/s/user"):
        table.add_column(column, justify="right")
    table.add_column("published for this GPU, precision and shape")
    for r in results:
        per_user = r.per_user
        table.add_row(
            *_case(r),
            f"[red]{_done(r)}[/red]" if r.failed else _done(r),
            f"{float(r.data['output_throughput']):.1f}",
            f"{float(r.data['total_token_throughput']):.1f}",
            f"{r.per_gpu:.1f}",
            "-" if per_user is None else f"{per_user:.1f}",
            escape("; ".join(p.describe() for p in r.published()) or "-"),
        )
    return table


def latency_table(results: list[Result]) -> Table:
    table = Table(
        title="Latency, ms: mean / median / p99",
        title_justify="left",
        caption="TTFT time to first token | TPOT time per output token after the first | "
        "ITL inter-token latency | E2E request latency",
        caption_justify="left",
    )
    _case_columns(table)
    for metric in METRICS:
        table.add_column("E2E" if metric == "e2el" else metric.upper(), justify="right")
    for r in results:
        table.add_row(*_case(r), *(_ms(r, m) for m in METRICS))
    return table


def print_setup(console: Console, results: list[Result]) -> None:
    """One setup's report: what ran, then throughput and latency per case."""
    console.rule(escape(title(results[0])))
    console.print(throughput_table(results))
    console.print(latency_table(results))


# --------------------------------------------------------------------------
# Plotting


def plot(results: list[Result], path: Path) -> None:
    """Output tokens/s per GPU against tokens/s per user, one point per case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 6.5))
    groups = by_setup(results)
    for setup, members in groups.items():
        _plot_measured(axes, setup if len(groups) > 1 else None, members)
    _plot_published(axes, results)
    axes.set_xlabel("output tokens/s per user (interactivity)")
    axes.set_ylabel("output tokens/s per GPU (throughput)")
    axes.set_title("DeepSeek-R1 on TensorRT-LLM: throughput vs latency")
    axes.set_xlim(0, axes.get_xlim()[1] * 1.08)  # room for the labels of the rightmost points
    axes.set_ylim(0, axes.get_ylim()[1] * 1.05)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_measured(axes: Any, setup: tuple[str | None, ...] | None, results: list[Result]) -> None:
    measured = [r for r in results if r.per_user is not None]
    prefix = " ".join(s for s in (setup[0], setup[1], setup[5]) if s) if setup else "measured"
    for shape in sorted({(r.isl or 0, r.osl or 0) for r in measured}):
        group = sorted(
            (r for r in measured if (r.isl or 0, r.osl or 0) == shape),
            key=lambda r: r.concurrency or 0,
        )
        xs, ys = [r.per_user for r in group], [r.per_gpu for r in group]
        axes.plot(xs, ys, marker="o", label=f"{prefix} {shape[0]}/{shape[1]}")
        for r, x, y in zip(group, xs, ys, strict=True):
            axes.annotate(
                f"c={r.concurrency or '-'}", (x, y), textcoords="offset points", xytext=(5, 5)
            )


def _plot_published(axes: Any, results: list[Result]) -> None:
    """A point where the source gives both figures, otherwise a dashed line."""
    shown: list[Published] = []
    for r in results:
        shown += [p for p in r.published() if p not in shown]
    first_color = len(axes.get_lines())  # after the measured series' colors
    for index, p in enumerate(shown):
        label, color = (
            f"published {p.isl}/{p.osl}: {p.describe()}",
            f"C{(first_color + index) % 10}",
        )
        if p.per_user is not None and p.per_gpu is not None:
            axes.scatter([p.per_user], [p.per_gpu], marker="*", s=180, label=label, color=color)
        elif p.per_gpu is not None:
            axes.axhline(p.per_gpu, linestyle="--", linewidth=1, label=label, color=color)
        elif p.per_user is not None:
            axes.axvline(p.per_user, linestyle="--", linewidth=1, label=label, color=color)


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.report",
        description=__doc__.split("\n\n")[0],
        epilog="Metadata keys read (benchmark_serving --metadata key=value, all optional): "
        f"{', '.join(METADATA_KEYS)}. "
        "Exit codes: 0 report printed (unreadable files are named on stderr); "
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
        print(f"error: no readable benchmark result in {args.source}", file=sys.stderr)
        return 1
    for members in by_setup(results).values():
        print_setup(console, members)
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
