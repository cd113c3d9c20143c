"""Config messages that lead the way: the likely fix, in the user's own spelling.

Each test names the message a user got before (issue 12) and checks the one
they get now.
"""

from __future__ import annotations

import pytest

from infra import config, rules
from infra.config import ConfigError
from plan import runner
from tests.test_config import BASE, INVALID, make, problems_of


def problem_for(key: str, **changes) -> str:
    found = [p for p in problems_of(**changes) if p.startswith(f"{key}:")]
    assert len(found) == 1, problems_of(**changes)
    return found[0]


# --- misspelt and misplaced keys -------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("nodeCont", "nodeCount"), ("benchmarkEnabeld", "benchmarkEnabled"), ("zoen", "zone")],
)
def test_a_misspelt_key_gets_a_suggestion(typo, meant):
    # Before: "nodeCont: unknown setting; see the settings table in README.md"
    assert f"unknown setting; did you mean {meant}?" in problem_for(typo, **{typo: "2"})


def test_an_unrelated_key_gets_no_guess():
    message = problem_for("colour", colour="blue")
    assert "did you mean" not in message
    assert "README.md" in message


def test_the_project_prefix_is_named_as_the_problem():
    # Before: "a4-deepseek:nodeCount: unknown setting; see the settings table in README.md"
    with pytest.raises(ConfigError) as caught:
        config.parse({**BASE, "a4-deepseek:nodeCount": "2"})
    assert caught.value.problems == [
        "a4-deepseek:nodeCount: not a setting; write it without the `a4-deepseek:` prefix, "
        "as nodeCount"
    ]


def test_the_plan_takes_keys_with_their_namespace_as_pulumi_config_set_does():
    result = runner.run("dev", overrides={"a4-deepseek:nodeCount": "2"})
    assert result.one("gcp:container/nodePool:NodePool", "gpu").inputs["nodeCount"] == 2


def test_other_namespaces_keys_are_named_as_ignored():
    # Before: gcp:project and gcp:region were silently ignored.
    result = runner.run("dev", overrides={"gcp:project": "other-project", "gcp:region": "x"})
    assert (
        "gcp:project: ignored, this program does not read it; set project instead "
        "(pulumi config set project VALUE), then pulumi config rm gcp:project"
    ) in result.warnings
    assert any(w.startswith("gcp:region: ignored") for w in result.warnings)
    provider = result.one("pulumi:providers:gcp", "gcp")
    assert provider.inputs["project"] == "my-a4-project"


def test_keys_the_default_providers_read_are_not_called_ignored():
    # imageBuilder docker builds with pulumi-docker's default provider (docker:host).
    assert config.ignored_key_warnings(["docker:host", "a4-deepseek:zone"]) == []
    assert config.ignored_key_warnings(["kubernetes:context"]) == [
        "kubernetes:context: ignored, this program does not read it; the program configures "
        "its kubernetes provider itself; pulumi config rm kubernetes:context"
    ]


def test_a_misspelt_namespace_is_named():
    assert config.ignored_key_warnings(["a4deepseek:nodeCount", "pulumi:template"]) == [
        "a4deepseek:nodeCount: ignored, this program does not read it; did you mean "
        "a4-deepseek:nodeCount? (a4deepseek is not this project)"
    ]


def test_a_missing_setting_is_reported_with_the_ignored_key_that_meant_it():
    with pytest.raises(ConfigError) as caught:
        runner.run("dev", overrides={"project": None, "gcp:project": "my-a4-project"})
    problems = caught.value.problems
    assert problems[0].startswith("project: required, not set")
    assert problems[1].startswith("gcp:project: ignored, this program does not read it")


# --- values as YAML/JSON, with examples --------------------------------------------


def test_values_are_spelt_as_yaml_and_json_not_python():
    # Before: "clusterDeletionProtection: False is not allowed", "['gvnic-1'] is not allowed"
    assert problem_for(
        "clusterDeletionProtection", production="true", clusterDeletionProtection="false"
    ).startswith("clusterDeletionProtection: false is not allowed")
    assert problem_for("podNetworkNames", podNetworkNames='["gvnic-1"]').startswith(
        'podNetworkNames: ["gvnic-1"] is not allowed'
    )
    assert problem_for("compactPlacement", compactPlacement="yes") == (
        'compactPlacement: expected true or false, got "yes"'
    )


