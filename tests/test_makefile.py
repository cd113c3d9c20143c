"""The Makefile's install targets, read with `make -n` (nothing is installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.test_requirements import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str, venv: str = "/nonexistent/venv") -> subprocess.CompletedProcess:
    # Every venv elsewhere, not yet made: `make -n` then lists every install,
    # whatever this checkout already has (CI runs this inside `make test`).
    venvs = [f"VENV={venv}", "CHECKOV_VENV=/nonexistent/checkov", "AIPERF_VENV=/nonexistent/aiperf"]
    return subprocess.run(
        ["make", "--no-print-directory", *args, *venvs, f"PYTHON={sys.executable}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def pip_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if " pip install " in line]


def test_make_plan_installs_the_program_alone_and_shows_progress():
    done = make("-n", "plan")
    assert done.returncode == 0, done.stderr
    installs = pip_lines(done.stdout)
    assert len(installs) == 1
    assert installs[0].endswith("-r requirements.txt")
    assert "--quiet" not in installs[0] and " -q" not in installs[0]
    assert done.stdout.strip().endswith("-m plan dev")


def test_make_test_installs_the_toolchain_first():
    done = make("-n", "test")
    assert done.returncode == 0, done.stderr
    installs = [line.split(" -r ")[-1] for line in pip_lines(done.stdout)]
    # requirements-dev.txt holds the clients' set too (tests/test_requirements.py).
    assert installs == [
        "requirements.txt",
        "requirements-dev.txt",
        "requirements-checkov.txt",
        "docker/benchmark/requirements-aiperf.txt -c docker/benchmark/constraints-aiperf.txt",
    ]
    assert "-m pytest" in done.stdout.splitlines()[-1]


def test_make_clients_adds_the_clients_to_an_existing_venv(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # as `make setup` or `pulumi up` left it
    done = make("-n", "clients", venv=str(venv))
    assert done.returncode == 0, done.stderr
    assert [line.split(" -r ")[-1] for line in pip_lines(done.stdout)] == [
        "requirements-clients.txt"
    ]


def test_an_old_python_is_refused_with_the_version_needed(tmp_path):
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.10.12" && exit 0\nexit 1\n')
    old.chmod(0o755)
    done = subprocess.run(
        ["make", "--no-print-directory", "plan", f"PYTHON={old}", "VENV=/nonexistent/venv"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"needs Python 3.11 or later; {old} is Python 3.10.12" in done.stderr
    assert "PYTHON=python3.12" in done.stderr


def test_this_python_passes_the_version_check():
    assert make("python-version").returncode == 0


def test_make_test_requires_the_crd_tests_where_shared_is_present():
    assert "REQUIRE_CRDS=1" in make("-n", "test", "REQUIRE_CRDS=1").stdout
    assert "REQUIRE_CRDS= " in make("-n", "test", "REQUIRE_CRDS=").stdout
