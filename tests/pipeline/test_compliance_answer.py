"""The answer side of the compliance stage: surrogates restored and model-written values acted on, in whole
answers and in streams cut at every position."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from passerelle.canonical import ChatRequest
from passerelle.config.schema import ComplianceConfig
from passerelle.pipeline.auth import Principal
from passerelle.pipeline.compliance import ComplianceStage, Protection
from passerelle.pipeline.compliance_answer import AnswerGuard

NAME, NIR, CARD = "Jean Dupont", "1 85 05 78 006 084 91", "4970 1012 3456 7893"
PROMPT = f"Bonjour, je suis {NAME}, NIR {NIR}, carte {CARD}. Merci."
MODEL_CARD, MODEL_CARD_MASKED = "5555 5555 5555 4444", "5555 55** **** 4444"
WHO = Principal("key_1", "app", "tenant-a")
HOLDBACK = 64


def stage(**overrides: str) -> ComplianceStage:
    return ComplianceStage(ComplianceConfig(packs=["gdpr", "finance"], overrides=dict(overrides)), b"s" * 32)


STAGES = {"pseudonymize cards": stage(CREDIT_CARD="pseudonymize"), "mask cards": stage()}


def protected(which: str) -> tuple[Protection, str]:
    """The protection of a request holding PROMPT, and the prompt as the upstream received it."""
    request = ChatRequest(body={"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": PROMPT}]},
                          dialect="anthropic", request_id="r1")
    protection = STAGES[which].protect(WHO, request)
    assert protection is not None
    sent = request.body["messages"][0]["content"]
    assert isinstance(sent, str) and NAME not in sent and NIR not in sent
    return protection, sent


def expected_answer(which: str) -> tuple[str, str]:
    """(what the upstream writes, what the caller must read): the echo of the protected prompt, then a card
    number of the model's own, which a pseudonymizing policy leaves to the caller and a masking one masks."""
    _, sent = protected(which)
    if which == "pseudonymize cards":
        return f"{sent} Your other card is {MODEL_CARD}.", f"{PROMPT} Your other card is {MODEL_CARD}."
    caller_prompt = PROMPT.replace(CARD, "4970 10** **** 7893")
    return f"{sent} Your other card is {MODEL_CARD}.", f"{caller_prompt} Your other card is {MODEL_CARD_MASKED}."


async def _events(pieces: Sequence[str], tool_pieces: Sequence[str] = ()) -> AsyncIterator[Any]:
    yield {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [],
                                                "model": "m", "usage": {"input_tokens": 1, "output_tokens": 0}}}
    yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    for piece in pieces:
        yield {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
    yield {"type": "content_block_stop", "index": 0}
    if tool_pieces:
        yield {"type": "content_block_start", "index": 1,
               "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}}
        for piece in tool_pieces:
            yield {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
                                                                        "partial_json": piece}}
        yield {"type": "content_block_stop", "index": 1}
    yield {"type": "message_stop"}


async def streamed(guard: AnswerGuard, pieces: Sequence[str], tool_pieces: Sequence[str] = ()) -> tuple[str, str]:
    text: list[str] = []
    tool: list[str] = []
    async for event in guard.events(_events(pieces, tool_pieces)):
        if event["type"] == "content_block_delta":
            delta = event["delta"]
            (text if delta["type"] == "text_delta" else tool).append(delta.get("text") or delta.get("partial_json"))
    return "".join(text), "".join(tool)


@pytest.mark.parametrize("which", list(STAGES))
async def test_a_stream_cut_once_at_every_position_reads_as_the_whole_answer(which: str) -> None:
    upstream, caller = expected_answer(which)
    for cut in range(len(upstream) + 1):
        guard = AnswerGuard(protected(which)[0], HOLDBACK)
        text, _ = await streamed(guard, [upstream[:cut], upstream[cut:]])
        assert text == caller, f"cut at {cut}"
        assert guard.held_max <= len(upstream)


@pytest.mark.parametrize("which", list(STAGES))
async def test_a_stream_in_pieces_of_every_size_reads_as_the_whole_answer(which: str) -> None:
    upstream, caller = expected_answer(which)
    for size in range(1, 40):
        guard = AnswerGuard(protected(which)[0], HOLDBACK)
        text, _ = await streamed(guard, [upstream[i:i + size] for i in range(0, len(upstream), size)])
        assert text == caller, f"pieces of {size}"
        # The delay is bounded: the scanner's hold (plus one piece) and the restorer's surrogate prefix.
        assert guard.held_max <= HOLDBACK + 16 + size + 24


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=400), max_size=25), st.sampled_from(list(STAGES)))
def test_a_stream_cut_anywhere_any_number_of_times_reads_as_the_whole_answer(cuts: list[int], which: str) -> None:
    upstream, caller = expected_answer(which)
    points = sorted({min(c, len(upstream)) for c in cuts})
    pieces = [upstream[a:b] for a, b in zip([0, *points], [*points, len(upstream)], strict=True)]
    guard = AnswerGuard(protected(which)[0], HOLDBACK)
    text, _ = asyncio.run(streamed(guard, pieces))
    assert text == caller


