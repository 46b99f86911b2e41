"""Exact-match response cache, per tenant.

The key is a SHA-256 over the tenant, the model name and the normalized canonical request (keys
sorted; ``stream`` and ``metadata`` left out, since neither changes the answer), so the same
question asked in either dialect, streamed or not, hits the same entry.  Only whole successful
answers are stored.  A caller opts out per request with ``Cache-Control: no-cache`` / ``no-store``
or ``x-passerelle-cache: off``; ``no-store`` also keeps the answer out of the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from passerelle.canonical import ChatRequest, MessageResponse, StreamEvent
from passerelle.config import CacheConfig
from passerelle.observability.logging import log
from passerelle.stores.base import Counters

_SKIP_BODY = frozenset({"stream", "metadata"})


@dataclass(frozen=True, slots=True)
class CacheUse:
    key: str
    read: bool  # may answer from the cache
    write: bool  # may store the answer


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    message: MessageResponse
    deployment: str
    provider: str
    upstream_model: str
    cost_pico: int  # what the original upstream call cost: a hit saves this much


def cache_directives(headers: Mapping[str, str]) -> tuple[bool, bool]:
    """(read, write) as the caller allows them."""
    control = headers.get("cache-control", "").lower()
    own = headers.get("x-passerelle-cache", "").lower()
    if own in ("off", "no", "false", "0", "no-store") or "no-store" in control:
        return False, False
    if "no-cache" in control or own == "refresh":
        return False, True
    return True, True


def cache_key(tenant_id: str, request: ChatRequest) -> str:
    body = {k: v for k, v in request.body.items() if k not in _SKIP_BODY}
    extras = {k: v for k, v in request.openai_extras.items() if k != "_wire"}
    material = msgspec.json.encode([tenant_id, body, extras, request.passthrough, request.anthropic_beta],
                                   order="sorted")
    return "cache:" + tenant_id + ":" + hashlib.sha256(material).hexdigest()


class ResponseCache:
    def __init__(self, counters: Counters, config: CacheConfig) -> None:
        self._counters = counters
        self._config = config
        self._writes: set[asyncio.Task[None]] = set()

    def use(self, tenant_id: str, request: ChatRequest, headers: Mapping[str, str]) -> CacheUse | None:
        if not self._config.enabled:
            return None
        read, write = cache_directives(headers)
        if not (read or write):
            return None
        return CacheUse(cache_key(tenant_id, request), read, write)

    async def get(self, use: CacheUse) -> CachedAnswer | None:
        if not use.read:
            return None
        try:
            raw = await self._counters.cache_get(use.key)
        except Exception as exc:  # a cache outage costs money, not availability
            log("cache_unavailable", logging.WARNING, error=f"{exc.__class__.__name__}: {exc}")
            return None
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw, type=CachedAnswer)
        except msgspec.DecodeError:
            return None

    def put(self, use: CacheUse, answer: CachedAnswer) -> None:
        """Store in the background: the caller already has its answer."""
        if not use.write or answer.message.get("stop_reason") not in ("end_turn", "stop_sequence", "max_tokens",
                                                                       "tool_use"):
            return
        raw = msgspec.json.encode(answer)
        if len(raw) > self._config.max_entry_bytes:
            return
        task = asyncio.create_task(self._store(use.key, raw))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _store(self, key: str, raw: bytes) -> None:
        try:
            await self._counters.cache_set(key, raw, self._config.ttl)
        except Exception as exc:
            log("cache_unavailable", logging.WARNING, error=f"{exc.__class__.__name__}: {exc}")

    async def aclose(self) -> None:
        if self._writes:
            await asyncio.wait(self._writes, timeout=5)


def replay(message: MessageResponse) -> Iterator[StreamEvent]:
    """A stored answer as the stream events an upstream would have sent (one delta per block)."""
    usage: dict[str, Any] = dict(message["usage"])
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    yield {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            yield {"type": "content_block_delta", "index": index,
                   "delta": {"type": "text_delta", "text": block["text"]}}
        elif kind == "thinking":
            yield {"type": "content_block_start", "index": index,
                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}
            yield {"type": "content_block_delta", "index": index,
                   "delta": {"type": "thinking_delta", "thinking": block["thinking"]}}
            yield {"type": "content_block_delta", "index": index,
                   "delta": {"type": "signature_delta", "signature": block.get("signature", "")}}
        elif kind == "tool_use":
            yield {"type": "content_block_start", "index": index,
                   "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}
            yield {"type": "content_block_delta", "index": index,
                   "delta": {"type": "input_json_delta", "partial_json": msgspec.json.encode(block["input"]).decode()}}
        else:
            yield {"type": "content_block_start", "index": index, "content_block": block}
        yield {"type": "content_block_stop", "index": index}
    yield {"type": "message_delta",
           "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
           "usage": {"output_tokens": usage.get("output_tokens", 0)}}
    yield {"type": "message_stop"}
