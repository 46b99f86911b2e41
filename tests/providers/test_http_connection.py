"""The upstream HTTP client against real servers on loopback: aiohttp's server for well-formed answers, raw
asyncio servers for what a well-behaved server never sends (bodies ended by a close, gzip nobody asked
for, garbage, a connection dropped mid-answer), and TLS with a certificate made here."""

from __future__ import annotations

import asyncio
import datetime
import gc
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from passerelle.errors import ErrorKind, UpstreamError
from passerelle.providers import http_connection
from passerelle.providers.http import HttpClient
from passerelle.providers.http_connection import request_head, split_url
from tests.support.pools import until
from tests.support.servers import AppServer

JSON = {"content-type": "application/json"}


class Recorder:
    """An aiohttp app that records what it received and answers as scripted."""

    def __init__(self) -> None:
        self.seen: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.peers: set[tuple[str, int]] = set()
        self.disconnected = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/json", self.json)
        app.router.add_post("/stream", self.stream)
        app.router.add_post("/slow", self.slow)
        app.router.add_post("/stall", self.stall)
        app.router.add_post("/limited", self.limited)
        app.router.add_post("/big", self.big)
        app.router.add_post("/late-end", self.late_end)
        app.router.add_post("/{tail:.*}", self.json)
        return app

    async def _record(self, request: web.Request) -> None:
        self.seen.append(request)
        self.bodies.append(await request.read())
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peers.add(tuple(peer[:2]))

    async def json(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"ok": True, "n": len(self.seen)})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            for i in range(int(request.query.get("n", "5"))):
                await response.write(f"data: {i}\n\n".encode())
                await asyncio.sleep(0.01)
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        await response.write_eof()
        return response

    async def late_end(self, request: web.Request) -> web.StreamResponse:
        """Three events, then the body's last chunk in a later packet, as a stream's framing often comes."""
        await self._record(request)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for i in range(3):
            await response.write(f"data: {i}\n\n".encode())
        await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    async def slow(self, request: web.Request) -> web.Response:
        await self._record(request)
        await asyncio.sleep(1.0)
        return web.json_response({"late": True})

    async def stall(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await asyncio.sleep(1.0)
        await response.write(b"data: late\n\n")
        return response

    async def limited(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "7"})

    async def big(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(64):
            await response.write(bytes([65 + i % 26]) * 16384)  # 1 MiB in all
        await response.write_eof()
        return response


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    rec = Recorder()
    server = AppServer()
    url = await server.start(rec.app())
    yield rec, url
    await server.close()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient()
    yield http
    await http.aclose()


async def raw_server(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                     ) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


def answering(answer: bytes) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A raw server's handler: read one request, write ``answer`` as is, close."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    return handler


async def test_sequential_calls_share_one_keep_alive_connection(recorder: tuple[Recorder, str],
                                                              client: HttpClient) -> None:
    rec, url = recorder
    for i in range(3):
        answer = await client.post(url + "/json", b'{"i": %d}' % i, JSON, 5)
        assert answer.status == 200 and answer.json()["n"] == i + 1
    assert client.pool.opened == 1 and len(rec.peers) == 1
    assert rec.bodies == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}']
    assert rec.seen[0].headers["content-type"] == "application/json"


async def test_the_target_is_sent_as_written_with_params_and_a_signed_host(recorder: tuple[Recorder, str],
                                                                          client: HttpClient) -> None:
    rec, url = recorder
    port = url.rsplit(":", 1)[1]
    await client.post(url + "/model/arn%3Aaws%3Ax/converse?a=1", b"{}",
                      {**JSON, "host": f"127.0.0.1:{port}", "x-extra": "v"}, 5, params={"api-version": "2024 10"})
    seen = rec.seen[-1]
    assert seen.raw_path == "/model/arn%3Aaws%3Ax/converse?a=1&api-version=2024%2010"
    assert seen.headers["host"] == f"127.0.0.1:{port}" and seen.headers["x-extra"] == "v"


async def test_a_streamed_answer_arrives_in_pieces_and_frees_its_connection(recorder: tuple[Recorder, str],
                                                                           client: HttpClient) -> None:
    _, url = recorder
    stream = await client.post_stream(url + "/stream?n=5", b"{}", JSON, 5)
    pieces = [piece async for piece in stream]
    assert b"".join(pieces) == b"".join(f"data: {i}\n\n".encode() for i in range(5))
    await client.post(url + "/json", b"{}", JSON, 5)
    assert client.pool.opened == 1  # the chunked answer was read to its end: the connection went back


