"""Art 50 transparency on generated answers.

Layered marking (Art 50(2)): every answer the gateway generated carries ``x-ai-generated: true``,
``x-ai-model`` (the upstream model) and ``x-ai-provider`` (the provider type) headers; whole JSON
answers also carry a top-level ``"passerelle": {"ai_generated": true, "model", "provider"}`` object
(``aiact.transparency``).  Both official SDKs keep unknown top-level fields (their response models
allow extras), so clients parse the answer unchanged; tests/aiact check it with both SDKs.

Text marking, per purpose: a chat purpose's ``disclosure`` sentence opens the first answer of a
conversation (one user message, no earlier turns; Art 50(1)); a public-interest purpose's ``label``
opens every answer unless the request names its human reviewer in ``aiact.reviewer_header``
(Art 50(4)), in which case the reviewer goes into the audit record's ``extra``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from passerelle.canonical import ChatRequest, MessageResponse, StreamEvent
from passerelle.config.schema import AiActConfig
from passerelle.pipeline.purposes import PurposeBinding


def ai_headers(model: str, provider: str) -> dict[str, str]:
    return {"x-ai-generated": "true", "x-ai-model": _latin1(model), "x-ai-provider": _latin1(provider)}


def _latin1(value: str) -> str:
    return value.encode("latin-1", "replace").decode("latin-1").replace("\r", " ").replace("\n", " ")


def mark_body(config: AiActConfig, body: bytes, model: str, provider: str) -> bytes:
    """The JSON answer with its ``passerelle`` marking object (appended: no re-encoding of the answer)."""
    if not config.transparency or not body.endswith(b"}"):
        return body
    extra = msgspec.json.encode({"ai_generated": True, "model": model, "provider": provider})
    return body[:-1] + b',"passerelle":' + extra + b"}"


@dataclass(frozen=True, slots=True)
class Marking:
    """Text a purpose puts in front of an answer, and what the audit record keeps about it."""

    prefix: str
    audit: Mapping[str, object]

    def message(self, message: MessageResponse) -> MessageResponse:
        if not self.prefix:
            return message
        content: list[Any] = list(message.get("content") or [])
        for i, block in enumerate(content):
            if block.get("type") == "text":
                content[i] = {**block, "text": self.prefix + block.get("text", "")}
                break
        else:
            content.insert(0, {"type": "text", "text": self.prefix})
        return {**message, "content": content}

    async def events(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        pending = bool(self.prefix)
        try:
            async for event in events:
                if pending and event["type"] == "content_block_delta":
                    delta: Any = event["delta"]
                    if delta.get("type") == "text_delta":
                        event = {**event, "delta": {**delta, "text": self.prefix + delta.get("text", "")}}
                        pending = False
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]


def first_interaction(request: ChatRequest) -> bool:
    roles = [m.get("role") for m in request.body.get("messages", [])]
    return roles.count("user") == 1 and "assistant" not in roles


def marking_for(config: AiActConfig, binding: PurposeBinding | None, request: ChatRequest,
                headers: Mapping[str, str]) -> Marking | None:
    if binding is None:
        return None
    purpose = binding.purpose
    parts: list[str] = []
    audit: dict[str, object] = {}
    if purpose.kind == "chat" and purpose.disclosure and first_interaction(request):
        parts.append(purpose.disclosure.strip())
        audit["ai_disclosure"] = True
    if purpose.public_interest:
        reviewer = headers.get(config.reviewer_header, "").strip()
        if reviewer:
            audit["reviewer"] = reviewer[:200]
        else:
            parts.append(purpose.label.strip())
            audit["ai_label"] = True
    if not parts and not audit:
        return None
    return Marking("".join(p + "\n\n" for p in parts), audit)


def purpose_marks(config: AiActConfig, binding: PurposeBinding | None, request: ChatRequest,
                  headers: Mapping[str, str]) -> tuple[str | None, Marking | None, int]:
    """What chat.py keeps on its ``Outcome``: the purpose id and its retention floor (for the audit record)
    and the text marking."""
    if binding is None:
        return None, None, 0
    return binding.purpose_id, marking_for(config, binding, request, headers), binding.purpose.retention_days
