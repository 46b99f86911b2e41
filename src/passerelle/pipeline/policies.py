"""The policies the request path reads: keys, budgets, rate limits, compiled from a store snapshot
and the config file, and swapped whole when the store's version changes.

Every instance polls ``Store.version()`` (one tiny read) every ``store.refresh_interval``
seconds, off the request path; that interval bounds how long a revoked key or a new limit takes
to reach every instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from passerelle.config import Config
from passerelle.observability.logging import log
from passerelle.pipeline.auth import KeyRing, Principal, config_key_id
from passerelle.stores.base import Store
from passerelle.stores.records import Budget, CompliancePolicy, RateLimit, Scope, Snapshot

ScopeKey = tuple[Scope, str]


@dataclass(frozen=True, slots=True)
class Policies:
    version: int
    keys: KeyRing
    budgets: dict[ScopeKey, tuple[Budget, ...]]
    limits: dict[ScopeKey, tuple[RateLimit, ...]]

    def budgets_for(self, who: Principal) -> list[Budget]:
        return [b for scope in _scopes(who) for b in self.budgets.get(scope, ())]

    def limits_for(self, who: Principal, models: tuple[str, ...]) -> list[RateLimit]:
        """Limits on the caller's key, team and tenant that cover all models or one of ``models``."""
        return [limit for scope in _scopes(who) for limit in self.limits.get(scope, ())
                if limit.model is None or limit.model in models]


def _scopes(who: Principal) -> list[ScopeKey]:
    scopes: list[ScopeKey] = [("key", who.key_id)]
    if who.team_id:
        scopes.append(("team", who.team_id))
    scopes.append(("tenant", who.tenant_id))
    return scopes


def _stable_id(prefix: str, *parts: object) -> str:
    # Config-declared policies keep their id (and so their counters) across restarts.
    return prefix + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12]


def _config_scope_id(config: Config, scope: Scope, scope_id: str) -> str:
    if scope == "key" and any(k.name == scope_id for k in config.keys):
        return config_key_id(scope_id)
    return scope_id


def config_budgets(config: Config) -> list[Budget]:
    out = []
    for spec in config.metering.budgets:
        scope_id = _config_scope_id(config, spec.scope, spec.scope_id)
        out.append(Budget(_stable_id("cfgb_", spec.scope, scope_id, spec.period, spec.mode), spec.scope, scope_id,
                          spec.period, Decimal(spec.limit_usd), spec.mode, spec.webhook))
    return out


def config_rate_limits(config: Config) -> list[RateLimit]:
    out = []
    for spec in config.metering.rate_limits:
        scope_id = _config_scope_id(config, spec.scope, spec.scope_id)
        out.append(RateLimit(_stable_id("cfgr_", spec.scope, scope_id, spec.model), spec.scope, scope_id,
                             spec.model, spec.rpm, spec.tpm, spec.concurrent))
    return out


def compile_policies(snapshot: Snapshot, config: Config, admin_key_sha256: str | None) -> Policies:
    budgets: dict[ScopeKey, list[Budget]] = defaultdict(list)
    for budget in [*config_budgets(config), *snapshot.budgets]:
        budgets[(budget.scope, budget.scope_id)].append(budget)
    limits: dict[ScopeKey, list[RateLimit]] = defaultdict(list)
    for limit in [*config_rate_limits(config), *snapshot.rate_limits]:
        limits[(limit.scope, limit.scope_id)].append(limit)
    return Policies(
        version=snapshot.version,
        keys=KeyRing(config.keys, admin_key_sha256, snapshot.keys),
        budgets={k: tuple(v) for k, v in budgets.items()},
        limits={k: tuple(v) for k, v in limits.items()},
    )


class PolicyRefresher:
    """Holds the current ``Policies`` and replaces them when the store says they changed."""

    def __init__(self, store: Store, config: Config, admin_key_sha256: str | None,
                 on_change: Callable[[int, Sequence[CompliancePolicy]], Awaitable[None]] | None = None) -> None:
        self._store = store
        self._on_change = on_change  # the compliance stage takes the store's compliance policies
        self._compliance: Snapshot | None = None  # its policies not yet taken by on_change (a retry)
        self._config = config
        self._admin = admin_key_sha256
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.current = compile_policies(Snapshot(version=-1), config, admin_key_sha256)

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="passerelle-policy-refresh")

    async def refresh(self) -> None:
        """Load the store's policies now (admin writes call this to be visible at once locally)."""
        snapshot = await self._store.snapshot()
        # Keys first: a failing compliance update never holds back a revocation.
        self.current = compile_policies(snapshot, self._config, self._admin)
        if self._on_change is not None:
            self._compliance = snapshot
            await self._hand_over()

    async def _hand_over(self) -> None:
        """Give the compliance stage the store's policies; kept for the next poll if it fails."""
        pending = self._compliance
        if pending is not None and self._on_change is not None:
            await self._on_change(pending.version, pending.compliance)
            if self._compliance is pending:  # not replaced by a newer snapshot meanwhile
                self._compliance = None

    async def _loop(self) -> None:
        interval = self._config.store.refresh_interval
        while True:
            await asyncio.sleep(interval)
            try:
                if await self._store.version() != self.current.version:
                    await self.refresh()
                else:
                    await self._hand_over()
                if self._failing:
                    log("policy_refresh_recovered", logging.INFO)
                self._failing = False
            except Exception as exc:  # keep serving with the last policies; say so once per outage
                if not self._failing:
                    log("policy_refresh_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")
                self._failing = True

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
