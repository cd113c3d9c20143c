"""The pack's files: what __main__.py may hold, what it registers, what the CLI needs."""

from __future__ import annotations

import ast
import inspect
import selectors
import subprocess
import sys
import time

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, StackValidationPolicy

from infra.shapes import SHAPES
from plan import runner
from plan.runner import REPO
from tests.conftest import HF_TOKEN_MARKER, plan_of
from tests.policy import adapter
from tests.policy.conftest import POLICY_DIR, registered_pack, validators

MAIN = POLICY_DIR / "__main__.py"


def validator_functions() -> dict[str, object]:
    """Public functions of validators.py with the validator signature."""
    return {
        name: fn
        for name, fn in inspect.getmembers(validators, inspect.isfunction)
        if fn.__module__ == validators.__name__
        and not name.startswith("_")
        and list(inspect.signature(fn).parameters) == ["args", "report_violation"]
    }


def test_main_only_constructs_the_pack():
    tree = ast.parse(MAIN.read_text())
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    imports = [s for s in body if isinstance(s, (ast.Import, ast.ImportFrom))]
    rest = [s for s in body if s not in imports]
    assert len(rest) == 1, "after the imports, __main__.py holds only the PolicyPack(...) call"
    call = rest[0].value if isinstance(rest[0], ast.Expr) else None
    assert isinstance(call, ast.Call) and ast.unparse(call.func) == "PolicyPack"
    assert any(
        isinstance(s, ast.Import) and any(a.name == "validators" for a in s.names) for s in imports
    ), "__main__.py imports the validators module"
    logic = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.For, ast.If)
    logic += (ast.While, ast.comprehension, ast.IfExp, ast.BoolOp, ast.Compare)
    found = [type(node).__name__ for node in ast.walk(tree) if isinstance(node, logic)]
    assert found == [], f"validator logic belongs in validators.py, found {found}"


def test_every_validator_is_registered():
    """Each validator function appears exactly once as a `validate=` of a policy."""
    tree = ast.parse(MAIN.read_text())
    registered = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "validate":
            values = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            for value in values:
                assert isinstance(value, ast.Attribute) and ast.unparse(value.value) == "v", (
                    f"validate={ast.unparse(value)}: name a function of validators.py"
                )
                registered.append(value.attr)
    assert sorted(registered) == sorted(validator_functions())


def test_policies_are_mandatory_unique_and_of_the_right_kind(pack):
    assert pack.name == "a4-deepseek"
    assert pack.enforcement_level == EnforcementLevel.MANDATORY
    names = [p.name for p in pack.policies]
    assert len(names) == len(set(names))
    for policy in pack.policies:
        assert policy.enforcement_level in (None, EnforcementLevel.MANDATORY), policy.name
    stack_policies = {p.name for p in pack.policies if isinstance(p, StackValidationPolicy)}
    assert stack_policies == {validators.BUCKET_IN_CLUSTER_REGION}


def test_public_load_balancers_are_a_config_switch_defaulting_to_off(pack):
    schema = pack.policy(validators.NO_PUBLIC_LOAD_BALANCER).config_schema
    assert schema.properties[validators.ALLOW_PUBLIC_LOAD_BALANCER]["type"] == "boolean"
    assert schema.properties[validators.ALLOW_PUBLIC_LOAD_BALANCER]["default"] is False


def test_pack_project_files():
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    runtime = project["runtime"]
    assert (runtime["name"] if isinstance(runtime, dict) else runtime) == "python"
    pins = _pins(POLICY_DIR / "requirements.txt")
    assert set(pins) == {"pulumi", "pulumi-policy"}
    # The same versions the program and the tests use.
    repo_pins = _pins(REPO / "requirements.txt") | _pins(REPO / "requirements-dev.txt")
    assert pins == {name: repo_pins[name] for name in pins}


