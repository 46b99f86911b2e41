"""Instructions per admission and settlement of the shared-memory counters (valgrind callgrind).

    python -m bench.counters_instructions [--pairs 2000] [--src DIR] [--out FILE]

One process opens ``SharedMemoryCounters`` (what ``passerelle serve --workers 2`` runs budgets on) and admits then
settles requests shaped like ``passerelle-budgets``'s: a hard and a soft budget, a request and a token bucket.
It runs under callgrind twice, with no pair and with ``--pairs``, after the same 200 warm-up pairs, so that
start-up cancels out: (difference) / pairs is one request's admission and settlement.  ``--src`` runs another
checkout's ``src`` (for a before/after).  Instructions are not seconds; they do not move with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.gateways import child_env
from bench.instructions import count_module

REPO = Path(__file__).resolve().parents[1]  # the default --src's checkout, as printed
WARMUP = 200


async def _pairs(n: int) -> None:
    from passerelle.stores.base import Bucket, Charge
    from passerelle.stores.counters_shm import SharedMemoryCounters

    with tempfile.TemporaryDirectory() as tmp:
        counters = SharedMemoryCounters(Path(tmp) / "counters.shm")
        hard = Charge("budget:bud_key:2026-12", 10**18, 30 * 86_400)
        soft = Charge("budget:bud_tenant:2026-12-08", None, 86_400)
        for charge in (hard, soft):
            await counters.seed(charge.counter, 0, charge.ttl_s)
        buckets = [Bucket("rl:rl_key:req", 10**8, 10**8 / 60, 1), Bucket("rl:rl_key:tok", 10**11, 10**11 / 60, 300)]
        for i in range(WARMUP + n):
            admission = await counters.admit(f"req_{i}", [hard, soft], 123_456_789, buckets, [])
            assert admission.ok
            await counters.settle(f"req_{i}", [hard, soft], 123_456_789, 100_000_000, buckets, [1, 250], [])
        await counters.aclose()


def _count(pairs: int, src: Path | None) -> int:
    env = {**child_env(), "PYTHONHASHSEED": "0"}
    if src is not None:  # put first: another checkout's passerelle
        env["PYTHONPATH"] = f"{src}:{env['PYTHONPATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        return count_module("bench.counters_instructions", ["--child", str(pairs)], env, Path(tmp) / "cg", 1800)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.counters_instructions", description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=2000, help="admissions and settlements counted (default 2000)")
    p.add_argument("--src", type=Path, help="the src directory of the checkout to measure (default this one)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        asyncio.run(_pairs(args.child))
        return 0
    with ThreadPoolExecutor(2) as pool:
        none, counted = pool.map(_count, (0, args.pairs), (args.src, args.src))
    print(f"{(counted - none) / args.pairs / 1000:.1f} k instructions per admission and settlement "
          f"({args.pairs} pairs, {args.src or REPO / 'src'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
