"""Bucket, registry, service APIs and IAM, under mocks."""

from __future__ import annotations

import pytest

from tests.conftest import plan_of, transitive_dependencies

BUCKET = "gcp:storage/bucket:Bucket"
REPO = "gcp:artifactregistry/repository:Repository"


def test_bucket_is_regional_private_and_uniform(dev_plan):
    bucket = dev_plan.one(BUCKET).inputs
    assert bucket["location"] == "US-CENTRAL1"
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket["name"] == "my-a4-project-dsr1-data"
    assert bucket["versioning"] == {"enabled": False}
    assert bucket["softDeletePolicy"]["retentionDurationSeconds"] == 7 * 24 * 3600
    actions = [r["action"]["type"] for r in bucket["lifecycleRules"]]
    assert actions == ["AbortIncompleteMultipartUpload"]


@pytest.mark.parametrize(
    ("mode", "force_destroy", "protect", "retain"),
    [
        ("delete", True, False, False),
        ("retain", False, False, True),
        ("protect", False, True, True),
    ],
)
def test_what_destroy_does_with_the_bucket_is_a_setting(mode, force_destroy, protect, retain):
    reg = plan_of("dev", bucketOnDestroy=mode).one(BUCKET)
    assert reg.inputs["forceDestroy"] is force_destroy
    assert reg.protect is protect
    assert reg.retain_on_delete is retain


def test_dev_deletes_its_bucket_and_prod_protects_it(dev_plan, prod_plan):
    dev, prod = dev_plan.one(BUCKET), prod_plan.one(BUCKET)
    assert (dev.inputs["forceDestroy"], dev.protect, dev.retain_on_delete) == (True, False, False)
    assert (prod.inputs["forceDestroy"], prod.protect, prod.retain_on_delete) == (False, True, True)


def test_serving_service_account_gets_object_access_to_this_bucket_only(dev_plan):
    principal = (
        "principal://iam.googleapis.com/projects/<computed:project.number>/locations/global/"
        "workloadIdentityPools/my-a4-project.svc.id.goog/subject/ns/deepseek/sa/trtllm-serving"
    )
    bindings = dev_plan.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    workload = [b.inputs for b in bindings if b.inputs["member"] == principal]
    assert workload == [
        {
            "bucket": "my-a4-project-dsr1-data",
            "role": "roles/storage.objectUser",
            "member": principal,
        }
    ]
    # No project-wide storage role for the workload.
    project_roles = {b.inputs["role"] for b in dev_plan.of_type("gcp:projects/iAMMember:IAMMember")}
    assert not any(role.startswith("roles/storage") for role in project_roles)


def test_namespace_and_service_account_name_come_from_config():
    plan = plan_of("dev", namespace="llm", serviceAccount="r1")
    member = plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", "workload-objects").inputs[
        "member"
    ]
    assert member.endswith("/subject/ns/llm/sa/r1")


def test_node_service_account_has_only_node_roles(dev_plan):
    sa = dev_plan.one("gcp:serviceaccount/account:Account", "nodes")
    bindings = [
        b
        for b in dev_plan.of_type("gcp:projects/iAMMember:IAMMember")
        if b.inputs["member"] == sa.state["member"]
    ]
    # Google's minimum for a node service account
    # (cloud.google.com/kubernetes-engine/security/configure-node-service-accounts),
    # and image streaming's requirement for a non-default node account
    # (cloud.google.com/kubernetes-engine/docs/how-to/image-streaming); nothing else.
    assert sorted(b.inputs["role"] for b in bindings) == [
        "roles/container.defaultNodeServiceAccount",
        "roles/serviceusage.serviceUsageConsumer",
    ]
    reader = dev_plan.one(
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember", "node-reader"
    ).inputs

    assert reader["role"] == "roles/artifactregistry.reader"
    assert reader["member"] == sa.state["member"]
    assert reader["repository"] == "dsr1-images"


def test_registry_is_a_regional_docker_repository_with_cleanup(dev_plan):
    repo = dev_plan.one(REPO).inputs
    assert repo["format"] == "DOCKER"
    assert repo["location"] == "us-central1"
    assert repo["repositoryId"] == "dsr1-images"
    policies = {p["id"]: p for p in repo["cleanupPolicies"]}
    assert policies["keep-recent"]["action"] == "KEEP"
    assert policies["keep-recent"]["mostRecentVersions"]["keepCount"] == 5
    assert policies["delete-superseded"]["action"] == "DELETE"
    assert policies["delete-superseded"]["condition"] == {
        "tagState": "ANY",
        "olderThan": "2592000s",
    }
    assert repo["cleanupPolicyDryRun"] is False


def test_required_apis_are_enabled_and_kept_on_destroy(dev_plan):
    services = dev_plan.of_type("gcp:projects/service:Service")
    enabled = {s.inputs["service"] for s in services}
    # What the stack's resources and its users' commands call.
    assert {
        "compute.googleapis.com",  # VPCs, subnets, NAT, firewalls
        "container.googleapis.com",  # the cluster and node pools
        "artifactregistry.googleapis.com",  # the image repository
        "cloudbuild.googleapis.com",  # the image build
        "storage.googleapis.com",  # the bucket
        "iam.googleapis.com",  # service accounts
        "iamcredentials.googleapis.com",  # Workload Identity tokens
        "logging.googleapis.com",  # cluster and build logs
        "monitoring.googleapis.com",  # managed Prometheus, DCGM metrics
        "cloudresourcemanager.googleapis.com",  # project IAM bindings
    } <= enabled
    assert all(s.inputs["disableOnDestroy"] is False for s in services)


def test_every_gcp_resource_waits_for_the_apis(dev_plan):
    api_urns = {s.urn for s in dev_plan.of_type("gcp:projects/service:Service")}
    for reg in dev_plan.registrations:
        if (
            reg.custom
            and reg.type.startswith("gcp:")
            and reg.type != "gcp:projects/service:Service"
        ):
            assert api_urns & transitive_dependencies(dev_plan, reg), (
                f"{reg.type} {reg.name} does not wait for the APIs"
            )
