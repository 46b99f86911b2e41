"""What the stores keep: identities (tenants, teams, virtual keys), spending and rate policies,
and the usage ledger.  Plain frozen dataclasses, the same for every backend.

Money is counted in integer pico-dollars (1e-12 USD): prices per million tokens with up to six
decimals (e.g. $0.0375/MTok = 37,500 pico-USD per token) stay exact, and counters fit in Redis
and SQLite 64-bit integers up to about 9.2 million USD per counter or row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Scope = Literal["key", "team", "tenant"]
Period = Literal["day", "month", "total"]
BudgetMode = Literal["hard", "soft"]

PICO_PER_USD = 10**12

# Dimensions a usage report can group by; "model" is the alias the caller asked for.
REPORT_DIMENSIONS = ("tenant", "team", "key", "model", "deployment", "provider", "route", "status", "cache_hit",
                     "day", "month")


def usd_to_pico(usd: Decimal) -> int:
    pico = usd * PICO_PER_USD
    if pico != pico.to_integral_value():
        raise ValueError(f"{usd} USD has more precision than a pico-dollar")
    return int(pico)


def pico_to_usd(pico: int) -> Decimal:
    return Decimal(pico) / PICO_PER_USD


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str  # a slug chosen by the operator: [a-z0-9][a-z0-9_-]{0,62}
    name: str
    created_at: float  # unix seconds
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Team:
    id: str  # "<tenant>/<slug>"
    tenant_id: str
    name: str
    created_at: float
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VirtualKey:
    id: str  # "key_<hex>", public; the secret is never stored
    key_sha256: str  # hex digest of the secret
    prefix: str  # the secret's first characters, to recognise it in lists
    name: str
    tenant_id: str
    team_id: str | None
    created_at: float
    models: tuple[str, ...] = ()  # allowed model names / aliases (globs allowed); empty: all
    routes: tuple[str, ...] = ()  # allowed routes: "messages", "chat_completions", "count_tokens", "models"; empty: all
    expires_at: float | None = None
    revoked_at: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Budget:
    id: str  # "bud_<hex>"
    scope: Scope
    scope_id: str  # key id, team id or tenant id
    period: Period
    limit_usd: Decimal
    mode: BudgetMode = "hard"
    webhook: str | None = None  # soft budgets: POSTed once per period when crossed
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    id: str  # "rl_<hex>"
    scope: Scope
    scope_id: str
    model: str | None = None  # one alias; None: all models together
    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens per minute (input estimate + max_tokens at admission, settled to actual)
    concurrent: int | None = None  # requests in flight
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class CompliancePolicy:
    """A tenant's or key's compliance policy set through the admin API or CLI (one per scope): packs (None:
    inherit from the layer below), per-type action overrides and codewords, as ``PolicyConfig`` has them."""

    scope: Literal["tenant", "key"]
    scope_id: str
    packs: tuple[str, ...] | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    codewords: tuple[str, ...] = ()
    updated_at: float = 0.0

    @property
    def id(self) -> str:
        return f"{self.scope}:{self.scope_id}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the request path needs to decide, loaded whole and swapped atomically."""

    version: int
    tenants: tuple[Tenant, ...] = ()
    teams: tuple[Team, ...] = ()
    keys: tuple[VirtualKey, ...] = ()
    budgets: tuple[Budget, ...] = ()
    rate_limits: tuple[RateLimit, ...] = ()
    compliance: tuple[CompliancePolicy, ...] = ()


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One request, as the ledger keeps it forever (its cost is never recomputed)."""

    request_id: str
    ts: float  # unix seconds when the request arrived
    tenant_id: str
    team_id: str | None
    key_id: str
    route: str  # "messages" (Anthropic), "chat_completions" (OpenAI)
    model: str  # the alias / model name the caller asked for
    deployment: str | None  # None when no upstream was called (cache hit, rejection)
    provider: str | None  # provider type, e.g. "anthropic", "bedrock"
    upstream_model: str | None
    status: int
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    thinking_tokens: int = 0  # part of output_tokens when the provider reports it separately
    usage_estimated: bool = False  # the upstream reported nothing (stream cut short): see pricing
    cost_pico: int = 0
    saved_pico: int = 0  # cache hits: what the upstream call would have cost
    cache_hit: bool = False
    price_version: str = ""  # catalog version the cost was computed with


@dataclass(frozen=True, slots=True)
class ReportQuery:
    by: tuple[str, ...] = ()  # names from REPORT_DIMENSIONS; empty: one total row
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive
    tenant_id: str | None = None  # restrict to one tenant
    top: int | None = None  # only the groups with the most requests (a console's "top keys"), at most this many


@dataclass(frozen=True, slots=True)
class ReportRow:
    group: dict[str, str | None]  # dimension -> value ("day" as YYYY-MM-DD, "month" as YYYY-MM, UTC)
    requests: int
    errors: int  # status >= 400
    cache_hits: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    thinking_tokens: int
    cost_pico: int
    saved_pico: int


@dataclass(frozen=True, slots=True)
class KeyQuery:
    """One page of keys, filtered in the database (a console never loads every key)."""

    tenant_id: str | None = None
    team_id: str | None = None
    status: Literal["active", "revoked", "expired"] | None = None
    search: str | None = None  # case-insensitive substring of the id, name or prefix
    now: float = 0.0  # what "expired" is measured against
    offset: int = 0
    limit: int = 50


# Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended.
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)

