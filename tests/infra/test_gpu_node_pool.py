"""The GPU node pool in every consumption mode, under mocks."""

from __future__ import annotations

import pytest

from tests.conftest import plan_of

POOL = "gcp:container/nodePool:NodePool"


def gpu_pool(plan):
    return plan.one(POOL, "gpu")


def test_machine_accelerators_and_driver_come_from_the_shape_table(dev_plan):
    node = gpu_pool(dev_plan).inputs["nodeConfig"]
    assert node["machineType"] == "a4-highgpu-8g"
    (accelerator,) = node["guestAccelerators"]
    assert accelerator["type"] == "nvidia-b200"
    assert accelerator["count"] == 8
    assert accelerator["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}
    assert node["ephemeralStorageLocalSsdConfig"] == {"localSsdCount": 32}


def test_gpu_nodes_boot_from_hyperdisk_of_the_configured_size(dev_plan):
    # A4 VMs boot from Hyperdisk only, not Persistent Disk (pd-*); Cluster
    # Toolkit's A4 blueprint uses hyperdisk-balanced (shared/reference/a4-high-platform.md).
    node = gpu_pool(dev_plan).inputs["nodeConfig"]
    assert (node["diskType"], node["diskSizeGb"]) == ("hyperdisk-balanced", 200)
    bigger = gpu_pool(plan_of("dev", gpuBootDiskGb=500)).inputs["nodeConfig"]
    assert bigger["diskSizeGb"] == 500


def test_sister_shape_a3_ultra_gets_h200s():
    node = gpu_pool(plan_of("dev", machineType="a3-ultragpu-8g")).inputs["nodeConfig"]
    assert node["guestAccelerators"][0]["type"] == "nvidia-h200-141gb"
    assert node["machineType"] == "a3-ultragpu-8g"


def test_pool_is_single_zone_cos_gvnic_with_the_node_identity(dev_plan):
    pool = gpu_pool(dev_plan).inputs
    node = pool["nodeConfig"]
    assert pool["nodeLocations"] == ["us-central1-b"]
    assert node["imageType"] == "COS_CONTAINERD"
    assert node["gvnic"] == {"enabled": True}
    assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    sa = dev_plan.one("gcp:serviceaccount/account:Account", "nodes")
    assert node["serviceAccount"] == sa.state["email"]
    assert node["shieldedInstanceConfig"]["enableSecureBoot"] is True


def test_extra_nics_are_gvnic_first_then_the_eight_rdma_subnets(dev_plan):
    networks = gpu_pool(dev_plan).inputs["networkConfig"]["additionalNodeNetworkConfigs"]
    assert networks[0] == {"network": "dsr1-net-1", "subnetwork": "dsr1-net-1-sub"}
    assert networks[1:] == [
        {"network": "dsr1-rdma-net", "subnetwork": f"dsr1-rdma-net-sub-{i}"} for i in range(8)
    ]


def test_pool_waits_for_the_networks_and_node_roles(dev_plan):
    deps = set(gpu_pool(dev_plan).dependencies)
    for i in range(8):
        assert dev_plan.one("gcp:compute/subnetwork:Subnetwork", f"rdma-{i}").urn in deps
    for binding in dev_plan.of_type("gcp:projects/iAMMember:IAMMember"):
        if binding.inputs["role"] == "roles/container.defaultNodeServiceAccount":
            assert binding.urn in deps


def test_surge_upgrades_never_ask_for_a_second_gpu_node(dev_plan):
    upgrade = gpu_pool(dev_plan).inputs["upgradeSettings"]
    assert upgrade == {"strategy": "SURGE", "maxSurge": 0, "maxUnavailable": 1}


def test_creation_has_a_long_timeout(dev_plan):
    assert gpu_pool(dev_plan).custom_timeouts == {
        "create": "120m",
        "update": "120m",
        "delete": "60m",
    }


def test_reservation_mode_consumes_the_named_reservation(prod_plan):
    pool = gpu_pool(prod_plan).inputs
    affinity = pool["nodeConfig"]["reservationAffinity"]
    assert affinity == {
        "consumeReservationType": "SPECIFIC_RESERVATION",
        "key": "compute.googleapis.com/reservation-name",
        "values": ["projects/my-a4-project/reservations/a4-dense-reservation"],
    }
    assert pool["nodeCount"] == 2
    assert "spot" not in pool["nodeConfig"] and "placementPolicy" not in pool
    assert pool["management"]["autoRepair"] is True


def test_reservation_block_and_owner_project_form_the_reservation_path():
    plan = plan_of("prod", reservationBlock="block-1", reservationProject="capacity-owner")
    values = gpu_pool(plan).inputs["nodeConfig"]["reservationAffinity"]["values"]
    assert values == [
        "projects/capacity-owner/reservations/a4-dense-reservation/reservationBlocks/block-1"
    ]


def test_spot_mode_with_compact_placement(dev_plan):
    pool = gpu_pool(dev_plan).inputs
    assert pool["nodeConfig"]["spot"] is True
    assert pool["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert pool["placementPolicy"] == {"type": "COMPACT"}
    assert pool["nodeCount"] == 1


def test_flex_start_autoscales_from_zero_without_auto_repair():
    plan = plan_of("dev", consumptionMode="flex-start", compactPlacement=False, nodeCount=3)
    reg = gpu_pool(plan)
    pool = reg.inputs
    assert pool["nodeConfig"]["flexStart"] is True
    assert pool["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert "nodeCount" not in pool
    assert pool["autoscaling"] == {
        "totalMinNodeCount": 0,
        "totalMaxNodeCount": 3,
        "locationPolicy": "ANY",
    }
    assert pool["management"]["autoRepair"] is False
    assert "spot" not in pool["nodeConfig"]
    # GKE owns both: the autoscaler the size, GKE the (short-lived) upgrades.
    assert sorted(reg.ignore_changes) == ["nodeCount", "upgradeSettings"]


def test_on_demand_mode_has_no_reservation_spot_or_flex():
    pool = gpu_pool(plan_of("dev", consumptionMode="on-demand", compactPlacement=False)).inputs
    node = pool["nodeConfig"]
    assert node["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert "spot" not in node and "flexStart" not in node
    assert pool["nodeCount"] == 1


@pytest.mark.parametrize("count", [1, 4])
def test_static_node_count_follows_the_setting(count):
    assert gpu_pool(plan_of("dev", nodeCount=count)).inputs["nodeCount"] == count


def test_default_driver_can_be_chosen_for_newer_gke():
    node = gpu_pool(plan_of("dev", gpuDriverVersion="DEFAULT")).inputs["nodeConfig"]
    assert node["guestAccelerators"][0]["gpuDriverInstallationConfig"] == {
        "gpuDriverVersion": "DEFAULT"
    }


def test_the_pool_tells_pods_how_to_land_on_it():
    """Pure: the facts GpuNodePool exposes (as Cluster Toolkit's gke-node-pool
    outputs them), which the serving pods use instead of recomputing them."""
    from infra import config, naming
    from infra.gpu_node_pool import placement
    from tests.test_config import BASE

    names = naming.derive(config.parse({**BASE, "machineType": "a3-ultragpu-8g"}))
    found = placement(names, 8)
    assert found.node_selector == {"cloud.google.com/gke-nodepool": "a3-gpu"}
    # GKE's GPU taint: nvidia.com/gpu=present:NoSchedule.
    assert found.tolerations == (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    )
    assert (found.gpu_resource, found.gpus_per_node) == ("nvidia.com/gpu", 8)
