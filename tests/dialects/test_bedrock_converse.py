"""Canonical <-> Bedrock Converse translation, checked against exact wire shapes and botocore's
service model (the same validation the fake Bedrock applies)."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import AsyncIterator
from typing import Any

import anthropic.types
import pytest
from pydantic import TypeAdapter

from passerelle.canonical import ChatRequest, MessageResponse, StreamEvent
from passerelle.dialects.bedrock.converse import (
    events_from_converse_stream,
    from_converse_request,
    from_converse_response,
    to_converse_request,
    to_converse_response,
)
from passerelle.errors import ErrorKind, GatewayError, UpstreamError
from tests.fakes.bedrock import validate_operation

CLAUDE = "anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-pro-v1:0"
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0fake-jpeg").decode()
PDF = base64.b64encode(b"%PDF-1.7 fake").decode()
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"
STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def chat(body: dict[str, Any], dialect: str = "anthropic") -> ChatRequest:
    return ChatRequest(body=body, dialect=dialect, request_id="req_1")  # type: ignore[arg-type]


FULL_BODY: dict[str, Any] = {
    "model": CLAUDE,
    "max_tokens": 1024, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "stop_sequences": ["\n\nHuman:"],
    "system": [{"type": "text", "text": "You are terse."},
               {"type": "text", "text": "Long shared context.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "tools": [{"name": "get_weather", "description": "Weather for a city",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
              {"name": "lookup", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
    "tool_choice": {"type": "tool", "name": "get_weather"},
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
             "title": "Q3 report", "context": "Finance", "citations": {"enabled": True}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"},
             "title": "Notes (draft)"},
            {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "chunk one"}]},
             "title": "Chunks", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQBCkgIARABGAIiQ=="},
            {"type": "redacted_thinking", "data": REDACTED},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": [
                {"type": "text", "text": "18C"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG}}]},
            {"type": "tool_result", "tool_use_id": "toolu_01B", "is_error": True,
             "content": [{"type": "text", "text": "no such city"}]},
            {"type": "text", "text": "Go on."}]},
    ],
}

FULL_WIRE: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": [
            {"text": "Compare these."},
            {"image": {"format": "jpeg", "source": {"bytes": JPEG}}},
            {"document": {"format": "pdf", "source": {"bytes": PDF}, "name": "Q3 report", "context": "Finance",
                          "citations": {"enabled": True}}},
            {"document": {"format": "txt", "source": {"bytes": base64.b64encode(b"plain notes").decode()},
                          "name": "Notes (draft)"}},
            {"document": {"source": {"content": [{"text": "chunk one"}]}, "name": "Chunks"}},
            {"cachePoint": {"type": "default"}}]},
        {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "The user wants weather.",
                                                    "signature": "EqQBCkgIARABGAIiQ=="}}},
            {"reasoningContent": {"redactedContent": REDACTED}},
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}}]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "toolu_01A", "content": [
                {"text": "18C"}, {"image": {"format": "jpeg", "source": {"bytes": JPEG}}}]}},
            {"toolResult": {"toolUseId": "toolu_01B", "content": [{"text": "no such city"}], "status": "error"}},
            {"text": "Go on."}]},
    ],
    "system": [{"text": "You are terse."}, {"text": "Long shared context."},
               {"cachePoint": {"type": "default", "ttl": "1h"}}],
    "inferenceConfig": {"maxTokens": 1024, "temperature": 0.7, "topP": 0.9, "stopSequences": ["\n\nHuman:"]},
    "toolConfig": {
        "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city",
                                "inputSchema": {"json": FULL_BODY["tools"][0]["input_schema"]}}},
                  {"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}},
                  {"cachePoint": {"type": "default"}}],
        "toolChoice": {"tool": {"name": "get_weather"}}},
    "additionalModelRequestFields": {"top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 2048},
                                     "anthropic_beta": ["interleaved-thinking-2025-05-14"]},
    "additionalModelResponseFieldPaths": ["/stop_sequence"],
}


def test_request_translates_every_block_exactly() -> None:
    request = chat(copy.deepcopy(FULL_BODY))
    request.anthropic_beta = ["interleaved-thinking-2025-05-14"]
    wire = to_converse_request(request, CLAUDE)
    assert wire == FULL_WIRE
    assert validate_operation("Converse", CLAUDE, wire) is None
    assert request.warnings == []


def test_request_round_trips_through_converse() -> None:
    wire = to_converse_request(chat(copy.deepcopy(FULL_BODY)), CLAUDE)
    assert from_converse_request(wire, CLAUDE) == FULL_BODY


def test_simple_request_for_another_model() -> None:
    request = chat({"model": "nova", "max_tokens": 50, "system": "Be kind.", "top_k": 5,
                    "thinking": {"type": "enabled", "budget_tokens": 1024}, "stop_sequences": ["END"],
                    "messages": [{"role": "user", "content": "Hi"}]})
    request.anthropic_beta = ["some-beta"]
    wire = to_converse_request(request, NOVA)
    assert wire == {"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "system": [{"text": "Be kind."}],
                    "inferenceConfig": {"maxTokens": 50, "stopSequences": ["END"]},
                    "additionalModelRequestFields": {"inferenceConfig": {"topK": 5}}}
    assert request.warnings == ["dropped 'thinking': only Claude models take it through Bedrock Converse"]
    assert validate_operation("Converse", NOVA, wire) is None
    assert from_converse_request(wire, NOVA)["top_k"] == 5


def test_foreign_fields_are_dropped_with_warnings() -> None:
    request = chat({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}, "openai")
    request.passthrough = {"logit_bias": {"1": 2}}
    request.openai_extras = {"response_format": {"type": "json_object"}}
    assert to_converse_request(request, NOVA) == {"messages": [{"role": "user", "content": [{"text": "Hi"}]}],
                                                  "inferenceConfig": {"maxTokens": 5}}
    # OpenAI-only options (openai_extras) are the router bridge's to check or emulate, not warned twice here.
    assert request.warnings == ["dropped unsupported openai field 'logit_bias' for the Bedrock Converse API"]


@pytest.mark.parametrize(("history", "expected"), [
    ([{"role": "user", "content": "Hi"}], None),
    ([{"role": "user", "content": "Hi"},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}],
     {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]}),
])
def test_tool_choice_none(history: list[dict[str, Any]], expected: dict[str, Any] | None) -> None:
    request = chat({"model": "m", "max_tokens": 5, "messages": history,
                    "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                    "tool_choice": {"type": "none", "disable_parallel_tool_use": True}})
    wire = to_converse_request(request, NOVA)
    assert wire.get("toolConfig") == expected
    # Without tool blocks in the history the tools are simply left out: nothing else to warn about.
    assert request.warnings == ([] if expected is None else [
        "tool_choice 'none' is not supported by Bedrock Converse; sent as 'auto'",
        "dropped 'disable_parallel_tool_use': not supported by Bedrock Converse"])


@pytest.mark.parametrize(("block", "words"), [
    ({"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}, "base64 image data"),
    ({"type": "image", "source": {"type": "base64", "media_type": "image/tiff", "data": JPEG}}, "image/tiff"),
    ({"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}, "source of type 'url'"),
    ({"type": "document", "source": {"type": "file", "file_id": "file_1"}}, "source of type 'file'"),
    ({"type": "container_upload", "file_id": "file_1"}, "'container_upload'"),
    ({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "search_result"}]}, "'search_result'"),
])
def test_untranslatable_content_is_an_invalid_request(block: dict[str, Any], words: str) -> None:
    request = chat({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [block]}]})
    with pytest.raises(GatewayError) as refused:
        to_converse_request(request, NOVA)
    assert refused.value.kind is ErrorKind.INVALID_REQUEST
    assert words in refused.value.message


def test_server_tools_are_an_invalid_request() -> None:
    request = chat({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}],
                    "tools": [{"type": "web_search_20250305", "name": "web_search"}]})
    with pytest.raises(GatewayError, match="tool type 'web_search_20250305'"):
        to_converse_request(request, CLAUDE)


# ---------------------------------------------------------------- responses

WIRE_ANSWER: dict[str, Any] = {
    "output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "Let me think.", "signature": "sig-1"}}},
        {"reasoningContent": {"redactedContent": REDACTED}},
        {"text": "It is sunny."},
        {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}}]}},
    "stopReason": "tool_use",
    "usage": {"inputTokens": 30, "outputTokens": 50, "totalTokens": 1580, "cacheReadInputTokens": 1000,
              "cacheWriteInputTokens": 500},
    "metrics": {"latencyMs": 0},
}
CANONICAL_ANSWER: dict[str, Any] = {
    "type": "message", "role": "assistant", "model": CLAUDE, "stop_reason": "tool_use", "stop_sequence": None,
    "content": [{"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": REDACTED},
                {"type": "text", "text": "It is sunny."},
                {"type": "tool_use", "id": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}],
    "usage": {"input_tokens": 30, "output_tokens": 50, "cache_creation_input_tokens": 500,
              "cache_read_input_tokens": 1000},
}


def test_response_translates_exactly_and_back() -> None:
    message = from_converse_response(WIRE_ANSWER, CLAUDE)
    assert re.fullmatch(r"msg_bdrk_[0-9a-f]{24}", message["id"])
    assert {k: v for k, v in message.items() if k != "id"} == CANONICAL_ANSWER
    anthropic.types.Message.model_validate(message)
    assert to_converse_response(message) == WIRE_ANSWER
    assert from_converse_response(WIRE_ANSWER)["id"] != message["id"]


@pytest.mark.parametrize(("wire", "canonical"), [
    ("end_turn", "end_turn"), ("tool_use", "tool_use"), ("max_tokens", "max_tokens"),
    ("stop_sequence", "stop_sequence"), ("guardrail_intervened", "refusal"), ("content_filtered", "refusal"),
    ("model_context_window_exceeded", "max_tokens"), ("malformed_model_output", "end_turn"),
])
def test_stop_reasons(wire: str, canonical: str) -> None:
    answer = {**WIRE_ANSWER, "stopReason": wire, "additionalModelResponseFields": {"stop_sequence": "END"}}
    message = from_converse_response(answer, CLAUDE)
    assert message["stop_reason"] == canonical
    assert message["stop_sequence"] == ("END" if canonical == "stop_sequence" else None)


def test_citations_and_json_tool_results_become_text() -> None:
    answer = {**WIRE_ANSWER, "output": {"message": {"role": "assistant", "content": [
        {"citationsContent": {"content": [{"text": "Cited "}, {"text": "fact."}],
                              "citations": [{"title": "Q3 report"}]}}]}}}
    assert from_converse_response(answer)["content"] == [{"type": "text", "text": "Cited fact."}]
    body = from_converse_request({"messages": [{"role": "user", "content": [
        {"toolResult": {"toolUseId": "t1", "content": [{"json": {"temp": 18}}]}}]}]}, NOVA)
    assert body["messages"][0]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": '{"temp":18}'}]}]


@pytest.mark.parametrize("answer", [{}, {"output": {}}, {"output": {"message": {"content": "text"}}}, [1]])
def test_malformed_answer_is_a_retryable_bad_gateway(answer: Any) -> None:
    with pytest.raises(UpstreamError) as bad:
        from_converse_response(answer, CLAUDE)
    assert (bad.value.kind, bad.value.retryable) == (ErrorKind.BAD_GATEWAY, True)


# ---------------------------------------------------------------- stream


async def feed(events: list[tuple[str, dict[str, Any]]]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    for event in events:
        yield event


async def run(events: list[tuple[str, dict[str, Any]]]) -> list[StreamEvent]:
    out = [e async for e in events_from_converse_stream(feed(events), CLAUDE)]
    for event in out:
        STREAM_EVENT.validate_python(event)
    return out


def strip_id(events: list[StreamEvent]) -> list[StreamEvent]:
    assert re.fullmatch(r"msg_bdrk_[0-9a-f]{24}", events[0]["message"].pop("id"))
    return events


START = {"type": "message_start", "message": {
    "type": "message", "role": "assistant", "model": CLAUDE, "content": [], "stop_reason": None,
    "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}


async def test_stream_redacted_empty_blocks_and_stop_sequence() -> None:
    events = await run([
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": REDACTED}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"text": "Done"}}),
        ("contentBlockStop", {"contentBlockIndex": 2}),
        ("messageStop", {"stopReason": "stop_sequence", "additionalModelResponseFields": {"stop_sequence": "END"}}),
        ("metadata", {"usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11}, "metrics": {"latencyMs": 5}}),
    ])
    assert strip_id(events) == [
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": REDACTED}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Done"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
         "usage": {"input_tokens": 9, "output_tokens": 2}},
        {"type": "message_stop"}]


async def test_stream_without_metadata_still_finishes_after_message_stop() -> None:
    events = await run([("messageStart", {"role": "assistant"}), ("messageStop", {"stopReason": "content_filtered"})])
    assert strip_id(events) == [START, {"type": "message_delta", "delta": {"stop_reason": "refusal",
                                                                           "stop_sequence": None},
                                        "usage": {"output_tokens": 0}}, {"type": "message_stop"}]


@pytest.mark.parametrize("cut", [0, 1, 3])
async def test_stream_cut_before_message_stop_raises(cut: int) -> None:
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"}),
              ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
              ("contentBlockStop", {"contentBlockIndex": 0}), ("messageStop", {"stopReason": "end_turn"})]
    with pytest.raises(UpstreamError) as broken:
        await run(events[:cut])
    assert (broken.value.kind, broken.value.retryable) == (ErrorKind.BAD_GATEWAY, True)


def test_response_for_canonical_message_has_totals() -> None:
    message: MessageResponse = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                "content": [{"type": "text", "text": "x"}], "stop_reason": "refusal",
                                "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 2}}
    assert to_converse_response(message, latency_ms=7) == {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": "content_filtered",
        "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}, "metrics": {"latencyMs": 7}}
