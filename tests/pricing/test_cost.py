"""Token accounting, exact costs, reservation bounds and the estimate for cut streams."""

from __future__ import annotations

import base64
import math
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passerelle.canonical import ChatRequest
from passerelle.canonical.text import estimate_tokens, request_text
from passerelle.config.schema import SimulatorConfig
from passerelle.dialects.openai.response import canonical_usage
from passerelle.pricing import (
    Catalog,
    Price,
    TokenUsage,
    cost_pico,
    estimate_usage,
    input_token_bound,
    max_cost_pico,
    merge_partial,
    output_token_bound,
    unbounded_reasons,
    usage_from_canonical,
)
from passerelle.pricing.catalog import LongContext
from passerelle.pricing.cost import DEFAULT_IMAGE_TOKENS, DEFAULT_MAX_INPUT_TOKENS
from passerelle.simulator.engine import SimulatorEngine, count_tokens

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CATALOG = Catalog.load()


def shipped(provider: str, model: str) -> Price:
    found = CATALOG.lookup(provider, model, 1_780_000_000.0)
    assert found is not None
    return found


SONNET_45 = shipped("anthropic", "claude-sonnet-4-5-20250929")

# -- strategies -----------------------------------------------------------------------------------

text = st.text(max_size=60)  # any code point hypothesis likes, multibyte UTF-8 included
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8)
json_object = st.dictionaries(text, json_value, max_size=4)
text_block = st.builds(lambda t: {"type": "text", "text": t}, text)
tool_use = st.builds(lambda n, i: {"type": "tool_use", "id": "toolu_1", "name": n, "input": i}, text, json_object)
tool_result = st.builds(lambda c: {"type": "tool_result", "tool_use_id": "toolu_1", "content": c},
                        text | st.lists(text_block, max_size=3))
thinking = st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "c2ln"}, text)
user_content = text | st.lists(text_block | tool_result, min_size=1, max_size=4)
assistant_content = text | st.lists(text_block | tool_use | thinking, min_size=1, max_size=4)
tool_def = st.builds(lambda n, d, s: {"name": n, "description": d, "input_schema": s}, text, text, json_object)


@st.composite
def bodies(draw: st.DrawFn, tools: bool = True) -> dict[str, Any]:
    turns = draw(st.integers(0, 4))
    messages = [{"role": "user", "content": draw(user_content)}]
    for _ in range(turns):
        messages += [{"role": "assistant", "content": draw(assistant_content)},
                     {"role": "user", "content": draw(user_content)}]
    body: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": draw(st.integers(1, 5000)),
                            "messages": messages}
    if draw(st.booleans()):
        body["system"] = draw(text | st.lists(text_block, min_size=1, max_size=3))
    if tools and draw(st.booleans()):
        body["tools"] = draw(st.lists(tool_def, min_size=1, max_size=3))
    return body


def request(body: dict[str, Any], **kw: Any) -> ChatRequest:
    return ChatRequest(body=body, dialect="anthropic", request_id="r", **kw)  # type: ignore[arg-type]


