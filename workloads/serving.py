"""The TensorRT-LLM server: one 8-GPU pod per GPU node, behind a private Service.

Each object the server needs is built by a pure function that returns the SDK's
typed arguments (`server_options_config_map`, `server_pod`, `server_deployment`,
`server_service`, `disruption_budget`, `pod_monitoring_spec`), so a test can
build one from a StackConfig and small arguments without running the program;
`Serving` only creates them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from infra.config import ServiceType, StackConfig
from infra.gpu_node_pool import GpuPlacement
from workloads import options, pod
from workloads.namespace import LABELS, Namespace
from workloads.weights import (
    NODE_CACHE_MOUNT,
    TIMELINE_MOUNT,
    TUNING_CACHE_MOUNT,
    await_annotations,
    models_volume,
    node_cache_volume,
    timeline_volume,
    tuning_cache_volume,
)

SERVER_NAME = "trtllm-serve"
JIT_CACHE_DIR = "cache/deepgemm"  # bucket folder kept across pods and nodes
JIT_CACHE_MOUNT = "/jit-cache"
# trtllm-serve opens its port only once the model is loaded and warmed up, so
# while loading /health is "connection refused"; afterwards it answers 200, or
# 503 when the engine has become unavailable (tensorrt_llm/serve/openai_server.py,
# OpenAIServer.health).
HEALTH_PATH = "/health"
METRICS_PATH = "/prometheus/metrics"
# /dev/shm for the eight ranks' inter-process buffers; it counts against the
# pod's memory. GPU recipes' A4 chart uses 250Gi.
SHM_SIZE_GI = 250
OPTIONS_HASH_ANNOTATION = "a4-deepseek/options-sha256"


@dataclass(frozen=True)
class ServerObjects:
    """The name, namespace and labels every object of the server carries."""

    name: str
    namespace: pulumi.Input[str]
    labels: dict[str, str]

    def metadata(
        self, suffix: str = "", annotations: dict[str, str] | None = None
    ) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=f"{self.name}{suffix}",
            namespace=self.namespace,
            labels=self.labels,
            annotations=annotations,
        )

    @property
    def selector(self) -> k8s.meta.v1.LabelSelectorArgs:
        return k8s.meta.v1.LabelSelectorArgs(match_labels=self.labels)


def server_objects(cfg: StackConfig, namespace: pulumi.Input[str]) -> ServerObjects:
    app_name = f"{cfg.name_prefix}-{SERVER_NAME}"
    labels = {
        **LABELS,
        "app.kubernetes.io/name": SERVER_NAME,
        "app.kubernetes.io/instance": app_name,
    }
    return ServerObjects(app_name, namespace, labels)


@dataclass(frozen=True)
class PodSources:
    """What the server pod reads from other resources: its image, the stack's
    bucket (JIT cache, timeline), the checkpoint's bucket and folder (the stack's,
    or a pre-staged one), its Kubernetes service account and the options ConfigMap."""

    image: pulumi.Input[str]
    bucket: pulumi.Input[str]
    weights_bucket: pulumi.Input[str]
    weights_prefix: str
    service_account: pulumi.Input[str]
    options_config_map: pulumi.Input[str]


# --- the options file --------------------------------------------------------


def server_options_config_map(
    objects: ServerObjects, options_yaml: str
) -> k8s.core.v1.ConfigMapInitArgs:
    return k8s.core.v1.ConfigMapInitArgs(
        metadata=objects.metadata("-options"), data={options.OPTIONS_FILE: options_yaml}
    )


def options_hash(options_yaml: str) -> str:
    return hashlib.sha256(options_yaml.encode()).hexdigest()[:16]


# --- the pod -----------------------------------------------------------------


def pod_env(cfg: StackConfig) -> list[k8s.core.v1.EnvVarArgs]:
    """The environment of both the server and its wait-and-copy init container
    (the image's docker/serve.sh and docker/node_cache.py read it)."""

    def field(path: str) -> k8s.core.v1.EnvVarSourceArgs:
        return k8s.core.v1.EnvVarSourceArgs(
            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=path)
        )

    return [
        # The checkpoint, under the bucket's models/ folder.
        k8s.core.v1.EnvVarArgs(name="MODEL_ID", value=options.checkpoint(cfg)),
        k8s.core.v1.EnvVarArgs(name="MODEL_REVISION", value=cfg.model_revision),
        k8s.core.v1.EnvVarArgs(name="MODEL_ROOT", value=options.MODEL_ROOT),
        # Where the node's local-SSD copy is, and where this pod's timeline document goes.
        k8s.core.v1.EnvVarArgs(name="NODE_CACHE", value=NODE_CACHE_MOUNT),
        k8s.core.v1.EnvVarArgs(name="POD_NAME", value_from=field("metadata.name")),
        k8s.core.v1.EnvVarArgs(name="NODE_NAME", value_from=field("spec.nodeName")),
        # One document per pod; $(POD_NAME) is expanded by the kubelet.
        k8s.core.v1.EnvVarArgs(name="TIMELINE_FILE", value=f"{TIMELINE_MOUNT}/$(POD_NAME).json"),
        # The weights are local (the bucket); never fall back to the hub.
        k8s.core.v1.EnvVarArgs(name="HF_HUB_OFFLINE", value="1"),
        k8s.core.v1.EnvVarArgs(name="WEIGHTS_WAIT_SECONDS", value=str(cfg.weights_minutes * 60)),
        # JIT-compiled DeepGEMM kernels are kept in the bucket so a restarted
        # pod, on any node, loads them instead of compiling again: the
        # deep_gemm package (FP8 MoE on B200) caches in DG_JIT_CACHE_DIR,
        # TensorRT-LLM's own DeepGEMM in TRTLLM_DG_CACHE_DIR with DUMP_CUBIN.
        k8s.core.v1.EnvVarArgs(name="DG_JIT_CACHE_DIR", value="/jit-cache/deep_gemm"),
        k8s.core.v1.EnvVarArgs(name="TRTLLM_DG_CACHE_DIR", value="/jit-cache/tensorrt_llm"),
        k8s.core.v1.EnvVarArgs(name="TRTLLM_DG_JIT_DUMP_CUBIN", value="1"),
    ]


