"""Contracts across module boundaries: what one part writes, the next one reads.

Each test takes one side's real output (the plan's rendered objects) and runs
the real consumer on it:
- the benchmark Job reads the checkpoint and asks for the model the server serves;
- the benchmark Job's environment drives docker/benchmark/run_benchmarks.py,
  whose result folder `python -m clients.report` (as the stack's
  benchmarkReport output runs it) reports with the setup, cases and metadata
  the Job passed;
- the stage-weights build (its `gcloud builds submit`, through
  docker/weights/cloudbuild.yaml) stages the checkpoint where the serving
  pods mount it, and the pods' init step (docker/serve.sh) accepts it.

Cloud Storage is a folder per bucket under one root here; a GCS FUSE volume
(`bucketName`, `only-dir`) is that bucket's folder, and a hostPath a folder
of the node. Container paths are moved to those folders the way the kubelet
mounts them (see `PodFiles`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import runpy
import shlex
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import yaml
from rich.console import Console

from clients import report
from clients import timeline as timeline_reader
from plan.runner import REPO
from tests.clients.aiperf_results import job_metadata, summary, write
from tests.conftest import plan_of
from tests.platform_fakes import Platform, platform
from tests.test_fetch_weights import FolderBucket, fetch_weights
from tests.weights_hub import COMMIT, HubRepo, StandInHub

GCSFUSE = "gcsfuse.csi.storage.gke.io"


def _pod_spec(plan, kind: str, name: str) -> dict:
    return plan.one(f"kubernetes:{kind}", name).inputs["spec"]["template"]["spec"]


def _containers(plan, kind: str, name: str, group: str = "containers") -> list[dict]:
    return _pod_spec(plan, kind, name)[group]


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _flag(args: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return value


def _volume(spec: dict, name: str) -> dict:
    (volume,) = [v for v in spec["volumes"] if v["name"] == name]
    return volume


def _bucket_dir(volume: dict) -> tuple[str, str]:
    """(bucket, only-dir) of a GCS FUSE volume."""
    assert volume["csi"]["driver"] == GCSFUSE
    attributes = volume["csi"]["volumeAttributes"]
    options = dict(
        o.split("=", 1) if "=" in o else (o, "") for o in attributes["mountOptions"].split(",")
    )
    return attributes["bucketName"], options["only-dir"]


class PodFiles:
    """A pod's view of buckets and node folders, as folders under `root`."""

    def __init__(self, root: Path, pod: str = "dsr1-trtllm-serve-6d8f9-x2k4p"):
        self.root, self.pod, self.node = root, pod, "gke-dsr1-a4-pool-5b8e-0"
        self.stores: dict[tuple[str, str], FolderBucket] = {}

    def store(self, bucket: str, prefix: str) -> FolderBucket:
        """gs://bucket/prefix as the stager's store; object metadata lasts, as in GCS."""
        key = (bucket, prefix)
        if key not in self.stores:
            self.stores[key] = FolderBucket(self.gcs(bucket, prefix))
        return self.stores[key]

    def gcs(self, bucket: str, prefix: str = "") -> Path:
        """gs://bucket/prefix as a folder."""
        return self.root / "gcs" / bucket / prefix.strip("/")

    def gs_url(self, url: str) -> Path:
        bucket, _, prefix = url.removeprefix("gs://").partition("/")
        return self.gcs(bucket, prefix)

    def volume(self, volume: dict) -> Path:
        if "csi" in volume:
            return self.gcs(*_bucket_dir(volume))
        if "hostPath" in volume:
            return self.root / "node" / volume["hostPath"]["path"].lstrip("/")
        return self.root / "pod" / volume["name"]  # emptyDir

    def env(self, spec: dict, container: dict) -> dict[str, str]:
        """The container's environment as the kubelet sets it (fieldRefs resolved,
        $(VAR) expanded), each path under one of its mounts moved to that folder."""
        mounts = {
            m["mountPath"]: self.volume(_volume(spec, m["name"]))
            for m in container.get("volumeMounts", [])
        }
        fields = {"metadata.name": self.pod, "spec.nodeName": self.node}
        env: dict[str, str] = {}
        for entry in container["env"]:
            if "valueFrom" in entry:
                env[entry["name"]] = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
            else:
                env[entry["name"]] = re.sub(
                    r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), entry["value"]
                )
        return {key: self.path(value, mounts) for key, value in env.items()}

    @staticmethod
    def path(value: str, mounts: dict[str, Path]) -> str:
        for mount, folder in mounts.items():
            if value == mount or value.startswith(mount + "/"):
                return str(folder) + value[len(mount) :]
        return value


