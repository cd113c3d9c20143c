"""The GKE cluster and its system node pool, or an adopted existing cluster.

Settings follow Cluster Toolkit's `modules/scheduler/gke-cluster` as used by
`examples/gke-a4`: regional, VPC-native, Dataplane V2 with multi-networking
(both needed for the GPU pods' extra NICs), Workload Identity, GCS FUSE CSI,
managed Prometheus with DCGM metrics, private nodes behind a public endpoint
limited to authorized networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.config import MaintenanceExclusionScope, ReleaseChannel, StackConfig
from infra.naming import Names
from infra.network import POD_RANGE, SERVICE_RANGE, Network
from infra.rules import min_gke_version, version_key
from infra.storage import tier

CLUSTER_TIMEOUTS = pulumi.CustomTimeouts(create="60m", update="60m", delete="45m")


def hardened_node_config(service_account: pulumi.Input[str]) -> dict:
    """Node settings every pool of the stack shares (Cluster Toolkit's defaults):
    COS, gVNIC, shielded boot, the node service account, and the GKE metadata
    server so pods get Workload Identity instead of the node's credentials.

    Image streaming (GcfsConfig, container v1 API): a new node starts the 25-30 GB
    serving image in seconds instead of pulling it whole. GKE's requirements:
    COS with containerd, images in Artifact Registry, the Container File System
    API (infra/services.py), Private Google Access on the private nodes' subnet
    (infra/network.py) and, for a custom node account, Service Usage Consumer
    (infra/identity.py); cloud.google.com/kubernetes-engine/docs/how-to/image-streaming."""
    return {
        "image_type": "COS_CONTAINERD",
        "gcfs_config": gcp.container.NodePoolNodeConfigGcfsConfigArgs(enabled=True),
        "gvnic": gcp.container.NodePoolNodeConfigGvnicArgs(enabled=True),
        "service_account": service_account,
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "workload_metadata_config": gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
            mode="GKE_METADATA"
        ),
        "shielded_instance_config": gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
            enable_secure_boot=True, enable_integrity_monitoring=True
        ),
    }


def pick_version(
    channel_versions: dict[str, str],
    latest_master: str | None,
    channel: ReleaseChannel,
    prefix: str,
    floor: tuple[str, str] = ("", ""),
) -> str:
    """The control-plane version, as Cluster Toolkit's gke-cluster picks it:
    the channel's newest version matching the prefix (the data source leaves
    the channel out when none matches), else the newest matching version.
    It must not be older than `floor` (version, why)."""
    version = channel_versions.get(channel) or latest_master
    if not version:
        raise ValueError(
            f"gkeVersionPrefix: no GKE version matches {prefix!r} in channel {channel}; "
            "list them with `gcloud container get-server-config`"
        )
    minimum, why = floor
    if minimum and "<computed:" not in version and version_key(version) < version_key(minimum):
        raise ValueError(
            f"gkeVersionPrefix: {prefix or 'the ' + channel + ' default'} resolves to GKE "
            f"{version}, older than {minimum} ({why}); set gkeVersionPrefix to "
            f"{'.'.join(minimum.split('.')[:2])}. or newer, or choose a newer releaseChannel"
        )
    return version


def resolve_version(
    versions: pulumi.Output[gcp.container.GetEngineVersionsResult],
    channel: ReleaseChannel,
    prefix: str,
    floor: tuple[str, str] = ("", ""),
) -> pulumi.Output[str]:
    """The newest version of the channel with `prefix`, or without a prefix the
    channel's default version."""
    by_channel = (
        versions.release_channel_latest_version
        if prefix
        else versions.release_channel_default_version
    )
    return pulumi.Output.all(by_channel, versions.latest_master_version).apply(
        lambda args: pick_version(args[0] or {}, args[1], channel, prefix, floor)
    )


