"""Retention: delete the oldest records once every one of them is past its retention.

A record stays ``max(audit.retention_days, record.retention_days)`` days (the record's own value is
its packs' floor, e.g. 365 for PCI DSS), and for as long as a legal hold covers its tenant.  Only a
prefix of the chain is ever removed: pruning stops at the first record that must stay, so a hold
also keeps everything after the held record.  The prefix is verified before it goes (deleting a
tampered prefix would destroy the evidence), and the last removed record's seq and hash become the
anchor that verification starts from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from passerelle.audit.base import AuditStore, ChainView
from passerelle.audit.chain import GENESIS, ChainPoint, Verdict, averify
from passerelle.audit.records import AuditRecord

DAY = 86_400


class ChainBroken(RuntimeError):
    """The prefix to prune does not verify: nothing is deleted."""

    def __init__(self, verdict: Verdict) -> None:
        assert verdict.broken is not None
        super().__init__(f"the chain is broken at record {verdict.broken.seq} ({verdict.broken.kind}): "
                         f"{verdict.broken.detail}; nothing pruned")
        self.verdict = verdict


@dataclass(frozen=True, slots=True)
class PrunePlan:
    through: ChainPoint | None  # the last record to delete; None: nothing to delete
    records: int  # how many
    kept_from: int | None  # the first record that stays (None: the chain would be empty)
    reason: str | None  # why it stays: "retention" or "hold"


def expires_at(record: AuditRecord, default_days: int) -> float:
    return record.time_us / 1_000_000 + max(default_days, record.retention_days) * DAY


async def plan_prune(store: AuditStore, now: float, default_days: int) -> PrunePlan:
    held = {h.tenant_id for h in await store.list_holds() if h.active(now)}
    stop: list[tuple[int, str]] = []

    async def prefix(view: ChainView) -> AsyncIterator[AuditRecord]:
        async for r in view.records():
            if r.tenant_id in held or now < expires_at(r, default_days):
                stop.append((r.seq, "hold" if r.tenant_id in held else "retention"))
                return
            yield r

    async with store.snapshot() as view:
        start = view.anchor or GENESIS
        verdict = await averify(prefix(view), start)
    if not verdict.ok:
        raise ChainBroken(verdict)
    kept, reason = stop[0] if stop else (None, None)
    through = verdict.head if verdict.records else None
    return PrunePlan(through, verdict.records, kept, reason)


async def prune(store: AuditStore, now: float, default_days: int, dry_run: bool = False) -> PrunePlan:
    """Plan, then (unless ``dry_run``) delete the planned prefix and leave its anchor."""
    plan = await plan_prune(store, now, default_days)
    if plan.through is not None and not dry_run:
        await store.prune_through(plan.through, now)
    return plan
