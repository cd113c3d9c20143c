"""Times the offline plan of a stack (goal: under 3 s for `dev` on a 2-core machine).

    python benchmarks/plan_speed.py [STACK] [--runs N] [--repo DIR] [--profile]

Reports the whole command as a user runs it (`python -m plan STACK`, a fresh
interpreter each time, imports and interpreter exit included: wall time and
the CPU time of the process, which varies less on a shared machine) and the
program run alone, in process, once its imports are warm. `--repo` times
another checkout (e.g. `git worktree add /tmp/before HEAD~3`) with this
interpreter, for before/after comparisons. `--profile` prints where one whole
`python -m plan` process spends its time (cProfile, cumulative; the cyclic
garbage collector's time, which `plan/runner.py` now avoids, does not show in
a profile: it was found by timing the process with the collector off).

Last result (5 runs, `dev`, 2 cores), median wall / CPU time of the command:
before the collector pause 3.3 s / 3.1 s, after it 1.9 s / 1.9 s on a quiet
machine; 6.2 s / 4.6 s before and 2.9 s / 2.8 s after while five other
engineers loaded it. The program itself, warm, takes 0.2 s: the rest is
importing the SDKs (pulumi_gcp.compute alone, ~290 modules, is about 1 s).
"""

from __future__ import annotations

import argparse
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(repo: Path, stack: str, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `python -m plan STACK`, one fresh process per run."""
    wall, cpu = [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(runs):
            cpu_before = _children_cpu()
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "plan", stack, "--out", out],
                cwd=repo,
                check=True,
                capture_output=True,
            )
            wall.append(time.perf_counter() - start)
            cpu.append(_children_cpu() - cpu_before)
    return wall, cpu


def time_in_process(repo: Path, stack: str, runs: int) -> list[float]:
    sys.path.insert(0, str(repo))
    from plan import runner

    runner.run(stack, repo=repo)  # warm imports
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run(stack, repo=repo)
        times.append(time.perf_counter() - start)
    return times


def profile(repo: Path, stack: str, top: int = 25) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stats, out = Path(tmp) / "plan.prof", Path(tmp) / "out"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(stats),
                "-m",
                "plan",
                stack,
                "--out",
                str(out),
            ],
            cwd=repo,
            check=True,
            capture_output=True,
        )
        pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(top)


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to time")
    parser.add_argument("--profile", action="store_true", help="profile one whole process")
    args = parser.parse_args()
    repo = args.repo.resolve()
    if args.profile:
        profile(repo, args.stack)
        return 0

    wall, cpu = time_command(repo, args.stack, args.runs)
    in_process = time_in_process(repo, args.stack, args.runs)
    print(f"plan of {args.stack!r} in {repo}, {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"  command (python -m plan), wall: {_summary(wall)}")
    print(f"  command (python -m plan), CPU:  {_summary(cpu)}")
    print(f"  program under mocks, warm:      {_summary(in_process)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
