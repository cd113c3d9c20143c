"""The strict platform model (plan/platform.py): each rule catches what it names,
every supported stack variant passes it, and the replay orders a first apply."""

from __future__ import annotations

import dataclasses

import pytest

from plan import platform, runner
from plan.mocks import Invocation
from tests.conftest import plan_of

# Every variant the stack supports: each stack file, each consumption mode,
# a reservation with a block, an adopted cluster, each image builder.
VARIANTS = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "flex-start": ("dev", {"consumptionMode": "flex-start", "compactPlacement": False}),
    "spot": ("dev", {"compactPlacement": False}),
    "on-demand": ("dev", {"consumptionMode": "on-demand", "compactPlacement": False}),
    "reservation-block": ("prod", {"reservationBlock": "block-1"}),
    "adopt": ("dev", {"clusterMode": "adopt", "clusterName": "their-gke"}),
    "docker": ("dev", {"imageBuilder": "docker"}),
    "prebuilt": (
        "dev",
        {
            "imageBuilder": "prebuilt",
            "prebuiltImage": "nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc14",
            "prebuiltBenchmarkImage": "us-docker.pkg.dev/team/images/benchmark:0.13.0-1",
        },
    ),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_meets_the_platform_rules(variant):
    stack, overrides = VARIANTS[variant]
    plan = plan_of(stack, **overrides)  # strict: raises PlatformError on a violation
    assert platform.check(plan) == []
    assert plan.invokes, "the model sees the data-source calls"


# --- each rule catches its defect, on a copy of a sound plan -----------------


def _without_dependency(plan, name: str, typ: str, dropped: set[str]):
    """A copy of `plan` where one registration no longer waits for `dropped`."""
    registrations = [
        dataclasses.replace(r, dependencies=[d for d in r.dependencies if d not in dropped])
        if (r.name, r.type) == (name, typ)
        else r
        for r in plan.registrations
    ]
    return dataclasses.replace(plan, registrations=registrations)


def _rules(plan) -> list[tuple[str, str]]:
    return [(v.rule, v.subject) for v in platform.check(plan)]


def test_a_data_source_call_before_its_api_is_an_error(dev_plan):
    calls = [
        Invocation(c.token, c.args, c.provider, (), c.result)
        if c.token.endswith("getEngineVersions")
        else c
        for c in dev_plan.invokes
    ]
    broken = dataclasses.replace(dev_plan, invokes=calls)
    violations = platform.check(broken)
    assert [(v.rule, v.subject) for v in violations] == [
        ("api", "data source gcp:container/getEngineVersions:getEngineVersions")
    ]
    assert "container.googleapis.com" in violations[0].message


def test_a_resource_before_its_api_is_an_error(dev_plan):
    services = {s.urn for s in dev_plan.of_type("gcp:projects/service:Service")}
    broken = _without_dependency(
        dev_plan, "images", "gcp:artifactregistry/repository:Repository", services
    )
    assert ("api", "gcp:artifactregistry/repository:Repository 'images'") in _rules(broken)


def test_an_api_the_stack_never_enables_is_an_error(dev_plan):
    registrations = [
        r
        for r in dev_plan.registrations
        if not (r.type == "gcp:projects/service:Service" and r.name == "cloudbuild")
    ]
    broken = dataclasses.replace(dev_plan, registrations=registrations)
    messages = [v.message for v in platform.check(broken) if v.rule == "api"]
    assert any("cloudbuild.googleapis.com, which the stack does not enable" in m for m in messages)


def test_an_unmapped_resource_type_fails_loudly():
    with pytest.raises(platform.UnmappedCallError, match="gcp:pubsub/topic:Topic"):
        platform.apis_needed("gcp:pubsub/topic:Topic", {})
    with pytest.raises(platform.UnmappedCallError, match="gcloud run"):
        platform.apis_needed("command:local:Command", {"create": "gcloud run deploy x"})


@pytest.mark.parametrize(
    ("token", "inputs", "apis"),
    [
        ("gcp:container/nodePool:NodePool", {}, ("container.googleapis.com",)),
        ("gcp:compute/routerNat:RouterNat", {}, ("compute.googleapis.com",)),
        ("gcp:projects/iAMMember:IAMMember", {}, ("cloudresourcemanager.googleapis.com",)),
        ("gcp:serviceaccount/account:Account", {}, ("iam.googleapis.com",)),
        ("gcp:cloudquota/getSQuotaInfo:getSQuotaInfo", {}, ("cloudquotas.googleapis.com",)),
        (
            "command:local:Command",
            {"create": "gcloud builds submit docker --quiet"},
            (
                "cloudbuild.googleapis.com",
                "storage.googleapis.com",
                "artifactregistry.googleapis.com",
            ),
        ),
        ("command:local:Command", {"create": "echo hello"}, ()),
        ("kubernetes:apps/v1:Deployment", {}, ()),
    ],
)
def test_calls_map_to_the_api_they_use(token, inputs, apis):
    assert platform.apis_needed(token, inputs) == apis


