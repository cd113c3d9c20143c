"""Pulumi.yaml's config schema and the README's settings table mirror infra/config.py."""

from __future__ import annotations

import yaml

from infra import config
from plan import runner, schema


def test_pulumi_yaml_config_block_is_generated_from_the_config_module():
    declared = yaml.safe_load(schema.PULUMI_YAML.read_text())["config"]
    assert declared == schema.config_block(), "run: python -m plan.schema --write"


def test_every_setting_is_declared_with_type_description_and_default():
    declared = yaml.safe_load(schema.PULUMI_YAML.read_text())["config"]
    assert "hfToken" not in declared  # secrets: see plan/schema.py
    for f in config.config_fields():
        if f.metadata.get("secret"):
            continue
        entry = declared[config.config_key(f)]

        assert entry["type"] in ("string", "integer", "boolean", "array")
        assert entry["description"]
        assert ("default" in entry) is not config.is_required(f)


def test_cli_defaults_and_program_defaults_give_the_same_config():
    """The CLI applies Pulumi.yaml defaults; mocks do not. Both must agree."""
    declared = yaml.safe_load(schema.PULUMI_YAML.read_text())["config"]
    for stack in ("dev", "prod"):
        values, _ = runner.read_stack_file(stack)
        own = {k.split(":", 1)[1]: v for k, v in values.items()}
        with_cli_defaults = {k: e["default"] for k, e in declared.items() if "default" in e} | own
        assert config.parse(with_cli_defaults) == config.parse(own)


def test_readme_settings_table_is_current():
    readme = schema.README.read_text()
    assert schema.render_readme(readme) == readme, "run: python -m plan.schema --write"
    for f in config.config_fields():
        assert f"| `{config.config_key(f)}` |" in readme


def test_schema_check_fails_when_pulumi_yaml_is_stale(tmp_path, monkeypatch):
    stale = tmp_path / "Pulumi.yaml"
    document = yaml.safe_load(schema.PULUMI_YAML.read_text())
    document["config"].pop("nodeCount")
    stale.write_text(yaml.safe_dump(document))
    readme = tmp_path / "README.md"
    readme.write_text(schema.README.read_text())
    monkeypatch.setattr(schema, "PULUMI_YAML", stale)
    monkeypatch.setattr(schema, "README", readme)
    assert schema.main(["--check"]) == 1
    assert schema.main(["--write"]) == 0
    assert schema.main(["--check"]) == 0