def test_no_message_spells_a_value_the_python_way():
    for changes, _, _ in INVALID:
        for problem in problems_of(**changes):
            for python in ("True", "False", "None", "['", "('", "'"):
                assert python not in problem.split(": ", 1)[1].split(";")[0], problem


def test_a_single_cidr_where_a_list_is_expected_gets_an_example():
    # Before: "masterAuthorizedCidrs: expected a list of strings, got '1.2.3.4/32'"
    assert problem_for("masterAuthorizedCidrs", masterAuthorizedCidrs="1.2.3.4/32") == (
        'masterAuthorizedCidrs: expected a list of strings, got "1.2.3.4/32"; write a JSON '
        'list, like ["1.2.3.4/32"], or set one item: '
        "pulumi config set --path 'masterAuthorizedCidrs[0]' 1.2.3.4/32"
    )


def test_a_number_type_error_gets_an_example():
    assert problem_for("nodeCount", nodeCount="two") == (
        'nodeCount: expected an integer, got "two"; write a whole number, like 1'
    )


def test_an_ipv6_authorized_cidr_points_to_curl_dash_4():
    message = problem_for("masterAuthorizedCidrs", masterAuthorizedCidrs='["2001:db8::7/128"]')
    assert message.startswith('masterAuthorizedCidrs: "2001:db8::7/128" is not allowed')
    assert '"$(curl -4 -s ifconfig.me)/32"' in message


def test_an_address_without_prefix_gets_its_slash_32():
    message = problem_for("masterAuthorizedCidrs", masterAuthorizedCidrs='["1.2.3.4"]')
    assert "like 1.2.3.4/32 for that one address" in message


# --- no cascades ---------------------------------------------------------------------


def test_a_bad_project_is_not_blamed_again_on_the_derived_bucket_name():
    # Before: project: ... and bucketName: 'My_Project-dsr1-data' is not allowed ...
    assert [p.split(":")[0] for p in problems_of(project="My_Project")] == ["project"]


def test_a_bad_bucket_name_of_its_own_is_still_reported():
    keys = [p.split(":")[0] for p in problems_of(project="My_Project", bucketName="ab")]
    assert keys == ["project", "bucketName"]


# --- placeholders and missing stacks --------------------------------------------------


@pytest.mark.parametrize("cidr", ["203.0.113.7/32", "198.51.100.0/24", "192.0.2.10/32"])
def test_a_documentation_range_authorized_cidr_is_a_warning(cidr):
    # Before: the dev stack's placeholder 203.0.113.7/32 passed silently.
    warnings = rules.warnings(make(masterAuthorizedCidrs=f'["{cidr}"]'))
    assert len(warnings) == 1
    assert warnings[0].startswith(f'masterAuthorizedCidrs: "{cidr}" is in ')
    assert "(RFC 5737)" in warnings[0]
    assert (
        "pulumi config set --path 'masterAuthorizedCidrs[0]' \"$(curl -4 -s ifconfig.me)/32\""
        in (warnings[0])
    )


@pytest.mark.parametrize("cidr", ["34.120.0.7/32", "203.0.112.0/24", "198.51.99.0/24"])
def test_a_real_address_is_no_placeholder(cidr):
    assert rules.warnings(make(masterAuthorizedCidrs=f'["{cidr}"]')) == []


def test_the_dev_stacks_placeholder_cidr_warns_in_its_plan():
    assert any("203.0.113.0/24" in w for w in runner.run("dev").warnings)


def test_a_missing_stack_file_says_how_to_make_one():
    # Before: "no stack file Pulumi.staging.yaml; stacks here: dev, prod"
    with pytest.raises(FileNotFoundError) as caught:
        runner.read_stack_file("staging")
    message = str(caught.value)
    assert "`pulumi stack init staging`" in message
    assert "cp Pulumi.dev.yaml Pulumi.staging.yaml" in message
