"""Pause mode: the plan of a paused stack against the running one.

Pausing must change only what costs GPU money (the server's replicas, the GPU
pool's nodes) and drop what needs a running server (the smoke check, the
benchmark); the cluster, the bucket with the weights and JIT cache, the
registry, the image and the weights staging stay exactly as they are, so resuming
is a cold start without the download.
"""

from __future__ import annotations

import pytest

from plan import report
from tests.conftest import plan_of

POOL = "gcp:container/nodePool:NodePool"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def by_key(plan) -> dict[tuple[str, str], object]:
    return {(r.type, r.name): r for r in plan.registrations if r.custom}


def changed_fields(before, after) -> list[str]:
    old = dict(report.flatten(report.plain(before.inputs)))
    new = dict(report.flatten(report.plain(after.inputs)))
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def plan_diff(running, paused):
    a, b = by_key(running), by_key(paused)
    removed = sorted(a.keys() - b.keys())
    added = sorted(b.keys() - a.keys())
    changed = {}
    for key in a.keys() & b.keys():
        fields = changed_fields(a[key], b[key])
        options = report.options_of(a[key]) != report.options_of(b[key])
        if fields or options:
            changed[key] = fields + (["[options]"] if options else [])
    return removed, added, changed


@pytest.mark.parametrize(
    ("stack", "nodes", "removed"),
    [
        (
            "dev",
            1,
            [
                # The benchmark Job, its account and grants; the benchmark image stays.
                ("gcp:projects/iAMMember:IAMMember", "benchmark-metrics-reader"),
                ("gcp:storage/bucketIAMMember:BucketIAMMember", "benchmark-objects"),
                ("kubernetes:batch/v1:Job", "benchmark"),
                ("kubernetes:batch/v1:Job", "smoke-check"),
                ("kubernetes:core/v1:ConfigMap", "script"),
                ("kubernetes:core/v1:ServiceAccount", "benchmark"),
                ("time:index/sleep:Sleep", "benchmark-roles-propagation"),
            ],
        ),
        (
            "prod",
            2,
            [
                ("kubernetes:batch/v1:Job", "smoke-check"),
                ("kubernetes:core/v1:ConfigMap", "script"),
            ],
        ),
    ],
)
def test_pausing_changes_only_the_replicas_and_the_gpu_nodes(stack, nodes, removed):
    running, paused = plan_of(stack), plan_of(stack, paused=True)
    gone, added, changed = plan_diff(running, paused)
    assert gone == removed
    assert added == []
    assert changed == {(DEPLOYMENT, "server"): ["spec.replicas"], (POOL, "gpu"): ["nodeCount"]}
    assert running.one(DEPLOYMENT).inputs["spec"]["replicas"] == nodes
    assert paused.one(DEPLOYMENT).inputs["spec"]["replicas"] == 0
    assert running.one(POOL, "gpu").inputs["nodeCount"] == nodes
    assert paused.one(POOL, "gpu").inputs["nodeCount"] == 0


def test_the_bucket_image_weights_and_cluster_are_untouched():
    running, paused = plan_of("prod"), plan_of("prod", paused=True)
    a, b = by_key(running), by_key(paused)
    kept = [
        ("gcp:storage/bucket:Bucket", "data"),
        ("gcp:container/cluster:Cluster", "gke"),
        (POOL, "system"),
        ("gcp:artifactregistry/repository:Repository", "images"),
        ("command:local:Command", "stage-weights-1"),
    ]
    for key in kept:
        assert key in a and key in b, key
        assert changed_fields(a[key], b[key]) == [], key
        assert report.options_of(a[key]) == report.options_of(b[key]), key
    # The image the server runs is the same build.
    assert running.outputs["image"] == paused.outputs["image"]
    assert paused.one("gcp:storage/bucket:Bucket").protect is True


def test_the_outputs_say_it_is_paused():
    running, paused = plan_of("dev"), plan_of("dev", paused=True)
    assert running.outputs["paused"] is False and paused.outputs["paused"] is True
    assert set(running.outputs) - set(paused.outputs) == {
        "smokeCheck",
        "smokeCheckVerdict",
        "benchmarkResults",
        "benchmarkReport",
    }
    for key in set(paused.outputs) - {"paused"}:
        assert paused.outputs[key] == running.outputs[key], key


def test_a_flex_start_pool_keeps_its_range_and_the_autoscaler_empties_it():
    settings = {
        "consumptionMode": "flex-start",
        "compactPlacement": False,
        "gkeVersionPrefix": "1.33.",
    }
    running, paused = plan_of("dev", **settings), plan_of("dev", paused=True, **settings)
    _, _, changed = plan_diff(running, paused)
    assert changed == {(DEPLOYMENT, "server"): ["spec.replicas"]}
    assert paused.one(POOL, "gpu").inputs["autoscaling"]["totalMinNodeCount"] == 0


def test_pausing_a_reservation_warns_that_it_is_still_billed():
    paused = plan_of("prod", paused=True)
    assert any(w.startswith("paused: a specific reservation is billed") for w in paused.warnings)
    assert not any(w.startswith("paused:") for w in plan_of("dev", paused=True).warnings)


def test_resuming_runs_the_smoke_check_again():
    running = plan_of("dev")
    resumed = plan_of("dev", paused=False)
    names = [j.inputs["metadata"]["name"] for j in running.of_type("kubernetes:batch/v1:Job")]
    assert names == [
        j.inputs["metadata"]["name"] for j in resumed.of_type("kubernetes:batch/v1:Job")
    ]
    assert any(n.startswith("dsr1-smoke-check-") for n in names)
