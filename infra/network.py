"""The three VPCs an A4 node needs: host, second gVNIC, and RDMA (RoCE).

Layout from Cluster Toolkit's `examples/gke-a4` blueprint with the
`modules/network/vpc` and `modules/network/gpu-rdma-vpc` modules, and the RDMA
network profile doc (cloud.google.com/vpc/docs/rdma-network-profiles).
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.naming import Names
from infra.rules import rdma_subnet_cidrs

# A4 NICs support jumbo frames; Cluster Toolkit's A4 blueprint sets 8896 on all
# three VPCs, the largest MTU a RoCE VPC accepts.
JUMBO_MTU = 8896
POD_RANGE = "pods"
SERVICE_RANGE = "services"


def rdma_network_profile(project: str, zone: str) -> str:
    """The zonal RoCE network profile an RDMA VPC must be created with."""
    return (
        f"https://www.googleapis.com/compute/beta/projects/{project}"
        f"/global/networkProfiles/{zone}-vpc-roce"
    )


class Network(pulumi.ComponentResource):
    """Host VPC (nodes, pods, services), gVNIC VPC, and RDMA VPC with 8 subnets."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)

        self.host_network, self.host_subnet = self._vpc_with_nat(
            "host",
            cfg,
            names.host_network,
            names.host_subnet,
            cfg.host_subnet_cidr,
            secondary_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=POD_RANGE, ip_cidr_range=cfg.pod_cidr
                ),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=SERVICE_RANGE, ip_cidr_range=cfg.service_cidr
                ),
            ],
            internal_sources=[cfg.host_subnet_cidr, cfg.pod_cidr],
            opts=child,
        )
        self.gvnic_network, self.gvnic_subnet = self._vpc_with_nat(
            "gvnic",
            cfg,
            names.gvnic_network,
            names.gvnic_subnet,
            cfg.gvnic_subnet_cidr,
            secondary_ranges=[],
            internal_sources=[cfg.gvnic_subnet_cidr],
            opts=child,
        )

        # The RoCE VPC is zonal: its profile names the GPU pool's zone. VPC
        # firewall rules are rejected on it, so none is created.
        self.rdma_network = gcp.compute.Network(
            "rdma",
            project=cfg.project,
            name=names.rdma_network,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            mtu=JUMBO_MTU,
            network_profile=rdma_network_profile(cfg.project, cfg.zone),
            opts=child,
        )
        self.rdma_subnets = [
            gcp.compute.Subnetwork(
                f"rdma-{index}",
                project=cfg.project,
                name=subnet_name,
                region=cfg.region,
                network=self.rdma_network.id,
                ip_cidr_range=cidr,
                opts=child,
            )
            for index, (subnet_name, cidr) in enumerate(
                zip(names.rdma_subnets, rdma_subnet_cidrs(cfg.rdma_cidr), strict=True)
            )
        ]
        # (network, subnetwork) of each extra NIC of a GPU node, in NIC order.
        self.node_networks = [(self.gvnic_network.name, self.gvnic_subnet.name)] + [
            (self.rdma_network.name, subnet.name) for subnet in self.rdma_subnets
        ]
        self.register_outputs(
            {
                "hostNetwork": self.host_network.name,
                "gvnicNetwork": self.gvnic_network.name,
                "rdmaNetwork": self.rdma_network.name,
                "rdmaSubnets": [s.name for s in self.rdma_subnets],
            }
        )

    def _vpc_with_nat(
        self,
        role: str,
        cfg: StackConfig,
        network_name: str,
        subnet_name: str,
        cidr: str,
        secondary_ranges: list,
        internal_sources: list[str],
        opts: pulumi.ResourceOptions,
    ) -> tuple[gcp.compute.Network, gcp.compute.Subnetwork]:
        network = gcp.compute.Network(
            role,
            project=cfg.project,
            name=network_name,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            mtu=JUMBO_MTU,
            opts=opts,
        )
        subnet = gcp.compute.Subnetwork(
            role,
            project=cfg.project,
            name=subnet_name,
            region=cfg.region,
            network=network.id,
            ip_cidr_range=cidr,
            secondary_ip_ranges=secondary_ranges,
            # Private nodes reach Google APIs (Artifact Registry, GCS) without NAT.
            private_ip_google_access=True,
            opts=opts,
        )
        gcp.compute.Firewall(
            f"{role}-internal",
            project=cfg.project,
            name=f"{network_name}-internal",
            network=network.id,
            direction="INGRESS",
            source_ranges=internal_sources,
            allows=[
                gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["0-65535"]),
                gcp.compute.FirewallAllowArgs(protocol="udp", ports=["0-65535"]),
                gcp.compute.FirewallAllowArgs(protocol="icmp"),
            ],
            opts=opts,
        )
        # Private nodes have no external IP: Cloud NAT lets them pull public
        # images (nvcr.io) and download from Hugging Face.
        router = gcp.compute.Router(
            f"{role}-router",
            project=cfg.project,
            name=f"{network_name}-router",
            region=cfg.region,
            network=network.id,
            opts=opts,
        )
        gcp.compute.RouterNat(
            f"{role}-nat",
            project=cfg.project,
            name=f"{network_name}-nat",
            router=router.name,
            region=cfg.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            # A node needs one NAT port per concurrent connection to the same
            # destination; the default is a fixed 64 per VM
            # (cloud.google.com/nat/docs/ports-and-addresses). The weights
            # download opens many parallel connections to one CDN host, so
            # ports are allocated dynamically from natMinPortsPerVm up to
            # natMaxPortsPerVm; dynamic allocation excludes endpoint-independent
            # mapping (compute v1 API RouterNat.enableDynamicPortAllocation).
            enable_dynamic_port_allocation=True,
            enable_endpoint_independent_mapping=False,
            min_ports_per_vm=cfg.nat_min_ports_per_vm,
            max_ports_per_vm=cfg.nat_max_ports_per_vm,
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=opts,
        )
        return network, subnet


def existing_node_networks(names: Names) -> list[tuple[str, str]]:
    """`Network.node_networks` for networks that already exist (adopted cluster)."""
    return [(names.gvnic_network, names.gvnic_subnet)] + [
        (names.rdma_network, subnet) for subnet in names.rdma_subnets
    ]
