"""The compliance stage, answer side: restore the request's surrogates and act on what the model wrote.

An answer is first scanned for sensitive data the model produced itself (text and tool-call arguments),
on the surrogate text, so the caller's own values (restored afterwards) are never flagged.  In an answer,
``block`` and ``redact`` both become a typed placeholder (the status is already decided), ``mask`` and
``hash`` apply as on prompts, and ``pseudonymize`` leaves the value: the caller may read what its model
wrote, only the upstream must not read the caller's data.  Then each surrogate of the request's vault is
replaced by its original.

Streams are rewritten event by event.  Per content block, a ``StreamScanner`` holds back the tail that a
value could still extend into (the trailing run of value-like words, see ``quiet_prefix``), never more
than ``answer_holdback`` characters, so that a value split across chunks is found whole once it has fully
arrived; then a ``StreamRestorer`` holds the few characters that could begin a surrogate.  Both flush at
the block's end.  The delay is bounded by those holds, counted in characters; ``held_max`` reports it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from passerelle.canonical import MessageResponse, StreamEvent
from passerelle.compliance.actions import keyed_hash, mask
from passerelle.compliance.findings import Finding
from passerelle.compliance.pseudonyms import StreamRestorer
from passerelle.pipeline.compliance import Protection, json_strings

_SURROGATE = re.compile(r"[A-Z][A-Z0-9_]*-[A-Z2-7]{8}")
_CONTEXT = 48  # characters already sent that stay in view as context (a keyword before a value)


class AnswerGuard:
    def __init__(self, protection: Protection, holdback: int, scan_answers: bool = True) -> None:
        self.protection = protection
        self.holdback = holdback
        policy = protection.policy
        self._types = frozenset(t for t, a in policy.actions.items() if a in ("redact", "block", "mask", "hash")) \
            if scan_answers else frozenset()
        self.held_max = 0  # most characters held back at once, over the whole answer

    @property
    def scans(self) -> bool:
        """Whether answers are scanned at all (else only surrogates are restored)."""
        return bool(self._types)

    # whole answers

    def message(self, message: MessageResponse) -> MessageResponse:
        """A rewritten copy (the original, holding surrogates only, may go to the response cache)."""
        content = []
        for block in message.get("content") or ():
            kind = block.get("type")
            if kind == "text":
                block = {**block, "text": self.text(block["text"])}
            elif kind == "tool_use" and isinstance(block.get("input"), dict):
                arguments = _deep_copy(block["input"])
                for _, value, put in json_strings("", arguments):
                    put(self.text(value))
                block = {**block, "input": arguments}
            content.append(block)
        return {**message, "content": content}

    def text(self, text: str) -> str:
        return self.protection.vault.restore(self.scan(text, 0, len(text)))

    def scan(self, window: str, begin: int, end: int, findings: list[Finding] | None = None) -> str:
        """``window[begin:end]`` with the answer actions applied to the findings wholly inside it;
        ``window[:begin]`` is context only (already sent).  ``findings``: of ``window``, if known."""
        if not self._types:
            return window[begin:end]
        if findings is None:
            findings = self.findings(window)
        pieces: list[str] = []
        last = begin
        for f in findings:
            if f.start < begin or f.end > end:
                continue
            pieces.append(window[last:f.start])
            pieces.append(self._replacement(f, window[f.start:f.end]))
            last = f.end
        pieces.append(window[last:end])
        return "".join(pieces)

    def findings(self, window: str) -> list[Finding]:
        found = self.protection.engine.scan(window, self._types)
        if found and "-" in window:  # never act on a surrogate, whatever a detector makes of it
            spans = [m.span() for m in _SURROGATE.finditer(window)]
            found = [f for f in found if not any(s < f.end and f.start < e for s, e in spans)]
        return found

    def _replacement(self, finding: Finding, value: str) -> str:
        action = self.protection.policy.action(finding.type)
        self.protection.findings["answer", finding.type, action] += 1
        if action == "mask":
            return mask(finding.type, value)
        if action == "hash":
            return keyed_hash(self.protection.hash_key, finding.type, value)
        return f"[{finding.type}]"

    @staticmethod
    def cut(findings: list[Finding], cut: int) -> int:
        """The latest point at or before ``cut`` that splits none of ``findings`` (sorted by start)."""
        for f in reversed(findings):
            if f.start < cut < f.end:
                cut = f.start
        return cut

    # streams

    async def events(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        blocks: dict[int, _BlockRewriter] = {}
        async for event in events:
            kind = event["type"]
            if kind == "content_block_delta":  # most events: kept lean, this runs per token
                rewriter = blocks.get(event["index"])
                delta = event["delta"]
                if rewriter is None or delta.get("type") != rewriter.delta_type:
                    yield event
                    continue
                out = rewriter.feed(delta[rewriter.field])
                if rewriter.held > self.held_max:
                    self.held_max = rewriter.held
                if out:
                    yield {**event, "delta": {**delta, rewriter.field: out}}
            elif kind == "content_block_start":
                block = event["content_block"]
                if block.get("type") in ("text", "tool_use"):
                    blocks[event["index"]] = _BlockRewriter(self, json_string=block.get("type") == "tool_use")
                yield event
            elif kind == "content_block_stop":
                rewriter = blocks.pop(event["index"], None)
                if rewriter is not None:
                    tail = rewriter.flush()
                    if tail:
                        yield {"type": "content_block_delta", "index": event["index"],
                               "delta": {"type": rewriter.delta_type, rewriter.field: tail}}
                yield event
            else:
                yield event
        if hasattr(events, "aclose"):
            await events.aclose()


class StreamScanner:
    """Releases a stream of text pieces once no value can straddle what is released (see the module)."""

    __slots__ = ("_buffer", "_context", "_guard")

    def __init__(self, guard: AnswerGuard) -> None:
        self._guard = guard
        self._buffer = ""
        self._context = ""

    @property
    def held(self) -> int:
        return len(self._buffer)

    def feed(self, piece: str) -> str:
        self._buffer += piece
        if len(self._buffer) >= self._guard.holdback + 16:  # the bound: never more held than this
            return self._release(len(self._buffer) - self._guard.holdback)
        quiet = quiet_prefix(self._buffer)
        # Below 8 characters, waiting for more keeps the number of scans (and their cost) down.
        return self._release(quiet) if quiet >= 8 else ""

    def flush(self) -> str:
        return self._release(len(self._buffer)) if self._buffer else ""

    def _release(self, cut: int) -> str:
        window = self._context + self._buffer
        begin = len(self._context)
        guard = self._guard
        # One scan of the window serves both the cut and the actions (the engine is the costly part).
        findings = guard.findings(window) if guard.scans else []
        end = guard.cut(findings, begin + cut) if cut < len(self._buffer) else len(window)
        if end <= begin:
            return ""
        out = guard.scan(window, begin, end, findings)
        self._context = window[max(begin, end - _CONTEXT):end]
        self._buffer = window[end:]
        return out


_WORD = re.compile(r"\S+")
_VALUE_LIKE = re.compile(r"[0-9A-Z@+/:#_]")


def quiet_prefix(text: str) -> int:
    """Where the text stops being final: the start of its trailing run of words that could still be part of
    a value the next pieces complete.  The last word always could; before it, words with a digit, a capital
    or value punctuation (a card's groups, a name, a marking, an IBAN) join the run, and so do short
    lowercase words between two of them (de, la, van: particles of names)."""
    words = _WORD.findall(text, max(0, len(text) - 200))
    if not words:
        return len(text)
    # Words are found from the end with rfind (the k-th word is the last run of non-spaces before the
    # (k+1)-th), so no match object is built per word: this runs on every streamed piece.
    hold = text.rfind(words[-1])
    for k in range(len(words) - 2, -1, -1):
        word = words[k]
        if _VALUE_LIKE.search(word) or (len(word) <= 3 and word.isalpha() and k > 0
                                         and _VALUE_LIKE.search(words[k - 1])):
            hold = text.rfind(word, 0, hold)
        else:
            break
    return hold


class _BlockRewriter:
    """One content block's pipeline: scanner, then restorer.  ``held``: characters held after the last feed."""

    __slots__ = ("_restorer", "_scanner", "delta_type", "field", "held", "json_string")

    def __init__(self, guard: AnswerGuard, *, json_string: bool) -> None:
        self.json_string = json_string
        self.field = "partial_json" if json_string else "text"
        self.delta_type = "input_json_delta" if json_string else "text_delta"
        self.held = 0
        self._scanner: StreamScanner | None = StreamScanner(guard) if guard.scans else None
        self._restorer: StreamRestorer = guard.protection.vault.restorer(json_string=json_string)

    def feed(self, piece: str) -> str:
        scanner = self._scanner
        if scanner is not None:
            piece = scanner.feed(piece)
        out = self._restorer.feed(piece) if piece else ""
        self.held = (scanner.held if scanner is not None else 0) + self._restorer.held
        return out

    def flush(self) -> str:
        rest = self._scanner.flush() if self._scanner is not None else ""
        out = (self._restorer.feed(rest) if rest else "") + self._restorer.flush()
        self.held = 0
        return out


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value