def test_a_workload_identity_binding_before_the_cluster_is_an_error(dev_plan):
    binding = dev_plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", "workload-objects")
    cluster = dev_plan.one("gcp:container/cluster:Cluster").urn
    # Keep the binding's other dependencies, drop everything that reaches the cluster.
    graph_dropped = {
        d
        for d in binding.dependencies
        if d == cluster or cluster in platform._Graph(dev_plan).closure(d)
    }
    broken = _without_dependency(dev_plan, "workload-objects", binding.type, graph_dropped)
    assert ("workload-identity", f"{binding.type} 'workload-objects'") in _rules(broken)


@pytest.mark.parametrize(
    ("member", "pool"),
    [
        (
            "principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/"
            "p-1.svc.id.goog/subject/ns/a/sa/b",
            "p-1.svc.id.goog",
        ),
        ("serviceAccount:p-1.svc.id.goog[a/b]", "p-1.svc.id.goog"),
        ("serviceAccount:x@p-1.iam.gserviceaccount.com", None),
    ],
)
def test_workload_identity_members_are_recognised(member, pool):
    assert platform.workload_pool_of(member) == pool


def test_using_a_fresh_grant_without_a_propagation_delay_is_an_error(dev_plan):
    build = dev_plan.one("command:local:Command", "cloud-build")
    delay = dev_plan.one("time:index/sleep:Sleep", "builder-roles-propagation").urn
    broken = _without_dependency(dev_plan, "cloud-build", build.type, {delay})
    rules = [v for v in platform.check(broken) if v.rule == "iam-propagation"]
    assert {v.message.split(" granted")[0] for v in rules} == {
        "uses roles/artifactregistry.writer",
        "uses roles/storage.objectViewer",
        "uses roles/logging.logWriter",
    }


def test_a_delay_shorter_than_the_documented_propagation_does_not_count(dev_plan):
    registrations = [
        dataclasses.replace(r, inputs={**r.inputs, "createDuration": "30s"})
        if r.type == "time:index/sleep:Sleep"
        else r
        for r in dev_plan.registrations
    ]
    broken = dataclasses.replace(dev_plan, registrations=registrations)
    assert any(v.rule == "iam-propagation" for v in platform.check(broken))


def test_a_flex_start_pool_with_upgrade_settings_is_an_error():
    plan = plan_of("dev", consumptionMode="flex-start", compactPlacement=False)
    registrations = [
        dataclasses.replace(
            r,
            inputs={**r.inputs, "upgradeSettings": {"strategy": "SURGE"}},
            ignore_changes=["nodeCount"],
        )
        if r.name == "gpu"
        else r
        for r in plan.registrations
    ]
    broken = dataclasses.replace(plan, registrations=registrations)
    assert [v.rule for v in platform.check(broken)] == [
        "flex-start-upgrades",
        "flex-start-upgrades",
    ]


def test_the_runner_refuses_a_plan_that_breaks_a_rule(monkeypatch):
    monkeypatch.setattr(
        platform,
        "check",
        lambda plan: [platform.Violation("api", "x", "needs y")],
    )
    with pytest.raises(platform.PlatformError, match=r"\[api\] x: needs y"):
        runner.run("dev")


# --- replay ------------------------------------------------------------------


def _wave(steps, typ, name):
    return next(s.wave for s in steps if s.type == typ and s.name == name)


def test_replay_orders_a_first_apply_by_what_waits_for_what(dev_plan):
    steps = platform.replay(dev_plan)
    service = _wave(steps, "gcp:projects/service:Service", "container")
    versions = _wave(
        steps, "gcp:container/getEngineVersions:getEngineVersions", "getEngineVersions"
    )
    cluster = _wave(steps, "gcp:container/cluster:Cluster", "gke")
    binding = _wave(steps, "gcp:storage/bucketIAMMember:BucketIAMMember", "workload-objects")
    pool = _wave(steps, "gcp:container/nodePool:NodePool", "gpu")
    build = _wave(steps, "command:local:Command", "cloud-build")
    server = _wave(steps, "kubernetes:apps/v1:Deployment", "server")
    assert service == 1
    assert service < versions <= cluster < binding
    assert cluster < pool < server and binding < server and build < server
    # Nothing Kubernetes before the cluster (its provider waits for it).
    assert min(s.wave for s in steps if s.type.startswith("kubernetes:")) > cluster


def test_timeline_command_prints_the_sequence(capsys):
    assert platform.main(["dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(" 1. services: Service ")
    assert any("Cluster gke" in line for line in lines)
