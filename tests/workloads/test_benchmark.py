"""The benchmark Job, under mocks."""

from __future__ import annotations

import re

import pytest

from tests.conftest import plan_of
from workloads import benchmark

JOB = "kubernetes:batch/v1:Job"
BENCH_REF = re.compile(
    r"^us-central1-docker\.pkg\.dev/my-a4-project/dsr1-images/benchmark@sha256:[0-9a-f]{64}$"
)


def benchmark_job(plan):
    (job,) = [j for j in plan.of_type(JOB) if j.name == "benchmark"]
    return job


def container_of(job) -> dict:
    return job.inputs["spec"]["template"]["spec"]["containers"][0]


def env_of(job) -> dict:
    return {e["name"]: e.get("value") for e in container_of(job)["env"]}


def test_enabled_in_dev_and_off_by_default_in_prod(dev_plan, prod_plan):
    assert benchmark_job(dev_plan)
    assert "benchmark" not in [j.name for j in prod_plan.of_type(JOB)]
    assert "benchmarkResults" not in prod_plan.outputs
    # The serving image and the weights staging, but no benchmark image.
    commands = sorted(c.name for c in prod_plan.of_type("command:local:Command"))
    assert commands == ["cloud-build", *(f"stage-weights-{n}" for n in (1, 2, 3, 4))]


def test_runs_aiperf_from_its_own_image_not_the_serving_one(dev_plan):
    container = container_of(benchmark_job(dev_plan))
    assert BENCH_REF.match(container["image"]), container["image"]
    assert container["image"] != dev_plan.outputs["image"]
    assert dev_plan.outputs["benchmarkImage"] == container["image"]
    assert "command" not in container  # the image's entrypoint: run_benchmarks.py


def test_the_default_matrix_has_the_seeds_case_nvidias_shapes_and_the_slo_search(dev_plan):
    env = env_of(benchmark_job(dev_plan))
    assert env["BASE_URL"] == "http://dsr1-trtllm-serve.deepseek.svc.cluster.local:8000"
    assert env["MODEL"] == "DeepSeek-R1-0528"
    assert env["TOKENIZER"] == "/models/deepseek-ai/DeepSeek-R1-0528"
    cases = env["MATRIX"].split(",")
    assert "512x128x8" in cases  # the seed recipe's 512/128 at batch 8
    assert {"1024x1024x1", "1024x2048x1"} <= set(cases)  # NVIDIA's shapes, min latency
    assert "1024x1024xslo" in cases
    # MLPerf v5.1 DeepSeek-R1 server limits: TTFT 2 s, 12.5 tokens/s/user at p99.
    assert (env["SLO_TTFT_MS"], env["SLO_TPOT_MS"]) == ("2000", "80")
    assert env["EXTRA_INPUTS"] == "ignore_eos:true"
    assert env["PROMPTS_PER_USER"] == "5"
    assert "HF_HUB_OFFLINE" not in env  # AIPerf 0.13 would look for a hub cache entry


def test_gpu_metrics_are_read_from_managed_prometheus_with_a_viewer_grant(dev_plan):
    env = env_of(benchmark_job(dev_plan))
    assert env["PROJECT"] == "my-a4-project"
    assert env["DCGM_SELECTOR"] == (
        'exported_namespace="deepseek",exported_pod=~"dsr1-trtllm-serve-.*"'
    )
    grant = dev_plan.one("gcp:projects/iAMMember:IAMMember", "benchmark-metrics-reader")
    assert grant.inputs["role"] == "roles/monitoring.viewer"
    assert grant.inputs["project"] == "my-a4-project"
    # The benchmark's own Kubernetes service account: the server never holds the role.
    assert grant.inputs["member"] == (
        "principal://iam.googleapis.com/projects/<computed:project.number>/locations/global/"
        "workloadIdentityPools/my-a4-project.svc.id.goog/subject/ns/deepseek/sa/dsr1-benchmark"
    )
    job = benchmark_job(dev_plan)
    assert job.inputs["spec"]["template"]["spec"]["serviceAccountName"] == "dsr1-benchmark"
    (wait,) = [
        s for s in dev_plan.of_type("time:index/sleep:Sleep")
        if s.name == "benchmark-roles-propagation"
    ]  # fmt: skip
    assert grant.urn in wait.dependencies and wait.urn in job.dependencies
    # The grant follows the cluster (its identity pool), not the server: its
    # delay runs while the server starts; the Job itself waits for the server.
    assert dev_plan.one("gcp:container/cluster:Cluster").urn in grant.dependencies
    deployment = dev_plan.one("kubernetes:apps/v1:Deployment").urn
    assert deployment not in grant.dependencies and deployment in job.dependencies


def test_the_benchmark_account_writes_results_and_reads_a_shared_checkpoint_read_only():
    plan = plan_of("dev", weightsSource="gs://team-weights/r1")
    grants = {
        g.name: (g.inputs["bucket"], g.inputs["role"])
        for g in plan.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
        if g.inputs["member"].endswith("/sa/dsr1-benchmark")
    }
    assert grants == {
        "benchmark-objects": ("my-a4-project-dsr1-data", "roles/storage.objectUser"),
        "benchmark-reads-weights": ("team-weights", "roles/storage.objectViewer"),
    }