def maintenance_policy(cfg: StackConfig) -> gcp.container.ClusterMaintenancePolicyArgs:
    """A daily window and, by default, an exclusion that keeps GKE from
    upgrading nodes (and so recreating the GPU node) until the version's end of
    support; the control plane still gets patches. Cluster Toolkit's
    gke-cluster `maintenance_start_time` / `maintenance_exclusions` and its A4
    blueprint's `no-minor-or-node-upgrades-indefinite` exclusion."""
    exclusions = []
    if cfg.maintenance_exclusion_scope != MaintenanceExclusionScope.NONE:
        exclusions.append(
            gcp.container.ClusterMaintenancePolicyMaintenanceExclusionArgs(
                exclusion_name=cfg.maintenance_exclusion_scope.lower().replace("_", "-"),
                start_time=cfg.maintenance_exclusion_start,
                exclusion_options=gcp.container.ClusterMaintenancePolicyMaintenanceExclusionExclusionOptionsArgs(
                    scope=cfg.maintenance_exclusion_scope,
                    end_time_behavior="UNTIL_END_OF_SUPPORT",
                ),
            )
        )
    return gcp.container.ClusterMaintenancePolicyArgs(
        daily_maintenance_window=gcp.container.ClusterMaintenancePolicyDailyMaintenanceWindowArgs(
            start_time=cfg.maintenance_start_time
        ),
        maintenance_exclusions=exclusions,
    )


@dataclass(frozen=True)
class ClusterRef:
    """What a node pool and the Kubernetes provider need from a cluster."""

    name: pulumi.Output[str]
    location: str
    id: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    ca_certificate: pulumi.Output[str]
    # The project's workload identity pool (`<project>.svc.id.goog`), read from
    # the cluster: an IAM binding that names it waits for the cluster, which
    # creates the pool.
    workload_pool: pulumi.Output[str]


