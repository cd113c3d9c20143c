"""Printing and writing a PlanResult (pure functions over captured registrations)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from plan.mocks import Registration, Secret
from plan.runner import PlanResult

COMPONENT_PREFIX = "a4deepseek:"
MAX_VALUE = 160


def plain(value: Any, invented: dict[str, str] | None = None) -> Any:
    """Inputs as JSON-able data: secrets shown as `[secret]`, and values the
    mocks invented (image digests) as the `<computed:...>` they stand for."""
    if isinstance(value, Secret):
        # Keep the shape (a manifest stays schema-valid), redact every leaf.
        inner = value.reveal()
        if isinstance(inner, dict):
            return {k: plain(Secret(v)) for k, v in inner.items()}
        if isinstance(inner, list):
            return [plain(Secret(v)) for v in inner]
        return "[secret]"
    if isinstance(value, dict):
        return {k: plain(v, invented) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, (list, tuple)):
        return [plain(v, invented) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine carries every number as a float
    if isinstance(value, str) and invented:
        for fake, meaning in invented.items():
            value = value.replace(fake, f"<computed:{meaning}>")
    return value


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """`{"a": {"b": 1}, "c": [{"d": 2}]}` -> `[("a.b", 1), ("c[0].d", 2)]`."""
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = []
        for key, sub in value.items():
            items += flatten(sub, f"{prefix}.{key}" if prefix else key)
        return items
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = []
        for index, sub in enumerate(value):
            items += flatten(sub, f"{prefix}[{index}]")
        return items
    return [(prefix, value)]


def component_of(reg: Registration, by_urn: dict[str, Registration]) -> str:
    """Name of the nearest component that owns `reg` (or `stack`)."""
    parent = by_urn.get(reg.parent)
    while parent is not None:
        if parent.type.startswith(COMPONENT_PREFIX):
            return parent.name
        parent = by_urn.get(parent.parent)
    return "stack"


def options_of(reg: Registration) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if reg.protect:
        options["protect"] = True
    if reg.retain_on_delete:
        options["retainOnDelete"] = True
    if reg.custom_timeouts:
        options["customTimeouts"] = reg.custom_timeouts
    if reg.ignore_changes:
        options["ignoreChanges"] = reg.ignore_changes
    if reg.delete_before_replace:
        options["deleteBeforeReplace"] = True
    return options


def grouped(result: PlanResult) -> dict[str, list[Registration]]:
    by_urn = {r.urn: r for r in result.registrations}
    groups: dict[str, list[Registration]] = {}
    for reg in sorted(result.registrations, key=lambda r: (r.type, r.name)):
        if reg.custom:
            groups.setdefault(component_of(reg, by_urn), []).append(reg)
    return dict(sorted(groups.items(), key=lambda item: (item[0] != "stack", item[0])))


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def render_text(result: PlanResult) -> str:
    groups = grouped(result)
    total = sum(len(v) for v in groups.values())
    lines = [f"Plan of stack {result.stack!r}: {total} resources would be created", ""]
    for component, regs in groups.items():
        lines.append(f"== {component} ({len(regs)})")
        for reg in regs:
            lines.append(f"  + {reg.type}  {reg.name}")
            if reg.type.startswith("kubernetes:"):
                lines.append(f"      manifest: {manifest_name(reg)}")
                continue
            for key, value in sorted(flatten(plain(reg.inputs, result.invented))):
                if value in (None, [], {}):
                    continue
                lines.append(f"      {key} = {_show(value)}")
            for key, value in options_of(reg).items():
                lines.append(f"      [option] {key} = {_show(value)}")
        lines.append("")
    lines.append("Outputs:")
    for name, value in result.outputs.items():
        lines.append(f"  {name} = {_show(plain(value, result.invented))}")
    if result.warnings:
        lines += ["", "Warnings:"] + [f"  ! {w}" for w in result.warnings]
    return "\n".join(lines)


def manifest_name(reg: Registration) -> str:
    kind = reg.type.split(":")[-1]
    meta = reg.inputs.get("metadata") or {}
    parts = [kind, meta.get("namespace"), meta.get("name") or reg.name]
    return "manifests/" + "_".join(p for p in parts if p) + ".yaml"


def kubernetes_objects(result: PlanResult) -> list[tuple[str, dict]]:
    """The Kubernetes objects the stack would apply, secrets redacted."""
    objects = []
    for reg in result.registrations:
        if (
            not reg.custom
            or not reg.type.startswith("kubernetes:")
            or reg.type.startswith("kubernetes:index")
            or reg.type == "pulumi:providers:kubernetes"
        ):
            continue
        objects.append((manifest_name(reg), plain(reg.inputs, result.invented)))
    return objects


def to_json(result: PlanResult) -> dict[str, Any]:
    by_urn = {r.urn: r for r in result.registrations}
    return {
        "stack": result.stack,
        "resources": [
            {
                "type": reg.type,
                "name": reg.name,
                "component": component_of(reg, by_urn),
                "inputs": plain(reg.inputs, result.invented),
                "options": options_of(reg),
            }
            for reg in result.registrations
            if reg.custom
        ],
        "outputs": plain(result.outputs, result.invented),
        "warnings": result.warnings,
    }


def write(result: PlanResult, out: Path) -> list[Path]:
    """Write plan.json, plan.txt and the rendered manifests; return what was written."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = [out / "plan.json", out / "plan.txt"]
    written[0].write_text(json.dumps(to_json(result), indent=2) + "\n")
    written[1].write_text(render_text(result) + "\n")
    objects = kubernetes_objects(result)
    if objects:
        (out / "manifests").mkdir()
        for name, obj in objects:
            head = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
            ordered = {**head, **{k: v for k, v in obj.items() if k not in head}}
            (out / name).write_text(yaml.safe_dump(ordered, sort_keys=False))
        written.append(out / "manifests")
    return written
