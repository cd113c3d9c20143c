"""Bad stack configurations, run through the whole program.

Every case of the rule table in test_config.py, plus program-level ones, is
given to `__main__.py` as stack config. The program must refuse it with a
ConfigError that names the key, before registering a single resource.
"""

from __future__ import annotations

import pytest

from infra.config import ConfigError
from plan import runner
from plan.mocks import CapturingMonitor, PlanMocks, PlatformFacts, Reservation
from tests.conftest import HF_TOKEN_MARKER
from tests.test_config import BASE, INVALID

PROGRAM_CASES = [
    # (config changes, secret config, key named)
    ({"project": None, "region": None}, {}, "project"),
    ({"region": None}, {}, "region"),
    ({"hfToken": HF_TOKEN_MARKER}, {}, "hfToken"),
    ({"nodeCount": "1.5"}, {}, "nodeCount"),
    ({"benchmarkEnabled": "1"}, {}, "benchmarkEnabled"),
    ({"podNetworkNames": '{"a": 1}'}, {}, "podNetworkNames"),
    ({"masterAuthorizedCidrs": "not json"}, {}, "masterAuthorizedCidrs"),
    ({"machinetype": "a4-highgpu-8g"}, {}, "machinetype"),
    (
        {"imageBuilder": "prebuilt", "prebuiltImage": "us-docker.pkg.dev/p/r/i@sha256:abc"},
        {},
        "prebuiltImage",
    ),
    ({"model": "nvfp4", "tpSize": "2", "ppSize": "2"}, {}, "tpSize"),
    ({"servingOverrides": "pipeline_parallel_size: 2"}, {}, "servingOverrides"),
    ({"weightsMinutes": "5"}, {}, "weightsMinutes"),
    ({"serviceType": "LoadBalancer"}, {}, "serviceType"),
]


def refuse(changes: dict, secrets: dict | None = None) -> list[str]:
    raw = {**BASE, **changes}
    overrides = {k: v for k, v in raw.items() if v is not None}
    monitor = CapturingMonitor(PlanMocks())
    with pytest.raises(ConfigError) as caught:
        runner.run(
            "dev", overrides=overrides, secrets=secrets, use_stack_file=False, monitor=monitor
        )
    assert monitor.registrations == [], "resources were registered before the config was refused"
    return caught.value.problems


@pytest.mark.parametrize(
    ("changes", "key", "words"), INVALID, ids=[f"{c[1]}-{i}" for i, c in enumerate(INVALID)]
)
def test_the_program_refuses_every_rule_violation_before_creating_anything(changes, key, words):
    problems = refuse(changes)
    assert any(p.startswith(f"{key}:") and words in p for p in problems), problems


@pytest.mark.parametrize(
    ("changes", "secrets", "key"), PROGRAM_CASES, ids=[c[2] for c in PROGRAM_CASES]
)
def test_the_program_refuses_bad_values_as_the_cli_passes_them(changes, secrets, key):
    problems = refuse(changes, secrets)
    assert any(p.startswith(f"{key}:") for p in problems), problems
    assert all(HF_TOKEN_MARKER not in p for p in problems)


def test_the_suite_is_large_enough():
    assert len(INVALID) + len(PROGRAM_CASES) >= 30


def test_a_valid_base_config_is_accepted_by_the_program():
    """The cases above fail because of their change, not because of the base."""
    # A project where the base config's reservation exists (preflight checks it).
    facts = PlatformFacts()
    facts.reservations[("my-a4-project", "a4-res")] = Reservation(
        "a4-highgpu-8g", 1, "us-central1-b"
    )
    result = runner.run(
        "dev",
        overrides=BASE,
        use_stack_file=False,
        monitor=CapturingMonitor(PlanMocks(facts=facts)),
    )
    assert result.one("gcp:container/nodePool:NodePool", "gpu")
