"""The text a canonical request carries: for token estimates and input counts."""

from __future__ import annotations

import math
from collections.abc import Iterator

from passerelle.canonical.messages import ContentBlock, MessagesRequest


def block_texts(blocks: list[ContentBlock]) -> Iterator[str]:
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            yield str(block.get("text", ""))
        elif kind == "tool_result":
            content = block.get("content", "")
            if isinstance(content, str):
                yield content
            else:
                yield from block_texts(content)
        elif kind == "tool_use":
            yield str(block.get("input", ""))
        elif kind == "thinking":
            yield str(block.get("thinking", ""))


def request_text(body: MessagesRequest) -> str:
    parts: list[str] = []
    system = body.get("system")
    if isinstance(system, str):
        parts.append(system)
    elif isinstance(system, list):
        parts.extend(block_texts(system))
    for message in body.get("messages", []):
        content = message["content"]
        parts.extend([content] if isinstance(content, str) else block_texts(content))
    for tool in body.get("tools", []):
        parts.append(f"{tool.get('name', '')} {tool.get('description', '')} {tool.get('input_schema', '')}")
    return "\n".join(parts)


def estimate_tokens(body: MessagesRequest) -> int:
    """A provider-neutral estimate, about four characters a token, used only when the upstream
    has no token-counting API."""
    return max(1, math.ceil(len(request_text(body)) / 4))
