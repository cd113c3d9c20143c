"""The configuration module: parsing, defaults and every validation rule (pure)."""

from __future__ import annotations

import pytest

from infra import rules
from infra.config import ConfigError, parse

BASE = {
    "project": "my-a4-project",
    "region": "us-central1",
    "zone": "us-central1-b",
    "masterAuthorizedCidrs": '["203.0.113.7/32"]',
    "reservationName": "a4-res",
}


def make(**changes):
    raw = {**BASE, **changes}
    return parse({k: v for k, v in raw.items() if v is not None})


def problems_of(**changes) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        make(**changes)
    return caught.value.problems


def test_minimal_config_gets_the_documented_defaults():
    cfg = make()
    assert cfg.machine_type == "a4-highgpu-8g"
    assert cfg.shape.accelerator_type == "nvidia-b200"
    assert cfg.shape.gpu_count == 8
    assert cfg.node_count == 1
    assert cfg.consumption_mode == "reservation"
    assert cfg.bucket_on_destroy == "retain"
    assert cfg.cluster_deletion_protection is True
    assert cfg.master_authorized_cidrs == ("203.0.113.7/32",)


def test_values_as_the_cli_passes_them_are_parsed():
    cfg = make(nodeCount="3", compactPlacement="true", consumptionMode="spot", reservationName=None)
    assert cfg.node_count == 3 and cfg.compact_placement is True


def test_native_yaml_values_are_parsed():
    cfg = make(nodeCount=2, clusterDeletionProtection=False, masterAuthorizedCidrs=["10.0.0.0/8"])
    assert cfg.node_count == 2
    assert cfg.cluster_deletion_protection is False
    assert cfg.master_authorized_cidrs == ("10.0.0.0/8",)


