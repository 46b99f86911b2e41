"""The skills stage on a real registry (SQLite and PostgreSQL) with a scripted upstream: the catalog, the
load loop, errors, limits, mixed tool calls, and streams spliced into one message."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from passerelle.canonical import ChatRequest, ContentBlock, MessageResponse, StreamEvent
from passerelle.config.schema import SimulatorConfig, SkillsConfig
from passerelle.errors import ErrorKind, GatewayError, UpstreamError
from passerelle.pipeline.skills import MAX_CALLS, SkillSession, SkillsStage
from passerelle.routing.router import RoutedMessage, RoutedStream
from passerelle.simulator.engine import SimulatorEngine
from passerelle.skills.registry import SkillRegistry
from passerelle.skills.store_postgres import PostgresSkillStore
from passerelle.skills.store_sqlite import SQLiteSkillStore
from tests.skills.conftest import Principal, skill_files
from tests.stores.conftest import PG_DSN, drop_schema

WHO = Principal("acme", None, "key_1")
BODY = "# PDF tools\nUse references/forms.md for forms. MARKER-BODY-41\n"
FORMS = "Fill the form field by field. MARKER-FORMS-93\n"


@pytest.fixture(params=["sqlite", "postgres"])
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SkillRegistry]:
    """A registry with two skills published and installed for the tenant ``acme``."""
    schema = f"test_{uuid.uuid4().hex}"
    store = (SQLiteSkillStore(tmp_path / "skills.db") if request.param == "sqlite"
             else await PostgresSkillStore.connect(PG_DSN, schema, max_size=2))
    found = SkillRegistry(store)
    try:
        await found.publish("acme", skill_files("pdf-tools", "Fills PDF forms. Use for PDFs.", BODY,
                                                {"references/forms.md": FORMS.encode(), "logo.bin": b"\xff\xfe\x00"}))
        await found.publish("acme", skill_files("zip-tools", "Packs zip archives. Use for zips."))
        for name in ("pdf-tools", "zip-tools"):
            await found.install("acme", "tenant", "acme", name)
        yield found
    finally:
        await found.aclose()
        if request.param == "postgres":
            await drop_schema(schema)


def message(*blocks: ContentBlock, stop: str = "end_turn", usage: tuple[int, int] = (10, 5)) -> MessageResponse:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "up", "content": list(blocks),
            "stop_reason": stop, "stop_sequence": None,  # type: ignore[typeddict-item]
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}


def text(value: str) -> ContentBlock:
    return {"type": "text", "text": value}


def load(name: str = "pdf-tools", path: str | None = None, call_id: str = "toolu_1") -> ContentBlock:
    arguments: dict[str, Any] = {"name": name} if path is None else {"name": name, "path": path}
    return {"type": "tool_use", "id": call_id, "name": "load_skill", "input": arguments}


class Script:
    """An upstream answering from a list of turns (or a function of the call number); it keeps what it got."""

    def __init__(self, turns: Iterable[MessageResponse] | Callable[[int], MessageResponse],
                 fail_stream_at: int | None = None) -> None:
        self.turns = turns if callable(turns) else list(turns)
        self.seen: list[dict[str, Any]] = []
        self.fail_stream_at = fail_stream_at
        self.closed = 0
        self._engine = SimulatorEngine(SimulatorConfig(chunk_tokens=2))

    def _next(self, request: ChatRequest) -> MessageResponse:
        self.seen.append(copy.deepcopy(dict(request.body)))
        if callable(self.turns):
            return self.turns(len(self.seen))
        return self.turns.pop(0)

    async def complete(self, request: ChatRequest) -> RoutedMessage:
        return RoutedMessage("deployment", "up", [], 1, self._next(request))  # type: ignore[arg-type]

    async def stream(self, request: ChatRequest) -> RoutedStream:
        if self.fail_stream_at is not None and len(self.seen) + 1 == self.fail_stream_at:
            raise GatewayError(ErrorKind.UNAVAILABLE, "no deployment is available")
        return RoutedStream("deployment", "up", [], 1, self._events(self._next(request)))  # type: ignore[arg-type]

    async def _events(self, turn: MessageResponse) -> AsyncIterator[StreamEvent]:
        try:
            for event in self._engine.events(turn):
                yield event
        finally:
            self.closed += 1


def chat(**body: Any) -> ChatRequest:
    payload: Any = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "Fill my PDF"}], **body}
    return ChatRequest(payload, "anthropic", "req_1")


async def session_for(registry: SkillRegistry, request: ChatRequest, **config: Any) -> SkillSession:
    session = await SkillsStage(SkillsConfig(**config), registry).prepare(WHO, request)
    assert session is not None
    return session


async def test_the_catalog_and_tool_are_added_with_names_and_descriptions_only(registry: SkillRegistry) -> None:
    request = chat(system="Be brief.", tools=[{"name": "get_weather", "input_schema": {"type": "object"}}])
    await session_for(registry, request)
    system = request.body["system"]
    assert isinstance(system, str) and system.startswith("Be brief.\n\n")
    assert "<available_skills>" in system and "<name>pdf-tools</name>" in system
    assert "<description>Fills PDF forms. Use for PDFs.</description>" in system and "zip-tools" in system
    assert "MARKER-BODY" not in system  # bodies only on demand
    tools = request.body["tools"]
    assert [t["name"] for t in tools] == ["get_weather", "load_skill"]
    assert tools[1]["input_schema"]["properties"]["name"]["enum"] == ["pdf-tools", "zip-tools"]

    listed = chat(system=[{"type": "text", "text": "Cached.", "cache_control": {"type": "ephemeral"}}])
    await session_for(registry, listed, max_skills_per_request=1, tool_name="open_skill")
    blocks = listed.body["system"]
    assert isinstance(blocks, list) and blocks[0]["text"] == "Cached." and "open_skill" in blocks[1]["text"]
    assert "zip-tools" not in blocks[1]["text"]  # the catalog's limit
    assert listed.body["tools"][0]["input_schema"]["properties"]["name"]["enum"] == ["pdf-tools"]


async def test_nothing_is_offered_without_installs_with_tool_choice_none_or_a_clashing_tool(
        registry: SkillRegistry) -> None:
    stage = SkillsStage(SkillsConfig(), registry)
    for who in (Principal("other-tenant"),):
        request = chat()
        before = copy.deepcopy(dict(request.body))
        assert await stage.prepare(who, request) is None and dict(request.body) == before
    request = chat(tool_choice={"type": "none"})
    assert await stage.prepare(WHO, request) is None and "system" not in request.body
    clash = chat(tools=[{"name": "load_skill", "input_schema": {"type": "object"}}])
    assert await stage.prepare(WHO, clash) is None
    assert clash.warnings == ["skills not offered: the request defines its own tool named 'load_skill'"]


async def test_a_load_is_answered_and_the_conversation_continues_as_one_answer(registry: SkillRegistry) -> None:
    request = chat()
    session = await session_for(registry, request)
    script = Script([message(text("Let me look."), load(), stop="tool_use", usage=(100, 20)),
                     message(text("Done."), usage=(300, 7))])
    routed = await session.complete(script, request)
    answer = routed.message
    assert answer["content"] == [text("Let me look."), text("Done.")] and answer["stop_reason"] == "end_turn"
    assert answer["usage"] == {"input_tokens": 400, "output_tokens": 27}
    second = script.seen[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": [text("Let me look."), load()]}
    [result] = second[-1]["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1" and "is_error" not in result
    assert result["content"].startswith("---\nname: pdf-tools") and "MARKER-BODY-41" in result["content"]
    size = len(result["content"].encode())
    assert session.audit() == {"skills_loaded": [{"name": "pdf-tools", "version": "1.0.0", "path": "SKILL.md",
                                                  "bytes": size}]}


async def test_referenced_files_load_and_bad_requests_are_errors_the_model_sees(registry: SkillRegistry) -> None:
    request = chat()
    session = await session_for(registry, request)
    calls = [load(path="references/forms.md", call_id="a"), load(path="../secrets.txt", call_id="b"),
             load(path="missing.md", call_id="c"), load("not-installed", call_id="d"),
             load(path="logo.bin", call_id="e"),
             {"type": "tool_use", "id": "f", "name": "load_skill", "input": "pdf-tools"}]
    script = Script([message(*calls, stop="tool_use"), message(text("ok"))])
    await session.complete(script, request)
    results = {r["tool_use_id"]: r for r in script.seen[1]["messages"][-1]["content"]}
    assert results["a"]["content"] == FORMS and "is_error" not in results["a"]
    for call_id in "bcdef":
        assert results[call_id]["is_error"] is True and results[call_id]["content"].startswith("Error: ")
    assert "invalid path" in results["b"]["content"] and "no file 'missing.md'" in results["c"]["content"]
    assert "no skill 'not-installed'" in results["d"]["content"] and "pdf-tools, zip-tools" in results["d"]["content"]
    assert "binary" in results["e"]["content"]
    loaded = session.audit()["skills_loaded"]
    assert loaded[0] == {"name": "pdf-tools", "version": "1.0.0", "path": "references/forms.md",
                         "bytes": len(FORMS.encode())}
    assert [e["error"] for e in loaded[1:]] == ["invalid_path", "not_found", "unknown_skill", "invalid_path",
                                                "invalid_arguments"]
    assert all("path" not in e for e in loaded[1:])  # a path the model made up never reaches the audit


async def test_load_and_byte_limits(registry: SkillRegistry) -> None:
    request = chat()
    session = await session_for(registry, request, max_loads_per_request=2)
    script = Script([message(load(call_id="a"), load(path="references/forms.md", call_id="b"),
                             load("zip-tools", call_id="c"), stop="tool_use"), message(text("ok"))])
    await session.complete(script, request)
    results = script.seen[1]["messages"][-1]["content"]
    assert [r.get("is_error", False) for r in results] == [False, False, True]
    assert "limit of 2 loads per request" in results[2]["content"]

    request = chat()
    session = await session_for(registry, request, max_load_bytes=1024)
    big = "x" * 700 + "é" * 300  # 1,300 bytes: cut inside the budget at a character boundary
    await registry.publish("acme", skill_files("pdf-tools", "Fills PDF forms. Use for PDFs.", big), version="2.0.0")
    registry._changed()  # the published version is what the key follows
    session.offered["pdf-tools"] = (await registry.enabled_skills(WHO))[0]
    script = Script([message(load(call_id="a"), load(path="references/forms.md", call_id="b"), stop="tool_use"),
                     message(text("ok"))])
    await session.complete(script, request)
    first, second = script.seen[1]["messages"][-1]["content"]
    assert "truncated: the limit of 1024 bytes loaded per request" in first["content"]
    assert second["is_error"] is True and "1024 bytes loaded per request is reached" in second["content"]
    assert session.audit()["skills_loaded"][0]["bytes"] <= 1024


async def test_the_number_of_calls_is_capped_and_the_last_one_must_answer(registry: SkillRegistry) -> None:
    request = chat()
    session = await session_for(registry, request, max_loads_per_request=50)
    script = Script(lambda n: message(text(f"turn {n}"), load(call_id=f"c{n}"), stop="tool_use"))
    answer = (await session.complete(script, request)).message
    assert len(script.seen) == MAX_CALLS
    assert script.seen[-1]["tool_choice"] == {"type": "none"}
    assert all("tool_choice" not in seen for seen in script.seen[:-1])
    assert answer["stop_reason"] == "end_turn"
    assert answer["content"] == [text(f"turn {n}") for n in range(1, MAX_CALLS + 1)]  # no gateway tool_use


async def test_a_caller_tool_called_with_the_load_tool_returns_the_callers_call_only(
        registry: SkillRegistry) -> None:
    request = chat(tools=[{"name": "get_weather", "input_schema": {"type": "object"}}])
    session = await session_for(registry, request)
    weather = {"type": "tool_use", "id": "toolu_w", "name": "get_weather", "input": {}}
    script = Script([message(load(), weather, stop="tool_use")])
    answer = (await session.complete(script, request)).message
    assert answer["content"] == [weather] and answer["stop_reason"] == "tool_use"
    assert len(script.seen) == 1 and session.audit() == {}


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


async def test_streams_are_spliced_into_one_message(registry: SkillRegistry) -> None:
    request = chat(stream=True)
    session = await session_for(registry, request)
    script = Script([message(text("Let me look it up."), load(), stop="tool_use", usage=(100, 20)),
                     message(text("Here is the answer."), usage=(300, 7))])
    routed = await session.stream(script, request)
    events = await collect(routed.events)
    kinds = [e["type"] for e in events]
    assert kinds.count("message_start") == 1 and kinds.count("message_delta") == 1 and kinds[-1] == "message_stop"
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [e["index"] for e in starts] == [0, 1] and all(e["content_block"]["type"] == "text" for e in starts)
    assert "load_skill" not in repr(events)
    texts: dict[int, str] = {}
    for e in events:
        if e["type"] == "content_block_delta":
            texts[e["index"]] = texts.get(e["index"], "") + e["delta"]["text"]
    assert texts == {0: "Let me look it up.", 1: "Here is the answer."}
    final = next(e for e in events if e["type"] == "message_delta")
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"]["input_tokens"] == 400 and final["usage"]["output_tokens"] == 27
    assert "MARKER-BODY-41" in script.seen[1]["messages"][-1]["content"][0]["content"]
    assert script.closed == 2 and session.audit()["skills_loaded"][0]["path"] == "SKILL.md"


async def test_a_stream_whose_continuation_fails_ends_with_an_upstream_error(registry: SkillRegistry) -> None:
    request = chat(stream=True)
    session = await session_for(registry, request)
    script = Script([message(text("Looking."), load(), stop="tool_use")], fail_stream_at=2)
    routed = await session.stream(script, request)
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamError, match="no deployment is available"):
        async for event in routed.events:
            seen.append(event)
    kinds = [e["type"] for e in seen]
    assert kinds[0] == "message_start" and "message_stop" not in kinds
    assert script.closed == 1


async def test_a_stream_closed_early_closes_the_upstream(registry: SkillRegistry) -> None:
    request = chat(stream=True)
    session = await session_for(registry, request)
    script = Script([message(text("A long answer with many words."))])
    routed = await session.stream(script, request)
    events = routed.events
    await anext(events)
    await events.aclose()  # type: ignore[attr-defined]
    assert script.closed == 1
