"""GPU machine shapes with RDMA networking that this stack knows how to build.

Each entry is a fact about a Compute Engine machine type. Sources:
- accelerator type and count: Cluster Toolkit `modules/internal/gpu-definition`
  (the table GKE modules use to attach `guest_accelerator` blocks);
- local SSD count: Cluster Toolkit `modules/compute/gke-node-pool/disk_definitions.tf`
  (`a4-highgpu-8g` and `a3-ultragpu-8g` both come with 32 local NVMe disks,
  12 TiB in all, which GKE can use only in full);
- NIC layout: Compute Engine accelerator-optimized machine docs: one gVNIC for
  the host, one more gVNIC, eight MRDMA NICs (one per GPU) on a RoCE VPC.
"""

from __future__ import annotations

from dataclasses import dataclass

RDMA_NIC_COUNT = 8


@dataclass(frozen=True)
class MachineShape:
    machine_type: str
    accelerator_type: str
    gpu_count: int
    local_ssd_count: int
    # What the one server pod on a node asks for: most of the node, leaving
    # room for GKE's reservations and daemons (GCS FUSE sidecar, DCGM, ...).
    # Memory includes /dev/shm and the page cache of the weights being read.
    server_cpu: int
    server_memory_gi: int
    server_memory_limit_gi: int
    # The oldest GKE version the GPU recipes validated the shape on.
    min_gke_version: str = ""


SHAPES: dict[str, MachineShape] = {
    shape.machine_type: shape
    for shape in (
        # a4-highgpu-8g: 224 vCPU, 3,968 GB memory, 8x B200 (180 GB HBM3e each).
        # GKE 1.32.4-gke.1236000 or later: AI-Hypercomputer/gpu-recipes
        # docs/configuring-environment-gke-a4.md.
        MachineShape("a4-highgpu-8g", "nvidia-b200", 8, 32, 180, 2800, 3200, "1.32.4-gke.1236000"),
        # a3-ultragpu-8g: 224 vCPU, 2,952 GB memory, 8x H200 (141 GB HBM3e each).
        # GKE 1.31.7-gke.1265000 or later: configuring-environment-gke-a3-ultra.md.
        MachineShape(
            "a3-ultragpu-8g", "nvidia-h200-141gb", 8, 32, 180, 2000, 2400, "1.31.7-gke.1265000"
        ),
    )
}
