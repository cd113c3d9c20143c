"""The Hugging Face token exists only inside the Kubernetes Secret."""

from __future__ import annotations

import json

import pytest

from infra.config import ConfigError
from plan import report, runner
from tests.conftest import HF_TOKEN_MARKER, reveal


@pytest.fixture(scope="module")
def with_token():
    return runner.run("dev", secrets={"hfToken": HF_TOKEN_MARKER})


def test_the_token_is_in_the_secret_and_marked_secret(with_token):
    secret = with_token.one("kubernetes:core/v1:Secret")
    assert repr(secret.inputs["stringData"]) == "[secret]"
    assert reveal(secret.inputs["stringData"]) == {"hf_api_token": HF_TOKEN_MARKER}


def test_no_other_input_or_output_carries_the_token(with_token):
    for reg in with_token.registrations:
        if reg.type == "kubernetes:core/v1:Secret":
            continue
        text = json.dumps(reveal(reg.inputs), default=str)
        assert HF_TOKEN_MARKER not in text, f"{reg.type} {reg.name} carries the token"
    assert HF_TOKEN_MARKER not in json.dumps(reveal(with_token.outputs), default=str)
    assert all(HF_TOKEN_MARKER not in message for _, message in with_token.messages)


def test_pods_read_the_token_by_reference(with_token):
    job = with_token.one("kubernetes:batch/v1:Job", "fetch-weights").inputs
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "hf-secret",
        "key": "hf_api_token",
    }
    assert "value" not in env["HF_TOKEN"]


def test_the_plan_printout_json_and_manifests_never_show_it(with_token, tmp_path):
    assert HF_TOKEN_MARKER not in report.render_text(with_token)
    assert HF_TOKEN_MARKER not in json.dumps(report.to_json(with_token))
    report.write(with_token, tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert HF_TOKEN_MARKER not in path.read_text(), path
    secret_manifest = next((tmp_path / "manifests").glob("Secret_*.yaml")).read_text()
    assert "[secret]" in secret_manifest


def test_without_a_token_there_is_no_secret_and_no_env(dev_plan):
    assert dev_plan.of_type("kubernetes:core/v1:Secret") == []
    job = dev_plan.one("kubernetes:batch/v1:Job", "fetch-weights").inputs
    names = [e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert "HF_TOKEN" not in names


def test_a_token_in_plain_config_is_refused_before_anything_is_created():
    from plan.mocks import CapturingMonitor, PlanMocks

    monitor = CapturingMonitor(PlanMocks())
    with pytest.raises(ConfigError) as caught:
        runner.run("dev", overrides={"hfToken": HF_TOKEN_MARKER}, monitor=monitor)
    assert caught.value.problems[0].startswith("hfToken: set in plain text")
    assert HF_TOKEN_MARKER not in str(caught.value)
    assert monitor.registrations == []
