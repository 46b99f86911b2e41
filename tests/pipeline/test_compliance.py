"""The compliance stage through the gateway: the official SDKs as clients, the simulator's echo as upstream
over real HTTP, and a recorder in front of it that keeps what the upstream really received."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from passerelle.config import load_config
from passerelle.server.app import App, create_app
from tests.support.inprocess import RecordingUpstream, sdk_http

KEY, DEFENSE_KEY = "sk-app-compliance", "sk-defense-compliance"
NAME, NIR, CARD = "Jean Dupont", "1 85 05 78 006 084 91", "4970 1012 3456 7893"
PROMPT = (f"Bonjour, je suis {NAME}, mon numéro de sécurité sociale est {NIR} et ma carte bancaire {CARD}. "
          "Merci de vérifier mon dossier.")
MARKED = "SECRET//NOFORN\nThe test range schedule for next week is attached."
ITAR = "This document contains technical data subject to ITAR (22 CFR 120-130); do not share it."

CONFIG = """
server: {{log_level: error}}
providers:
  claude-up: {{type: anthropic, api_key: sk-up, base_url: "{url}"}}
  openai-up: {{type: openai, api_key: sk-up, base_url: "{url}/v1"}}
models:
  claude-test: {{deployments: [{{provider: claude-up, model: claude-sonnet-4-5}}]}}
  gpt-test: {{deployments: [{{provider: openai-up, model: gpt-4o}}]}}
  mixed:
    deployments:
      - {{provider: claude-up, model: cloud-model, name: cloud}}
      - {{provider: claude-up, model: onprem-model, name: onprem, priority: 1, labels: [onprem]}}
keys:
  - {{name: app, key: {key}}}
  - {{name: defense, key: {defense_key}, tenant: defense-tenant}}
compliance:
  packs: [gdpr, finance]
  overrides: {{CREDIT_CARD: pseudonymize}}
  tenants:
    defense-tenant: {{packs: [defense], codewords: [Blue Harbor]}}
