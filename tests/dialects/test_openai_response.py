"""Chat completion objects <-> canonical messages, errors and the model list."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from passerelle.canonical import ChatRequest, MessageResponse
from passerelle.dialects.openai import (
    from_openai_response,
    openai_error_body,
    openai_models_list,
    to_openai_response,
)
from passerelle.errors import ErrorKind, GatewayError, UpstreamError
from tests.fakes.openai import completion, tool_call, usage, validate_completion, validate_message

REQUEST = ChatRequest(body={"model": "my-alias", "max_tokens": 10, "messages": []}, dialect="openai",
                      request_id="r")


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage_fields: Any) -> MessageResponse:
    return {"id": "msg_01XYZ", "type": "message", "role": "assistant", "model": "claude-x", "content": content,
            "stop_reason": stop_reason, "stop_sequence": None,  # type: ignore[typeddict-item]
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage_fields}}


def test_to_openai_response_with_thinking_text_and_tools() -> None:
    out = to_openai_response(message([
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
        {"type": "text", "text": "I'll check "}, {"type": "text", "text": "both."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome", "days": [1, 2]}},
    ], "tool_use", cache_read_input_tokens=100, cache_creation_input_tokens=20,
        output_tokens_details={"thinking_tokens": 3}), request=REQUEST)
    validate_completion(out)
    assert isinstance(out.pop("created"), int)
    assert out == {
        "id": "chatcmpl-01XYZ", "object": "chat.completion", "model": "my-alias",
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "I'll check both.", "refusal": None,
            "reasoning_content": "Let me think.",
            "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                {"id": "toolu_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Rome","days":[1,2]}'}}]}}],
        "usage": {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                  "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
                  "completion_tokens_details": {"reasoning_tokens": 3}},
    }


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("refusal", "content_filter"), ("pause_turn", "stop"), (None, "stop"),
])
def test_finish_reasons(stop_reason: str | None, finish: str) -> None:
    out = to_openai_response(message([{"type": "text", "text": "x"}], stop_reason), request=REQUEST)  # type: ignore[arg-type]
    validate_completion(out)
    assert out["choices"][0]["finish_reason"] == finish


def test_empty_answer_has_empty_string_content() -> None:
    out = to_openai_response(message([], "max_tokens"), request=REQUEST)
    validate_completion(out)
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "", "refusal": None}


def test_from_openai_response_with_tools_and_cached_usage() -> None:
    data = completion("Checking.", tool_calls=[tool_call("call_1", "get_weather", '{"city": "Paris"}'),
                                               tool_call("call_2", "get_time", "")],
                      finish_reason="tool_calls", prompt_tokens=2006, completion_tokens=300, cached_tokens=1920)
    validate_completion(data)
    result = from_openai_response(data)
    validate_message(result)
    assert result == {
        "id": "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT", "type": "message", "role": "assistant",
        "model": "gpt-4o-2024-08-06", "stop_reason": "tool_use", "stop_sequence": None,
        "content": [{"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}],
        "usage": {"input_tokens": 86, "output_tokens": 300, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 1920, "output_tokens_details": {"thinking_tokens": 0}},
        "_openai": {"created": 1741569952, "system_fingerprint": "fp_50cad350e4", "service_tier": "default"},
    }


def test_openai_answer_comes_back_to_an_openai_client_exactly() -> None:
    data = completion("Checking.", tool_calls=[tool_call("call_1", "f", '{"a":1}'), tool_call("call_2", "g", "{bad")],
                      finish_reason="tool_calls", cached_tokens=4)
    data["choices"][0]["logprobs"] = {"content": [{"token": "Check", "logprob": -0.1, "bytes": [67],
                                                   "top_logprobs": []}], "refusal": None}
    del data["choices"][0]["message"]["annotations"]  # not modeled: the one documented loss
    data["usage"] = {**usage(12, 6, 4), "prompt_tokens_details": {"cached_tokens": 4},
                     "completion_tokens_details": {"reasoning_tokens": 0}}
    validate_completion(data)
    canonical = from_openai_response(data)
    assert canonical["content"][2] == {"type": "tool_use", "id": "call_2", "name": "g", "input": {}}
    request = ChatRequest(body={"model": "gpt-4o-2024-08-06", "max_tokens": 1, "messages": []}, dialect="openai",
                          request_id="r")
    assert to_openai_response(canonical, request=request) == data


def test_reasoning_refusal_and_content_filter() -> None:
    data = completion(None, reasoning_content="Thinking...", refusal="I can't help with that.",
                      finish_reason="content_filter")
    result = from_openai_response(data)
    validate_message(result)
    assert result["content"] == [{"type": "thinking", "thinking": "Thinking...", "signature": ""},
                                 {"type": "text", "text": "I can't help with that."}]
    assert result["stop_reason"] == "refusal"
    back = to_openai_response(result, request=REQUEST)
    validate_completion(back)
    assert back["choices"][0]["message"] == {"role": "assistant", "content": None,
                                             "refusal": "I can't help with that.",
                                             "reasoning_content": "Thinking..."}
    assert back["choices"][0]["finish_reason"] == "content_filter"


def test_legacy_function_call_and_missing_ids_and_usage() -> None:
    data = {"id": "x1", "object": "chat.completion", "created": 1, "model": "local",
            "choices": [{"index": 0, "finish_reason": "function_call", "message": {
                "role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"q":1}'}}}]}
    result = from_openai_response(data)
    validate_message(result)
    block = result["content"][0]
    assert block["type"] == "tool_use" and block["name"] == "f" and block["input"] == {"q": 1}
    assert block["id"].startswith("call_") and len(block["id"]) == 29
    assert result["id"] == "msg_x1" and result["stop_reason"] == "tool_use"
    assert result["usage"] == {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                               "cache_read_input_tokens": 0}


def test_tool_calls_with_finish_reason_stop_are_tool_use() -> None:
    data = completion(None, tool_calls=[tool_call("c", "f", "{}")], finish_reason="stop")
    assert from_openai_response(data)["stop_reason"] == "tool_use"


@pytest.mark.parametrize("data", [
    [1], {"choices": []}, {"choices": [{"message": "hi"}]}, {"choices": [{"message": {"content": 5}}]},
    {"choices": [{"message": {"tool_calls": [{"function": {"arguments": "{}"}}]}}]},
    {"choices": [{"message": {"tool_calls": "x"}}]},
])
def test_malformed_upstream_bodies_are_retryable_bad_gateway(data: Any) -> None:
    with pytest.raises(UpstreamError) as info:
        from_openai_response(data)
    assert info.value.kind is ErrorKind.BAD_GATEWAY and info.value.retryable is True


@pytest.mark.parametrize(("error", "kind", "retryable"), [
    ({"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}, ErrorKind.RATE_LIMIT, True),
    ({"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded",
      "param": "messages"}, ErrorKind.INVALID_REQUEST, False),
    ({"message": "boom", "type": "server_error", "code": None}, ErrorKind.BAD_GATEWAY, True),
    ({"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}, ErrorKind.BAD_GATEWAY, False),
    ("plain string", ErrorKind.BAD_GATEWAY, True),
])
def test_error_bodies_in_a_200(error: Any, kind: ErrorKind, retryable: bool) -> None:
    with pytest.raises(UpstreamError) as info:
        from_openai_response({"error": error})
    assert (info.value.kind, info.value.retryable) == (kind, retryable)
    if isinstance(error, dict) and error.get("param"):
        assert info.value.param == "messages"


def test_openai_error_body() -> None:
    err = GatewayError(ErrorKind.INVALID_REQUEST, "bad", param="messages[2].content")
    assert msgspec.json.decode(openai_error_body(err)) == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "messages[2].content", "code": None}}
    limited = GatewayError(ErrorKind.RATE_LIMIT, "slow")
    assert msgspec.json.decode(openai_error_body(limited)) == {
        "error": {"message": "slow", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}}


def test_models_list() -> None:
    import openai.types

    listed = openai_models_list(["a", "b"], 1700000000)
    assert listed == {"object": "list", "data": [
        {"id": "a", "object": "model", "created": 1700000000, "owned_by": "passerelle"},
        {"id": "b", "object": "model", "created": 1700000000, "owned_by": "passerelle"}]}
    for model in listed["data"]:
        openai.types.Model.model_validate(model)
