"""The stack's settings: one typed declaration, its defaults and its rules.

Every setting is a field of `StackConfig`. The field's metadata carries the
Pulumi config key (camelCase of the field name) and its description;
`Pulumi.yaml` declares the same keys, types and defaults, and
`tests/test_config_schema.py` keeps the two in step.

`load()` is the only place the program reads Pulumi config. It parses the raw
values, applies the defaults, and validates everything before any resource is
registered; every problem is reported in one `ConfigError` that names the key,
the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.shapes import RDMA_NIC_COUNT, SHAPES

PROJECT_NAME = "a4-deepseek"

CONSUMPTION_MODES = ("reservation", "spot", "flex-start", "on-demand")
CLUSTER_MODES = ("create", "adopt")
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
GPU_DRIVER_VERSIONS = ("LATEST", "DEFAULT")
BUCKET_ON_DESTROY = ("delete", "retain", "protect")
IMAGE_BUILDERS = ("cloudbuild", "docker", "prebuilt")
SERVICE_TYPES = ("ClusterIP", "InternalLoadBalancer")
# Checkpoints the serving profiles are published for (workloads/profiles/).
MODELS = ("fp8", "nvfp4")
SERVING_PROFILES = ("latency", "throughput")
SECRET_KEYS = ("hfToken",)

# The GKE API takes cluster names of "up to 40 characters" (Cluster.name in
# the container v1 API reference); GPU recipes ask for fewer than 16 because
# instance-template names are built from cluster and pool names.
# Source: AI-Hypercomputer/gpu-recipes docs/configuring-environment-gke-a4-high.md.
CLUSTER_NAME_MAX = 40
CLUSTER_NAME_ADVISED = 15


class SecretStr:
    """A secret setting: never shown by repr/str; `reveal()` for the one place that needs it."""

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr([secret])"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ConfigError(ValueError):
    """Invalid stack configuration. The message lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack configuration ({len(problems)} problem(s)):\n{lines}")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def setting(description: str, default: Any = dataclasses.MISSING, *, choices=None, secret=False):
    """A field of StackConfig: `default` MISSING means the key is required."""
    meta = {"description": description, "choices": choices, "secret": secret}
    if secret:
        return field(default_factory=lambda: SecretStr(default), metadata=meta)
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class StackConfig:
    # --- where -----------------------------------------------------------
    project: str = setting("GCP project ID that the stack creates everything in.")
    region: str = setting("Region of the cluster, bucket, registry and subnets.")
    zone: str = setting(
        "Zone of the GPU node pool; must be in `region` and have the RoCE network "
        "profile (`gcloud compute network-profiles list`)."
    )
    name_prefix: str = setting("Prefix of every derived resource name.", "dsr1")
    production: bool = setting(
        "Marks a production stack: requires cluster deletion protection and a kept bucket.",
        False,
    )

    # --- cluster ---------------------------------------------------------
    cluster_mode: str = setting(
        "`create` a new cluster, or `adopt` an existing one by `clusterName` "
        "(then no cluster, network or system pool is created).",
        "create",
        choices=CLUSTER_MODES,
    )
    cluster_name: str = setting("GKE cluster name; empty derives `<namePrefix>-gke`.", "")
    cluster_location: str = setting("Location of an adopted cluster; empty means `region`.", "")
    release_channel: str = setting("GKE release channel.", "REGULAR", choices=RELEASE_CHANNELS)
    gke_version_prefix: str = setting(
        "GKE version prefix resolved through the engine-versions data source "
        "(for example `1.33.`); empty uses the channel's default version.",
        "",
    )
    master_authorized_cidrs: tuple[str, ...] = setting(
        "CIDRs allowed to reach the cluster's public endpoint (the machine running "
        "`pulumi up` must be in one).",
        (),
    )
    cluster_deletion_protection: bool = setting(
        "GKE deletion protection: while true, `pulumi destroy` cannot delete the cluster.",
        True,
    )
    system_machine_type: str = setting(
        "Machine type of the system node pool (non-GPU pods, the weights download).",
        "e2-standard-8",
    )
    system_max_nodes: int = setting("Autoscaling ceiling of the system node pool.", 3)

    # --- GPU node pool ---------------------------------------------------
    machine_type: str = setting(
        "GPU machine type; one of the known RDMA shapes.", "a4-highgpu-8g", choices=tuple(SHAPES)
    )
    node_count: int = setting(
        "GPU nodes (one model server each); the ceiling of autoscaling in flex-start.", 1
    )
    consumption_mode: str = setting(
        "How the GPU capacity is obtained.", "reservation", choices=CONSUMPTION_MODES
    )
    reservation_name: str = setting("Reservation to consume (consumptionMode reservation).", "")
    reservation_block: str = setting("Optional block of the reservation to consume.", "")
    reservation_project: str = setting(
        "Project that owns a shared reservation; empty means `project`.", ""
    )
    compact_placement: bool = setting(
        "COMPACT placement policy for the GPU nodes (not with a reservation, whose "
        "blocks already place them).",
        False,
    )
    gpu_driver_version: str = setting(
        "GKE-managed NVIDIA driver; B200 needs driver 570+, which GKE 1.32 only "
        "installs with LATEST.",
        "LATEST",
        choices=GPU_DRIVER_VERSIONS,
    )
    gpu_boot_disk_gb: int = setting("Boot disk of each GPU node, in GB.", 200)

    # --- networks --------------------------------------------------------
    host_network_name: str = setting("Host VPC; empty derives `<namePrefix>-net-0`.", "")
    host_subnet_cidr: str = setting("Host subnet (nodes).", "192.168.0.0/18")
    pod_cidr: str = setting("Secondary range for pods.", "10.4.0.0/14")
    service_cidr: str = setting("Secondary range for services.", "10.0.32.0/20")
    gvnic_network_name: str = setting("Second gVNIC VPC; empty derives `<namePrefix>-net-1`.", "")
    gvnic_subnet_cidr: str = setting("gVNIC subnet.", "192.168.64.0/18")
    rdma_network_name: str = setting(
        "RDMA (RoCE) VPC; empty derives `<namePrefix>-rdma-net`. Its subnets are "
        "`<rdmaNetworkName>-sub-0..7`.",
        "",
    )
    rdma_cidr: str = setting(
        "Range split into the 8 RDMA subnets (one per GPU NIC).", "192.168.128.0/18"
    )
    pod_network_names: tuple[str, ...] = setting(
        "Names of the in-cluster Network objects for the gVNIC network and the 8 RDMA "
        "networks, in NIC order (the seed's non-default-names case).",
        ("gvnic-1", *(f"rdma-{i}" for i in range(RDMA_NIC_COUNT))),
    )

    # --- storage and registry -------------------------------------------
    bucket_name: str = setting(
        "Bucket for model weights and benchmark results; empty derives a globally "
        "unique name from the project and prefix.",
        "",
    )
    bucket_on_destroy: str = setting(
        "What `pulumi destroy` does with the bucket: `delete` it with its objects, "
        "`retain` it (removed from the stack, kept in GCP), or `protect` it "
        "(destroy refuses until unprotected).",
        "retain",
        choices=BUCKET_ON_DESTROY,
    )
    registry_name: str = setting(
        "Artifact Registry repository; empty derives `<namePrefix>-images`.", ""
    )
    registry_keep_versions: int = setting(
        "Cleanup policy: newest image versions kept per package.", 5
    )

    # --- serving workload -----------------------------------------------
    namespace: str = setting("Kubernetes namespace of the serving workload.", "deepseek")
    service_account: str = setting(
        "Kubernetes service account of the serving workload (granted bucket access).",
        "trtllm-serving",
    )

    # --- serving image -------------------------------------------------------
    image_builder: str = setting(
        "How the serving image is made: `cloudbuild` (Cloud Build in the project), "
        "`docker` (local Docker, pushed to the registry) or `prebuilt` (`prebuiltImage`).",
        "cloudbuild",
        choices=IMAGE_BUILDERS,
    )
    prebuilt_image: str = setting(
        "Image reference for imageBuilder prebuilt: a digest (`...@sha256:...`) or a pinned "
        "tag, never `latest`.",
        "",
    )

    # --- model and serving ----------------------------------------------
    model: str = setting(
        "Checkpoint: `fp8` (deepseek-ai/DeepSeek-R1-0528) or `nvfp4` "
        "(nvidia/DeepSeek-R1-0528-FP4-v2, NVIDIA's FP4 quantization of it).",
        "fp8",
        choices=MODELS,
    )
    model_revision: str = setting(
        "Hugging Face revision (branch, tag or commit) of the checkpoint.", "main"
    )
    serving_profile: str = setting(
        "NVIDIA's published trtllm-serve options for 8 GPUs: `latency` (one user) or "
        "`throughput` (many concurrent users).",
        "latency",
        choices=SERVING_PROFILES,
    )
    serving_overrides: str = setting(
        "YAML mapping of extra LLM API options merged over the profile "
        '(e.g. `{"kv_cache_config": {"free_gpu_memory_fraction": 0.85}}`).',
        "",
    )
    tp_size: int = setting("Tensor parallel size; tpSize x ppSize must equal the GPUs per node.", 8)
    pp_size: int = setting("Pipeline parallel size.", 1)
    ep_size: int = setting("MoE expert parallel size (divides tpSize x ppSize).", 8)
    hf_token: SecretStr = setting(
        "Hugging Face token for the weights download (optional for public checkpoints).",
        "",
        secret=True,
    )
    weights_minutes: int = setting(
        "Budget for the one-time checkpoint download into the bucket (the weights Job's "
        "deadline; serving pods wait this long for it).",
        180,
    )
    startup_minutes: int = setting(
        "Budget for a cold start (weights load, kernel JIT, CUDA graphs) before the "
        "startup probe gives up; `pulumi up` waits for the weights, then this long.",
        60,
    )
    await_serving: bool = setting(
        "Whether `pulumi up` waits until the server is ready (false: returns once the "
        "Deployment is accepted).",
        True,
    )
    service_type: str = setting(
        "`ClusterIP` (reach it with kubectl port-forward) or `InternalLoadBalancer` "
        "(an internal IP in the VPC); never public.",
        "ClusterIP",
        choices=SERVICE_TYPES,
    )
    prometheus_metrics: bool = setting(
        "Serve Prometheus metrics at /prometheus/metrics and scrape them with Managed "
        "Prometheus (adds return_perf_metrics and enable_iter_perf_stats to the profile, "
        "which NVIDIA's published values leave off).",
        False,
    )
    pod_multi_network: bool = setting(
        "Attach the gVNIC and RDMA networks to the serving pods (one node with TP8 talks "
        "over NVLink; the extra NICs matter when NCCL crosses nodes).",
        True,
    )

    # --- benchmark -----------------------------------------------------------
    benchmark_enabled: bool = setting(
        "Run the benchmark Job against the endpoint after it is ready.", False
    )
    benchmark_matrix: tuple[str, ...] = setting(
        "Benchmark cases as `ISLxOSLxCONCURRENCY`.",
        ("512x128x1", "512x128x8", "1024x256x8", "1024x1024x1", "1024x1024x64"),
    )

    @property
    def shape(self):
        return SHAPES[self.machine_type]


