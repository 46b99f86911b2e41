"""``passerelle compliance packs|policy``: the same checks as the admin API, a table for people, JSON for
programs, exit 1 with the admin API's error object for a refusal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from passerelle.audit.writer import open_audit_store
from passerelle.config import load_config
from tests.cli.test_admin_commands import as_json, run


def test_set_list_show_delete(tmp_path: Path) -> None:
    home = tmp_path / "data"
    run(home, "tenants", "create", "bank")
    key_id = as_json(home, "keys", "create", "--tenant", "bank")["id"]
    view = as_json(home, "compliance", "policy", "set", "--scope", "tenant", "--id", "bank", "--packs",
                   "finance,gdpr", "--override", "PHONE=mask", "--codeword", "Blue Harbor")
    assert (view["packs"], view["overrides"], view["codewords"]) == (["finance", "gdpr"], {"PHONE": "mask"},
                                                                      ["Blue Harbor"])
    inherited = as_json(home, "compliance", "policy", "set", "--scope", "key", "--id", key_id, "--override",
                        "EMAIL=allow")
    assert inherited["packs"] is None
    listed = as_json(home, "compliance", "policy", "list")
    assert [(p["scope"], p["scope_id"]) for p in listed] == [("key", key_id), ("tenant", "bank")]
    table = run(home, "compliance", "policy", "list").stdout
    assert "finance, gdpr" in table and "(inherited)" in table and "Blue Harbor" not in table  # a count only
    assert "PHONE=mask" in run(home, "compliance", "policy", "show", "--scope", "tenant", "--id", "bank").stdout
    effective = as_json(home, "compliance", "policy", "effective", key_id)
    assert [x["layer"] for x in effective["layers"]] == ["defaults", "tenant", "key"]
    assert effective["actions"]["PHONE"] == "mask" and "EMAIL" not in effective["actions"]
    assert "PHONE" in run(home, "compliance", "policy", "effective", key_id).stdout
    run(home, "compliance", "policy", "delete", "--scope", "key", "--id", key_id, "--actor", "ops")
    assert asyncio.run(_admin_records(home)) == [("policy_set", "cli", "tenant:bank"),
                                                 ("policy_set", "cli", f"key:{key_id}"),
                                                 ("policy_deleted", "ops", f"key:{key_id}")]
    assert [p["scope"] for p in as_json(home, "compliance", "policy", "list", "--scope", "key")] == []
    packs = as_json(home, "compliance", "packs")
    assert [p["name"] for p in packs] == ["finance", "health", "defense", "gdpr"]


def test_refusals_exit_1_with_the_admin_apis_error(tmp_path: Path) -> None:
    home = tmp_path / "data"
    run(home, "tenants", "create", "bank")
    cases = (
        (["--scope", "tenant", "--id", "bank", "--packs", "pci"], "invalid_request_error", "unknown pack"),
        (["--scope", "tenant", "--id", "bank", "--override", "PHONE"], "invalid_request_error", "TYPE=ACTION"),
        (["--scope", "tenant", "--id", "ghost", "--packs", "gdpr"], "not_found_error", "not found"),
    )
    for args, kind, words in cases:
        result = run(home, "compliance", "policy", "set", *args, "--json", code=1)
        error = json.loads(result.stderr)["error"]
        assert error["type"] == kind and words in error["message"]
    config = tmp_path / "passerelle.yaml"
    config.write_text("compliance: {tenants: {bank: {packs: [health]}}}\n")
    refused = run(home, "compliance", "policy", "set", "--scope", "tenant", "--id", "bank", "--packs", "finance",
                  config=config, code=1)
    assert "config file" in refused.stderr
    listed = as_json(home, "compliance", "policy", "list", config=config)
    assert [(p["scope_id"], p["source"]) for p in listed] == [("bank", "config")]


async def _admin_records(home: Path) -> list[tuple[str, str, object]]:
    """The audit records of the changes, read from the data directory the commands used."""
    store = await open_audit_store(load_config(None, env={}), home)
    try:
        async with store.snapshot() as view:
            return [(r.decision, r.key_id, r.extra["policy"]) async for r in view.records() if r.route == "admin"]
    finally:
        await store.aclose()
