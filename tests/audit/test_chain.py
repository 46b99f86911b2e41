"""The verifier on chains built in memory: each kind of tampering is named, with the right record."""

from __future__ import annotations

import dataclasses

from passerelle.audit.chain import GENESIS, ChainPoint, verify
from passerelle.audit.records import AuditRecord, unsealed
from tests.audit.conftest import event


def chain(n: int, start: ChainPoint = GENESIS) -> list[AuditRecord]:
    out, point = [], start
    for i in range(start.seq + 1, start.seq + n + 1):
        r = unsealed(event(i), store_content=False).seal(i, point.hash)
        out.append(r)
        point = ChainPoint(r.seq, r.hash)
    return out


def renumber(records: list[AuditRecord], first: int) -> list[AuditRecord]:
    return [dataclasses.replace(r, seq=first + i) for i, r in enumerate(records)]


def test_intact_chain() -> None:
    records = chain(20)
    verdict = verify(records)
    assert verdict.ok and verdict.records == 20 and verdict.head == ChainPoint(20, records[-1].hash)
    assert verify([]).ok


def test_edited_field_is_named() -> None:
    records = chain(10)
    records[4] = dataclasses.replace(records[4], output_tokens=1)
    b = verify(records).broken
    assert b is not None and (b.seq, b.request_id, b.kind) == (5, "req-00005", "edited")


def test_edited_and_rehashed_is_exposed_by_its_successor() -> None:
    records = chain(10)
    forged = dataclasses.replace(records[4], decision="blocked")
    records[4] = dataclasses.replace(forged, hash=forged.computed_hash())
    b = verify(records).broken
    assert b is not None and (b.seq, b.kind) == (5, "edited")


def test_deleted_record_is_named() -> None:
    records = chain(10)
    del records[3]
    b = verify(records).broken
    assert b is not None and (b.seq, b.request_id, b.kind) == (4, None, "deleted")
    assert "record 5" in b.detail


def test_first_record_deleted() -> None:
    b = verify(chain(5)[1:]).broken
    assert b is not None and (b.seq, b.kind) == (1, "deleted")


def test_deleted_and_renumbered_is_named() -> None:
    records = chain(10)
    records = records[:3] + renumber(records[4:], 4)
    b = verify(records).broken
    assert b is not None and (b.seq, b.kind) == (4, "deleted") and "sealed at 5" in b.detail


def test_swapped_records_are_named() -> None:
    records = chain(10)
    records[3], records[4] = renumber([records[4]], 4)[0], renumber([records[3]], 5)[0]
    b = verify(records).broken
    assert b is not None and (b.seq, b.request_id, b.kind) == (4, "req-00005", "reordered")


def test_lines_out_of_order() -> None:
    records = chain(10)
    records[3], records[4] = records[4], records[3]
    b = verify(records).broken
    assert b is not None and b.kind == "reordered" and b.seq == 5


def test_starts_from_an_anchor() -> None:
    full = chain(10)
    anchor = ChainPoint(4, full[3].hash)
    assert verify(full[4:], anchor).ok
    b = verify(full[5:], anchor).broken  # record 5 deleted after the prune
    assert b is not None and (b.seq, b.kind) == (5, "deleted")
    b = verify(full[4:], ChainPoint(4, "e" * 64)).broken  # the anchor was altered
    assert b is not None and (b.seq, b.kind) == (5, "deleted")


def test_truncation_needs_a_head_kept_elsewhere() -> None:
    records = chain(10)
    kept = ChainPoint(10, records[-1].hash)
    assert verify(records[:8]).ok  # the chain alone cannot tell
    b = verify(records[:8], expect=kept).broken
    assert b is not None and b.kind == "truncated"
    assert verify(records, expect=kept).ok
    b = verify(records, expect=ChainPoint(10, "e" * 64)).broken
    assert b is not None and (b.seq, b.kind) == (10, "edited")
