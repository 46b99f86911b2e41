"""JSON Lines exports that can be verified on their own.

Line 1 is a header: ``{"format": "passerelle-audit-export/1", "complete": bool, "start": {"seq", "hash"},
"filter": {...}}``; every other line is one record with all its fields, ``seq``, ``prev_hash`` and
``hash`` included.  A complete export (no filter) verifies like the database: from ``start`` (the prune
anchor or genesis), gapless and linked.  A filtered export (time range, tenant) holds a subset: each
record is checked against its own hash, and links between records that follow each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from passerelle.audit.base import AuditStore, RecordFilter
from passerelle.audit.chain import GENESIS, Break, ChainPoint, Verdict, verify
from passerelle.audit.records import AuditRecord

FORMAT = "passerelle-audit-export/1"


class ExportFileError(ValueError):
    """The file is not a Passerelle audit export; the message says where."""


async def export(store: AuditStore, where: RecordFilter, out: TextIO) -> int:
    """Write the header and the records; returns how many records."""
    count = 0
    async with store.snapshot() as view:
        start = view.anchor or GENESIS
        header = {"format": FORMAT, "complete": where.complete, "start": {"seq": start.seq, "hash": start.hash},
                  "filter": {"since_us": where.since_us, "until_us": where.until_us, "tenant_id": where.tenant_id}}
        out.write(json.dumps(header, separators=(",", ":")) + "\n")
        async for record in view.records(where):
            out.write(json.dumps(record.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n")
            count += 1
    return count


def _records(lines: Iterable[tuple[int, str]]) -> Iterator[AuditRecord]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            data: Any = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            yield AuditRecord.from_json(data)
        except (ValueError, TypeError) as exc:
            raise ExportFileError(f"line {number}: {exc}") from None


def _header(line: str) -> tuple[bool, ChainPoint]:
    try:
        header = json.loads(line)
        if header.get("format") != FORMAT:
            raise ValueError(f"expected format {FORMAT!r}")
        start = header["start"]
        return bool(header["complete"]), ChainPoint(int(start["seq"]), str(start["hash"]))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ExportFileError(f"line 1 is not an export header: {exc}") from None


def _verify_subset(records: Iterable[AuditRecord], start: ChainPoint) -> Verdict:
    prev: AuditRecord | None = None
    count = 0
    for r in records:
        if r.computed_hash() != r.hash:
            return Verdict(False, count, start, _point(prev, start), Break(r.seq, r.request_id, "edited",
                                                                          f"record {r.seq} does not match its hash"))
        if prev is not None and r.seq <= prev.seq:
            return Verdict(False, count, start, _point(prev, start),
                           Break(r.seq, r.request_id, "reordered", f"record {r.seq} comes after record {prev.seq}"))
        if prev is not None and r.seq == prev.seq + 1 and r.prev_hash != prev.hash:
            return Verdict(False, count, start, _point(prev, start),
                           Break(prev.seq, prev.request_id, "edited", f"record {prev.seq} was rewritten with a "
                                 f"recomputed hash: record {r.seq} still links to the original"))
        prev = r
        count += 1
    return Verdict(True, count, start, _point(prev, start))


def _point(record: AuditRecord | None, start: ChainPoint) -> ChainPoint:
    return start if record is None else ChainPoint(record.seq, record.hash)


def verify_file(path: Path, expect: ChainPoint | None = None) -> Verdict:
    """Verify an export; ``ExportFileError`` when it cannot be read as one."""
    try:
        with path.open(encoding="utf-8") as handle:
            numbered = enumerate(handle, start=1)
            first = next(numbered, None)
            if first is None:
                raise ExportFileError("the file is empty")
            complete, start = _header(first[1])
            if complete:
                return verify(_records(numbered), start, expect)
            return _verify_subset(_records(numbered), start)
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportFileError(f"cannot read {path}: {exc}") from None
