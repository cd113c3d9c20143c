"""In-cluster objects for the GPU nodes' extra networks (gVNIC + 8 RDMA).

One GKENetworkParamSet + Network pair per extra network, as GKE's
multi-network guide and Cluster Toolkit's A4 blueprint create them
(networking.gke.io/v1; schemas in shared/reference/crds). The serving pods
attach them by name (workloads/pod.py network_annotations).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.naming import Names


def network_pairs(names: Names, pod_network_names: tuple[str, ...]) -> list[dict]:
    """(object name, VPC, subnet, device mode) for each extra network, in NIC order."""
    vpcs = [(names.gvnic_network, names.gvnic_subnet, "NetDevice")] + [
        (names.rdma_network, subnet, "RDMA") for subnet in names.rdma_subnets
    ]
    return [
        {"name": name, "vpc": vpc, "subnet": subnet, "device_mode": mode}
        for name, (vpc, subnet, mode) in zip(pod_network_names, vpcs, strict=True)
    ]


def param_set_spec(pair: dict) -> dict:
    return {"vpc": pair["vpc"], "vpcSubnet": pair["subnet"], "deviceMode": pair["device_mode"]}


def network_spec(pair: dict) -> dict:
    return {
        "type": "Device",
        "parametersRef": {
            "group": "networking.gke.io",
            "kind": "GKENetworkParamSet",
            "name": pair["name"],
        },
    }


class PodNetworks(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        names: Names,
        pod_network_names: tuple[str, ...],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:workloads:PodNetworks", name, None, opts)
        self.networks: list[pulumi.Resource] = []
        for pair in network_pairs(names, pod_network_names):
            child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
            params = k8s.apiextensions.CustomResource(
                f"params-{pair['name']}",
                api_version="networking.gke.io/v1",
                kind="GKENetworkParamSet",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=pair["name"]),
                spec=param_set_spec(pair),
                opts=child,
            )
            self.networks.append(
                k8s.apiextensions.CustomResource(
                    f"network-{pair['name']}",
                    api_version="networking.gke.io/v1",
                    kind="Network",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=pair["name"]),
                    spec=network_spec(pair),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[params]),
                )
            )
        self.register_outputs({"networks": list(pod_network_names)})
