"""Each validator fires on a minimally changed resource or plan, and names what and why."""

from __future__ import annotations

import dataclasses

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from plan import runner
from tests.conftest import HF_TOKEN_MARKER, plan_of
from tests.policy import adapter
from tests.policy.conftest import validators as v

BUCKET = "gcp:storage/bucket:Bucket"
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
SERVICE = "kubernetes:core/v1:Service"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
# A realistic Hugging Face token (hf_ and 34 letters), not a real one.
HF_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
ABSENT = object()  # a property left out (the provider's default applies)


def messages(validator, reg, result, config=None, preview=False) -> list[str]:
    found: list[str] = []
    args = adapter.resource_args(reg, result, config, preview)
    validator(args, lambda message, urn=None: found.append(message))
    return found


def stack_messages(validator, result, preview=False) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    validator(
        adapter.stack_args(result, preview=preview), lambda m, urn=None: found.append((m, urn))
    )
    return found


def pod_spec(inputs: dict) -> dict:
    return inputs["spec"]["template"]["spec"]


def server_container(inputs: dict) -> dict:
    return pod_spec(inputs)["containers"][0]


# --- bucket in the cluster's region (stack) -----------------------------------


def test_bucket_in_another_region_fires_naming_bucket_and_cluster_region():
    result = plan_of("dev")
    bucket = adapter.edited(result.one(BUCKET), lambda i: i.update(location="EUROPE-WEST4"))
    found = stack_messages(v.bucket_in_cluster_region, adapter.with_registration(result, bucket))
    assert len(found) == 1
    message, urn = found[0]
    assert urn == bucket.urn
    assert message.startswith(
        f"{v.BUCKET_IN_CLUSTER_REGION}: Bucket 'data' (my-a4-project-dsr1-data)"
    )
    assert "EUROPE-WEST4" in message and "us-central1" in message


def test_multi_region_bucket_fires():
    result = plan_of("prod")
    bucket = adapter.edited(result.one(BUCKET), lambda i: i.update(location="US"))
    found = stack_messages(v.bucket_in_cluster_region, adapter.with_registration(result, bucket))
    assert [urn for _, urn in found] == [bucket.urn]


def test_bucket_region_of_a_zonal_cluster_is_its_region():
    result = plan_of("dev")
    cluster = adapter.edited(result.one(CLUSTER), lambda i: i.update(location="us-central1-b"))
    assert (
        stack_messages(v.bucket_in_cluster_region, adapter.with_registration(result, cluster)) == []
    )


def test_adopted_cluster_compares_with_the_provider_region():
    result = plan_of("dev", clusterMode="adopt", clusterName="shared-gke")
    assert result.of_type(CLUSTER) == []
    assert stack_messages(v.bucket_in_cluster_region, result) == []
    bucket = adapter.edited(result.one(BUCKET), lambda i: i.update(location="ASIA-EAST1"))
    found = stack_messages(v.bucket_in_cluster_region, adapter.with_registration(result, bucket))
    assert len(found) == 1 and "gcp provider" in found[0][0] and "us-central1" in found[0][0]


def test_without_cluster_or_provider_region_the_policy_is_not_applicable(pack):
    result = plan_of("dev", clusterMode="adopt", clusterName="shared-gke")
    provider = result.one("pulumi:providers:gcp")
    result = adapter.with_registration(result, adapter.edited(provider, lambda i: i.pop("region")))
    run = adapter.run_pack([pack.policy(v.BUCKET_IN_CLUSTER_REGION)], result)
    assert run.violations == []
    assert [name for name, _ in run.not_applicable] == [v.BUCKET_IN_CLUSTER_REGION]
    assert "sets no region" in run.not_applicable[0][1]


def test_unknown_bucket_location_is_not_a_violation(pack):
    result = plan_of("dev")
    bucket = adapter.edited(result.one(BUCKET), lambda i: i.update(location="<computed:x>"))
    result = adapter.with_registration(result, bucket)
    run = adapter.run_pack([pack.policy(v.BUCKET_IN_CLUSTER_REGION)], result, preview=True)
    assert run.violations == [] and run.unknown == []
    assert [name for name, _ in run.not_applicable] == [v.BUCKET_IN_CLUSTER_REGION]
    assert "location is unknown" in run.not_applicable[0][1]


