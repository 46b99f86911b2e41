"""AI Act evidence in the admin API (admin key only); JSON, lists paginated on the server
(``?limit=`` 1-500, default 50, ``&offset=``; answers ``{"data", "total", "limit", "offset"}``):

    GET  /admin/aiact/purposes?status=&limit=&offset=      POST /admin/aiact/purposes  (register or change)
    GET  /admin/aiact/purposes/{id}                        GET  /admin/aiact/purposes/{id}/history
    POST /admin/aiact/purposes/{id}/status {status}        GET  /admin/aiact/purposes/{id}/report  (HTML)
    POST /admin/aiact/purposes/{id}/suspend {reason}       POST /admin/aiact/purposes/{id}/resume
    POST /admin/aiact/routes/{route}/suspend {reason}      POST /admin/aiact/routes/{route}/resume
    GET  /admin/aiact/suspensions
    GET  /admin/aiact/bindings?purpose=&limit=&offset=     POST /admin/aiact/bindings {key_id, purpose_id, annex_use?}
    DELETE /admin/aiact/bindings/{key_id}
    GET  /admin/aiact/alerts?kind=&limit=&offset=
    GET|POST /admin/aiact/suppliers                        GET  /admin/aiact/suppliers/dora  (CSV)
    GET|POST /admin/aiact/risks?purpose=                   POST /admin/aiact/risks/{id}/sign-off {reviewer}
    GET  /admin/aiact/risks/overdue
    GET|POST /admin/aiact/incidents?purpose=               POST /admin/aiact/incidents/{id}/reported {at?}

Refusals: 400 (a rule, named in the message), 404.  Every write reloads this instance's registry at
once; other instances see it within ``store.refresh_interval``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from passerelle.admin.service import invalid, not_found
from passerelle.aiact.dora import register_csv
from passerelle.aiact.inputs import (
    BindingBody,
    IncidentBody,
    PurposeBody,
    ReasonBody,
    ReportedBody,
    RiskBody,
    SignOffBody,
    StatusBody,
    SupplierBody,
    purpose_from,
)
from passerelle.aiact.records import Page, Risk, Supplier
from passerelle.aiact.registry import AiActRegistry
from passerelle.aiact.report import gather
from passerelle.aiact.report_html import render
from passerelle.aiact.rules import RuleError, incident_state
from passerelle.stores.base import NotFound

if TYPE_CHECKING:
    from passerelle.server.admin import Call

Reply = tuple[int, Any]
Op = Callable[["Call"], Awaitable[Reply]]


def view(record: object) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(record)
    if isinstance(record, Supplier):
        out["documented"] = record.documented
    if isinstance(record, Risk):
        out["score"] = record.score
    return out


def page_view(page: Page[Any]) -> dict[str, Any]:
    return {"data": [view(x) for x in page.items], "total": page.total, "limit": page.limit, "offset": page.offset}


def _paging(q: dict[str, str]) -> tuple[int, int]:
    try:
        limit, offset = int(q.get("limit", "50")), int(q.get("offset", "0"))
    except ValueError:
        raise invalid("limit and offset must be integers") from None
    if not 1 <= limit <= 500 or offset < 0:
        raise invalid("limit: expected 1 to 500; offset: expected 0 or more")
    return limit, offset


def _actor(c: Call) -> str:
    return c.headers.get("x-passerelle-actor", "").strip()[:200] or "admin"


def _guarded(op: Callable[[Call, AiActRegistry], Awaitable[Reply]], writes: bool = False) -> Op:
    async def run(c: Call) -> Reply:
        registry = AiActRegistry(c.gw.aiact.store, c.gw.audit)
        try:
            reply = await op(c, registry)
        except RuleError as exc:
            raise invalid(str(exc)) from None
        except NotFound as exc:
            raise not_found(str(exc)) from None
        if writes:
            await c.gw.aiact.refresh()
        return reply

    return run


async def list_purposes(c: Call, reg: AiActRegistry) -> Reply:
    q = c.params("status", "limit", "offset")
    return 200, page_view(await reg.store.list_purposes(q.get("status"), *_paging(q)))


async def put_purpose(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    return 201, view(await reg.put_purpose(purpose_from(await c.body(PurposeBody)), _actor(c)))


async def get_purpose(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    suspended = {s.target for s in await reg.store.list_suspensions() if s.kind == "purpose"}
    return 200, {**view(await reg.store.get_purpose(c.args[0])), "suspended": c.args[0] in suspended}


async def history(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    return 200, {"data": [{"version": v.version, "changed_at": v.changed_at, "actor": v.actor,
                           "purpose": view(v.purpose)} for v in await reg.store.purpose_history(c.args[0])]}


async def set_status(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    return 200, view(await reg.set_status(c.args[0], (await c.body(StatusBody)).status, _actor(c)))


def _switch(kind: str, suspend: bool) -> Callable[[Call, AiActRegistry], Awaitable[Reply]]:
    async def op(c: Call, reg: AiActRegistry) -> Reply:
        c.params()
        if suspend:
            reason = (await c.body(ReasonBody)).reason
            changed = await reg.suspend(kind, c.args[0], reason, _actor(c))  # type: ignore[arg-type]
        else:
            changed = await reg.resume(kind, c.args[0], _actor(c))  # type: ignore[arg-type]
        return 200, {"kind": kind, "target": c.args[0], "suspended": suspend, "changed": changed}

    return op


async def suspensions(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    return 200, {"data": [view(s) for s in await reg.store.list_suspensions()]}


async def list_bindings(c: Call, reg: AiActRegistry) -> Reply:
    q = c.params("purpose", "limit", "offset")
    return 200, page_view(await reg.store.list_bindings(q.get("purpose"), *_paging(q)))


async def bind(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    body = await c.body(BindingBody)
    return 201, view(await reg.bind_key(body.key_id, body.purpose_id, body.annex_use))


async def unbind(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    if not await reg.store.unbind_key(c.args[0]):
        raise not_found(f"key '{c.args[0]}' is bound to no purpose")
    return 200, {"key_id": c.args[0], "unbound": True}


async def alerts(c: Call, reg: AiActRegistry) -> Reply:
    q = c.params("kind", "limit", "offset")
    return 200, page_view(await reg.store.list_alerts(q.get("kind"), *_paging(q)))


async def list_suppliers(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    return 200, {"data": [view(s) for s in await reg.store.list_suppliers()]}


async def put_supplier(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    body = msgspec.to_builtins(await c.body(SupplierBody))
    return 201, view(await reg.put_supplier(Supplier(**body)))


async def dora(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    return 200, ("text/csv; charset=utf-8", register_csv(await reg.store.list_suppliers()))


async def list_risks(c: Call, reg: AiActRegistry) -> Reply:
    q = c.params("purpose")
    return 200, {"data": [view(r) for r in await reg.store.list_risks(q.get("purpose"))]}


async def add_risk(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    body = msgspec.to_builtins(await c.body(RiskBody))
    return 201, view(await reg.add_risk(Risk(id="", **body)))


async def sign_off(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    return 200, view(await reg.sign_off_risk(c.args[0], (await c.body(SignOffBody)).reviewer))


async def overdue(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    return 200, {"data": [view(r) for r in await reg.overdue_risks()]}


async def list_incidents(c: Call, reg: AiActRegistry) -> Reply:
    q = c.params("purpose")
    now = time.time()
    return 200, {"data": [{**view(i), "state": incident_state(i, now)}
                          for i in await reg.store.list_incidents(q.get("purpose"))]}


async def add_incident(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    b = await c.body(IncidentBody)
    return 201, view(await reg.add_incident(b.purpose_id, b.title, b.severity, b.occurred_at, b.aware_at,
                                            b.description))


async def reported(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    return 200, view(await reg.report_incident(c.args[0], (await c.body(ReportedBody)).at))


async def report(c: Call, reg: AiActRegistry) -> Reply:
    c.params()
    evidence = await gather(c.args[0], reg.store, c.gw.store, c.gw.audit.store, c.gw.config)
    return 200, ("text/html; charset=utf-8", render(evidence))

ROUTES: list[tuple[tuple[str, ...], dict[str, Op]]] = [
    (("aiact", "purposes"), {"GET": _guarded(list_purposes), "POST": _guarded(put_purpose, True)}),
    (("aiact", "purposes", "*"), {"GET": _guarded(get_purpose)}),
    (("aiact", "purposes", "*", "history"), {"GET": _guarded(history)}),
    (("aiact", "purposes", "*", "status"), {"POST": _guarded(set_status, True)}),
    (("aiact", "purposes", "*", "report"), {"GET": _guarded(report)}),
    (("aiact", "purposes", "*", "suspend"), {"POST": _guarded(_switch("purpose", True), True)}),
    (("aiact", "purposes", "*", "resume"), {"POST": _guarded(_switch("purpose", False), True)}),
    (("aiact", "routes", "*", "suspend"), {"POST": _guarded(_switch("route", True), True)}),
    (("aiact", "routes", "*", "resume"), {"POST": _guarded(_switch("route", False), True)}),
    (("aiact", "suspensions"), {"GET": _guarded(suspensions)}),
    (("aiact", "bindings"), {"GET": _guarded(list_bindings), "POST": _guarded(bind, True)}),
    (("aiact", "bindings", "*"), {"DELETE": _guarded(unbind, True)}),
    (("aiact", "alerts"), {"GET": _guarded(alerts)}),
    (("aiact", "suppliers"), {"GET": _guarded(list_suppliers), "POST": _guarded(put_supplier, True)}),
    (("aiact", "suppliers", "dora"), {"GET": _guarded(dora)}),
    (("aiact", "risks"), {"GET": _guarded(list_risks), "POST": _guarded(add_risk)}),
    (("aiact", "risks", "overdue"), {"GET": _guarded(overdue)}),
    (("aiact", "risks", "*", "sign-off"), {"POST": _guarded(sign_off)}),
    (("aiact", "incidents"), {"GET": _guarded(list_incidents), "POST": _guarded(add_incident)}),
    (("aiact", "incidents", "*", "reported"), {"POST": _guarded(reported)}),
]
