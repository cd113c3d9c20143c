"""The GKE cluster and its system pool, under mocks."""

from __future__ import annotations

import pytest

from tests.conftest import plan_of

CLUSTER = "gcp:container/cluster:Cluster"
POOL = "gcp:container/nodePool:NodePool"


def test_cluster_is_regional_vpc_native_with_multi_networking(dev_plan):
    c = dev_plan.one(CLUSTER).inputs
    assert c["location"] == "us-central1"
    assert c["removeDefaultNodePool"] is True
    assert c["networkingMode"] == "VPC_NATIVE"
    assert c["ipAllocationPolicy"] == {
        "clusterSecondaryRangeName": "pods",
        "servicesSecondaryRangeName": "services",
    }
    assert c["datapathProvider"] == "ADVANCED_DATAPATH"
    assert c["enableMultiNetworking"] is True
    assert c["network"] == dev_plan.one("gcp:compute/network:Network", "host").id


def test_cluster_identity_storage_and_monitoring_addons(dev_plan):
    c = dev_plan.one(CLUSTER).inputs
    assert c["workloadIdentityConfig"] == {"workloadPool": "my-a4-project.svc.id.goog"}
    assert c["addonsConfig"]["gcsFuseCsiDriverConfig"] == {"enabled": True}
    assert "DCGM" in c["monitoringConfig"]["enableComponents"]
    assert c["monitoringConfig"]["managedPrometheus"]["enabled"] is True
    assert c["enableShieldedNodes"] is True


def test_private_nodes_behind_an_authorized_public_endpoint(dev_plan):
    c = dev_plan.one(CLUSTER).inputs
    assert c["privateClusterConfig"]["enablePrivateNodes"] is True
    assert c["privateClusterConfig"]["enablePrivateEndpoint"] is False
    blocks = c["masterAuthorizedNetworksConfig"]["cidrBlocks"]
    assert [b["cidrBlock"] for b in blocks] == ["203.0.113.7/32"]


def test_without_a_prefix_the_version_is_the_channels_default(dev_plan):
    c = dev_plan.one(CLUSTER).inputs
    assert c["releaseChannel"] == {"channel": "REGULAR"}
    # The mock answers each field of the data source with its own placeholder.
    assert c["minMasterVersion"] == "<computed:gke-version REGULAR default>"
    calls = [args for token, args, _ in dev_plan.invokes if token.endswith("getEngineVersions")]
    assert calls and calls[0]["location"] == "us-central1"


def test_the_version_follows_the_release_channel():
    plan = plan_of("dev", releaseChannel="STABLE")
    assert plan.one(CLUSTER).inputs["releaseChannel"] == {"channel": "STABLE"}
    assert plan.one(CLUSTER).inputs["minMasterVersion"] == "<computed:gke-version STABLE default>"


def test_with_a_prefix_the_version_is_the_channels_newest_match():
    plan = plan_of("dev", gkeVersionPrefix="1.33.")
    calls = [args for token, args, _ in plan.invokes if token.endswith("getEngineVersions")]
    assert calls[0]["versionPrefix"] == "1.33."
    assert (
        plan.one(CLUSTER).inputs["minMasterVersion"]
        == "<computed:gke-version REGULAR latest 1.33.*>"
    )


def test_deletion_protection_follows_the_stack(dev_plan, prod_plan):
    assert dev_plan.one(CLUSTER).inputs["deletionProtection"] is False
    assert prod_plan.one(CLUSTER).inputs["deletionProtection"] is True


def test_cluster_has_long_timeouts_and_ignores_fields_gke_owns(dev_plan):
    reg = dev_plan.one(CLUSTER)
    assert reg.custom_timeouts["create"] == "60m"
    # The removed default pool's settings, and the version the release channel
    # upgrades the control plane to: otherwise every later `up` would undo them.
    assert {"nodeConfig", "initialNodeCount", "minMasterVersion"} <= set(reg.ignore_changes)


def test_cluster_waits_for_the_node_account_roles(dev_plan):
    role = next(
        b
        for b in dev_plan.of_type("gcp:projects/iAMMember:IAMMember")
        if b.inputs["role"] == "roles/container.defaultNodeServiceAccount"
    )
    assert role.urn in dev_plan.one(CLUSTER).dependencies


def test_system_pool_runs_non_gpu_pods_with_the_node_identity(dev_plan):
    pool = dev_plan.one(POOL, "system").inputs
    sa = dev_plan.one("gcp:serviceaccount/account:Account", "nodes")
    assert pool["cluster"] == dev_plan.one(CLUSTER).id
    assert pool["nodeConfig"]["serviceAccount"] == sa.state["email"]
    assert pool["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert "guestAccelerators" not in pool["nodeConfig"]
    assert pool["autoscaling"]["totalMinNodeCount"] >= 1


def test_adopting_a_cluster_creates_no_cluster_network_or_system_pool():
    plan = plan_of(
        "dev",
        clusterMode="adopt",
        clusterName="their-cluster",
        clusterLocation="us-central1-b",
        gvnicNetworkName="their-net-1",
        rdmaNetworkName="their-rdma",
    )
    assert plan.of_type(CLUSTER) == []
    assert plan.of_type("gcp:compute/network:Network") == []
    assert plan.of_type("gcp:compute/subnetwork:Subnetwork") == []
    pools = plan.of_type(POOL)
    assert [p.name for p in pools] == ["gpu"]
    gpu = pools[0].inputs
    assert gpu["cluster"] == "projects/my-a4-project/locations/us-central1-b/clusters/their-cluster"
    assert gpu["location"] == "us-central1-b"
    networks = gpu["networkConfig"]["additionalNodeNetworkConfigs"]
    assert networks[0] == {"network": "their-net-1", "subnetwork": "their-net-1-sub"}
    assert networks[8] == {"network": "their-rdma", "subnetwork": "their-rdma-sub-7"}
    assert plan.outputs["clusterName"] == "their-cluster"


def test_version_falls_back_like_cluster_toolkit_and_fails_clearly():
    from infra.cluster import pick_version

    assert (
        pick_version({"REGULAR": "1.35.1-gke.2"}, "1.35.3-gke.1", "REGULAR", "1.35.")
        == "1.35.1-gke.2"
    )
    assert pick_version({}, "1.35.3-gke.1", "REGULAR", "1.35.") == "1.35.3-gke.1"
    with pytest.raises(ValueError, match=r"no GKE version matches '1\.29\.' in channel STABLE"):
        pick_version({}, None, "STABLE", "1.29.")
