"""The narrow interfaces between the request path and storage.

Two pairs of backends implement them and callers cannot tell them apart:
- embedded (one instance): ``SQLiteStore`` + ``MemoryCounters``;
- scale-out (many instances behind a load balancer): ``PostgresStore`` + ``RedisCounters``.

``Store`` is the durable side (identities, policies, the usage ledger).  The request path never
waits on it: it reads a ``Snapshot`` refreshed in the background and appends to the ledger
through a write-behind queue.  ``Counters`` is the fast shared side (budgets, rate limits,
concurrency, the response cache): one round trip per admission, atomic across instances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from passerelle.stores.records import (
    Budget,
    CompliancePolicy,
    KeyQuery,
    RateLimit,
    ReportQuery,
    ReportRow,
    Scope,
    Snapshot,
    Team,
    Tenant,
    UsageRecord,
    VirtualKey,
)


class NotFound(LookupError):
    """The named tenant, team, key or policy does not exist."""


class Conflict(ValueError):
    """The object already exists, or is still referenced."""


PolicyCheck = Callable[[list[CompliancePolicy]], None]  # raises to refuse a compliance policy change


class Store(Protocol):
    async def ping(self) -> None:
        """Raise if the store cannot serve requests."""
        ...

    async def aclose(self) -> None: ...

    # settings (e.g. the admin key's digest)
    async def get_setting(self, name: str) -> str | None: ...
    async def set_setting(self, name: str, value: str) -> None: ...

    # identities; every write bumps the version that instances poll
    async def create_tenant(self, tenant: Tenant) -> Tenant: ...  # Conflict if the id exists
    async def get_tenant(self, tenant_id: str) -> Tenant: ...  # NotFound
    async def list_tenants(self) -> list[Tenant]: ...
    async def delete_tenant(self, tenant_id: str) -> None: ...  # Conflict while it has teams or live keys
    async def create_team(self, team: Team) -> Team: ...  # NotFound tenant, Conflict id
    async def list_teams(self, tenant_id: str | None = None) -> list[Team]: ...
    async def delete_team(self, team_id: str) -> None: ...  # Conflict while it has live keys
    async def create_key(self, key: VirtualKey) -> VirtualKey: ...  # NotFound tenant/team, Conflict
    async def get_key(self, key_id: str) -> VirtualKey: ...
    async def list_keys(self, tenant_id: str | None = None, team_id: str | None = None) -> list[VirtualKey]: ...
    async def revoke_key(self, key_id: str, at: float) -> VirtualKey: ...  # idempotent: keeps the first time
    async def page_keys(self, query: KeyQuery) -> tuple[list[VirtualKey], int]: ...  # one page, total matching

    # policies
    async def put_budget(self, budget: Budget) -> Budget: ...  # insert or replace by id
    async def list_budgets(self, scope: Scope | None = None, scope_id: str | None = None) -> list[Budget]: ...
    async def delete_budget(self, budget_id: str) -> None: ...  # NotFound
    async def put_rate_limit(self, limit: RateLimit) -> RateLimit: ...
    async def list_rate_limits(self, scope: Scope | None = None, scope_id: str | None = None,
                               ) -> list[RateLimit]: ...
    async def delete_rate_limit(self, limit_id: str) -> None: ...
    # One per scope.  ``check`` sees every stored policy as the change would leave them, inside the write that
    # makes it (no other policy write in between, on any instance); what it raises cancels the change.
    async def put_compliance_policy(self, policy: CompliancePolicy,
                                    check: PolicyCheck | None = None) -> CompliancePolicy: ...
    async def list_compliance_policies(self, scope: Scope | None = None,
                                       scope_id: str | None = None) -> list[CompliancePolicy]: ...
    async def delete_compliance_policy(self, scope: Scope, scope_id: str,
                                       check: PolicyCheck | None = None) -> None: ...  # NotFound

    # change detection: one cheap read, polled by every instance
    async def version(self) -> int: ...
    async def snapshot(self) -> Snapshot: ...

    # the ledger
    async def append_usage(self, records: Sequence[UsageRecord]) -> None: ...  # one transaction; ids unique
    async def usage_records(self, since: float | None = None, until: float | None = None,
                            tenant_id: str | None = None) -> list[UsageRecord]: ...
    async def report(self, query: ReportQuery) -> list[ReportRow]: ...
    async def latency_histogram(self, since: float | None, until: float | None,
                                tenant_id: str | None = None) -> list[int]:
        """Request counts per ``LATENCY_BUCKETS_MS`` bucket (one more for the open-ended last)."""
        ...
    async def spend_pico(self, scope: Scope, scope_id: str, since: float) -> int:
        """Sum of ledger cost for one key/team/tenant since a time: seeds budget counters."""
        ...


@dataclass(frozen=True, slots=True)
class Charge:
    """A budget counter a request reserves money against."""

    counter: str  # e.g. "budget:bud_1a2b:2026-11-27"
    limit_pico: int | None  # hard budgets: never exceeded; None: soft (counted only)
    ttl_s: int | None = None  # counters of a period expire after it


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: ``capacity`` units, refilled continuously at ``refill_per_s``."""

    counter: str  # e.g. "rl:rl_9f:req"
    capacity: int
    refill_per_s: float
    cost: int  # units this request takes (1 for requests, estimated tokens for tokens)


