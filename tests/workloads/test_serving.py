"""The serving workload's Kubernetes objects, under mocks."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import plan_of, transitive_dependencies
from workloads import options

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def pod_spec(plan):
    return plan.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]


def server(plan):
    (container,) = pod_spec(plan)["containers"]
    return container


def served_options(plan) -> dict:
    data = plan.one(CONFIG_MAP, "llm-options").inputs["data"]
    return yaml.safe_load(data[options.OPTIONS_FILE])


def test_profiles_are_nvidias_b200_values():
    latency = options.load_profile("fp8", "latency")
    assert latency["speculative_config"] == {"decoding_type": "MTP", "num_nextn_predict_layers": 3}
    assert latency["enable_attention_dp"] is False
    assert latency["moe_config"] == {"backend": "TRTLLM"}
    assert latency["kv_cache_config"] == {"dtype": "fp8", "free_gpu_memory_fraction": 0.8}
    throughput = options.load_profile("fp8", "throughput")
    assert throughput["enable_attention_dp"] is True
    assert throughput["moe_config"] == {"backend": "DEEPGEMM"}
    assert throughput["attention_dp_config"]["enable_balance"] is True
    assert options.load_profile("nvfp4", "throughput")["moe_config"] == {"backend": "CUTLASS"}
    for model in ("fp8", "nvfp4"):
        for profile in ("latency", "throughput"):
            values = options.load_profile(model, profile)
            assert (values["tensor_parallel_size"], values["moe_expert_parallel_size"]) == (8, 8)
            header = options.profile_path(model, profile).read_text().splitlines()[:6]
            assert any("examples/configs/database" in line for line in header), (
                "profile must cite its source"
            )


def test_overrides_and_parallel_sizes_are_applied_over_the_profile():
    plan = plan_of(
        "dev",
        servingOverrides="kv_cache_config: {free_gpu_memory_fraction: 0.85}",
        maxSeqLen=8192,
        epSize=4,
    )
    served = served_options(plan)
    assert served["kv_cache_config"] == {"dtype": "fp8", "free_gpu_memory_fraction": 0.85}
    assert served["max_seq_len"] == 8192
    assert served["moe_expert_parallel_size"] == 4
    assert "--ep_size=4" in server(plan)["args"]


def test_the_server_reads_the_options_configmap_the_component_creates(dev_plan):
    """The arguments and mounts themselves: test_serving_builders.py."""
    args = server(dev_plan)["args"]
    assert "--extra_llm_api_options=/etc/trtllm/extra-llm-api-options.yaml" in args
    mounts = {m["name"]: m["mountPath"] for m in server(dev_plan)["volumeMounts"]}
    assert mounts["options"] == "/etc/trtllm"
    volumes = {v["name"]: v for v in pod_spec(dev_plan)["volumes"]}
    assert (
        volumes["options"]["configMap"]["name"]
        == dev_plan.one(CONFIG_MAP, "llm-options").inputs["metadata"]["name"]
    )


@pytest.mark.parametrize(
    ("model", "repo"),
    [("fp8", "deepseek-ai/DeepSeek-R1-0528"), ("nvfp4", "nvidia/DeepSeek-R1-0528-FP4-v2")],
)
def test_the_checkpoint_follows_the_model_setting(model, repo):
    plan = plan_of("dev", model=model)
    env = {e["name"]: e.get("value") for e in server(plan)["env"]}
    assert env["MODEL_ID"] == repo
    assert env["HF_HUB_OFFLINE"] == "1"
    staging = plan.one("command:local:Command", "stage-weights-1").inputs
    assert f"_MODEL_ID={repo}," in staging["create"]
    assert staging["triggers"][0] == repo
    # trtllm-serve names a local checkpoint after its folder.
    assert plan.outputs["model"] == repo.split("/")[1]


def test_the_image_is_the_built_digest(dev_plan):
    assert server(dev_plan)["image"] == dev_plan.outputs["image"]
    assert "@sha256:" in server(dev_plan)["image"]
    assert pod_spec(dev_plan)["initContainers"][0]["image"] == dev_plan.outputs["image"]


def test_the_pod_takes_all_eight_gpus_on_the_gpu_pool(dev_plan):
    """The GPU pool's placement reaches the pod (CPU, memory and /dev/shm:
    test_serving_builders.py)."""
    resources = server(dev_plan)["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == "8" == resources["limits"]["nvidia.com/gpu"]
    spec = pod_spec(dev_plan)
    assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "a4-gpu"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]


def test_weights_are_read_once_from_the_bucket_then_from_the_nodes_local_ssd(dev_plan):
    spec = pod_spec(dev_plan)
    volumes = {v["name"]: v for v in spec["volumes"]}
    models = volumes["models"]["csi"]
    assert models["driver"] == "gcsfuse.csi.storage.gke.io"
    assert models["readOnly"] is True
    attributes = models["volumeAttributes"]
    assert attributes["bucketName"] == "my-a4-project-dsr1-data"
    assert "only-dir=models" in attributes["mountOptions"].split(",")
    # Read once by the copy: no per-pod FUSE file cache.
    assert "fileCacheCapacity" not in attributes
    assert not any(o.startswith("file-cache") for o in attributes["mountOptions"].split(","))
    annotations = dev_plan.one(DEPLOYMENT).inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations["gke-gcsfuse/volumes"] == "true"
    init = spec["initContainers"][0]
    assert init["command"] == ["/opt/deepseek/serve.sh", "--wait-for-weights"]


def test_the_nodes_copy_outlives_the_pod_on_the_local_ssd(dev_plan):
    """A hostPath on GKE's local-SSD ephemeral mount survives the pod (an emptyDir,
    and the GCS FUSE driver's cache volume `gke-gcsfuse-cache`, do not), so a pod
    re-created on the same node finds the copy; the server only reads it."""
    spec = pod_spec(dev_plan)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["node-cache"] == {
        "name": "node-cache",
        "hostPath": {
            "path": "/mnt/stateful_partition/kube-ephemeral-ssd/a4-deepseek-weights",
            "type": "DirectoryOrCreate",
        },
    }
    assert "gke-gcsfuse-cache" not in volumes
    init = spec["initContainers"][0]
    init_mounts = {m["name"]: m for m in init["volumeMounts"]}
    assert init_mounts["node-cache"]["mountPath"] == "/node-cache"
    assert not init_mounts["node-cache"].get("readOnly")
    server_mounts = {m["name"]: m for m in server(dev_plan)["volumeMounts"]}
    assert server_mounts["node-cache"] == {
        "name": "node-cache",
        "mountPath": "/node-cache",
        "readOnly": True,
    }
    env = {e["name"]: e for e in server(dev_plan)["env"]}
    assert env["NODE_CACHE"]["value"] == "/node-cache"
    # The GPU pool's local SSDs are the node's ephemeral storage, where the path lives.
    pool = dev_plan.one("gcp:container/nodePool:NodePool", "gpu").inputs["nodeConfig"]
    assert pool["ephemeralStorageLocalSsdConfig"]["localSsdCount"] == 32


def test_a_pre_staged_checkpoint_is_read_from_its_bucket_and_caches_stay_in_the_stacks():
    """With weightsSource the checkpoint's bucket differs from the stack's: the
    models volume reads the first, the JIT cache and the timeline write the second."""
    plan = plan_of("dev", weightsSource="gs://team-weights/r1")
    volumes = {
        v["name"]: v["csi"]["volumeAttributes"] for v in pod_spec(plan)["volumes"] if "csi" in v
    }
    assert volumes["models"]["bucketName"] == "team-weights"
    assert "only-dir=r1" in volumes["models"]["mountOptions"].split(",")
    for name in ("jit-cache", "timeline"):
        assert volumes[name]["bucketName"] == plan.outputs["bucket"] == "my-a4-project-dsr1-data"


def test_each_pod_writes_its_timeline_into_the_stacks_bucket(dev_plan):
    spec = pod_spec(dev_plan)
    volumes = {v["name"]: v for v in spec["volumes"]}
    timeline = volumes["timeline"]["csi"]
    assert timeline["readOnly"] is False
    assert timeline["volumeAttributes"]["bucketName"] == "my-a4-project-dsr1-data"
    assert "only-dir=timeline" in timeline["volumeAttributes"]["mountOptions"].split(",")
    for container in (spec["initContainers"][0], server(dev_plan)):
        env = {e["name"]: e for e in container["env"]}
        assert env["TIMELINE_FILE"]["value"] == "/timeline/$(POD_NAME).json"
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["timeline"] == (
            "/timeline"
        )


def test_pulumi_waits_for_weights_and_cold_start_or_skips_when_asked(dev_plan):
    deployment = dev_plan.one(DEPLOYMENT)
    assert deployment.custom_timeouts["create"] == f"{180 + 60 + 10}m"
    assert "pulumi.com/skipAwait" not in (deployment.inputs["metadata"].get("annotations") or {})
    skipped = plan_of("dev", awaitServing=False).one(DEPLOYMENT)
    assert skipped.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_network_objects_pair_each_name_with_its_vpc_and_device_mode(dev_plan):
    params = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in dev_plan.of_type("kubernetes:networking.gke.io/v1:GKENetworkParamSet")
    }
    assert params["gvnic-1"] == {
        "vpc": "dsr1-net-1",
        "vpcSubnet": "dsr1-net-1-sub",
        "deviceMode": "NetDevice",
    }
    assert params["rdma-7"] == {
        "vpc": "dsr1-rdma-net",
        "vpcSubnet": "dsr1-rdma-net-sub-7",
        "deviceMode": "RDMA",
    }
    networks = dev_plan.of_type("kubernetes:networking.gke.io/v1:Network")
    assert len(networks) == 9
    # Like the other in-cluster objects made before the GPU pool, they wait for
    # the cluster's first nodes (the system pool).
    system_pool = dev_plan.one("gcp:container/nodePool:NodePool", "system").urn
    param_sets = dev_plan.of_type("kubernetes:networking.gke.io/v1:GKENetworkParamSet")
    for reg in [*networks, *param_sets]:
        assert system_pool in transitive_dependencies(dev_plan, reg), reg.name
    for network in networks:
        ref = network.inputs["spec"]["parametersRef"]
        assert ref == {
            "group": "networking.gke.io",
            "kind": "GKENetworkParamSet",
            "name": network.inputs["metadata"]["name"],
        }
        assert network.inputs["spec"]["type"] == "Device"


def test_disruption_budget_selects_the_server_pods(dev_plan):
    labels = dev_plan.one(DEPLOYMENT).inputs["spec"]["selector"]["matchLabels"]
    pdb = dev_plan.one("kubernetes:policy/v1:PodDisruptionBudget").inputs["spec"]
    assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": labels}}


def test_prometheus_metrics_are_scraped_only_where_the_server_serves_them(dev_plan):
    assert dev_plan.of_type("kubernetes:monitoring.googleapis.com/v1:PodMonitoring") == []
    assert "return_perf_metrics" not in served_options(dev_plan)
    plan = plan_of("dev", prometheusMetrics=True)
    labels = plan.one(DEPLOYMENT).inputs["spec"]["selector"]["matchLabels"]
    monitoring = plan.one("kubernetes:monitoring.googleapis.com/v1:PodMonitoring").inputs["spec"]
    assert monitoring["selector"] == {"matchLabels": labels}
    assert monitoring["endpoints"] == [
        {"port": "http", "path": "/prometheus/metrics", "interval": "30s"}
    ]
    served = served_options(plan)
    assert served["return_perf_metrics"] is True and served["enable_iter_perf_stats"] is True


def test_serving_waits_for_the_gpu_pool_and_not_for_the_staging(dev_plan):
    gpu_pool = dev_plan.one("gcp:container/nodePool:NodePool", "gpu").urn
    binding = dev_plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", "workload-objects").urn
    staging = {
        c.urn for c in dev_plan.of_type("command:local:Command") if c.name.startswith("stage-")
    }
    serving = transitive_dependencies(dev_plan, dev_plan.one(DEPLOYMENT))
    assert gpu_pool in serving and binding in serving
    # A run-time wait (the init container), not a graph edge.
    assert len(staging) == 4 and not staging & set(serving)


def test_kubernetes_provider_survives_credential_rotation_and_a_deleted_cluster(dev_plan):
    provider = dev_plan.one("pulumi:providers:kubernetes")
    cluster = dev_plan.one("gcp:container/cluster:Cluster")
    assert provider.inputs["clusterIdentifier"] == cluster.id
    assert provider.inputs["deleteUnreachable"] == "true"
    kubeconfig = json.loads(provider.inputs["kubeconfig"])
    user = kubeconfig["users"][0]["user"]["exec"]
    assert user["command"] == "gke-gcloud-auth-plugin"
    assert user["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://<computed:gke.endpoint>"
    for reg in dev_plan.registrations:
        if reg.custom and reg.type.startswith("kubernetes:") and not reg.type.startswith("pulumi:"):
            assert reg.provider.startswith(provider.urn), reg.name


def test_adopted_cluster_keeps_its_own_network_objects_and_nodes():
    plan = plan_of(
        "dev", clusterMode="adopt", clusterName="theirs", clusterLocation="us-central1-b"
    )
    assert plan.of_type("kubernetes:networking.gke.io/v1:Network") == []
    assert pod_spec(plan)["nodeSelector"] == {"cloud.google.com/gke-nodepool": "a4-gpu"}


def test_outputs_walk_the_user_to_the_endpoint(dev_plan):
    out = dev_plan.outputs
    assert out["namespace"] == "deepseek"
    assert out["service"] == "dsr1-trtllm-serve"
    assert out["portForward"] == "kubectl -n deepseek port-forward svc/dsr1-trtllm-serve 8000:8000"
    assert out["logs"] == "kubectl -n deepseek logs -f deployment/dsr1-trtllm-serve"
    assert out["curlExample"].startswith("curl http://localhost:8000/v1/chat/completions ")
    body = json.loads(out["curlExample"].split("-d '", 1)[1].rstrip("'"))
    assert body["model"] == "DeepSeek-R1-0528"


def test_a_change_of_server_options_rolls_the_server(dev_plan):
    def options_hash(plan):
        annotations = plan.one(DEPLOYMENT).inputs["spec"]["template"]["metadata"]["annotations"]
        return annotations["a4-deepseek/options-sha256"]

    # The hash follows the options (test_serving_builders.py); here, that the
    # component hashes the options its ConfigMap carries.
    assert options_hash(plan_of("dev")) == options_hash(dev_plan)
    assert options_hash(plan_of("dev", servingProfile="throughput")) != options_hash(dev_plan)


def test_pods_are_hardened_and_only_the_server_port_is_open(dev_plan):
    policy = dev_plan.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs["spec"]
    assert policy["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/part-of": "deepseek-r1-trtllm"}
    }
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]
    jobs = [
        j.inputs["spec"]["template"]["spec"] for j in dev_plan.of_type("kubernetes:batch/v1:Job")
    ]
    for spec in [pod_spec(dev_plan), *jobs]:
        assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
        assert spec["automountServiceAccountToken"] is False
    assert server(dev_plan)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["NET_RAW"]},
    }
    # The wait-and-copy init container and the Jobs write only to their volumes:
    # read-only root, no capabilities, no escalation.
    job_containers = [
        j.inputs["spec"]["template"]["spec"]["containers"][0]
        for j in dev_plan.of_type("kubernetes:batch/v1:Job")
    ]
    assert len(job_containers) == 2  # the smoke check and the benchmark
    for container in (pod_spec(dev_plan)["initContainers"][0], *job_containers):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]


def test_the_autotuner_keeps_its_tactics_on_the_nodes_local_ssd(dev_plan):
    """TLLM_AUTOTUNER_CACHE_PATH names a file TensorRT-LLM loads and saves its
    profiled tactics in: on a writable hostPath beside the checkpoint's copy, so
    a pod re-created on the node skips the profiling; one file per image."""
    spec = pod_spec(dev_plan)
    env = {e["name"]: e.get("value") for e in server(dev_plan)["env"]}
    path = env["TLLM_AUTOTUNER_CACHE_PATH"]
    assert re.fullmatch(r"/tuning-cache/[0-9a-f]{16}\.json", path), path
    (mount,) = [m for m in server(dev_plan)["volumeMounts"] if m["name"] == "tuning-cache"]
    assert mount["mountPath"] == "/tuning-cache" and not mount.get("readOnly")
    (volume,) = [v for v in spec["volumes"] if v["name"] == "tuning-cache"]
    assert volume["hostPath"] == {
        "path": "/mnt/stateful_partition/kube-ephemeral-ssd/a4-deepseek-autotuner",
        "type": "DirectoryOrCreate",
    }
    other = plan_of(
        "dev",
        imageBuilder="prebuilt",
        prebuiltImage="us-docker.pkg.dev/team/images/trtllm@sha256:" + "5" * 64,
        benchmarkEnabled="false",
    )
    other_env = {e["name"]: e.get("value") for e in server(other)["env"]}
    assert other_env["TLLM_AUTOTUNER_CACHE_PATH"] != path
