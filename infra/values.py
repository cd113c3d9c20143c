"""Nested values (dicts, lists, tuples) and the one secret wrapper.

`walk` is the project's one recursive map over such values: the data
sources' answers (infra/preflight.py), the plan's registrations and outputs
(plan/), and the tests' views of them. `leaves` is the same walk as
`(path, leaf)` pairs, for what prints or compares values field by field.

A secret is a leaf to both, in either of its two forms: `Secret` (a secret
setting in the program; a secret input or output in the plan) and the
engine's wire form (`{<sig key>: <secret sig>, "value": ...}`, pulumi's
`rpc.is_rpc_secret`). What happens to a secret is decided here only:
`mark_secrets` turns the wire form into `Secret`, `redact` is what files
and reports show of it (the shape kept, every leaf `[secret]`), and `reveal`
unwraps it for the one place the program hands it to Pulumi and for tests.

(The policy pack, policy/validators.py, walks values on its own: it is
loaded from its own folder by the Pulumi CLI and imports nothing from here.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from pulumi.runtime import rpc

T = TypeVar("T")

# What every leaf of a secret shows as, in plan files, reports and reprs.
REDACTED = "[secret]"


class Secret(Generic[T]):
    """A secret value of any shape: repr and str never show it; `reveal()` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: T):
        self._value = value

    def reveal(self) -> T:
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(repr(self._value))


def is_secret(value: Any) -> bool:
    """A `Secret`, or a secret in the engine's wire form."""
    return isinstance(value, Secret) or rpc.is_rpc_secret(value)


def _inside(secret: Any) -> Any:
    return secret.reveal() if isinstance(secret, Secret) else rpc.unwrap_rpc_secret(secret)


def walk(
    value: Any, leaf: Callable[[Any], Any], keep_key: Callable[[str], bool] | None = None
) -> Any:
    """`value` with `leaf` applied to every leaf, the shape kept: dicts (and the
    SDK's dict-based output types) come back as dicts, lists and tuples as lists.
    Secrets are leaves. `keep_key` drops the dict entries it returns False for."""
    if isinstance(value, dict) and not rpc.is_rpc_secret(value):
        return {
            k: walk(v, leaf, keep_key) for k, v in value.items() if keep_key is None or keep_key(k)
        }
    if isinstance(value, (list, tuple)):
        return [walk(v, leaf, keep_key) for v in value]
    return leaf(value)


def leaves(
    value: Any, prefix: str = "", label: Callable[[list[Any]], list[str]] | None = None
) -> Iterator[tuple[str, Any]]:
    """`{"a": {"b": 1}, "c": [{"d": 2}]}` -> `("a.b", 1), ("c[0].d", 2)`.

    A list of scalars is one leaf. `label(items)` names a list's items in the
    path (by default their indexes). Secrets are leaves."""
    if isinstance(value, dict) and not rpc.is_rpc_secret(value):
        for key, sub in value.items():
            yield from leaves(sub, f"{prefix}.{key}" if prefix else str(key), label)
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        names = label(value) if label else [str(i) for i in range(len(value))]
        for name, sub in zip(names, value, strict=True):
            yield from leaves(sub, f"{prefix}[{name}]", label)
    else:
        yield prefix, value


def plain(value: Any) -> Any:
    """Plain dicts and lists: the SDK's output types (dict subclasses) and tuples
    copied into them, every leaf (and secret) as it is."""
    return walk(value, _same)


def _same(value: Any) -> Any:
    return value


def reveal(value: Any) -> Any:
    """`value` with every secret in it, in either form, unwrapped."""
    return walk(value, _revealed)


def _revealed(value: Any) -> Any:
    return reveal(_inside(value)) if is_secret(value) else value


def redact(value: Any) -> Any:
    """What may be shown of a secret's value: its shape, every leaf `[secret]`
    (a manifest with a secret in it stays schema-valid)."""
    return walk(_inside(value) if is_secret(value) else value, _redacted)


def _redacted(value: Any) -> str:
    return REDACTED


def mark_secrets(value: Any) -> Any:
    """`value` with every secret in the engine's wire form made a `Secret`."""
    return walk(value, _marked)


def _marked(value: Any) -> Any:
    return Secret(mark_secrets(_inside(value))) if is_secret(value) else value
