"""The benchmark Job: NVIDIA AIPerf against the Service, from its own small image.

Enabled by `benchmarkEnabled`. It waits for the server to answer /health,
runs the `benchmarkMatrix` cases (docker/benchmark/run_benchmarks.py) and
writes one AIPerf result folder per case, with the case's KV-cache and DCGM
GPU samples beside it, to `gs://<bucket>/benchmarks/<run id>/`, where
`python -m clients.report` reads them. The run id is a hash of what the
results depend on (both images, server options, matrix), so an unchanged
stack does not benchmark again and a changed one benchmarks under a new id.

GPU memory and utilization come from GKE's managed DCGM exporter (the
cluster's DCGM monitoring component), scraped by Managed Service for
Prometheus and read through its Prometheus-compatible query API with the
pod's Workload Identity token. The exporter itself runs in the
`gke-managed-system` namespace and the Job has no Kubernetes API token to
find its pods, so the query API is the path the Job can reach; it needs
roles/monitoring.viewer on the project (granted here to the workload's
Kubernetes service account).
"""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from infra.config import StackConfig
from infra.naming import Names
from infra.propagation import iam_propagation
from workloads import options, pod
from workloads.namespace import LABELS, Namespace
from workloads.weights import await_annotations

RESULTS_DIR = "benchmarks"
PROMPTS_PER_USER = 5  # NVIDIA's sweep: num_prompts = 5 x concurrency
# MLPerf Inference v5.1 DeepSeek-R1 server scenario limits: TTFT 2 s and
# 12.5 tokens/s/user at p99, i.e. TPOT 80 ms (the LoadGen settings
# ttft_latency 2000000000 ns, tpot_latency 80000000 ns in the v5.1 results'
# mlperf_log_summary.txt).
SLO_TTFT_MS = 2000
SLO_TPOT_MS = 80
SLO_MAX_CONCURRENCY = 512
# The benchmark image's non-root user (docker/benchmark/Dockerfile).
BENCHMARK_UID = 10001
# trtllm-serve's request field that makes it generate exactly max_tokens
# (tensorrt_llm/serve/openai_protocol.py), as NVIDIA's benchmarks run.
EXTRA_INPUTS = "ignore_eos:true"


def dcgm_selector(cfg: StackConfig, server_name: str) -> str:
    """The server pod's GPUs. The DCGM exporter labels each GPU with the pod
    using it; Managed Prometheus keeps its own `namespace`/`pod` target labels
    and renames the exporter's to `exported_namespace`/`exported_pod`."""
    return f'exported_namespace="{cfg.namespace}",exported_pod=~"{server_name}-.*"'


