"""The AI Act store: one narrow interface, its SQL written once over a three-method connection (as
``skills/store.py``); ``SQLiteAiActStore`` and ``PostgresAiActStore`` supply the transactions.

Every write that the request path reads (purposes, bindings, suspensions, suppliers) bumps
``aiact_version`` in its own transaction, which also serialises those writes across instances.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

import msgspec

from passerelle.aiact.records import (
    Alert,
    Incident,
    KeyBinding,
    Page,
    Purpose,
    PurposeVersion,
    RegistrySnapshot,
    Risk,
    Supplier,
    Suspension,
)
from passerelle.stores.base import NotFound
from passerelle.stores.sql_common import Row

R = TypeVar("R")
_BUMP = "UPDATE aiact_version SET version = version + 1 WHERE id = 1"


class Conn(Protocol):
    async def fetch(self, sql: str, *args: object) -> list[Row]: ...
    async def execute(self, sql: str, *args: object) -> None: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


def encode(record: object) -> str:
    return msgspec.json.encode(record).decode()


def decode(data: str, kind: type[R]) -> R:
    return msgspec.json.decode(data, type=kind)


class AiActStore(Protocol):
    async def aclose(self) -> None: ...
    async def version(self) -> int: ...
    async def snapshot(self) -> RegistrySnapshot: ...
    # purposes: every put is a new version row
    async def put_purpose(self, purpose: Purpose, actor: str, at: float) -> Purpose: ...
    async def get_purpose(self, purpose_id: str) -> Purpose: ...  # NotFound
    async def list_purposes(self, status: str | None, limit: int, offset: int) -> Page[Purpose]: ...
    async def purpose_history(self, purpose_id: str) -> list[PurposeVersion]: ...
    # keys -> purposes
    async def bind_key(self, binding: KeyBinding) -> KeyBinding: ...  # NotFound purpose
    async def unbind_key(self, key_id: str) -> bool: ...
    async def list_bindings(self, purpose_id: str | None, limit: int, offset: int) -> Page[KeyBinding]: ...
    # suspend switches
    async def suspend(self, suspension: Suspension) -> bool: ...  # False: already suspended
    async def resume(self, kind: str, target: str) -> bool: ...  # False: was not suspended
    async def list_suspensions(self) -> list[Suspension]: ...
    # alerts: one per (kind, key, purpose, day)
    async def add_alert(self, alert: Alert) -> bool: ...
    async def list_alerts(self, kind: str | None, limit: int, offset: int) -> Page[Alert]: ...
    # registers
    async def put_supplier(self, supplier: Supplier) -> Supplier: ...
    async def delete_supplier(self, provider: str, model: str) -> None: ...  # NotFound
    async def list_suppliers(self) -> list[Supplier]: ...
    async def put_risk(self, risk: Risk) -> Risk: ...  # NotFound purpose
    async def get_risk(self, risk_id: str) -> Risk: ...
    async def list_risks(self, purpose_id: str | None) -> list[Risk]: ...
    async def put_incident(self, incident: Incident) -> Incident: ...
    async def get_incident(self, incident_id: str) -> Incident: ...
    async def list_incidents(self, purpose_id: str | None) -> list[Incident]: ...


class SQLAiActStore(ABC):
    @abstractmethod
    def _transaction(self, read: bool = False) -> AbstractAsyncContextManager[Conn]: ...

    @abstractmethod
    async def _query(self, sql: str, *args: object) -> list[Row]: ...

    async def version(self) -> int:
        return int((await self._query("SELECT version FROM aiact_version WHERE id = 1"))[0][0])

    async def snapshot(self) -> RegistrySnapshot:
        async with self._transaction(read=True) as tx:
            version = int((await tx.fetch("SELECT version FROM aiact_version WHERE id = 1"))[0][0])
            purposes = [decode(r[0], Purpose) for r in await tx.fetch("SELECT data FROM aiact_purposes")]
            bindings = [KeyBinding(r[0], r[1], r[2], float(r[3])) for r in await tx.fetch(
                "SELECT key_id, purpose_id, annex_use, created_at FROM aiact_key_purposes")]
            suspensions = [_suspension(r) for r in await tx.fetch(
                "SELECT kind, target, reason, actor, at FROM aiact_suspensions")]
            suppliers = [decode(r[0], Supplier) for r in await tx.fetch("SELECT data FROM aiact_suppliers")]
        return RegistrySnapshot(version, purposes, bindings, suspensions, suppliers)

    # -- purposes ------------------------------------------------------------------------------------------

    async def put_purpose(self, purpose: Purpose, actor: str, at: float) -> Purpose:
        async with self._transaction() as tx:
            await tx.execute(_BUMP)
            rows = await tx.fetch("SELECT version FROM aiact_purposes WHERE id = ?", purpose.id)
            version = int(rows[0][0]) + 1 if rows else 1
            stored = dataclasses.replace(purpose, version=version, updated_at=at, updated_by=actor)
            data = encode(stored)
            await tx.execute(
                "INSERT INTO aiact_purposes (id, version, status, risk_class, data, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version, status = excluded.status,"
                " risk_class = excluded.risk_class, data = excluded.data, updated_at = excluded.updated_at",
                stored.id, version, stored.status, stored.risk_class, data, at)
            await tx.execute("INSERT INTO aiact_purpose_versions (purpose_id, version, data, changed_at, actor)"
                             " VALUES (?, ?, ?, ?, ?)", stored.id, version, data, at, actor)
        return stored

    async def get_purpose(self, purpose_id: str) -> Purpose:
        rows = await self._query("SELECT data FROM aiact_purposes WHERE id = ?", purpose_id)
        if not rows:
            raise NotFound(f"no purpose '{purpose_id}'")
        return decode(rows[0][0], Purpose)

    async def list_purposes(self, status: str | None, limit: int, offset: int) -> Page[Purpose]:
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        total = int((await self._query(f"SELECT COUNT(*) FROM aiact_purposes {where}", *args))[0][0])
        rows = await self._query(f"SELECT data FROM aiact_purposes {where} ORDER BY id LIMIT ? OFFSET ?",
                                 *args, limit, offset)
        return Page([decode(r[0], Purpose) for r in rows], total, limit, offset)

    async def purpose_history(self, purpose_id: str) -> list[PurposeVersion]:
        rows = await self._query("SELECT version, data, changed_at, actor FROM aiact_purpose_versions"
                                 " WHERE purpose_id = ? ORDER BY version", purpose_id)
        if not rows:
            raise NotFound(f"no purpose '{purpose_id}'")
        return [PurposeVersion(purpose_id, int(r[0]), decode(r[1], Purpose), float(r[2]), r[3]) for r in rows]

    # -- bindings ------------------------------------------------------------------------------------------

    async def bind_key(self, binding: KeyBinding) -> KeyBinding:
        async with self._transaction() as tx:
            await tx.execute(_BUMP)
            if not await tx.fetch("SELECT 1 FROM aiact_purposes WHERE id = ?", binding.purpose_id):
                raise NotFound(f"no purpose '{binding.purpose_id}'")
            await tx.execute(
                "INSERT INTO aiact_key_purposes (key_id, purpose_id, annex_use, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key_id) DO UPDATE SET purpose_id = excluded.purpose_id,"
                " annex_use = excluded.annex_use, created_at = excluded.created_at",
                binding.key_id, binding.purpose_id, binding.annex_use, binding.created_at)
        return binding

    async def unbind_key(self, key_id: str) -> bool:
        async with self._transaction() as tx:
            await tx.execute(_BUMP)
            return bool(await tx.fetch("DELETE FROM aiact_key_purposes WHERE key_id = ? RETURNING key_id", key_id))

    async def list_bindings(self, purpose_id: str | None, limit: int, offset: int) -> Page[KeyBinding]:
        where, args = ("WHERE purpose_id = ?", (purpose_id,)) if purpose_id else ("", ())
        total = int((await self._query(f"SELECT COUNT(*) FROM aiact_key_purposes {where}", *args))[0][0])
        rows = await self._query(f"SELECT key_id, purpose_id, annex_use, created_at FROM aiact_key_purposes {where}"
                                 " ORDER BY key_id LIMIT ? OFFSET ?", *args, limit, offset)
        return Page([KeyBinding(r[0], r[1], r[2], float(r[3])) for r in rows], total, limit, offset)

    # -- suspensions ---------------------------------------------------------------------------------------

    async def suspend(self, suspension: Suspension) -> bool:
        s = suspension
        async with self._transaction() as tx:
            await tx.execute(_BUMP)
            return bool(await tx.fetch(
                "INSERT INTO aiact_suspensions (kind, target, reason, actor, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (kind, target) DO NOTHING RETURNING target", s.kind, s.target, s.reason, s.actor, s.at))

    async def resume(self, kind: str, target: str) -> bool:
        async with self._transaction() as tx:
            await tx.execute(_BUMP)
            return bool(await tx.fetch("DELETE FROM aiact_suspensions WHERE kind = ? AND target = ? RETURNING target",
                                       kind, target))

    async def list_suspensions(self) -> list[Suspension]:
        rows = await self._query("SELECT kind, target, reason, actor, at FROM aiact_suspensions ORDER BY kind, target")
        return [_suspension(r) for r in rows]

    # -- alerts --------------------------------------------------------------------------------------------

    async def add_alert(self, alert: Alert) -> bool:
        a = alert
        async with self._transaction() as tx:
            return bool(await tx.fetch(
                "INSERT INTO aiact_alerts (id, kind, key_id, purpose_id, day, message, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, key_id, purpose_id, day) DO NOTHING RETURNING id",
                a.id, a.kind, a.key_id, a.purpose_id, a.day, a.message, a.created_at))

    async def list_alerts(self, kind: str | None, limit: int, offset: int) -> Page[Alert]:
        where, args = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        total = int((await self._query(f"SELECT COUNT(*) FROM aiact_alerts {where}", *args))[0][0])
        rows = await self._query(f"SELECT id, kind, key_id, purpose_id, day, message, created_at FROM aiact_alerts"
                                 f" {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?", *args, limit, offset)
        return Page([Alert(r[0], r[1], r[2], r[3], r[4], r[5], float(r[6])) for r in rows], total, limit, offset)

    # -- registers -----------------------------------------------------------------------------------------

    async def put_supplier(self, supplier: Supplier) -> Supplier:
        async with self._transaction() as tx:
            await tx.execute(_BUMP)
            await tx.execute("INSERT INTO aiact_suppliers (provider, model, data, updated_at) VALUES (?, ?, ?, ?)"
                             " ON CONFLICT (provider, model) DO UPDATE SET data = excluded.data,"
                             " updated_at = excluded.updated_at",
                             supplier.provider, supplier.model, encode(supplier), supplier.updated_at)
        return supplier

    async def delete_supplier(self, provider: str, model: str) -> None:
        async with self._transaction() as tx:
            await tx.execute(_BUMP)
            if not await tx.fetch("DELETE FROM aiact_suppliers WHERE provider = ? AND model = ? RETURNING model",
                                  provider, model):
                raise NotFound(f"no supplier entry for {provider} {model}")

    async def list_suppliers(self) -> list[Supplier]:
        rows = await self._query("SELECT data FROM aiact_suppliers ORDER BY provider, model")
        return [decode(r[0], Supplier) for r in rows]

    async def put_risk(self, risk: Risk) -> Risk:
        async with self._transaction() as tx:
            if not await tx.fetch("SELECT 1 FROM aiact_purposes WHERE id = ?", risk.purpose_id):
                raise NotFound(f"no purpose '{risk.purpose_id}'")
            await tx.execute("INSERT INTO aiact_risks (id, purpose_id, review_due, data, created_at)"
                             " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET review_due = excluded.review_due,"
                             " data = excluded.data", risk.id, risk.purpose_id, risk.review_due, encode(risk),
                             risk.created_at)
        return risk

    async def get_risk(self, risk_id: str) -> Risk:
        rows = await self._query("SELECT data FROM aiact_risks WHERE id = ?", risk_id)
        if not rows:
            raise NotFound(f"no risk '{risk_id}'")
        return decode(rows[0][0], Risk)

    async def list_risks(self, purpose_id: str | None) -> list[Risk]:
        where, args = ("WHERE purpose_id = ?", (purpose_id,)) if purpose_id else ("", ())
        rows = await self._query(f"SELECT data FROM aiact_risks {where} ORDER BY created_at, id", *args)
        return [decode(r[0], Risk) for r in rows]

    async def put_incident(self, incident: Incident) -> Incident:
        async with self._transaction() as tx:
            if not await tx.fetch("SELECT 1 FROM aiact_purposes WHERE id = ?", incident.purpose_id):
                raise NotFound(f"no purpose '{incident.purpose_id}'")
            await tx.execute("INSERT INTO aiact_incidents (id, purpose_id, deadline, data, created_at)"
                             " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET deadline = excluded.deadline,"
                             " data = excluded.data", incident.id, incident.purpose_id, incident.deadline,
                             encode(incident), incident.created_at)
        return incident

    async def get_incident(self, incident_id: str) -> Incident:
        rows = await self._query("SELECT data FROM aiact_incidents WHERE id = ?", incident_id)
        if not rows:
            raise NotFound(f"no incident '{incident_id}'")
        return decode(rows[0][0], Incident)

    async def list_incidents(self, purpose_id: str | None) -> list[Incident]:
        where, args = ("WHERE purpose_id = ?", (purpose_id,)) if purpose_id else ("", ())
        rows = await self._query(f"SELECT data FROM aiact_incidents {where} ORDER BY created_at, id", *args)
        return [decode(r[0], Incident) for r in rows]


def _suspension(r: Row) -> Suspension:
    return Suspension(r[0], r[1], r[2], r[3], float(r[4]))