@dataclass(frozen=True, slots=True)
class Slot:
    """A concurrency limit: at most ``limit`` requests hold a slot at once."""

    counter: str
    limit: int
    lease_s: int = 900  # a slot of a crashed instance frees itself after this


@dataclass(frozen=True, slots=True)
class Level:
    """A bucket's state after admission, for the rate-limit response headers."""

    limit: int
    remaining: int
    reset_s: float  # seconds until the bucket is full again


@dataclass(slots=True)
class Admission:
    ok: bool
    denied_by: str | None = None  # the counter that refused
    reason: str | None = None  # "budget" | "rate" | "concurrency" | "unseeded"
    retry_after: float | None = None  # rate limits: seconds until the request would fit
    missing: list[str] = field(default_factory=list)  # charge counters absent: seed them, then retry
    levels: dict[str, Level] = field(default_factory=dict)  # bucket counter -> state


class Counters(Protocol):
    async def ping(self) -> None: ...
    async def aclose(self) -> None: ...

    async def admit(self, request_id: str, charges: Sequence[Charge], reserve_pico: int,
                    buckets: Sequence[Bucket], slots: Sequence[Slot]) -> Admission:
        """All or nothing, atomically across instances: every charge counter exists (else
        ``missing``), every hard charge has committed + reserve <= limit, every bucket holds
        its cost, every slot has room.  Then reserve on every charge, take from every bucket,
        hold every slot.  A refusal changes nothing."""
        ...

    async def settle(self, request_id: str, charges: Sequence[Charge], reserved_pico: int, actual_pico: int,
                     buckets: Sequence[Bucket], actual_costs: Sequence[int], slots: Sequence[Slot]) -> list[str]:
        """Replace the reservation by the actual cost (``committed += actual - reserved``), give
        back to each bucket what it took beyond ``actual_costs[i]``, release the slots.  Returns
        the charge counters whose committed amount crossed their limit with this settlement
        (soft budgets alert on these).  Once per admitted request.  A reservation the counters no
        longer hold (``reclaim`` gave it back) is not taken off again: the actual cost alone is added."""
        ...

    async def reclaim(self) -> int:
        """Give back to their budgets the reservations of gateway processes that died before settling them
        (each backend also does it on its own, periodically); returns the pico-USD given back, summed over the
        budget counters."""
        ...

    async def seed(self, counter: str, value_pico: int, ttl_s: int | None) -> None:
        """Create a charge counter at a value (the ledger's spend) unless it already exists."""
        ...

    async def committed(self, counters: Sequence[str]) -> list[int | None]:
        """Each counter's spent + reserved amount, None when absent."""
        ...

    async def first_time(self, flag: str, ttl_s: int) -> bool:
        """True for the first caller to raise ``flag`` in ``ttl_s`` seconds (alert deduplication)."""
        ...

    # the response cache
    async def cache_get(self, key: str) -> bytes | None: ...
    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None: ...
