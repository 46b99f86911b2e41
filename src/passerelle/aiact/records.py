"""The AI Act registers' records, as stored and as the request path reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
RiskClass = Literal["prohibited", "high-risk", "limited", "minimal"]
Status = Literal["draft", "active", "suspended"]
RISK_CLASSES: tuple[str, ...] = ("prohibited", "high-risk", "limited", "minimal")
STATUSES: tuple[str, ...] = ("draft", "active", "suspended")
KINDS: tuple[str, ...] = ("chat", "other")
# Annex III points 1-8 with their letters, e.g. "5(b)" (creditworthiness) or "2" (critical infrastructure).
ANNEX_III = re.compile(r"[1-8](\([a-e]\))?")
HIGH_RISK_MIN_RETENTION_DAYS = 183  # six months: Art 19(1), Art 26(6)


@dataclass(frozen=True, slots=True)
class Purpose:
    """A registered intended purpose; every change is stored as a new ``version``."""

    id: str
    name: str
    description: str
    instructions: str  # instructions for use (Art 13, Art 26(1))
    overseer: str  # the named human overseer (Art 14, Art 26(2))
    owner: str
    risk_class: RiskClass
    annex_category: str | None = None  # Annex III point of a high-risk purpose, e.g. "5(b)"
    models: tuple[str, ...] = ()  # allowed aliases or globs; empty: all
    routes: tuple[str, ...] = ()  # allowed routes, e.g. "chat_completions"; empty: all
    retention_days: int = 365
    status: Status = "draft"
    tags: tuple[str, ...] = ()
    general_purpose: bool = False
    kind: str = "other"  # "chat": Art 50(1) disclosure at the first interaction may apply
    disclosure: str | None = None  # the sentence prepended to a conversation's first answer
    public_interest: bool = False  # Art 50(4): label text unless a named reviewer is recorded
    label: str = "[AI-generated text]"
    version: int = 0
    updated_at: float = 0.0
    updated_by: str = ""


@dataclass(frozen=True, slots=True)
class PurposeVersion:
    purpose_id: str
    version: int
    purpose: Purpose
    changed_at: float
    actor: str


@dataclass(frozen=True, slots=True)
class KeyBinding:
    """A key bound to a purpose; ``annex_use`` tags the key with the Annex III use it serves (Art 25)."""

    key_id: str
    purpose_id: str
    annex_use: str | None = None
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Suspension:
    kind: Literal["purpose", "route"]
    target: str
    reason: str
    actor: str
    at: float


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    kind: str  # "role_drift" | "review_overdue" | "incident_deadline"
    key_id: str
    purpose_id: str
    day: str  # YYYY-MM-DD (UTC): one alert per key, purpose and day
    message: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Supplier:
    """A model and its provider in the GPAI / DORA supplier register."""

    provider: str  # provider type ("anthropic", "openai", ...) as deployments name it
    model: str  # upstream model id or glob
    documentation_url: str | None = None  # Annex XII information for downstream providers
    training_summary_url: str | None = None  # Art 53(1)(d) public summary of training content
    code_of_practice: Literal["signed", "partial", "not_signed", "unknown"] = "unknown"
    region: str | None = None
    data_retention: str | None = None
    contract_ref: str | None = None
    provider_name: str | None = None  # legal name, for the DORA register of information
    lei: str | None = None  # legal entity identifier
    updated_at: float = 0.0

    @property
    def documented(self) -> bool:
        """The documents ``aiact.require_supplier_docs`` asks for are on file."""
        return bool(self.documentation_url and self.training_summary_url)


@dataclass(frozen=True, slots=True)
class Risk:
    """One risk of a purpose (Art 9(2)): identified, estimated, evaluated, with measures."""

    id: str
    purpose_id: str
    title: str
    likelihood: int  # 1 (rare) .. 5 (almost certain)
    severity: int  # 1 (negligible) .. 5 (critical)
    measures: str
    residual: Literal["low", "medium", "high"]
    review_due: str  # YYYY-MM-DD
    description: str = ""
    signed_off_by: str | None = None
    signed_off_at: float | None = None
    created_at: float = 0.0

    @property
    def score(self) -> int:
        return self.likelihood * self.severity


@dataclass(frozen=True, slots=True)
class Incident:
    """A serious incident (Art 3(49)) and its Art 73 reporting deadline."""

    id: str
    purpose_id: str
    title: str
    severity: Literal["serious", "widespread", "critical_infrastructure", "death"]
    occurred_at: float
    aware_at: float  # when the deployer became aware: the clock starts here
    deadline: float
    description: str = ""
    reported_at: float | None = None
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """What the request path needs, read in one transaction."""

    version: int
    purposes: list[Purpose] = field(default_factory=list)
    bindings: list[KeyBinding] = field(default_factory=list)
    suspensions: list[Suspension] = field(default_factory=list)
    suppliers: list[Supplier] = field(default_factory=list)