# --------------------------------------------------------------------------
# Benchmark Job -> server


def test_the_benchmark_tokenizes_with_the_served_checkpoint_and_asks_for_its_name():
    plan = plan_of("dev", model="nvfp4")
    server = _env(_containers(plan, "apps/v1:Deployment", "server")[0])
    job = _containers(plan, "batch/v1:Job", "benchmark")[0]
    env = _env(job)
    # trtllm-serve names a local checkpoint after its folder (serve.sh serves
    # $MODEL_ROOT/$MODEL_ID), and that is the name /v1/models reports.
    assert env["MODEL"] == server["MODEL_ID"].rsplit("/", 1)[1] == "DeepSeek-R1-0528-FP4-v2"
    assert env["TOKENIZER"] == f"{server['MODEL_ROOT']}/{server['MODEL_ID']}"
    mounts = {m["name"]: m["mountPath"] for m in job["volumeMounts"]}
    assert mounts["models"] == server["MODEL_ROOT"]


# --------------------------------------------------------------------------
# Benchmark Job -> run_benchmarks.py -> clients/report.py

BENCHMARK_SCRIPT = REPO / "docker" / "benchmark" / "run_benchmarks.py"


class StandInAiperf:
    """Stands in for the `aiperf profile` process: writes AIPerf's export files
    (tests/clients/aiperf_results.py) into --artifact-dir, with figures that
    identify the case: 8 x (OSL + users) output tokens/s, every sent request
    completed, and p99 TPOT 60 + users ms (so the SLO holds up to 20 users)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str], check: bool) -> SimpleNamespace:
        self.calls.append(args)
        osl = int(_flag(args, "output-tokens-mean"))
        users = int(_flag(args, "concurrency"))
        data = summary(
            8.0 * (osl + users),
            50.0,
            completed=int(_flag(args, "request-count")),
            tpot_p99_ms=60.0 + users,
        )
        folder = Path(_flag(args, "artifact-dir"))
        write(folder.parent, folder.name, data, None)
        return SimpleNamespace(returncode=0)


def _tables(text: str) -> dict[str, list[list[str]]]:
    """The report's tables: title -> rows of cells (header rows left out)."""
    tables: dict[str, list[list[str]]] = {}
    title = None
    for previous, line in itertools.pairwise(["", *text.splitlines()]):
        if line.startswith("┏"):
            title = previous.strip()
            assert title not in tables, f"two tables titled {title!r}: one setup expected"
            tables[title] = []
        elif line.startswith("│") and title is not None:
            tables[title].append([c.strip() for c in line.strip().strip("│").split("│")])
        elif line.startswith("└"):
            title = None
    return tables


