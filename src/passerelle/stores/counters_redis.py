"""Shared counters in Redis: the scale-out backend, for many gateway instances behind a load balancer.

``admit`` and ``settle`` are each one Lua script, so one round trip and atomic across instances.
Scripts read the clock with ``TIME`` so instances with skewed clocks agree.  Keys live under the
prefix, one namespace per kind (``c:`` charge, ``b:`` bucket, ``s:`` slot, ``f:`` flag, ``r:``
cached response; ``o:``, ``h:``, ``q:`` owners and reservations, below; ``d:`` a request settled, for an hour)
so that a charge and a bucket of the same name never collide.

Money is compared exactly: Lua numbers are doubles (exact only up to 2**53 pico-USD, about $9,000),
so Python passes the thresholds as decimal strings and the scripts compare strings, never numbers.
The bucket formulas are those of ``counters_memory``.

A hard budget's reservation is also recorded (``q:<request id>``: its owner, amount and charge keys) under
the instance that made it, its *owner*: a key ``o:<owner>`` the instance renews every third of
``owner_lease_s``, and the set ``h:<owner>`` of its reservations.  Every instance sweeps with the same
period: an owner whose key lapsed (the instance was killed, or cut off from Redis that long) has its
reservations given back to their budgets, so a dead instance does not keep budget spent.  Settlement
removes the record; one already given back settles its actual cost alone.  An instance whose own key
lapsed never reserves under that owner again (admission refuses, it takes a new one), so only requests
in flight across such a cut can be given back while running: a hard budget can be exceeded by at most
their cost, and only after a cut longer than the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from passerelle.observability.logging import log
from passerelle.stores import owners
from passerelle.stores.base import Admission, Bucket, Charge, Slot
from passerelle.stores.counters_memory import bucket_level
from passerelle.stores.redis_scripts import Script, ScriptClient

# Shared by both scripts: exact comparison of integer decimal strings, and a bucket's tokens now.
PRELUDE = """
local function le(a, b)
  local an, bn = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if an ~= bn then return an end
  if an then a, b = b:sub(2), a:sub(2) end
  if #a ~= #b then return #a < #b end
  return a <= b
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function tokens_now(key, cap, rate)
  local h = redis.call('HMGET', key, 'tokens', 'ts')
  if not h[1] then return cap end
  return math.min(cap, tonumber(h[1]) + math.max(0, now - tonumber(h[2])) * math.max(0, rate))
end
local function put_bucket(key, cap, rate, tokens)
  redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
  if rate > 0 then  -- a bucket that is gone is full: expire it when it would be
    redis.call('PEXPIRE', key, string.format('%d', math.ceil(math.max(0, cap - tokens) / rate * 1000) + 1000))
  else
    redis.call('PERSIST', key)
  end
end
"""

# KEYS: charges, buckets, slots, then the owner's key, its reservations' set and the reservation's record.
# ARGV: counts, reserve, request id, owner ('' when nothing is reserved), then per charge its headroom
# (limit - reserve, '' when soft), per bucket capacity/refill/cost, per slot limit/lease ms.
# Returns {code, denied index, retry after ('' none), each bucket's tokens, missing charge indexes}.
ADMIT = PRELUDE + """
local nc, nb, ns = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reserve, rid, owner = ARGV[4], ARGV[5], ARGV[6]
local bo, so = 6 + nc, 6 + nc + 3 * nb
local ko = nc + nb + ns
if owner ~= '' and redis.call('EXISTS', KEYS[ko + 1]) == 0 then return {5, 0, '', {}, {}} end
local values, missing = {}, {}
for i = 1, nc do
  values[i] = redis.call('GET', KEYS[i])
  if not values[i] then missing[#missing + 1] = i - 1 end
end
local caps, rates, costs, tokens = {}, {}, {}, {}
for j = 1, nb do
  caps[j], rates[j], costs[j] = tonumber(ARGV[bo + 3 * j - 2]), tonumber(ARGV[bo + 3 * j - 1]),
    tonumber(ARGV[bo + 3 * j])
  tokens[j] = tokens_now(KEYS[nc + j], caps[j], rates[j])
end
local function levels()
  local out = {}
  for j = 1, nb do out[j] = string.format('%.17g', tokens[j]) end
  return out
end
if #missing > 0 then return {1, 0, '', levels(), missing} end
for i = 1, nc do
  local headroom = ARGV[6 + i]
  if headroom ~= '' and not le(values[i], headroom) then return {2, i - 1, '', levels(), {}} end
end
for j = 1, nb do
  if tokens[j] < costs[j] then
    local retry = ''
    if costs[j] <= caps[j] and rates[j] > 0 then
      retry = string.format('%.17g', (costs[j] - tokens[j]) / rates[j])
    end
    return {3, j - 1, retry, levels(), {}}
  end
end
for k = 1, ns do
  local key = KEYS[nc + nb + k]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now_ms))  -- leases of crashed requests lapse
  if redis.call('ZCARD', key) >= tonumber(ARGV[so + 2 * k - 1]) then return {4, k - 1, '', levels(), {}} end
