from __future__ import annotations

from pathlib import Path

import pytest

from passerelle.config import ConfigError, load_config

GOOD = """
server: {port: 4100}
providers:
  claude: {type: anthropic, api_key: "${TEST_KEY}"}
  local: {type: openai, base_url: "http://127.0.0.1:11434/v1"}
models:
  sonnet:
    deployments:
      - {provider: claude, model: claude-sonnet-4-5, labels: ["region:eu"]}
      - {provider: local, model: llama3, priority: 1}
keys:
  - {name: app, key: "${APP_KEY:-sk-default}"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_env_substitution_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={"TEST_KEY": "secret"})
    assert config.providers["claude"].api_key == "secret"
    assert config.keys[0].key == "sk-default"
    assert config.models["sonnet"].deployments[0].labels == ["region:eu"]
    assert config.server.port == 4100


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace("port: 4100", "port: many"), "Expected `int`, got `str` - at `$.server.port`"),
    (GOOD.replace("priority: 1", "priority: 1, colour: red"), "Object contains unknown field `colour`"),
    (GOOD.replace("provider: local", "provider: nowhere"), "models.sonnet.deployments[1].provider: unknown"),
    (GOOD.replace("type: openai", "type: gopher"), "$.providers.local.type"),
    ("server: [1, 2", "is not valid YAML"),
])
def test_invalid_config_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"TEST_KEY": "k"})
    assert message in str(info.value)


def test_missing_env_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$\{TEST_KEY\} is not set"):
        load_config(write(tmp_path, GOOD), env={})


def test_no_config_serves_everything_with_simulator() -> None:
    config = load_config(None, env={})
    assert {p.type for p in config.providers.values()} == {"simulator"}
    assert "*" in config.models and "claude-sonnet-4-5" in config.models


def test_environment_credentials_enable_providers() -> None:
    config = load_config(None, env={"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o", "AWS_ACCESS_KEY_ID": "x",
                                    "AWS_REGION": "eu-west-3"})
    assert set(config.providers) == {"anthropic", "openai", "bedrock"}
    claude = config.models["claude-*"].deployments
    assert [d.provider for d in claude] == ["anthropic", "bedrock"]
    assert claude[1].model == "anthropic.{model}" and config.providers["bedrock"].region == "eu-west-3"
    assert "gpt-*" in config.models
