"""Checks, before the GPU node pool is created, that the project can have it.

Like Cluster Toolkit's validators (pkg/validators: zone, reservation and
quota checks), with the provider's data sources, so they run at `pulumi
preview` once the APIs are on and, on a first `pulumi up`, right after the
APIs are enabled and long before the GPU pool (which waits for them):

- the zone offers the machine type (compute machineTypes.list);
- the zone has the RoCE network profile the RDMA VPC is created with
  (`gcloud compute network-profiles list`: pulumi-gcp has no data source);
- with a reservation: it exists in the zone, reserves this machine type and
  has room for `nodeCount` nodes (and its block, if named, too);
- without one: the region's GPU quota covers `nodeCount` nodes;
- with an adopted cluster: its gVNIC and RDMA subnets exist under the names
  the settings give.

`problems` is pure; `Preflight` gathers the facts and `gate` stops the GPU
node pool with one message listing every problem.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_gcp as gcp

from infra import values
from infra.config import ClusterMode, ConsumptionMode, StackConfig
from infra.naming import Names


class PreflightError(pulumi.RunError):
    """The project cannot have the GPU node pool as configured (message only,
    no traceback, like ConfigError)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"preflight: {len(problems)} problem(s) before the GPU node pool:\n{lines}\n"
            "(set preflightChecks false to skip these checks)"
        )


def gpu_quota_metric(accelerator_type: str, consumption_mode: ConsumptionMode) -> str:
    """The Compute Engine regional quota a GPU node pool consumes.

    Cluster Toolkit's quota validator (pkg/validators/quota.go): NVIDIA_<TYPE>_GPUS
    from the accelerator type, PREEMPTIBLE_ for Spot VMs; flex-start VMs use
    preemptible quota as well (GKE "consumption options" page)."""
    base = accelerator_type.upper().removeprefix("NVIDIA-").replace("-", "_")
    prefix = (
        "PREEMPTIBLE_"
        if consumption_mode in (ConsumptionMode.SPOT, ConsumptionMode.FLEX_START)
        else ""
    )
    return f"{prefix}NVIDIA_{base}_GPUS"


def quota_id(metric: str) -> str:
    """The Cloud Quotas ID of a regional Compute Engine quota metric
    (`CPUS` -> `CPUS-per-project-region`, pulumi-gcp cloudquota docs)."""
    return f"{metric.replace('_', '-')}-per-project-region"


def roce_profile_command(project: str, zone: str) -> str:
    return shlex.join(
        [
            "gcloud",
            "compute",
            "network-profiles",
            "list",
            f"--project={project}",
            f"--filter=name={zone}-vpc-roce",
            "--format=value(name)",
        ]
    )


@dataclass
class Facts:
    """What the data sources answered (None: not asked)."""

    machine_types: list[str] = field(default_factory=list)
    roce_profile: str = ""
    reservation: dict[str, Any] | None = None
    block: dict[str, Any] | None = None
    quota_limits: dict[str, int] | None = None
    subnets: dict[str, bool] = field(default_factory=dict)


def problems(cfg: StackConfig, names: Names, facts: Facts) -> list[str]:
    """Every preflight check `facts` fails, one message each (pure)."""
    found = []
    shape = cfg.shape
    if cfg.machine_type not in facts.machine_types:
        found.append(
            f"machineType: {cfg.machine_type} is not offered in zone {cfg.zone} of project "
            f"{cfg.project}; set zone to one that offers it (`gcloud compute machine-types "
            f"list --filter=name={cfg.machine_type}`)"
        )
    if not facts.roce_profile:
        found.append(
            f"zone: {cfg.zone} has no RoCE network profile ({cfg.zone}-vpc-roce) for the RDMA "
            "network; set zone to one listed by `gcloud compute network-profiles list "
            "--filter=name~vpc-roce`"
        )
    nodes = cfg.node_count
    if cfg.consumption_mode == ConsumptionMode.RESERVATION and facts.reservation is not None:
        found += _reservation_problems(cfg, facts, nodes)
    if facts.quota_limits is not None:
        metric = gpu_quota_metric(shape.accelerator_type, cfg.consumption_mode)
        limit = facts.quota_limits.get(cfg.region, 0)
        needed = nodes * shape.gpu_count
        if limit < needed:
            found.append(
                f"consumptionMode: {cfg.consumption_mode} needs {needed} GPUs of quota {metric} "
                f"in {cfg.region} ({nodes} x {shape.gpu_count}), the limit is {limit}; request "
                "more (console: IAM & Admin > Quotas), lower nodeCount, or use a reservation"
            )
    missing = [subnet for subnet, exists in facts.subnets.items() if not exists]
    for key, names_of_key in (
        ("gvnicSubnetName", [names.gvnic_subnet]),
        ("rdmaSubnetPrefix", list(names.rdma_subnets)),
    ):
        absent = [s for s in names_of_key if s in missing]
        if absent:
            found.append(
                f"{key}: no subnet {', '.join(absent)} in {cfg.region}; with clusterMode adopt "
                "set gvnicSubnetName and rdmaSubnetPrefix to the cluster's subnets (Cluster "
                "Toolkit's A4 blueprint names them <deployment>-sub-1 and "
                "<deployment>-rdma-sub-0..7)"
            )
    return found


