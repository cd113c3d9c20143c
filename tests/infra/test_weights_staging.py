"""Where the weights come from: the staging build's place in the graph, or a pre-staged bucket."""

from __future__ import annotations

import shlex

import pytest

from infra.config import ConfigError
from plan import runner
from plan.mocks import CapturingMonitor, PlanMocks
from tests.conftest import plan_of, transitive_dependencies

COMMAND = "command:local:Command"
BUCKET_IAM = "gcp:storage/bucketIAMMember:BucketIAMMember"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
WORKLOAD = (
    "principal://iam.googleapis.com/projects/<computed:project.number>/locations/global/"
    "workloadIdentityPools/my-a4-project.svc.id.goog/subject/ns/deepseek/sa/trtllm-serving"
)


def staging(plan, number: int = 1):
    return plan.one(COMMAND, f"stage-weights-{number}")


def builds(plan) -> list:
    return sorted(
        (c for c in plan.of_type(COMMAND) if c.name.startswith("stage-weights")),
        key=lambda c: c.name,
    )


def substitutions_of(command) -> dict[str, str]:
    args = shlex.split(command.inputs["create"])
    flag = next(a for a in args if a.startswith("--substitutions="))
    return dict(item.split("=", 1) for item in flag.removeprefix("--substitutions=").split(","))


def argv(plan) -> list[str]:
    return shlex.split(staging(plan).inputs["create"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_staging_waits_only_for_apis_bucket_and_iam(stack):
    plan = plan_of(stack)
    waits = [
        plan.by_urn(urn) for build in builds(plan) for urn in transitive_dependencies(plan, build)
    ]
    types = {r.type for r in waits}
    assert "gcp:storage/bucket:Bucket" in types
    assert "gcp:projects/service:Service" in types
    # Not the cluster, not a node pool, not the serving image, nothing in Kubernetes.
    assert not types & {"gcp:container/cluster:Cluster", "gcp:container/nodePool:NodePool"}
    assert not any(r.type.startswith(("kubernetes:", "docker:")) for r in waits)
    assert not any(r.type == COMMAND and r.name == "cloud-build" for r in waits)
    allowed = (
        "gcp:projects/service:Service",
        "gcp:storage/bucket:Bucket",
        "gcp:serviceaccount/account:Account",
        "gcp:storage/bucketIAMMember:BucketIAMMember",
        "gcp:projects/iAMMember:IAMMember",
        "gcp:secretmanager/",
        "pulumi:providers:gcp",
        # IAM propagation waits after the stager's grants (pulumiverse time).
        "time:index/sleep:Sleep",
    )
    assert all(r.type.startswith(allowed) for r in waits), sorted(types)


def test_the_build_runs_the_stager_as_its_own_account_with_the_stacks_budget(dev_plan):
    args = argv(dev_plan)
    assert args[:4] == ["gcloud", "builds", "submit", "docker/weights"]
    assert "--config=docker/weights/cloudbuild.yaml" in args
    assert "--region=us-central1" in args and "--project=my-a4-project" in args
    assert "--timeout=10800s" in args  # weightsMinutes 180
    assert "--gcs-source-staging-dir=gs://my-a4-project-dsr1-data/cloudbuild/weights-source" in args
    account = "dsr1-weights-stager@my-a4-project.iam.gserviceaccount.com"
    assert f"--service-account=projects/my-a4-project/serviceAccounts/{account}" in args
    assert substitutions_of(staging(dev_plan)) == {
        "_MODEL_ID": "deepseek-ai/DeepSeek-R1-0528",
        "_MODEL_REVISION": "main",
        "_BUCKET": "my-a4-project-dsr1-data",
        "_PREFIX": "models",
        "_TIMELINE_PREFIX": "timeline",
        "_HF_TOKEN_SECRET": "",
        "_SHARD": "0",
        "_SHARDS": "4",
    }
    command = staging(dev_plan)
    assert command.custom_timeouts["create"] == "190m"
    grants = {
        r.inputs["role"]: r
        for r in dev_plan.registrations
        if r.type in (BUCKET_IAM, "gcp:projects/iAMMember:IAMMember")
        and r.inputs.get("member") == f"serviceAccount:{account}"
    }
    assert set(grants) == {"roles/storage.objectUser", "roles/logging.logWriter"}
    assert grants["roles/storage.objectUser"].inputs["bucket"] == "my-a4-project-dsr1-data"
    assert all(g.urn in command.dependencies for g in grants.values())
    assert staging(plan_of("dev", weightsMinutes=60)).custom_timeouts == {
        "create": "70m",
        "update": "70m",
    }


def test_four_builds_by_default_each_a_share_on_8_vcpus(dev_plan):
    """Four builds, shares 0-3 of 4, on e2-highcpu-8: the 32 vCPUs one
    E2_HIGHCPU_32 build used, against the region's concurrent-vCPU quota."""
    staged = builds(dev_plan)
    assert [c.name for c in staged] == [f"stage-weights-{n}" for n in (1, 2, 3, 4)]
    assert [(substitutions_of(c)["_SHARD"], substitutions_of(c)["_SHARDS"]) for c in staged] == [
        ("0", "4"),
        ("1", "4"),
        ("2", "4"),
        ("3", "4"),
    ]
    for command in staged:
        assert "--machine-type=e2-highcpu-8" in shlex.split(command.inputs["create"])
        # All four start together: none waits for another.
        assert not {c.urn for c in staged} & set(transitive_dependencies(dev_plan, command))
    # Changing the split re-runs them (a rerun skips what is staged).
    assert staged[1].inputs["triggers"][3] == "2/4"


def test_one_build_takes_the_whole_checkpoint_on_32_vcpus():
    (only,) = builds(plan_of("dev", weightsStagingBuilds=1))
    args = shlex.split(only.inputs["create"])
    assert only.name == "stage-weights-1"
    assert "--machine-type=e2-highcpu-32" in args
    assert (substitutions_of(only)["_SHARD"], substitutions_of(only)["_SHARDS"]) == ("0", "1")


@pytest.mark.parametrize("value", ["0", "9"])
def test_the_number_of_builds_is_bounded(value):
    with pytest.raises(
        ConfigError, match=f"weightsStagingBuilds: {value} is not allowed; expected 1 to 8"
    ):
        plan_of("dev", weightsStagingBuilds=value)


def test_the_build_reruns_when_the_checkpoint_or_its_revision_changes(dev_plan):
    triggers = staging(dev_plan).inputs["triggers"]
    other = staging(plan_of("dev", modelRevision="v2")).inputs["triggers"]
    nvfp4 = staging(plan_of("dev", model="nvfp4")).inputs["triggers"]
    assert triggers[0] == "deepseek-ai/DeepSeek-R1-0528" and other[1] == "v2"
    assert len({str(triggers), str(other), str(nvfp4)}) == 3


def test_the_apis_the_staging_and_image_streaming_need_are_enabled(dev_plan):
    services = {r.inputs["service"] for r in dev_plan.of_type("gcp:projects/service:Service")}
    assert {
        "cloudbuild.googleapis.com",
        "secretmanager.googleapis.com",
        "containerfilesystem.googleapis.com",
    } <= services


# --- pre-staged source -------------------------------------------------------

SHARED = "gs://team-weights/checkpoints/r1"


def test_a_pre_staged_source_registers_no_download_and_grants_read_only_access():
    plan = plan_of("dev", weightsSource=SHARED)
    # Only the image builds: no staging command.
    assert sorted(c.name for c in plan.of_type(COMMAND)) == ["cloud-build", "cloud-build-benchmark"]
    accounts = [r.inputs["accountId"] for r in plan.of_type("gcp:serviceaccount/account:Account")]
    assert "dsr1-weights-stager" not in accounts
    grants = [
        r
        for r in plan.of_type(BUCKET_IAM)
        if r.inputs["bucket"] == "team-weights" and "/sa/dsr1-benchmark" not in r.inputs["member"]
    ]
    assert len(grants) == 1
    assert grants[0].inputs["role"] == "roles/storage.objectViewer"
    assert grants[0].inputs["member"] == WORKLOAD
    # The server waits for the grant (an input of its pod), and reads there, read-only.
    deployment = plan.one(DEPLOYMENT)
    assert grants[0].urn in transitive_dependencies(plan, deployment)
    volumes = {v["name"]: v for v in deployment.inputs["spec"]["template"]["spec"]["volumes"]}
    models = volumes["models"]["csi"]
    assert models["readOnly"] is True
    assert models["volumeAttributes"]["bucketName"] == "team-weights"
    assert "only-dir=checkpoints/r1" in models["volumeAttributes"]["mountOptions"].split(",")
    # The stack's own bucket keeps the timeline and the JIT cache.
    assert volumes["timeline"]["csi"]["volumeAttributes"]["bucketName"] == "my-a4-project-dsr1-data"
    assert (
        plan.outputs["weights"] == "gs://team-weights/checkpoints/r1/deepseek-ai/DeepSeek-R1-0528"
    )


def test_the_default_source_is_the_stacks_bucket(dev_plan):
    assert dev_plan.outputs["weights"] == (
        "gs://my-a4-project-dsr1-data/models/deepseek-ai/DeepSeek-R1-0528"
    )
    readers = [r for r in dev_plan.of_type(BUCKET_IAM) if r.inputs["role"].endswith("objectViewer")]
    assert all(r.inputs["member"] != WORKLOAD for r in readers)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("team-weights/models", "expected gs://BUCKET/PREFIX"),
        ("gs://Team_Weights/models", "bucket 'Team_Weights'"),
        ("gs://team-weights//models", "plain folder path"),
        ("gs://team-weights/../x", "plain folder path"),
    ],
)
def test_a_bad_source_is_refused_before_anything_is_created(value, why):
    monitor = CapturingMonitor(PlanMocks())
    with pytest.raises(ConfigError) as caught:
        runner.run("dev", overrides={"weightsSource": value}, monitor=monitor)
    (problem,) = [p for p in caught.value.problems if p.startswith("weightsSource:")]
    assert f'"{value}"' in problem and why in problem
    assert monitor.registrations == []


