"""The built-in simulator as an in-process provider (no network, for offline use and tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from passerelle.canonical import ChatRequest, Dialect, MessageResponse, StreamEvent
from passerelle.canonical.text import request_text
from passerelle.config import ProviderConfig
from passerelle.errors import ErrorKind, UpstreamError
from passerelle.providers.base import Target
from passerelle.providers.http import HttpClient
from passerelle.simulator.engine import SimulatorEngine, count_tokens


async def raise_fault(fault: str, target: Target, retry_after: float) -> None:
    """Turn an injected fault into what a real upstream failure becomes in the gateway."""
    if fault == "rate_limit":
        raise UpstreamError(ErrorKind.RATE_LIMIT, "simulated rate limit", retryable=True,
                            retry_after=retry_after, upstream_status=429)
    if fault == "overloaded":
        raise UpstreamError(ErrorKind.OVERLOADED, "simulated overload", retryable=True, upstream_status=529)
    if fault == "server_error":
        raise UpstreamError(ErrorKind.BAD_GATEWAY, "simulated internal error", retryable=True, upstream_status=500)
    if fault == "timeout":
        await asyncio.sleep(target.timeout)
        raise UpstreamError(ErrorKind.TIMEOUT, f"upstream did not answer within {target.timeout:g}s", retryable=True)
    if fault in ("connection_reset", "stream_cut"):
        raise UpstreamError(ErrorKind.BAD_GATEWAY, "upstream connection failed: reset", retryable=True)
    if fault == "malformed":
        raise UpstreamError(ErrorKind.BAD_GATEWAY, "upstream sent a malformed JSON body", retryable=True)


class SimulatorProvider:
    dialect: Dialect = "anthropic"

    def __init__(self, name: str, config: ProviderConfig, http: HttpClient | None = None) -> None:
        self.name = name
        self.engine = SimulatorEngine(config.simulator)

    async def complete(self, request: ChatRequest, target: Target) -> MessageResponse:
        request.drop_foreign("anthropic")
        fault = self.engine.pick_fault()
        if fault is not None:
            await raise_fault(fault, target, self.engine.config.faults.retry_after)
        message = self.engine.answer(request.body, target.model)
        if self.engine.config.ttft_ms:
            await asyncio.sleep(self.engine.config.ttft_ms / 1000)
        return message

    async def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[StreamEvent]:
        request.drop_foreign("anthropic")
        fault = self.engine.pick_fault()
        if fault is not None and fault != "stream_cut":
            await raise_fault(fault, target, self.engine.config.faults.retry_after)
        message = self.engine.answer(request.body, target.model)
        async for event in self.engine.stream(message, cut=fault == "stream_cut"):
            yield event
        if fault == "stream_cut":
            raise UpstreamError(ErrorKind.BAD_GATEWAY, "upstream stream ended before message_stop", retryable=True)

    async def count_tokens(self, request: ChatRequest, target: Target) -> int | None:
        return max(count_tokens(request_text(request.body)), 1)

    async def aclose(self) -> None:
        return None