def utf8(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def all_text_bytes(body: dict[str, Any]) -> int:
    """Every byte of text the request carries: what no byte-level tokenizer can split finer."""
    def walk(value: Any) -> int:
        if isinstance(value, str):
            return utf8(value)
        if isinstance(value, list):
            return sum(walk(v) for v in value)
        if isinstance(value, dict):
            return sum(walk(v) for v in value.values())
        return 0
    return sum(walk(body.get(key)) for key in ("system", "messages", "tools"))


def price(**kw: Any) -> Price:
    base: dict[str, Any] = {"provider": "anthropic", "model": "m", "effective_from": date(2025, 1, 1),
                            "input": Decimal(3), "output": Decimal(15), "cache_write": Decimal("3.75"),
                            "cache_read": Decimal("0.3")}
    return Price(**{**base, **kw})


# -- usage ----------------------------------------------------------------------------------------

def test_usage_from_anthropic_usage() -> None:
    usage = usage_from_canonical({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 20,
                                  "cache_read_input_tokens": 30,
                                  "cache_creation": {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 15}})
    assert usage == TokenUsage(input=10, output=5, cache_write=20, cache_read=30, thinking=0, estimated=False,
                               cache_write_1h=15)
    assert usage.total_input == 60


def test_usage_from_openai_usage_mapped_to_canonical() -> None:
    mapped = canonical_usage({"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
                              "prompt_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 100},
                              "completion_tokens_details": {"reasoning_tokens": 200}})
    usage = usage_from_canonical(mapped)
    assert usage == TokenUsage(input=600, output=500, cache_write=100, cache_read=300, thinking=200)
    assert usage.total_input == 1000  # OpenAI's prompt_tokens, all of it


def test_usage_ignores_garbage() -> None:
    assert usage_from_canonical(None) == TokenUsage()
    usage = usage_from_canonical({"input_tokens": -5, "output_tokens": "7", "cache_read_input_tokens": True,
                                  "cache_creation_input_tokens": 3.5, "output_tokens_details": {"thinking_tokens": 9},
                                  "cache_creation": "x"})
    assert usage == TokenUsage()  # thinking is part of the output, so never more than it


def test_thinking_is_not_billed_twice() -> None:
    plain = usage_from_canonical({"input_tokens": 10, "output_tokens": 500})
    with_thinking = usage_from_canonical({"input_tokens": 10, "output_tokens": 500,
                                          "output_tokens_details": {"thinking_tokens": 300}})
    assert with_thinking.thinking == 300
    assert cost_pico(plain, SONNET_45) == cost_pico(with_thinking, SONNET_45) == 10 * 3_000_000 + 500 * 15_000_000


# -- cost -----------------------------------------------------------------------------------------

def test_cost_of_a_cached_request() -> None:
    usage = TokenUsage(input=1000, output=500, cache_write=2000, cache_read=10_000, cache_write_1h=500)
    expected = 1000 * 3_000_000 + 500 * 15_000_000 + 1500 * 3_750_000 + 500 * 6_000_000 + 10_000 * 300_000
    assert cost_pico(usage, SONNET_45) == expected == 22_125_000_000  # $0.022125
    assert cost_pico(usage, SONNET_45, batch=True) == expected // 2


def test_long_context_rates_apply_to_the_whole_request_above_the_threshold() -> None:
    at_threshold = TokenUsage(input=150_000, cache_read=50_000, output=1000)
    above = TokenUsage(input=150_000, cache_read=50_001, output=1000)
    assert cost_pico(at_threshold, SONNET_45) == 150_000 * 3_000_000 + 50_000 * 300_000 + 1000 * 15_000_000
    assert cost_pico(above, SONNET_45) == 150_000 * 6_000_000 + 50_001 * 600_000 + 1000 * 22_500_000


mtok_price = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)
tokens = st.integers(0, 10**9)


@SETTINGS
@given(prices=st.lists(mtok_price, min_size=7, max_size=7), counts=st.lists(tokens, min_size=5, max_size=5),
       batch=st.booleans(), threshold=st.integers(1, 10**9))
def test_cost_is_exact_decimal_arithmetic(prices: list[Decimal], counts: list[int], batch: bool,
                                          threshold: int) -> None:
    p_in, p_out, p_write, p_write_1h, p_read, long_in, long_out = prices
    long = LongContext(threshold, p_in + long_in, p_out + long_out, p_write + long_in, p_write_1h + long_in,
                       p_read + long_in)
    the_price = price(input=p_in, output=p_out, cache_write=p_write, cache_write_1h=p_write_1h, cache_read=p_read,
                      long_context=long, batch_input=None if batch else p_in, batch_output=p_out)
    fresh, output, write_5m, write_1h, read = counts
    usage = TokenUsage(input=fresh, output=output, cache_write=write_5m + write_1h, cache_read=read,
                       cache_write_1h=write_1h)
    tier: Price | LongContext = long if usage.total_input > threshold else the_price
    assert tier.cache_write_1h is not None
    usd = (Decimal(fresh) * tier.input + Decimal(output) * tier.output + Decimal(write_5m) * tier.cache_write
           + Decimal(write_1h) * tier.cache_write_1h + Decimal(read) * tier.cache_read)
    assert cost_pico(usage, the_price, batch=batch) == int(usd * 10**6)
    assert (usd * 10**6) == int(usd * 10**6)  # and nothing was rounded away


# -- reservation bounds ---------------------------------------------------------------------------

@SETTINGS
@given(body=bodies())
def test_input_bound_covers_any_byte_level_tokenizer(body: dict[str, Any]) -> None:
    assert input_token_bound(request(body)) >= all_text_bytes(body)


@SETTINGS
@given(body=bodies())
def test_input_bound_covers_the_simulators_count(body: dict[str, Any]) -> None:
    engine = SimulatorEngine(SimulatorConfig(tool_calls=False))
    answer = engine.answer(body, "claude-sonnet-4-5")  # type: ignore[arg-type]
    assert answer["usage"]["input_tokens"] == max(count_tokens(request_text(body)), 1)  # type: ignore[arg-type]
    assert input_token_bound(request(body)) >= answer["usage"]["input_tokens"]


