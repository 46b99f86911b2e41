"""A fake OpenAI Chat Completions server on 127.0.0.1, and strict validators for both SDKs' shapes.

The server records every request, checks each body against the openai SDK's own request types
(an unknown or ill-typed field gets OpenAI's 400), and answers in the real wire format: a
``chat.completion`` JSON, or SSE ``chat.completion.chunk`` lines ending with ``data: [DONE]``.
Replies can be scripted: a JSON answer, a ``Fault`` (status, error body, headers such as
retry-after) or a ``Stream`` (any chunks, an error chunk, a cut without the end).  Without a
script it echoes the last user text.  tests/providers/test_openai.py proves the wire format
with the real ``openai.AsyncOpenAI`` client.

The validators go further than ``model_validate``: the SDKs' models accept unknown fields, so
``strict_model`` also refuses any field the SDK type does not declare (except those allowed).
"""

from __future__ import annotations

import collections.abc
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic.types
import msgspec
import openai.types.chat
import pydantic
from aiohttp import web
from anthropic.types import message_create_params
from openai.types.chat import completion_create_params
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from tests.fakes import end_body
from tests.support.servers import AppServer

# ---------------------------------------------------------------- validators

# Our documented extension: reasoning travels as "reasoning_content" (see dialects/openai/response.py).
OPENAI_EXTENSIONS = frozenset({"reasoning_content"})
_OPENAI_REQUEST: TypeAdapter[Any] = TypeAdapter(completion_create_params.CompletionCreateParamsNonStreaming)
_OPENAI_STREAM_REQUEST: TypeAdapter[Any] = TypeAdapter(completion_create_params.CompletionCreateParamsStreaming)
_ANTHROPIC_REQUEST: TypeAdapter[Any] = TypeAdapter(message_create_params.MessageCreateParamsNonStreaming)
_STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def _extras(value: Any, allowed: frozenset[str], path: str) -> list[str]:
    """Paths of fields a pydantic model kept as undeclared extras."""
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        found += [f"{path}.{key}" for key in (value.model_extra or {}) if key not in allowed]
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), allowed, f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += _extras(item, allowed, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _extras(item, allowed, f"{path}.{key}")
    return found


def strict_model(cls: type[pydantic.BaseModel], data: Any, allowed: frozenset[str] = frozenset()) -> Any:
    """Validate ``data`` as ``cls`` and refuse undeclared fields."""
    model = cls.model_validate(data)
    unknown = _extras(model, allowed, cls.__name__)
    assert not unknown, f"fields unknown to {cls.__name__}: {unknown}"
    return model


def _materialise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _materialise(v) for k, v in value.items()}
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    if isinstance(value, collections.abc.Iterable):  # pydantic validates Iterable[...] lazily
        return [_materialise(v) for v in value]
    return value


def _strict_typed_dict(adapter: TypeAdapter[Any], body: Any) -> None:
    """A TypedDict adapter drops unknown keys: comparing the result with the input finds them."""
    validated = _materialise(adapter.validate_python(body))
    assert validated == body, f"unknown or coerced fields:\n{validated}\n!=\n{body}"


def validate_openai_request(body: Any) -> None:
    stream = isinstance(body, dict) and body.get("stream") is True
    _strict_typed_dict(_OPENAI_STREAM_REQUEST if stream else _OPENAI_REQUEST, body)


# The Messages API still takes these for the models that have them; this SDK no longer declares them.
_SAMPLING = ("temperature", "top_p", "top_k")


class _MessageParam(TypedDict):
    """MessageParam without the response models its content union also admits (they take any key)."""

    role: Literal["user", "assistant"]
    content: str | list[anthropic.types.ContentBlockParam]


_ANTHROPIC_MESSAGES: TypeAdapter[Any] = TypeAdapter(list[_MessageParam])


def validate_anthropic_request(body: Any) -> None:
    for key in _SAMPLING:
        assert isinstance(body.get(key, 0.5), int | float) and not isinstance(body.get(key), bool), key
    _strict_typed_dict(_ANTHROPIC_MESSAGES, body["messages"])
    _strict_typed_dict(_ANTHROPIC_REQUEST, {k: [] if k == "messages" else v for k, v in body.items()
                                            if k not in _SAMPLING})


def validate_completion(data: Any) -> openai.types.chat.ChatCompletion:
    result: openai.types.chat.ChatCompletion = strict_model(openai.types.chat.ChatCompletion, data,
                                                            OPENAI_EXTENSIONS)
    return result


def validate_chunk(data: Any) -> openai.types.chat.ChatCompletionChunk:
    result: openai.types.chat.ChatCompletionChunk = strict_model(openai.types.chat.ChatCompletionChunk, data,
                                                                 OPENAI_EXTENSIONS)
    return result


def validate_message(data: Any) -> anthropic.types.Message:
    """A canonical message as an Anthropic client would get it (internal "_" keys stripped)."""
    public = {k: v for k, v in data.items() if not k.startswith("_")}
    result: anthropic.types.Message = strict_model(anthropic.types.Message, public)
    return result


def validate_event(event: Any) -> Any:
    public = {k: v for k, v in event.items() if not k.startswith("_")}
    if event.get("type") == "message_start":
        public["message"] = {k: v for k, v in event["message"].items() if not k.startswith("_")}
    model = _STREAM_EVENT.validate_python(public)
    unknown = _extras(model, frozenset(), event.get("type", "event"))
    assert not unknown, f"fields unknown to RawMessageStreamEvent: {unknown}"
    return model


