from __future__ import annotations

from typing import Any

import pytest

from passerelle.canonical import ChatRequest
from passerelle.errors import GatewayError
from passerelle.routing.bridge import fit_request


class Claude:
    dialect = "anthropic"


class OpenAIStyle:
    dialect = "openai"


def openai_request(**extras: Any) -> ChatRequest:
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": ""},
                                          {"type": "text", "text": "a"}]},
        {"role": "user", "content": "again"}]}
    return ChatRequest(body=body, dialect="openai", request_id="r", openai_extras=extras)  # type: ignore[arg-type]


def test_attempt_is_a_copy_and_unsigned_thinking_dropped_for_claude() -> None:
    original = openai_request()
    attempt, unwrap = fit_request(original, Claude())  # type: ignore[arg-type]
    assert attempt.body["messages"][1]["content"] == [{"type": "text", "text": "a"}]
    assert original.body["messages"][1]["content"][0]["type"] == "thinking"  # caller's request untouched
    assert not unwrap and any("unsigned reasoning" in w for w in attempt.warnings) and original.warnings == []


def test_openai_target_keeps_everything() -> None:
    attempt, unwrap = fit_request(openai_request(logprobs=True), OpenAIStyle())  # type: ignore[arg-type]
    assert attempt.body["messages"][1]["content"][0]["type"] == "thinking" and not unwrap


def test_structured_output_emulated_for_claude_only_in_the_copy() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    original = openai_request(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    attempt, unwrap = fit_request(original, Claude())  # type: ignore[arg-type]
    assert unwrap and attempt.body["tools"][0]["input_schema"] == schema
    assert "tools" not in original.body


def test_logprobs_refused_for_claude() -> None:
    with pytest.raises(GatewayError, match="logprobs"):
        fit_request(openai_request(logprobs=True), Claude())  # type: ignore[arg-type]


def test_openai_temperature_above_claude_range_is_lowered() -> None:
    request = openai_request()
    request.body["temperature"] = 1.6
    attempt, _ = fit_request(request, Claude())  # type: ignore[arg-type]
    assert attempt.body["temperature"] == 1.0 and request.body["temperature"] == 1.6
    assert any("temperature 1.6 lowered to 1" in w for w in attempt.warnings)
    same, _ = fit_request(request, OpenAIStyle())  # type: ignore[arg-type]
    assert same.body["temperature"] == 1.6