class Probes(TypedDict):
    startup_probe: k8s.core.v1.ProbeArgs
    readiness_probe: k8s.core.v1.ProbeArgs
    liveness_probe: k8s.core.v1.ProbeArgs


def probes(cfg: StackConfig) -> Probes:
    """Startup gets the cold-start budget (the port refuses connections while
    the model loads); after it, readiness and liveness watch /health (503 once
    the engine is unavailable)."""

    def http(period: int, failures: int) -> k8s.core.v1.ProbeArgs:
        return k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=HEALTH_PATH, port=options.SERVER_PORT),
            period_seconds=period,
            timeout_seconds=5,
            failure_threshold=failures,
        )

    return {
        "startup_probe": http(10, cfg.startup_minutes * 6),
        "readiness_probe": http(10, 3),
        "liveness_probe": http(30, 5),
    }


def server_resources(cfg: StackConfig, gpus: GpuPlacement) -> k8s.core.v1.ResourceRequirementsArgs:
    """Every GPU of the node, and CPU and memory sized under the machine."""
    shape = cfg.shape
    count = str(gpus.gpus_per_node)
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={
            "cpu": str(shape.server_cpu),
            "memory": f"{shape.server_memory_gi}Gi",
            gpus.gpu_resource: count,
        },
        limits={"memory": f"{shape.server_memory_limit_gi}Gi", gpus.gpu_resource: count},
    )


def models_mount() -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name="models", mount_path=options.MODEL_ROOT, read_only=True)