def test_it_runs_as_non_root_with_a_read_only_root_and_owns_the_results_mount(dev_plan):
    job = benchmark_job(dev_plan)
    context = container_of(job)["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    volumes = {v["name"]: v for v in job.inputs["spec"]["template"]["spec"]["volumes"]}
    options = volumes["results"]["csi"]["volumeAttributes"]["mountOptions"].split(",")
    assert {"only-dir=benchmarks", "uid=10001", "gid=10001"} <= set(options)
    assert "uid=10001" not in volumes["models"]["csi"]["volumeAttributes"]["mountOptions"]
    assert volumes["tmp"]["emptyDir"]["sizeLimit"] == "8Gi"
    mounts = {m["name"]: m["mountPath"] for m in container_of(job)["volumeMounts"]}
    assert mounts == {"models": "/models", "results": "/results", "tmp": "/tmp"}


def test_results_go_to_the_bucket_under_a_run_id(dev_plan):
    env = env_of(benchmark_job(dev_plan))
    run = env["RESULT_DIR"].removeprefix("/results/")
    assert dev_plan.outputs["benchmarkResults"] == f"gs://my-a4-project-dsr1-data/benchmarks/{run}"
    assert (
        dev_plan.outputs["benchmarkReport"]
        == f".venv/bin/python -m clients.report gs://my-a4-project-dsr1-data/benchmarks/{run}"
    )
    metadata = dict(pair.split("=") for pair in env["METADATA"].split())
    assert metadata["run_id"] == run
    assert (metadata["precision"], metadata["profile"], metadata["tp"], metadata["ep"]) == (
        "fp8",
        "latency",
        "8",
        "8",
    )
    assert metadata["gpu"] == "nvidia-b200" and metadata["max_seq_len"] == "40960"


def test_the_run_id_changes_with_what_the_results_depend_on(dev_plan, tmp_path, monkeypatch):
    base = env_of(benchmark_job(dev_plan))["RESULT_DIR"]
    assert env_of(benchmark_job(plan_of("dev")))["RESULT_DIR"] == base
    for change in (
        {"servingProfile": "throughput"},
        {"benchmarkMatrix": ["1024x1024x8"]},
        {"model": "nvfp4"},
        {"maxSeqLen": 65536},
    ):
        assert env_of(benchmark_job(plan_of("dev", **change)))["RESULT_DIR"] != base, change


def test_a_new_benchmark_image_is_a_new_run(dev_plan, tmp_path, monkeypatch):
    import shutil

    from infra import image
    from plan import runner

    context = tmp_path / "docker"
    shutil.copytree(image.DOCKER_DIR, context)
    with (context / "benchmark" / "run_benchmarks.py").open("a") as script:
        script.write("# one more line\n")
    monkeypatch.setattr(image, "DOCKER_DIR", context)
    changed = runner.run("dev")  # not the cached plan
    assert (
        env_of(benchmark_job(changed))["RESULT_DIR"]
        != env_of(benchmark_job(dev_plan))["RESULT_DIR"]
    )
    assert changed.outputs["image"] == dev_plan.outputs["image"]  # the server is untouched


def test_the_benchmark_waits_for_the_server_deployment(dev_plan):
    deployment = dev_plan.one("kubernetes:apps/v1:Deployment").urn
    assert deployment in benchmark_job(dev_plan).dependencies


def test_a_failed_run_is_not_retried(dev_plan):
    spec = benchmark_job(dev_plan).inputs["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("case", ["512x128x8", "1024x1024xslo"])
def test_run_id_is_a_short_hash(case):
    from infra.config import parse

    config = parse(
        {
            "project": "my-a4-project",
            "region": "us-central1",
            "zone": "us-central1-b",
            "masterAuthorizedCidrs": ["203.0.113.7/32"],
            "consumptionMode": "spot",
            "benchmarkMatrix": [case],
        }
    )
    run = benchmark.run_id("abc", config, "max_seq_len: 2068\n")
    assert len(run) == 12 and run == benchmark.run_id("abc", config, "max_seq_len: 2068\n")
    assert run != benchmark.run_id("abd", config, "max_seq_len: 2068\n")
    assert run != benchmark.run_id("abc", config, "max_seq_len: 8192\n")


def test_the_tokenizer_is_read_where_the_checkpoint_lives(dev_plan):
    """The stack's own staged folder by default; a pre-staged weightsSource otherwise."""

    def models_volume(plan):
        volumes = benchmark_job(plan).inputs["spec"]["template"]["spec"]["volumes"]
        (models,) = [v for v in volumes if v["name"] == "models"]
        attributes = models["csi"]["volumeAttributes"]
        return attributes["bucketName"], attributes["mountOptions"].split(",")

    bucket, options = models_volume(dev_plan)
    assert bucket == dev_plan.outputs["bucket"] and "only-dir=models" in options
    shared = plan_of("dev", weightsSource="gs://team-weights/r1/staged")
    bucket, options = models_volume(shared)
    assert bucket == "team-weights" and "only-dir=r1/staged" in options
