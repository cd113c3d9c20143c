"""Bad stack configurations, as the Pulumi CLI hands them to the program.

Every rule of `infra/config.py` has its row in test_config.py's table, checked
where the program checks it (`config.parse`). Here: values in the CLI's own
form (every value a string, lists as JSON) through the same parser, then a
handful of whole-program runs that prove the refusal comes before any resource
is registered, with one message naming the key, and never the secret.
"""

from __future__ import annotations

import pytest

from infra import config
from infra.config import ConfigError
from plan import runner
from plan.mocks import CapturingMonitor, PlanMocks, PlatformFacts, Reservation
from tests.conftest import HF_TOKEN_MARKER
from tests.test_config import BASE

CLI_CASES = [
    # (config changes, key named)
    ({"project": None, "region": None}, "project"),
    ({"region": None}, "region"),
    ({"hfToken": HF_TOKEN_MARKER}, "hfToken"),
    ({"nodeCount": "1.5"}, "nodeCount"),
    ({"benchmarkEnabled": "1"}, "benchmarkEnabled"),
    ({"podNetworkNames": '{"a": 1}'}, "podNetworkNames"),
    ({"masterAuthorizedCidrs": "not json"}, "masterAuthorizedCidrs"),
    ({"machinetype": "a4-highgpu-8g"}, "machinetype"),
    (
        {"imageBuilder": "prebuilt", "prebuiltImage": "us-docker.pkg.dev/p/r/i@sha256:abc"},
        "prebuiltImage",
    ),
    ({"model": "nvfp4", "tpSize": "2", "ppSize": "2"}, "tpSize"),
    ({"servingOverrides": "pipeline_parallel_size: 2"}, "servingOverrides"),
    ({"weightsMinutes": "5"}, "weightsMinutes"),
    ({"serviceType": "LoadBalancer"}, "serviceType"),
]


def cli_values(changes: dict) -> dict[str, str]:
    raw = {**BASE, **changes}
    return {k: v for k, v in raw.items() if v is not None}


@pytest.mark.parametrize(("changes", "key"), CLI_CASES, ids=[c[1] for c in CLI_CASES])
def test_bad_values_as_the_cli_passes_them_name_their_key(changes, key):
    with pytest.raises(ConfigError) as caught:
        # No key is held encrypted: a token in plain config is refused.
        config.parse(cli_values(changes), secret_keys=frozenset())
    problems = caught.value.problems
    assert any(p.startswith(f"{key}:") for p in problems), problems
    assert HF_TOKEN_MARKER not in str(caught.value)


# Whole-program runs: one per kind of problem (a rule, a type, a missing and
# an unknown key, a plain-text secret, several at once).
PROGRAM_CASES = [
    ({"zone": "europe-west4-a"}, ["zone"]),
    ({"nodeCount": "two"}, ["nodeCount"]),
    ({"project": None}, ["project"]),
    ({"machinetype": "a4-highgpu-8g"}, ["machinetype"]),
    ({"hfToken": HF_TOKEN_MARKER}, ["hfToken"]),
    ({"reservationName": None, "clusterName": "x" * 41}, ["clusterName", "reservationName"]),
]


@pytest.mark.parametrize(("changes", "keys"), PROGRAM_CASES, ids=[c[1][0] for c in PROGRAM_CASES])
def test_the_program_refuses_before_registering_any_resource(changes, keys):
    monitor = CapturingMonitor(PlanMocks())
    with pytest.raises(ConfigError) as caught:
        runner.run("dev", overrides=cli_values(changes), use_stack_file=False, monitor=monitor)
    assert monitor.registrations == [], "resources were registered before the config was refused"
    assert sorted(p.split(":", 1)[0] for p in caught.value.problems) == keys
    assert HF_TOKEN_MARKER not in str(caught.value)


def test_a_minimal_config_plans_with_every_default():
    """Five keys are all a stack needs; the refusals above come from their change."""
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
    node = result.one("gcp:container/nodePool:NodePool", "gpu").inputs["nodeConfig"]
    assert node["machineType"] == "a4-highgpu-8g"
    assert node["reservationAffinity"]["values"] == ["projects/my-a4-project/reservations/a4-res"]
