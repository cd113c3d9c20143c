"""Pulumi mocks that stand in for the engine and the providers.

`PlanMocks` answers resource registrations and data-source calls with what
the real providers would return, as far as that can be known before apply:
names and paths GCP derives from inputs are filled in; values only GCP knows
(an endpoint IP, a CA certificate, a project number, an image digest) are
placeholders of the form `<computed:resource.attribute>` so that the plan
shows them as unknown.

`CapturingMonitor` records every registration with its resource options,
which `MockResourceArgs` does not carry (see shared pulumi notes), and every
data-source call with the resources it waits for.

`PlatformFacts` is what the mocks know about the project before anything is
created (machine types per zone, RoCE network profiles, reservations, quotas,
an adopted cluster and its subnets): the answers the preflight checks read.
Tests replace it to make the platform answer "missing".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _ensure_event_loop

from infra.values import mark_secrets

if TYPE_CHECKING:
    # protobuf ships no type information (types-protobuf is a separate stub package).
    from google.protobuf import empty_pb2  # type: ignore[import-untyped]

COMPUTED = "<computed:{}>"


def computed(what: str) -> str:
    return COMPUTED.format(what)


def is_computed(value: Any) -> bool:
    return isinstance(value, str) and "<computed:" in value


@dataclass
class Registration:
    """One resource registration, with the options the engine would see."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    parent: str
    provider: str
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    ignore_changes: list[str]
    # Every URN the resource waits for: explicit depends_on and the resources
    # whose outputs flow into its inputs.
    dependencies: list[str]
    custom_timeouts: dict[str, str]
    id: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    # The `import_` resource option: adopt this existing cloud resource.
    import_id: str = ""


class Invocation(tuple):
    """One data-source call: unpacks as (token, args, provider) like before;
    `depends_on` holds the URNs the engine makes it wait for (pulumi 3.272
    `InvokeOutputOptions(depends_on=...)` plus the resources whose outputs
    flow into its arguments) and `result` what the mocks answered."""

    depends_on: tuple[str, ...]
    result: dict[str, Any]

    def __new__(
        cls,
        token: str,
        args: dict,
        provider: str,
        depends_on: Iterable[str] = (),
        result: dict[str, Any] | None = None,
    ) -> Invocation:
        self = super().__new__(cls, (token, args, provider))
        self.depends_on = tuple(depends_on)
        self.result = result if result is not None else {}
        return self

    @property
    def token(self) -> str:
        return self[0]

    @property
    def args(self) -> dict:
        return self[1]

    @property
    def provider(self) -> str:
        return self[2]


@dataclass
class Reservation:
    """A specific reservation as Compute Engine describes it."""

    machine_type: str
    count: int
    zone: str
    in_use: int = 0
    # Block name -> (blocks in it, blocks in use), as reservation blocks report.
    blocks: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class PlatformFacts:
    """What exists in the project before `pulumi up`, as the data sources see it."""

    # zone -> machine types offered there.
    machine_types: dict[str, set[str]] = field(
        default_factory=lambda: {
            "us-central1-b": {"a4-highgpu-8g", "a3-ultragpu-8g", "e2-standard-8"}
        }
    )
    # Zones with a `<zone>-vpc-roce` network profile.
    roce_zones: set[str] = field(default_factory=lambda: {"us-central1-b"})
    # (project, name) -> reservation.
    reservations: dict[tuple[str, str], Reservation] = field(
        default_factory=lambda: {
            (owner, "a4-dense-reservation"): Reservation(
                "a4-highgpu-8g", 2, "us-central1-b", blocks={"block-1": (2, 0)}
            )
            # The stacks' project, and a project that shares its reservation.
            for owner in ("my-a4-project", "capacity-owner")
        }
    )
    # Cloud Quotas quota ID -> {region: limit}; a missing ID or region is 0.
    quotas: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            f"{kind}-{gpu}-GPUS-per-project-region": {"us-central1": 512}
            for kind in ("NVIDIA", "PREEMPTIBLE-NVIDIA")
            for gpu in ("B200", "H200-141GB")
        }
    )
    # (region, name) of the subnetworks that exist before `pulumi up` (an
    # adopted cluster's); None: every one the plan looks up exists.
    subnetworks: set[tuple[str, str]] | None = None
    # Whether an adopted cluster has Workload Identity enabled.
    adopted_cluster_workload_identity: bool = True


