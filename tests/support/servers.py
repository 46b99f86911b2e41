"""Run an aiohttp application on a free loopback port: the transport of every fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


class AppServer:
    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, app: web.Application) -> str:
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve_app(app: web.Application) -> AsyncIterator[str]:
    server = AppServer()
    try:
        yield await server.start(app)
    finally:
        await server.close()
