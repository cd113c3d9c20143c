"""DeepSeek-R1 on TensorRT-LLM, on a GKE A4 High node pool: the composition root.

project services
  |- node identity, registry (+ IAM propagation) --.
  |- network (host, gVNIC, RDMA VPCs) -------------+-- cluster + system pool --+-- GPU node pool (after preflight) --.
  |- preflight checks (zone, profile, capacity) ---'                           |                                    |
  |- image builds (Cloud Build, after IAM) ------------------------------------|------------------------------------+
  |- storage: bucket; workload IAM after the cluster --------------------------+                                    |
  |    '- weights: staging build (Cloud Build) or a pre-staged bucket . . . . . . . . . . . . . . . . . . . . . . .:
  |                                     namespace, pod networks ---------------+------------------------------------+-- serving
  |                                                                                        serving -- smoke check -- benchmark
  '- monitoring: dashboard, alerts, budget
(serving pods wait at run time for the staged weights, then copy them once per node to local SSD)
"""

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra import config, naming, rules
from infra.cluster import AdoptedCluster, Cluster
from infra.gpu_node_pool import GpuNodePool
from infra.identity import NodeIdentity
from infra.image import Image
from infra.monitoring import Monitoring
from infra.network import Network, existing_node_networks
from infra.preflight import Preflight
from infra.registry import Registry
from infra.services import ProjectServices
from infra.storage import Storage
from infra.weights_staging import WeightsSource
from workloads import kubernetes
from workloads.benchmark import Benchmark
from workloads.benchmark import account_name as benchmark_account
from workloads.namespace import Namespace
from workloads.networks import PodNetworks
from workloads.options import checkpoint
from workloads.serving import Serving
from workloads.smoke import SmokeCheck

cfg = config.load()
for advice in rules.warnings(cfg):
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
registry = Registry("registry", cfg, names.registry, nodes.account.member, apis, opts=on_gcp)
# Node pools start once the nodes' roles (and registry access) have propagated.
node_roles_ready: list[pulumi.Resource] = [nodes.ready, registry.reader_ready]

node_networks: Sequence[tuple[pulumi.Input[str], pulumi.Input[str]]]
system_pool: list[pulumi.Resource]
if cfg.cluster_mode == config.ClusterMode.CREATE:
    network = Network("network", cfg, names, apis, opts=on_gcp)
    # The default pool (until removed) runs as the node account: roles first.
    created = Cluster(
        "cluster",
        cfg,
        names,
        network,
        nodes.email,
        [*apis, *nodes.bindings],
        node_roles_ready,
        opts=on_gcp,
    )
    cluster, system_pool = created.ref, [created.system_pool]
    node_networks = network.node_networks
else:
    cluster, system_pool = AdoptedCluster("cluster", cfg, names, apis, opts=on_gcp).ref, []
    node_networks = existing_node_networks(names)

# The GPU pool is created only if the zone, profile, reservation and quota fit.
preflight = Preflight("preflight", cfg, names, apis, opts=on_gcp) if cfg.preflight_checks else None
gpu_pool = GpuNodePool(
    "gpu-pool",
    cfg,
    names,
    cluster,
    nodes.email,
    node_networks,
    depends_on=[*apis, *nodes.bindings, *node_roles_ready],
    node_locations=preflight.gate([cfg.zone]) if preflight else None,
    opts=on_gcp,
)
# The workload binding names the cluster's identity pool, so it follows the cluster.
storage = Storage("storage", cfg, names.bucket, cluster.workload_pool, apis, opts=on_gcp)
# The staging waits only for the APIs, the bucket and its own IAM: the download
# runs while GKE creates the cluster and node pools, and needs neither them nor
# the image.
weights = WeightsSource(
    "weights",
    cfg,
    names,
    checkpoint(cfg),
    storage.bucket,
    storage.workload_member,
    apis,
    opts=on_gcp,
)
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
k8s_provider = kubernetes.provider(cluster)
on_k8s = pulumi.ResourceOptions(providers=[k8s_provider])
namespace = Namespace("namespace", cfg, opts=on_k8s)
pod_networks: list[pulumi.Resource] = []
if cfg.cluster_mode == config.ClusterMode.CREATE:
    # An adopted cluster brings its own Network objects (podNetworkNames).
    pod_networks = PodNetworks(
        "pod-networks", names, cfg.pod_network_names, system_pool, opts=on_k8s
    ).networks
serving = Serving(
    "serving",
    cfg,
    namespace,
    image.ref,
    storage.bucket.name,
    weights.bucket,
    weights.prefix,
    gpu_pool.placement,
    # Not on the staging: pods wait for its completion marker at run time.
    depends_on=[gpu_pool.pool, storage.ready, *weights.ready, *pod_networks],
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
pulumi.export("weights", weights.url)
pulumi.export(
    "timeline",
    pulumi.Output.concat("python -m clients.timeline gs://", storage.bucket.name, "/timeline/"),
)
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
if serving.internal_endpoint is not None:
    # serviceType InternalLoadBalancer: from inside the VPC, no port-forward needed.
    pulumi.export("internalEndpoint", serving.internal_endpoint)

# --- Checking it, watching it ------------------------------------------------
# A paused stack has no server to check or benchmark; resuming checks it again.
checked: list[pulumi.Resource] = []
if cfg.smoke_check_enabled and not cfg.paused:
    smoke = SmokeCheck(
        "smoke-check",
        cfg,
        names,
        namespace,
        image.identity,
        serving.options_yaml,
        storage.bucket.name,
        serving.url,
        depends_on=[serving.deployment],
        opts=on_k8s,
    )
    checked = [smoke.job]
    pulumi.export("smokeCheck", smoke.result)
    pulumi.export("smokeCheckVerdict", smoke.verdict_url)
pulumi.export("paused", cfg.paused)

monitoring = Monitoring(
    "monitoring",
    cfg,
    names,
    serving.app_name,
    bool(weights.staging),
    depends_on=apis,
    opts=on_gcp,
)
pulumi.export("dashboard", monitoring.url)

if cfg.benchmark_enabled:
    pulumi.export("benchmarkImage", image.benchmark_ref)
if cfg.benchmark_enabled and not cfg.paused:
    assert image.benchmark_ref is not None  # built whenever the benchmark is enabled
    benchmark = Benchmark(
        "benchmark",
        cfg,
        names,
        namespace,
        image.benchmark_ref,
        f"{image.identity}\n{image.benchmark_identity}",
        serving.options_yaml,
        storage.bucket.name,
        weights.bucket,
        weights.prefix,
        serving.url,
        serving.app_name,
        storage.principal(cfg.namespace, benchmark_account(cfg)),
        # Not against a server that failed its smoke check.
        depends_on=[serving.deployment, *checked],
        # Kubernetes objects, and the IAM grant of its metrics reader on GCP.
        opts=pulumi.ResourceOptions(providers=[k8s_provider, gcp_provider]),
    )
    pulumi.export("benchmarkResults", benchmark.results)
    pulumi.export(
        "benchmarkReport",
        pulumi.Output.concat(".venv/bin/python -m clients.report ", benchmark.results),
    )
