"""OpenAI request -> canonical (chat_request_from_openai) and canonical -> OpenAI (to_openai_request)."""

from __future__ import annotations

from typing import Any

import pytest

from passerelle.canonical import ChatRequest
from passerelle.dialects.openai import DEFAULT_MAX_TOKENS, chat_request_from_openai, to_openai_request
from passerelle.errors import ErrorKind, GatewayError
from tests.fakes.openai import validate_anthropic_request, validate_openai_request

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
PDF = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago="
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def parse(body: Any, **kwargs: Any) -> ChatRequest:
    request = chat_request_from_openai(body, request_id="req_1", **kwargs)
    validate_anthropic_request(request.body)
    return request


def error_of(body: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        chat_request_from_openai(body, request_id="req_1")
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    return info.value


def test_simple_request_maps_every_modeled_field() -> None:
    request = parse({
        "model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Hi"}],
        "max_completion_tokens": 300, "temperature": 1.5, "top_p": 0.9, "stop": "END", "user": "u-42",
        "stream": True, "stream_options": {"include_usage": True}, "seed": 7,
        "reasoning_effort": "low", "service_tier": "flex", "store": False, "prompt_cache_key": "k1",
    })
    assert request.dialect == "openai" and request.stream is True and request.request_id == "req_1"
    assert request.body == {
        "model": "gpt-4o", "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 300, "stop_sequences": ["END"], "temperature": 1.5, "top_p": 0.9,
        "metadata": {"user_id": "u-42"},
    }
    assert request.passthrough == {"reasoning_effort": "low", "service_tier": "flex", "store": False,
                                   "prompt_cache_key": "k1"}
    assert request.openai_extras == {"seed": 7, "stream_options": {"include_usage": True}, "user": "u-42",
                                     "_wire": {"max_tokens_field": "max_completion_tokens"}}
    assert request.warnings == []


def test_default_max_tokens_and_null_fields() -> None:
    request = parse({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": None,
                     "stop": None, "temperature": None, "tools": None, "n": None, "logprobs": None})
    assert request.body == {"model": "m", "messages": [{"role": "user", "content": "x"}],
                            "max_tokens": DEFAULT_MAX_TOKENS}
    assert request.openai_extras == {} and request.passthrough == {}


def test_system_and_developer_messages_in_order_with_a_late_one_moved() -> None:
    request = parse({"model": "m", "messages": [
        {"role": "developer", "content": "A"},
        {"role": "system", "content": [{"type": "text", "text": "B"}, {"type": "text", "text": "C"}]},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "D"},
        {"role": "user", "content": "again"},
    ]})
    assert request.body["system"] == [{"type": "text", "text": t} for t in "ABCD"]
    # The two user turns around the moved system message merge (Claude needs alternation).
    assert request.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                                     {"type": "text", "text": "again"}]}]
    assert request.warnings == ["system message at messages[3] moved to the system prompt"]
    assert "_wire" not in request.openai_extras  # a mix of roles: "system" is the spelling kept


def test_developer_only_is_remembered() -> None:
    request = parse({"model": "m", "messages": [{"role": "developer", "content": "A"},
                                                {"role": "user", "content": "hi"}]})
    assert request.body["system"] == "A"
    assert request.openai_extras == {"_wire": {"system_role": "developer"}}


def test_tool_round_trip_history() -> None:
    request = parse({"model": "m", "tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_abc", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_def", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_def", "content": [{"type": "text", "text": "24C"}]},
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_x", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
    ]})
    assert request.body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_def", "name": "get_weather", "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_abc", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_def", "content": [{"type": "text", "text": "24C"}]},
            {"type": "text", "text": "Thanks"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_x", "name": "get_weather",
                                           "input": {}}]},
    ]
    assert request.body["tools"] == [{"name": "get_weather", "description": "Weather in a city",
                                      "input_schema": WEATHER_TOOL["function"]["parameters"]}]  # type: ignore[index]


def test_content_parts() -> None:
    request = parse({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Look", "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"}},
        {"type": "file", "file": {"file_data": PDF}},
        {"type": "file", "file": {"file_id": "file-123"}},
        {"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}},
    ]}]})
    assert request.body["messages"][0]["content"] == [
        {"type": "text", "text": "Look", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
         "title": "a.pdf"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
        {"type": "document", "source": {"type": "file", "file_id": "file-123"}},
        {"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}},
    ]
    assert request.openai_extras["_wire"] == {"image_detail": {f"data:image/png;base64,{PNG}": "low"}}


def test_consecutive_user_messages_merge_and_refusal_parts_become_text() -> None:
    request = parse({"model": "m", "messages": [
        {"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"role": "assistant", "content": "ok", "name": "bot"},
        {"role": "assistant", "content": ""},
    ]})
    assert request.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "no"}, {"type": "text", "text": "ok"}]},
    ]


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ("none", False, {"type": "none"}),
    ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
])
def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    request = parse(body)
    assert request.body["tool_choice"] == expected
    assert request.openai_extras.get("parallel_tool_calls") == parallel


def test_tool_choice_without_tools_stays_an_openai_extra() -> None:
    request = parse({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [],
                     "tool_choice": "none"})
    assert "tool_choice" not in request.body and "tools" not in request.body
    assert request.openai_extras == {"tools": [], "tool_choice": "none"}


