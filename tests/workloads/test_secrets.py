"""The Hugging Face token exists only inside the Kubernetes Secret."""

from __future__ import annotations

import json

import pytest

from infra.config import ConfigError
from infra.values import reveal
from plan import report, runner
from tests.conftest import HF_TOKEN_MARKER


@pytest.fixture(scope="module")
def with_token():
    return runner.run("dev", secrets={"hfToken": HF_TOKEN_MARKER})


def test_the_token_is_in_secret_manager_and_marked_secret(with_token):
    version = with_token.one("gcp:secretmanager/secretVersion:SecretVersion")
    assert repr(version.inputs["secretData"]) == "[secret]"
    assert reveal(version.inputs["secretData"]) == HF_TOKEN_MARKER
    secret = with_token.one("gcp:secretmanager/secret:Secret").inputs
    assert secret["secretId"] == "dsr1-hf-token"
    # Only the staging build's account may read it.
    (grant,) = with_token.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    assert grant.inputs["role"] == "roles/secretmanager.secretAccessor"
    assert grant.inputs["member"] == (
        "serviceAccount:dsr1-weights-stager@my-a4-project.iam.gserviceaccount.com"
    )


def test_no_other_input_or_output_carries_the_token(with_token):
    for reg in with_token.registrations:
        if reg.type == "gcp:secretmanager/secretVersion:SecretVersion":
            continue
        text = json.dumps(reveal(reg.inputs), default=str)
        assert HF_TOKEN_MARKER not in text, f"{reg.type} {reg.name} carries the token"
    assert HF_TOKEN_MARKER not in json.dumps(reveal(with_token.outputs), default=str)
    assert all(HF_TOKEN_MARKER not in message for _, message in with_token.messages)


def test_the_staging_build_names_the_secret_version_not_the_token(with_token):
    create = with_token.one("command:local:Command", "stage-weights-1").inputs["create"]
    assert "_HF_TOKEN_SECRET=projects/my-a4-project/secrets/dsr1-hf-token/versions/latest" in create
    assert HF_TOKEN_MARKER not in create
    # The build waits for the version and the grant that lets it read it.
    staging = with_token.one("command:local:Command", "stage-weights-1")
    version = with_token.one("gcp:secretmanager/secretVersion:SecretVersion").urn
    grant = with_token.one("gcp:secretmanager/secretIamMember:SecretIamMember").urn
    assert version in staging.dependencies and grant in staging.dependencies


def test_the_plan_printout_json_and_manifests_never_show_it(with_token, tmp_path):
    assert HF_TOKEN_MARKER not in report.render_text(with_token)
    assert HF_TOKEN_MARKER not in json.dumps(report.to_json(with_token))
    report.write(with_token, tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert HF_TOKEN_MARKER not in path.read_text(), path


def test_without_a_token_there_is_no_secret_and_the_build_names_none(dev_plan):
    assert dev_plan.of_type("gcp:secretmanager/secret:Secret") == []
    assert dev_plan.of_type("kubernetes:core/v1:Secret") == []
    create = dev_plan.one("command:local:Command", "stage-weights-1").inputs["create"]
    assert "_HF_TOKEN_SECRET=,_SHARD=0," in create


def test_a_token_in_plain_config_is_refused_before_anything_is_created():
    from plan.mocks import CapturingMonitor, PlanMocks

    monitor = CapturingMonitor(PlanMocks())
    with pytest.raises(ConfigError) as caught:
        runner.run("dev", overrides={"hfToken": HF_TOKEN_MARKER}, monitor=monitor)
    assert caught.value.problems[0].startswith("hfToken: set in plain text")
    assert HF_TOKEN_MARKER not in str(caught.value)
    assert monitor.registrations == []
