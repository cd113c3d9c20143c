"""DeepSeek-R1 on TensorRT-LLM, on a GKE A4 High node pool: the composition root.

project services
  |- node identity ---------------------.
  |- network (host, gVNIC, RDMA VPCs) --+-- cluster + system pool --+-- GPU node pool --.
  |- registry -- image (Cloud Build) ---|---------------------------|-------------------+
  '- storage (bucket, workload IAM) ----'                           |                   |
                                      namespace, pod networks, weights Job -------------+-- serving
"""

from collections.abc import Sequence

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
from workloads import kubernetes
from workloads.benchmark import Benchmark
from workloads.namespace import Namespace
from workloads.networks import PodNetworks
from workloads.serving import Serving
from workloads.weights import Weights

cfg = config.load()
for advice in config.warnings(cfg):
    pulumi.log.warn(advice)
names = naming.derive(cfg)

# --- Google Cloud -------------------------------------------------------------
gcp_provider = gcp.Provider(
    "gcp",
    project=cfg.project,
    region=cfg.region,
    zone=cfg.zone,
    default_labels={"stack": pulumi.get_stack(), "app": "deepseek-r1-trtllm"},
)
on_gcp = pulumi.ResourceOptions(providers=[gcp_provider])

services = ProjectServices("services", cfg.project, opts=on_gcp)
apis: list[pulumi.Resource] = [*services.enabled]
nodes = NodeIdentity("node-identity", cfg.project, names.node_service_account, apis, opts=on_gcp)

node_networks: Sequence[tuple[pulumi.Input[str], pulumi.Input[str]]]
system_pool: list[pulumi.Resource]
if cfg.cluster_mode == "create":
    network = Network("network", cfg, names, apis, opts=on_gcp)
    # Nodes (the default pool too, until removed) need their roles first.
    created = Cluster(
        "cluster", cfg, names, network, nodes.email, [*apis, *nodes.bindings], opts=on_gcp
    )
    cluster, system_pool = created.ref, [created.system_pool]
    node_networks = network.node_networks
else:
    cluster, system_pool = AdoptedCluster("cluster", cfg, names, opts=on_gcp).ref, []
    node_networks = existing_node_networks(names)

gpu_pool = GpuNodePool(
    "gpu-pool",
    cfg,
    names,
    cluster,
    nodes.email,
    node_networks,
    depends_on=[*apis, *nodes.bindings],
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

# --- Kubernetes ---------------------------------------------------------------
on_k8s = pulumi.ResourceOptions(providers=[kubernetes.provider(cluster)])
namespace = Namespace("namespace", cfg, opts=on_k8s)
pod_networks: list[pulumi.Resource] = []
if cfg.cluster_mode == "create":
    # An adopted cluster brings its own Network objects (podNetworkNames).
    pod_networks = PodNetworks(
        "pod-networks", names, cfg.pod_network_names, system_pool, opts=on_k8s
    ).networks
Weights(
    "weights",
    cfg,
    names,
    namespace,
    image.ref,
    storage.bucket.name,
    depends_on=[storage.binding, *system_pool],
    opts=on_k8s,
)
serving = Serving(
    "serving",
    cfg,
    names,
    namespace,
    image.ref,
    storage.bucket.name,
    depends_on=[gpu_pool.pool, storage.binding, *pod_networks],
    opts=on_k8s,
)

# --- What a user needs next --------------------------------------------------
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
pulumi.export("namespace", cfg.namespace)
pulumi.export("service", serving.app_name)
pulumi.export("model", serving.model)
pulumi.export(
    "portForward", f"kubectl -n {cfg.namespace} port-forward svc/{serving.app_name} 8000:8000"
)
pulumi.export("logs", f"kubectl -n {cfg.namespace} logs -f deployment/{serving.app_name}")
pulumi.export("curlExample", serving.curl_example)

if cfg.benchmark_enabled:
    benchmark = Benchmark(
        "benchmark",
        cfg,
        names,
        namespace,
        image.ref,
        image.identity,
        storage.bucket.name,
        serving.url,
        depends_on=[serving.deployment],
        opts=on_k8s,
    )
    pulumi.export("benchmarkResults", benchmark.results)
    pulumi.export(
        "benchmarkReport", pulumi.Output.concat("python -m clients.report ", benchmark.results)
    )