def autotuner_cache_env(image: pulumi.Input[str]) -> k8s.core.v1.EnvVarArgs:
    """TensorRT-LLM's autotuner profiles every tunable op and shape at start-up
    (~2 minutes, cold-start row 13) unless TLLM_AUTOTUNER_CACHE_PATH names a file
    of tactics it profiled before: `_run_autotuner_warmup` in tensorrt_llm/_torch/
    pyexecutor/model_engine.py passes it to `autotune(cache_path=...)`, which
    loads it, skips profiling on a hit and saves what it tuned (read at commit
    1a0dc5f of NVIDIA/TensorRT-LLM, not at the pinned tag). The file lives on the
    node's local SSD, so a pod re-created on the node skips the profiling; one
    file per image, so another TensorRT-LLM build tunes afresh."""
    path = pulumi.Output.from_input(image).apply(
        lambda ref: f"{TUNING_CACHE_MOUNT}/{hashlib.sha256(ref.encode()).hexdigest()[:16]}.json"
    )
    return k8s.core.v1.EnvVarArgs(name="TLLM_AUTOTUNER_CACHE_PATH", value=path)


def server_container(
    cfg: StackConfig, image: pulumi.Input[str], gpus: GpuPlacement
) -> k8s.core.v1.ContainerArgs:
    return k8s.core.v1.ContainerArgs(
        name="server",
        image=image,
        # The image's entrypoint (docker/serve.sh) runs
        # `trtllm-serve $MODEL_ROOT/$MODEL_ID` with these arguments.
        args=options.server_args(cfg),
        env=[*pod_env(cfg), autotuner_cache_env(image)],
        ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=options.SERVER_PORT)],
        resources=server_resources(cfg, gpus),
        volume_mounts=[
            models_mount(),
            # The server only reads the node's copy; the init container writes it.
            k8s.core.v1.VolumeMountArgs(
                name="node-cache", mount_path=NODE_CACHE_MOUNT, read_only=True
            ),
            k8s.core.v1.VolumeMountArgs(name="timeline", mount_path=TIMELINE_MOUNT),
            k8s.core.v1.VolumeMountArgs(name="jit-cache", mount_path=JIT_CACHE_MOUNT),
            k8s.core.v1.VolumeMountArgs(name="tuning-cache", mount_path=TUNING_CACHE_MOUNT),
            k8s.core.v1.VolumeMountArgs(
                name="options", mount_path=options.OPTIONS_MOUNT, read_only=True
            ),
            k8s.core.v1.VolumeMountArgs(name="dshm", mount_path="/dev/shm"),
        ],
        security_context=pod.server_security_context(),
        **probes(cfg),
    )


def wait_for_weights_container(
    cfg: StackConfig, image: pulumi.Input[str]
) -> k8s.core.v1.ContainerArgs:
    """Serving pods wait here, not in the probed container, until the staged
    checkpoint is marked complete; then the checkpoint is copied to the node's
    local SSD once per node (docker/node_cache.py)."""
    return k8s.core.v1.ContainerArgs(
        name="wait-for-weights",
        image=image,
        command=["/opt/deepseek/serve.sh", "--wait-for-weights"],
        env=pod_env(cfg),
        # A parallel copy of ~640 GB; its page cache is charged to this limit.
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": "16", "memory": "32Gi"},
            limits={"cpu": "32", "memory": "32Gi"},
        ),
        volume_mounts=[
            models_mount(),
            k8s.core.v1.VolumeMountArgs(name="node-cache", mount_path=NODE_CACHE_MOUNT),
            k8s.core.v1.VolumeMountArgs(name="timeline", mount_path=TIMELINE_MOUNT),
        ],
        # Writes only to the node's copy and the timeline.
        security_context=pod.restricted_security_context(read_only_root=True),
    )


def pod_volumes(sources: PodSources) -> list[k8s.core.v1.VolumeArgs]:
    return [
        models_volume(sources.weights_bucket, sources.weights_prefix),
        node_cache_volume(),
        tuning_cache_volume(),
        timeline_volume(sources.bucket),
        pod.gcsfuse_volume("jit-cache", sources.bucket, JIT_CACHE_DIR, read_only=False),
        k8s.core.v1.VolumeArgs(
            name="options",
            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=sources.options_config_map),
        ),
        k8s.core.v1.VolumeArgs(
            name="dshm",
            empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                medium="Memory", size_limit=f"{SHM_SIZE_GI}Gi"
            ),
        ),
    ]


