"""The rules a stack's settings must keep, each with a message that names the
key, the bad value, what is allowed and what to do; and the advice that does
not stop a stack (`warnings`). `infra.config.parse` applies them to every
configuration before any resource is registered.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from infra import naming
from infra.config import (
    CLUSTER_NAME_ADVISED,
    CLUSTER_NAME_MAX,
    FLEX_START_GPU_MIN_GKE,
    MAX_POSITION_EMBEDDINGS,
    NETWORK_NAME_MAX,
    BucketOnDestroy,
    ClusterMode,
    ConsumptionMode,
    ImageBuilder,
    Model,
    ServingProfile,
    StackConfig,
    config_fields,
    config_key,
    spell,
)
from infra.shapes import RDMA_NIC_COUNT, SHAPES

_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
# RFC 1035 label, as GKE, VPC and Artifact Registry names use.
_RFC1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PREFIX = re.compile(r"^[a-z]([-a-z0-9]{0,10}[a-z0-9])?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VERSION_PREFIX = re.compile(r"^1\.[0-9]+(\.[0-9]+)?(-gke\.[0-9]+)?\.?$")
_RESERVATION = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def _bad(key: str, value: Any, allowed: str) -> str:
    return f"{key}: {spell(value)} is not allowed; {allowed}"


def _check_choices(cfg: StackConfig, problems: list[str]) -> None:
    for f in config_fields():
        choices = f.metadata.get("choices")
        value = getattr(cfg, f.name)
        if choices and value not in choices:
            problems.append(_bad(config_key(f), value, f"expected one of {', '.join(choices)}"))


def _parse_network(
    key: str, text: str, problems: list[str]
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        if "/" not in text:
            raise ValueError("no prefix length")
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        like = "10.0.0.0/16"
        if key == "masterAuthorizedCidrs" and "/" not in text and _is_ipv4_address(text):
            like = f"{text}/32 for that one address"
        problems.append(_bad(key, text, f"expected an IPv4 CIDR with no host bits, like {like}"))
        return None
    if net.version != 4:
        hint = ""
        if key == "masterAuthorizedCidrs":
            hint = (
                " (this machine's: pulumi config set --path 'masterAuthorizedCidrs[0]' "
                f"{MY_IPV4_CIDR_COMMAND}; without -4, curl may print an IPv6 address)"
            )
        problems.append(_bad(key, text, "expected an IPv4 CIDR" + hint))
        return None
    return net


def _is_ipv4_address(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


# The authorized CIDR of the machine running `pulumi up` (README, Deploy for real).
MY_IPV4_CIDR_COMMAND = '"$(curl -4 -s ifconfig.me)/32"'
# Address blocks reserved for documentation (RFC 5737, section 3): examples and
# placeholders, never a real machine's address.
DOCUMENTATION_RANGES = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def rdma_subnet_cidrs(rdma_cidr: str) -> list[str]:
    """The RDMA range split into one equal subnet per RDMA NIC."""
    net = ipaddress.ip_network(rdma_cidr, strict=True)
    return [str(s) for s in net.subnets(prefixlen_diff=3)]


def _check_networks(cfg: StackConfig, problems: list[str]) -> None:
    ranges = {
        "hostSubnetCidr": cfg.host_subnet_cidr,
        "podCidr": cfg.pod_cidr,
        "serviceCidr": cfg.service_cidr,
        "gvnicSubnetCidr": cfg.gvnic_subnet_cidr,
        "rdmaCidr": cfg.rdma_cidr,
    }
    parsed = {k: _parse_network(k, v, problems) for k, v in ranges.items()}
    rdma = parsed["rdmaCidr"]
    if rdma is not None and rdma.prefixlen > 26:
        problems.append(
            _bad("rdmaCidr", cfg.rdma_cidr, "it is split into 8 subnets: use /26 or larger")
        )
    valid = [(k, n) for k, n in parsed.items() if n is not None]
    for i, (key_a, net_a) in enumerate(valid):
        for key_b, net_b in valid[i + 1 :]:
            if net_a.overlaps(net_b):
                problems.append(
                    f"{key_b}: {spell(str(net_b))} overlaps {key_a} {spell(str(net_a))}; "
                    "the host, pod, service, gVNIC and RDMA ranges must be disjoint"
                )
    for key, net in valid:
        if not net.is_private:
            problems.append(_bad(key, ranges[key], "expected a private (RFC 1918) range"))

    if cfg.cluster_mode == ClusterMode.CREATE:
        if not cfg.master_authorized_cidrs:
            problems.append(
                "masterAuthorizedCidrs: empty; list the CIDR of the machine that runs "
                '`pulumi up` (for example `["203.0.113.7/32"]`), or the control plane '
                "is unreachable"
            )
        for cidr in cfg.master_authorized_cidrs:
            _parse_network("masterAuthorizedCidrs", cidr, problems)

    names = cfg.pod_network_names
    if len(names) != 1 + RDMA_NIC_COUNT:
        problems.append(
            _bad(
                "podNetworkNames",
                list(names),
                "expected 9 names: the gVNIC network, then 8 RDMA networks",
            )
        )
    for name in names:
        if not _K8S_NAME.match(name) or len(name) > 63:
            problems.append(_bad("podNetworkNames", name, "expected a Kubernetes object name"))
    if "default" in names or len(set(names)) != len(names):
        problems.append(
            _bad("podNetworkNames", list(names), "names must be unique and not `default`")
        )


def _check_names(cfg: StackConfig, problems: list[str]) -> None:
    if not _PROJECT_ID.match(cfg.project):
        problems.append(
            _bad(
                "project", cfg.project, "a project ID is 6-30 lowercase letters, digits or hyphens"
            )
        )
    if not _REGION.match(cfg.region):
        problems.append(_bad("region", cfg.region, "expected a region like us-central1"))
    if not _ZONE.match(cfg.zone) or not cfg.zone.startswith(cfg.region + "-"):
        problems.append(
            _bad("zone", cfg.zone, f"expected a zone of region {cfg.region}, like {cfg.region}-b")
        )
    if not _PREFIX.match(cfg.name_prefix):
        problems.append(
            _bad(
                "namePrefix",
                cfg.name_prefix,
                "1-12 lowercase letters, digits or hyphens, starting with a letter",
            )
        )
        return  # derived names below would only repeat this problem

    names = naming.derive(cfg)
    cluster = names.cluster
    if len(cluster) > CLUSTER_NAME_MAX or not _RFC1035.match(cluster):
        problems.append(
            _bad(
                "clusterName",
                cluster,
                f"GKE needs at most {CLUSTER_NAME_MAX} lowercase letters, digits or "
                "hyphens, starting with a letter",
            )
        )
    for key, value in (
        ("hostNetworkName", names.host_network),
        ("gvnicNetworkName", names.gvnic_network),
        ("rdmaNetworkName", names.rdma_network),
    ):
        if len(value) > NETWORK_NAME_MAX or not _RFC1035.match(value):
            problems.append(
                _bad(key, value, f"at most {NETWORK_NAME_MAX} lowercase letters, digits or hyphens")
            )
    for key, value in (
        ("hostSubnetName", names.host_subnet),
        ("gvnicSubnetName", names.gvnic_subnet),
        ("rdmaSubnetPrefix", names.rdma_subnets[-1]),
    ):
        if len(value) > 63 or not _RFC1035.match(value):
            problems.append(
                _bad(
                    key,
                    value,
                    "a subnet name is at most 63 lowercase letters, digits or hyphens, "
                    "starting with a letter",
                )
            )
    if len(names.registry) > 63 or not _RFC1035.match(names.registry):
        problems.append(
            _bad(
                "registryName",
                names.registry,
                "an Artifact Registry repository ID is up to 63 lowercase letters, "
                "digits or hyphens, starting with a letter",
            )
        )
    bucket_problem = bucket_name_problem(names.bucket)
    if bucket_problem and not cfg.bucket_name and not _PROJECT_ID.match(cfg.project):
        bucket_problem = None  # derived from the bad project: reported once, above
    if bucket_problem:
        problems.append(_bad("bucketName", names.bucket, bucket_problem))
    for key, value in (("namespace", cfg.namespace), ("serviceAccount", cfg.service_account)):
        if len(value) > 63 or not _K8S_NAME.match(value):
            problems.append(_bad(key, value, "expected a Kubernetes name (RFC 1123 label)"))
    if cfg.gke_version_prefix and not _VERSION_PREFIX.match(cfg.gke_version_prefix):
        problems.append(
            _bad(
                "gkeVersionPrefix", cfg.gke_version_prefix, "expected a prefix like 1.33. or 1.33.5"
            )
        )
    if not 1 <= cfg.system_max_nodes <= 100:
        problems.append(_bad("systemMaxNodes", cfg.system_max_nodes, "expected 1 to 100"))
    if not 100 <= cfg.gpu_boot_disk_gb <= 65536:
        problems.append(_bad("gpuBootDiskGb", cfg.gpu_boot_disk_gb, "expected 100 to 65536"))
    if not 1 <= cfg.registry_keep_versions <= 100:
        problems.append(
            _bad("registryKeepVersions", cfg.registry_keep_versions, "expected 1 to 100")
        )


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid Cloud Storage bucket name, or None.

    Rules: cloud.google.com/storage/docs/buckets#naming (names with dots,
    which need domain verification, are refused here).
    """
    if not _BUCKET.match(name) or "." in name:
        return "3-63 lowercase letters, digits, hyphens or underscores, starting and ending with a letter or digit"
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return "bucket names cannot start with `goog` or contain `google`"
    return None


