"""Mutation check: do the tests catch one-line regressions? (`make mutate`)

    python benchmarks/mutate.py [--only ID[,ID...]] [--jobs N] [--list] [--json PATH]

A fixed list of one-line mutants of the program (infra/, workloads/,
`__main__.py`), the plan's platform model (plan/platform.py), the policy pack,
the clients and the image's scripts (serving, weights staging, benchmark). Each is
applied to a temporary copy of the repository (never to the working tree) and
the tests that cover its module run against it (`pytest -x`): a failing test
kills the mutant, passing tests let it survive. A mutant whose target text or
file is no longer there (the code changed since the list was written) is
reported `stale`, not run. Equivalent mutants (no behaviour a test could see
changes) are listed with the reason, run, and left out of the score.

The tests of a module: the files that import it (found by reading their
imports) plus, for modules the tests reach only through the whole program or
load by path (the pack's validators, the image's scripts), the files listed in
MODULE_TESTS. Before the mutants, those files run once unchanged and must pass.

Not part of `make test`: it runs the covering tests once per mutant (about 20
minutes on 2 shared cores). Its last result is in README.md ("What was verified").
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str  # relative to the repository
    find: str  # text on one line, found exactly once in the file
    replace: str
    what: str  # the regression it stands for
    equivalent: str = ""  # why no test can tell, for an equivalent mutant


# The first sixteen are the survivors of the spot check in issue 13.
MUTANTS: tuple[Mutant, ...] = (
    Mutant("cluster-ignore-version", "infra/cluster.py",
           '"initialNodeCount", "minMasterVersion"]', '"initialNodeCount"]',
           "every `up` moves the control plane back to the first version"),
    Mutant("cluster-version-maps-swapped", "infra/cluster.py",
           "        if prefix\n", "        if not prefix\n",
           "channel default and latest versions swapped"),
    Mutant("gpu-boot-disk-type", "infra/gpu_node_pool.py",
           'disk_type="hyperdisk-balanced"', 'disk_type="pd-balanced"',
           "A4 boot disk on Persistent Disk (A4 takes Hyperdisk only)"),
    Mutant("gpu-boot-disk-size", "infra/gpu_node_pool.py",
           "disk_size_gb=cfg.gpu_boot_disk_gb", "disk_size_gb=200",
           "gpuBootDiskGb ignored"),
    Mutant("node-roles-editor", "infra/identity.py",
           '    "roles/container.defaultNodeServiceAccount",\n',
           '    "roles/container.defaultNodeServiceAccount", "roles/editor",\n',
           "the node account made project editor"),
    Mutant("config-node-ceiling", "infra/rules.py",
           "if cfg.node_count > 64:", "if cfg.node_count > 640:",
           "nodeCount ceiling 64 -> 640"),
    Mutant("config-ep-below-one", "infra/rules.py",
           "elif cfg.ep_size < 1 or (cfg.tp_size", "elif (cfg.tp_size",
           "epSize < 1 accepted (0 divides by zero)"),
    Mutant("serving-shm-size", "workloads/serving.py",
           "SHM_SIZE_GI = 250", "SHM_SIZE_GI = 25", "/dev/shm 250Gi -> 25Gi"),
    Mutant("pod-file-cache-off", "workloads/pod.py",
           'attributes["fileCacheCapacity"] = "-1"', "pass",
           "the GCS FUSE file cache silently off"),
    Mutant("serving-jit-cache-off-bucket", "workloads/serving.py",
           'value="/jit-cache/deep_gemm"', 'value="/tmp/deep_gemm"',
           "DeepGEMM JIT cache moved off the bucket mount"),
    Mutant("networks-skip-system-pool", "__main__.py",
           "cfg.pod_network_names, system_pool, opts=on_k8s",
           "cfg.pod_network_names, [], opts=on_k8s",
           "pod Network objects no longer wait for the system pool"),
    Mutant("policy-uniform-unset", "policy/validators.py",
           "and uniform is not True:", "and uniform is False:",
           "unset uniformBucketLevelAccess passes the policy"),
    Mutant("chat-retries", "clients/chat.py",
           "timeout=args.timeout, max_retries=0", "timeout=args.timeout, max_retries=2",
           "the chat client retries (a 503 costs three requests)"),
    Mutant("chat-decides-early", "clients/chat.py",
           "decide_after: int = 400", "decide_after: int = 40",
           "untagged reasoning decided after 40 characters"),
    Mutant("chat-exit-code", "clients/chat.py",
           "EXIT_LOADING = 4", "EXIT_LOADING = 7", "a documented exit code renumbered"),
    Mutant("policy-bucket-region-inverted", "policy/validators.py",
           "if location.lower() not in expected:", "if location.lower() in expected:",
           "the bucket-region policy inverted"),
    # --- cluster and node pools ---
    Mutant("cluster-public-nodes", "infra/cluster.py",
           "enable_private_nodes=True", "enable_private_nodes=False", "nodes get public IPs"),
    Mutant("cluster-legacy-datapath", "infra/cluster.py",
           'datapath_provider="ADVANCED_DATAPATH"', 'datapath_provider="LEGACY_DATAPATH"',
           "no Dataplane V2 (multi-networking needs it)"),
    Mutant("cluster-no-dcgm", "infra/cluster.py",
           '"DCGM",', "", "no DCGM GPU metrics"),
    Mutant("gpu-surge-node", "infra/gpu_node_pool.py",
           'strategy="SURGE", max_surge=0', 'strategy="SURGE", max_surge=1',
           "upgrades ask for a second 8-GPU node"),
    Mutant("gpu-flex-auto-repair", "infra/gpu_node_pool.py",
           "        auto_repair = False", "        auto_repair = True",
           "flex-start pool with auto-repair (GKE refuses it)"),
    Mutant("gpu-flex-owns-size", "infra/gpu_node_pool.py",
           'ignore_changes=["nodeCount", "upgradeSettings"]', 'ignore_changes=["upgradeSettings"]',
           "`up` fights the autoscaler over a flex-start pool's size"),
    Mutant("gpu-reservation-block-path", "infra/gpu_node_pool.py",
           'f"{path}/reservationBlocks/{block}"', 'f"{path}/blocks/{block}"',
           "a reservation block path GKE does not know"),
    # --- networks, storage, registry, image, APIs, names ---
    Mutant("network-mtu", "infra/network.py",
           "JUMBO_MTU = 8896", "JUMBO_MTU = 1460", "no jumbo frames on the VPCs"),
    Mutant("network-roce-profile", "infra/network.py",
           '-vpc-roce"', '-vpc-falcon"', "the RDMA VPC without the RoCE profile"),
    Mutant("network-no-google-access", "infra/network.py",
           "private_ip_google_access=True", "private_ip_google_access=False",
           "private nodes cannot reach Google APIs"),
    Mutant("storage-public", "infra/storage.py",
           'public_access_prevention="enforced"', 'public_access_prevention="inherited"',
           "the bucket may be made public"),
    Mutant("storage-retain-deletes", "infra/storage.py",
           'RETAIN: {"force_destroy": False, "protect": False, "retain_on_delete": True}',
           'RETAIN: {"force_destroy": False, "protect": False, "retain_on_delete": False}',
           "bucketOnDestroy retain deletes the bucket"),
    Mutant("storage-workload-admin", "infra/storage.py",
           'role="roles/storage.objectUser"', 'role="roles/storage.admin"',
           "the workload may administer the bucket"),
    Mutant("storage-no-soft-delete", "infra/storage.py",
           "SOFT_DELETE_DAYS = 7", "SOFT_DELETE_DAYS = 0", "no window to undo a deletion"),
    Mutant("registry-cleanup-3-days", "infra/registry.py",
           'older_than="2592000s"', 'older_than="259200s"',
           "superseded images deleted after 3 days, not 30"),
    Mutant("registry-nodes-write", "infra/registry.py",
           'role="roles/artifactregistry.reader"', 'role="roles/artifactregistry.writer"',
           "nodes may push images"),
    Mutant("image-wrong-digest", "infra/image.py",
           '"--format=value(results.images[0].digest)"', '"--format=value(results.images[0].name)"',
           "the build prints a name where the program reads a digest"),
    Mutant("services-disabled-on-destroy", "infra/services.py",
           "disable_on_destroy=False", "disable_on_destroy=True",
           "destroy disables project APIs others use"),
    Mutant("naming-gpu-pool", "infra/naming.py",
           """gpu_pool=f"{cfg.machine_type.split('-')[0]}-gpu",""", 'gpu_pool="gpu",',
           "the GPU pool's name no longer says its machine family"),
    Mutant("config-weights-minimum", "infra/rules.py",
           "if not 30 <= cfg.weights_minutes <= 1440:", "if not 30 < cfg.weights_minutes <= 1440:",
           "the smallest weights budget refused"),
    Mutant("config-production-retain", "infra/rules.py",
           "if cfg.bucket_on_destroy != BucketOnDestroy.PROTECT:",
           'if cfg.bucket_on_destroy not in ("protect", "retain"):',
           "a production bucket only retained, not protected"),
    # --- workloads ---
    Mutant("options-ep-ignored", "workloads/options.py",
           'options["moe_expert_parallel_size"] = cfg.ep_size', "pass",
           "epSize not written to the server options"),
    Mutant("options-pp-ignored", "workloads/options.py",
           'options["pipeline_parallel_size"] = cfg.pp_size', "pass",
           "ppSize not written to the server options"),
    Mutant("options-no-reasoning-parser", "workloads/options.py",
           '"--reasoning_parser=deepseek-r1",', "",
           "reasoning comes back mixed into the answer"),
    Mutant("options-localhost", "workloads/options.py",
           '"--host=0.0.0.0",', '"--host=127.0.0.1",', "the server unreachable from the Service"),
    Mutant("serving-startup-budget", "workloads/serving.py",
           '"startup_probe": http(10, cfg.startup_minutes * 6)',
           '"startup_probe": http(10, cfg.startup_minutes)',
           "a cold start killed after a tenth of its budget"),
    Mutant("serving-rolling-update", "workloads/serving.py",
           'DeploymentStrategyArgs(type="Recreate")', 'DeploymentStrategyArgs(type="RollingUpdate")',
           "updates wait for a ninth GPU set that never comes"),
    Mutant("serving-public-lb", "workloads/serving.py",
           '["networking.gke.io/load-balancer-type"] = "Internal"',
           '["networking.gke.io/load-balancer-type"] = "External"',
           "the internal load balancer made public"),
    Mutant("weights-deadline", "infra/weights_staging.py",
           'f"--timeout={cfg.weights_minutes * 60}s",', 'f"--timeout={cfg.weights_minutes}s",',
           "the staging build killed after a sixtieth of its budget"),
    Mutant("pod-writable-root", "workloads/pod.py",
           "read_only_root_filesystem=True if read_only_root else None",
           "read_only_root_filesystem=None",
           "the Jobs' root filesystem writable"),
    Mutant("pod-toleration-effect", "infra/gpu_node_pool.py",
           '"operator": "Exists", "effect": "NoSchedule"', '"operator": "Exists", "effect": "NoExecute"',
           "server pods do not tolerate the GPU taint"),
    Mutant("networks-rdma-mode", "workloads/networks.py",
           '(names.rdma_network, subnet, "RDMA")', '(names.rdma_network, subnet, "NetDevice")',
           "RDMA NICs attached as plain network devices"),
    Mutant("namespace-wrong-port", "workloads/namespace.py",
           "port=SERVER_PORT, protocol=\"TCP\"", "port=8080, protocol=\"TCP\"",
           "the NetworkPolicy blocks the server's port"),
    Mutant("benchmark-precision-key", "workloads/benchmark.py",
           '"precision": cfg.model,', '"precision": cfg.serving_profile,',
           "the report's precision is the profile name"),
    Mutant("benchmark-prompts", "workloads/benchmark.py",
           "PROMPTS_PER_USER = 5", "PROMPTS_PER_USER = 1",
           "one prompt per user, not NVIDIA's five"),
    Mutant("provider-waits-for-dead-cluster", "workloads/kubernetes.py",
           "delete_unreachable=True", "delete_unreachable=False",
           "destroy hangs on a deleted cluster"),
    # --- policy pack ---
    Mutant("policy-lb-config-ignored", "policy/validators.py",
           "if _flag(args.get_config(), ALLOW_PUBLIC_LOAD_BALANCER):", "if False:",
           "the allowPublicLoadBalancer switch ignored"),
    Mutant("policy-latest-allowed", "policy/validators.py",
           'if tag == "latest":', 'if tag == "stable":', "`:latest` images pass"),
    Mutant("policy-memory-request", "policy/validators.py",
           'for r in ("cpu", "memory") if', 'for r in ("cpu",) if',
           "containers without a memory request pass"),
    Mutant("policy-protection-default", "policy/validators.py",
           '"deletionProtection", default=True)', '"deletionProtection", default=False)',
           "an unset deletionProtection (provider default true) reported"),
    # --- clients ---
    Mutant("chat-503-as-error", "clients/chat.py",
           "and err.status_code == 503:", "and err.status_code == 502:",
           "a loading server reported as a generic API error"),
    Mutant("chat-no-finish-accepted", "clients/chat.py",
           '        raise incomplete("the stream ended without a finish_reason")',
           "        pass",
           "a stream cut before its finish reason passes as complete"),
    Mutant("report-per-gpu", "clients/report.py",
           "return self.output_tps / self.gpus", "return self.output_tps",
           "tokens/s per GPU shows the node's total"),
    Mutant("report-side-files", "clients/report.py",
           'return parts[-1] == RESULT_FILE and "phases" not in parts[:-1]',
           "return parts[-1] == RESULT_FILE",
           "AIPerf's per-phase copies read as results (each case counted twice)"),
    # --- the image's scripts ---
    Mutant("fetch-original-folder", "docker/weights/fetch_weights.py",
           'IGNORE = ("original/*", "*.pth")', 'IGNORE = ("*.pth",)',
           "the FP8 repository's second copy downloaded too"),
    Mutant("fetch-marker-first", "docker/weights/fetch_weights.py",
           "        if present == expected:", "        if present is not None:",
           "a checkpoint marked complete for another revision taken as this one"),
    Mutant("benchmarks-no-ignore-eos", "workloads/benchmark.py",
           'EXTRA_INPUTS = "ignore_eos:true"', 'EXTRA_INPUTS = ""',
           "outputs shorter than OSL (not NVIDIA's method)"),
    Mutant("benchmarks-failed-measure-ignored", "docker/benchmark/run_benchmarks.py",
           "if done.returncode or not summary_file.exists():", "if not summary_file.exists():",
           "a failed AIPerf run reported as success"),
    Mutant("serve-drops-args", "docker/serve.sh",
           'exec trtllm-serve "${checkpoint}" "$@"', 'exec trtllm-serve "${checkpoint}"',
           "the server started without its options"),
    Mutant("serve-wrong-marker", "docker/serve.sh",
           'marker="${MODEL_ROOT}/${MODEL_ID}/.download-complete"',
           'marker="${MODEL_ROOT}/${MODEL_ID}/.download-done"',
           "the server waits for a marker the weights staging never writes"),
    # --- weights staging, local-SSD copy, IAM propagation, preflight, platform ---
    Mutant("staging-marker-unverified", "docker/weights/fetch_weights.py",
           "        if failures:", "        if None:",
           "the completion marker written though files failed verification"),
    Mutant("staging-skips-verify", "docker/weights/fetch_weights.py",
           "                verify(local, hub_file)", "                pass",
           "a partial or corrupt download uploaded as the checkpoint"),
    Mutant("staging-old-marker-kept", "docker/weights/fetch_weights.py",
           "            self.store.delete(marker)", "            pass",
           "another revision's marker kept while its files are replaced"),
    Mutant("staging-shared-source-writable", "infra/weights_staging.py",
           'role="roles/storage.objectViewer",', 'role="roles/storage.objectUser",',
           "the stack may write a shared pre-staged checkpoint"),
    Mutant("node-cache-no-size-check", "docker/node_cache.py",
           '        if size != entry["size"]:', "        if False:",
           "a short local-SSD copy accepted as the checkpoint"),
    Mutant("node-cache-stale-marker", "docker/node_cache.py",
           "    (target / MARKER).unlink(missing_ok=True)", "    pass",
           "a copy cut midway still marked complete for the previous revision"),
    Mutant("serve-partial-local-copy", "docker/serve.sh",
           '-f "${NODE_CACHE}/${MODEL_ID}/.download-complete"', '-d "${NODE_CACHE}/${MODEL_ID}"',
           "the server starts on an unfinished local-SSD copy"),
    Mutant("propagation-60s", "infra/propagation.py",
           'IAM_PROPAGATION = "120s"', 'IAM_PROPAGATION = "60s"',
           "fresh roles used after 60 s, below IAM's documented 2 minutes"),
    Mutant("platform-propagation-rule-dropped", "plan/platform.py",
           "violations += _check_propagation(plan, graph)", "violations += []",
           "the IAM-propagation platform rule no longer checked"),
    Mutant("platform-api-order-ignored", "plan/platform.py",
           "            elif enabling not in waits:", "            elif False:",
           "a call before its API is enabled passes the platform check"),
    Mutant("preflight-quota-inverted", "infra/preflight.py",
           "        if limit < needed:", "        if limit >= needed:",
           "the GPU quota check inverted"),
    Mutant("preflight-reservation-room", "infra/preflight.py",
           "    if free < nodes:", "    if free < 0:",
           "a full reservation passes the preflight"),
    # --- pause, smoke check, monitoring, benchmark SLO ---
    Mutant("pause-keeps-gpu-nodes", "infra/gpu_node_pool.py",
           'pool: dict = {"node_count": 0 if cfg.paused else cfg.node_count}',
           'pool: dict = {"node_count": cfg.node_count}',
           "a paused stack keeps its GPU nodes (and their bill)"),
    Mutant("pause-keeps-servers", "workloads/serving.py",
           "return 0 if cfg.paused else cfg.node_count", "return cfg.node_count",
           "a paused stack keeps asking for servers"),
    Mutant("smoke-accepts-wrong-model", "clients/smoke.py",
           "        if self.model not in names:", "        if False:",
           "the smoke check passes a server that runs another model"),
    Mutant("smoke-retries-failure", "workloads/smoke.py",
           "backoff_limit=0,", "backoff_limit=6,",
           "a failed smoke check repeated instead of reported"),
    Mutant("monitoring-not-ready-seconds", "infra/monitoring.py",
           'duration=f"{minutes * 60}s",', 'duration=f"{minutes}s",',
           "the not-ready alert fires after seconds, during every cold start"),
    Mutant("benchmark-slo-tpot", "workloads/benchmark.py",
           "SLO_TPOT_MS = 80", "SLO_TPOT_MS = 100",
           "the SLO search's TPOT limit is not MLPerf's 80 ms"),
    Mutant("benchmark-slo-tpot-ignored", "docker/benchmark/run_benchmarks.py",
           "and (ttft <= ttft_ms and tpot <= tpot_ms)", "and (ttft <= ttft_ms)",
           "the SLO search ignores TPOT"),
    Mutant("chat-length-cut-exit-0", "clients/chat.py",
           '        if summary.finish_reason == "length":', "        if False:",
           "an answer cut by the length limit exits 0 as complete"),
    # Issue 10, second pass: parallel staging builds, the autotuner's cache.
    Mutant("staging-shares-unbalanced", "docker/weights/fetch_weights.py",
           "least = min(range(shards), key=lambda k: (loads[k], k))", "least = 0",
           "every file lands in the first build's share; the others stage nothing"),
    Mutant("staging-marker-before-others", "docker/weights/fetch_weights.py",
           "missing = self.missing_elsewhere()", "missing: list[str] = []",
           "the first build to finish marks the checkpoint complete while others still copy"),
    Mutant("staging-one-share-for-all", "infra/weights_staging.py",
           '("_SHARD", str(shard)),', '("_SHARD", "0"),',
           "every build stages the same share; a quarter of the files is never staged"),
    Mutant("staging-machines-over-quota", "infra/weights_staging.py",
           'return "e2-highcpu-32" if builds == 1 else "e2-highcpu-8"', 'return "e2-highcpu-32"',
           "four 32-vCPU builds: 128 vCPUs against a regional quota of at most 100"),
    Mutant("serving-autotuner-cache-dropped", "workloads/serving.py",
           "env=[*pod_env(cfg), autotuner_cache_env(image)],", "env=pod_env(cfg),",
           "every restart profiles the autotuner again (~2 minutes)"),
    # Equivalent: kept to show the list is honest about what tests cannot see.
    Mutant("fetch-backoff-cap", "docker/weights/fetch_weights.py",
           "self.sleep(min(300, 15 * 2 ** (attempt - 1)))",
           "self.sleep(min(3000, 15 * 2 ** (attempt - 1)))",
           "retry waits capped at 50 min instead of 5",
           equivalent="the staging build runs 4 attempts per file (ATTEMPTS, set nowhere "
           "else): the longest wait is 15 x 2^2 = 60 s, below either cap"),
    Mutant("naming-long-bucket", "infra/naming.py",
           "BUCKET_NAME_MAX = 63", "BUCKET_NAME_MAX = 64",
           "derived bucket names one character too long",
           equivalent="unreachable: a derived name is at most 48 characters (project ID <= 30, "
           "namePrefix <= 12, plus `-` and `-data`), so it is never cut"),
    Mutant("chat-partial-tag-whole", "clients/chat.py",
           "for size in range(min(len(tag) - 1, len(text)), 0, -1):",
           "for size in range(min(len(tag), len(text)), 0, -1):",
           "a whole closing tag held back as a partial one",
           equivalent="a buffer holding the whole </think> was already split at it "
           "(_close_reasoning runs first), so the longest end kept is never the whole tag"),
)  # fmt: skip

# Tests that kill survivors of earlier runs (the image's scripts are loaded by path).
GAPS = "tests/test_mutation_gaps.py"
# Tests a module reaches only through the whole program, or that load it by path.
MODULE_TESTS: dict[str, tuple[str, ...]] = {
    "__main__.py": ("tests/workloads/test_serving.py", "tests/infra/test_stack.py"),
    "infra/cluster.py": ("tests/infra/test_cluster.py",),
    "infra/gpu_node_pool.py": (
        "tests/infra/test_gpu_node_pool.py",
        "tests/infra/test_pause.py",
        "tests/workloads/test_serving.py",
    ),
    "infra/identity.py": ("tests/infra/test_storage_registry_iam.py",),
    "infra/storage.py": ("tests/infra/test_storage_registry_iam.py",),
    "infra/registry.py": ("tests/infra/test_storage_registry_iam.py",),
    "infra/services.py": ("tests/infra/test_storage_registry_iam.py",),
    "infra/network.py": ("tests/infra/test_network.py",),
    "infra/naming.py": ("tests/infra/test_stack.py",),
    "infra/config.py": ("tests/test_config.py", "tests/test_bad_input.py"),
    "infra/rules.py": ("tests/test_config.py", "tests/test_bad_input.py"),
    # The server's builders, built one at a time (under a second), before the program runs.
    "workloads/options.py": (
        "tests/workloads/test_serving_builders.py",
        "tests/workloads/test_serving.py",
    ),
    "workloads/serving.py": (
        "tests/workloads/test_serving_builders.py",
        "tests/workloads/test_serving.py",
        "tests/infra/test_pause.py",
    ),
    "workloads/weights.py": (
        "tests/workloads/test_serving_builders.py",
        "tests/workloads/test_serving.py",
    ),
    "workloads/pod.py": (
        "tests/workloads/test_serving_builders.py",
        "tests/workloads/test_serving.py",
    ),
    "workloads/networks.py": ("tests/workloads/test_serving.py",),
    "workloads/namespace.py": ("tests/workloads/test_serving.py",),
    "workloads/kubernetes.py": ("tests/workloads/test_serving.py",),
    "workloads/benchmark.py": ("tests/workloads/test_benchmark.py", "tests/test_contracts.py"),
    "policy/validators.py": ("tests/policy/test_validators.py", "tests/policy/test_pack.py"),
    "clients/report.py": ("tests/clients/test_report.py", "tests/test_contracts.py"),
    "infra/weights_staging.py": (
        "tests/infra/test_weights_staging.py",
        "tests/infra/test_first_apply.py",
        "tests/workloads/test_secrets.py",
    ),
    "infra/propagation.py": ("tests/infra/test_first_apply.py", "tests/test_platform.py"),
    "clients/smoke.py": ("tests/clients/test_smoke.py",),
    "docker/weights/fetch_weights.py": (
        "tests/test_fetch_weights.py",
        "tests/test_contracts.py",
        GAPS,
    ),
    "docker/benchmark/run_benchmarks.py": (
        "tests/test_run_benchmarks.py",
        "tests/test_contracts.py",
        GAPS,
    ),
    "docker/node_cache.py": ("tests/test_serve_script.py", "tests/test_contracts.py", GAPS),
    "docker/serve.sh": ("tests/test_serve_script.py", "tests/test_contracts.py", GAPS),
}
# Never run per mutant: it needs checkov's own virtualenv and renders both stacks.
SKIPPED_TEST_FILES = {"tests/test_checkov.py"}


def module_name(path: str) -> str | None:
    if not path.endswith(".py") or path == "__main__.py" or path.startswith("docker/"):
        return None
    return path.removesuffix(".py").replace("/", ".")


def importers(repo: Path, module: str) -> set[str]:
    """Test files that import `module` (or a name from it) directly."""
    found = set()
    for test in sorted((repo / "tests").rglob("test_*.py")):
        tree = ast.parse(test.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if module in names:
                found.add(test.relative_to(repo).as_posix())
    return found


def tests_for(repo: Path, path: str) -> list[str]:
    """The module's own test files first (a kill there ends the run soonest)."""
    module = module_name(path)
    own = list(MODULE_TESTS.get(path, ()))
    others = sorted(importers(repo, module) - set(own)) if module else []
    return [t for t in own + others if t not in SKIPPED_TEST_FILES]


