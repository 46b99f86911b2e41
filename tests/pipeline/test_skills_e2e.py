"""Skills for any model, end to end: a skill published and installed in the registry, the official SDKs as
clients, and the simulator (which calls offered tools) over real HTTP behind a recorder as the upstream,
reached as an Anthropic model and as an OpenAI model."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from passerelle.canonical.text import request_text
from passerelle.config import load_config
from passerelle.server.app import App, create_app
from passerelle.server.skills_gateway import registry_for
from passerelle.simulator.engine import count_tokens
from passerelle.skills.registry import SkillRegistry
from tests.skills.conftest import skill_files
from tests.support.backends import scale_out
from tests.support.inprocess import RecordingUpstream, sdk_http

KEY, PLAIN_KEY = "sk-app-skills", "sk-plain-skills"
DESCRIPTION = "Fills PDF forms field by field. Use when the user has a PDF form."
BODY = "# PDF forms\n\nRead each field, then fill it in. Marker: SKILL-BODY-5521.\n"
SKILL_MD = f"---\nname: pdf-tools\ndescription: {DESCRIPTION}\n---\n{BODY}"
QUESTION = "Please fill in my tax form."

CONFIG = """
server: {{log_level: error}}
providers:
  claude-up: {{type: anthropic, api_key: sk-up, base_url: "{url}"}}
  openai-up: {{type: openai, api_key: sk-up, base_url: "{url}/v1"}}
models:
  claude-test: {{deployments: [{{provider: claude-up, model: claude-sonnet-4-5}}]}}
  gpt-test: {{deployments: [{{provider: openai-up, model: gpt-4o}}]}}
keys:
  - {{name: app, key: {key}}}
  - {{name: plain, key: {plain}, tenant: plain-tenant}}
