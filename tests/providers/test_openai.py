"""OpenAIProvider against a fake OpenAI server, and the fake itself against the openai SDK.

The first tests prove the fake's wire format (JSON, SSE, errors) with the real openai.AsyncOpenAI
client; the fake also validates every request body against the SDK's request types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec
import openai
import pytest
from yarl import URL

from passerelle.canonical import ChatRequest, StreamEvent
from passerelle.config import ProviderConfig
from passerelle.dialects.openai import chat_request_from_openai
from passerelle.errors import ErrorKind, UpstreamError
from passerelle.providers.base import Target
from passerelle.providers.http import HttpClient, UpstreamResponse
from passerelle.providers.openai import AZURE_API_VERSION, OpenAIProvider
from tests.fakes.openai import (
    FakeOpenAI,
    Fault,
    Stream,
    assemble_events,
    completion,
    stream_chunks,
    tool_call,
    validate_message,
)
from tests.support.pools import until_idle

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PARALLEL = completion(None, tool_calls=[tool_call("call_p", "get_weather", '{"city":"Paris"}'),
                                        tool_call("call_r", "get_weather", '{"city":"Rome"}')],
                      finish_reason="tool_calls", prompt_tokens=80, completion_tokens=40, cached_tokens=64)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def make_provider(fake: FakeOpenAI, http: HttpClient) -> Callable[..., OpenAIProvider]:
    def make(**fields: Any) -> OpenAIProvider:
        settings: dict[str, Any] = {"type": "openai", "api_key": "sk-test", "base_url": fake.url + "/v1", **fields}
        return OpenAIProvider("openai", ProviderConfig(**{k: v for k, v in settings.items() if v is not None}), http)
    return make


def target(model: str = "gpt-4o", **options: Any) -> Target:
    return Target(deployment="d1", model=model, timeout=10.0, options=options)


def anthropic_chat(**body: Any) -> ChatRequest:
    return ChatRequest(body={"model": "alias", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}],
                             **body}, dialect="anthropic", request_id="r")  # type: ignore[typeddict-item]


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


# ---------------------------------------------------------------- the fake, seen by the real SDK


async def test_fake_speaks_openai_to_the_sdk(fake: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key="sk-sdk", max_retries=0)
    try:
        fake.reply(PARALLEL)
        answer = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER])  # type: ignore[list-item]
        assert [c.id for c in answer.choices[0].message.tool_calls or []] == ["call_p", "call_r"]
        assert answer.usage is not None and answer.usage.prompt_tokens_details is not None
        assert answer.usage.prompt_tokens_details.cached_tokens == 64

        fake.reply(Stream(stream_chunks(PARALLEL)))
        async with client.chat.completions.stream(model="gpt-4o", messages=[{"role": "user", "content": "Weather?"}],
                                                  tools=[WEATHER],  # type: ignore[list-item]
                                                  stream_options={"include_usage": True}) as stream:
            final = await stream.get_final_completion()
        calls = final.choices[0].message.tool_calls or []
        assert [(c.id, c.function.arguments) for c in calls] == [("call_p", '{"city":"Paris"}'),
                                                                 ("call_r", '{"city":"Rome"}')]
        assert final.usage is not None and final.usage.total_tokens == 120

        fake.reply(Fault(429, "Rate limit reached", type="requests", code="rate_limit_exceeded",
                         headers={"retry-after": "7"}))
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert info.value.code == "rate_limit_exceeded" and info.value.response.headers["retry-after"] == "7"

        with pytest.raises(openai.BadRequestError):  # the fake checks bodies like OpenAI does
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "robot", "content": "x"}])  # type: ignore[misc, list-item]
    finally:
        await client.close()
    assert fake.received[0].headers["authorization"] == "Bearer sk-sdk"


# ---------------------------------------------------------------- OpenAIProvider


async def test_complete_sends_the_translated_body_and_translates_back(
        fake: FakeOpenAI, make_provider: Callable[..., OpenAIProvider]) -> None:
    fake.reply(completion("Bonjour", prompt_tokens=30, completion_tokens=4, cached_tokens=10))
    provider = make_provider(organization="org-1", headers={"x-team": "blue"})
    message = await provider.complete(anthropic_chat(system="Be polite.", temperature=0.5, top_k=3), target())
    validate_message(message)
    received = fake.received[0]
    assert received.path == "/v1/chat/completions" and received.query == {}
    assert received.json == {"model": "gpt-4o", "max_tokens": 100, "temperature": 0.5,
                             "messages": [{"role": "system", "content": "Be polite."},
                                          {"role": "user", "content": "Hi"}]}
    assert (received.headers["authorization"], received.headers["openai-organization"],
            received.headers["x-team"], received.headers["content-type"]) == (
        "Bearer sk-test", "org-1", "blue", "application/json")
    assert {k: v for k, v in message.items() if k != "_openai"} == {
        "id": "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT", "type": "message", "role": "assistant",
        "model": "gpt-4o-2024-08-06", "content": [{"type": "text", "text": "Bonjour"}], "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 4, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 10, "output_tokens_details": {"thinking_tokens": 0}}}


async def test_parallel_tool_calls_complete_and_stream(fake: FakeOpenAI,
                                                       make_provider: Callable[..., OpenAIProvider]) -> None:
    provider = make_provider()
    tools = [{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}]  # type: ignore[index]
    fake.reply(PARALLEL, Stream(stream_chunks(PARALLEL, piece=3)))
    message = await provider.complete(anthropic_chat(tools=tools), target())
    streamed = assemble_events(await collect(provider.stream(anthropic_chat(tools=tools), target())))
    expected = [{"type": "tool_use", "id": "call_p", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_r", "name": "get_weather", "input": {"city": "Rome"}}]
    assert message["content"] == expected and streamed["content"] == expected
    assert message["stop_reason"] == streamed["stop_reason"] == "tool_use"
    assert streamed["usage"]["input_tokens"] == 16 and streamed["usage"]["cache_read_input_tokens"] == 64
    body = fake.received[1].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather",
                                                               "parameters": WEATHER["function"]["parameters"]}}]  # type: ignore[index]


async def test_streams_in_a_row_share_one_connection(fake: FakeOpenAI, http: HttpClient,
                                                     make_provider: Callable[..., OpenAIProvider]) -> None:
    provider = make_provider()
    for _ in range(3):
        fake.reply(Stream(stream_chunks(PARALLEL, piece=3)))
        events = await collect(provider.stream(anthropic_chat(), target()))
        assert events[-1] == {"type": "message_stop"}
        await until_idle(http)  # [DONE] ends the events; the body's end is read after it
    assert http.pool.opened == 1 and len(fake.received) == 3


async def test_stream_is_lazy_and_errors_before_the_first_event_are_retryable(
        fake: FakeOpenAI, make_provider: Callable[..., OpenAIProvider]) -> None:
    fake.reply(Fault(503, "Service unavailable", type="server_error"))
    events = make_provider().stream(anthropic_chat(), target())
    assert fake.received == []
    with pytest.raises(UpstreamError) as info:
        await anext(events)
    assert (info.value.kind, info.value.retryable, info.value.upstream_status) == (ErrorKind.UNAVAILABLE, True, 503)


@pytest.mark.parametrize(("fault", "kind", "retryable", "retry_after"), [
    (Fault(429, "Rate limit", type="requests", code="rate_limit_exceeded", headers={"retry-after": "7"}),
     ErrorKind.RATE_LIMIT, True, 7.0),
    (Fault(500, "The server had an error", type="server_error"), ErrorKind.BAD_GATEWAY, True, None),
    (Fault(401, "Incorrect API key provided", code="invalid_api_key"), ErrorKind.BAD_GATEWAY, False, None),
    (Fault(400, "context too long", code="context_length_exceeded"), ErrorKind.INVALID_REQUEST, False, None),
    (Fault(404, "The model does not exist", code="model_not_found"), ErrorKind.NOT_FOUND, False, None),
])
async def test_error_statuses_map_to_the_gateway_errors(
        fake: FakeOpenAI, make_provider: Callable[..., OpenAIProvider], fault: Fault, kind: ErrorKind,
        retryable: bool, retry_after: float | None) -> None:
    fake.reply(fault)
    with pytest.raises(UpstreamError) as info:
        await make_provider().complete(anthropic_chat(), target())
    assert (info.value.kind, info.value.retryable, info.value.retry_after) == (kind, retryable, retry_after)
    assert fault.message in info.value.message


async def test_mid_stream_error_chunk_and_cut_stream(fake: FakeOpenAI,
                                                     make_provider: Callable[..., OpenAIProvider]) -> None:
    chunks = stream_chunks(completion("A long answer that breaks"))
    error = {"error": {"message": "The server had an error while processing your request.",
                       "type": "server_error", "param": None, "code": None}}
    fake.reply(Stream([*chunks[:3], error], done=False), Stream(chunks[:4], done=False))
    provider = make_provider()
    for expected in ("The server had an error while processing your request.", "upstream stream ended before its end"):
        seen: list[StreamEvent] = []
        with pytest.raises(UpstreamError) as info:
            async for event in provider.stream(anthropic_chat(), target()):
                seen.append(event)
        assert info.value.kind is ErrorKind.BAD_GATEWAY and info.value.retryable is True
        assert info.value.message == expected
        assert seen[0]["type"] == "message_start" and seen[-1]["type"] == "content_block_delta"


async def test_azure_deployment_url_api_key_and_version(fake: FakeOpenAI,
                                                        make_provider: Callable[..., OpenAIProvider]) -> None:
    azure = make_provider(type="azure_openai", base_url=fake.url + "/", api_key="azure-key")
    await azure.complete(anthropic_chat(), target("gpt-4o"))
    await azure.complete(anthropic_chat(), target("gpt-4o", deployment="prod gpt"))
    pinned = make_provider(type="azure_openai", base_url=fake.url, api_key="azure-key",
                           api_version="2025-04-01-preview")
    await pinned.complete(anthropic_chat(), target("gpt-4o"))
    v1 = make_provider(type="azure_openai", base_url=fake.url, api_key="azure-key", api_version="v1")
    await v1.complete(anthropic_chat(), target("gpt-4o-mini"))
    seen = [(r.path, r.query, r.headers.get("api-key"), "authorization" in r.headers, r.json["model"])
            for r in fake.received]
    assert seen == [
        ("/openai/deployments/gpt-4o/chat/completions", {"api-version": AZURE_API_VERSION}, "azure-key", False,
         "gpt-4o"),
        ("/openai/deployments/prod%20gpt/chat/completions", {"api-version": AZURE_API_VERSION}, "azure-key", False,
         "gpt-4o"),
        ("/openai/deployments/gpt-4o/chat/completions", {"api-version": "2025-04-01-preview"}, "azure-key", False,
         "gpt-4o"),
        ("/openai/v1/chat/completions", {}, "azure-key", False, "gpt-4o-mini"),
    ]
    assert fake.received[0].json["max_completion_tokens"] == 100


async def test_passthrough_only_for_openai_callers(fake: FakeOpenAI,
                                                  make_provider: Callable[..., OpenAIProvider]) -> None:
    provider = make_provider(type="azure_openai", base_url=fake.url)
    caller = chat_request_from_openai({"model": "alias", "messages": [{"role": "user", "content": "Hi"}],
                                       "reasoning_effort": "low", "service_tier": "flex", "seed": 5,
                                       "max_tokens": 20}, request_id="r", headers={"OpenAI-Beta": "x=1"})
    caller.query = {"trace": "on", "api-version": "caller-wins-not"}
    await provider.complete(caller, target("o4-mini"))
    foreign = anthropic_chat()
    foreign.passthrough = {"container": "c"}
    foreign.passthrough_headers = {"anthropic-beta": "b"}
    foreign.query = {"beta": "true"}
    await provider.complete(foreign, target("o4-mini"))
    first, second = fake.received
    assert first.json == {"model": "o4-mini", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}],
                          "reasoning_effort": "low", "service_tier": "flex", "seed": 5}
    assert first.query == {"trace": "on", "api-version": AZURE_API_VERSION} and first.headers["openai-beta"] == "x=1"
    assert second.json == {"model": "o4-mini", "max_completion_tokens": 100,
                           "messages": [{"role": "user", "content": "Hi"}]}
    assert second.query == {"api-version": AZURE_API_VERSION} and "anthropic-beta" not in second.headers
    assert foreign.warnings == [
        "dropped unsupported anthropic field 'container' for a openai-style upstream",
        "dropped unsupported header 'anthropic-beta' for a openai-style upstream",
        "dropped query parameter 'beta' for a openai-style upstream",
    ]


async def test_compatible_server_without_key_gets_max_tokens(fake: FakeOpenAI,
                                                              make_provider: Callable[..., OpenAIProvider]) -> None:
    local = make_provider(api_key=None)
    message = await local.complete(anthropic_chat(), target("llama3.2"))
    await local.complete(anthropic_chat(), target("llama3.2", max_tokens_field="max_completion_tokens"))
    assert message["content"] == [{"type": "text", "text": "echo: Hi"}]
    assert "authorization" not in fake.received[0].headers
    assert fake.received[0].json == {"model": "llama3.2", "max_tokens": 100,
                                     "messages": [{"role": "user", "content": "Hi"}]}
    assert fake.received[1].json["max_completion_tokens"] == 100
    assert await local.count_tokens(anthropic_chat(), target()) is None


class RecordingHttp(HttpClient):
    """Stands in for api.openai.com itself (no network here): records the call, answers a completion."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any, dict[str, str], dict[str, str] | None]] = []

    async def post(self, url: str | URL, body: bytes, headers: Mapping[str, str], timeout_s: float,
                   params: Mapping[str, str] | None = None) -> UpstreamResponse:
        self.calls.append((str(url), msgspec.json.decode(body), dict(headers), dict(params) if params else None))
        return UpstreamResponse(200, {}, msgspec.json.encode(completion("hi")))


async def test_default_base_url_is_openai_with_max_completion_tokens() -> None:
    http = RecordingHttp()
    provider = OpenAIProvider("openai", ProviderConfig(type="openai", api_key="sk-live"), http)
    await provider.complete(anthropic_chat(), target("gpt-5"))
    assert http.calls == [("https://api.openai.com/v1/chat/completions",
                           {"model": "gpt-5", "max_completion_tokens": 100,
                            "messages": [{"role": "user", "content": "Hi"}]},
                           {"content-type": "application/json", "authorization": "Bearer sk-live"}, None)]
