"""The offline plan: what `pulumi up` would create for a stack, with no cloud and no CLI.

    python -m plan [STACK] [--out DIR]
    python -m plan preflight [STACK]   (the checks before the GPU pool, plan/preflight.py)
    python -m plan timeline [STACK]    (the order of a first apply, plan/platform.py)

Runs the real program (`__main__.py`) in-process under Pulumi's mocks, prints
the resources grouped by component with their settings, and writes a JSON copy
(and, where the stack renders them, Kubernetes manifests) under `out/<stack>/`.
Values only GCP knows before apply show as `<computed:...>`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.config import ConfigError
from plan import report, runner


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["preflight"]:
        from plan import preflight

        return preflight.main(argv[1:])
    if argv[:1] == ["timeline"]:
        from plan import platform

        return platform.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", nargs="?", default="dev", help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default out/<stack>)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting for this plan only (repeatable)",
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = value
    try:
        result = runner.run(args.stack, overrides=overrides)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"Stack {args.stack!r} would not deploy: {err}", file=sys.stderr)
        return 2
    out = args.out or runner.REPO / "out" / args.stack
    print(report.render_text(result))
    written = report.write(result, out)
    print(
        f"\nWritten: {', '.join(str(p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p) for p in written)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
