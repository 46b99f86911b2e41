"""Anthropic responses for clients: the canonical message minus gateway-private keys."""

from __future__ import annotations

from typing import Any

from passerelle.canonical import MessageResponse


def to_anthropic_response(message: MessageResponse, model: str) -> dict[str, Any]:
    """The message as an Anthropic client expects it, named after the model it asked for."""
    out: dict[str, Any] = {k: v for k, v in message.items() if not k.startswith("_")}
    out["model"] = model
    return out


def anthropic_models_list(names: list[str], created_at: str) -> dict[str, Any]:
    data = [{"type": "model", "id": name, "display_name": name, "created_at": created_at} for name in names]
    return {"data": data, "has_more": False,
            "first_id": names[0] if names else None, "last_id": names[-1] if names else None}
