"""Parsing and checking what operators type: ids, durations and times, money, lists, metadata.

Every function raises ``ValueError`` with a message fit to show as is; the admin layer turns it
into a 400 (HTTP) or exit code 1 (CLI).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

from passerelle.stores.records import PICO_PER_USD, REPORT_DIMENSIONS, usd_to_pico

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
ROUTES = ("messages", "chat_completions", "count_tokens", "models")
SCOPES = ("key", "team", "tenant")
PERIODS = ("day", "month", "total")
MODES = ("hard", "soft")
_DURATION = re.compile(r"(\d{1,9})\s*([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_MAX_PICO = 2**63 - 1  # counters are signed 64-bit integers in Redis and SQLite
_MAX_TEXT = 1024


def check_slug(what: str, value: str) -> str:
    if not isinstance(value, str) or not SLUG.fullmatch(value):
        raise ValueError(f"{what}: expected 1-63 lowercase letters, digits, '_' or '-', starting with a letter or "
                         f"digit, got {value!r}")
    return value


def check_text(what: str, value: str, *, required: bool = False, limit: int = _MAX_TEXT) -> str:
    if required and not value.strip():
        raise ValueError(f"{what}: must not be empty")
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise ValueError(f"{what}: expected at most {limit} printable characters")
    return value


def parse_duration(text: str) -> int | None:
    """Seconds in "90m", "12h", "30d", "2w" (or "45s"); None when ``text`` is not a duration."""
    match = _DURATION.fullmatch(text.strip().lower())
    return int(match[1]) * _SECONDS[match[2]] if match else None


def parse_time(what: str, value: str | float, *, now: float, future: bool = False) -> float:
    """Unix seconds from a duration (that long before ``now``, or after it when ``future``), an ISO
    date (midnight UTC), an ISO datetime (UTC unless it names its offset) or a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected a duration or an ISO date or datetime")
    seconds = parse_duration(value)
    if seconds is not None:
        return now + seconds if future else now - seconds
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{what}: expected a duration like 30d, 12h, 90m or 2w, or an ISO date or datetime "
                         f"(2026-11-01, 2026-11-01T12:00:00Z), got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_usd(what: str, value: object) -> Decimal:
    """A positive amount of dollars, exact: a decimal string or an integer (JSON numbers are read as decimals)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"{what}: expected an amount of USD as a decimal string, e.g. \"25.50\"")
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what}: expected an amount of USD as a decimal string, got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"{what}: expected an amount greater than 0, got {value}")
    try:
        pico = usd_to_pico(amount)
    except ValueError:
        raise ValueError(f"{what}: {amount} has more decimals than the 12 a pico-dollar allows") from None
    if pico > _MAX_PICO:
        raise ValueError(f"{what}: at most {Decimal(_MAX_PICO // PICO_PER_USD)} USD")
    return amount


def positive_int(what: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_PICO:
        raise ValueError(f"{what}: expected a whole number of at least 1, got {value!r}")
    return value


def split_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """"a,b" or ["a", "b"] -> ("a", "b"), blanks dropped."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(item.strip() for item in items if item.strip())


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """["PHONE=mask", "EMAIL=redact"] -> {"PHONE": "mask", "EMAIL": "redact"}; blanks dropped.  Types and actions
    are checked with the policy (``compliance.policy.check_layer``)."""
    out: dict[str, str] = {}
    for pair in pairs:
        if not pair.strip():
            continue
        entity, sep, action = pair.partition("=")
        if not sep or not entity.strip() or not action.strip():
            raise ValueError(f"expected TYPE=ACTION, got {pair.strip()!r}")
        out[entity.strip()] = action.strip()
    return out


def check_models(models: Sequence[str]) -> tuple[str, ...]:
    for model in models:
        check_text("models", model, required=True, limit=256)
    return tuple(dict.fromkeys(models))


def check_routes(routes: Sequence[str]) -> tuple[str, ...]:
    unknown = [r for r in routes if r not in ROUTES]
    if unknown:
        raise ValueError(f"routes: unknown {', '.join(map(repr, unknown))}; expected some of {', '.join(ROUTES)}")
    return tuple(dict.fromkeys(routes))


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if not metadata:
        return {}
    if len(metadata) > 64:
        raise ValueError("metadata: at most 64 entries")
    for name, value in metadata.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError("metadata: expected string names and string values")
        check_text("metadata name", name, required=True, limit=128)
        check_text(f"metadata[{name}]", value)
    return dict(metadata)


def parse_metadata(pairs: Sequence[str]) -> dict[str, str]:
    """CLI ``--metadata k=v`` options."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"metadata: expected name=value, got {pair!r}")
        out[name.strip()] = value
    return check_metadata(out)


def parse_by(value: str | Sequence[str] | None) -> tuple[str, ...]:
    by = split_list(value)
    unknown = [d for d in by if d not in REPORT_DIMENSIONS]
    if unknown:
        raise ValueError(f"by: unknown dimension {', '.join(map(repr, unknown))}; expected some of "
                         f"{', '.join(REPORT_DIMENSIONS)}")
    if len(set(by)) != len(by):
        raise ValueError("by: a dimension is repeated")
    return by


def check_webhook(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not value.startswith(("http://", "https://")) or len(value) > 2048 or any(c.isspace() for c in value):
        raise ValueError(f"webhook: expected an http(s) URL, got {value!r}")
    return value


# Request bodies of the admin API: unknown fields are refused so a typo never passes silently.

class NewTenant(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class NewTeam(msgspec.Struct, forbid_unknown_fields=True):
    id: str  # "<slug>" with tenant, or "<tenant>/<slug>"
    tenant: str | None = None
    name: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    tenant: str | None = None
    team: str | None = None
    name: str = ""
    models: list[str] = msgspec.field(default_factory=list)
    routes: list[str] = msgspec.field(default_factory=list)
    expires: str | float | None = None  # duration from now, ISO date/datetime, or unix seconds
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class NewBudget(msgspec.Struct, forbid_unknown_fields=True):
    scope: Literal["key", "team", "tenant"]
    scope_id: str
    limit_usd: Any  # a decimal string or a JSON number (decoded as a Decimal, never a float)
    period: Literal["day", "month", "total"] = "month"
    mode: Literal["hard", "soft"] = "hard"
    webhook: str | None = None
    id: str | None = None


class NewRateLimit(msgspec.Struct, forbid_unknown_fields=True):
    scope: Literal["key", "team", "tenant"]
    scope_id: str
    model: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None
    id: str | None = None


class NewCompliancePolicy(msgspec.Struct, forbid_unknown_fields=True):
    packs: list[str] | None = None  # None: the packs of the layer below (the tenant's, the config's defaults)
    overrides: dict[str, str] = msgspec.field(default_factory=dict)  # entity type -> action
    codewords: list[str] = msgspec.field(default_factory=list)