def test_the_benchmark_jobs_run_is_reported_with_its_setup_cases_and_metadata(
    tmp_path, monkeypatch, capsys
):
    plan = plan_of("dev")
    spec = _pod_spec(plan, "batch/v1:Job", "benchmark")
    (job,) = spec["containers"]
    files = PodFiles(tmp_path)
    env = files.env(spec, job)
    run = Path(env["RESULT_DIR"])
    # The Job writes where the stack's benchmarkResults output points, and
    # benchmarkReport is the report's command line for it.
    assert run == files.gs_url(plan.outputs["benchmarkResults"])
    command = shlex.split(plan.outputs["benchmarkReport"])
    assert command[:3] == [".venv/bin/python", "-m", "clients.report"]
    run_id = run.name
    assert re.fullmatch(r"[0-9a-f]{12}", run_id)
    assert run == tmp_path / "gcs" / "my-a4-project-dsr1-data" / "benchmarks" / run_id

    aiperf = StandInAiperf()
    monkeypatch.setattr(subprocess, "run", aiperf)  # bound as the script's default runner
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # the DCGM delay
    with platform() as url:
        # Loopback stand-ins for the Service, the metadata server and the query API.
        stand_ins = {"BASE_URL": url, "METADATA_SERVER": url, "PROMETHEUS_URL": url}
        assert set(stand_ins) & set(env) == {"BASE_URL"}
        for key in ("AIPERF", "READY_TIMEOUT_SECONDS", "DCGM_DELAY_SECONDS"):
            monkeypatch.delenv(key, raising=False)
        for key, value in {**env, **stand_ins}.items():
            monkeypatch.setenv(key, value)
        try:
            runpy.run_path(str(BENCHMARK_SCRIPT), run_name="__main__")
            exit_code = None
        except SystemExit as done:
            exit_code = done.code
        queries = list(Platform.queries)
    assert exit_code == 0

    # Every case of the Job's matrix ran, then the SLO search, with the Job's
    # model, tokenizer and methodology.
    assert [(_flag(c, "synthetic-input-tokens-mean"), _flag(c, "output-tokens-mean"),
             _flag(c, "concurrency")) for c in aiperf.calls] == [
        ("512", "128", "8"), ("1024", "1024", "1"), ("1024", "1024", "64"),
        ("1024", "2048", "1"), ("1024", "2048", "64"),
        *(("1024", "1024", str(c)) for c in (1, 2, 4, 8, 16, 32, 24, 20, 22)),
    ]  # fmt: skip
    for call in aiperf.calls:
        assert _flag(call, "model") == "DeepSeek-R1-0528"
        # The checkpoint's folder in the stack's bucket (the Job's "models" mount).
        assert _flag(call, "tokenizer") == str(
            tmp_path / "gcs" / "my-a4-project-dsr1-data" / "models" / "deepseek-ai/DeepSeek-R1-0528"
        )
        assert call[-2:] == ["--extra-inputs", "ignore_eos:true"]
    # DCGM samples of the server's GPUs, by the Job's selector.
    assert {q["query"] for q in queries} == {
        f'{metric}{{exported_namespace="deepseek",exported_pod=~"dsr1-trtllm-serve-.*"}}'
        for metric in ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_UTIL")
    }
    records = [json.loads(p.read_text()) for p in sorted(run.rglob("case.json"))]
    assert len(records) == 14
    for record in records:
        # The dev stack's metadata, as the report's fixtures spell it, with this run's id.
        assert record["metadata"] == job_metadata(run_id=run_id)

    console = Console(record=True, width=200)
    assert report.main([str(files.gs_url(command[3])), *command[4:]], console=console) == 0
    text = console.export_text()
    assert "skipped" not in capsys.readouterr().err  # every result was readable
    assert (
        f"DeepSeek-R1-0528 | fp8 | TP8 PP1 EP8 | profile latency | 8x nvidia-b200 | run {run_id}"
        in text
    )
    tables = _tables(text)
    # Each fixed case once (AIPerf's per-phase copies skipped) and the SLO
    # search's answer, marked; per GPU over the Job's 8 GPUs.
    assert sorted(tables["Throughput, output tokens/s"]) == [
        ["1024/1024", "1", "5/5", "8,200", "1,025", "20.0"],
        ["1024/1024", "20*", "100/100", "8,352", "1,044", "20.0"],
        ["1024/1024", "64", "320/320", "8,704", "1,088", "20.0"],
        ["1024/2048", "1", "5/5", "16,392", "2,049", "20.0"],
        ["1024/2048", "64", "320/320", "16,896", "2,112", "20.0"],
        ["512/128", "8", "40/40", "1,088", "136.0", "20.0"],
    ]
    # DCGM samples (tests/clients/fixtures/dcgm) for every case.
    gpus = tables["GPUs (DCGM, per GPU) and KV cache"]
    assert [row[2] for row in gpus] == ["167.8 / 178.3"] * 6
    assert "GPU metrics:" not in text
    slo = tables["SLO search 1024/1024: p99 TTFT <= 2,000 ms, p99 TPOT <= 80.0 ms"]
    assert [(row[1], row[4]) for row in slo] == [
        ("1", "yes"), ("2", "yes"), ("4", "yes"), ("8", "yes"), ("16", "yes"),
        ("20*", "yes"), ("22", "no"), ("24", "no"), ("32", "no"),
    ]  # fmt: skip
    assert "highest concurrency meeting the SLO: 20 users, 8,352 output tokens/s" in text
    # fp8 on nvidia-b200 at 512/128 x 8 users: the Job's metadata matches a published row.
    (compared,) = tables["Compared with published figures (same GPU, precision, shape, users)"]
    assert compared[:2] == ["512/128", "8"]
    assert compared[4].startswith("the seed's README")


