"""Anthropic stream events: read from an upstream's SSE, written to a client's SSE."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import msgspec

from passerelle.canonical import StreamEvent
from passerelle.dialects.sse import encode_sse, parse_sse
from passerelle.errors import ErrorKind, UpstreamError

_ERROR_KINDS = {
    "overloaded_error": ErrorKind.OVERLOADED,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "api_error": ErrorKind.BAD_GATEWAY,
    "timeout_error": ErrorKind.TIMEOUT,
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
}


async def events_from_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[StreamEvent]:
    """Canonical events from an Anthropic-style SSE body; an ``error`` event or a stream that
    ends before ``message_stop`` raises UpstreamError."""
    finished = False
    async for message in parse_sse(chunks):
        try:
            event = msgspec.json.decode(message.data)
        except msgspec.DecodeError:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, "upstream sent a malformed stream event",
                                retryable=True) from None
        if not isinstance(event, dict):
            raise UpstreamError(ErrorKind.BAD_GATEWAY, "upstream sent a malformed stream event", retryable=True)
        kind = event.get("type")
        if kind == "error":
            error = event.get("error") or {}
            err_kind = _ERROR_KINDS.get(str(error.get("type")), ErrorKind.BAD_GATEWAY)
            raise UpstreamError(err_kind, str(error.get("message", "upstream stream error")),
                                retryable=err_kind is not ErrorKind.INVALID_REQUEST)
        if kind == "ping":
            continue
        yield event
        if kind == "message_stop":
            finished = True
            break
    if not finished:
        raise UpstreamError(ErrorKind.BAD_GATEWAY, "upstream stream ended before message_stop", retryable=True)


def encode_event(event: StreamEvent) -> bytes:
    return encode_sse(msgspec.json.encode(event), str(event["type"]))


PING = encode_sse(b'{"type":"ping"}', "ping")
