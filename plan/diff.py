"""What differs between two offline plans.

    python -m plan diff out/dev out/dev-whatif/serviceType=InternalLoadBalancer

Each side is a plan folder (its plan.json) or a plan.json file. Prints the
resources only one side has (`-` first side, `+` second side), and for a
resource on both sides each input or option that differs (`~`), a multi-line
text (a ConfigMap's options file, a kubeconfig) as a unified diff; then the
outputs and warnings that differ.

Exit codes: 0 the plans are the same, 1 they differ, 2 a plan cannot be read.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from infra import values
from plan.report import WIDTH

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2
MISSING = object()


class PlanFileError(Exception):
    pass


def load(path: Path) -> dict[str, Any]:
    file = path / "plan.json" if path.is_dir() else path
    try:
        document = json.loads(file.read_text())
    except FileNotFoundError:
        raise PlanFileError(
            f"{file}: no such plan; write one with `python -m plan STACK --out {path}`"
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise PlanFileError(f"{file}: cannot read it as a plan ({err})") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise PlanFileError(f"{file}: not a plan.json (no resources list)")
    return document


def _resources(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["type"], r["name"]): r for r in document["resources"]}


def _leaves(value: Any) -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; list items that carry a unique `name`
    (containers, env, volumes, ports) by that name: `containers[server].image`."""
    return {path or "(value)": leaf for path, leaf in values.leaves(value, label=_by_name)}


def _by_name(items: list[Any]) -> list[str]:
    names = [v.get("name") if isinstance(v, dict) else None for v in items]
    if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return [str(n) for n in names]
    return [str(index) for index in range(len(items))]


def _show(value: Any) -> str:
    return "(absent)" if value is MISSING else json.dumps(value)


def _changed_value(path: str, old: Any, new: Any, indent: str) -> list[str]:
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        lines = [f"{indent}~ {path}:"]
        for line in difflib.unified_diff(
            old.splitlines(), new.splitlines(), "first", "second", lineterm="", n=1
        ):
            if not line.startswith(("---", "+++")):
                lines.append(f"{indent}    {line}")
        return lines
    one_line = f"{indent}~ {path}: {_show(old)} -> {_show(new)}"
    if len(one_line) <= WIDTH:
        return [one_line]
    return [f"{indent}~ {path}:", f"{indent}    - {_show(old)}", f"{indent}    + {_show(new)}"]


def compare_values(first: Any, second: Any, indent: str = "    ") -> list[str]:
    """One entry per differing leaf (`a.b[0].c`), in path order."""
    a, b = _leaves(first), _leaves(second)
    lines: list[str] = []
    for path in sorted(set(a) | set(b)):
        old, new = a.get(path, MISSING), b.get(path, MISSING)
        if old != new:
            lines += _changed_value(path, old, new, indent)
    return lines


def compare(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """The differences between two plan.json documents, as lines."""
    lines: list[str] = []
    a, b = _resources(first), _resources(second)
    for key in sorted(set(a) | set(b), key=lambda k: (k[0], k[1])):
        typ, name = key
        if key not in b:
            lines.append(f"- {typ}  {name}  ({a[key]['component']}): only in the first plan")
            continue
        if key not in a:
            lines.append(f"+ {typ}  {name}  ({b[key]['component']}): only in the second plan")
            continue
        changes = compare_values(a[key].get("inputs"), b[key].get("inputs"))
        changes += compare_values(
            {"[option]": a[key].get("options") or {}}, {"[option]": b[key].get("options") or {}}
        )
        if changes:
            lines.append(f"~ {typ}  {name}  ({b[key]['component']})")
            lines += changes
    outputs = compare_values(first.get("outputs") or {}, second.get("outputs") or {}, indent="  ")
    if outputs:
        lines += ["Outputs:", *outputs]
    warnings_a, warnings_b = first.get("warnings") or [], second.get("warnings") or []
    gone = [w for w in warnings_a if w not in warnings_b]
    new = [w for w in warnings_b if w not in warnings_a]
    if gone or new:
        lines += ["Warnings:", *(f"  - {w}" for w in gone), *(f"  + {w}" for w in new)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plan diff",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 the plans are the same, 1 they differ, 2 a plan cannot be read.",
    )
    parser.add_argument("first", type=Path, help="plan folder or plan.json (e.g. out/dev)")
    parser.add_argument("second", type=Path, help="plan folder or plan.json to compare with it")
    args = parser.parse_args(argv)
    try:
        first, second = load(args.first), load(args.second)
    except PlanFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_TROUBLE
    lines = compare(first, second)
    if not lines:
        print(f"No differences: {args.first} and {args.second} plan the same resources.")
        return EXIT_SAME
    print(f"Differences from {args.first} (first) to {args.second} (second):")
    print("\n".join(lines))
    return EXIT_DIFFERENT
