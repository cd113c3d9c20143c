"""Names of everything the stack creates, derived from the settings (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.shapes import RDMA_NIC_COUNT

if TYPE_CHECKING:  # infra.config imports this module
    from infra.config import StackConfig

BUCKET_NAME_MAX = 63


@dataclass(frozen=True)
class Names:
    cluster: str
    system_pool: str
    gpu_pool: str
    host_network: str
    host_subnet: str
    gvnic_network: str
    gvnic_subnet: str
    rdma_network: str
    rdma_subnets: tuple[str, ...]
    registry: str
    bucket: str
    node_service_account: str
    image_builder_account: str
    weights_stager_account: str
    image: str


def derive_bucket_name(project: str, prefix: str) -> str:
    """`<project>-<prefix>-data`, globally unique because project IDs are.

    Too long a name is cut and given a short hash of the full one, so two long
    projects with the same first characters still get different buckets.
    """
    name = f"{project}-{prefix}-data"
    if len(name) <= BUCKET_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: BUCKET_NAME_MAX - 9].rstrip('-')}-{digest}"


def derive(cfg: StackConfig) -> Names:
    """All resource names for a StackConfig (see infra/config.py)."""
    prefix = cfg.name_prefix
    host = cfg.host_network_name or f"{prefix}-net-0"
    gvnic = cfg.gvnic_network_name or f"{prefix}-net-1"
    rdma = cfg.rdma_network_name or f"{prefix}-rdma-net"
    return Names(
        cluster=cfg.cluster_name or f"{prefix}-gke",
        system_pool="system",
        gpu_pool=f"{cfg.machine_type.split('-')[0]}-gpu",  # a4-gpu, a3-gpu
        host_network=host,
        host_subnet=cfg.host_subnet_name or f"{host}-sub",
        gvnic_network=gvnic,
        gvnic_subnet=cfg.gvnic_subnet_name or f"{gvnic}-sub",
        rdma_network=rdma,
        rdma_subnets=tuple(
            f"{cfg.rdma_subnet_prefix or rdma + '-sub'}-{i}" for i in range(RDMA_NIC_COUNT)
        ),
        registry=cfg.registry_name or f"{prefix}-images",
        bucket=cfg.bucket_name or derive_bucket_name(cfg.project, prefix),
        # Service account IDs: 6-30 characters.
        node_service_account=f"{prefix}-gpu-nodes"[:30],
        image_builder_account=f"{prefix}-image-builder"[:30],
        weights_stager_account=f"{prefix}-weights-stager"[:30],
        image="trtllm-serve",
    )
