"""The configuration's shape.  msgspec validates it and names the bad field on error."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegativeFloat = Annotated[float, Meta(ge=0)]
NonNegativeInt = Annotated[int, Meta(ge=0)]
Rate = Annotated[float, Meta(ge=0, le=1)]

ProviderType = Literal["anthropic", "bedrock", "vertex", "openai", "azure_openai", "simulator"]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 4000
    workers: Annotated[int, Meta(ge=1, le=64)] = 1
    engine: Literal["uvicorn", "granian"] = "uvicorn"
    max_body_bytes: Annotated[int, Meta(ge=1024)] = 32 * 1024 * 1024
    data_dir: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    graceful_timeout: PositiveFloat = 30.0


class FaultConfig(Strict):
    """Simulator fault injection: each rate is the probability per request."""

    rate_limit: Rate = 0.0  # 429 with retry-after
    server_error: Rate = 0.0  # 500
    overloaded: Rate = 0.0  # 529
    timeout: Rate = 0.0  # never answers (until the caller's timeout)
    connection_reset: Rate = 0.0  # drops the connection without an answer
    stream_cut: Rate = 0.0  # a stream stops half-way without its final events
    malformed: Rate = 0.0  # a 200 with a body that is not valid JSON
    retry_after: NonNegativeFloat = 0.0


class SimulatorConfig(Strict):
    # "echo" repeats the last user message's text; "fixed" writes output_tokens tokens.
    mode: Literal["echo", "fixed"] = "echo"
    output_tokens: NonNegativeInt = 16
    ttft_ms: NonNegativeFloat = 0.0
    tokens_per_second: NonNegativeFloat = 0.0  # 0: as fast as possible
    chunk_tokens: Annotated[int, Meta(ge=1)] = 1  # tokens per streamed delta
    tool_calls: bool = True  # call an offered tool with schema-valid arguments
    faults: FaultConfig = msgspec.field(default_factory=FaultConfig)
    seed: int | None = None


class ProviderConfig(Strict):
    type: ProviderType
    api_key: str | None = None
    base_url: str | None = None
    # bedrock / vertex
    region: str | None = None
    # bedrock
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    profile: str | None = None
    # vertex
    project: str | None = None
    credentials_file: str | None = None
    # openai / azure_openai
    organization: str | None = None
    api_version: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    simulator: SimulatorConfig = msgspec.field(default_factory=SimulatorConfig)


class DeploymentConfig(Strict):
    provider: str
    # The upstream's model id; "{model}" stands for the model name the caller asked for.
    model: str = "{model}"
    name: str | None = None
    region: str | None = None
    weight: PositiveFloat = 1.0
    # Lower tiers are tried first; deployments of a later tier are fallbacks.
    priority: int = 0
    labels: list[str] = msgspec.field(default_factory=list)
    timeout: PositiveFloat | None = None
    # Adapter options, e.g. bedrock {"api": "converse" | "invoke"}, azure {"deployment": ...}.
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class AliasConfig(Strict):
    deployments: list[DeploymentConfig]
    # "priority": tiers, then weights; "cost": the cheapest healthy deployment first (price catalog).
    strategy: Literal["priority", "cost"] = "priority"
    # Other aliases to try when every deployment of this one failed.
    fallbacks: list[str] = msgspec.field(default_factory=list)
    description: str | None = None


class KeyConfig(Strict):
    name: str
    key: str | None = None  # the secret itself (use ${ENV}); hashed at load, never kept
    key_sha256: str | None = None  # or its SHA-256 hex digest
    models: list[str] = msgspec.field(default_factory=list)  # allowed aliases; empty: all
    routes: list[str] = msgspec.field(default_factory=list)  # e.g. "chat_completions"; empty: all
    tenant: str = "default"
    team: str | None = None  # "<tenant>/<team>"


class RouterConfig(Strict):
    retries: NonNegativeInt = 2  # further tries of one deployment on retryable errors
    backoff_initial: NonNegativeFloat = 0.25
    backoff_max: NonNegativeFloat = 8.0
    # Longest retry-after the router will wait; longer waits move on to a fallback.
    max_retry_after: NonNegativeFloat = 30.0
    timeout: PositiveFloat = 600.0  # per upstream attempt
    breaker_failures: Annotated[int, Meta(ge=1)] = 5  # consecutive failures that open it
    breaker_cooldown: PositiveFloat = 30.0  # seconds open before one trial request


class StoreConfig(Strict):
    """Embedded (SQLite + in-process counters, one instance) or scale-out (PostgreSQL + Redis)."""

    backend: Literal["embedded", "postgres"] = "embedded"
    postgres_dsn: str | None = None  # e.g. postgresql://user@host:5432/db
    postgres_schema: str = "passerelle"
    redis_url: str | None = None  # required with postgres: the shared counters
    redis_prefix: str = "passerelle:"
    # Scale-out: an instance that has not renewed its lease in Redis for this long is taken for dead, and the
    # budget reservations of its requests in flight are given back.
    reservation_lease_s: Annotated[float, Meta(ge=3)] = 60.0
    # Seconds between two checks for changed keys and policies: the bound on revocation delay.
    refresh_interval: Annotated[float, Meta(gt=0, le=1)] = 0.25
    ledger_flush_interval: PositiveFloat = 0.2  # write-behind: seconds between ledger commits
    ledger_batch: Annotated[int, Meta(ge=1)] = 1000  # most records per commit
    ledger_queue: Annotated[int, Meta(ge=1)] = 100_000  # records held in memory before shedding


class PriceConfig(Strict):
    """A price that overrides or extends the shipped catalog (USD per million tokens, as decimal strings)."""

    model: str  # upstream model id; globs allowed
    input: str
    output: str
    provider: str = "*"  # provider type ("anthropic", "bedrock", ...) or "*"
    effective_from: str = "1970-01-01"  # ISO date, UTC
    cache_write: str | None = None
    cache_read: str | None = None
    batch_input: str | None = None
    batch_output: str | None = None


class BudgetConfig(Strict):
    scope: Literal["key", "team", "tenant"]
    scope_id: str  # a key's name (config keys) or id, a team id, a tenant id
    limit_usd: str  # decimal string
    period: Literal["day", "month", "total"] = "month"
    mode: Literal["hard", "soft"] = "hard"
    webhook: str | None = None


class RateLimitConfig(Strict):
    scope: Literal["key", "team", "tenant"]
    scope_id: str
    model: str | None = None
    rpm: Annotated[int, Meta(ge=1)] | None = None
    tpm: Annotated[int, Meta(ge=1)] | None = None
    concurrent: Annotated[int, Meta(ge=1)] | None = None


class MeteringConfig(Strict):
    enabled: bool = True  # usage ledger, costs, budgets and rate limits
    # A request that a hard budget covers but whose model has no price: refuse it, or let it through uncounted.
    unpriced: Literal["reject", "allow"] = "reject"
    # OpenAI-dialect requests may omit max_tokens; the gateway then caps the answer at this many
    # tokens so that the reservation bounds the cost.
    default_max_tokens: Annotated[int, Meta(ge=1)] = 4096
    prices: list[PriceConfig] = msgspec.field(default_factory=list)
    budgets: list[BudgetConfig] = msgspec.field(default_factory=list)
    rate_limits: list[RateLimitConfig] = msgspec.field(default_factory=list)


class CacheConfig(Strict):
    """Exact-match response cache, per tenant; callers opt out per request."""

    enabled: bool = False
    ttl: PositiveFloat = 300.0
    max_entries: Annotated[int, Meta(ge=1)] = 10_000  # embedded backend
    max_entry_bytes: Annotated[int, Meta(ge=1)] = 1024 * 1024


class AuditConfig(Strict):
    """The tamper-evident audit log (see docs/audit.md)."""

    enabled: bool = True
    retention_days: NonNegativeInt = 365  # the default, raised to any pack floor per record
    store_content: bool = False  # permission to keep the (already redacted) content a request hands over
    flush_interval: PositiveFloat = 0.2  # write-behind: seconds between commits (what a crash can lose)
    batch: Annotated[int, Meta(ge=1)] = 1000  # most records per commit
    queue: Annotated[int, Meta(ge=1)] = 100_000  # records held in memory before shedding


class PolicyConfig(Strict):
    """Which compliance packs apply, and per-entity-type action overrides (an override always wins)."""

    packs: list[str] | None = None  # None: inherit (key <- tenant <- compliance defaults)
    overrides: dict[str, str] = msgspec.field(default_factory=dict)  # entity type -> action
    codewords: list[str] = msgspec.field(default_factory=list)  # programme names found as CODEWORD


class ComplianceConfig(Strict):
    """Sensitive-data detection and actions on prompts and answers (see docs/compliance.md)."""

    packs: list[str] = msgspec.field(default_factory=list)  # the default policy; empty: compliance off
    overrides: dict[str, str] = msgspec.field(default_factory=dict)
    codewords: list[str] = msgspec.field(default_factory=list)
    tenants: dict[str, PolicyConfig] = msgspec.field(default_factory=dict)  # by tenant id
    keys: dict[str, PolicyConfig] = msgspec.field(default_factory=dict)  # by key id or config key name
    # HMAC secret of the pseudonyms (>= 32 characters; use ${ENV}).  Unset: a random one kept in the
    # data dir (one instance); several instances must share one so surrogates agree across them.
    secret: str | None = None
    scan_answers: bool = True  # detect in answers too (text and tool arguments)
    # Characters of a streamed answer held back so that a value split across chunks is still found
    # whole: the bound on the delay answer scanning adds to a stream.
    answer_holdback: Annotated[int, Meta(ge=16, le=4096)] = 64


class SkillsConfig(Strict):
    """Agent Skills served to any model: the catalog in the system prompt, a tool to load files."""

    enabled: bool = True  # serve skills to keys that have installed ones
    allow_high_risk: bool = False  # may a version with a high risk report be installed
    require_signature: bool = False  # refuse to publish unsigned versions
    max_load_bytes: Annotated[int, Meta(ge=1024)] = 200_000  # per loaded file and per request in total
    max_skills_per_request: Annotated[int, Meta(ge=1, le=1000)] = 50  # catalog entries offered
    max_loads_per_request: Annotated[int, Meta(ge=1, le=100)] = 8  # tool calls answered per request
    tool_name: Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")] = "load_skill"


class AiActConfig(Strict):
    """AI Act evidence: purposes bound to keys, transparency, registers (see docs/ai-act.md)."""

    keys: dict[str, str] = msgspec.field(default_factory=dict)  # key name or id -> purpose id
    require_purpose: bool = False  # refuse keys bound to no purpose
    require_supplier_docs: bool = False  # skip deployments whose model has no documents on file
    transparency: bool = True  # x-ai-* headers and the JSON "passerelle" marking on generated answers
    reviewer_header: str = "x-ai-reviewer"  # names the human who reviewed public-interest text (Art 50(4))
    turnover_eur: str | None = None  # worldwide annual turnover (decimal string), for Art 99 exposure
    sme: bool = False  # SMEs: the lower of the two Art 99 amounts applies


class Config(Strict):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    providers: dict[str, ProviderConfig] = msgspec.field(default_factory=dict)
    models: dict[str, AliasConfig] = msgspec.field(default_factory=dict)
    keys: list[KeyConfig] = msgspec.field(default_factory=list)
    router: RouterConfig = msgspec.field(default_factory=RouterConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    metering: MeteringConfig = msgspec.field(default_factory=MeteringConfig)
    cache: CacheConfig = msgspec.field(default_factory=CacheConfig)
    compliance: ComplianceConfig = msgspec.field(default_factory=ComplianceConfig)
    audit: AuditConfig = msgspec.field(default_factory=AuditConfig)
    skills: SkillsConfig = msgspec.field(default_factory=SkillsConfig)
    aiact: AiActConfig = msgspec.field(default_factory=AiActConfig)