"""


@dataclass
class Gateway:
    app: App
    upstream: RecordingUpstream
    registry: SkillRegistry
    data_dir: Path

    def anthropic(self, key: str = KEY) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url="http://gateway", api_key=key, max_retries=0,
                                        http_client=sdk_http(anthropic, self.app))

    def openai(self, key: str = KEY) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url="http://gateway/v1", api_key=key, max_retries=0,
                                  http_client=sdk_http(openai, self.app))


async def open_gateway(tmp_path: Path, extra: str = "", scale: str = "",
                       upstream_url: str | None = None) -> AsyncIterator[Gateway]:
    """The gateway with ``pdf-tools`` (and ``zip-tools``) installed for the key ``app`` alone; its providers call
    the recording simulator, or ``upstream_url`` instead."""
    upstream = RecordingUpstream()
    url = upstream_url or await upstream.start(chunk_tokens=2)
    path = tmp_path / "passerelle.yaml"
    path.write_text(CONFIG.format(url=url, key=KEY, plain=PLAIN_KEY) + extra + scale)
    app = create_app(config=load_config(path, env={}), data_dir=tmp_path / "data")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30)
    assert (await http.get("/health")).status_code == 200
    assert app.gateway is not None
    try:
        registry = await registry_for(app.gateway)
        await registry.publish("default", skill_files("pdf-tools", DESCRIPTION, BODY))
        await registry.publish("default", skill_files("zip-tools", "Packs zip archives. Use for zips.", "Zip it.\n"))
        for name in ("pdf-tools", "zip-tools"):
            await registry.install("default", "key", "cfg_app", name)
        yield Gateway(app, upstream, registry, tmp_path / "data")
    finally:
        await http.aclose()
        if app.gateway is not None:
            await app.gateway.aclose()
        await upstream.server.close()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for gw in open_gateway(tmp_path):
        yield gw


async def ask(gw: Gateway, dialect: str, stream: bool, model: str, key: str = KEY,
              **extra: Any) -> tuple[str, list[Any], str, int]:
    """(answer text, tool calls, stop or finish reason, input tokens) as the SDK client saw them."""
    messages: Any = [{"role": "user", "content": QUESTION}]
    message: Any
    if dialect == "anthropic":
        client = gw.anthropic(key)
        if stream:
            async with client.messages.stream(model=model, max_tokens=400, messages=messages, **extra) as events:
                kinds = [event.type async for event in events]
                message = await events.get_final_message()
            assert kinds.count("message_start") == 1 and kinds.count("message_stop") == 1
        else:
            message = await client.messages.create(model=model, max_tokens=400, messages=messages, **extra)
        text = "".join(b.text for b in message.content if b.type == "text")
        calls = [b for b in message.content if b.type == "tool_use"]
        assert {b.type for b in message.content} <= {"text", "tool_use"}
        return text, calls, str(message.stop_reason), message.usage.input_tokens
    oclient = gw.openai(key)
    if not stream:
        completion = await oclient.chat.completions.create(model=model, messages=messages, **extra)
        choice = completion.choices[0]
        assert completion.usage is not None
        return (choice.message.content or "", list(choice.message.tool_calls or []), str(choice.finish_reason),
                completion.usage.prompt_tokens)
    chunks: Any = await oclient.chat.completions.create(model=model, messages=messages, stream=True,
                                                   stream_options={"include_usage": True}, **extra)
    pieces: list[str] = []
    deltas: list[Any] = []
    finish, prompt = "", 0
    async for chunk in chunks:
        if chunk.usage is not None:
            prompt = chunk.usage.prompt_tokens
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            deltas.extend(choice.delta.tool_calls or [])
            finish = choice.finish_reason or finish
    return "".join(pieces), deltas, finish, prompt


def offered(sent: dict[str, Any]) -> str:
    """The system prompt an upstream received, in either upstream dialect."""
    system = sent.get("system")
    if system is None:
        system = [m["content"] for m in sent["messages"] if m["role"] in ("system", "developer")]
    return json.dumps(system, ensure_ascii=False)


def tool_result(sent: dict[str, Any]) -> tuple[str, bool]:
    """The text of the tool result in the last turn an upstream received, and whether it is an error."""
    last = sent["messages"][-1]
    if last["role"] == "tool":  # OpenAI style
        return str(last["content"]), False
    [block] = last["content"]
    assert block["type"] == "tool_result"
    content = block["content"]
    return (content if isinstance(content, str) else "".join(c["text"] for c in content)), bool(block.get("is_error"))


@pytest.mark.parametrize("model", ["claude-test", "gpt-test"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_the_model_loads_a_skill_and_the_client_gets_one_answer(gateway: Gateway, dialect: str, stream: bool,
                                                                      model: str) -> None:
    text, calls, stop, input_tokens = await ask(gateway, dialect, stream, model)
    first, second = gateway.upstream.received
    catalog = offered(first)
    assert "<available_skills>" in catalog and "<name>pdf-tools</name>" in catalog and DESCRIPTION in catalog
    assert "SKILL-BODY-5521" not in json.dumps(first)  # the body only once asked for
    assert "load_skill" in json.dumps(first["tools"])
    loaded, is_error = tool_result(second)
    assert loaded == SKILL_MD and not is_error
    # The client sees one plain answer: the simulator echoes the tool result it got last.
    assert text.strip() == SKILL_MD.strip()
    assert calls == [] and stop in ("end_turn", "stop")
    if model == "claude-test":  # the simulator's input count is computable from what it received
        bodies: list[Any] = [first, second]
        assert input_tokens == sum(max(count_tokens(request_text(b)), 1) for b in bodies)


async def test_each_load_is_in_the_audit_record(gateway: Gateway) -> None:
    await ask(gateway, "anthropic", True, "claude-test")
    await ask(gateway, "openai", False, "gpt-test")
    assert gateway.app.gateway is not None
    await gateway.app.gateway.audit.flush()
    db = sqlite3.connect(gateway.data_dir / "audit.db")
    rows = [json.loads(r[0]) for r in db.execute("SELECT extra FROM audit_records ORDER BY seq")]
    entry = {"name": "pdf-tools", "version": "1.0.0", "path": "SKILL.md", "bytes": len(SKILL_MD.encode())}
    assert rows == [{"skills_loaded": [entry]}, {"skills_loaded": [entry]}]


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_a_key_without_skills_sees_no_catalog(gateway: Gateway, dialect: str) -> None:
    text, calls, _, _ = await ask(gateway, dialect, False, "claude-test", key=PLAIN_KEY)
    [sent] = gateway.upstream.received
    assert "available_skills" not in json.dumps(sent) and "tools" not in sent
    assert text == QUESTION and calls == []


async def test_token_counting_counts_the_catalog_the_key_is_offered(gateway: Gateway) -> None:
    messages: Any = [{"role": "user", "content": QUESTION}]
    plain = await gateway.anthropic(PLAIN_KEY).messages.count_tokens(model="claude-test", messages=messages)
    assert "available_skills" not in json.dumps(gateway.upstream.received[-1])
    offered = await gateway.anthropic().messages.count_tokens(model="claude-test", messages=messages)
    sent = gateway.upstream.received[-1]
    assert "pdf-tools" in json.dumps(sent["system"]) and [t["name"] for t in sent["tools"]] == ["load_skill"]
    assert offered.input_tokens > plain.input_tokens
    # The simulator counts a body the way its answers report usage: the count is what the call will cost.
    answer = await gateway.anthropic(PLAIN_KEY).messages.create(model="claude-test", max_tokens=50, messages=messages)
    assert answer.usage.input_tokens == plain.input_tokens


async def test_a_caller_tool_called_with_the_load_tool_reaches_the_caller_alone(gateway: Gateway) -> None:
    weather = {"name": "get_weather", "description": "Weather of a city.",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    _, calls, stop, _ = await ask(gateway, "anthropic", False, "claude-test", tools=[weather])
    assert [c.name for c in calls] == ["get_weather"] and stop == "tool_use"
    assert len(gateway.upstream.received) == 1  # the simulator called both tools: nothing was loaded
    function = {"type": "function", "function": {"name": "get_weather", "parameters": weather["input_schema"]}}
    _, ocalls, finish, _ = await ask(gateway, "openai", True, "gpt-test", tools=[function])
    assert [c.function.name for c in ocalls if c.function.name] == ["get_weather"] and finish == "tool_calls"


async def test_the_catalog_limit_applies(tmp_path: Path) -> None:
    async for gw in open_gateway(tmp_path, extra="skills: {max_skills_per_request: 1, tool_name: read_skill}\n"):
        await ask(gw, "openai", False, "claude-test")
        first = gw.upstream.received[0]
        assert "pdf-tools" in offered(first) and "zip-tools" not in offered(first)
        assert [t["name"] for t in first["tools"]] == ["read_skill"]
        assert first["tools"][0]["input_schema"]["properties"]["name"]["enum"] == ["pdf-tools"]


async def test_skills_off_in_the_config_offers_nothing(tmp_path: Path) -> None:
    async for gw in open_gateway(tmp_path, extra="skills: {enabled: false}\n"):
        text, _, _, _ = await ask(gw, "anthropic", False, "claude-test")
        assert "available_skills" not in json.dumps(gw.upstream.received) and text == QUESTION


async def test_on_the_scale_out_backend(tmp_path: Path) -> None:
    async with scale_out() as backend:
        async for gw in open_gateway(tmp_path, scale=backend.yaml()):
            text, calls, stop, _ = await ask(gw, "anthropic", True, "gpt-test")
            assert text.strip() == SKILL_MD.strip() and calls == [] and stop == "end_turn"
            assert tool_result(gw.upstream.received[1])[0] == SKILL_MD


async def test_an_unreadable_registry_costs_the_skills_not_the_answer(gateway: Gateway,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(principal: object) -> list[Any]:
        raise OSError("database is locked")

    monkeypatch.setattr(gateway.registry, "enabled_skills", broken)
    raw = await gateway.anthropic().messages.with_raw_response.create(
        model="claude-test", max_tokens=400, messages=[{"role": "user", "content": QUESTION}])
    message: Any = await raw.parse()
    assert message.content[0].text == QUESTION
    assert "skills are unavailable right now" in raw.headers["x-passerelle-warnings"]
    assert "available_skills" not in json.dumps(gateway.upstream.received)


async def test_with_compliance_the_continuation_keeps_the_protected_prompt(tmp_path: Path) -> None:
    name = "Jean Dupont"
    async for gw in open_gateway(tmp_path, extra="compliance: {packs: [gdpr]}\n"):
        message: Any = await gw.anthropic().messages.create(
            model="claude-test", max_tokens=400, messages=[{"role": "user", "content": f"I am {name}. {QUESTION}"}])
        first, second = gw.upstream.received
        for sent in (first, second):
            assert name not in json.dumps(sent, ensure_ascii=False) and "PERSON-" in json.dumps(sent)
        assert tool_result(second)[0] == SKILL_MD  # the skill's text is the gateway's: not rewritten
        assert message.content[0].text.strip() == SKILL_MD.strip()
