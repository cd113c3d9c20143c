"""The offline plan command, end to end in a subprocess (as a user runs it)."""

from __future__ import annotations

import json
import subprocess
import sys

from plan import runner


def run_plan(*args, cwd=runner.REPO):
    return subprocess.run(
        [sys.executable, "-m", "plan", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plan_of_dev_prints_components_and_writes_json(tmp_path):
    done = run_plan("dev", "--out", str(tmp_path / "dev"))
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for heading in (
        "== cluster",
        "== gpu-pool",
        "== network",
        "== registry",
        "== storage",
        "== services",
    ):
        assert heading in text
    assert "nodeConfig.machineType = a4-highgpu-8g" in text
    assert "minMasterVersion = <computed:gke-version REGULAR default>" in text
    document = json.loads((tmp_path / "dev" / "plan.json").read_text())
    types = {r["type"] for r in document["resources"]}
    assert "gcp:container/nodePool:NodePool" in types
    assert document["outputs"]["clusterName"] == "dsr1-gke"
    assert (tmp_path / "dev" / "plan.txt").read_text().strip() == text.split("\nWritten:")[
        0
    ].strip()


def test_plan_of_an_invalid_override_explains_and_exits_2(tmp_path):
    done = run_plan("dev", "--set", "zone=europe-west4-a", "--out", str(tmp_path))
    assert done.returncode == 2
    assert 'zone: "europe-west4-a" is not allowed' in done.stderr
    assert "Traceback" not in done.stderr


def test_plan_of_an_unknown_stack_lists_the_stacks(tmp_path):
    done = run_plan("staging", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "Pulumi.staging.yaml" in done.stderr and "dev" in done.stderr
