"""A first `pulumi up` on an empty project, item by item (issue 9).

Each test names the platform behaviour it guards; the platform values are
literals from the cited sources, not the code's constants.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.cluster import pick_version
from plan import runner
from plan.mocks import CapturingMonitor, PlanMocks, PlatformFacts
from tests.conftest import plan_of, transitive_dependencies

CLUSTER = "gcp:container/cluster:Cluster"
POOL = "gcp:container/nodePool:NodePool"
SERVICE = "gcp:projects/service:Service"
SLEEP = "time:index/sleep:Sleep"


def service(plan, api: str) -> str:
    return next(s.urn for s in plan.of_type(SERVICE) if s.inputs["service"] == api)


def call(plan, token_end: str):
    (found,) = [c for c in plan.invokes if c.token.endswith(token_end)]
    return found


# --- 1. data-source calls wait for the APIs they use --------------------------


def test_engine_versions_are_read_after_the_kubernetes_engine_api_is_on(dev_plan):
    versions = call(dev_plan, "getEngineVersions")
    assert service(dev_plan, "container.googleapis.com") in versions.depends_on


def test_the_project_number_is_read_after_the_resource_manager_api_is_on(dev_plan):
    project = call(dev_plan, "getProject")
    assert service(dev_plan, "cloudresourcemanager.googleapis.com") in project.depends_on


def test_an_adopted_cluster_is_read_after_the_kubernetes_engine_api_is_on():
    plan = plan_of("dev", clusterMode="adopt", clusterName="their-gke")
    assert service(plan, "container.googleapis.com") in call(plan, "getCluster").depends_on


# --- 2. the Workload Identity binding waits for the identity pool -------------


def test_the_bucket_binding_for_the_pods_waits_for_the_cluster(dev_plan):
    binding = dev_plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", "workload-objects")
    cluster = dev_plan.one(CLUSTER)
    assert cluster.urn in transitive_dependencies(dev_plan, binding)
    pool = cluster.inputs["workloadIdentityConfig"]["workloadPool"]
    assert pool == "my-a4-project.svc.id.goog"
    assert (
        f"/workloadIdentityPools/{pool}/subject/ns/deepseek/sa/trtllm-serving"
        in (binding.inputs["member"])
    )


def test_an_adopted_cluster_without_workload_identity_is_refused_clearly():
    facts = PlatformFacts(adopted_cluster_workload_identity=False)
    with pytest.raises(ValueError, match="adopted cluster 'their-gke' has no Workload Identity"):
        runner.run(
            "dev",
            overrides={"clusterMode": "adopt", "clusterName": "their-gke"},
            monitor=CapturingMonitor(PlanMocks(facts=facts)),
        )


# --- 3. what uses a fresh role waits for IAM to propagate ----------------------


def _delays_before(plan, reg) -> list:
    waits = transitive_dependencies(plan, reg)
    return [s for s in plan.of_type(SLEEP) if s.urn in waits]


def test_cloud_build_starts_two_minutes_after_its_grants(dev_plan):
    build = dev_plan.one("command:local:Command", "cloud-build")
    grants = {
        dev_plan.one(
            "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember", "builder-push"
        ).urn,
        dev_plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", "builder-source").urn,
        dev_plan.one("gcp:projects/iAMMember:IAMMember", "builder-logs").urn,
    }
    # "typically 2 minutes" (cloud.google.com/iam/docs/access-change-propagation)
    covering = [
        d
        for d in _delays_before(dev_plan, build)
        if grants <= transitive_dependencies(dev_plan, d) and d.inputs["createDuration"] == "120s"
    ]
    assert covering, "the build does not wait for the builder's roles to propagate"


@pytest.mark.parametrize("pool", ["system", "gpu"])
def test_node_pools_start_after_the_node_roles_propagate(dev_plan, pool):
    reg = dev_plan.one(POOL, pool)
    role = next(
        b
        for b in dev_plan.of_type("gcp:projects/iAMMember:IAMMember")
        if b.inputs["role"] == "roles/container.defaultNodeServiceAccount"
    )
    assert any(
        role.urn in transitive_dependencies(dev_plan, d) for d in _delays_before(dev_plan, reg)
    )


@pytest.mark.parametrize(
    ("typ", "name"),
    [("kubernetes:batch/v1:Job", "smoke-check"), ("kubernetes:apps/v1:Deployment", "server")],
)
def test_pods_using_the_bucket_start_after_its_binding_propagates(dev_plan, typ, name):
    binding = dev_plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", "workload-objects")
    reg = dev_plan.one(typ, name)
    assert any(
        binding.urn in transitive_dependencies(dev_plan, d) for d in _delays_before(dev_plan, reg)
    )


def test_the_delay_is_a_time_provider_resource_with_its_import_id():
    # pulumiverse-time's Sleep, ID "<createDuration>,<destroyDuration>" (its import docs).
    sleep = plan_of("dev").one(SLEEP, "builder-roles-propagation")
    assert sleep.id == "120s,"


# --- 4. flex-start pools leave upgrades to GKE --------------------------------


def test_flex_start_pool_sets_no_upgrade_settings_and_ignores_them():
    pool = plan_of("dev", consumptionMode="flex-start", compactPlacement=False).one(POOL, "gpu")
    assert "upgradeSettings" not in pool.inputs
    assert "upgradeSettings" in pool.ignore_changes


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_other_pools_keep_one_at_a_time_surge_upgrades(stack):
    pool = plan_of(stack).one(POOL, "gpu")
    assert pool.inputs["upgradeSettings"] == {
        "strategy": "SURGE",
        "maxSurge": 0,
        "maxUnavailable": 1,
    }
    assert "upgradeSettings" not in pool.ignore_changes


# --- 5. a maintenance policy keeps auto-upgrades from recreating the GPU node --


def test_cluster_has_a_daily_window_and_a_node_upgrade_exclusion(dev_plan):
    policy = dev_plan.one(CLUSTER).inputs["maintenancePolicy"]
    # Cluster Toolkit gke-cluster default window; its A4 blueprint's exclusion.
    assert policy["dailyMaintenanceWindow"] == {"startTime": "09:00"}
    assert policy["maintenanceExclusions"] == [
        {
            "exclusionName": "no-minor-or-node-upgrades",
            "startTime": "2025-12-01T00:00:00Z",
            "exclusionOptions": {
                "scope": "NO_MINOR_OR_NODE_UPGRADES",
                "endTimeBehavior": "UNTIL_END_OF_SUPPORT",
            },
        }
    ]


def test_the_maintenance_policy_is_configurable():
    policy = (
        plan_of(
            "dev",
            maintenanceStartTime="02:30",
            maintenanceExclusionScope="NO_MINOR_UPGRADES",
            maintenanceExclusionStart="2026-01-05T00:00:00Z",
        )
        .one(CLUSTER)
        .inputs["maintenancePolicy"]
    )
    assert policy["dailyMaintenanceWindow"] == {"startTime": "02:30"}
    (exclusion,) = policy["maintenanceExclusions"]
    assert exclusion["exclusionOptions"]["scope"] == "NO_MINOR_UPGRADES"
    assert exclusion["startTime"] == "2026-01-05T00:00:00Z"
    none = plan_of("dev", maintenanceExclusionScope="NONE").one(CLUSTER)
    assert none.inputs["maintenancePolicy"].get("maintenanceExclusions", []) == []


# --- 6. GKE version floors -----------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "overrides", "floor"),
    [
        ("1.31.", {}, "1.32.4-gke.1236000"),  # A4: GPU recipes' A4 environment guide
        (
            "1.32.1.",
            {"machineType": "a3-ultragpu-8g", "consumptionMode": "flex-start"},
            "1.32.2-gke.1652000",  # flex-start with GPUs: GKE flex-start requirements
        ),
    ],
)
def test_a_version_prefix_below_the_floor_is_refused_before_anything(prefix, overrides, floor):
    from infra.config import ConfigError

    monitor = CapturingMonitor(PlanMocks())
    with pytest.raises(ConfigError, match=floor):
        runner.run(
            "dev",
            overrides={"gkeVersionPrefix": prefix, "compactPlacement": False, **overrides},
            monitor=monitor,
        )
    assert monitor.registrations == []


def test_a_resolved_version_below_the_floor_is_refused():
    floor = ("1.32.4-gke.1236000", "a4-highgpu-8g needs it")
    with pytest.raises(ValueError, match=r"1\.32\.3-gke\.1000.*older than 1\.32\.4-gke\.1236000"):
        pick_version({"REGULAR": "1.32.3-gke.1000"}, None, "REGULAR", "1.32.", floor)
    assert (
        pick_version({"REGULAR": "1.32.4-gke.1236000"}, None, "REGULAR", "1.32.", floor)
        == "1.32.4-gke.1236000"
    )


# --- 7. Cloud NAT ports for many parallel downloads ----------------------------


@pytest.mark.parametrize("nat", ["host-nat", "gvnic-nat"])
def test_cloud_nat_allocates_ports_dynamically(dev_plan, nat):
    inputs = dev_plan.one("gcp:compute/routerNat:RouterNat", nat).inputs
    assert inputs["enableDynamicPortAllocation"] is True
    # Dynamic allocation excludes endpoint-independent mapping (compute API).
    assert inputs["enableEndpointIndependentMapping"] is False
    assert (inputs["minPortsPerVm"], inputs["maxPortsPerVm"]) == (1024, 65536)


def test_nat_port_range_is_configurable():
    plan = plan_of("dev", natMinPortsPerVm=256, natMaxPortsPerVm=4096)
    inputs = plan.one("gcp:compute/routerNat:RouterNat", "host-nat").inputs
    assert (inputs["minPortsPerVm"], inputs["maxPortsPerVm"]) == (256, 4096)


# --- 8. adopt mode names its subnets ------------------------------------------


def test_adopted_cluster_toolkit_networks_use_their_subnet_names():
    # Cluster Toolkit's A4 blueprint, deployment "gke-a4": net-1's subnet is
    # gke-a4-sub-1, the RDMA subnets gke-a4-rdma-sub-0..7.
    plan = plan_of(
        "dev",
        clusterMode="adopt",
        clusterName="gke-a4",
        gvnicNetworkName="gke-a4-net-1",
        gvnicSubnetName="gke-a4-sub-1",
        rdmaNetworkName="gke-a4-rdma-net",
        rdmaSubnetPrefix="gke-a4-rdma-sub",
    )
    networks = plan.one(POOL, "gpu").inputs["networkConfig"]["additionalNodeNetworkConfigs"]
    assert networks[0] == {"network": "gke-a4-net-1", "subnetwork": "gke-a4-sub-1"}
    assert networks[1:] == [
        {"network": "gke-a4-rdma-net", "subnetwork": f"gke-a4-rdma-sub-{i}"} for i in range(8)
    ]


def test_created_subnets_take_the_names_too():
    plan = plan_of("dev", hostSubnetName="h-sub-0", gvnicSubnetName="g-sub-1", rdmaSubnetPrefix="r")
    names = {r.inputs["name"] for r in plan.of_type("gcp:compute/subnetwork:Subnetwork")}
    assert names == {"h-sub-0", "g-sub-1", *(f"r-{i}" for i in range(8))}


# --- 9. a kept bucket can be taken back ----------------------------------------


def test_the_bucket_is_created_unless_bucket_import_is_set(dev_plan):
    assert dev_plan.one("gcp:storage/bucket:Bucket").import_id == ""
    adopted = plan_of("dev", bucketImport=True).one("gcp:storage/bucket:Bucket")
    assert adopted.import_id == "my-a4-project-dsr1-data"


def test_the_readme_says_how_to_take_a_kept_bucket_back_and_that_it_bills():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Recover a kept bucket", 1)[1].split("\n## ", 1)[0]
    assert "pulumi config set bucketImport true" in section
    assert "pulumi import gcp:storage/bucket:Bucket" in section
    assert "billed" in section
