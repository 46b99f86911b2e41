"""Canonical ChatRequest -> OpenAI Chat Completions body, for OpenAI-style upstreams.

When the caller spoke OpenAI too, its unmodeled fields (``passthrough``), OpenAI-only options
(``openai_extras``) and spelling (``_wire``) are put back, so OpenAI -> OpenAI is exact up to these
normalisations: several system/developer messages become one message with a text part each,
``stop`` becomes a list, tool call arguments are re-serialised compactly, empty assistant turns
and ``name`` fields are dropped, a mid-conversation system message moves to the front.

From another dialect the mapping is:

- system -> one system message (a string stays a string, blocks become text parts);
- text / image (base64 -> data: URL, url) / document (PDF -> file part) blocks -> content parts;
- assistant text blocks are joined into one string, ``tool_use`` -> ``tool_calls`` (input as
  compact JSON), thinking blocks in the history are dropped (OpenAI cannot take them back);
- ``tool_result`` -> ``tool`` messages (text parts; images move to a user message after them,
  since tool messages only carry text; ``is_error`` has no OpenAI spelling and is dropped);
- ``thinking``, ``top_k``, server tools and ``cache_control`` have no OpenAI equivalent: dropped,
  each with a warning on the request.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec

from passerelle.canonical import ChatRequest, ContentBlock, MessagesRequest
from passerelle.dialects.openai.request import DEFAULT_MAX_TOKENS
from passerelle.errors import invalid

_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
_IMPLICIT_CHOICE = {"type": "auto", "disable_parallel_tool_use": True}
_CACHE_WARNING = "dropped cache_control hints: an openai-style upstream caches prompt prefixes itself"


def _arguments(value: object) -> str:
    return msgspec.json.encode(value).decode()


class _Writer:
    """Builds the messages array; ``native`` is true when the caller spoke OpenAI."""

    def __init__(self, request: ChatRequest) -> None:
        self.request = request
        self.native = request.dialect == "openai"
        self.wire: dict[str, Any] = request.openai_extras.get("_wire") or {}
        self.out: list[dict[str, Any]] = []

    def hint(self, block: ContentBlock, part: dict[str, Any] | None) -> None:
        """Carry a cache hint as OpenAI's own breakpoint for an OpenAI caller, else drop it."""
        control = block.get("cache_control")
        if not control:
            return
        if self.native and part is not None:
            part["prompt_cache_breakpoint"] = {"mode": "explicit", "ttl": "12h"} \
                if control.get("ttl") == "1h" else {"mode": "explicit"}
        else:
            self.request.warn(_CACHE_WARNING)

    def text(self, block: ContentBlock) -> dict[str, Any]:
        part = {"type": "text", "text": block["text"]}
        self.hint(block, part)
        return part

    def image(self, block: ContentBlock) -> dict[str, Any]:
        source = block.get("source") or {}
        if source.get("type") == "base64":
            url = f"data:{source['media_type']};base64,{source['data']}"
        elif source.get("type") == "url":
            url = source["url"]
        else:
            raise invalid(f"image source {source.get('type')!r} cannot be sent to an openai-style upstream")
        image: dict[str, Any] = {"url": url}
        detail = self.wire.get("image_detail", {}).get(url)
        if detail is not None:
            image["detail"] = detail
        part = {"type": "image_url", "image_url": image}
        self.hint(block, part)
        return part

    def document(self, block: ContentBlock) -> dict[str, Any]:
        source = block.get("source") or {}
        file: dict[str, Any]
        if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
            # OpenAI wants a filename with inline data.
            file = {"file_data": f"data:application/pdf;base64,{source['data']}",
                    "filename": block.get("title") or "document.pdf"}
        elif source.get("type") == "file":
            file = {"file_id": source["file_id"]}
            if block.get("title"):
                file["filename"] = block["title"]
        elif source.get("type") == "text":
            return self.text({"text": source["data"], "cache_control": block.get("cache_control")})
        else:
            raise invalid(f"document source {source.get('type')!r} cannot be sent to an openai-style "
                          "upstream")
        part = {"type": "file", "file": file}
        self.hint(block, part)
        return part

    def user_part(self, block: ContentBlock) -> dict[str, Any] | None:
        kind = block.get("type")
        if kind == "text":
            return self.text(block)
        if kind == "image":
            return self.image(block)
        if kind == "document":
            return self.document(block)
        self.request.warn(f"dropped '{kind}' content blocks for an openai-style upstream")
        return None

    def tool_message(self, block: ContentBlock, moved: list[dict[str, Any]]) -> dict[str, Any]:
        content = block.get("content")
        self.hint(block, None)
        if isinstance(content, list):
            parts = []
            for item in content:
                if item.get("type") == "text":
                    parts.append(self.text(item))
                elif item.get("type") == "image":
                    self.request.warn("moved tool result images to a user message: openai tool messages "
                                      "carry text only")
                    moved.append(self.image(item))
                else:
                    self.request.warn(f"dropped '{item.get('type')}' blocks in a tool result")
            content = parts or ""
        return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": content or ""}

    def user(self, content: str | list[ContentBlock]) -> None:
        if isinstance(content, str):
            self.out.append({"role": "user", "content": content})
            return
        tools: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []
        for block in content:
            if block.get("type") == "tool_result":
                tools.append(self.tool_message(block, moved))
            elif (part := self.user_part(block)) is not None:
                parts.append(part)
        self.out.extend(tools)  # tool messages must follow the assistant's tool_calls directly
        if parts or moved or not tools:
            self.out.append({"role": "user", "content": parts + moved})

    def assistant(self, content: str | list[ContentBlock]) -> None:
        if isinstance(content, str):
            self.out.append({"role": "assistant", "content": content})
            return
        text: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in content:
            kind = block.get("type")
            if kind == "text":
                text.append(block["text"])
                self.hint(block, None)
            elif kind == "tool_use":
                function = {"name": block["name"], "arguments": _arguments(block.get("input", {}))}
                calls.append({"id": block["id"], "type": "function", "function": function})
            elif kind not in ("thinking", "redacted_thinking"):
                self.request.warn(f"dropped '{kind}' content blocks for an openai-style upstream")
        message: dict[str, Any] = {"role": "assistant",
                                   "content": "".join(text) if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        self.out.append(message)

    def messages(self, body: MessagesRequest) -> list[dict[str, Any]]:
        system = body.get("system")
        if system:
            role = self.wire.get("system_role", "system")
            if isinstance(system, str):
                self.out.append({"role": role, "content": system})
            else:
                parts = [self.text(block) for block in system if block.get("type") == "text"]
                self.out.append({"role": role, "content": parts})
        for message in body["messages"]:
            if message["role"] == "user":
                self.user(message["content"])
            else:
                self.assistant(message["content"])
        return self.out


def _tools(writer: _Writer, body: MessagesRequest, out: dict[str, Any]) -> None:
    tools: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        if tool.get("type") not in (None, "custom"):
            writer.request.warn(f"dropped server tool '{tool.get('name')}' for an openai-style upstream")
            continue
        function: dict[str, Any] = {"name": tool["name"]}
        if "description" in tool:
            function["description"] = tool["description"]
        function["parameters"] = tool.get("input_schema", {"type": "object", "properties": {}})
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool.get("strict")
        writer.hint(cast(ContentBlock, tool), None)
        tools.append({"type": "function", "function": function})
    if not tools:
        return
    out["tools"] = tools
    choice = body.get("tool_choice") or {}
    # The OpenAI caller sent parallel_tool_calls=false and no tool_choice: send none back either.
    implicit = writer.wire.get("implicit_tool_choice") and choice == _IMPLICIT_CHOICE
    if choice.get("type") == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif choice.get("type") in _TOOL_CHOICE and not implicit:
        out["tool_choice"] = _TOOL_CHOICE[choice["type"]]
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


def to_openai_request(request: ChatRequest, model: str, *, stream: bool,
                      max_tokens_field: str = "max_completion_tokens") -> dict[str, Any]:
    """The chat completions body for ``model``.  ``max_tokens_field`` names the limit's field
    for an upstream that does not know ``max_completion_tokens`` (older OpenAI-compatible
    servers); an OpenAI caller's own spelling wins.  A stream always asks for the usage chunk."""
    if request.dialect != "openai":
        request.drop_foreign("openai")
    body = request.body
    writer = _Writer(request)
    out: dict[str, Any] = {"model": model, "messages": writer.messages(body)}
    max_tokens = body.get("max_tokens")
    field = writer.wire.get("max_tokens_field")
    # An OpenAI caller that set no limit gets none: the default exists for Claude only (unless a
    # hard budget needs the answer capped: see pipeline/limits.py).
    if max_tokens is not None and (field or not writer.native or max_tokens != DEFAULT_MAX_TOKENS
                                   or writer.wire.get("cap_max_tokens")):
        out[field or max_tokens_field] = max_tokens
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    for key in ("temperature", "top_p"):
        if key in body:
            out[key] = body[key]
    if "top_k" in body:
        request.warn("dropped 'top_k': an openai-style upstream has no such option")
    if (body.get("thinking") or {}).get("type", "disabled") != "disabled":
        request.warn("dropped 'thinking': an openai-style upstream has no such option")
    user_id = (body.get("metadata") or {}).get("user_id")
    if isinstance(user_id, str):
        out["user"] = user_id
    _tools(writer, body, out)
    out.update((key, value) for key, value in request.openai_extras.items() if key != "_wire")
    if stream:
        out["stream"] = True
        out["stream_options"] = {**(request.openai_extras.get("stream_options") or {}), "include_usage": True}
    else:
        out.pop("stream_options", None)
    if writer.native:
        out.update(request.passthrough)
    return out
