"""OpenAI Chat Completions request -> canonical (Claude-shaped) ChatRequest.

Mapping, field by field (``param`` in errors uses OpenAI's names, e.g. ``messages[2].content``):

- ``system`` / ``developer`` messages -> canonical ``system``: one string message stays a string,
  anything else becomes text blocks in order.  A system message after the first user or assistant
  turn is moved to the system prompt too (Claude has no mid-conversation system role) and the
  request records a warning.
- ``user`` / ``assistant`` -> canonical turns; consecutive same-role turns are merged (Claude
  requires alternation); ``tool`` messages become ``tool_result`` blocks of a user turn.
- ``max_completion_tokens`` (or ``max_tokens``) -> ``max_tokens``; absent: ``DEFAULT_MAX_TOKENS``
  (Claude requires a value; an OpenAI upstream does not get the default, see ``_wire`` below).
- ``temperature`` is validated in OpenAI's range 0..2 and kept as is: bringing it into Claude's
  0..1 range is the Claude target's business, not this dialect's.
- ``n`` must be 1 (the canonical model holds one choice).
- ``functions`` / ``function_call`` and ``role: function`` (deprecated) are refused with a 400.

``openai_extras`` receives the OpenAI-only options (``EXTRA_FIELDS``) that an OpenAI upstream must
get exactly, plus ``_wire``: facts about the caller's spelling (which max-tokens field, developer
vs system role, image ``detail``) that let ``to_openai_request`` rebuild the same body.  Every
other top-level field lands in ``passthrough`` with its exact value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import msgspec

from passerelle.canonical import ChatRequest, ContentBlock, Message, MessagesRequest
from passerelle.errors import invalid

DEFAULT_MAX_TOKENS = 4096

EXTRA_FIELDS = ("response_format", "seed", "logprobs", "top_logprobs", "presence_penalty",
                "frequency_penalty", "logit_bias", "parallel_tool_calls", "stream_options", "user", "n")
_TRANSLATED = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "stop", "temperature",
                         "top_p", "tools", "tool_choice", "stream", *EXTRA_FIELDS})
_DEPRECATED = {"functions": "tools", "function_call": "tool_choice"}
# Client headers an OpenAI upstream may need; the gateway's own credentials replace the rest.
_FORWARDED_HEADERS = ("openai-beta",)
_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}


def _fail(message: str, param: str | None = None) -> NoReturn:
    raise invalid(message, param)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        _fail(f"'{key}' must be a number between {low:g} and {high:g}", key)
    return value


def _text_of(part: dict[str, Any], param: str) -> ContentBlock:
    text = part.get("text")
    if not isinstance(text, str):
        _fail("a text content part needs a string 'text'", f"{param}.text")
    block: ContentBlock = {"type": "text", "text": text}
    _copy_cache_hint(part, block, param)
    return block


def _copy_cache_hint(part: dict[str, Any], block: ContentBlock, param: str) -> None:
    """OpenAI's ``prompt_cache_breakpoint`` (or a LiteLLM-style ``cache_control``) -> cache_control."""
    hint = part.get("cache_control")
    if isinstance(hint, dict):
        block["cache_control"] = dict(hint)
        return
    breakpoint_ = part.get("prompt_cache_breakpoint")
    if breakpoint_ is None:
        return
    if not isinstance(breakpoint_, dict) or breakpoint_.get("mode") != "explicit":
        _fail('\'prompt_cache_breakpoint\' must be {"mode": "explicit"}', f"{param}.prompt_cache_breakpoint")
    # Claude's longest cache lifetime stands for OpenAI's longest; "30m" is the request default.
    block["cache_control"] = {"type": "ephemeral", "ttl": "1h"} if breakpoint_.get("ttl") == "12h" \
        else {"type": "ephemeral"}


def _data_url(url: str, param: str) -> tuple[str, str]:
    header, comma, data = url[5:].partition(",")
    if not comma or not header.endswith(";base64"):
        _fail("data URLs must be base64-encoded (data:<media type>;base64,<data>)", param)
    return header.split(";", 1)[0], data


