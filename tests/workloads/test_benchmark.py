"""The benchmark Job, under mocks."""

from __future__ import annotations

import pytest

from tests.conftest import plan_of
from workloads import benchmark

JOB = "kubernetes:batch/v1:Job"


def benchmark_job(plan):
    (job,) = [j for j in plan.of_type(JOB) if j.name == "benchmark"]
    return job


def env_of(job) -> dict:
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_enabled_in_dev_and_off_by_default_in_prod(dev_plan, prod_plan):
    assert benchmark_job(dev_plan)
    assert [j.name for j in prod_plan.of_type(JOB)] == ["fetch-weights"]
    assert "benchmarkResults" not in prod_plan.outputs


def test_runs_the_matrix_against_the_service_with_the_serving_image(dev_plan):
    job = benchmark_job(dev_plan)
    env = env_of(job)
    assert env["BASE_URL"] == "http://dsr1-trtllm-serve.deepseek.svc.cluster.local:8000"
    assert env["MODEL"] == "DeepSeek-R1-0528"
    assert env["TOKENIZER"] == "/models/deepseek-ai/DeepSeek-R1-0528"
    assert env["MATRIX"] == "512x128x1,512x128x8,1024x256x8,1024x1024x1,1024x1024x64"
    assert "512x128x8" in env["MATRIX"] and "1024x256x8" in env["MATRIX"]  # the seed's cases
    # NVIDIA's methodology: 5 x concurrency prompts per case (shared/reference/trtllm-deepseek.md).
    assert env["PROMPTS_PER_USER"] == "5"
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == dev_plan.outputs["image"]
    assert container["command"] == ["python3", "/opt/deepseek/run_benchmarks.py"]


def test_results_go_to_the_bucket_under_a_run_id(dev_plan):
    env = env_of(benchmark_job(dev_plan))
    run = env["RESULT_DIR"].removeprefix("/results/")
    assert dev_plan.outputs["benchmarkResults"] == f"gs://my-a4-project-dsr1-data/benchmarks/{run}"
    assert (
        dev_plan.outputs["benchmarkReport"]
        == f"python -m clients.report gs://my-a4-project-dsr1-data/benchmarks/{run}"
    )
    volumes = {
        v["name"]: v["csi"]
        for v in benchmark_job(dev_plan).inputs["spec"]["template"]["spec"]["volumes"]
    }
    assert "only-dir=benchmarks" in volumes["results"]["volumeAttributes"]["mountOptions"]
    assert volumes["results"]["readOnly"] is False
    metadata = dict(pair.split("=") for pair in env["METADATA"].split())
    assert metadata["run_id"] == run
    assert (metadata["precision"], metadata["profile"], metadata["tp"], metadata["ep"]) == (
        "fp8",
        "latency",
        "8",
        "8",
    )
    assert metadata["gpu"] == "nvidia-b200"


def test_the_run_id_changes_with_what_the_results_depend_on(dev_plan):
    base = env_of(benchmark_job(dev_plan))["RESULT_DIR"]
    assert env_of(benchmark_job(plan_of("dev")))["RESULT_DIR"] == base
    for change in (
        {"servingProfile": "throughput"},
        {"benchmarkMatrix": ["1024x1024x8"]},
        {"model": "nvfp4"},
    ):
        assert env_of(benchmark_job(plan_of("dev", **change)))["RESULT_DIR"] != base, change


def test_the_benchmark_waits_for_the_server_deployment(dev_plan):
    deployment = dev_plan.one("kubernetes:apps/v1:Deployment").urn
    assert deployment in benchmark_job(dev_plan).dependencies


def test_a_failed_run_is_not_retried(dev_plan):
    spec = benchmark_job(dev_plan).inputs["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("case", ["512x128x8", "1024x1024x64"])
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
    run = benchmark.run_id("abc", config)
    assert len(run) == 12 and run == benchmark.run_id("abc", config) != benchmark.run_id(
        "abd", config
    )
