"""The Annex IV-style report of a sample high-risk credit-scoring purpose, with figures from requests
made through the gateway in this test."""

from __future__ import annotations

import re
from pathlib import Path

import anthropic
import pytest

from passerelle.aiact.records import Risk, Supplier
from passerelle.aiact.report import fine_exposure, gather
from passerelle.aiact.report_html import render
from passerelle.config.schema import AiActConfig, Config
from tests.aiact.conftest import credit_scoring
from tests.aiact.harness import harness

HELLO = [{"role": "user", "content": "Summarise the applicant's file"}]


async def test_report_for_a_credit_scoring_purpose_has_every_section_with_real_figures(tmp_path: Path) -> None:
    async with harness(tmp_path, "aiact: {keys: {app: credit-scoring}, turnover_eur: '2000000000'}") as h:
        reg = h.registry
        await reg.put_purpose(credit_scoring(status="draft"), "alice@bank.example")
        await reg.set_status("credit-scoring", "active", "alice@bank.example")
        await h.gw.aiact.refresh()
        client = h.anthropic()
        for _ in range(3):
            await client.messages.create(model="claude-test", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
        with pytest.raises(anthropic.PermissionDeniedError):  # off purpose: the purpose's key, refused
            await client.messages.create(model="other-model", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
        risk = await reg.add_risk(Risk("", "credit-scoring", "Proxy discrimination by postcode", 3, 4,
                                       "Postcode removed; monthly bias audit", "medium", "2020-01-01"))
        await reg.sign_off_risk(risk.id, "bob@bank.example")
        await reg.put_supplier(Supplier("simulator", "claude-*", "https://docs.example/claude",
                                        "https://docs.example/claude/training", "signed", "eu",
                                        "30 days", "MSA-2026-001", "Example AI SAS"))
        await reg.add_incident("credit-scoring", "Refusals for a whole region", "widespread",
                               occurred_at=1_800_000_000.0, aware_at=1_800_000_000.0)
        await h.gw.ledger.flush()
        await h.gw.audit.flush()
        evidence = await gather("credit-scoring", h.gw.aiact.store, h.gw.store, h.gw.audit.store, h.gw.config)
    html = render(evidence)
    (tmp_path / "report.html").write_text(html)
    for section in ("purpose", "history", "usage", "compliance", "chain", "risks", "suppliers", "incidents",
                    "monitoring", "fines"):
        assert f'id="{section}"' in html
    assert "Annex III" in html and "5(b)" in html and "Marie Curie (credit risk)" in html
    assert re.search(r"<td>2</td><td>[^<]*</td><td>alice@bank.example</td><td>active</td><td>status: draft -&gt; "
                     r"active</td>", html)
    assert "<p>4 requests by the purpose's keys.</p>" in html
    usage = evidence.usage
    assert [(r.group["key"], r.group["model"], r.requests, r.errors) for r in usage] == [
        ("cfg_app", "claude-test", 3, 0), ("cfg_app", "other-model", 1, 1)]  # the off-purpose call: refused
    assert usage[0].input_tokens > 0 and usage[0].cost_pico > 0
    assert evidence.compliance.records == 3 and evidence.compliance.decisions["forwarded"] == 3
    assert evidence.chain is not None and evidence.chain.ok and evidence.chain.records == 4
    assert "Intact: 4 records verified" in html
    assert "2020-01-01 overdue" in html and "bob@bank.example" in html
    assert "MSA-2026-001" in html and "Example AI SAS" in html
    assert "Refusals for a whole region" in html and "overdue" in html
    assert "EUR 140,000,000" in html  # 7 % of EUR 2bn beats the EUR 35M cap


def test_fine_exposure_tiers() -> None:
    big = fine_exposure(Config(aiact=AiActConfig(turnover_eur="100000000")))
    assert [x.maximum_eur for x in big] == [35_000_000, 15_000_000, 7_500_000]  # the fixed amounts are higher
    sme = fine_exposure(Config(aiact=AiActConfig(turnover_eur="100000000", sme=True)))
    assert [x.maximum_eur for x in sme] == [7_000_000, 3_000_000, 1_000_000]  # SMEs: the lower amount
    assert [x.maximum_eur for x in fine_exposure(Config())] == [None, None, None]
