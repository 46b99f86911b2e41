"""The registers' rules, the same whichever interface (admin API, CLI) writes: what a valid purpose
is, who may sign off a risk, and the Art 73 reporting clocks."""

from __future__ import annotations

import dataclasses
import re

from passerelle.aiact.records import (
    ANNEX_III,
    HIGH_RISK_MIN_RETENTION_DAYS,
    KINDS,
    RISK_CLASSES,
    STATUSES,
    Incident,
    Purpose,
    Risk,
)

DAY = 86400.0
# Art 73(2)-(4): 15 days; 2 days for a widespread infringement or critical infrastructure; 10 days on death.
ART73_DAYS = {"serious": 15, "widespread": 2, "critical_infrastructure": 2, "death": 10}
_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RuleError(ValueError):
    """A write the AI Act rules refuse; the message says which rule and how to fix it."""


def check_purpose(p: Purpose) -> Purpose:
    if not _ID.fullmatch(p.id):
        raise RuleError("purpose id: expected 1-64 of a-z 0-9 _ . - (starting with a letter or digit)")
    for name in ("name", "description", "instructions", "overseer", "owner"):
        if not str(getattr(p, name)).strip():
            raise RuleError(f"{name} is required: Art 26 asks for it for every purpose")
    if p.risk_class not in RISK_CLASSES:
        raise RuleError(f"risk_class: expected one of {', '.join(RISK_CLASSES)}")
    if p.status not in STATUSES:
        raise RuleError(f"status: expected one of {', '.join(STATUSES)}")
    if p.kind not in KINDS:
        raise RuleError(f"kind: expected one of {', '.join(KINDS)}")
    if p.risk_class == "prohibited" and p.status == "active":
        raise RuleError(f"purpose '{p.id}' is in a prohibited category (Art 5) and cannot be activated")
    if p.risk_class == "high-risk":
        if not p.annex_category or not ANNEX_III.fullmatch(p.annex_category):
            raise RuleError("a high-risk purpose needs its Annex III category, e.g. annex_category '5(b)'")
        if p.retention_days < HIGH_RISK_MIN_RETENTION_DAYS:
            raise RuleError(f"retention_days {p.retention_days} is below the six months (183 days) Art 19(1) "
                            "and Art 26(6) require for a high-risk purpose")
    elif p.annex_category is not None and not ANNEX_III.fullmatch(p.annex_category):
        raise RuleError("annex_category: expected an Annex III point such as '5(b)'")
    if p.retention_days < 1:
        raise RuleError("retention_days must be at least 1")
    return p


def check_annex_use(code: str | None) -> None:
    if code is not None and not ANNEX_III.fullmatch(code):
        raise RuleError("annex_use: expected an Annex III point such as '4(a)'")


def check_risk(r: Risk) -> Risk:
    if not r.title.strip():
        raise RuleError("title is required")
    for name in ("likelihood", "severity"):
        value = getattr(r, name)
        if type(value) is not int or not 1 <= value <= 5:
            raise RuleError(f"{name}: expected an integer from 1 to 5")
    if r.residual not in ("low", "medium", "high"):
        raise RuleError("residual: expected low, medium or high")
    if not _DATE.fullmatch(r.review_due):
        raise RuleError("review_due: expected a date YYYY-MM-DD")
    if not r.measures.strip():
        raise RuleError("measures are required (Art 9(2)(d))")
    return r


def sign_off(risk: Risk, purpose: Purpose, reviewer: str, at: float) -> Risk:
    """The residual-risk sign-off: an independent reviewer, never the purpose's owner."""
    reviewer = reviewer.strip()
    if not reviewer:
        raise RuleError("reviewer is required")
    if reviewer.casefold() == purpose.owner.strip().casefold():
        raise RuleError(f"{reviewer} owns purpose '{purpose.id}': the residual risk must be signed off by "
                        "someone who is not the owner")
    return dataclasses.replace(risk, signed_off_by=reviewer, signed_off_at=at)


def art73_deadline(severity: str, aware_at: float) -> float:
    """When the serious-incident report is due: counted from when the deployer became aware."""
    try:
        return aware_at + ART73_DAYS[severity] * DAY
    except KeyError:
        raise RuleError(f"severity: expected one of {', '.join(ART73_DAYS)}") from None


def incident_state(incident: Incident, now: float) -> str:
    if incident.reported_at is not None:
        return "reported late" if incident.reported_at > incident.deadline else "reported"
    return "overdue" if now > incident.deadline else "open"
