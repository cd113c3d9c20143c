"""Report of the benchmark Job's results, with a throughput-vs-latency plot.

    python -m clients.report gs://BUCKET/benchmarks/RUN_ID --plot results.png
    python -m clients.report ./results/

Reads the JSON files TensorRT-LLM's `benchmark_serving --save-result` wrote
(one per ISL/OSL/concurrency case; the `*.pytorch.json` side files are
skipped), prints the recipe-style report and, with --plot, draws output
tokens/s per GPU against tokens/s per user across the cases. Where NVIDIA
published a figure for the same GPU, precision and shape, it is shown beside
the measured one.

Keys read, as benchmark_serving writes them (tensorrt_llm/serve/scripts/
benchmark_serving.py): model_id, max_concurrency, completed, duration,
output_throughput, total_token_throughput, user_throughput, and
mean_/median_/p99_ of ttft_ms, tpot_ms, itl_ms, e2el_ms; plus the metadata
the benchmark Job passes with --metadata (workloads/benchmark.py): run_id,
model, checkpoint, precision, profile, tp, pp, ep, gpu, gpus, machine, isl,
osl, concurrency. A file that cannot be read is reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

REQUIRED = ("output_throughput", "total_token_throughput", "mean_ttft_ms", "mean_tpot_ms")
METRICS = ("ttft", "tpot", "itl", "e2el")


@dataclass(frozen=True)
class Published:
    gpu: str
    precision: str
    isl: int
    osl: int
    concurrency: int | None  # None: the source's best throughput, any concurrency
    per_user: float | None  # output tokens/s per user
    per_gpu: float | None  # output tokens/s per GPU
    source: str


# NVIDIA's published DeepSeek-R1 figures (shared/reference/trtllm-deepseek.md,
# "Published numbers"); offline trtllm-bench runs, so an upper bound for an
# online benchmark of the same shape.
PUBLISHED = (
    Published(
        "nvidia-b200", "nvfp4", 1024, 2048, 1, 368.0, None, "NVIDIA tech blog: TP8/EP2, MTP 3"
    ),
    Published(
        "nvidia-b200", "nvfp4", 1024, 2048, 7168, None, 5393.0, "NVIDIA best-perf doc: DP8/EP8"
    ),
    Published(
        "nvidia-b200", "nvfp4", 1024, 1024, None, None, 6430.0, "TRT-LLM perf overview: DEP4"
    ),
    Published(
        "nvidia-h200-141gb",
        "fp8",
        1024,
        2048,
        1,
        158.0,
        None,
        "NVIDIA best-perf doc: TP8/EP4, MTP 3",
    ),
    Published(
        "nvidia-h200-141gb",
        "fp8",
        1024,
        2048,
        1024,
        None,
        11489.0 / 8,
        "NVIDIA best-perf doc: DP8/EP8",
    ),
    Published(
        "nvidia-h200-141gb", "fp8", 1024, 1024, None, None, 1620.0, "TRT-LLM perf overview: DEP8"
    ),
)


@dataclass(frozen=True)
class Result:
    name: str
    data: dict

    def meta(self, key: str, default: str = "?") -> str:
        value = self.data.get(key)
        return default if value is None else str(value)

    def _int(self, key: str, fallback: str | None = None) -> int | None:
        for candidate in (key, fallback):
            if candidate and self.data.get(candidate) not in (None, ""):
                try:
                    return int(float(self.data[candidate]))
                except (TypeError, ValueError):
                    return None
        return None

    @property
    def isl(self) -> int | None:
        return self._int("isl")

    @property
    def osl(self) -> int | None:
        return self._int("osl")

    @property
    def concurrency(self) -> int | None:
        return self._int("concurrency", "max_concurrency")

    @property
    def gpus(self) -> int:
        return self._int("gpus") or 8

    @property
    def per_gpu(self) -> float:
        return float(self.data["output_throughput"]) / self.gpus

    @property
    def per_user(self) -> float | None:
        value = self.data.get("user_throughput")
        if value is not None:
            return float(value)
        tpot = self.data.get("mean_tpot_ms")
        return 1000.0 / float(tpot) if tpot else None

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
        if not isinstance(data[key], (int, float)):
            raise ValueError(f"{key} is {data[key]!r}, not a number")
    return Result(name, data)


def _is_result_name(name: str) -> bool:
    return name.endswith(".json") and not name.endswith(".pytorch.json")


def read_local(folder: Path) -> list[tuple[str, str]]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    return [(p.name, p.read_text()) for p in sorted(folder.iterdir()) if _is_result_name(p.name)]


def read_gcs(url: str, client=None) -> list[tuple[str, str]]:
    """Every result under gs://BUCKET/PREFIX, through the Cloud Storage client."""
    bucket, _, prefix = url.removeprefix("gs://").partition("/")
    if client is None:
        from google.cloud import storage  # only needed for gs:// sources

        client = storage.Client()
    blobs = client.list_blobs(bucket, prefix=prefix.rstrip("/") + "/" if prefix else None)
    return [
        (blob.name.rsplit("/", 1)[-1], blob.download_as_text())
        for blob in sorted(blobs, key=lambda b: b.name)
        if _is_result_name(blob.name)
    ]


