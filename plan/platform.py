"""The platform's preconditions, checked on a plan: what the mocks are kinder about.

Pulumi's mocks accept any value, in any order, at any time; Google Cloud does
not. This module checks a plan (every registration with the resources it waits
for, every data-source call with the resources the engine makes it wait for)
against the documented rules a first `pulumi up` on an empty project meets:

- api: a call needs its service API enabled first. Every GCP resource type
  and data source maps to the API it calls (an unmapped one is an error, so a
  new resource type must be mapped here); the call must wait, directly or
  through other resources, for the `gcp:projects/service:Service` that enables
  it. Source: cloud.google.com/service-usage/docs/enable-disable ("before you
  can use an API, you must enable it"); the 403 "API has not been used in
  project ... or it is disabled" otherwise.
- workload-identity: an IAM member `principal://.../workloadIdentityPools/
  <project>.svc.id.goog/...` (or `serviceAccount:<project>.svc.id.goog[...]`)
  names the project's workload identity pool, which GKE creates with the first
  cluster that enables Workload Identity
  (cloud.google.com/kubernetes-engine/docs/how-to/workload-identity): the
  binding waits for such a cluster, or the stack adopts one that has it.
- iam-propagation: an identity that uses a role granted in the same run
  (nodes of a node pool, the Cloud Build service account, a pod's Kubernetes
  service account) waits for a propagation delay resource that itself waits
  for the grant. Source: cloud.google.com/iam/docs/access-change-propagation
  ("typically 2 minutes ... can take 7 minutes or longer").
- flex-start-upgrades: a flex-start node pool sets no upgrade settings and
  ignores them: GKE uses short-lived upgrades for flex-start nodes and owns
  the field (cloud.google.com/kubernetes-engine/docs/concepts/
  node-pool-upgrade-strategies; container v1 API NodePoolUpdateStrategy
  SHORT_LIVED).

`replay` orders a plan's registrations and calls the way the engine would run
them on a first apply (every step after what it waits for).
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # plan.runner imports this module: its types only, for annotations.
    from plan.mocks import Registration
    from plan.runner import PlanResult

SERVICE = "gcp:projects/service:Service"
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
SLEEP = "time:index/sleep:Sleep"

# Enabled by hand before the first `pulumi up` (README "Before the first
# run"): enabling services needs both. Service Usage: "This resource requires
# the Service Usage API" (pulumi-gcp projects.Service docs); Cloud Resource
# Manager: the provider reads the project through it before it enables
# anything (terraform-provider-google resource_google_project_service.go,
# "Verify project for services still exists"; hashicorp/terraform-provider-
# google#6101 "Enabling the Cloud Resource Manager API requires the Cloud
# Resource Manager API").
PREREQUISITE_APIS = frozenset(
    {"serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com"}
)

# The API each resource type or data source calls. Exact tokens first, then
# whole pulumi-gcp modules that map to one API.
_APIS_BY_TOKEN: dict[str, tuple[str, ...]] = {
    SERVICE: tuple(sorted(PREREQUISITE_APIS)),
    # Project IAM policies are read and written through Resource Manager.
    "gcp:projects/iAMMember:IAMMember": ("cloudresourcemanager.googleapis.com",),
    "gcp:organizations/getProject:getProject": ("cloudresourcemanager.googleapis.com",),
    "gcp:serviceaccount/account:Account": ("iam.googleapis.com",),
    "gcp:serviceaccount/iAMMember:IAMMember": ("iam.googleapis.com",),
    # Reads the provider's own credentials; calls no Google API.
    "gcp:organizations/getClientConfig:getClientConfig": (),
    # A local build pushes to Artifact Registry.
    "docker:index/image:Image": ("artifactregistry.googleapis.com",),
    SLEEP: (),
}
_APIS_BY_MODULE: dict[str, tuple[str, ...]] = {
    "compute": ("compute.googleapis.com",),
    "container": ("container.googleapis.com",),
    "storage": ("storage.googleapis.com",),
    "artifactregistry": ("artifactregistry.googleapis.com",),
    "cloudbuild": ("cloudbuild.googleapis.com",),
    "monitoring": ("monitoring.googleapis.com",),
    "logging": ("logging.googleapis.com",),
    "cloudquota": ("cloudquotas.googleapis.com",),
    "secretmanager": ("secretmanager.googleapis.com",),
    # Budgets are the Cloud Billing Budget API's (billing.Budget docs in pulumi-gcp).
    "billing": ("billingbudgets.googleapis.com",),
}
# `gcloud <group> ...` run by pulumi-command: the APIs each group calls.
# `builds submit` stages the source in Cloud Storage and pushes the image to
# Artifact Registry (cloud.google.com/build/docs/running-builds/submit-build-via-cli-api).
_APIS_BY_GCLOUD_GROUP: dict[str, tuple[str, ...]] = {
    "builds": (
        "cloudbuild.googleapis.com",
        "storage.googleapis.com",
        "artifactregistry.googleapis.com",
    ),
    "compute": ("compute.googleapis.com",),
}
_COMMANDS = {"command:local:Command": "create", "command:local:run": "command"}

# How long IAM changes take to apply: "typically 2 minutes"
# (cloud.google.com/iam/docs/access-change-propagation).
IAM_PROPAGATION_MIN_SECONDS = 120

_WIF_PRINCIPAL = re.compile(
    r"^principal(?:Set)?://iam\.googleapis\.com/projects/[^/]+/locations/global/"
    r"workloadIdentityPools/(?P<pool>[^/]+\.svc\.id\.goog)/"
)
_WIF_SERVICE_ACCOUNT = re.compile(r"^serviceAccount:(?P<pool>[^\[]+\.svc\.id\.goog)\[")
_WORKLOAD_KINDS = ("apps/v1:Deployment", "apps/v1:StatefulSet", "apps/v1:DaemonSet", "batch/v1:Job")


class UnmappedCallError(KeyError):
    """A resource type or data source the API table does not know."""


class PlatformError(AssertionError):
    """A plan that the real platform would refuse."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        lines = "\n".join(f"  - {v}" for v in violations)
        super().__init__(
            f"the plan breaks {len(violations)} platform rule(s) (plan/platform.py):\n{lines}"
        )


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.subject}: {self.message}"


