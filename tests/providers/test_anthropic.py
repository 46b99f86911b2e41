"""The Anthropic adapter against a fake that speaks the Messages API wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from pydantic import TypeAdapter

from passerelle.canonical import ChatRequest
from passerelle.config import ProviderConfig
from passerelle.errors import ErrorKind, UpstreamError
from passerelle.providers.anthropic import AnthropicProvider
from passerelle.providers.base import Target
from passerelle.providers.http import HttpClient
from tests.fakes.anthropic import FakeAnthropic, start_fake_anthropic
from tests.support.pools import until_idle

EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async for server in start_fake_anthropic():
        yield server


@pytest.fixture
async def provider(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    http = HttpClient()
    yield AnthropicProvider("claude", ProviderConfig(type="anthropic", api_key="sk-ant-test", base_url=fake.url), http)
    await http.aclose()


TARGET = Target(deployment="d", model="claude-sonnet-4-5-20250929", timeout=10)


def request(dialect: str = "anthropic", **extra: Any) -> ChatRequest:
    body = {"model": "alias", "max_tokens": 100,
            "system": [{"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}], **extra}
    return ChatRequest(body=body, dialect=dialect, request_id="r", passthrough={"service_tier": "auto"},  # type: ignore[arg-type]
                       passthrough_headers={"anthropic-dangerous-direct-browser-access": "true"},
                       query={"beta": "true"}, anthropic_version="2023-06-01",
                       anthropic_beta=["prompt-caching-2024-07-31", "interleaved-thinking-2025-05-14"])


async def test_complete_forwards_exact_body_and_headers(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    message = await provider.complete(request(), TARGET)
    anthropic.types.Message.model_validate(message)  # the fake answers in the real format
    seen = fake.requests[0]
    assert seen.body == {"model": "claude-sonnet-4-5-20250929", "max_tokens": 100,
                         "system": [{"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}],
                         "messages": [{"role": "user", "content": "hi"}], "service_tier": "auto"}
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"
    assert seen.headers["anthropic-dangerous-direct-browser-access"] == "true"
    assert seen.query == {"beta": "true"}
    assert message["usage"]["cache_read_input_tokens"] == 2000
    assert message["content"][0]["signature"] == "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"


async def test_foreign_fields_dropped_with_warnings(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    req = request("openai")
    await provider.complete(req, TARGET)
    seen = fake.requests[0]
    assert "service_tier" not in seen.body and seen.query == {}
    assert "anthropic-dangerous-direct-browser-access" not in seen.headers
    assert any("service_tier" in w for w in req.warnings) and any("beta" in w for w in req.warnings)


async def test_stream_yields_canonical_events(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    events = [e async for e in provider.stream(request(), TARGET)]
    for event in events:
        EVENT.validate_python(event)
    assert fake.requests[0].body["stream"] is True
    assert [e["type"] for e in events][:2] == ["message_start", "content_block_start"]
    assert "ping" not in [e["type"] for e in events]  # the dialect encoder adds its own
    assert events[-1] == {"type": "message_stop"}
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert [d["type"] for d in deltas] == ["thinking_delta", "signature_delta", "text_delta", "text_delta",
                                           "input_json_delta", "input_json_delta"]


async def test_streams_in_a_row_share_one_connection(fake: FakeAnthropic) -> None:
    http = HttpClient()
    provider = AnthropicProvider("claude", ProviderConfig(type="anthropic", api_key="sk-ant-test", base_url=fake.url),
                                 http)
    try:
        for _ in range(3):
            events = [e async for e in provider.stream(request(), TARGET)]
            assert events[-1] == {"type": "message_stop"}
            await until_idle(http)  # message_stop ends the events; the body's end is read after it
        assert http.pool.opened == 1 and len(fake.requests) == 3
    finally:
        await http.aclose()


async def test_stream_calls_upstream_only_when_iterated(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    stream = provider.stream(request(), TARGET)
    assert fake.requests == []
    await anext(stream)
    assert len(fake.requests) == 1
    await stream.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("status", "kind", "headers", "expected", "retryable", "retry_after"), [
    (429, "rate_limit_error", {"retry-after": "7"}, ErrorKind.RATE_LIMIT, True, 7.0),
    (529, "overloaded_error", {}, ErrorKind.OVERLOADED, True, None),
    (500, "api_error", {}, ErrorKind.BAD_GATEWAY, True, None),
    (400, "invalid_request_error", {}, ErrorKind.INVALID_REQUEST, False, None),
])
async def test_errors_map_to_gateway_errors(provider: AnthropicProvider, fake: FakeAnthropic, status: int,
                                            kind: str, headers: dict[str, str], expected: ErrorKind,
                                            retryable: bool, retry_after: float | None) -> None:
    for call in ("complete", "stream"):
        fake.script.append(("error", status, kind, headers))
        with pytest.raises(UpstreamError) as info:
            if call == "complete":
                await provider.complete(request(), TARGET)
            else:
                await anext(provider.stream(request(), TARGET))
        assert info.value.kind is expected and info.value.retryable is retryable
        assert info.value.retry_after == retry_after and info.value.upstream_status == status
        assert f"scripted {kind}" in info.value.message


async def test_bad_upstream_credentials_are_not_the_callers_fault(fake: FakeAnthropic) -> None:
    http = HttpClient()
    bad = AnthropicProvider("claude", ProviderConfig(type="anthropic", api_key="wrong", base_url=fake.url), http)
    with pytest.raises(UpstreamError) as info:
        await bad.complete(request(), TARGET)
    assert info.value.kind is ErrorKind.BAD_GATEWAY and info.value.status == 502
    await http.aclose()


async def test_mid_stream_error_event(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    fake.script.append(("error_event", "overloaded_error"))
    seen = []
    with pytest.raises(UpstreamError) as info:
        async for event in provider.stream(request(), TARGET):
            seen.append(event["type"])
    assert info.value.kind is ErrorKind.OVERLOADED and seen[0] == "message_start"


async def test_cut_stream_is_an_error(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    fake.script.append(("cut",))
    with pytest.raises(UpstreamError, match="ended before message_stop"):
        async for _ in provider.stream(request(), TARGET):
            pass


async def test_count_tokens(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    assert await provider.count_tokens(request(), TARGET) == 42
    seen = fake.requests[0]
    assert seen.path == "/v1/messages/count_tokens" and "max_tokens" not in seen.body
    assert seen.body["model"] == "claude-sonnet-4-5-20250929"
