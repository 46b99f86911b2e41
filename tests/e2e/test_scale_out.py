"""Two gateway processes behind one PostgreSQL and one Redis: budgets, rate limits and revocation
hold globally, as if there were one instance."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from passerelle.pipeline.auth import digest
from passerelle.stores.postgres import PostgresStore
from passerelle.stores.records import Budget, RateLimit, Tenant, VirtualKey, pico_to_usd
from tests.support.backends import ScaleOut, scale_out
from tests.support.processes import ADMIN_KEY, Server, start_gateway

CONFIG = """
server: {{log_level: warning}}
providers:
  sim: {{type: simulator, simulator: {{mode: fixed, output_tokens: 10}}}}
  slow: {{type: simulator, simulator: {{mode: fixed, output_tokens: 10, tokens_per_second: 1}}}}
models:
  test-model: {{deployments: [{{provider: sim}}]}}
  slow-model: {{deployments: [{{provider: slow}}]}}
metering:
  prices:
    - {{provider: simulator, model: test-model, input: "0.1", output: "10"}}
    - {{provider: simulator, model: slow-model, input: "0.1", output: "10"}}
{store}
"""


@dataclass
class Cluster:
    a: Server
    b: Server
    store: PostgresStore
    backend: ScaleOut

    async def key(self, tenant: str = "acme") -> tuple[str, str]:
        secret = "sk-pas-e2e-" + uuid.uuid4().hex
        key_id = "key_" + uuid.uuid4().hex[:12]
        await self.store.create_key(VirtualKey(key_id, digest(secret), secret[:12], "e2e", tenant, None,
                                               time.time()))
        return secret, key_id


@asynccontextmanager
async def _cluster(tmp_path: Path, reservation_lease_s: float | None = None) -> AsyncIterator[Cluster]:
    async with scale_out() as backend:
        store_yaml = backend.yaml()
        if reservation_lease_s is not None:
            store_yaml = store_yaml.replace("}\n", f", reservation_lease_s: {reservation_lease_s}}}\n")
        config = CONFIG.format(store=store_yaml)
        store = await PostgresStore.connect(backend.dsn, backend.schema)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = await asyncio.to_thread(start_gateway, tmp_path / "a", config)
        b = await asyncio.to_thread(start_gateway, tmp_path / "b", config)
        try:
            await store.create_tenant(Tenant("acme", "Acme", time.time()))
            yield Cluster(a, b, store, backend)
        finally:
            await asyncio.to_thread(a.stop)
            await asyncio.to_thread(b.stop)
            await store.aclose()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with _cluster(tmp_path) as c:
        yield c


async def _visible(url: str, secret: str) -> None:
    """Wait until an instance has picked up a new key (its next policy poll)."""
    async with httpx.AsyncClient() as client:
        for _ in range(200):  # 10 s: a policy refresh every 0.25 s, on a machine that may be slow
            r = await client.get(url + "/v1/models", headers={"x-api-key": secret})
            if r.status_code == 200:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never accepted the new key")


async def test_hard_budget_holds_across_two_instances_under_200_concurrent_requests(cluster: Cluster) -> None:
    secret, key_id = await cluster.key()
    # A request reserves $0.0001238 (a byte-based input bound at the dearest input rate + 10 output
    # tokens) and really costs about $0.0001003 (3 input + 10 output tokens): $0.005 covers about 50.
    limit = Decimal("0.005")
    await cluster.store.put_budget(Budget("bud_" + uuid.uuid4().hex[:12], "key", key_id, "total", limit))
    await asyncio.gather(_visible(cluster.a.url, secret), _visible(cluster.b.url, secret))
    clients = [anthropic.AsyncAnthropic(api_key=secret, base_url=server.url, max_retries=0, timeout=60)
               for server in (cluster.a, cluster.b)]

    async def one(i: int) -> object:
        try:
            return await clients[i % 2].messages.create(
                model="test-model", max_tokens=10, messages=[{"role": "user", "content": "hello there"}])
        except anthropic.APIStatusError as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(200)))
    for client in clients:
        await client.close()
    answered = [r for r in results if isinstance(r, anthropic.types.Message)]
    refused = [r for r in results if not isinstance(r, anthropic.types.Message)]
    assert len(answered) + len(refused) == 200
    for exc in refused:
        assert isinstance(exc, anthropic.APIStatusError), exc
        assert exc.status_code == 402, (exc.status_code, exc.message)
        assert exc.body["error"]["type"] == "billing_error"  # type: ignore[index]
        assert "budget exceeded" in exc.body["error"]["message"]  # type: ignore[index]
    assert 25 <= len(answered) <= 50  # the real cost of 50 requests fills the budget
    # Spend in the ledger (both instances flush within a fraction of a second) never passes the budget.
    for _ in range(50):
        records = [r for r in await cluster.store.usage_records() if r.key_id == key_id]
        if len(records) == 200:
            break
        await asyncio.sleep(0.1)
    assert len(records) == 200
    spent = sum(r.cost_pico for r in records)
    assert pico_to_usd(spent) <= limit
    assert sum(1 for r in records if r.status == 200) == len(answered)
    assert {r.status for r in records} <= {200, 402}


async def test_rate_limit_is_global_not_per_instance(cluster: Cluster) -> None:
    secret, key_id = await cluster.key()
    await cluster.store.put_rate_limit(RateLimit("rl_" + uuid.uuid4().hex[:12], "key", key_id, rpm=10))
    await asyncio.gather(_visible(cluster.a.url, secret), _visible(cluster.b.url, secret))
    clients = [openai.AsyncOpenAI(api_key=secret, base_url=server.url + "/v1", max_retries=0)
               for server in (cluster.a, cluster.b)]
    started = time.monotonic()

    async def one(i: int) -> int:
        try:
            await clients[i % 2].chat.completions.create(
                model="test-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
            return 200
        except openai.RateLimitError as exc:
            assert exc.response.headers["retry-after"]
            return 429

    codes = await asyncio.gather(*(one(i) for i in range(30)))
    elapsed = time.monotonic() - started
    for client in clients:
        await client.close()
    # The bucket refills at 10/60 per second: allow what refilled while the test ran.
    assert 10 <= codes.count(200) <= 10 + int(elapsed * 10 / 60) + 1
    assert codes.count(200) + codes.count(429) == 30


async def test_revocation_reaches_the_other_instance_within_one_second(cluster: Cluster) -> None:
    secret, key_id = await cluster.key()
    await asyncio.gather(_visible(cluster.a.url, secret), _visible(cluster.b.url, secret))
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    body = {"model": "test-model", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(cluster.b.url + "/v1/messages", json=body, headers=headers)).status_code == 200
        revoke = await client.post(f"{cluster.a.url}/admin/keys/{key_id}/revoke",
                                   headers={"x-api-key": ADMIN_KEY})
        assert revoke.status_code == 200, revoke.text
        revoked_at = time.monotonic()
        assert (await client.post(cluster.a.url + "/v1/messages", json=body, headers=headers)).status_code == 401
        while True:
            response = await client.post(cluster.b.url + "/v1/messages", json=body, headers=headers)
            if response.status_code == 401:
                break
            assert response.status_code == 200
            await asyncio.sleep(0.01)
        delay = time.monotonic() - revoked_at
    assert response.json()["error"]["message"] == "this API key has been revoked"
    assert delay < 1.0, f"instance B still accepted the revoked key {delay:.2f}s later"


async def test_a_killed_instance_gives_its_budget_reservation_back(tmp_path: Path) -> None:
    """Instance a is killed (SIGKILL) while it streams: its request never settles.  Its reservation holds the
    budget until a's lease lapses (3 s here); then b's sweep gives it back and b answers again."""
    async with _cluster(tmp_path, reservation_lease_s=3) as cluster:
        secret, key_id = await cluster.key()
        # One reservation ($0.0001238, see above) fits in $0.0002; a second does not.
        await cluster.store.put_budget(Budget("bud_" + uuid.uuid4().hex[:12], "key", key_id, "total",
                                              Decimal("0.0002")))
        await asyncio.gather(_visible(cluster.a.url, secret), _visible(cluster.b.url, secret))
        body = {"model": "slow-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hello there"}]}
        headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
        async with httpx.AsyncClient(timeout=30) as client:
            async with client.stream("POST", cluster.a.url + "/v1/messages", json={**body, "stream": True},
                                     headers=headers) as streaming:
                assert streaming.status_code == 200
                async for line in streaming.aiter_lines():
                    if line.startswith("event: content_block_delta"):
                        break  # the answer is under way: a holds the reservation
                os.killpg(cluster.a.proc.pid, signal.SIGKILL)
                cluster.a.proc.wait()
            refused = await client.post(cluster.b.url + "/v1/messages", json=body, headers=headers)
            assert refused.status_code == 402, refused.text  # the dead instance's reservation still counts
            killed = time.monotonic()
            while True:
                answer = await client.post(cluster.b.url + "/v1/messages", json=body, headers=headers)
                if answer.status_code == 200:
                    break
                assert answer.status_code == 402, answer.text
                assert time.monotonic() - killed < 10, "the reservation never came back"
                await asyncio.sleep(0.2)
        # Given back once a's lease (3 s, renewed every second until the kill) lapsed, at b's next sweep (every 1 s).
        assert time.monotonic() - killed <= 6
        for _ in range(50):  # the log is written behind, off the request path
            if "counters_reservations_reclaimed" in cluster.b.logs():
                break
            await asyncio.sleep(0.1)
        assert "counters_reservations_reclaimed" in cluster.b.logs()
