"""Pieces of pod specs shared by the serving, weights and benchmark workloads (pure)."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s

from infra.config import ClusterMode, StackConfig
from infra.naming import Names

GCSFUSE_DRIVER = "gcsfuse.csi.storage.gke.io"


def network_annotations(pod_network_names: tuple[str, ...]) -> dict[str, str]:
    """Attach the node's extra NICs to the pod: eth0 on the default pod network,
    then eth1.. on the gVNIC and RDMA `Network` objects, in NIC order."""
    interfaces = [{"interfaceName": "eth0", "network": "default"}] + [
        {"interfaceName": f"eth{index}", "network": name}
        for index, name in enumerate(pod_network_names, start=1)
    ]
    return {
        "networking.gke.io/default-interface": "eth0",
        "networking.gke.io/interfaces": json.dumps(interfaces, separators=(",", ":")),
    }


def gcsfuse_annotations() -> dict[str, str]:
    """Inject the GCS FUSE sidecar; lift its default CPU, memory and disk
    limits, which throttle multi-hundred-GB reads (GCS FUSE CSI driver docs)."""
    return {
        "gke-gcsfuse/volumes": "true",
        "gke-gcsfuse/cpu-limit": "0",
        "gke-gcsfuse/memory-limit": "0",
        "gke-gcsfuse/ephemeral-storage-limit": "0",
    }


# Mount options for reading the checkpoint: the file cache (on the node's
# local SSD, where GKE puts ephemeral storage) with parallel downloads fills
# each shard with many concurrent range reads. Values as in GPU recipes' A4
# serving charts; see the gcsfuse file-cache documentation.
READ_MOUNT_OPTIONS = (
    "implicit-dirs",
    "file-cache:enable-parallel-downloads:true",
    "file-cache:parallel-downloads-per-file:100",
    "file-cache:max-parallel-downloads:-1",
    "file-cache:download-chunk-size-mb:50",
    "file-cache:max-size-mb:-1",
)
WRITE_MOUNT_OPTIONS = ("implicit-dirs",)


def gcsfuse_volume(
    name: str,
    bucket: pulumi.Input[str],
    only_dir: str,
    read_only: bool,
    file_cache: bool = True,
    owner: int | None = None,
) -> k8s.core.v1.VolumeArgs:
    """A bucket folder; read-only mounts keep the file cache unless `file_cache` is off
    (a volume read once, like the checkpoint copied to local SSD). `owner`: the UID
    and GID the mount's files belong to, for a non-root pod that writes (GCS FUSE
    mounts for root unless the uid/gid options say otherwise; GKE's Cloud Storage
    FUSE CSI driver docs, "mount options")."""
    cached = read_only and file_cache
    options = READ_MOUNT_OPTIONS if cached else WRITE_MOUNT_OPTIONS
    if owner is not None:
        options = (*options, f"uid={owner}", f"gid={owner}")
    attributes = {
        "bucketName": bucket,
        "mountOptions": ",".join((f"only-dir={only_dir}", *options)),
    }
    if cached:
        attributes["fileCacheCapacity"] = "-1"
        attributes["fileCacheForRangeRead"] = "true"
    return k8s.core.v1.VolumeArgs(
        name=name,
        csi=k8s.core.v1.CSIVolumeSourceArgs(
            driver=GCSFUSE_DRIVER, read_only=read_only, volume_attributes=attributes
        ),
    )


def node_pool_selector(pool: str) -> dict[str, str]:
    return {"cloud.google.com/gke-nodepool": pool}


def utility_job_spec(
    cfg: StackConfig,
    names: Names,
    service_account: pulumi.Input[str],
    labels: dict[str, str],
    container: k8s.core.v1.ContainerArgs,
    volumes: list[k8s.core.v1.VolumeArgs],
    restart_policy: str,
    backoff_limit: int,
    deadline_seconds: int | None = None,
) -> k8s.batch.v1.JobSpecArgs:
    """The spec of the weights or benchmark Job: one pod with GCS FUSE mounts, on
    the stack's system pool (in an adopted cluster, any node without the GPU taint)."""
    return k8s.batch.v1.JobSpecArgs(
        backoff_limit=backoff_limit,
        active_deadline_seconds=deadline_seconds,
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels, annotations=gcsfuse_annotations()),
            spec=k8s.core.v1.PodSpecArgs(
                restart_policy=restart_policy,
                service_account_name=service_account,
                automount_service_account_token=False,
                security_context=pod_security_context(),
                node_selector=(
                    node_pool_selector(names.system_pool)
                    if cfg.cluster_mode == ClusterMode.CREATE
                    else None
                ),
                containers=[container],
                volumes=volumes,
            ),
        ),
    )


# A high non-root UID for the utility Jobs (checkov CKV_K8S_40 asks for >= 10000);
# their bucket mounts are owned by it (`gcsfuse_volume(owner=...)`).
NON_ROOT_UID = 10001


def restricted_security_context(
    read_only_root: bool = False, run_as: int | None = None
) -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        read_only_root_filesystem=True if read_only_root else None,
        run_as_non_root=True if run_as is not None else None,
        run_as_user=run_as,
        run_as_group=run_as,
    )


def server_security_context() -> k8s.core.v1.SecurityContextArgs:
    """The TensorRT-LLM server keeps root and the runtime's default capabilities
    (the NGC image, NCCL and RDMA memory registration expect them), without
    NET_RAW and without privilege escalation."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["NET_RAW"]),
    )


def pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    """The container runtime's default seccomp profile: what `docker run` applies,
    and what NVIDIA runs its TensorRT-LLM containers with."""
    return k8s.core.v1.PodSecurityContextArgs(
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")
    )
