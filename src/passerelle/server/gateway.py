"""Everything a worker process builds once at start-up and shares across requests."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from passerelle.aiact.factory import open_aiact_store
from passerelle.audit import AuditLog, open_audit
from passerelle.config import Config
from passerelle.observability.logging import log
from passerelle.pipeline.auth import KeyRing
from passerelle.pipeline.cache import ResponseCache
from passerelle.pipeline.compliance import ComplianceStage, load_secret
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
        # Compiles the configured policies: a wrong one fails here.  The secret is read when some policy needs it.
        compliance = ComplianceStage(config.compliance, lambda: load_secret(config.compliance, data_dir))
        store, counters = await open_stores(config, data_dir, workers)
        http = HttpClient()
        providers = build_providers(config.providers, http)
        table = RoutingTable(config, providers, catalog)
        policies = PolicyRefresher(store, config, admin_key_sha256, on_change=compliance.update)
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
        """Close every part in order, each whatever became of the others: a part that fails to close is logged,
        and the ledger and the audit log still commit what they hold before the stores close."""
        from passerelle.server.skills_gateway import close_registry  # imports this module

        parts: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("policies", self.policies.aclose), ("cache", self.cache.aclose), ("limiter", self.limiter.aclose),
            ("ledger", self.ledger.aclose), ("audit", self.audit.aclose), ("aiact", self.aiact.aclose),
            *((f"provider {name}", provider.aclose) for name, provider in self.providers.items()),
            ("http", self.http.aclose), ("counters", self.counters.aclose), ("store", self.store.aclose),
            ("skills", lambda: close_registry(self)),
        ]
        for part, close in parts:
            try:
                await close()
            except Exception as exc:
                log("close_failed", logging.ERROR, part=part, error=f"{exc.__class__.__name__}: {exc}")