def test_headers_forward_only_openai_beta() -> None:
    request = parse({"model": "m", "messages": [{"role": "user", "content": "x"}]},
                    headers={"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer sk-caller",
                             "OpenAI-Organization": "org-caller"})
    assert request.passthrough_headers == {"openai-beta": "assistants=v2"}


@pytest.mark.parametrize(("body", "param"), [
    ([1, 2], None),
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": ["hi"]}, "messages[0]"),
    ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}, "messages[1].content[0].type"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}, "messages[0].content[0].image_url.url"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,rawdata"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}}]}]},
     "messages[0].content[0].file.file_data"),
    ({"model": "m", "messages": [{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}, "messages[0].content[0].type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{bad"}}]}]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 2.5}, "temperature"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": True}, "temperature"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": -0.1}, "top_p"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": "9"},
     "max_completion_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "functions": []}, "functions"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "custom"}]}, "tools[0].type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL],
      "tool_choice": "sometimes"}, "tool_choice"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "presence_penalty": 3}, "presence_penalty"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}},
     "response_format"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}],
      "response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}, "response_format.json_schema"),
])
def test_malformed_requests_name_the_field(body: Any, param: str | None) -> None:
    assert error_of(body).param == param


# ---------------------------------------------------------------- canonical -> OpenAI


def test_anthropic_request_to_openai_body() -> None:
    request = ChatRequest(dialect="anthropic", request_id="r", passthrough={"container": "c1"}, body={
        "model": "claude-x", "max_tokens": 1024, "top_k": 5, "temperature": 0.3,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "stop_sequences": ["###"], "metadata": {"user_id": "u1"},
        "system": [{"type": "text", "text": "You help.", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}},
                  {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking "}, {"type": "text", "text": "now."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris", "n": 1}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": [
                    {"type": "text", "text": "sunny"},
                    {"type": "image", "source": {"type": "url", "url": "https://x/map.png"}}]},
                {"type": "text", "text": "and?"}]},
        ]})
    body = to_openai_request(request, "gpt-4o", stream=False)
    validate_openai_request(body)
    assert body == {
        "model": "gpt-4o", "max_completion_tokens": 1024, "temperature": 0.3, "stop": ["###"], "user": "u1",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "You help."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}",
                                          "filename": "document.pdf"}}]},
            {"role": "assistant", "content": "Checking now.", "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Paris","n":1}'}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
            {"role": "user", "content": [{"type": "text", "text": "and?"},
                                         {"type": "image_url", "image_url": {"url": "https://x/map.png"}}]},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                                    "parameters": {"type": "object"}}}],
        "tool_choice": "required", "parallel_tool_calls": False,
    }
    assert request.warnings == [
        "dropped unsupported anthropic field 'container' for a openai-style upstream",
        "dropped cache_control hints: an openai-style upstream caches prompt prefixes itself",
        "moved tool result images to a user message: openai tool messages carry text only",
        "dropped 'top_k': an openai-style upstream has no such option",
        "dropped 'thinking': an openai-style upstream has no such option",
        "dropped server tool 'web_search' for an openai-style upstream",
    ]


def test_stream_asks_for_usage_and_keeps_client_stream_options() -> None:
    request = parse({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True,
                     "stream_options": {"include_obfuscation": False}})
    body = to_openai_request(request, "gpt-4o", stream=True)
    validate_openai_request(body)
    assert body == {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": True,
                    "stream_options": {"include_obfuscation": False, "include_usage": True}}
    assert to_openai_request(request, "gpt-4o", stream=False) == {
        "model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}


def test_max_tokens_field_for_older_servers() -> None:
    request = ChatRequest(dialect="anthropic", request_id="r",
                          body={"model": "c", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]})
    assert to_openai_request(request, "llama3", stream=False, max_tokens_field="max_tokens") == {
        "model": "llama3", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}


def test_openai_request_comes_back_exactly() -> None:
    original: dict[str, Any] = {
        "model": "gpt-4o", "max_tokens": 77, "temperature": 0.2, "top_p": 0.5, "stop": ["x", "y"],
        "user": "u", "seed": 3, "logprobs": True, "top_logprobs": 2, "presence_penalty": 0.5,
        "frequency_penalty": -0.5, "logit_bias": {"50256": -100}, "n": 1, "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"},
                                                                   "strict": True}},
        "reasoning_effort": "high", "metadata": {"k": "v"}, "store": True, "service_tier": "priority",
        "prompt_cache_key": "pk", "safety_identifier": "s1", "verbosity": "low",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}],
        "messages": [
            {"role": "developer", "content": "Rules"},
            {"role": "user", "content": [
                {"type": "text", "text": "see", "prompt_cache_breakpoint": {"mode": "explicit"}},
                {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "high"}},
                {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "r.pdf"}}]},
            {"role": "assistant", "content": "calling", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":[1,2]}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "bye"},
        ],
    }
    validate_openai_request(original)
    request = parse(original)
    assert to_openai_request(request, "gpt-4o", stream=False) == original
    assert request.warnings == []


def test_unknown_source_types_are_refused() -> None:
    request = ChatRequest(dialect="anthropic", request_id="r", body={
        "model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}]})
    with pytest.raises(GatewayError) as info:
        to_openai_request(request, "gpt-4o", stream=False)
    assert info.value.kind is ErrorKind.INVALID_REQUEST
