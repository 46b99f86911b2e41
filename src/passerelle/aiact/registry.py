"""The AI Act registry service: the rules (rules.py) applied to the store's writes, and suspend
switches audited in the hash-chained audit log.  The admin API and the CLI both go through here."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime
from typing import Literal

from passerelle.aiact.records import Incident, KeyBinding, Purpose, Risk, Supplier, Suspension
from passerelle.aiact.rules import RuleError, art73_deadline, check_annex_use, check_purpose, check_risk, sign_off
from passerelle.aiact.store import AiActStore
from passerelle.audit import AuditEvent, AuditLog

SwitchKind = Literal["purpose", "route"]
ROUTES = ("messages", "chat_completions")  # the routes whose handler runs the purpose stage


class AiActRegistry:
    def __init__(self, store: AiActStore, audit: AuditLog | None = None) -> None:
        self.store = store
        self.audit = audit

    # -- purposes ------------------------------------------------------------------------------------------

    async def put_purpose(self, purpose: Purpose, actor: str) -> Purpose:
        """Register a purpose or change one (a new version either way)."""
        return await self.store.put_purpose(check_purpose(purpose), actor, time.time())

    async def set_status(self, purpose_id: str, status: str, actor: str) -> Purpose:
        current = await self.store.get_purpose(purpose_id)
        return await self.put_purpose(dataclasses.replace(current, status=status), actor)  # type: ignore[arg-type]

    async def bind_key(self, key_id: str, purpose_id: str, annex_use: str | None = None) -> KeyBinding:
        check_annex_use(annex_use)
        if not key_id.strip():
            raise RuleError("key_id is required")
        return await self.store.bind_key(KeyBinding(key_id, purpose_id, annex_use, time.time()))

    # -- suspend switches (Art 14(4)(e), Art 26(5)) ---------------------------------------------------------

    async def suspend(self, kind: SwitchKind, target: str, reason: str, actor: str) -> bool:
        await self._check_target(kind, target)
        changed = await self.store.suspend(Suspension(kind, target, reason.strip(), actor, time.time()))
        if changed:
            await self._audit("suspended", kind, target, reason, actor)
        return changed

    async def resume(self, kind: SwitchKind, target: str, actor: str) -> bool:
        await self._check_target(kind, target)
        changed = await self.store.resume(kind, target)
        if changed:
            await self._audit("resumed", kind, target, "", actor)
        return changed

    async def _check_target(self, kind: str, target: str) -> None:
        if kind == "purpose":
            await self.store.get_purpose(target)  # NotFound
        elif kind == "route":
            if target not in ROUTES:
                raise RuleError(f"route: expected one of {', '.join(ROUTES)}")
        else:
            raise RuleError("kind: expected purpose or route")

    async def _audit(self, decision: str, kind: str, target: str, reason: str, actor: str) -> None:
        if self.audit is None or not self.audit.enabled:
            return
        self.audit.append(AuditEvent(
            request_id="adm_" + uuid.uuid4().hex, time=time.time(), tenant_id="-", team_id=None, key_id=actor,
            route="admin", purpose=target if kind == "purpose" else None, model="-", deployment=None,
            upstream_model=None, packs={}, findings=[], decision=decision, status=200, input_tokens=0,
            output_tokens=0, prompt_sha256="", answer_sha256=None,
            extra={"switch": kind, "target": target, "reason": reason}))
        await self.audit.flush()  # an operator's stop is evidence: committed before the answer

    # -- supplier register ---------------------------------------------------------------------------------

    async def put_supplier(self, supplier: Supplier) -> Supplier:
        if not supplier.provider.strip() or not supplier.model.strip():
            raise RuleError("provider and model are required")
        if supplier.code_of_practice not in ("signed", "partial", "not_signed", "unknown"):
            raise RuleError("code_of_practice: expected signed, partial, not_signed or unknown")
        for name in ("documentation_url", "training_summary_url"):
            url = getattr(supplier, name)
            if url is not None and not url.startswith(("https://", "http://")):
                raise RuleError(f"{name}: expected an http(s) URL")
        return await self.store.put_supplier(dataclasses.replace(supplier, updated_at=time.time()))

    # -- risk register and incidents -----------------------------------------------------------------------

    async def add_risk(self, risk: Risk) -> Risk:
        check_risk(risk)
        await self.store.get_purpose(risk.purpose_id)
        fresh = dataclasses.replace(risk, id=risk.id or "rsk_" + uuid.uuid4().hex[:12], signed_off_by=None,
                                    signed_off_at=None, created_at=time.time())
        return await self.store.put_risk(fresh)

    async def sign_off_risk(self, risk_id: str, reviewer: str) -> Risk:
        risk = await self.store.get_risk(risk_id)
        purpose = await self.store.get_purpose(risk.purpose_id)
        return await self.store.put_risk(sign_off(risk, purpose, reviewer, time.time()))

    async def overdue_risks(self, now: float | None = None) -> list[Risk]:
        today = datetime.fromtimestamp(now if now is not None else time.time(), UTC).strftime("%Y-%m-%d")
        return [r for r in await self.store.list_risks(None) if r.review_due < today]

    async def add_incident(self, purpose_id: str, title: str, severity: str, occurred_at: float,
                           aware_at: float | None = None, description: str = "") -> Incident:
        if not title.strip():
            raise RuleError("title is required")
        await self.store.get_purpose(purpose_id)
        aware = aware_at if aware_at is not None else time.time()
        if aware < occurred_at:
            raise RuleError("aware_at cannot be before occurred_at")
        incident = Incident("inc_" + uuid.uuid4().hex[:12], purpose_id, title, severity,  # type: ignore[arg-type]
                            occurred_at, aware, art73_deadline(severity, aware), description, created_at=time.time())
        return await self.store.put_incident(incident)

    async def report_incident(self, incident_id: str, at: float | None = None) -> Incident:
        incident = await self.store.get_incident(incident_id)
        return await self.store.put_incident(dataclasses.replace(incident, reported_at=at or time.time()))