def pod_annotations(cfg: StackConfig, options_yaml: str) -> dict[str, str]:
    annotations = {
        **pod.gcsfuse_annotations(),
        # A change of the server options rolls the server: the pod reads
        # the ConfigMap only when it starts.
        OPTIONS_HASH_ANNOTATION: options_hash(options_yaml),
    }
    if cfg.pod_multi_network:
        annotations.update(pod.network_annotations(cfg.pod_network_names))
    return annotations


def server_pod(
    cfg: StackConfig,
    labels: dict[str, str],
    gpus: GpuPlacement,
    sources: PodSources,
    options_yaml: str,
) -> k8s.core.v1.PodTemplateSpecArgs:
    """One server on one GPU node, with every GPU of it."""
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(
            labels=labels, annotations=pod_annotations(cfg, options_yaml)
        ),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=sources.service_account,
            # Workload Identity and GCS FUSE need no token in the pod.
            automount_service_account_token=False,
            security_context=pod.pod_security_context(),
            node_selector=gpus.node_selector,
            tolerations=[
                k8s.core.v1.TolerationArgs(key=t["key"], operator=t["operator"], effect=t["effect"])
                for t in gpus.tolerations
            ],
            termination_grace_period_seconds=60,
            init_containers=[wait_for_weights_container(cfg, sources.image)],
            containers=[server_container(cfg, sources.image, gpus)],
            volumes=pod_volumes(sources),
        ),
    )


# --- the Deployment, the Service, the disruption budget, the scrape -----------


def server_replicas(cfg: StackConfig) -> int:
    """One server per GPU node; none while the stack is paused."""
    return 0 if cfg.paused else cfg.node_count


def server_deployment(
    cfg: StackConfig, objects: ServerObjects, template: k8s.core.v1.PodTemplateSpecArgs
) -> k8s.apps.v1.DeploymentInitArgs:
    return k8s.apps.v1.DeploymentInitArgs(
        metadata=objects.metadata(annotations=await_annotations(cfg)),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            # One 8-GPU server per GPU node: adding nodes scales out.
            replicas=server_replicas(cfg),
            # A second 8-GPU pod cannot surge onto the pool: replace in place.
            strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
            selector=objects.selector,
            template=template,
        ),
    )


def deployment_timeouts(cfg: StackConfig) -> pulumi.CustomTimeouts:
    """Waits for the weights (at most), then for a cold start."""
    minutes = f"{cfg.weights_minutes + cfg.startup_minutes + 10}m"
    return pulumi.CustomTimeouts(create=minutes, update=minutes)


def kubernetes_service_type(cfg: StackConfig) -> str:
    return "LoadBalancer" if cfg.service_type == ServiceType.INTERNAL_LOAD_BALANCER else "ClusterIP"


def server_service(cfg: StackConfig, objects: ServerObjects) -> k8s.core.v1.ServiceInitArgs:
    service_type = kubernetes_service_type(cfg)
    annotations = {}
    if service_type == "LoadBalancer":
        # An internal passthrough load balancer: a VPC address, never public.
        annotations["networking.gke.io/load-balancer-type"] = "Internal"
    return k8s.core.v1.ServiceInitArgs(
        metadata=objects.metadata(annotations=annotations),
        spec=k8s.core.v1.ServiceSpecArgs(
            type=service_type,
            selector=objects.labels,
            ports=[
                k8s.core.v1.ServicePortArgs(
                    name="http", port=options.SERVER_PORT, target_port="http", protocol="TCP"
                )
            ],
        ),
    )


def disruption_budget(objects: ServerObjects) -> k8s.policy.v1.PodDisruptionBudgetInitArgs:
    """Voluntary evictions (node upgrades, drains) take one server at a time."""
    return k8s.policy.v1.PodDisruptionBudgetInitArgs(
        metadata=objects.metadata(),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1, selector=objects.selector
        ),
    )


