"""The policy pack as the tests see it: its validators module and its registered policies."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi_policy
import pytest

from plan.runner import REPO

POLICY_DIR = REPO / "policy"


def _load(name: str, path: Path) -> ModuleType:
    """Load `path` as top-level module `name`, as the CLI does from the pack folder."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validators = _load("validators", POLICY_DIR / "validators.py")


@dataclass
class Pack:
    name: str
    policies: list[pulumi_policy.Policy]
    enforcement_level: pulumi_policy.EnforcementLevel | None
    options: dict[str, Any]

    def policy(self, name: str) -> pulumi_policy.Policy:
        return next(p for p in self.policies if p.name == name)


def registered_pack() -> Pack:
    """Run policy/__main__.py with PolicyPack replaced by a recorder (the real
    one starts a gRPC server and never returns)."""
    captured: list[Pack] = []

    def record(name, policies, enforcement_level=None, **options):
        captured.append(Pack(name, policies, enforcement_level, options))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pulumi_policy, "PolicyPack", record)
        # `import validators` in __main__.py finds the module the tests use.
        patch.setitem(sys.modules, "validators", validators)
        runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")
    assert len(captured) == 1, "policy/__main__.py must construct exactly one PolicyPack"
    return captured[0]


@pytest.fixture(scope="session")
def pack() -> Pack:
    return registered_pack()
