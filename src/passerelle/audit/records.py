"""Audit records: what one request hands over (``AuditEvent``), what the chain stores (``AuditRecord``),
and the hash that links them.

Hash definition (docs/audit.md repeats it for auditors):
    body  = every field of the record except ``prev_hash`` and ``hash`` (``seq`` included)
    bytes = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    hash  = sha256(prev_hash.encode("ascii") + bytes.encode("ascii")).hexdigest()
The first record's ``prev_hash`` is 64 zeros.  ASCII-only JSON leaves no choice of Unicode encoding.
Times are integer microseconds so that no float formatting enters the hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

GENESIS_HASH = "0" * 64
FINDING_KEYS = frozenset({"type", "direction", "action", "count", "pack"})  # never a raw value
JSON_FIELDS = frozenset({"packs", "findings", "extra"})


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What one request hands over; never raw sensitive values."""

    request_id: str
    time: float  # unix seconds
    tenant_id: str
    team_id: str | None
    key_id: str
    route: str  # "anthropic" | "openai" | ...
    purpose: str | None  # declared purpose, or None
    model: str  # alias the caller asked for
    deployment: str | None
    upstream_model: str | None
    packs: Mapping[str, str]  # pack name -> version
    findings: Sequence[Mapping[str, object]]  # {"type", "direction": "prompt"|"answer", "action", "count"}
    decision: str  # "forwarded" | "blocked" | "routed" | "rejected" | "error"
    status: int
    input_tokens: int
    output_tokens: int
    prompt_sha256: str
    answer_sha256: str | None
    content: str | None = None  # already redacted by the caller, only when policy stores content
    retention_days: int = 0  # the floor this request's packs require (0: none)
    extra: Mapping[str, object] = field(default_factory=dict)  # e.g. skill loads


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of the chain, exactly as stored, exported and hashed."""

    seq: int
    request_id: str
    time_us: int
    tenant_id: str
    team_id: str | None
    key_id: str
    route: str
    purpose: str | None
    model: str
    deployment: str | None
    upstream_model: str | None
    packs: dict[str, str]
    findings: list[dict[str, Any]]
    decision: str
    status: int
    input_tokens: int
    output_tokens: int
    prompt_sha256: str
    answer_sha256: str | None
    content: str | None
    retention_days: int
    extra: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self, seq: int | None = None) -> dict[str, Any]:
        """The hashed fields; ``seq`` replaces the record's own (the verifier tries other positions)."""
        out = {name: getattr(self, name) for name in BODY_FIELDS}
        if seq is not None:
            out["seq"] = seq
        return out

    def computed_hash(self, seq: int | None = None) -> str:
        return chain_hash(self.prev_hash, self.body(seq))

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRecord:
        missing = [name for name in COLUMNS if name not in data]
        if missing:
            raise ValueError(f"record lacks {', '.join(missing)}")
        extra = sorted(set(data) - set(COLUMNS))
        if extra:
            raise ValueError(f"record has unknown fields {', '.join(extra)}")
        return cls(**{name: data[name] for name in COLUMNS})


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AuditRecord))
BODY_FIELDS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in ("prev_hash", "hash"))


# json.dumps with these arguments builds a JSONEncoder on every call: one, built once, writes the same text.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def canonical(body: Mapping[str, Any]) -> str:
    return _CANONICAL.encode(body)


def chain_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(body)).encode("ascii")).hexdigest()


# -- events -> records ------------------------------------------------------------------------------------

class InvalidEvent(ValueError):
    """An event whose fields do not have the documented types (a caller's bug)."""


