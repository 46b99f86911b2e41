"""The risk register and serious incidents, on both backends: independent sign-off, overdue reviews,
Art 73 deadlines."""

from __future__ import annotations

import pytest

from passerelle.aiact.records import Risk
from passerelle.aiact.registry import AiActRegistry
from passerelle.aiact.rules import DAY, RuleError, art73_deadline, incident_state
from passerelle.aiact.store import SQLAiActStore
from passerelle.stores.base import NotFound
from tests.aiact.conftest import credit_scoring

RISK = Risk("", "credit-scoring", "Proxy discrimination by postcode", likelihood=3, severity=4,
            measures="Postcode removed from prompts; monthly bias audit", residual="medium", review_due="2026-01-31")


async def test_sign_off_by_a_reviewer_who_is_not_the_owner(registry: AiActRegistry,
                                                            aiact_store: SQLAiActStore) -> None:
    await registry.put_purpose(credit_scoring(owner="alice@bank.example"), "alice")
    risk = await registry.add_risk(RISK)
    assert risk.id.startswith("rsk_") and risk.score == 12 and risk.signed_off_by is None
    with pytest.raises(RuleError, match="not the owner"):
        await registry.sign_off_risk(risk.id, " Alice@Bank.example ")
    assert (await aiact_store.get_risk(risk.id)).signed_off_by is None
    signed = await registry.sign_off_risk(risk.id, "bob@bank.example")
    assert signed.signed_off_by == "bob@bank.example" and signed.signed_off_at is not None
    assert (await aiact_store.list_risks("credit-scoring"))[0].signed_off_by == "bob@bank.example"
    with pytest.raises(NotFound):
        await registry.add_risk(Risk("", "nope", "x", 1, 1, "m", "low", "2030-01-01"))
    with pytest.raises(RuleError, match="likelihood"):
        await registry.add_risk(Risk("", "credit-scoring", "x", 6, 1, "m", "low", "2030-01-01"))


async def test_reviews_past_their_date_are_overdue(registry: AiActRegistry) -> None:
    await registry.put_purpose(credit_scoring(), "alice")
    late = await registry.add_risk(RISK)
    await registry.add_risk(Risk("", "credit-scoring", "Hallucinated figures", 2, 3, "Figures checked", "low",
                                 "2099-12-31"))
    assert [r.id for r in await registry.overdue_risks()] == [late.id]


@pytest.mark.parametrize(("severity", "days"), [("serious", 15), ("widespread", 2),
                                                ("critical_infrastructure", 2), ("death", 10)])
def test_art73_deadlines(severity: str, days: int) -> None:
    assert art73_deadline(severity, 1000.0) == 1000.0 + days * DAY


async def test_incidents_carry_their_deadline_and_state(registry: AiActRegistry, aiact_store: SQLAiActStore) -> None:
    await registry.put_purpose(credit_scoring(), "alice")
    aware = 1_800_000_000.0
    incident = await registry.add_incident("credit-scoring", "Wrong refusals for a whole region", "widespread",
                                           occurred_at=aware - DAY, aware_at=aware)
    assert incident.deadline == aware + 2 * DAY
    assert incident_state(incident, aware + DAY) == "open"
    assert incident_state(incident, aware + 3 * DAY) == "overdue"
    reported = await registry.report_incident(incident.id, at=aware + 3 * DAY)
    assert incident_state(reported, aware + 4 * DAY) == "reported late"
    assert (await aiact_store.list_incidents("credit-scoring"))[0].reported_at == aware + 3 * DAY
    with pytest.raises(RuleError, match="severity"):
        await registry.add_incident("credit-scoring", "x", "minor", occurred_at=aware, aware_at=aware)
    with pytest.raises(RuleError, match="before"):
        await registry.add_incident("credit-scoring", "x", "death", occurred_at=aware, aware_at=aware - 1)
