"""Printing and writing a PlanResult (pure functions over captured registrations)."""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import yaml

from infra import values
from infra.values import Secret
from plan.mocks import Registration
from plan.runner import PlanResult

COMPONENT_PREFIX = "a4deepseek:"
# plan.txt: lines up to WIDTH characters; a longer value wraps onto up to
# MAX_LINES lines, and the rest is left to plan.json (which has every value whole).
WIDTH = 120
MAX_LINES = 40
FIELD_INDENT = "      "
# Kinds whose pod template plan.txt summarizes (the manifest has all of it).
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
WORKLOAD_SPEC_FIELDS = (
    "replicas",
    "parallelism",
    "completions",
    "backoffLimit",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
)


def plain(value: Any, invented: dict[str, str] | None = None) -> Any:
    """Inputs as JSON-able data: secrets shown as `[secret]`, and values the
    mocks invented (image digests) as the `<computed:...>` they stand for."""

    def leaf(value: Any) -> Any:
        if isinstance(value, Secret):
            return values.redact(value)  # the shape kept: a manifest stays schema-valid
        if isinstance(value, float) and value.is_integer():
            return int(value)  # the engine carries every number as a float
        if isinstance(value, str) and invented:
            for fake, meaning in invented.items():
                value = value.replace(fake, f"<computed:{meaning}>")
        return value

    return values.walk(value, leaf, keep_key=_not_internal)


def _not_internal(key: str) -> bool:
    return not key.startswith("__")


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """`{"a": {"b": 1}, "c": [{"d": 2}]}` -> `[("a.b", 1), ("c[0].d", 2)]`."""
    return list(values.leaves(value, prefix))


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


def field_lines(key: str, value: Any, indent: str = FIELD_INDENT) -> list[str]:
    """`key = value` for plan.txt: multi-line text as an indented block, a long
    value wrapped; beyond MAX_LINES lines, a pointer to plan.json."""
    text = value if isinstance(value, str) else json.dumps(value)
    if "\n" in text.strip("\n"):
        head, body = f"{indent}{key} = |", text.strip("\n").splitlines()
    elif len(indent) + len(key) + 3 + len(text) <= WIDTH:
        return [f"{indent}{key} = {text}"]
    elif len(indent) + 4 + len(text) <= WIDTH:
        return [f"{indent}{key} =", f"{indent}    {text}"]
    else:
        head = f"{indent}{key} ="
        # Joined back together, the pieces are the value exactly.
        body = textwrap.wrap(
            text,
            WIDTH - len(indent) - 4,
            drop_whitespace=False,
            break_on_hyphens=False,
            replace_whitespace=False,
        )
    lines = [head] + [f"{indent}    {line}" for line in body[:MAX_LINES]]
    if len(body) > MAX_LINES:
        lines.append(
            f"{indent}    ... {len(body) - MAX_LINES} more lines ({len(text)} characters, "
            f"sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}): see plan.json"
        )
    return lines


def _without_labels(path: str) -> bool:
    """Labels and selectors repeat the object's identity; plan.txt leaves them out."""
    parts = path.replace("[", ".").split(".")
    return not {"labels", "selector", "matchLabels", "podSelector"} & set(parts)


def kubernetes_fields(obj: dict) -> list[tuple[str, Any]]:
    """What plan.txt shows of a Kubernetes object: the fields a what-if changes.

    Workloads: replica and Job counts, pod annotations, node selector, and per
    container its image, command, args, env and resources. Other kinds: every
    field but labels and selectors (a ConfigMap's files in full). Annotations
    of every kind. The manifest under manifests/ has the whole object.
    """
    meta = obj.get("metadata") or {}
    fields: list[tuple[str, Any]] = [
        (f"metadata.annotations.{k}", v) for k, v in sorted((meta.get("annotations") or {}).items())
    ]
    if obj.get("kind") not in WORKLOAD_KINDS:
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        return fields + [(k, v) for k, v in sorted(flatten(body)) if _without_labels(k)]
    spec = obj.get("spec") or {}
    fields += [(f"spec.{k}", spec[k]) for k in WORKLOAD_SPEC_FIELDS if k in spec]
    template = spec.get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    fields += [(f"pod.annotations.{k}", v) for k, v in sorted(annotations.items())]
    pod = template.get("spec") or {}
    selector = pod.get("nodeSelector") or {}
    fields += [(f"pod.nodeSelector.{k}", v) for k, v in sorted(selector.items())]
    for group in ("initContainers", "containers"):
        for container in pod.get(group) or []:
            prefix = f"{group}[{container.get('name')}]"
            for key in ("image", "command", "args"):
                if container.get(key):
                    fields.append((f"{prefix}.{key}", container[key]))
            for env in container.get("env") or []:
                value = env.get("value")
                if value is None and env.get("valueFrom"):
                    value = {"valueFrom": env["valueFrom"]}
                fields.append((f"{prefix}.env.{env.get('name')}", value))
            fields += sorted(flatten(container.get("resources") or {}, f"{prefix}.resources"))
    return fields


