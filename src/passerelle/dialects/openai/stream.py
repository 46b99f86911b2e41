"""OpenAI ``chat.completion.chunk`` streams <-> canonical (Anthropic-shaped) stream events.

To an OpenAI client (``OpenAIStreamEncoder``): the first chunk carries ``role: assistant``; each
tool_use block is one tool call, numbered 0..n in block order, whose first delta carries ``id``,
``type`` and ``function.name`` and whose ``input_json_delta`` fragments follow as
``function.arguments``; thinking deltas travel as ``delta.reasoning_content`` (as in
``response.py``); ``finish_reason`` comes with ``message_delta``; the usage chunk (when the client
set ``stream_options.include_usage``) and ``[DONE]`` come from ``done()``.

From an OpenAI-style upstream (``events_from_openai_sse``): one content block per run of
reasoning, of text (refusal deltas count as text), or per tool call index; ``message_delta``
carries the stop reason and the whole usage (from the final usage chunk) at the end.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from typing import Any, cast

import msgspec

from passerelle.canonical import ChatRequest, ContentBlock, StreamEvent, Usage
from passerelle.dialects.openai.errors import openai_error_body, upstream_error_from_openai
from passerelle.dialects.openai.response import (
    FINISH_REASONS,
    STOP_REASONS,
    canonical_usage,
    completion_id,
    message_id,
    new_tool_call_id,
    openai_usage,
)
from passerelle.dialects.sse import SSEMessage, parse_sse
from passerelle.errors import ErrorKind, GatewayError, UpstreamError

_encode = msgspec.json.encode
_DONE = b"data: [DONE]\n\n"


class OpenAIStreamEncoder:
    """Canonical events -> SSE ``chat.completion.chunk`` bytes for one response."""

    def __init__(self, request: ChatRequest) -> None:
        options = request.openai_extras.get("stream_options") or {}
        self._include_usage = bool(options.get("include_usage"))
        self._head: dict[str, Any] = {"id": "chatcmpl-" + secrets.token_hex(12),
                                      "object": "chat.completion.chunk", "created": int(time.time()),
                                      "model": request.model}
        self._prefix = b""
        self._set_head({})
        self._tools: dict[int, int] = {}  # canonical block index -> tool call index
        self._usage: dict[str, Any] = {}

    def _set_head(self, extras: dict[str, Any]) -> None:
        for key in ("created", "system_fingerprint", "service_tier"):
            if extras.get(key) is not None:
                self._head[key] = extras[key]
        # Every chunk starts alike: encode that part once.
        self._prefix = b"data: " + _encode(self._head)[:-1] + b',"choices":[{"index":0,"delta":'

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
        return b"".join((self._prefix, _encode(delta), b',"logprobs":', _encode(logprobs),
                         b',"finish_reason":', _encode(finish), b"}]}\n\n"))

    def encode(self, event: StreamEvent) -> bytes:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event["delta"]
            delta_kind = delta.get("type")
            if delta_kind == "text_delta":
                logprobs = (event.get("_openai") or {}).get("logprobs")
                return self._chunk({"content": delta["text"]}, logprobs=logprobs)
            if delta_kind == "input_json_delta":
                tool = self._tools.get(event["index"])
                if tool is None or not delta.get("partial_json"):
                    return b""
                call = {"index": tool, "function": {"arguments": delta["partial_json"]}}
                return self._chunk({"tool_calls": [call]})
            if delta_kind == "thinking_delta":
                return self._chunk({"reasoning_content": delta["thinking"]})
            return b""
        if kind == "content_block_start":
            return self._start_block(event["index"], event["content_block"])
        if kind == "message_start":
            message = event["message"]
            self._head["id"] = completion_id(message["id"])
            self._set_head(message.get("_openai") or {})
            self._merge_usage(message.get("usage"))
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "message_delta":
            self._merge_usage(event.get("usage"))
            return self._chunk({}, FINISH_REASONS.get(event["delta"].get("stop_reason"), "stop"))
        return b""

    def _start_block(self, index: int, block: ContentBlock) -> bytes:
        kind = block.get("type")
        if kind == "tool_use":
            tool = self._tools[index] = len(self._tools)
            # Adapters that build events from a whole message put the input in the start.
            arguments = _encode(block["input"]).decode() if block.get("input") else ""
            call = {"index": tool, "id": block["id"], "type": "function",
                    "function": {"name": block["name"], "arguments": arguments}}
            return self._chunk({"tool_calls": [call]})
        if kind == "text" and block.get("text"):
            return self._chunk({"content": block["text"]})
        if kind == "thinking" and block.get("thinking"):
            return self._chunk({"reasoning_content": block["thinking"]})
        return b""

    def _merge_usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            self._usage.update((key, value) for key, value in usage.items() if value is not None)

    def done(self) -> bytes:
        if not self._include_usage:
            return _DONE
        final = {**self._head, "choices": [], "usage": openai_usage(self._usage)}
        return b"data: " + _encode(final) + b"\n\n" + _DONE

    def error(self, err: GatewayError) -> bytes:
        return b"data: " + openai_error_body(err) + b"\n\n"


def _bad_stream(message: str) -> UpstreamError:
    return UpstreamError(ErrorKind.BAD_GATEWAY, message, retryable=True)


class _Decoder:
    """Turns parsed OpenAI chunks into canonical events, one chunk at a time."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.index = -1  # canonical index of the newest block
        self.open: str | None = None  # kind of the block still open: "thinking", "text", "tool"
        self.tools: dict[int, int] = {}  # upstream tool call index -> canonical block index
        self.finish: str | None = None
        self.usage: Usage | None = None

    def start(self, chunk: dict[str, Any]) -> StreamEvent:
        self.started = True
        extras = {key: chunk[key] for key in ("created", "system_fingerprint", "service_tier")
                  if chunk.get(key) is not None}
        usage = canonical_usage(chunk.get("usage"))
        message: dict[str, Any] = {
            "id": message_id(str(chunk.get("id") or secrets.token_hex(12))), "type": "message",
            "role": "assistant", "model": chunk.get("model") or self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 0},
        }
        if extras:
            message["_openai"] = extras
        return {"type": "message_start", "message": message}

    def _close(self, events: list[StreamEvent]) -> None:
        if self.open is not None:
            events.append({"type": "content_block_stop", "index": self.index})
            self.open = None

    def _open(self, events: list[StreamEvent], kind: str, block: ContentBlock) -> None:
        self._close(events)
        self.index += 1
        self.open = kind
        events.append({"type": "content_block_start", "index": self.index, "content_block": block})

    def _delta(self, events: list[StreamEvent], delta: dict[str, Any]) -> None:
        events.append({"type": "content_block_delta", "index": self.index, "delta": delta})

    def _tool(self, events: list[StreamEvent], call: Any) -> None:
        if not isinstance(call, dict):
            raise _bad_stream("upstream sent a malformed tool call delta")
        function = call.get("function") or {}
        position = call.get("index")
        if not isinstance(position, int):  # servers that omit it stream one call at a time
            position = len(self.tools) if call.get("id") or not self.tools else max(self.tools)
        if position not in self.tools:
            self._open(events, "tool", {"type": "tool_use", "id": call.get("id") or new_tool_call_id(),
                                        "name": function.get("name") or "", "input": {}})
            self.tools[position] = self.index
        elif self.tools[position] != self.index or self.open != "tool":
            raise _bad_stream("upstream interleaved the fragments of several tool calls")
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._delta(events, {"type": "input_json_delta", "partial_json": arguments})

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if isinstance(chunk.get("usage"), dict):
            self.usage = canonical_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                if self.open != "thinking":
                    self._open(events, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
                self._delta(events, {"type": "thinking_delta", "thinking": reasoning})
            for text in (delta.get("content"), delta.get("refusal")):
                if isinstance(text, str) and text:
                    if self.open != "text":
                        self._open(events, "text", {"type": "text", "text": ""})
                    self._delta(events, {"type": "text_delta", "text": text})
                    if choice.get("logprobs") is not None:
                        events[-1]["_openai"] = {"logprobs": choice["logprobs"]}
            for call in delta.get("tool_calls") or ():
                self._tool(events, call)
            if delta.get("function_call"):  # the deprecated single-call form
                self._tool(events, {"index": 0, "function": delta["function_call"]})
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self._close(events)
        return events

    def end(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        self._close(events)
        stop_reason = STOP_REASONS.get(self.finish, "end_turn")
        if self.tools and stop_reason == "end_turn":
            stop_reason = "tool_use"  # some servers finish tool calls with "stop"
        events.append({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                       "usage": dict(self.usage or canonical_usage(None))})
        events.append({"type": "message_stop"})
        return events


async def events_from_openai_sse(chunks: AsyncIterable[bytes], *, model: str) -> AsyncIterator[StreamEvent]:
    """Canonical events from an OpenAI-style SSE body.  An ``error`` chunk raises UpstreamError;
    so does a stream that ends with neither ``[DONE]`` nor a ``finish_reason``."""
    decoder = _Decoder(model)
    done = False
    # parse_sse is an async generator: close it (and what it holds) as soon as [DONE] is read.
    async with aclosing(cast(AsyncGenerator[SSEMessage, None], parse_sse(chunks))) as messages:
        async for message in messages:
            if message.data == "[DONE]":
                done = True
                break
            if not message.data.strip():
                continue
            try:
                chunk = msgspec.json.decode(message.data)
            except msgspec.DecodeError:
                raise _bad_stream("upstream sent a malformed stream chunk") from None
            if not isinstance(chunk, dict):
                raise _bad_stream("upstream sent a malformed stream chunk")
            if chunk.get("error"):
                raise upstream_error_from_openai(chunk["error"])
            if not decoder.started:
                yield decoder.start(chunk)
            for event in decoder.feed(chunk):
                yield event
    if not done and decoder.finish is None:
        raise _bad_stream("upstream stream ended before its end")
    if not decoder.started:
        yield decoder.start({})
    for event in decoder.end():
        yield event
