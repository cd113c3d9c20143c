"""DeepSeek-R1 on TensorRT-LLM, on a GKE A4 High node pool: the composition root.

project services
  ├─ network (host, gVNIC, RDMA VPCs) ─┐
  ├─ node identity ────────────────────┼─ cluster + system pool ─ GPU node pool
  ├─ registry ─ image                  │
  └─ storage (bucket, workload IAM)    │
"""

import pulumi
import pulumi_gcp as gcp

from infra import config, naming
from infra.cluster import AdoptedCluster, Cluster
from infra.gpu_node_pool import GpuNodePool
from infra.identity import NodeIdentity
from infra.image import Image
from infra.network import Network, existing_node_networks
from infra.registry import Registry
from infra.services import ProjectServices
from infra.storage import Storage

cfg = config.load()
for advice in config.warnings(cfg):
    pulumi.log.warn(advice)
names = naming.derive(cfg)

gcp_provider = gcp.Provider(
    "gcp",
    project=cfg.project,
    region=cfg.region,
    zone=cfg.zone,
    default_labels={"stack": pulumi.get_stack(), "app": "deepseek-r1-trtllm"},
)
on_gcp = pulumi.ResourceOptions(providers=[gcp_provider])

services = ProjectServices("services", cfg.project, opts=on_gcp)
apis = services.enabled

nodes = NodeIdentity("node-identity", cfg.project, names.node_service_account, apis, opts=on_gcp)

if cfg.cluster_mode == "create":
    network = Network("network", cfg, names, apis, opts=on_gcp)
    cluster = Cluster("cluster", cfg, names, network, nodes.email, apis, opts=on_gcp).ref
    node_networks = network.node_networks
else:
    cluster = AdoptedCluster("cluster", cfg, names, opts=on_gcp).ref
    node_networks = existing_node_networks(names)

gpu_pool = GpuNodePool(
    "gpu-pool",
    cfg,
    names,
    cluster,
    nodes.email,
    node_networks,
    depends_on=apis + nodes.bindings,
    opts=on_gcp,
)
registry = Registry("registry", cfg, names.registry, nodes.account.member, apis, opts=on_gcp)
storage = Storage("storage", cfg, names.bucket, apis, opts=on_gcp)
image = Image(
    "image",
    cfg,
    registry.path,
    registry.repository,
    storage.bucket,
    names.image_builder_account,
    apis,
    opts=on_gcp,
)

pulumi.export("clusterName", cluster.name)
pulumi.export("clusterLocation", cluster.location)
pulumi.export(
    "getCredentials",
    pulumi.Output.concat(
        "gcloud container clusters get-credentials ",
        cluster.name,
        f" --location {cluster.location} --project {cfg.project}",
    ),
)
pulumi.export("gpuNodePool", gpu_pool.pool.name)
pulumi.export("bucket", storage.bucket.name)
pulumi.export("registry", registry.path)
pulumi.export("image", image.ref)