def pod_monitoring_spec(objects: ServerObjects) -> dict[str, Any]:
    """Managed Service for Prometheus scrapes the server's Prometheus text
    (only served with `prometheusMetrics`, see workloads/options.py)."""
    return {
        "selector": {"matchLabels": objects.labels},
        "endpoints": [{"port": "http", "path": METRICS_PATH, "interval": "30s"}],
    }


class Serving(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        namespace: Namespace,
        image: pulumi.Input[str],
        bucket: pulumi.Input[str],
        weights_bucket: pulumi.Input[str],
        weights_prefix: str,
        gpus: GpuPlacement,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`bucket`: the stack's bucket (JIT cache, timeline); the checkpoint is read
        from `weights_bucket`/`weights_prefix` (the stack's, or a pre-staged one);
        `gpus`: where the GPU pool's pods go (GpuNodePool.placement)."""
        super().__init__("a4deepseek:workloads:Serving", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        objects = server_objects(cfg, namespace.name)
        self.app_name = objects.name
        # Computed once per run: the ConfigMap, the pod's rollout hash, and the
        # smoke check's and benchmark's run ids read it from here.
        self.options_yaml = options.llm_options_yaml(cfg)

        self.config_map = k8s.core.v1.ConfigMap(
            "llm-options", server_options_config_map(objects, self.options_yaml), opts=child
        )
        sources = PodSources(
            image=image,
            bucket=bucket,
            weights_bucket=weights_bucket,
            weights_prefix=weights_prefix,
            service_account=namespace.service_account.metadata.name,
            options_config_map=self.config_map.metadata.name,
        )
        self.deployment = k8s.apps.v1.Deployment(
            "server",
            server_deployment(
                cfg, objects, server_pod(cfg, objects.labels, gpus, sources, self.options_yaml)
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=depends_on, custom_timeouts=deployment_timeouts(cfg)
            ),
        )
        self.service = k8s.core.v1.Service("service", server_service(cfg, objects), opts=child)
        k8s.policy.v1.PodDisruptionBudget("server", disruption_budget(objects), opts=child)
        if cfg.prometheus_metrics:
            k8s.apiextensions.CustomResource(
                "metrics",
                api_version="monitoring.googleapis.com/v1",
                kind="PodMonitoring",
                metadata=objects.metadata(),
                spec=pod_monitoring_spec(objects),
                opts=child,
            )
        # pulumi-kubernetes waits for a LoadBalancer Service's address before it
        # counts as created (its Service await logic), so this is known after `up`.
        self.internal_endpoint: pulumi.Output[str] | None = None
        if kubernetes_service_type(cfg) == "LoadBalancer":
            self.internal_endpoint = self.service.status.apply(internal_endpoint)
        self.url = f"http://{self.app_name}.{cfg.namespace}.svc.cluster.local:{options.SERVER_PORT}"
        self.model = options.served_model_name(cfg)
        self.curl_example = curl_example(self.model)
        self.register_outputs({"service": self.service.metadata.name, "model": self.model})


def internal_endpoint(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
    """The OpenAI API root at the internal load balancer's VPC address."""
    ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    address = next((i.ip or i.hostname for i in ingress if i.ip or i.hostname), None)
    if address is None:
        return "(no address yet: kubectl get service shows it once the load balancer has one)"
    return f"http://{address}:{options.SERVER_PORT}/v1"


def curl_example(model: str) -> str:
    """The seed's first request, against the port-forwarded service."""
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful AI assistant"},
            {"role": "user", "content": "How many letters r are in the word strawberry?"},
        ],
        "temperature": 0.6,
        "top_p": 0.95,
        "max_tokens": 1024,
    }
    return (
        f"curl http://localhost:{options.SERVER_PORT}/v1/chat/completions "
        f"-H 'Content-Type: application/json' -d '{json.dumps(body)}'"
    )