async def test_a_stream_closed_early_never_goes_back_to_the_pool(recorder: tuple[Recorder, str],
                                                                 client: HttpClient) -> None:
    rec, url = recorder
    stream = await client.post_stream(url + "/stream?n=50", b"{}", JSON, 5)
    assert await anext(stream) == b"data: 0\n\n"
    await stream.aclose()
    await asyncio.wait_for(rec.disconnected.wait(), 5)  # the upstream saw the hang-up (it stops generating)
    answer = await client.post(url + "/json", b"{}", JSON, 5)
    assert answer.status == 200 and client.pool.opened == 2


async def read_until(stream: AsyncIterator[bytes], last: bytes) -> bytes:
    """A stream's pieces up to the one that ends with ``last`` (its protocol's end event), not beyond."""
    seen = b""
    while not seen.endswith(last):
        seen += await anext(stream)
    return seen


async def test_a_stream_finished_at_its_last_event_keeps_its_connection(recorder: tuple[Recorder, str],
                                                                        client: HttpClient) -> None:
    rec, url = recorder
    for _ in range(3):
        stream = await client.post_stream(url + "/late-end", b"{}", JSON, 5)
        assert await read_until(stream, b"data: 2\n\n") == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
        stream.finish()  # the body's last chunk is still on its way: read in the background
        await stream.aclose()  # does nothing more once finished
        await until(lambda: client.pool.idle_connections == 1)
    answer = await client.post(url + "/json", b"{}", JSON, 5)
    assert answer.json()["n"] == 4
    assert client.pool.opened == 1 and len(rec.peers) == 1


async def test_a_stream_block_left_at_the_end_keeps_and_left_on_an_error_closes(recorder: tuple[Recorder, str],
                                                                               client: HttpClient) -> None:
    rec, url = recorder
    with pytest.raises(RuntimeError):
        async with await client.post_stream(url + "/stream?n=50", b"{}", JSON, 5) as stream:
            await anext(stream)
            raise RuntimeError("the caller's parser gave up")
    await asyncio.wait_for(rec.disconnected.wait(), 5)  # closed at once: the upstream stops generating
    async with await client.post_stream(url + "/late-end", b"{}", JSON, 5) as stream:
        await read_until(stream, b"data: 2\n\n")
    await until(lambda: client.pool.idle_connections == 1)
    assert client.pool.opened == 2