@SETTINGS
@given(body=bodies(tools=False))
def test_reservation_covers_the_simulators_cost(body: dict[str, Any]) -> None:
    answer = SimulatorEngine(SimulatorConfig()).answer(body, "claude-sonnet-4-5")  # type: ignore[arg-type]
    usage = usage_from_canonical(answer["usage"])
    assert usage.output <= output_token_bound(request(body), 4096)
    assert cost_pico(usage, SONNET_45) <= max_cost_pico(request(body), SONNET_45, 4096)


@SETTINGS
@given(body=bodies(), split=st.lists(st.integers(0, 100), min_size=4, max_size=4), used=st.integers(0, 100),
       output_used=st.integers(0, 100), threshold=st.integers(1, 3000), batch=st.booleans())
def test_reservation_covers_every_split_of_cached_and_fresh_input(
        body: dict[str, Any], split: list[int], used: int, output_used: int, threshold: int, batch: bool) -> None:
    the_price = price(cache_write_1h=Decimal(6), batch_input=Decimal("1.5"), batch_output=Decimal("7.5"),
                      long_context=LongContext(threshold, Decimal(6), Decimal("22.5"), Decimal("7.5"), Decimal(12),
                                               Decimal("0.6")))
    req = request(body)
    total = input_token_bound(req, max_input_tokens=DEFAULT_MAX_INPUT_TOKENS) * used // 100
    weights = sum(split) or 1
    fresh, write_5m, write_1h = (total * w // weights for w in split[:3])
    usage = TokenUsage(input=fresh, cache_write=write_5m + write_1h, cache_write_1h=write_1h,
                       cache_read=total - fresh - write_5m - write_1h,
                       output=output_token_bound(req, 4096) * output_used // 100)
    assert cost_pico(usage, the_price, batch=batch) <= max_cost_pico(req, the_price, 4096, batch=batch)


def test_output_bound_is_max_tokens_or_the_default() -> None:
    assert output_token_bound(request({"max_tokens": 300, "messages": []}), 4096) == 300
    assert output_token_bound(request({"messages": []}), 4096) == 4096
    assert output_token_bound(request({"max_tokens": True, "messages": []}), 4096) == 4096


def test_images_use_the_models_allowance_not_their_bytes() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(b"x" * 100_000).decode()}}
    body = {"max_tokens": 10, "messages": [{"role": "user", "content": [image, {"type": "text", "text": "what?"}]}]}
    default = input_token_bound(request(body))
    assert DEFAULT_IMAGE_TOKENS < default < DEFAULT_IMAGE_TOKENS + 1000
    assert 2000 < input_token_bound(request(body), image_tokens=2000) < 3000
    # An image inside a tool result counts the same way.
    nested = {"max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [image]}]}]}
    assert 2000 < input_token_bound(request(nested), image_tokens=2000) < 3000
    assert SONNET_45.image_tokens == 2000
    reserved = max_cost_pico(request(body), SONNET_45, 4096)
    assert reserved == input_token_bound(request(body), image_tokens=2000, max_input_tokens=1_000_000) * 6_000_000 \
        + 10 * 15_000_000


def test_documents_reserve_the_context_window_unless_they_are_text() -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    plain = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "é" * 1000}}
    body = {"max_tokens": 10, "messages": [{"role": "user", "content": [pdf]}]}
    assert input_token_bound(request(body), max_input_tokens=200_000) == 200_000
    assert input_token_bound(request(body)) == DEFAULT_MAX_INPUT_TOKENS
    text_body = {"max_tokens": 10, "messages": [{"role": "user", "content": [plain]}]}
    assert 2000 <= input_token_bound(request(text_body)) < 2300


def test_the_bound_never_exceeds_the_context_window() -> None:
    body = {"max_tokens": 10, "messages": [{"role": "user", "content": "word " * 100_000}]}
    assert input_token_bound(request(body)) > 500_000
    assert input_token_bound(request(body), max_input_tokens=200_000) == 200_000


