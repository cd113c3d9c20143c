"""The policy pack's validators (registered in `__main__.py`).

Plain functions `(args, report_violation)`: resource validators take
`ResourceValidationArgs`, stack validators `StackValidationArgs`. Every
message starts with the policy's name and names the resource it is about.

This module is loaded by the Pulumi CLI from the pack folder (`policy/` is
then the whole import path): it imports nothing from the project. The one
fact it needs from `infra/shapes.py`, the GPU table, is copied below, and
`tests/policy` fails if the copy drifts.

Unknown values: during `pulumi preview`, a value computed from another
resource's output (an image digest, a cluster location in some programs) is
not known yet. pulumi-policy hands it as a sentinel string behind a proxy
that raises `UnknownValueError` on access. Every property is read through
`_get`, which turns both into `UNKNOWN`; a validator never reports a
violation on an unknown value (it is checked again at `pulumi up`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from pulumi_policy import proxy

# --- policy names (the pack registers each under this name) -----------------
BUCKET_IN_CLUSTER_REGION = "bucket-in-cluster-region"
BUCKET_NOT_PUBLIC = "bucket-not-public"
SECRETS_ONLY_IN_SECRETS = "secret-material-only-in-kubernetes-secrets"
NO_PUBLIC_LOAD_BALANCER = "no-public-load-balancer"
GPU_POOL_MATCHES_SHAPE = "gpu-pool-matches-machine-shape"
PRODUCTION_SAFEGUARDS = "production-deletion-safeguards"
RESOURCE_REQUESTS = "containers-have-resource-requests"
HEALTH_PROBES = "servers-have-health-probes"
PINNED_IMAGES = "images-pinned"

# Policy config key of NO_PUBLIC_LOAD_BALANCER.
ALLOW_PUBLIC_LOAD_BALANCER = "allowPublicLoadBalancer"

# --- resource types ----------------------------------------------------------
BUCKET = "gcp:storage/bucket:Bucket"
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
GCP_PROVIDER = "pulumi:providers:gcp"
K8S_SECRET = "kubernetes:core/v1:Secret"
K8S_CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
K8S_SERVICE = "kubernetes:core/v1:Service"
# Kinds with a pod spec, and where it is.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# Long-running servers, which need health probes.
SERVER_KINDS = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")

# GKE's annotation for an internal passthrough load balancer, and the older
# one GKE still honours.
INTERNAL_LB_ANNOTATIONS = (
    "networking.gke.io/load-balancer-type",
    "cloud.google.com/load-balancer-type",
)


class GpuShape(NamedTuple):
    accelerator_type: str
    gpu_count: int


# Copy of infra/shapes.py SHAPES (machine type -> accelerator type and count).
GPU_SHAPES: dict[str, GpuShape] = {
    "a4-highgpu-8g": GpuShape("nvidia-b200", 8),
    "a3-ultragpu-8g": GpuShape("nvidia-h200-141gb", 8),
}


# --- reading properties ------------------------------------------------------


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()
_SENTINELS = frozenset(
    {
        proxy.UNKNOWN_BOOLEAN_VALUE,
        proxy.UNKNOWN_NUMBER_VALUE,
        proxy.UNKNOWN_STRING_VALUE,
        proxy.UNKNOWN_ARRAY_VALUE,
        proxy.UNKNOWN_ASSET_VALUE,
        proxy.UNKNOWN_ARCHIVE_VALUE,
        proxy.UNKNOWN_OBJECT_VALUE,
    }
)


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value in _SENTINELS)


def _get(value: Any, *path: str | int, default: Any = None) -> Any:
    """`value[p0][p1]...`: `default` when absent or null, `UNKNOWN` when unknown."""
    for key in path:
        if is_unknown(value):
            return UNKNOWN
        try:
            by_key = isinstance(value, Mapping) and isinstance(key, str)
            by_index = _is_list(value) and isinstance(key, int)
            if not (by_key or by_index):
                return default
            value = value[key]
        except (KeyError, IndexError):
            return default
        except proxy.UnknownValueError:
            return UNKNOWN
    if is_unknown(value):
        return UNKNOWN
    return default if value is None else value


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _items(value: Any) -> list[tuple[str, Any]]:
    """The entries of a mapping, unknown values as `UNKNOWN`."""
    if not isinstance(value, Mapping):
        return []
    return [(key, _get(value, key)) for key in value]


def _elements(value: Any) -> list[Any]:
    """The elements of a list, unknown ones as `UNKNOWN`."""
    if not _is_list(value):
        return []
    return [_get(value, index) for index in range(len(value))]


def _describe(resource_type: str, name: str, props: Any) -> str:
    """`Deployment 'server' (deepseek/dsr1-trtllm-serve)`: kind, Pulumi name, real name."""
    kind = resource_type.rsplit(":", 1)[-1]
    if resource_type.startswith("kubernetes:"):
        parts = [_get(props, "metadata", "namespace"), _get(props, "metadata", "name")]
    else:
        parts = [_get(props, "name")]
    real = "/".join(p for p in parts if isinstance(p, str) and p)
    return f"{kind} '{name}'" + (f" ({real})" if real else "")


def _subject(args: Any) -> str:
    return _describe(args.resource_type, args.name, args.props)


# --- bucket ------------------------------------------------------------------

_ZONE = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")


def _region_of(location: str) -> str:
    """`us-central1-b` -> `us-central1`; a region stays as it is."""
    match = _ZONE.match(location)
    return match.group(1) if match else location


def bucket_in_cluster_region(args: Any, report_violation: Any) -> None:
    """Stack: every bucket is in its cluster's region (GCS FUSE reads stay in-region).

    The cluster's `location` gives the region; without a cluster resource (an
    adopted cluster), the bucket's gcp provider `region` does.
    """
    buckets = [r for r in args.resources if r.resource_type == BUCKET]
    if not buckets:
        args.not_applicable("the stack has no Cloud Storage bucket")
    clusters = [r for r in args.resources if r.resource_type == CLUSTER]
    cluster_regions = {}
    for cluster in clusters:
        location = _get(cluster.props, "location")
        if isinstance(location, str) and location:
            cluster_regions[_region_of(location).lower()] = _describe(
                cluster.resource_type, cluster.name, cluster.props
            )
    checked = 0
    for bucket in buckets:
        location = _get(bucket.props, "location")
        if not isinstance(location, str):
            continue  # unknown until apply
        if clusters:
            if not cluster_regions:
                continue  # the cluster's location is unknown
            expected, source = cluster_regions, "the cluster"
        else:
            region = _provider_region(bucket, args.resources)
            if not region:
                continue
            expected, source = {region.lower(): "the gcp provider"}, "the gcp provider (no cluster)"
        checked += 1
        if location.lower() not in expected:
            where = ", ".join(f"{r} ({what})" for r, what in sorted(expected.items()))
            report_violation(
                f"{BUCKET_IN_CLUSTER_REGION}: "
                f"{_describe(bucket.resource_type, bucket.name, bucket.props)} is in "
                f"{location}, not in the region of {source}: {where}; GCS FUSE reads of the "
                "checkpoint would cross regions (egress charges, lower throughput). "
                "Set the bucket's location to the cluster's region, upper-case.",
                bucket.urn,
            )
    if checked == 0:
        args.not_applicable(
            "no bucket location to compare: the cluster's or bucket's location is unknown, "
            "or there is no cluster resource and the gcp provider sets no region"
        )


def _provider_region(bucket: Any, resources: list[Any]) -> str | None:
    provider = bucket.provider
    if provider is not None:
        region = _get(provider.props, "region")
        if isinstance(region, str) and region:
            return region
        urn = provider.urn
    else:
        urn = None
    for resource in resources:
        if resource.resource_type == GCP_PROVIDER and (urn is None or resource.urn == urn):
            region = _get(resource.props, "region")
            if isinstance(region, str) and region:
                return region
    return None


def bucket_not_public(args: Any, report_violation: Any) -> None:
    """A bucket enforces public access prevention and uniform bucket-level access."""
    if args.resource_type != BUCKET:
        return
    prevention = _get(args.props, "publicAccessPrevention")
    if not is_unknown(prevention) and prevention != "enforced":
        shown = prevention or "unset (inherited)"
        report_violation(
            f"{BUCKET_NOT_PUBLIC}: {_subject(args)} has publicAccessPrevention {shown}; "
            'set public_access_prevention="enforced" so no IAM grant can make it public.'
        )
    uniform = _get(args.props, "uniformBucketLevelAccess")
    if not is_unknown(uniform) and uniform is not True:
        shown = "unset (object ACLs allowed)" if uniform is None else uniform
        report_violation(
            f"{BUCKET_NOT_PUBLIC}: {_subject(args)} has uniformBucketLevelAccess "
            f"{shown}; set uniform_bucket_level_access=True (IAM only, no object ACLs)."
        )


# --- secret material ---------------------------------------------------------

# Names whose literal value is a credential: `HF_TOKEN`, `dbPassword`, `api-key`.
_SECRET_WORDS = frozenset(
    {"token", "password", "passwd", "pwd", "secret", "credential", "credentials", "passphrase"}
)
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
_SECRET_JOINED = frozenset({"apikey", "privatekey", "accesskey", "authtoken"})
# ... unless the name says the value only points at one: `SECRET_NAME`, `TOKEN_PATH`.
_REFERENCE_WORDS = frozenset(
    {"name", "path", "file", "dir", "directory", "ref", "url", "uri", "env", "mount"}
)
# Shapes of well-known credentials, wherever they appear (args, annotations,
# file contents). The matched text is never repeated in a message.
_TOKEN_PATTERNS = (
    ("a Hugging Face token", re.compile(r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9_]{16,}")),
    (
        "a GitHub token",
        re.compile(r"(?<![A-Za-z0-9_])(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{22,})"),
    ),
    ("an NGC API key", re.compile(r"(?<![A-Za-z0-9_])nvapi-[A-Za-z0-9_-]{40,}")),
    ("a Google API key", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    ("a Google OAuth access token", re.compile(r"(?<![A-Za-z0-9_])ya29\.[0-9A-Za-z_-]{20,}")),
    ("an AWS access key", re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")),
    ("an OpenAI-style API key", re.compile(r"(?<![A-Za-z0-9_-])sk-(proj-)?[A-Za-z0-9_-]{32,}")),
    ("a private key", re.compile(r"-----BEGIN ([A-Z]+ )*PRIVATE KEY-----")),
)


def _name_words(name: str) -> list[str]:
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return [w for w in re.split(r"[^a-z0-9]+", snake) if w]


def is_secret_name(name: str) -> bool:
    """Whether a key or variable name says its value is a credential."""
    words = _name_words(name)
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    if any(w in _SECRET_WORDS or w in _SECRET_JOINED for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def token_kind(text: str) -> str | None:
    """What credential `text` contains, if it looks like one."""
    for kind, pattern in _TOKEN_PATTERNS:
        for match in pattern.finditer(text):
            found = match.group(0)
            # `hf_` also starts snake_case identifiers (hf_hub_download_timeout);
            # a token has capitals or digits.
            if found.startswith("hf_") and not re.search(r"[A-Z0-9]", found[3:]):
                continue
            return kind
    return None


def _secret_findings(value: Any, path: str) -> list[str]:
    findings: list[str] = []
    if is_unknown(value):
        return findings
    if isinstance(value, Mapping):
        entries = dict(_items(value))
        name, literal = entries.get("name"), entries.get("value")
        # An environment variable (or HTTP header): {name, value}.
        if isinstance(name, str) and isinstance(literal, str) and literal and is_secret_name(name):
            findings.append(f"{path} ({name}) has a literal value")
        for key, sub in entries.items():
            findings += _secret_findings(sub, f"{path}.{key}" if path else str(key))
    elif _is_list(value):
        for index, sub in enumerate(_elements(value)):
            findings += _secret_findings(sub, f"{path}[{index}]")
    elif isinstance(value, str):
        kind = token_kind(value)
        if kind:
            findings.append(f"{path} holds what looks like {kind}")
    return findings


def secret_material_only_in_secrets(args: Any, report_violation: Any) -> None:
    """No Kubernetes object but a Secret carries credentials.

    Looks for literal values of variables named like credentials (`HF_TOKEN`,
    `*_PASSWORD`), ConfigMap keys named so, and strings shaped like known
    tokens (`hf_...`, `ghp_...`, private keys) anywhere in the object.
    """
    if not args.resource_type.startswith("kubernetes:") or args.resource_type == K8S_SECRET:
        return
    findings = _secret_findings(args.props, "")
    if args.resource_type == K8S_CONFIG_MAP:
        for field in ("data", "binaryData"):
            for key, value in _items(_get(args.props, field)):
                if isinstance(value, str) and value and is_secret_name(key):
                    findings.append(f"{field}.{key} is named like a credential")
    for finding in dict.fromkeys(findings):
        report_violation(
            f"{SECRETS_ONLY_IN_SECRETS}: {_subject(args)}: {finding}; keep credentials "
            "in a kubernetes:core/v1:Secret and read them by reference "
            "(env valueFrom.secretKeyRef, or a secret volume)."
        )


# --- load balancers ----------------------------------------------------------


def _flag(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key, False) if isinstance(config, Mapping) else False
    return value is True or str(value).lower() == "true"


def no_public_load_balancer(args: Any, report_violation: Any) -> None:
    """A LoadBalancer Service is internal unless the pack config allows public ones."""
    if args.resource_type != K8S_SERVICE:
        return
    if _flag(args.get_config(), ALLOW_PUBLIC_LOAD_BALANCER):
        return
    if _get(args.props, "spec", "type") != "LoadBalancer":
        return
    annotations = _get(args.props, "metadata", "annotations", default={})
    if is_unknown(annotations):
        return
    values = [_get(annotations, key) for key in INTERNAL_LB_ANNOTATIONS]
    if any(is_unknown(v) for v in values) or "Internal" in values:
        return
    report_violation(
        f"{NO_PUBLIC_LOAD_BALANCER}: {_subject(args)} is a LoadBalancer without the "
        f"annotation {INTERNAL_LB_ANNOTATIONS[0]}: Internal, so GKE gives it a public IP "
        "(the model server has no authentication). Add the annotation, use ClusterIP, "
        f"or set the pack config {ALLOW_PUBLIC_LOAD_BALANCER}: true for this policy."
    )


# --- GPU node pool -------------------------------------------------------------


def gpu_pool_matches_machine_shape(args: Any, report_violation: Any) -> None:
    """A GPU node pool attaches the accelerator type and count of its machine type."""
    if args.resource_type != NODE_POOL:
        return
    machine = _get(args.props, "nodeConfig", "machineType")
    accelerators = _get(args.props, "nodeConfig", "guestAccelerators", default=[])
    if is_unknown(machine) or is_unknown(accelerators):
        return
    accelerators = _elements(accelerators)
    shape = GPU_SHAPES.get(machine) if isinstance(machine, str) else None
    if shape is None:
        if accelerators:
            report_violation(
                f"{GPU_POOL_MATCHES_SHAPE}: {_subject(args)} attaches GPUs to machine type "
                f"{machine}, which is not one of the known GPU shapes "
                f"({', '.join(sorted(GPU_SHAPES))}); add it to infra/shapes.py and the pack."
            )
        return
    want = f"{shape.gpu_count}x {shape.accelerator_type}"
    if len(accelerators) != 1:
        report_violation(
            f"{GPU_POOL_MATCHES_SHAPE}: {_subject(args)} ({machine}) declares "
            f"{len(accelerators)} guestAccelerators entries; {machine} comes with exactly "
            f"one: {want}."
        )
        return
    accelerator = accelerators[0]
    kind, count = _get(accelerator, "type"), _get(accelerator, "count")
    if not is_unknown(kind) and kind != shape.accelerator_type:
        report_violation(
            f"{GPU_POOL_MATCHES_SHAPE}: {_subject(args)} asks for accelerator type {kind} "
            f"on {machine}, which comes with {want}."
        )
    if not is_unknown(count) and _as_int(count) != shape.gpu_count:
        report_violation(
            f"{GPU_POOL_MATCHES_SHAPE}: {_subject(args)} asks for {count} accelerators "
            f"on {machine}, which comes with {want}."
        )


def _as_int(value: Any) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


# --- production stacks ---------------------------------------------------------

PRODUCTION_TIER = "production"


def production_cluster_deletion_protection(args: Any, report_violation: Any) -> None:
    """A production cluster (resourceLabels.tier production) has deletion protection on."""
    if args.resource_type != CLUSTER:
        return
    if _get(args.props, "resourceLabels", "tier") != PRODUCTION_TIER:
        return
    # Unset means the provider's default, which is true.
    protection = _get(args.props, "deletionProtection", default=True)
    if not is_unknown(protection) and protection is not True:
        report_violation(
            f"{PRODUCTION_SAFEGUARDS}: {_subject(args)} is labelled tier: production but "
            "has deletionProtection false; a production cluster keeps deletion protection "
            "on (setting clusterDeletionProtection)."
        )


def production_bucket_kept(args: Any, report_violation: Any) -> None:
    """A production bucket (labels.tier production) is protected and not force-destroyed.

    pulumi-policy 1.21.0 does not show the retainOnDelete option to a policy
    (PolicyResourceOptions has protect, ignore_changes, delete_before_replace,
    aliases, custom_timeouts, additional_secret_outputs, parent), so "kept"
    is checked as: the `protect` option, and `forceDestroy` not true.
    """
    if args.resource_type != BUCKET:
        return
    if _get(args.props, "labels", "tier") != PRODUCTION_TIER:
        return
    if not args.opts.protect:
        report_violation(
            f"{PRODUCTION_SAFEGUARDS}: {_subject(args)} is labelled tier: production but is "
            "not protected (resource option protect); set bucketOnDestroy protect so "
            "`pulumi destroy` cannot delete the weights and results."
        )
    force = _get(args.props, "forceDestroy")
    if not is_unknown(force) and force is True:
        report_violation(
            f"{PRODUCTION_SAFEGUARDS}: {_subject(args)} is labelled tier: production but has "
            "forceDestroy true, so deleting it would delete every object in it."
        )


# --- workloads ---------------------------------------------------------------


def _containers(args: Any, groups: tuple[str, ...]) -> list[tuple[str, str, Any]]:
    """(group, container name, container) for the pod spec of a workload."""
    path = POD_SPEC_PATHS.get(args.resource_type)
    if path is None:
        return []
    spec = _get(args.props, *path)
    found = []
    for group in groups:
        for index, container in enumerate(_elements(_get(spec, group))):
            name = _get(container, "name")
            found.append((group, name if isinstance(name, str) else f"#{index}", container))
    return found


_GROUP_NAMES = {
    "containers": "container",
    "initContainers": "init container",
    "ephemeralContainers": "ephemeral container",
}


def containers_have_resource_requests(args: Any, report_violation: Any) -> None:
    """Every container, init containers included, requests cpu and memory."""
    for group, name, container in _containers(args, ("containers", "initContainers")):
        if is_unknown(container):
            continue
        requests = _get(container, "resources", "requests", default={})
        if is_unknown(requests):
            continue
        missing = [r for r in ("cpu", "memory") if _get(requests, r) in (None, "")]
        if missing:
            report_violation(
                f"{RESOURCE_REQUESTS}: {_subject(args)}: {_GROUP_NAMES[group]} '{name}' has "
                f"no {' or '.join(missing)} request; without requests the scheduler "
                "cannot place it and the node can be overcommitted."
            )


def servers_have_health_probes(args: Any, report_violation: Any) -> None:
    """Every container of a long-running server has a readiness probe and a
    liveness or startup probe."""
    if args.resource_type not in SERVER_KINDS:
        return
    for _, name, container in _containers(args, ("containers",)):
        if is_unknown(container):
            continue
        probes = {
            p: _get(container, p) for p in ("readinessProbe", "livenessProbe", "startupProbe")
        }
        if any(is_unknown(p) for p in probes.values()):
            continue
        missing = []
        if not probes["readinessProbe"]:
            missing.append("a readinessProbe")
        if not probes["livenessProbe"] and not probes["startupProbe"]:
            missing.append("a livenessProbe or startupProbe")
        if missing:
            report_violation(
                f"{HEALTH_PROBES}: {_subject(args)}: container '{name}' has no "
                f"{' and no '.join(missing)}; without them a server that is still loading, "
                "or hung, gets traffic and is never restarted."
            )


_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_problem(reference: str) -> str | None:
    """Why an image reference is not pinned, or None."""
    if "@" in reference:
        digest = reference.split("@", 1)[1]
        return None if _DIGEST.match(digest) else "has a malformed digest"
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag, which means latest"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return "uses the moving tag latest"
    if not tag:
        return "has an empty tag"
    return None


def images_pinned(args: Any, report_violation: Any) -> None:
    """Every container image is referenced by digest (@sha256:) or a pinned tag."""
    groups = ("containers", "initContainers", "ephemeralContainers")
    for group, name, container in _containers(args, groups):
        image = _get(container, "image")
        if is_unknown(container) or is_unknown(image):
            continue  # a digest computed during the update
        problem = image_problem(image) if isinstance(image, str) and image else "has no image"
        if problem:
            shown = f"image {image} " if isinstance(image, str) and image else ""
            report_violation(
                f"{PINNED_IMAGES}: {_subject(args)}: {_GROUP_NAMES[group]} '{name}' "
                f"{shown}{problem}; reference images by digest (@sha256:...) or a version tag."
            )
