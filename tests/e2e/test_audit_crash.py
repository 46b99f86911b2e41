"""The audit log's durability, through the real gateway: two worker processes under load, the whole process
group killed with SIGKILL, then the chain must verify, stay gapless, hold only requests that were made, and
have lost at most what was answered during the last flush interval (docs/audit.md)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
import uuid
from pathlib import Path

import httpx

from passerelle.cli import main as cli
from tests.support.processes import Server, start_gateway

KEY = "sk-app-audit-crash"
CONFIG = """
providers:
  up: {{type: openai, api_key: sk-up, base_url: "{sim}/v1"}}
models:
  gpt-test: {{deployments: [{{provider: up, model: gpt-4o}}]}}
keys:
  - {{name: app, key: {key}}}
compliance: {{packs: [finance]}}
audit: {{flush_interval: 0.2}}
"""


async def _load(url: str, stop_at: float, answered: dict[str, float], sent: set[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while time.monotonic() < stop_at:
            request_id = f"crash-{uuid.uuid4().hex}"
            sent.add(request_id)
            try:
                response = await client.post("/v1/chat/completions", headers={
                    "authorization": f"Bearer {KEY}", "x-request-id": request_id},
                    json={"model": "gpt-test", "max_tokens": 8,
                          "messages": [{"role": "user", "content": "card 4970 1012 3456 7893, thanks"}]})
            except httpx.HTTPError:
                return  # the gateway is gone
            if response.status_code == 200:
                answered[request_id] = time.monotonic()


def test_a_killed_gateway_leaves_a_verifiable_gapless_chain_missing_only_its_last_flush(
        tmp_path: Path, simulator: Server) -> None:
    gateway = start_gateway(tmp_path, CONFIG.format(sim=simulator.url, key=KEY), workers=2)
    answered: dict[str, float] = {}
    sent: set[str] = set()

    async def run() -> float:
        kill_at = time.monotonic() + 3.0
        loads = [asyncio.create_task(_load(gateway.url, kill_at + 5, answered, sent)) for _ in range(16)]
        await asyncio.sleep(kill_at - time.monotonic())
        os.killpg(gateway.proc.pid, signal.SIGKILL)  # the supervisor and both workers, mid-request
        killed = time.monotonic()
        await asyncio.gather(*loads)
        return killed

    try:
        killed = asyncio.run(run())
    finally:
        gateway.stop(signal.SIGKILL)
    assert len(answered) > 100, "the gateway was not under load"

    assert cli(["audit", "verify", "--data-dir", str(tmp_path / "data")]) == 0
    with sqlite3.connect(tmp_path / "data" / "audit.db") as db:
        rows = db.execute("SELECT seq, request_id, status, findings FROM audit_records ORDER BY seq").fetchall()
    seqs = [r[0] for r in rows]
    assert seqs == list(range(1, len(seqs) + 1))  # gapless, no half-written record
    recorded = {r[1] for r in rows}
    assert recorded <= sent  # nothing invented
    assert all(json.loads(r[3])[0]["type"] == "CREDIT_CARD" for r in rows if r[2] == 200)
    lost = set(answered) - recorded
    recent = {rid for rid, at in answered.items() if at > killed - 1.0}  # the last flush interval, with margin
    assert lost <= recent, f"{len(lost - recent)} answered requests older than 1 s before the kill are missing"