def apis_needed(token: str, inputs: dict) -> tuple[str, ...]:
    """The service APIs a registration or data-source call of `token` uses."""
    if token in _APIS_BY_TOKEN:
        return _APIS_BY_TOKEN[token]
    if token in _COMMANDS:
        return _gcloud_apis(str(inputs.get(_COMMANDS[token]) or ""), token)
    if token.startswith(("pulumi:providers:", "kubernetes:")):
        # Providers create nothing; Kubernetes objects go to the cluster's API
        # server, which exists only once the cluster does.
        return ()
    package, _, rest = token.partition(":")
    module = rest.split("/", 1)[0]
    if package == "gcp" and module in _APIS_BY_MODULE:
        return _APIS_BY_MODULE[module]
    raise UnmappedCallError(
        f"{token}: no service API mapped; add it to plan/platform.py (_APIS_BY_TOKEN or "
        "_APIS_BY_MODULE) with the API it calls"
    )


def _gcloud_apis(command: str, token: str) -> tuple[str, ...]:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words or words[0] != "gcloud":
        return ()
    group = next((w for w in words[1:] if not w.startswith("-")), "")
    if group not in _APIS_BY_GCLOUD_GROUP:
        raise UnmappedCallError(
            f"{token} runs `gcloud {group}`: no service API mapped; add the group to "
            "plan/platform.py (_APIS_BY_GCLOUD_GROUP)"
        )
    return _APIS_BY_GCLOUD_GROUP[group]


def waits_on(reg: Registration) -> list[str]:
    """What a registration directly waits for: its dependencies and its
    explicit provider (a Kubernetes provider waits for its cluster)."""
    provider_urn = reg.provider.rsplit("::", 1)[0] if reg.provider else ""
    return [*reg.dependencies, provider_urn] if provider_urn else list(reg.dependencies)


