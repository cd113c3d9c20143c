"""The stack's images, built from `docker/` and referenced by digest.

- the serving image (`docker/`): NVIDIA's TensorRT-LLM release plus the
  stack's scripts; its build also checks the serving profiles against the
  config database inside that release (docker/check_profiles.py);
- the benchmark image (`docker/benchmark/`): a slim Python with NVIDIA AIPerf,
  built only when the benchmark is on.

Builders (setting `imageBuilder`):
- `cloudbuild`: `gcloud builds submit` in the project's region, run by a
  pulumi-command `local.Command` whose trigger is a hash of the build
  context, so `pulumi up` rebuilds only when a file in `docker/` changes.
  The command prints the pushed image's digest, read back as its stdout.
- `docker`: a local build and push with pulumi-docker.
- `prebuilt`: `prebuiltImage` (and `prebuiltBenchmarkImage`) as given
  (validated as pinned).

The build waits only for the registry and its IAM, never for the cluster,
so on a cold `pulumi up` it runs while GKE creates the cluster and node pools.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_gcp as gcp

from infra.config import ImageBuilder, StackConfig
from infra.identity import build_account
from infra.propagation import iam_propagation

DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"
# Paths in the build command are relative to the project directory, where
# Pulumi runs commands, so the command does not change with the checkout path.
DOCKER_DIR_RELATIVE = "docker"


@dataclass(frozen=True)
class ImageSpec:
    """One image: its registry name, its build context under docker/, and the
    Dockerfile ARG that pins its base image."""

    name: str
    subdir: str  # "" for docker/ itself
    base_arg: str
    resource_suffix: str  # of the build resources' names ("" keeps the original names)

    @property
    def context(self) -> Path:
        return DOCKER_DIR / self.subdir if self.subdir else DOCKER_DIR

    @property
    def context_relative(self) -> str:
        return f"{DOCKER_DIR_RELATIVE}/{self.subdir}" if self.subdir else DOCKER_DIR_RELATIVE


SERVING = ImageSpec("trtllm-serve", "", "TRTLLM_BASE_IMAGE", "")
BENCHMARK = ImageSpec("benchmark", "benchmark", "PYTHON_BASE_IMAGE", "-benchmark")
IMAGE_NAME = SERVING.name


def base_image(dockerfile: Path | None = None, arg: str = SERVING.base_arg) -> str:
    """The pinned base image (the Dockerfile's single `ARG <arg>=...` pin)."""
    dockerfile = dockerfile or DOCKER_DIR / "Dockerfile"
    match = re.search(rf"^ARG {arg}=(\S+)$", dockerfile.read_text(), re.MULTILINE)
    if not match:
        raise ValueError(f"{dockerfile} has no `ARG {arg}=...` line")
    return match.group(1)


def context_files(context: Path) -> list[Path]:
    """Files `docker build` would send: all but those `.dockerignore` excludes."""
    ignore = context / ".dockerignore"
    patterns = []
    if ignore.exists():
        patterns = [
            line.strip()
            for line in ignore.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
    files = []
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        relative = path.relative_to(context).as_posix()
        included = True
        for pattern in patterns:  # later patterns win, `!` re-includes
            negate = pattern.startswith("!")
            if fnmatch.fnmatch(relative, pattern.lstrip("!")):
                included = negate
        if included:
            files.append(path)
    return files


def context_hash(context: Path | None = None) -> str:
    """A hash of the build context: names, contents and the executable bit."""
    context = context or DOCKER_DIR
    digest = hashlib.sha256()

    for path in context_files(context):
        digest.update(path.relative_to(context).as_posix().encode() + b"\0")
        digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cloud_build_command(
    project: str,
    region: str,
    registry: str,
    tag: str,
    staging_dir: str,
    service_account: str,
    spec: ImageSpec = SERVING,
) -> str:
    """The `gcloud builds submit` that builds, pushes and prints the digest."""
    substitutions = f"_REGISTRY={registry},_IMAGE_NAME={spec.name},_TAG={tag}"
    args = [
        "gcloud",
        "builds",
        "submit",
        spec.context_relative,
        f"--project={project}",
        f"--region={region}",
        f"--config={spec.context_relative}/cloudbuild.yaml",
        f"--substitutions={substitutions}",
        f"--gcs-source-staging-dir={staging_dir}",
        f"--service-account={service_account}",
        "--format=value(results.images[0].digest)",
        "--quiet",
    ]
    return shlex.join(args)


class Image(pulumi.ComponentResource):
    """The serving image; `self.ref` is `<registry>/trtllm-serve@sha256:...`.
    With the benchmark on, also `self.benchmark_ref` (`<registry>/benchmark@...`)."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        registry_path: pulumi.Output[str],
        repository: gcp.artifactregistry.Repository,
        bucket: gcp.storage.Bucket,
        builder_account_id: str,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:infra:Image", name, None, opts)
        self.base_image = base_image()
        self.context_hash = context_hash()
        # Known before apply and changes exactly when the image does.
        self.identity = (
            cfg.prebuilt_image if cfg.image_builder == ImageBuilder.PREBUILT else self.context_hash
        )
        self.benchmark_ref: pulumi.Output[str] | None = None
        self.benchmark_identity: str | None = None
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        specs = [SERVING, BENCHMARK] if cfg.benchmark_enabled else [SERVING]

        refs: dict[str, pulumi.Output[str]] = {}
        if cfg.image_builder == ImageBuilder.PREBUILT:
            refs[SERVING.name] = pulumi.Output.from_input(cfg.prebuilt_image)
            refs[BENCHMARK.name] = pulumi.Output.from_input(cfg.prebuilt_benchmark_image)
        elif cfg.image_builder == ImageBuilder.DOCKER:
            for spec in specs:
                refs[spec.name] = self._docker_build(cfg, registry_path, spec, child)
        else:
            builder, grants = self._builder(cfg, repository, bucket, builder_account_id, child)
            for spec in specs:
                refs[spec.name] = self._cloud_build(
                    cfg, registry_path, repository, bucket, builder, grants, spec, child
                )
        self.ref = refs[SERVING.name]
        if cfg.benchmark_enabled:
            self.benchmark_ref = refs[BENCHMARK.name]
            self.benchmark_identity = (
                cfg.prebuilt_benchmark_image
                if cfg.image_builder == ImageBuilder.PREBUILT
                else context_hash(BENCHMARK.context)
            )
        self.register_outputs(
            {"ref": self.ref, "baseImage": self.base_image, "benchmarkRef": self.benchmark_ref}
        )

    def _builder(
        self,
        cfg: StackConfig,
        repository: gcp.artifactregistry.Repository,
        bucket: gcp.storage.Bucket,
        account_id: str,
        child: pulumi.ResourceOptions,
    ) -> tuple[gcp.serviceaccount.Account, list[pulumi.CustomResource]]:
        # Cloud Build runs as a dedicated account that may push to this
        # repository, read its staged source, and write build logs.
        builder, logs = build_account(
            "image-builder",
            "builder-logs",
            cfg.project,
            account_id,
            "Builds the TensorRT-LLM serving image",
            child,
        )
        grants: list[pulumi.CustomResource] = [
            gcp.artifactregistry.RepositoryIamMember(
                "builder-push",
                project=cfg.project,
                location=cfg.region,
                repository=repository.repository_id,
                role="roles/artifactregistry.writer",
                member=builder.member,
                opts=child,
            ),
            gcp.storage.BucketIAMMember(
                "builder-source",
                bucket=bucket.name,
                role="roles/storage.objectViewer",
                member=builder.member,
                opts=child,
            ),
            logs,
        ]
        # The builds use the roles at once: wait until IAM has applied them, or
        # the first build fails with 403 on the staged source or the push.
        return builder, [*grants, iam_propagation("builder-roles-propagation", grants, self)]

    def _cloud_build(
        self,
        cfg: StackConfig,
        registry_path: pulumi.Output[str],
        repository: gcp.artifactregistry.Repository,
        bucket: gcp.storage.Bucket,
        builder: gcp.serviceaccount.Account,
        grants: Sequence[pulumi.Resource],
        spec: ImageSpec,
        child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        digest = context_hash(spec.context)
        build_command = pulumi.Output.all(registry_path, bucket.name, builder.id).apply(
            lambda args: cloud_build_command(
                cfg.project,
                cfg.region,
                args[0],
                digest[:16],
                f"gs://{args[1]}/cloudbuild/source",
                args[2],
                spec,
            )
        )
        build = command.local.Command(
            f"cloud-build{spec.resource_suffix}",
            create=build_command,
            # Runs again (a new image) only when the build context changes.
            triggers=[digest],
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[*grants, repository],
                    custom_timeouts=pulumi.CustomTimeouts(create="130m"),
                ),
            ),
        )
        return pulumi.Output.concat(registry_path, f"/{spec.name}@", build.stdout.apply(str.strip))

    def _docker_build(
        self,
        cfg: StackConfig,
        registry_path: pulumi.Output[str],
        spec: ImageSpec,
        child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        token = gcp.organizations.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        )
        image = docker.Image(
            f"docker-build{spec.resource_suffix}",
            image_name=pulumi.Output.concat(
                registry_path, f"/{spec.name}:{context_hash(spec.context)[:16]}"
            ),
            build=docker.DockerBuildArgs(
                context=spec.context_relative,
                dockerfile=f"{spec.context_relative}/Dockerfile",
                platform="linux/amd64",
            ),
            registry=docker.RegistryArgs(
                server=f"{cfg.region}-docker.pkg.dev",
                username="oauth2accesstoken",
                password=pulumi.Output.secret(token.access_token),
            ),
            opts=child,
        )
        return image.repo_digest