async def test_a_finished_stream_whose_answer_goes_on_is_closed(recorder: tuple[Recorder, str], client: HttpClient,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rec, url = recorder
    monkeypatch.setattr(http_connection, "TAIL_BYTES", 8)  # the body's framing fits; another event does not
    stream = await client.post_stream(url + "/stream?n=50", b"{}", JSON, 5)
    assert await anext(stream) == b"data: 0\n\n"
    stream.finish()
    await asyncio.wait_for(rec.disconnected.wait(), 5)  # the upstream saw the hang-up (it stops generating)
    assert client.pool.idle_connections == 0
    await client.post(url + "/json", b"{}", JSON, 5)
    assert client.pool.opened == 2


async def test_a_finished_stream_whose_answer_does_not_end_is_closed_after_a_grace(
        recorder: tuple[Recorder, str], client: HttpClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = recorder
    monkeypatch.setattr(http_connection, "TAIL_SECONDS", 0.05)
    stream = await client.post_stream(url + "/stall", b"{}", JSON, 5)  # the rest comes after a second
    assert await anext(stream) == b"data: first\n\n"
    stream.finish()
    (conn,) = client.pool._tails
    await until(lambda: conn.closed)
    await client.post(url + "/json", b"{}", JSON, 5)
    assert client.pool.opened == 2 and client.pool.idle_connections == 1


async def test_closing_the_pool_closes_connections_reading_a_tail(recorder: tuple[Recorder, str]) -> None:
    _, url = recorder
    client = HttpClient()
    stream = await client.post_stream(url + "/stall", b"{}", JSON, 5)
    await anext(stream)
    stream.finish()
    (conn,) = client.pool._tails
    await client.aclose()
    assert conn.closed


async def test_a_stream_dropped_unread_closes_its_socket(recorder: tuple[Recorder, str], client: HttpClient) -> None:
    rec, url = recorder
    stream = await client.post_stream(url + "/stream?n=50", b"{}", JSON, 5)
    del stream
    gc.collect()
    await asyncio.wait_for(rec.disconnected.wait(), 5)


async def test_error_statuses_map_to_gateway_errors_whole_and_streamed(recorder: tuple[Recorder, str],
                                                                      client: HttpClient) -> None:
    _, url = recorder
    with pytest.raises(UpstreamError) as whole:
        await client.post(url + "/limited", b"{}", JSON, 5)
    with pytest.raises(UpstreamError) as streamed:
        await client.post_stream(url + "/limited", b"{}", JSON, 5)
    for info in (whole, streamed):
        assert info.value.kind is ErrorKind.RATE_LIMIT and info.value.retry_after == 7.0
        assert info.value.upstream_status == 429 and "slow down" in info.value.message
    assert client.pool.opened == 1  # error answers are read whole: the connection is reused


async def test_timeouts_bound_the_whole_answer_and_each_pause_of_a_stream(recorder: tuple[Recorder, str],
                                                                          client: HttpClient) -> None:
    _, url = recorder
    with pytest.raises(UpstreamError) as whole:
        await client.post(url + "/slow", b"{}", JSON, 0.2)
    assert whole.value.kind is ErrorKind.TIMEOUT and whole.value.retryable
    with pytest.raises(UpstreamError) as head:
        await client.post_stream(url + "/slow", b"{}", JSON, 0.2)
    assert head.value.kind is ErrorKind.TIMEOUT
    stream = await client.post_stream(url + "/stall", b"{}", JSON, 0.2)
    assert await anext(stream) == b"data: first\n\n"
    with pytest.raises(UpstreamError) as stalled:
        await anext(stream)
    assert stalled.value.kind is ErrorKind.TIMEOUT and "stalled" in stalled.value.message
    answer = await client.post(url + "/json", b"{}", JSON, 5)  # timed-out connections were closed, not reused
    assert answer.status == 200


async def test_a_slow_reader_pauses_the_socket_and_still_gets_every_byte(recorder: tuple[Recorder, str],
                                                                        client: HttpClient) -> None:
    _, url = recorder
    stream = await client.post_stream(url + "/big", b"{}", JSON, 5)
    await asyncio.sleep(0.3)  # the upstream writes 1 MiB meanwhile: reading pauses at 256 KiB buffered
    data = b"".join([piece async for piece in stream])
    assert data == b"".join(bytes([65 + i % 26]) * 16384 for i in range(64))


async def test_refused_connections_and_bad_headers_are_gateway_errors(client: HttpClient) -> None:
    server, url = await raw_server(lambda r, w: asyncio.sleep(0))
    server.close()
    await server.wait_closed()
    with pytest.raises(UpstreamError) as refused:
        await client.post(url + "/x", b"{}", JSON, 5)
    assert refused.value.kind is ErrorKind.BAD_GATEWAY and refused.value.retryable
    with pytest.raises(UpstreamError) as refused_stream:
        await client.post_stream(url + "/x", b"{}", JSON, 5)
    assert refused_stream.value.kind is ErrorKind.BAD_GATEWAY and refused_stream.value.retryable
    assert refused_stream.value.message == "upstream connection failed: ConnectionRefusedError"
    with pytest.raises(UpstreamError) as injected:
        await client.post(url + "/x", b"{}", {"x-a": "v\r\nx-b: smuggled"}, 5)
    assert injected.value.kind is ErrorKind.BAD_GATEWAY and not injected.value.retryable


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end",  # no length: ends with the connection
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\nuntil the end",  # unasked 1xx
    b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (
        len(gzip.compress(b"until the end")), gzip.compress(b"until the end")),
])
async def test_bodies_ended_by_a_close_or_gzipped_are_read_whole(client: HttpClient, answer: bytes) -> None:
    server, url = await raw_server(answering(answer))
    async with server:
        response = await client.post(url + "/x", b"{}", JSON, 5)
        assert response.body == b"until the end"
        stream = await client.post_stream(url + "/x", b"{}", JSON, 5)
        assert b"".join([piece async for piece in stream]) == b"until the end"


@pytest.mark.parametrize("answer", [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part",
    b"HTTP/1.1 200 OK\r\ncontent-encoding: br\r\ncontent-length: 2\r\n\r\nxx",
])
async def test_broken_answers_are_bad_gateway_errors(client: HttpClient, answer: bytes) -> None:
    server, url = await raw_server(answering(answer))
    async with server:
        with pytest.raises(UpstreamError) as info:
            await client.post(url + "/x", b"{}", JSON, 5)
        assert info.value.kind is ErrorKind.BAD_GATEWAY and "connection failed" in info.value.message