class _Graph:
    """Registrations by URN and what each waits for, transitively."""

    def __init__(self, plan: PlanResult):
        self.plan = plan
        self.by_urn = {r.urn: r for r in plan.registrations}

        @cache
        def closure(urn: str) -> frozenset[str]:
            reg = self.by_urn.get(urn)
            if reg is None:
                return frozenset()
            found: set[str] = set()
            for dep in waits_on(reg):
                found.add(dep)
                found |= closure(dep)
            return frozenset(found)

        self.closure = closure

    def waits_for(self, direct: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for urn in direct:
            found.add(urn)
            found |= self.closure(urn)
        return found


def _label(reg: Registration) -> str:
    return f"{reg.type} {reg.name!r}"


def check(plan: PlanResult) -> list[Violation]:
    """Every platform rule the plan breaks (empty: the order and settings are sound)."""
    graph = _Graph(plan)
    violations: list[Violation] = []
    violations += _check_apis(plan, graph)
    violations += _check_workload_identity(plan, graph)
    violations += _check_propagation(plan, graph)
    violations += _check_flex_start(plan)
    return violations


def _check_apis(plan: PlanResult, graph: _Graph) -> list[Violation]:
    services: dict[str | None, str] = {
        r.inputs.get("service"): r.urn for r in plan.registrations if r.type == SERVICE
    }
    subjects = [
        (_label(r), r.type, r.inputs, graph.waits_for(waits_on(r)))
        for r in plan.registrations
        if r.custom and r.type != SERVICE
    ] + [
        (f"data source {call.token}", call.token, call.args, graph.waits_for(call.depends_on))
        for call in plan.invokes
    ]
    found = []
    for label, token, inputs, waits in subjects:
        try:
            needed = apis_needed(token, inputs)
        except UnmappedCallError as err:
            found.append(Violation("api", label, str(err)))
            continue
        for api in needed:
            enabling = services.get(api)
            if enabling is None:
                if api not in PREREQUISITE_APIS:
                    found.append(
                        Violation(
                            "api",
                            label,
                            f"needs {api}, which the stack does not enable; add it to "
                            "infra/services.py REQUIRED_SERVICES",
                        )
                    )
            elif enabling not in waits:
                found.append(
                    Violation(
                        "api",
                        label,
                        f"needs {api} but does not wait for the Service that enables it; "
                        "on an empty project it fails with 403 SERVICE_DISABLED",
                    )
                )
    return found


def workload_pool_of(member: str) -> str | None:
    """The workload identity pool a Workload Identity Federation member names."""
    match = _WIF_PRINCIPAL.match(member) or _WIF_SERVICE_ACCOUNT.match(member)
    return match.group("pool") if match else None


def _members(reg: Registration) -> list[str]:
    member = reg.inputs.get("member")
    members = reg.inputs.get("members") or []
    return [m for m in [member, *members] if isinstance(m, str)]


def _check_workload_identity(plan: PlanResult, graph: _Graph) -> list[Violation]:
    adopted_pools = {
        (config or {}).get("workloadPool")
        for call in plan.invokes
        if call.token == "gcp:container/getCluster:getCluster"
        for config in call.result.get("workloadIdentityConfigs") or []
    }
    found = []
    for reg in plan.registrations:
        for member in _members(reg):
            pool = workload_pool_of(member)
            if pool is None:
                continue
            clusters = [
                graph.by_urn[urn]
                for urn in graph.waits_for(waits_on(reg))
                if urn in graph.by_urn and graph.by_urn[urn].type == CLUSTER
            ]
            if any(
                (c.inputs.get("workloadIdentityConfig") or {}).get("workloadPool") == pool
                for c in clusters
            ):
                continue
            if pool in adopted_pools:
                continue
            found.append(
                Violation(
                    "workload-identity",
                    _label(reg),
                    f"binds {pool} before a cluster with Workload Identity creates that pool "
                    '("Identity Pool does not exist"); make it wait for the cluster',
                )
            )
    return found


def _duration_seconds(text: str) -> float:
    """A Go duration (`30s`, `2m`, `1h30m`) in seconds; 0 when unparsable."""
    parts = re.findall(r"([0-9.]+)(h|m|s)", text or "")
    scale = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * scale[u] for n, u in parts)


def _is_grant(reg: Registration) -> bool:
    last = reg.type.rsplit(":", 1)[-1].lower()
    return reg.type.startswith("gcp:") and last.endswith(("iammember", "iambinding"))


def identities(reg: Registration) -> set[str]:
    """The IAM members whose roles a registration uses when it runs."""
    if reg.type == NODE_POOL:
        account = (reg.inputs.get("nodeConfig") or {}).get("serviceAccount")
        return {f"serviceAccount:{account}"} if isinstance(account, str) else set()
    if reg.type == "command:local:Command":
        match = re.search(r"--service-account=(\S+)", str(reg.inputs.get("create") or ""))
        if match:
            return {f"serviceAccount:{match.group(1).rsplit('/', 1)[-1]}"}
        return set()
    if reg.type.startswith("kubernetes:") and reg.type.endswith(_WORKLOAD_KINDS):
        namespace = (reg.inputs.get("metadata") or {}).get("namespace") or "default"
        pod = ((reg.inputs.get("spec") or {}).get("template") or {}).get("spec") or {}
        account = pod.get("serviceAccountName")
        return {f"ksa:{namespace}/{account}"} if account else set()
    return set()


def _grant_applies(member: str, identity: str) -> bool:
    if identity.startswith("ksa:"):
        namespace, account = identity[4:].split("/", 1)
        return member.endswith(f"/subject/ns/{namespace}/sa/{account}") or member.endswith(
            f".svc.id.goog[{namespace}/{account}]"
        )
    return member == identity