# (changes, key named in the message, words the message must contain)
INVALID = [
    # types
    ({"nodeCount": "two"}, "nodeCount", "expected an integer"),
    ({"nodeCount": True}, "nodeCount", "expected an integer"),
    ({"compactPlacement": "yes"}, "compactPlacement", "expected true or false"),
    ({"masterAuthorizedCidrs": "10.0.0.0/8"}, "masterAuthorizedCidrs", "list of strings"),
    ({"masterAuthorizedCidrs": "[1, 2]"}, "masterAuthorizedCidrs", "list of strings"),
    # required and unknown keys
    ({"project": None}, "project", "required"),
    ({"zone": None}, "zone", "required"),
    ({"nodeCont": "2"}, "nodeCont", "unknown setting"),
    ({"nodecount": "2"}, "nodecount", "did you mean nodeCount"),
    # where
    ({"project": "My_Project"}, "project", "project ID"),
    ({"region": "uscentral"}, "region", "region like"),
    ({"zone": "europe-west4-a"}, "zone", "zone of region us-central1"),
    ({"zone": "us-central1"}, "zone", "zone of region"),
    # names
    ({"clusterName": "c" * 41}, "clusterName", "at most 40"),
    ({"clusterName": "Bad_Name"}, "clusterName", "lowercase"),
    ({"namePrefix": "9lives"}, "namePrefix", "starting with a letter"),
    ({"namePrefix": "much-too-long-prefix"}, "namePrefix", "1-12"),
    ({"bucketName": "My.Bucket"}, "bucketName", "lowercase"),
    ({"bucketName": "ab"}, "bucketName", "3-63"),
    ({"bucketName": "googlebucket"}, "bucketName", "goog"),
    ({"bucketName": "my-google-data"}, "bucketName", "google"),
    ({"registryName": "Images"}, "registryName", "repository ID"),
    ({"registryName": "r" * 64}, "registryName", "up to 63"),
    ({"rdmaNetworkName": "n" * 55}, "rdmaNetworkName", "at most 54"),
    ({"namespace": "Deep_Seek"}, "namespace", "Kubernetes name"),
    ({"gkeVersionPrefix": "latest"}, "gkeVersionPrefix", "prefix like"),
    # CIDRs
    ({"hostSubnetCidr": "192.168.0.1/18"}, "hostSubnetCidr", "no host bits"),
    ({"podCidr": "10.4.0.0"}, "podCidr", "IPv4 CIDR"),
    ({"podCidr": "not-a-cidr"}, "podCidr", "IPv4 CIDR"),
    ({"serviceCidr": "10.4.0.0/20"}, "serviceCidr", "overlaps podCidr"),
    ({"gvnicSubnetCidr": "192.168.0.0/16"}, "gvnicSubnetCidr", "overlaps hostSubnetCidr"),
    ({"rdmaCidr": "192.168.64.0/18"}, "rdmaCidr", "overlaps gvnicSubnetCidr"),
    ({"rdmaCidr": "172.16.0.0/27"}, "rdmaCidr", "/26 or larger"),
    ({"podCidr": "8.8.0.0/16"}, "podCidr", "private"),
    ({"masterAuthorizedCidrs": "[]"}, "masterAuthorizedCidrs", "pulumi up"),
    ({"masterAuthorizedCidrs": '["1.2.3.4/33"]'}, "masterAuthorizedCidrs", "IPv4 CIDR"),
    ({"podNetworkNames": '["gvnic-1"]'}, "podNetworkNames", "9 names"),
    ({"podNetworkNames": '["default"' + ',"r"' * 8 + "]"}, "podNetworkNames", "unique"),
    # machine and capacity
    ({"machineType": "a3-highgpu-8g"}, "machineType", "a4-highgpu-8g, a3-ultragpu-8g"),
    ({"nodeCount": "0"}, "nodeCount", "at least 1"),
    (
        {"nodeCount": "0", "consumptionMode": "flex-start", "reservationName": None},
        "nodeCount",
        "ceiling",
    ),
    ({"consumptionMode": "dws"}, "consumptionMode", "reservation, spot, flex-start, on-demand"),
    ({"reservationName": None}, "reservationName", "required with consumptionMode reservation"),
    ({"reservationName": "Res_1"}, "reservationName", "reservation name"),
    ({"consumptionMode": "spot"}, "reservationName", "only used with consumptionMode reservation"),
    ({"consumptionMode": "flex-start"}, "reservationName", "not flex-start"),
    (
        {"consumptionMode": "on-demand", "reservationName": None, "reservationBlock": "b1"},
        "reservationBlock",
        "only used with consumptionMode reservation",
    ),
    ({"compactPlacement": "true"}, "compactPlacement", "not with consumptionMode reservation"),
    # GKE floors: A4 per the GPU recipes' A4 guide, flex-start GPUs per the GKE
    # flex-start page (binding for A3 Ultra, whose own floor is lower).
    ({"gkeVersionPrefix": "1.31."}, "gkeVersionPrefix", "1.32.4-gke.1236000 or later"),
    ({"gkeVersionPrefix": "1.32.3."}, "gkeVersionPrefix", "1.32.4-gke.1236000 or later"),
    (
        {
            "machineType": "a3-ultragpu-8g",
            "consumptionMode": "flex-start",
            "reservationName": None,
            "gkeVersionPrefix": "1.32.1.",
        },
        "gkeVersionPrefix",
        "1.32.2-gke.1652000 or later",
    ),
    ({"maintenanceStartTime": "9am"}, "maintenanceStartTime", "HH:MM"),
    ({"maintenanceExclusionStart": "2025-12-01"}, "maintenanceExclusionStart", "RFC 3339"),
    ({"maintenanceExclusionScope": "NO_UPGRADES"}, "maintenanceExclusionScope", "NONE"),
    ({"natMinPortsPerVm": "1000"}, "natMinPortsPerVm", "power of two"),
    ({"natMaxPortsPerVm": "512"}, "natMaxPortsPerVm", "above natMinPortsPerVm"),
    ({"rdmaSubnetPrefix": "Bad_Prefix"}, "rdmaSubnetPrefix", "subnet name"),
    ({"gpuDriverVersion": "INSTALLATION_DISABLED"}, "gpuDriverVersion", "LATEST, DEFAULT"),
    ({"releaseChannel": "regular"}, "releaseChannel", "REGULAR"),
    ({"gpuBootDiskGb": "50"}, "gpuBootDiskGb", "100 to 65536"),
    # just outside each numeric limit (the values at the limits: VALID_LIMITS)
    ({"nodeCount": "65"}, "nodeCount", "at most 64"),
    ({"nodeCount": "-1"}, "nodeCount", "at least 1"),
    ({"gpuBootDiskGb": "99"}, "gpuBootDiskGb", "100 to 65536"),
    ({"gpuBootDiskGb": "65537"}, "gpuBootDiskGb", "100 to 65536"),
    ({"systemMaxNodes": "0"}, "systemMaxNodes", "1 to 100"),
    ({"systemMaxNodes": "101"}, "systemMaxNodes", "1 to 100"),
    ({"registryKeepVersions": "0"}, "registryKeepVersions", "1 to 100"),
    ({"registryKeepVersions": "101"}, "registryKeepVersions", "1 to 100"),
    ({"weightsMinutes": "29"}, "weightsMinutes", "30 to 1440"),
    ({"weightsMinutes": "1441"}, "weightsMinutes", "30 to 1440"),
    ({"startupMinutes": "9"}, "startupMinutes", "10 to 360"),
    ({"startupMinutes": "361"}, "startupMinutes", "10 to 360"),
    ({"epSize": "0"}, "epSize", "divisor of 8"),
    ({"epSize": "-2"}, "epSize", "divisor of 8"),
    ({"epSize": "16"}, "epSize", "divisor of 8"),
    ({"tpSize": "8", "ppSize": "0"}, "tpSize", "8 x 0"),
    ({"tpSize": "-8", "ppSize": "-1"}, "tpSize", "-8 x -1"),
    ({"rdmaCidr": "172.16.0.0/27"}, "rdmaCidr", "/26 or larger"),
    ({"namePrefix": "a" * 13}, "namePrefix", "1-12"),
    ({"rdmaNetworkName": "n" * 55}, "rdmaNetworkName", "at most 54"),
    ({"hostNetworkName": "h" * 55}, "hostNetworkName", "at most 54"),
    ({"gvnicNetworkName": "g" * 55}, "gvnicNetworkName", "at most 54"),
    ({"bucketName": "b" * 64}, "bucketName", "3-63"),
    ({"serviceAccount": "s" * 64}, "serviceAccount", "Kubernetes name"),
    # adoption
    ({"clusterMode": "import"}, "clusterMode", "create, adopt"),
    ({"clusterMode": "adopt"}, "clusterName", "required with clusterMode adopt"),
    ({"clusterLocation": "us-central1"}, "clusterLocation", "only used with clusterMode adopt"),
    (
        {"clusterMode": "adopt", "clusterName": "c", "clusterLocation": "us-central1-a"},
        "clusterLocation",
        "set zone to us-central1-a",
    ),
    (
        {"clusterMode": "adopt", "clusterName": "c", "clusterLocation": "us-east5"},
        "clusterLocation",
        "expected region us-central1",
    ),
    # serving
    ({"imageBuilder": "prebuilt"}, "prebuiltImage", "required with imageBuilder prebuilt"),
    (
        {"imageBuilder": "prebuilt", "prebuiltImage": "nvcr.io/nvidia/x:latest"},
        "prebuiltImage",
        "`latest` moves",
    ),
    ({"imageBuilder": "prebuilt", "prebuiltImage": "trtllm"}, "prebuiltImage", "REGISTRY/PATH"),
    (
        {"prebuiltImage": "nvcr.io/nvidia/x:1.0"},
        "prebuiltImage",
        "only used with imageBuilder prebuilt",
    ),
    ({"model": "fp16"}, "model", "fp8, nvfp4"),
    ({"servingProfile": "fast"}, "servingProfile", "latency, throughput"),
    ({"tpSize": "4"}, "tpSize", "must equal the 8 GPUs"),
    ({"tpSize": "4", "ppSize": "1"}, "tpSize", "4 x 1"),
    ({"epSize": "3"}, "epSize", "divisor of 8"),
    ({"servingOverrides": "a: [1"}, "servingOverrides", "not valid YAML"),
    ({"servingOverrides": "- 1"}, "servingOverrides", "YAML mapping"),
    ({"servingOverrides": "tensor_parallel_size: 4"}, "servingOverrides", "set tpSize instead"),
    ({"startupMinutes": "5"}, "startupMinutes", "10 to 360"),
    ({"benchmarkMatrix": '["1024x1024"]'}, "benchmarkMatrix", "ISLxOSLxCONCURRENCY"),
    ({"benchmarkMatrix": '["1024x1024xmax"]'}, "benchmarkMatrix", "ISLxOSLxCONCURRENCY"),
    (
        {"benchmarkEnabled": "true", "maxSeqLen": "0"},
        "benchmarkMatrix",
        '"1024x2048x1" is not allowed; input plus output is more than the server\'s max_seq_len 2068',
    ),
    ({"maxSeqLen": "100"}, "maxSeqLen", "0 (the profile's value) or 256 to 163840"),
    ({"servingOverrides": "max_seq_len: 4096"}, "servingOverrides", "set maxSeqLen instead"),
    (
        {
            "benchmarkEnabled": "true",
            "imageBuilder": "prebuilt",
            "prebuiltImage": "us-docker.pkg.dev/p/r/i:1",
        },
        "prebuiltBenchmarkImage",
        "required with imageBuilder prebuilt and benchmarkEnabled",
    ),
    (
        {"prebuiltBenchmarkImage": "us-docker.pkg.dev/p/r/b:1"},
        "prebuiltBenchmarkImage",
        "only used with imageBuilder prebuilt, not cloudbuild",
    ),
    ({"modelRevision": "../x"}, "modelRevision", "branch, tag or commit"),
    # production stacks keep their data
    (
        {"production": "true", "clusterDeletionProtection": "false"},
        "clusterDeletionProtection",
        "production",
    ),
    ({"production": "true", "bucketOnDestroy": "delete"}, "bucketOnDestroy", "production"),
    ({"production": "true", "bucketOnDestroy": "retain"}, "bucketOnDestroy", "use protect"),
    ({"bucketOnDestroy": "keep"}, "bucketOnDestroy", "delete, retain, protect"),
]


