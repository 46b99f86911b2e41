"""The gateway in-process with the official SDKs as clients (httpx or httpx2 ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai

from passerelle.aiact.registry import AiActRegistry
from passerelle.config import load_config
from passerelle.server.app import App, create_app
from passerelle.server.gateway import Gateway
from tests.pipeline.test_compliance import sdk_http

KEY, OTHER_KEY, ADMIN = "sk-aiact-app", "sk-aiact-other", "sk-aiact-admin"
ADMIN_SHA = __import__("hashlib").sha256(ADMIN.encode()).hexdigest()

CONFIG = """
server: {{log_level: error}}
providers:
  sim: {{type: simulator, simulator: {{mode: echo}}}}
models:
  claude-test: {{deployments: [{{provider: sim, model: claude-sonnet-4-5}}]}}
  gpt-test: {{deployments: [{{provider: sim, model: gpt-4o}}]}}
  other-model: {{deployments: [{{provider: sim, model: other-upstream}}]}}
keys:
  - {{name: app, key: {key}}}
  - {{name: other, key: {other}}}
metering:
  prices:
    - {{provider: simulator, model: "*", input: "3", output: "15"}}
{extra}
"""


@dataclass
class Harness:
    app: App
    http: httpx.AsyncClient

    @property
    def gw(self) -> Gateway:
        assert self.app.gateway is not None
        return self.app.gateway

    @property
    def registry(self) -> AiActRegistry:
        return AiActRegistry(self.gw.aiact.store, self.gw.audit)

    def anthropic(self, key: str = KEY) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url="http://gateway", api_key=key, max_retries=0,
                                        http_client=sdk_http(anthropic, self.app))

    def openai(self, key: str = KEY) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url="http://gateway/v1", api_key=key, max_retries=0,
                                  http_client=sdk_http(openai, self.app))


def write_config(tmp_path: Path, extra: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "passerelle.yaml"
    path.write_text(CONFIG.format(key=KEY, other=OTHER_KEY, extra=extra))
    return path


@asynccontextmanager
async def harness(tmp_path: Path, extra: str = "") -> AsyncIterator[Harness]:
    path = write_config(tmp_path, extra)
    app = create_app(config=load_config(path, env={}), data_dir=tmp_path / "data", admin_key_sha256=ADMIN_SHA)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30)
    assert (await http.get("/health")).status_code == 200
    try:
        yield Harness(app, http)
    finally:
        await http.aclose()
        if app.gateway is not None:
            await app.gateway.aclose()