def config_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(StackConfig))


def config_key(f: dataclasses.Field) -> str:
    return _camel(f.name)


def is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def default_of(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def type_name(f: dataclasses.Field) -> str:
    """The field's type in Pulumi.yaml terms."""
    return {"str": "string", "int": "integer", "bool": "boolean", "SecretStr": "string"}.get(
        str(f.type), "array" if str(f.type).startswith("tuple") else str(f.type)
    )


# --------------------------------------------------------------------------
# Parsing raw values (strings from the CLI, or native values from YAML)


def _parse(f: dataclasses.Field, raw: Any) -> Any:
    kind = type_name(f)
    key = config_key(f)
    if f.metadata.get("secret"):
        return SecretStr(str(raw))
    if kind == "string":
        if isinstance(raw, (dict, list)):
            raise ValueError(f"{key}: expected a string, got {raw!r}")
        return str(raw)
    if kind == "integer":
        if isinstance(raw, bool):
            raise ValueError(f"{key}: expected an integer, got {raw!r}")
        try:
            value = int(str(raw), 10)
        except ValueError:
            raise ValueError(f"{key}: expected an integer, got {raw!r}") from None
        return value
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "false"):
            return text == "true"
        raise ValueError(f"{key}: expected true or false, got {raw!r}")
    if kind == "array":
        value = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw) if raw.strip() else []
            except json.JSONDecodeError:
                raise ValueError(f"{key}: expected a list of strings, got {raw!r}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{key}: expected a list of strings, got {raw!r}")
        return tuple(value)
    raise AssertionError(f"unhandled setting type {kind}")


