"""The gateway's error tree.  Every failure becomes a GatewayError before it reaches a client,
and each dialect renders it in its own envelope (see ``dialects/*/errors.py``)."""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    """A failure category, with its HTTP status and its name in each dialect."""

    #            status, anthropic type,          openai type,              openai code
    INVALID_REQUEST = (400, "invalid_request_error", "invalid_request_error", None)
    AUTHENTICATION = (401, "authentication_error", "authentication_error", "invalid_api_key")
    # A hard budget would be exceeded: 402 (no SDK retries it), Anthropic's billing error and
    # OpenAI's quota error.
    BUDGET_EXCEEDED = (402, "billing_error", "insufficient_quota", "insufficient_quota")
    PERMISSION = (403, "permission_error", "permission_error", "permission_denied")
    NOT_FOUND = (404, "not_found_error", "invalid_request_error", "model_not_found")
    REQUEST_TOO_LARGE = (413, "request_too_large", "invalid_request_error", "request_too_large")
    RATE_LIMIT = (429, "rate_limit_error", "rate_limit_error", "rate_limit_exceeded")
    API_ERROR = (500, "api_error", "server_error", "server_error")
    BAD_GATEWAY = (502, "api_error", "server_error", "bad_gateway")
    UNAVAILABLE = (503, "api_error", "server_error", "service_unavailable")
    TIMEOUT = (504, "timeout_error", "timeout", "timeout")
    OVERLOADED = (529, "overloaded_error", "server_error", "overloaded")

    def __init__(self, status: int, anthropic_type: str, openai_type: str, openai_code: str | None) -> None:
        self.status = status
        self.anthropic_type = anthropic_type
        self.openai_type = openai_type
        self.openai_code = openai_code

    @classmethod
    def from_status(cls, status: int) -> ErrorKind:
        for kind in cls:
            if kind.status == status:
                return kind
        if status == 422:
            return cls.INVALID_REQUEST
        return cls.INVALID_REQUEST if 400 <= status < 500 else cls.BAD_GATEWAY


class GatewayError(Exception):
    """An error with a client-facing meaning.

    ``param`` names the offending field (OpenAI clients read it); ``retry_after`` is in seconds.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.status = status or kind.status


def invalid(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(ErrorKind.INVALID_REQUEST, message, param=param)


class UpstreamError(GatewayError):
    """A provider call failed.  ``retryable`` tells the router whether another try may help."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        upstream_status: int | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(kind, message, retry_after=retry_after, param=param)
        self.retryable = retryable
        self.upstream_status = upstream_status


def upstream_error_for_status(status: int, message: str, retry_after: float | None = None) -> UpstreamError:
    """Map an upstream HTTP status to the gateway's error, keeping client errors as such."""
    if status in (408, 504):
        return UpstreamError(ErrorKind.TIMEOUT, message, retryable=True, upstream_status=status)
    if status == 429:
        return UpstreamError(ErrorKind.RATE_LIMIT, message, retryable=True, retry_after=retry_after,
                             upstream_status=status)
    if status == 529:
        return UpstreamError(ErrorKind.OVERLOADED, message, retryable=True, retry_after=retry_after,
                             upstream_status=status)
    if status >= 500:
        kind = ErrorKind.UNAVAILABLE if status == 503 else ErrorKind.BAD_GATEWAY
        return UpstreamError(kind, message, retryable=True, retry_after=retry_after, upstream_status=status)
    if status in (401, 403):
        # The gateway's own credentials for the upstream are wrong: not the caller's fault.
        return UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream rejected the gateway's credentials: {message}",
                             retryable=False, upstream_status=status)
    kind = ErrorKind.from_status(status)
    return UpstreamError(kind, message, retryable=False, upstream_status=status)
