"""Canonical events -> OpenAI chunks (OpenAIStreamEncoder) and OpenAI SSE -> canonical events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from passerelle.canonical import ChatRequest, StreamEvent
from passerelle.dialects.openai import OpenAIStreamEncoder, events_from_openai_sse
from passerelle.errors import ErrorKind, GatewayError, UpstreamError
from tests.fakes.openai import (
    assemble_chunks,
    assemble_events,
    completion,
    parse_sse_body,
    stream_chunks,
    tool_call,
    usage,
    validate_chunk,
)

START: StreamEvent = {"type": "message_start", "message": {
    "id": "msg_01ABC", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
    "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 5,
              "cache_creation_input_tokens": 0}}}
EVENTS: list[StreamEvent] = [
    START,
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Checking"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2,
     "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
    {"type": "content_block_stop", "index": 2},
    {"type": "content_block_start", "index": 3,
     "content_block": {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}},
    {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
    {"type": "content_block_stop", "index": 3},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 42}},
    {"type": "message_stop"},
]


def openai_request(include_usage: bool = True) -> ChatRequest:
    extras = {"stream_options": {"include_usage": True}} if include_usage else {}
    return ChatRequest(body={"model": "my-alias", "max_tokens": 5, "messages": []}, dialect="openai",
                       request_id="r", stream=True, openai_extras=extras)


def encode_all(events: list[StreamEvent], request: ChatRequest) -> bytes:
    encoder = OpenAIStreamEncoder(request)
    return b"".join(encoder.encode(event) for event in events) + encoder.done()


def test_encoder_chunks_exactly() -> None:
    chunks = parse_sse_body(encode_all(EVENTS, openai_request()))
    assert chunks[-1] == "[DONE]"
    created = chunks[0]["created"]
    head = {"id": "chatcmpl-01ABC", "object": "chat.completion.chunk", "created": created, "model": "my-alias"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    assert chunks[:-1] == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Hmm."}),
        chunk({"content": "Checking"}),
        chunk({"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "toolu_2", "type": "function",
                               "function": {"name": "get_time", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        {**head, "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 42, "total_tokens": 72,
                                          "prompt_tokens_details": {"cached_tokens": 5}}},
    ]
    final = assemble_chunks(chunks[:-1])
    reply = final.choices[0].message
    assert reply.content == "Checking" and final.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, c.function.arguments) for c in reply.tool_calls or []] == [  # type: ignore[union-attr]
        ("toolu_1", "get_weather", '{"city":"Paris"}'), ("toolu_2", "get_time", "{}")]


def test_without_include_usage_only_done_follows() -> None:
    raw = encode_all(EVENTS, openai_request(include_usage=False))
    chunks = parse_sse_body(raw)
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls" and chunks[-1] == "[DONE]"
    assert all("usage" not in c for c in chunks[:-1])


def test_text_after_thinking_is_never_dropped() -> None:
    events = [START,
              {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "",
                                                                            "signature": ""}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "a"}},
              {"type": "content_block_stop", "index": 0},
              {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "First"}},
              {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " words"}},
              {"type": "content_block_stop", "index": 1},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
               "usage": {"output_tokens": 3}},
              {"type": "message_stop"}]
    final = assemble_chunks(parse_sse_body(encode_all(events, openai_request()))[:-1])
    assert final.choices[0].message.content == "First words"


def test_encoder_error_chunk() -> None:
    encoder = OpenAIStreamEncoder(openai_request())
    err = GatewayError(ErrorKind.OVERLOADED, "Overloaded")
    assert encoder.error(err) == (b'data: {"error":{"message":"Overloaded","type":"server_error","param":null,'
                                  b'"code":"overloaded"}}\n\n')


async def feed(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def sse(*items: Any, done: bool = True) -> bytes:
    body = b"".join(b"data: " + msgspec.json.encode(item) + b"\n\n" for item in items)
    return body + (b"data: [DONE]\n\n" if done else b"")


async def decode(raw: bytes, split: int | None = None) -> list[StreamEvent]:
    pieces = [raw] if split is None else [raw[i:i + split] for i in range(0, len(raw), split)]
    return [event async for event in events_from_openai_sse(feed(pieces), model="gpt-4o")]


@pytest.mark.parametrize("split", [None, 1, 7])
async def test_decoder_events_exactly(split: int | None) -> None:
    answer = completion("Hi there", tool_calls=[tool_call("call_1", "f", '{"a": 1}'), tool_call("call_2", "g", "{}")],
                        finish_reason="tool_calls", prompt_tokens=50, completion_tokens=9, cached_tokens=20)
    events = await decode(sse(*stream_chunks(answer, piece=5)), split)
    assert events == [
        {"type": "message_start", "message": {
            "id": "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT", "type": "message", "role": "assistant",
            "model": "gpt-4o-2024-08-06", "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0},
            "_openai": {"created": 1741569952, "system_fingerprint": "fp_50cad350e4", "service_tier": "default"}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi th"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ere"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": " 1}"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "tool_use", "id": "call_2", "name": "g", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"input_tokens": 30, "output_tokens": 9, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 20, "output_tokens_details": {"thinking_tokens": 0}}},
        {"type": "message_stop"},
    ]
    message = assemble_events(events)
    assert [b.get("input") for b in message["content"]] == [None, {"a": 1}, {}]


async def test_reasoning_then_text_and_refusal_deltas() -> None:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "deepseek"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = await decode(sse(chunk({"role": "assistant"}), chunk({"reasoning_content": "think"}),
                              chunk({"reasoning_content": "ing"}), chunk({"content": "Answer"}),
                              chunk({"refusal": " refused"}), chunk({}, "stop")))
    message = assemble_events(events)
    assert message["content"] == [{"type": "thinking", "thinking": "thinking", "signature": ""},
                                  {"type": "text", "text": "Answer refused"}]
    assert message["stop_reason"] == "end_turn"


async def test_azure_filter_chunk_first_and_logprobs_kept() -> None:
    azure_first = {"id": "", "object": "", "created": 0, "model": "", "choices": [],
                   "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}
    logprobs = {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}]}
    body = sse(azure_first, {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 2, "model": "gpt-4o",
                             "choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": logprobs,
                                          "finish_reason": None}]},
               {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 2, "model": "gpt-4o",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]})
    events = await decode(body)
    assert events[0]["message"]["model"] == "gpt-4o"  # the filter chunk names no model: the target's
    assert events[2]["_openai"] == {"logprobs": logprobs}
    assert assemble_events(events)["stop_reason"] == "refusal"
    encoder = OpenAIStreamEncoder(openai_request(include_usage=False))
    chunk = parse_sse_body(encoder.encode(events[2]))[0]
    validate_chunk(chunk)
    assert chunk["choices"][0]["logprobs"] == logprobs


async def test_finish_without_done_is_a_natural_end() -> None:
    answer = completion("ok")
    events = await decode(sse(*stream_chunks(answer), done=False))
    assert events[-1] == {"type": "message_stop"}


@pytest.mark.parametrize("raw", [
    sse({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "half"}, "finish_reason": None}]}, done=False),
    b"",
    b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "x"}}]}\n\ndata: {not json}\n\n',
])
async def test_cut_or_garbled_stream_is_retryable_bad_gateway(raw: bytes) -> None:
    with pytest.raises(UpstreamError) as info:
        await decode(raw)
    assert info.value.kind is ErrorKind.BAD_GATEWAY and info.value.retryable is True


async def test_error_chunk_mid_stream_after_events() -> None:
    answer = completion("partial answer")
    error = {"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}}
    chunks = [*stream_chunks(answer)[:3], error]
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as info:
        async for event in events_from_openai_sse(feed([sse(*chunks, done=False)]), model="gpt-4o"):
            seen.append(event)
    assert info.value.kind is ErrorKind.BAD_GATEWAY and info.value.message == "The server had an error"
    assert [e["type"] for e in seen] == ["message_start", "content_block_start", "content_block_delta",
                                         "content_block_delta"]


async def test_error_chunk_first_raises_before_any_event() -> None:
    events = events_from_openai_sse(feed([sse({"error": {"message": "Rate limit", "type": "requests",
                                                         "code": "rate_limit_exceeded"}})]), model="m")
    with pytest.raises(UpstreamError) as info:
        await anext(events)
    assert info.value.kind is ErrorKind.RATE_LIMIT and info.value.retryable is True


async def test_interleaved_tool_fragments_are_refused() -> None:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def calls(*items: dict[str, Any]) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": {"tool_calls": list(items)}, "finish_reason": None}]}

    body = sse(calls({"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}),
               calls({"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}),
               calls({"index": 0, "function": {"arguments": "}"}}))
    with pytest.raises(UpstreamError, match="interleaved"):
        await decode(body)


async def test_whole_tool_calls_in_one_chunk_and_missing_ids() -> None:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "llama"}
    body = sse({**head, "choices": [{"index": 0, "finish_reason": "stop", "delta": {"role": "assistant", "tool_calls": [
        {"index": 0, "function": {"name": "f", "arguments": '{"x":1}'}},
        {"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"y":2}'}}]}}]},
               {**head, "choices": [], "usage": usage(7, 3)})
    message = assemble_events(await decode(body))
    assert [(b["name"], b["input"]) for b in message["content"]] == [("f", {"x": 1}), ("g", {"y": 2})]
    assert message["content"][0]["id"].startswith("call_") and message["content"][1]["id"] == "b"
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 7 and message["usage"]["output_tokens"] == 3


async def test_empty_stream_with_done_is_an_empty_message() -> None:
    message = assemble_events(await decode(b"data: [DONE]\n\n"))
    assert message["content"] == [] and message["stop_reason"] == "end_turn"


async def test_openai_stream_survives_the_round_trip() -> None:
    """OpenAI upstream -> canonical -> OpenAI client: the same completion, chunk for chunk in content."""
    answer = completion("Hello world", tool_calls=[tool_call("call_9", "f", '{"k":"v"}')],
                        finish_reason="tool_calls", cached_tokens=4)
    events = await decode(sse(*stream_chunks(answer)))
    chunks = parse_sse_body(encode_all(events, openai_request()))
    final = assemble_chunks(chunks[:-1])
    assert chunks[0]["id"] == answer["id"] and chunks[0]["created"] == answer["created"]
    assert chunks[0]["system_fingerprint"] == "fp_50cad350e4"
    reply = final.choices[0].message
    assert reply.content == "Hello world" and final.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.arguments) for c in reply.tool_calls or []] == [("call_9", '{"k":"v"}')]  # type: ignore[union-attr]
    assert final.usage is not None
    assert final.usage.model_dump(exclude_none=True) == {
        "prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 0}}
