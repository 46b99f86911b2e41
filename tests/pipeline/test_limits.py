"""Budgets and rate limits through the chat routes, on both backend pairs."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

import httpx

from passerelle.stores.records import pico_to_usd
from tests.pipeline.conftest import a_headers, anthropic_body, o_headers

# test-model: $0.1 / MTok input, $10 / MTok output; the simulator answers 10 tokens.  A request
# ("hello there", max_tokens 10) reserves $0.0001238 (an input bound of 119 tokens at the dearest
# input rate, 1-hour cache writes, plus 10 output tokens) and really costs about $0.0001003.


async def test_hard_budget_is_never_exceeded_under_concurrency(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness()
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    await h.budget("key", key_id, "0.002")  # about 20 requests' real cost

    async def one() -> httpx.Response:
        return await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))

    responses = await asyncio.gather(*(one() for _ in range(80)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 402}, statuses
    assert 10 <= statuses.count(200) <= 20
    for r in responses:
        if r.status_code == 402:
            error = r.json()["error"]
            assert error["type"] == "billing_error" and "budget exceeded" in error["message"]
            assert r.headers["x-should-retry"] == "false"
    records = await h.records()
    spent = sum(rec.cost_pico for rec in records if rec.key_id == key_id)
    assert 0 < pico_to_usd(spent) <= Decimal("0.002")
    assert sum(1 for rec in records if rec.status == 200) == statuses.count(200)
    assert all(rec.cost_pico == 0 for rec in records if rec.status == 402)
    # Once spent, later requests are refused too, in the OpenAI dialect as OpenAI's quota error.
    for _ in range(20):
        late = await h.client.post("/v1/chat/completions", headers=o_headers(secret),
                                   json={"model": "test-model", "max_tokens": 10,
                                         "messages": [{"role": "user", "content": "hello there"}]})
        if late.status_code == 402:
            break
    assert late.status_code == 402
    assert late.json()["error"]["code"] == "insufficient_quota"


async def test_team_and_tenant_budgets_cover_every_key_below_them(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness()
    await h.tenant("acme", team="payments")
    first, _ = await h.key("acme", "acme/payments")
    second, _ = await h.key("acme", "acme/payments")
    await h.budget("team", "acme/payments", "0.00025")  # two requests for the whole team
    codes = [(await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(k))).status_code
             for k in (first, second, first, second, first)]
    assert codes == [200, 200, 402, 402, 402]


async def test_a_budget_changed_during_the_day_applies_to_the_next_request(make_harness) -> None:  # type: ignore[no-untyped-def]
    """Admission keeps each key's budgets and limits of the day once worked out: a new policy snapshot (a
    budget raised, a limit added) must replace them at once."""
    h = await make_harness()
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    budget = await h.budget("key", key_id, "0.0001")  # less than one request's reservation
    refused = await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))
    assert refused.status_code == 402
    await h.gw.store.put_budget(dataclasses.replace(budget, limit_usd=Decimal("1")))
    await h.gw.policies.refresh()
    assert (await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))).status_code == 200
    await h.limit("key", key_id, rpm=1)
    limited = await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))
    assert limited.status_code == 200 and limited.headers["anthropic-ratelimit-requests-limit"] == "1"
    assert (await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))).status_code == 429


async def test_openai_request_without_max_tokens_is_capped_under_a_hard_budget(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness(metering="  default_max_tokens: 64")
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    await h.budget("key", key_id, "1")
    response = await h.client.post("/v1/chat/completions", headers=o_headers(secret),
                                   json={"model": "test-model", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200


async def test_unpriced_model_under_a_hard_budget_is_refused_clearly(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness(models="  unpriced-model: {deployments: [{provider: sim}]}")
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    await h.budget("key", key_id, "1")
    response = await h.client.post("/v1/messages", json={**anthropic_body(), "model": "unpriced-model"},
                                   headers=a_headers(secret))
    assert response.status_code == 403
    assert "no price is known for model 'unpriced-model'" in response.json()["error"]["message"]


async def test_requests_per_minute_with_each_dialects_headers(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness()
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    await h.limit("key", key_id, rpm=3, tpm=100_000)
    first = await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))
    assert first.headers["anthropic-ratelimit-requests-limit"] == "3"
    assert first.headers["anthropic-ratelimit-requests-remaining"] == "2"
    assert first.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert first.headers["anthropic-ratelimit-tokens-limit"] == "100000"
    second = await h.client.post("/v1/chat/completions", headers=o_headers(secret),
                                 json={"model": "test-model", "max_tokens": 10,
                                       "messages": [{"role": "user", "content": "hi"}]})
    assert second.headers["x-ratelimit-limit-requests"] == "3"
    assert second.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-ratelimit-remaining-tokens" in second.headers
    await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))
    refused = await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) >= 1
    refused_openai = await h.client.post("/v1/chat/completions", headers=o_headers(secret),
                                         json={"model": "test-model", "messages": [{"role": "user", "content": "x"}]})
    assert refused_openai.status_code == 429 and refused_openai.json()["error"]["code"] == "rate_limit_exceeded"


async def test_tokens_per_minute_refuses_a_request_bigger_than_the_limit(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness()
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    await h.limit("key", key_id, tpm=50)
    response = await h.client.post("/v1/messages", json=anthropic_body(max_tokens=500), headers=a_headers(secret))
    assert response.status_code == 429
    assert "max_tokens" in response.json()["error"]["message"]
    assert (await h.client.post("/v1/messages", json=anthropic_body(max_tokens=10),
                                headers=a_headers(secret))).status_code == 200


async def test_limit_on_one_model_leaves_others_alone(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness(models="  other-model: {deployments: [{provider: sim}]}")
    await h.tenant("acme")
    secret, _ = await h.key("acme")
    await h.limit("tenant", "acme", model="test-model", rpm=1)
    assert (await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))).status_code == 200
    assert (await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))).status_code == 429
    other = await h.client.post("/v1/messages", json={**anthropic_body(), "model": "other-model"},
                                headers=a_headers(secret))
    assert other.status_code == 200  # not refused by the test-model limit


async def test_concurrent_requests_limit(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness(simulator=", ttft_ms: 300")
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    await h.limit("key", key_id, concurrent=2)
    body = anthropic_body(stream=True)
    statuses = await asyncio.gather(*(h.client.post("/v1/messages", json=body, headers=a_headers(secret))
                                      for _ in range(6)))
    codes = [r.status_code for r in statuses]
    assert codes.count(200) >= 2 and set(codes) <= {200, 429}
    # Slots are released when a request ends: the next one is admitted.
    assert (await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))).status_code == 200


async def test_revoked_expired_and_route_restricted_keys(make_harness) -> None:  # type: ignore[no-untyped-def]
    import time

    h = await make_harness()
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    assert (await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))).status_code == 200
    await h.gw.store.revoke_key(key_id, time.time())
    await h.gw.policies.refresh()
    revoked = await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    expired, _ = await h.key("acme", expires_at=time.time() - 1)
    response = await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(expired))
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]
    openai_only, _ = await h.key("acme", routes=("chat_completions",), models=("test-*",))
    refused = await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(openai_only))
    assert refused.status_code == 403
    allowed = await h.client.post("/v1/chat/completions", headers=o_headers(openai_only),
                                  json={"model": "test-model", "messages": [{"role": "user", "content": "x"}]})
    assert allowed.status_code == 200
    other_model = await h.client.post("/v1/chat/completions", headers=o_headers(openai_only),
                                      json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    assert other_model.status_code == 403


async def test_counters_down_fails_closed_with_a_retryable_503(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness()
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    await h.budget("key", key_id, "1")

    async def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Too many connections")

    h.gw.counters.admit = down  # type: ignore[method-assign]
    response = await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["type"] == "api_error"
    assert "Too many connections" not in response.text  # internals stay in the log


async def _failing_settlements(h) -> list[bool]:  # type: ignore[no-untyped-def]
    """Makes the counters' settle fail while the returned flag's first item is True (an outage)."""
    outage = [True]
    settle = h.gw.counters.settle

    async def flaky(*args: object, **kwargs: object) -> object:
        if outage[0]:
            raise ConnectionError("Redis is restarting")
        return await settle(*args, **kwargs)

    h.gw.counters.settle = flaky
    return outage


async def test_a_settlement_that_failed_is_retried_until_the_counters_answer(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness()
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    budget = await h.budget("key", key_id, "1")
    counter = f"budget:{budget.id}:all"
    outage = await _failing_settlements(h)
    response = await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))
    assert response.status_code == 200  # the answer does not wait for the counters
    assert h.gw.limiter.unsettled == 1
    reserved = (await h.gw.counters.committed([counter]))[0]
    assert reserved == 123_800_000  # the reservation, $0.0001238, still counted
    await asyncio.sleep(1.0)  # a retry came and failed: still queued
    assert h.gw.limiter.unsettled == 1
    outage[0] = False
    for _ in range(100):
        if not h.gw.limiter.unsettled:
            break
        await asyncio.sleep(0.1)
    assert h.gw.limiter.unsettled == 0
    [record] = [r for r in await h.records() if r.key_id == key_id]
    assert 0 < record.cost_pico < reserved
    assert await h.gw.counters.committed([counter]) == [record.cost_pico]  # the real cost, as the ledger says


async def test_queued_settlements_are_tried_once_more_at_shutdown(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = await make_harness()
    await h.tenant("acme")
    secret, key_id = await h.key("acme")
    budget = await h.budget("key", key_id, "1")
    outage = await _failing_settlements(h)
    assert (await h.client.post("/v1/messages", json=anthropic_body(), headers=a_headers(secret))).status_code == 200
    assert h.gw.limiter.unsettled == 1
    outage[0] = False
    await h.gw.limiter.aclose()  # before the first retry (half a second after the failure)
    assert h.gw.limiter.unsettled == 0
    [record] = [r for r in await h.records() if r.key_id == key_id]
    assert await h.gw.counters.committed([f"budget:{budget.id}:all"]) == [record.cost_pico]