# --- bucket not public -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("publicAccessPrevention", "inherited", "publicAccessPrevention inherited"),
        ("publicAccessPrevention", None, "publicAccessPrevention unset"),
        ("uniformBucketLevelAccess", False, "uniformBucketLevelAccess False"),
        ("uniformBucketLevelAccess", ABSENT, "uniformBucketLevelAccess unset"),
    ],
)
def test_public_or_acl_bucket_fires(key, value, shown):
    result = plan_of("dev")

    def edit(inputs):
        if value is ABSENT:
            inputs.pop(key)
        else:
            inputs[key] = value

    bucket = adapter.edited(result.one(BUCKET), edit)
    found = messages(v.bucket_not_public, bucket, result)
    assert len(found) == 1
    assert found[0].startswith(f"{v.BUCKET_NOT_PUBLIC}: Bucket 'data' (my-a4-project-dsr1-data)")
    assert shown in found[0]


# --- secret material ---------------------------------------------------------


def test_a_token_in_an_env_value_fires():
    result = plan_of("dev")

    def put_token(inputs):
        env = pod_spec(inputs)["containers"][0]["env"]
        env.append({"name": "HF_TOKEN", "value": HF_TOKEN})

    job = adapter.edited(result.one(JOB, "benchmark"), put_token)
    found = messages(v.secret_material_only_in_secrets, job, result)
    assert found, "a literal HF_TOKEN must be reported"
    assert all(m.startswith(f"{v.SECRETS_ONLY_IN_SECRETS}: Job 'benchmark'") for m in found)
    assert any("(HF_TOKEN) has a literal value" in m for m in found)
    assert any("a Hugging Face token" in m for m in found)
    assert all(HF_TOKEN not in m for m in found), "a message never repeats the secret"


@pytest.mark.parametrize(
    ("name", "value"),
    [("WANDB_API_KEY", "0123456789abcdef"), ("dbPassword", "hunter2"), ("NGC_SECRET", "x1")],
)
def test_a_literal_under_a_credential_name_fires(name, value):
    result = plan_of("dev")
    deployment = adapter.edited(
        result.one(DEPLOYMENT),
        lambda i: server_container(i)["env"].append({"name": name, "value": value}),
    )
    found = messages(v.secret_material_only_in_secrets, deployment, result)
    assert len(found) == 1 and f"({name}) has a literal value" in found[0]
    assert "Deployment 'server' (deepseek/dsr1-trtllm-serve)" in found[0]


def test_a_token_in_args_or_an_annotation_fires():
    result = plan_of("dev")

    def leak(inputs):
        server_container(inputs)["args"].append(f"--hf-token={HF_TOKEN_MARKER}")
        inputs["metadata"]["annotations"]["note"] = "key: -----BEGIN RSA PRIVATE KEY-----"

    found = messages(
        v.secret_material_only_in_secrets, adapter.edited(result.one(DEPLOYMENT), leak), result
    )
    assert any("args" in m and "Hugging Face token" in m for m in found)
    assert any("annotations.note" in m and "private key" in m for m in found)


def test_a_config_map_key_named_like_a_credential_fires():
    result = plan_of("dev")
    config_map = adapter.edited(
        result.one(CONFIG_MAP, "llm-options"), lambda i: i["data"].update(password="x")
    )
    found = messages(v.secret_material_only_in_secrets, config_map, result)
    assert len(found) == 1
    assert "ConfigMap 'llm-options'" in found[0] and "data.password" in found[0]


def test_references_and_lookalikes_do_not_fire():
    assert not v.is_secret_name("SECRET_NAME") and not v.is_secret_name("TOKEN_PATH")
    assert not v.is_secret_name("max_num_tokens") and not v.is_secret_name("TOKENIZER")
    assert v.is_secret_name("HF_TOKEN") and v.is_secret_name("hfApiKey")
    assert v.token_kind("pip install hf_transfer hf_hub_download_timeout") is None
    assert v.token_kind(HF_TOKEN) == "a Hugging Face token"


def test_the_secret_itself_may_hold_the_token():
    result = runner.run("dev", secrets={"hfToken": HF_TOKEN_MARKER})
    secret = adapter.edited(
        result.one(DEPLOYMENT),
        lambda i: i.update(kind="Secret", stringData={"hf_api_token": HF_TOKEN_MARKER}),
    )
    secret = dataclasses.replace(secret, type="kubernetes:core/v1:Secret")
    assert messages(v.secret_material_only_in_secrets, secret, result) == []
    for reg in result.registrations:
        if reg.type.startswith("kubernetes:"):
            assert messages(v.secret_material_only_in_secrets, reg, result) == [], reg.name