@pytest.mark.parametrize(
    ("changes", "key", "words"), INVALID, ids=[f"{c[1]}-{i}" for i, c in enumerate(INVALID)]
)
def test_invalid_config_names_the_key_and_what_is_allowed(changes, key, words):
    problems = problems_of(**changes)
    matching = [p for p in problems if p.startswith(f"{key}:")]
    assert matching, f"no problem names {key}: {problems}"
    assert any(words in p for p in matching), matching


# Each value at a numeric or length limit, accepted (INVALID has the values just outside).
VALID_LIMITS = [
    ({"nodeCount": "64"}, "node_count", 64),
    ({"gpuBootDiskGb": "100"}, "gpu_boot_disk_gb", 100),
    ({"gpuBootDiskGb": "65536"}, "gpu_boot_disk_gb", 65536),
    ({"systemMaxNodes": "1"}, "system_max_nodes", 1),
    ({"systemMaxNodes": "100"}, "system_max_nodes", 100),
    ({"registryKeepVersions": "1"}, "registry_keep_versions", 1),
    ({"registryKeepVersions": "100"}, "registry_keep_versions", 100),
    ({"weightsMinutes": "30"}, "weights_minutes", 30),
    ({"weightsMinutes": "1440"}, "weights_minutes", 1440),
    ({"startupMinutes": "10"}, "startup_minutes", 10),
    ({"startupMinutes": "360"}, "startup_minutes", 360),
    ({"epSize": "1"}, "ep_size", 1),
    ({"tpSize": "4", "ppSize": "2", "epSize": "2"}, "pp_size", 2),
    ({"rdmaCidr": "172.16.0.0/26"}, "rdma_cidr", "172.16.0.0/26"),
    ({"namePrefix": "a" * 12}, "name_prefix", "a" * 12),
    ({"clusterName": "c" * 40}, "cluster_name", "c" * 40),
    ({"rdmaNetworkName": "n" * 54}, "rdma_network_name", "n" * 54),
    ({"bucketName": "b" * 63}, "bucket_name", "b" * 63),
    ({"bucketName": "abc"}, "bucket_name", "abc"),
    ({"registryName": "r" * 63}, "registry_name", "r" * 63),
    ({"serviceAccount": "s" * 63}, "service_account", "s" * 63),
]