def _fake_digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


class PlanMocks(pulumi_mocks.Mocks):
    """What the providers would answer, as far as it is known before apply."""

    def __init__(
        self,
        project_number: str = "<computed:project.number>",
        facts: PlatformFacts | None = None,
    ):
        self.project_number = project_number
        self.facts = facts or PlatformFacts()
        # Realistic values the mocks invent (image digests), which a plan must
        # still show as unknown: value -> what it stands for.
        self.invented: dict[str, str] = {}

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        typ, name = args.typ, args.name
        state: dict[str, Any] = dict(inputs)
        project = inputs.get("project", "")
        rid = f"{name}-id"
        if typ == "gcp:compute/network:Network":
            rid = f"projects/{project or '<project>'}/global/networks/{inputs.get('name')}"
            state["selfLink"] = "https://www.googleapis.com/compute/v1/" + rid
        elif typ == "gcp:compute/subnetwork:Subnetwork":
            rid = f"projects/{project}/regions/{inputs.get('region')}/subnetworks/{inputs.get('name')}"
            state["selfLink"] = "https://www.googleapis.com/compute/v1/" + rid
        elif typ == "gcp:serviceaccount/account:Account":
            email = f"{inputs.get('accountId')}@{project}.iam.gserviceaccount.com"
            state.update(email=email, member=f"serviceAccount:{email}")
            rid = f"projects/{project}/serviceAccounts/{email}"
        elif typ == "gcp:container/cluster:Cluster":
            rid = f"projects/{project}/locations/{inputs.get('location')}/clusters/{inputs.get('name')}"
            state.update(
                endpoint=computed(f"{name}.endpoint"),
                masterAuth={
                    "clusterCaCertificate": computed(f"{name}.masterAuth.clusterCaCertificate")
                },
                selfLink=computed(f"{name}.selfLink"),
            )
        elif typ == "gcp:container/nodePool:NodePool":
            rid = f"{inputs.get('cluster')}/nodePools/{inputs.get('name')}"
        elif typ == "gcp:storage/bucket:Bucket":
            rid = inputs.get("name", rid)
            state["url"] = f"gs://{rid}"
        elif typ == "gcp:artifactregistry/repository:Repository":
            rid = (
                f"projects/{project}/locations/{inputs.get('location')}/repositories/"
                f"{inputs.get('repositoryId')}"
            )
            state["registryUri"] = (
                f"{inputs.get('location')}-docker.pkg.dev/{project}/{inputs.get('repositoryId')}"
            )
        elif typ == "command:local:Command":
            # The build command prints the pushed image's digest; a new build
            # context (trigger) gives a new digest, as a real build would.
            digest = _fake_digest(str(inputs.get("triggers")))
            self.invented[digest] = f"{name}.digest"
            state["stdout"] = digest + "\n"
        elif typ == "docker:index/image:Image":
            digest = _fake_digest(str(inputs))
            self.invented[digest] = f"{name}.digest"
            state["repoDigest"] = f"{inputs.get('imageName', '').rsplit(':', 1)[0]}@{digest}"

        elif typ == "time:index/sleep:Sleep":
            # The provider's import ID format: "<createDuration>,<destroyDuration>".
            rid = f"{inputs.get('createDuration', '')},{inputs.get('destroyDuration', '')}"
        elif typ.startswith("kubernetes:"):
            meta = inputs.get("metadata") or {}
            rid = "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p) or rid
            if (
                typ == "kubernetes:core/v1:Service"
                and (inputs.get("spec") or {}).get("type") == "LoadBalancer"
            ):
                # The load balancer's address, which GKE allocates on apply.
                ip = computed(f"{name}.status.loadBalancer.ingress[0].ip")
                state["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
        return rid, state

    # A bare dict is an answer without check failures (MockMonitor.Invoke).
    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        token = args.token
        if token == "gcp:organizations/getProject:getProject":
            return {"projectId": args.args.get("projectId"), "number": self.project_number}
        if token == "gcp:container/getEngineVersions:getEngineVersions":
            # Every field a different placeholder, so that a test can tell which
            # one the program picked. The prefix filters the latest versions;
            # each channel's default version is the channel's, whatever the prefix.
            prefix = args.args.get("versionPrefix") or ""

            def version(what: str) -> str:
                return computed(f"gke-version {what}{f' {prefix}*' if prefix else ''}")

            channels = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
            return {
                "latestMasterVersion": version("latest master"),
                "latestNodeVersion": version("latest node"),
                "releaseChannelDefaultVersion": {
                    c: computed(f"gke-version {c} default") for c in channels
                },
                "releaseChannelLatestVersion": {c: version(f"{c} latest") for c in channels},
                "validMasterVersions": [version("latest master")],
                "validNodeVersions": [version("latest node")],
            }
        if token == "gcp:container/getCluster:getCluster":
            name, location = args.args.get("name"), args.args.get("location")
            project = args.args.get("project")
            pools = (
                [{"workloadPool": f"{project}.svc.id.goog"}]
                if self.facts.adopted_cluster_workload_identity
                else []
            )
            return {
                "id": f"projects/{project}/locations/{location}/clusters/{name}",
                "name": name,
                "location": location,
                "endpoint": computed(f"{name}.endpoint"),
                "masterAuths": [{"clusterCaCertificate": computed(f"{name}.caCertificate")}],
                "workloadIdentityConfigs": pools,
            }
        if token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": "", "region": "", "zone": "", "accessToken": computed("token")}
        answer = self._platform_fact(token, args.args)
        if answer is not None:
            return answer
        raise NotImplementedError(f"the plan mocks do not answer {token}; add it to plan/mocks.py")

    def _platform_fact(self, token: str, args: dict) -> dict | None:
        """Answers of the data sources the preflight checks call (from `self.facts`)."""
        facts = self.facts
        if token == "gcp:compute/getMachineTypes:getMachineTypes":
            zone = args.get("zone", "")
            wanted = re.fullmatch(r"name = (\S+)", args.get("filter", ""))
            offered = sorted(facts.machine_types.get(zone, set()))
            names = [n for n in offered if not wanted or n == wanted.group(1)]
            return {
                "id": f"projects/{args.get('project')}/zones/{zone}/machineTypes",
                "filter": args.get("filter", ""),
                "project": args.get("project"),
                "zone": zone,
                "machineTypes": [_machine_type(zone, n) for n in names],
            }
        if token == "gcp:compute/getReservation:getReservation":
            key = (str(args.get("project")), str(args.get("name")))
            found = facts.reservations.get(key)
            if found is None or found.zone != args.get("zone"):
                # The provider reads an absent reservation as an empty result.
                return {"name": "", "zone": args.get("zone"), "specificReservations": []}
            return {
                "name": args.get("name"),
                "zone": found.zone,
                "project": args.get("project"),
                "specificReservationRequired": True,
                "status": "READY",
                "specificReservations": [
                    {
                        "assuredCount": found.count,
                        "count": found.count,
                        "inUseCount": found.in_use,
                        "sourceInstanceTemplate": "",
                        "instanceProperties": [
                            {
                                "machineType": found.machine_type,
                                "guestAccelerators": [],
                                "localSsds": [],
                                "locationHint": "",
                                "maintenanceInterval": "",
                                "minCpuPlatform": "",
                            }
                        ],
                    }
                ],
            }
        if token == "gcp:compute/getReservationBlock:getReservationBlock":
            found = facts.reservations.get((str(args.get("project")), str(args.get("reservation"))))
            block = found.blocks.get(str(args.get("name"))) if found else None
            if block is None:
                return {"name": "", "blockCount": 0, "inUseCount": 0}
            return {"name": args.get("name"), "blockCount": block[0], "inUseCount": block[1]}
        if token == "gcp:cloudquota/getSQuotaInfo:getSQuotaInfo":
            limits = facts.quotas.get(args.get("quotaId", ""), {})
            return {
                "parent": args.get("parent"),
                "service": args.get("service"),
                "quotaId": args.get("quotaId"),
                "dimensionsInfos": [
                    {
                        "applicableLocations": [region],
                        "details": [{"value": str(limit)}],
                        "dimensions": {"region": region},
                    }
                    for region, limit in sorted(limits.items())
                ],
            }
        if token == "gcp:compute/getSubnetwork:getSubnetwork":
            region, name = args.get("region"), args.get("name")
            exists = facts.subnetworks is None or (region, name) in facts.subnetworks
            link = f"https://www.googleapis.com/compute/v1/projects/{args.get('project')}/regions/{region}/subnetworks/{name}"
            return {"name": name, "region": region, "selfLink": link if exists else ""}
        if token == "command:local:run":
            # The one local command a plan runs: the RoCE network profile lookup.
            profile = re.search(r"name=(\S+)-vpc-roce", args.get("command", ""))
            zone = profile.group(1) if profile else ""
            stdout = f"{zone}-vpc-roce" if zone in facts.roce_zones else ""
            return {"command": args.get("command"), "stdout": stdout, "stderr": ""}
        return None


def _machine_type(zone: str, name: str) -> dict:
    return {
        "name": name,
        "accelerators": [],
        "architecture": "X86_64",
        "bundledLocalSsds": [],
        "deprecateds": [],
        "description": name,
        "guestCpus": 0,
        "isSharedCpus": False,
        "maximumPersistentDisks": 0,
        "maximumPersistentDisksSizeGb": 0,
        "memoryMb": 0,
        "selfLink": f"https://www.googleapis.com/compute/v1/zones/{zone}/machineTypes/{name}",
    }


class CapturingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that records every registration with its options."""

    mocks: PlanMocks

    def __init__(self, mocks: PlanMocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.invokes: list[Invocation] = []

    def GetDeploymentInfo(self, request: empty_pb2.Empty) -> resource_pb2.DeploymentInfo:
        # Advertise what the real engine advertises: invokes carry `dependsOn`
        # (RESOURCE_MONITOR_FEATURE_INVOKE_DEPENDS_ON), so the plan sees what a
        # data-source call waits for.
        info = super().GetDeploymentInfo(request)
        info.supportedFeatures.append(resource_pb2.RESOURCE_MONITOR_FEATURE_INVOKE_DEPENDS_ON)
        return info

    def RegisterResource(self, request: resource_pb2.RegisterResourceRequest) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        _ensure_event_loop()
        inputs = mark_secrets(rpc.deserialize_properties(request.object, keep_unknowns=True))
        timeouts = request.customTimeouts
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=request.custom,
                inputs=inputs,
                parent=request.parent,
                provider=request.provider,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                delete_before_replace=bool(request.deleteBeforeReplace),
                ignore_changes=list(request.ignoreChanges),
                dependencies=list(request.dependencies),
                custom_timeouts={
                    k: getattr(timeouts, k)
                    for k in ("create", "update", "delete")
                    if getattr(timeouts, k)
                },
                id=response.id,
                state=self.resources[response.urn].state,
                import_id=request.importId,
            )
        )
        return response

    def Invoke(self, request: resource_pb2.ResourceInvokeRequest) -> Any:
        args = dict(rpc.deserialize_properties(request.args))
        response = super().Invoke(request)
        result = dict(rpc.deserialize_properties(getattr(response, "return")))
        self.invokes.append(
            Invocation(request.tok, args, request.provider, request.dependsOn, result)
        )
        return response
