"""Critical path of a cold `pulumi up` to the first served token, over the plan's real graph.

    python benchmarks/cold_start.py            (dev and prod, each scenario)

The program runs under the plan's mocks (plan/runner.py); every registration
with its dependencies is a node. Each node gets a duration (minutes, likely
values of /work/shared/reference/cold-start.md, the sources named in
DURATIONS); the serving Deployment also waits, at run time, for the staged
weights (its init container polls for the completion marker), an edge the
graph does not have, so it is added here (the last of the parallel staging
builds to finish writes the marker). The earliest finish of every node
is its duration after the latest finish of what it waits for; the critical
path is walked back from the Deployment.

An estimate, not a measurement: replace the figures with the timeline of a
real deployment (`python -m clients.timeline gs://BUCKET/timeline/`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Minutes, likely values. cold-start.md rows: #1 APIs/VPCs/NAT/IAM 4 in all,
# #2 cluster + system pool 12, #3 A4 pool 15, #4 image build 18, #6 download
# 38 at today's 300 MB/s, #7 image pull 5 (1 with image streaming, [S10][S11]),
# #8-#15 server start 16 (marker poll, ranks, weight read, load, JIT, autotune,
# CUDA graphs, /health).
API_MINUTES = 2.0  # gcp Service: half of row #1
NETWORK_MINUTES = 0.7  # each VPC, subnet, router, NAT: the other half of #1 along its chain
IAM_MINUTES = 0.2  # a service account or a binding
OTHER_MINUTES = 0.1  # buckets, repositories, Kubernetes objects
CLUSTER_MINUTES = 12.0
SYSTEM_POOL_MINUTES = 3.0  # inside row #2's 12, in parallel with the GPU pool
GPU_POOL_MINUTES = 15.0
IMAGE_BUILD_MINUTES = 18.0
# The whole checkpoint, 688 GB, through one client (row #6): 300 MB/s likely
# ("today's rate": 2-4 Gbps seen on 10 Gbps nodes [S22]; a steady ~300 MB/s per
# client with fixed Xet concurrency, huggingface_hub#4893), 120 MB/s high.
DOWNLOAD_TODAY_MINUTES = 38.0
DOWNLOAD_SLOW_MINUTES = 96.0
# Each staging build downloads its share (docker/weights/fetch_weights.py
# shard_files) at one client's rate: the parallel builds are separate VMs with
# their own NIC, CPUs and disk, and the Hub documents request limits (resolvers
# per 5 minutes), not a bandwidth limit per client (hub-docs rate-limits.md).
# DeepSeek-R1-0528 is 163 safetensors files of ~4.2 GB (model-000NN-of-000163).
CHECKPOINT_FILES = 163
STAGER_OVERHEAD_MINUTES = 1.0  # pip install, the Hub listing, the last upload, the check
IMAGE_PULL_MINUTES = 5.0
IMAGE_PULL_STREAMING_MINUTES = 1.0
MARKER_POLL_MINUTES = 0.25  # half of the 15 s poll, rounded up (row #8)
SERVER_START_MINUTES = 16.0

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SLEEP = "time:index/sleep:Sleep"
COMMAND = "command:local:Command"
IMAGE_BUILD = (COMMAND, "cloud-build")


def is_staging(reg) -> bool:
    return reg.type == COMMAND and reg.name.startswith("stage-weights")


def share_minutes(create: str, whole_minutes: float) -> float:
    """One staging build's minutes: the largest share of the checkpoint's files
    among `_SHARDS` builds (its `gcloud builds submit` substitutions)."""
    found = re.search(r"_SHARDS=([0-9]+)", create)
    builds = int(found.group(1)) if found else 1
    largest_share = -(-CHECKPOINT_FILES // builds)  # equal files: ceil(files / builds)
    return STAGER_OVERHEAD_MINUTES + whole_minutes * largest_share / CHECKPOINT_FILES


@dataclass
class Scenario:
    stack: str
    label: str
    overrides: dict = field(default_factory=dict)
    # One client's time for the whole checkpoint; each build takes its share.
    download_minutes: float = DOWNLOAD_TODAY_MINUTES
    streaming: bool = True


@dataclass(frozen=True)
class Step:
    name: str
    start: float
    finish: float
    runtime_wait: bool = False


def sleep_minutes(text: str) -> float:
    """A Go duration such as `120s`, `2m` or `1m30s`, in minutes."""
    scale = {"h": 60.0, "m": 1.0, "s": 1 / 60}
    return sum(float(n) * scale[u] for n, u in re.findall(r"([0-9.]+)([hms])", text))


def duration(reg, scenario: Scenario) -> float:
    """Minutes a registration takes to create (0 for components and providers)."""
    if not reg.custom or reg.type.startswith("pulumi:providers:"):
        return 0.0
    key = (reg.type, reg.name)
    if reg.type == "gcp:projects/service:Service":
        return API_MINUTES
    if reg.type.startswith(("gcp:compute/network", "gcp:compute/subnetwork", "gcp:compute/router")):
        return NETWORK_MINUTES
    if reg.type == "gcp:container/cluster:Cluster":
        return CLUSTER_MINUTES
    if reg.type == "gcp:container/nodePool:NodePool":
        return GPU_POOL_MINUTES if reg.name == "gpu" else SYSTEM_POOL_MINUTES
    if key == IMAGE_BUILD or reg.type == "docker:index/image:Image":
        return IMAGE_BUILD_MINUTES
    if is_staging(reg):
        return share_minutes(str(reg.inputs.get("create") or ""), scenario.download_minutes)
    if reg.type == SLEEP:
        # An IAM propagation delay (infra/propagation.py): its createDuration.
        return sleep_minutes(str(reg.inputs.get("createDuration") or ""))
    if "IAM" in reg.type or "iAM" in reg.type or "serviceaccount" in reg.type:
        return IAM_MINUTES
    if reg.type == DEPLOYMENT:
        return 0.0  # modelled in `critical_path`: pull, run-time wait, start
    return OTHER_MINUTES


class Schedule:
    """Earliest finish of every registration: its duration after the latest
    finish of what it waits for; `came_from` names that latest wait."""

    def __init__(self, plan, scenario: Scenario):
        self.scenario = scenario
        self.by_urn = {r.urn: r for r in plan.registrations}
        self.finish: dict[str, float] = {}
        self.came_from: dict[str, str | None] = {}

    def visit(self, urn: str) -> float:
        if urn in self.finish:
            return self.finish[urn]
        reg = self.by_urn[urn]
        ready, before = 0.0, None
        for dep in reg.dependencies:
            if self.visit(dep) > ready:
                ready, before = self.finish[dep], dep
        self.finish[urn] = ready + duration(reg, self.scenario)
        self.came_from[urn] = before
        return self.finish[urn]


def weights_staged(plan, scenario: Scenario) -> float | None:
    """When the last staging build finishes (None: nothing is staged)."""
    schedule = Schedule(plan, scenario)
    builds = [schedule.visit(r.urn) for r in plan.registrations if is_staging(r)]
    return max(builds, default=None)


def critical_path(plan, scenario: Scenario) -> tuple[float, list[Step]]:
    """(minutes to the first served token, the steps on the critical path)."""
    schedule = Schedule(plan, scenario)
    staging = [r for r in plan.registrations if is_staging(r)]
    deployment = next(r for r in plan.registrations if r.type == DEPLOYMENT)
    scheduled = max((schedule.visit(dep) for dep in deployment.dependencies), default=0.0)
    pulled = scheduled + (
        IMAGE_PULL_MINUTES if not scenario.streaming else IMAGE_PULL_STREAMING_MINUTES
    )
    weights_ready, last_build = 0.0, None
    if staging:  # the init container's run-time wait for the marker, after the last build
        last_build = max(staging, key=lambda r: schedule.visit(r.urn))
        weights_ready = schedule.visit(last_build.urn) + MARKER_POLL_MINUTES
    serving = max(pulled, weights_ready) + SERVER_START_MINUTES

    steps = [Step("server start (16)", max(pulled, weights_ready), serving)]
    if weights_ready > pulled:
        steps.append(Step("wait for the staged weights", pulled, weights_ready, runtime_wait=True))
        assert last_build is not None
        urn: str | None = last_build.urn
    else:
        steps.append(Step("image pull", scheduled, pulled))
        urn = max(deployment.dependencies, key=lambda d: schedule.finish[d], default=None)
    while urn is not None:
        reg = schedule.by_urn[urn]
        took = duration(reg, scenario)
        if took:
            finish = schedule.finish[urn]
            steps.append(Step(f"{reg.type.split(':')[-1]} {reg.name}", finish - took, finish))
        urn = schedule.came_from[urn]
    return serving, list(reversed(steps))


# A serving pod re-created on a node that served before (a `Recreate` rollout,
# an eviction, a crash): cold-start.md's "pod re-created, same node" column,
# likely values, with the weights on the node's local SSD (row 10's restart
# figure). Autotuning (row 13) profiles every op and shape again unless the
# server keeps its tactics (TLLM_AUTOTUNER_CACHE_PATH, read by TensorRT-LLM's
# model_engine._run_autotuner_warmup; a cache hit skips profiling); then only
# the cache file is read: 0.2 minutes, an assumption.
RESTART_STAGES = (
    ("old pod's termination, volume mounts (row 8b)", 0.8),
    ("trtllm-serve: ranks, imports, NCCL (row 9)", 2.0),
    ("weights from the node's local SSD (row 10)", 1.4),
    ("safetensors to 8 GPUs, FP8 transforms (row 11)", 3.0),
    ("DeepGEMM kernels from the bucket's JIT cache (row 12)", 0.5),
    ("autotuner (row 13)", 2.0),
    ("CUDA graph capture (row 14)", 1.5),
    ("/health -> ready (row 15)", 0.3),
)
AUTOTUNE_CACHED_MINUTES = 0.2


def server_env(plan) -> dict[str, str]:
    deployment = next(r for r in plan.registrations if r.type == DEPLOYMENT)
    (server,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: str(e.get("value", "")) for e in server.get("env", [])}


def restart_path(plan) -> list[tuple[str, float]]:
    """The stages of a re-created pod on the same node, in minutes."""
    cached = "TLLM_AUTOTUNER_CACHE_PATH" in server_env(plan)
    return [
        (name, AUTOTUNE_CACHED_MINUTES if cached and name.startswith("autotuner") else minutes)
        for name, minutes in RESTART_STAGES
    ]


SCENARIOS = (
    Scenario("dev", "dev: 4 staging builds at today's rate, image streaming"),
    Scenario(
        "dev", "dev: 4 staging builds at the slow rate", download_minutes=DOWNLOAD_SLOW_MINUTES
    ),
    Scenario("dev", "dev: 1 staging build at today's rate", {"weightsStagingBuilds": 1}),
    Scenario("dev", "dev: no image streaming", streaming=False),
    Scenario("dev", "dev: pre-staged weightsSource", {"weightsSource": "gs://shared/models"}),
    Scenario("prod", "prod: 4 staging builds at today's rate, image streaming"),
    Scenario("prod", "prod: pre-staged weightsSource", {"weightsSource": "gs://shared/models"}),
)


def main() -> int:
    from plan import runner

    for scenario in SCENARIOS:
        plan = runner.run(scenario.stack, overrides=scenario.overrides)
        total, steps = critical_path(plan, scenario)
        print(f"{scenario.label}: first token at {total:.1f} min")
        staged = weights_staged(plan, scenario)
        if staged is not None and not any(step.runtime_wait for step in steps):
            print(f"    (weights staged at {staged:.1f}, off the critical path)")
        for step in steps:
            wait = "  (run-time wait)" if step.runtime_wait else ""
            print(f"    {step.start:5.1f} -> {step.finish:5.1f}  {step.name}{wait}")
    stages = restart_path(runner.run("dev"))
    print(f"dev: pod re-created on the same node: ready after {sum(m for _, m in stages):.1f} min")
    for name, minutes in stages:
        print(f"    {minutes:5.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
