"""Budgets and rate limits: admit a request before any upstream call, settle it after.

Admission reserves the request's largest possible cost on every hard budget that covers it
(key, team, tenant), takes one request and its estimated tokens from every rate bucket, and
holds a concurrency slot, in one atomic step of the shared counters.  Settlement swaps the
reservation for the real cost and refunds unused tokens.  Because a reservation is an upper
bound of the real cost, committed spend never passes a hard budget, whatever the concurrency
and however many instances share the counters.

A settlement that fails (the counters unreachable for a moment) is queued and retried in the background,
backing off up to ``RETRY_MAX_S``: otherwise its reservation, the request's largest possible cost, would stay
counted until the budget's period ends.  The queue holds ``UNSETTLED_MAX`` settlements; beyond, the oldest is
dropped and logged (its reservation then stays counted: the safe side).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from passerelle.canonical import ChatRequest
from passerelle.canonical.text import estimate_tokens
from passerelle.config import Config
from passerelle.errors import ErrorKind, GatewayError
from passerelle.observability.logging import log
from passerelle.pipeline.auth import Principal
from passerelle.pipeline.policies import Policies
from passerelle.pricing import Catalog, FollowUps, call_costs_pico
from passerelle.routing.table import Deployment, RoutingTable
from passerelle.stores.base import Admission, Bucket, Charge, Counters, Level, Slot, Store
from passerelle.stores.records import Budget, RateLimit, pico_to_usd, usd_to_pico

_DAY = 86_400


@dataclass(slots=True)
class Ticket:
    """What one admitted request holds until it is settled."""

    request_id: str
    charges: Sequence[Charge] = ()
    settle_charges: Sequence[Charge] = ()  # the same counters, each with its budget's own limit (soft ones too)
    budgets: dict[str, Budget] = field(default_factory=dict)  # charge counter -> its budget
    reserved_pico: int = 0
    buckets: list[Bucket] = field(default_factory=list)
    token_buckets: list[int] = field(default_factory=list)  # indexes of buckets counting tokens
    slots: list[Slot] = field(default_factory=list)
    requests_level: Level | None = None  # the tightest request bucket, for response headers
    tokens_level: Level | None = None
    settled: bool = False

    @property
    def empty(self) -> bool:
        return not (self.charges or self.buckets or self.slots)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What admission needs for one key and model on one UTC day (counter names carry the period)."""

    policies: Policies  # the snapshot it was built from: a new one (keys, budgets, limits changed) rebuilds it
    charges: tuple[Charge, ...]
    settle_charges: tuple[Charge, ...]  # soft budgets report a crossing at their own limit; hard ones never cross
    budgets: dict[str, Budget]  # charge counter -> its budget
    hard: bool
    limits: tuple[RateLimit, ...]


_PLANS = 4096  # plans kept (keys x models seen today); past that the cache starts again
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0  # a failed settlement is tried again after these (doubling)
UNSETTLED_MAX = 100_000


