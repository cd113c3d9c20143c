"""The offline plan: what `pulumi up` would create for a stack, with no cloud and no CLI.

    python -m plan [STACK] [--set KEY=VALUE ...] [--out DIR]
    python -m plan diff FIRST SECOND
    python -m plan preflight [STACK]   (the checks before the GPU pool, plan/preflight.py)
    python -m plan timeline [STACK]    (the order of a first apply, plan/platform.py)

Runs the real program (`__main__.py`) in-process under Pulumi's mocks, prints
the resources grouped by component with their settings, and writes the same
text (plan.txt), a JSON copy (plan.json, in a stable order) and the rendered
Kubernetes manifests under `out/<stack>/`; with `--set` (a what-if), under
`out/<stack>-whatif/<the settings>/`. Values only GCP knows before apply show
as `<computed:...>`. `diff` compares two plans (see plan/diff.py).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

from infra.config import ConfigError
from plan import report, runner

EXIT_OK = 0
EXIT_PROGRAM_FAILED = 1  # Python's own code for an uncaught exception: a bug in the program
EXIT_REFUSED = 2  # bad arguments, no such stack file, or settings the program refuses

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}  the plan was printed and written
  {EXIT_PROGRAM_FAILED}  the program failed (a traceback: a bug, please report it)
  {EXIT_REFUSED}  bad arguments, no such stack file, or invalid settings (one line per problem)
  `diff`: 0 the plans are the same, 1 they differ, 2 a plan cannot be read"""


def default_out(stack: str, overrides: dict[str, str], root: Path | None = None) -> Path:
    """`out/<stack>`, or for a what-if `out/<stack>-whatif/<KEY=VALUE,...>` (sorted,
    made safe as a folder name), so that a what-if never overwrites the stack's plan."""
    root = root or runner.REPO / "out"
    if not overrides:
        return root / stack
    label = ",".join(f"{key}={value}" for key, value in sorted(overrides.items()))
    safe = re.sub(r"[^A-Za-z0-9._=,:+-]+", "_", label).strip("_") or "whatif"
    if len(safe) > 80:
        safe = f"{safe[:70]}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
    return root / f"{stack}-whatif" / safe


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["diff"]:
        from plan import diff

        return diff.main(argv[1:])
    if argv[:1] == ["preflight"]:
        from plan import preflight

        return preflight.main(argv[1:])
    if argv[:1] == ["timeline"]:
        from plan import platform

        return platform.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m plan",
        description=__doc__.split("\n\n")[0],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stack", nargs="?", default="dev", help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default out/<stack>, or out/<stack>-whatif/<settings> with --set)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting for this plan only (repeatable); KEY as `pulumi config set` "
        "takes it: nodeCount, or with its namespace, a4-deepseek:nodeCount",
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = value
    try:
        result = runner.run(args.stack, overrides=overrides)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except ConfigError as err:
        print(f"Stack {args.stack!r} would not deploy: {err}", file=sys.stderr)
        return EXIT_REFUSED
    out = args.out or default_out(args.stack, overrides)
    print(report.render_text(result))
    written = report.write(result, out)
    print(
        f"\nWritten: {', '.join(str(p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p) for p in written)}"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
