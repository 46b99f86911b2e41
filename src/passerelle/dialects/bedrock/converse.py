"""Canonical (Claude-shaped) <-> Bedrock Converse / ConverseStream, both directions.

In the JSON wire format Converse carries blobs (image and document bytes, redacted reasoning)
as base64 strings: the canonical model holds the same base64 strings, so they pass unchanged.
Member names follow botocore's service model for bedrock-runtime (2023-09-30).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

import msgspec

from passerelle.canonical import ChatRequest, ContentBlock, MessageResponse, MessagesRequest, StreamEvent
from passerelle.canonical.messages import StopReason, Usage
from passerelle.errors import ErrorKind, GatewayError, UpstreamError, invalid

_IMAGE_FORMATS = {"image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
_DOC_FORMATS = {
    "application/pdf": "pdf", "text/csv": "csv", "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html", "text/markdown": "md",
}
_DOC_MEDIA = {fmt: media for media, fmt in _DOC_FORMATS.items()}
_STOP_FROM_CONVERSE: dict[str, StopReason] = {
    "end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence", "model_context_window_exceeded": "max_tokens",
    # A guardrail or content filter replaced the answer: Anthropic's word for that is refusal.
    "guardrail_intervened": "refusal", "content_filtered": "refusal",
}
_STOP_TO_CONVERSE = {"refusal": "content_filtered", "pause_turn": "end_turn"}
_INFERENCE = (("max_tokens", "maxTokens"), ("temperature", "temperature"), ("top_p", "topP"),
              ("stop_sequences", "stopSequences"))
_DOC_NAME_BAD = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")


def is_claude(model: str) -> bool:
    model = model.lower()
    return "anthropic." in model or "claude" in model


def new_message_id() -> str:
    # Converse answers carry no message id.
    return "msg_bdrk_" + secrets.token_hex(12)


# ---------------------------------------------------------------- request: canonical -> Converse

def _cache_point(block: dict[str, Any]) -> list[dict[str, Any]]:
    control = block.get("cache_control")
    if not isinstance(control, dict):
        return []
    point: dict[str, Any] = {"type": "default"}
    if control.get("ttl") in ("5m", "1h"):
        point["ttl"] = control["ttl"]
    return [{"cachePoint": point}]


def _image(block: ContentBlock) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") != "base64":
        raise invalid(f"Bedrock Converse accepts only base64 image data, not a '{source.get('type')}' "
                      "image source; send the image bytes inline", "messages")
    fmt = _IMAGE_FORMATS.get(str(source.get("media_type")))
    if fmt is None:
        raise invalid(f"Bedrock Converse does not accept image type '{source.get('media_type')}'", "messages")
    return {"image": {"format": fmt, "source": {"bytes": source.get("data")}}}


def _document(block: ContentBlock, names: list[int]) -> dict[str, Any]:
    source = block.get("source") or {}
    kind = source.get("type")
    doc: dict[str, Any]
    if kind == "base64" and source.get("media_type") in _DOC_FORMATS:
        doc = {"format": _DOC_FORMATS[source["media_type"]], "source": {"bytes": source.get("data")}}
    elif kind == "text":
        text = str(source.get("data", ""))
        doc = {"format": "txt", "source": {"bytes": base64.b64encode(text.encode()).decode()}}
    elif kind == "content" and all(part.get("type") == "text" for part in source.get("content") or []):
        doc = {"source": {"content": [{"text": part.get("text", "")} for part in source["content"] or []]}}
    else:
        raise invalid(f"Bedrock Converse cannot take a document source of type '{kind}' "
                      f"({source.get('media_type', 'no media type')}); send base64 or text data", "messages")
    # Bedrock requires a name of letters, digits, single spaces, hyphens and brackets.
    title = " ".join(_DOC_NAME_BAD.sub(" ", str(block.get("title") or "")).split())[:200]
    names[0] += 1
    doc["name"] = title or f"document-{names[0]}"
    if block.get("context"):
        doc["context"] = block["context"]
    if isinstance(block.get("citations"), dict):
        doc["citations"] = {"enabled": bool(block["citations"].get("enabled"))}
    return {"document": doc}


def _tool_result(block: ContentBlock, names: list[int]) -> dict[str, Any]:
    content = block.get("content") or []
    for part in content if isinstance(content, list) else []:
        if part.get("type") not in ("text", "image", "document"):
            raise invalid(f"Bedrock Converse cannot carry a '{part.get('type')}' block in a tool result",
                          "messages")
    parts = [p for p in _content_to_converse(content, names) if "cachePoint" not in p]
    result: dict[str, Any] = {"toolUseId": block.get("tool_use_id"), "content": parts}
    if block.get("is_error"):
        result["status"] = "error"
    return {"toolResult": result}


def _content_to_converse(content: str | list[ContentBlock], names: list[int]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    out: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            out.append({"text": block.get("text", "")})
        elif kind == "image":
            out.append(_image(block))
        elif kind == "document":
            out.append(_document(block, names))
        elif kind == "tool_use":
            out.append({"toolUse": {"toolUseId": block.get("id"), "name": block.get("name"),
                                    "input": block.get("input", {})}})
        elif kind == "tool_result":
            out.append(_tool_result(block, names))
        elif kind == "thinking":
            reasoning: dict[str, Any] = {"text": block.get("thinking", "")}
            if block.get("signature"):
                reasoning["signature"] = block["signature"]
            out.append({"reasoningContent": {"reasoningText": reasoning}})
        elif kind == "redacted_thinking":
            out.append({"reasoningContent": {"redactedContent": block.get("data", "")}})
        else:
            raise invalid(f"content block type '{kind}' cannot be sent through the Bedrock Converse API "
                          "(use api: invoke for Claude models)", "messages")
        out.extend(_cache_point(block))
    return out


def _tool_config(body: MessagesRequest, request: ChatRequest) -> dict[str, Any] | None:
    tools: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        if tool.get("type") not in (None, "custom"):
            raise invalid(f"tool type '{tool.get('type')}' cannot be sent through the Bedrock Converse API "
                          "(use api: invoke for Claude models)", "tools")
        spec: dict[str, Any] = {"name": tool.get("name"),
                                "inputSchema": {"json": tool.get("input_schema", {})}}
        if tool.get("description"):
            spec["description"] = tool["description"]
        tools.append({"toolSpec": spec})
        tools.extend(_cache_point(dict(tool)))
    if not tools:
        return None
    config: dict[str, Any] = {"tools": tools}
    choice = body.get("tool_choice") or {}
    kind = choice.get("type")
    if kind in ("auto", "any"):
        config["toolChoice"] = {kind: {}}
    elif kind == "tool":
        config["toolChoice"] = {"tool": {"name": choice.get("name")}}
    elif kind == "none":
        # Converse has no "none": without tool blocks in the history the tools can simply go.
        used = any(isinstance(m["content"], list) and any(b.get("type") in ("tool_use", "tool_result")
                                                          for b in m["content"]) for m in body["messages"])
        if not used:
            return None
        request.warn("tool_choice 'none' is not supported by Bedrock Converse; sent as 'auto'")
    if choice.get("disable_parallel_tool_use"):
        request.warn("dropped 'disable_parallel_tool_use': not supported by Bedrock Converse")
    return config


def to_converse_request(request: ChatRequest, model: str) -> dict[str, Any]:
    """The Converse / ConverseStream JSON body (the model id goes in the URI, not here)."""
    body = request.body
    for key in request.passthrough:
        request.warn(f"dropped unsupported {request.dialect} field '{key}' for the Bedrock Converse API")
    # OpenAI-only options were already checked, emulated or warned about by the router's bridge.
    names = [0]
    out: dict[str, Any] = {"messages": [
        {"role": m["role"], "content": _content_to_converse(m["content"], names)} for m in body["messages"]]}
    system = body.get("system")
    if system:
        blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
        out["system"] = [part for b in blocks for part in
                         ([{"text": b["text"]}] if b.get("text") else []) + _cache_point(b)]
    fields: dict[str, Any] = dict(body)
    inference = {wire: fields[key] for key, wire in _INFERENCE if key in fields}
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(body, request)
    if tool_config:
        out["toolConfig"] = tool_config
    claude = is_claude(model)
    extra: dict[str, Any] = {}
    if "top_k" in body:
        # Nova nests its sampling options; Claude and most others take a flat top_k.
        extra.update({"inferenceConfig": {"topK": body["top_k"]}} if "nova" in model.lower()
                     else {"top_k": body["top_k"]})
    if body.get("thinking"):
        if claude:
            extra["thinking"] = body["thinking"]
        else:
            request.warn("dropped 'thinking': only Claude models take it through Bedrock Converse")
    if request.anthropic_beta and claude:
        extra["anthropic_beta"] = list(request.anthropic_beta)
    if extra:
        out["additionalModelRequestFields"] = extra
    if claude and body.get("stop_sequences"):
        # Converse reports stop_sequence as a reason only; Claude can name the sequence too.
        out["additionalModelResponseFieldPaths"] = ["/stop_sequence"]
    return out


# ---------------------------------------------------------------- request: Converse -> canonical

def _cache_control(point: dict[str, Any]) -> dict[str, Any]:
    control = {"type": "ephemeral"}
    if point.get("ttl"):
        control["ttl"] = point["ttl"]
    return control


def _document_from_converse(doc: dict[str, Any]) -> ContentBlock:
    source, fmt = doc.get("source") or {}, doc.get("format")
    canonical: dict[str, Any]
    if "content" in source:
        canonical = {"type": "content", "content": [{"type": "text", "text": p.get("text", "")}
                                                    for p in source["content"]]}
    elif "text" in source:
        canonical = {"type": "text", "media_type": "text/plain", "data": source["text"]}
    elif fmt == "txt":
        canonical = {"type": "text", "media_type": "text/plain",
                     "data": base64.b64decode(source.get("bytes", "")).decode()}
    else:
        canonical = {"type": "base64", "media_type": _DOC_MEDIA.get(str(fmt), "application/octet-stream"),
                     "data": source.get("bytes")}
    block: ContentBlock = {"type": "document", "source": canonical, "title": doc.get("name")}
    if doc.get("context"):
        block["context"] = doc["context"]
    if "citations" in doc:
        block["citations"] = {"enabled": doc["citations"].get("enabled", False)}
    return block


def _block_from_converse(part: dict[str, Any]) -> ContentBlock | None:
    if "text" in part:
        return {"type": "text", "text": part["text"]}
    if "image" in part:
        image = part["image"]
        if "bytes" not in (image.get("source") or {}):
            raise invalid("only inline image bytes can be translated from Converse", "messages")
        media_type = "image/" + str(image.get("format"))
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": image["source"]["bytes"]}}
    if "document" in part:
        return _document_from_converse(part["document"])
    if "toolUse" in part:
        use = part["toolUse"]
        return {"type": "tool_use", "id": use.get("toolUseId"), "name": use.get("name"),
                "input": use.get("input", {})}
    if "toolResult" in part:
        result = part["toolResult"]
        block: ContentBlock = {"type": "tool_result", "tool_use_id": result.get("toolUseId")}
        content = []
        for item in result.get("content") or []:
            if "json" in item:
                content.append({"type": "text", "text": msgspec.json.encode(item["json"]).decode()})
            elif (inner := _block_from_converse(item)) is not None:
                content.append(inner)
        if content:
            block["content"] = content
        if result.get("status") == "error":
            block["is_error"] = True
        return block
    if "reasoningContent" in part:
        reasoning = part["reasoningContent"]
        if "redactedContent" in reasoning:
            return {"type": "redacted_thinking", "data": reasoning["redactedContent"]}
        text = reasoning.get("reasoningText") or {}
        return {"type": "thinking", "thinking": text.get("text", ""), "signature": text.get("signature", "")}
    if "citationsContent" in part:
        cited = part["citationsContent"].get("content") or []
        return {"type": "text", "text": "".join(c.get("text", "") for c in cited)}
    return None  # guardContent, video, audio, searchResult: no canonical form


def _blocks_from_converse(parts: list[dict[str, Any]]) -> list[ContentBlock]:
    out: list[ContentBlock] = []
    for part in parts:
        if "cachePoint" in part:
            if out:
                out[-1]["cache_control"] = _cache_control(part["cachePoint"])
            continue
        block = _block_from_converse(part)
        if block is not None:
            out.append(block)
    return out


def from_converse_request(data: dict[str, Any], model: str) -> MessagesRequest:
    """The canonical body of a Converse request (the reverse of ``to_converse_request``)."""
    body: MessagesRequest = {"model": model, "messages": [
        {"role": m["role"], "content": _blocks_from_converse(m.get("content") or [])}
        for m in data.get("messages") or []]}
    if data.get("system"):
        body["system"] = _blocks_from_converse(data["system"])
    inference = data.get("inferenceConfig") or {}
    body.update({key: inference[wire] for key, wire in _INFERENCE if wire in inference})  # type: ignore[typeddict-item]
    extra = data.get("additionalModelRequestFields") or {}
    top_k = extra.get("top_k", (extra.get("inferenceConfig") or {}).get("topK"))
    if top_k is not None:
        body["top_k"] = top_k
    if extra.get("thinking"):
        body["thinking"] = extra["thinking"]
    config = data.get("toolConfig") or {}
    tools: list[Any] = []
    for tool in config.get("tools") or []:
        if "cachePoint" in tool and tools:
            tools[-1]["cache_control"] = _cache_control(tool["cachePoint"])
        elif "toolSpec" in tool:
            spec = tool["toolSpec"]
            tools.append({"name": spec["name"], **({"description": spec["description"]}
                                                   if "description" in spec else {}),
                          "input_schema": spec.get("inputSchema", {}).get("json", {})})
    if tools:
        body["tools"] = tools
    choice = config.get("toolChoice") or {}
    if "tool" in choice:
        body["tool_choice"] = {"type": "tool", "name": choice["tool"]["name"]}
    elif choice:
        body["tool_choice"] = {"type": next(iter(choice))}
    return body


# ---------------------------------------------------------------- responses, both ways

def usage_from_converse(usage: dict[str, Any]) -> Usage:
    out: Usage = {"input_tokens": int(usage.get("inputTokens", 0)),
                  "output_tokens": int(usage.get("outputTokens", 0))}
    if "cacheWriteInputTokens" in usage:
        out["cache_creation_input_tokens"] = int(usage["cacheWriteInputTokens"])
    if "cacheReadInputTokens" in usage:
        out["cache_read_input_tokens"] = int(usage["cacheReadInputTokens"])
    return out


def usage_to_converse(usage: Usage) -> dict[str, Any]:
    out = {"inputTokens": usage.get("input_tokens", 0), "outputTokens": usage.get("output_tokens", 0)}
    if "cache_read_input_tokens" in usage:
        out["cacheReadInputTokens"] = usage["cache_read_input_tokens"]
    if "cache_creation_input_tokens" in usage:
        out["cacheWriteInputTokens"] = usage["cache_creation_input_tokens"]
    out["totalTokens"] = sum(out.values())
    return out


def _stop(stop_reason: Any, extra: Any) -> tuple[StopReason, str | None]:
    reason = _STOP_FROM_CONVERSE.get(str(stop_reason), "end_turn")
    sequence = extra.get("stop_sequence") if isinstance(extra, dict) else None
    return reason, sequence if reason == "stop_sequence" and isinstance(sequence, str) else None


def from_converse_response(data: Any, model: str = "") -> MessageResponse:
    """A canonical message from a Converse answer; a malformed answer raises UpstreamError."""
    try:
        parts = data["output"]["message"]["content"]
        if not isinstance(parts, list) or not all(isinstance(part, dict) for part in parts):
            raise TypeError("content is not a list of blocks")
        content = _blocks_from_converse(parts)
        reason, sequence = _stop(data.get("stopReason"), data.get("additionalModelResponseFields"))
        usage = usage_from_converse(data.get("usage") or {})
    except (KeyError, TypeError, AttributeError, ValueError, GatewayError):
        raise UpstreamError(ErrorKind.BAD_GATEWAY, "Bedrock sent a malformed Converse answer",
                            retryable=True) from None
    return {"id": new_message_id(), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": reason, "stop_sequence": sequence, "usage": usage}


def to_converse_response(message: MessageResponse, latency_ms: int = 0) -> dict[str, Any]:
    """The Converse answer for a canonical message (the reverse of ``from_converse_response``)."""
    reason = message.get("stop_reason") or "end_turn"
    content = _content_to_converse(message["content"], [0])
    data: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _STOP_TO_CONVERSE.get(reason, reason), "usage": usage_to_converse(message["usage"]),
        "metrics": {"latencyMs": latency_ms}}
    if message.get("stop_sequence") is not None:
        data["additionalModelResponseFields"] = {"stop_sequence": message["stop_sequence"]}
    return data


# ---------------------------------------------------------------- stream: ConverseStream -> canonical

def _delta(index: int, kind: str, **fields: Any) -> StreamEvent:
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, **fields}}


async def events_from_converse_stream(
    events: AsyncIterable[tuple[str, dict[str, Any]]], model: str
) -> AsyncGenerator[StreamEvent, None]:
    """Canonical events from decoded ConverseStream events ``(event type, payload)``.

    Converse announces only tool-use blocks; text and reasoning blocks open with their first
    delta.  Usage arrives in ``metadata`` after ``messageStop``, so the canonical message_delta
    waits for it.  A stream that ends before ``messageStop`` raises UpstreamError.
    """
    started = False
    open_blocks: dict[int, str] = {}
    stop: tuple[StopReason, str | None] | None = None

    def message_start() -> StreamEvent:
        return {"type": "message_start", "message": {
            "id": new_message_id(), "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}

    def opening(index: int, block: ContentBlock) -> list[StreamEvent]:
        if index in open_blocks:
            return []
        open_blocks[index] = str(block["type"])
        return [{"type": "content_block_start", "index": index, "content_block": block}]

    def finish(usage: Usage) -> list[StreamEvent]:
        assert stop is not None
        return [{"type": "message_delta", "delta": {"stop_reason": stop[0], "stop_sequence": stop[1]},
                 "usage": usage}, {"type": "message_stop"}]

    async for kind, data in events:
        out: list[StreamEvent] = []
        if not started:
            started = True
            out.append(message_start())
        index = data.get("contentBlockIndex")
        if kind == "contentBlockStart" and isinstance(index, int):
            tool = (data.get("start") or {}).get("toolUse")
            if tool:
                out += opening(index, {"type": "tool_use", "id": tool.get("toolUseId"),
                                       "name": tool.get("name"), "input": {}})
        elif kind == "contentBlockDelta" and isinstance(index, int):
            delta = data.get("delta") or {}
            reasoning = delta.get("reasoningContent") or {}
            if "text" in delta:
                out += opening(index, {"type": "text", "text": ""})
                out.append(_delta(index, "text_delta", text=delta["text"]))
            elif "toolUse" in delta:
                out.append(_delta(index, "input_json_delta", partial_json=delta["toolUse"].get("input", "")))
            elif "redactedContent" in reasoning:
                out += opening(index, {"type": "redacted_thinking", "data": reasoning["redactedContent"]})
            elif "text" in reasoning or "signature" in reasoning:
                out += opening(index, {"type": "thinking", "thinking": "", "signature": ""})
                if "text" in reasoning:
                    out.append(_delta(index, "thinking_delta", thinking=reasoning["text"]))
                if "signature" in reasoning:
                    out.append(_delta(index, "signature_delta", signature=reasoning["signature"]))
        elif kind == "contentBlockStop" and isinstance(index, int):
            out += opening(index, {"type": "text", "text": ""})  # an empty block still has a start
            open_blocks.pop(index, None)
            out.append({"type": "content_block_stop", "index": index})
        elif kind == "messageStop":
            stop = _stop(data.get("stopReason"), data.get("additionalModelResponseFields"))
        elif kind == "metadata" and stop is not None:
            for event in out + finish(usage_from_converse(data.get("usage") or {})):
                yield event
            return
        for event in out:
            yield event
    if stop is None:
        raise UpstreamError(ErrorKind.BAD_GATEWAY, "Bedrock stream ended before messageStop", retryable=True)
    # messageStop came but its usage did not: the answer itself is whole.
    for event in finish({"output_tokens": 0}):
        yield event
