"""The build context: Dockerfile, build config and scripts, checked by their own tools."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from infra import image

REPO = Path(__file__).resolve().parent.parent
TOOLS = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=str(TOOLS)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; it comes from requirements-dev.txt")
    return path


def shell_scripts() -> list[Path]:
    skip = {"venv", "out", "node_modules"}
    scripts = [
        p
        for p in REPO.rglob("*.sh")
        if not any(part.startswith(".venv") or part in skip for part in p.relative_to(REPO).parts)
    ]
    scripts += [REPO / ".ci" / "run"]
    return sorted(scripts)


def test_the_base_image_is_nvidia_tensorrt_llm_pinned_by_version():
    parser = DockerfileParser(path=str(image.DOCKER_DIR / "Dockerfile"))
    base = image.base_image()
    assert parser.baseimage == base  # FROM uses the one ARG
    repository, tag = base.rsplit(":", 1)
    assert repository == "nvcr.io/nvidia/tensorrt-llm/release"
    assert tag != "latest" and tag[0].isdigit()


def test_the_dockerfile_adds_only_pinned_packages_and_no_secrets():
    parser = DockerfileParser(path=str(image.DOCKER_DIR / "Dockerfile"))
    for instruction in parser.structure:
        value = instruction["value"]
        if instruction["instruction"] == "RUN" and "pip install" in value:
            packages = [
                w
                for w in value.split()
                if not w.startswith("-") and w not in ("python3", "pip", "install")
            ]
            assert all("==" in p for p in packages), f"unpinned: {value}"
        assert "TOKEN" not in value.upper() or instruction["instruction"] == "COMMENT"
        assert instruction["instruction"] not in ("ADD",), "COPY only: no remote URLs in the build"


CONTEXTS = [image.DOCKER_DIR, image.DOCKER_DIR / "benchmark"]


@pytest.mark.parametrize("context", CONTEXTS, ids=["serving", "benchmark"])
def test_every_file_the_dockerfile_copies_is_in_the_build_context(context):
    parser = DockerfileParser(path=str(context / "Dockerfile"))
    sent = {p.relative_to(context).as_posix() for p in image.context_files(context)}
    copied = [
        source
        for i in parser.structure
        if i["instruction"] == "COPY"
        for source in i["value"].split()[:-1]
    ]
    assert copied
    for source in copied:
        assert any(fnmatch.fnmatch(name, source) for name in sent), source


@pytest.mark.parametrize("context", CONTEXTS, ids=["serving", "benchmark"])
def test_hadolint_passes_on_the_dockerfile(context):
    done = subprocess.run(
        [tool("hadolint"), str(context / "Dockerfile")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_benchmark_image_is_a_pinned_slim_python_with_pinned_aiperf():
    dockerfile = image.DOCKER_DIR / "benchmark" / "Dockerfile"
    base = image.base_image(dockerfile, "PYTHON_BASE_IMAGE")
    assert DockerfileParser(path=str(dockerfile)).baseimage == base
    assert base == "docker.io/library/python:3.11.13-slim-bookworm"
    requirements = (image.DOCKER_DIR / "benchmark" / "requirements-aiperf.txt").read_text()
    assert "aiperf==0.13.0" in requirements.splitlines()
    pins = [
        line
        for line in (image.DOCKER_DIR / "benchmark" / "constraints-aiperf.txt")
        .read_text()
        .splitlines()
        if line and not line.startswith("#")
    ]
    assert all("==" in pin and "+" not in pin for pin in pins)
    assert "aiperf==0.13.0" in pins and not any(p.startswith(("torch==", "tensorrt")) for p in pins)
    parser = DockerfileParser(path=str(dockerfile))
    assert parser.structure[-1]["value"].startswith(
        '["python3", "/opt/benchmark/run_benchmarks.py"'
    )
    assert any(i["instruction"] == "USER" and i["value"] == "10001:10001" for i in parser.structure)


def test_the_serving_build_checks_the_profiles_against_the_release_database():
    parser = DockerfileParser(path=str(image.DOCKER_DIR / "Dockerfile"))
    runs = [i["value"] for i in parser.structure if i["instruction"] == "RUN"]
    assert any("check_profiles.py /opt/deepseek/profiles" in r for r in runs)
    assert parser.args["PROFILE_DATABASE"] == "/app/tensorrt_llm/examples/configs/database"


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck_passes_on_every_shell_script(script):
    done = subprocess.run(
        [tool("shellcheck"), "--severity=style", str(script)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_shell_scripts_are_executable():
    for script in shell_scripts():
        assert os.access(script, os.X_OK), script


def test_the_benchmark_cloud_build_pushes_the_substituted_image():
    build = yaml.safe_load((image.DOCKER_DIR / "benchmark" / "cloudbuild.yaml").read_text())
    target = "${_REGISTRY}/${_IMAGE_NAME}:${_TAG}"
    assert build["images"] == [target]
    assert f"--tag={target}" in build["steps"][0]["args"]
    assert build["substitutions"]["_IMAGE_NAME"] == image.BENCHMARK.name == "benchmark"
    assert ":" in build["steps"][0]["name"] and not build["steps"][0]["name"].endswith(":latest")


def test_cloud_build_config_pushes_the_substituted_image_with_room_for_the_base():
    build = yaml.safe_load((image.DOCKER_DIR / "cloudbuild.yaml").read_text())
    assert set(build["substitutions"]) == {"_REGISTRY", "_IMAGE_NAME", "_TAG"}
    target = "${_REGISTRY}/${_IMAGE_NAME}:${_TAG}"
    assert build["images"] == [target]
    assert f"--tag={target}" in build["steps"][0]["args"]
    assert ":" in build["steps"][0]["name"] and not build["steps"][0]["name"].endswith(":latest")
    assert build["options"]["diskSizeGb"] >= 200
    assert build["options"]["machineType"].startswith("E2_HIGHCPU")
    assert build["timeout"].endswith("s") and int(build["timeout"][:-1]) >= 3600


def test_the_weights_stager_build_is_pinned_and_sized_within_cloud_builds_limits():
    build = yaml.safe_load((REPO / "docker" / "weights" / "cloudbuild.yaml").read_text())
    (step,) = build["steps"]
    repository, tag = step["name"].rsplit(":", 1)
    assert repository == "docker.io/library/python" and tag[0].isdigit() and tag.count(".") == 2
    env = dict(item.split("=", 1) for item in step["env"])
    assert env["HF_XET_HIGH_PERFORMANCE"] == "1"
    assert "HF_HUB_ENABLE_HF_TRANSFER" not in env  # ignored by huggingface_hub >= 1.0
    assert env["BUILD_ID"] == "$BUILD_ID"
    assert not any("TOKEN=" in item for item in step["env"])  # only the secret's name
    # Cloud Build v1 BuildOptions: diskSizeGb at most 4000; E2_HIGHCPU_32 the largest
    # default-pool machine; a user-specified account needs CLOUD_LOGGING_ONLY (or a bucket).
    assert 690 <= build["options"]["diskSizeGb"] <= 4000
    assert build["options"]["machineType"] == "E2_HIGHCPU_32"
    assert build["options"]["logging"] == "CLOUD_LOGGING_ONLY"


def test_the_stager_installs_exact_pins_and_the_versions_the_tests_run():
    pins = {}
    for line in (REPO / "docker" / "weights" / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"unpinned: {line}"
            pins[name.lower().replace("_", "-")] = version
    tested = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        tested[name.strip().lower().replace("_", "-")] = version.strip()
    for package in ("huggingface-hub", "hf-xet", "google-cloud-storage"):
        assert pins[package] == tested[package], package


def test_context_hash_follows_content_names_and_mode_but_not_ignored_files(tmp_path):
    context = tmp_path / "docker"
    shutil.copytree(image.DOCKER_DIR, context)
    first = image.context_hash(context)
    assert image.context_hash(context) == first
    (context / "notes.txt").write_text("not sent: .dockerignore excludes it\n")
    assert image.context_hash(context) == first
    os.utime(context / "serve.sh", (0, 0))
    assert image.context_hash(context) == first
    (context / "serve.sh").chmod(0o644)
    assert image.context_hash(context) != first
    (context / "serve.sh").chmod(0o755)
    assert image.context_hash(context) == first
    # The weights stager is not in the serving image: changing it rebuilds nothing.
    stager = context / "weights" / "fetch_weights.py"
    stager.write_text(stager.read_text() + "\n")
    assert image.context_hash(context) == first
    text = (context / "node_cache.py").read_text()
    (context / "node_cache.py").write_text(text + "\n")
    assert image.context_hash(context) != first
