"""The ASGI application: a dispatch table from (method, path) to handlers."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import msgspec

from passerelle.config import Config, load_config
from passerelle.dialects.anthropic.response import anthropic_models_list
from passerelle.dialects.openai import openai_models_list
from passerelle.errors import ErrorKind, GatewayError
from passerelle.observability import metrics
from passerelle.observability.logging import LOG, log, setup_logging
from passerelle.server.asgi import ClientDisconnected, Receive, Scope, Send, header_map, send_bytes
from passerelle.server.chat import handle_chat, new_request_id, read_json, response_headers, send_error
from passerelle.server.codecs import ANTHROPIC, OPENAI, codec_for_headers
from passerelle.server.gateway import Gateway
from passerelle.server.skills_gateway import prepare_skills

Handler = Callable[[Gateway, Scope, Receive, Send, Mapping[str, str]], Awaitable[None]]
_STARTED_AT = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def messages(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    await handle_chat(gw, ANTHROPIC, "messages", scope, receive, send, headers)


async def chat_completions(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                           headers: Mapping[str, str]) -> None:
    await handle_chat(gw, OPENAI, "chat_completions", scope, receive, send, headers)


async def count_tokens(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                       headers: Mapping[str, str]) -> None:
    request_id = headers.get("x-request-id") or new_request_id()
    try:
        principal = gw.keys.authenticate(headers)
        principal.check_route("count_tokens")
        body = await read_json(gw, scope, receive, headers)
        request = ANTHROPIC.parse_count(body, request_id, headers)
        principal.check_model(request.model)
        gw.aiact.check(principal, "count_tokens", request.model)  # a suspended purpose counts nothing either
        protection = gw.compliance.protect(principal, request) if gw.compliance.enabled else None
        if protection is not None and protection.refusal is not None:  # counting sends the prompt upstream too
            raise protection.refusal
        # The catalog and tool the skills stage adds to this key's messages calls count too.
        await prepare_skills(gw, principal, request)
        tokens = await gw.router.count_tokens(request)
    except GatewayError as err:
        await send_error(send, ANTHROPIC, err, request_id)
        return
    await send_bytes(send, 200, msgspec.json.encode({"input_tokens": tokens}),
                     response_headers(request_id))


async def models(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    codec = codec_for_headers(headers)
    request_id = headers.get("x-request-id") or new_request_id()
    try:
        gw.keys.authenticate(headers).check_route("models")
    except GatewayError as err:
        await send_error(send, codec, err, request_id)
        return
    names = gw.table.names()
    path: str = scope["path"]
    if path.startswith("/v1/models/"):
        name = path.removeprefix("/v1/models/")
        try:
            gw.table.resolve(name)
        except GatewayError as err:
            await send_error(send, codec, err, request_id)
            return
        names = [name]
    if codec is ANTHROPIC:
        data = anthropic_models_list(names, _STARTED_AT)
    else:
        data = openai_models_list(names, int(time.time()))
    body = data["data"][0] if path.startswith("/v1/models/") else data
    await send_bytes(send, 200, msgspec.json.encode(body), response_headers(request_id))


def _ids(headers: Mapping[str, str]) -> dict[str, str]:
    return response_headers(headers.get("x-request-id") or new_request_id())


async def health(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    await send_bytes(send, 200, b'{"status":"ok"}', _ids(headers))


async def ready(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    if gw.draining:
        await send_bytes(send, 503, b'{"status":"draining"}', _ids(headers))
        return
    for name, part in (("store", gw.store), ("counters", gw.counters)):
        try:
            await part.ping()
        except Exception as exc:
            body = msgspec.json.encode({"status": "unavailable", name: f"{exc.__class__.__name__}: {exc}"})
            await send_bytes(send, 503, body, _ids(headers))
            return
    await send_bytes(send, 200, b'{"status":"ready","store":"ok","counters":"ok"}', _ids(headers))


async def prometheus(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    body, content_type = metrics.render()
    await send_bytes(send, 200, body, _ids(headers), content_type=content_type)


async def admin(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    from passerelle.server.admin import handle_admin  # operator-only: loaded on first use

    await handle_admin(gw, scope, receive, send, headers)


async def console(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    from passerelle.console.handler import handle_console  # operator-only: loaded on first use

    await handle_console(gw, scope, receive, send, headers)


async def skills(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    from passerelle.server.skills_api import handle_skills  # loaded on first use

    await handle_skills(gw, scope, receive, send, headers)


ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "/v1/messages"): messages,
    ("POST", "/v1/messages/count_tokens"): count_tokens,
    ("POST", "/v1/chat/completions"): chat_completions,
    ("POST", "/chat/completions"): chat_completions,
    ("GET", "/v1/models"): models,
    ("POST", "/v1/skills"): skills,
    ("GET", "/v1/skills"): skills,
    ("GET", "/health"): health,
    ("GET", "/ready"): ready,
    ("GET", "/metrics"): prometheus,
}


class App:
    """The gateway as an ASGI callable; ``gateway`` is built at lifespan start-up."""

    def __init__(self, build: Callable[[], Awaitable[Gateway]]) -> None:
        self._build = build
        self._building = asyncio.Lock()
        self.gateway: Gateway | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.gateway is None:  # servers without lifespan support
            async with self._building:
                if self.gateway is None:
                    self.gateway = await self._build()
        path: str = scope["path"]
        handler = ROUTES.get((scope["method"], path))
        if handler is None and path.startswith("/v1/models/") and scope["method"] == "GET":
            handler = models
        elif handler is None and path.startswith("/admin/"):
            handler = admin
        elif handler is None and (path == "/console" or path.startswith("/console/")):
            handler = console
        elif handler is None and path.startswith("/v1/skills/"):
            handler = skills
        headers = header_map(scope)
        if handler is None:
            codec = codec_for_headers(headers)
            known = any(p == path for _, p in ROUTES)
            err = GatewayError(ErrorKind.INVALID_REQUEST if known else ErrorKind.NOT_FOUND,
                               f"{scope['method']} {path} is not supported" if known else f"no route for {path}")
            if known:
                err.status = 405
            await send_error(send, codec, err, headers.get("x-request-id") or new_request_id())
            return
        try:
            await handler(self.gateway, scope, receive, send, headers)
        except ClientDisconnected:
            return  # the caller left while sending its request: nothing to answer

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.gateway = await self._build()
                except Exception as exc:
                    log("startup_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.gateway is not None:
                    self.gateway.draining = True
                    await self.gateway.aclose()
                await LOG.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(config: Config | None = None, data_dir: Path | None = None,
               admin_key_sha256: str | None = None, *, freeze_heap: bool = False) -> App:
    """Build the app from arguments, or from the environment the CLI sets for worker processes.

    ``freeze_heap`` (worker processes): once the gateway is built, the objects made at start-up (detector
    tables, phone metadata, name lists: most of the heap) move to the collector's permanent generation.
    Without it, the first full collection under load walked all of them: 60-70 ms with the finance pack,
    during which the worker answered nothing (measured with ``gc.callbacks`` at 400 requests/s)."""

    async def build() -> Gateway:
        cfg = config if config is not None else load_config(os.environ.get("PASSERELLE_CONFIG") or None)
        setup_logging(cfg.server.log_level)
        home = data_dir or Path(os.environ.get("PASSERELLE_HOME") or cfg.server.data_dir or default_home())
        admin = admin_key_sha256 or os.environ.get("PASSERELLE_ADMIN_KEY_SHA256")
        workers = int(os.environ.get("PASSERELLE_WORKERS") or cfg.server.workers)
        gateway = await Gateway.open(cfg, home, admin, workers)
        if freeze_heap:
            gc.collect()  # start-up's garbage is freed, not frozen
            gc.freeze()
        log("worker_ready", logging.INFO, pid=os.getpid(), providers=sorted(cfg.providers))
        return gateway

    return App(build)


def create_worker_app() -> App:
    """The factory the HTTP servers call in each worker process (see ``server.engines``)."""
    return create_app(freeze_heap=True)


def default_home() -> str:
    return str(Path.home() / ".passerelle")