def _check_propagation(plan: PlanResult, graph: _Graph) -> list[Violation]:
    grants = [g for g in plan.registrations if _is_grant(g)]
    delays = [
        r
        for r in plan.registrations
        if r.type == SLEEP
        and _duration_seconds(str(r.inputs.get("createDuration") or ""))
        >= IAM_PROPAGATION_MIN_SECONDS
    ]
    found = []
    for reg in plan.registrations:
        used = identities(reg)
        if not used:
            continue
        waits = graph.waits_for(waits_on(reg))
        for grant in grants:
            if not any(_grant_applies(m, i) for m in _members(grant) for i in used):
                continue
            covered = any(
                d.urn in waits and grant.urn in graph.waits_for(waits_on(d)) for d in delays
            )
            if not covered:
                found.append(
                    Violation(
                        "iam-propagation",
                        _label(reg),
                        f"uses {grant.inputs.get('role')} granted by {grant.name!r} without "
                        f"waiting at least {IAM_PROPAGATION_MIN_SECONDS}s after it for IAM "
                        "to propagate (a time:index/sleep:Sleep that waits for the grant)",
                    )
                )
    return found


def _check_flex_start(plan: PlanResult) -> list[Violation]:
    found = []
    for reg in plan.registrations:
        if reg.type != NODE_POOL or not (reg.inputs.get("nodeConfig") or {}).get("flexStart"):
            continue
        if reg.inputs.get("upgradeSettings"):
            found.append(
                Violation(
                    "flex-start-upgrades",
                    _label(reg),
                    "sets upgradeSettings; GKE uses short-lived upgrades for flex-start "
                    "nodes, so every later update would try to change them back",
                )
            )
        if "upgradeSettings" not in reg.ignore_changes:
            found.append(
                Violation(
                    "flex-start-upgrades",
                    _label(reg),
                    "does not ignore upgradeSettings, which GKE sets (SHORT_LIVED) for "
                    "flex-start pools",
                )
            )
    return found


# --------------------------------------------------------------------------
# Replay: the order of a first apply


class StepKind(StrEnum):
    CREATE = "create"  # a resource
    READ = "read"  # a data-source call


@dataclass(frozen=True)
class Step:
    """One thing a first apply does: create a resource or call a data source."""

    wave: int
    kind: StepKind
    type: str
    name: str
    component: str


def replay(plan: PlanResult) -> list[Step]:
    """Registrations and data-source calls in the order a first apply runs them.

    A resource starts once everything it waits for exists (the engine runs
    independent steps in parallel): its wave is one more than the latest wave
    it waits for. A data-source call runs in the wave after what it waits for.
    Providers and components create nothing and are left out.
    """
    by_urn = {r.urn: r for r in plan.registrations}
    waves: dict[str, int] = {}

    def wave(urn: str) -> int:
        if urn in waves:
            return waves[urn]
        reg = by_urn.get(urn)
        if reg is None:
            return 0
        waves[urn] = 0  # breaks cycles, which a plan cannot have
        before = max((wave(d) for d in waits_on(reg)), default=0)
        waves[urn] = before + (1 if _creates(reg) else 0)
        return waves[urn]

    def component(reg: Registration) -> str:
        parent = by_urn.get(reg.parent)
        return parent.name if parent is not None else ""

    steps = [
        Step(wave(r.urn), StepKind.CREATE, r.type, r.name, component(r))
        for r in plan.registrations
        if _creates(r)
    ]
    for call in plan.invokes:
        after = max((wave(d) for d in call.depends_on), default=0)
        steps.append(Step(after + 1, StepKind.READ, call.token, call.token.rsplit(":", 1)[-1], ""))
    return sorted(
        steps, key=lambda s: (s.wave, s.kind != StepKind.READ, s.component, s.type, s.name)
    )


def _creates(reg: Registration) -> bool:
    return reg.custom and not reg.type.startswith("pulumi:providers:")


def render_replay(steps: list[Step]) -> str:
    """The first-apply sequence as text: one line per wave, grouped by component."""
    lines = []
    for number in sorted({s.wave for s in steps}):
        groups: dict[str, list[str]] = {}
        for step in (s for s in steps if s.wave == number):
            what = step.type.rsplit(":", 1)[-1]
            key = "read" if step.kind == StepKind.READ else step.component or "stack"
            groups.setdefault(key, []).append(
                f"{step.name}" if step.kind == StepKind.READ else f"{what} {step.name}"
            )
        parts = [f"{key}: {', '.join(items)}" for key, items in groups.items()]
        lines.append(f"{number:>2}. " + "; ".join(parts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m plan timeline [STACK]`: the first-apply sequence of a stack."""
    from plan import runner

    parser = argparse.ArgumentParser(
        prog="python -m plan timeline", description="The order a first `pulumi up` creates things."
    )
    parser.add_argument("stack", nargs="?", default="dev", help="stack name (Pulumi.<stack>.yaml)")
    args = parser.parse_args(argv)
    print(render_replay(replay(runner.run(args.stack))))
    return 0