# --------------------------------------------------------------------------
# stage-weights -> serving pods

WEIGHTS_BUILD = REPO / "docker" / "weights" / "cloudbuild.yaml"
SERVE_SCRIPT = REPO / "docker" / "serve.sh"
CHECKPOINT = "deepseek-ai/DeepSeek-R1-0528"
CHECKPOINT_FILES = {
    "config.json": b'{"architectures": ["DeepseekV3ForCausalLM"]}\n',
    "tokenizer.json": b'{"version": "1.0"}\n',
    "model-00001-of-00002.safetensors": bytes(range(256)) * 64,
    "model-00002-of-00002.safetensors": b"\x07" * 9000,
}


def _substitutions(create: str) -> dict[str, str]:
    args = shlex.split(create)
    assert args[:4] == ["gcloud", "builds", "submit", "docker/weights"]
    assert _flag(args, "config") == "docker/weights/cloudbuild.yaml"
    return dict(pair.split("=", 1) for pair in _flag(args, "substitutions").split(","))


def _build_step_env(substitutions: dict[str, str], build_id: str) -> dict[str, str]:
    """The stage step's environment as Cloud Build makes it from cloudbuild.yaml.
    With the default substitution option (MUST_MATCH) a build fails when a
    substitution is missing from the template or from the map (Cloud Build v1
    API, BuildOptions.SubstitutionOption)."""
    build = yaml.safe_load(WEIGHTS_BUILD.read_text())
    (step,) = build["steps"]
    values = {**build["substitutions"], **substitutions, "BUILD_ID": build_id}
    used = set()

    def substitute(match: re.Match) -> str:
        used.add(match[1] or match[2])
        return values[match[1] or match[2]]  # KeyError: missing from the map

    env = dict(
        re.sub(r"\$\{(\w+)\}|\$(\w+)", substitute, entry).split("=", 1) for entry in step["env"]
    )
    assert set(substitutions) <= used, "passed but not in the template"
    return env


def _stage_weights(monkeypatch, files: PodFiles, step_env: dict[str, str], hub_url: str) -> int:
    """fetch_weights.py's entry point as the build step runs it; its buckets are folders."""
    monkeypatch.setattr(fetch_weights, "GcsStore", files.store)
    for key, value in step_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HF_ENDPOINT", hub_url)  # the stand-in Hub
    monkeypatch.setenv("SCRATCH", str(files.root / "build" / "scratch"))
    return fetch_weights.main()


