"""The audit log one gateway process owns: write-behind with group commit, like the usage ledger.

``append`` only puts the event in a bounded in-memory queue.  A background task commits the queue
every ``audit.flush_interval`` seconds, up to ``audit.batch`` records per transaction; sealing (seq,
prev_hash, hash) happens inside that transaction.  Durability: a killed process loses the events of
its last flush interval (still in memory), never a half-written or mis-chained record (a batch
commits whole or not at all); a graceful stop (``aclose``) lets a commit in progress finish, then
commits everything queued.  When the database is down, events wait in memory up to ``audit.queue``;
beyond that the oldest are shed, counted in ``dropped`` and ``passerelle_audit_dropped_total``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from pathlib import Path

from prometheus_client import Counter

from passerelle.audit.base import AuditStore
from passerelle.audit.records import AuditEvent, InvalidEvent, Unsealed, unsealed
from passerelle.config import Config
from passerelle.config.schema import AuditConfig
from passerelle.observability.logging import log
from passerelle.stores.write_behind import FlushLoop

WRITTEN = Counter("passerelle_audit_written_total", "Audit records committed to the chain")
DROPPED = Counter("passerelle_audit_dropped_total", "Audit events shed: the audit queue was full")
INVALID = Counter("passerelle_audit_invalid_total", "Audit events refused: a field had the wrong type")


class AuditLog:
    def __init__(self, store: AuditStore | None, config: AuditConfig) -> None:
        self.store = store  # None: auditing is disabled, events are discarded
        self.dropped = 0
        self.invalid = 0
        self._config = config
        self._pending: deque[AuditEvent] = deque(maxlen=config.queue)
        self._ready: deque[Unsealed] = deque()  # validated, waiting for (or retrying) a commit
        self._writer = FlushLoop("audit", self.flush, config.flush_interval, lambda: self.queued)
        self._lock = asyncio.Lock()

    def append(self, event: AuditEvent) -> None:
        """Never blocks, never raises into the request."""
        if self.store is None:
            return
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
            DROPPED.inc()
            if not self._writer.failing:
                log("audit_queue_full", logging.ERROR, dropped_request_id=self._pending[0].request_id)
        self._pending.append(event)

    @property
    def enabled(self) -> bool:
        return self.store is not None

    @property
    def queued(self) -> int:
        return len(self._pending) + len(self._ready)

    async def start(self) -> None:
        if self.store is not None:
            self._writer.start()

    def _prepare(self) -> list[tuple[str, str]]:
        """Validate queued events into ``_ready`` (in a worker thread); returns the refused ones."""
        refused = []
        while self._pending and len(self._ready) < self._config.batch:
            event = self._pending.popleft()
            try:
                self._ready.append(unsealed(event, self._config.store_content))
            except (InvalidEvent, TypeError, ValueError, AttributeError) as exc:
                # InvalidEvent messages name fields and types only; others could quote a value.
                error = str(exc) if isinstance(exc, InvalidEvent) else exc.__class__.__name__
                refused.append((str(getattr(event, "request_id", "")), error))
        return refused

    async def flush(self) -> None:
        """Commit everything queued so far (tests and shutdown call it directly)."""
        if self.store is None:
            return
        async with self._lock:
            # Events queued while this commits wait for the next flush (one batch per interval under load,
            # not a stream of small transactions chasing the queue); what a crash can lose is unchanged.
            todo = len(self._pending) + len(self._ready)
            while todo > 0 and (self._pending or self._ready):
                refused = await self._prepared()
                for request_id, error in refused:
                    self.invalid += 1
                    INVALID.inc()
                    log("audit_event_invalid", logging.ERROR, request_id=request_id, error=error)
                todo -= len(refused)
                batch = list(self._ready)
                if not batch:
                    continue
                await self._append(batch)  # on failure the batch stays in _ready, in order
                self._ready.clear()
                todo -= len(batch)
                WRITTEN.inc(len(batch))

    async def _prepared(self) -> list[tuple[str, str]]:
        """``_prepare`` in a worker thread (~20 us an event: off the event loop, so that a batch never stalls
        requests in flight), awaited to its end even when the flush is cancelled: a thread cannot be stopped,
        and one still moving events into ``_ready`` while the next flush commits and clears it loses them."""
        work = asyncio.ensure_future(asyncio.to_thread(self._prepare))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait({work})
            raise

    async def _append(self, batch: list[Unsealed]) -> None:
        """The store's append, seen through to its end even when the flush is cancelled (from outside: an event
        loop's teardown cancels every task left): a commit that completed while its caller was being cancelled
        would otherwise leave its batch queued, and the next flush would chain the same events a second time."""
        assert self.store is not None
        commit = asyncio.ensure_future(self.store.append(batch))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            await asyncio.wait({commit})  # committed or failed: find out which before giving up
            if not commit.cancelled() and commit.exception() is None:
                self._ready.clear()
                WRITTEN.inc(len(batch))
            raise

    async def aclose(self) -> None:
        """Stop the writer (a flush in progress finishes: it is not cancelled), commit what is queued, close the
        store."""
        await self._writer.stop()
        if self.store is None:
            return
        try:
            await self.flush()
        except Exception as exc:
            log("audit_write_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}", lost=self.queued)
        await self.store.aclose()


async def open_audit_store(config: Config, data_dir: Path) -> AuditStore:
    """SQLite ``data_dir/audit.db`` (embedded) or the store's PostgreSQL schema (scale-out)."""
    if config.store.backend == "postgres":
        from passerelle.audit.postgres import PostgresAuditStore

        assert config.store.postgres_dsn  # checked by the config loader
        return await PostgresAuditStore.connect(config.store.postgres_dsn, config.store.postgres_schema)
    from passerelle.audit.sqlite import SQLiteAuditStore

    return await asyncio.to_thread(SQLiteAuditStore, data_dir / "audit.db")


async def open_audit(config: Config, data_dir: Path) -> AuditLog:
    """The log of one gateway process; call ``start()`` then, at shutdown, ``aclose()``."""
    if not config.audit.enabled:
        return AuditLog(None, config.audit)
    return AuditLog(await open_audit_store(config, data_dir), config.audit)
