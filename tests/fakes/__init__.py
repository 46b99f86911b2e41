"""Local fakes of the providers' APIs, following their public wire formats."""

from __future__ import annotations

import asyncio

from aiohttp import web

BODY_END_DELAY_S = 0.01


async def end_body(response: web.StreamResponse) -> None:
    """End a streamed body a moment after its last event, in a later packet, as real servers often do: a client
    that stops reading at the last event must still read the body's end to keep the connection."""
    await asyncio.sleep(BODY_END_DELAY_S)
    await response.write_eof()
