"""The official SDKs, unmodified but for base_url and key, in all four directions:
Anthropic SDK or OpenAI SDK, against a Claude-style or an OpenAI-style upstream."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import APP_KEY
from tests.support.processes import Server

MODELS = ["claude-test", "gpt-test"]  # Claude-style upstream, OpenAI-style upstream
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]},
}


def anthropic_tool() -> dict[str, Any]:
    return {"name": WEATHER["name"], "description": WEATHER["description"], "input_schema": WEATHER["parameters"]}


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_sync(gateway: Server, model: str) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=APP_KEY, max_retries=0)
    message = client.messages.create(model=model, max_tokens=64, system="Be brief.",
                                     messages=[{"role": "user", "content": "Bonjour, Passerelle!"}])
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour, Passerelle!"
    assert message.stop_reason == "end_turn" and message.model == model
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 4  # Bonjour , Passerelle !


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_sync_stream(gateway: Server, model: str) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=APP_KEY, max_retries=0)
    with client.messages.stream(model=model, max_tokens=64,
                                messages=[{"role": "user", "content": "stream me, please"}]) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "stream me, please" and len(texts) > 1
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 4


@pytest.mark.parametrize("model", MODELS)
async def test_anthropic_async_tool_round_trip(gateway: Server, model: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=APP_KEY, max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await client.messages.create(model=model, max_tokens=256, messages=messages, tools=[anthropic_tool()])
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "example", "days": 1}
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                               "content": "18 degrees and sunny"}]}]
    second = await client.messages.create(model=model, max_tokens=256, messages=messages, tools=[anthropic_tool()])
    assert second.stop_reason == "end_turn" and second.content[0].text == "18 degrees and sunny"  # type: ignore[union-attr]
    await client.close()


@pytest.mark.parametrize("model", MODELS)
async def test_anthropic_async_stream_tool_use(gateway: Server, model: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=APP_KEY, max_retries=0)
    async with client.messages.stream(model=model, max_tokens=256, tools=[anthropic_tool()],
                                      messages=[{"role": "user", "content": "Weather?"}]) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and "content_block_start" in kinds
    call = next(b for b in final.content if b.type == "tool_use")
    assert call.input == {"city": "example", "days": 1} and final.stop_reason == "tool_use"
    await client.close()


@pytest.mark.parametrize("model", MODELS)
def test_openai_sync(gateway: Server, model: str) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY, max_retries=0)
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "Hello from GPT-4 land"}])
    choice = completion.choices[0]
    assert choice.message.content == "Hello from GPT-4 land" and choice.finish_reason == "stop"
    assert choice.message.role == "assistant" and completion.model == model
    assert completion.usage is not None and completion.usage.completion_tokens == 6  # Hello from GPT - 4 land
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 6


@pytest.mark.parametrize("model", MODELS)
def test_openai_sync_stream_with_usage(gateway: Server, model: str) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY, max_retries=0)
    stream = client.chat.completions.create(model=model, stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "one two three four"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == "one two three four" and finishes == ["stop"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


@pytest.mark.parametrize("model", MODELS)
async def test_openai_async_parallel_tool_round_trip(gateway: Server, model: str) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY, max_retries=0)
    tools: list[Any] = [{"type": "function", "function": WEATHER},
                        {"type": "function", "function": {**WEATHER, "name": "get_time"}}]
    messages: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    first = await client.chat.completions.create(model=model, messages=messages, tools=tools)
    calls = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert all(json.loads(c.function.arguments) == {"city": "example", "days": 1} for c in calls)  # type: ignore[union-attr]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
                 {"role": "tool", "tool_call_id": calls[1].id, "content": "noon"}]
    second = await client.chat.completions.create(model=model, messages=messages, tools=tools)
    assert second.choices[0].message.content == "sunny\nnoon" and second.choices[0].finish_reason == "stop"
    await client.close()


@pytest.mark.parametrize("model", MODELS)
async def test_openai_async_stream_tool_calls(gateway: Server, model: str) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY, max_retries=0)
    stream = await client.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": "Weather?"}],
        tools=[{"type": "function", "function": WEATHER}])
    ids: dict[int, str] = {}
    args: dict[int, str] = {}
    finish = None
    async for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            if delta_call.id:
                ids[delta_call.index] = delta_call.id
            if delta_call.function and delta_call.function.arguments:
                args[delta_call.index] = args.get(delta_call.index, "") + delta_call.function.arguments
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls" and list(ids) == [0]
    assert json.loads(args[0]) == {"city": "example", "days": 1}
    await client.close()


@pytest.mark.parametrize("model", MODELS)
def test_models_in_each_dialect(gateway: Server, model: str) -> None:
    a = anthropic.Anthropic(base_url=gateway.url, api_key=APP_KEY)
    assert model in [m.id for m in a.models.list()]
    o = openai.OpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY)
    assert model in [m.id for m in o.models.list()]
    assert o.models.retrieve(model).id == model


def test_count_tokens(gateway: Server) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=APP_KEY)
    count = client.messages.count_tokens(model="gpt-test", messages=[{"role": "user", "content": "x" * 400}])
    assert count.input_tokens == 100  # OpenAI-style upstream: the documented 4-characters estimate


def test_anthropic_extended_thinking_stream_keeps_signature(gateway: Server) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=APP_KEY, max_retries=0)
    with client.messages.stream(model="claude-test", max_tokens=2048,
                                thinking={"type": "enabled", "budget_tokens": 1024},
                                messages=[{"role": "user", "content": "think first"}]) as stream:
        deltas = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.signature and thinking.thinking.startswith("The user wrote")
    assert final.content[1].type == "text" and final.content[1].text == "think first"
    assert "thinking_delta" in deltas and "signature_delta" in deltas and "text_delta" in deltas
    # The thinking block goes back in the next turn, signature and all.
    follow = client.messages.create(model="claude-test", max_tokens=2048,
                                    thinking={"type": "enabled", "budget_tokens": 1024},
                                    messages=[{"role": "user", "content": "think first"},
                                              {"role": "assistant", "content": [b.model_dump() for b in final.content]},
                                              {"role": "user", "content": "again"}])
    assert follow.content[-1].type == "text" and follow.content[-1].text == "again"


def test_cross_dialect_fields_dropped_with_warning(gateway: Server) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=APP_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="gpt-test", max_tokens=20, messages=[{"role": "user", "content": "hi"}],
        extra_body={"service_tier": "auto"})
    assert "dropped unsupported anthropic field 'service_tier'" in raw.headers["x-passerelle-warnings"]
    assert raw.parse().content[0].text == "hi"  # type: ignore[union-attr]


def test_key_restricted_to_models(gateway: Server) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-limited", max_retries=0)
    assert client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "ok"}])
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="claude-test", messages=[{"role": "user", "content": "no"}])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=gateway.url, api_key="sk-wrong", max_retries=0).messages.create(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": "x"}])
