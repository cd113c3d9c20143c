"""The stack's policy pack; the Pulumi CLI runs it: `pulumi preview --policy-pack policy`.

Only the pack's construction lives here: `PolicyPack(...)` starts the
analyzer's gRPC server and never returns. The rules are in `validators.py`,
where the tests call them directly.
"""

import validators as v
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationPolicy,
    Severity,
    StackValidationPolicy,
)

PolicyPack(
    name="a4-deepseek",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name=v.BUCKET_IN_CLUSTER_REGION,
            description="The bucket is in the cluster's region, so GCS FUSE reads stay in-region.",
            validate=v.bucket_in_cluster_region,
            severity=Severity.MEDIUM,
        ),
        ResourceValidationPolicy(
            name=v.BUCKET_NOT_PUBLIC,
            description="Buckets enforce public access prevention and uniform bucket-level access.",
            validate=v.bucket_not_public,
            severity=Severity.HIGH,
        ),
        ResourceValidationPolicy(
            name=v.SECRETS_ONLY_IN_SECRETS,
            description="No Kubernetes object but a Secret carries credentials.",
            validate=v.secret_material_only_in_secrets,
            severity=Severity.CRITICAL,
        ),
        ResourceValidationPolicy(
            name=v.NO_PUBLIC_LOAD_BALANCER,
            description="LoadBalancer Services are internal unless the pack config allows public ones.",
            validate=v.no_public_load_balancer,
            config_schema=PolicyConfigSchema(
                properties={
                    v.ALLOW_PUBLIC_LOAD_BALANCER: {
                        "type": "boolean",
                        "default": False,
                        "description": "Allow LoadBalancer Services without the internal annotation.",
                    }
                }
            ),
            severity=Severity.HIGH,
        ),
        ResourceValidationPolicy(
            name=v.GPU_POOL_MATCHES_SHAPE,
            description="A GPU node pool attaches the accelerator type and count of its machine type.",
            validate=v.gpu_pool_matches_machine_shape,
            severity=Severity.HIGH,
        ),
        ResourceValidationPolicy(
            name=v.PRODUCTION_SAFEGUARDS,
            description=(
                "Production stacks (label tier: production) keep cluster deletion protection on "
                "and their bucket protected."
            ),
            validate=[v.production_cluster_deletion_protection, v.production_bucket_kept],
            severity=Severity.HIGH,
        ),
        ResourceValidationPolicy(
            name=v.RESOURCE_REQUESTS,
            description="Every container, init containers included, requests cpu and memory.",
            validate=v.containers_have_resource_requests,
            severity=Severity.MEDIUM,
        ),
        ResourceValidationPolicy(
            name=v.HEALTH_PROBES,
            description="Server containers have a readiness probe and a liveness or startup probe.",
            validate=v.servers_have_health_probes,
            severity=Severity.MEDIUM,
        ),
        ResourceValidationPolicy(
            name=v.PINNED_IMAGES,
            description="Images are referenced by digest or a pinned tag, never latest.",
            validate=v.images_pinned,
            severity=Severity.MEDIUM,
        ),
    ],
)