def run_id(
    image_identity: str, cfg: StackConfig, server_options: str, benchmark_identity: str = ""
) -> str:
    """Changes when either image, the server's options file (`Serving.options_yaml`)
    or the matrix change."""
    material = "\n".join(
        [
            image_identity,
            benchmark_identity,
            server_options,
            ",".join(cfg.benchmark_matrix),
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def metadata(cfg: StackConfig, run: str) -> str:
    """Stored in every case.json; the report reads these keys."""
    pairs = {
        "run_id": run,
        "model": options.served_model_name(cfg),
        "checkpoint": options.checkpoint(cfg),
        "precision": cfg.model,
        "profile": cfg.serving_profile,
        "tp": cfg.tp_size,
        "pp": cfg.pp_size,
        "ep": cfg.ep_size,
        "max_seq_len": options.effective_max_seq_len(cfg),
        "gpu": cfg.shape.accelerator_type,
        "gpus": cfg.shape.gpu_count,
        "machine": cfg.machine_type,
    }
    return " ".join(f"{key}={value}" for key, value in pairs.items())


def account_name(cfg: StackConfig) -> str:
    """The benchmark Job's own Kubernetes service account."""
    return f"{cfg.name_prefix}-benchmark"


class Benchmark(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        namespace: Namespace,
        image: pulumi.Input[str],
        identity: str,
        server_options: str,
        bucket: pulumi.Input[str],
        weights_bucket: pulumi.Input[str],
        weights_prefix: str,
        service_url: str,
        server_name: str,
        principal: pulumi.Input[str],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`image`: the benchmark image; `identity`: what the results depend
        on besides the options (both images' identities); `server_options`: the
        server's options file (`Serving.options_yaml`); `weights_bucket` and
        `weights_prefix`: where the checkpoint (and so its tokenizer) lives, the
        stack's bucket or a pre-staged `weightsSource`; `principal`: the Workload
        Identity principal of the Kubernetes service account `account_name(cfg)`,
        the benchmark's own, so that its roles are not the server's."""
        super().__init__("a4deepseek:workloads:Benchmark", name, None, opts)
        labels = {**LABELS, "app.kubernetes.io/name": "benchmark"}
        run = run_id(identity, cfg, server_options)
        self.results = pulumi.Output.concat("gs://", bucket, f"/{RESULTS_DIR}/{run}")
        self.service_account = k8s.core.v1.ServiceAccount(
            "benchmark",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=account_name(cfg), namespace=namespace.name, labels=LABELS
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The principal names the cluster's Workload Identity pool, so the grants
        # follow the cluster; they need not wait for the server, so their
        # propagation delay runs while it starts.
        on_gcp = pulumi.ResourceOptions(parent=self)
        grants = [
            # DCGM samples through the Managed Prometheus query API.
            gcp.projects.IAMMember(
                "benchmark-metrics-reader",
                project=cfg.project,
                role="roles/monitoring.viewer",
                member=principal,
                opts=on_gcp,
            ),
            # Results under benchmarks/ (and the tokenizer, when the stack
            # staged the weights in its own bucket); objectUser is what a GCS
            # FUSE mount needs (GCS FUSE CSI driver docs/authentication.md).
            gcp.storage.BucketIAMMember(
                "benchmark-objects",
                bucket=bucket,
                role="roles/storage.objectUser",
                member=principal,
                opts=on_gcp,
            ),
        ]
        if cfg.weights_source:
            # The tokenizer from a pre-staged checkpoint: read only.
            grants.append(
                gcp.storage.BucketIAMMember(
                    "benchmark-reads-weights",
                    bucket=weights_bucket,
                    role="roles/storage.objectViewer",
                    member=principal,
                    opts=on_gcp,
                )
            )
        self.metrics_reader = grants[0]
        ready = iam_propagation("benchmark-roles-propagation", grants, self)
        env = {
            "BASE_URL": service_url,
            "MODEL": options.served_model_name(cfg),
            "TOKENIZER": options.checkpoint_path(cfg),
            "MATRIX": ",".join(cfg.benchmark_matrix),
            "RESULT_DIR": f"/results/{run}",
            "METADATA": metadata(cfg, run),
            "PROMPTS_PER_USER": str(PROMPTS_PER_USER),
            "EXTRA_INPUTS": EXTRA_INPUTS,
            "SLO_TTFT_MS": str(SLO_TTFT_MS),
            "SLO_TPOT_MS": str(SLO_TPOT_MS),
            "SLO_MAX_CONCURRENCY": str(SLO_MAX_CONCURRENCY),
            "PROJECT": cfg.project,
            "DCGM_SELECTOR": dcgm_selector(cfg, server_name),
            # AIPerf reads the tokenizer from the mounted checkpoint; offline
            # mode would make it look for a hub cache entry instead (aiperf
            # 0.13 common/tokenizer.py), so HF_HUB_OFFLINE stays unset.
            "HF_HOME": "/tmp/hf",
        }
        container = k8s.core.v1.ContainerArgs(
            name="benchmark",
            image=image,
            env=[k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in env.items()],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "4", "memory": "16Gi"}, limits={"memory": "16Gi"}
            ),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(
                    name="models", mount_path=options.MODEL_ROOT, read_only=True
                ),
                k8s.core.v1.VolumeMountArgs(name="results", mount_path="/results"),
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
            security_context=k8s.core.v1.SecurityContextArgs(
                allow_privilege_escalation=False,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                read_only_root_filesystem=True,
                run_as_non_root=True,
                run_as_user=BENCHMARK_UID,
                run_as_group=BENCHMARK_UID,
            ),
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
                self.service_account.metadata.name,
                labels,
                container,
                [
                    pod.gcsfuse_volume("models", weights_bucket, weights_prefix, read_only=True),
                    pod.gcsfuse_volume(
                        "results", bucket, RESULTS_DIR, read_only=False, owner=BENCHMARK_UID
                    ),
                    k8s.core.v1.VolumeArgs(
                        name="tmp",
                        empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="8Gi"),
                    ),
                ],
                restart_policy="Never",
                backoff_limit=0,  # a failed benchmark is reported, not repeated
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*depends_on, ready],
                custom_timeouts=pulumi.CustomTimeouts(create="240m", update="240m"),
            ),
        )
        self.register_outputs({"results": self.results})