"""


@dataclass
class Gateway:
    app: App
    upstream: RecordingUpstream
    http: httpx.AsyncClient

    def anthropic(self, key: str = KEY) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url="http://gateway", api_key=key, max_retries=0,
                                        http_client=sdk_http(anthropic, self.app))

    def openai(self, key: str = KEY) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url="http://gateway/v1", api_key=key, max_retries=0,
                                  http_client=sdk_http(openai, self.app))


async def open_gateway(tmp_path: Path, chunk_tokens: int = 1, extra: str = "") -> AsyncIterator[Gateway]:
    upstream = RecordingUpstream()
    url = await upstream.start(chunk_tokens)
    path = tmp_path / "passerelle.yaml"
    path.write_text(CONFIG.format(url=url, key=KEY, defense_key=DEFENSE_KEY) + extra)
    app = create_app(config=load_config(path, env={}), data_dir=tmp_path / "data")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30)
    assert (await http.get("/health")).status_code == 200
    try:
        yield Gateway(app, upstream, http)
    finally:
        await http.aclose()
        if app.gateway is not None:
            await app.gateway.aclose()
        await upstream.server.close()


@pytest.fixture(params=[1, 3])
async def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Gateway]:
    """``chunk_tokens``: how many tokens the upstream puts in each streamed delta."""
    async for gw in open_gateway(tmp_path, request.param):
        yield gw


def assert_protected(sent: str) -> None:
    for value in (NAME, NIR, CARD, NIR.replace(" ", ""), CARD.replace(" ", "")):
        assert value not in sent
    for surrogate_type in ("PERSON-", "FR_NIR-", "CREDIT_CARD-"):
        assert surrogate_type in sent


async def test_anthropic_prompt_reaches_the_upstream_pseudonymized_and_the_answer_comes_back_restored(
        gateway: Gateway) -> None:
    client = gateway.anthropic()
    message = await client.messages.create(model="claude-test", max_tokens=400,
                                           messages=[{"role": "user", "content": PROMPT}])
    assert_protected(gateway.upstream.last_text())
    assert message.content[0].type == "text" and message.content[0].text == PROMPT

    async with client.messages.stream(model="claude-test", max_tokens=400,
                                      messages=[{"role": "user", "content": PROMPT}]) as stream:
        pieces = [text async for text in stream.text_stream]
    assert_protected(gateway.upstream.last_text())
    assert "".join(pieces) == PROMPT
    assert len(pieces) > 3  # it really streamed in pieces


async def test_openai_prompt_reaches_the_upstream_pseudonymized_and_the_answer_comes_back_restored(
        gateway: Gateway) -> None:
    client = gateway.openai()
    completion = await client.chat.completions.create(model="gpt-test",
                                                      messages=[{"role": "user", "content": PROMPT}])
    assert_protected(gateway.upstream.last_text())
    assert completion.choices[0].message.content == PROMPT

    stream = await client.chat.completions.create(model="gpt-test", stream=True,
                                                  messages=[{"role": "user", "content": PROMPT}])
    pieces = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices and
              chunk.choices[0].delta.content]
    assert_protected(gateway.upstream.last_text())
    assert "".join(pieces) == PROMPT


async def test_history_and_system_are_protected_with_the_same_surrogates(gateway: Gateway) -> None:
    client = gateway.anthropic()
    await client.messages.create(
        model="claude-test", max_tokens=50, system=f"The customer is {NAME}.",
        messages=[{"role": "user", "content": PROMPT}, {"role": "assistant", "content": f"Hello {NAME}."},
                  {"role": "user", "content": [{"type": "text", "text": f"Card: {CARD}"}]}])
    sent = gateway.upstream.received[-1]
    assert_protected(json.dumps(sent, ensure_ascii=False))
    system = sent["system"] if isinstance(sent["system"], str) else sent["system"][0]["text"]
    surrogate = system.removeprefix("The customer is ").rstrip(".")
    assert surrogate.startswith("PERSON-")
    assert surrogate in sent["messages"][0]["content"][0]["text"] if isinstance(
        sent["messages"][0]["content"], list) else surrogate in sent["messages"][0]["content"]


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_defense_blocks_a_classified_document_naming_type_and_position_never_the_value(
        tmp_path: Path, dialect: str) -> None:
    async for gw in open_gateway(tmp_path):
        before = len(gw.upstream.received)
        if dialect == "anthropic":
            with pytest.raises(anthropic.PermissionDeniedError) as caught:
                await gw.anthropic(DEFENSE_KEY).messages.create(
                    model="claude-test", max_tokens=50, messages=[{"role": "user", "content": MARKED}])
            body: Any = caught.value.body
            error = body["error"]
            assert error["type"] == "permission_error"
        else:
            with pytest.raises(openai.PermissionDeniedError) as caught_openai:
                await gw.openai(DEFENSE_KEY).chat.completions.create(
                    model="gpt-test", messages=[{"role": "user", "content": MARKED}])
            error = caught_openai.value.body
        message = str(error["message"])
        assert "CLASSIFICATION_MARKING at messages[0].content" in message and "[0:14]" in message
        assert "NOFORN" not in message and "test range" not in message
        assert len(gw.upstream.received) == before  # nothing reached the upstream


async def test_defense_routes_export_controlled_data_only_to_the_onprem_deployment(tmp_path: Path) -> None:
    async for gw in open_gateway(tmp_path):
        client = gw.anthropic(DEFENSE_KEY)
        plain = await client.messages.with_raw_response.create(
            model="mixed", max_tokens=50, messages=[{"role": "user", "content": "What is the weather like?"}])
        assert plain.headers["x-passerelle-deployment"] == "cloud"
        assert gw.upstream.received[-1]["model"] == "cloud-model"
        for _ in range(3):
            routed = await client.messages.with_raw_response.create(
                model="mixed", max_tokens=50, messages=[{"role": "user", "content": ITAR}])
            assert routed.headers["x-passerelle-deployment"] == "onprem"
            assert gw.upstream.received[-1]["model"] == "onprem-model"
        before = len(gw.upstream.received)
        with pytest.raises(anthropic.PermissionDeniedError, match="labelled 'onprem'"):
            await client.messages.create(model="claude-test", max_tokens=50,
                                         messages=[{"role": "user", "content": ITAR}])
        assert len(gw.upstream.received) == before


async def test_a_failing_scan_refuses_the_request_and_forwards_nothing(tmp_path: Path) -> None:
    async for gw in open_gateway(tmp_path):
        assert gw.app.gateway is not None
        for _, scanner in filter(None, [gw.app.gateway.compliance.policy_for(
                gw.app.gateway.keys.authenticate({"x-api-key": KEY}))]):
            def broken(*args: object, **kwargs: object) -> list[Any]:
                raise RuntimeError(f"detector crashed on {PROMPT}")

            scanner.engine.scan = broken  # type: ignore[method-assign]
        with pytest.raises(anthropic.InternalServerError, match="not forwarded"):
            await gw.anthropic().messages.create(model="claude-test", max_tokens=50,
                                                 messages=[{"role": "user", "content": PROMPT}])
        assert gw.upstream.received == []


async def test_the_response_cache_holds_surrogates_only_and_hits_are_restored(tmp_path: Path) -> None:
    async for gw in open_gateway(tmp_path, extra="cache: {enabled: true}\n"):
        client = gw.anthropic()
        first = await client.messages.with_raw_response.create(
            model="claude-test", max_tokens=400, messages=[{"role": "user", "content": PROMPT}])
        for _ in range(50):  # the cache is written in the background, after the first answer went out
            second = await client.messages.with_raw_response.create(
                model="claude-test", max_tokens=400, messages=[{"role": "user", "content": PROMPT}])
            if second.headers.get("x-passerelle-cache") == "hit":
                break
            await asyncio.sleep(0.02)
        assert second.headers.get("x-passerelle-cache") == "hit"
        for raw in (first, second):
            assert (await raw.parse()).content[0].text == PROMPT  # type: ignore[union-attr]
        assert gw.app.gateway is not None
        counters: Any = gw.app.gateway.counters
        stored = json.dumps([v for v in vars(counters).values() if isinstance(v, dict)], default=repr,
                            ensure_ascii=False)
        assert "CREDIT_CARD-" in stored and NAME not in stored and CARD not in stored


async def test_count_tokens_sends_only_the_protected_prompt_and_blocks_like_messages(tmp_path: Path) -> None:
    async for gw in open_gateway(tmp_path):
        count = await gw.anthropic().messages.count_tokens(model="claude-test",
                                                           messages=[{"role": "user", "content": PROMPT}])
        assert count.input_tokens > 0
        assert gw.upstream.received, "the anthropic upstream counts tokens itself"
        assert_protected(gw.upstream.last_text())
        before = len(gw.upstream.received)
        with pytest.raises(anthropic.PermissionDeniedError, match="CLASSIFICATION_MARKING"):
            await gw.anthropic(DEFENSE_KEY).messages.count_tokens(
                model="claude-test", messages=[{"role": "user", "content": MARKED}])
        assert len(gw.upstream.received) == before


async def test_every_request_is_audited_without_values_and_tampering_is_named_by_audit_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    from passerelle.cli import main as cli

    async for gw in open_gateway(tmp_path):
        await gw.anthropic().messages.create(model="claude-test", max_tokens=400,
                                             messages=[{"role": "user", "content": PROMPT}])
        with pytest.raises(anthropic.PermissionDeniedError):
            await gw.anthropic(DEFENSE_KEY).messages.create(
                model="claude-test", max_tokens=50, messages=[{"role": "user", "content": MARKED}])
        await gw.anthropic(DEFENSE_KEY).messages.create(model="mixed", max_tokens=50,
                                                       messages=[{"role": "user", "content": ITAR}])
        with pytest.raises(anthropic.AuthenticationError):
            await gw.anthropic("sk-wrong").messages.create(model="claude-test", max_tokens=50,
                                                           messages=[{"role": "user", "content": PROMPT}])
        assert gw.app.gateway is not None
        await gw.app.gateway.audit.flush()
    db = sqlite3.connect(tmp_path / "data" / "audit.db")
    rows = db.execute("SELECT seq, tenant_id, decision, status, findings, packs, deployment, prompt_sha256, "
                      "answer_sha256, content, retention_days FROM audit_records ORDER BY seq").fetchall()
    dump = json.dumps(rows, ensure_ascii=False)
    for value in (NAME, NIR, CARD, "NOFORN", "22 CFR"):
        assert value not in dump
    assert [(r[1], r[2], r[3]) for r in rows] == [("default", "forwarded", 200), ("defense-tenant", "blocked", 403),
                                                  ("defense-tenant", "routed", 200), ("-", "rejected", 401)]
    findings = json.loads(rows[0][4])
    assert {(f["direction"], f["type"], f["action"], f["count"]) for f in findings} >= {
        ("prompt", "PERSON", "pseudonymize", 1), ("prompt", "FR_NIR", "pseudonymize", 1),
        ("prompt", "CREDIT_CARD", "pseudonymize", 1)}
    assert json.loads(rows[0][5]) == {"finance": "2026-11-27", "gdpr": "2026-11-27"}
    assert rows[0][10] == 365  # the finance pack's floor (PCI DSS)
    assert rows[0][7] and rows[0][8] and rows[0][9] is None  # digests; no content unless a policy says so
    assert rows[2][6] == "onprem"
    data = ["--data-dir", str(tmp_path / "data")]
    assert await asyncio.to_thread(cli, ["audit", "verify", *data]) == 0
    capsys.readouterr()
    db.execute("DROP TRIGGER audit_records_no_update")
    db.execute("UPDATE audit_records SET status = 200, decision = 'forwarded' WHERE seq = ?", (rows[1][0],))
    db.commit()
    db.close()
    assert await asyncio.to_thread(cli, ["audit", "verify", "--json", *data]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert str(rows[1][0]) in json.dumps(verdict) and "edit" in json.dumps(verdict)


async def test_a_tenants_codewords_are_blocked_for_it_only(tmp_path: Path) -> None:
    async for gw in open_gateway(tmp_path):
        text = "Send me the schedule of the BLUE  HARBOR trials."
        with pytest.raises(anthropic.PermissionDeniedError, match=r"CODEWORD at messages\[0\]\.content\[28:40\]"):
            await gw.anthropic(DEFENSE_KEY).messages.create(model="claude-test", max_tokens=50,
                                                           messages=[{"role": "user", "content": text}])
        answer = await gw.anthropic().messages.create(model="claude-test", max_tokens=50,
                                                      messages=[{"role": "user", "content": text}])
        assert answer.content[0].text == text  # another tenant: not its codeword
