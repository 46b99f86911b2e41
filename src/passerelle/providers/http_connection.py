"""Keep-alive HTTP/1.1 connections to upstreams: one asyncio protocol per connection, responses parsed
by httptools (llhttp, the parser uvicorn uses), idle connections pooled per origin.

Why not a general client library: an upstream call is always one POST whose answer is read whole or
streamed, and a general client's layers (cookie jars, tracing, redirects, stream readers) cost more CPU
than the rest of the gateway.  Measured on the benchmark's upstream (same machine, same run): aiohttp's
client took 1.3-1.8 ms of CPU per streamed answer and 0.19 ms per whole one, this module 0.8 and 0.05.

One exchange at a time per connection.  A connection goes back to the pool only when its response was
read to the end and both sides keep it alive; anything else (an error, a stream the caller stopped
reading, a timeout) closes it, so a half-read answer can never reach the next request.  A stream whose
last event was read before the body's own end (a chunked body's last, empty chunk often comes in a later
packet) is finished in the background: the rest is read and dropped, up to ``TAIL_BYTES`` within
``TAIL_SECONDS``, and the connection then goes back to the pool (see ``ConnectionPool.release_after_tail``).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from typing import NamedTuple, cast
from urllib.parse import quote, urlencode, urlsplit

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

_PAUSE_AT = 256 * 1024  # unread body bytes at which the socket stops being read (a slow consumer)
# What is still read of a stream after its last event, to keep its connection: the framing, not content.
TAIL_BYTES = 16 * 1024
TAIL_SECONDS = 2.0
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "host"})


class ResponseError(Exception):
    """The upstream broke the exchange: closed the connection early or sent a malformed response."""


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int
    authority: str  # the Host header: the URL's host and port as written


@functools.lru_cache(maxsize=256)
def split_url(url: str) -> tuple[Origin, str]:
    """(origin, request target) of an absolute http(s) URL; the path and query are sent as written."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    authority = parts.netloc.rpartition("@")[2]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname, port, authority), target


def with_params(target: str, params: Mapping[str, str] | None) -> str:
    if not params:
        return target
    return target + ("&" if "?" in target else "?") + urlencode(params, quote_via=quote)


def request_head(target: str, authority: str, headers: Mapping[str, str], length: int) -> bytes:
    """A POST's request line and headers; the gateway alone frames the body (Content-Length)."""
    lines = [f"POST {target} HTTP/1.1", ""]
    host = authority
    accept = False
    for name, value in headers.items():
        lower = name.lower()
        if lower in _FRAMING:
            if lower == "host":
                host = value  # e.g. the host a SigV4 signature covers
            continue
        accept = accept or lower == "accept"
        lines.append(f"{name}: {value}")
    lines[1] = f"Host: {host}"
    if not accept:
        lines.append("Accept: */*")
    lines.append(f"Content-Length: {length}")
    joined = "\x00".join(lines)
    if "\r" in joined or "\n" in joined or joined.count("\x00") != len(lines) - 1:
        raise ValueError("a request header contains a line break or NUL")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")  # UnicodeEncodeError (a ValueError) if not


