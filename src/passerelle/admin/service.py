"""The administration operations, shared by the HTTP admin API and the CLI.

Each operation validates its input, calls the ``Store`` and returns records; ``*_view`` functions
turn records into JSON-ready dicts.  A key's secret exists only in the ``CreatedKey`` returned by
``create_key``: the store keeps its SHA-256, and no view shows either.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, cast

from passerelle.admin.report_format import UsageReport, iso, usd
from passerelle.admin.validation import (
    MODES,
    PERIODS,
    SCOPES,
    check_metadata,
    check_models,
    check_routes,
    check_slug,
    check_text,
    check_webhook,
    parse_by,
    parse_time,
    parse_usd,
    positive_int,
)
from passerelle.pipeline.auth import digest
from passerelle.stores.base import Conflict, Counters, NotFound, Store
from passerelle.stores.records import (
    Budget,
    BudgetMode,
    KeyQuery,
    Period,
    RateLimit,
    ReportQuery,
    Scope,
    Team,
    Tenant,
    VirtualKey,
    usd_to_pico,
)

SECRET_PREFIX = "sk-pas-"
DISPLAY_PREFIX = 12  # characters of the secret kept to recognise a key in lists


class AdminError(Exception):
    """A refused administration request, with the HTTP status and error type to answer with."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


def invalid(message: str) -> AdminError:
    return AdminError(400, "invalid_request_error", message)


def not_found(message: str) -> AdminError:
    return AdminError(404, "not_found_error", message)


@contextlib.contextmanager
def store_errors(missing: str) -> Iterator[None]:
    """Map the store's exceptions (and validation's ValueError) to AdminError."""
    try:
        yield
    except AdminError:
        raise
    except NotFound as exc:
        raise not_found(str(exc) or missing or "not found") from None
    except Conflict as exc:  # before ValueError: Conflict is one
        raise AdminError(409, "conflict_error", str(exc) or "conflict") from None
    except ValueError as exc:
        raise invalid(str(exc)) from None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: VirtualKey
    secret: str  # shown once, never stored


