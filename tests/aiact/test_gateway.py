"""Purpose binding, suspend switches and transparency through the gateway, with the official SDKs."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import openai
import pytest

from passerelle.aiact.records import Supplier
from tests.aiact.conftest import credit_scoring
from tests.aiact.harness import OTHER_KEY, Harness, harness

PURPOSE = credit_scoring(models=("claude-test", "gpt-*"), routes=("messages", "chat_completions"))
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path, "aiact: {keys: {app: credit-scoring}}") as h:
        await h.registry.put_purpose(PURPOSE, "alice")
        await h.gw.aiact.refresh()
        yield h


async def test_off_purpose_model_is_refused_in_both_dialects(gw: Harness) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        await gw.anthropic().messages.create(model="other-model", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert "model 'other-model' is outside purpose 'credit-scoring'" in refused.value.message
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await gw.openai().chat.completions.create(model="other-model", messages=HELLO)  # type: ignore[arg-type]
    assert "outside purpose 'credit-scoring'" in denied.value.message
    # On purpose: answered, and the audit record names the purpose.
    message = await gw.anthropic().messages.create(model="claude-test", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert message.content[0].type == "text"
    await gw.gw.audit.flush()
    assert gw.gw.audit.store is not None
    async with gw.gw.audit.store.snapshot() as view:
        records = [r async for r in view.records()]
    # A refusal happens before the purpose is settled: its record has the key, the model and the 403.
    assert [(r.status, r.purpose, r.model) for r in records] == [
        (403, None, "other-model"), (403, None, "other-model"), (200, "credit-scoring", "claude-test")]
    assert records[-1].retention_days == PURPOSE.retention_days  # the purpose's floor (Art 19, Art 26(6))


async def test_off_purpose_route_is_refused(gw: Harness) -> None:
    await gw.registry.put_purpose(dataclasses.replace(PURPOSE, routes=("messages",)), "alice")
    await gw.gw.aiact.refresh()
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await gw.openai().chat.completions.create(model="gpt-test", messages=HELLO)  # type: ignore[arg-type]
    assert "the chat_completions route is outside purpose 'credit-scoring'" in denied.value.message
    assert (await gw.anthropic().messages.create(model="claude-test", max_tokens=20,
                                                 messages=HELLO)).content  # type: ignore[arg-type]


async def test_unbound_key_passes_unless_a_purpose_is_required(tmp_path: Path) -> None:
    async with harness(tmp_path, "aiact: {require_purpose: true}") as h:
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            await h.anthropic(OTHER_KEY).messages.create(model="claude-test", max_tokens=20,
                                                         messages=HELLO)  # type: ignore[arg-type]
        assert "bound to no registered purpose" in refused.value.message
    async with harness(tmp_path / "free") as h:
        assert (await h.anthropic(OTHER_KEY).messages.create(model="claude-test", max_tokens=20,
                                                             messages=HELLO)).content  # type: ignore[arg-type]


async def test_suspended_purpose_and_route_refuse_with_a_clear_error_and_are_audited(gw: Harness) -> None:
    await gw.registry.suspend("purpose", "credit-scoring", "bias found in review", "ops@bank")
    await gw.gw.aiact.refresh()
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        await gw.anthropic().messages.create(model="claude-test", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert "purpose 'credit-scoring' is suspended by the operator" in refused.value.message
    assert "bias found in review" in refused.value.message
    await gw.registry.resume("purpose", "credit-scoring", "ops@bank")
    await gw.registry.suspend("route", "chat_completions", "incident 42", "ops@bank")
    await gw.gw.aiact.refresh()
    assert (await gw.anthropic().messages.create(model="claude-test", max_tokens=20,
                                                 messages=HELLO)).content  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError) as denied:  # every key, bound or not
        await gw.openai(OTHER_KEY).chat.completions.create(model="gpt-test", messages=HELLO)  # type: ignore[arg-type]
    assert "the chat_completions route is suspended" in denied.value.message
    assert gw.gw.audit.store is not None
    async with gw.gw.audit.store.snapshot() as view:
        admin = [r async for r in view.records() if r.route == "admin"]
    assert [(r.decision, r.extra["switch"], r.extra["target"], r.key_id) for r in admin] == [
        ("suspended", "purpose", "credit-scoring", "ops@bank"), ("resumed", "purpose", "credit-scoring", "ops@bank"),
        ("suspended", "route", "chat_completions", "ops@bank")]


async def test_answers_carry_machine_readable_marking_and_the_sdks_still_parse_them(gw: Harness) -> None:
    raw = await gw.anthropic().messages.with_raw_response.create(model="claude-test", max_tokens=20,
                                                                 messages=HELLO)  # type: ignore[arg-type]
    assert raw.headers["x-ai-generated"] == "true"
    assert raw.headers["x-ai-model"] == "claude-sonnet-4-5" and raw.headers["x-ai-provider"] == "simulator"
    message = await raw.parse()
    assert message.content[0].type == "text" and "hello there" in message.content[0].text
    assert message.model_extra == {"passerelle": {"ai_generated": True, "model": "claude-sonnet-4-5",
                                                  "provider": "simulator"}}
    oraw = await gw.openai().chat.completions.with_raw_response.create(model="gpt-test", messages=HELLO)  # type: ignore[arg-type]
    assert oraw.headers["x-ai-generated"] == "true" and oraw.headers["x-ai-model"] == "gpt-4o"
    completion = oraw.parse()
    assert completion.choices[0].message.content and "hello there" in completion.choices[0].message.content
    assert (completion.model_extra or {})["passerelle"]["ai_generated"] is True
    # Streams: the headers (the body is a stream of events, not one JSON object).
    async with gw.anthropic().messages.stream(model="claude-test", max_tokens=20, messages=HELLO) as stream:  # type: ignore[arg-type]
        final = await stream.get_final_message()
    assert stream.response.headers["x-ai-generated"] == "true" and final.content


async def test_chat_disclosure_at_the_first_interaction_and_public_interest_labels(gw: Harness) -> None:
    await gw.registry.put_purpose(dataclasses.replace(
        PURPOSE, kind="chat", disclosure="You are talking to an AI system.", public_interest=True,
        label="[AI-generated text]"), "alice")
    await gw.gw.aiact.refresh()
    client = gw.anthropic()
    first = await client.messages.create(model="claude-test", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert first.content[0].type == "text"
    assert first.content[0].text.startswith("You are talking to an AI system.\n\n[AI-generated text]\n\nhello")
    later = [*HELLO, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "again"}]
    second = await client.messages.create(model="claude-test", max_tokens=20, messages=later,  # type: ignore[arg-type]
                                          extra_headers={"x-ai-reviewer": "Jane Editor"})
    assert second.content[0].type == "text" and second.content[0].text.startswith("again")
    chunks = []
    stream = await gw.openai().chat.completions.create(model="gpt-test", messages=HELLO, stream=True)  # type: ignore[arg-type]
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks.append(chunk.choices[0].delta.content)
    assert "".join(chunks).startswith("You are talking to an AI system.\n\n[AI-generated text]\n\nhello")
    await gw.gw.audit.flush()
    assert gw.gw.audit.store is not None
    async with gw.gw.audit.store.snapshot() as view:
        extras = [r.extra async for r in view.records()]
    assert extras[0] == {"ai_disclosure": True, "ai_label": True}
    assert extras[1] == {"reviewer": "Jane Editor"}


async def test_role_drift_raises_one_alert_per_key_purpose_and_day(gw: Harness) -> None:
    await gw.registry.put_purpose(dataclasses.replace(PURPOSE, id="assistant", risk_class="minimal",
                                                      annex_category=None, general_purpose=True), "alice")
    await gw.registry.bind_key("cfg_other", "assistant", annex_use="4(a)")
    await gw.gw.aiact.refresh()
    for _ in range(3):
        await gw.anthropic(OTHER_KEY).messages.create(model="claude-test", max_tokens=20,
                                                      messages=HELLO)  # type: ignore[arg-type]
    await gw.gw.aiact.flush_alerts()
    alerts = await gw.gw.aiact.store.list_alerts("role_drift", 10, 0)
    assert alerts.total == 1
    assert alerts.items[0].key_id == "cfg_other" and "4(a)" in alerts.items[0].message


async def test_supplier_documents_required_skips_undocumented_deployments(tmp_path: Path) -> None:
    async with harness(tmp_path, "aiact: {require_supplier_docs: true}") as h:
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            await h.anthropic().messages.create(model="claude-test", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
        assert "supplier documents" in refused.value.message
        await h.registry.put_supplier(Supplier("simulator", "claude-*", "https://docs.example/claude",
                                               "https://docs.example/claude/training-summary", "signed"))
        await h.gw.aiact.refresh()
        assert (await h.anthropic().messages.create(model="claude-test", max_tokens=20,
                                                    messages=HELLO)).content  # type: ignore[arg-type]
        with pytest.raises(anthropic.PermissionDeniedError):
            await h.anthropic().messages.create(model="gpt-test", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]


async def test_count_tokens_is_bound_to_the_purpose_and_its_suspension_too(tmp_path: Path) -> None:
    purpose = credit_scoring(models=("claude-test",), routes=("messages", "count_tokens"))
    async with harness(tmp_path, "aiact: {keys: {app: credit-scoring}}") as h:
        await h.registry.put_purpose(purpose, "alice")
        await h.gw.aiact.refresh()
        assert (await h.anthropic().messages.count_tokens(model="claude-test", messages=HELLO)).input_tokens > 0  # type: ignore[arg-type]
        await h.registry.suspend("purpose", "credit-scoring", "under review", "ops@bank")
        await h.gw.aiact.refresh()
        with pytest.raises(anthropic.PermissionDeniedError, match="suspended"):
            await h.anthropic().messages.count_tokens(model="claude-test", messages=HELLO)  # type: ignore[arg-type]
