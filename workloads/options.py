"""What the TensorRT-LLM server is started with (pure functions).

The extra LLM API options come from a serving profile in `docker/profiles/`,
each a copy of NVIDIA's published configuration for DeepSeek-R1 on 8x B200
(the file header names its source; the serving image's build checks it against
the database inside the pinned TensorRT-LLM release), with the stack's
parallel sizes, `maxSeqLen` and the user's `servingOverrides` applied on top.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from infra.config import Model, StackConfig
from infra.rules import serving_overrides

# In the serving image's build context: its build checks them (docker/check_profiles.py).
PROFILES_DIR = Path(__file__).resolve().parent.parent / "docker" / "profiles"
SERVER_PORT = 8000
OPTIONS_MOUNT = "/etc/trtllm"
OPTIONS_FILE = "extra-llm-api-options.yaml"
MODEL_ROOT = "/models"

# Hugging Face repositories of the checkpoints (`model` setting).
CHECKPOINTS: dict[Model, str] = {
    Model.FP8: "deepseek-ai/DeepSeek-R1-0528",
    # NVIDIA's config database is keyed on the -v2 FP4 repository.
    Model.NVFP4: "nvidia/DeepSeek-R1-0528-FP4-v2",
}


def checkpoint(cfg: StackConfig) -> str:
    return CHECKPOINTS[cfg.model]


def served_model_name(cfg: StackConfig) -> str:
    """What /v1/models reports: trtllm-serve names a local checkpoint after its
    folder (tensorrt_llm/serve/openai_server.py), e.g. `DeepSeek-R1-0528`."""
    return checkpoint(cfg).rsplit("/", 1)[-1]


def checkpoint_path(cfg: StackConfig) -> str:
    """Where serving pods see the checkpoint (the bucket's models/ folder)."""
    return f"{MODEL_ROOT}/{checkpoint(cfg)}"


def profile_path(model: str, profile: str) -> Path:
    return PROFILES_DIR / f"{model}-{profile}.yaml"


def load_profile(model: str, profile: str) -> dict:
    return yaml.safe_load(profile_path(model, profile).read_text())


def deep_merge(base: dict, extra: dict) -> dict:
    """`extra` over `base`, merging nested mappings key by key."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def llm_options(cfg: StackConfig) -> dict:
    """The extra LLM API options file the server reads."""
    options = load_profile(cfg.model, cfg.serving_profile)
    # The stack's sizes win over the profile's (equal by default); the
    # published files leave pipeline parallelism at its default of 1.
    options["tensor_parallel_size"] = cfg.tp_size
    options["moe_expert_parallel_size"] = cfg.ep_size
    if cfg.pp_size != 1 or "pipeline_parallel_size" in options:
        options["pipeline_parallel_size"] = cfg.pp_size
    if cfg.max_seq_len:
        options["max_seq_len"] = cfg.max_seq_len
    if cfg.prometheus_metrics:
        # /prometheus/metrics serves Prometheus text only with these on
        # (tensorrt_llm/serve/openai_server.py); /metrics is JSON.
        options["return_perf_metrics"] = True
        options["enable_iter_perf_stats"] = True
    return deep_merge(options, serving_overrides(cfg))


def effective_max_seq_len(cfg: StackConfig) -> int:
    """The longest request (prompt + answer) the server accepts."""
    return cfg.max_seq_len or int(load_profile(cfg.model, cfg.serving_profile)["max_seq_len"])


def llm_options_yaml(cfg: StackConfig) -> str:
    return yaml.safe_dump(llm_options(cfg), sort_keys=True)


def server_args(cfg: StackConfig) -> list[str]:
    """Arguments after `trtllm-serve <model>` (the image's serve.sh adds the model)."""
    return [
        "--host=0.0.0.0",  # the default, localhost, is unreachable from outside the pod
        f"--port={SERVER_PORT}",
        "--backend=pytorch",
        f"--tp_size={cfg.tp_size}",
        f"--pp_size={cfg.pp_size}",
        f"--ep_size={cfg.ep_size}",
        "--trust_remote_code",
        "--reasoning_parser=deepseek-r1",
        f"--extra_llm_api_options={OPTIONS_MOUNT}/{OPTIONS_FILE}",
    ]
