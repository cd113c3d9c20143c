"""The serving image resource in each builder mode, under mocks."""

from __future__ import annotations

import re
import shlex
import shutil

import pytest

from infra import image
from infra.values import Secret, reveal
from plan import runner
from tests.conftest import plan_of, transitive_dependencies

COMMAND = "command:local:Command"
DIGEST_REF = re.compile(
    r"^us-central1-docker\.pkg\.dev/my-a4-project/dsr1-images/trtllm-serve@sha256:[0-9a-f]{64}$"
)


def test_cloud_build_is_the_default_and_yields_a_digest_reference(dev_plan):
    build = dev_plan.one(COMMAND, "cloud-build")
    assert build.inputs["triggers"] == [image.context_hash()]
    assert DIGEST_REF.match(dev_plan.outputs["image"]), dev_plan.outputs["image"]


def test_the_build_command_submits_the_context_to_cloud_build_in_the_region(dev_plan):
    args = shlex.split(dev_plan.one(COMMAND, "cloud-build").inputs["create"])
    assert args[:4] == ["gcloud", "builds", "submit", "docker"]
    assert "--region=us-central1" in args and "--project=my-a4-project" in args
    assert "--config=docker/cloudbuild.yaml" in args
    tag = image.context_hash()[:16]
    assert (
        "--substitutions=_REGISTRY=us-central1-docker.pkg.dev/my-a4-project/dsr1-images,"
        f"_IMAGE_NAME=trtllm-serve,_TAG={tag}"
    ) in args
    assert "--gcs-source-staging-dir=gs://my-a4-project-dsr1-data/cloudbuild/source" in args
    builder = dev_plan.one("gcp:serviceaccount/account:Account", "image-builder")
    assert f"--service-account={builder.id}" in args
    assert "--format=value(results.images[0].digest)" in args


def test_the_builder_may_push_to_this_repository_and_read_its_source_only(dev_plan):
    builder = dev_plan.one("gcp:serviceaccount/account:Account", "image-builder").state["member"]
    push = dev_plan.one(
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember", "builder-push"
    )
    assert (push.inputs["role"], push.inputs["repository"], push.inputs["member"]) == (
        "roles/artifactregistry.writer",
        "dsr1-images",
        builder,
    )
    source = dev_plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", "builder-source")
    assert (source.inputs["role"], source.inputs["member"]) == (
        "roles/storage.objectViewer",
        builder,
    )


def test_the_build_waits_for_the_registry_and_grants_but_not_the_cluster(dev_plan):
    build = dev_plan.one(COMMAND, "cloud-build")
    deps = transitive_dependencies(dev_plan, build)
    assert dev_plan.one("gcp:artifactregistry/repository:Repository").urn in deps
    assert (
        dev_plan.one(
            "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember", "builder-push"
        ).urn
        in deps
    )
    for typ in ("gcp:container/cluster:Cluster", "gcp:container/nodePool:NodePool"):
        for reg in dev_plan.of_type(typ):
            assert reg.urn not in deps, f"the build waits for {reg.name}"
    assert build.custom_timeouts["create"] == "130m"


def test_an_unchanged_context_does_not_rebuild(dev_plan):
    again = runner.run("dev")
    assert (
        again.one(COMMAND, "cloud-build").inputs["triggers"]
        == dev_plan.one(COMMAND, "cloud-build").inputs["triggers"]
    )
    assert again.outputs["image"] == dev_plan.outputs["image"]


def test_a_one_line_change_in_docker_rebuilds_with_a_new_digest(dev_plan, tmp_path, monkeypatch):
    context = tmp_path / "docker"
    shutil.copytree(image.DOCKER_DIR, context)
    with (context / "serve.sh").open("a") as script:
        script.write("# one more line\n")
    monkeypatch.setattr(image, "DOCKER_DIR", context)
    changed = runner.run("dev")
    build = changed.one(COMMAND, "cloud-build")
    assert build.inputs["triggers"] != dev_plan.one(COMMAND, "cloud-build").inputs["triggers"]
    assert changed.outputs["image"] != dev_plan.outputs["image"]
    assert DIGEST_REF.match(changed.outputs["image"])


def test_docker_builder_builds_locally_for_amd64_and_pushes_with_a_secret_token():
    plan = plan_of("dev", imageBuilder="docker")
    assert [c for c in plan.of_type(COMMAND) if c.name.startswith("cloud-build")] == []
    built = plan.one("docker:index/image:Image", "docker-build").inputs
    assert built["build"]["platform"] == "linux/amd64"
    assert built["build"]["context"] == "docker"
    assert built["imageName"].startswith(
        "us-central1-docker.pkg.dev/my-a4-project/dsr1-images/trtllm-serve:"
    )
    # The access token makes the whole registry block secret.
    assert isinstance(built["registry"], Secret)
    registry = reveal(built["registry"])
    assert registry["server"] == "us-central1-docker.pkg.dev"
    assert registry["username"] == "oauth2accesstoken"
    assert DIGEST_REF.match(plan.outputs["image"])
    bench = plan.one("docker:index/image:Image", "docker-build-benchmark").inputs
    assert bench["build"]["context"] == "docker/benchmark"
    assert bench["build"]["dockerfile"] == "docker/benchmark/Dockerfile"
    assert bench["imageName"].startswith(
        "us-central1-docker.pkg.dev/my-a4-project/dsr1-images/benchmark:"
    )