def _serve(files: PodFiles, spec: dict, container: dict, *args: str) -> subprocess.CompletedProcess:
    """docker/serve.sh (the image's /opt/deepseek/serve.sh) with the container's
    environment, a stand-in trtllm-serve on PATH."""
    bin_dir = files.root / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "trtllm-serve"
    stub.write_text('#!/usr/bin/env bash\necho "trtllm-serve $*"\n')
    stub.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        **files.env(spec, container),
        # Not the plan's hours: a missing marker fails at once.
        "WEIGHTS_WAIT_SECONDS": "0",
        "READY_POLL_SECONDS": "0.1",
        "READY_LIMIT_SECONDS": "0.3",
    }
    return subprocess.run(
        ["bash", str(SERVE_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def _pods_accept(files: PodFiles, spec: dict) -> None:
    """The init step then the server, as the Deployment runs them; the local-SSD copy."""
    (init,) = spec["initContainers"]
    assert init["command"] == ["/opt/deepseek/serve.sh", "--wait-for-weights"]
    done = _serve(files, spec, init, *init["command"][1:])
    assert done.returncode == 0, done.stdout + done.stderr
    local = files.root / "node" / "mnt/stateful_partition/kube-ephemeral-ssd/a4-deepseek-weights"
    local = local / CHECKPOINT
    for name, data in CHECKPOINT_FILES.items():
        assert (local / name).read_bytes() == data
    assert (local / ".download-complete").read_text() == f"{CHECKPOINT}@{COMMIT}\n"
    (server,) = spec["containers"]
    served = _serve(files, spec, server, *server["args"])
    assert served.returncode == 0, served.stdout + served.stderr
    assert served.stdout.splitlines()[-1].startswith(f"trtllm-serve {local} ")


def test_the_staged_checkpoint_is_where_the_pods_mount_it_and_they_accept_it(tmp_path, monkeypatch):
    plan = plan_of("dev")
    builds = sorted(
        (
            _substitutions(c.inputs["create"])
            for c in plan.of_type("command:local:Command")
            if c.name.startswith("stage-weights")
        ),
        key=lambda b: b["_SHARD"],
    )
    substitutions = builds[0]
    spec = _pod_spec(plan, "apps/v1:Deployment", "server")
    (init,) = spec["initContainers"]
    init_env = _env(init)
    assert (substitutions["_BUCKET"], substitutions["_PREFIX"]) == _bucket_dir(
        _volume(spec, "models")
    ) == ("my-a4-project-dsr1-data", "models")  # fmt: skip
    assert substitutions["_MODEL_ID"] == init_env["MODEL_ID"] == CHECKPOINT
    assert substitutions["_MODEL_REVISION"] == init_env["MODEL_REVISION"] == "main"
    assert plan.outputs["weights"] == f"gs://my-a4-project-dsr1-data/models/{CHECKPOINT}"

    files = PodFiles(tmp_path)
    hub = HubRepo(
        CHECKPOINT, files=CHECKPOINT_FILES, lfs={n for n in CHECKPOINT_FILES if "00" in n}
    )
    staged = files.gcs("my-a4-project-dsr1-data", "models") / CHECKPOINT
    # Every build the plan submits, one after the other; only the last marks it complete.
    assert [(b["_SHARD"], b["_SHARDS"]) for b in builds] == [
        ("0", "4"),
        ("1", "4"),
        ("2", "4"),
        ("3", "4"),
    ]
    with StandInHub(hub) as stand_in:
        for number, build in enumerate(builds, 1):
            assert not (staged / ".download-complete").exists()
            step_env = _build_step_env(build, build_id=f"b-contract-{number}")
            assert _stage_weights(monkeypatch, files, step_env, stand_in.url) == 0
    assert (staged / ".download-complete").is_file()
    assert sorted(hub.downloads) == sorted(CHECKPOINT_FILES), "each file fetched by one build"

    _pods_accept(files, spec)
    # The build and the pod record their phases in the same timeline folder.
    runs = timeline_reader.load(files.gcs("my-a4-project-dsr1-data", "timeline"))
    assert {(r.writer, r.run) for r in runs} == {
        *(("stage-weights", f"b-contract-{n}") for n in (1, 2, 3, 4)),
        ("serving-pod", "dsr1-trtllm-serve-6d8f9-x2k4p"),
    }


def test_a_pre_staged_source_is_mounted_as_is_and_nothing_is_staged(tmp_path, monkeypatch):
    plan = plan_of("dev", weightsSource="gs://team-weights/r1")
    assert "stage-weights" not in {r.name for r in plan.of_type("command:local:Command")}
    spec = _pod_spec(plan, "apps/v1:Deployment", "server")
    assert _bucket_dir(_volume(spec, "models")) == ("team-weights", "r1")
    assert _env(spec["initContainers"][0])["MODEL_ID"] == CHECKPOINT
    job = _pod_spec(plan, "batch/v1:Job", "benchmark")
    assert _bucket_dir(_volume(job, "models")) == ("team-weights", "r1")  # its tokenizer
    assert plan.outputs["weights"] == f"gs://team-weights/r1/{CHECKPOINT}"

    # Staged before by the same build, run by hand with that bucket and prefix.
    files = PodFiles(tmp_path)
    step_env = _build_step_env(
        {"_MODEL_ID": CHECKPOINT, "_BUCKET": "team-weights", "_PREFIX": "r1"}, "by-hand"
    )
    with StandInHub(HubRepo(CHECKPOINT, files=CHECKPOINT_FILES)) as stand_in:
        assert _stage_weights(monkeypatch, files, step_env, stand_in.url) == 0
    _pods_accept(files, spec)
