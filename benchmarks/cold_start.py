"""Critical path of a cold `pulumi up` to the first served token, over the plan's real graph.

    python benchmarks/cold_start.py            (dev and prod, each scenario)

The program runs under the plan's mocks (plan/runner.py); every registration
with its dependencies is a node. Each node gets a duration (minutes, likely
values of /work/shared/reference/cold-start.md, the sources named in
DURATIONS); the serving Deployment also waits, at run time, for the staged
weights (its init container polls for the completion marker), an edge the
graph does not have, so it is added here. The earliest finish of every node
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
DOWNLOAD_TODAY_MINUTES = 38.0  # 688 GB at 300 MB/s: the Job through GCS FUSE (row #6, likely)
# The staging build: 688 GB at 600 MB/s (row #6's low figure: hf_transfer targets
# ">~500 MB/s" [S22]); hf_xet measured 17.5 Gbps (2.2 GB/s) on a 61 GB, 13-shard
# repository on a ~17 Gbps host (unslothai/unsloth-zoo#972), so 600 MB/s leaves
# room on a 32-vCPU E2 (16 Gbps). Plus ~1 minute: pip install, listing, the last
# upload.
DOWNLOAD_STAGER_MINUTES = 688e9 / 600e6 / 60 + 1.0
IMAGE_PULL_MINUTES = 5.0
IMAGE_PULL_STREAMING_MINUTES = 1.0
MARKER_POLL_MINUTES = 0.25  # half of the 15 s poll, rounded up (row #8)
SERVER_START_MINUTES = 16.0

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SLEEP = "time:index/sleep:Sleep"
STAGING = ("command:local:Command", "stage-weights")
IMAGE_BUILD = ("command:local:Command", "cloud-build")


@dataclass
class Scenario:
    stack: str
    label: str
    overrides: dict = field(default_factory=dict)
    download_minutes: float = DOWNLOAD_STAGER_MINUTES
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
    if key == STAGING:
        return scenario.download_minutes
    if reg.type == SLEEP:
        # An IAM propagation delay (infra/propagation.py): its createDuration.
        return sleep_minutes(str(reg.inputs.get("createDuration") or ""))
    if "IAM" in reg.type or "iAM" in reg.type or "serviceaccount" in reg.type:
        return IAM_MINUTES
    if reg.type == DEPLOYMENT:
        return 0.0  # modelled in `critical_path`: pull, run-time wait, start
    return OTHER_MINUTES


def critical_path(plan, scenario: Scenario) -> tuple[float, list[Step]]:
    """(minutes to the first served token, the steps on the critical path)."""
    by_urn = {r.urn: r for r in plan.registrations}
    finish: dict[str, float] = {}
    came_from: dict[str, str | None] = {}
    staging = next((r for r in plan.registrations if (r.type, r.name) == STAGING), None)

    def visit(urn: str) -> float:
        if urn in finish:
            return finish[urn]
        reg = by_urn[urn]
        ready, before = 0.0, None
        for dep in reg.dependencies:
            if visit(dep) > ready:
                ready, before = finish[dep], dep
        finish[urn] = ready + duration(reg, scenario)
        came_from[urn] = before
        return finish[urn]

    deployment = next(r for r in plan.registrations if r.type == DEPLOYMENT)
    scheduled = max((visit(dep) for dep in deployment.dependencies), default=0.0)
    pulled = scheduled + (
        IMAGE_PULL_MINUTES if not scenario.streaming else IMAGE_PULL_STREAMING_MINUTES
    )
    weights_ready = 0.0
    if staging is not None:  # the init container's run-time wait for the marker
        weights_ready = visit(staging.urn) + MARKER_POLL_MINUTES
    serving = max(pulled, weights_ready) + SERVER_START_MINUTES

    steps = [Step("server start (16)", max(pulled, weights_ready), serving)]
    if weights_ready > pulled:
        steps.append(Step("wait for the staged weights", pulled, weights_ready, runtime_wait=True))
        urn: str | None = staging.urn
    else:
        steps.append(Step("image pull", scheduled, pulled))
        urn = max(deployment.dependencies, key=lambda d: finish[d], default=None)
    while urn is not None:
        reg = by_urn[urn]
        took = duration(reg, scenario)
        if took:
            steps.append(
                Step(f"{reg.type.split(':')[-1]} {reg.name}", finish[urn] - took, finish[urn])
            )
        urn = came_from[urn]
    return serving, list(reversed(steps))


SCENARIOS = (
    Scenario("dev", "dev: staging build, image streaming"),
    Scenario(
        "dev", "dev: staging at today's download rate", download_minutes=DOWNLOAD_TODAY_MINUTES
    ),
    Scenario("dev", "dev: no image streaming", streaming=False),
    Scenario("dev", "dev: pre-staged weightsSource", {"weightsSource": "gs://shared/models"}),
    Scenario("prod", "prod: staging build, image streaming"),
    Scenario("prod", "prod: pre-staged weightsSource", {"weightsSource": "gs://shared/models"}),
)


def main() -> int:
    from plan import runner

    for scenario in SCENARIOS:
        plan = runner.run(scenario.stack, overrides=scenario.overrides)
        total, steps = critical_path(plan, scenario)
        print(f"{scenario.label}: first token at {total:.1f} min")
        for step in steps:
            wait = "  (run-time wait)" if step.runtime_wait else ""
            print(f"    {step.start:5.1f} -> {step.finish:5.1f}  {step.name}{wait}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
