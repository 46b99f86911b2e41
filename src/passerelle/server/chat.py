"""The chat route, shared by both dialects: auth, parse, route, answer (whole or streamed)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

import msgspec

from passerelle.canonical import ChatRequest
from passerelle.errors import ErrorKind, GatewayError, UpstreamError
from passerelle.observability import metrics
from passerelle.observability.logging import log
from passerelle.routing.router import Routed
from passerelle.server.asgi import (
    BodyTooLarge,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    end_stream,
    read_body,
    send_bytes,
    send_chunk,
    start_stream,
)
from passerelle.server.codecs import Codec
from passerelle.server.gateway import Gateway

_id_prefix = "req_" + os.urandom(8).hex()
_ids = itertools.count(1)


def _new_id_prefix() -> None:
    global _id_prefix, _ids
    _id_prefix, _ids = "req_" + os.urandom(8).hex(), itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)  # worker processes never share a prefix


def new_request_id() -> str:
    """Unique across processes (random prefix) and within one (counter), with no syscall per request."""
    return f"{_id_prefix}{next(_ids):010x}"


def requested_timeout(headers: Mapping[str, str]) -> float | None:
    """``x-passerelle-timeout``: seconds the caller will wait for each upstream attempt."""
    value = headers.get("x-passerelle-timeout")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise GatewayError(ErrorKind.INVALID_REQUEST, "x-passerelle-timeout: expected seconds between 0 and 3600",
                           param="x-passerelle-timeout")
    return seconds


def response_headers(request_id: str, routed: Routed | None = None, warnings: list[str] | None = None,
                     ) -> dict[str, str]:
    headers = {"request-id": request_id, "x-request-id": request_id}
    if routed is not None:
        headers["x-passerelle-deployment"] = routed.deployment.name
        headers["x-passerelle-upstream-model"] = routed.upstream_model
        if routed.attempts > 1:
            headers["x-passerelle-attempts"] = str(routed.attempts)
    if warnings:
        # Header values must stay latin-1 and on one line.
        headers["x-passerelle-warnings"] = "; ".join(warnings).encode("latin-1", "replace").decode("latin-1")
    return headers


async def send_error(send: Send, codec: Codec, err: GatewayError, request_id: str) -> None:
    headers = response_headers(request_id)
    if err.retry_after is not None:
        headers["retry-after"] = str(max(1, round(err.retry_after)))
    await send_bytes(send, err.status, codec.error(err, request_id), headers)


async def read_json(gw: Gateway, scope: Scope, receive: Receive, headers: Mapping[str, str]) -> object:
    limit = gw.config.server.max_body_bytes
    try:
        raw = await read_body(receive, limit, headers.get("content-length"))
    except BodyTooLarge:
        raise GatewayError(ErrorKind.REQUEST_TOO_LARGE, f"request body exceeds the {limit} byte limit") from None
    if not raw:
        raise GatewayError(ErrorKind.INVALID_REQUEST, "request body is empty: expected a JSON object")
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise GatewayError(ErrorKind.INVALID_REQUEST, f"request body is not valid JSON: {exc}") from None


async def handle_chat(gw: Gateway, codec: Codec, route: str, scope: Scope, receive: Receive, send: Send,
                      headers: Mapping[str, str]) -> None:
    request_id = headers.get("x-request-id") or new_request_id()
    started = time.perf_counter()
    request: ChatRequest | None = None
    status = 200
    alias = "-"  # metrics are labelled by configured alias, never by a caller-chosen name
    try:
        principal = gw.keys.authenticate(headers)
        body = await read_json(gw, scope, receive, headers)
        raw_query: bytes = scope.get("query_string", b"")
        query = dict(parse_qsl(raw_query.decode("latin-1"))) if raw_query else {}
        request = codec.parse(body, request_id, headers, query)
        request.timeout = requested_timeout(headers)
        principal.check_model(request.model)
        if request.stream:
            status, alias = await _stream(gw, codec, route, request, receive, send, started)
        else:
            routed = await gw.router.complete(request)
            alias = routed.deployment.alias
            out = codec.response(routed.message, request)
            await send_bytes(send, 200, out, response_headers(request_id, routed, routed.warnings))
            metrics.record_usage(alias, routed.deployment.name, routed.message["usage"])
            _log_warnings(request_id, routed.warnings)
    except GatewayError as err:
        status = err.status
        await send_error(send, codec, err, request_id)
    except ClientDisconnected:
        status = 499  # gone before its request was read: nobody to answer
    except Exception as exc:  # a bug: answer in the caller's format, log the details for us
        status = 500
        log("internal_error", logging.ERROR, request_id=request_id, error=f"{exc.__class__.__name__}: {exc}")
        await send_error(send, codec, GatewayError(ErrorKind.API_ERROR, "internal gateway error"), request_id)
    elapsed = time.perf_counter() - started
    metrics.child(metrics.REQUESTS, route, alias, str(status)).inc()
    metrics.child(metrics.LATENCY, route, alias).observe(elapsed)
    log("request", request_id=request_id, route=route, model=request.model if request else "-", status=status,
        stream=bool(request and request.stream), latency_ms=round(elapsed * 1000, 3))


async def _stream(gw: Gateway, codec: Codec, route: str, request: ChatRequest, receive: Receive, send: Send,
                  started: float) -> tuple[int, str]:
    """Stream the answer; returns the status to record and the alias.  Once the first byte is
    out, failures become an error event in the stream, since the HTTP status is already sent."""
    routed = await gw.router.stream(request)
    alias = routed.deployment.alias
    encoder = codec.stream_encoder(request)
    events = routed.events
    await start_stream(send, response_headers(request.request_id, routed, routed.warnings))
    _log_warnings(request.request_id, routed.warnings)
    metrics.child(metrics.FIRST_BYTE, route, alias).observe(time.perf_counter() - started)
    usage: dict[str, int] = {}
    # The body is read, so the next ASGI message is the client hanging up: stop the upstream then,
    # rather than paying for tokens nobody will read.
    hang_up = asyncio.ensure_future(receive())
    status = 200
    try:
        async for event in events:
            if hang_up.done():
                status = 499
                break
            kind = event["type"]
            if kind == "message_start":
                usage.update(event["message"].get("usage") or {})
            elif kind == "message_delta":
                usage.update(event.get("usage") or {})
            chunk = encoder.encode(event)
            if chunk:
                await send_chunk(send, chunk)
        else:
            tail = encoder.done()
            if tail:
                await send_chunk(send, tail)
    except UpstreamError as err:
        log("stream_failed", logging.WARNING, request_id=request.request_id, deployment=routed.deployment.name,
            error=err.message)
        status = 599  # recorded as a stream that failed after its 200
        await send_chunk(send, encoder.error(err))
    except (OSError, RuntimeError):
        status = 499  # the client went away: sending failed
    finally:
        hang_up.cancel()
        await events.aclose()  # type: ignore[attr-defined]
        metrics.record_usage(alias, routed.deployment.name, usage)
    if status != 499:
        await end_stream(send)
    return status, alias


def _log_warnings(request_id: str, warnings: list[str]) -> None:
    if warnings:
        log("dropped_fields", logging.WARNING, request_id=request_id, warnings=warnings)
