"""The benchmark Job: TensorRT-LLM's benchmark_serving against the Service.

Enabled by `benchmarkEnabled`. It waits for the server to answer /health,
runs the `benchmarkMatrix` cases (docker/run_benchmarks.py) and writes one
result JSON per case to `gs://<bucket>/benchmarks/<run id>/`, where
`python -m clients.report` reads them. The run id is a hash of what the
results depend on (image, options, matrix), so an unchanged stack does not
benchmark again and a changed one benchmarks under a new id.
"""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_kubernetes as k8s

from infra.config import StackConfig
from infra.naming import Names
from workloads import options, pod
from workloads.namespace import LABELS, Namespace
from workloads.weights import MODELS_DIR, await_annotations

RESULTS_DIR = "benchmarks"
PROMPTS_PER_USER = 5  # NVIDIA's sweep: num_prompts = 5 x concurrency


def run_id(image_identity: str, cfg: StackConfig) -> str:
    """Changes when the image, the server options or the matrix change."""
    material = "\n".join(
        [image_identity, options.llm_options_yaml(cfg), ",".join(cfg.benchmark_matrix)]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def metadata(cfg: StackConfig, run: str) -> str:
    """Stored in every result (`--metadata`); the report reads these keys."""
    pairs = {
        "run_id": run,
        "model": options.served_model_name(cfg),
        "checkpoint": options.checkpoint(cfg),
        "precision": cfg.model,
        "profile": cfg.serving_profile,
        "tp": cfg.tp_size,
        "pp": cfg.pp_size,
        "ep": cfg.ep_size,
        "gpu": cfg.shape.accelerator_type,
        "gpus": cfg.shape.gpu_count,
        "machine": cfg.machine_type,
    }
    return " ".join(f"{key}={value}" for key, value in pairs.items())


class Benchmark(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        namespace: Namespace,
        image: pulumi.Output[str],
        image_identity: str,
        bucket: pulumi.Input[str],
        service_url: str,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:workloads:Benchmark", name, None, opts)
        labels = {**LABELS, "app.kubernetes.io/name": "benchmark"}
        run = run_id(image_identity, cfg)
        self.results = pulumi.Output.concat("gs://", bucket, f"/{RESULTS_DIR}/{run}")
        container = k8s.core.v1.ContainerArgs(
            name="benchmark",
            image=image,
            command=["python3", "/opt/deepseek/run_benchmarks.py"],
            env=[
                k8s.core.v1.EnvVarArgs(name="BASE_URL", value=service_url),
                k8s.core.v1.EnvVarArgs(name="MODEL", value=options.served_model_name(cfg)),
                k8s.core.v1.EnvVarArgs(name="TOKENIZER", value=options.checkpoint_path(cfg)),
                k8s.core.v1.EnvVarArgs(name="MATRIX", value=",".join(cfg.benchmark_matrix)),
                k8s.core.v1.EnvVarArgs(name="RESULT_DIR", value=f"/results/{run}"),
                k8s.core.v1.EnvVarArgs(name="METADATA", value=metadata(cfg, run)),
                k8s.core.v1.EnvVarArgs(name="PROMPTS_PER_USER", value=str(PROMPTS_PER_USER)),
                k8s.core.v1.EnvVarArgs(name="HF_HUB_OFFLINE", value="1"),
            ],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "4", "memory": "16Gi"}, limits={"memory": "16Gi"}
            ),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(
                    name="models", mount_path=options.MODEL_ROOT, read_only=True
                ),
                k8s.core.v1.VolumeMountArgs(name="results", mount_path="/results"),
            ],
            security_context=pod.restricted_security_context(),
        )
        self.job = k8s.batch.v1.Job(
            "benchmark",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{cfg.name_prefix}-benchmark-{run}",
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
                    pod.gcsfuse_volume("models", bucket, MODELS_DIR, read_only=True),
                    pod.gcsfuse_volume("results", bucket, RESULTS_DIR, read_only=False),
                ],
                restart_policy="Never",
                backoff_limit=0,  # a failed benchmark is reported, not repeated
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                custom_timeouts=pulumi.CustomTimeouts(create="180m", update="180m"),
            ),
        )
        self.register_outputs({"results": self.results})
