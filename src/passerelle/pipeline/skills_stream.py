"""Streams of a skills session spliced into one: the client sees a single message.

The first upstream stream is forwarded as it comes, except the gateway tool's content blocks, which are
kept back (the assistant turn is rebuilt from the events to send it upstream again).  Its
``message_delta`` and ``message_stop`` are held too: when the turn stopped for the gateway's tool alone,
the calls are answered and the next upstream stream opened; its ``message_start`` is skipped and its
block indexes continue after the ones already sent.  Only the last stream's stop reason goes out, with
the usage of every stream summed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec

from passerelle.canonical import ChatRequest, ContentBlock, StreamEvent
from passerelle.errors import GatewayError, UpstreamError
from passerelle.pipeline.skills import add_usage
from passerelle.routing.router import RoutedStream

if TYPE_CHECKING:
    from passerelle.pipeline.skills import Router, SkillSession


class TurnAssembler:
    """Rebuilds an assistant turn's content blocks from its stream events."""

    def __init__(self) -> None:
        self.blocks: dict[int, ContentBlock] = {}
        self._json: dict[int, list[str]] = {}

    def feed(self, event: StreamEvent) -> None:
        kind = event["type"]
        index = event.get("index")
        if kind == "content_block_start" and isinstance(index, int):
            self.blocks[index] = dict(event["content_block"])
            return
        block = self.blocks.get(index) if isinstance(index, int) else None
        if block is None or kind != "content_block_delta":
            return
        delta = event["delta"]
        dtype = delta.get("type")
        if dtype == "text_delta":
            block["text"] = block.get("text", "") + delta.get("text", "")
        elif dtype == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
        elif dtype == "signature_delta":
            block["signature"] = delta.get("signature", "")
        elif dtype == "input_json_delta":
            self._json.setdefault(index, []).append(delta.get("partial_json", ""))  # type: ignore[arg-type]
        elif dtype == "citations_delta":
            block.setdefault("citations", []).append(delta.get("citation"))

    def content(self) -> list[ContentBlock]:
        out: list[ContentBlock] = []
        for index in sorted(self.blocks):
            block = dict(self.blocks[index])
            if index in self._json:
                raw = "".join(self._json[index]).strip() or "{}"
                try:
                    block["input"] = msgspec.json.decode(raw)
                except msgspec.DecodeError:
                    block["input"] = None  # answered with an error: the arguments were not JSON
            out.append(block)
        return out


async def spliced(session: SkillSession, router: Router, request: ChatRequest, routed: RoutedStream,
                  events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """The events of every upstream stream of ``session`` (the first one is ``events``) as one message.
    ``routed`` is updated as streams are opened: its deployment is the last one used once it is done."""
    usage: dict[str, Any] = {}
    next_index = 0  # the client's next content block index
    first = True
    try:
        while True:
            assembler = TurnAssembler()
            turn_usage: dict[str, Any] = {}  # message_delta's counts replace message_start's
            indexes: dict[int, int] = {}  # upstream index -> client index; absent: a gateway block
            stop: dict[str, Any] | None = None
            async for event in events:
                kind = event["type"]
                if kind == "message_start":
                    turn_usage.update(event["message"].get("usage") or {})
                    if first:
                        yield event
                    continue
                if kind == "message_delta":
                    turn_usage.update((k, v) for k, v in (event.get("usage") or {}).items() if v is not None)
                    stop = dict(event.get("delta") or {})
                    continue
                if kind == "message_stop":
                    continue
                if kind in ("content_block_start", "content_block_delta", "content_block_stop"):
                    assembler.feed(event)
                    index = event["index"]
                    if kind == "content_block_start" and not session.is_ours(event["content_block"]):
                        indexes[index] = next_index
                        next_index += 1
                    if index in indexes:
                        yield {**event, "index": indexes[index]}
                    continue
                yield event  # ping and the like
            add_usage(usage, turn_usage)
            if stop is None:
                return  # cut short: the caller's stream ends unfinished, as the upstream's did
            session.billed.append((routed.deployment, routed.upstream_model, turn_usage))
            content = assembler.content()
            again = session.wants_loads(content, stop.get("stop_reason"))
            if again:
                await session.continue_after(request, content)
                again = session.may_call_again(request)
            if not again:
                sent = [b for b in content if not session.is_ours(b)]
                stop["stop_reason"] = session.final_stop(stop.get("stop_reason"), sent)
                yield {"type": "message_delta", "delta": stop, "usage": usage}
                yield {"type": "message_stop"}
                return
            session.calls += 1
            await events.aclose()  # type: ignore[attr-defined]
            try:
                following = await router.stream(request)
            except UpstreamError:
                raise
            except GatewayError as err:  # the answer has begun: it must end as an error in the stream
                raise UpstreamError(err.kind, err.message, retryable=False) from None
            routed.deployment, routed.upstream_model = following.deployment, following.upstream_model
            events = following.events
            first = False
    finally:
        await events.aclose()  # type: ignore[attr-defined]
