"""The one HTTP client every adapter uses to reach its upstream.

It owns the pool of upstream connections (``http_connection``) and maps transport failures to the
gateway's error tree, so adapters never see a socket or parser exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import msgspec
from yarl import URL

from passerelle.errors import ErrorKind, UpstreamError, upstream_error_for_status
from passerelle.providers.http_connection import (
    Connection,
    ConnectionPool,
    Origin,
    ResponseError,
    header_map,
    request_head,
    split_url,
    with_params,
)


class UpstreamResponse:
    __slots__ = ("_headers", "_raw_headers", "body", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]] | Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.body = body
        self._raw_headers = headers if isinstance(headers, list) else None
        self._headers = None if isinstance(headers, list) else headers

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:  # decoded on first read: a successful call never needs them
            self._headers = header_map(self._raw_headers or [])
        return self._headers

    def json(self) -> Any:
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError as exc:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream sent a malformed JSON body: {exc}",
                                retryable=True, upstream_status=self.status) from None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Read ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        import time

        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def error_message_from_body(body: bytes) -> str:
    """Pull the human message out of an Anthropic, OpenAI, AWS or Google error body."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body[:500].decode("utf-8", "replace") or "no body"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        for key in ("message", "Message"):
            if isinstance(data.get(key), str):
                return str(data[key])
        if isinstance(err, str):
            return err
    return body[:500].decode("utf-8", "replace")


def _exchange_failed(exc: OSError | ResponseError, timeout_s: float) -> UpstreamError:
    """An exchange that ended before its answer: the time ran out, or the connection failed (both retryable)."""
    if isinstance(exc, TimeoutError):
        return UpstreamError(ErrorKind.TIMEOUT, f"upstream did not answer within {timeout_s:g}s", retryable=True)
    return UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream connection failed: {exc.__class__.__name__}",
                         retryable=True)


