"""Preflight checks (infra/preflight.py): both outcomes of each, against the mocks.

The mocks' PlatformFacts stand for the project; each test makes one fact
missing and expects one clear message naming the setting to change, with no
GPU node pool registered.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from infra.preflight import PreflightError, gpu_quota_metric, quota_id
from plan import runner
from plan.mocks import CapturingMonitor, PlanMocks, PlatformFacts, Reservation

POOL = "gcp:container/nodePool:NodePool"


def preflight_problems(stack: str, facts: PlatformFacts, **overrides) -> list[str]:
    monitor = CapturingMonitor(PlanMocks(facts=facts))
    with pytest.raises(PreflightError) as caught:
        runner.run(stack, overrides=overrides, monitor=monitor)
    assert not [r for r in monitor.registrations if r.type == POOL and r.name == "gpu"], (
        "the GPU pool was registered although a check failed"
    )
    return caught.value.problems


def passes(stack: str, facts: PlatformFacts, **overrides) -> bool:
    plan = runner.run(stack, overrides=overrides, monitor=CapturingMonitor(PlanMocks(facts=facts)))
    return plan.one(POOL, "gpu").inputs["nodeLocations"] == ["us-central1-b"]


def test_the_machine_type_must_be_offered_in_the_zone():
    assert passes("dev", PlatformFacts())
    facts = PlatformFacts(machine_types={"us-central1-b": {"e2-standard-8"}})
    (problem,) = preflight_problems("dev", facts)
    assert problem.startswith("machineType: a4-highgpu-8g is not offered in zone us-central1-b")
    assert "set zone" in problem


def test_the_zone_must_have_the_roce_network_profile():
    facts = PlatformFacts(roce_zones={"us-central1-a"})
    (problem,) = preflight_problems("dev", facts)
    assert problem.startswith("zone: us-central1-b has no RoCE network profile")
    assert "us-central1-b-vpc-roce" in problem


def test_the_reservation_must_exist():
    assert passes("prod", PlatformFacts())
    (problem,) = preflight_problems("prod", PlatformFacts(reservations={}))
    assert problem.startswith("reservationName: no reservation a4-dense-reservation in zone")


def test_the_reservation_must_hold_the_machine_type_and_enough_nodes():
    facts = PlatformFacts(
        reservations={
            ("my-a4-project", "a4-dense-reservation"): Reservation(
                "a3-ultragpu-8g", 2, "us-central1-b", in_use=1
            )
        }
    )
    problems = preflight_problems("prod", facts)
    assert any(
        p.startswith("reservationName: a4-dense-reservation reserves a3-ultragpu-8g")
        for p in problems
    )
    assert any(p.startswith("nodeCount: 2 nodes need room") and "has 1 free" in p for p in problems)


def test_a_named_reservation_block_must_exist_and_have_room():
    assert passes("prod", PlatformFacts(), reservationBlock="block-1")
    (problem,) = preflight_problems("prod", PlatformFacts(), reservationBlock="block-9")
    assert problem.startswith("reservationBlock: no block block-9 in reservation")
    small = PlatformFacts()
    small.reservations[("my-a4-project", "a4-dense-reservation")].blocks["block-1"] = (2, 1)
    (problem,) = preflight_problems("prod", small, reservationBlock="block-1")
    assert problem.startswith("reservationBlock: block-1 has room for 1 nodes, not nodeCount 2")


@pytest.mark.parametrize(
    ("mode", "quota"),
    [
        ("spot", "PREEMPTIBLE-NVIDIA-B200-GPUS-per-project-region"),
        ("flex-start", "PREEMPTIBLE-NVIDIA-B200-GPUS-per-project-region"),
        ("on-demand", "NVIDIA-B200-GPUS-per-project-region"),
    ],
)
def test_without_a_reservation_the_gpu_quota_must_cover_the_nodes(mode, quota):
    overrides = {"consumptionMode": mode, "compactPlacement": False, "nodeCount": 2}
    assert passes("dev", PlatformFacts(quotas={quota: {"us-central1": 16}}), **overrides)
    facts = PlatformFacts(quotas={quota: {"us-central1": 8, "us-east5": 64}})
    (problem,) = preflight_problems("dev", facts, **overrides)
    assert problem.startswith(f"consumptionMode: {mode} needs 16 GPUs of quota")
    assert "the limit is 8" in problem


def test_quota_names_follow_compute_engine_metrics():
    assert gpu_quota_metric("nvidia-b200", "spot") == "PREEMPTIBLE_NVIDIA_B200_GPUS"
    assert gpu_quota_metric("nvidia-b200", "on-demand") == "NVIDIA_B200_GPUS"
    assert quota_id("NVIDIA_B200_GPUS") == "NVIDIA-B200-GPUS-per-project-region"


def test_an_adopted_cluster_subnets_must_exist_under_the_configured_names():
    adopt = {
        "clusterMode": "adopt",
        "clusterName": "gke-a4",
        "gvnicNetworkName": "gke-a4-net-1",
        "gvnicSubnetName": "gke-a4-sub-1",
        "rdmaNetworkName": "gke-a4-rdma-net",
        "rdmaSubnetPrefix": "gke-a4-rdma-sub",
    }
    existing = {("us-central1", "gke-a4-sub-1")} | {
        ("us-central1", f"gke-a4-rdma-sub-{i}") for i in range(8)
    }
    assert passes("dev", PlatformFacts(subnetworks=existing), **adopt)
    derived = {**adopt, "gvnicSubnetName": None, "rdmaSubnetPrefix": None}
    problems = preflight_problems("dev", PlatformFacts(subnetworks=existing), **derived)
    assert [p.split(":")[0] for p in problems] == ["gvnicSubnetName", "rdmaSubnetPrefix"]
    assert "gke-a4-net-1-sub" in problems[0] and "gke-a4-rdma-net-sub-7" in problems[1]


def test_checks_can_be_switched_off():
    facts = PlatformFacts(roce_zones=set())
    assert passes("dev", facts, preflightChecks=False)


def run_cli(capsys, *args) -> SimpleNamespace:
    """`python -m plan preflight ARGS` in this process (the module's main, as
    `python -m plan` calls it; a process start-up imports the SDKs again, ~2 s)."""
    from plan.__main__ import main

    code = main(["preflight", *args])
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def test_the_preflight_command_lists_the_checks_and_exits_by_outcome(capsys):
    done = run_cli(capsys, "prod")
    assert done.returncode == 0, done.stderr
    assert "reservation exists and fits: getReservation(name=a4-dense-reservation" in done.stdout
    failed = run_cli(capsys, "dev", "--set", "zone=us-central1-c")
    assert failed.returncode == 1
    assert "machineType: a4-highgpu-8g is not offered in zone us-central1-c" in failed.stderr
    assert "Traceback" not in failed.stderr
