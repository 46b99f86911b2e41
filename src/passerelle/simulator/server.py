"""The simulator as its own process, speaking the Anthropic and OpenAI provider dialects.

It is the upstream of benchmarks and of end-to-end fault tests, so its faults happen on the
wire: a reset connection, a body that is not JSON, a stream cut before its last event.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, cast

import msgspec
from aiohttp import web

from passerelle.canonical import ChatRequest, MessagesRequest
from passerelle.canonical.text import request_text
from passerelle.config.schema import SimulatorConfig
from passerelle.dialects.anthropic.errors import anthropic_error_body
from passerelle.dialects.anthropic.request import chat_request_from_anthropic
from passerelle.dialects.anthropic.stream import PING, encode_event
from passerelle.dialects.openai import (
    OpenAIStreamEncoder,
    chat_request_from_openai,
    openai_error_body,
    openai_models_list,
    to_openai_response,
)
from passerelle.errors import ErrorKind, GatewayError
from passerelle.simulator.engine import SimulatorEngine, count_tokens

_STATUS = {"rate_limit": (429, ErrorKind.RATE_LIMIT), "server_error": (500, ErrorKind.API_ERROR),
           "overloaded": (529, ErrorKind.OVERLOADED)}


class SimulatorServer:
    def __init__(self, config: SimulatorConfig, *, request_timeout: float = 600.0) -> None:
        self.engine = SimulatorEngine(config)
        self.request_timeout = request_timeout

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/chat/completions", self.chat_completions)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def models(self, request: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(openai_models_list(["simulator"], int(time.time()))),
                            content_type="application/json")

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "anthropic")

    async def count_tokens(self, request: web.Request) -> web.Response:
        """Anthropic's token counting: the input tokens a messages call with this body would report."""
        request_id = "req_sim_" + uuid.uuid4().hex
        try:
            body = msgspec.json.decode(await request.read())
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise GatewayError(ErrorKind.INVALID_REQUEST, "messages: a list is required")
            # What the engine's usage says for the same body.
            tokens = max(count_tokens(request_text(cast(MessagesRequest, body))), 1)
        except msgspec.DecodeError as exc:
            return self._error("anthropic", GatewayError(ErrorKind.INVALID_REQUEST, f"invalid JSON: {exc}"),
                               request_id)
        except GatewayError as err:
            return self._error("anthropic", err, request_id)
        except (TypeError, KeyError, AttributeError):
            return self._error("anthropic", GatewayError(ErrorKind.INVALID_REQUEST, "malformed messages"), request_id)
        return web.json_response({"input_tokens": tokens})

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "openai")

    async def _serve(self, http: web.Request, dialect: str) -> web.StreamResponse:
        request_id = "req_sim_" + uuid.uuid4().hex
        try:
            body = msgspec.json.decode(await http.read())
            headers = {k.lower(): v for k, v in http.headers.items()}
            if dialect == "anthropic":
                chat = chat_request_from_anthropic(body, request_id=request_id, headers=headers)
            else:
                chat = chat_request_from_openai(body, request_id=request_id, headers=headers)
        except msgspec.DecodeError as exc:
            return self._error(dialect, GatewayError(ErrorKind.INVALID_REQUEST, f"invalid JSON: {exc}"), request_id)
        except GatewayError as err:
            return self._error(dialect, err, request_id)
        fault = self.engine.pick_fault()
        if fault in _STATUS:
            status, kind = _STATUS[fault]
            failure = GatewayError(kind, f"simulated {fault.replace('_', ' ')}")
            response = self._error(dialect, failure, request_id, status)
            if fault == "rate_limit":
                response.headers["retry-after"] = f"{self.engine.config.faults.retry_after:g}"
            return response
        if fault == "timeout":
            await asyncio.sleep(self.request_timeout)
        if fault == "connection_reset" and http.transport is not None:
            http.transport.abort()
            raise asyncio.CancelledError
        if fault == "malformed":
            return web.Response(status=200, body=b'{"id": "msg_broken", "content": [', content_type="application/json")
        message = self.engine.answer(chat.body, chat.model)
        if not chat.stream:
            if self.engine.config.ttft_ms:
                await asyncio.sleep(self.engine.config.ttft_ms / 1000)
            out: Any = message if dialect == "anthropic" else to_openai_response(message, request=chat)
            return web.Response(body=msgspec.json.encode(out), content_type="application/json",
                                headers={"request-id": request_id})
        return await self._stream(http, chat, message, dialect, cut=fault == "stream_cut")

    async def _stream(self, http: web.Request, chat: ChatRequest, message: Any, dialect: str,
                      *, cut: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache",
                                               "request-id": chat.request_id})
        await response.prepare(http)
        encoder = OpenAIStreamEncoder(chat) if dialect == "openai" else None
        pinged = False
        async for event in self.engine.stream(message, cut=cut):
            if encoder is not None:
                data = encoder.encode(event)
            else:
                data = encode_event(event)
                if event["type"] == "content_block_start" and not pinged:
                    data, pinged = data + PING, True
            if data:
                await response.write(data)
        if cut:
            if http.transport is not None:
                http.transport.abort()
            return response
        if encoder is not None:
            await response.write(encoder.done())
        await response.write_eof()
        return response

    @staticmethod
    def _error(dialect: str, err: GatewayError, request_id: str, status: int | None = None) -> web.Response:
        body = anthropic_error_body(err, request_id) if dialect == "anthropic" else openai_error_body(err)
        return web.Response(status=status or err.status, body=body, content_type="application/json")


def run_simulator(config: SimulatorConfig, host: str, port: int) -> None:
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - platforms without uvloop
        loop = asyncio.new_event_loop()
    print(f"Passerelle simulator on http://{host}:{port} (Anthropic: /v1/messages, OpenAI: /v1/chat/completions)",
          flush=True)
    web.run_app(SimulatorServer(config).app(), host=host, port=port, access_log=None, print=None,
                backlog=2048, loop=loop)
