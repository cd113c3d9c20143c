"""docker/check_profiles.py, which the serving image's build runs against the
config database inside the pinned TensorRT-LLM release."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "docker" / "check_profiles.py"
PROFILES = REPO / "docker" / "profiles"


def database_like_the_release(root: Path) -> Path:
    """A database holding, at the path each header names, the profile's values."""
    database = root / "database"
    for profile in PROFILES.glob("*.yaml"):
        text = profile.read_text()
        source = next(line for line in text.splitlines() if line.startswith("# Source"))
        entry = source.split("examples/configs/database/", 1)[1].strip()
        (database / entry).parent.mkdir(parents=True, exist_ok=True)
        body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        (database / entry).write_text(body + "\n")
    return database


def check(profiles: Path, database: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(profiles), str(database)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_profile_names_its_database_entry():
    for profile in sorted(PROFILES.glob("*.yaml")):
        header = profile.read_text().split("\n\n")[0]
        assert "# Source     : NVIDIA/TensorRT-LLM, examples/configs/database/" in header, profile


def test_matching_profiles_pass(tmp_path):
    done = check(PROFILES, database_like_the_release(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "4 profiles match" in done.stdout


def test_a_changed_value_fails_with_a_readable_diff(tmp_path):
    database = database_like_the_release(tmp_path)
    entry = database / "deepseek-ai/DeepSeek-R1-0528/B200/1k1k_tp8_conc1.yaml"
    values = yaml.safe_load(entry.read_text())
    values["max_num_tokens"] = 4096
    entry.write_text(yaml.safe_dump(values))
    done = check(PROFILES, database)
    assert done.returncode == 1
    err = done.stderr
    assert (
        "fp8-latency.yaml differs from deepseek-ai/DeepSeek-R1-0528/B200/1k1k_tp8_conc1.yaml" in err
    )
    assert "--- database/deepseek-ai/DeepSeek-R1-0528/B200/1k1k_tp8_conc1.yaml" in err
    assert "+++ profiles/fp8-latency.yaml" in err
    assert "-max_num_tokens: 4096" in err and "+max_num_tokens: 3136" in err
    assert "copy the release's entries into docker/profiles/" in err


def test_a_missing_entry_or_database_is_named(tmp_path):
    database = database_like_the_release(tmp_path)
    (database / "nvidia/DeepSeek-R1-0528-FP4-v2/B200/1k1k_tp8_conc2048.yaml").unlink()
    done = check(PROFILES, database)
    assert done.returncode == 1
    assert (
        "nvfp4-throughput.yaml: nvidia/DeepSeek-R1-0528-FP4-v2/B200/1k1k_tp8_conc2048.yaml is not in the database"
        in done.stderr
    )
    done = check(PROFILES, tmp_path / "nowhere")
    assert done.returncode == 1
    assert "no config database in this image" in done.stderr


@pytest.mark.parametrize("header", ["", "# Source : somewhere else\n"])
def test_a_profile_without_a_source_fails(tmp_path, header):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "x.yaml").write_text(header + "a: 1\n")
    done = check(profiles, database_like_the_release(tmp_path))
    assert done.returncode == 1
    assert "x.yaml: its header names no `# Source : ...` database entry" in done.stderr
