"""Walk a chain and name its first break.

A record is intact when its hash recomputes from its own fields and ``prev_hash``; the chain is
intact when, from the start point (genesis or the last prune's anchor), seqs follow each other with
no gap and every ``prev_hash`` is the hash of the record before.  When something is wrong the
verifier tells what: ``edited`` (a record's fields no longer match its hash, or a record was rewritten
with a recomputed hash, which its successor still exposes), ``deleted`` (a seq is missing, or an
intact record lost its predecessor and was renumbered) or ``reordered`` (an intact record sits at
another position than the one it was sealed at).  Removing the newest records leaves a shorter
chain that is still consistent: compare the head with one kept elsewhere (``expect``).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from passerelle.audit.records import GENESIS_HASH, AuditRecord

Kind = Literal["edited", "deleted", "reordered", "truncated"]
WINDOW = 1024  # how far before and after a broken record the verifier looks for where it came from


@dataclass(frozen=True, slots=True)
class ChainPoint:
    seq: int
    hash: str


GENESIS = ChainPoint(0, GENESIS_HASH)


@dataclass(frozen=True, slots=True)
class Break:
    seq: int
    request_id: str | None  # None when the record is gone
    kind: Kind
    detail: str


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    records: int  # records checked
    start: ChainPoint  # genesis or the prune anchor the walk started from
    head: ChainPoint  # the last record checked (the start when there is none)
    broken: Break | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "start": asdict(self.start), "head": asdict(self.head),
                "break": None if self.broken is None else asdict(self.broken)}


class _Walk:
    def __init__(self, start: ChainPoint) -> None:
        self.start = start
        self.point = start
        self.last: AuditRecord | None = None
        self.count = 0
        self.recent: deque[AuditRecord] = deque(maxlen=WINDOW)

    def check(self, r: AuditRecord, ahead: Iterator[AuditRecord]) -> Break | None:
        expected = self.point.seq + 1
        if r.seq != expected:
            return self._misplaced(r, expected, ahead)
        intact = r.computed_hash() == r.hash
        if intact and r.prev_hash == self.point.hash:
            return None
        if intact:
            if self.last is not None:
                return Break(self.last.seq, self.last.request_id, "edited",
                             f"record {self.last.seq} was rewritten with a recomputed hash: record {r.seq} "
                             "still links to the original")
            return Break(r.seq, r.request_id, "deleted",
                         f"record {r.seq} does not link to the start of the chain ({self.start.seq}): the "
                         "records before it were removed or the prune anchor was altered")
        return self._broken(r, list(itertools.islice(ahead, WINDOW)))

    def _misplaced(self, r: AuditRecord, expected: int, ahead: Iterator[AuditRecord]) -> Break:
        later = list(itertools.islice(ahead, WINDOW))
        if r.seq < expected or any(expected <= x.seq < r.seq for x in later):
            return Break(r.seq, r.request_id, "reordered", f"record {r.seq} comes where record {expected} belongs")
        missing = str(expected) if r.seq == expected + 1 else f"{expected} to {r.seq - 1}"
        return Break(expected, None, "deleted", f"record {missing} is missing before record {r.seq} "
                                                f"(request {r.request_id})")

    def _broken(self, r: AuditRecord, later: list[AuditRecord]) -> Break:
        """``r`` is in place but does not recompute: edited, or an intact record moved here."""
        if r.prev_hash != self.point.hash:
            lo, hi = max(1, r.seq - WINDOW), r.seq + WINDOW
            origin = next((s for s in range(lo, hi) if s != r.seq and r.computed_hash(s) == r.hash), None)
            if origin is not None:
                known = {x.hash for x in itertools.chain(self.recent, later)} | {self.start.hash}
                if r.prev_hash in known:
                    return Break(r.seq, r.request_id, "reordered",
                                 f"record {r.seq} holds the record sealed at {origin}")
                return Break(r.seq, r.request_id, "deleted",
                             f"record {r.seq} is the record sealed at {origin}: the record before it was removed "
                             "and the later ones renumbered")
        return Break(r.seq, r.request_id, "edited", f"record {r.seq} does not match its hash")

    def accept(self, r: AuditRecord) -> None:
        self.point = ChainPoint(r.seq, r.hash)
        self.last = r
        self.recent.append(r)
        self.count += 1

    def verdict(self, broken: Break | None) -> Verdict:
        return Verdict(broken is None, self.count, self.start, self.point, broken)


def _expectation(walk: _Walk, expect: ChainPoint | None, seen: dict[int, str]) -> Break | None:
    if expect is None or expect.seq <= walk.start.seq:
        return None
    if expect.seq > walk.point.seq:
        return Break(expect.seq, None, "truncated", f"the chain ends at {walk.point.seq}, before the expected "
                                                     f"head {expect.seq}")
    if seen.get(expect.seq) != expect.hash:
        return Break(expect.seq, None, "edited", f"record {expect.seq} does not have the expected hash")
    return None


def verify(records: Iterable[AuditRecord], start: ChainPoint = GENESIS,
           expect: ChainPoint | None = None) -> Verdict:
    """Check records in seq order from ``start``; ``expect`` is a head kept elsewhere, to detect truncation."""
    walk = _Walk(start)
    seen: dict[int, str] = {}
    stream = iter(records)
    for r in stream:
        broken = walk.check(r, stream)
        if broken is not None:
            return walk.verdict(broken)
        walk.accept(r)
        if expect is not None and r.seq == expect.seq:
            seen[r.seq] = r.hash
    return walk.verdict(_expectation(walk, expect, seen))


async def averify(records: AsyncIterable[AuditRecord], start: ChainPoint = GENESIS,
                  expect: ChainPoint | None = None) -> Verdict:
    """``verify`` over a stream read page by page (never the whole chain in memory)."""
    walk = _Walk(start)
    seen: dict[int, str] = {}
    stream = aiter(records)
    async for r in stream:
        if r.seq != walk.point.seq + 1 or r.computed_hash() != r.hash or r.prev_hash != walk.point.hash:
            later = [x async for x in _take(stream, WINDOW)]
            return walk.verdict(walk.check(r, iter(later)))
        walk.accept(r)
        if expect is not None and r.seq == expect.seq:
            seen[r.seq] = r.hash
    return walk.verdict(_expectation(walk, expect, seen))


async def _take(stream: AsyncIterator[AuditRecord], n: int) -> AsyncIterator[AuditRecord]:
    for _ in range(n):
        try:
            yield await anext(stream)
        except StopAsyncIteration:
            return