# --- load balancers ------------------------------------------------------------


def test_an_internal_load_balancer_passes_and_a_public_one_fires():
    result = plan_of("dev", serviceType="InternalLoadBalancer")
    service = result.one(SERVICE)
    assert service.inputs["spec"]["type"] == "LoadBalancer"
    assert messages(v.no_public_load_balancer, service, result) == []
    public = adapter.edited(service, lambda i: i["metadata"]["annotations"].clear())
    found = messages(v.no_public_load_balancer, public, result)
    assert len(found) == 1
    assert found[0].startswith(
        f"{v.NO_PUBLIC_LOAD_BALANCER}: Service 'service' (deepseek/dsr1-trtllm-serve)"
    )
    allowed = {v.ALLOW_PUBLIC_LOAD_BALANCER: True}
    assert messages(v.no_public_load_balancer, public, result, config=allowed) == []


def test_a_cluster_ip_service_passes():
    result = plan_of("dev")
    assert messages(v.no_public_load_balancer, result.one(SERVICE), result) == []


# --- GPU node pool ---------------------------------------------------------------


def _accelerator(inputs: dict) -> dict:
    return inputs["nodeConfig"]["guestAccelerators"][0]


@pytest.mark.parametrize(
    ("edit", "shown"),
    [
        (lambda i: _accelerator(i).update(count=4.0), "asks for 4.0 accelerators"),
        (
            lambda i: _accelerator(i).update(type="nvidia-h200-141gb"),
            "accelerator type nvidia-h200",
        ),
        (lambda i: i["nodeConfig"].update(guestAccelerators=[]), "declares 0 guestAccelerators"),
        (lambda i: i["nodeConfig"].update(machineType="g2-standard-96"), "not one of the known"),
    ],
    ids=["count", "type", "none", "unknown-shape"],
)
def test_a_gpu_pool_that_does_not_match_its_shape_fires(edit, shown):
    result = plan_of("dev")
    pool = adapter.edited(result.one(NODE_POOL, "gpu"), edit)
    found = messages(v.gpu_pool_matches_machine_shape, pool, result)
    assert len(found) == 1
    assert found[0].startswith(f"{v.GPU_POOL_MATCHES_SHAPE}: NodePool 'gpu' (a4-gpu)")
    assert shown in found[0]


def test_the_system_pool_has_no_gpus_and_passes():
    result = plan_of("dev")
    assert messages(v.gpu_pool_matches_machine_shape, result.one(NODE_POOL, "system"), result) == []


# --- production safeguards -----------------------------------------------------


def test_production_cluster_without_deletion_protection_fires():
    result = plan_of("prod")
    cluster = adapter.edited(result.one(CLUSTER), lambda i: i.update(deletionProtection=False))
    found = messages(v.production_cluster_deletion_protection, cluster, result)
    assert len(found) == 1
    assert found[0].startswith(f"{v.PRODUCTION_SAFEGUARDS}: Cluster 'gke' (dsr1p-gke)")
    # The same cluster in a development stack may be destroyed.
    dev = plan_of("dev")
    assert dev.one(CLUSTER).inputs["deletionProtection"] is False
    assert messages(v.production_cluster_deletion_protection, dev.one(CLUSTER), dev) == []


def test_unset_deletion_protection_is_the_providers_default_true():
    # The Terraform google provider that pulumi-gcp bridges defaults
    # deletion_protection to true (since its 5.0).
    result = plan_of("prod")
    unset = adapter.edited(result.one(CLUSTER), lambda i: i.pop("deletionProtection"))
    assert messages(v.production_cluster_deletion_protection, unset, result) == []


def test_production_bucket_must_be_protected_and_not_force_destroyed():
    result = plan_of("prod")
    bucket = result.one(BUCKET)
    assert bucket.protect and bucket.inputs["labels"] == {"tier": "production"}
    assert messages(v.production_bucket_kept, bucket, result) == []
    unprotected = adapter.edited(bucket, lambda i: None, protect=False)
    found = messages(v.production_bucket_kept, unprotected, result)
    assert len(found) == 1 and "not protected" in found[0]
    assert found[0].startswith(
        f"{v.PRODUCTION_SAFEGUARDS}: Bucket 'data' (my-a4-project-dsr1p-data)"
    )
    forced = adapter.edited(bucket, lambda i: i.update(forceDestroy=True))
    assert [m for m in messages(v.production_bucket_kept, forced, result) if "forceDestroy" in m]