end
for i = 1, nc do redis.call('INCRBY', KEYS[i], reserve) end
if owner ~= '' then
  local charged = {}
  for i = 1, nc do charged[i] = KEYS[i] end
  redis.call('SET', KEYS[ko + 3], cjson.encode({owner, reserve, charged}))
  redis.call('SADD', KEYS[ko + 2], rid)
end
for j = 1, nb do
  tokens[j] = tokens[j] - costs[j]
  put_bucket(KEYS[nc + j], caps[j], rates[j], tokens[j])
end
for k = 1, ns do
  local key, lease = KEYS[nc + nb + k], tonumber(ARGV[so + 2 * k])
  redis.call('ZADD', key, string.format('%d', now_ms + lease), rid)
  if redis.call('PTTL', key) < lease then redis.call('PEXPIRE', key, lease) end
end
return {0, 0, '', levels(), {}}
"""

# KEYS: charges, buckets, slots, then the reservation's record and the request's settled mark.  ARGV: counts,
# actual - reserved, request id, actual, prefix, then per charge its limit and limit + reserved ('' when none), per
# bucket capacity/refill/give-back (cost - actual).  A reservation recorded and already given back (its owner's
# lease lapsed) settles the actual cost alone.  A request settles once: a retry after a reply that never came (the
# script may have run) finds the mark and changes nothing.  Returns the indexes of the charges whose limit this
# settlement crossed.
SETTLE = PRELUDE + """
local nc, nb, ns = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local delta, rid, actual, prefix = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local bo = 7 + 2 * nc
local record_key = KEYS[nc + nb + ns + 1]
if not redis.call('SET', KEYS[nc + nb + ns + 2], 1, 'NX', 'EX', 3600) then return {} end
local held = true
if actual ~= delta then  -- something was reserved
  local record = redis.call('GET', record_key)
  if record then
    redis.call('DEL', record_key)
    redis.call('SREM', prefix .. 'h:' .. cjson.decode(record)[1], rid)
  else
    held = false
    delta = actual
  end