async def test_tool_call_arguments_are_restored_as_json_whatever_the_cut() -> None:
    protection, sent = protected("pseudonymize cards")
    surrogate = next(word for word in sent.replace(",", " ").split() if word.startswith("PERSON-"))
    arguments = '{"customer": "' + surrogate + '", "note": "call back"}'
    for cut in range(len(arguments) + 1):
        guard = AnswerGuard(protection, HOLDBACK)
        _, tool = await streamed(guard, ["ok"], [arguments[:cut], arguments[cut:]])
        assert tool == '{"customer": "' + NAME + '", "note": "call back"}', f"cut at {cut}"


def test_a_whole_answer_is_restored_and_scanned_and_the_original_is_left_for_the_cache() -> None:
    protection, sent = protected("mask cards")
    surrogate = next(word for word in sent.replace(",", " ").split() if word.startswith("PERSON-"))
    message: Any = {"id": "m", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
                    "content": [{"type": "text", "text": f"Dear {surrogate}, card {MODEL_CARD}."},
                                {"type": "tool_use", "id": "t", "name": "f",
                                 "input": {"who": surrogate, "cards": [MODEL_CARD], "n": 3}}],
                    "usage": {"input_tokens": 1, "output_tokens": 1}}
    out = AnswerGuard(protection, HOLDBACK).message(message)
    assert out["content"][0]["text"] == f"Dear {NAME}, card {MODEL_CARD_MASKED}."
    assert out["content"][1]["input"] == {"who": NAME, "cards": [MODEL_CARD_MASKED], "n": 3}
    assert message["content"][0]["text"] == f"Dear {surrogate}, card {MODEL_CARD}."  # untouched
    assert {(d, t, a) for d, t, a in protection.findings} >= {("answer", "CREDIT_CARD", "mask")}
    assert all("5555" not in str(entry) for entry in protection.summary())  # types and counts, never values


@pytest.mark.parametrize(("text", "held"), [
    ("the review is planned for next", "next"),
    ("your card 4970 1012", "4970 1012"),
    ("written by Jean de la", "Jean de la"),
    ("marked TOP SECRET//NO", "TOP SECRET//NO"),
    ("ends with a space ", "space "),
    ("", ""),
])
def test_streams_hold_back_only_the_words_a_value_could_still_extend_into(text: str, held: str) -> None:
    from passerelle.pipeline.compliance_answer import quiet_prefix

    assert text[quiet_prefix(text):] == held


def _quiet_prefix_by_definition(text: str) -> int:
    """The rule of ``quiet_prefix`` spelled out with match positions (the production code finds words
    from the end with ``rfind`` instead, for speed): the two must agree on every text."""
    import re

    words = [(m.start(), m.group()) for m in re.finditer(r"\S+", text, 0)
             if m.start() >= max(0, len(text) - 200) or m.end() > max(0, len(text) - 200)]
    if words and words[0][0] < max(0, len(text) - 200):  # the search starts 200 characters from the end
        cut = max(0, len(text) - 200)
        words[0] = (cut, text[cut:words[0][0] + len(words[0][1])])
    if not words:
        return len(text)
    value_like = re.compile(r"[0-9A-Z@+/:#_]")
    hold = words[-1][0]
    for k in range(len(words) - 2, -1, -1):
        start, word = words[k]
        if value_like.search(word) or (len(word) <= 3 and word.isalpha() and k > 0
                                       and value_like.search(words[k - 1][1])):
            hold = start
        else:
            break
    return hold


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["a", "de", "la", "Jean", "4970", "12", " ", "  ", "\n", "\xa0", "/", "-", "é",
                                 "ab ", "TOP", "SECRET//NO"]), max_size=120))
def test_quiet_prefix_agrees_with_its_definition(parts: list[str]) -> None:
    from passerelle.pipeline.compliance_answer import quiet_prefix

    text = "".join(parts)
    assert quiet_prefix(text) == _quiet_prefix_by_definition(text)