class AdminService:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    # tenants and teams

    async def create_tenant(self, tenant_id: str, name: str | None = None,
                            metadata: dict[str, str] | None = None) -> Tenant:
        with store_errors(""):
            tenant = Tenant(check_slug("id", tenant_id), check_text("name", name or tenant_id),
                            self.clock(), check_metadata(metadata))
            return await self.store.create_tenant(tenant)

    async def get_tenant(self, tenant_id: str) -> Tenant:
        with store_errors(f"no tenant '{tenant_id}'"):
            return await self.store.get_tenant(tenant_id)

    async def list_tenants(self) -> list[Tenant]:
        return await self.store.list_tenants()

    async def delete_tenant(self, tenant_id: str) -> None:
        with store_errors(f"no tenant '{tenant_id}'"):
            await self.store.delete_tenant(tenant_id)

    async def create_team(self, team: str, tenant: str | None = None, name: str | None = None,
                          metadata: dict[str, str] | None = None) -> Team:
        with store_errors(f"no tenant '{tenant}'"):
            team_id = team_ref(team, tenant)
            tenant_id, _, slug = team_id.partition("/")
            record = Team(team_id, tenant_id, check_text("name", name or slug), self.clock(),
                          check_metadata(metadata))
            return await self.store.create_team(record)

    async def list_teams(self, tenant: str | None = None) -> list[Team]:
        return await self.store.list_teams(tenant)

    async def delete_team(self, team: str, tenant: str | None = None) -> None:
        with store_errors(f"no team '{team}'"):
            await self.store.delete_team(team_ref(team, tenant))

    # keys

    async def create_key(self, tenant: str | None = None, team: str | None = None, name: str = "",
                         models: Sequence[str] = (), routes: Sequence[str] = (), expires: str | float | None = None,
                         metadata: dict[str, str] | None = None) -> CreatedKey:
        with store_errors(f"no tenant '{tenant}'"):
            team_id = team_ref(team, tenant) if team else None
            tenant_id = team_id.partition("/")[0] if team_id else tenant
            if not tenant_id:
                raise invalid("tenant: required")
            check_slug("tenant", tenant_id)
            now = self.clock()
            expires_at = None
            if expires is not None and expires != "":
                expires_at = parse_time("expires", expires, now=now, future=True)
                if expires_at <= now:
                    raise invalid("expires: must be in the future")
            secret = SECRET_PREFIX + secrets.token_urlsafe(32)
            key = VirtualKey(
                id="key_" + secrets.token_hex(8), key_sha256=digest(secret), prefix=secret[:DISPLAY_PREFIX],
                name=check_text("name", name, limit=200), tenant_id=tenant_id, team_id=team_id, created_at=now,
                models=check_models(models), routes=check_routes(routes), expires_at=expires_at,
                metadata=check_metadata(metadata))
            return CreatedKey(await self.store.create_key(key), secret)

    async def get_key(self, key_id: str) -> VirtualKey:
        with store_errors(f"no key '{key_id}'"):
            return await self.store.get_key(key_id)

    async def list_keys(self, tenant: str | None = None, team: str | None = None) -> list[VirtualKey]:
        with store_errors(""):
            team_id = team_ref(team, tenant) if team else None
            return await self.store.list_keys(tenant, team_id)

    async def page_keys(self, tenant: str | None = None, team: str | None = None, status: str | None = None,
                        search: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[VirtualKey], int]:
        """One page of keys (newest first) and how many match, filtered by the store."""
        with store_errors(""):
            team_id = team_ref(team, tenant) if team else None
            if status is not None and status not in ("active", "revoked", "expired"):
                raise invalid(f"status: expected active, revoked or expired, got {status!r}")
            if not 1 <= limit <= 500 or offset < 0:
                raise invalid("page: limit must be 1..500 and offset >= 0")
            if search is not None:
                check_text("search", search, limit=200)
            query = KeyQuery(tenant or None, team_id, cast(Any, status), search or None, self.clock(), offset, limit)
            return await self.store.page_keys(query)

    async def revoke_key(self, key_id: str) -> VirtualKey:
        with store_errors(f"no key '{key_id}'"):
            return await self.store.revoke_key(key_id, self.clock())

    # policies

    async def put_budget(self, scope: str, scope_id: str, limit_usd: object, period: str = "month",
                         mode: str = "hard", webhook: str | None = None, budget_id: str | None = None) -> Budget:
        """Create a budget, or replace the one with the same id, or else with the same scope, period
        and mode (keeping its id, and so its spend counter)."""
        with store_errors(""):
            scope_ = _scope(scope)
            period_ = cast(Period, _choice("period", period, PERIODS))
            mode_ = cast(BudgetMode, _choice("mode", mode, MODES))
            limit = parse_usd("limit_usd", limit_usd)
            hook = check_webhook(webhook)
            if hook and mode_ == "hard":
                raise invalid("webhook: only soft budgets alert; a hard budget rejects requests instead")
            existing = await self.store.list_budgets(scope_, scope_id)
            if budget_id:
                _same_scope(await self.store.list_budgets(), budget_id, scope_, scope_id)
            same = _find(existing, budget_id, lambda b: b.period == period_ and b.mode == mode_)
            new_id = budget_id or (same.id if same else "bud_" + secrets.token_hex(6))
            check_text("id", new_id, required=True, limit=64)
            budget = Budget(new_id, scope_, scope_id, period_, limit, mode_, hook,
                            same.created_at if same else self.clock())
            return await self.store.put_budget(budget)

    async def list_budgets(self, scope: str | None = None, scope_id: str | None = None) -> list[Budget]:
        with store_errors(""):
            scope_ = _scope(scope) if scope else None
            return await self.store.list_budgets(scope_, scope_id)

    async def delete_budget(self, budget_id: str) -> None:
        with store_errors(f"no budget '{budget_id}'"):
            await self.store.delete_budget(budget_id)

    async def put_rate_limit(self, scope: str, scope_id: str, model: str | None = None, rpm: int | None = None,
                             tpm: int | None = None, concurrent: int | None = None,
                             limit_id: str | None = None) -> RateLimit:
        """Create a rate limit, or replace the one with the same id, or else with the same scope and model."""
        with store_errors(""):
            scope_ = _scope(scope)
            values = positive_int("rpm", rpm), positive_int("tpm", tpm), positive_int("concurrent", concurrent)
            if not any(values):
                raise invalid("set at least one of rpm, tpm, concurrent")
            if model is not None:
                check_text("model", model, required=True, limit=256)
            existing = await self.store.list_rate_limits(scope_, scope_id)
            if limit_id:
                _same_scope(await self.store.list_rate_limits(), limit_id, scope_, scope_id)
            same = _find(existing, limit_id, lambda r: r.model == model)
            new_id = limit_id or (same.id if same else "rl_" + secrets.token_hex(6))
            check_text("id", new_id, required=True, limit=64)
            limit = RateLimit(new_id, scope_, scope_id, model, *values,
                              created_at=same.created_at if same else self.clock())
            return await self.store.put_rate_limit(limit)

    async def list_rate_limits(self, scope: str | None = None, scope_id: str | None = None) -> list[RateLimit]:
        with store_errors(""):
            scope_ = _scope(scope) if scope else None
            return await self.store.list_rate_limits(scope_, scope_id)

    async def delete_rate_limit(self, limit_id: str) -> None:
        with store_errors(f"no rate limit '{limit_id}'"):
            await self.store.delete_rate_limit(limit_id)

    # reports

    async def usage(self, by: str | Sequence[str] | None = None, since: str | float | None = None,
                    until: str | float | None = None, tenant: str | None = None) -> UsageReport:
        with store_errors(""):
            now = self.clock()
            dims = parse_by(by)
            start = parse_time("since", since, now=now) if since is not None and since != "" else None
            end = parse_time("until", until, now=now) if until is not None and until != "" else None
            if start is not None and end is not None and end <= start:
                raise invalid("until: must be after since")
            rows = await self.store.report(ReportQuery(dims, start, end, tenant or None))
            rows.sort(key=lambda r: tuple((v is None, str(v)) for v in (r.group.get(d) for d in dims)))
            return UsageReport(dims, start, end, tenant or None, rows)

    async def budget_status(self, budget: Budget, counters: Counters) -> dict[str, Any]:
        """Spend in the budget's current period: the shared counter (spent + reserved) when it exists,
        else the ledger's sum (which lags by the ledger's flush interval)."""
        from passerelle.pipeline.limits import period_window  # the request path's own period arithmetic

        suffix, start, _ = period_window(budget.period, self.clock())
        committed = (await counters.committed([f"budget:{budget.id}:{suffix}"]))[0]
        source = "counters"
        if committed is None:
            committed, source = await self.store.spend_pico(budget.scope, budget.scope_id, start), "ledger"
        limit = usd_to_pico(budget.limit_usd)
        return {**budget_view(budget), "period_start": iso(start), "spent_usd": usd(committed),
                "remaining_usd": usd(max(limit - committed, 0)), "source": source}


