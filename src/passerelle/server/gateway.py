"""Everything a worker process builds once at start-up and shares across requests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from passerelle.aiact.factory import open_aiact_store
from passerelle.audit import AuditLog, open_audit
from passerelle.config import Config
from passerelle.pipeline.auth import KeyRing
from passerelle.pipeline.cache import ResponseCache
from passerelle.pipeline.compliance import ComplianceStage, configured, load_secret
from passerelle.pipeline.limits import Limiter
from passerelle.pipeline.metering import LedgerWriter, Meter
from passerelle.pipeline.policies import PolicyRefresher
from passerelle.pipeline.purposes import PurposeStage
from passerelle.pricing import Catalog
from passerelle.providers.base import Provider
from passerelle.providers.http import HttpClient
from passerelle.providers.registry import build_providers
from passerelle.routing.router import Router
from passerelle.routing.table import RoutingTable
from passerelle.stores.base import Counters, Store
from passerelle.stores.factory import open_stores


@dataclass(slots=True)
class Gateway:
    config: Config
    http: HttpClient
    providers: dict[str, Provider]
    table: RoutingTable
    router: Router
    store: Store
    counters: Counters
    policies: PolicyRefresher
    ledger: LedgerWriter
    limiter: Limiter
    meter: Meter
    cache: ResponseCache
    compliance: ComplianceStage
    audit: AuditLog
    aiact: PurposeStage
    draining: bool = False

    @property
    def keys(self) -> KeyRing:
        return self.policies.current.keys

    @classmethod
    async def open(cls, config: Config, data_dir: Path, admin_key_sha256: str | None, workers: int = 1,
                   ) -> Gateway:
        catalog = Catalog.load(config.metering.prices)
        secret = load_secret(config.compliance, data_dir) if configured(config.compliance) else b""
        compliance = ComplianceStage(config.compliance, secret)  # compiles the policies: a wrong one fails here
        store, counters = await open_stores(config, data_dir, workers)
        http = HttpClient()
        providers = build_providers(config.providers, http)
        table = RoutingTable(config, providers, catalog)
        policies = PolicyRefresher(store, config, admin_key_sha256)
        await policies.start()
        ledger = LedgerWriter(store, config.store)
        ledger.start()
        audit = await open_audit(config, data_dir)
        await audit.start()
        aiact = PurposeStage(await open_aiact_store(config, data_dir), config)
        await aiact.start()
        router = Router(table, config.router)
        if config.aiact.require_supplier_docs:
            router.plan_filter = aiact.filter_plan
        return cls(
            config=config,
            http=http,
            providers=providers,
            table=table,
            router=router,
            store=store,
            counters=counters,
            policies=policies,
            ledger=ledger,
            limiter=Limiter(counters, store, catalog, config),
            meter=Meter(catalog),
            cache=ResponseCache(counters, config.cache),
            compliance=compliance,
            audit=audit,
            aiact=aiact,
        )

    async def aclose(self) -> None:
        await self.policies.aclose()
        await self.cache.aclose()
        await self.limiter.aclose()
        await self.ledger.aclose()
        await self.audit.aclose()
        await self.aiact.aclose()
        for provider in self.providers.values():
            await provider.aclose()
        await self.http.aclose()
        await self.counters.aclose()
        await self.store.aclose()
        from passerelle.server.skills_gateway import close_registry  # imports this module

        await close_registry(self)