async def test_a_stream_cut_mid_answer_is_a_broken_stream(client: HttpClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\ndata: 1\r\n")
        await writer.drain()
        writer.close()

    server, url = await raw_server(handler)
    async with server:
        stream = await client.post_stream(url + "/x", b"{}", JSON, 5)
        assert await anext(stream) == b"data: 1"
        with pytest.raises(UpstreamError) as info:
            await anext(stream)
        assert info.value.kind is ErrorKind.BAD_GATEWAY and "stream broke" in info.value.message


async def test_a_connection_the_upstream_closed_while_idle_is_replaced(client: HttpClient) -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # a keep-alive timeout, as uvicorn's 5 s one, after the answer

    server, url = await raw_server(handler)
    async with server:
        assert (await client.post(url + "/x", b"{}", JSON, 5)).body == b"ok"
        await asyncio.sleep(0.2)
        assert (await client.post(url + "/x", b"{}", JSON, 5)).body == b"ok"
    assert served == 2 and client.pool.opened == 2


def test_urls_split_into_origin_and_target() -> None:
    origin, target = split_url("https://user@[::1]:8443/a%3Ab?x=1")
    assert origin == ("https", "::1", 8443, "[::1]:8443") and target == "/a%3Ab?x=1"
    assert split_url("http://example.com")[0].port == 80 and split_url("http://example.com")[1] == "/"
    with pytest.raises(ValueError):
        split_url("ftp://example.com/x")
    head = request_head("/x", "h:1", {"Content-Length": "999", "Connection": "close", "a": "b"}, 3)
    assert head == b"POST /x HTTP/1.1\r\nHost: h:1\r\na: b\r\nAccept: */*\r\nContent-Length: 3\r\n\r\n"


def _certificate(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_https_upstreams_are_verified(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    rec = Recorder()
    runner = web.AppRunner(rec.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = runner.addresses[0][1]
    trusted = HttpClient(ssl_context=ssl.create_default_context(cafile=str(cert)))
    untrusted = HttpClient()  # the system's CAs only: the self-made certificate is refused
    try:
        answer = await trusted.post(f"https://localhost:{port}/json", b"{}", JSON, 5)
        assert answer.json()["ok"] is True
        stream = await trusted.post_stream(f"https://localhost:{port}/stream?n=3", b"{}", JSON, 5)
        assert b"".join([piece async for piece in stream]).count(b"data:") == 3
        assert trusted.pool.opened == 1
        with pytest.raises(UpstreamError) as info:
            await untrusted.post(f"https://localhost:{port}/json", b"{}", JSON, 5)
        assert info.value.kind is ErrorKind.BAD_GATEWAY and "SSL" in info.value.message
    finally:
        await trusted.aclose()
        await untrusted.aclose()
        await runner.cleanup()


async def test_a_kept_alive_connection_closed_under_a_request_is_retried_once_on_a_new_one(
        client: HttpClient) -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")  # says keep-alive, then closes at once
        await writer.drain()
        writer.close()

    server, url = await raw_server(handler)
    async with server:
        for _ in range(5):
            assert (await client.post(url + "/x", b"{}", JSON, 5)).body == b"ok"
    assert served == 5  # each request reached the upstream once: only requests it never read were resent


async def test_a_new_connection_dropped_before_any_answer_is_not_resent(client: HttpClient) -> None:
    received = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        await read_request(reader)
        received += 1
        writer.close()  # read it, then died without a word

    server, url = await raw_server(handler)
    async with server:
        with pytest.raises(UpstreamError) as info:
            await client.post(url + "/x", b"{}", JSON, 5)
    assert info.value.kind is ErrorKind.BAD_GATEWAY and info.value.retryable
    assert received == 1  # left to the router, whose retry policy the operator chose


async def test_idle_connections_past_their_time_are_closed(recorder: tuple[Recorder, str]) -> None:
    from passerelle.providers.http_connection import ConnectionPool

    _, url = recorder
    client = HttpClient()
    client.pool = ConnectionPool(idle_seconds=0.1)
    try:
        first = await client.post_stream(url + "/stream?n=1", b"{}", JSON, 5)  # two connections at once
        second = await client.post_stream(url + "/stream?n=1", b"{}", JSON, 5)
        for stream in (first, second):
            assert [piece async for piece in stream]
        await asyncio.sleep(0.2)
        await client.post(url + "/json", b"{}", JSON, 5)  # both idle ones expired: a new one, and they close
        assert client.pool.opened == 3
        assert sum(len(idle) for idle in client.pool._idle.values()) == 1
    finally:
        await client.aclose()


async def test_upstream_sockets_send_without_nagle_delay(recorder: tuple[Recorder, str], client: HttpClient) -> None:
    import socket

    _, url = recorder
    await client.post(url + "/json", b"{}", JSON, 5)
    (conn,) = [c for idle in client.pool._idle.values() for c in idle]
    assert conn.transport is not None
    sock = conn.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