def _text(name: str, value: object, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{name} must be a string, not {type(value).__name__}")
    # PostgreSQL TEXT refuses NUL and lone surrogates: one bad record must not stall the whole queue.
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if value.isascii():  # the common case, and no lone surrogate is ASCII
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _count(name: str, value: object) -> int:
    if type(value) is not int or value < 0:
        # The message names the type, never the value: it goes to the logs.
        raise InvalidEvent(f"{name} must be a non-negative integer, not {type(value).__name__}"
                           + (" < 0" if type(value) is int else ""))
    return value


def _finding(item: Mapping[str, object]) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise InvalidEvent("each finding must be a mapping")
    out: dict[str, Any] = {}
    for key in sorted(FINDING_KEYS & set(item)):  # other keys could carry values: dropped
        value = item[key]
        out[key] = _count(f"finding {key}", value) if key == "count" else _text(f"finding {key}", value)
    return out


_FLAT = (str, int, bool, type(None))  # exactly these types come back unchanged from a JSON round trip


def _plain(name: str, value: Mapping[str, object]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"{name} must be a mapping")
    if all(type(k) is str and type(v) in _FLAT for k, v in value.items()):
        return dict(value)  # the common case (pack versions, flags): what the round trip would give back
    try:
        # Round trip: what is hashed is exactly what json.loads gives back from the stored text.
        plain: dict[str, Any] = json.loads(json.dumps({str(k): v for k, v in value.items()}, default=str,
                                                      allow_nan=False, ensure_ascii=True))
    except ValueError:
        raise InvalidEvent(f"{name}: not encodable as JSON (NaN or infinity)") from None
    return plain


@dataclass(frozen=True, slots=True)
class Unsealed:
    """A record before it has a place in the chain: its canonical JSON split around the ``seq`` key, so
    sealing it in the commit transaction costs one string join and one SHA-256."""

    fields: dict[str, Any]
    before_seq: str  # '{"answer_sha256":...,"route":"..."'
    after_seq: str  # '"status":200,...}'

    def seal(self, seq: int, prev_hash: str) -> AuditRecord:
        text = f'{self.before_seq},"seq":{seq},{self.after_seq}'
        digest = hashlib.sha256((prev_hash + text).encode("ascii")).hexdigest()
        return AuditRecord(seq=seq, prev_hash=prev_hash, hash=digest, **self.fields)


def unsealed(event: AuditEvent, store_content: bool) -> Unsealed:
    """Validate and normalise an event; raises ``InvalidEvent``."""
    if not isinstance(event.time, int | float) or not math.isfinite(event.time):
        raise InvalidEvent("time must be a finite number of unix seconds")
    packs = _plain("packs", event.packs)
    if not all(isinstance(v, str) for v in packs.values()):
        raise InvalidEvent("packs must map pack names to version strings")
    if isinstance(event.findings, str | bytes) or not isinstance(event.findings, Sequence):
        raise InvalidEvent("findings must be a sequence of mappings")
    fields: dict[str, Any] = {
        "request_id": _text("request_id", event.request_id), "time_us": round(event.time * 1_000_000),
        "tenant_id": _text("tenant_id", event.tenant_id), "team_id": _text("team_id", event.team_id, True),
        "key_id": _text("key_id", event.key_id), "route": _text("route", event.route),
        "purpose": _text("purpose", event.purpose, True), "model": _text("model", event.model),
        "deployment": _text("deployment", event.deployment, True),
        "upstream_model": _text("upstream_model", event.upstream_model, True),
        "packs": packs, "findings": [_finding(f) for f in event.findings],
        "decision": _text("decision", event.decision), "status": _count("status", event.status),
        "input_tokens": _count("input_tokens", event.input_tokens),
        "output_tokens": _count("output_tokens", event.output_tokens),
        "prompt_sha256": _text("prompt_sha256", event.prompt_sha256),
        "answer_sha256": _text("answer_sha256", event.answer_sha256, True),
        "content": _text("content", event.content, True) if store_content else None,
        "retention_days": _count("retention_days", event.retention_days),
        "extra": _plain("extra", event.extra),
    }
    before = canonical({k: v for k, v in fields.items() if k < "seq"})
    after = canonical({k: v for k, v in fields.items() if k > "seq"})
    return Unsealed(fields, before[:-1], after[1:])
