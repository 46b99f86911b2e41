"""The console's store queries on both backends: one filtered page of keys with its total, and the
latency histogram computed in the database."""

from __future__ import annotations

import dataclasses

from passerelle.stores.records import LATENCY_BUCKETS_MS, KeyQuery, ReportQuery
from passerelle.stores.sql_store import SQLStore
from tests.stores.conftest import clear_ledger, key, tenant, usage


async def test_page_keys_filters_pages_and_counts(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_tenant(tenant("beta"))
    for i in range(23):
        k = key(f"key_a{i:02d}", "acme")
        await store.create_key(dataclasses.replace(k, created_at=1000.0 + i,
                                                   name="Promo_50%" if i == 7 else f"batch {i}"))
    await store.create_key(dataclasses.replace(key("key_b1", "beta"), expires_at=1500.0))
    await store.revoke_key("key_a03", 2000.0)

    page1, total = await store.page_keys(KeyQuery(tenant_id="acme", limit=10))
    assert total == 23 and [k.id for k in page1][:2] == ["key_a22", "key_a21"]  # newest first
    page3, total = await store.page_keys(KeyQuery(tenant_id="acme", offset=20, limit=10))
    assert total == 23 and [k.id for k in page3] == ["key_a02", "key_a01", "key_a00"]

    revoked, n = await store.page_keys(KeyQuery(status="revoked", now=3000.0))
    assert n == 1 and revoked[0].id == "key_a03"
    expired, n = await store.page_keys(KeyQuery(status="expired", now=3000.0))
    assert n == 1 and expired[0].id == "key_b1"
    active, n = await store.page_keys(KeyQuery(status="active", now=3000.0, limit=100))
    assert n == 22 and "key_a03" not in {k.id for k in active}
    _, n = await store.page_keys(KeyQuery(status="active", now=1000.0, limit=100))
    assert n == 23  # key_b1 had not expired yet then

    # The search is a case-insensitive substring, LIKE wildcards in it are literal.
    found, n = await store.page_keys(KeyQuery(search="PROMO_50%"))
    assert n == 1 and found[0].id == "key_a07"
    _, n = await store.page_keys(KeyQuery(search="%"))
    assert n == 1
    _, n = await store.page_keys(KeyQuery(search="key_a1"))
    assert n == 10


async def test_latency_histogram_buckets(store: SQLStore) -> None:
    await clear_ledger(store)
    latencies = [3.0, 9.99, 10.0, 480.0, 120_000.0]
    await store.append_usage([usage(f"r{i}", 5000.0 + i, latency_ms=ms) for i, ms in enumerate(latencies)]
                             + [usage("old", 10.0, latency_ms=1.0), usage("other", 5000.0, "beta", latency_ms=1.0)])
    counts = await store.latency_histogram(1000.0, None, "acme")
    assert len(counts) == len(LATENCY_BUCKETS_MS) + 1
    assert counts[0] == 2 and counts[1] == 1 and counts[LATENCY_BUCKETS_MS.index(500)] == 1 and counts[-1] == 1
    assert sum(await store.latency_histogram(None, None)) == 7
    assert sum(await store.latency_histogram(1000.0, 5003.0)) == 4


async def test_report_top_groups_are_chosen_by_the_database(store: SQLStore) -> None:
    await clear_ledger(store)
    records = [usage(f"r{k}-{i}", 5000.0 + i, key_id=f"key_{k}") for k in range(8) for i in range(k + 1)]
    await store.append_usage(records)
    top = await store.report(ReportQuery(("key",), top=3))
    assert sorted((r.group["key"], r.requests) for r in top) == [("key_5", 6), ("key_6", 7), ("key_7", 8)]
    assert len(await store.report(ReportQuery(("key",)))) == 8
