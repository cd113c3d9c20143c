"""The plan's registrations as the Pulumi engine hands them to a policy pack.

`resource_args` and `stack_args` build the `ResourceValidationArgs` and
`StackValidationArgs` a validator gets during `pulumi preview --policy-pack`;
`run_pack` runs a pack's policies over a whole plan the way the analyzer does
(pulumi_policy/policy.py `Analyze` and `AnalyzeStack`).

What the engine does, and this copies:
- properties are deserialized with secrets unwrapped to plain values
  (Analyze does not proxy secrets) and wrapped in the unknown-checking proxy;
- resource policies see a resource's inputs, stack policies its outputs
  (here: the state the mocks answered, which echoes the inputs);
- options are `PolicyResourceOptions` (there is no retainOnDelete in it);
- `UnknownValueError` from a validator becomes an advisory note, not a
  violation; `not_applicable` is recorded with its reason.

`preview=True` turns what a real preview would not know into pulumi-policy's
unknown sentinel: the mocks' `<computed:...>` placeholders and every string
holding a value the mocks invented (the image digest).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from infra import values
from plan.mocks import Registration, is_computed
from plan.runner import PlanResult

_DURATION = re.compile(r"([0-9.]+)(h|ms|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def seconds(duration: str) -> float:
    """A Go duration as Pulumi writes custom timeouts (`1h30m`, `60m`) in seconds."""
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(duration or ""))


def unknown_test(result: PlanResult, preview: bool) -> Callable[[str], bool] | None:
    """Which strings a real preview would not know yet."""
    if not preview:
        return None
    invented = tuple(result.invented)
    return lambda text: is_computed(text) or any(fake in text for fake in invented)


def engine_value(value: Any, unknown: Callable[[str], bool] | None = None) -> Any:
    """A captured value as the analyzer presents it: secrets unwrapped, unknowns as sentinels."""

    def leaf(value: Any) -> Any:
        if values.is_secret(value):
            return engine_value(values.reveal(value), unknown)
        return _unknown_as_sentinel(value, unknown)

    return values.walk(value, leaf)


def _unknown_as_sentinel(value: Any, unknown: Callable[[str], bool] | None) -> Any:
    if isinstance(value, str) and unknown is not None and unknown(value):
        return UNKNOWN_STRING_VALUE
    return value


def resource_options(reg: Registration) -> PolicyResourceOptions:
    timeouts = reg.custom_timeouts
    return PolicyResourceOptions(
        protect=reg.protect,
        ignore_changes=list(reg.ignore_changes),
        delete_before_replace=True if reg.delete_before_replace else None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(
            seconds(timeouts.get("create", "")),
            seconds(timeouts.get("update", "")),
            seconds(timeouts.get("delete", "")),
        ),
        additional_secret_outputs=[],
        parent=reg.parent or None,
    )


def provider_of(
    reg: Registration, result: PlanResult, unknown: Callable[[str], bool] | None = None
) -> PolicyProviderResource | None:
    """The explicit provider of `reg` (its reference is `<urn>::<id>`)."""
    if not reg.provider:
        return None
    urn = reg.provider.rsplit("::", 1)[0]
    provider = next((r for r in result.registrations if r.urn == urn), None)
    if provider is None:
        return None
    props = unknown_checking_proxy(engine_value(provider.inputs, unknown))
    return PolicyProviderResource(provider.type, props, provider.urn, provider.name)


def resource_args(
    reg: Registration,
    result: PlanResult,
    config: dict[str, Any] | None = None,
    preview: bool = False,
) -> ResourceValidationArgs:
    unknown = unknown_test(result, preview)
    props = unknown_checking_proxy(engine_value(reg.inputs, unknown))
    return ResourceValidationArgs(
        reg.type,
        props,
        reg.urn,
        reg.name,
        resource_options(reg),
        provider_of(reg, result, unknown),
        config,
        {},
    )


def stack_args(
    result: PlanResult,
    config: dict[str, Any] | None = None,
    preview: bool = False,
    registrations: Iterable[Registration] | None = None,
) -> StackValidationArgs:
    """Every resource of the plan (or of `registrations`), linked to parent and dependencies."""
    regs = list(result.registrations if registrations is None else registrations)
    unknown = unknown_test(result, preview)
    resources: dict[str, PolicyResource] = {}
    for reg in regs:
        outputs = reg.state if reg.state else reg.inputs
        resources[reg.urn] = PolicyResource(
            reg.type,
            unknown_checking_proxy(engine_value(outputs, unknown)),
            reg.urn,
            reg.name,
            resource_options(reg),
            provider_of(reg, result, unknown),
            None,
            [],
            {},
        )
    for reg in regs:
        resource = resources[reg.urn]
        resource.parent = resources.get(reg.parent)
        resource.dependencies = [resources[d] for d in reg.dependencies if d in resources]
    return StackValidationArgs(list(resources.values()), config, {})


def edited(reg: Registration, edit: Callable[[dict], Any], **options: Any) -> Registration:
    """A copy of `reg` whose inputs and state `edit` changed in place (and options replaced)."""
    inputs, state = copy.deepcopy(reg.inputs), copy.deepcopy(reg.state)
    edit(inputs)
    if state:
        edit(state)
    return dataclasses.replace(reg, inputs=inputs, state=state, **options)


def with_registration(result: PlanResult, new: Registration) -> PlanResult:
    """A copy of `result` with the registration of the same URN replaced by `new`."""
    regs = [new if r.urn == new.urn else r for r in result.registrations]
    return dataclasses.replace(result, registrations=regs)


def without(result: PlanResult, typ: str) -> PlanResult:
    """A copy of `result` without the registrations of type `typ`."""
    regs = [r for r in result.registrations if r.type != typ]
    return dataclasses.replace(result, registrations=regs)


@dataclass(frozen=True)
class Violation:
    policy: str
    urn: str
    message: str
    level: EnforcementLevel


@dataclass
class PackRun:
    violations: list[Violation] = field(default_factory=list)
    # (policy, reason) of policies that declared themselves not applicable.
    not_applicable: list[tuple[str, str]] = field(default_factory=list)
    # (policy, urn, message) of validations an unknown value stopped.
    unknown: list[tuple[str, str, str]] = field(default_factory=list)

    def of(self, policy: str) -> list[Violation]:
        return [v for v in self.violations if v.policy == policy]


def policy_config(policy: Policy, config: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The policy's config as the CLI passes it: schema defaults, then the pack config."""
    values: dict[str, Any] = {}
    if policy.config_schema is not None:
        for key, schema in policy.config_schema.properties.items():
            if "default" in schema:
                values[key] = schema["default"]
    values.update((config or {}).get(policy.name, {}))
    return values


