"""What the simulator answers, and how it paces a stream.  Transport-free: the in-process
provider and the standalone server both drive this engine."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec

from passerelle.canonical import ContentBlock, MessageResponse, MessagesRequest, StopReason, StreamEvent, Usage
from passerelle.canonical.text import block_texts, request_text
from passerelle.config.schema import SimulatorConfig
from passerelle.simulator.schema_values import example_for

_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])")
_LOREM = [
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
    "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua",
]
FAULTS = ("rate_limit", "server_error", "overloaded", "timeout", "connection_reset", "stream_cut", "malformed")


def split_tokens(text: str) -> list[str]:
    """Tokens with their leading whitespace, so that joining them gives the text back."""
    tokens = _TOKEN.findall(text)
    consumed = sum(len(t) for t in tokens)
    if consumed < len(text):
        if tokens:
            tokens[-1] += text[consumed:]
        else:
            tokens = [text]
    return tokens


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


class SimulatorEngine:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def pick_fault(self) -> str | None:
        faults = self.config.faults
        roll = self._rng.random()
        for name in FAULTS:
            rate = float(getattr(faults, name))
            if roll < rate:
                return name
            roll -= rate
        return None

    def answer(self, body: MessagesRequest, model: str) -> MessageResponse:
        content: list[ContentBlock] = []
        last_user = _last_user_blocks(body)
        if _thinking_enabled(body):
            thought = f"The user wrote {count_tokens(_echo_text(last_user))} tokens; answer them."
            digest = hashlib.sha256(thought.encode()).digest()
            content.append({"type": "thinking", "thinking": thought,
                            "signature": base64.b64encode(digest).decode()})
        calls = self._tool_calls(body, last_user)
        stop: StopReason = "end_turn"
        stop_sequence: str | None = None
        if calls:
            content.extend(calls)
            stop = "tool_use"
        else:
            text = self._text(last_user)
            for seq in body.get("stop_sequences", []):
                cut = text.find(seq) if seq else -1
                if cut >= 0:
                    text, stop, stop_sequence = text[:cut], "stop_sequence", seq
                    break
            tokens = split_tokens(text)
            if len(tokens) > body.get("max_tokens", 4096):
                text, stop, stop_sequence = "".join(tokens[: body.get("max_tokens", 4096)]), "max_tokens", None
            content.append({"type": "text", "text": text})
        output = sum(count_tokens(_visible(b)) for b in content)
        usage: Usage = {"input_tokens": max(count_tokens(request_text(body)), 1), "output_tokens": output,
                        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        return {"id": "msg_sim_" + self._rng.randbytes(12).hex(), "type": "message", "role": "assistant",
                "model": model, "content": content, "stop_reason": stop, "stop_sequence": stop_sequence,
                "usage": usage}

    def _text(self, last_user: list[ContentBlock]) -> str:
        if self.config.mode == "fixed":
            words = [_LOREM[i % len(_LOREM)] for i in range(self.config.output_tokens)]
            return " ".join(words)
        return _echo_text(last_user) or "Hello from the Passerelle simulator."

    def _tool_calls(self, body: MessagesRequest, last_user: list[ContentBlock]) -> list[ContentBlock]:
        tools = [t for t in body.get("tools", []) if t.get("name") and "input_schema" in t]
        choice = body.get("tool_choice", {"type": "auto"})
        if not self.config.tool_calls or not tools or choice.get("type") == "none":
            return []
        answered = any(b.get("type") == "tool_result" for b in last_user)
        if choice.get("type") == "auto" and answered:
            return []
        if choice.get("type") == "tool":
            tools = [t for t in tools if t["name"] == choice.get("name")][:1]
        elif choice.get("disable_parallel_tool_use"):
            tools = tools[:1]
        return [{"type": "tool_use", "id": "toolu_sim_" + self._rng.randbytes(10).hex(), "name": t["name"],
                 "input": example_for(t["input_schema"]) or {}} for t in tools[:3]]

    async def stream(self, message: MessageResponse, *, cut: bool = False) -> AsyncIterator[StreamEvent]:
        """The message as Anthropic stream events, paced by time-to-first-token and token rate.
        With ``cut`` the stream stops half-way, as when an upstream dies."""
        events = list(self.events(message))
        if cut:
            events = events[: max(len(events) // 2, 1)]
        delay = self.config.chunk_tokens / self.config.tokens_per_second if self.config.tokens_per_second else 0.0
        if self.config.ttft_ms:
            await asyncio.sleep(self.config.ttft_ms / 1000)
        for event in events:
            if delay and event["type"] == "content_block_delta":
                await asyncio.sleep(delay)
            yield event

    def events(self, message: MessageResponse) -> Iterator[StreamEvent]:
        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {**usage, "output_tokens": 1}}
        yield {"type": "message_start", "message": start}
        step = self.config.chunk_tokens
        for index, block in enumerate(message["content"]):
            kind = block["type"]
            if kind == "text":
                yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
                tokens = split_tokens(block["text"])
                for i in range(0, len(tokens), step):
                    yield _delta(index, {"type": "text_delta", "text": "".join(tokens[i : i + step])})
            elif kind == "thinking":
                yield {"type": "content_block_start", "index": index,
                       "content_block": {"type": "thinking", "thinking": "", "signature": ""}}
                tokens = split_tokens(block["thinking"])
                for i in range(0, len(tokens), step):
                    yield _delta(index, {"type": "thinking_delta", "thinking": "".join(tokens[i : i + step])})
                yield _delta(index, {"type": "signature_delta", "signature": block["signature"]})
            elif kind == "tool_use":
                yield {"type": "content_block_start", "index": index,
                       "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}
                args = msgspec.json.encode(block["input"]).decode()
                for i in range(0, len(args), 8 * step):
                    yield _delta(index, {"type": "input_json_delta", "partial_json": args[i : i + 8 * step]})
            yield {"type": "content_block_stop", "index": index}
        yield {"type": "message_delta",
               "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
               "usage": {"output_tokens": usage.get("output_tokens", 0)}}
        yield {"type": "message_stop"}


def _delta(index: int, delta: dict[str, Any]) -> StreamEvent:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _visible(block: ContentBlock) -> str:
    if block["type"] == "text":
        return str(block["text"])
    if block["type"] == "thinking":
        return str(block["thinking"])
    return str(block.get("input", ""))


def _thinking_enabled(body: MessagesRequest) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _last_user_blocks(body: MessagesRequest) -> list[ContentBlock]:
    for message in reversed(body.get("messages", [])):
        if message["role"] == "user":
            content = message["content"]
            return [{"type": "text", "text": content}] if isinstance(content, str) else content
    return []


def _echo_text(blocks: list[ContentBlock]) -> str:
    return "\n".join(block_texts([b for b in blocks if b.get("type") in ("text", "tool_result")]))