def render_text(result: PlanResult) -> str:
    groups = grouped(result)
    total = sum(len(v) for v in groups.values())
    lines = [f"Plan of stack {result.stack!r}: {total} resources would be created", ""]
    for component, regs in groups.items():
        lines.append(f"== {component} ({len(regs)})")
        for reg in regs:
            lines.append(f"  + {reg.type}  {reg.name}")
            inputs = plain(reg.inputs, result.invented)
            if is_kubernetes_object(reg):
                lines.append(f"{FIELD_INDENT}manifest: {manifest_name(reg)}")
                fields = kubernetes_fields(inputs)
            else:
                fields = sorted(flatten(inputs))
            for key, value in fields:
                if value in (None, [], {}):
                    continue
                lines += field_lines(key, value)
            for key, value in options_of(reg).items():
                lines += field_lines(f"[option] {key}", value)
        lines.append("")
    lines.append("Outputs:")
    for name, value in result.outputs.items():
        lines += field_lines(name, plain(value, result.invented), indent="  ")
    if result.warnings:
        lines += ["", "Warnings:"]
        for warning in result.warnings:
            lines += textwrap.wrap(
                warning,
                WIDTH,
                initial_indent="  ! ",
                subsequent_indent="    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
    return "\n".join(lines)


def manifest_name(reg: Registration) -> str:
    kind = reg.type.split(":")[-1]
    meta = reg.inputs.get("metadata") or {}
    parts = [kind, meta.get("namespace"), meta.get("name") or reg.name]
    return "manifests/" + "_".join(p for p in parts if p) + ".yaml"


def is_kubernetes_object(reg: Registration) -> bool:
    return (
        reg.custom
        and reg.type.startswith("kubernetes:")
        and not reg.type.startswith("kubernetes:index")
        and reg.type != "pulumi:providers:kubernetes"
    )


def kubernetes_objects(result: PlanResult) -> list[tuple[str, dict]]:
    """The Kubernetes objects the stack would apply, secrets redacted."""
    return [
        (manifest_name(reg), plain(reg.inputs, result.invented))
        for reg in result.registrations
        if is_kubernetes_object(reg)
    ]


def to_json(result: PlanResult) -> dict[str, Any]:
    """The plan as data, in a stable order: resources by component, type and name
    (registration order varies from run to run), keys sorted when written."""
    by_urn = {r.urn: r for r in result.registrations}
    resources = [
        {
            "type": reg.type,
            "name": reg.name,
            "component": component_of(reg, by_urn),
            "inputs": plain(reg.inputs, result.invented),
            "options": options_of(reg),
        }
        for reg in result.registrations
        if reg.custom
    ]
    resources.sort(key=lambda r: (r["component"], r["type"], r["name"]))
    return {
        "stack": result.stack,
        "resources": resources,
        "outputs": plain(result.outputs, result.invented),
        "warnings": result.warnings,
    }


def to_json_text(result: PlanResult) -> str:
    return json.dumps(to_json(result), indent=2, sort_keys=True) + "\n"


def write(result: PlanResult, out: Path) -> list[Path]:
    """Write plan.json, plan.txt and the rendered manifests; return what was written."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = [out / "plan.json", out / "plan.txt"]
    written[0].write_text(to_json_text(result))
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
