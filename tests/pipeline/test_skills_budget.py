"""Skills under a hard budget: the reservation covers the calls the gateway adds, a follow-up that might not fit
is not made, and every call that answered is billed, even when a later one fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web

from passerelle.canonical import ChatRequest, MessageResponse
from passerelle.errors import ErrorKind, UpstreamError
from passerelle.pipeline.skills import BUDGET_STOP, MAX_CALLS
from passerelle.pricing import FollowUps, LongContext, call_costs_pico, max_cost_pico
from passerelle.skills.registry import SkillRegistry
from tests.pipeline.test_skills_e2e import KEY, PLAIN_KEY, QUESTION, Gateway, open_gateway
from tests.pipeline.test_skills_stage import Script, chat, load, message, registry, session_for, text
from tests.pricing.test_cost import price
from tests.support.servers import AppServer

__all__ = ["registry"]  # the fixture, shared with the stage's tests

PRICE = price(max_input_tokens=200_000, long_context=LongContext(
    threshold=150_000, input=Decimal(6), output=Decimal("22.5"), cache_write=Decimal("7.5"),
    cache_write_1h=Decimal(12), cache_read=Decimal("0.6")))


def test_follow_ups_grow_the_bound_call_by_call_and_keep_the_single_call_bound() -> None:
    request = chat()
    single = max_cost_pico(request, PRICE, 4096)
    costs = call_costs_pico(request, PRICE, 4096, follow_ups=FollowUps(calls=MAX_CALLS - 1, loaded=200_000))
    assert costs[0] == single and len(costs) == MAX_CALLS
    assert costs == sorted(costs) and costs[1] > costs[0]
    # Past the long-context threshold a follow-up is priced at the long rates; never past the context window.
    long = PRICE.rates(long=True, batch=False)
    assert costs[-1] == 200_000 * long.max_input + 100 * long.output
    assert max_cost_pico(request, PRICE, 4096, follow_ups=FollowUps(calls=4, loaded=10)) == sum(
        call_costs_pico(request, PRICE, 4096, follow_ups=FollowUps(calls=4, loaded=10)))


async def test_the_allowance_covers_what_a_session_may_load(registry: SkillRegistry) -> None:
    request = chat()
    session = await session_for(registry, request, max_load_bytes=50_000, max_loads_per_request=3)
    allowance = session.follow_ups()
    assert allowance.calls == MAX_CALLS - 1 and allowance.loaded >= 50_000 + 3 * 1024


async def test_a_follow_up_that_might_not_fit_is_not_made(registry: SkillRegistry) -> None:
    request = chat()
    session = await session_for(registry, request)
    asked: list[int] = []

    def affordable(following: ChatRequest) -> bool:
        asked.append(len(following.body["messages"]))
        return False

    session.affordable = affordable
    script = Script([message(text("Let me look."), load(), stop="tool_use", usage=(100, 20)),
                     message(text("Done."))])
    routed = await session.complete(script, request)
    assert len(script.seen) == 1 and asked == [3]  # asked about the call with the loaded skill
    assert routed.message["content"] == [text("Let me look.")] and routed.message["stop_reason"] == "end_turn"
    assert BUDGET_STOP in routed.warnings
    assert routed.message["usage"] == {"input_tokens": 100, "output_tokens": 20}


async def test_a_streamed_follow_up_that_might_not_fit_is_not_made(registry: SkillRegistry,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr("passerelle.pipeline.skills.log", lambda event, level, **fields: logged.append((event, fields)))
    request = chat(stream=True)
    session = await session_for(registry, request)
    session.affordable = lambda following: False
    script = Script([message(text("Let me look."), load(), stop="tool_use", usage=(100, 20)),
                     message(text("Done."))])
    routed = await session.stream(script, request)
    events = [event async for event in routed.events]
    assert len(script.seen) == 1
    delta = [e for e in events if e["type"] == "message_delta"][-1]
    assert delta["delta"]["stop_reason"] == "end_turn" and events[-1]["type"] == "message_stop"
    assert not any(e["type"] == "content_block_start" and e["content_block"].get("name") == "load_skill"
                   for e in events)
    assert [usage for _, _, usage in session.billed] == [{"input_tokens": 100, "output_tokens": 20}]
    assert logged == [("skills_follow_up_not_made", {"request_id": "req_1", "calls": 1,
                                                      "reason": "budget_reservation"})]


async def test_calls_that_answered_stay_billed_when_a_later_one_fails(registry: SkillRegistry) -> None:
    request = chat()
    session = await session_for(registry, request)

    def turns(n: int) -> MessageResponse:
        if n == 2:
            raise UpstreamError(ErrorKind.API_ERROR, "upstream failed", retryable=False)
        return message(text("Let me look."), load(), stop="tool_use", usage=(100, 20))

    with pytest.raises(UpstreamError):
        await session.complete(Script(turns), request)
    assert [usage for _, _, usage in session.billed] == [{"input_tokens": 100, "output_tokens": 20}]


# -- through the gateway, with the official SDK -------------------------------------------------------------

PRICES = """
metering:
  prices: [{{provider: anthropic, model: claude-sonnet-4-5, input: "3", output: "15"}}]
  budgets: [{{scope: key, scope_id: app, limit_usd: "{limit}", period: total, mode: hard}},
            {{scope: key, scope_id: plain, limit_usd: "{limit}", period: total, mode: hard}}]