def _check_capacity(cfg: StackConfig, problems: list[str]) -> None:
    mode = cfg.consumption_mode
    if cfg.node_count < 1:
        what = (
            "the autoscaling ceiling"
            if mode == ConsumptionMode.FLEX_START
            else "a static node pool"
        )
        problems.append(_bad("nodeCount", cfg.node_count, f"{what} needs at least 1 node"))
    if cfg.node_count > 64:
        problems.append(_bad("nodeCount", cfg.node_count, "expected at most 64"))
    if mode == ConsumptionMode.RESERVATION:
        if not cfg.reservation_name:
            problems.append(
                "reservationName: required with consumptionMode reservation; set it to "
                "your A4 reservation's name, or choose spot, flex-start or on-demand"
            )
        elif not _RESERVATION.match(cfg.reservation_name):
            problems.append(
                _bad("reservationName", cfg.reservation_name, "expected a reservation name")
            )
        if cfg.reservation_block and not _RESERVATION.match(cfg.reservation_block):
            problems.append(
                _bad("reservationBlock", cfg.reservation_block, "expected a block name")
            )
        if cfg.reservation_project and not _PROJECT_ID.match(cfg.reservation_project):
            problems.append(
                _bad("reservationProject", cfg.reservation_project, "expected a project ID")
            )
    else:
        # Spot, flex-start and on-demand VMs must not consume a reservation
        # (Cluster Toolkit gke-node-pool preconditions).
        for key, value in (
            ("reservationName", cfg.reservation_name),
            ("reservationBlock", cfg.reservation_block),
            ("reservationProject", cfg.reservation_project),
        ):
            if value:
                problems.append(
                    _bad(key, value, f"only used with consumptionMode reservation, not {mode}")
                )
    if cfg.reservation_block and not cfg.reservation_name and mode == ConsumptionMode.RESERVATION:
        problems.append("reservationBlock: set, but reservationName is empty")
    if cfg.compact_placement and mode == ConsumptionMode.RESERVATION:
        problems.append(
            _bad(
                "compactPlacement",
                True,
                "not with consumptionMode reservation: a reservation places its VMs itself; "
                "use reservationBlock to keep nodes together",
            )
        )


