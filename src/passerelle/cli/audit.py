"""``passerelle audit verify|head|export|prune|hold``: the audit chain, from the command line.

Exit codes: 0 done (verify: the chain is intact), 1 refused (invalid input, a prune of a broken chain) or,
for verify, broken (the first broken record is named), 2 bad arguments, bad config, or the store or the
export file cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TextIO

from passerelle.admin.validation import check_text, parse_time
from passerelle.audit.base import AuditStore, Hold, HoldNotFound, PruneConflict, RecordFilter
from passerelle.audit.chain import GENESIS, ChainPoint, Verdict, averify
from passerelle.audit.export import ExportFileError, export, verify_file
from passerelle.audit.retention import ChainBroken, prune
from passerelle.cli.options import add_store_options, report_error
from passerelle.cli.serve import load, resolve_home
from passerelle.config import Config
from passerelle.stores.sql_common import check_tenant_id

Output = tuple[Any, str, int]  # what --json prints, the text people read, the exit code
Command = Callable[[AuditStore, Config, argparse.Namespace], Awaitable[Output]]


class Refused(Exception):
    """Bad input, or an operation the chain refuses: the message says which (exit 1)."""

    kind = "invalid_request_error"


class Missing(Refused):
    """The named legal hold does not exist (exit 1)."""

    kind = "not_found_error"


def _when(what: str, value: str | None, *, future: bool = False) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_time(what, value, now=time.time(), future=future)
    except ValueError as exc:
        raise Refused(str(exc)) from None


def _expect(value: str) -> ChainPoint:
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError(f"expected SEQ:HASH (as `passerelle audit head` prints), got {value!r}")
    return ChainPoint(int(seq), digest.lower())


def _verdict_text(v: Verdict) -> str:
    where = f"{v.records} records after seq {v.start.seq}" if v.start.seq else f"{v.records} records"
    if v.broken is None:
        return f"audit chain intact: {where}; head {v.head.seq}:{v.head.hash}"
    b = v.broken
    request = f" (request {b.request_id})" if b.request_id else ""
    return f"audit chain BROKEN at record {b.seq}{request}: {b.kind}: {b.detail}"


def verify_export(a: argparse.Namespace) -> int:
    try:
        verdict = verify_file(Path(a.file), a.expect)
    except ExportFileError as exc:
        print(f"passerelle: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(verdict.to_json(), indent=2) if a.json else _verdict_text(verdict))
    return 0 if verdict.ok else 1


async def verify_chain(store: AuditStore, config: Config, a: argparse.Namespace) -> Output:
    async with store.snapshot() as view:
        verdict = await averify(view.records(), view.anchor or GENESIS, a.expect)
    return verdict.to_json(), _verdict_text(verdict), 0 if verdict.ok else 1


async def head(store: AuditStore, config: Config, a: argparse.Namespace) -> Output:
    point = await store.head()
    return {"seq": point.seq, "hash": point.hash}, f"{point.seq}:{point.hash}", 0


async def export_records(store: AuditStore, config: Config, a: argparse.Namespace) -> Output:
    since, until = _when("--since", a.since), _when("--until", a.until)
    if a.tenant is not None:
        _tenant(a.tenant)
    where = RecordFilter(None if since is None else round(since * 1_000_000),
                         None if until is None else round(until * 1_000_000), a.tenant)
    target: Any = nullcontext(sys.stdout) if a.output in (None, "-") else _open_output(a.output)
    with target as out:
        count = await export(store, where, out)
    summary = {"records": count, "file": a.output, "complete": where.complete}
    # With stdout as the export, the summary goes to stderr so that stdout stays valid JSON Lines.
    return summary, f"exported {count} records" + (f" to {a.output}" if a.output not in (None, "-") else ""), 0


def _open_output(name: str) -> TextIO:
    try:
        return Path(name).open("w", encoding="utf-8")
    except OSError as exc:
        raise Refused(f"cannot write {name}: {exc.strerror}") from None


async def prune_records(store: AuditStore, config: Config, a: argparse.Namespace) -> Output:
    now = _when("--now", a.now) or time.time()
    try:
        plan = await prune(store, now, config.audit.retention_days, dry_run=a.dry_run)
    except (ChainBroken, PruneConflict) as exc:
        raise Refused(str(exc)) from None
    view = {"dry_run": a.dry_run, "records": plan.records,
            "through": None if plan.through is None else {"seq": plan.through.seq, "hash": plan.through.hash},
            "kept_from": plan.kept_from, "kept_because": plan.reason}
    verb = "would prune" if a.dry_run else "pruned"
    text = f"{verb} {plan.records} records" + (f" (through seq {plan.through.seq})" if plan.through else "")
    if plan.kept_from is not None:
        text += f"; record {plan.kept_from} and later stay ({plan.reason})"
    return view, text, 0


def _tenant(value: str) -> str:
    try:
        return check_tenant_id(value)
    except ValueError as exc:
        raise Refused(str(exc)) from None


def _hold_view(h: Hold) -> dict[str, Any]:
    return {"id": h.id, "tenant": h.tenant_id, "created_at": h.created_at, "until": h.until, "reason": h.reason,
            "released_at": h.released_at, "active": h.active(time.time())}


async def hold_add(store: AuditStore, config: Config, a: argparse.Namespace) -> Output:
    try:
        reason = check_text("--reason", a.reason, required=True)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    now = time.time()
    hold = Hold(f"hold_{secrets.token_hex(6)}", _tenant(a.tenant), now, _when("--until", a.until, future=True),
                reason)
    await store.add_hold(hold)
    return _hold_view(hold), f"legal hold {hold.id} on tenant {hold.tenant_id}", 0


async def hold_list(store: AuditStore, config: Config, a: argparse.Namespace) -> Output:
    views = [_hold_view(h) for h in await store.list_holds()]
    lines = [f"{v['id']}  {v['tenant']}  {'active' if v['active'] else 'inactive'}  until {v['until'] or '-'}  "
             f"{v['reason']}" for v in views]
    return views, "\n".join(lines) or "no legal holds", 0


async def hold_release(store: AuditStore, config: Config, a: argparse.Namespace) -> Output:
    try:
        hold = await store.release_hold(a.hold_id, time.time())
    except HoldNotFound as exc:
        raise Missing(str(exc)) from None
    return _hold_view(hold), f"released legal hold {hold.id}", 0


async def _run(command: Command, a: argparse.Namespace) -> int:
    config = load(a)
    if config is None:
        return 2
    from passerelle.audit.writer import open_audit_store

    try:
        store = await open_audit_store(config, resolve_home(a, config))
    except Exception as exc:
        print(f"passerelle: cannot open the audit store: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        payload, text, code = await command(store, config, a)
    except Refused as exc:
        report_error(a.json, exc.kind, str(exc))
        return 1
    finally:
        await store.aclose()
    to_stderr = command is export_records and a.output in (None, "-")
    print(json.dumps(payload, indent=2) if a.json else text, file=sys.stderr if to_stderr else sys.stdout)
    return code


def run(a: argparse.Namespace) -> int:
    if a.command_func is verify_chain and a.file:
        return verify_export(a)
    return asyncio.run(_run(a.command_func, a))


def _common(p: argparse.ArgumentParser, func: Command) -> argparse.ArgumentParser:
    add_store_options(p)
    p.set_defaults(func=run, command_func=func)
    return p


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("audit", help="verify, export and prune the audit chain; legal holds").add_subparsers(
        dest="action", required=True)
    p = _common(g.add_parser("verify", help="walk the chain; exit 1 naming the first broken record"), verify_chain)
    p.add_argument("--file", help="verify a JSON Lines export instead of the store")
    p.add_argument("--expect", metavar="SEQ:HASH", type=_expect,
                   help="a head kept elsewhere: detects a truncated chain")
    _common(g.add_parser("head", help="print the newest record's seq:hash (keep it elsewhere)"), head)
    p = _common(g.add_parser("export", help="write records as JSON Lines (verifiable with verify --file)"),
                export_records)
    p.add_argument("--since", help="a duration back from now (30d, 12h), an ISO date or datetime, or unix seconds")
    p.add_argument("--until", help="exclusive end, same forms as --since")
    p.add_argument("--tenant")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p = _common(g.add_parser("prune", help="delete records past their retention, oldest first"), prune_records)
    p.add_argument("--dry-run", action="store_true", help="say what would be pruned, delete nothing")
    p.add_argument("--now", help="the time to prune at (ISO date or datetime, or unix seconds; default: now)")
    h = g.add_parser("hold", help="legal holds: keep every record of a tenant").add_subparsers(
        dest="hold_action", required=True)
    p = _common(h.add_parser("add"), hold_add)
    p.add_argument("--tenant", required=True)
    p.add_argument("--until", help="end of the hold (a duration from now, ISO date or datetime); default: release")
    p.add_argument("--reason", required=True)
    _common(h.add_parser("list"), hold_list)
    _common(h.add_parser("release"), hold_release).add_argument("hold_id")
