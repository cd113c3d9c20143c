"""The one-time copy of the checkpoint from Hugging Face into the stack's bucket.

A Job on the system node pool: it runs as soon as the cluster exists, while
the GPU pool is still being created, and never again once the copy is
complete (docker/fetch_weights.py skips a complete copy and resumes a partial
one). Serving pods then read the weights from the bucket.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.config import StackConfig
from infra.naming import Names
from workloads import pod
from workloads.namespace import LABELS, Namespace
from workloads.options import MODEL_ROOT, checkpoint


def await_annotations(cfg: StackConfig) -> dict[str, str]:
    """With awaitServing false, `pulumi up` returns once objects are accepted."""
    return {} if cfg.await_serving else {"pulumi.com/skipAwait": "true"}


MODELS_DIR = "models"  # bucket folder that holds one folder per Hugging Face repository


def weights_env(cfg: StackConfig) -> list[k8s.core.v1.EnvVarArgs]:
    return [
        k8s.core.v1.EnvVarArgs(name="MODEL_ID", value=checkpoint(cfg)),
        k8s.core.v1.EnvVarArgs(name="MODEL_REVISION", value=cfg.model_revision),
        k8s.core.v1.EnvVarArgs(name="MODEL_ROOT", value=MODEL_ROOT),
    ]


class Weights(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        namespace: Namespace,
        image: pulumi.Input[str],
        bucket: pulumi.Input[str],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:workloads:Weights", name, None, opts)
        labels = {**LABELS, "app.kubernetes.io/name": "fetch-weights"}
        container = k8s.core.v1.ContainerArgs(
            name="fetch",
            image=image,
            command=["python3", "/opt/deepseek/fetch_weights.py"],
            env=[
                *weights_env(cfg),
                k8s.core.v1.EnvVarArgs(name="HF_HUB_ENABLE_HF_TRANSFER", value="1"),
                # huggingface_hub's own cache stays off the bucket.
                k8s.core.v1.EnvVarArgs(name="HF_HOME", value="/tmp/hf-home"),
                *namespace.hf_token_env(),
            ],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "4", "memory": "16Gi", "ephemeral-storage": "50Gi"},
                limits={"memory": "16Gi", "ephemeral-storage": "100Gi"},
            ),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="models", mount_path=MODEL_ROOT),
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
            # Writes only to the bucket (/models) and the /tmp emptyDir (HF_HOME).
            security_context=pod.restricted_security_context(read_only_root=True),
        )
        self.job_name = f"{cfg.name_prefix}-fetch-weights"
        self.job = k8s.batch.v1.Job(
            "fetch-weights",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=self.job_name,
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
                    pod.gcsfuse_volume("models", bucket, MODELS_DIR, read_only=False),
                    k8s.core.v1.VolumeArgs(
                        name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()
                    ),
                ],
                restart_policy="OnFailure",
                backoff_limit=3,
                deadline_seconds=cfg.weights_minutes * 60,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                # `pulumi up` reports the download's outcome, within its budget.
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{cfg.weights_minutes + 10}m", update=f"{cfg.weights_minutes + 10}m"
                ),
            ),
        )
        self.register_outputs({"job": self.job.metadata.name})
