"""The lean EVALSHA client against this machine's Redis: a flushed script cache, a killed connection, a cancelled
call, a full pool, database selection, AUTH, and uvloop's transports."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from passerelle.stores.base import Bucket, Charge
from passerelle.stores.counters_redis import RedisCounters
from passerelle.stores.redis_scripts import Script, ScriptClient, command
from tests.stores.counters_fixtures import REDIS_URL, delete_prefix

ECHO = Script("return {KEYS[1], ARGV[1], redis.call('GET', KEYS[1])}")


def client(**kw: object) -> ScriptClient:
    made = ScriptClient.like(aioredis.Redis.from_url(REDIS_URL), **kw)  # type: ignore[arg-type]
    assert made is not None
    return made


def test_commands_are_resp_arrays_of_bulk_strings() -> None:
    assert command("EVALSHA", "ab", 1, "k", b"\x00v") == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$2\r\n\x00v\r\n")


async def test_a_flushed_script_cache_loads_the_script_again() -> None:
    scripts = client()
    key = f"test:scripts:{uuid.uuid4().hex}"
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        await redis.set(key, "v1")
        assert await scripts.evalsha(ECHO, [key], ["a"]) == [key.encode(), b"a", b"v1"]
        await redis.script_flush()  # a restarted server forgets its scripts
        assert await scripts.evalsha(ECHO, [key], [7]) == [key.encode(), b"7", b"v1"]
        with pytest.raises(ResponseError, match="boom"):
            await scripts.evalsha(Script("return redis.error_reply('boom')"), [], [])
        assert await scripts.evalsha(ECHO, [key], ["b"]) == [key.encode(), b"b", b"v1"]  # the connection survives
    finally:
        await redis.delete(key)
        await redis.aclose()
        await scripts.aclose()


async def test_a_killed_connection_is_replaced() -> None:
    scripts = client(max_connections=1)
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        assert await scripts.evalsha(Script("return 1"), [], []) == 1
        (idle,) = scripts._idle
        assert idle.transport is not None
        host, port = idle.transport.get_extra_info("sockname")[:2]
        assert await redis.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
        await asyncio.sleep(0.05)
        assert await scripts.evalsha(Script("return 2"), [], []) == 2  # on a new connection
        (fresh,) = scripts._idle
        assert fresh is not idle and idle.closed and scripts._open == 1
    finally:
        await redis.aclose()
        await scripts.aclose()


async def test_a_cancelled_call_never_hands_its_late_reply_to_the_next_one() -> None:
    scripts = client(max_connections=1)
    try:
        assert await scripts.evalsha(Script("return 'first'"), [], []) == b"first"  # one idle connection
        (used,) = scripts._idle
        slow = asyncio.ensure_future(scripts.evalsha(Script("return 'late'"), [], []))
        await asyncio.sleep(0)  # written on that connection, its reply not read yet
        assert not scripts._idle and used._waiting is not None
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert await scripts.evalsha(Script("return 'mine'"), [], []) == b"mine"
        assert used.closed and scripts._open == 1
    finally:
        await scripts.aclose()


async def test_a_burst_waits_for_a_free_connection() -> None:
    scripts = client(max_connections=2)
    try:
        replies = await asyncio.gather(*(scripts.evalsha(Script("return ARGV[1]"), [], [n]) for n in range(50)))
        assert replies == [str(n).encode() for n in range(50)]
        assert scripts._open <= 2
    finally:
        await scripts.aclose()


async def test_the_database_of_the_url_is_selected() -> None:
    key = f"test:scripts:{uuid.uuid4().hex}"
    other_db = aioredis.Redis.from_url(REDIS_URL.rsplit("/", 1)[0] + "/3")
    scripts = ScriptClient.like(other_db)
    assert scripts is not None
    try:
        await other_db.set(key, "in-db-3")
        assert await scripts.evalsha(ECHO, [key], ["x"]) == [key.encode(), b"x", b"in-db-3"]
    finally:
        await other_db.delete(key)
        await other_db.aclose()
        await scripts.aclose()


async def test_a_password_is_sent_and_a_refusal_is_a_clear_error() -> None:
    host, port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].split(":")
    scripts = ScriptClient(host, int(port), password="not-configured-here")  # this server has no password
    try:
        with pytest.raises(ResponseError, match="Redis refused AUTH"):
            await scripts.evalsha(ECHO, ["k"], ["v"])
        assert scripts._open == 0
    finally:
        await scripts.aclose()


async def test_a_server_silent_during_setup_times_out_and_its_connection_is_closed() -> None:
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers AUTH; returns once the client hangs up
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    scripts = ScriptClient("127.0.0.1", port, password="secret", timeout=0.2)
    try:
        with pytest.raises(RedisConnectionError, match="TimeoutError"):
            await scripts.evalsha(ECHO, ["k"], ["v"])
        await asyncio.wait_for(closed.wait(), 2)  # the half-set-up connection was not left open
        assert scripts._open == 0
    finally:
        await scripts.aclose()
        server.close()
        await server.wait_closed()


def test_tls_and_unix_sockets_stay_with_redis_py() -> None:
    assert ScriptClient.like(aioredis.Redis.from_url("unix:///tmp/redis-none.sock")) is None
    assert ScriptClient.like(aioredis.Redis.from_url("rediss://127.0.0.1:6390/0")) is None


def test_under_uvloop() -> None:
    async def scenario() -> list[bytes]:
        scripts = client()
        try:
            return list(await scripts.evalsha(Script("return {ARGV[1], ARGV[2]}"), [], ["a", "b"]))
        finally:
            await scripts.aclose()

    assert uvloop.run(scenario()) == [b"a", b"b"]


async def test_a_closed_client_refuses() -> None:
    scripts = client()
    await scripts.aclose()
    with pytest.raises(RedisConnectionError):
        await scripts.evalsha(ECHO, ["k"], ["v"])


async def test_counters_answer_alike_through_the_lean_client_and_redis_py() -> None:
    """Where the lean client cannot go (TLS, a Unix socket) redis-py runs the same scripts, with the same answers."""
    prefix = f"test:scripts:{uuid.uuid4().hex}:"
    charges = [Charge("budget:k", 10_000)]
    buckets = [Bucket("rl:req", 5, 1.0, 1)]
    answers = {}
    try:
        for lean in (True, False):
            counters = await RedisCounters.connect(REDIS_URL, prefix + ("lean:" if lean else "py:"))
            try:
                assert counters._scripts is not None
                if not lean:
                    counters._scripts = None  # as for a rediss:// or unix:// URL
                await counters.seed("budget:k", 0, 3600)
                admitted = await counters.admit("r1", charges, 6_000, buckets, [])
                refused = await counters.admit("r2", charges, 6_000, buckets, [])
                crossed = await counters.settle("r1", charges, 6_000, 5_000, buckets, [1], [])
                answers[lean] = (admitted.ok, refused.ok, refused.reason, refused.denied_by, crossed,
                                 await counters.committed(["budget:k"]))
            finally:
                await counters.aclose()
        assert answers[True] == answers[False] == (True, False, "budget", "budget:k", [], [5_000])
    finally:
        await delete_prefix(prefix)
