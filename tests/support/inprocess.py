"""The gateway's ASGI app in-process for the official SDKs, and the simulator over real HTTP behind a recorder
of what the upstream received."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from passerelle.config.schema import SimulatorConfig
from passerelle.simulator.server import SimulatorServer
from tests.support.servers import AppServer


def sdk_http(sdk: Any, app: Any) -> Any:
    """An in-process HTTP client of the flavour ``sdk`` is built on (httpx or its fork httpx2)."""
    module = importlib.import_module("httpx2" if hasattr(sdk._base_client, "httpx2") else "httpx")
    return module.AsyncClient(transport=module.ASGITransport(app=app), timeout=30)


@dataclass
class RecordingUpstream:
    """The simulator (echo mode) behind a recorder of every request body it receives."""

    received: list[dict[str, Any]] = field(default_factory=list)
    server: AppServer = field(default_factory=AppServer)

    async def start(self, chunk_tokens: int = 1) -> str:
        app = SimulatorServer(SimulatorConfig(mode="echo", chunk_tokens=chunk_tokens)).app()

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.method == "POST":
                self.received.append(json.loads(await request.read()))
            response: web.StreamResponse = await handler(request)
            return response

        app.middlewares.append(record)
        return await self.server.start(app)

    def last_text(self) -> str:
        return json.dumps(self.received[-1], ensure_ascii=False)
