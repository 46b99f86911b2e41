"""The Annex IV-style evidence of one purpose, gathered from the registers, the usage ledger and the
audit chain; ``report_html.render`` turns it into one self-contained HTML file."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from passerelle.aiact.records import Alert, Incident, KeyBinding, Purpose, PurposeVersion, Risk, Supplier
from passerelle.aiact.store import AiActStore
from passerelle.audit.base import AuditStore
from passerelle.audit.chain import GENESIS, Verdict, averify
from passerelle.config import Config
from passerelle.stores.base import Store
from passerelle.stores.records import ReportQuery, ReportRow

# Art 99: (fixed cap EUR, share of worldwide annual turnover); the higher applies, the lower for SMEs.
ART99_TIERS: tuple[tuple[str, Decimal, Decimal], ...] = (
    ("Prohibited practices (Art 5)", Decimal(35_000_000), Decimal("0.07")),
    ("Operator obligations: provider (Art 16), deployer (Art 26), transparency (Art 50)",
     Decimal(15_000_000), Decimal("0.03")),
    ("Incorrect or misleading information to authorities", Decimal(7_500_000), Decimal("0.01")),
)


@dataclass(frozen=True, slots=True)
class Exposure:
    tier: str
    fixed_eur: Decimal
    share: Decimal
    maximum_eur: Decimal | None  # None: no turnover declared


@dataclass
class ComplianceStats:
    records: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    findings: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (type, direction, action) -> count
    models: Counter[str] = field(default_factory=Counter)
    reviewed: int = 0  # answers a named human reviewed (Art 50(4))
    labelled: int = 0
    disclosed: int = 0


@dataclass
class Evidence:
    generated_at: float
    purpose: Purpose
    history: list[PurposeVersion]
    bindings: list[KeyBinding]
    usage: list[ReportRow]  # per key and model, the purpose's keys only
    compliance: ComplianceStats
    chain: Verdict | None  # None: the audit log is disabled
    suspended: bool
    risks: list[Risk]
    incidents: list[Incident]
    suppliers: list[Supplier]
    alerts: list[Alert]
    exposure: list[Exposure]


def fine_exposure(config: Config) -> list[Exposure]:
    turnover = Decimal(config.aiact.turnover_eur) if config.aiact.turnover_eur else None
    out = []
    for tier, fixed, share in ART99_TIERS:
        maximum = None
        if turnover is not None:
            by_share = (turnover * share).quantize(Decimal(1))
            maximum = min(fixed, by_share) if config.aiact.sme else max(fixed, by_share)
        out.append(Exposure(tier, fixed, share, maximum))
    return out


async def _compliance(audit: AuditStore, purpose_id: str) -> tuple[ComplianceStats, Verdict]:
    """One pass for the statistics of the purpose's records, one verification of the whole chain."""
    stats = ComplianceStats()
    async with audit.snapshot() as view:
        async for r in view.records():
            if r.purpose != purpose_id:
                continue
            stats.records += 1
            stats.decisions[r.decision] += 1
            stats.statuses[r.status] += 1
            stats.models[r.model] += 1
            stats.reviewed += "reviewer" in r.extra
            stats.labelled += bool(r.extra.get("ai_label"))
            stats.disclosed += bool(r.extra.get("ai_disclosure"))
            for f in r.findings:
                stats.findings[(str(f.get("type")), str(f.get("direction")), str(f.get("action")))] += int(
                    f.get("count", 1))
        verdict = await averify(view.records(), view.anchor or GENESIS)
    return stats, verdict


async def gather(purpose_id: str, aiact: AiActStore, store: Store, audit: AuditStore | None,
                 config: Config) -> Evidence:
    purpose = await aiact.get_purpose(purpose_id)  # NotFound
    bindings: list[KeyBinding] = []
    offset = 0
    while True:
        page = await aiact.list_bindings(purpose_id, 500, offset)
        bindings.extend(page.items)
        offset += len(page.items)
        if offset >= page.total or not page.items:
            break
    names = {k.name: f"cfg_{k.name}" for k in config.keys}
    keys = {b.key_id for b in bindings} | {names.get(k, k) for k, p in config.aiact.keys.items() if p == purpose_id}
    bindings += [KeyBinding(k, purpose_id) for k in sorted(keys - {b.key_id for b in bindings})]
    rows = await store.report(ReportQuery(by=("key", "model")))
    usage = [r for r in rows if r.group.get("key") in keys]
    stats, chain = await _compliance(audit, purpose_id) if audit is not None else (ComplianceStats(), None)
    suspended = any(s.kind == "purpose" and s.target == purpose_id for s in await aiact.list_suspensions())
    alerts = [a for a in (await aiact.list_alerts(None, 1000, 0)).items if a.purpose_id == purpose_id]
    return Evidence(time.time(), purpose, await aiact.purpose_history(purpose_id), bindings, usage, stats, chain,
                    suspended, await aiact.list_risks(purpose_id), await aiact.list_incidents(purpose_id),
                    await aiact.list_suppliers(), alerts, fine_exposure(config))
