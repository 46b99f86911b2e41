"""In-process counters: the embedded backend's budgets, rate limits, concurrency and response cache.

One gateway instance, one event loop: every method does all its work without awaiting, so each call
is atomic without a lock.  Time comes from an injectable monotonic clock (tests move it by hand).
The semantics match ``RedisCounters`` exactly; ``bucket_tokens``/``bucket_level`` are the formulas
its Lua scripts reproduce.  The decision rules (``decide_admit``, ``settle_charge``, ``settle_bucket``)
are pure functions over plain state, shared with ``SQLiteCounters``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from passerelle.stores.base import Admission, Bucket, Charge, Level, Slot

SWEEP_INTERVAL_S = 60.0  # expired counters, flags, leases and full buckets are dropped this often


def bucket_tokens(state: tuple[float, float] | None, bucket: Bucket, now: float) -> float:
    """Tokens in a bucket at ``now``: an unknown bucket is full; a lowered capacity clamps it."""
    if state is None:
        return float(bucket.capacity)
    tokens, ts = state
    return min(float(bucket.capacity), tokens + max(0.0, now - ts) * max(0.0, bucket.refill_per_s))


def seconds_to_fill(bucket: Bucket, tokens: float) -> float:
    if tokens >= bucket.capacity:
        return 0.0
    return (bucket.capacity - tokens) / bucket.refill_per_s if bucket.refill_per_s > 0 else math.inf


def bucket_level(bucket: Bucket, tokens: float) -> Level:
    return Level(limit=bucket.capacity, remaining=max(0, math.floor(tokens)),
                 reset_s=seconds_to_fill(bucket, tokens))


def retry_after(bucket: Bucket, tokens: float) -> float | None:
    """Seconds until ``cost`` tokens are there; None when they never will be (cost above capacity)."""
    if bucket.cost > bucket.capacity or bucket.refill_per_s <= 0:
        return None
    return max(0.0, (bucket.cost - tokens) / bucket.refill_per_s)


def decide_admit(charges: Sequence[Charge], reserve_pico: int, buckets: Sequence[Bucket], slots: Sequence[Slot],
                 values: Sequence[int | None], tokens: Sequence[float], holders: Sequence[int]) -> Admission:
    """The admission rule over the current state: each charge's committed value (None: absent), each
    bucket's tokens now, each slot's live holders.  On ``ok`` the caller reserves on every charge, takes
    each bucket's cost (the levels already show the take) and holds every slot; otherwise it writes nothing."""
    if None in values:
        return Admission(ok=False, reason="unseeded", levels=_levels(buckets, tokens, 0),
                         missing=[c.counter for c, value in zip(charges, values, strict=True) if value is None])
    for charge, value in zip(charges, values, strict=True):
        assert value is not None
        if charge.limit_pico is not None and value + reserve_pico > charge.limit_pico:
            return Admission(ok=False, denied_by=charge.counter, reason="budget", levels=_levels(buckets, tokens, 0))
    for bucket, available in zip(buckets, tokens, strict=True):
        if available < bucket.cost:
            return Admission(ok=False, denied_by=bucket.counter, reason="rate",
                             retry_after=retry_after(bucket, available), levels=_levels(buckets, tokens, 0))
    for slot, holding in zip(slots, holders, strict=True):
        if holding >= slot.limit:
            return Admission(ok=False, denied_by=slot.counter, reason="concurrency",
                             levels=_levels(buckets, tokens, 0))
    return Admission(ok=True, levels=_levels(buckets, tokens, 1))


def _levels(buckets: Sequence[Bucket], tokens: Sequence[float], taken: int) -> dict[str, Level]:
    """Each bucket's level now (``taken`` 0: a refusal) or after this request's take (1: an admission)."""
    return {b.counter: bucket_level(b, t - taken * b.cost) for b, t in zip(buckets, tokens, strict=True)}


def settle_charge(charge: Charge, value: int, reserved_pico: int, actual_pico: int) -> tuple[int, bool]:
    """The committed value after settlement, and whether it crossed the charge's limit."""
    after = value + actual_pico - reserved_pico
    # "Before" leaves this request's own reservation out: otherwise a reservation that already
    # passed the limit would hide the crossing its actual cost makes.
    return after, charge.limit_pico is not None and value - reserved_pico <= charge.limit_pico < after


def settle_bucket(bucket: Bucket, available: float, actual_cost: int) -> float:
    """Gives back what was taken beyond the actual cost, or takes the excess (may go negative)."""
    return min(float(bucket.capacity), available + bucket.cost - actual_cost)


