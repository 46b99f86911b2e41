"""``passerelle audit``: verify names a tampered record (exit 1), export files verify on their own,
prune and legal holds, and bad input gets a message and an exit code, never a traceback."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from passerelle.audit.records import unsealed
from passerelle.audit.sqlite import SQLiteAuditStore
from passerelle.cli import main
from tests.audit.conftest import T0, event, open_pg
from tests.support.backends import POSTGRES_DSN, REDIS_URL, drop_schema


def fill(data: Path, n: int, **kw: object) -> None:
    async def go() -> None:
        store = SQLiteAuditStore(data / "audit.db")
        try:
            await store.append([unsealed(event(i, **kw), store_content=False) for i in range(1, n + 1)])
        finally:
            await store.aclose()
    asyncio.run(go())


def tamper(data: Path, sql: str) -> None:
    db = sqlite3.connect(data / "audit.db", isolation_level=None)
    try:
        db.execute("DROP TRIGGER audit_records_no_update")
        db.execute("DROP TRIGGER audit_records_no_delete")
        db.execute(sql)
    finally:
        db.close()


def run(data: Path, *args: str) -> int:
    return main(["audit", *args, "--data-dir", str(data)])


def test_verify_intact_then_tampered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path, 12)
    assert run(tmp_path, "verify") == 0
    assert "audit chain intact: 12 records" in capsys.readouterr().out
    assert run(tmp_path, "head") == 0
    head = capsys.readouterr().out.strip()
    tamper(tmp_path, "UPDATE audit_records SET model = 'other' WHERE seq = 9")
    assert run(tmp_path, "verify") == 1
    assert "BROKEN at record 9 (request req-00009): edited" in capsys.readouterr().out
    assert run(tmp_path, "verify", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["break"]["seq"] == 9 and report["break"]["kind"] == "edited"
    assert run(tmp_path, "verify", "--expect", head) == 1  # the head is intact, record 9 is not


def test_truncation_is_caught_with_a_kept_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path, 5)
    run(tmp_path, "head")
    head = capsys.readouterr().out.strip()
    tamper(tmp_path, "DELETE FROM audit_records WHERE seq = 5")
    assert run(tmp_path, "verify") == 0  # the chain alone cannot tell
    capsys.readouterr()
    assert run(tmp_path, "verify", "--expect", head) == 1
    assert "truncated" in capsys.readouterr().out


def test_export_and_verify_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path, 6)
    out = tmp_path / "audit.jsonl"
    assert run(tmp_path, "export", "-o", str(out)) == 0
    assert "exported 6 records" in capsys.readouterr().out
    assert main(["audit", "verify", "--file", str(out)]) == 0
    lines = out.read_text().splitlines()
    out.write_text("\n".join([lines[0], *lines[1:3], lines[4], lines[3], *lines[5:]]) + "\n")
    assert main(["audit", "verify", "--file", str(out)]) == 1
    assert "reordered" in capsys.readouterr().out
    assert run(tmp_path, "export", "--tenant", "acme", "--since", str(T0 + 3)) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 + 4 and "exported 4 records" in captured.err


def test_prune_and_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path, 4)
    assert run(tmp_path, "hold", "add", "--tenant", "acme", "--reason", "case 42", "--json") == 0
    hold_id = json.loads(capsys.readouterr().out)["id"]
    assert run(tmp_path, "prune", "--now", "2027-06-01") == 0
    assert "pruned 0 records; record 1 and later stay (hold)" in capsys.readouterr().out
    assert run(tmp_path, "hold", "list") == 0
    assert hold_id in capsys.readouterr().out
    assert run(tmp_path, "hold", "release", hold_id) == 0
    assert run(tmp_path, "prune", "--now", "2027-06-01", "--dry-run") == 0
    assert "would prune 4 records" in capsys.readouterr().out
    assert run(tmp_path, "prune", "--now", "2027-06-01") == 0
    assert run(tmp_path, "verify") == 0
    assert "0 records after seq 4" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "code", "message"), [
    (("hold", "add", "--tenant", "Not A Tenant", "--reason", "x"), 1, "invalid tenant id"),
    (("hold", "add", "--tenant", "acme", "--reason", ""), 1, "--reason"),
    (("hold", "release", "hold_nope"), 1, "no legal hold"),
    (("export", "--since", "yesterday-ish"), 1, "--since"),
    (("export", "-o", "/nonexistent/dir/x.jsonl"), 1, "cannot write"),
    (("prune", "--now", "soon"), 1, "--now"),
])
def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], code: int,
                   message: str) -> None:
    assert run(tmp_path, *args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["audit", "verify", "--file", str(missing)]) == 2
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"format": "passerelle-audit-export/1", "complete": true, "start": {"seq": 0, "hash": "0"}}\n'
                       "not json\n")
    assert main(["audit", "verify", "--file", str(garbage)]) == 2
    assert "line 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "verify", "--expect", "12"])
    assert exit_.value.code == 2


def test_prune_refuses_a_broken_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path, 3)
    tamper(tmp_path, "UPDATE audit_records SET status = 500 WHERE seq = 2")
    assert run(tmp_path, "prune", "--now", "2030-01-01") == 1
    assert "broken at record 2" in capsys.readouterr().err


def test_postgres_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = f"test_{uuid.uuid4().hex}"
    config = tmp_path / "passerelle.yaml"
    config.write_text(f"store: {{backend: postgres, postgres_dsn: '{POSTGRES_DSN}', postgres_schema: {schema}, "
                      f"redis_url: '{REDIS_URL}'}}\n")

    async def fill_pg() -> None:
        store = await open_pg(schema)
        try:
            await store.append([unsealed(event(i), store_content=False) for i in range(1, 4)])
        finally:
            await store.aclose()
    try:
        asyncio.run(fill_pg())
        assert main(["audit", "verify", "--config", str(config)]) == 0
        assert "intact: 3 records" in capsys.readouterr().out
    finally:
        asyncio.run(drop_schema(schema))
