"""Service accounts: the GKE nodes' own, with only what nodes need, and the ones
Cloud Build runs as."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.propagation import iam_propagation

# Google's minimum for node service accounts: the Kubernetes Engine Default
# Node Service Account role (logs, metrics, resource metadata), per
# cloud.google.com/kubernetes-engine/security/configure-node-service-accounts.
# Artifact Registry read access is granted on the stack's repository only
# (infra/registry.py); workloads reach the bucket through Workload Identity.
# Image streaming: nodes that do not run as the default service account need
# Service Usage Consumer in the project that hosts the images
# (cloud.google.com/kubernetes-engine/docs/how-to/image-streaming, Requirements).
NODE_ROLES = (
    "roles/container.defaultNodeServiceAccount",
    "roles/serviceusage.serviceUsageConsumer",
)


class NodeIdentity(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        project: str,
        account_id: str,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:infra:NodeIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        self.account = gcp.serviceaccount.Account(
            "nodes",
            project=project,
            account_id=account_id,
            display_name="GKE nodes of the DeepSeek-R1 serving stack",
            opts=child,
        )
        self.email = self.account.email
        self.bindings = [
            gcp.projects.IAMMember(
                role.split("/")[1],
                project=project,
                role=role,
                member=self.account.member,
                opts=child,
            )
            for role in NODE_ROLES
        ]
        # What node pools wait for: nodes use these roles from their first boot.
        self.ready = iam_propagation("node-roles-propagation", self.bindings, self)
        self.register_outputs({"email": self.email})


def build_account(
    name: str,
    logs_grant: str,
    project: str,
    account_id: str,
    display_name: str,
    opts: pulumi.ResourceOptions,
) -> tuple[gcp.serviceaccount.Account, gcp.projects.IAMMember]:
    """An account a Cloud Build run acts as, and its right to write that build's
    logs: a build run as a user-specified account must write them itself
    (`logging: CLOUD_LOGGING_ONLY` in the build configs, roles/logging.logWriter)."""
    account = gcp.serviceaccount.Account(
        name, project=project, account_id=account_id, display_name=display_name, opts=opts
    )
    logs = gcp.projects.IAMMember(
        logs_grant,
        project=project,
        role="roles/logging.logWriter",
        member=account.member,
        opts=opts,
    )
    return account, logs
