"""Events become records whose hash follows the documented definition, and nothing raw gets in."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from passerelle.audit.records import GENESIS_HASH, AuditRecord, InvalidEvent, canonical, chain_hash, unsealed
from tests.audit.conftest import event

# The hash of event(1) sealed as the first record: fixed forever (an auditor's script must agree).
GOLDEN = "3971bf19d07d39ccf0b62fc1df0bd6be8bf325e0db0f78f92f5ba8d5630d1c56"


def auditor_hash(record: dict[str, object]) -> str:
    """docs/audit.md's definition, written out independently of the code under test."""
    body = {k: v for k, v in record.items() if k not in ("prev_hash", "hash")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256((str(record["prev_hash"]) + text).encode("ascii")).hexdigest()


def test_canonical_hash_is_stable() -> None:
    record = unsealed(event(1), store_content=False).seal(1, GENESIS_HASH)
    assert record.hash == GOLDEN
    assert auditor_hash(record.to_json()) == record.hash
    assert canonical({"b": 1, "a": "é"}) == '{"a":"\\u00e9","b":1}'


@settings(max_examples=60, deadline=None)
@given(text=st.text(), count=st.integers(0, 10**12), t=st.floats(0, 4e9), seq=st.integers(1, 10**15))
def test_sealing_shortcut_equals_the_definition(text: str, count: int, t: float, seq: int) -> None:
    e = event(0, request_id=text or "r", time=t, model=text, input_tokens=count, content=text,
              extra={"skill": text, "n": count}, findings=[{"type": text, "count": count}])
    record = unsealed(e, store_content=True).seal(seq, "f" * 64)
    assert record.hash == auditor_hash(record.to_json()) == record.computed_hash()
    # What is hashed survives the JSON round trip of storage and export unchanged.
    assert AuditRecord.from_json(json.loads(json.dumps(record.to_json()))).computed_hash() == record.hash


def test_seq_and_prev_hash_are_covered() -> None:
    u = unsealed(event(1), store_content=False)
    assert u.seal(1, GENESIS_HASH).hash != u.seal(2, GENESIS_HASH).hash
    assert u.seal(1, GENESIS_HASH).hash != u.seal(1, "1" * 64).hash
    assert chain_hash(GENESIS_HASH, u.seal(1, GENESIS_HASH).body()) == u.seal(1, GENESIS_HASH).hash


def test_content_only_when_allowed() -> None:
    assert unsealed(event(1, content="[REDACTED] hi"), store_content=False).fields["content"] is None
    assert unsealed(event(1, content="[REDACTED] hi"), store_content=True).fields["content"] == "[REDACTED] hi"
    assert unsealed(event(1, content=None), store_content=True).fields["content"] is None


def test_findings_keep_only_types_counts_and_actions() -> None:
    finding = {"type": "IBAN", "direction": "prompt", "action": "redact", "count": 2, "value": "FR7630006000011234",
               "start": 10}
    record = unsealed(event(1, findings=[finding]), store_content=False)
    assert record.fields["findings"] == [{"type": "IBAN", "direction": "prompt", "action": "redact", "count": 2}]
    assert "FR76" not in record.before_seq + record.after_seq


def test_text_postgres_refuses_is_replaced() -> None:
    u = unsealed(event(1, request_id="a\x00b", model="x\ud800y"), store_content=False)
    assert u.fields["request_id"] == "a\ufffdb"
    u.fields["model"].encode("utf-8")  # no lone surrogate left


@pytest.mark.parametrize("bad", [
    {"status": "4111111111111111"}, {"input_tokens": -4111111111111111}, {"time": float("nan")},
    {"tenant_id": None}, {"packs": {"finance": 4111111111111111}}, {"findings": "4111111111111111"},
    {"findings": [{"count": "4111111111111111"}]}, {"extra": {"x": float("inf")}}, {"retention_days": True},
])
def test_invalid_events_are_refused_without_quoting_values(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidEvent) as refused:
        unsealed(event(1, **bad), store_content=False)
    assert "4111" not in str(refused.value)  # the message is logged


def test_flat_mappings_skip_the_json_round_trip_with_the_same_result() -> None:
    from passerelle.audit.records import _plain

    def round_trip(value: dict[str, object]) -> object:
        return json.loads(json.dumps(value, default=str, allow_nan=False, ensure_ascii=True))

    flat: dict[str, object] = {"finance": "2026.11.1", "lone": "\ud800x", "nul": "a\x00b", "big": 10**30,
                               "flag": True, "none": None, "zero": 0, "accent": "é"}
    assert _plain("packs", flat) == round_trip(flat) and list(_plain("packs", flat)) == list(flat)
    assert _plain("packs", flat) is not flat  # a copy: the event's own mapping is never shared
    nested: dict[str, object] = {"tuple": (1, 2), "float": 0.1, "obj": object.__new__(object)}
    plain = _plain("extra", nested)
    assert plain["tuple"] == [1, 2] and plain["float"] == 0.1 and isinstance(plain["obj"], str)
