"""The usage ledger, costs, reports, soft-budget alerts, the response cache and cost-aware routing."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from passerelle.stores.records import ReportQuery
from tests.pipeline.conftest import a_headers, anthropic_body, o_headers
from tests.support.servers import serve_app


async def test_every_request_is_priced_and_reports_match_the_ledger(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness(models="  other-model: {deployments: [{provider: sim}]}",
                           prices="    - {provider: simulator, model: other-model, input: '0.25', output: '1.25'}")
    await h.tenant("acme")
    await h.tenant("globex")
    acme, acme_id = await h.key("acme")
    globex, _ = await h.key("globex")
    plan = [(acme, "test-model", "hello there"), (acme, "other-model", "a longer question here"),
            (globex, "test-model", "hi"), (globex, "other-model", "x"), (acme, "test-model", "again")]
    for key, model, text in plan:
        response = await h.client.post("/v1/messages", json={**anthropic_body(text), "model": model},
                                       headers=a_headers(key))
        assert response.status_code == 200
        usage = response.json()["usage"]
        assert usage["output_tokens"] == 10
    await h.client.post("/v1/messages", json={**anthropic_body(), "model": "nope"}, headers=a_headers(acme))
    records = await h.records()
    assert len(records) == 6 and all(r.request_id for r in records)
    prices = {"test-model": (100_000, 10_000_000), "other-model": (250_000, 1_250_000)}  # pico-USD per token
    for rec in records:
        if rec.status == 200:
            per_in, per_out = prices[rec.model]
            assert rec.cost_pico == rec.input_tokens * per_in + rec.output_tokens * per_out
            assert rec.provider == "simulator" and rec.price_version
        else:
            assert rec.status == 404 and rec.cost_pico == 0 and rec.deployment is None
    assert {r.tenant_id for r in records if r.key_id == acme_id} == {"acme"}
    rows = await h.gw.store.report(ReportQuery(by=("tenant", "model")))
    for row in rows:
        matching = [r for r in records if r.tenant_id == row.group["tenant"] and r.model == row.group["model"]]
        assert row.requests == len(matching)
        assert row.cost_pico == sum(r.cost_pico for r in matching)
        assert row.input_tokens == sum(r.input_tokens for r in matching)
        assert row.output_tokens == sum(r.output_tokens for r in matching)
    assert sum(row.cost_pico for row in rows) == sum(r.cost_pico for r in records)
    only_globex = await h.gw.store.report(ReportQuery(by=("key",), tenant_id="globex"))
    assert sum(row.requests for row in only_globex) == 2


async def test_streams_are_metered_and_a_cut_stream_is_estimated(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness(providers="  cut: {type: simulator, simulator: {mode: fixed, output_tokens: 40, "
                                     "faults: {stream_cut: 1.0}}}",
                           models="  cut-model: {deployments: [{provider: cut}]}",
                           prices="    - {provider: simulator, model: cut-model, input: '1', output: '2'}")
    await h.tenant("acme")
    key, _ = await h.key("acme")
    whole = await h.client.post("/v1/messages", json=anthropic_body(stream=True), headers=a_headers(key))
    assert whole.status_code == 200 and "message_stop" in whole.text
    cut = await h.client.post("/v1/messages", json={**anthropic_body(stream=True, max_tokens=100),
                                                   "model": "cut-model"}, headers=a_headers(key))
    assert cut.status_code == 200
    records = {r.model: r for r in await h.records()}
    assert records["test-model"].output_tokens == 10 and not records["test-model"].usage_estimated
    estimated = records["cut-model"]
    assert estimated.usage_estimated and estimated.input_tokens >= 1 and estimated.output_tokens >= 1
    assert estimated.cost_pico == estimated.input_tokens * 1_000_000 + estimated.output_tokens * 2_000_000


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async for url in serve_app(app):
        yield url + "/hook", received


async def test_soft_budget_alerts_once_and_lets_requests_through(make_harness, webhook) -> None:  # type: ignore[no-untyped-def]
    url, received = webhook
    h = await make_harness()
    await h.tenant("acme")
    key, key_id = await h.key("acme")
    budget = await h.budget("key", key_id, "0.00003", mode="soft", webhook=url, period="day")
    codes = [(await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(key))).status_code
             for _ in range(5)]
    assert codes == [200] * 5
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.02)
    await h.gw.limiter.aclose()
    assert len(received) == 1
    alert = received[0]
    assert alert["event"] == "budget_soft_limit_crossed" and alert["budget_id"] == budget.id
    assert alert["scope"] == "key" and alert["period"] == "day" and alert["limit_usd"] == "0.00003"


async def test_cache_answers_repeats_per_tenant_and_reports_savings(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness("cache: {enabled: true, ttl: 60}")
    await h.tenant("acme")
    await h.tenant("globex")
    acme, _ = await h.key("acme")
    globex, _ = await h.key("globex")
    body = anthropic_body("what is the capital of France?")
    first = await h.client.post("/v1/messages", json=body, headers=a_headers(acme))
    await asyncio.sleep(0.05)  # the store happens in the background
    second = await h.client.post("/v1/messages", json=body, headers=a_headers(acme))
    assert "x-passerelle-cache" not in first.headers and second.headers["x-passerelle-cache"] == "hit"
    assert second.json()["content"] == first.json()["content"]
    # The same question in the OpenAI dialect, streamed, is the same entry.
    streamed = await h.client.post("/v1/chat/completions", headers=o_headers(acme),
                                   json={"model": "test-model", "max_tokens": 10, "stream": True,
                                         "messages": [{"role": "user", "content": "what is the capital of France?"}]})
    assert streamed.headers.get("x-passerelle-cache") == "hit" and "[DONE]" in streamed.text
    other_tenant = await h.client.post("/v1/messages", json=body, headers=a_headers(globex))
    assert "x-passerelle-cache" not in other_tenant.headers
    opted_out = await h.client.post("/v1/messages", json=body, headers={**a_headers(acme),
                                                                          "cache-control": "no-store"})
    assert "x-passerelle-cache" not in opted_out.headers
    records = await h.records()
    hits = [r for r in records if r.cache_hit]
    misses = [r for r in records if not r.cache_hit and r.tenant_id == "acme"]
    assert len(hits) == 2 and all(r.cost_pico == 0 and r.deployment is None for r in hits)
    assert all(r.saved_pico == misses[0].cost_pico > 0 for r in hits)
    rows = await h.gw.store.report(ReportQuery(by=("tenant", "cache_hit")))
    saved = {(row.group["tenant"], row.group["cache_hit"]): row.saved_pico for row in rows}
    assert saved[("acme", "true")] == 2 * misses[0].cost_pico


async def test_cost_strategy_prefers_the_cheapest_healthy_deployment(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness(
        providers="  dear: {type: simulator}\n  cheap: {type: simulator}\n"
                  "  broken: {type: simulator, simulator: {faults: {server_error: 1.0}}}",
        models="  smart: {strategy: cost, deployments: [{provider: dear, model: big, name: dear}, "
               "{provider: cheap, model: small, name: cheap}]}\n"
               "  fragile: {strategy: cost, deployments: [{provider: broken, model: tiny, name: broken}, "
               "{provider: dear, model: big, name: dear}]}",
        prices="    - {provider: simulator, model: big, input: '15', output: '75'}\n"
               "    - {provider: simulator, model: small, input: '0.8', output: '4'}\n"
               "    - {provider: simulator, model: tiny, input: '0.1', output: '0.1'}")
    await h.tenant("acme")
    key, _ = await h.key("acme")
    used = Counter()
    for _ in range(10):
        r = await h.client.post("/v1/messages", json={**anthropic_body(), "model": "smart"}, headers=a_headers(key))
        used[r.headers["x-passerelle-deployment"]] += 1
    assert used == Counter({"cheap": 10})
    # The cheapest deployment fails: the next cheapest answers.
    r = await h.client.post("/v1/messages", json={**anthropic_body(), "model": "fragile"}, headers=a_headers(key))
    assert r.status_code == 200 and r.headers["x-passerelle-deployment"] == "dear"


async def test_a_ledger_flush_commits_what_was_queued_when_it_began() -> None:
    from typing import Any, cast

    from passerelle.config import StoreConfig
    from passerelle.pipeline.metering import LedgerWriter

    class SlowStore:
        def __init__(self) -> None:
            self.batches: list[list[str]] = []

        async def append_usage(self, batch: list[Any]) -> None:
            await asyncio.sleep(0)
            self.batches.append(list(batch))
            writer.append(f"late-{len(self.batches)}")  # traffic keeps coming while it commits

    store = SlowStore()
    writer = LedgerWriter(cast(Any, store), StoreConfig(ledger_batch=2))
    for i in range(5):
        writer.append(cast(Any, f"r{i}"))
    await writer.flush()
    assert store.batches == [["r0", "r1"], ["r2", "r3"], ["r4"]]  # the next flush takes the late ones
    await writer.flush()
    assert store.batches[3] == ["late-1", "late-2"]


@pytest.mark.parametrize("stop", ["aclose", "cancel"])
async def test_a_stop_during_a_ledger_commit_loses_nothing(stop: str) -> None:
    # A commit that a cancellation interrupts is rolled back (as PostgreSQL's would be).  A graceful stop once
    # cancelled the writer in the middle of one and lost its batch; a cancellation from outside (an event
    # loop's teardown) must put the batch back for the final flush.
    from typing import Any, cast

    from passerelle.config import StoreConfig
    from passerelle.pipeline.metering import LedgerWriter

    committing = asyncio.Event()

    class Ledger:
        def __init__(self) -> None:
            self.rows: dict[str, int] = {}

        async def append_usage(self, batch: list[Any]) -> None:
            committing.set()
            await asyncio.sleep(0.1)  # the transaction: cancelled here, it writes nothing
            for request_id in batch:
                self.rows.setdefault(request_id, len(self.rows))  # a known request id is ignored

    ledger = Ledger()
    writer = LedgerWriter(cast(Any, ledger), StoreConfig(ledger_flush_interval=0.01, ledger_batch=1000))
    for i in range(20):
        writer.append(cast(Any, f"r{i:02d}"))
    writer.start()
    await asyncio.wait_for(committing.wait(), 5)
    if stop == "cancel":
        task = writer._writer.task
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await writer.aclose()
    assert sorted(ledger.rows, key=ledger.rows.__getitem__) == [f"r{i:02d}" for i in range(20)]