def version_key(version: str) -> tuple[int, ...]:
    """`1.32.4-gke.1236000` -> (1, 32, 4, 1236000), for comparing GKE versions."""
    return tuple(int(n) for n in re.findall(r"[0-9]+", version))


def min_gke_version(cfg: StackConfig) -> tuple[str, str]:
    """The oldest GKE version the stack can run on, and why (pure)."""
    floors = [(cfg.shape.min_gke_version, f"{cfg.machine_type} needs it")]
    if cfg.consumption_mode == ConsumptionMode.FLEX_START:
        floors.append((FLEX_START_GPU_MIN_GKE, "flex-start GPU node pools need it"))
    return max(floors, key=lambda floor: version_key(floor[0]))


def prefix_below(prefix: str, floor: str) -> bool:
    """Whether every GKE version matching the string prefix is older than `floor`.

    The data source matches prefixes as strings, so only the numbers a
    separator closes are fixed: `1.31.` and `1.32.3-` name versions below
    1.32.4-gke.1236000, `1.32.4` does not (it also matches 1.32.40)."""
    closed = re.findall(r"([0-9]+)[.-]", prefix)
    fixed = tuple(int(n) for n in closed)
    return bool(fixed) and fixed < version_key(floor)[: len(fixed)]


def _check_versions(cfg: StackConfig, problems: list[str]) -> None:
    if cfg.machine_type not in SHAPES or not _VERSION_PREFIX.match(cfg.gke_version_prefix or "1."):
        return
    floor, why = min_gke_version(cfg)
    if cfg.gke_version_prefix and prefix_below(cfg.gke_version_prefix, floor):
        problems.append(
            _bad(
                "gkeVersionPrefix",
                cfg.gke_version_prefix,
                f"GKE {floor} or later is required ({why}); use a newer prefix, like "
                f"{'.'.join(floor.split('.')[:2])}., or leave it empty for the channel default",
            )
        )