def _reservation_problems(cfg: StackConfig, facts: Facts, nodes: int) -> list[str]:
    reservation = facts.reservation or {}
    owner = cfg.reservation_project or cfg.project
    if not reservation.get("name"):
        return [
            f"reservationName: no reservation {cfg.reservation_name} in zone {cfg.zone} of "
            f"project {owner}; check reservationName, zone and reservationProject "
            "(`gcloud compute reservations list`)"
        ]
    found = []
    specific = (reservation.get("specific_reservations") or [{}])[0]
    properties = (specific.get("instance_properties") or [{}])[0]
    reserved = properties.get("machine_type", "")
    if reserved != cfg.machine_type:
        found.append(
            f"reservationName: {cfg.reservation_name} reserves {reserved or 'no machines'}, "
            f"not machineType {cfg.machine_type}; set machineType to match or use another "
            "reservation"
        )
    free = int(specific.get("count") or 0) - int(specific.get("in_use_count") or 0)
    if free < nodes:
        found.append(
            f"nodeCount: {nodes} nodes need room in reservation {cfg.reservation_name}, which "
            f"has {free} free; lower nodeCount or grow the reservation"
        )
    if cfg.reservation_block:
        block = facts.block or {}
        if not block.get("name"):
            found.append(
                f"reservationBlock: no block {cfg.reservation_block} in reservation "
                f"{cfg.reservation_name}; list them with `gcloud compute reservations "
                f"blocks list {cfg.reservation_name} --zone={cfg.zone}`"
            )
        elif int(block.get("block_count") or 0) - int(block.get("in_use_count") or 0) < nodes:
            found.append(
                f"reservationBlock: {cfg.reservation_block} has room for "
                f"{int(block.get('block_count') or 0) - int(block.get('in_use_count') or 0)} "
                f"nodes, not nodeCount {nodes}; lower nodeCount or name another block"
            )
    return found


class Preflight(pulumi.ComponentResource):
    """The preflight data-source calls; `gate(value)` passes `value` on only
    when every check passes (and stops what uses it otherwise)."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:infra:Preflight", name, None, opts)
        self.cfg, self.names = cfg, names
        # Every call waits for the APIs it uses (Compute Engine, Cloud Quotas).
        call = pulumi.InvokeOutputOptions(parent=self, depends_on=depends_on)
        facts: dict[str, pulumi.Output] = {}
        facts["machine_types"] = gcp.compute.get_machine_types_output(
            project=cfg.project, zone=cfg.zone, filter=f"name = {cfg.machine_type}", opts=call
        ).machine_types.apply(lambda types: [t.name for t in types or []])
        facts["roce_profile"] = command.local.run_output(
            command=roce_profile_command(cfg.project, cfg.zone), opts=call
        ).stdout.apply(lambda out: (out or "").strip())
        owner = cfg.reservation_project or cfg.project
        if cfg.consumption_mode == ConsumptionMode.RESERVATION:
            facts["reservation"] = gcp.compute.get_reservation_output(
                project=owner, name=cfg.reservation_name, zone=cfg.zone, opts=call
            ).apply(
                lambda r: {
                    "name": r.name,
                    "specific_reservations": values.plain(r.specific_reservations),
                }
            )
            if cfg.reservation_block:
                facts["block"] = gcp.compute.get_reservation_block_output(
                    project=owner,
                    reservation=cfg.reservation_name,
                    name=cfg.reservation_block,
                    zone=cfg.zone,
                    opts=call,
                ).apply(
                    lambda b: {
                        "name": b.name,
                        "block_count": b.block_count,
                        "in_use_count": b.in_use_count,
                    }
                )
        else:
            metric = gpu_quota_metric(cfg.shape.accelerator_type, cfg.consumption_mode)
            facts["quota_limits"] = gcp.cloudquota.get_s_quota_info_output(
                parent=f"projects/{cfg.project}",
                service="compute.googleapis.com",
                quota_id=quota_id(metric),
                opts=call,
            ).dimensions_infos.apply(_limits_by_region)
        if cfg.cluster_mode == ClusterMode.ADOPT:
            subnets = [names.gvnic_subnet, *names.rdma_subnets]
            facts["subnets"] = pulumi.Output.all(
                *[
                    gcp.compute.get_subnetwork_output(
                        project=cfg.project, region=cfg.region, name=subnet, opts=call
                    ).self_link
                    for subnet in subnets
                ]
            ).apply(lambda links: {s: bool(link) for s, link in zip(subnets, links, strict=True)})
        keys = list(facts)
        self.facts = pulumi.Output.all(*facts.values()).apply(
            lambda values: Facts(**dict(zip(keys, values, strict=True)))
        )
        self.problems = self.facts.apply(lambda f: problems(cfg, names, f))
        self.register_outputs({"problems": self.problems})

    def gate(self, value: Any) -> pulumi.Output:
        """`value`, once every check passed; a PreflightError otherwise."""

        def check(found: list[str]) -> Any:
            if found:
                raise PreflightError(found)
            return value

        return self.problems.apply(check)


def _limits_by_region(
    infos: Sequence[gcp.cloudquota.outputs.GetSQuotaInfoDimensionsInfoResult] | None,
) -> dict[str, int]:
    limits = {}
    for info in infos or []:
        region = (info.dimensions or {}).get("region")
        details = info.details or []
        if region and details and str(details[0].value).lstrip("-").isdigit():
            value = int(details[0].value)
            # -1 is "unlimited" in Cloud Quotas QuotaDetails.value.
            limits[region] = 10**9 if value == -1 else value
    return limits
