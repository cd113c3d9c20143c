"""Pulumi mocks that stand in for the engine and the providers.

`PlanMocks` answers resource registrations and data-source calls with what
the real providers would return, as far as that can be known before apply:
names and paths GCP derives from inputs are filled in; values only GCP knows
(an endpoint IP, a CA certificate, a project number, an image digest) are
placeholders of the form `<computed:resource.attribute>` so that the plan
shows them as unknown.

`CapturingMonitor` records every registration with its resource options,
which `MockResourceArgs` does not carry (see shared pulumi notes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _ensure_event_loop

COMPUTED = "<computed:{}>"


def computed(what: str) -> str:
    return COMPUTED.format(what)


def is_computed(value: Any) -> bool:
    return isinstance(value, str) and "<computed:" in value


class Secret:
    """A secret input value as the plan shows it (the value is never printed)."""

    def __init__(self, value: Any):
        self._value = value

    def reveal(self) -> Any:
        return self._value

    def __repr__(self) -> str:
        return "[secret]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(repr(self._value))


def mark_secrets(value: Any) -> Any:
    """Replace RPC secret wrappers by `Secret` objects, recursively."""
    if rpc.is_rpc_secret(value):
        return Secret(mark_secrets(rpc.unwrap_rpc_secret(value)))
    if isinstance(value, dict):
        return {k: mark_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mark_secrets(v) for v in value]
    return value


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


def _fake_digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


class PlanMocks(pulumi_mocks.Mocks):
    """What the providers would answer, as far as it is known before apply."""

    def __init__(self, project_number: str = "<computed:project.number>"):
        self.project_number = project_number
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

        elif typ.startswith("kubernetes:"):
            meta = inputs.get("metadata") or {}
            rid = "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p) or rid
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
            return {
                "id": f"projects/{args.args.get('project')}/locations/{location}/clusters/{name}",
                "name": name,
                "location": location,
                "endpoint": computed(f"{name}.endpoint"),
                "masterAuths": [{"clusterCaCertificate": computed(f"{name}.caCertificate")}],
            }
        if token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": "", "region": "", "zone": "", "accessToken": computed("token")}
        raise NotImplementedError(f"the plan mocks do not answer {token}; add it to plan/mocks.py")


class CapturingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that records every registration with its options."""

    mocks: PlanMocks

    def __init__(self, mocks: PlanMocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.invokes: list[tuple[str, dict, str]] = []

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
            )
        )
        return response

    def Invoke(self, request: resource_pb2.ResourceInvokeRequest) -> Any:
        args = dict(rpc.deserialize_properties(request.args))
        self.invokes.append((request.tok, args, request.provider))
        return super().Invoke(request)
