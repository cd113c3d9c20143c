"""The stack as a whole: provider, components, outputs, stack files, validation order."""

from __future__ import annotations

import pytest

from plan import runner
from tests.conftest import plan_of

COMPONENTS = {
    "a4deepseek:infra:ProjectServices",
    "a4deepseek:infra:Network",
    "a4deepseek:infra:NodeIdentity",
    "a4deepseek:infra:Cluster",
    "a4deepseek:infra:GpuNodePool",
    "a4deepseek:infra:Registry",
    "a4deepseek:infra:Storage",
}


def test_one_component_per_concern(dev_plan):
    assert {
        r.type for r in dev_plan.registrations if r.type.startswith("a4deepseek:")
    } >= COMPONENTS


def test_every_gcp_resource_belongs_to_a_component_and_uses_the_stack_provider(dev_plan):
    provider = dev_plan.one("pulumi:providers:gcp")
    assert provider.inputs["project"] == "my-a4-project"
    assert provider.inputs["region"] == "us-central1"
    by_urn = {r.urn: r for r in dev_plan.registrations}
    for reg in dev_plan.registrations:
        if reg.custom and reg.type.startswith("gcp:"):
            assert reg.provider.startswith(provider.urn), f"{reg.type} {reg.name}: {reg.provider}"
            assert by_urn[reg.parent].type.startswith("a4deepseek:"), f"{reg.type} {reg.name}"


@pytest.mark.parametrize(
    "overrides", [{}, {"imageBuilder": "docker"}, {"clusterMode": "adopt", "clusterName": "c"}]
)
def test_every_data_source_call_goes_through_the_stack_provider(overrides):
    plan = plan_of("dev", **overrides)
    provider = plan.one("pulumi:providers:gcp").urn
    assert plan.invokes
    for token, _, used in plan.invokes:
        if token.startswith("gcp:"):
            assert used.startswith(provider), f"{token} uses {used or 'the default provider'}"


def test_every_gcp_resource_names_the_project(dev_plan):
    for reg in dev_plan.registrations:
        if reg.custom and reg.type.startswith("gcp:") and "project" in _project_args(reg.type):
            assert reg.inputs.get("project") == "my-a4-project", f"{reg.type} {reg.name}"


def _project_args(typ: str) -> set[str]:
    # Every resource type this stack uses takes `project` except bucket IAM.
    return set() if typ.endswith("BucketIAMMember") else {"project"}


def test_outputs_tell_the_user_what_to_do_next(dev_plan):
    out = dev_plan.outputs
    assert out["clusterName"] == "dsr1-gke"
    assert out["clusterLocation"] == "us-central1"
    assert out["getCredentials"] == (
        "gcloud container clusters get-credentials dsr1-gke --location us-central1 --project my-a4-project"
    )
    assert out["gpuNodePool"] == "a4-gpu"
    assert out["bucket"] == "my-a4-project-dsr1-data"
    assert out["registry"] == "us-central1-docker.pkg.dev/my-a4-project/dsr1-images"


def test_prod_stack_is_a_protected_reservation_stack(prod_plan):
    pool = prod_plan.one("gcp:container/nodePool:NodePool", "gpu").inputs
    assert (
        pool["nodeConfig"]["reservationAffinity"]["consumeReservationType"]
        == "SPECIFIC_RESERVATION"
    )
    assert prod_plan.one("gcp:container/cluster:Cluster").inputs["deletionProtection"] is True
    assert prod_plan.one("gcp:storage/bucket:Bucket").protect is True


def test_long_cluster_name_warns_but_deploys():
    plan = plan_of("dev", clusterName="a-long-cluster-name-here")
    assert any("advise at most 15" in w for w in plan.warnings)
    assert plan.one("gcp:container/cluster:Cluster").inputs["name"] == "a-long-cluster-name-here"


def test_stack_files_hold_only_known_keys_that_differ_from_defaults():
    from infra import config

    fields = {config.config_key(f): f for f in config.config_fields()}
    for stack in ("dev", "prod"):
        values, _ = runner.read_stack_file(stack)
        for full_key, value in values.items():
            namespace, key = full_key.split(":")
            assert namespace == runner.PROJECT
            assert key in fields, f"Pulumi.{stack}.yaml: unknown key {key}"
            f = fields[key]
            if not config.is_required(f):
                default = config.default_of(f)
                assert value != (list(default) if isinstance(default, tuple) else default), (
                    f"Pulumi.{stack}.yaml repeats the default of {key}"
                )