def test_a_token_beside_a_pre_staged_source_is_unused_and_said_so():
    plan = runner.run("dev", overrides={"weightsSource": SHARED}, secrets={"hfToken": "hf_x"})
    assert any(w.startswith("hfToken: not used with weightsSource") for w in plan.warnings)
    assert plan.of_type("gcp:secretmanager/secret:Secret") == []


# --- image streaming ---------------------------------------------------------


@pytest.mark.parametrize("pool", ["system", "gpu"])
def test_both_pools_stream_images(dev_plan, pool):
    node_config = dev_plan.one("gcp:container/nodePool:NodePool", pool).inputs["nodeConfig"]
    assert node_config["gcfsConfig"] == {"enabled": True}
    # Image streaming's requirements: COS with containerd.
    assert node_config["imageType"] == "COS_CONTAINERD"


def test_the_node_account_may_use_image_streaming(dev_plan):
    roles = {
        r.inputs["role"]
        for r in dev_plan.of_type("gcp:projects/iAMMember:IAMMember")
        if r.inputs["member"].startswith("serviceAccount:dsr1-gpu-nodes@")
    }
    assert "roles/serviceusage.serviceUsageConsumer" in roles
    subnet = dev_plan.one("gcp:compute/subnetwork:Subnetwork", "host").inputs
    assert subnet["privateIpGoogleAccess"] is True