def test_prebuilt_images_are_used_as_given_with_nothing_built():
    ref = "us-docker.pkg.dev/team/images/trtllm-serve@sha256:" + "b" * 64
    bench = "us-docker.pkg.dev/team/images/benchmark:0.13.0-1"
    plan = plan_of("dev", imageBuilder="prebuilt", prebuiltImage=ref, prebuiltBenchmarkImage=bench)
    assert [c for c in plan.of_type(COMMAND) if c.name.startswith("cloud-build")] == []
    assert plan.of_type("docker:index/image:Image") == []
    assert plan.outputs["image"] == ref
    job = next(j for j in plan.of_type("kubernetes:batch/v1:Job") if j.name == "benchmark")
    assert job.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == bench


def test_prebuilt_with_the_benchmark_needs_a_pinned_benchmark_image():
    from infra.config import ConfigError

    ref = "us-docker.pkg.dev/team/images/trtllm-serve@sha256:" + "b" * 64
    with pytest.raises(ConfigError) as caught:
        runner.run("dev", overrides={"imageBuilder": "prebuilt", "prebuiltImage": ref})
    assert caught.value.problems == [
        "prebuiltBenchmarkImage: required with imageBuilder prebuilt and benchmarkEnabled "
        "(the AIPerf image built from docker/benchmark/)"
    ]
    with pytest.raises(ConfigError) as caught:
        runner.run(
            "dev",
            overrides={
                "imageBuilder": "prebuilt",
                "prebuiltImage": ref,
                "prebuiltBenchmarkImage": "us-docker.pkg.dev/team/images/benchmark:latest",
            },
        )
    assert caught.value.problems[0].startswith("prebuiltBenchmarkImage: ")
    assert "`latest` moves" in caught.value.problems[0]


def test_the_benchmark_image_is_a_second_cloud_build_of_its_own_context(dev_plan):
    build = dev_plan.one(COMMAND, "cloud-build-benchmark")
    args = shlex.split(build.inputs["create"])
    assert args[:4] == ["gcloud", "builds", "submit", "docker/benchmark"]
    assert "--config=docker/benchmark/cloudbuild.yaml" in args
    tag = image.context_hash(image.DOCKER_DIR / "benchmark")[:16]
    assert (
        "--substitutions=_REGISTRY=us-central1-docker.pkg.dev/my-a4-project/dsr1-images,"
        f"_IMAGE_NAME=benchmark,_TAG={tag}"
    ) in args
    builder = dev_plan.one("gcp:serviceaccount/account:Account", "image-builder")
    assert f"--service-account={builder.id}" in args  # the same builder, no second account
    assert build.inputs["triggers"] == [image.context_hash(image.DOCKER_DIR / "benchmark")]
    assert build.inputs["triggers"] != dev_plan.one(COMMAND, "cloud-build").inputs["triggers"]


def test_a_change_in_the_benchmark_context_does_not_rebuild_the_server(
    dev_plan, tmp_path, monkeypatch
):
    context = tmp_path / "docker"
    shutil.copytree(image.DOCKER_DIR, context)
    with (context / "benchmark" / "run_benchmarks.py").open("a") as script:
        script.write("# one more line\n")
    monkeypatch.setattr(image, "DOCKER_DIR", context)
    changed = runner.run("dev")
    assert (
        changed.one(COMMAND, "cloud-build").inputs["triggers"]
        == dev_plan.one(COMMAND, "cloud-build").inputs["triggers"]
    )
    assert (
        changed.one(COMMAND, "cloud-build-benchmark").inputs["triggers"]
        != dev_plan.one(COMMAND, "cloud-build-benchmark").inputs["triggers"]
    )


@pytest.mark.parametrize(
    "ref", ["nvcr.io/nvidia/tensorrt-llm/release:latest", "nvcr.io/nvidia/tensorrt-llm/release"]
)
def test_prebuilt_latest_or_untagged_is_refused(ref):
    from infra.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        runner.run("dev", overrides={"imageBuilder": "prebuilt", "prebuiltImage": ref})
    assert caught.value.problems[0].startswith("prebuiltImage:")


def test_the_plan_shows_the_digest_as_unknown_until_apply(dev_plan):
    from plan import report

    assert "trtllm-serve@<computed:cloud-build.digest>" in report.render_text(dev_plan)
