"""The post-deploy smoke check: `clients/smoke.py`, run by a Job against the Service.

The script needs only Python's standard library, so the Job runs it from a
ConfigMap in a small pinned Python image (no image to build). It waits for
/health, runs every check, writes its JSON verdict to
`gs://<bucket>/smoke/<run id>/verdict.json` and its one-line summary to the
container's termination message. Kubernetes marks the Job failed when a check
fails, and pulumi-kubernetes' Job await then fails `pulumi up` with that
message (provider/pkg/await/job.go: the Failed condition ends the await, and
the pod's terminated-state message is among the errors it reports). The run id
changes with the image, the server options, the script and the node count, so
an unchanged stack does not check again and a changed server is checked anew.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from infra.config import StackConfig
from infra.naming import Names
from workloads import options, pod
from workloads.namespace import LABELS, Namespace
from workloads.weights import await_annotations

SCRIPT = Path(__file__).resolve().parent.parent / "clients" / "smoke.py"
SCRIPT_MOUNT = "/opt/smoke"
RESULTS_DIR = "smoke"  # bucket folder: one folder per run id
TERMINATION_LOG = "/dev/termination-log"  # the container's default terminationMessagePath
# python:3.11-slim-trixie (3.11.15), the multi-platform index digest published in
# docker-library/repo-info repos/python/remote/3.11-slim-trixie.md (commit 2477d55).
IMAGE = (
    "docker.io/library/python:3.11.15-slim-trixie"
    "@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff"
)


def run_id(image_identity: str, cfg: StackConfig, server_options: str, script: str) -> str:
    """Changes when what the check checks changes: image, the server's options file
    (`Serving.options_yaml`), script, node count."""
    material = "\n".join([image_identity, server_options, script, str(cfg.node_count)])
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def wait_seconds(cfg: StackConfig) -> int:
    """How long the check polls /health. With awaitServing the server is ready when
    the Job starts (Service endpoints may lag); without it, the Job may start
    before the weights are copied and the server has loaded them."""
    if cfg.await_serving:
        return 10 * 60
    return (cfg.weights_minutes + cfg.startup_minutes + 10) * 60


def arguments(cfg: StackConfig, service_url: str, run: str) -> list[str]:
    return [
        "python3",
        "-I",  # isolated: no user site, no PYTHON* variables, no current directory
        f"{SCRIPT_MOUNT}/smoke.py",
        f"--base-url={service_url}/v1",
        f"--model={options.served_model_name(cfg)}",
        f"--wait={wait_seconds(cfg)}",
        f"--out=/results/{run}/verdict.json",
        f"--termination-log={TERMINATION_LOG}",
    ]


def job_result(succeeded: int | None, failed: int | None, logs: str, verdict_url: str) -> str:
    """The `smokeCheck` stack output, from the Job's status as `pulumi up` left it."""
    if succeeded:
        return f"passed; verdict: {verdict_url}"
    if failed:
        return f"failed: `{logs}`; verdict: {verdict_url}"
    return f"pending (not finished when `pulumi up` returned): `{logs}`; verdict: {verdict_url}"


class SmokeCheck(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        namespace: Namespace,
        image_identity: str,
        server_options: str,
        bucket: pulumi.Input[str],
        service_url: str,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:workloads:SmokeCheck", name, None, opts)
        labels = {**LABELS, "app.kubernetes.io/name": "smoke-check"}
        script = SCRIPT.read_text()
        run = run_id(image_identity, cfg, server_options, script)
        self.verdict_url = pulumi.Output.concat(
            "gs://", bucket, f"/{RESULTS_DIR}/{run}/verdict.json"
        )

        self.script = k8s.core.v1.ConfigMap(
            "script",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{cfg.name_prefix}-smoke-check-{run}", namespace=namespace.name, labels=labels
            ),
            data={"smoke.py": script},
            opts=pulumi.ResourceOptions(parent=self),
        )
        container = k8s.core.v1.ContainerArgs(
            name="smoke-check",
            image=IMAGE,
            command=arguments(cfg, service_url, run),
            env=[k8s.core.v1.EnvVarArgs(name="PYTHONDONTWRITEBYTECODE", value="1")],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "100m", "memory": "128Mi"},
                limits={"cpu": "500m", "memory": "256Mi"},
            ),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="script", mount_path=SCRIPT_MOUNT, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="results", mount_path="/results"),
            ],
            # The summary is the termination message; a crash falls back to the log's tail.
            termination_message_policy="FallbackToLogsOnError",
            # Writes only to the bucket mount (owned by its UID) and the termination
            # log, which the kubelet creates writable for any UID.
            security_context=pod.restricted_security_context(
                read_only_root=True, run_as=pod.NON_ROOT_UID
            ),
        )
        wait = wait_seconds(cfg)
        job_name = f"{cfg.name_prefix}-smoke-check-{run}"
        logs = f"kubectl -n {cfg.namespace} logs job/{job_name}"
        self.job = k8s.batch.v1.Job(
            "smoke-check",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=job_name,
                namespace=namespace.name,
                labels=labels,
                annotations=await_annotations(cfg),
            ),
            spec=pod.utility_job_spec(
                cfg,
                names,
                namespace.service_account.metadata.name,
                labels,
                container,
                [
                    k8s.core.v1.VolumeArgs(
                        name="script",
                        config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                            name=self.script.metadata.name
                        ),
                    ),
                    pod.gcsfuse_volume(
                        "results", bucket, RESULTS_DIR, read_only=False, owner=pod.NON_ROOT_UID
                    ),
                ],
                restart_policy="Never",
                backoff_limit=0,  # a failed check is reported, not repeated
                deadline_seconds=wait + 30 * 60,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{wait // 60 + 35}m", update=f"{wait // 60 + 35}m"
                ),
            ),
        )
        self.result = pulumi.Output.all(self.job.status, self.verdict_url).apply(
            lambda args: job_result(
                _count(args[0], "succeeded"), _count(args[0], "failed"), logs, args[1]
            )
        )
        self.register_outputs({"result": self.result, "verdict": self.verdict_url})


def _count(status: k8s.batch.v1.outputs.JobStatus | dict[str, int] | None, key: str) -> int | None:
    """A count from the Job's status (a typed object from the provider, a dict in mocks)."""
    if isinstance(status, dict):
        return status.get(key)
    return getattr(status, key, None)