class HttpClient:
    """Pooled keep-alive connections to upstreams (see ``http_connection``); one per worker process."""

    def __init__(self, *, connect_timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.pool = ConnectionPool(connect_timeout=connect_timeout, ssl_context=ssl_context)

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def post(
        self, url: str | URL, body: bytes, headers: Mapping[str, str], timeout_s: float,
        params: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        """POST and read the whole answer within ``timeout_s``; non-2xx answers become UpstreamError."""
        origin, head = _prepare(url, body, headers, params)
        try:
            async with asyncio.timeout(timeout_s):
                conn = await self._open(origin, head, body, None)
                try:
                    pieces = []
                    while (piece := await conn.chunk()) is not None:
                        pieces.append(piece)
                    result = UpstreamResponse(conn.status, conn.raw_headers(), b"".join(pieces))
                finally:
                    self.pool.release(origin, conn)
        except (OSError, ResponseError) as exc:  # TimeoutError is an OSError
            raise _exchange_failed(exc, timeout_s) from None
        if result.status >= 300:
            raise upstream_error_for_status(result.status, error_message_from_body(result.body),
                                            retry_after_seconds(result.headers))
        return result

    async def post_stream(
        self, url: str | URL, body: bytes, headers: Mapping[str, str], timeout_s: float,
        params: Mapping[str, str] | None = None,
    ) -> ChunkStream:
        """POST and return the answer's body chunks as they arrive.

        The status is checked before anything is returned, so an upstream refusal surfaces as
        UpstreamError while the router can still retry.  ``timeout_s`` bounds the wait for the
        answer's head and then each pause between chunks.
        """
        origin, head = _prepare(url, body, headers, params)
        try:
            conn = await self._open(origin, head, body, timeout_s)
        except (OSError, ResponseError) as exc:  # TimeoutError is an OSError
            raise _exchange_failed(exc, timeout_s) from None
        stream = ChunkStream(self.pool, origin, conn, timeout_s)
        if conn.status >= 300:
            # Read before the end of the exchange resets them.
            status, answer_headers = conn.status, header_map(conn.raw_headers())
            data = b"".join([piece async for piece in stream])
            raise upstream_error_for_status(status, error_message_from_body(data),
                                            retry_after_seconds(answer_headers))
        return stream

    async def _open(self, origin: Origin, head: bytes, body: bytes, read_timeout: float | None) -> Connection:
        """Send the request and wait for the answer's head.  A kept-alive connection the upstream closed
        while it sat idle (its keep-alive timeout) can fail before a single byte comes back: that one
        request is sent again, once, on a new connection; the router would resend it anyway, and a
        stale socket is not the upstream's failure."""
        conn = await self.pool.acquire(origin)
        reused = conn.exchanges > 0
        try:
            conn.send(head, body, read_timeout)
            await conn.head()
            return conn
        except ResponseError:
            self.pool.release(origin, conn)
            if not reused or conn.answered:
                raise
        except BaseException:
            self.pool.release(origin, conn)
            raise
        conn = await self.pool.connect(origin)
        try:
            conn.send(head, body, read_timeout)
            await conn.head()
        except BaseException:
            self.pool.release(origin, conn)
            raise
        return conn


class ChunkStream:
    """A streamed answer's body pieces; ``aclose`` (or the end) gives the connection back or closes it.

    As an ``async with`` block around the reading of its events: leaving the block normally means the caller
    read the answer's last event (``finish``: the connection is kept); leaving it on an exception, or because
    the caller's generator was closed early, closes the connection (the upstream stops generating)."""

    __slots__ = ("_conn", "_origin", "_pool", "_timeout_s")

    def __init__(self, pool: ConnectionPool, origin: Origin, conn: Connection, timeout_s: float) -> None:
        self._pool = pool
        self._origin = origin
        self._conn: Connection | None = conn
        self._timeout_s = timeout_s

    def __aiter__(self) -> ChunkStream:
        return self

    async def __aenter__(self) -> ChunkStream:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if kind is None:
            self.finish()
        else:
            self.release()

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        try:
            piece = await conn.chunk()
        except TimeoutError:
            self.release()
            raise UpstreamError(ErrorKind.TIMEOUT, f"upstream stream stalled for {self._timeout_s:g}s",
                                retryable=True) from None
        except (OSError, ResponseError) as exc:
            self.release()
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream stream broke: {exc.__class__.__name__}",
                                retryable=True) from None
        except BaseException:  # cancelled: the answer is unread, the connection cannot be reused
            self.release()
            raise
        if piece is None:
            self.release()
            raise StopAsyncIteration
        return piece

    async def aclose(self) -> None:
        self.release()

    def finish(self) -> None:
        """The caller read the answer's last event (its protocol's own end, such as ``message_stop`` or
        ``[DONE]``): the connection goes back to the pool once the body's framing has ended too, read in the
        background, or is closed if more than that follows.  ``aclose`` keeps the connection only if the body
        has already ended: the next request would pay for a new connection (and a TLS handshake) whenever
        the body's last chunk comes in a later packet than the last event."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release_after_tail(self._origin, conn)

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(self._origin, conn)

    def __del__(self) -> None:
        conn = self._conn
        if conn is not None:  # dropped unread: never back to the pool, and its socket closed now
            with contextlib.suppress(Exception):  # e.g. its event loop already closed, at exit
                conn.close()


def _prepare(url: str | URL, body: bytes, headers: Mapping[str, str], params: Mapping[str, str] | None,
             ) -> tuple[Origin, bytes]:
    try:
        origin, target = split_url(str(url))
        return origin, request_head(with_params(target, params), origin.authority, headers, len(body))
    except ValueError as exc:  # a header with a line break, a non-latin-1 value, a bad URL
        raise UpstreamError(ErrorKind.BAD_GATEWAY, f"the upstream request cannot be sent: {exc}",
                            retryable=False) from None