def test_tools_and_other_fields_count() -> None:
    plain = {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    tool = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}
    with_tool = {**plain, "tools": [tool]}
    grow = input_token_bound(request(with_tool)) - input_token_bound(request(plain))
    assert grow >= 1024 + 2 * len(msgspec.json.encode(tool))
    computer = {**plain, "tools": [{"type": "computer_20250124", "name": "computer", "display_width_px": 1024}]}
    assert input_token_bound(request(computer)) - input_token_bound(request(plain)) >= 1024 + 2048
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    extras = request(plain, openai_extras={"response_format": schema, "_wire": {"image_detail": {"u" * 10_000: "low"}}})
    assert 0 < input_token_bound(extras) - input_token_bound(request(plain)) < 200


def test_server_tools_are_flagged_and_reserve_the_context_window() -> None:
    body = {"max_tokens": 10, "messages": [{"role": "user", "content": "news?"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}
    assert unbounded_reasons(request(body)) == ("server tool web_search_20250305",)
    assert input_token_bound(request(body), max_input_tokens=200_000) == 200_000
    mcp = request({"max_tokens": 10, "messages": []}, passthrough={"mcp_servers": [{"url": "https://x"}]})
    assert unbounded_reasons(mcp) == ("mcp_servers",)
    assert input_token_bound(mcp, max_input_tokens=200_000) == 200_000
    assert unbounded_reasons(request({"max_tokens": 10, "messages": [], "tools": [{"name": "f"}]})) == ()


def test_long_context_reservation_for_a_long_request() -> None:
    body = {"max_tokens": 100, "messages": [{"role": "user", "content": "a" * 300_000}]}
    bound = input_token_bound(request(body), image_tokens=2000, max_input_tokens=1_000_000)
    assert bound > 300_000
    assert max_cost_pico(request(body), SONNET_45, 4096) == bound * 12_000_000 + 100 * 22_500_000


# -- estimates for cut streams --------------------------------------------------------------------

def test_estimate_usage_for_a_silent_upstream() -> None:
    req = request({"max_tokens": 100, "messages": [{"role": "user", "content": "Bonjour à tous " * 10}]})
    usage = estimate_usage(req, "héllo wörld", "thought")
    assert usage.estimated
    assert usage.input == estimate_tokens(req.body)
    assert usage.thinking == math.ceil(len(b"thought") / 4) == 2
    assert usage.output == math.ceil(len("héllo wörld".encode()) / 4) + 2 == 6
    assert estimate_usage(req, "").output == 0


def test_merge_keeps_what_the_upstream_reported() -> None:
    req = request({"max_tokens": 100, "messages": [{"role": "user", "content": "x" * 400}]})
    start = {"input_tokens": 42, "output_tokens": 1, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 3}
    usage = merge_partial(start, req, "a" * 40)
    assert usage == TokenUsage(input=42, output=10, cache_write=3, cache_read=7, estimated=True)
    running = merge_partial({**start, "output_tokens": 25}, req, "a" * 40)
    assert running.output == 25  # a running count above the estimate wins
    nothing = merge_partial(None, req, "a" * 8)
    assert nothing == TokenUsage(input=estimate_tokens(req.body), output=2, estimated=True)
    assert merge_partial({"input_tokens": 0}, req, "").input == 0  # a reported zero is a report


async def test_merge_on_a_simulator_stream_cut_in_half() -> None:
    engine = SimulatorEngine(SimulatorConfig())
    body = {"model": "claude-sonnet-4-5", "max_tokens": 500,
            "messages": [{"role": "user", "content": "The quick brown fox jumps over the lazy dog. " * 8}]}
    message = engine.answer(body, "claude-sonnet-4-5")  # type: ignore[arg-type]
    reported: dict[str, Any] = {}
    streamed = ""
    async for event in engine.stream(message, cut=True):
        if event["type"] == "message_start":
            reported = dict(event["message"]["usage"])
        elif event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
            streamed += event["delta"]["text"]
        assert event["type"] not in ("message_delta", "message_stop")
    usage = merge_partial(reported, request(body), streamed)
    full = usage_from_canonical(message["usage"])
    assert usage.estimated and usage.input == full.input  # message_start's count is exact
    assert 0 < usage.output <= output_token_bound(request(body), 4096)
    assert cost_pico(usage, SONNET_45) <= max_cost_pico(request(body), SONNET_45, 4096)


def test_usages_add_field_by_field_and_stay_estimated() -> None:
    a = TokenUsage(input=10, output=5, cache_write=3, cache_read=2, thinking=1, cache_write_1h=1)
    b = TokenUsage(input=1, output=2, cache_write=4, cache_read=8, thinking=2, estimated=True, cache_write_1h=3)
    assert a.plus(b) == TokenUsage(11, 7, 7, 10, 3, True, 4)
    assert a.plus(TokenUsage()) == a and not a.plus(a).estimated
