"""The gateway's skills registry, opened on first use next to the gateway's own store.

``Gateway`` is a slotted dataclass (no weak references), so the registry is kept in a small map from
the gateway's id with the gateway itself as the check; ``close_registry`` drops it.  When ``Gateway``
grows a ``skills`` attribute, that one is used instead.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from passerelle.canonical import ChatRequest
from passerelle.observability.logging import log
from passerelle.pipeline.auth import Principal
from passerelle.pipeline.skills import SkillSession, SkillsStage
from passerelle.server.gateway import Gateway
from passerelle.skills.factory import open_skill_registry
from passerelle.skills.registry import SkillRegistry

_OPEN: dict[int, tuple[Gateway, SkillRegistry]] = {}
_LOCK = asyncio.Lock()


def _data_dir(gw: Gateway) -> Path:
    path = getattr(gw.store, "path", None)  # the embedded store's passerelle.db
    if isinstance(path, Path):
        return path.parent
    return Path.home() / ".passerelle"  # unused by the PostgreSQL backend


async def registry_for(gw: Gateway) -> SkillRegistry:
    attached = getattr(gw, "skills", None)
    if isinstance(attached, SkillRegistry):
        return attached
    entry = _OPEN.get(id(gw))
    if entry is not None and entry[0] is gw:
        return entry[1]
    async with _LOCK:
        entry = _OPEN.get(id(gw))
        if entry is None or entry[0] is not gw:
            entry = (gw, await open_skill_registry(gw.config, _data_dir(gw)))
            _OPEN[id(gw)] = entry
        return entry[1]


async def close_registry(gw: Gateway) -> None:
    entry = _OPEN.pop(id(gw), None)
    if entry is not None and entry[0] is gw:
        await entry[1].aclose()


async def prepare_skills(gw: Gateway, who: Principal, request: ChatRequest) -> SkillSession | None:
    """The skills stage for one request (see ``pipeline.skills``); None when the key has no skills.
    A registry that cannot be read costs the skills, not the answer: the request goes on without them."""
    if not gw.config.skills.enabled:
        return None
    try:
        return await SkillsStage(gw.config.skills, await registry_for(gw)).prepare(who, request)
    except Exception as exc:
        log("skills_unavailable", logging.WARNING, request_id=request.request_id, error=exc.__class__.__name__)
        request.warn("skills are unavailable right now: answered without them")
        return None