end
local crossed = {}
for i = 1, nc do
  local before = redis.call('GET', KEYS[i])
  if before then  -- gone with its period: nothing left to correct
    redis.call('INCRBY', KEYS[i], delta)
    local limit, limit_reserved = ARGV[6 + 2 * i], ARGV[7 + 2 * i]
    if not held then limit_reserved = limit end
    if limit ~= '' and le(before, limit_reserved) and not le(redis.call('GET', KEYS[i]), limit) then
      crossed[#crossed + 1] = i - 1
    end
  end
end
for j = 1, nb do
  local cap, rate, give = tonumber(ARGV[bo + 3 * j - 2]), tonumber(ARGV[bo + 3 * j - 1]),
    tonumber(ARGV[bo + 3 * j])
  local key = KEYS[nc + j]
  put_bucket(key, cap, rate, math.min(cap, tokens_now(key, cap, rate) + give))
end
for k = 1, ns do redis.call('ZREM', KEYS[nc + nb + k], rid) end
return crossed
"""

# KEYS: the owners' set.  ARGV: prefix.  Gives back the reservations of every owner whose key lapsed; returns the
# pico-USD given back on each budget counter, as decimal strings (Lua numbers are doubles).  Touches keys it reads
# from the set: Redis standalone, as the scripts above (which span budgets anyway).
RECLAIM = """
local prefix, given = ARGV[1], {}
for _, owner in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', prefix .. 'o:' .. owner) == 0 then
    local set = prefix .. 'h:' .. owner
    for _, rid in ipairs(redis.call('SMEMBERS', set)) do
      local record_key = prefix .. 'q:' .. rid
      local record = redis.call('GET', record_key)
      if record then
        local r = cjson.decode(record)
        for _, key in ipairs(r[3]) do
          if redis.call('EXISTS', key) == 1 then
            redis.call('DECRBY', key, r[2])
            given[#given + 1] = r[2]
          end
        end
        redis.call('DEL', record_key)
      end
    end
    redis.call('DEL', set)
    redis.call('SREM', KEYS[1], owner)
  end
end
return given
"""

REASONS = {1: "unseeded", 2: "budget", 3: "rate", 4: "concurrency"}
OWNER_LEASE_S = 60.0  # a killed instance's reservations come back within this plus a third of it


class RedisCounters:
    def __init__(self, client: aioredis.Redis, prefix: str = "passerelle:",
                 max_cache_entry_bytes: int = 1 << 20, owner_lease_s: float = OWNER_LEASE_S) -> None:
        self._redis = client
        self.prefix = prefix
        self._max_cache_entry_bytes = max_cache_entry_bytes
        self.owner_lease_s = owner_lease_s
        self.owner = ""  # this instance's current owner id: taken on first use, a new one if its key lapses
        self._owning: asyncio.Task[None] | None = None
        self._owner_lock = asyncio.Lock()  # one new owner at a time: a second would never be renewed
        # The two scripts every request runs go through the lean client (redis_scripts.py); both load the script
        # again on NOSCRIPT (a restarted or new server).
        self._scripts = ScriptClient.like(client, max_connections=client.connection_pool.max_connections,
                                          timeout=client.connection_pool.connection_kwargs.get("socket_timeout") or 5.0)
        self._admit, self._settle = Script(ADMIT), Script(SETTLE)
        # TLS and Unix sockets: redis-py runs them.
        self._fallback = {script: client.register_script(script.source) for script in (self._admit, self._settle)}
        self._reclaim = client.register_script(RECLAIM)

    @classmethod
    async def connect(cls, url: str, prefix: str = "passerelle:", max_cache_entry_bytes: int = 1 << 20, *,
                      max_connections: int = 64, pool_timeout: float = 5.0,
                      owner_lease_s: float = OWNER_LEASE_S) -> RedisCounters:
        # A bounded pool that makes a burst wait for a free connection instead of failing (the
        # default pool raises "Too many connections" under load).
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=pool_timeout)
        client = aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        counters = cls(client, prefix, max_cache_entry_bytes, owner_lease_s)
        counters._start_owning()  # sweeps from now on, whether or not this instance ever reserves
        return counters

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        """Stops renewing this instance's owner key and deletes it: reservations left unsettled (none after a
        drain) are then given back by the next sweep of any instance."""
        if self._owning is not None:
            self._owning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._owning
            self._owning = None
        try:
            if self.owner:
                with contextlib.suppress(Exception):  # Redis gone: the key lapses on its own
                    await self._redis.delete(self._owner_key(self.owner))
        finally:
            if self._scripts is not None:
                await self._scripts.aclose()
            await self._redis.aclose()

    # owners of reservations

    async def _current_owner(self) -> str:
        """This instance's owner id; a new one (renewed from now on) the first time and after its key lapsed."""
        if not self.owner:
            async with self._owner_lock:
                if not self.owner:
                    await self._take_owner()
        return self.owner

    async def _take_owner(self) -> None:
        owner = uuid.uuid4().hex
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._owner_key(owner), 1, px=math.ceil(self.owner_lease_s * 1000))
            pipe.sadd(f"{self.prefix}owners", owner)
            await pipe.execute()
        self.owner = owner
        self._start_owning()

    def _start_owning(self) -> None:
        if self._owning is None:
            self._owning = asyncio.create_task(self._keep_owner(), name="passerelle-counters-owner")

    async def _keep_owner(self) -> None:
        """Every third of the lease: renew this instance's key (a lapsed one is never renewed: a new owner is
        taken at the next admission), then give back the reservations of owners whose key lapsed."""
        failing = False
        while True:
            await asyncio.sleep(self.owner_lease_s / 3)
            try:
                owner = self.owner
                renewed = owner and await self._redis.set(self._owner_key(owner), 1, xx=True,
                                                          px=math.ceil(self.owner_lease_s * 1000))
                if owner and not renewed and owner == self.owner:
                    log("counters_owner_lapsed", logging.WARNING, owner=owner)
                    self.owner = ""
                await self.reclaim()
                failing = False
            except Exception as exc:
                if not failing:
                    log("counters_owner_renewal_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")
                failing = True

    async def reclaim(self) -> int:
        given = await self._reclaim(keys=[f"{self.prefix}owners"], args=[self.prefix])
        return owners.report(sum(int(amount) for amount in given))

    def _owner_key(self, owner: str) -> str:
        return f"{self.prefix}o:{owner}"

    async def _run(self, script: Script, keys: list[str], args: list[str | int]) -> Any:
        if self._scripts is not None:
            return await self._scripts.evalsha(script, keys, args)
        return await self._fallback[script](keys=keys, args=args)

    async def admit(self, request_id: str, charges: Sequence[Charge], reserve_pico: int,
                    buckets: Sequence[Bucket], slots: Sequence[Slot]) -> Admission:
        keys = self._keys(charges, buckets, slots)
        args: list[str | int] = [len(charges), len(buckets), len(slots), reserve_pico, request_id, ""]
        args += ["" if c.limit_pico is None else str(c.limit_pico - reserve_pico) for c in charges]
        for b in buckets:
            args += [b.capacity, repr(float(b.refill_per_s)), b.cost]
        for s in slots:
            args += [s.limit, s.lease_s * 1000]
        record = reserve_pico > 0 and len(charges) > 0
        for _ in range(2):  # again with a new owner if this one lapsed
            owner = (self.owner or await self._current_owner()) if record else ""
            args[5] = owner
            reply: list[Any] = await self._run(self._admit, keys + self._record_keys(owner, request_id), args)
            if reply[0] != 5:
                break
            if self.owner == owner:
                self.owner = ""
        code, index, retry, tokens, missing = reply
        levels = {b.counter: bucket_level(b, float(t)) for b, t in zip(buckets, tokens, strict=True)}
        if code == 0:
            return Admission(ok=True, levels=levels)
        if code == 5:
            raise RuntimeError("the counters' owner key lapsed twice in a row")
        reason = REASONS[code]
        if reason == "unseeded":
            return Admission(ok=False, reason=reason, missing=[charges[i].counter for i in missing], levels=levels)
        denied = (charges if reason == "budget" else buckets if reason == "rate" else slots)[index].counter
        return Admission(ok=False, denied_by=denied, reason=reason, retry_after=float(retry) if retry else None,
                         levels=levels)

    async def settle(self, request_id: str, charges: Sequence[Charge], reserved_pico: int, actual_pico: int,
                     buckets: Sequence[Bucket], actual_costs: Sequence[int], slots: Sequence[Slot]) -> list[str]:
        keys = [*self._keys(charges, buckets, slots), f"{self.prefix}q:{request_id}", f"{self.prefix}d:{request_id}"]
        args: list[str | int] = [len(charges), len(buckets), len(slots), actual_pico - reserved_pico, request_id,
                                 actual_pico, self.prefix]
        for c in charges:
            args += ["", ""] if c.limit_pico is None else [c.limit_pico, c.limit_pico + reserved_pico]
        for b, actual in zip(buckets, actual_costs, strict=True):
            args += [b.capacity, repr(float(b.refill_per_s)), b.cost - actual]
        crossed: list[int] = await self._run(self._settle, keys, args)
        return [charges[i].counter for i in crossed]

    async def seed(self, counter: str, value_pico: int, ttl_s: int | None) -> None:
        await self._redis.set(self._charge_key(counter), value_pico, nx=True,
                              ex=max(1, ttl_s) if ttl_s is not None else None)

    async def committed(self, counters: Sequence[str]) -> list[int | None]:
        if not counters:
            return []
        values: list[bytes | str | None] = await self._redis.mget([self._charge_key(c) for c in counters])
        return [None if v is None else int(v) for v in values]

    async def first_time(self, flag: str, ttl_s: int) -> bool:
        return bool(await self._redis.set(f"{self.prefix}f:{flag}", 1, nx=True, ex=max(1, ttl_s)))

    async def cache_get(self, key: str) -> bytes | None:
        value = await self._redis.get(f"{self.prefix}r:{key}")
        return value.encode() if isinstance(value, str) else value  # str only with decode_responses

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0 or len(value) > self._max_cache_entry_bytes:
            return
        await self._redis.set(f"{self.prefix}r:{key}", value, px=max(1, math.ceil(ttl_s * 1000)))

    def _record_keys(self, owner: str, request_id: str) -> list[str]:
        return [self._owner_key(owner), f"{self.prefix}h:{owner}", f"{self.prefix}q:{request_id}"] if owner else []

    def _charge_key(self, counter: str) -> str:
        return f"{self.prefix}c:{counter}"

    def _keys(self, charges: Sequence[Charge], buckets: Sequence[Bucket], slots: Sequence[Slot]) -> list[str]:
        return ([self._charge_key(c.counter) for c in charges] + [f"{self.prefix}b:{b.counter}" for b in buckets]
                + [f"{self.prefix}s:{s.counter}" for s in slots])