def run_pack(
    policies: list[Policy],
    result: PlanResult,
    config: dict[str, dict[str, Any]] | None = None,
    preview: bool = False,
    pack_level: EnforcementLevel = EnforcementLevel.MANDATORY,
) -> PackRun:
    """Run every policy over the plan, as the analyzer would for `pulumi preview`."""
    run = PackRun()
    for policy in policies:
        level = policy.enforcement_level or pack_level
        if level == EnforcementLevel.DISABLED:
            continue
        values = policy_config(policy, config)
        if isinstance(policy, ResourceValidationPolicy):
            for reg in result.registrations:
                args = resource_args(reg, result, values, preview)
                _validate(run, policy, level, args, reg.urn)
        elif isinstance(policy, StackValidationPolicy):
            _validate(run, policy, level, stack_args(result, values, preview), "")
    return run


def _validate(run: PackRun, policy: Policy, level: EnforcementLevel, args: Any, urn: str) -> None:
    def report(message: str, violating_urn: str | None = None) -> None:
        run.violations.append(Violation(policy.name, violating_urn or urn, message, level))

    try:
        policy.validate(args, report)
    except UnknownValueError as err:
        run.unknown.append((policy.name, urn, err.message))
    except _NotApplicableError as err:
        run.not_applicable.append((policy.name, err.reason or ""))


# --- the wire format, for talking to the pack's gRPC server -------------------

# pulumi_policy/deserialize.py: the signature key and the secret's signature.
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def wire_value(value: Any, unknown: Callable[[str], bool] | None = None) -> Any:
    """A captured value as the engine sends it to an analyzer: secrets as signed objects."""

    def leaf(value: Any) -> Any:
        if values.is_secret(value):
            return {SIG_KEY: SECRET_SIG, "value": wire_value(values.reveal(value), unknown)}
        return _unknown_as_sentinel(value, unknown)

    return values.walk(value, leaf)
