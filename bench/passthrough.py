"""The thinnest possible Python pass-through: the Python floor of the benchmark.

A raw ASGI app served by granian, one pooled aiohttp client per worker, orjson to read the one field
it needs (``stream``).  It forwards the request body to the same path on the upstream and returns its
answer, streamed chunk by chunk when the upstream streams.  No validation, no auth, no translation:
whatever a real gateway adds on top of this is what it costs.

Run: ``python -m bench.passthrough --port 4002 --upstream http://127.0.0.1:4010 --workers 2``
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp

from bench.deps import orjson

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:4010").rstrip("/")
_JSON = [(b"content-type", b"application/json")]
_JSON_HEADERS = {"content-type": "application/json"}
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_session: aiohttp.ClientSession | None = None


def session() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         skip_auto_headers=("User-Agent",), auto_decompress=False)
    return _session


async def _reply(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _session is not None:
                await _session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if scope["method"] == "GET":
        await _reply(send, 200 if path == "/health" else 404, b'{"status":"ok"}')
        return
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(parts)
    try:
        stream = orjson.loads(body).get("stream") is True
    except (orjson.JSONDecodeError, AttributeError):
        await _reply(send, 400, b'{"error":{"message":"invalid JSON"}}')
        return
    try:
        async with session().post(UPSTREAM + path, data=body, headers=_JSON_HEADERS) as resp:
            if not stream or resp.status != 200:
                await _reply(send, resp.status, await resp.read())
                return
            await send({"type": "http.response.start", "status": 200, "headers": _SSE})
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except aiohttp.ClientError as exc:
        await _reply(send, 502, orjson.dumps({"error": {"message": f"upstream: {exc.__class__.__name__}"}}))





def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.passthrough", description="minimal Python pass-through")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4002)
    p.add_argument("--upstream", default=UPSTREAM)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    os.environ["BENCH_UPSTREAM"] = args.upstream  # read by the worker processes at import
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(target="bench.passthrough:app", address=args.host, port=args.port, interface=Interfaces.ASGI,
            workers=args.workers, loop=Loops.uvloop if sys.platform != "win32" else Loops.asyncio,
            log_access=False, backlog=2048).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