def parse(raw: Mapping[str, Any], secret_keys: frozenset[str] | None = None) -> StackConfig:
    """Build a StackConfig from config values keyed by camelCase key (no namespace).

    `secret_keys` are the keys the CLI holds encrypted; a secret setting given
    in plain text is refused (None skips that check, for pure tests).
    Raises ConfigError naming every unknown, missing or mistyped key, and every
    rule broken (see `validate`).
    """
    problems: list[str] = []
    for key in SECRET_KEYS:
        if secret_keys is not None and raw.get(key) and key not in secret_keys:
            problems.append(
                f"{key}: set in plain text; it is a secret: run "
                f"`pulumi config rm {key}` then `pulumi config set --secret {key} <value>`"
            )
    known = {config_key(f): f for f in config_fields()}
    for key in raw:
        if key not in known:
            close = [k for k in known if k.lower() == key.lower()]
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{key}: unknown setting{hint}; see the settings table in README.md")
    values: dict[str, Any] = {}
    for key, f in known.items():
        if key not in raw or raw[key] is None:
            if is_required(f):
                problems.append(f"{key}: required, not set; run `pulumi config set {key} <value>`")
            continue
        try:
            values[f.name] = _parse(f, raw[key])
        except ValueError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError(problems)
    cfg = StackConfig(**values)
    validate(cfg)
    return cfg