def team_ref(team: str | None, tenant: str | None) -> str:
    """A team id from "<tenant>/<slug>", or from a slug and its tenant; both parts checked."""
    if not team:
        raise invalid("team: required")
    if "/" in team:
        tenant_part, _, slug = team.partition("/")
        if tenant and tenant != tenant_part:
            raise invalid(f"team '{team}' does not belong to tenant '{tenant}'")
    elif tenant:
        tenant_part, slug = tenant, team
    else:
        raise invalid(f"team: give it as <tenant>/{team}, or give the tenant")
    check_slug("tenant", tenant_part)
    check_slug("team", slug)
    return f"{tenant_part}/{slug}"


def _choice(what: str, value: str | None, allowed: Sequence[str]) -> str:
    if value is None or value not in allowed:
        raise invalid(f"{what}: expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _scope(value: str | None) -> Scope:
    return cast(Scope, _choice("scope", value, SCOPES))


_P = TypeVar("_P", Budget, RateLimit)


def _same_scope(items: Iterable[_P], wanted_id: str, scope: Scope, scope_id: str) -> None:
    """A policy keeps its counters under its id: moving the id to another scope would carry them over."""
    for item in items:
        if item.id == wanted_id and (item.scope, item.scope_id) != (scope, scope_id):
            raise AdminError(409, "conflict_error", f"'{wanted_id}' applies to {item.scope} '{item.scope_id}'; "
                             "delete it to create one elsewhere")


def _find(items: Iterable[_P], wanted_id: str | None, same: Callable[[_P], bool]) -> _P | None:
    for item in items:
        if (item.id == wanted_id) if wanted_id else same(item):
            return item
    return None


# views: JSON-ready, without secrets or digests

def tenant_view(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "created_at": iso(tenant.created_at),
            "metadata": dict(tenant.metadata)}


def team_view(team: Team) -> dict[str, Any]:
    return {"id": team.id, "tenant": team.tenant_id, "name": team.name, "created_at": iso(team.created_at),
            "metadata": dict(team.metadata)}


def key_status(key: VirtualKey, now: float) -> str:
    if key.revoked_at is not None:
        return "revoked"
    return "expired" if key.expires_at is not None and key.expires_at <= now else "active"


def key_view(key: VirtualKey, now: float | None = None) -> dict[str, Any]:
    return {"id": key.id, "prefix": key.prefix, "name": key.name, "tenant": key.tenant_id, "team": key.team_id,
            "status": key_status(key, time.time() if now is None else now), "models": list(key.models),
            "routes": list(key.routes), "created_at": iso(key.created_at), "expires_at": iso(key.expires_at),
            "revoked_at": iso(key.revoked_at), "metadata": dict(key.metadata)}


def created_key_view(created: CreatedKey) -> dict[str, Any]:
    return {**key_view(created.key), "secret": created.secret}


def budget_view(budget: Budget) -> dict[str, Any]:
    return {"id": budget.id, "scope": budget.scope, "scope_id": budget.scope_id, "period": budget.period,
            "limit_usd": _plain(budget.limit_usd), "mode": budget.mode, "webhook": budget.webhook,
            "created_at": iso(budget.created_at)}


def rate_limit_view(limit: RateLimit) -> dict[str, Any]:
    return {"id": limit.id, "scope": limit.scope, "scope_id": limit.scope_id, "model": limit.model,
            "rpm": limit.rpm, "tpm": limit.tpm, "concurrent": limit.concurrent, "created_at": iso(limit.created_at)}


def _plain(amount: Decimal) -> str:
    return format(amount, "f")

