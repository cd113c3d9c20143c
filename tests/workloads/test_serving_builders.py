"""The server's objects, built one at a time from a StackConfig and small arguments.

No program run: each test calls one of workloads/serving.py's builders, which
return the SDK's typed arguments, and reads them back. What only the whole
program can show (the GPU pool's placement, the bucket and the ConfigMap
reaching the pod) stays in test_serving.py.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from infra.config import StackConfig, parse
from infra.gpu_node_pool import GpuPlacement
from plan.runner import REPO, read_stack_file
from workloads import options, serving

OPTIONS_FILE = "extra-llm-api-options.yaml"
# A placement as GpuNodePool exposes it; the pool name is distinguishable
# from the stack's (`a4-gpu`), so the pod is seen to take it from here.
GPUS = GpuPlacement(
    node_selector={"cloud.google.com/gke-nodepool": "pool-under-test"},
    tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
    gpu_resource="nvidia.com/gpu",
    gpus_per_node=8,
)
# Every source distinguishable: the stack's bucket is not the checkpoint's.
SOURCES = serving.PodSources(
    image="registry.example/serve@sha256:" + "a" * 64,
    bucket="stack-bucket",
    weights_bucket="weights-bucket",
    weights_prefix="r1/staged",
    service_account="serving-account",
    options_config_map="options-map",
)


def stack_config(stack: str = "dev", **overrides: object) -> StackConfig:
    """The stack file's settings with `overrides`, parsed (and checked) as the program does."""
    values, _ = read_stack_file(stack)
    raw = {key.split(":", 1)[1]: value for key, value in values.items()}
    return parse({**raw, **overrides})


def objects(cfg: StackConfig) -> serving.ServerObjects:
    return serving.server_objects(cfg, "ns-under-test")


def template(cfg: StackConfig, options_yaml: str = "max_seq_len: 2068\n"):
    return serving.server_pod(cfg, objects(cfg).labels, GPUS, SOURCES, options_yaml)


def server(cfg: StackConfig):
    (container,) = template(cfg).spec.containers
    return container


def init_container(cfg: StackConfig):
    (container,) = template(cfg).spec.init_containers
    return container


def served_options(cfg: StackConfig) -> dict:
    """The options file as the ConfigMap carries it."""
    config_map = serving.server_options_config_map(objects(cfg), options.llm_options_yaml(cfg))
    return yaml.safe_load(config_map.data[OPTIONS_FILE])


def by_name(items) -> dict:
    return {item.name: item for item in items}


# --- the pod -----------------------------------------------------------------


def test_the_pod_has_a_250gi_memory_backed_dev_shm():
    """GPU recipes' A4 serving chart: a 250Gi memory emptyDir at /dev/shm for the ranks' buffers."""
    cfg = stack_config()
    shm = by_name(template(cfg).spec.volumes)["dshm"]
    assert shm.empty_dir.medium == "Memory"
    assert shm.empty_dir.size_limit == "250Gi"
    assert by_name(server(cfg).volume_mounts)["dshm"].mount_path == "/dev/shm"


def test_the_server_takes_every_gpu_of_its_node_within_the_machine():
    cfg = stack_config()
    resources = server(cfg).resources
    assert resources.requests["nvidia.com/gpu"] == "8" == resources.limits["nvidia.com/gpu"]
    # a4-highgpu-8g: 224 vCPUs and 3,968 GB of memory (A4 machine type docs).
    assert int(resources.requests["cpu"]) <= 224
    assert int(resources.limits["memory"].removesuffix("Gi")) * 1.0737 < 3968
    assert int(resources.requests["memory"].removesuffix("Gi")) <= int(
        resources.limits["memory"].removesuffix("Gi")
    )


def test_the_pod_goes_where_the_gpu_pool_says():
    spec = template(stack_config()).spec
    assert spec.node_selector == {"cloud.google.com/gke-nodepool": "pool-under-test"}
    (toleration,) = spec.tolerations
    assert (toleration.key, toleration.operator, toleration.effect) == (
        "nvidia.com/gpu",
        "Exists",
        "NoSchedule",
    )
    assert spec.service_account_name == "serving-account"
    assert spec.automount_service_account_token is False


