"""Anthropic's error envelope: {"type": "error", "error": {"type", "message"}, "request_id"}."""

from __future__ import annotations

import msgspec

from passerelle.dialects.sse import encode_sse
from passerelle.errors import GatewayError


def anthropic_error(err: GatewayError, request_id: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"type": "error", "error": {"type": err.kind.anthropic_type, "message": err.message}}
    if request_id:
        body["request_id"] = request_id
    return body


def anthropic_error_body(err: GatewayError, request_id: str | None = None) -> bytes:
    return msgspec.json.encode(anthropic_error(err, request_id))


def anthropic_error_event(err: GatewayError, request_id: str | None = None) -> bytes:
    return encode_sse(anthropic_error_body(err, request_id), "error")
