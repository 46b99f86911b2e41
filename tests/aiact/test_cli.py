"""``passerelle aiact ...`` and ``passerelle report ai-act`` on the embedded backend."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from passerelle.audit.writer import open_audit_store
from passerelle.cli import main
from passerelle.config import load_config

PURPOSE = """
id: credit-scoring
name: Credit scoring assistant
description: Summaries of applicants' files for credit officers
instructions: A credit officer reviews every summary
overseer: Marie Curie
owner: alice
risk_class: high-risk
annex_category: 5(b)
retention_days: 400
status: draft
"""
RISK = """
purpose_id: credit-scoring
title: Proxy discrimination
likelihood: 3
severity: 4
measures: Postcode removed from prompts
residual: medium
review_due: "2099-01-01"
"""


def run(tmp: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    command = list(args) if args[0] == "report" else ["aiact", *args]
    code = main([*command, "--config", str(tmp / "passerelle.yaml"), "--data-dir", str(tmp / "data")])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_purpose_lifecycle_switches_risks_and_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "passerelle.yaml").write_text("server: {log_level: error}\naiact: {turnover_eur: '1000000'}\n")
    (tmp_path / "purpose.yaml").write_text(PURPOSE)
    (tmp_path / "risk.yaml").write_text(RISK)
    assert run(tmp_path, capsys, "purpose", "put", str(tmp_path / "purpose.yaml"))[:2] == (
        0, "purpose credit-scoring is at version 1 (draft)\n")
    assert run(tmp_path, capsys, "purpose", "status", "credit-scoring", "active")[0] == 0
    code, out, _ = run(tmp_path, capsys, "purposes", "--json")
    assert code == 0 and json.loads(out)["data"][0]["version"] == 2
    (tmp_path / "bad.yaml").write_text(PURPOSE.replace("high-risk", "prohibited").replace("draft", "active"))
    code, _, err = run(tmp_path, capsys, "purpose", "put", str(tmp_path / "bad.yaml"))
    assert code == 1 and "prohibited category" in err
    assert run(tmp_path, capsys, "bind", "key_123", "credit-scoring")[0] == 0
    code, _, err = run(tmp_path, capsys, "bind", "key_123", "nope")
    assert code == 1 and "no purpose 'nope'" in err
    code, out, _ = run(tmp_path, capsys, "suspend", "purpose", "credit-scoring", "--reason", "audit", "--actor", "ops")
    assert code == 0 and out == "purpose credit-scoring is suspended\n"
    code, out, _ = run(tmp_path, capsys, "risk", "add", str(tmp_path / "risk.yaml"), "--json")
    risk_id = json.loads(out)["id"]
    code, _, err = run(tmp_path, capsys, "risk", "sign-off", risk_id, "--reviewer", "alice")
    assert code == 1 and "not the owner" in err
    assert run(tmp_path, capsys, "risk", "sign-off", risk_id, "--reviewer", "bob")[0] == 0
    code, out, _ = run(tmp_path, capsys, "incident", "add", "--purpose", "credit-scoring", "--title", "Outage",
                       "--severity", "serious", "--occurred", "2026-11-01", "--aware", "2026-11-02")
    assert code == 0 and "report due by 2026-11-17 00:00 UTC" in out
    code, out, _ = run(tmp_path, capsys, "report", "ai-act", "--purpose", "credit-scoring",
                       "--out", str(tmp_path / "report.html"))
    assert code == 0 and "audit chain intact" in out
    html = (tmp_path / "report.html").read_text()
    assert "suspended by the operator" in html and "bob" in html and "Outage" in html
    assert run(tmp_path, capsys, "report", "ai-act", "--purpose", "credit-scoring",
               "--out", str(tmp_path / "r.pdf"))[0] == 1
    records = asyncio.run(_admin_records(tmp_path))
    assert records == [("suspended", "ops", "credit-scoring")]


async def _admin_records(tmp: Path) -> list[tuple[str, str, str | None]]:
    store = await open_audit_store(load_config(tmp / "passerelle.yaml"), tmp / "data")
    try:
        async with store.snapshot() as view:
            return [(r.decision, r.key_id, r.purpose) async for r in view.records() if r.route == "admin"]
    finally:
        await store.aclose()
