"""The pinned requirements install from a public index alone (PyPI).

Three sets: requirements.txt (the program: what `pulumi up` and `make plan`
install), requirements-clients.txt (chat client and report) and
requirements-dev.txt (the test toolchain on top of both); one constraints
file pins every package of all three. A local-version pin (`torch==2.13.0+cpu`)
names a build no public index serves, so pip cannot resolve it on an ordinary
machine (PEP 440, "Local version identifiers").
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", ".venv-checkov", "venv", "out", "node_modules", ".git"}
# PEP 508 name, then `==` and a version; extras allowed.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*(\S+)$")
TEST_TOOLCHAIN = {"pytest", "ruff", "torch", "transformers", "kubernetes-validate", "checkov"}


def pin_files() -> list[Path]:
    """Every requirements/constraints file of the repository, the virtualenvs'
    trees pruned unwalked (collection runs this in every test worker)."""
    found = []
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")]
        found += [
            Path(folder) / name
            for name in files
            if fnmatch.fnmatch(name, "requirements*.txt")
            or fnmatch.fnmatch(name, "constraints*.txt")
        ]
    return sorted(found)


def entries(path: Path) -> list[str]:
    """Requirement lines: comments, blanks and `-r`/`-c` options left out."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in entries(path):
        match = PIN.match(line)
        assert match, f"{path.name}: {line!r} is not pinned with =="
        found[normalize(match.group(1))] = match.group(3)
    return found


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def local_versions(path: Path) -> list[str]:
    """Pins that carry a local version label (`+...`)."""
    return [f"{name}=={version}" for name, version in pins(path).items() if "+" in version]


def options(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.startswith("-")]


def test_the_pin_files_are_found():
    names = {p.relative_to(REPO).as_posix() for p in pin_files()}
    assert {
        "requirements.txt",
        "requirements-clients.txt",
        "requirements-dev.txt",
        "constraints.txt",
        "requirements-checkov.txt",
        "constraints-checkov.txt",
        "policy/requirements.txt",
    } <= names


@pytest.mark.parametrize("path", pin_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_pin_is_a_local_build_that_no_public_index_serves(path):
    assert local_versions(path) == []


def test_a_local_version_pin_is_caught(tmp_path):
    bad = tmp_path / "constraints.txt"
    bad.write_text("numpy==2.4.6\ntorch==2.13.0+cpu  # a local CPU build\n")
    assert local_versions(bad) == ["torch==2.13.0+cpu"]


def test_every_requirement_set_is_held_by_the_one_constraints_file():
    constraints = pins(REPO / "constraints.txt")
    for name in ("requirements.txt", "requirements-clients.txt", "requirements-dev.txt"):
        path = REPO / name
        assert "-c constraints.txt" in options(path), f"{name} does not name constraints.txt"
        for package, version in pins(path).items():
            assert constraints.get(package) == version, f"{name}: {package}=={version}"


def test_checkov_has_its_own_constraints():
    constraints = pins(REPO / "constraints-checkov.txt")
    assert "-c constraints-checkov.txt" in options(REPO / "requirements-checkov.txt")
    for package, version in pins(REPO / "requirements-checkov.txt").items():
        assert constraints.get(package) == version


def test_the_program_set_holds_no_test_toolchain_and_no_clients():
    program = set(pins(REPO / "requirements.txt"))
    assert program == {
        "pulumi",
        "pulumi-gcp",
        "pulumi-kubernetes",
        "pulumi-docker",
        "pulumi-command",
        "pulumiverse-time",
        "pyyaml",
    }
    assert not [line for line in options(REPO / "requirements.txt") if line.startswith("-r")]


def test_the_clients_set_is_what_clients_import():
    assert set(pins(REPO / "requirements-clients.txt")) == {
        "openai",
        "rich",
        "matplotlib",
        "google-cloud-storage",
    }
    assert TEST_TOOLCHAIN.isdisjoint(pins(REPO / "requirements-clients.txt"))


def test_the_dev_set_includes_the_program_and_the_clients():
    dev = options(REPO / "requirements-dev.txt")
    assert "-r requirements.txt" in dev and "-r requirements-clients.txt" in dev
    assert {"pytest", "ruff", "torch", "transformers"} <= set(pins(REPO / "requirements-dev.txt"))
