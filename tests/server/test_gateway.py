"""Closing a worker's gateway: every part is closed, whatever becomes of the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from passerelle.audit.sqlite import SQLiteAuditStore
from passerelle.config import Config
from passerelle.pipeline.policies import PolicyRefresher
from passerelle.server import gateway as gateway_module
from passerelle.server.gateway import Gateway
from passerelle.stores import SQLiteStore
from tests.audit.conftest import event
from tests.stores.conftest import usage


async def test_a_part_that_fails_to_close_does_not_keep_the_ledger_and_the_audit_from_committing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(gateway_module, "log", lambda name, level, **fields: logged.append((name, fields)))
    closing = PolicyRefresher.aclose

    async def failing_close(self: PolicyRefresher) -> None:
        await closing(self)
        raise OSError("the policy store went away")

    monkeypatch.setattr(PolicyRefresher, "aclose", failing_close)  # the first part closed
    gw = await Gateway.open(Config(), tmp_path, None)
    gw.ledger.append(usage("req-1", 1_767_225_600.0))
    gw.audit.append(event(1))
    await gw.aclose()
    assert logged == [("close_failed", {"part": "policies", "error": "OSError: the policy store went away"})]
    store, audit = SQLiteStore(tmp_path / "passerelle.db"), SQLiteAuditStore(tmp_path / "audit.db")
    try:
        assert [u.request_id for u in await store.usage_records()] == ["req-1"]
        assert (await audit.head()).seq == 1
    finally:
        await store.aclose()
        await audit.aclose()