class _Parts:
    """Converts content parts, remembering what ``_wire`` must keep."""

    def __init__(self) -> None:
        self.image_detail: dict[str, str] = {}

    def user_part(self, part: object, param: str) -> ContentBlock:
        if not isinstance(part, dict):
            _fail("a content part must be an object", param)
        kind = part.get("type")
        if kind == "text":
            return _text_of(part, param)
        if kind == "image_url":
            block = self._image(part.get("image_url"), f"{param}.image_url")
        elif kind == "file":
            block = _file(part.get("file"), f"{param}.file")
        elif kind == "input_audio":
            _fail("audio input is not supported by this gateway", f"{param}.type")
        else:
            _fail(f"unsupported content part type {kind!r}", f"{param}.type")
        _copy_cache_hint(part, block, param)
        return block

    def _image(self, image: object, param: str) -> ContentBlock:
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            _fail("'image_url' must be an object with a string 'url'", param)
        url: str = image["url"]
        detail = image.get("detail")
        if isinstance(detail, str):
            self.image_detail[url] = detail
        if url.startswith("data:"):
            media_type, data = _data_url(url, f"{param}.url")
            return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        if url.startswith(("http://", "https://")):
            return {"type": "image", "source": {"type": "url", "url": url}}
        _fail("image URLs must be http(s) or base64 data URLs", f"{param}.url")


