"""The A4 High (or other RDMA shape) GPU node pool.

Settings follow Cluster Toolkit's `modules/compute/gke-node-pool` as the
`examples/gke-a4` blueprint uses it; the consumption-mode rules are that
module's preconditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.cluster import ClusterRef, hardened_node_config
from infra.config import ConsumptionMode, StackConfig
from infra.naming import Names

# Creating 8-GPU nodes, and waiting for flex-start or spot capacity, takes far
# longer than the provider's default 30 minutes.
GPU_POOL_TIMEOUTS = pulumi.CustomTimeouts(create="120m", update="120m", delete="60m")


@dataclass(frozen=True)
class GpuPlacement:
    """What a pod needs to run on the pool's nodes, as Cluster Toolkit's
    gke-node-pool module outputs it: the node selector, the tolerations of the
    pool's taint, and the GPUs a node has (the pod requests all of them)."""

    node_selector: dict[str, str]
    tolerations: tuple[dict[str, str], ...]
    gpu_resource: str
    gpus_per_node: int


def placement(names: Names, gpus_per_node: int) -> GpuPlacement:
    return GpuPlacement(
        # GKE labels every node with its pool's name.
        node_selector={"cloud.google.com/gke-nodepool": names.gpu_pool},
        # GKE taints GPU nodes nvidia.com/gpu=present:NoSchedule
        # (cloud.google.com/kubernetes-engine/docs/how-to/gpus).
        tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
        gpu_resource="nvidia.com/gpu",
        gpus_per_node=gpus_per_node,
    )


def reservation_path(project: str, name: str, block: str = "") -> str:
    """The value GKE expects in `reservation_affinity.values` for a specific reservation."""
    path = f"projects/{project}/reservations/{name}"
    return f"{path}/reservationBlocks/{block}" if block else path


def capacity_settings(cfg: StackConfig) -> dict:
    """Node pool arguments that follow from the consumption mode (pure)."""
    mode = cfg.consumption_mode
    no_reservation = gcp.container.NodePoolNodeConfigReservationAffinityArgs(
        consume_reservation_type="NO_RESERVATION"
    )
    node_config: dict = {"reservation_affinity": no_reservation}
    # Paused: no node (and no GPU bill); the pool, its settings and the
    # cluster stay, so resuming only creates the nodes again.
    pool: dict = {"node_count": 0 if cfg.paused else cfg.node_count}
    auto_repair = True
    if mode == ConsumptionMode.RESERVATION:
        node_config["reservation_affinity"] = (
            gcp.container.NodePoolNodeConfigReservationAffinityArgs(
                consume_reservation_type="SPECIFIC_RESERVATION",
                key="compute.googleapis.com/reservation-name",
                values=[
                    reservation_path(
                        cfg.reservation_project or cfg.project,
                        cfg.reservation_name,
                        cfg.reservation_block,
                    )
                ],
            )
        )
    elif mode == ConsumptionMode.SPOT:
        node_config["spot"] = True
    elif mode == ConsumptionMode.FLEX_START:
        # Flex-start (DWS) nodes are created on demand by the autoscaler, from
        # zero; GKE requires auto-repair off for them. Paused, the pool keeps
        # its range: with no pod asking for GPUs the autoscaler removes the node.
        node_config["flex_start"] = True
        pool = {
            "initial_node_count": 0,
            "autoscaling": gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=0,
                total_max_node_count=cfg.node_count,
                location_policy="ANY",
            ),
        }
        auto_repair = False
    if mode != ConsumptionMode.FLEX_START:
        # A second 8-GPU node for a surge rarely exists: replace one at a time
        # (Cluster Toolkit gke-node-pool defaults). Flex-start pools set none:
        # GKE uses short-lived upgrades for them and owns the field
        # (GKE node-pool-upgrade-strategies; NodePoolUpdateStrategy SHORT_LIVED).
        pool["upgrade_settings"] = gcp.container.NodePoolUpgradeSettingsArgs(
            strategy="SURGE", max_surge=0, max_unavailable=1
        )
    if cfg.compact_placement:
        pool["placement_policy"] = gcp.container.NodePoolPlacementPolicyArgs(type="COMPACT")
    pool["management"] = gcp.container.NodePoolManagementArgs(
        auto_repair=auto_repair, auto_upgrade=True
    )
    return {"pool": pool, "node_config": node_config}


class GpuNodePool(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        cluster: ClusterRef,
        node_service_account: pulumi.Input[str],
        extra_networks: Sequence[tuple[pulumi.Input[str], pulumi.Input[str]]],
        depends_on: list[pulumi.Resource],
        node_locations: pulumi.Input[list[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`depends_on`: the APIs and the node roles' propagation delay;
        `node_locations` defaults to the stack's zone (pass a preflight-gated one)."""
        super().__init__("a4deepseek:infra:GpuNodePool", name, None, opts)
        node_locations = node_locations if node_locations is not None else [cfg.zone]
        shape = cfg.shape
        capacity = capacity_settings(cfg)
        self.placement = placement(names, shape.gpu_count)

        self.pool = gcp.container.NodePool(
            "gpu",
            project=cfg.project,
            name=names.gpu_pool,
            cluster=cluster.id,
            location=cluster.location,
            # The RoCE network is zonal: every GPU node must be in its zone.
            # Known only once the preflight checks pass (infra/preflight.py).
            node_locations=node_locations,
            network_config=gcp.container.NodePoolNetworkConfigArgs(
                # Extra NICs in the order the pods' interface annotations
                # expect: the gVNIC network, then one RDMA subnet per GPU.
                additional_node_network_configs=[
                    gcp.container.NodePoolNetworkConfigAdditionalNodeNetworkConfigArgs(
                        network=network, subnetwork=subnetwork
                    )
                    for network, subnetwork in extra_networks
                ]
            ),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=shape.machine_type,
                guest_accelerators=[
                    gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                        type=shape.accelerator_type,
                        count=shape.gpu_count,
                        gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                            gpu_driver_version=cfg.gpu_driver_version
                        ),
                    )
                ],
                disk_type="hyperdisk-balanced",
                disk_size_gb=cfg.gpu_boot_disk_gb,
                # All local NVMe disks become the node's ephemeral storage:
                # container images, emptyDirs and the GCS FUSE file cache.
                ephemeral_storage_local_ssd_config=gcp.container.NodePoolNodeConfigEphemeralStorageLocalSsdConfigArgs(
                    local_ssd_count=shape.local_ssd_count
                ),
                labels={"pool": "gpu"},
                **hardened_node_config(node_service_account),
                **capacity["node_config"],
            ),
            **capacity["pool"],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                custom_timeouts=GPU_POOL_TIMEOUTS,
                # GKE owns the size and the upgrade strategy of a flex-start pool.
                ignore_changes=["nodeCount", "upgradeSettings"]
                if cfg.consumption_mode == ConsumptionMode.FLEX_START
                else [],
            ),
        )
        self.register_outputs(
            {
                "name": self.pool.name,
                "nodeSelector": self.placement.node_selector,
                "gpusPerNode": self.placement.gpus_per_node,
            }
        )