# --------------------------------------------------------------------------
# Rules

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
    return f"{key}: {value!r} is not allowed; {allowed}"


def _check_choices(cfg: StackConfig, problems: list[str]) -> None:
    for f in config_fields():
        choices = f.metadata.get("choices")
        value = getattr(cfg, f.name)
        if choices and value not in choices:
            problems.append(_bad(config_key(f), value, f"expected one of {', '.join(choices)}"))


def _parse_network(key: str, text: str, problems: list[str]):
    try:
        if "/" not in text:
            raise ValueError("no prefix length")
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        problems.append(
            _bad(key, text, "expected an IPv4 CIDR with no host bits, like 10.0.0.0/16")
        )
        return None
    if net.version != 4:
        problems.append(_bad(key, text, "expected an IPv4 CIDR"))
        return None
    return net


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
                    f"{key_b}: {str(net_b)!r} overlaps {key_a} {str(net_a)!r}; "
                    "the host, pod, service, gVNIC and RDMA ranges must be disjoint"
                )
    if not all(ipaddress.ip_network(v).is_private for v in ranges.values() if _is_cidr(v)):
        public = [
            k for k, v in ranges.items() if _is_cidr(v) and not ipaddress.ip_network(v).is_private
        ]
        for key in public:
            problems.append(_bad(key, ranges[key], "expected a private (RFC 1918) range"))

    if cfg.cluster_mode == "create":
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


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=True)
        return True
    except ValueError:
        return False


def _check_names(cfg: StackConfig, problems: list[str]) -> None:
    from infra import naming  # local: naming depends on this module

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
        if len(value) > 56 or not _RFC1035.match(value):
            # 56 leaves room for the `-sub-N`/`-nat` suffixes inside the 63 limit.
            problems.append(_bad(key, value, "at most 56 lowercase letters, digits or hyphens"))
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
        what = "the autoscaling ceiling" if mode == "flex-start" else "a static node pool"
        problems.append(_bad("nodeCount", cfg.node_count, f"{what} needs at least 1 node"))
    if cfg.node_count > 64:
        problems.append(_bad("nodeCount", cfg.node_count, "expected at most 64"))
    if mode == "reservation":
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
    if cfg.reservation_block and not cfg.reservation_name and mode == "reservation":
        problems.append("reservationBlock: set, but reservationName is empty")
    if cfg.compact_placement and mode == "reservation":
        problems.append(
            _bad(
                "compactPlacement",
                True,
                "not with consumptionMode reservation: a reservation places its VMs itself; "
                "use reservationBlock to keep nodes together",
            )
        )
    if mode == "flex-start" and _minor_below(cfg.gke_version_prefix, 33):
        problems.append(
            _bad(
                "gkeVersionPrefix",
                cfg.gke_version_prefix,
                "flex-start node pools need GKE 1.33.0-gke.1712000 or later",
            )
        )


