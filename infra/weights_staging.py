"""Where the serving pods read the checkpoint, and how it gets there.

Two sources (setting `weightsSource`):
- empty (default): the stack stages the checkpoint into its own bucket
  (`gs://<bucket>/models/<repository>/`) with `weightsStagingBuilds` parallel
  Cloud Build runs of docker/weights/ (a slim Python image: huggingface_hub
  with hf_xet, each file verified, then uploaded), each a share of the files.
  They wait only for the APIs, the bucket and its IAM, never for the cluster,
  the node pools or the serving image, so the download runs while GKE creates
  the cluster. `pulumi up` reports their outcome.
- `gs://BUCKET/PREFIX`: a checkpoint staged before (by another stack or by
  hand). Nothing is downloaded; the workload's Kubernetes service account gets
  read-only access (`roles/storage.objectViewer`) on that bucket.

The serving pods wait for `<prefix>/<repository>/.download-complete` at run
time (docker/serve.sh), so the Deployment does not depend on the staging here.
"""

from __future__ import annotations

import functools
import hashlib
import shlex
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.identity import build_account
from infra.naming import Names
from infra.propagation import iam_propagation
from infra.rules import split_gcs_url

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "docker" / "weights"
# Relative to the project directory, where Pulumi runs commands.
WEIGHTS_DIR_RELATIVE = "docker/weights"
STAGED_PREFIX = "models"  # bucket folder of a checkpoint the stack stages itself
TIMELINE_PREFIX = "timeline"
HF_TOKEN_SECRET_ID = "hf-token"


def stager_hash(folder: Path = WEIGHTS_DIR) -> str:
    """A hash of what the staging build runs (script, pins, build config)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".pyc"):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def stager_machine_type(builds: int) -> str:
    """One build takes the largest default-pool machine; several take 8 vCPUs each,
    so four use the 32 vCPUs one build did. Cloud Build's default pool counts
    concurrent vCPUs per region against a quota of 5 to 100 that varies by
    project ("Cloud Build quotas and limits"). `gcloud builds submit
    --machine-type` overrides the config's machineType; its choices are the API's
    BuildOptions.machineType names (E2_HIGHCPU_8, E2_HIGHCPU_32) in gcloud's
    lower-case, hyphenated form (googlecloudsdk command_lib/builds/flags.py,
    AddMachineTypeFlag; api_lib/cloudbuild submit_util `_SetMachineType`)."""
    return "e2-highcpu-32" if builds == 1 else "e2-highcpu-8"


def stage_command(
    cfg: StackConfig,
    checkpoint: str,
    bucket: str,
    service_account: str,
    token_secret: str,
    shard: int = 0,
) -> str:
    """The `gcloud builds submit` that stages the checkpoint. It carries the name of
    the token's Secret Manager version, never the token."""
    substitutions = ",".join(
        f"{key}={value}"
        for key, value in (
            ("_MODEL_ID", checkpoint),
            ("_MODEL_REVISION", cfg.model_revision),
            ("_BUCKET", bucket),
            ("_PREFIX", STAGED_PREFIX),
            ("_TIMELINE_PREFIX", TIMELINE_PREFIX),
            ("_HF_TOKEN_SECRET", token_secret),
            ("_SHARD", str(shard)),
            ("_SHARDS", str(cfg.weights_staging_builds)),
        )
    )
    return shlex.join(
        [
            "gcloud",
            "builds",
            "submit",
            WEIGHTS_DIR_RELATIVE,
            f"--project={cfg.project}",
            f"--region={cfg.region}",
            f"--config={WEIGHTS_DIR_RELATIVE}/cloudbuild.yaml",
            f"--substitutions={substitutions}",
            f"--gcs-source-staging-dir=gs://{bucket}/cloudbuild/weights-source",
            f"--service-account={service_account}",
            f"--machine-type={stager_machine_type(cfg.weights_staging_builds)}",
            f"--timeout={cfg.weights_minutes * 60}s",
            "--quiet",
        ]
    )


