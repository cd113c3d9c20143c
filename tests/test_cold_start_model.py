"""benchmarks/cold_start.py: the critical path over the plan's graph, with the run-time wait."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from plan import runner
from tests.conftest import plan_of, transitive_dependencies

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "cold_start.py"
spec = importlib.util.spec_from_file_location("cold_start", SCRIPT)
cold_start = importlib.util.module_from_spec(spec)
sys.modules["cold_start"] = cold_start
spec.loader.exec_module(cold_start)

SHARED = {"weightsSource": "gs://shared/models"}


def path(stack="dev", overrides=None, **scenario):
    overrides = overrides or {}
    plan = plan_of(stack, **overrides)
    return cold_start.critical_path(plan, cold_start.Scenario(stack, "", overrides, **scenario))


def names(steps) -> list[str]:
    return [s.name for s in steps]


def test_the_durations_are_the_sourced_ones():
    # cold-start.md likely values, as the issue lists them.
    assert cold_start.CLUSTER_MINUTES == 12
    assert cold_start.GPU_POOL_MINUTES == 15
    assert cold_start.IMAGE_BUILD_MINUTES == 18
    assert cold_start.DOWNLOAD_TODAY_MINUTES == 38
    # 688 GB at 120 MB/s, row #6's high figure.
    assert cold_start.DOWNLOAD_SLOW_MINUTES == 96
    assert cold_start.SERVER_START_MINUTES == 16
    assert (cold_start.IMAGE_PULL_MINUTES, cold_start.IMAGE_PULL_STREAMING_MINUTES) == (5, 1)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_staging_needs_neither_cluster_nor_pools_nor_the_serving_image(stack):
    plan = plan_of(stack)
    staging = plan.one("command:local:Command", "stage-weights-4")
    waits = [plan.by_urn(u) for u in transitive_dependencies(plan, staging)]
    assert not [r for r in waits if r.type.startswith("gcp:container/")]
    assert not [r for r in waits if r.name == "cloud-build" or r.type.startswith("kubernetes:")]


@pytest.mark.parametrize("whole_download", [38, 96])
def test_dev_serves_within_50_minutes_and_the_cluster_chain_is_critical(whole_download):
    """The issue's figures: download 38 minutes at today's rate (and 96 at the
    slow one) for one client; four builds take a quarter each."""
    total, steps = path(download_minutes=whole_download)
    assert total <= 50
    assert names(steps)[-4:] == ["Cluster gke", "NodePool gpu", "image pull", "server start (16)"]
    assert not any(s.runtime_wait for s in steps)
    # APIs 2 + host VPC 0.7 + subnet 0.7, cluster 12, pool 15, streamed pull 1, start 16.
    assert total == pytest.approx(2 + 0.7 + 0.7 + 12 + 15 + 1 + 16)


def test_four_builds_stage_the_checkpoint_in_a_quarter_of_the_time():
    plan = plan_of("dev")
    staged = cold_start.weights_staged(plan, cold_start.Scenario("dev", "", download_minutes=38))
    delay = 0.2 + 0.2 + 2  # the stager's account, its grant, the IAM propagation delay
    # The largest share: 41 of DeepSeek-R1's 163 files, plus a minute for the build's start.
    assert staged == pytest.approx(2 + delay + 1 + 38 * 41 / 163)
    assert cold_start.share_minutes("_SHARDS=1", 38) == 39
    assert cold_start.share_minutes("_SHARD=0,_SHARDS=2", 38) == pytest.approx(1 + 38 * 82 / 163)


def test_with_one_build_the_run_time_wait_for_the_weights_is_critical():
    total, steps = path(overrides={"weightsStagingBuilds": 1}, download_minutes=38)
    staging = next(s for s in steps if s.name == "Command stage-weights-1")
    wait = next(s for s in steps if s.runtime_wait)
    assert staging.finish - staging.start == 38 + 1
    assert wait.finish == pytest.approx(staging.finish + 0.25)
    assert total == pytest.approx(wait.finish + 16)
    # Still far below the old path (Job after the cluster and the image: ~82 likely).
    assert total < 60


def test_image_streaming_saves_four_minutes_on_the_critical_path():
    streamed, _ = path()
    pulled, _ = path(streaming=False)
    assert pulled - streamed == pytest.approx(4)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_with_pre_staged_weights_the_path_is_cluster_pool_and_start(stack):
    total, steps = path(stack, SHARED)
    assert not [n for n in names(steps) if "stage-weights" in n]
    pool = next(s for s in steps if s.name == "NodePool gpu")
    cluster = next(s for s in steps if s.name == "Cluster gke")
    assert pool.start == pytest.approx(cluster.finish)
    assert total == pytest.approx(cluster.start + 12 + 15 + 1 + 16)


def test_the_report_prints_every_scenario(capsys, monkeypatch):
    # The plans the scenarios need, from the suite's cache (made by runner.run).
    plans = {
        (s.stack, json.dumps(s.overrides, sort_keys=True)): plan_of(s.stack, **s.overrides)
        for s in cold_start.SCENARIOS
    }
    monkeypatch.setattr(
        runner,
        "run",
        lambda stack, overrides=None: plans[(stack, json.dumps(overrides or {}, sort_keys=True))],
    )
    assert cold_start.main() == 0
    out = capsys.readouterr().out
    assert out.count("first token at") == len(cold_start.SCENARIOS)
    assert "(run-time wait)" in out


def test_the_stagers_iam_delay_is_on_the_download_path():
    """The staging build waits 120 s after its grants (IAM propagation): two
    minutes before the download, on the critical path when the download is."""
    assert cold_start.sleep_minutes("120s") == 2.0
    assert cold_start.sleep_minutes("1m30s") == 1.5
    _, steps = path(overrides={"weightsStagingBuilds": 1}, download_minutes=38)
    delay = next(s for s in steps if s.name == "Sleep stager-roles-propagation")
    staging = next(s for s in steps if s.name == "Command stage-weights-1")
    assert delay.finish - delay.start == pytest.approx(2.0)
    assert staging.start == pytest.approx(delay.finish)


def test_a_pod_re_created_on_its_node_is_ready_within_10_minutes():
    """cold-start.md's "pod re-created, same node" rows, likely values, with the
    weights on local SSD; the autotuner's cached tactics (the plan's server sets
    TLLM_AUTOTUNER_CACHE_PATH) take its 2 minutes of profiling off."""
    stages = dict(cold_start.restart_path(plan_of("dev")))
    assert stages["autotuner (row 13)"] == 0.2
    assert sum(stages.values()) == pytest.approx(0.8 + 2 + 1.4 + 3 + 0.5 + 0.2 + 1.5 + 0.3)
    assert sum(stages.values()) <= 10


def test_without_the_autotuner_cache_a_re_created_pod_profiles_again():
    plan = plan_of("dev")
    deployment = plan.one("kubernetes:apps/v1:Deployment")
    (server,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    env = [e for e in server["env"] if e["name"] != "TLLM_AUTOTUNER_CACHE_PATH"]
    stripped = {**server, "env": env}
    fake = SimpleNamespace(
        registrations=[
            SimpleNamespace(
                type="kubernetes:apps/v1:Deployment",
                inputs={"spec": {"template": {"spec": {"containers": [stripped]}}}},
            )
        ]
    )
    stages = dict(cold_start.restart_path(fake))
    assert stages["autotuner (row 13)"] == 2.0
    assert sum(stages.values()) == pytest.approx(11.5)
