"""The simulator's HTTP surface: Anthropic's token counting, through the official SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx
import pytest

from passerelle.config.schema import SimulatorConfig
from passerelle.simulator.server import SimulatorServer
from tests.support.servers import AppServer


@pytest.fixture
async def url() -> AsyncIterator[str]:
    server = AppServer()
    yield await server.start(SimulatorServer(SimulatorConfig(mode="echo")).app())
    await server.close()


async def test_the_count_is_the_input_a_messages_call_reports(url: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=url, api_key="sk-sim", max_retries=0)
    messages: list[anthropic.types.MessageParam] = [{"role": "user",
                                                     "content": "Count these seven words, please, now."}]
    system = "You are terse."
    counted = await client.messages.count_tokens(model="simulator", system=system, messages=messages)
    answer = await client.messages.create(model="simulator", max_tokens=20, system=system, messages=messages)
    assert counted.input_tokens == answer.usage.input_tokens > 7
    await client.close()


@pytest.mark.parametrize("body", [b"{not json", b'{"model": "simulator"}', b'{"messages": [{"role": "user"}]}',
                                  b'{"messages": [{"role": "user", "content": 3}]}'])
async def test_a_malformed_count_request_gets_an_anthropic_error(url: str, body: bytes) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(url + "/v1/messages/count_tokens", content=body,
                                   headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
