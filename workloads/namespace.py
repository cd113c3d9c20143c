"""The workload's namespace, its Kubernetes service account and its NetworkPolicy.

(The Hugging Face token is used only by the weights staging build, through
Secret Manager: infra/weights_staging.py.)
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.config import StackConfig
from workloads.options import SERVER_PORT

LABELS = {"app.kubernetes.io/part-of": "deepseek-r1-trtllm"}


class Namespace(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("a4deepseek:workloads:Namespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = k8s.core.v1.Namespace(
            "namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=cfg.namespace, labels=LABELS),
            opts=child,
        )
        self.name = self.namespace.metadata.name
        # Bucket access is granted to this account's Workload Identity
        # principal (infra/storage.py): no Google service account key anywhere.
        self.service_account = k8s.core.v1.ServiceAccount(
            "serving",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=cfg.service_account, namespace=self.name, labels=LABELS
            ),
            opts=child,
        )
        # The app's pods accept connections only on the server's port (the
        # Service, the benchmark, Managed Prometheus); the node's own traffic
        # (kubelet probes, port-forward) is always allowed.
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            "ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{cfg.name_prefix}-ingress", namespace=self.name, labels=LABELS
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS),
                policy_types=["Ingress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(
                                port=SERVER_PORT, protocol="TCP"
                            )
                        ]
                    )
                ],
            ),
            opts=child,
        )
        self.register_outputs({"namespace": self.name})
