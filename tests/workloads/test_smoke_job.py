"""The smoke-check Job, under mocks: what it runs, where its verdict goes, when it runs."""

from __future__ import annotations

from clients import smoke as client
from plan.runner import REPO
from tests.conftest import plan_of
from workloads import smoke

JOB = "kubernetes:batch/v1:Job"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def smoke_job(plan):
    (job,) = [j for j in plan.of_type(JOB) if j.name == "smoke-check"]
    return job


def pod_spec(job) -> dict:
    return job.inputs["spec"]["template"]["spec"]


def command(plan) -> list[str]:
    return pod_spec(smoke_job(plan))["containers"][0]["command"]


def test_on_by_default_in_every_stack(dev_plan, prod_plan):
    for plan in (dev_plan, prod_plan):
        assert smoke_job(plan)
        assert plan.outputs["smokeCheckVerdict"].startswith("gs://")


def test_off_when_disabled():
    plan = plan_of("dev", smokeCheckEnabled=False)
    assert [j.name for j in plan.of_type(JOB) if j.name == "smoke-check"] == []
    assert "smokeCheck" not in plan.outputs and "smokeCheckVerdict" not in plan.outputs
    assert [c.name for c in plan.of_type(CONFIG_MAP)] == ["llm-options"]


def test_runs_the_client_script_from_a_config_map_against_the_service(dev_plan):
    (script,) = [c for c in dev_plan.of_type(CONFIG_MAP) if c.name == "script"]
    assert script.inputs["data"] == {"smoke.py": (REPO / "clients" / "smoke.py").read_text()}
    spec = pod_spec(smoke_job(dev_plan))
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["script"]["configMap"]["name"] == script.inputs["metadata"]["name"]
    run = script.inputs["metadata"]["name"].removeprefix("dsr1-smoke-check-")
    assert command(dev_plan) == [
        "python3",
        "-I",
        "/opt/smoke/smoke.py",
        "--base-url=http://dsr1-trtllm-serve.deepseek.svc.cluster.local:8000/v1",
        "--model=DeepSeek-R1-0528",
        "--wait=600",
        f"--out=/results/{run}/verdict.json",
        "--termination-log=/dev/termination-log",
    ]
    # The script accepts exactly these arguments.
    args = client.parse_args(command(dev_plan)[3:])
    assert args.model == "DeepSeek-R1-0528" and args.wait == 600


def test_a_small_pinned_image_on_the_system_pool(dev_plan):
    spec = pod_spec(smoke_job(dev_plan))
    container = spec["containers"][0]
    assert container["image"].startswith("docker.io/library/python:3.11.15-slim-trixie@sha256:")
    assert len(container["image"].split("@sha256:")[1]) == 64
    assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "system"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_it_runs_as_a_high_non_root_uid_that_owns_its_results_mount(dev_plan):
    spec = pod_spec(smoke_job(dev_plan))
    context = spec["containers"][0]["securityContext"]
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"]) == (10001, 10001)
    (results,) = [v for v in spec["volumes"] if v["name"] == "results"]
    options = results["csi"]["volumeAttributes"]["mountOptions"].split(",")
    assert {"uid=10001", "gid=10001"} <= set(options)


def test_its_summary_becomes_the_jobs_message_and_a_failure_is_final(dev_plan):
    job = smoke_job(dev_plan)
    container = pod_spec(job)["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "terminationMessagePath" not in container  # the default, /dev/termination-log
    assert job.inputs["spec"]["backoffLimit"] == 0
    assert pod_spec(job)["restartPolicy"] == "Never"
    # Awaited by `pulumi up` (no skipAwait), for longer than the check can take.
    assert "pulumi.com/skipAwait" not in (job.inputs["metadata"].get("annotations") or {})
    assert job.inputs["spec"]["activeDeadlineSeconds"] == 600 + 1800
    assert job.custom_timeouts == {"create": "45m", "update": "45m"}


def test_the_verdict_goes_to_the_bucket_and_is_a_stack_output(dev_plan):
    spec = pod_spec(smoke_job(dev_plan))
    results = {v["name"]: v for v in spec["volumes"]}["results"]["csi"]
    assert results["volumeAttributes"]["bucketName"] == "my-a4-project-dsr1-data"
    assert results["volumeAttributes"]["mountOptions"].startswith("only-dir=smoke,")
    assert results["readOnly"] is False
    out = next(a for a in command(dev_plan) if a.startswith("--out="))
    run = out.split("/")[2]
    url = f"gs://my-a4-project-dsr1-data/smoke/{run}/verdict.json"
    assert dev_plan.outputs["smokeCheckVerdict"] == url
    # Under mocks the Job reports no status: the output says it has not finished.
    assert dev_plan.outputs["smokeCheck"] == (
        f"pending (not finished when `pulumi up` returned): "
        f"`kubectl -n deepseek logs job/dsr1-smoke-check-{run}`; verdict: {url}"
    )


def test_the_result_output_follows_the_job_status():
    logs, url = "kubectl -n ns logs job/j", "gs://b/smoke/r/verdict.json"
    assert smoke.job_result(1, None, logs, url) == "passed; verdict: gs://b/smoke/r/verdict.json"
    assert smoke.job_result(None, 1, logs, url) == (
        "failed: `kubectl -n ns logs job/j`; verdict: gs://b/smoke/r/verdict.json"
    )
    assert smoke.job_result(0, 0, logs, url).startswith("pending")


def test_it_runs_after_the_server_and_before_the_benchmark(dev_plan):
    deployment = dev_plan.one("kubernetes:apps/v1:Deployment").urn
    job = smoke_job(dev_plan)
    assert deployment in job.dependencies
    (benchmark,) = [j for j in dev_plan.of_type(JOB) if j.name == "benchmark"]
    assert job.urn in benchmark.dependencies


def test_without_await_it_waits_for_the_server_itself():
    plan = plan_of("dev", awaitServing=False)
    job = smoke_job(plan)
    assert job.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    # weightsMinutes 180 + startupMinutes 60 + 10, in seconds
    assert "--wait=15000" in command(plan)
    assert job.inputs["spec"]["activeDeadlineSeconds"] == 15000 + 1800


def test_it_checks_again_only_when_the_server_changes(dev_plan):
    base = smoke_job(dev_plan).inputs["metadata"]["name"]
    assert smoke_job(plan_of("dev")).inputs["metadata"]["name"] == base
    assert smoke_job(plan_of("dev", benchmarkEnabled=False)).inputs["metadata"]["name"] == base
    for change in ({"servingProfile": "throughput"}, {"nodeCount": 2}, {"model": "nvfp4"}):
        assert smoke_job(plan_of("dev", **change)).inputs["metadata"]["name"] != base, change


def test_the_run_id_covers_the_script():
    from infra.config import parse

    cfg = parse(
        {
            "project": "my-a4-project",
            "region": "us-central1",
            "zone": "us-central1-b",
            "masterAuthorizedCidrs": ["203.0.113.7/32"],
            "consumptionMode": "spot",
        }
    )
    one = smoke.run_id("image", cfg, "max_seq_len: 2068\n", "print(1)")
    assert len(one) == 12 and one == smoke.run_id("image", cfg, "max_seq_len: 2068\n", "print(1)")
    assert one != smoke.run_id("image", cfg, "max_seq_len: 2068\n", "print(2)")
    assert one != smoke.run_id("other", cfg, "max_seq_len: 2068\n", "print(1)")
    assert one != smoke.run_id("image", cfg, "max_seq_len: 8192\n", "print(1)")
    int(one, 16)  # a hex digest: a valid suffix of a Kubernetes name
