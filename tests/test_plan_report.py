"""plan.txt shows what a what-if changes; plan.json is stable; `plan diff` compares two plans."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from plan import diff, report, runner
from plan.__main__ import default_out
from tests.conftest import plan_of

# (what-if, a line plan.txt shows for it and not for the dev stack as it is)
WHAT_IFS = [
    ({"serviceType": "InternalLoadBalancer"}, "      spec.type = LoadBalancer"),
    (
        {"serviceType": "InternalLoadBalancer"},
        "      metadata.annotations.networking.gke.io/load-balancer-type = Internal",
    ),
    ({"model": "nvfp4"}, "      containers[server].env.MODEL_ID = nvidia/DeepSeek-R1-0528-FP4-v2"),
    # The options file in full: NVIDIA's throughput profile turns attention DP on.
    ({"servingProfile": "throughput"}, "          enable_attention_dp: true"),
    ({"maxSeqLen": "16384"}, "          max_seq_len: 16384"),
    ({"nodeCount": "2"}, "      spec.replicas = 2"),
    (
        {"machineType": "a3-ultragpu-8g"},
        "      pod.nodeSelector.cloud.google.com/gke-nodepool = a3-gpu",
    ),
]


def text_lines(**overrides) -> list[str]:
    return report.render_text(plan_of("dev", **overrides)).splitlines()


@pytest.mark.parametrize(
    ("overrides", "line"),
    WHAT_IFS,
    ids=[f"{next(iter(o))}-{i}" for i, (o, _) in enumerate(WHAT_IFS)],
)
def test_each_what_if_shows_in_plan_txt(overrides, line):
    assert line in text_lines(**overrides)
    assert line not in text_lines()


def test_the_options_file_is_shown_whole_under_its_configmap():
    lines = text_lines()
    start = lines.index("      data.extra-llm-api-options.yaml = |")
    block = lines[start + 1 : start + 40]
    assert "          max_seq_len: 40960" in block
    assert "          backend: pytorch" in block


def test_kubernetes_labels_and_selectors_are_left_to_the_manifest():
    service = report.kubernetes_fields(
        {
            "kind": "Service",
            "metadata": {"name": "s", "labels": {"app": "x"}, "annotations": {"a": "b"}},
            "spec": {"type": "ClusterIP", "selector": {"app": "x"}},
        }
    )
    assert service == [("metadata.annotations.a", "b"), ("spec.type", "ClusterIP")]


def test_a_secret_env_shows_its_reference_not_a_value():
    job = {
        "kind": "Job",
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "env": [
                                {
                                    "name": "HF_TOKEN",
                                    "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                                }
                            ],
                        }
                    ]
                }
            }
        },
    }
    assert report.kubernetes_fields(job) == [
        ("containers[c].env.HF_TOKEN", {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})
    ]


def test_the_kubeconfig_is_shown_whole_not_cut_mid_json():
    text = report.render_text(plan_of("dev"))
    assert '"current-context": "dsr1-gke"' in text
    assert "..." not in text.split("Outputs:")[0].split("== benchmark")[0]


def test_a_long_value_wraps_and_joins_back_to_itself():
    value = [f"--flag-number-{i}=some-value" for i in range(12)]
    lines = report.field_lines("containers[server].args", value)
    assert lines[0] == "      containers[server].args ="
    assert all(len(line) <= 120 for line in lines)
    assert "".join(line[len("          ") :] for line in lines[1:]) == json.dumps(value)


def test_a_value_too_long_to_show_points_to_plan_json():
    lines = report.field_lines("kubeconfig", "\n".join(f"line {i}" for i in range(100)))
    assert lines[0] == "      kubeconfig = |"
    assert len(lines) == 1 + 40 + 1
    assert lines[-1].startswith("          ... 60 more lines (")
    assert lines[-1].endswith("see plan.json")


def test_plan_json_lists_resources_in_a_stable_order():
    plan = plan_of("dev")
    shuffled = dataclasses.replace(plan, registrations=list(reversed(plan.registrations)))
    assert report.to_json_text(shuffled) == report.to_json_text(plan)
    again = runner.run("dev")
    assert report.to_json_text(again) == report.to_json_text(plan)
    resources = report.to_json(plan)["resources"]
    keys = [(r["component"], r["type"], r["name"]) for r in resources]
    assert keys == sorted(keys)
    assert keys[0][0] == "benchmark"


def test_a_what_if_gets_its_own_folder_by_default(tmp_path):
    assert default_out("dev", {}, tmp_path) == tmp_path / "dev"
    assert (
        default_out("dev", {"serviceType": "InternalLoadBalancer"}, tmp_path)
        == tmp_path / "dev-whatif" / "serviceType=InternalLoadBalancer"
    )
    assert (
        default_out("dev", {"servingOverrides": "max_seq_len: 16384", "model": "nvfp4"}, tmp_path)
        == tmp_path / "dev-whatif" / "model=nvfp4,servingOverrides=max_seq_len:_16384"
    )
    long = default_out("dev", {"servingOverrides": "x" * 200}, tmp_path).name
    assert len(long) == 79 and long.startswith("servingOverrides=xxx")


# --- plan diff -----------------------------------------------------------------


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    root = tmp_path_factory.mktemp("plans")
    report.write(plan_of("dev"), root / "dev")
    report.write(plan_of("dev", serviceType="InternalLoadBalancer"), root / "internal")
    report.write(plan_of("dev", maxSeqLen="16384"), root / "long")
    return root


def run_diff(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plan", "diff", *map(str, args)],
        cwd=runner.REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_diff_of_a_plan_with_itself_finds_nothing_and_exits_0(plans):
    done = run_diff(plans / "dev", plans / "dev" / "plan.json")
    assert done.returncode == 0, done.stderr
    assert "No differences" in done.stdout


def test_diff_names_each_changed_field_and_exits_1(plans):
    done = run_diff(plans / "dev", plans / "internal")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[1:] == [
        "~ kubernetes:core/v1:Service  service  (serving)",
        '    ~ metadata.annotations.networking.gke.io/load-balancer-type: (absent) -> "Internal"',
        '    ~ spec.type: "ClusterIP" -> "LoadBalancer"',
        "Outputs:",
        "  ~ internalEndpoint: (absent) -> "
        '"http://<computed:service.status.loadBalancer.ingress[0].ip>:8000/v1"',
    ]


def test_diff_shows_a_changed_file_as_a_unified_diff(plans):
    lines = run_diff(plans / "dev", plans / "long").stdout.splitlines()
    start = lines.index("    ~ data.extra-llm-api-options.yaml:")
    assert lines[start + 1 : start + 6] == [
        "        @@ -9,3 +9,3 @@",
        "         max_num_tokens: 3136",
        "        -max_seq_len: 40960",
        "        +max_seq_len: 16384",
        "         moe_config:",
    ]
    # Containers and env entries by name, not by position.
    assert any(
        line.startswith("    ~ spec.template.spec.containers[benchmark].env[") for line in lines
    )


def test_diff_of_resources_on_one_side_only():
    first = {"resources": [{"type": "t", "name": "a", "component": "c", "inputs": {}}]}
    second = {"resources": [{"type": "t", "name": "b", "component": "c", "inputs": {}}]}
    assert diff.compare(first, second) == [
        "- t  a  (c): only in the first plan",
        "+ t  b  (c): only in the second plan",
    ]


def test_diff_of_a_missing_plan_says_how_to_make_one_and_exits_2(tmp_path):
    done = run_diff(tmp_path / "nothing", tmp_path / "nothing")
    assert done.returncode == 2
    assert "no such plan; write one with `python -m plan STACK --out" in done.stderr


def test_the_exit_codes_are_in_the_help():
    done = subprocess.run(
        [sys.executable, "-m", "plan", "--help"],
        cwd=runner.REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "exit codes:" in done.stdout
    assert "2  bad arguments, no such stack file, or invalid settings" in done.stdout
    assert "`diff`: 0 the plans are the same, 1 they differ" in done.stdout