"""


async def _gateway(tmp_path: Path, limit: str, url: str | None = None) -> AsyncIterator[Gateway]:
    async for gw in open_gateway(tmp_path, PRICES.format(limit=limit), upstream_url=url):
        yield gw


async def test_the_reservation_covers_the_calls_the_skills_stage_may_add(tmp_path: Path) -> None:
    # Enough for one call of this request at its worst (400 output tokens and the prompt), not for a session.
    async for gw in _gateway(tmp_path, "0.05"):
        messages: Any = [{"role": "user", "content": QUESTION}]
        plain = await gw.anthropic(PLAIN_KEY).messages.create(model="claude-test", max_tokens=400, messages=messages)
        assert plain.content[0].type == "text"  # no skills: one call, admitted
        with pytest.raises(anthropic.APIStatusError) as refused:
            await gw.anthropic(KEY).messages.create(model="claude-test", max_tokens=400, messages=messages)
        assert refused.value.status_code == 402
        assert "may cost up to" in str(refused.value)
        assert len(gw.upstream.received) == 1  # the refused request never reached the upstream


class FailingFollowUp:
    """An Anthropic upstream whose first answer calls the skills tool and whose second refuses the request."""

    def __init__(self) -> None:
        self.calls = 0
        self.server = AppServer()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        return await self.server.start(app)

    async def messages(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.calls > 1:
            return web.json_response({"type": "error", "error": {"type": "invalid_request_error",
                                                                   "message": "prompt is too long"}}, status=400)
        return web.json_response({
            "id": "msg_up_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "load_skill", "input": {"name": "pdf-tools"}}],
            "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 1000, "output_tokens": 50}})


async def test_a_failed_follow_up_leaves_the_first_call_billed(tmp_path: Path) -> None:
    upstream = FailingFollowUp()
    url = await upstream.start()
    try:
        async for gw in _gateway(tmp_path, "1000", url):
            with pytest.raises(anthropic.BadRequestError):
                await gw.anthropic(KEY).messages.create(model="claude-test", max_tokens=400,
                                                        messages=[{"role": "user", "content": QUESTION}])
            assert upstream.calls == 2
            assert gw.app.gateway is not None
            await gw.app.gateway.ledger.flush()
            [entry] = await gw.app.gateway.store.usage_records()
            assert (entry.input_tokens, entry.output_tokens) == (1000, 50)
            assert entry.cost_pico == 1000 * 3_000_000 + 50 * 15_000_000  # $3 and $15 per million tokens
    finally:
        await upstream.server.close()