@pytest.mark.parametrize(
    ("changes", "field", "value"), VALID_LIMITS, ids=[f"{c[1]}-{c[2]}"[:40] for c in VALID_LIMITS]
)
def test_values_at_the_limits_are_accepted(changes, field, value):
    assert getattr(make(**changes), field) == value


def test_all_problems_are_reported_at_once():
    problems = problems_of(zone="europe-west4-a", nodeCount="0", bucketName="ab")
    assert {p.split(":")[0] for p in problems} >= {"zone", "nodeCount", "bucketName"}


def test_type_errors_and_rule_violations_are_reported_together():
    problems = problems_of(nodeCount="two", zone="europe-west4-a", nodeCont="1")
    assert [p.split(":")[0] for p in problems] == ["nodeCont", "nodeCount", "zone"]


def test_a_bad_choice_is_its_only_problem_named_as_written_with_every_allowed_value():
    # "Spot" is not taken for the default (reservation), which would also
    # demand a reservationName the user never meant to set.
    problems = problems_of(
        releaseChannel="regular", consumptionMode="Spot", reservationName=None, serviceType=1
    )
    assert problems == [
        'releaseChannel: "regular" is not allowed; expected one of RAPID, REGULAR, STABLE, '
        "EXTENDED",
        'consumptionMode: "Spot" is not allowed; expected one of reservation, spot, flex-start, '
        "on-demand",
        'serviceType: "1" is not allowed; expected one of ClusterIP, InternalLoadBalancer',
    ]


