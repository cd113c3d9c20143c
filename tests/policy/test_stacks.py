"""The whole pack over the plan of every stack file: no violation, in `up` and in `preview`."""

from __future__ import annotations

import pytest

from plan import runner
from plan.runner import REPO
from tests.conftest import HF_TOKEN_MARKER, plan_of
from tests.policy import adapter

STACKS = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in REPO.glob("Pulumi.*.yaml"))


def _assert_clean(run: adapter.PackRun) -> None:
    assert [(v.policy, v.message) for v in run.violations] == []
    # Validators read unknowns themselves; none may stop on one.
    assert run.unknown == []


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_the_pack(pack, stack, preview):
    run = adapter.run_pack(pack.policies, plan_of(stack), preview=preview)
    _assert_clean(run)
    if not preview:
        assert run.not_applicable == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"serviceType": "InternalLoadBalancer"},
        {"clusterMode": "adopt", "clusterName": "shared-gke"},
        {"imageBuilder": "docker"},
        {
            "imageBuilder": "prebuilt",
            "prebuiltImage": "nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc14",
            "prebuiltBenchmarkImage": "us-docker.pkg.dev/team/images/benchmark:0.13.0",
        },
        # The prod stack's reservation holds A4 machines: preflight would refuse.
        {"machineType": "a3-ultragpu-8g", "preflightChecks": False},
        {"prometheusMetrics": True, "awaitServing": False},
        {
            "paused": True,
            "alertNotificationChannels": ["projects/my-a4-project/notificationChannels/1"],
            "billingAccount": "012345-6789AB-CDEF01",
            "budgetMonthlyAmount": 100,
        },
    ],
    ids=["internal-lb", "adopt", "docker", "prebuilt", "a3-ultra", "metrics", "operated"],
)
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_supported_variants_pass_the_pack(pack, stack, overrides):
    _assert_clean(adapter.run_pack(pack.policies, plan_of(stack, **overrides)))


def test_a_token_in_the_secret_passes_the_pack(pack):
    result = runner.run("dev", secrets={"hfToken": HF_TOKEN_MARKER})
    assert result.of_type("gcp:secretmanager/secretVersion:SecretVersion"), "the token is stored"
    _assert_clean(adapter.run_pack(pack.policies, result))