def _pins(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_the_gpu_table_is_a_copy_of_infra_shapes():
    expected = {m: (s.accelerator_type, s.gpu_count) for m, s in SHAPES.items()}
    assert {m: tuple(s) for m, s in validators.GPU_SHAPES.items()} == expected, (
        "policy/validators.py GPU_SHAPES drifted from infra/shapes.py SHAPES"
    )


def test_validators_need_nothing_from_the_project():
    """The CLI runs the pack from policy/, where infra/ and plan/ cannot be imported."""
    tree = ast.parse((POLICY_DIR / "validators.py").read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"pulumi_policy", "__future__"}
    assert roots <= allowed, f"validators.py imports {sorted(roots - allowed)}"


# --- the pack as the CLI starts it, over gRPC ----------------------------------


@pytest.fixture(scope="module")
def analyzer():
    """The pack started the way the CLI's python analyzer shim starts it
    (`python -u -m pulumi.policy <engine> <pack dir>`), from the pack folder."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(POLICY_DIR)],
        cwd=POLICY_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _read_port(process)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def _read_port(process: subprocess.Popen, timeout: float = 60) -> int:
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if selector.select(timeout=1):
            line = process.stdout.readline()
            if line.strip().isdigit():
                return int(line)
            if not line:
                break
    process.kill()
    raise AssertionError(f"the pack did not start: {process.stderr.read()}")


def _struct(value: dict) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _request_parts(reg, result, unknown):
    provider = None
    if reg.provider:
        urn = reg.provider.rsplit("::", 1)[0]
        p = next(r for r in result.registrations if r.urn == urn)
        provider = proto.AnalyzerProviderResource(
            type=p.type,
            properties=_struct(adapter.wire_value(p.inputs, unknown)),
            urn=p.urn,
            name=p.name,
        )
    options = proto.AnalyzerResourceOptions(protect=reg.protect, parent=reg.parent)
    return provider, options


def analyze(stub, reg, result, preview=False):
    unknown = adapter.unknown_test(result, preview)
    provider, options = _request_parts(reg, result, unknown)
    request = proto.AnalyzeRequest(
        type=reg.type,
        properties=_struct(adapter.wire_value(reg.inputs, unknown)),
        urn=reg.urn,
        name=reg.name,
        options=options,
        provider=provider,
    )
    return list(stub.Analyze(request).diagnostics)


def analyze_stack(stub, result, preview=False):
    unknown = adapter.unknown_test(result, preview)
    resources = []
    for reg in result.registrations:
        provider, options = _request_parts(reg, result, unknown)
        resources.append(
            proto.AnalyzerResource(
                type=reg.type,
                properties=_struct(adapter.wire_value(reg.state or reg.inputs, unknown)),
                urn=reg.urn,
                name=reg.name,
                options=options,
                provider=provider,
                parent=reg.parent,
                dependencies=reg.dependencies,
            )
        )
    return list(stub.AnalyzeStack(proto.AnalyzeStackRequest(resources=resources)).diagnostics)


def test_served_pack_describes_every_policy(analyzer, pack):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "a4-deepseek"
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in pack.policies)
    assert {p.enforcementLevel for p in info.policies} == {proto.MANDATORY}
    lb = next(p for p in info.policies if p.name == validators.NO_PUBLIC_LOAD_BALANCER)
    schema = json_format.MessageToDict(lb.configSchema.properties)
    assert schema[validators.ALLOW_PUBLIC_LOAD_BALANCER]["default"] is False


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_served_pack_passes_the_dev_plan_with_a_token(analyzer, preview):
    result = runner.run("dev", secrets={"hfToken": HF_TOKEN_MARKER})
    diagnostics = [
        d for reg in result.registrations for d in analyze(analyzer, reg, result, preview)
    ]
    diagnostics += analyze_stack(analyzer, result, preview)
    assert [(d.policyName, d.message) for d in diagnostics] == []


def test_served_pack_reports_a_public_load_balancer_unless_configured(analyzer):
    result = plan_of("dev", serviceType="InternalLoadBalancer")
    service = result.one("kubernetes:core/v1:Service")
    public = adapter.edited(service, lambda i: i["metadata"]["annotations"].clear())
    diagnostics = analyze(analyzer, public, result)
    assert [d.policyName for d in diagnostics] == [validators.NO_PUBLIC_LOAD_BALANCER]
    assert diagnostics[0].enforcementLevel == proto.MANDATORY
    # A resource policy's violation belongs to the analyzed resource (no urn of its own).
    assert "Service 'service' (deepseek/dsr1-trtllm-serve)" in diagnostics[0].message
    allow = proto.PolicyConfig(
        enforcementLevel=proto.MANDATORY,
        properties=_struct({validators.ALLOW_PUBLIC_LOAD_BALANCER: True}),
    )
    analyzer.Configure(
        proto.ConfigureAnalyzerRequest(policyConfig={validators.NO_PUBLIC_LOAD_BALANCER: allow})
    )
    try:
        assert analyze(analyzer, public, result) == []
    finally:
        default = proto.PolicyConfig(enforcementLevel=proto.MANDATORY, properties=_struct({}))
        analyzer.Configure(
            proto.ConfigureAnalyzerRequest(
                policyConfig={validators.NO_PUBLIC_LOAD_BALANCER: default}
            )
        )


def _pod(inputs: dict) -> dict:
    return inputs["spec"]["template"]["spec"]


# One minimal change per policy that makes it fire, as `pulumi preview
# --policy-pack policy` would meet it: policy name (as users see it) ->
# (stack, overrides, resource type and name, edit of its inputs, its options).
FIRING = {
    "bucket-in-cluster-region": (
        "dev",
        {},
        "gcp:storage/bucket:Bucket",
        "data",
        lambda i: i.update(location="EUROPE-WEST4"),
        {},
    ),
    "bucket-not-public": (
        "dev",
        {},
        "gcp:storage/bucket:Bucket",
        "data",
        lambda i: i.update(publicAccessPrevention="inherited"),
        {},
    ),
    "secret-material-only-in-kubernetes-secrets": (
        "dev",
        {},
        "kubernetes:batch/v1:Job",
        "smoke-check",
        lambda i: _pod(i)["containers"][0]["env"].append(
            {"name": "HF_TOKEN", "value": HF_TOKEN_MARKER}
        ),
        {},
    ),
    "no-public-load-balancer": (
        "dev",
        {"serviceType": "InternalLoadBalancer"},
        "kubernetes:core/v1:Service",
        "service",
        lambda i: i["metadata"]["annotations"].clear(),
        {},
    ),
    "gpu-pool-matches-machine-shape": (
        "dev",
        {},
        "gcp:container/nodePool:NodePool",
        "gpu",
        lambda i: i["nodeConfig"]["guestAccelerators"][0].update(count=4),
        {},
    ),
    "production-deletion-safeguards": (
        "prod",
        {},
        "gcp:storage/bucket:Bucket",
        "data",
        lambda i: None,
        {"protect": False},
    ),
    "containers-have-resource-requests": (
        "dev",
        {},
        "kubernetes:apps/v1:Deployment",
        "server",
        lambda i: _pod(i)["initContainers"][0].pop("resources"),
        {},
    ),
    "servers-have-health-probes": (
        "dev",
        {},
        "kubernetes:apps/v1:Deployment",
        "server",
        lambda i: _pod(i)["containers"][0].pop("readinessProbe"),
        {},
    ),
    "images-pinned": (
        "dev",
        {},
        "kubernetes:batch/v1:Job",
        "benchmark",
        lambda i: _pod(i)["containers"][0].update(image="nvcr.io/nvidia/tensorrt-llm/release"),
        {},
    ),
}


def _diagnostics(stub, policy, reg, result):
    """What the served pack reports for `reg`: its stack policy runs over the whole plan."""
    if policy in {p.name for p in PACK.policies if isinstance(p, StackValidationPolicy)}:
        return analyze_stack(stub, adapter.with_registration(result, reg))
    return analyze(stub, reg, result)


PACK = registered_pack()


@pytest.mark.parametrize("policy", sorted(p.name for p in PACK.policies))
def test_each_policy_fires_through_the_served_pack(analyzer, policy):
    assert policy in FIRING, f"add a firing case for {policy} to FIRING"
    stack, overrides, typ, name, edit, options = FIRING[policy]
    result = plan_of(stack, **overrides)
    reg = result.one(typ, name)
    assert _diagnostics(analyzer, policy, reg, result) == [], "the unchanged plan passes"
    diagnostics = _diagnostics(analyzer, policy, adapter.edited(reg, edit, **options), result)
    assert diagnostics, f"{policy} did not fire"
    assert {d.policyName for d in diagnostics} == {policy}
    assert {d.enforcementLevel for d in diagnostics} == {proto.MANDATORY}
    assert all(HF_TOKEN_MARKER not in d.message for d in diagnostics)
    if policy == "bucket-in-cluster-region":  # a stack policy names the resource
        assert [d.urn for d in diagnostics] == [reg.urn]