def test_the_error_message_lists_each_problem_on_its_own_line():
    with pytest.raises(ConfigError) as caught:
        make(zone="europe-west4-a")
    text = str(caught.value)
    assert "invalid stack configuration" in text
    assert '\n  - zone: "europe-west4-a" is not allowed' in text


def test_adopt_mode_needs_no_authorized_cidrs_and_accepts_a_zonal_cluster():
    cfg = make(
        clusterMode="adopt",
        clusterName="existing",
        clusterLocation="us-central1-b",
        masterAuthorizedCidrs="[]",
    )
    assert cfg.cluster_location == "us-central1-b"


def test_a_plain_text_token_is_refused_and_a_secret_one_accepted():
    with pytest.raises(ConfigError) as caught:
        parse({**BASE, "hfToken": "hf_abc"}, secret_keys=frozenset())
    assert caught.value.problems[0].startswith("hfToken: set in plain text")
    assert "hf_abc" not in str(caught.value)
    cfg = parse({**BASE, "hfToken": "hf_abc"}, secret_keys=frozenset({"hfToken"}))
    assert cfg.hf_token.reveal() == "hf_abc"
    assert "hf_abc" not in repr(cfg)


def test_pinned_images_are_accepted():
    digest = "us-docker.pkg.dev/p/r/trtllm@sha256:" + "a" * 64
    assert make(imageBuilder="prebuilt", prebuiltImage=digest).prebuilt_image == digest
    assert make(imageBuilder="prebuilt", prebuiltImage="nvcr.io/nvidia/tensorrt-llm/release:1.2.0")


def test_compact_placement_with_flex_start_is_allowed_on_a4():
    cfg = make(consumptionMode="flex-start", reservationName=None, compactPlacement="true")
    assert cfg.compact_placement


def test_the_sister_shape_is_known():
    cfg = make(machineType="a3-ultragpu-8g")
    assert cfg.shape.accelerator_type == "nvidia-h200-141gb"
    assert cfg.shape.local_ssd_count == 32


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"clusterName": "a-seventeen-chars"}, "advise at most 15"),
        ({"masterAuthorizedCidrs": '["0.0.0.0/0"]'}, "internet"),
        ({"consumptionMode": "on-demand", "reservationName": None}, "rarely available"),
    ],
)
def test_advice_is_a_warning_not_an_error(changes, needle):
    assert any(needle in w for w in rules.warnings(make(**changes)))


def test_a_short_cluster_name_gets_no_warning():
    # (a real address: the base config's 203.0.113.7 is a documentation placeholder)
    assert rules.warnings(make(masterAuthorizedCidrs='["34.120.0.7/32"]')) == []


def test_rdma_range_is_split_into_eight_equal_subnets():
    subnets = rules.rdma_subnet_cidrs("192.168.128.0/18")
    assert subnets[0] == "192.168.128.0/21" and subnets[-1] == "192.168.184.0/21"
    assert len(subnets) == 8