def test_production_bucket_kept_only_by_retain_on_delete_fires():
    """pulumi-policy does not show retainOnDelete to a policy: the pack asks for
    protect (and the program refuses production without it)."""
    result = plan_of("prod")
    bucket = dataclasses.replace(result.one(BUCKET), protect=False)
    assert bucket.retain_on_delete and not bucket.protect
    found = messages(v.production_bucket_kept, bucket, result)
    assert len(found) == 1 and "not protected" in found[0]


# --- workloads ---------------------------------------------------------------


def test_an_init_container_without_requests_fires():
    result = plan_of("dev")
    deployment = adapter.edited(
        result.one(DEPLOYMENT), lambda i: pod_spec(i)["initContainers"][0].pop("resources")
    )
    found = messages(v.containers_have_resource_requests, deployment, result)
    assert len(found) == 1
    assert found[0].startswith(f"{v.RESOURCE_REQUESTS}: Deployment 'server'")
    assert "init container 'wait-for-weights' has no cpu or memory request" in found[0]


def test_a_job_container_without_a_memory_request_fires():
    result = plan_of("dev")
    job = adapter.edited(
        result.one(JOB, "benchmark"),
        lambda i: pod_spec(i)["containers"][0]["resources"]["requests"].pop("memory"),
    )
    found = messages(v.containers_have_resource_requests, job, result)
    assert len(found) == 1 and "container 'benchmark' has no memory request" in found[0]
    assert "Job 'benchmark' (deepseek/dsr1-benchmark-" in found[0]


@pytest.mark.parametrize(
    ("remove", "shown"),
    [
        (("readinessProbe",), "no a readinessProbe"),
        (("livenessProbe", "startupProbe"), "no a livenessProbe or startupProbe"),
    ],
)
def test_a_server_without_probes_fires(remove, shown):
    result = plan_of("dev")

    def drop(inputs):
        for probe in remove:
            server_container(inputs).pop(probe)

    found = messages(
        v.servers_have_health_probes, adapter.edited(result.one(DEPLOYMENT), drop), result
    )
    assert len(found) == 1
    assert found[0].startswith(
        f"{v.HEALTH_PROBES}: Deployment 'server' (deepseek/dsr1-trtllm-serve)"
    )
    assert "container 'server'" in found[0] and shown in found[0]


def test_a_startup_probe_alone_is_enough_next_to_readiness_and_jobs_need_none():
    result = plan_of("dev")
    deployment = adapter.edited(
        result.one(DEPLOYMENT), lambda i: server_container(i).pop("livenessProbe")
    )
    assert messages(v.servers_have_health_probes, deployment, result) == []
    assert messages(v.servers_have_health_probes, result.one(JOB, "benchmark"), result) == []


@pytest.mark.parametrize(
    ("image", "shown"),
    [
        ("nvcr.io/nvidia/tensorrt-llm/release:latest", "uses the moving tag latest"),
        ("nvcr.io/nvidia/tensorrt-llm/release", "has no tag"),
        ("localhost:5000/trtllm-serve", "has no tag"),
        ("us-docker.pkg.dev/p/r/trtllm-serve@sha256:1234", "malformed digest"),
    ],
)
def test_an_unpinned_image_fires(image, shown):
    result = plan_of("dev")
    deployment = adapter.edited(
        result.one(DEPLOYMENT), lambda i: pod_spec(i)["initContainers"][0].update(image=image)
    )
    found = messages(v.images_pinned, deployment, result)
    assert len(found) == 1
    assert found[0].startswith(f"{v.PINNED_IMAGES}: Deployment 'server'")
    assert "init container 'wait-for-weights'" in found[0] and shown in found[0]


def test_pinned_images_pass_and_an_unknown_digest_is_not_a_violation():
    result = plan_of("dev")
    deployment = result.one(DEPLOYMENT)
    assert "@sha256:" in server_container(deployment.inputs)["image"]
    assert messages(v.images_pinned, deployment, result) == []
    # In a real preview the digest (the build's output) is not known yet.
    seen = adapter.engine_value(deployment.inputs, adapter.unknown_test(result, preview=True))
    assert server_container(seen)["image"] == UNKNOWN_STRING_VALUE
    assert messages(v.images_pinned, deployment, result, preview=True) == []
    assert v.image_problem("nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc14") is None
    assert v.image_problem("localhost:5000/trtllm-serve:1.0") is None
