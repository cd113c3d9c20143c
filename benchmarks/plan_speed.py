"""Times the offline plan of a stack (goal: under 3 s for `dev` on a 2-core machine).

    python benchmarks/plan_speed.py [STACK] [--runs N]

Reports the whole command as a user runs it (`python -m plan STACK`, a fresh
interpreter each time, imports included) and the program run alone, in process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    command = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "plan", args.stack, "--out", out],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
            command.append(time.perf_counter() - start)

    from plan import runner

    runner.run(args.stack)  # warm imports
    in_process = []
    for _ in range(args.runs):
        start = time.perf_counter()
        runner.run(args.stack)
        in_process.append(time.perf_counter() - start)

    print(f"plan of {args.stack!r}, {args.runs} runs")
    print(
        f"  command (python -m plan): median {statistics.median(command):.2f} s, max {max(command):.2f} s"
    )
    print(
        f"  program under mocks:      median {statistics.median(in_process):.2f} s, max {max(in_process):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