_HH_MM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_RFC3339_UTC = re.compile(r"^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z$")


def _check_maintenance(cfg: StackConfig, problems: list[str]) -> None:
    if not _HH_MM.match(cfg.maintenance_start_time):
        problems.append(
            _bad(
                "maintenanceStartTime",
                cfg.maintenance_start_time,
                "expected HH:MM (UTC), like 09:00",
            )
        )
    if not _RFC3339_UTC.match(cfg.maintenance_exclusion_start):
        problems.append(
            _bad(
                "maintenanceExclusionStart",
                cfg.maintenance_exclusion_start,
                "expected an RFC 3339 UTC time, like 2025-12-01T00:00:00Z",
            )
        )


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _check_nat(cfg: StackConfig, problems: list[str]) -> None:
    # Dynamic port allocation: min a power of two >= 32, max a power of two
    # above min, at most 65536 (compute v1 API RouterNat.enableDynamicPortAllocation,
    # maxPortsPerVm).
    low, high = cfg.nat_min_ports_per_vm, cfg.nat_max_ports_per_vm
    if not (_is_power_of_two(low) and 32 <= low <= 32768):
        problems.append(
            _bad("natMinPortsPerVm", low, "expected a power of two from 32 to 32768, like 1024")
        )
    elif not (_is_power_of_two(high) and low < high <= 65536):
        problems.append(
            _bad(
                "natMaxPortsPerVm",
                high,
                f"expected a power of two above natMinPortsPerVm ({low}), at most 65536",
            )
        )


def _check_adoption(cfg: StackConfig, problems: list[str]) -> None:
    if cfg.cluster_mode == ClusterMode.ADOPT:
        if not cfg.cluster_name:
            problems.append("clusterName: required with clusterMode adopt (the existing cluster)")
        location = cfg.cluster_location
        if location and not (_REGION.match(location) or _ZONE.match(location)):
            problems.append(_bad("clusterLocation", location, "expected a region or zone"))
        elif _ZONE.match(location) and location != cfg.zone:
            problems.append(
                _bad(
                    "clusterLocation",
                    location,
                    f"a zonal cluster can only have GPU nodes in its own zone; set zone to {location}",
                )
            )
        elif _REGION.match(location) and location != cfg.region:
            problems.append(
                _bad(
                    "clusterLocation", location, f"expected region {cfg.region} or zone {cfg.zone}"
                )
            )

    elif cfg.cluster_location:
        problems.append(
            _bad(
                "clusterLocation",
                cfg.cluster_location,
                "only used with clusterMode adopt; a created cluster is in `region`",
            )
        )


