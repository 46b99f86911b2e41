"""response_format emulation and OpenAI-only options for Claude-style targets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from passerelle.canonical import ChatRequest, MessageResponse, StreamEvent
from passerelle.dialects.openai import (
    chat_request_from_openai,
    check_openai_only_options,
    emulate_response_format,
    unwrap_structured_events,
    unwrap_structured_message,
)
from passerelle.errors import ErrorKind, GatewayError
from tests.fakes.openai import assemble_events, validate_anthropic_request, validate_message

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True}}
TOOL = {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}


def request(**body: Any) -> ChatRequest:
    return chat_request_from_openai({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body},
                                    request_id="r")


def test_json_schema_becomes_a_forced_tool() -> None:
    chat = request(response_format=JSON_SCHEMA, parallel_tool_calls=False, max_tokens=100)
    assert emulate_response_format(chat) is True
    assert emulate_response_format(chat) is True  # a retry must not add it twice
    validate_anthropic_request(chat.body)
    assert chat.body == {
        "model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100,
        "tools": [{"name": "json_response", "description": "Give the final answer as JSON (reply).",
                   "input_schema": SCHEMA}],
        "tool_choice": {"type": "tool", "name": "json_response"},
    }


def test_with_the_callers_tools_any_tool_must_be_called() -> None:
    chat = request(response_format=JSON_SCHEMA, tools=[TOOL], parallel_tool_calls=False)
    assert emulate_response_format(chat) is True
    assert [t["name"] for t in chat.body["tools"]] == ["search", "json_response"]
    assert chat.body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    named = request(response_format=JSON_SCHEMA, tools=[TOOL],
                    tool_choice={"type": "function", "function": {"name": "search"}})
    emulate_response_format(named)
    assert named.body["tool_choice"] == {"type": "tool", "name": "search"}


def test_with_thinking_the_choice_stays_auto_and_the_system_asks() -> None:
    chat = request(response_format=JSON_SCHEMA, messages=[{"role": "system", "content": "Be exact."},
                                                          {"role": "user", "content": "hi"}])
    chat.body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    emulate_response_format(chat)
    assert chat.body["tool_choice"] == {"type": "auto"}
    assert chat.body["system"] == [
        {"type": "text", "text": "Be exact."},
        {"type": "text", "text": "Give your final answer by calling the json_response tool."}]


def test_json_object_is_a_system_instruction_and_needs_no_unwrapping() -> None:
    chat = request(response_format={"type": "json_object"})
    assert emulate_response_format(chat) is False
    emulate_response_format(chat)
    assert chat.body["system"] == [{"type": "text", "text": "Answer with one valid JSON object and nothing else: "
                                                            "no prose, no code fence."}]
    assert emulate_response_format(request(response_format={"type": "text"})) is False
    assert emulate_response_format(request()) is False


def test_a_non_object_schema_is_refused() -> None:
    chat = request(response_format={"type": "json_schema", "json_schema": {"name": "l", "schema": {"type": "array"}}})
    with pytest.raises(GatewayError) as info:
        emulate_response_format(chat)
    assert info.value.param == "response_format.json_schema.schema"


def answer(*blocks: dict[str, Any], stop_reason: str = "tool_use") -> MessageResponse:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": list(blocks),
            "stop_reason": stop_reason, "stop_sequence": None,  # type: ignore[typeddict-item]
            "usage": {"input_tokens": 1, "output_tokens": 2}}


def test_unwrap_message() -> None:
    forced = answer({"type": "tool_use", "id": "toolu_1", "name": "json_response", "input": {"answer": "42"}})
    unwrapped = unwrap_structured_message(forced)
    validate_message(unwrapped)
    assert unwrapped["content"] == [{"type": "text", "text": '{"answer":"42"}'}]
    assert unwrapped["stop_reason"] == "end_turn"
    user_tool = answer({"type": "tool_use", "id": "toolu_2", "name": "search", "input": {}})
    assert unwrap_structured_message(user_tool) is user_tool


async def test_unwrap_stream() -> None:
    events: list[StreamEvent] = [
        {"type": "message_start", "message": {**answer(), "stop_reason": None}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "json_response", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"answer"'}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ': "42"}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
    ]

    async def source() -> AsyncIterator[StreamEvent]:
        for event in events:
            yield event

    out = [event async for event in unwrap_structured_events(source())]
    assert out[1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert out[2] == {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": '{"answer"'}}
    message = assemble_events(out)
    assert message["content"] == [{"type": "text", "text": '{"answer": "42"}'}]
    assert message["stop_reason"] == "end_turn"


def test_openai_only_options() -> None:
    for body, param in (({"logprobs": True}, "logprobs"), ({"top_logprobs": 3}, "logprobs"),
                        ({"logit_bias": {"1": 5}}, "logit_bias")):
        with pytest.raises(GatewayError) as info:
            check_openai_only_options(request(**body))
        assert (info.value.kind, info.value.param) == (ErrorKind.INVALID_REQUEST, param)
    chat = request(seed=1, presence_penalty=0.1, frequency_penalty=0.2, logprobs=False, user="u")
    check_openai_only_options(chat)
    assert chat.warnings == ["dropped 'seed': the target model has no such option",
                             "dropped 'presence_penalty': the target model has no such option",
                             "dropped 'frequency_penalty': the target model has no such option"]