@pytest.mark.parametrize("minutes", [25, 90])
def test_probes_watch_health_with_the_cold_start_budget(minutes):
    container = server(stack_config(startupMinutes=minutes))
    for probe in (container.startup_probe, container.readiness_probe, container.liveness_probe):
        # trtllm-serve's health endpoint, on the port the server is started with.
        assert (probe.http_get.path, probe.http_get.port) == ("/health", 8000)
    startup = container.startup_probe
    assert startup.period_seconds * startup.failure_threshold == minutes * 60
    assert container.ports[0].container_port == 8000 and container.ports[0].name == "http"


def test_the_server_and_its_init_container_share_one_environment():
    cfg = stack_config(weightsMinutes=45, modelRevision="v1.2")

    def env(container) -> dict:
        return {
            e.name: e.value if e.value is not None else e.value_from.field_ref.field_path
            for e in container.env
        }

    shared = env(init_container(cfg))
    # The server has one more: its autotuner's cache file (tested on the whole plan).
    assert {k: v for k, v in env(server(cfg)).items() if k != "TLLM_AUTOTUNER_CACHE_PATH"} == shared
    assert "TLLM_AUTOTUNER_CACHE_PATH" in env(server(cfg))
    assert shared == {
        "MODEL_ID": "deepseek-ai/DeepSeek-R1-0528",
        "MODEL_REVISION": "v1.2",
        "MODEL_ROOT": "/models",
        "NODE_CACHE": "/node-cache",
        "POD_NAME": "metadata.name",
        "NODE_NAME": "spec.nodeName",
        "TIMELINE_FILE": "/timeline/$(POD_NAME).json",
        "HF_HUB_OFFLINE": "1",
        "WEIGHTS_WAIT_SECONDS": "2700",
        "DG_JIT_CACHE_DIR": "/jit-cache/deep_gemm",
        "TRTLLM_DG_CACHE_DIR": "/jit-cache/tensorrt_llm",
        "TRTLLM_DG_JIT_DUMP_CUBIN": "1",
    }


def test_the_environment_has_what_the_images_scripts_read():
    """docker/serve.sh documents its environment in its header; node_cache.py
    reads the pod and node names for the timeline."""
    header = (REPO / "docker" / "serve.sh").read_text().split("set -euo pipefail")[0]
    documented = re.findall(r"^#   ([A-Z_]+) ", header, flags=re.MULTILINE)
    assert {"MODEL_ID", "MODEL_ROOT", "NODE_CACHE", "WEIGHTS_WAIT_SECONDS"} <= set(documented)
    names = {e.name for e in serving.pod_env(stack_config())}
    assert set(documented) | {"POD_NAME", "NODE_NAME"} <= names


def test_jit_caches_are_written_to_the_stacks_bucket():
    """deep_gemm caches in DG_JIT_CACHE_DIR; TensorRT-LLM's DeepGEMM in
    TRTLLM_DG_CACHE_DIR, with the compiled kernels kept (DUMP_CUBIN). Both under
    a writable mount of the stack's bucket, not the checkpoint's."""
    cfg = stack_config()
    container = server(cfg)
    env = {e.name: e.value for e in container.env}
    mounts = by_name(container.volume_mounts)
    volumes = by_name(template(cfg).spec.volumes)
    assert env["TRTLLM_DG_JIT_DUMP_CUBIN"] == "1"
    for variable in ("DG_JIT_CACHE_DIR", "TRTLLM_DG_CACHE_DIR"):
        (name,) = [n for n, m in mounts.items() if env[variable].startswith(m.mount_path + "/")]
        assert not mounts[name].read_only
        csi = volumes[name].csi
        assert csi.driver == "gcsfuse.csi.storage.gke.io" and csi.read_only is False
        assert csi.volume_attributes["bucketName"] == "stack-bucket"
        assert "only-dir=cache/deepgemm" in csi.volume_attributes["mountOptions"].split(",")


