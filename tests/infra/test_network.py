"""The three VPCs, under mocks."""

from __future__ import annotations

from tests.conftest import plan_of

NET = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
FIREWALL = "gcp:compute/firewall:Firewall"


def test_host_vpc_has_pod_and_service_ranges_and_private_google_access(dev_plan):
    host = dev_plan.one(NET, "host").inputs
    assert host["autoCreateSubnetworks"] is False
    assert host["mtu"] == 8896
    subnet = dev_plan.one(SUBNET, "host").inputs
    assert subnet["ipCidrRange"] == "192.168.0.0/18"
    assert subnet["privateIpGoogleAccess"] is True
    assert subnet["network"] == dev_plan.one(NET, "host").id
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet["secondaryIpRanges"]}
    assert ranges == {"pods": "10.4.0.0/14", "services": "10.0.32.0/20"}


def test_rdma_vpc_uses_the_zone_roce_profile_and_jumbo_mtu(dev_plan):
    rdma = dev_plan.one(NET, "rdma").inputs
    assert rdma["networkProfile"] == (
        "https://www.googleapis.com/compute/beta/projects/my-a4-project/global/"
        "networkProfiles/us-central1-b-vpc-roce"
    )
    assert rdma["mtu"] == 8896
    assert rdma["autoCreateSubnetworks"] is False
    assert rdma["routingMode"] == "REGIONAL"


def test_rdma_vpc_has_eight_disjoint_subnets_in_the_region(dev_plan):
    subnets = [dev_plan.one(SUBNET, f"rdma-{i}").inputs for i in range(8)]
    assert [s["name"] for s in subnets] == [f"dsr1-rdma-net-sub-{i}" for i in range(8)]
    assert [s["ipCidrRange"] for s in subnets] == [f"192.168.{128 + 8 * i}.0/21" for i in range(8)]
    assert {s["region"] for s in subnets} == {"us-central1"}
    assert {s["network"] for s in subnets} == {dev_plan.one(NET, "rdma").id}


def test_no_firewall_rule_is_attached_to_the_rdma_network(dev_plan):
    rdma_id = dev_plan.one(NET, "rdma").id
    firewalls = dev_plan.of_type(FIREWALL)
    assert firewalls, "host and gVNIC VPCs need their internal firewall rules"
    assert all(f.inputs["network"] != rdma_id for f in firewalls)


def test_host_and_gvnic_vpcs_allow_internal_traffic_and_have_nat(dev_plan):
    for role, sources in (
        ("host", ["192.168.0.0/18", "10.4.0.0/14"]),
        ("gvnic", ["192.168.64.0/18"]),
    ):
        rule = dev_plan.one(FIREWALL, f"{role}-internal").inputs
        assert rule["sourceRanges"] == sources
        assert {a["protocol"] for a in rule["allows"]} == {"tcp", "udp", "icmp"}
        nat = dev_plan.one("gcp:compute/routerNat:RouterNat", f"{role}-nat").inputs
        assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
        router = dev_plan.one("gcp:compute/router:Router", f"{role}-router").inputs
        assert nat["router"] == router["name"]


def test_custom_names_and_ranges_are_used():
    plan = plan_of(
        "dev",
        hostNetworkName="corp-host",
        rdmaNetworkName="corp-rdma",
        rdmaCidr="172.16.0.0/16",
    )
    assert plan.one(NET, "host").inputs["name"] == "corp-host"
    assert plan.one(SUBNET, "rdma-7").inputs["name"] == "corp-rdma-sub-7"
    assert plan.one(SUBNET, "rdma-7").inputs["ipCidrRange"] == "172.16.224.0/19"
