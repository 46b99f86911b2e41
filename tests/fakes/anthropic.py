"""A fake Anthropic Messages API: records every request and answers in the real wire format
(JSON, or SSE with the exact event sequence, including ping), or with scripted errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import end_body
from tests.support.servers import serve_app


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeAnthropic:
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    # Scripted answers, consumed in order: ("error", status, type, headers) or ("cut",) or ("error_event", type)
    script: list[tuple[Any, ...]] = field(default_factory=list)


def message(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": body.get("model"),
        "content": [{"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
                    {"type": "text", "text": "Hello!"},
                    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                     "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_creation_input_tokens": 100,
                  "cache_read_input_tokens": 2000},
    }


def stream_events(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    start = {**message(body), "content": [], "stop_reason": None,
             "usage": {"input_tokens": 2095, "output_tokens": 1, "cache_creation_input_tokens": 100,
                       "cache_read_input_tokens": 2000}}
    return [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Let me think."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "Hel"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "lo!"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2,
                                 "content_block": {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                                                   "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"output_tokens": 503}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def build_app(fake: FakeAnthropic) -> web.Application:
    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        fake.requests.append(Seen(request.path, dict(request.query), {k.lower(): v for k, v in request.headers.items()},
                                  body))
        if request.headers.get("x-api-key") != "sk-ant-test":
            return web.json_response({"type": "error", "error": {"type": "authentication_error",
                                                                 "message": "invalid x-api-key"}}, status=401)
        step = fake.script.pop(0) if fake.script else ("ok",)
        if step[0] == "error":
            _, status, kind, headers = step
            return web.json_response({"type": "error", "error": {"type": kind, "message": f"scripted {kind}"}},
                                     status=status, headers=headers)
        if request.path.endswith("/count_tokens"):
            return web.json_response({"input_tokens": 42})
        if not body.get("stream"):
            return web.json_response(message(body), headers={"request-id": "req_upstream"})
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        events = stream_events(body)
        if step[0] == "cut":
            events = events[:5]
        for i, (name, data) in enumerate(events):
            if step[0] == "error_event" and i == 4:
                await response.write(sse("error", {"type": "error", "error": {"type": step[1], "message": "busy"}}))
                break
            # Split each event across two writes so parsers must handle any boundary.
            raw = sse(name, data)
            await response.write(raw[:7])
            await response.write(raw[7:])
        await end_body(response)
        return response

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", messages)
    return app


async def start_fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    async for url in serve_app(build_app(fake)):
        fake.url = url
        yield fake
