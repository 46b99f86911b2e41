"""Everything a worker process builds once at start-up and shares across requests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from passerelle.config import Config
from passerelle.pipeline.auth import KeyRing
from passerelle.providers.base import Provider
from passerelle.providers.http import HttpClient
from passerelle.providers.registry import build_providers
from passerelle.routing.router import Router
from passerelle.routing.table import RoutingTable
from passerelle.stores import SQLiteStore, Store


@dataclass(slots=True)
class Gateway:
    config: Config
    http: HttpClient
    providers: dict[str, Provider]
    table: RoutingTable
    router: Router
    keys: KeyRing
    store: Store
    draining: bool = False

    @classmethod
    def build(cls, config: Config, data_dir: Path, admin_key_sha256: str | None) -> Gateway:
        http = HttpClient()
        providers = build_providers(config.providers, http)
        table = RoutingTable(config, providers)
        return cls(
            config=config,
            http=http,
            providers=providers,
            table=table,
            router=Router(table, config.router),
            keys=KeyRing(config.keys, admin_key_sha256),
            store=SQLiteStore(data_dir / "passerelle.db"),
        )

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.http.aclose()
        await self.store.aclose()
