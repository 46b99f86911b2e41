"""Open-loop load generator, run as its own process: `python -m bench.loadgen --url URL --rate R ...`.

Request i is sent at t0 + i/rate whatever happened to the earlier ones (a fixed arrival rate, not a
closed loop), so a slow gateway cannot slow the offered load down.  For every request it records the
scheduled time, the actual send time, the first body byte, the end, the status and the bytes read.
Latencies are later measured from the *scheduled* time: queueing in the generator, in its connection
pool or in the gateway is counted, not hidden (coordinated omission).  How late the generator itself
was is kept per request (``sent - scheduled``) so a run where it could not keep the schedule is
reported as such.

``--rate 0`` opens all ``--count`` requests at once (the concurrent-streams scenario).
``--closed C`` runs a closed loop instead (C connections, each sending its next request when the
previous one ended) to measure the maximum throughput; it is not the headline number.

Records are written column-wise to ``--out`` (JSON), times in seconds relative to t0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.deps import orjson

STATUS_EXCEPTION = 0  # no HTTP status: the request failed on the transport or timed out


class Recorder:
    """Column-wise records, preallocated: appending a dict per request would cost more CPU."""

    def __init__(self, n: int) -> None:
        nan = float("nan")
        self.sched = [nan] * n
        self.sent = [nan] * n
        self.first = [nan] * n
        self.end = [nan] * n
        self.status = [-1] * n  # -1: never finished
        self.nbytes = [0] * n
        self.errors: dict[str, int] = {}

    def grow(self) -> int:
        """Room for one more request (closed loop); its index."""
        self.sched.append(float("nan"))
        self.sent.append(float("nan"))
        self.first.append(float("nan"))
        self.end.append(float("nan"))
        self.status.append(-1)
        self.nbytes.append(0)
        return len(self.status) - 1

    def error(self, i: int, kind: str) -> None:
        self.status[i] = STATUS_EXCEPTION
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def columns(self, used: int) -> dict[str, list[Any]]:
        return {"sched": self.sched[:used], "sent": self.sent[:used], "first": self.first[:used],
                "end": self.end[:used], "status": self.status[:used], "nbytes": self.nbytes[:used]}


async def one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
              limits: aiohttp.ClientTimeout, rec: Recorder, i: int, t0: float) -> None:
    clock = time.perf_counter
    rec.sent[i] = clock() - t0
    size = 0
    try:
        async with session.post(url, data=body, headers=headers, timeout=limits) as resp:
            async for chunk in resp.content.iter_any():
                if not size:
                    rec.first[i] = clock() - t0
                size += len(chunk)
            rec.end[i] = clock() - t0
            rec.status[i] = resp.status
            rec.nbytes[i] = size
            if resp.status >= 400:
                rec.errors[f"HTTP {resp.status}"] = rec.errors.get(f"HTTP {resp.status}", 0) + 1
    except TimeoutError:
        rec.end[i] = clock() - t0
        rec.error(i, "timeout")
    except aiohttp.ClientError as exc:
        rec.end[i] = clock() - t0
        rec.error(i, exc.__class__.__name__)
    except OSError as exc:
        rec.end[i] = clock() - t0
        rec.error(i, f"OSError {exc.errno}")


async def open_loop(args: argparse.Namespace, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    rate: float = args.rate
    count: int = args.count if args.count else round(rate * (args.warmup + args.duration))
    rec = Recorder(count)
    timeout = aiohttp.ClientTimeout(total=args.timeout, sock_connect=10)
    connector = aiohttp.TCPConnector(limit=args.connections, limit_per_host=args.connections,
                                     force_close=False, enable_cleanup_closed=True)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as session:
        clock = time.perf_counter
        t0 = clock() + 0.05
        interval = 1.0 / rate if rate > 0 else 0.0
        i = 0
        while i < count:
            now = clock() - t0
            # Everything due is sent now; a late generator catches up instead of dropping requests,
            # and the lateness stays visible as sent - scheduled.
            while i < count and i * interval <= now:
                rec.sched[i] = i * interval
                task = asyncio.create_task(one(session, args.url, body, headers, timeout, rec, i, t0))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            if i < count:
                await asyncio.sleep(max(i * interval - (clock() - t0), 0.0))
        dispatched_at = clock() - t0
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=args.timeout + 5)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        finished_at = clock() - t0
    for j in range(count):
        if rec.status[j] == -1:
            rec.error(j, "unfinished")
    return {"mode": "open", "rate": rate, "count": count, "warmup": args.warmup, "duration": args.duration,
            "dispatched_at": dispatched_at, "finished_at": finished_at, "errors": rec.errors, **rec.columns(count)}


async def closed_loop(args: argparse.Namespace, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    limit = 2_000_000
    rec = Recorder(0)
    timeout = aiohttp.ClientTimeout(total=args.timeout, sock_connect=10)
    connector = aiohttp.TCPConnector(limit=args.closed, limit_per_host=args.closed)
    counter = 0
    async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as session:
        clock = time.perf_counter
        t0 = clock()
        stop = t0 + args.warmup + args.duration

        async def worker() -> None:
            nonlocal counter
            while clock() < stop and counter < limit:
                counter += 1
                i = rec.grow()
                rec.sched[i] = clock() - t0
                await one(session, args.url, body, headers, timeout, rec, i, t0)

        await asyncio.gather(*(worker() for _ in range(args.closed)))
    return {"mode": "closed", "concurrency": args.closed, "count": counter, "warmup": args.warmup,
            "duration": args.duration, "dispatched_at": args.warmup + args.duration,
            "finished_at": time.perf_counter() - t0, "errors": rec.errors, **rec.columns(counter)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--body-file", required=True, type=Path, help="the request body, sent as is")
    p.add_argument("--header", action="append", default=[], help="'name: value', repeatable")
    p.add_argument("--rate", type=float, default=100.0, help="requests per second; 0: all --count at once")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (after --warmup)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds sent at the same rate but not measured")
    p.add_argument("--count", type=int, default=0, help="number of requests (default: rate x (warmup + duration))")
    p.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    p.add_argument("--connections", type=int, default=20_000, help="connection pool limit")
    p.add_argument("--closed", type=int, default=0, help="closed loop with this many connections instead")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    if args.closed <= 0 and args.rate <= 0 and args.count <= 0:
        p.error("--rate 0 needs --count")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    body = args.body_file.read_bytes()
    headers = {"content-type": "application/json"}
    for item in args.header:
        name, _, value = item.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - platforms without uvloop
        runner = asyncio.run
    coro = closed_loop(args, body, headers) if args.closed > 0 else open_loop(args, body, headers)
    result = runner(coro)
    args.out.write_bytes(orjson.dumps(result))
    ok = sum(1 for s in result["status"] if 200 <= s < 400)
    print(f"loadgen: {result['count']} requests, {ok} ok, errors {result['errors']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