class MemoryCounters:
    def __init__(self, max_cache_entries: int = 10_000, clock: Callable[[], float] = time.monotonic,
                 max_cache_entry_bytes: int = 1 << 20) -> None:
        self._clock = clock
        self._max_cache_entries = max_cache_entries
        self._max_cache_entry_bytes = max_cache_entry_bytes
        self._charges: dict[str, tuple[int, float | None]] = {}  # counter -> (committed, expires at)
        # counter -> what this process holds reserved on it: a settlement takes back at most that, as in the
        # shared backends (a request refused, or settled twice, then settles its actual cost alone)
        self._reserved: dict[str, int] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # counter -> (tokens, at)
        self._full_at: dict[str, float] = {}  # counter -> when the bucket is full again (for the sweep)
        self._slots: dict[str, dict[str, float]] = {}  # counter -> request id -> lease expiry
        self._flags: dict[str, float] = {}  # flag -> expires at
        self._cache: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # least recently used first
        self._next_sweep = clock() + SWEEP_INTERVAL_S

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def admit(self, request_id: str, charges: Sequence[Charge], reserve_pico: int,
                    buckets: Sequence[Bucket], slots: Sequence[Slot]) -> Admission:
        now = self._now()
        values = [self._committed(charge.counter, now) for charge in charges]
        tokens = [bucket_tokens(self._buckets.get(b.counter), b, now) for b in buckets]
        holders = [self._holders(slot.counter, now) for slot in slots]
        admission = decide_admit(charges, reserve_pico, buckets, slots, values, tokens,
                                 [len(holding) for holding in holders])
        if not admission.ok:
            return admission
        for charge, value in zip(charges, values, strict=True):
            assert value is not None
            self._charges[charge.counter] = (value + reserve_pico, self._charges[charge.counter][1])
            if reserve_pico:
                self._reserved[charge.counter] = self._reserved.get(charge.counter, 0) + reserve_pico
        for bucket, available in zip(buckets, tokens, strict=True):
            self._put_bucket(bucket, available - bucket.cost, now)
        for slot, holding in zip(slots, holders, strict=True):
            holding[request_id] = now + slot.lease_s
            self._slots[slot.counter] = holding
        return admission

    async def settle(self, request_id: str, charges: Sequence[Charge], reserved_pico: int, actual_pico: int,
                     buckets: Sequence[Bucket], actual_costs: Sequence[int], slots: Sequence[Slot]) -> list[str]:
        now = self._now()
        crossed: list[str] = []
        for charge in charges:
            reserved = 0
            if reserved_pico and (held := self._reserved.get(charge.counter, 0)):
                reserved = min(held, reserved_pico)
                if held > reserved:
                    self._reserved[charge.counter] = held - reserved
                else:
                    del self._reserved[charge.counter]
            value = self._committed(charge.counter, now)
            if value is None:  # expired with its period: nothing left to correct
                continue
            after, crossing = settle_charge(charge, value, reserved, actual_pico)
            self._charges[charge.counter] = (after, self._charges[charge.counter][1])
            if crossing:
                crossed.append(charge.counter)
        for bucket, actual in zip(buckets, actual_costs, strict=True):
            available = bucket_tokens(self._buckets.get(bucket.counter), bucket, now)
            self._put_bucket(bucket, settle_bucket(bucket, available, actual), now)
        for slot in slots:
            holding = self._slots.get(slot.counter)
            if holding is not None:
                holding.pop(request_id, None)
                if not holding:
                    del self._slots[slot.counter]
        return crossed

    async def reclaim(self) -> int:
        return 0  # one process: nothing it reserved outlives it

    async def seed(self, counter: str, value_pico: int, ttl_s: int | None) -> None:
        now = self._now()
        if self._committed(counter, now) is None:
            self._charges[counter] = (value_pico, now + max(1, ttl_s) if ttl_s is not None else None)

    async def committed(self, counters: Sequence[str]) -> list[int | None]:
        now = self._now()
        return [self._committed(counter, now) for counter in counters]

    async def first_time(self, flag: str, ttl_s: int) -> bool:
        now = self._now()
        expires = self._flags.get(flag)
        if expires is not None and expires > now:
            return False
        self._flags[flag] = now + max(1, ttl_s)
        return True

    async def cache_get(self, key: str) -> bytes | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry[0]

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0 or len(value) > self._max_cache_entry_bytes or self._max_cache_entries <= 0:
            return
        self._cache[key] = (value, self._clock() + ttl_s)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_cache_entries:
            self._cache.popitem(last=False)

    # internals

    def _now(self) -> float:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        return now

    def _committed(self, counter: str, now: float) -> int | None:
        entry = self._charges.get(counter)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= now:
            del self._charges[counter]
            return None
        return entry[0]

    def _holders(self, counter: str, now: float) -> dict[str, float]:
        """The live leases of a slot; a crashed request's lease lapses on its own."""
        holding = self._slots.get(counter)
        if holding is None:
            return {}
        for rid in [rid for rid, expires in holding.items() if expires <= now]:
            del holding[rid]
        return holding

    def _put_bucket(self, bucket: Bucket, tokens: float, now: float) -> None:
        self._buckets[bucket.counter] = (tokens, now)
        self._full_at[bucket.counter] = now + seconds_to_fill(bucket, tokens)

    def _sweep(self, now: float) -> None:
        """Drop what has expired so memory stays bounded by the live counters."""
        self._next_sweep = now + SWEEP_INTERVAL_S
        for counter in [c for c, (_, exp) in self._charges.items() if exp is not None and exp <= now]:
            del self._charges[counter]
        for flag in [f for f, exp in self._flags.items() if exp <= now]:
            del self._flags[flag]
        for counter in list(self._slots):
            if not self._holders(counter, now):
                del self._slots[counter]
        for counter in [c for c, full in self._full_at.items() if full <= now]:  # missing == full
            del self._full_at[counter]
            del self._buckets[counter]
        for key in [k for k, (_, exp) in self._cache.items() if exp <= now]:
            del self._cache[key]
