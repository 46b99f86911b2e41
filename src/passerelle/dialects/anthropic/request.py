"""Validate an inbound Anthropic Messages request and wrap it as a ChatRequest.

Validation is strict on the fields the gateway models and lenient on everything else:
unknown top-level fields and unknown content block types are kept for a same-dialect
upstream (forward compatibility), never refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from passerelle.canonical import ChatRequest, MessagesRequest
from passerelle.errors import GatewayError, invalid

MODELED_FIELDS = frozenset({
    "model", "max_tokens", "messages", "system", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "metadata", "tools", "tool_choice", "thinking",
})
# Headers that belong to the transport or to the gateway itself, never forwarded upstream.
_HOP_HEADERS = frozenset({
    "host", "content-length", "content-type", "connection", "accept", "accept-encoding", "user-agent",
    "x-api-key", "authorization", "anthropic-version", "anthropic-beta", "keep-alive", "te", "trailer",
    "transfer-encoding", "upgrade", "cookie", "x-request-id", "x-passerelle-timeout",
})
_FORWARDED_HEADER_PREFIXES = ("anthropic-",)  # the API's own feature headers; never SDK telemetry


def _fail(path: str, message: str) -> GatewayError:
    return invalid(f"{path}: {message}", param=path)


def _expect(value: Any, kind: type | tuple[type, ...], path: str, what: str) -> None:
    # bool is an int subclass: a JSON true is never a valid number here.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise _fail(path, f"Input should be {what}")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _number(body: Mapping[str, Any], key: str, low: float, high: float | None) -> None:
    if key not in body:
        return
    value = body[key]
    _expect(value, (int, float), key, "a number")
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise _fail(key, f"Input should be {bound}")


def _source(source: Any, path: str, kinds: tuple[str, ...]) -> None:
    _expect(source, dict, path, "an object")
    kind = source.get("type")
    if kind not in kinds:
        raise _fail(f"{path}.type", f"Input should be one of {', '.join(repr(k) for k in kinds)}")
    if kind == "base64":
        _expect(source.get("media_type"), str, f"{path}.media_type", "a valid string")
        _expect(source.get("data"), str, f"{path}.data", "a valid string")
    elif kind == "url":
        _expect(source.get("url"), str, f"{path}.url", "a valid string")
    elif kind == "text":
        _expect(source.get("data"), str, f"{path}.data", "a valid string")
    elif kind == "content":
        _expect(source.get("content"), (str, list), f"{path}.content", "a string or a list")
    elif kind == "file":
        _expect(source.get("file_id"), str, f"{path}.file_id", "a valid string")


def validate_block(block: Any, path: str) -> None:
    _expect(block, dict, path, "an object")
    kind = block.get("type")
    _expect(kind, str, f"{path}.type", "a valid string")
    if kind == "text":
        _expect(block.get("text"), str, f"{path}.text", "a valid string")
    elif kind == "image":
        _source(block.get("source"), f"{path}.source", ("base64", "url", "file"))
    elif kind == "document":
        _source(block.get("source"), f"{path}.source", ("base64", "url", "text", "content", "file"))
    elif kind == "tool_use":
        _expect(block.get("id"), str, f"{path}.id", "a valid string")
        _expect(block.get("name"), str, f"{path}.name", "a valid string")
        _expect(block.get("input"), dict, f"{path}.input", "a valid dictionary")
    elif kind == "tool_result":
        _expect(block.get("tool_use_id"), str, f"{path}.tool_use_id", "a valid string")
        content = block.get("content", "")
        _expect(content, (str, list), f"{path}.content", "a string or a list of content blocks")
        if isinstance(content, list):
            for i, inner in enumerate(content):
                validate_block(inner, f"{path}.content.{i}")
        if "is_error" in block:
            _expect(block["is_error"], bool, f"{path}.is_error", "a valid boolean")
    elif kind == "thinking":
        _expect(block.get("thinking"), str, f"{path}.thinking", "a valid string")
        _expect(block.get("signature"), str, f"{path}.signature", "a valid string")
    elif kind == "redacted_thinking":
        _expect(block.get("data"), str, f"{path}.data", "a valid string")
    # Other block types (server tools, search results, ...) pass through as they are.


def _content(content: Any, path: str) -> None:
    if isinstance(content, str):
        return
    _expect(content, list, path, "a string or a list of content blocks")
    for i, block in enumerate(content):
        validate_block(block, f"{path}.{i}")


def _tools(tools: Any) -> None:
    _expect(tools, list, "tools", "a valid list")
    for i, tool in enumerate(tools):
        path = f"tools.{i}"
        _expect(tool, dict, path, "an object")
        if "type" in tool and tool["type"] not in (None, "custom"):
            _expect(tool["type"], str, f"{path}.type", "a valid string")
            continue  # a server tool (web search, code execution, ...): its fields are the upstream's
        _expect(tool.get("name"), str, f"{path}.name", "a valid string")
        if not tool["name"]:
            raise _fail(f"{path}.name", "String should have at least 1 character")
        _expect(tool.get("input_schema"), dict, f"{path}.input_schema", "a valid dictionary")
        if "description" in tool:
            _expect(tool["description"], str, f"{path}.description", "a valid string")


def _tool_choice(choice: Any) -> None:
    _expect(choice, dict, "tool_choice", "an object")
    kind = choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        raise _fail("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    if kind == "tool":
        _expect(choice.get("name"), str, "tool_choice.name", "a valid string")


def validate_messages_request(body: Any, *, count_only: bool = False) -> None:
    """Raise GatewayError(invalid_request) naming the first bad field of ``body``."""
    _expect(body, dict, "body", "a JSON object")
    _expect(body.get("model"), str, "model", "a valid string (field required)")
    if not body["model"]:
        raise _fail("model", "String should have at least 1 character")
    if not count_only:
        if "max_tokens" not in body:
            raise _fail("max_tokens", "Field required")
        _expect(body["max_tokens"], int, "max_tokens", "a valid integer")
        if body["max_tokens"] < 1:
            raise _fail("max_tokens", "Input should be greater than or equal to 1")
    messages = body.get("messages")
    if messages is None:
        raise _fail("messages", "Field required")
    _expect(messages, list, "messages", "a valid list")
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        _expect(message, dict, path, "an object")
        if message.get("role") not in ("user", "assistant"):
            raise _fail(f"{path}.role", "Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise _fail(f"{path}.content", "Field required")
        _content(message["content"], f"{path}.content")
    if "system" in body:
        _content(body["system"], "system")
    if "stop_sequences" in body:
        stops = body["stop_sequences"]
        _expect(stops, list, "stop_sequences", "a valid list")
        for i, stop in enumerate(stops):
            _expect(stop, str, f"stop_sequences.{i}", "a valid string")
    _number(body, "temperature", 0.0, 1.0)
    _number(body, "top_p", 0.0, 1.0)
    if "top_k" in body:
        _expect(body["top_k"], int, "top_k", "a valid integer")
        _number(body, "top_k", 0, None)
    if "metadata" in body:
        _expect(body["metadata"], dict, "metadata", "a valid dictionary")
        if body["metadata"].get("user_id") is not None:
            _expect(body["metadata"]["user_id"], str, "metadata.user_id", "a valid string")
    if "stream" in body:
        _expect(body["stream"], bool, "stream", "a valid boolean")
    if "tools" in body:
        _tools(body["tools"])
    if "tool_choice" in body:
        _tool_choice(body["tool_choice"])
    if "thinking" in body:
        thinking = body["thinking"]
        _expect(thinking, dict, "thinking", "an object")
        _expect(thinking.get("type"), str, "thinking.type", "a valid string")
        if thinking["type"] == "enabled":
            _expect(thinking.get("budget_tokens"), int, "thinking.budget_tokens", "a valid integer")


def split_beta(values: list[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def chat_request_from_anthropic(
    body: Any, *, request_id: str, headers: Mapping[str, str], query: Mapping[str, str] | None = None,
    count_only: bool = False, beta: list[str] | None = None,
) -> ChatRequest:
    """Validate ``body`` and split it into modeled fields and pass-through fields."""
    validate_messages_request(body, count_only=count_only)
    modeled: dict[str, Any] = {}
    passthrough: dict[str, Any] = {}
    for key, value in body.items():
        (modeled if key in MODELED_FIELDS else passthrough)[key] = value
    stream = bool(modeled.pop("stream", False))
    forwarded = {
        name: value for name, value in headers.items()
        if name not in _HOP_HEADERS and name.startswith(_FORWARDED_HEADER_PREFIXES)
    }
    canonical: MessagesRequest = modeled  # type: ignore[assignment]
    return ChatRequest(
        body=canonical, dialect="anthropic", request_id=request_id, stream=stream,
        passthrough=passthrough, passthrough_headers=forwarded, query=dict(query or {}),
        anthropic_version=headers.get("anthropic-version") or "2023-06-01",
        anthropic_beta=beta or [],
    )
