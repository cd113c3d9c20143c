"""The internalEndpoint output (serviceType InternalLoadBalancer)."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from tests.conftest import plan_of
from workloads.serving import internal_endpoint


def test_an_internal_load_balancer_exports_its_address():
    outputs = plan_of("dev", serviceType="InternalLoadBalancer").outputs
    assert outputs["internalEndpoint"] == (
        "http://<computed:service.status.loadBalancer.ingress[0].ip>:8000/v1"
    )


def test_a_cluster_ip_service_has_no_internal_endpoint():
    assert "internalEndpoint" not in plan_of("dev").outputs


def test_the_endpoint_is_the_first_ingress_address():
    status = k8s.core.v1.outputs.ServiceStatus(
        load_balancer=k8s.core.v1.outputs.LoadBalancerStatus(
            ingress=[k8s.core.v1.outputs.LoadBalancerIngress(ip="10.128.0.9")]
        )
    )
    assert internal_endpoint(status) == "http://10.128.0.9:8000/v1"


def test_without_an_address_the_output_says_where_to_look():
    assert internal_endpoint(None).startswith("(no address yet: kubectl get service")
    empty = k8s.core.v1.outputs.ServiceStatus(
        load_balancer=k8s.core.v1.outputs.LoadBalancerStatus(ingress=[])
    )
    assert internal_endpoint(empty).startswith("(no address yet")
