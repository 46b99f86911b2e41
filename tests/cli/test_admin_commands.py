"""`passerelle tenants|teams|keys|budgets|limits|usage` as an operator runs them: real processes,
the embedded store in a temporary data directory (and once the PostgreSQL + Redis pair)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from passerelle.pipeline.auth import digest
from passerelle.stores.records import UsageRecord
from passerelle.stores.sqlite import SQLiteStore
from tests.stores.conftest import PG_DSN, drop_schema
from tests.stores.counters_fixtures import REDIS_URL, delete_prefix
from tests.support.processes import SRC


def env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return {**keep, "PYTHONPATH": SRC}


def run(home: Path, *args: str, code: int = 0, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--config", str(config)] if config else []
    result = subprocess.run([sys.executable, "-m", "passerelle", *args, "--data-dir", str(home), *extra],
                            capture_output=True, text=True, env=env(), timeout=60)
    assert result.returncode == code, result.stdout + result.stderr
    return result


def as_json(home: Path, *args: str, config: Path | None = None) -> Any:
    return json.loads(run(home, *args, "--json", config=config).stdout)


def test_key_lifecycle_and_the_secret_shown_once(tmp_path: Path) -> None:
    home = tmp_path / "data"
    assert as_json(home, "tenants", "create", "acme", "--name", "Acme")["id"] == "acme"
    assert as_json(home, "teams", "create", "ml", "--tenant", "acme")["id"] == "acme/ml"
    created = run(home, "keys", "create", "--team", "acme/ml", "--name", "ci", "--models", "claude-*,gpt-4o",
                  "--routes", "messages", "--expires", "90d", "--metadata", "owner=bob", "--json")
    key = json.loads(created.stdout)
    secret = key["secret"]
    assert "will not be shown again" in created.stderr
    assert secret.startswith("sk-pas-") and key["models"] == ["claude-*", "gpt-4o"]
    assert key["metadata"] == {"owner": "bob"} and key["tenant"] == "acme" and key["expires_at"]
    listing = run(home, "keys", "list", "--tenant", "acme", "--json").stdout
    shown = run(home, "keys", "show", key["id"]).stdout
    for text in (listing, shown):
        assert secret not in text and digest(secret) not in text
    assert [k["id"] for k in json.loads(listing)] == [key["id"]]
    assert key["prefix"] in run(home, "keys", "list").stdout  # the human table names the key by its prefix
    revoked = as_json(home, "keys", "revoke", key["id"])
    assert revoked["status"] == "revoked"
    plain = run(home, "keys", "create", "--tenant", "acme")  # without --json: the secret on its own line
    assert plain.stdout.splitlines()[-1].startswith("sk-pas-")


def test_refusals_exit_1_with_a_message(tmp_path: Path) -> None:
    home = tmp_path / "data"
    run(home, "tenants", "create", "acme")
    assert "already exists" in run(home, "tenants", "create", "acme", code=1).stderr
    assert "not found" in run(home, "keys", "show", "key_ghost", code=1).stderr
    error = json.loads(run(home, "keys", "create", "--tenant", "ghost", "--json", code=1).stderr)
    assert error["error"]["type"] == "not_found_error"
    assert "limit_usd" in run(home, "budgets", "set", "--scope", "tenant", "--id", "acme", "--limit-usd", "-5",
                              code=1).stderr
    assert "metadata" in run(home, "tenants", "create", "beta", "--metadata", "novalue", code=1).stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: {backend: postgres}\n")
    assert "postgres_dsn" in run(home, "tenants", "list", config=bad, code=2).stderr


def test_policies(tmp_path: Path) -> None:
    home = tmp_path / "data"
    run(home, "tenants", "create", "acme")
    budget = as_json(home, "budgets", "set", "--scope", "tenant", "--id", "acme", "--period", "day",
                     "--limit-usd", "25.50", "--mode", "soft", "--webhook", "https://hooks.example/b")
    assert budget["limit_usd"] == "25.50" and budget["mode"] == "soft"
    limit = as_json(home, "limits", "set", "--scope", "tenant", "--id", "acme", "--rpm", "60", "--concurrent", "4")
    assert (limit["rpm"], limit["tpm"], limit["concurrent"]) == (60, None, 4)
    assert [b["id"] for b in as_json(home, "budgets", "list", "--scope", "tenant", "--id", "acme")] == [budget["id"]]
    assert "25.50" in run(home, "budgets", "list").stdout
    run(home, "limits", "delete", limit["id"])
    assert as_json(home, "limits", "list") == []
    run(home, "budgets", "delete", budget["id"])
    run(home, "budgets", "delete", budget["id"], code=1)


def seed(db: Path, records: list[UsageRecord]) -> None:
    async def append() -> None:
        store = SQLiteStore(db)
        try:
            await store.append_usage(records)
        finally:
            await store.aclose()

    asyncio.run(append())


def test_usage_csv_and_json_add_up_to_the_ledger(tmp_path: Path) -> None:
    home = tmp_path / "data"
    run(home, "tenants", "list")  # creates the database
    now = time.time()
    records = [UsageRecord(request_id=f"req_{i}", ts=now - 3600 * 5 * i, tenant_id=("acme", "beta")[i % 2],
                           team_id=None, key_id="key_1", route="messages", model=("m1", "m2", "m3")[i % 3],
                           deployment="d", provider="anthropic", upstream_model="u", status=200, latency_ms=3.0,
                           input_tokens=i, output_tokens=2 * i, cost_pico=987_654_321 * i + 3) for i in range(50)]
    seed(home / "passerelle.db", records)
    recent = [r for r in records if r.ts >= now - 7 * 86_400 + 60]  # a minute of slack for the process start
    lines = list(csv.DictReader(io.StringIO(run(home, "usage", "--by", "tenant,model", "--since", "7d",
                                                "--csv").stdout)))
    assert {(line["tenant"], line["model"]) for line in lines} == {(r.tenant_id, r.model) for r in recent}
    assert sum(int(line["requests"]) for line in lines) == len(recent)
    assert sum(Decimal(line["cost_usd"]) for line in lines) == Decimal(sum(r.cost_pico for r in recent)) / 10**12
    data = as_json(home, "usage", "--tenant", "beta")
    beta = [r for r in records if r.tenant_id == "beta"]
    assert data["totals"]["requests"] == len(beta) and data["tenant"] == "beta"
    assert Decimal(data["totals"]["cost_usd"]) == Decimal(sum(r.cost_pico for r in beta)) / 10**12
    table = run(home, "usage", "--by", "tenant").stdout.splitlines()
    assert table[-1].split()[:2] == ["TOTAL", str(len(records))]
    assert "unknown dimension" in run(home, "usage", "--by", "colour", code=1).stderr


@pytest.fixture
def scale_out_config(tmp_path: Path) -> Any:
    schema, prefix = f"test_{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}:"
    path = tmp_path / "pg.yaml"
    path.write_text(f"store: {{backend: postgres, postgres_dsn: '{PG_DSN}', postgres_schema: {schema}, "
                    f"redis_url: '{REDIS_URL}', redis_prefix: '{prefix}'}}\n")
    yield path
    asyncio.run(drop_schema(schema))
    asyncio.run(delete_prefix(prefix))


def test_the_configured_store_is_used(tmp_path: Path, scale_out_config: Path) -> None:
    home = tmp_path / "data"
    run(home, "tenants", "create", "acme", config=scale_out_config)
    key = as_json(home, "keys", "create", "--tenant", "acme", config=scale_out_config)
    assert [k["id"] for k in as_json(home, "keys", "list", config=scale_out_config)] == [key["id"]]
    assert as_json(home, "keys", "list") == []  # the embedded store of the same data directory is another one