@dataclass
class Outcome:
    id: str
    path: str
    line: int | None
    status: str  # killed, survived, stale, timeout
    seconds: float = 0.0
    tests: list[str] = field(default_factory=list)
    detail: str = ""  # the first failing test, or why stale
    equivalent: str = ""


def locate(text: str, mutant: Mutant) -> tuple[int | None, str]:
    """(line number, problem): where the mutant applies, or why it cannot."""
    count = text.count(mutant.find)
    if count == 0:
        return None, "target text not found (the code changed)"
    if count > 1:
        return None, f"target text found {count} times"
    start = text.index(mutant.find)
    if "\n" in mutant.find.rstrip("\n"):
        return None, "target text spans lines"
    return text.count("\n", 0, start) + 1, ""


def target_line(path: Path, mutant: Mutant) -> tuple[int | None, str]:
    """`locate` in the file at `path`, which may be gone."""
    if not path.is_file():
        return None, "file not found (moved or removed)"
    return locate(path.read_text(), mutant)


def copy_repo(destination: Path) -> None:
    """The tracked and new (not ignored) files of the working tree, as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_symlink() or not source.is_file():
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    # The same virtualenv (stream_chat.sh runs the client with .venv/bin/python).
    venv = REPO / ".venv"
    if venv.exists():
        (destination / ".venv").symlink_to(venv.resolve())


def pytest(copy: Path, tests: list[str], timeout: float) -> tuple[int | None, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}
    env.pop("REQUIRE_CHECKOV", None)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, ""
    lines = done.stdout.splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return done.returncode, failed[0] if failed else (lines[-1] if lines else "")


def run_mutant(copy: Path, mutant: Mutant, timeout: float) -> Outcome:
    target = copy / mutant.path
    line, problem = target_line(target, mutant)
    outcome = Outcome(mutant.id, mutant.path, line, "stale", equivalent=mutant.equivalent)
    if line is None:
        outcome.detail = problem
        return outcome
    original = target.read_text()
    outcome.tests = tests_for(copy, mutant.path)
    start = time.perf_counter()
    try:
        target.write_text(original.replace(mutant.find, mutant.replace, 1))
        code, first_failure = pytest(copy, outcome.tests, timeout)
    finally:
        target.write_text(original)
    outcome.seconds = round(time.perf_counter() - start, 1)
    if code is None:
        outcome.status = "timeout"
    elif code == 0:
        outcome.status = "survived"
    else:
        outcome.status = "killed"
        outcome.detail = first_failure
    return outcome


def baseline(copy: Path, mutants: list[Mutant], timeout: float) -> None:
    files = sorted({t for m in mutants for t in tests_for(copy, m.path)})
    code, first_failure = pytest(copy, files, timeout * 2)
    if code != 0:
        raise SystemExit(f"the tests fail without any mutant ({first_failure}); fix them first")


def score(outcomes: list[Outcome]) -> tuple[int, int]:
    counted = [o for o in outcomes if not o.equivalent and o.status != "stale"]
    return sum(o.status in ("killed", "timeout") for o in counted), len(counted)


def render(outcomes: list[Outcome]) -> str:
    lines = [f"{'mutant':36} {'where':32} {'result':9} {'s':>6}  detail"]
    for o in outcomes:
        where = f"{o.path}:{o.line}" if o.line else o.path
        note = f"equivalent: {o.equivalent}" if o.equivalent else o.detail
        lines.append(f"{o.id:36} {where:32} {o.status:9} {o.seconds:6.1f}  {note}")
    killed, counted = score(outcomes)
    stale = sum(o.status == "stale" for o in outcomes)
    equivalent = sum(bool(o.equivalent) for o in outcomes)
    percent = 100.0 * killed / counted if counted else 0.0
    lines.append(
        f"\nkilled {killed} of {counted} ({percent:.0f}%); {equivalent} equivalent, {stale} stale, "
        f"{len(outcomes)} mutants in all"
    )
    survivors = [o.id for o in outcomes if o.status == "survived" and not o.equivalent]
    if survivors:
        lines.append("survived: " + ", ".join(survivors))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (copies)")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests")
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unchanged run")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS)
    args = parser.parse_args(argv)

    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids)), "mutant ids must be unique"
    chosen = list(MUTANTS)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - set(ids)
        if unknown:
            parser.error(f"unknown mutant ids: {', '.join(sorted(unknown))}")
        chosen = [m for m in MUTANTS if m.id in wanted]
    if args.list:
        for m in chosen:
            line, problem = target_line(REPO / m.path, m)
            where = f"{m.path}:{line}" if line else f"{m.path} (stale: {problem})"
            print(f"{m.id:36} {where:34} {m.what}")
            print(f"{'':36} tests: {' '.join(tests_for(REPO, m.path))}")
        return 0

    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        copies = [Path(tmp) / f"copy-{i}" for i in range(max(1, args.jobs))]
        for copy in copies:
            copy_repo(copy)
        if not args.no_baseline:
            print(f"baseline: the covering tests of {len(chosen)} mutants, unchanged", flush=True)
            baseline(copies[0], chosen, args.timeout)
        free = list(copies)
        outcomes: dict[str, Outcome] = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(copies)) as pool:
            running: dict[concurrent.futures.Future[Outcome], Path] = {}
            queue = list(chosen)
            while queue or running:
                while queue and free:
                    mutant, copy = queue.pop(0), free.pop()
                    running[pool.submit(run_mutant, copy, mutant, args.timeout)] = copy
                done, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    free.append(running.pop(future))
                    o = future.result()
                    outcomes[o.id] = o
                    print(f"  {o.id}: {o.status} ({o.seconds:.0f} s)", flush=True)
    ordered = [outcomes[m.id] for m in chosen]
    print(render(ordered))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(o) for o in ordered], indent=2) + "\n")
    killed, counted = score(ordered)
    return 0 if counted and killed / counted >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
