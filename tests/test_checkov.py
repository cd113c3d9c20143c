"""Every rendered Kubernetes manifest of the dev and prod plans passes checkov's
Kubernetes checks, but for the failures accepted below, each with its reason.

checkov runs from its own virtualenv: checkov 3.3.30 requires packaging<24,
pulumi 3.272.0 requires packaging>=26, so it cannot share the project's
`.venv`. The test runs `$CHECKOV`, else `.venv-checkov/bin/checkov`, else
`checkov` on PATH, and is skipped without one (REQUIRE_CHECKOV=1 fails instead).

checkov judges a pod by its first failing container, so an accepted failure
of the server would hide the same failure of its init container. Each pod
with more than one container is therefore also written once per container
(`<name>--<container>`, that container alone in its role), and every finding is keyed
by workload (`app.kubernetes.io/name`) and, for container-level checks,
container: `trtllm-serve/server`. An entry for a workload covers all its
containers.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from plan import report
from plan.runner import REPO
from tests.conftest import plan_of

CHECKOV_VERSION = "3.3.30"
STACKS = ("dev", "prod")
SERVER, BENCH = "trtllm-serve", "benchmark"

# --- failures the program cannot avoid without hurting the workload ------------
_ROOT_IMAGE = (
    "NVIDIA's TensorRT-LLM release image (the base of the serving image) runs as root, "
    "and the pod writes through GCS FUSE volumes that the CSI driver mounts for root "
    "unless uid/gid/file-mode mount options and an fsGroup say otherwise; running as a "
    "high non-root UID needs those mount options first (not verifiable off-cluster)."
)
ACCEPTED: dict[tuple[str, str], str] = {
    # CKV_K8S_11: CPU limits should be set.
    ("CKV_K8S_11", f"{SERVER}/server"): (
        "A CPU limit is a CFS quota: it throttles the server's tokenizer, scheduler and "
        "eight MPI ranks (latency) although the pod is alone on its GPU node; the "
        "request (180 CPUs) already reserves its share."
    ),
    ("CKV_K8S_11", f"{BENCH}/benchmark"): (
        "A throttled load generator measures its own throttling: client-side tokenization "
        "and timing must not be capped, or the results are wrong."
    ),
    # CKV_K8S_22: read-only root filesystem.
    ("CKV_K8S_22", f"{SERVER}/server"): (
        "trtllm-serve (TensorRT-LLM, PyTorch, Triton, FlashInfer, MPI) writes caches and "
        "session files under $HOME and /tmp at start-up; the full set of paths cannot be "
        "verified without a B200 node, and a miss would show only after a cold start."
    ),
    # CKV_K8S_23 (runAsNonRoot) and CKV_K8S_40 (UID >= 10000).
    ("CKV_K8S_23", SERVER): _ROOT_IMAGE,
    ("CKV_K8S_40", SERVER): _ROOT_IMAGE,
    # CKV_K8S_37: drop ALL capabilities.
    ("CKV_K8S_37", f"{SERVER}/server"): (
        "Dropping ALL from the root server removes CAP_IPC_LOCK (RDMA memory registration "
        "when RLIMIT_MEMLOCK is limited), CAP_DAC_OVERRIDE and others NCCL and the NGC "
        "image may rely on; NET_RAW, the one the checks name, is dropped (CKV_K8S_28)."
    ),
}

# Failures being worked on: none. An entry here names a change still to make.
PENDING: dict[tuple[str, str], str] = {}
# A finding is either accepted for good or pending a fix, not both (checked on import).
assert not set(ACCEPTED) & set(PENDING), "an entry is both in ACCEPTED and PENDING"

_CONTAINER_KEY = re.compile(r"/(containers|initContainers)/\[(\d+)\]")
_POD_SPEC = {
    "Pod": ("spec",),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def checkov_binary() -> str | None:
    for candidate in (
        os.environ.get("CHECKOV"),
        str(REPO / ".venv-checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def pod_spec(obj: dict) -> dict | None:
    spec = obj
    for key in _POD_SPEC.get(obj.get("kind"), ("spec", "template", "spec")):
        spec = spec.get(key) if isinstance(spec, dict) else None
    return spec if isinstance(spec, dict) and "containers" in spec else None


def workload(obj: dict) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get("app.kubernetes.io/name") or obj["metadata"]["name"]


def write_per_container(manifests: Path, out: Path) -> dict[str, tuple[str, str]]:
    """One copy of each multi-container pod per container, which keeps its role
    (container or init container); file name -> (workload, container)."""
    out.mkdir()
    split = {}
    for path in sorted(manifests.glob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        spec = pod_spec(obj) or {}
        roles = [(g, c) for g in ("containers", "initContainers") for c in spec.get(g) or []]
        if len(roles) < 2:
            continue
        for group, container in roles:
            one = copy.deepcopy(obj)
            one["metadata"]["name"] = f"{obj['metadata']['name']}--{container['name']}"
            one_spec = pod_spec(one)
            one_spec["containers"], one_spec["initContainers"] = [], []
            one_spec[group] = [container]
            name = f"{path.stem}--{container['name']}.yaml"
            (out / name).write_text(yaml.safe_dump(one, sort_keys=False))
            split[name] = (workload(obj), container["name"])
    return split


def finding_key(failure: dict, split: dict[str, tuple[str, str]]) -> str:
    path = Path(failure["file_abs_path"])
    if path.name in split:
        name, container = split[path.name]
        return f"{name}/{container}"
    obj = yaml.safe_load(path.read_text())
    keys = " ".join((failure.get("check_result") or {}).get("evaluated_keys") or [])
    match = _CONTAINER_KEY.search(keys)
    spec = pod_spec(obj)
    if match and spec:
        container = spec[match.group(1)][int(match.group(2))]["name"]
        return f"{workload(obj)}/{container}"
    return workload(obj)


def entries_for(check: str, key: str, table: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
    """The entries of `table` that account for `check` failing on `key`."""
    name = key.split("/", 1)[0]
    found = {e for e in ((check, key), (check, name)) if e in table}
    if "/" not in key:  # a pod-level finding: any of its containers' entries
        found |= {e for e in table if e[0] == check and e[1].startswith(f"{name}/")}
    return found


def run_checkov(binary: str, directory: Path) -> dict:
    completed = subprocess.run(
        [
            binary,
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        # --skip-download and this keep checkov off the network (Prisma Cloud guidelines).
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        timeout=600,
    )
    assert completed.returncode in (0, 1), completed.stderr[-3000:]
    output = json.loads(completed.stdout)
    reports = output if isinstance(output, list) else [output]
    assert all(r.get("check_type") == "kubernetes" for r in reports), reports
    return {
        "failed": [c for r in reports for c in r["results"]["failed_checks"]],
        "parsing_errors": sum(r["summary"]["parsing_errors"] for r in reports),
        "resources": sum(r["summary"]["resource_count"] for r in reports),
    }


@pytest.fixture(scope="module")
def checkov() -> str:
    binary = checkov_binary()
    if binary is None:
        message = (
            "checkov not found: python3 -m venv .venv-checkov && "
            f".venv-checkov/bin/pip install checkov=={CHECKOV_VERSION} (or set CHECKOV)"
        )
        if os.environ.get("REQUIRE_CHECKOV"):
            pytest.fail(message)
        pytest.skip(message)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    assert version.strip() == CHECKOV_VERSION, f"checkov {version.strip()}: pin {CHECKOV_VERSION}"
    return binary


@pytest.fixture(scope="module")
def findings(checkov, tmp_path_factory) -> dict[str, dict[tuple[str, str], list[str]]]:
    """stack -> (check id, key) -> the checkov resources that failed it."""
    found = {}
    for stack in STACKS:
        out = tmp_path_factory.mktemp(f"checkov-{stack}")
        report.write(plan_of(stack), out)
        manifests = out / "manifests"
        split = write_per_container(manifests, manifests / "per-container")
        result = run_checkov(checkov, manifests)
        assert result["parsing_errors"] == 0
        assert result["resources"] >= len(list(manifests.glob("*.yaml")))
        by_key: dict[tuple[str, str], list[str]] = {}
        for failure in result["failed"]:
            key = (failure["check_id"], finding_key(failure, split))
            by_key.setdefault(key, []).append(failure["resource"])
        found[stack] = by_key
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_pass_checkov_but_for_accepted_failures(findings, stack):
    table = {**ACCEPTED, **PENDING}
    unexplained = {
        key: resources for key, resources in findings[stack].items() if not entries_for(*key, table)
    }
    assert unexplained == {}, "checkov failures with no accepted reason (fix the program)"


def test_every_accepted_failure_still_happens(findings):
    """Keeps the lists minimal: an entry nothing fails any more must go."""
    used = set()
    for by_key in findings.values():
        for check, key in by_key:
            used |= entries_for(check, key, {**ACCEPTED, **PENDING})
    stale = sorted(set(ACCEPTED) - used) + sorted(set(PENDING) - used)
    assert stale == [], "remove these entries from ACCEPTED/PENDING in tests/test_checkov.py"