class Connection(asyncio.Protocol):
    """One connection; ``send`` starts an exchange, ``head`` and ``chunk`` read its answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.exchanges = 0  # started on this connection so far
        self.answered = False  # whether any byte of the current exchange's answer arrived
        self.status = 0
        self.head_done = False
        self.complete = False
        self._parser: httptools.HttpResponseParser | None = None
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._until_close = False
        self._keep_alive = False
        self._interim = False
        self._decoder: zlib._Decompress | None = None
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timeout = 0.0
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._tail_done: Callable[[], None] | None = None  # set while the rest of an answer is read and dropped
        self._tail_left = 0
        self._tail_timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # bytes nobody asked for: this connection cannot be trusted any more
            self.close()
            return
        self.answered = True
        if self._timer is not None:
            self._last = self.loop.time()
        try:
            parser.feed_data(data)
        except Exception as exc:  # the parser's errors, and ours raised from its callbacks
            self._fail(exc if isinstance(exc, ResponseError) else ResponseError(f"malformed response: {exc}"))
        self._wake()
        if self._tail_done is not None and self.complete:
            self._tail_ended()

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._parser is not None and not self.complete:
            if self.head_done and self._until_close and exc is None:
                self._message_done()  # a body without length ends with the connection
            elif self._error is None:
                self._error = ResponseError("the upstream closed the connection before the answer ended")
        self._cancel_timer()
        self._stop_tail()
        self._wake()

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._interim = True
            return
        self.status = status
        self._keep_alive = self._parser.should_keep_alive()  # llhttp forgets it once the message is complete
        self.head_done = True
        length = chunked = False
        for name, value in self._raw_headers:
            lower = name.lower()
            if lower == b"content-length":
                length = True
            elif lower == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lower == b"content-encoding":
                self._decoder = _decoder(value.strip().lower())
        self._until_close = not length and not chunked

    def on_body(self, body: bytes) -> None:
        if self._tail_done is not None:  # read and dropped (undecoded: the byte budget is the wire's)
            self._tail_left -= len(body)
            if self._tail_left < 0:
                raise ResponseError("more than the end of a stream followed its last event")
            return
        if self._decoder is not None:
            body = self._decoder.decompress(body)
        if body:
            self._chunks.append(body)
            self._buffered += len(body)
            if self._buffered >= _PAUSE_AT and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._raw_headers = []
            return
        self._message_done()

    # the exchange

    def send(self, head: bytes, body: bytes, read_timeout: float | None) -> None:
        """Start an exchange.  ``read_timeout``: the longest wait for the head and between body bytes."""
        assert self.transport is not None
        self._parser = httptools.HttpResponseParser(self)
        self.exchanges += 1
        self.answered = False
        if read_timeout is not None:
            self._timeout = read_timeout
            self._last = self.loop.time()
            self._timer = self.loop.call_at(self._last + read_timeout, self._check_timeout)
        self.transport.write(head + body)

    async def head(self) -> None:
        while not self.head_done:
            self._raise_if_broken()
            await self._wait()

    async def chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._paused and self._buffered < _PAUSE_AT // 2 and self.transport is not None:
                    self._paused = False
                    self._last = self.loop.time()  # the pause was ours, not the upstream's
                    self.transport.resume_reading()
                return data
            if self.complete:
                return None
            self._raise_if_broken()
            await self._wait()

    def read_tail(self, done: Callable[[], None]) -> None:
        """Read the rest of the current answer and drop it, then call ``done``; close the connection instead if
        more than ``TAIL_BYTES`` bytes or ``TAIL_SECONDS`` go by first (or if it breaks).  For a stream whose
        last event was read before the body ended: the connection can then carry another exchange."""
        if self._parser is None or self.closed or self._error is not None:
            self.close()
            return
        self._chunks.clear()
        self._buffered = 0
        if self.complete:
            done()
            return
        self._cancel_timer()  # the exchange's read timeout: the tail has its own, shorter
        self._tail_done, self._tail_left = done, TAIL_BYTES
        self._tail_timer = self.loop.call_later(TAIL_SECONDS, self.close)
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return self._raw_headers  # ``finish`` starts a new list: this one stays the caller's

    def finish(self) -> bool:
        """End the exchange; whether the connection may carry another one."""
        assert self._parser is not None
        reusable = self.complete and self._keep_alive and not self.closed and self._error is None and not self._paused
        self._cancel_timer()
        self._parser = None
        self._raw_headers = []
        self._chunks.clear()
        self._buffered = 0
        self.status = 0
        self.head_done = self.complete = self._until_close = self._keep_alive = False
        self._decoder = None
        self._stop_tail()
        return reusable

    def close(self) -> None:
        self.closed = True
        self._cancel_timer()
        self._stop_tail()
        if self.transport is not None:
            self.transport.close()

    # internals

    def _message_done(self) -> None:
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._chunks.append(rest)
                self._buffered += len(rest)
        self.complete = True
        self._cancel_timer()

    def _raise_if_broken(self) -> None:
        if self._error is not None:
            raise self._error
        if self.closed:
            raise ResponseError("the connection to the upstream is closed")

    async def _wait(self) -> None:
        waiter = self._waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self.close()

    def _check_timeout(self) -> None:
        # One timer per exchange, moved only when it fires: data arriving just records its time.
        self._timer = None
        if self._parser is None or self.complete:
            return
        due = self._last + self._timeout
        if self.loop.time() >= due:
            self._fail(TimeoutError())
            self._wake()
        else:
            self._timer = self.loop.call_at(due, self._check_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tail_ended(self) -> None:
        done = self._tail_done
        self._stop_tail()
        if done is not None:
            done()

    def _stop_tail(self) -> None:
        self._tail_done = None
        if self._tail_timer is not None:
            self._tail_timer.cancel()
            self._tail_timer = None


def header_map(raw: list[tuple[bytes, bytes]]) -> CIMultiDictProxy[str]:
    """Response headers as a case-insensitive mapping (built only when someone reads them)."""
    return CIMultiDictProxy(CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw))


def _decoder(encoding: bytes) -> zlib._Decompress | None:
    if encoding in (b"", b"identity"):
        return None
    if encoding in (b"gzip", b"x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == b"deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib-wrapped, as the RFC says (header auto-detected)
    raise ResponseError(f"unsupported content-encoding {encoding.decode('latin-1')!r} (none was asked for)")


class ConnectionPool:
    """Idle keep-alive connections per origin, most recently used first; one pool per event loop."""

    def __init__(self, *, connect_timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None,
                 max_idle_per_origin: int = 256, idle_seconds: float = 30.0) -> None:
        self.connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._max_idle = max_idle_per_origin
        self._idle_seconds = idle_seconds
        self._idle: dict[Origin, deque[Connection]] = {}  # most recently used at the right
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tails: weakref.WeakSet[Connection] = weakref.WeakSet()  # reading the end of a stream's answer
        self.opened = 0  # connections made so far (tests check reuse with it)

    @property
    def idle_connections(self) -> int:
        """Connections waiting in the pool for another exchange."""
        return sum(len(idle) for idle in self._idle.values())

    async def acquire(self, origin: Origin) -> Connection:
        loop = self._running_loop()
        idle = self._idle.get(origin)
        if idle:
            now = loop.time()
            while idle:
                conn = idle.pop()
                fresh = now - conn.idle_since < self._idle_seconds
                if fresh and not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                    return conn
                conn.close()
        return await self._connect(loop, origin)

    async def connect(self, origin: Origin) -> Connection:
        """A new connection, whatever is idle."""
        return await self._connect(self._running_loop(), origin)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that made them
            self._idle = {}
            self._loop = loop
        return loop

    def release_after_tail(self, origin: Origin, conn: Connection) -> None:
        """Back to the pool once the rest of its answer (a stream's framing after the last event) is read,
        else closed (see ``Connection.read_tail``)."""
        self._tails.add(conn)
        conn.read_tail(functools.partial(self._tail_read, origin, conn))

    def _tail_read(self, origin: Origin, conn: Connection) -> None:
        self._tails.discard(conn)
        self.release(origin, conn)

    def release(self, origin: Origin, conn: Connection) -> None:
        """Back to the pool if the exchange ended cleanly, else closed."""
        if conn.finish() and self._loop is conn.loop:
            idle = self._idle.get(origin)
            if idle is None:
                idle = self._idle[origin] = deque()
            now = conn.loop.time()
            while idle and now - idle[0].idle_since >= self._idle_seconds:  # the oldest sit at the left
                idle.popleft().close()
            if len(idle) < self._max_idle:
                conn.idle_since = now
                idle.append(conn)
                return
        conn.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle = {}
        for conn in list(self._tails):
            conn.close()

    async def _connect(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> Connection:
        context = self._tls() if origin.scheme == "https" else None
        async with asyncio.timeout(self.connect_timeout):
            _, conn = await loop.create_connection(lambda: Connection(loop), origin.host, origin.port, ssl=context,
                                                   server_hostname=origin.host if context else None)
        self.opened += 1
        return conn

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()  # the system's CAs, hostname checked
        return self._ssl_context
