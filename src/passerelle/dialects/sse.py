"""Server-sent events: incremental parsing of upstream streams and encoding for clients."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(slots=True)
class SSEMessage:
    event: str | None
    data: str


async def parse_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[SSEMessage]:
    """Yield SSE messages from arbitrary byte chunks (a message may span any boundary)."""
    buffer = b""
    event: str | None = None
    data: list[str] = []
    async for chunk in chunks:
        buffer += chunk
        while True:
            cut = buffer.find(b"\n")
            if cut < 0:
                break
            raw, buffer = buffer[:cut], buffer[cut + 1 :]
            line = raw.rstrip(b"\r").decode("utf-8")
            if not line:
                if data or event is not None:
                    yield SSEMessage(event, "\n".join(data))
                event, data = None, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield SSEMessage(event, "\n".join(data))


def encode_sse(data: bytes, event: str | None = None) -> bytes:
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
