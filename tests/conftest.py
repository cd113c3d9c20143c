"""Shared fixtures: the real program run under mocks (see plan/runner.py)."""

from __future__ import annotations

import functools
import gc
import json
from pathlib import Path
from typing import Any

import pytest

from plan import runner

# A marker a leak scan can find: what tests pass as the Hugging Face token.
HF_TOKEN_MARKER = "hf_TESTMARKER_0123456789abcdef"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test` (`-n auto`): the tests spread over the workers one by one,
    but a module with a module-scoped fixture (checkov's run, AIPerf's, the served
    policy pack) goes whole to one worker, so that the fixture runs once."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if _has_module_fixture(config.rootpath / module) else nodeid

    return ModuleFixtureScheduling(config, log)


@functools.cache
def _has_module_fixture(path: Path) -> bool:
    return path.suffix == ".py" and 'scope="module"' in path.read_text()


@functools.cache
def _cached_plan(stack: str, overrides_json: str):
    plan = runner.run(stack, overrides=json.loads(overrides_json))
    # Kept for the session: out of the cyclic collector's reach (its full
    # collections otherwise walk every cached plan again and again).
    gc.collect()
    gc.freeze()
    return plan


def plan_of(stack: str = "dev", **overrides):
    """The program's registrations for `stack` with overrides (cached per arguments).

    Results are shared between tests: treat them as read-only.
    """
    return _cached_plan(stack, json.dumps(overrides, sort_keys=True))


@pytest.fixture
def dev_plan():
    return plan_of("dev")


@pytest.fixture
def prod_plan():
    return plan_of("prod")


def transitive_dependencies(plan, reg, seen=None) -> set[str]:
    """Every URN `reg` waits for, directly or through other resources."""
    seen = set() if seen is None else seen
    for urn in reg.dependencies:
        if urn not in seen:
            seen.add(urn)
            transitive_dependencies(plan, plan.by_urn(urn), seen)
    return seen
