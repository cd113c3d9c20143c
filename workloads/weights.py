"""How serving pods get the checkpoint: the bucket's staged copy, then the node's local SSD.

The checkpoint is staged into a bucket before any pod needs it
(infra/weights_staging.py). Each serving pod's init container waits for the
staged copy's completion marker, then copies it once per node to the node's
local SSD (docker/node_cache.py): a hostPath under the ephemeral local-SSD
mount, so it outlives the pod. A pod re-created on the same node (a rollout,
an eviction) finds the copy current and starts from local SSD without reading
the bucket; only a new node copies again, from the in-region bucket.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.config import StackConfig
from infra.weights_staging import TIMELINE_PREFIX
from workloads import pod

# GKE mounts the node's local SSDs, when they are its ephemeral storage
# (ephemeral_storage_local_ssd_config, infra/gpu_node_pool.py), as one RAID 0
# volume here; Google's A4 inference recipes put the model on it through this
# hostPath (AI-Hypercomputer/gpu-recipes, src/helm-charts/a4/inference-templates/
# deployment/templates/serving-launcher.yaml, `local-ssd` volume).
LOCAL_SSD_HOST_PATH = "/mnt/stateful_partition/kube-ephemeral-ssd"
NODE_CACHE_HOST_PATH = f"{LOCAL_SSD_HOST_PATH}/a4-deepseek-weights"
NODE_CACHE_MOUNT = "/node-cache"
# The server's autotuner tactics, beside the node's copy of the checkpoint.
TUNING_CACHE_HOST_PATH = f"{LOCAL_SSD_HOST_PATH}/a4-deepseek-autotuner"
TUNING_CACHE_MOUNT = "/tuning-cache"
TIMELINE_MOUNT = "/timeline"


def await_annotations(cfg: StackConfig) -> dict[str, str]:
    """With awaitServing false, `pulumi up` returns once objects are accepted."""
    return {} if cfg.await_serving else {"pulumi.com/skipAwait": "true"}


def node_cache_volume() -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name="node-cache",
        host_path=k8s.core.v1.HostPathVolumeSourceArgs(
            path=NODE_CACHE_HOST_PATH, type="DirectoryOrCreate"
        ),
    )


def tuning_cache_volume() -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name="tuning-cache",
        host_path=k8s.core.v1.HostPathVolumeSourceArgs(
            path=TUNING_CACHE_HOST_PATH, type="DirectoryOrCreate"
        ),
    )


def models_volume(bucket: pulumi.Input[str], prefix: str) -> k8s.core.v1.VolumeArgs:
    """The staged checkpoint, read once per node by the copy: no FUSE file cache."""
    return pod.gcsfuse_volume("models", bucket, prefix, read_only=True, file_cache=False)


def timeline_volume(bucket: pulumi.Input[str]) -> k8s.core.v1.VolumeArgs:
    return pod.gcsfuse_volume("timeline", bucket, TIMELINE_PREFIX, read_only=False)