class Cluster(pulumi.ComponentResource):
    """A new regional cluster with a small system node pool."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        network: Network,
        node_service_account: pulumi.Input[str],
        depends_on: list[pulumi.Resource],
        node_roles_ready: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`depends_on`: the APIs and the node account's roles; `node_roles_ready`:
        what node pools wait for (the IAM propagation delay after those roles)."""
        super().__init__("a4deepseek:infra:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)

        # Waits for the APIs: on an empty project the call fails while the
        # Kubernetes Engine API is off.
        versions = gcp.container.get_engine_versions_output(
            project=cfg.project,
            location=cfg.region,
            version_prefix=cfg.gke_version_prefix or None,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=depends_on),
        )
        self.version = resolve_version(
            versions, cfg.release_channel, cfg.gke_version_prefix, min_gke_version(cfg)
        )

        self.cluster = gcp.container.Cluster(
            "gke",
            project=cfg.project,
            name=names.cluster,
            location=cfg.region,
            deletion_protection=cfg.cluster_deletion_protection,
            resource_labels={"tier": tier(cfg)},
            # Node pools are separate resources; the default pool is removed.
            remove_default_node_pool=True,
            initial_node_count=1,
            network=network.host_network.id,
            subnetwork=network.host_subnet.id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=POD_RANGE,
                services_secondary_range_name=SERVICE_RANGE,
            ),
            datapath_provider="ADVANCED_DATAPATH",
            enable_multi_networking=True,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=cfg.release_channel),
            min_master_version=self.version,
            maintenance_policy=maintenance_policy(cfg),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{cfg.project}.svc.id.goog"
            ),
            addons_config=gcp.container.ClusterAddonsConfigArgs(
                gcs_fuse_csi_driver_config=gcp.container.ClusterAddonsConfigGcsFuseCsiDriverConfigArgs(
                    enabled=True
                ),
                gce_persistent_disk_csi_driver_config=gcp.container.ClusterAddonsConfigGcePersistentDiskCsiDriverConfigArgs(
                    enabled=True
                ),
            ),
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                # Cluster Toolkit's default components, plus DCGM GPU metrics.
                enable_components=[
                    "SYSTEM_COMPONENTS",
                    "POD",
                    "DAEMONSET",
                    "DEPLOYMENT",
                    "STATEFULSET",
                    "STORAGE",
                    "HPA",
                    "CADVISOR",
                    "KUBELET",
                    "DCGM",
                ],
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(
                    enabled=True
                ),
            ),
            logging_config=gcp.container.ClusterLoggingConfigArgs(
                enable_components=["SYSTEM_COMPONENTS", "WORKLOADS"]
            ),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                enable_private_endpoint=False,
            ),
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                        cidr_block=cidr, display_name=f"authorized-{index}"
                    )
                    for index, cidr in enumerate(cfg.master_authorized_cidrs)
                ],
            ),
            enable_shielded_nodes=True,
            # The default pool exists only until removal; give it the node SA
            # so no node ever runs as the Compute Engine default account.
            node_config=gcp.container.ClusterNodeConfigArgs(
                service_account=node_service_account,
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
            ),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    custom_timeouts=CLUSTER_TIMEOUTS,
                    # GKE owns these after creation: the default pool's config,
                    # and the version the release channel upgrades to.
                    ignore_changes=["nodeConfig", "initialNodeCount", "minMasterVersion"],
                ),
            ),
        )

        self.system_pool = gcp.container.NodePool(
            "system",
            project=cfg.project,
            name=names.system_pool,
            cluster=self.cluster.id,
            location=cfg.region,
            node_locations=[cfg.zone],
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=1, total_max_node_count=cfg.system_max_nodes
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=cfg.system_machine_type,
                disk_type="pd-balanced",
                disk_size_gb=200,
                labels={"pool": "system"},
                **hardened_node_config(node_service_account),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                custom_timeouts=CLUSTER_TIMEOUTS,
                # Nodes start once the node account's roles have propagated.
                depends_on=node_roles_ready,
            ),
        )

        self.ref = ClusterRef(
            name=self.cluster.name,
            location=cfg.region,
            id=self.cluster.id,
            endpoint=self.cluster.endpoint,
            ca_certificate=self.cluster.master_auth.cluster_ca_certificate,
            workload_pool=self.cluster.workload_identity_config.apply(
                lambda config: (config.workload_pool or "") if config else ""
            ),
        )
        self.register_outputs(
            {
                "name": self.cluster.name,
                "version": self.version,
                "systemPool": self.system_pool.name,
            }
        )


def adopted_workload_pool(
    configs: Sequence[gcp.container.outputs.GetClusterWorkloadIdentityConfigResult] | None,
    cluster: str,
    project: str,
) -> str:
    """The workload pool of an adopted cluster; the serving pods reach the
    bucket through Workload Identity, so a cluster without it cannot serve."""
    pools = [c.workload_pool for c in configs or [] if c.workload_pool]
    if not pools:
        raise ValueError(
            f"clusterName: the adopted cluster {cluster!r} has no Workload Identity; enable it "
            f"(gcloud container clusters update {cluster} --workload-pool={project}.svc.id.goog) "
            "or use clusterMode create"
        )
    return pools[0]


class AdoptedCluster(pulumi.ComponentResource):
    """An existing cluster, read (not managed) so the GPU pool can attach to it."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:infra:AdoptedCluster", name, None, opts)
        location = cfg.cluster_location or cfg.region
        existing = gcp.container.get_cluster_output(
            project=cfg.project,
            name=names.cluster,
            location=location,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=depends_on),
        )
        self.ref = ClusterRef(
            name=existing.name,
            location=location,
            id=existing.id,
            endpoint=existing.endpoint,
            ca_certificate=existing.master_auths.apply(
                lambda auths: auths[0].cluster_ca_certificate
            ),
            workload_pool=existing.workload_identity_configs.apply(
                lambda configs: adopted_workload_pool(configs, names.cluster, cfg.project)
            ),
        )
        self.register_outputs({"name": existing.name})
