"""``passerelle aiact ...`` (the AI Act registers) and ``passerelle report ai-act`` (the evidence report):

    passerelle aiact purposes [--status S] [--limit N --offset N]
    passerelle aiact purpose put FILE.yaml|json        passerelle aiact purpose show ID
    passerelle aiact purpose status ID STATUS
    passerelle aiact bind KEY_ID PURPOSE [--annex-use 4(a)]     passerelle aiact unbind KEY_ID
    passerelle aiact suspend purpose|route TARGET --reason R    passerelle aiact resume purpose|route TARGET
    passerelle aiact supplier put FILE                 passerelle aiact suppliers [--dora FILE.csv]
    passerelle aiact risk add FILE                     passerelle aiact risk sign-off ID --reviewer NAME
    passerelle aiact risks [--purpose P] [--overdue]
    passerelle aiact incident add --purpose P --title T --severity S --occurred WHEN [--aware WHEN]
    passerelle aiact incidents [--purpose P]           passerelle aiact alerts
    passerelle report ai-act --purpose P --out FILE.html

Every command takes --config, --data-dir and --json.  Exit codes: 0 done, 1 refused (a rule, not found,
an invalid file), 2 bad arguments, bad config, or a store that cannot be opened.  A running gateway
sees a change within ``store.refresh_interval``; suspensions are audited as the admin API's are.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml

from passerelle.aiact.inputs import PurposeBody, RiskBody, SupplierBody, purpose_from
from passerelle.aiact.records import Risk, Supplier
from passerelle.aiact.registry import AiActRegistry
from passerelle.aiact.rules import RuleError, incident_state
from passerelle.cli.options import add_store_options, report_error
from passerelle.cli.serve import load, resolve_home
from passerelle.config import Config
from passerelle.stores.base import NotFound

Output = tuple[Any, str]  # what --json prints, the text people read
Command = Callable[[AiActRegistry, Config, Path, argparse.Namespace], Awaitable[Output]]
S = TypeVar("S", bound=msgspec.Struct)


class Refused(Exception):
    pass


def _read(path: str, kind: type[S]) -> S:
    try:
        raw = yaml.safe_load(Path(path).read_text())
        return msgspec.convert(raw, kind)
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror}") from None
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise Refused(f"{path}: {exc}") from None


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise Refused(f"cannot write {path}: {exc.strerror}") from None


def _when(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        raise Refused(f"expected an ISO date or datetime or unix seconds, got {value!r}") from None


def _plain(record: object) -> Any:
    return msgspec.to_builtins(record)


async def purposes(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    page = await reg.store.list_purposes(a.status, a.limit, a.offset)
    lines = [f"{p.id}  v{p.version}  {p.status}  {p.risk_class}{' ' + p.annex_category if p.annex_category else ''}"
             f"  {p.name}" for p in page.items]
    return ({"data": _plain(page.items), "total": page.total},
            "\n".join([*lines, f"({len(page.items)} of {page.total})"]))


async def purpose_put(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    p = await reg.put_purpose(purpose_from(_read(a.file, PurposeBody)), a.actor)
    return _plain(p), f"purpose {p.id} is at version {p.version} ({p.status})"


async def purpose_show(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    p = await reg.store.get_purpose(a.id)
    history = await reg.store.purpose_history(a.id)
    text = "\n".join([f"{k}: {v}" for k, v in _plain(p).items()] + ["history:"] + [
        f"  v{v.version}  {time.strftime('%Y-%m-%d %H:%M', time.gmtime(v.changed_at))}  {v.actor}  {v.purpose.status}"
        for v in history])
    return {**_plain(p), "history": _plain(history)}, text


async def purpose_status(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    p = await reg.set_status(a.id, a.status, a.actor)
    return _plain(p), f"purpose {p.id} is {p.status} (version {p.version})"


async def bind(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    b = await reg.bind_key(a.key_id, a.purpose, a.annex_use)
    return _plain(b), f"key {b.key_id} is bound to purpose {b.purpose_id}"


async def unbind(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    if not await reg.store.unbind_key(a.key_id):
        raise Refused(f"key {a.key_id} is bound to no purpose")
    return {"key_id": a.key_id, "unbound": True}, f"key {a.key_id} is unbound"


async def suspend(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    changed = await reg.suspend(a.kind, a.target, a.reason, a.actor)
    return ({"kind": a.kind, "target": a.target, "suspended": True, "changed": changed},
            f"{a.kind} {a.target} is suspended" + ("" if changed else " (it already was)"))


async def resume(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    changed = await reg.resume(a.kind, a.target, a.actor)
    return ({"kind": a.kind, "target": a.target, "suspended": False, "changed": changed},
            f"{a.kind} {a.target} is resumed" + ("" if changed else " (it was not suspended)"))


async def supplier_put(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    s = await reg.put_supplier(Supplier(**msgspec.to_builtins(_read(a.file, SupplierBody))))
    return _plain(s), f"supplier {s.provider} {s.model}: documents {'complete' if s.documented else 'missing'}"


async def suppliers(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    found = await reg.store.list_suppliers()
    if a.dora:
        from passerelle.aiact.dora import register_csv

        await asyncio.to_thread(_write, a.dora, register_csv(found))
    lines = [f"{s.provider}  {s.model}  {'documented' if s.documented else 'DOCUMENTS MISSING'}  "
             f"code of practice: {s.code_of_practice}" for s in found]
    return _plain(found), "\n".join(lines) or "the supplier register is empty"


async def risk_add(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    r = await reg.add_risk(Risk(id="", **msgspec.to_builtins(_read(a.file, RiskBody))))
    return _plain(r), f"risk {r.id} added to purpose {r.purpose_id} (score {r.score})"


async def risk_sign_off(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    r = await reg.sign_off_risk(a.id, a.reviewer)
    return _plain(r), f"risk {r.id} signed off by {r.signed_off_by}"


async def risks(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    found = await reg.overdue_risks() if a.overdue else await reg.store.list_risks(a.purpose)
    if a.overdue and a.purpose:
        found = [r for r in found if r.purpose_id == a.purpose]
    lines = [f"{r.id}  {r.purpose_id}  score {r.score}  residual {r.residual}  review {r.review_due}  "
             f"{'signed off by ' + r.signed_off_by if r.signed_off_by else 'NOT SIGNED OFF'}  {r.title}" for r in found]
    return _plain(found), "\n".join(lines) or "no risks"


async def incident_add(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    i = await reg.add_incident(a.purpose, a.title, a.severity, _when(a.occurred),
                               _when(a.aware) if a.aware else None, a.description)
    due = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(i.deadline))
    return _plain(i), f"incident {i.id}: report due by {due} (Art 73)"


async def incidents(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    now = time.time()
    found = await reg.store.list_incidents(a.purpose)
    lines = [f"{i.id}  {i.purpose_id}  {i.severity}  due {time.strftime('%Y-%m-%d %H:%M', time.gmtime(i.deadline))}"
             f"  {incident_state(i, now)}  {i.title}" for i in found]
    return [{**_plain(i), "state": incident_state(i, now)} for i in found], "\n".join(lines) or "no incidents"


async def alerts(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    page = await reg.store.list_alerts(None, a.limit, a.offset)
    return _plain(page.items), "\n".join(f"{x.day}  {x.kind}  {x.key_id}  {x.message}" for x in page.items) or \
        "no alerts"


async def report(reg: AiActRegistry, config: Config, home: Path, a: argparse.Namespace) -> Output:
    from passerelle.aiact.report import gather
    from passerelle.aiact.report_html import render
    from passerelle.audit.writer import open_audit_store
    from passerelle.stores.factory import open_store

    out = Path(a.out)
    if out.suffix.lower() == ".pdf":
        raise Refused("PDF output needs an HTML-to-PDF renderer, and none is installable here: write .html "
                      "and print it to PDF from a browser")
    store = await open_store(config, home)
    audit = await open_audit_store(config, home) if config.audit.enabled else None
    try:
        evidence = await gather(a.purpose, reg.store, store, audit, config)
    finally:
        await store.aclose()
        if audit is not None:
            await audit.aclose()
    await asyncio.to_thread(_write, a.out, render(evidence))
    chain = "intact" if evidence.chain and evidence.chain.ok else "BROKEN" if evidence.chain else "not kept"
    summary = {"purpose": a.purpose, "out": str(out), "requests": sum(r.requests for r in evidence.usage),
               "audit_records": evidence.compliance.records, "chain_ok": bool(evidence.chain and evidence.chain.ok)}
    return summary, f"wrote {out}: {summary['requests']} requests, {summary['audit_records']} audit records, " \
                    f"audit chain {chain}"


async def _run(command: Command, a: argparse.Namespace) -> int:
    config = load(a)
    if config is None:
        return 2
    from passerelle.aiact.factory import open_aiact_store
    from passerelle.audit import open_audit

    home = resolve_home(a, config)
    try:
        store = await open_aiact_store(config, home)
        audit = await open_audit(config, home) if command in (suspend, resume) else None
    except Exception as exc:
        print(f"passerelle: cannot open the AI Act store: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        payload, text = await command(AiActRegistry(store, audit), config, home, a)
    except (Refused, RuleError, NotFound) as exc:
        report_error(a.json, "not_found_error" if isinstance(exc, NotFound) else "invalid_request_error", str(exc))
        return 1
    finally:
        if audit is not None:
            await audit.aclose()
        await store.aclose()
    print(json.dumps(payload, indent=2) if a.json else text)
    return 0


def run(a: argparse.Namespace) -> int:
    return asyncio.run(_run(a.command_func, a))


def _common(p: argparse.ArgumentParser, func: Command) -> argparse.ArgumentParser:
    add_store_options(p)
    p.add_argument("--actor", default="cli", help="who makes the change (kept in the history and audit log)")
    p.set_defaults(func=run, command_func=func)
    return p


def _paged(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("aiact", help="AI Act registers: purposes, key bindings, suspend switches, suppliers, "
                       "risks, incidents").add_subparsers(dest="action", required=True)
    p = _common(g.add_parser("purposes", help="list purposes"), purposes)
    p.add_argument("--status", choices=("draft", "active", "suspended"))
    _paged(p)
    pg = g.add_parser("purpose", help="register, show or change a purpose").add_subparsers(dest="sub", required=True)
    _common(pg.add_parser("put", help="register or change a purpose from a YAML or JSON file"),
            purpose_put).add_argument("file")
    _common(pg.add_parser("show"), purpose_show).add_argument("id")
    p = _common(pg.add_parser("status"), purpose_status)
    p.add_argument("id")
    p.add_argument("status", choices=("draft", "active", "suspended"))
    p = _common(g.add_parser("bind", help="bind a key (its id) to a purpose"), bind)
    p.add_argument("key_id")
    p.add_argument("purpose")
    p.add_argument("--annex-use", help="the Annex III use the key serves, e.g. 4(a) (Art 25 role drift)")
    _common(g.add_parser("unbind"), unbind).add_argument("key_id")
    for name, func in (("suspend", suspend), ("resume", resume)):
        p = _common(g.add_parser(name, help=f"{name} a purpose's or a route's traffic on every instance"), func)
        p.add_argument("kind", choices=("purpose", "route"))
        p.add_argument("target")
        if func is suspend:
            p.add_argument("--reason", required=True)
    sg = g.add_parser("supplier", help="the GPAI / DORA supplier register").add_subparsers(dest="sub", required=True)
    _common(sg.add_parser("put"), supplier_put).add_argument("file")
    _common(g.add_parser("suppliers"), suppliers).add_argument("--dora", metavar="FILE.csv",
                                                               help="also write the DORA register of information")
    rg = g.add_parser("risk", help="the risk register").add_subparsers(dest="sub", required=True)
    _common(rg.add_parser("add"), risk_add).add_argument("file")
    p = _common(rg.add_parser("sign-off", help="residual-risk sign-off by someone who is not the owner"),
                risk_sign_off)
    p.add_argument("id")
    p.add_argument("--reviewer", required=True)
    p = _common(g.add_parser("risks"), risks)
    p.add_argument("--purpose")
    p.add_argument("--overdue", action="store_true", help="only risks past their review date")
    ig = g.add_parser("incident", help="serious incidents (Art 73)").add_subparsers(dest="sub", required=True)
    p = _common(ig.add_parser("add"), incident_add)
    p.add_argument("--purpose", required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--severity", required=True, choices=("serious", "widespread", "critical_infrastructure", "death"))
    p.add_argument("--occurred", required=True, help="ISO date or datetime (UTC), or unix seconds")
    p.add_argument("--aware", help="when you became aware (default: now): the Art 73 clock starts here")
    p.add_argument("--description", default="")
    _common(g.add_parser("incidents"), incidents).add_argument("--purpose")
    _paged(_common(g.add_parser("alerts", help="role-drift alerts (Art 25)"), alerts))
    rep = sub.add_parser("report", help="compliance reports").add_subparsers(dest="report", required=True)
    p = _common(rep.add_parser("ai-act", help="the Annex IV-style evidence of one purpose, as one HTML file"), report)
    p.add_argument("--purpose", required=True)
    p.add_argument("--out", required=True, help="FILE.html")
