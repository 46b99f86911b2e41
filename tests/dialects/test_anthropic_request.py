from __future__ import annotations

from typing import Any

import pytest

from passerelle.dialects.anthropic.request import chat_request_from_anthropic
from passerelle.errors import ErrorKind, GatewayError


def parse(body: Any, headers: dict[str, str] | None = None) -> Any:
    return chat_request_from_anthropic(body, request_id="r", headers=headers or {})


BASE = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def test_unmodeled_fields_and_headers_are_kept_aside() -> None:
    request = parse({**BASE, "stream": True, "service_tier": "auto", "container": {"id": "c"}},
                    {"anthropic-version": "2023-06-01", "anthropic-beta": "x", "anthropic-dangerous-y": "1",
                     "x-api-key": "secret", "user-agent": "sdk"})
    assert request.stream is True and "stream" not in request.body
    assert request.passthrough == {"service_tier": "auto", "container": {"id": "c"}}
    assert request.passthrough_headers == {"anthropic-dangerous-y": "1"}  # no secrets, no hop headers
    assert request.body == BASE


def test_unknown_block_types_pass() -> None:
    body = {**BASE, "messages": [{"role": "user", "content": [{"type": "search_result", "whatever": 1}]}]}
    assert parse(body).body["messages"][0]["content"][0]["type"] == "search_result"


@pytest.mark.parametrize(("body", "param"), [
    ([], "body"),
    ({**BASE, "model": 3}, "model"),
    ({k: v for k, v in BASE.items() if k != "max_tokens"}, "max_tokens"),
    ({**BASE, "max_tokens": 0}, "max_tokens"),
    ({**BASE, "max_tokens": True}, "max_tokens"),
    ({**BASE, "messages": "hi"}, "messages"),
    ({**BASE, "messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({**BASE, "messages": [{"role": "user"}]}, "messages.0.content"),
    ({**BASE, "messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages.0.content.0.text"),
    ({**BASE, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}]},
     "messages.0.content.0.source.type"),
    ({**BASE, "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n",
                                                              "input": "{}"}]}]}, "messages.0.content.0.input"),
    ({**BASE, "temperature": 1.5}, "temperature"),
    ({**BASE, "top_k": -1}, "top_k"),
    ({**BASE, "stop_sequences": "END"}, "stop_sequences"),
    ({**BASE, "tools": [{"name": "t"}]}, "tools.0.input_schema"),
    ({**BASE, "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
    ({**BASE, "tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({**BASE, "thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({**BASE, "stream": "yes"}, "stream"),
    ({**BASE, "metadata": {"user_id": 5}}, "metadata.user_id"),
])
def test_malformed_requests_name_the_field(body: Any, param: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse(body)
    assert info.value.kind is ErrorKind.INVALID_REQUEST and info.value.param == param
    assert info.value.message.startswith(param + ":")
