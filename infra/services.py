"""The Google APIs the stack uses, enabled in the project."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

# Kept enabled on `pulumi destroy`: other workloads in the project may use them,
# and disabling an API can delete that API's remaining resources.
REQUIRED_SERVICES = (
    "compute.googleapis.com",
    "container.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "storage.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    # GKE image streaming on the node pools (cloud.google.com/kubernetes-engine/
    # docs/how-to/image-streaming: "You must enable the Container File System API").
    "containerfilesystem.googleapis.com",
    # The Hugging Face token of the weights staging build (infra/weights_staging.py).
    "secretmanager.googleapis.com",
    # Read by the preflight quota check (infra/preflight.py).
    "cloudquotas.googleapis.com",
)


class ProjectServices(pulumi.ComponentResource):
    """Enables the required APIs; other components depend on `self.enabled`."""

    def __init__(self, name: str, project: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("a4deepseek:infra:ProjectServices", name, None, opts)
        self.enabled = [
            gcp.projects.Service(
                service.split(".")[0],
                project=project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in REQUIRED_SERVICES
        ]
        self.register_outputs({"services": [s.service for s in self.enabled]})
