"""Artifact Registry Docker repository for the serving image."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.propagation import iam_propagation


def registry_path(region: str, project: str, repository: str) -> str:
    """`<region>-docker.pkg.dev/<project>/<repository>`, the image name prefix."""
    return f"{region}-docker.pkg.dev/{project}/{repository}"


class Registry(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        repository_id: str,
        reader: pulumi.Input[str],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:infra:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        self.repository = gcp.artifactregistry.Repository(
            "images",
            project=cfg.project,
            location=cfg.region,
            repository_id=repository_id,
            format="DOCKER",
            description="TensorRT-LLM serving images for DeepSeek-R1",
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                # Keep the newest versions (the running digest among them)...
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-recent",
                    action="KEEP",
                    most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=cfg.registry_keep_versions
                    ),
                ),
                # ...and delete superseded builds (20+ GB each) after 30 days.
                # KEEP wins over DELETE, so the newest versions always stay.
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-superseded",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="ANY", older_than="2592000s"
                    ),
                ),
            ],
            opts=child,
        )
        # Nodes pull the serving image from this repository only.
        self.reader_binding = gcp.artifactregistry.RepositoryIamMember(
            "node-reader",
            project=cfg.project,
            location=cfg.region,
            repository=self.repository.repository_id,
            role="roles/artifactregistry.reader",
            member=reader,
            opts=child,
        )
        # What node pools wait for before they pull from the repository.
        self.reader_ready = iam_propagation("node-reader-propagation", [self.reader_binding], self)
        self.path = self.repository.repository_id.apply(
            lambda repo: registry_path(cfg.region, cfg.project, repo)
        )
        self.register_outputs({"path": self.path})