def parse_sse_body(raw: bytes) -> list[Any]:
    """The data of each SSE message: decoded JSON, or the literal string "[DONE]"."""
    out: list[Any] = []
    for message in raw.decode().split("\n\n"):
        if not message:
            continue
        assert message.startswith("data: ") and "\n" not in message, f"bad SSE message {message!r}"
        data = message[len("data: "):]
        out.append(data if data == "[DONE]" else msgspec.json.decode(data))
    return out


# ---------------------------------------------------------------- canned answers (real shapes)


COMPLETION_ID = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"


def completion(content: str | None = "Hello!", *, tool_calls: list[dict[str, Any]] | None = None,
               finish_reason: str = "stop", model: str = "gpt-4o-2024-08-06", prompt_tokens: int = 12,
               completion_tokens: int = 6, cached_tokens: int = 0, completion_id: str = COMPLETION_ID,
               **message: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": [],
                             **message}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    return {
        "id": completion_id, "object": "chat.completion", "created": 1741569952, "model": model,
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage(prompt_tokens, completion_tokens, cached_tokens),
        "service_tier": "default", "system_fingerprint": "fp_50cad350e4",
    }


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def stream_chunks(answer: dict[str, Any], *, include_usage: bool = True, piece: int = 4) -> list[dict[str, Any]]:
    """The chunks OpenAI streams for ``answer``: role first, content and each tool call's
    arguments in ``piece``-character fragments, finish_reason, then the usage chunk."""
    head: dict[str, Any] = {k: answer[k] for k in ("id", "created", "model", "service_tier", "system_fingerprint")
                            if k in answer}
    head["object"] = "chat.completion.chunk"
    choice = answer["choices"][0]
    reply = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    text = reply.get("content") or ""
    out += [chunk({"content": text[i:i + piece]}) for i in range(0, len(text), piece)]
    for index, call in enumerate(reply.get("tool_calls") or []):
        function = call["function"]
        out.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                          "function": {"name": function["name"], "arguments": ""}}]}))
        args = function["arguments"]
        out += [chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i:i + piece]}}]})
                for i in range(0, len(args), piece)]
    out.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        out.append({**head, "choices": [], "usage": answer["usage"]})
    return out


# ---------------------------------------------------------------- scripted replies


@dataclass
class Fault:
    """An error answer, e.g. Fault(429, "Rate limit reached", headers={"retry-after": "7"})."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stream:
    """An SSE answer: these chunks (dicts), then ``data: [DONE]`` unless ``done`` is false."""

    chunks: list[dict[str, Any]]
    done: bool = True


Reply = dict[str, Any] | Fault | Stream


@dataclass
class Received:
    path: str  # as sent (percent-encoded), without the query
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class FakeOpenAI:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: deque[Reply] = deque()
        self._server = AppServer()

    @property
    def url(self) -> str:
        return self._server.url

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}/chat/completions", self._chat)
        await self._server.start(app)

    async def close(self) -> None:
        await self._server.close()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.rel_url.raw_path, dict(request.query),
                                      {k.lower(): v for k, v in request.headers.items()}, body))
        try:
            data = msgspec.json.decode(body)
            validate_openai_request(data)
        except (msgspec.DecodeError, pydantic.ValidationError, AssertionError) as exc:
            return web.json_response(error_body(f"invalid request: {exc}"), status=400)
        reply = self.replies.popleft() if self.replies else self._echo(data)
        if isinstance(reply, Fault):
            return web.json_response(error_body(reply.message, reply.type, reply.code), status=reply.status,
                                     headers=reply.headers)
        if isinstance(reply, Stream):
            return await self._stream(request, reply)
        return web.json_response(reply)

    def _echo(self, data: dict[str, Any]) -> Reply:
        last = data["messages"][-1].get("content")
        text = last if isinstance(last, str) else "".join(p.get("text", "") for p in last or [])
        answer = completion(f"echo: {text}", model=data["model"], completion_id=f"chatcmpl-{time.monotonic_ns()}")
        if data.get("stream"):
            include = bool((data.get("stream_options") or {}).get("include_usage"))
            return Stream(stream_chunks(answer, include_usage=include))
        return answer

    async def _stream(self, request: web.Request, reply: Stream) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        for chunk in reply.chunks:
            await resp.write(b"data: " + msgspec.json.encode(chunk) + b"\n\n")
        if reply.done:
            await resp.write(b"data: [DONE]\n\n")
        await end_body(resp)
        return resp


# ---------------------------------------------------------------- stream assembly (the SDKs' own)


def assemble_chunks(chunks: list[dict[str, Any]]) -> openai.types.chat.ChatCompletion:
    """Validate each chunk strictly and let the openai SDK accumulate them into a completion."""
    from openai.lib.streaming.chat import ChatCompletionStreamState

    state: Any = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(validate_chunk(chunk))
    result: openai.types.chat.ChatCompletion = state.get_final_completion()
    return result


def check_event_order(events: list[dict[str, Any]]) -> None:
    """message_start, then blocks 0..n each as start / deltas / stop, then message_delta, message_stop."""
    kinds = [event["type"] for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"], kinds
    open_index: int | None = None
    next_index = 0
    for event in events[1:-2]:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_index is None and event["index"] == next_index, (event, open_index, next_index)
            open_index, next_index = next_index, next_index + 1
        elif kind in ("content_block_delta", "content_block_stop"):
            assert event["index"] == open_index, (event, open_index)
            if kind == "content_block_stop":
                open_index = None
        else:
            raise AssertionError(f"unexpected {kind} inside the message")
    assert open_index is None


def assemble_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Check the order, validate each event, and let the anthropic SDK accumulate the message."""
    from anthropic.lib.streaming._messages import accumulate_event

    check_event_order(events)
    snapshot: Any = None
    buffers: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(event=validate_event(event), current_snapshot=snapshot, json_bufs=buffers)
    result: dict[str, Any] = snapshot.model_dump(exclude_none=True)
    return result
