"""A caller that hangs up on a stream stops the upstream: before its first event and in the middle of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from passerelle.config import load_config
from passerelle.observability import metrics
from passerelle.pipeline.auth import digest
from passerelle.server.app import App, create_app
from tests.server.conftest import ADMIN

BODY = orjson.dumps({"model": "claude-sonnet-4-5", "max_tokens": 400, "stream": True,
                     "messages": [{"role": "user", "content": "hello"}]})


@pytest.fixture
async def slow_app(tmp_path: Path) -> AsyncIterator[App]:
    config = load_config(None, env={})
    config.server.log_level = "error"
    simulator = config.providers["simulator"].simulator
    simulator.mode, simulator.output_tokens, simulator.ttft_ms, simulator.tokens_per_second = "fixed", 300, 150, 200
    application = create_app(config=config, data_dir=tmp_path, admin_key_sha256=digest(ADMIN))
    yield application
    if application.gateway is not None:
        await application.gateway.aclose()


async def _call(app: App, hang_up_after: float) -> list[MutableMapping[str, Any]]:
    """One streamed request whose caller disconnects ``hang_up_after`` seconds after sending it."""
    sent: list[MutableMapping[str, Any]] = []
    body_given = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal body_given
        if not body_given:
            body_given = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.sleep(hang_up_after)
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "query_string": b"",
             "headers": [(b"x-api-key", ADMIN.encode()), (b"content-length", str(len(BODY)).encode()),
                         (b"anthropic-version", b"2023-06-01")]}
    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


def _deltas(sent: list[MutableMapping[str, Any]]) -> int:
    return sum(bytes(m.get("body", b"")).count(b"content_block_delta") for m in sent
               if m["type"] == "http.response.body")


def _hang_ups() -> float:
    text = metrics.render()[0].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("passerelle_requests_total{") and 'status="499"' in line
               and 'route="messages"' in line)


async def test_hang_up_while_the_upstream_thinks_sends_nothing(slow_app: App) -> None:
    before = _hang_ups()
    sent = await _call(slow_app, hang_up_after=0.02)  # the upstream's first token comes after 150 ms
    assert sent == []  # not even the response head: nobody is there to read it
    assert _hang_ups() == before + 1


async def test_hang_up_mid_stream_stops_the_upstream(slow_app: App) -> None:
    before = _hang_ups()
    sent = await _call(slow_app, hang_up_after=0.3)  # about 30 of the 300 tokens (1.65 s in all) by then
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert 0 < _deltas(sent) < 150  # stopped long before the 300th token
    assert not any(m.get("more_body") is False for m in sent)  # no clean end written to a gone caller
    assert _hang_ups() == before + 1