def _unavailable(exc: Exception) -> GatewayError:
    """Budgets and limits cannot be checked: refuse (fail closed) with a retryable 503, never a 500."""
    log("counters_unavailable", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")
    return GatewayError(ErrorKind.UNAVAILABLE, "budgets and rate limits cannot be checked right now; retry shortly",
                        retry_after=1.0)


def period_window(period: str, now: float) -> tuple[str, float, int | None]:
    """(counter suffix, period start, counter TTL) for a budget period, in UTC."""
    if period == "total":
        return "all", 0.0, None
    suffix, start, end = _calendar_period(period, int(now // _DAY))
    return suffix, start, int(end - now) + _DAY


@functools.lru_cache(maxsize=64)
def _calendar_period(period: str, day: int) -> tuple[str, float, float]:
    """(suffix, start, end) of the day or month holding UTC day number ``day``: computed once a day."""
    t = time.gmtime(day * _DAY)
    if period == "day":
        return time.strftime("%Y-%m-%d", t), float(day * _DAY), float((day + 1) * _DAY)
    start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
    days = calendar.monthrange(t.tm_year, t.tm_mon)[1]
    return time.strftime("%Y-%m", t), float(start), float(start + days * _DAY)


@functools.lru_cache(maxsize=1024)
def _limit_pico(limit_usd: Decimal) -> int:
    return usd_to_pico(limit_usd)  # Decimal arithmetic: once per budget limit, not twice per request


def _tightest(levels: list[Level]) -> Level | None:
    return min(levels, key=lambda lv: lv.remaining / max(lv.limit, 1)) if levels else None


class Limiter:
    def __init__(self, counters: Counters, store: Store, catalog: Catalog, config: Config) -> None:
        self.counters = counters
        self.store = store
        self.catalog = catalog
        self.config = config.metering
        self._alerts: set[asyncio.Task[None]] = set()
        self._plans: dict[tuple[int, str, str | None, str, str, int], _Plan] = {}
        self._unsettled: deque[tuple[Ticket, int, int]] = deque()  # (ticket, actual pico, actual tokens)
        self._retrying: asyncio.Task[None] | None = None

    async def admit(self, who: Principal, request: ChatRequest, policies: Policies, table: RoutingTable,
                    follow_ups: FollowUps | None = None) -> Ticket:
        """Admit the request, or raise the budget or rate-limit error.  ``follow_ups``: calls the gateway may
        add to this one (a skills session), which a hard budget's reservation covers too."""
        ticket = Ticket(request.request_id)
        now = time.time()
        plan = self._plan(who, request.model, policies, table, now)
        if plan is None:
            return ticket
        if plan.hard:
            self._cap_output(request)
            ticket.reserved_pico = self.reservation(request, table.plan(request.model), now, follow_ups)
        ticket.charges, ticket.settle_charges = plan.charges, plan.settle_charges
        ticket.budgets = plan.budgets  # shared by the day's requests: read only
        self._add_limits(ticket, plan.limits, request)
        for _ in range(3):  # unseeded counters are seeded from the ledger, then admission is retried
            result = await self._admit(ticket)
            if result.ok:
                self._levels(ticket, result.levels)
                return ticket
            if result.reason != "unseeded":
                break
            try:
                await asyncio.gather(*(self._seed(counter, plan.budgets[counter], now) for counter in result.missing))
            except Exception as exc:
                raise _unavailable(exc) from None
        else:
            raise GatewayError(ErrorKind.UNAVAILABLE, "budget counters could not be initialised; try again")
        self._levels(ticket, result.levels)
        denied = result.denied_by or ""
        if result.reason == "budget":
            raise await self._budget_error(ticket, denied)
        if result.reason == "concurrency":
            raise GatewayError(ErrorKind.RATE_LIMIT, "too many concurrent requests for this key, team or tenant; "
                               "retry when one of them finishes", retry_after=1.0)
        what = "tokens" if denied.endswith(":tok") else "requests"
        if result.retry_after is None:
            raise GatewayError(ErrorKind.RATE_LIMIT, f"this request needs more {what} than the per-minute limit "
                               "allows at once; lower max_tokens or the prompt size")
        raise GatewayError(ErrorKind.RATE_LIMIT, f"rate limit exceeded: {what} per minute",
                           retry_after=result.retry_after)

    def _plan(self, who: Principal, model: str, policies: Policies, table: RoutingTable, now: float) -> _Plan | None:
        """The budgets and limits of this key and model today, built on a key's first request of the day (or
        of a new policy version) and shared by the next ones; None when nothing applies."""
        day = int(now // _DAY)
        key = (policies.version, who.key_id, who.team_id, who.tenant_id, model, day)
        plan = self._plans.get(key)
        if plan is None or plan.policies is not policies:
            budgets = policies.budgets_for(who)
            limits = policies.limits_for(who, (model, table.resolve(model).name)) if policies.limits else []
            charges: list[Charge] = []
            settle_charges: list[Charge] = []
            counters: dict[str, Budget] = {}
            for budget in budgets:
                suffix, _, ttl = period_window(budget.period, now)
                counter = f"budget:{budget.id}:{suffix}"
                limit = _limit_pico(budget.limit_usd)
                charges.append(Charge(counter, limit if budget.mode == "hard" else None, ttl))
                settle_charges.append(Charge(counter, limit, ttl))
                counters[counter] = budget
            plan = _Plan(policies, tuple(charges), tuple(settle_charges), counters,
                         any(b.mode == "hard" for b in budgets), tuple(limits))
            if len(self._plans) >= _PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan if plan.charges or plan.limits else None

    async def _admit(self, ticket: Ticket) -> Admission:
        try:
            return await self.counters.admit(ticket.request_id, ticket.charges, ticket.reserved_pico,
                                             ticket.buckets, ticket.slots)
        except Exception as exc:
            raise _unavailable(exc) from None

    def reservation(self, request: ChatRequest, candidates: Sequence[tuple[Deployment, str]], now: float,
                    follow_ups: FollowUps | None = None) -> int:
        """The most this request can cost on any deployment it may be routed to.  Each call (the request's
        own, each follow-up) may land on a different deployment: each is reserved at its dearest."""
        worst: list[int] = []
        for deployment, name in candidates:
            upstream = deployment.model_template.replace("{model}", name)
            price = self.catalog.lookup(deployment.provider_type, upstream, now, region=deployment.region)
            if price is None:
                if self.config.unpriced == "reject":
                    raise GatewayError(ErrorKind.PERMISSION, f"no price is known for model '{upstream}' on "
                                       f"deployment '{deployment.name}', so a hard budget cannot be enforced; "
                                       "add it under metering.prices")
                continue
            costs = call_costs_pico(request, price, self.config.default_max_tokens, follow_ups=follow_ups)
            worst = costs if not worst else [max(a, b) for a, b in zip(worst, costs, strict=True)]
        return sum(worst)

    def _cap_output(self, request: ChatRequest) -> None:
        """An OpenAI caller may set no output limit; a hard budget needs one, so the gateway sends
        its default explicitly (the reservation is computed with it)."""
        if request.dialect == "openai":
            wire = request.openai_extras.setdefault("_wire", {})
            if "max_tokens_field" not in wire:
                request.body["max_tokens"] = self.config.default_max_tokens
                wire["cap_max_tokens"] = True

    def _add_limits(self, ticket: Ticket, limits: Sequence[RateLimit], request: ChatRequest) -> None:
        tokens = estimate_tokens(request.body) + int(request.body.get("max_tokens") or 0)
        for limit in limits:
            if limit.rpm:
                ticket.buckets.append(Bucket(f"rl:{limit.id}:req", limit.rpm, limit.rpm / 60, 1))
            if limit.tpm:
                ticket.token_buckets.append(len(ticket.buckets))
                ticket.buckets.append(Bucket(f"rl:{limit.id}:tok", limit.tpm, limit.tpm / 60, tokens))
            if limit.concurrent:
                ticket.slots.append(Slot(f"rl:{limit.id}:conc", limit.concurrent))

    def _levels(self, ticket: Ticket, levels: dict[str, Level]) -> None:
        token_counters = {ticket.buckets[i].counter for i in ticket.token_buckets}
        ticket.requests_level = _tightest([lv for c, lv in levels.items() if c not in token_counters])
        ticket.tokens_level = _tightest([lv for c, lv in levels.items() if c in token_counters])

    async def _seed(self, counter: str, budget: Budget, now: float) -> None:
        _, start, ttl = period_window(budget.period, now)
        spent = await self.store.spend_pico(budget.scope, budget.scope_id, start)
        await self.counters.seed(counter, spent, ttl)

    async def _budget_error(self, ticket: Ticket, counter: str) -> GatewayError:
        budget = ticket.budgets.get(counter)
        if budget is None:
            return GatewayError(ErrorKind.BUDGET_EXCEEDED, "budget exceeded")
        committed = (await self.counters.committed([counter]))[0] or 0
        period = "" if budget.period == "total" else f" per {budget.period}"
        return GatewayError(
            ErrorKind.BUDGET_EXCEEDED,
            f"budget exceeded: the {budget.scope} budget {budget.id} of {budget.limit_usd} USD{period} has "
            f"{pico_to_usd(committed):.6f} USD spent or reserved, and this request may cost up to "
            f"{pico_to_usd(ticket.reserved_pico):.6f} USD")

    async def settle(self, ticket: Ticket, actual_pico: int, actual_tokens: int) -> None:
        """Swap the reservation for the real cost; refund unused tokens; release slots.  Safe to
        call twice (the second call does nothing).  Never raises: a failure is retried later."""
        if ticket.settled or ticket.empty:
            return
        ticket.settled = True
        try:
            await self._settle(ticket, actual_pico, actual_tokens)
        except Exception as exc:
            log("settle_failed", logging.ERROR, request_id=ticket.request_id, queued=len(self._unsettled) + 1,
                error=f"{exc.__class__.__name__}: {exc}")
            self._retry_later(ticket, actual_pico, actual_tokens)

    async def _settle(self, ticket: Ticket, actual_pico: int, actual_tokens: int) -> None:
        costs = [actual_tokens if i in ticket.token_buckets else b.cost for i, b in enumerate(ticket.buckets)]
        crossed = await self.counters.settle(ticket.request_id, ticket.settle_charges, ticket.reserved_pico,
                                             actual_pico, ticket.buckets, costs, ticket.slots)
        for counter in crossed:
            budget = ticket.budgets[counter]
            if budget.mode == "soft":
                task = asyncio.create_task(self._alert(counter, budget))
                self._alerts.add(task)
                task.add_done_callback(self._alerts.discard)

    async def _alert(self, counter: str, budget: Budget) -> None:
        _, _, ttl = period_window(budget.period, time.time())
        if not await self.counters.first_time(f"alert:{counter}", ttl or 10 * 365 * _DAY):
            return  # another instance (or an earlier request) already alerted for this period
        committed = (await self.counters.committed([counter]))[0] or 0
        event = {"event": "budget_soft_limit_crossed", "budget_id": budget.id, "scope": budget.scope,
                 "scope_id": budget.scope_id, "period": budget.period, "limit_usd": str(budget.limit_usd),
                 "spent_usd": str(pico_to_usd(committed))}
        log("budget_soft_limit_crossed", logging.WARNING, **{k: v for k, v in event.items() if k != "event"})
        if budget.webhook:
            await post_webhook(budget.webhook, event)

    def _retry_later(self, ticket: Ticket, actual_pico: int, actual_tokens: int) -> None:
        if len(self._unsettled) >= UNSETTLED_MAX:
            dropped = self._unsettled.popleft()[0]
            log("settle_dropped", logging.ERROR, request_id=dropped.request_id, reserved_pico=dropped.reserved_pico)
        self._unsettled.append((ticket, actual_pico, actual_tokens))
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.create_task(self._retry(), name="passerelle-settle-retry")

    async def _retry(self) -> None:
        """Settles the queue in order, waiting longer after each round that fails."""
        delay = RETRY_FIRST_S
        while self._unsettled:
            await asyncio.sleep(delay)
            if await self._retry_queued():
                log("settle_recovered", logging.INFO)
                delay = RETRY_FIRST_S
            else:
                delay = min(RETRY_MAX_S, delay * 2)

    async def _retry_queued(self) -> bool:
        """Tries every queued settlement once, in order; False at the first that fails (it stays first)."""
        while self._unsettled:
            ticket, actual_pico, actual_tokens = self._unsettled[0]
            try:
                await self._settle(ticket, actual_pico, actual_tokens)
            except Exception:
                return False
            self._unsettled.popleft()
        return True

    @property
    def unsettled(self) -> int:
        """Settlements waiting for the counters to answer again."""
        return len(self._unsettled)

    async def aclose(self) -> None:
        """Waits for alerts; tries the queued settlements a last time (those that still fail are logged: their
        reservations stay counted, or are given back by another process's ``reclaim`` once this one is gone)."""
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
            self._retrying = None
        if self._unsettled and not await self._retry_queued():
            log("settle_abandoned", logging.ERROR, count=len(self._unsettled))
        if self._alerts:
            await asyncio.wait(self._alerts, timeout=5)


async def post_webhook(url: str, payload: dict[str, str]) -> None:
    """Best effort: an alert that cannot be delivered is logged, never raised into a request."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                session.post(url, json=payload) as resp:
            if resp.status >= 300:
                log("webhook_failed", logging.WARNING, url=url, status=resp.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log("webhook_failed", logging.WARNING, url=url, error=f"{exc.__class__.__name__}: {exc}")

