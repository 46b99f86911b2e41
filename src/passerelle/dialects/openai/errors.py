"""OpenAI's error envelope, both ways: rendering the gateway's errors for OpenAI clients and
reading the ``{"error": {...}}`` objects an OpenAI-style upstream sends in a 200 or a stream."""

from __future__ import annotations

from typing import Any

import msgspec

from passerelle.errors import ErrorKind, GatewayError, UpstreamError

_UPSTREAM_KINDS = {
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.RATE_LIMIT,
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "context_length_exceeded": ErrorKind.INVALID_REQUEST,
    "not_found_error": ErrorKind.NOT_FOUND,
    "model_not_found": ErrorKind.NOT_FOUND,
    "timeout": ErrorKind.TIMEOUT,
    "server_error": ErrorKind.BAD_GATEWAY,
    "service_unavailable": ErrorKind.UNAVAILABLE,
}


def openai_error_object(err: GatewayError) -> dict[str, Any]:
    return {"error": {"message": err.message, "type": err.kind.openai_type, "param": err.param,
                      "code": err.kind.openai_code}}


def openai_error_body(err: GatewayError) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}`` as OpenAI sends it."""
    return msgspec.json.encode(openai_error_object(err))


def upstream_error_from_openai(error: object) -> UpstreamError:
    """The UpstreamError for an ``error`` object from an OpenAI-style upstream.

    Client errors stay client errors (not retryable); a rejected credential is the gateway's
    fault, so it becomes a 502; anything unknown is a retryable 502."""
    fields = error if isinstance(error, dict) else {"message": str(error)}
    message = str(fields.get("message") or "upstream error")
    code, kind_name = fields.get("code"), fields.get("type")
    kind = _UPSTREAM_KINDS.get(str(code)) or _UPSTREAM_KINDS.get(str(kind_name)) or ErrorKind.BAD_GATEWAY
    if "authentication" in str(kind_name) or code == "invalid_api_key":
        return UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream rejected the gateway's credentials: {message}",
                             retryable=False)
    param = fields.get("param")
    return UpstreamError(kind, message, retryable=kind.status >= 429,
                         param=param if isinstance(param, str) else None)