def test_the_checkpoint_is_read_from_its_own_bucket_and_the_timeline_goes_to_the_stacks():
    volumes = by_name(template(stack_config()).spec.volumes)
    models = volumes["models"].csi.volume_attributes
    assert models["bucketName"] == "weights-bucket"
    assert "only-dir=r1/staged" in models["mountOptions"].split(",")
    timeline = volumes["timeline"].csi.volume_attributes
    assert timeline["bucketName"] == "stack-bucket"
    assert "only-dir=timeline" in timeline["mountOptions"].split(",")


def test_the_server_reads_the_options_file_from_the_configmap():
    cfg = stack_config()
    config_map = serving.server_options_config_map(objects(cfg), "max_seq_len: 2068\n")
    assert config_map.metadata.name == "dsr1-trtllm-serve-options"
    assert config_map.metadata.namespace == "ns-under-test"
    assert config_map.data == {OPTIONS_FILE: "max_seq_len: 2068\n"}
    args = server(cfg).args
    assert "--extra_llm_api_options=/etc/trtllm/extra-llm-api-options.yaml" in args
    mount = by_name(server(cfg).volume_mounts)["options"]
    assert (mount.mount_path, mount.read_only) == ("/etc/trtllm", True)
    assert by_name(template(cfg).spec.volumes)["options"].config_map.name == "options-map"


def test_a_change_of_the_options_file_rolls_the_server():
    def options_hash(cfg: StackConfig) -> str:
        annotations = template(cfg, options.llm_options_yaml(cfg)).metadata.annotations
        return annotations["a4-deepseek/options-sha256"]

    base = options_hash(stack_config())
    assert re.fullmatch(r"[0-9a-f]{16}", base)
    assert options_hash(stack_config()) == base
    assert options_hash(stack_config(maxSeqLen=16384)) != base
    assert options_hash(stack_config(servingProfile="throughput")) != base


def test_extra_networks_are_attached_in_nic_order_or_not_at_all():
    names = ["gvnic-a", *(f"roce-{i}" for i in range(8))]
    annotations = serving.pod_annotations(stack_config(podNetworkNames=names), "")
    interfaces = json.loads(annotations["networking.gke.io/interfaces"])
    assert interfaces[0] == {"interfaceName": "eth0", "network": "default"}
    assert [i["network"] for i in interfaces[1:]] == names
    assert [i["interfaceName"] for i in interfaces] == [f"eth{i}" for i in range(10)]
    assert annotations["networking.gke.io/default-interface"] == "eth0"
    off = serving.pod_annotations(stack_config(podMultiNetwork=False), "")
    assert "networking.gke.io/interfaces" not in off
    # The GCS FUSE sidecar is injected either way.
    assert off["gke-gcsfuse/volumes"] == "true"


# --- the Deployment, Service, disruption budget and scrape -------------------


@pytest.mark.parametrize("nodes", [1, 3])
def test_one_server_per_gpu_node_replaced_in_place(nodes):
    cfg = stack_config(nodeCount=nodes)
    spec = serving.server_deployment(cfg, objects(cfg), template(cfg)).spec
    assert spec.replicas == nodes
    assert spec.strategy.type == "Recreate"
    assert spec.selector.match_labels == spec.template.metadata.labels


def test_no_server_while_paused():
    cfg = stack_config(nodeCount=2, paused=True)
    assert serving.server_deployment(cfg, objects(cfg), template(cfg)).spec.replicas == 0


def test_pulumi_waits_for_the_weights_and_a_cold_start_or_skips_when_asked():
    cfg = stack_config(weightsMinutes=45, startupMinutes=30)
    timeouts = serving.deployment_timeouts(cfg)
    assert (timeouts.create, timeouts.update) == ("85m", "85m")  # 45 + 30 + 10
    awaited = serving.server_deployment(cfg, objects(cfg), template(cfg)).metadata
    assert not awaited.annotations
    skipped = stack_config(awaitServing=False)
    metadata = serving.server_deployment(skipped, objects(skipped), template(skipped)).metadata
    assert metadata.annotations == {"pulumi.com/skipAwait": "true"}


