"""Every rendered Kubernetes object validates against the real schemas.

Built-in kinds: the Kubernetes OpenAPI schema of the cluster's minor version
(kubernetes-validate, strict: unknown fields are errors). GKE custom
resources: the upstream CRDs in ../shared/reference/crds (or $CRDS_DIR). A
checkout without them skips those tests; with REQUIRE_CRDS=1 (`make test` and
`.ci/run` set it wherever ../shared exists) a missing or empty folder fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from plan import report
from tests.conftest import plan_of

REPO = Path(__file__).resolve().parents[2]
CRDS = Path(os.environ.get("CRDS_DIR") or REPO.parent / "shared" / "reference" / "crds")
CUSTOM_GROUPS = ("networking.gke.io", "monitoring.googleapis.com")

# (stack, overrides, the Kubernetes minor version of the cluster). Without a
# gkeVersionPrefix: 1.35, the REGULAR channel's line that Cluster Toolkit's A4
# blueprint targets (version_prefix "1.35.").
VARIANTS = {
    "dev": ("dev", {}, "1.35"),
    "prod": ("prod", {}, "1.35"),
    "nvfp4-throughput": ("dev", {"model": "nvfp4", "servingProfile": "throughput"}, "1.35"),
    "internal-lb": ("dev", {"serviceType": "InternalLoadBalancer", "awaitServing": False}, "1.35"),
    "metrics": ("dev", {"prometheusMetrics": True}, "1.35"),
    "adopted": (
        "dev",
        {"clusterMode": "adopt", "clusterName": "theirs", "podMultiNetwork": False},
        "1.35",
    ),
    "gke-1.33": ("dev", {"gkeVersionPrefix": "1.33."}, "1.33"),
}


def objects(stack: str, overrides: dict) -> list[tuple[str, dict]]:
    plan = plan_of(stack, **overrides)
    return report.kubernetes_objects(plan)


def crds_required() -> bool:
    return os.environ.get("REQUIRE_CRDS", "") not in ("", "0")


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str, str], dict]:
    """The CRD schemas; a skip without them, a failure where they are required."""
    found = crd_schemas()
    if not found:
        message = f"no CRD schemas in {CRDS} (set CRDS_DIR to the folder of GKE CRD YAML files)"
        if crds_required():
            pytest.fail(f"{message}; REQUIRE_CRDS is set, so these tests must run")
        pytest.skip(message)
    return found


def crd_schemas() -> dict[tuple[str, str, str], dict]:
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (crd["spec"]["group"], version["name"], crd["spec"]["names"]["kind"])
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def strict(schema: dict) -> dict:
    """Reject unknown fields wherever the CRD does not allow them."""
    if not isinstance(schema, dict):
        return schema
    schema = {k: strict(v) if isinstance(v, dict) else v for k, v in schema.items()}
    if "properties" in schema:
        schema["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            schema["additionalProperties"] = False
    if "items" in schema and isinstance(schema["items"], dict):
        schema["items"] = strict(schema["items"])
    return schema


@pytest.mark.parametrize("variant", VARIANTS)
def test_builtin_objects_validate_strictly_for_the_cluster_version(variant):
    stack, overrides, version = VARIANTS[variant]
    checked = 0
    for name, obj in objects(stack, overrides):
        group = obj["apiVersion"].split("/")[0]
        if group in CUSTOM_GROUPS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(
                f"{name} is invalid for Kubernetes {version}: {err.message} at {list(err.path)}"
            )
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("variant", VARIANTS)
def test_gke_custom_resources_validate_against_their_crds(variant, schemas):
    stack, overrides, _ = VARIANTS[variant]
    checked = 0
    for name, obj in objects(stack, overrides):
        group, _, version = obj["apiVersion"].partition("/")
        if group not in CUSTOM_GROUPS:
            continue
        schema = strict(schemas[(group, version, obj["kind"])])
        body = {k: v for k, v in obj.items() if k in ("spec",)}
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(body))
        assert not errors, f"{name}: {[e.message for e in errors]}"
        checked += 1
    if variant != "adopted":  # an adopted cluster brings its own Network objects
        assert checked >= 18


def test_an_unknown_field_is_caught_by_the_schema_check():
    """The checks above can fail: a misplaced field is an error."""
    (_, deployment) = next((n, o) for n, o in objects("dev", {}) if o["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.35", strict=True)
    schemas = crd_schemas()
    if schemas:
        schema = strict(schemas[("networking.gke.io", "v1", "Network")])
        bad = {
            "spec": {
                "type": "Device",
                "parametersRef": {"group": "networking.gke.io", "kind": "X", "name": "a"},
                "typo": 1,
            }
        }
        assert list(jsonschema.Draft7Validator(schema).iter_errors(bad))
