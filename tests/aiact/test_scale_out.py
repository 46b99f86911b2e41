"""Two gateway processes on one PostgreSQL and one Redis: suspending a purpose (or a route) stops its
traffic on both within one second, and resuming lets it through again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from passerelle.aiact.registry import AiActRegistry
from passerelle.aiact.store_postgres import PostgresAiActStore
from tests.aiact.conftest import credit_scoring
from tests.support.backends import scale_out
from tests.support.processes import Server, start_gateway

KEY = "sk-aiact-e2e"
CONFIG = """
server: {{log_level: warning}}
providers:
  sim: {{type: simulator, simulator: {{mode: fixed, output_tokens: 5}}}}
models:
  claude-test: {{deployments: [{{provider: sim}}]}}
keys:
  - {{name: app, key: {key}}}
aiact: {{keys: {{app: credit-scoring}}}}
metering: {{prices: [{{provider: simulator, model: claude-test, input: "1", output: "1"}}]}}
{store}
"""
BODY = {"model": "claude-test", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


async def _status(client: httpx.AsyncClient, server: Server) -> tuple[int, str]:
    r = await client.post(server.url + "/v1/messages", json=BODY, headers={"x-api-key": KEY})
    return r.status_code, r.text


async def _until(client: httpx.AsyncClient, servers: list[Server], status: int, deadline_s: float) -> float:
    """Seconds until every server answers ``status``; fails after ``deadline_s``."""
    start = time.perf_counter()
    pending = list(servers)
    while pending:
        results = await asyncio.gather(*(_status(client, s) for s in pending))
        pending = [s for s, (code, _) in zip(pending, results, strict=True) if code != status]
        elapsed = time.perf_counter() - start
        if pending and elapsed > deadline_s:
            raise AssertionError(f"{len(pending)} instance(s) still answer {results} after {elapsed:.2f}s")
        await asyncio.sleep(0.02)
    return time.perf_counter() - start


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[list[Server], AiActRegistry]]:
    async with scale_out() as backend:
        store = await PostgresAiActStore.connect(backend.dsn, backend.schema)
        registry = AiActRegistry(store)
        await registry.put_purpose(credit_scoring(), "alice")
        config = CONFIG.format(key=KEY, store=backend.yaml())
        servers = []
        try:
            for name in ("a", "b"):
                (tmp_path / name).mkdir()
                servers.append(await asyncio.to_thread(start_gateway, tmp_path / name, config))
            yield servers, registry
        finally:
            for server in servers:
                await asyncio.to_thread(server.stop)
            await store.aclose()


async def test_suspension_reaches_every_instance_within_one_second(
        cluster: tuple[list[Server], AiActRegistry]) -> None:
    servers, registry = cluster
    async with httpx.AsyncClient(timeout=10) as client:
        await _until(client, servers, 200, 10.0)
        await registry.suspend("purpose", "credit-scoring", "bias under investigation", "ops")
        assert await _until(client, servers, 403, 1.0) < 1.0
        code, text = await _status(client, servers[1])
        assert code == 403 and "purpose 'credit-scoring' is suspended" in text and "bias under" in text
        await registry.resume("purpose", "credit-scoring", "ops")
        assert await _until(client, servers, 200, 1.0) < 1.0
        await registry.suspend("route", "messages", "incident", "ops")
        assert await _until(client, servers, 403, 1.0) < 1.0
        assert "the messages route is suspended" in (await _status(client, servers[0]))[1]