def load(source: str, gcs_client=None) -> tuple[list[Result], list[str]]:
    """(results, problems): every readable result and one line per bad file."""
    files = read_gcs(source, gcs_client) if source.startswith("gs://") else read_local(Path(source))
    results, problems = [], []
    for name, text in files:
        try:
            results.append(parse_result(name, text))
        except ValueError as err:
            problems.append(f"{name}: {err}")
    results.sort(key=lambda r: (r.isl or 0, r.osl or 0, r.concurrency or 0))
    return results, problems


# --------------------------------------------------------------------------
# Printing and plotting


def _ms(result: Result, metric: str) -> str:
    values = [result.data.get(f"{stat}_{metric}_ms") for stat in ("mean", "median", "p99")]
    return " / ".join("-" if v is None else f"{float(v):.1f}" for v in values)


def _published_text(result: Result) -> str:
    parts = []
    for p in result.published():
        figure = f"{p.per_user:.0f} tok/s/user" if p.per_user else f"{p.per_gpu:.0f} tok/s/GPU"
        parts.append(f"{figure} ({p.source})")
    return "; ".join(parts) or "-"


def build_table(results: list[Result]) -> Table:
    first = results[0]
    title = (
        f"{first.meta('model', first.meta('model_id'))} | precision {first.meta('precision')} | "
        f"TP{first.meta('tp')} PP{first.meta('pp')} EP{first.meta('ep')} | "
        f"profile {first.meta('profile')} | {first.meta('gpus')}x {first.meta('gpu')} | "
        f"run {first.meta('run_id')}"
    )
    table = Table(title=title, caption="latencies in ms: mean / median / p99")
    for column in (
        "ISL/OSL",
        "users",
        "output tok/s",
        "total tok/s",
        "tok/s/GPU",
        "tok/s/user",
        "TTFT",
        "TPOT",
        "ITL",
        "end-to-end",
        "NVIDIA published",
    ):
        table.add_column(column, justify="right" if column != "NVIDIA published" else "left")
    for r in results:
        per_user = r.per_user
        table.add_row(
            f"{r.isl or '?'}/{r.osl or '?'}",
            str(r.concurrency or "?"),
            f"{float(r.data['output_throughput']):.1f}",
            f"{float(r.data['total_token_throughput']):.1f}",
            f"{r.per_gpu:.1f}",
            "-" if per_user is None else f"{per_user:.1f}",
            *(_ms(r, m) for m in METRICS),
            _published_text(r),
        )
    return table


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 6))
    measured = [r for r in results if r.per_user is not None]
    for isl_osl in sorted({(r.isl, r.osl) for r in measured}, key=lambda s: (s[0] or 0, s[1] or 0)):
        group = sorted(
            (r for r in measured if (r.isl, r.osl) == isl_osl), key=lambda r: r.concurrency or 0
        )
        xs = [r.per_user for r in group]
        ys = [r.per_gpu for r in group]
        axes.plot(xs, ys, marker="o", label=f"measured {isl_osl[0]}/{isl_osl[1]}")
        for r, x, y in zip(group, xs, ys, strict=True):
            axes.annotate(f"c={r.concurrency}", (x, y), textcoords="offset points", xytext=(4, 4))
    shown = set()
    for r in results:
        for p in r.published():
            if p in shown:
                continue
            shown.add(p)
            x = p.per_user if p.per_user is not None else (r.per_user or 0)
            y = p.per_gpu if p.per_gpu is not None else r.per_gpu
            axes.scatter([x], [y], marker="*", s=160, label=f"NVIDIA: {p.source}")
    axes.set_xlabel("output tokens/s per user (interactivity)")
    axes.set_ylabel("output tokens/s per GPU (throughput)")
    axes.set_title("DeepSeek-R1 on TensorRT-LLM: throughput vs latency")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "source", help="a folder, or gs://BUCKET/PREFIX (the stack's benchmarkResults)"
    )
    parser.add_argument("--plot", type=Path, help="write the throughput-vs-latency plot here (PNG)")
    args = parser.parse_args(argv)
    console = console or Console()
    errors = Console(stderr=True)
    try:
        results, problems = load(args.source)
    except (OSError, ValueError) as err:
        errors.print(f"error: {err}")
        return 1
    for problem in problems:
        errors.print(f"skipped {problem}")
    if not results:
        errors.print(f"error: no readable benchmark result in {args.source}")
        return 1
    console.print(build_table(results))
    if args.plot:
        plot(results, args.plot)
        console.print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