def _file(file: object, param: str) -> ContentBlock:
    if not isinstance(file, dict):
        _fail("'file' must be an object", param)
    block: ContentBlock
    if isinstance(file.get("file_data"), str):
        data: str = file["file_data"]
        media_type = "application/pdf"
        if data.startswith("data:"):
            media_type, data = _data_url(data, f"{param}.file_data")
        if media_type != "application/pdf":
            _fail(f"only PDF files are supported, not {media_type!r}", f"{param}.file_data")
        block = {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    elif isinstance(file.get("file_id"), str):
        block = {"type": "document", "source": {"type": "file", "file_id": file["file_id"]}}
    else:
        _fail("'file' needs 'file_data' or 'file_id'", param)
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _text_parts(content: object, param: str, *, refusal: bool = False) -> str | list[ContentBlock]:
    """Content that may only hold text (system, developer, tool, assistant)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        _fail("'content' must be a string or an array of content parts", param)
    blocks: list[ContentBlock] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if isinstance(part, dict) and part.get("type") == "refusal" and refusal:
            if not isinstance(part.get("refusal"), str):
                _fail("a refusal content part needs a string 'refusal'", f"{where}.refusal")
            blocks.append({"type": "text", "text": part["refusal"]})
        elif isinstance(part, dict) and part.get("type") == "text":
            blocks.append(_text_of(part, where))
        else:
            kind = part.get("type") if isinstance(part, dict) else None
            _fail(f"content part type {kind!r} is not allowed here", f"{where}.type")
    return blocks


def _tool_calls(calls: object, param: str) -> list[ContentBlock]:
    if not isinstance(calls, list):
        _fail("'tool_calls' must be an array", param)
    blocks: list[ContentBlock] = []
    for j, call in enumerate(calls):
        where = f"{param}[{j}]"
        if not isinstance(call, dict) or not isinstance(call.get("id"), str):
            _fail("a tool call needs a string 'id'", f"{where}.id")
        if call.get("type", "function") != "function":
            _fail(f"unsupported tool call type {call.get('type')!r}", f"{where}.type")
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            _fail("a tool call needs 'function.name'", f"{where}.function.name")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            _fail("'arguments' must be a JSON string", f"{where}.function.arguments")
        try:
            parsed = msgspec.json.decode(arguments) if arguments.strip() else {}
        except msgspec.DecodeError:
            _fail("'arguments' is not valid JSON", f"{where}.function.arguments")
        if not isinstance(parsed, dict):
            _fail("'arguments' must encode a JSON object", f"{where}.function.arguments")
        blocks.append({"type": "tool_use", "id": call["id"], "name": function["name"], "input": parsed})
    return blocks


def _append(messages: list[Message], role: str, content: str | list[ContentBlock]) -> None:
    """Append a turn, merging it into the previous one of the same role."""
    if messages and messages[-1]["role"] == role:
        previous = messages[-1]["content"]
        merged = [{"type": "text", "text": previous}] if isinstance(previous, str) else previous
        merged.extend([{"type": "text", "text": content}] if isinstance(content, str) else content)
        messages[-1]["content"] = merged
    else:
        messages.append({"role": "user" if role == "user" else "assistant", "content": content})


def _convert_messages(raw: object, request: ChatRequest, parts: _Parts) -> dict[str, str]:
    """Fill request.body's system and messages; return the ``_wire`` facts learned on the way."""
    if not isinstance(raw, list) or not raw:
        _fail("'messages' must be a non-empty array", "messages")
    system: list[str | list[ContentBlock]] = []
    system_roles: set[str] = set()
    messages: list[Message] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            _fail("each message must be an object", where)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system_roles.add(role)
            if messages:
                request.warn(f"{role} message at {where} moved to the system prompt")
            system.append(_text_parts(content, f"{where}.content"))
        elif role == "user":
            if isinstance(content, str):
                _append(messages, "user", content)
            elif isinstance(content, list):
                _append(messages, "user", [parts.user_part(p, f"{where}.content[{j}]")
                                           for j, p in enumerate(content)])
            else:
                _fail("'content' must be a string or an array of content parts", f"{where}.content")
        elif role == "assistant":
            if message.get("function_call") is not None:
                _fail("'function_call' is deprecated; use 'tool_calls'", f"{where}.function_call")
            turn = [] if content is None else _text_parts(content, f"{where}.content", refusal=True)
            if message.get("tool_calls"):
                if isinstance(turn, str):
                    turn = [{"type": "text", "text": turn}] if turn else []
                turn = [*turn, *_tool_calls(message["tool_calls"], f"{where}.tool_calls")]
            if turn:  # an empty assistant turn has nothing for Claude to read: skip it
                _append(messages, "assistant", turn)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                _fail("a tool message needs a string 'tool_call_id'", f"{where}.tool_call_id")
            result = {"type": "tool_result", "tool_use_id": call_id,
                      "content": _text_parts(content, f"{where}.content")}
            _append(messages, "user", [result])
        elif role == "function":
            _fail("role 'function' is deprecated; use 'tool'", f"{where}.role")
        else:
            _fail(f"unknown role {role!r}", f"{where}.role")
    body = request.body
    body["messages"] = messages
    if len(system) == 1 and isinstance(system[0], str):
        body["system"] = system[0]
    elif system:
        body["system"] = [block for item in system
                          for block in ([{"type": "text", "text": item}] if isinstance(item, str) else item)]
    return {"system_role": "developer"} if system_roles == {"developer"} else {}


def _tools(raw: object) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        _fail("'tools' must be an array", "tools")
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            _fail("only tools of type 'function' are supported", f"{where}.type")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            _fail("a tool needs 'function.name'", f"{where}.function.name")
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            _fail("'parameters' must be a JSON schema object", f"{where}.function.parameters")
        definition: dict[str, Any] = {"name": function["name"]}
        if isinstance(function.get("description"), str):
            definition["description"] = function["description"]
        definition["input_schema"] = parameters
        if isinstance(function.get("strict"), bool):
            definition["strict"] = function["strict"]
        tools.append(definition)
    return tools


def _tool_choice(raw: object) -> dict[str, Any]:
    if isinstance(raw, str) and raw in _TOOL_CHOICE:
        return {"type": _TOOL_CHOICE[raw]}
    if isinstance(raw, dict) and raw.get("type") == "function":
        function = raw.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return {"type": "tool", "name": function["name"]}
        _fail("a named tool choice needs 'function.name'", "tool_choice.function.name")
    _fail("'tool_choice' must be 'auto', 'required', 'none' or a named function", "tool_choice")


def _valid_extra(key: str, value: Any) -> bool:
    if key in ("seed", "n"):
        return _is_int(value)
    if key == "top_logprobs":
        return _is_int(value) and 0 <= value <= 20
    if key in ("logprobs", "parallel_tool_calls"):
        return isinstance(value, bool)
    if key in ("logit_bias", "stream_options"):
        return isinstance(value, dict)
    if key == "user":
        return isinstance(value, str)
    if key == "response_format":
        return isinstance(value, dict) and value.get("type") in ("text", "json_object", "json_schema")
    # presence_penalty, frequency_penalty
    return isinstance(value, int | float) and not isinstance(value, bool) and -2.0 <= value <= 2.0


def _check_extras(body: dict[str, Any]) -> dict[str, Any]:
    extras = {key: body[key] for key in EXTRA_FIELDS if body.get(key) is not None}
    for key, value in extras.items():
        if not _valid_extra(key, value):
            _fail(f"invalid value for '{key}'", key)
    if extras.get("n", 1) < 1:
        _fail("'n' must be a positive integer", "n")
    if extras.get("n", 1) > 1:
        _fail("'n' greater than 1 is not supported by this gateway", "n")
    response_format = extras.get("response_format")
    if response_format is not None and response_format["type"] == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
            _fail("'json_schema' needs a 'name'", "response_format.json_schema")
    return extras


def chat_request_from_openai(body: object, *, request_id: str,
                             headers: Mapping[str, str] | None = None) -> ChatRequest:
    """Validate an OpenAI chat completions body and translate it (see the module docstring)."""
    if not isinstance(body, dict):
        _fail("the request body must be a JSON object")
    for key, instead in _DEPRECATED.items():
        if key in body:
            _fail(f"'{key}' is deprecated and not supported; use '{instead}'", key)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        _fail("'model' must be a non-empty string", "model")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        _fail("'stream' must be a boolean", "stream")
    canonical: MessagesRequest = {"model": model}
    request = ChatRequest(body=canonical, dialect="openai", request_id=request_id, stream=bool(stream))
    parts = _Parts()
    wire: dict[str, Any] = _convert_messages(body.get("messages"), request, parts)
    if parts.image_detail:
        wire["image_detail"] = parts.image_detail

    field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = body.get(field)
    if max_tokens is None:
        canonical["max_tokens"] = DEFAULT_MAX_TOKENS
    elif not _is_int(max_tokens) or max_tokens < 1:
        _fail(f"'{field}' must be a positive integer", field)
    else:
        canonical["max_tokens"] = max_tokens
        wire["max_tokens_field"] = field
    stop = body.get("stop")
    if isinstance(stop, str):
        canonical["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if stop:
            canonical["stop_sequences"] = list(stop)
    elif stop is not None:
        _fail("'stop' must be a string or an array of strings", "stop")
    temperature = _number(body, "temperature", 0.0, 2.0)
    if temperature is not None:
        canonical["temperature"] = temperature
    top_p = _number(body, "top_p", 0.0, 1.0)
    if top_p is not None:
        canonical["top_p"] = top_p

    extras = _check_extras(body)
    if body.get("tools"):
        canonical["tools"] = _tools(body["tools"])  # type: ignore[typeddict-item]
        choice = _tool_choice(body["tool_choice"]) if body.get("tool_choice") is not None else None
        if extras.get("parallel_tool_calls") is False and (choice is None or choice["type"] != "none"):
            if choice is None:
                wire["implicit_tool_choice"] = True  # so an OpenAI upstream gets no tool_choice back
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice is not None:
            canonical["tool_choice"] = choice
    elif body.get("tools") is not None:
        _tools(body["tools"])
        extras["tools"] = body["tools"]  # an empty array: only an OpenAI upstream cares
    if body.get("tool_choice") is not None and "tool_choice" not in canonical:
        _tool_choice(body["tool_choice"])
        extras["tool_choice"] = body["tool_choice"]  # without tools Claude would refuse it
    if isinstance(extras.get("user"), str):
        canonical["metadata"] = {"user_id": extras["user"]}
    if wire:
        extras["_wire"] = wire
    request.openai_extras = extras
    request.passthrough = {key: value for key, value in body.items() if key not in _TRANSLATED}
    if headers:
        request.passthrough_headers = {name.lower(): value for name, value in headers.items()
                                       if name.lower() in _FORWARDED_HEADERS}
    return request
