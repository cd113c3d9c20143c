"""The stack's bucket (model weights, JIT caches, benchmark results) and who may use it."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import BucketOnDestroy, StackConfig
from infra.propagation import iam_propagation

# Objects in the bucket: the checkpoint (hundreds of GB, written once by the
# download Job) and benchmark results (small). Versioning would double the
# storage bill for no recovery benefit on a re-downloadable checkpoint; soft
# delete keeps a window to undo an accidental deletion instead.
SOFT_DELETE_DAYS = 7


def workload_principal(project_number: str, pool: str, namespace: str, ksa: str) -> str:
    """Workload Identity Federation principal of a Kubernetes service account.

    Format from cloud.google.com/kubernetes-engine/docs/how-to/workload-identity
    ("principal://.../workloadIdentityPools/PROJECT_ID.svc.id.goog/subject/ns/
    NAMESPACE/sa/KSA"); it needs the project number.
    """
    return (
        f"principal://iam.googleapis.com/projects/{project_number}/locations/global/"
        f"workloadIdentityPools/{pool}/subject/ns/{namespace}/sa/{ksa}"
    )


def tier(cfg: StackConfig) -> str:
    """`production` or `development`, as a label policies can read."""
    return "production" if cfg.production else "development"


# Resource options and force_destroy for each `bucketOnDestroy` mode.
_DESTROY_OPTIONS: dict[BucketOnDestroy, dict[str, bool]] = {
    BucketOnDestroy.DELETE: {"force_destroy": True, "protect": False, "retain_on_delete": False},
    BucketOnDestroy.RETAIN: {"force_destroy": False, "protect": False, "retain_on_delete": True},
    BucketOnDestroy.PROTECT: {"force_destroy": False, "protect": True, "retain_on_delete": True},
}


def destroy_options(mode: BucketOnDestroy) -> dict[str, bool]:
    """Resource options and force_destroy for each `bucketOnDestroy` mode."""
    return dict(_DESTROY_OPTIONS[mode])


class Storage(pulumi.ComponentResource):
    """The bucket, and the serving workload's access to it.

    `workload_pool` comes from the cluster (ClusterRef.workload_pool): the
    binding names the project's workload identity pool, which exists only
    once a cluster with Workload Identity does, so it waits for the cluster.
    `self.ready` is what pods that use the bucket wait for: the binding plus
    the time IAM takes to apply it."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        bucket_name: str,
        workload_pool: pulumi.Input[str],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:infra:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        on_destroy = destroy_options(cfg.bucket_on_destroy)
        self.bucket = gcp.storage.Bucket(
            "data",
            project=cfg.project,
            name=bucket_name,
            # Same region as the cluster: GCS FUSE reads stay in-region and free.
            location=cfg.region.upper(),
            storage_class="STANDARD",
            labels={"tier": tier(cfg)},
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=on_destroy["force_destroy"],
            versioning=gcp.storage.BucketVersioningArgs(enabled=False),
            soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(
                retention_duration_seconds=SOFT_DELETE_DAYS * 24 * 3600
            ),
            lifecycle_rules=[
                # Interrupted multi-GB uploads of checkpoint shards leave parts behind.
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(
                        type="AbortIncompleteMultipartUpload"
                    ),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=1),
                ),
            ],
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    protect=on_destroy["protect"],
                    retain_on_delete=on_destroy["retain_on_delete"],
                    # bucketImport: take over the bucket a previous stack kept
                    # (bucketOnDestroy retain) instead of failing on its name.
                    import_=bucket_name if cfg.bucket_import else None,
                ),
            ),
        )

        project_number = gcp.organizations.get_project_output(
            project_id=cfg.project,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=depends_on),
        ).number
        self._project_number, self._workload_pool = project_number, workload_pool
        self.workload_member = self.principal(cfg.namespace, cfg.service_account)
        # The serving and download pods read and write objects in this bucket
        # only; objectUser is all a GCS FUSE mount needs (GCS FUSE CSI driver
        # docs/authentication.md).
        self.binding = gcp.storage.BucketIAMMember(
            "workload-objects",
            bucket=self.bucket.name,
            role="roles/storage.objectUser",
            member=self.workload_member,
            opts=child,
        )
        self.ready = iam_propagation("workload-objects-propagation", [self.binding], self)

        self.register_outputs({"bucket": self.bucket.name, "url": self.bucket.url})

    def principal(self, namespace: str, ksa: str) -> pulumi.Output[str]:
        """The Workload Identity principal of a Kubernetes service account of this
        cluster (it names the cluster's identity pool, so it follows the cluster)."""
        return pulumi.Output.all(self._project_number, self._workload_pool).apply(
            lambda args: workload_principal(args[0], args[1], namespace, ksa)
        )