class WeightsSource(pulumi.ComponentResource):
    """`bucket` and `prefix` of the checkpoint folder the serving pods mount."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        checkpoint: str,
        bucket: gcp.storage.Bucket,
        workload_member: pulumi.Input[str],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:infra:WeightsSource", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        # The staging builds; none with a pre-staged source.
        self.staging: list[command.local.Command] = []
        if cfg.weights_source:
            source_bucket, self.prefix = split_gcs_url(cfg.weights_source)
            self.bucket: pulumi.Output[str] = pulumi.Output.from_input(source_bucket)
            # Read-only: a shared checkpoint is never written by this stack.
            self.grants = [
                gcp.storage.BucketIAMMember(
                    "workload-reads-weights",
                    bucket=source_bucket,
                    role="roles/storage.objectViewer",
                    member=workload_member,
                    opts=child,
                )
            ]
            # What pods that read the weights wait for: the grant, applied.
            self.ready: list[pulumi.Resource] = [
                iam_propagation("workload-reads-weights-propagation", self.grants, self)
            ]
        else:
            self.bucket, self.prefix = bucket.name, STAGED_PREFIX
            self.grants = []
            self.ready = []
            self.staging = self._stage(cfg, names, checkpoint, bucket, child)
        self.url = pulumi.Output.concat("gs://", self.bucket, f"/{self.prefix}/{checkpoint}")
        self.register_outputs({"url": self.url})

    def _stage(
        self,
        cfg: StackConfig,
        names: Names,
        checkpoint: str,
        bucket: gcp.storage.Bucket,
        child: pulumi.ResourceOptions,
    ) -> list[command.local.Command]:
        stager, logs = build_account(
            "weights-stager",
            "stager-logs",
            cfg.project,
            names.weights_stager_account,
            "Stages the DeepSeek-R1 checkpoint from Hugging Face into the bucket",
            child,
        )
        grants: list[pulumi.CustomResource] = [
            # Writes the checkpoint and reads the staged build source, in this bucket only.
            gcp.storage.BucketIAMMember(
                "stager-objects",
                bucket=bucket.name,
                role="roles/storage.objectUser",
                member=stager.member,
                opts=child,
            ),
            logs,
        ]
        token_secret = ""
        if cfg.hf_token:
            # The token reaches the build only through Secret Manager: the
            # build's arguments carry the version's name, the script reads it.
            secret = gcp.secretmanager.Secret(
                "hf-token",
                project=cfg.project,
                secret_id=f"{cfg.name_prefix}-{HF_TOKEN_SECRET_ID}",
                replication=gcp.secretmanager.SecretReplicationArgs(
                    auto=gcp.secretmanager.SecretReplicationAutoArgs()
                ),
                opts=child,
            )
            version = gcp.secretmanager.SecretVersion(
                "hf-token",
                secret=secret.id,
                secret_data=pulumi.Output.secret(cfg.hf_token.reveal()),
                opts=pulumi.ResourceOptions(parent=self),
            )
            grants += [
                version,
                gcp.secretmanager.SecretIamMember(
                    "stager-reads-token",
                    project=cfg.project,
                    secret_id=secret.secret_id,
                    role="roles/secretmanager.secretAccessor",
                    member=stager.member,
                    opts=child,
                ),
            ]
            token_secret = (
                f"projects/{cfg.project}/secrets/{cfg.name_prefix}-{HF_TOKEN_SECRET_ID}"
                "/versions/latest"
            )
        # The build uses the roles at once: wait until IAM has applied them, or
        # it fails with 403 on the staged source, the bucket or the secret.
        grants.append(iam_propagation("stager-roles-propagation", grants, self))
        builds = cfg.weights_staging_builds

        def submit(names: list[str], shard: int) -> str:
            bucket_name, account = names
            return stage_command(cfg, checkpoint, bucket_name, account, token_secret, shard)

        return [
            command.local.Command(
                f"stage-weights-{shard + 1}",
                create=pulumi.Output.all(bucket.name, stager.id).apply(
                    functools.partial(submit, shard=shard)
                ),
                # Runs again when the checkpoint, its revision, the stager or the
                # split changes; a rerun skips what is already staged and verified.
                triggers=[checkpoint, cfg.model_revision, stager_hash(), f"{shard + 1}/{builds}"],
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        depends_on=[*grants, bucket],
                        custom_timeouts=pulumi.CustomTimeouts(
                            create=f"{cfg.weights_minutes + 10}m",
                            update=f"{cfg.weights_minutes + 10}m",
                        ),
                    ),
                ),
            )
            for shard in range(builds)
        ]
