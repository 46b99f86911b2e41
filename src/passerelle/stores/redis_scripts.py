"""EVALSHA of the counters' two hot Lua scripts over raw connections: RESP written here, replies parsed by hiredis.

redis-py spends about 100 us of Python on one ``EVALSHA`` (command packing, its connection pool, its async parser
wrapper); every admitted request runs two.  This client does only what those calls need, in about a quarter of
that: one request in flight per connection, a small pool, ``AUTH`` and ``SELECT`` on connect, the script loaded
again on ``NOSCRIPT``.  Everything else (seeding, flags, the response cache) stays on redis-py.  A connection whose
caller was cancelled or whose reply did not come is closed, never reused: a late reply cannot reach another call.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from collections.abc import Sequence
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | int | bytes


def command(*args: Arg) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Script:
    """A Lua script known by its SHA-1, as the server knows it."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # Redis names scripts by their SHA-1


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiting: asyncio.Future[Any] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        reply = self._reader.gets()
        if reply is not False and self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            if not waiting.done():
                waiting.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))
        self._waiting = None

    async def call(self, *args: Arg) -> Any:
        """The reply to one command (an error reply comes back as a ``hiredis.ReplyError`` value)."""
        if self.closed or self.transport is None:
            raise RedisConnectionError("connection to Redis closed")
        self._waiting = asyncio.get_running_loop().create_future()
        self.transport.write(command(*args))
        return await self._waiting

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class ScriptClient:
    def __init__(self, host: str, port: int, db: int = 0, username: str | None = None, password: str | None = None,
                 *, max_connections: int = 64, timeout: float = 5.0) -> None:
        self._address = host, port
        self._setup: list[tuple[str | int, ...]] = []
        if password is not None:
            self._setup.append(("AUTH", username, password) if username else ("AUTH", password))
        if db:
            self._setup.append(("SELECT", db))
        self._max = max_connections
        self._timeout = timeout
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()  # for a free connection
        self._closed = False

    @classmethod
    def like(cls, client: aioredis.Redis, *, max_connections: int = 64, timeout: float = 5.0) -> ScriptClient | None:
        """A client for the server ``client`` talks to over plain TCP; None for TLS or a Unix socket (redis-py then
        runs the scripts)."""
        pool = client.connection_pool
        if pool.connection_class is not aioredis.Connection:
            return None
        kw = pool.connection_kwargs
        return cls(kw.get("host", "localhost"), int(kw.get("port", 6379)), int(kw.get("db") or 0), kw.get("username"),
                   kw.get("password"), max_connections=max_connections, timeout=timeout)

    async def evalsha(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        conn = await self._acquire()
        reusable = False
        try:
            async with asyncio.timeout(self._timeout):
                reply = await conn.call("EVALSHA", script.sha, len(keys), *keys, *args)
                if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
                    loaded = await conn.call("SCRIPT", "LOAD", script.source)  # a restarted or another server
                    if isinstance(loaded, hiredis.ReplyError):
                        raise ResponseError(str(loaded))
                    reply = await conn.call("EVALSHA", script.sha, len(keys), *keys, *args)
            reusable = True
        except TimeoutError:
            raise RedisTimeoutError(f"Redis did not answer within {self._timeout:g} s") from None
        finally:
            self._release(conn, reusable)
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
        return reply

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    async def _acquire(self) -> _Connection:
        if self._closed:
            raise RedisConnectionError("the script client is closed")
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
                self._open -= 1
            if self._open < self._max:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    raise
            freed = asyncio.get_running_loop().create_future()  # every connection is busy: a burst, not an error
            self._waiters.append(freed)
            try:
                await asyncio.wait_for(freed, self._timeout)
            except TimeoutError:
                raise RedisConnectionError(f"no free connection to Redis within {self._timeout:g} s") from None
            finally:
                if freed in self._waiters:
                    self._waiters.remove(freed)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                _, conn = await loop.create_connection(_Connection, *self._address)
                for setup in self._setup:
                    reply = await conn.call(*setup)
                    if isinstance(reply, hiredis.ReplyError):
                        raise ResponseError(f"Redis refused {setup[0]}: {reply}")
        except BaseException as exc:
            if conn is not None:  # connected, then refused, timed out or cancelled during AUTH or SELECT
                conn.close()
            if isinstance(exc, OSError | TimeoutError):
                raise RedisConnectionError(f"cannot connect to Redis at {self._address[0]}:{self._address[1]}: "
                                           f"{exc.__class__.__name__}") from None
            raise
        return conn

    def _release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not conn.closed and not self._closed:
            self._idle.append(conn)
        else:
            conn.close()
            self._open -= 1
        while self._waiters:
            freed = self._waiters.popleft()
            if not freed.done():
                freed.set_result(None)
                break
