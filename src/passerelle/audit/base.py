"""The audit store's narrow interface, implemented by SQLite (embedded) and PostgreSQL (scale-out)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from passerelle.audit.chain import ChainPoint
from passerelle.audit.records import AuditRecord, Unsealed


class HoldNotFound(LookupError):
    """No legal hold has this id."""


class PruneConflict(RuntimeError):
    """The chain changed under a prune (another prune ran): nothing was deleted."""


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold: every record of the tenant stays, and with it the chain before it."""

    id: str
    tenant_id: str
    created_at: float
    until: float | None  # None: until released
    reason: str
    released_at: float | None = None

    def active(self, now: float) -> bool:
        return self.released_at is None and (self.until is None or now < self.until)


@dataclass(frozen=True, slots=True)
class RecordFilter:
    since_us: int | None = None  # time_us >= since_us
    until_us: int | None = None  # time_us < until_us
    tenant_id: str | None = None

    @property
    def complete(self) -> bool:
        return self.since_us is None and self.until_us is None and self.tenant_id is None


class ChainView(Protocol):
    """A consistent snapshot of the chain: the anchor and the records agree with each other."""

    anchor: ChainPoint | None  # the last prune's; None when nothing was ever pruned

    def records(self, where: RecordFilter | None = None) -> AsyncIterator[AuditRecord]:
        """Records in seq order, read page by page."""
        ...


class AuditStore(Protocol):
    async def ping(self) -> None: ...
    async def aclose(self) -> None: ...

    async def append(self, batch: Sequence[Unsealed]) -> list[AuditRecord]:
        """Seal and commit the batch at the head of the chain, in one transaction that excludes every
        other appender (all processes, all instances)."""
        ...

    async def head(self) -> ChainPoint:
        """The newest record, else the last prune's anchor, else genesis."""
        ...

    def snapshot(self) -> AbstractAsyncContextManager[ChainView]: ...

    async def prune_through(self, point: ChainPoint, at: float) -> int:
        """Delete records up to ``point.seq`` (which must still have ``point.hash``) and leave ``point`` as
        the anchor; returns how many were deleted.  ``PruneConflict`` if the chain moved."""
        ...

    async def add_hold(self, hold: Hold) -> Hold: ...
    async def list_holds(self) -> list[Hold]: ...
    async def release_hold(self, hold_id: str, at: float) -> Hold: ...  # HoldNotFound; idempotent
