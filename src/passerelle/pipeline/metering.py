"""Metering: price each request and append it to the usage ledger, write-behind.

The request path only appends a record to an in-memory buffer.  A background task commits the
buffer every ``store.ledger_flush_interval`` seconds (group commit: one transaction for up to
``store.ledger_batch`` records).  Durability: a record reaches the database within one flush
interval plus the commit time; a crash of the process loses at most that window (a graceful
stop lets a commit in progress finish, then flushes everything).  Budgets do not depend on it: they
are enforced by the shared counters at settlement, before the record is even queued.  When the
database is down, records wait in memory up to ``store.ledger_queue``; beyond that the oldest are
dropped, counted in the ``passerelle_ledger_dropped_total`` metric and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from passerelle.config import StoreConfig
from passerelle.observability import metrics
from passerelle.observability.logging import log
from passerelle.pricing import Catalog, TokenUsage, cost_pico
from passerelle.routing.table import Deployment
from passerelle.stores.base import Store
from passerelle.stores.records import UsageRecord
from passerelle.stores.write_behind import FlushLoop


class LedgerWriter:
    def __init__(self, store: Store, config: StoreConfig) -> None:
        self._store = store
        self._batch = config.ledger_batch
        self._pending: deque[UsageRecord] = deque(maxlen=config.ledger_queue)
        self._writer = FlushLoop("ledger", self.flush, config.ledger_flush_interval, lambda: len(self._pending))
        self._lock = asyncio.Lock()

    def start(self) -> None:
        self._writer.start()

    def append(self, record: UsageRecord) -> None:
        if len(self._pending) == self._pending.maxlen:
            metrics.LEDGER_DROPPED.inc()
            if not self._writer.failing:
                log("ledger_queue_full", logging.ERROR, dropped_request_id=self._pending[0].request_id)
        self._pending.append(record)

    async def flush(self) -> None:
        """Commit everything queued so far (tests and shutdown call it directly).  Records queued while it
        commits wait for the next flush: under steady load the writer then commits one batch per interval,
        not a stream of small transactions chasing the queue."""
        async with self._lock:
            todo = len(self._pending)
            while todo > 0 and self._pending:
                batch = [self._pending.popleft() for _ in range(min(self._batch, todo, len(self._pending)))]
                try:
                    await self._store.append_usage(batch)
                except BaseException:
                    # Failed, or cancelled (the commit may have landed): retried next time in their order.
                    # A record committed twice is inserted once (the ledger ignores a known request id).
                    self._pending.extendleft(reversed(batch))
                    raise
                todo -= len(batch)
                metrics.LEDGER_WRITTEN.inc(len(batch))

    async def aclose(self) -> None:
        """Stop the writer (a flush in progress finishes: it is not cancelled), then flush what is queued."""
        await self._writer.stop()
        try:
            await self.flush()
        except Exception as exc:
            log("ledger_write_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}",
                lost=len(self._pending))


class Meter:
    """Prices usage with the catalog in force when the request arrived."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def cost(self, deployment: Deployment, upstream_model: str, usage: TokenUsage, at: float) -> int | None:
        price = self.catalog.lookup(deployment.provider_type, upstream_model, at, region=deployment.region)
        return None if price is None else cost_pico(usage, price)


def usage_tokens(usage: TokenUsage) -> int:
    """Tokens a tokens-per-minute limit counts: every input and output token."""
    return usage.input + usage.cache_write + usage.cache_read + usage.output


def record(*, request_id: str, started_wall: float, latency_s: float, status: int, route: str, model: str,
           who: Any, deployment: Deployment | None = None, upstream_model: str | None = None,
           usage: TokenUsage | None = None, cost: int = 0, saved: int = 0, cache_hit: bool = False,
           price_version: str = "") -> UsageRecord:
    u = usage or TokenUsage(0, 0, 0, 0, 0, False)
    return UsageRecord(
        request_id=request_id, ts=started_wall, tenant_id=who.tenant_id, team_id=who.team_id, key_id=who.key_id,
        route=route, model=model, deployment=deployment.name if deployment else None,
        provider=deployment.provider_type if deployment else None, upstream_model=upstream_model, status=status,
        latency_ms=round(latency_s * 1000, 3), input_tokens=u.input, output_tokens=u.output,
        cache_write_tokens=u.cache_write, cache_read_tokens=u.cache_read, thinking_tokens=u.thinking,
        usage_estimated=u.estimated, cost_pico=cost, saved_pico=saved, cache_hit=cache_hit,
        price_version=price_version)


def now_wall() -> float:
    return time.time()


def merge_usage(into: dict[str, Any], update: Mapping[str, Any] | None) -> None:
    """Stream usage arrives in pieces (message_start, then message_delta): keep the latest of each."""
    if update:
        into.update(update)
