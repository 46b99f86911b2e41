"""The audit stores, on SQLite and PostgreSQL: a gapless chain, tampering through raw SQL named by
verification, append-only triggers, retention pruning with anchors and legal holds, exports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from passerelle.audit.base import Hold, HoldNotFound, PruneConflict, RecordFilter
from passerelle.audit.chain import GENESIS, ChainPoint, Verdict, averify
from passerelle.audit.export import export, verify_file
from passerelle.audit.records import AuditRecord, unsealed
from passerelle.audit.retention import DAY, ChainBroken, plan_prune, prune
from passerelle.audit.sql_store import SQLAuditStore
from tests.audit.conftest import T0, Raw, event


async def fill(store: SQLAuditStore, n: int, first: int = 1, **kw: object) -> list[AuditRecord]:
    return await store.append([unsealed(event(i, **kw), store_content=False) for i in range(first, first + n)])


async def check(store: SQLAuditStore) -> Verdict:
    async with store.snapshot() as view:
        return await averify(view.records(), view.anchor or GENESIS)


async def records(store: SQLAuditStore, where: RecordFilter | None = None) -> list[AuditRecord]:
    async with store.snapshot() as view:
        return [r async for r in view.records(where)]


async def test_chain_is_gapless_and_verifies(audit_store: SQLAuditStore) -> None:
    assert await audit_store.head() == GENESIS
    first = await fill(audit_store, 3)
    second = await fill(audit_store, 2500, first=4)  # more than one page
    assert [r.seq for r in first + second] == list(range(1, 2504))
    assert second[0].prev_hash == first[-1].hash
    stored = await records(audit_store)
    assert stored == first + second  # JSON columns and types come back exactly as sealed
    verdict = await check(audit_store)
    assert verdict.ok and verdict.records == 2503 and verdict.head == await audit_store.head()


async def test_concurrent_appenders_share_one_chain(audit_store: SQLAuditStore) -> None:
    await asyncio.gather(*(fill(audit_store, 50, first=1000 * k) for k in range(1, 5)))
    assert [r.seq for r in await records(audit_store)] == list(range(1, 201))
    assert (await check(audit_store)).ok


async def test_edited_field_is_named(audit_store: SQLAuditStore) -> None:
    await fill(audit_store, 10)
    await Raw(audit_store).execute("UPDATE audit_records SET input_tokens = 1 WHERE seq = 7")
    b = (await check(audit_store)).broken
    assert b is not None and (b.seq, b.request_id, b.kind) == (7, "req-00007", "edited")


async def test_deleted_record_is_named(audit_store: SQLAuditStore) -> None:
    await fill(audit_store, 10)
    await Raw(audit_store).execute("DELETE FROM audit_records WHERE seq = 4")
    b = (await check(audit_store)).broken
    assert b is not None and (b.seq, b.kind) == (4, "deleted") and "req-00005" in b.detail


async def test_swapped_records_are_named(audit_store: SQLAuditStore) -> None:
    await fill(audit_store, 10)
    await Raw(audit_store).swap(3, 8)
    b = (await check(audit_store)).broken
    assert b is not None and (b.seq, b.request_id, b.kind) == (3, "req-00008", "reordered")


async def test_triggers_refuse_update_and_delete(audit_store: SQLAuditStore) -> None:
    await fill(audit_store, 3)
    for sql in ("UPDATE audit_records SET status = 500 WHERE seq = 2", "DELETE FROM audit_records WHERE seq = 1"):
        with pytest.raises(Exception, match="append-only"):
            async with audit_store._write() as tx:
                await tx.execute(sql)
    assert (await check(audit_store)).ok


async def test_content_none_stores_nothing(audit_store: SQLAuditStore) -> None:
    await audit_store.append([unsealed(event(1, content="secret text"), store_content=False),
                              unsealed(event(2, content=None), store_content=True)])
    async with audit_store._read() as tx:
        rows = await tx.fetch("SELECT content FROM audit_records ORDER BY seq")
    assert [r[0] for r in rows] == [None, None]


# -- retention --------------------------------------------------------------------------------------------

async def test_prune_leaves_an_anchor_and_the_chain_still_verifies(audit_store: SQLAuditStore) -> None:
    await fill(audit_store, 5)  # T0+1 .. T0+5, default retention
    await fill(audit_store, 3, first=6, retention_days=400)  # a pack floor above the default
    now = T0 + 366 * DAY
    plan = await prune(audit_store, now, 365, dry_run=True)
    assert (plan.records, plan.kept_from, plan.reason) == (5, 6, "retention")
    assert len(await records(audit_store)) == 8  # a dry run deletes nothing
    plan = await prune(audit_store, now, 365)
    assert plan.through is not None and plan.through.seq == 5
    assert [r.seq for r in await records(audit_store)] == [6, 7, 8]
    verdict = await check(audit_store)
    assert verdict.ok and verdict.start == plan.through
    await fill(audit_store, 2, first=9)  # appends continue from the head
    assert [r.seq for r in await records(audit_store)] == [6, 7, 8, 9, 10] and (await check(audit_store)).ok
    await Raw(audit_store).execute("DELETE FROM audit_records WHERE seq = 6")  # other deletions still show
    b = (await check(audit_store)).broken
    assert b is not None and (b.seq, b.kind) == (6, "deleted")


async def test_prune_everything_then_append(audit_store: SQLAuditStore) -> None:
    last = (await fill(audit_store, 4))[-1]
    await prune(audit_store, T0 + 400 * DAY, 365)
    assert await records(audit_store) == [] and await audit_store.head() == ChainPoint(4, last.hash)
    appended = await fill(audit_store, 1, first=5)
    assert appended[0].seq == 5 and appended[0].prev_hash == last.hash and (await check(audit_store)).ok


async def test_legal_hold_keeps_the_tenant_and_the_prefix_before_it(audit_store: SQLAuditStore) -> None:
    await fill(audit_store, 3)
    await fill(audit_store, 1, first=4, tenant_id="globex")
    await fill(audit_store, 3, first=5)
    now = T0 + 400 * DAY
    hold = await audit_store.add_hold(Hold("hold_1", "globex", now - 10, None, "litigation 2026-17"))
    plan = await prune(audit_store, now, 365)
    assert (plan.records, plan.kept_from, plan.reason) == (3, 4, "hold")
    assert [r.seq for r in await records(audit_store)] == [4, 5, 6, 7]
    expiring = await audit_store.add_hold(Hold("hold_2", "globex", now, now + DAY, "until tomorrow"))
    await audit_store.release_hold(hold.id, now + 1)
    assert (await plan_prune(audit_store, now + 2, 365)).reason == "hold"  # hold_2 still runs
    assert (await plan_prune(audit_store, now + 2 * DAY, 365)).records == 4  # it ended
    assert [h.id for h in await audit_store.list_holds()] == ["hold_1", "hold_2"]
    assert not (await audit_store.list_holds())[0].active(now + 2) and expiring.active(now + 2)
    with pytest.raises(HoldNotFound):
        await audit_store.release_hold("hold_missing", now)


async def test_prune_refuses_a_broken_prefix(audit_store: SQLAuditStore) -> None:
    await fill(audit_store, 5)
    await Raw(audit_store).execute("UPDATE audit_records SET tenant_id = 'other' WHERE seq = 2")
    with pytest.raises(ChainBroken, match="record 2"):
        await prune(audit_store, T0 + 400 * DAY, 365)
    assert len(await records(audit_store)) == 5


async def test_prune_through_a_moved_record_is_refused(audit_store: SQLAuditStore) -> None:
    await fill(audit_store, 3)
    with pytest.raises(PruneConflict):
        await audit_store.prune_through(ChainPoint(2, "e" * 64), T0)
    assert len(await records(audit_store)) == 3


# -- exports ----------------------------------------------------------------------------------------------

async def test_export_then_verify_the_file(audit_store: SQLAuditStore, tmp_path: Path) -> None:
    await fill(audit_store, 6)
    await fill(audit_store, 4, first=7, tenant_id="globex")
    await prune(audit_store, T0 + 365 * DAY + 2.5, 365)  # records 1 and 2 go
    path = tmp_path / "audit.jsonl"
    with path.open("w") as out:
        assert await export(audit_store, RecordFilter(), out) == 8
    verdict = verify_file(path)
    assert verdict.ok and verdict.records == 8 and verdict.start.seq == 2
    lines = path.read_text().splitlines()
    record = json.loads(lines[3])
    record["status"] = 500
    path.write_text("\n".join([*lines[:3], json.dumps(record), *lines[4:]]) + "\n")
    b = verify_file(path).broken
    assert b is not None and (b.seq, b.kind) == (5, "edited")
    path.write_text("\n".join([*lines[:3], *lines[4:]]) + "\n")
    b = verify_file(path).broken
    assert b is not None and (b.seq, b.kind) == (5, "deleted")


async def test_filtered_export(audit_store: SQLAuditStore, tmp_path: Path) -> None:
    await fill(audit_store, 4)
    await fill(audit_store, 4, first=5, tenant_id="globex")
    path = tmp_path / "globex.jsonl"
    with path.open("w") as out:
        count = await export(audit_store, RecordFilter(since_us=int((T0 + 6) * 1e6), tenant_id="globex"), out)
    assert count == 3
    assert json.loads(path.read_text().splitlines()[0])["complete"] is False
    assert verify_file(path).ok
