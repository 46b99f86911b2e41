"""Property tests: canonical <-> OpenAI translations preserve what both sides can say.

Documented normalisations the generators stay clear of (each is pinned by an example test):
- canonical -> OpenAI -> canonical: assistant text blocks are joined into one string (a list of
  text blocks alone comes back as a string); a thinking block's signature is lost; tool result
  images move to a user message; a document without a title gets "document.pdf";
  ``disable_parallel_tool_use: false`` is the default and disappears; ``stop_sequence`` comes back
  as ``end_turn`` (OpenAI does not say which stop matched), as does ``end_turn`` with tool calls
  (``tool_use``); adjacent text blocks in a stream merge.
- OpenAI -> canonical -> OpenAI: one system message is kept (several merge); ``stop`` becomes a
  list; tool arguments are re-serialised compactly; a user message after tool messages becomes a
  list of parts; empty assistant turns and ``name`` fields go; answers lose ``annotations``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passerelle.canonical import ChatRequest, MessageResponse, StreamEvent
from passerelle.dialects.openai import (
    OpenAIStreamEncoder,
    chat_request_from_openai,
    events_from_openai_sse,
    from_openai_response,
    to_openai_request,
    to_openai_response,
)
from tests.fakes.openai import (
    assemble_events,
    validate_anthropic_request,
    validate_completion,
    validate_message,
    validate_openai_request,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
text = st.text(min_size=1, max_size=40)
name = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True)
ident = st.from_regex(r"[A-Za-z0-9]{6,24}", fullmatch=True)
b64 = st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b).decode())
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
json_object = st.dictionaries(st.text(max_size=8), json_value, max_size=4)
schema = st.fixed_dictionaries({"type": st.just("object")},
                               optional={"properties": st.dictionaries(name, st.just({"type": "string"}), max_size=3)})


def compact(value: Any) -> str:
    return msgspec.json.encode(value).decode()


# ---------------------------------------------------------------- canonical requests


@st.composite
def canonical_requests(draw: st.DrawFn) -> ChatRequest:
    ids = iter(range(10**6))
    messages: list[dict[str, Any]] = []
    pending: list[str] = []  # tool_use ids the next user turn answers
    for turn in range(draw(st.integers(1, 6))):
        if turn % 2 == 0:
            blocks: list[dict[str, Any]] = [
                {"type": "tool_result", "tool_use_id": tool_id,
                 "content": draw(text | st.lists(text.map(lambda t: {"type": "text", "text": t}), min_size=1,
                                                 max_size=2))}
                for tool_id in pending]
            blocks += draw(st.lists(st.one_of(
                text.map(lambda t: {"type": "text", "text": t}),
                st.builds(lambda m, d: {"type": "image", "source": {"type": "base64", "media_type": m, "data": d}},
                          st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]), b64),
                ident.map(lambda i: {"type": "image", "source": {"type": "url", "url": f"https://img.test/{i}.png"}}),
                st.builds(lambda d, t: {"type": "document", "title": t,
                                        "source": {"type": "base64", "media_type": "application/pdf", "data": d}},
                          b64, text)), min_size=0 if pending else 1, max_size=3))
            content: Any = blocks if pending or draw(st.booleans()) else draw(text)
            pending = []
            messages.append({"role": "user", "content": content})
        else:
            calls = [{"type": "tool_use", "id": f"toolu_{next(ids)}{draw(ident)}", "name": draw(name),
                      "input": draw(json_object)} for _ in range(draw(st.integers(0, 3)))]
            pending = [call["id"] for call in calls]
            if calls:
                lead = draw(st.lists(text, max_size=1))
                messages.append({"role": "assistant", "content": [{"type": "text", "text": t} for t in lead] + calls})
            else:
                messages.append({"role": "assistant", "content": draw(text)})
    body: dict[str, Any] = {"model": draw(name), "max_tokens": draw(st.integers(1, 200000)), "messages": messages}
    system = draw(st.none() | text | st.lists(text.map(lambda t: {"type": "text", "text": t}), min_size=1,
                                                max_size=3))
    if system is not None:
        body["system"] = system
    for key, strategy in (("temperature", st.floats(0, 1)), ("top_p", st.floats(0, 1)),
                          ("stop_sequences", st.lists(text, min_size=1, max_size=4)),
                          ("metadata", st.builds(lambda u: {"user_id": u}, text))):
        if draw(st.booleans()):
            body[key] = draw(strategy)
    tools = draw(st.lists(st.builds(lambda n, d, s: {"name": n, "description": d, "input_schema": s},
                                    name, text, schema), max_size=3, unique_by=lambda t: t["name"]))
    if tools:
        body["tools"] = tools
        choice = draw(st.none() | st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"},
                                                   {"type": "tool", "name": tools[0]["name"]}]))
        if choice is not None:
            if choice["type"] != "none" and draw(st.booleans()):
                choice["disable_parallel_tool_use"] = True
            body["tool_choice"] = choice
    return ChatRequest(body=body, dialect="anthropic", request_id="r")  # type: ignore[arg-type]


@SETTINGS
@given(canonical_requests())
def test_canonical_request_survives_openai(request: ChatRequest) -> None:
    validate_anthropic_request(request.body)
    wire = to_openai_request(request, request.body["model"], stream=False)
    validate_openai_request(wire)
    back = chat_request_from_openai(msgspec.json.decode(msgspec.json.encode(wire)), request_id="r")
    assert back.body == request.body
    assert request.warnings == [] and back.warnings == []


# ---------------------------------------------------------------- OpenAI requests


def parts(draw: st.DrawFn, counter: list[int]) -> list[dict[str, Any]]:
    def image(url: str) -> dict[str, Any]:
        counter[0] += 1  # the detail is remembered by URL: keep URLs distinct
        part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url.replace("#", str(counter[0]))}}
        detail = draw(st.none() | st.sampled_from(["auto", "low", "high"]))
        if detail is not None:
            part["image_url"]["detail"] = detail
        return part

    return draw(st.lists(st.one_of(
        text.map(lambda t: {"type": "text", "text": t}),
        b64.map(lambda d: image(f"data:image/png;base64,#{d}")),
        ident.map(lambda i: image(f"https://img.test/{i}/#.jpg")),
        st.builds(lambda d, f: {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{d}",
                                                         "filename": f}}, b64, text)), min_size=1, max_size=3))


@st.composite
def openai_requests(draw: st.DrawFn) -> dict[str, Any]:
    counter = [0]
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": draw(st.sampled_from(["system", "developer"])),
                         "content": draw(text | st.lists(text.map(lambda t: {"type": "text", "text": t}),
                                                         min_size=1, max_size=2))})
    after_tools = False
    for turn in range(draw(st.integers(1, 6))):
        if turn % 2 == 0:
            content = parts(draw, counter) if after_tools or draw(st.booleans()) else draw(text)
            messages.append({"role": "user", "content": content})
            after_tools = False
            continue
        calls = [{"id": f"call_{draw(ident)}{i}", "type": "function",
                  "function": {"name": draw(name), "arguments": compact(draw(json_object))}}
                 for i in range(draw(st.integers(0, 3)))]
        if not calls:
            messages.append({"role": "assistant", "content": draw(text)})
            continue
        messages.append({"role": "assistant", "content": draw(st.none() | text), "tool_calls": calls})
        messages += [{"role": "tool", "tool_call_id": c["id"],
                      "content": draw(text | st.lists(text.map(lambda t: {"type": "text", "text": t}), min_size=1,
                                                      max_size=2))} for c in calls]
        after_tools = True
    body: dict[str, Any] = {"model": draw(name), "messages": messages}
    optional = {
        draw(st.sampled_from(["max_tokens", "max_completion_tokens"])): st.integers(1, 100000),
        "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "stop": st.lists(text, min_size=1, max_size=4),
        "user": text, "seed": st.integers(-(2**31), 2**31), "n": st.just(1), "presence_penalty": st.floats(-2, 2),
        "logprobs": st.booleans(), "top_logprobs": st.integers(0, 20), "logit_bias": st.just({"1234": -50}),
        "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}, {
            "type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}]),
        "reasoning_effort": st.sampled_from(["minimal", "low", "medium", "high"]), "store": st.booleans(),
        "service_tier": st.sampled_from(["auto", "flex"]), "metadata": st.dictionaries(name, text, max_size=2),
        "prompt_cache_key": text, "parallel_tool_calls": st.booleans(),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    tools = draw(st.lists(st.builds(lambda n, s, strict: {"type": "function", "function": {
        "name": n, "parameters": s, **({"strict": strict} if strict is not None else {})}},
        name, schema, st.none() | st.booleans()), max_size=3, unique_by=lambda t: t["function"]["name"]))
    if tools or draw(st.booleans()):
        body["tools"] = tools
    if draw(st.booleans()):
        names = [t["function"]["name"] for t in tools]
        body["tool_choice"] = draw(st.sampled_from(["auto", "required", "none", *[
            {"type": "function", "function": {"name": n}} for n in names]]))
    return body


@SETTINGS
@given(openai_requests())
def test_openai_request_survives_canonical(body: dict[str, Any]) -> None:
    validate_openai_request(body)
    request = chat_request_from_openai(body, request_id="r")
    validate_anthropic_request(request.body)
    assert to_openai_request(request, body["model"], stream=False) == body


# ---------------------------------------------------------------- responses


@st.composite
def canonical_messages(draw: st.DrawFn) -> MessageResponse:
    content: list[dict[str, Any]] = []
    if draw(st.booleans()):
        content.append({"type": "thinking", "thinking": draw(text), "signature": ""})
    if draw(st.booleans()):
        content.append({"type": "text", "text": draw(text)})
    calls = [{"type": "tool_use", "id": f"toolu_{draw(ident)}{i}", "name": draw(name), "input": draw(json_object)}
             for i in range(draw(st.integers(0, 3)))]
    content += calls
    stop = draw(st.sampled_from(["tool_use", "max_tokens"] if calls else ["end_turn", "max_tokens", "refusal"]))
    usage = {key: draw(st.integers(0, 10**6)) for key in
             ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
    return {"id": f"msg_{draw(ident)}", "type": "message", "role": "assistant", "model": draw(name),
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}  # type: ignore[typeddict-item]


def request_for(model: str, include_usage: bool = False) -> ChatRequest:
    extras = {"stream_options": {"include_usage": True}} if include_usage else {}
    return ChatRequest(body={"model": model, "max_tokens": 1, "messages": []}, dialect="openai", request_id="r",
                       openai_extras=extras)


@SETTINGS
@given(canonical_messages())
def test_canonical_response_survives_openai(message: MessageResponse) -> None:
    validate_message(message)
    wire = to_openai_response(message, request=request_for(message["model"]))
    validate_completion(wire)
    back: dict[str, Any] = dict(from_openai_response(msgspec.json.decode(msgspec.json.encode(wire))))
    assert back.pop("_openai") == {"created": wire["created"]}
    assert back == message


@st.composite
def openai_completions(draw: st.DrawFn) -> dict[str, Any]:
    calls = [{"id": f"call_{draw(ident)}{i}", "type": "function",
              "function": {"name": draw(name), "arguments": compact(draw(json_object))}}
             for i in range(draw(st.integers(0, 3)))]
    refusal = draw(st.none() | text)
    content = draw(st.none() | text) if calls or refusal else draw(st.just("") | text)
    reply: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if draw(st.booleans()):
        reply["reasoning_content"] = draw(text)
    if calls:
        reply["tool_calls"] = calls
    finish = draw(st.sampled_from(["tool_calls", "length"] if calls else ["stop", "length", "content_filter"]))
    prompt, cached = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
    completion_tokens = draw(st.integers(0, 10**6))
    usage: dict[str, Any] = {"prompt_tokens": prompt + cached, "completion_tokens": completion_tokens,
                             "total_tokens": prompt + cached + completion_tokens,
                             "prompt_tokens_details": {"cached_tokens": cached}}
    if draw(st.booleans()):
        usage["completion_tokens_details"] = {"reasoning_tokens": draw(st.integers(0, completion_tokens))}
    data: dict[str, Any] = {"id": f"chatcmpl-{draw(ident)}", "object": "chat.completion",
                            "created": draw(st.integers(1, 2**31)), "model": draw(name),
                            "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
                            "usage": usage}
    for key, strategy in (("system_fingerprint", ident), ("service_tier", st.sampled_from(["default", "flex"]))):
        if draw(st.booleans()):
            data[key] = draw(strategy)
    return data


@SETTINGS
@given(openai_completions())
def test_openai_response_survives_canonical(data: dict[str, Any]) -> None:
    validate_completion(data)
    message = from_openai_response(data)
    validate_message(message)
    assert to_openai_response(message, request=request_for(data["model"])) == data


# ---------------------------------------------------------------- streams


def pieces(draw: st.DrawFn, value: str) -> list[str]:
    cuts = sorted(draw(st.sets(st.integers(1, max(len(value) - 1, 1)), max_size=4))) if len(value) > 1 else []
    bounds = [0, *cuts, len(value)]
    return [value[a:b] for a, b in itertools.pairwise(bounds) if value[a:b]]


@st.composite
def streamed_messages(draw: st.DrawFn) -> tuple[MessageResponse, list[StreamEvent], int]:
    message = draw(canonical_messages())
    last = message["content"][-1]["type"] if message["content"] else None
    if last not in (None, "text") and draw(st.booleans()):  # text after tool calls or thinking
        message["content"] = [*message["content"], {"type": "text", "text": draw(text)}]
        if message["stop_reason"] == "tool_use":
            message["stop_reason"] = "max_tokens"
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    events: list[StreamEvent] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {"text": {"type": "text", "text": ""}, "thinking": {"type": "thinking", "thinking": "",
                                                                     "signature": ""}}.get(kind)
        events.append({"type": "content_block_start", "index": index,
                       "content_block": empty or {**block, "input": {}}})
        if kind == "tool_use":
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces(draw, compact(block["input"]))]
        else:
            deltas = [{"type": f"{kind}_delta", kind: p} for p in pieces(draw, block[kind])]
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                   "usage": {"output_tokens": message["usage"]["output_tokens"]}})
    events.append({"type": "message_stop"})
    return message, events, draw(st.integers(1, 64))


async def byte_pieces(raw: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(raw), size):
        yield raw[i:i + size]


@SETTINGS
@given(streamed_messages())
def test_stream_survives_openai_chunks(case: tuple[MessageResponse, list[StreamEvent], int]) -> None:
    message, events, size = case
    assembled = assemble_events(events)  # the generated stream itself is a valid Anthropic stream
    assert assembled["content"] == message["content"]
    encoder = OpenAIStreamEncoder(request_for(message["model"], include_usage=True))
    raw = b"".join(encoder.encode(event) for event in events) + encoder.done()

    async def decode() -> list[StreamEvent]:
        return [e async for e in events_from_openai_sse(byte_pieces(raw, size), model=message["model"])]

    back = assemble_events(asyncio.run(decode()))
    assert back["content"] == message["content"]
    assert back["id"] == message["id"] and back["stop_reason"] == message["stop_reason"]
    assert back["usage"] == message["usage"]
