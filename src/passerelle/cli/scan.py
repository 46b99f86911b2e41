"""``passerelle scan``: find sensitive data in UTF-8 text; prints types and positions, never the values.

    passerelle scan [--packs finance,health,defense,gdpr] [--json] [FILE|-]
    passerelle scan --jsonl [FILE|-]      one {"id", "text"} object a line in, one {"id", "findings"} out

Scripts and audits depend on this interface: keep it stable.  Offsets are Python string offsets into
the input (``text[start:end]`` is the value).  Exit codes: 0 scanned (findings or not), 2 unreadable
input or unknown pack.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from passerelle.cli.options import report_error

if TYPE_CHECKING:  # the engine is imported when the command runs: other commands do not pay for it
    from passerelle.compliance import Finding

PACK_NAMES = "finance,health,defense,gdpr"  # compliance.policy.SHIPPED_PACKS (a test holds them equal)
JSONL_BATCH = 4096  # records per Engine.scan_many call of --jsonl


class InputError(Exception):
    """Unreadable input; the message names the place, never the content."""


def pack_types(packs: str | None) -> frozenset[str] | None:
    """Every entity type the named shipped packs list (the ones they allow too: a scan reports, the gateway
    decides); None (every detector) without --packs."""
    if packs is None:
        return None
    from passerelle.compliance.policy import SHIPPED_PACKS, load_pack

    names = [name.strip() for name in packs.split(",") if name.strip()]
    unknown = [name for name in names if name not in SHIPPED_PACKS]
    if unknown or not names:
        raise InputError(f"unknown pack {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(SHIPPED_PACKS)}")
    return frozenset().union(*(load_pack(name).actions for name in names))


def finding_view(f: Finding) -> dict[str, Any]:
    return {"type": f.type, "subtype": f.subtype, "start": f.start, "end": f.end, "score": f.score}


def masked(f: Finding, text: str) -> str:
    """At most what PCI DSS allows on screen: a card's first and last four digits.  Nothing of others."""
    if f.type != "CREDIT_CARD":
        return ""
    value = text[f.start:f.end]
    digit_positions = [i for i, c in enumerate(value) if c.isdigit()]
    shown = set(digit_positions[:4] + digit_positions[-4:])
    return "".join(c if i in shown or not c.isdigit() else "*" for i, c in enumerate(value))


def report(findings: list[Finding], text: str) -> str:
    if not findings:
        return "no findings"
    rows = [("TYPE", "SUBTYPE", "START", "END", "SCORE", "PREVIEW")]
    rows += [(f.type, f.subtype or "-", str(f.start), str(f.end), f"{f.score:.2f}", masked(f, text))
             for f in findings]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    count = len(findings)
    return "\n".join([*lines, f"{count} finding{'s' if count != 1 else ''}"])


def _read(source: str) -> str:
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{'stdin' if source == '-' else source} is not UTF-8 (byte {exc.start})") from None


def _records(content: str) -> Iterator[tuple[Any, str]]:
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"line {number}: not JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise InputError(f'line {number}: expected an object with a "text" string')
        yield record.get("id"), record["text"]


def run(args: argparse.Namespace) -> int:
    try:
        types = pack_types(args.packs)
        content = _read(args.file)
        records = list(_records(content)) if args.jsonl else None
    except InputError as exc:  # exit 2 as before; a program asking for JSON gets the admin API's error object
        if args.json or args.jsonl:
            report_error(True, "invalid_request_error", f"scan: {exc}")
        else:
            print(f"passerelle scan: {exc}", file=sys.stderr)
        return 2
    from passerelle.compliance import Engine
    from passerelle.compliance.detectors import default_detectors

    engine = Engine(default_detectors())
    out = sys.stdout
    if records is not None:
        for at in range(0, len(records), JSONL_BATCH):  # in batches: Engine.scan_many's phases stay warm in the caches
            batch = records[at:at + JSONL_BATCH]
            for (record_id, _), found in zip(batch, engine.scan_many([text for _, text in batch], types), strict=True):
                findings = [finding_view(f) for f in found]
                out.write(json.dumps({"id": record_id, "findings": findings}, ensure_ascii=False) + "\n")
        return 0
    found = engine.scan(content, types)
    if args.json:
        out.write(json.dumps({"findings": [finding_view(f) for f in found]}) + "\n")
    else:
        out.write(report(found, content) + "\n")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("scan", help="find sensitive data in UTF-8 text (types and positions, never values)")
    p.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="the text to scan (default: stdin)")
    p.add_argument("--packs", help="only the types these packs list, comma-separated: " + PACK_NAMES
                   + " (default: every detector)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help='print {"findings": [{type, subtype, start, end, score}]}')
    output.add_argument("--jsonl", action="store_true",
                        help='read {"id", "text"} JSON Lines, write one {"id", "findings"} line each')
    p.set_defaults(func=run)
