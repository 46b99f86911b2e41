from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Server, start_gateway, start_simulator

APP_KEY = "sk-app-e2e"

CONFIG = """
providers:
  claude-upstream: {{type: anthropic, api_key: sk-upstream, base_url: "{sim}"}}
  openai-upstream: {{type: openai, api_key: sk-upstream, base_url: "{sim}/v1"}}
models:
  claude-test:
    deployments: [{{provider: claude-upstream, model: claude-sonnet-4-5}}]
  gpt-test:
    deployments: [{{provider: openai-upstream, model: gpt-4o}}]
keys:
  - {{name: app, key: {key}}}
  - {{name: limited, key: sk-limited, models: [gpt-test]}}
"""


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_simulator(tmp_path_factory.mktemp("sim"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, simulator: Server) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("gw")
    server = start_gateway(tmp, CONFIG.format(sim=simulator.url, key=APP_KEY))
    yield server
    server.stop()
