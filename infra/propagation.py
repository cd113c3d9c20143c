"""Waiting for IAM changes to take effect before an identity uses them."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumiverse_time as time

# "Access changes typically take about 2 minutes to propagate ... can take 7
# minutes or longer" (cloud.google.com/iam/docs/access-change-propagation).
# The roles granted here are new, so the typical figure applies; what uses
# them (node pools, the image build, the serving pods) starts after this long.
IAM_PROPAGATION = "120s"


def iam_propagation(
    name: str, grants: Sequence[pulumi.CustomResource], parent: pulumi.Resource
) -> time.Sleep:
    """A delay that ends IAM_PROPAGATION after every grant in `grants` exists.

    A resource of the pulumiverse `time` provider (Terraform's `time_sleep`):
    it waits once, on create, and again only when a grant is replaced."""
    return time.Sleep(
        name,
        create_duration=IAM_PROPAGATION,
        # A replaced grant (a new member) waits again.
        triggers={f"grant-{i}": g.id for i, g in enumerate(grants)},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=grants),
    )
