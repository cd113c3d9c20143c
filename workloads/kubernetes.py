"""The Kubernetes provider for the stack's cluster (new or adopted)."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s

from infra.cluster import ClusterRef


def kubeconfig(name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig that authenticates with gke-gcloud-auth-plugin (pure).

    The plugin must be on PATH where `pulumi up` runs; it mints short-lived
    tokens from the user's gcloud credentials, so nothing secret is stored.
    """
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": f"https://{endpoint}",
                    "certificate-authority-data": ca_certificate,
                },
            }
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "gke-gcloud-auth-plugin",
                        "installHint": "Install gke-gcloud-auth-plugin: "
                        "gcloud components install gke-gcloud-auth-plugin",
                        "provideClusterInfo": True,
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return json.dumps(config, indent=2)


def provider(cluster: ClusterRef, opts: pulumi.ResourceOptions | None = None) -> k8s.Provider:
    return k8s.Provider(
        "gke",
        kubeconfig=pulumi.Output.all(cluster.name, cluster.endpoint, cluster.ca_certificate).apply(
            lambda args: kubeconfig(*args)
        ),
        # A rotated CA or a new endpoint changes the kubeconfig; the cluster's
        # id does not, so the provider (and every object) is not replaced.
        cluster_identifier=cluster.id,
        # Once the cluster is gone, `destroy` drops its objects from the state
        # instead of waiting for an API server that will not answer.
        delete_unreachable=True,
        opts=opts,
    )