def _check_production(cfg: StackConfig, problems: list[str]) -> None:
    if not cfg.production:
        return
    if not cfg.cluster_deletion_protection and cfg.cluster_mode == ClusterMode.CREATE:
        problems.append(
            _bad(
                "clusterDeletionProtection",
                False,
                "a production stack keeps deletion protection on",
            )
        )
    if cfg.bucket_on_destroy != BucketOnDestroy.PROTECT:
        # `protect` is the one an engine-side policy can see (retainOnDelete is
        # not in pulumi-policy's resource options).
        problems.append(
            _bad(
                "bucketOnDestroy",
                cfg.bucket_on_destroy,
                "a production stack protects its data: use protect",
            )
        )


_DIGEST_REF = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$")
_TAG_REF = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+:([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
# Parallel staging builds of 8 vCPUs each: eight use 64, inside the top of Cloud
# Build's default-pool quota (5 to 100 concurrent vCPUs per region, "Cloud Build
# quotas and limits"); from four on the download is off the cold start's
# critical path (benchmarks/cold_start.py).
MAX_STAGING_BUILDS = 8
_BENCHMARK_CASE = re.compile(r"^([1-9][0-9]*)x([1-9][0-9]*)x([1-9][0-9]*|slo)$")
# Options with a setting of their own: an override of them would be ambiguous.
RESERVED_OVERRIDES = {
    "tensor_parallel_size": "tpSize",
    "pipeline_parallel_size": "ppSize",
    "moe_expert_parallel_size": "epSize",
    "max_seq_len": "maxSeqLen",
}


def image_reference_problem(ref: str) -> str | None:
    """Why `ref` is not a pinned image reference, or None."""
    if _DIGEST_REF.match(ref):
        return None
    tag = _TAG_REF.match(ref)
    if not tag:
        return "expected REGISTRY/PATH@sha256:<64 hex> or REGISTRY/PATH:TAG"
    if tag.group(2) == "latest":
        return "`latest` moves; pin a version tag or, better, a digest (@sha256:...)"
    return None


def split_gcs_url(url: str) -> tuple[str, str]:
    """`gs://bucket/a/b/` -> (`bucket`, `a/b`)."""
    bucket, _, prefix = url.removeprefix("gs://").partition("/")
    return bucket, prefix.strip("/")


def weights_source_problem(url: str) -> str | None:
    """Why `url` is not a usable pre-staged weights location, or None."""
    if not url.startswith("gs://"):
        return "expected gs://BUCKET/PREFIX, for example gs://shared-weights/models"
    bucket, prefix = split_gcs_url(url)
    why = bucket_name_problem(bucket)
    if why:
        return f"bucket {bucket!r}: {why}"
    if "//" in url.removeprefix("gs://") or any(p in (".", "..") for p in prefix.split("/")):
        return "the prefix must be a plain folder path (no empty, `.` or `..` parts)"
    return None


def serving_overrides(cfg: StackConfig) -> dict:
    """`servingOverrides` parsed (checked by `rule_problems`)."""
    import yaml

    return yaml.safe_load(cfg.serving_overrides) or {} if cfg.serving_overrides.strip() else {}


def _check_serving(cfg: StackConfig, problems: list[str]) -> None:
    import yaml

    if cfg.image_builder == ImageBuilder.PREBUILT:
        if not cfg.prebuilt_image:
            problems.append("prebuiltImage: required with imageBuilder prebuilt")
        else:
            why = image_reference_problem(cfg.prebuilt_image)
            if why:
                problems.append(_bad("prebuiltImage", cfg.prebuilt_image, why))
    elif cfg.prebuilt_image:
        problems.append(
            _bad(
                "prebuiltImage",
                cfg.prebuilt_image,
                f"only used with imageBuilder prebuilt, not {cfg.image_builder}",
            )
        )
    if cfg.image_builder == ImageBuilder.PREBUILT and cfg.benchmark_enabled:
        if not cfg.prebuilt_benchmark_image:
            problems.append(
                "prebuiltBenchmarkImage: required with imageBuilder prebuilt and "
                "benchmarkEnabled (the AIPerf image built from docker/benchmark/)"
            )
        else:
            why = image_reference_problem(cfg.prebuilt_benchmark_image)
            if why:
                problems.append(_bad("prebuiltBenchmarkImage", cfg.prebuilt_benchmark_image, why))
    elif cfg.prebuilt_benchmark_image and cfg.image_builder != ImageBuilder.PREBUILT:
        problems.append(
            _bad(
                "prebuiltBenchmarkImage",
                cfg.prebuilt_benchmark_image,
                f"only used with imageBuilder prebuilt, not {cfg.image_builder}",
            )
        )
    if cfg.max_seq_len != 0 and not 256 <= cfg.max_seq_len <= MAX_POSITION_EMBEDDINGS:
        problems.append(
            _bad(
                "maxSeqLen",
                cfg.max_seq_len,
                f"expected 0 (the profile's value) or 256 to {MAX_POSITION_EMBEDDINGS}, "
                "DeepSeek-R1's max_position_embeddings",
            )
        )
    if not _REVISION.match(cfg.model_revision):
        problems.append(
            _bad("modelRevision", cfg.model_revision, "expected a branch, tag or commit")
        )
    gpus = cfg.shape.gpu_count
    if cfg.tp_size < 1 or cfg.pp_size < 1 or cfg.tp_size * cfg.pp_size != gpus:
        problems.append(
            f"tpSize: tpSize x ppSize = {cfg.tp_size} x {cfg.pp_size} must equal the "
            f"{gpus} GPUs of {cfg.machine_type} (one server per node)"
        )
    elif cfg.ep_size < 1 or (cfg.tp_size * cfg.pp_size) % cfg.ep_size:
        problems.append(
            _bad("epSize", cfg.ep_size, f"expected a divisor of {cfg.tp_size * cfg.pp_size}")
        )
    if cfg.serving_overrides.strip():
        try:
            overrides = yaml.safe_load(cfg.serving_overrides)
        except yaml.YAMLError as err:
            problems.append(
                _bad("servingOverrides", cfg.serving_overrides, f"not valid YAML ({err.problem})")
            )
        else:
            if not isinstance(overrides, dict):
                problems.append(
                    _bad("servingOverrides", cfg.serving_overrides, "expected a YAML mapping")
                )
            else:
                for key, setting_key in RESERVED_OVERRIDES.items():
                    if key in overrides:
                        problems.append(_bad("servingOverrides", key, f"set {setting_key} instead"))
    if cfg.weights_source:
        why = weights_source_problem(cfg.weights_source)
        if why:
            problems.append(_bad("weightsSource", cfg.weights_source, why))
    if not 30 <= cfg.weights_minutes <= 1440:
        problems.append(_bad("weightsMinutes", cfg.weights_minutes, "expected 30 to 1440"))
    if not 1 <= cfg.weights_staging_builds <= MAX_STAGING_BUILDS:
        problems.append(
            _bad(
                "weightsStagingBuilds",
                cfg.weights_staging_builds,
                f"expected 1 to {MAX_STAGING_BUILDS} (parallel Cloud Build runs)",
            )
        )
    if not 10 <= cfg.startup_minutes <= 360:
        problems.append(_bad("startupMinutes", cfg.startup_minutes, "expected 10 to 360"))
    for case in cfg.benchmark_matrix:
        if not _BENCHMARK_CASE.match(case):
            problems.append(
                _bad("benchmarkMatrix", case, "expected ISLxOSLxCONCURRENCY, like 1024x1024x8")
            )
    if cfg.benchmark_enabled and not cfg.benchmark_matrix:
        problems.append("benchmarkMatrix: empty while benchmarkEnabled is true")
    elif (
        cfg.benchmark_enabled
        and isinstance(cfg.model, Model)
        and isinstance(cfg.serving_profile, ServingProfile)
    ):
        from workloads.options import effective_max_seq_len

        limit = effective_max_seq_len(cfg)
        for case in cfg.benchmark_matrix:
            match = _BENCHMARK_CASE.match(case)
            if match and int(match.group(1)) + int(match.group(2)) > limit:
                problems.append(
                    _bad(
                        "benchmarkMatrix",
                        case,
                        f"input plus output is more than the server's max_seq_len {limit}; "
                        "raise maxSeqLen or shorten the case",
                    )
                )


_NOTIFICATION_CHANNEL = re.compile(
    r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$"
)
# Cloud Billing account IDs: three groups of six hex digits
# (cloud.google.com/billing/docs/how-to/find-billing-account-id).
_BILLING_ACCOUNT = re.compile(r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$")


def _check_operations(cfg: StackConfig, problems: list[str]) -> None:
    for channel in cfg.alert_notification_channels:
        if not _NOTIFICATION_CHANNEL.match(channel):
            problems.append(
                _bad(
                    "alertNotificationChannels",
                    channel,
                    "expected projects/<project>/notificationChannels/<numeric id> "
                    "(`gcloud beta monitoring channels list --format='value(name)'`)",
                )
            )
    if not 1 <= cfg.alert_not_ready_minutes <= 1440:
        problems.append(
            _bad("alertNotReadyMinutes", cfg.alert_not_ready_minutes, "expected 1 to 1440")
        )
    if cfg.billing_account:
        if not _BILLING_ACCOUNT.match(cfg.billing_account):
            problems.append(
                _bad(
                    "billingAccount",
                    cfg.billing_account,
                    "expected a billing account ID like 012345-6789AB-CDEF01 "
                    "(`gcloud billing projects describe <project>`)",
                )
            )
        if cfg.budget_monthly_amount < 1:
            problems.append(
                "budgetMonthlyAmount: required with billingAccount; set the monthly budget, "
                "a whole amount in the billing account's currency"
            )
    elif cfg.budget_monthly_amount:
        problems.append(
            _bad("budgetMonthlyAmount", cfg.budget_monthly_amount, "only used with billingAccount")
        )
    for percent in cfg.budget_alert_percents:
        if not percent.isdigit() or not 1 <= int(percent) <= 1000:
            problems.append(
                _bad("budgetAlertPercents", percent, "expected whole percents from 1 to 1000")
            )


def rule_problems(cfg: StackConfig) -> list[str]:
    """Every rule `cfg` breaks, one message each."""
    problems: list[str] = []
    _check_choices(cfg, problems)
    _check_names(cfg, problems)
    _check_networks(cfg, problems)
    _check_nat(cfg, problems)
    _check_maintenance(cfg, problems)
    _check_versions(cfg, problems)
    _check_capacity(cfg, problems)
    _check_adoption(cfg, problems)
    _check_production(cfg, problems)
    _check_operations(cfg, problems)
    if cfg.machine_type in SHAPES:
        _check_serving(cfg, problems)
    return problems


def warnings(cfg: StackConfig) -> list[str]:
    """Advice that does not stop the stack."""
    found = []
    cluster = naming.derive(cfg).cluster
    if len(cluster) > CLUSTER_NAME_ADVISED:
        found.append(
            f"clusterName: {spell(cluster)} has {len(cluster)} characters; GPU recipes advise at "
            f"most {CLUSTER_NAME_ADVISED} because node instance-template names are built from it"
        )
    if "0.0.0.0/0" in cfg.master_authorized_cidrs:
        found.append("masterAuthorizedCidrs: 0.0.0.0/0 opens the control plane to the internet")
    if cfg.weights_source and cfg.hf_token:
        found.append(
            "hfToken: not used with weightsSource set (nothing is downloaded from Hugging Face)"
        )
    for cidr in cfg.master_authorized_cidrs:
        range_ = _documentation_range(cidr)
        if range_:
            found.append(
                f"masterAuthorizedCidrs: {spell(cidr)} is in {range_}, a range reserved for "
                "documentation (RFC 5737) that no real machine has, so the control plane would "
                "answer no one; set your own: pulumi config set --path "
                f"'masterAuthorizedCidrs[0]' {MY_IPV4_CIDR_COMMAND}"
            )
    if cfg.consumption_mode == ConsumptionMode.ON_DEMAND:
        found.append(
            "consumptionMode: on-demand A4 capacity is rarely available; a reservation, "
            "spot or flex-start is the usual way to get it"
        )
    if cfg.paused and cfg.consumption_mode == ConsumptionMode.RESERVATION:
        found.append(
            "paused: a specific reservation is billed whether or not VMs consume it; pausing "
            "frees the node, not the reservation's cost"
        )
    return found


def _documentation_range(cidr: str) -> str | None:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    return next(
        (str(r) for r in DOCUMENTATION_RANGES if net.version == 4 and net.subnet_of(r)),  # type: ignore[arg-type]
        None,
    )
