"""The audit store's logic over SQL, shared by SQLite and PostgreSQL: each backend supplies
transactions (``_write`` excludes other appenders, ``_read`` is a snapshot) and its prune statement."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from passerelle.audit.base import ChainView, Hold, HoldNotFound, PruneConflict, RecordFilter
from passerelle.audit.chain import GENESIS, ChainPoint
from passerelle.audit.records import COLUMNS, JSON_FIELDS, AuditRecord, Unsealed

Row = Sequence[Any]
PAGE = 1000
INSERT_SQL = f"INSERT INTO audit_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM audit_records"
_HOLD_COLUMNS = "id, tenant_id, created_at, until, reason, released_at"
HEAD_SQL = "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1"
ANCHOR_SQL = "SELECT through_seq, hash FROM audit_anchors ORDER BY through_seq DESC LIMIT 1"


class Tx(Protocol):
    async def fetch(self, sql: str, *args: object) -> list[Row]: ...
    async def execute(self, sql: str, *args: object) -> None: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


_COLUMN_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)  # built once (see canonical)


def _json_text(value: object) -> str:
    return _COLUMN_JSON.encode(value)


def record_params(r: AuditRecord) -> tuple[object, ...]:
    return tuple(_json_text(getattr(r, c)) if c in JSON_FIELDS else getattr(r, c) for c in COLUMNS)


def seal_batch(batch: Sequence[Unsealed], point: ChainPoint) -> list[AuditRecord]:
    """The batch chained after ``point``, the head read inside the appending transaction."""
    sealed = []
    for item in batch:
        record = item.seal(point.seq + 1, point.hash)
        sealed.append(record)
        point = ChainPoint(record.seq, record.hash)
    return sealed


def point_from_rows(rows: Sequence[Row]) -> ChainPoint | None:
    return ChainPoint(int(rows[0][0]), rows[0][1]) if rows else None


def record_from_row(row: Row) -> AuditRecord:
    values = {c: json.loads(v) if c in JSON_FIELDS else v for c, v in zip(COLUMNS, row, strict=True)}
    return AuditRecord(**values)


def _hold_from_row(r: Row) -> Hold:
    return Hold(r[0], r[1], r[2], r[3], r[4], r[5])


class _View:
    def __init__(self, tx: Tx, anchor: ChainPoint | None) -> None:
        self._tx = tx
        self.anchor = anchor

    async def records(self, where: RecordFilter | None = None) -> AsyncIterator[AuditRecord]:
        where = where or RecordFilter()
        after = -1
        conditions = ["seq > ?"]
        args: list[object] = []
        for clause, value in (("time_us >= ?", where.since_us), ("time_us < ?", where.until_us),
                              ("tenant_id = ?", where.tenant_id)):
            if value is not None:
                conditions.append(clause)
                args.append(value)
        sql = f"{_SELECT} WHERE {' AND '.join(conditions)} ORDER BY seq LIMIT {PAGE}"
        while True:
            rows = await self._tx.fetch(sql, after, *args)
            for row in rows:
                yield record_from_row(row)
            if len(rows) < PAGE:
                return
            after = int(rows[-1][0])


class SQLAuditStore(ABC):
    @abstractmethod
    def _write(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction that holds the chain: no other appender or pruner runs until it ends."""

    @abstractmethod
    def _read(self) -> AbstractAsyncContextManager[Tx]:
        """A read-only transaction whose statements all see one snapshot."""

    @abstractmethod
    async def _delete_prefix(self, tx: Tx, point: ChainPoint, at: float) -> int: ...

    async def _head(self, tx: Tx) -> ChainPoint:
        return point_from_rows(await tx.fetch(HEAD_SQL)) or await self._anchor(tx) or GENESIS

    async def _anchor(self, tx: Tx) -> ChainPoint | None:
        return point_from_rows(await tx.fetch(ANCHOR_SQL))

    async def append(self, batch: Sequence[Unsealed]) -> list[AuditRecord]:
        if not batch:
            return []
        async with self._write() as tx:
            sealed = seal_batch(batch, await self._head(tx))
            await tx.executemany(INSERT_SQL, [record_params(r) for r in sealed])
        return sealed

    async def head(self) -> ChainPoint:
        async with self._read() as tx:
            return await self._head(tx)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[ChainView]:
        async with self._read() as tx:
            yield _View(tx, await self._anchor(tx))

    async def prune_through(self, point: ChainPoint, at: float) -> int:
        async with self._write() as tx:
            rows = await tx.fetch("SELECT hash FROM audit_records WHERE seq = ?", point.seq)
            if not rows or rows[0][0] != point.hash:
                raise PruneConflict(f"record {point.seq} is no longer the one planned: nothing pruned")
            return await self._delete_prefix(tx, point, at)

    async def add_hold(self, hold: Hold) -> Hold:
        async with self._write() as tx:
            await tx.execute(f"INSERT INTO audit_holds ({_HOLD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", hold.id,
                             hold.tenant_id, hold.created_at, hold.until, hold.reason, hold.released_at)
        return hold

    async def list_holds(self) -> list[Hold]:
        async with self._read() as tx:
            rows = await tx.fetch(f"SELECT {_HOLD_COLUMNS} FROM audit_holds ORDER BY created_at, id")
        return [_hold_from_row(r) for r in rows]

    async def release_hold(self, hold_id: str, at: float) -> Hold:
        async with self._write() as tx:
            await tx.execute("UPDATE audit_holds SET released_at = ? WHERE id = ? AND released_at IS NULL",
                             at, hold_id)
            rows = await tx.fetch(f"SELECT {_HOLD_COLUMNS} FROM audit_holds WHERE id = ?", hold_id)
        if not rows:
            raise HoldNotFound(f"no legal hold {hold_id!r}")
        return _hold_from_row(rows[0])
