"""The usage ledger and its reports, on SQLite and PostgreSQL: every sum is checked exactly
against the same sum computed in Python over the records."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passerelle.stores.records import REPORT_DIMENSIONS, ReportQuery, ReportRow, UsageRecord
from passerelle.stores.sql_store import SQLStore
from tests.stores.conftest import clear_ledger, usage

DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


# -- the reference: a report computed in Python ---------------------------------------------------------

def _value(dim: str, r: UsageRecord) -> str | None:
    if dim in ("day", "month"):
        return time.strftime("%Y-%m-%d" if dim == "day" else "%Y-%m", time.gmtime(int(r.ts)))
    if dim == "status":
        return str(r.status)
    if dim == "cache_hit":
        return "true" if r.cache_hit else "false"
    column = {"tenant": "tenant_id", "team": "team_id", "key": "key_id"}.get(dim, dim)
    value: str | None = getattr(r, column)
    return value


def expected_report(records: Sequence[UsageRecord], q: ReportQuery) -> list[ReportRow]:
    dims = tuple(dict.fromkeys(q.by))
    chosen = [r for r in records if (q.since is None or r.ts >= q.since) and (q.until is None or r.ts < q.until)
              and (q.tenant_id is None or r.tenant_id == q.tenant_id)]
    groups: dict[tuple[str | None, ...], list[UsageRecord]] = {}
    for r in chosen:
        groups.setdefault(tuple(_value(d, r) for d in dims), []).append(r)
    if not dims:
        groups = {(): chosen}
    rows = [ReportRow(dict(zip(dims, values, strict=True)), len(rs), sum(r.status >= 400 for r in rs),
                      sum(r.cache_hit for r in rs), sum(r.input_tokens for r in rs), sum(r.output_tokens for r in rs),
                      sum(r.cache_write_tokens for r in rs), sum(r.cache_read_tokens for r in rs),
                      sum(r.thinking_tokens for r in rs), sum(r.cost_pico for r in rs), sum(r.saved_pico for r in rs))
            for values, rs in groups.items()]
    return sorted(rows, key=lambda row: [(0, "") if v is None else (1, v) for v in row.group.values()])


def ledger_order(records: Sequence[UsageRecord]) -> list[UsageRecord]:
    return sorted(records, key=lambda r: (r.ts, r.request_id))


# -- generated records -------------------------------------------------------------------------------

TENANTS = ("acme", "beta", "z-corp")
MODELS = ("claude-test", "gpt-test", "Gpt-Test", "ωmega", "model_b")
# Day and month boundaries, and instants a millisecond or less around them: both backends and Python
# must put each on the same day.
EDGES = (T0, T0 + 31 * DAY, T0 + 59 * DAY, T0 + 365 * DAY)
EDGE_TS = st.builds(lambda edge, off: edge + off, st.sampled_from(EDGES),
                    st.sampled_from([0.0, 1e-6, -1e-6, 0.0004, -0.0004, 0.5, -0.5, -1.0, 3600.0, -3600.0]))
TS = st.one_of(EDGE_TS, st.floats(min_value=T0 - 40 * DAY, max_value=T0 + 400 * DAY, allow_nan=False))


@st.composite
def records(draw: st.DrawFn, max_size: int = 40) -> list[UsageRecord]:
    n = draw(st.integers(min_value=0, max_value=max_size))
    out = []
    for i in range(n):
        tenant = draw(st.sampled_from(TENANTS))
        out.append(usage(
            f"req-{i:04d}", draw(TS), tenant,
            team_id=draw(st.sampled_from([None, f"{tenant}/dev", f"{tenant}/ops"])),
            key_id=draw(st.sampled_from(["key_1", "key_2", "key_3"])),
            route=draw(st.sampled_from(["anthropic.messages", "openai.chat"])),
            model=draw(st.sampled_from(MODELS)),
            deployment=draw(st.sampled_from([None, "dep-a", "dep-b"])),
            provider=draw(st.sampled_from([None, "anthropic", "openai", "bedrock"])),
            upstream_model=draw(st.sampled_from([None, "gpt-4o"])),
            status=draw(st.sampled_from([200, 200, 201, 400, 429, 499, 500, 503])),
            latency_ms=draw(st.floats(min_value=0, max_value=1e6, allow_nan=False)),
            input_tokens=draw(st.integers(0, 2**40)), output_tokens=draw(st.integers(0, 2**31)),
            cache_write_tokens=draw(st.integers(0, 10**6)), cache_read_tokens=draw(st.integers(0, 10**9)),
            thinking_tokens=draw(st.integers(0, 10**6)), usage_estimated=draw(st.booleans()),
            cost_pico=draw(st.integers(0, 2**55)), saved_pico=draw(st.integers(0, 2**55)),
            cache_hit=draw(st.booleans()), price_version=draw(st.sampled_from(["", "2026-01"])),
        ))
    return out


WINDOW_POINTS = st.one_of(st.none(), EDGE_TS, st.floats(min_value=T0 - 40 * DAY, max_value=T0 + 400 * DAY,
                                                           allow_nan=False))
QUERIES = st.builds(ReportQuery, by=st.lists(st.sampled_from(REPORT_DIMENSIONS), max_size=3).map(tuple),
                    since=WINDOW_POINTS, until=WINDOW_POINTS, tenant_id=st.sampled_from([None, *TENANTS, "nobody"]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=records(), queries=st.lists(QUERIES, min_size=1, max_size=4))
async def test_reports_equal_python_sums(store: SQLStore, data: list[UsageRecord], queries: list[ReportQuery]) -> None:
    await clear_ledger(store)
    await store.append_usage(data)
    for q in queries:
        assert await store.report(q) == expected_report(data, q), q
        selected = [r for r in data if (q.since is None or r.ts >= q.since) and (q.until is None or r.ts < q.until)
                    and (q.tenant_id is None or r.tenant_id == q.tenant_id)]
        assert await store.usage_records(q.since, q.until, q.tenant_id) == ledger_order(selected)


async def test_every_pair_of_dimensions_over_several_windows(store: SQLStore) -> None:
    rng = random.Random(4)
    data = _random_records(rng, 600)
    await store.append_usage(data)
    windows = [(None, None), (T0, T0 + 31 * DAY), (T0 + 0.5, None), (None, T0 + 59 * DAY - 0.0004)]
    combos = [(), *((d,) for d in REPORT_DIMENSIONS), *itertools.combinations(REPORT_DIMENSIONS, 2),
              ("month", "tenant", "model"), ("tenant", "team", "key", "status", "cache_hit", "day")]
    for since, until in windows:
        for by in combos:
            for tenant_id in (None, "beta"):
                q = ReportQuery(by=by, since=since, until=until, tenant_id=tenant_id)
                assert await store.report(q) == expected_report(data, q), q


def _random_records(rng: random.Random, n: int) -> list[UsageRecord]:
    out = []
    for i in range(n):
        tenant = rng.choice(TENANTS)
        ts = rng.choice(EDGES) + rng.choice([0.0, -1e-6, 0.0004, -0.5]) if rng.random() < 0.2 else \
            T0 + rng.uniform(-40, 400) * DAY
        out.append(usage(f"r{i:05d}", ts, tenant, team_id=rng.choice([None, f"{tenant}/dev"]),
                         key_id=rng.choice(["key_1", "key_2"]), model=rng.choice(MODELS),
                         deployment=rng.choice([None, "dep-a", "dep-b"]), provider=rng.choice([None, "openai"]),
                         route=rng.choice(["anthropic.messages", "openai.chat"]),
                         status=rng.choice([200, 400, 429, 500]), cache_hit=rng.random() < 0.3,
                         input_tokens=rng.randrange(10**7), output_tokens=rng.randrange(10**6),
                         cache_write_tokens=rng.randrange(1000), cache_read_tokens=rng.randrange(10**5),
                         thinking_tokens=rng.randrange(1000), cost_pico=rng.randrange(2**50),
                         saved_pico=rng.randrange(2**40)))
    return out


async def test_usage_round_trips_exactly_in_ledger_order(store: SQLStore) -> None:
    data = [
        usage("b", T0 + 5.25, "acme", team_id="acme/dev", input_tokens=2**40 + 1, output_tokens=7,
              cache_write_tokens=3, cache_read_tokens=4, thinking_tokens=5, usage_estimated=True,
              cost_pico=2**62, saved_pico=1, cache_hit=True, price_version="2026-01", latency_ms=0.1),
        usage("a", T0 + 5.25, "beta", deployment=None, provider=None, upstream_model=None, status=499),
        usage("c", T0 + 1e-6, "acme", latency_ms=3),
    ]
    await store.append_usage(data)
    assert await store.usage_records() == [data[2], data[1], data[0]]
    assert await store.usage_records(since=T0 + 1) == [data[1], data[0]]
    assert await store.usage_records(until=T0 + 5.25) == [data[2]]
    assert await store.usage_records(tenant_id="acme") == [data[2], data[0]]
    assert await store.usage_records(since=T0 + 5.25, until=T0 + 5.250001, tenant_id="beta") == [data[1]]


async def test_duplicate_request_ids_are_ignored(store: SQLStore) -> None:
    await store.append_usage([usage("r1", T0, cost_pico=10), usage("r2", T0, cost_pico=20)])
    # A retried batch, a duplicate inside one batch: neither fails the writer nor counts twice.
    await store.append_usage([usage("r2", T0 + 1, cost_pico=99), usage("r3", T0, cost_pico=30),
                              usage("r3", T0 + 2, cost_pico=77)])
    assert [(r.request_id, r.cost_pico) for r in await store.usage_records()] == [("r1", 10), ("r2", 20), ("r3", 30)]
    assert (await store.report(ReportQuery()))[0].cost_pico == 60


async def test_a_batch_is_one_transaction(store: SQLStore) -> None:
    batch = [usage(f"r{i:04d}", T0 + i, cost_pico=i) for i in range(1000)]
    await store.append_usage(batch)
    assert await store.usage_records() == batch
    broken = [usage(f"s{i:04d}", T0 + i) for i in range(1000)]
    broken[500] = usage("s0500", T0, status=None)  # type: ignore[arg-type]  # NOT NULL: the row fails
    with pytest.raises(Exception):  # noqa: B017  # each backend's own integrity error
        await store.append_usage(broken)
    assert len(await store.usage_records()) == 1000  # none of the failed batch's rows were kept
    await store.append_usage([])
    assert (await store.report(ReportQuery()))[0].requests == 1000


async def test_report_values_and_order(store: SQLStore) -> None:
    await store.append_usage([
        usage("r1", T0 - 0.5, "beta", status=500, cache_hit=False, cost_pico=3),  # 2025-12-31 23:59:59.5
        usage("r2", T0, "acme", status=200, cache_hit=True, deployment=None, cost_pico=5, saved_pico=7),
        usage("r3", T0 + 31 * DAY + 1, "acme", status=429, cost_pico=11, input_tokens=100),
    ])
    rows = await store.report(ReportQuery(by=("month", "day", "status", "cache_hit", "deployment", "tenant")))
    assert [r.group for r in rows] == [
        {"month": "2025-12", "day": "2025-12-31", "status": "500", "cache_hit": "false", "deployment": "dep-a",
         "tenant": "beta"},
        {"month": "2026-01", "day": "2026-01-01", "status": "200", "cache_hit": "true", "deployment": None,
         "tenant": "acme"},
        {"month": "2026-02", "day": "2026-02-01", "status": "429", "cache_hit": "false", "deployment": "dep-a",
         "tenant": "acme"},
    ]
    totals = await store.report(ReportQuery())
    assert totals == [ReportRow({}, 3, 2, 1, 100, 0, 0, 0, 0, 19, 7)]
    assert [r.group["deployment"] for r in await store.report(ReportQuery(by=("deployment",)))] == [None, "dep-a"]


async def test_empty_reports(store: SQLStore) -> None:
    assert await store.report(ReportQuery()) == [ReportRow({}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    assert await store.report(ReportQuery(by=("model",))) == []
    await store.append_usage([usage("r1", T0)])
    assert await store.report(ReportQuery(by=("model",), since=T0 + 1)) == []


async def test_unknown_dimension_is_named(store: SQLStore) -> None:
    with pytest.raises(ValueError, match="'colour'"):
        await store.report(ReportQuery(by=("model", "colour")))
    with pytest.raises(ValueError, match="'ts; DROP TABLE usage_ledger'"):
        await store.report(ReportQuery(by=("ts; DROP TABLE usage_ledger",)))


async def test_report_and_records_never_cross_tenants(store: SQLStore) -> None:
    await store.append_usage([usage("a1", T0, "acme", cost_pico=1), usage("b1", T0, "beta", cost_pico=10),
                              usage("a2", T0 + 1, "acme", cost_pico=2)])
    rows = await store.report(ReportQuery(by=("tenant",), tenant_id="acme"))
    assert rows == [ReportRow({"tenant": "acme"}, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0)]
    assert await store.report(ReportQuery(by=("key",), tenant_id="nobody")) == []
    assert {r.tenant_id for r in await store.usage_records(tenant_id="beta")} == {"beta"}


async def test_spend_pico(store: SQLStore) -> None:
    await store.append_usage([
        usage("r1", T0, "acme", team_id="acme/dev", key_id="key_1", cost_pico=2**61),
        usage("r2", T0 + 10, "acme", team_id="acme/dev", key_id="key_2", cost_pico=2**61 + 3),
        usage("r3", T0 + 20, "acme", team_id=None, key_id="key_3", cost_pico=5),
        usage("r4", T0 + 30, "beta", team_id="beta/dev", key_id="key_4", cost_pico=7),
    ])
    assert await store.spend_pico("key", "key_1", T0) == 2**61
    assert await store.spend_pico("key", "key_1", T0 + 0.001) == 0
    assert await store.spend_pico("team", "acme/dev", T0) == 2**62 + 3
    assert await store.spend_pico("tenant", "acme", T0 + 10) == 2**61 + 8
    assert await store.spend_pico("tenant", "acme", 0) == 2**62 + 8
    assert await store.spend_pico("tenant", "nobody", 0) == 0
    with pytest.raises(ValueError, match="scope"):
        await store.spend_pico("org", "acme", 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", [0, 0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.05])
async def test_a_cancelled_append_keeps_all_or_nothing_and_the_store_usable(store: SQLStore, delay: float) -> None:
    # The ledger writer is cancelled at shutdown, at any point of its transaction (the delays aim at
    # different points; whichever is hit, the batch is whole or absent).
    batch = [usage(f"r{i:04d}", T0 + i, cost_pico=1) for i in range(300)]
    task = asyncio.create_task(store.append_usage(batch))
    await asyncio.sleep(delay)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    kept = len(await store.usage_records())
    assert kept in (0, 300)
    await store.append_usage([usage("after", T0 - 1, cost_pico=5)])
    assert (await store.report(ReportQuery()))[0].cost_pico == kept + 5
    assert await store.version() == 0
