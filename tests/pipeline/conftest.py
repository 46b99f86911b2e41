"""The gateway in-process on either storage backend pair, with tenants and keys made in its store."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from passerelle.config import load_config
from passerelle.pipeline.auth import digest
from passerelle.server.app import App, create_app
from passerelle.server.gateway import Gateway
from passerelle.stores.records import Budget, RateLimit, Team, Tenant, VirtualKey
from tests.support.backends import scale_out

ADMIN = "sk-admin-pipeline"

BASE = """
server: {{log_level: error}}
providers:
  sim: {{type: simulator, simulator: {{mode: fixed, output_tokens: 10{simulator}}}}}
{providers}
models:
  test-model: {{deployments: [{{provider: sim}}]}}
{models}
metering:
  prices:
    - {{provider: simulator, model: test-model, input: "0.1", output: "10"}}
{prices}
{metering}
{extra}
"""


@dataclass
class Harness:
    app: App
    client: httpx.AsyncClient

    @property
    def gw(self) -> Gateway:
        assert self.app.gateway is not None
        return self.app.gateway

    async def tenant(self, tenant_id: str, team: str | None = None) -> None:
        await self.gw.store.create_tenant(Tenant(tenant_id, tenant_id, time.time()))
        if team:
            await self.gw.store.create_team(Team(f"{tenant_id}/{team}", tenant_id, team, time.time()))
        await self.gw.policies.refresh()

    async def key(self, tenant_id: str, team_id: str | None = None, **fields: object) -> tuple[str, str]:
        """A new virtual key: (secret, key id)."""
        secret = "sk-pas-test-" + uuid.uuid4().hex
        key_id = "key_" + uuid.uuid4().hex[:12]
        await self.gw.store.create_key(VirtualKey(key_id, digest(secret), secret[:12], "test", tenant_id, team_id,
                                                  time.time(), **fields))  # type: ignore[arg-type]
        await self.gw.policies.refresh()
        return secret, key_id

    async def budget(self, scope: str, scope_id: str, limit_usd: str, **fields: object) -> Budget:
        from decimal import Decimal

        budget = Budget("bud_" + uuid.uuid4().hex[:12], scope, scope_id, fields.pop("period", "total"),  # type: ignore[arg-type]
                        Decimal(limit_usd), **fields)  # type: ignore[arg-type]
        await self.gw.store.put_budget(budget)
        await self.gw.policies.refresh()
        return budget

    async def limit(self, scope: str, scope_id: str, **fields: object) -> RateLimit:
        limit = RateLimit("rl_" + uuid.uuid4().hex[:12], scope, scope_id, **fields)  # type: ignore[arg-type]
        await self.gw.store.put_rate_limit(limit)
        await self.gw.policies.refresh()
        return limit

    async def records(self) -> list:  # type: ignore[type-arg]
        await self.gw.ledger.flush()
        return await self.gw.store.usage_records()


HarnessFactory = Callable[[str], "AsyncIterator[Harness]"]


@pytest.fixture(params=["embedded", "scaleout"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_harness(backend: str, tmp_path: Path) -> AsyncIterator[Callable[[str], object]]:
    """``await make_harness(extra_yaml)``: a started gateway on the parametrized backend."""
    opened: list[tuple[App, httpx.AsyncClient]] = []
    async with scale_out() as so:

        async def make(extra: str = "", *, simulator: str = "", providers: str = "", models: str = "",
                       prices: str = "", metering: str = "") -> Harness:
            """Extra YAML: top-level ``extra``, simulator options (``, ttft_ms: 100``), and lines under
            providers, models, metering.prices and metering (each indented as in the file)."""
            text = BASE.format(simulator=simulator, providers=providers, models=models, prices=prices,
                               metering=metering, extra=extra) + (so.yaml() if backend == "scaleout" else "")
            path = tmp_path / f"config-{len(opened)}.yaml"
            path.write_text(text)
            app = create_app(config=load_config(path, env={}), data_dir=tmp_path / "data",
                             admin_key_sha256=digest(ADMIN))
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway",
                                       timeout=30)
            opened.append((app, client))
            assert (await client.get("/health")).status_code == 200  # builds the gateway
            return Harness(app, client)

        yield make
        for app, client in opened:
            await client.aclose()
            if app.gateway is not None:
                await app.gateway.aclose()


def anthropic_body(text: str = "hello there", max_tokens: int = 10, **extra: object) -> dict[str, object]:
    return {"model": "test-model", "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}],
            **extra}


def a_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01"}


def o_headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}