def test_the_service_is_private_by_default_and_an_internal_load_balancer_when_asked():
    cfg = stack_config()
    service = serving.server_service(cfg, objects(cfg))
    assert service.spec.type == "ClusterIP"
    assert not service.metadata.annotations
    (port,) = service.spec.ports
    assert (port.port, port.target_port, port.protocol) == (8000, "http", "TCP")
    assert service.spec.selector == objects(cfg).labels
    internal = stack_config(serviceType="InternalLoadBalancer")
    service = serving.server_service(internal, objects(internal))
    assert service.spec.type == "LoadBalancer"
    # GKE's annotation for an internal passthrough Network Load Balancer.
    assert service.metadata.annotations == {"networking.gke.io/load-balancer-type": "Internal"}


def test_every_object_carries_the_app_labels_the_network_policy_selects():
    found = objects(stack_config())
    assert found.name == "dsr1-trtllm-serve"
    assert found.labels == {
        "app.kubernetes.io/part-of": "deepseek-r1-trtllm",
        "app.kubernetes.io/name": "trtllm-serve",
        "app.kubernetes.io/instance": "dsr1-trtllm-serve",
    }


def test_the_disruption_budget_takes_one_server_at_a_time():
    budget = serving.disruption_budget(objects(stack_config()))
    assert budget.spec.max_unavailable == 1
    assert budget.spec.selector.match_labels["app.kubernetes.io/name"] == "trtllm-serve"


def test_the_scrape_reads_the_prometheus_text_endpoint():
    """trtllm-serve serves Prometheus text at /prometheus/metrics (/metrics is JSON)."""
    found = objects(stack_config())
    assert serving.pod_monitoring_spec(found) == {
        "selector": {"matchLabels": found.labels},
        "endpoints": [{"port": "http", "path": "/prometheus/metrics", "interval": "30s"}],
    }


# --- the options file --------------------------------------------------------


@pytest.mark.parametrize("model", ["fp8", "nvfp4"])
@pytest.mark.parametrize("profile", ["latency", "throughput"])
def test_the_options_file_is_nvidias_published_profile(model, profile):
    """maxSeqLen 0 serves NVIDIA's benchmark profile exactly; the default
    changes max_seq_len alone."""
    published = yaml.safe_load(options.profile_path(model, profile).read_text())
    exact = stack_config(model=model, servingProfile=profile, maxSeqLen=0, benchmarkEnabled=False)
    assert served_options(exact) == published
    assert published["max_seq_len"] == 2068
    default = served_options(stack_config(model=model, servingProfile=profile))
    assert {k: v for k, v in default.items() if k != "max_seq_len"} == {
        k: v for k, v in published.items() if k != "max_seq_len"
    }


@pytest.mark.parametrize("profile", ["latency", "throughput"])
@pytest.mark.parametrize("model", ["fp8", "nvfp4"])
def test_the_default_stack_lets_r1_finish_a_chat_answer(model, profile):
    """The README's headline chat ("Which is larger, 9.9 or 9.11?") completes:
    after the longest prompt the server takes in one step (max_num_tokens),
    every request keeps DeepSeek-R1's full 32,768-token generation budget (its
    model card's maximum generation length), and the chat client asks for no
    smaller limit (tests/clients/test_chat.py)."""
    served = served_options(stack_config(model=model, servingProfile=profile))
    assert served["max_seq_len"] - served["max_num_tokens"] >= 32768
    assert served["max_seq_len"] <= 163840  # DeepSeek-R1's max_position_embeddings


def test_pipeline_parallelism_reaches_the_options_and_the_arguments():
    cfg = stack_config(tpSize=4, ppSize=2, epSize=2)
    served = served_options(cfg)
    assert (
        served["tensor_parallel_size"],
        served["pipeline_parallel_size"],
        served["moe_expert_parallel_size"],
    ) == (4, 2, 2)
    assert {"--tp_size=4", "--pp_size=2", "--ep_size=2"} <= set(server(cfg).args)


def test_the_server_listens_on_all_interfaces_with_the_pytorch_backend_and_r1_parser():
    args = server(stack_config()).args
    assert "--host=0.0.0.0" in args and "--port=8000" in args
    assert "--backend=pytorch" in args
    assert "--reasoning_parser=deepseek-r1" in args
    assert "--tp_size=8" in args and "--pp_size=1" in args and "--ep_size=8" in args