def _minor_below(prefix: str, minor: int) -> bool:
    """Whether a version prefix like `1.32.` names a minor version below `minor`."""
    parts = prefix.split(".")
    return len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < minor


def _check_adoption(cfg: StackConfig, problems: list[str]) -> None:
    if cfg.cluster_mode == "adopt":
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
    if not cfg.cluster_deletion_protection and cfg.cluster_mode == "create":
        problems.append(
            _bad(
                "clusterDeletionProtection",
                False,
                "a production stack keeps deletion protection on",
            )
        )
    if cfg.bucket_on_destroy == "delete":
        problems.append(
            _bad(
                "bucketOnDestroy",
                "delete",
                "a production stack keeps its data: use retain or protect",
            )
        )


_DIGEST_REF = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$")
_TAG_REF = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+:([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_BENCHMARK_CASE = re.compile(r"^([1-9][0-9]*)x([1-9][0-9]*)x([1-9][0-9]*)$")
# Options with a setting of their own: an override of them would be ambiguous.
RESERVED_OVERRIDES = {
    "tensor_parallel_size": "tpSize",
    "pipeline_parallel_size": "ppSize",
    "moe_expert_parallel_size": "epSize",
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


def serving_overrides(cfg: StackConfig) -> dict:
    """`servingOverrides` parsed (validated by `validate`)."""
    import yaml

    return yaml.safe_load(cfg.serving_overrides) or {} if cfg.serving_overrides.strip() else {}


def _check_serving(cfg: StackConfig, problems: list[str]) -> None:
    import yaml

    if cfg.image_builder == "prebuilt":
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
    if not 30 <= cfg.weights_minutes <= 1440:
        problems.append(_bad("weightsMinutes", cfg.weights_minutes, "expected 30 to 1440"))
    if not 10 <= cfg.startup_minutes <= 360:
        problems.append(_bad("startupMinutes", cfg.startup_minutes, "expected 10 to 360"))
    for case in cfg.benchmark_matrix:
        if not _BENCHMARK_CASE.match(case):
            problems.append(
                _bad("benchmarkMatrix", case, "expected ISLxOSLxCONCURRENCY, like 1024x1024x8")
            )
    if cfg.benchmark_enabled and not cfg.benchmark_matrix:
        problems.append("benchmarkMatrix: empty while benchmarkEnabled is true")


def validate(cfg: StackConfig) -> None:
    """Raise ConfigError listing every rule `cfg` breaks."""
    problems: list[str] = []
    _check_choices(cfg, problems)
    _check_names(cfg, problems)
    _check_networks(cfg, problems)
    _check_capacity(cfg, problems)
    _check_adoption(cfg, problems)
    _check_production(cfg, problems)
    if cfg.machine_type in SHAPES:
        _check_serving(cfg, problems)
    if problems:
        raise ConfigError(problems)


def warnings(cfg: StackConfig) -> list[str]:
    """Advice that does not stop the stack."""
    from infra import naming

    found = []
    cluster = naming.derive(cfg).cluster
    if len(cluster) > CLUSTER_NAME_ADVISED:
        found.append(
            f"clusterName: {cluster!r} has {len(cluster)} characters; GPU recipes advise at "
            f"most {CLUSTER_NAME_ADVISED} because node instance-template names are built from it"
        )
    if "0.0.0.0/0" in cfg.master_authorized_cidrs:
        found.append("masterAuthorizedCidrs: 0.0.0.0/0 opens the control plane to the internet")
    if cfg.consumption_mode == "on-demand":
        found.append(
            "consumptionMode: on-demand A4 capacity is rarely available; a reservation, "
            "spot or flex-start is the usual way to get it"
        )
    return found


# --------------------------------------------------------------------------
# Reading Pulumi config


def load() -> StackConfig:
    """Read this project's Pulumi config (the only reader in the program)."""
    from pulumi.runtime import config as runtime_config

    prefix = PROJECT_NAME + ":"
    raw: dict[str, Any] = {}
    every = dict(runtime_config.get_config_env())
    every.update(runtime_config.CONFIG.get())
    for full_key, value in every.items():
        if full_key.startswith(prefix):
            raw[full_key[len(prefix) :]] = value
    secret = frozenset(k for k in SECRET_KEYS if runtime_config.is_config_secret(prefix + k))
    return parse(raw, secret_keys=secret)
