"""The ``Store`` logic, written once over a three-method connection: ``SQLStore``.

A backend (``SQLiteStore``, ``PostgresStore``) supplies transactions, a single-statement query and
how it stores a Decimal, nothing else, so the two cannot drift apart.

Choices the protocol leaves open, the same on both backends:
- Deleting a tenant or a team (allowed once it has no teams and no live keys) also deletes its revoked
  keys and every budget and rate limit scoped to it or to those keys: no orphan policy survives.
  Budgets and rate limits can only be put on a tenant, team or key that exists (``NotFound``).
- Revoking a revoked key changes nothing and does not bump the version.
- The ledger ignores a record whose request id it already holds (a batch retried after a timeout
  must not fail the writer nor count twice).
- Times of day are UTC and taken from the whole second (``ts`` truncated), identically in both.
- Report rows come sorted by their group values (``None`` first), sorted in Python so that no
  database collation changes the order.  Sums are exact integers; SQLite's stop at 2**63 pico-USD
  (about $9.2M in one report row: it raises rather than round), PostgreSQL's do not.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import ClassVar, Literal, Protocol

from passerelle.stores.base import Conflict, NotFound, PolicyCheck
from passerelle.stores.records import (
    LATENCY_BUCKETS_MS,
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
from passerelle.stores.sql_common import (
    BUDGET_COLUMNS,
    COMPLIANCE_COLUMNS,
    KEY_COLUMNS,
    RATE_LIMIT_COLUMNS,
    SCOPE_COLUMNS,
    SCOPE_TABLES,
    TEAM_COLUMNS,
    TENANT_COLUMNS,
    USAGE_COLUMNS,
    Row,
    budget_from_row,
    budget_params,
    check_budget,
    check_compliance_policy,
    check_key,
    check_rate_limit,
    check_scope,
    check_team,
    check_tenant,
    compliance_from_row,
    compliance_params,
    insert_sql,
    key_from_row,
    key_params,
    rate_limit_from_row,
    rate_limit_params,
    report_rows,
    report_sql,
    select_sql,
    team_from_row,
    team_params,
    tenant_from_row,
    tenant_params,
    upsert_sql,
    usage_filter,
    usage_from_row,
    usage_params,
    where_sql,
)

TxKind = Literal["read", "write", "plain"]  # consistent read / serialized identity-policy write / other writes


class Conn(Protocol):
    """One connection inside a transaction."""

    async def fetch(self, sql: str, *args: object) -> list[Row]: ...
    async def execute(self, sql: str, *args: object) -> None: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


InTx = Callable[[Conn], Awaitable[None]]  # more work inside a write transaction


async def _exists(c: Conn, table: str, row_id: str) -> bool:
    return bool(await c.fetch(f"SELECT 1 FROM {table} WHERE id = ?", row_id))


async def _compliance_policies(c: Conn) -> list[CompliancePolicy]:
    return [compliance_from_row(r) for r in await c.fetch(select_sql("compliance_policies", COMPLIANCE_COLUMNS)
                                                          + " ORDER BY id")]


async def _bump(c: Conn) -> None:
    await c.execute("UPDATE store_version SET version = version + 1 WHERE id = 1")


async def _drop_dependents(c: Conn, scope: Scope, scope_id: str, key_column: str) -> None:
    """Delete the (revoked) keys under a tenant or team, and the policies of the scope and of those keys."""
    for table in ("budgets", "rate_limits", "compliance_policies"):
        await c.execute(f"DELETE FROM {table} WHERE (scope = ? AND scope_id = ?) OR (scope = 'key' AND scope_id IN"
                        f" (SELECT id FROM virtual_keys WHERE {key_column} = ?))", scope, scope_id, scope_id)
    await c.execute(f"DELETE FROM virtual_keys WHERE {key_column} = ?", scope_id)


class SQLStore(ABC):
    """Every ``Store`` method over ``_transaction`` and ``_query``; see the module doc for the choices made."""

    day_sql: ClassVar[str]  # UTC 'YYYY-MM-DD' of the ledger's ts column
    month_sql: ClassVar[str]  # UTC 'YYYY-MM'

    @abstractmethod
    def _transaction(self, kind: TxKind) -> AbstractAsyncContextManager[Conn]:
        """A transaction of one of three kinds.  ``read``: one consistent snapshot.  ``write``: excludes
        every other identity/policy writer (of any instance), so checks-then-writes cannot race and the
        version bump lands in the same commit.  ``plain``: an ordinary write (ledger, settings)."""

    @abstractmethod
    async def _query(self, sql: str, *args: object) -> list[Row]:
        """One statement on its own."""

    @abstractmethod
    def _money(self, value: Decimal) -> object:
        """A Decimal as the backend stores it exactly."""

    # settings
    async def get_setting(self, name: str) -> str | None:
        rows = await self._query("SELECT value FROM settings WHERE name = ?", name)
        return str(rows[0][0]) if rows else None

    async def set_setting(self, name: str, value: str) -> None:
        async with self._transaction("plain") as c:
            await c.execute("INSERT INTO settings (name, value) VALUES (?, ?) "
                            "ON CONFLICT (name) DO UPDATE SET value = excluded.value", name, value)

    # identities
    async def create_tenant(self, tenant: Tenant) -> Tenant:
        check_tenant(tenant)
        async with self._transaction("write") as c:
            if await _exists(c, "tenants", tenant.id):
                raise Conflict(f"tenant {tenant.id!r} already exists")
            await c.execute(insert_sql("tenants", TENANT_COLUMNS), *tenant_params(tenant))
            await _bump(c)
        return tenant

    async def get_tenant(self, tenant_id: str) -> Tenant:
        rows = await self._query(select_sql("tenants", TENANT_COLUMNS) + " WHERE id = ?", tenant_id)
        if not rows:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return tenant_from_row(rows[0])

    async def list_tenants(self) -> list[Tenant]:
        return [tenant_from_row(r) for r in await self._query(select_sql("tenants", TENANT_COLUMNS) + " ORDER BY id")]

    async def delete_tenant(self, tenant_id: str) -> None:
        async with self._transaction("write") as c:
            if not await _exists(c, "tenants", tenant_id):
                raise NotFound(f"tenant {tenant_id!r} not found")
            if await c.fetch("SELECT 1 FROM teams WHERE tenant_id = ? LIMIT 1", tenant_id):
                raise Conflict(f"tenant {tenant_id!r} still has teams")
            if await c.fetch("SELECT 1 FROM virtual_keys WHERE tenant_id = ? AND revoked_at IS NULL LIMIT 1",
                             tenant_id):
                raise Conflict(f"tenant {tenant_id!r} still has unrevoked keys")
            await _drop_dependents(c, "tenant", tenant_id, "tenant_id")
            await c.execute("DELETE FROM tenants WHERE id = ?", tenant_id)
            await _bump(c)

    async def create_team(self, team: Team) -> Team:
        check_team(team)
        async with self._transaction("write") as c:
            if not await _exists(c, "tenants", team.tenant_id):
                raise NotFound(f"tenant {team.tenant_id!r} not found")
            if await _exists(c, "teams", team.id):
                raise Conflict(f"team {team.id!r} already exists")
            await c.execute(insert_sql("teams", TEAM_COLUMNS), *team_params(team))
            await _bump(c)
        return team

    async def list_teams(self, tenant_id: str | None = None) -> list[Team]:
        where, args = where_sql(("tenant_id = ?", tenant_id))
        rows = await self._query(select_sql("teams", TEAM_COLUMNS) + where + " ORDER BY id", *args)
        return [team_from_row(r) for r in rows]

    async def delete_team(self, team_id: str) -> None:
        async with self._transaction("write") as c:
            if not await _exists(c, "teams", team_id):
                raise NotFound(f"team {team_id!r} not found")
            if await c.fetch("SELECT 1 FROM virtual_keys WHERE team_id = ? AND revoked_at IS NULL LIMIT 1", team_id):
                raise Conflict(f"team {team_id!r} still has unrevoked keys")
            await _drop_dependents(c, "team", team_id, "team_id")
            await c.execute("DELETE FROM teams WHERE id = ?", team_id)
            await _bump(c)

    async def create_key(self, key: VirtualKey) -> VirtualKey:
        check_key(key)
        async with self._transaction("write") as c:
            if not await _exists(c, "tenants", key.tenant_id):
                raise NotFound(f"tenant {key.tenant_id!r} not found")
            if key.team_id is not None and not await _exists(c, "teams", key.team_id):
                raise NotFound(f"team {key.team_id!r} not found")
            if await _exists(c, "virtual_keys", key.id):
                raise Conflict(f"key {key.id!r} already exists")
            if await c.fetch("SELECT 1 FROM virtual_keys WHERE key_sha256 = ?", key.key_sha256):
                raise Conflict("a key with this secret already exists")
            await c.execute(insert_sql("virtual_keys", KEY_COLUMNS), *key_params(key))
            await _bump(c)
        return key

    async def get_key(self, key_id: str) -> VirtualKey:
        rows = await self._query(select_sql("virtual_keys", KEY_COLUMNS) + " WHERE id = ?", key_id)
        if not rows:
            raise NotFound(f"key {key_id!r} not found")
        return key_from_row(rows[0])

    async def list_keys(self, tenant_id: str | None = None, team_id: str | None = None) -> list[VirtualKey]:
        where, args = where_sql(("tenant_id = ?", tenant_id), ("team_id = ?", team_id))
        rows = await self._query(select_sql("virtual_keys", KEY_COLUMNS) + where + " ORDER BY id", *args)
        return [key_from_row(r) for r in rows]

    async def page_keys(self, query: KeyQuery) -> tuple[list[VirtualKey], int]:
        clauses: list[str] = []
        args: list[object] = []
        for clause, value in (("tenant_id = ?", query.tenant_id), ("team_id = ?", query.team_id)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        if query.status == "revoked":
            clauses.append("revoked_at IS NOT NULL")
        elif query.status == "active":
            clauses.append("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)")
            args.append(float(query.now))
        elif query.status == "expired":
            clauses.append("revoked_at IS NULL AND expires_at <= ?")
            args.append(float(query.now))
        if query.search:
            # LIKE's wildcards in the search are literal; LOWER on both sides: SQLite and PostgreSQL agree.
            escaped = query.search.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
            clauses.append("(" + " OR ".join(f"LOWER({c}) LIKE ? ESCAPE '!'" for c in ("id", "name", "prefix")) + ")")
            args += [f"%{escaped}%"] * 3
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        total = int((await self._query("SELECT COUNT(*) FROM virtual_keys" + where, *args))[0][0])
        rows = await self._query(select_sql("virtual_keys", KEY_COLUMNS) + where + " ORDER BY created_at DESC, id"
                                 " LIMIT ? OFFSET ?", *args, int(query.limit), int(query.offset))
        return [key_from_row(r) for r in rows], total

    async def revoke_key(self, key_id: str, at: float) -> VirtualKey:
        async with self._transaction("write") as c:
            rows = await c.fetch(select_sql("virtual_keys", KEY_COLUMNS) + " WHERE id = ?", key_id)
            if not rows:
                raise NotFound(f"key {key_id!r} not found")
            key = key_from_row(rows[0])
            if key.revoked_at is not None:
                return key  # the first revocation stands
            await c.execute("UPDATE virtual_keys SET revoked_at = ? WHERE id = ?", float(at), key_id)
            await _bump(c)
        return dataclasses.replace(key, revoked_at=float(at))

    # policies
    async def _put_policy(self, table: str, columns: Sequence[str], scope: str, scope_id: str,
                          params: tuple[object, ...], before: InTx | None = None) -> None:
        """Insert or replace; ``before`` runs inside the write, ahead of it (what it raises cancels the write)."""
        async with self._transaction("write") as c:
            if not await _exists(c, SCOPE_TABLES[scope], scope_id):
                raise NotFound(f"{scope} {scope_id!r} not found")
            if before is not None:
                await before(c)
            await c.execute(upsert_sql(table, columns), *params)
            await _bump(c)

    async def _delete_policy(self, table: str, kind: str, policy_id: str, before: InTx | None = None) -> None:
        async with self._transaction("write") as c:
            if not await _exists(c, table, policy_id):
                raise NotFound(f"{kind} {policy_id!r} not found")
            if before is not None:
                await before(c)
            await c.execute(f"DELETE FROM {table} WHERE id = ?", policy_id)
            await _bump(c)

    async def put_budget(self, budget: Budget) -> Budget:
        check_budget(budget)
        await self._put_policy("budgets", BUDGET_COLUMNS, budget.scope, budget.scope_id,
                               budget_params(budget, self._money(budget.limit_usd)))
        return budget

    async def list_budgets(self, scope: Scope | None = None, scope_id: str | None = None) -> list[Budget]:
        where, args = where_sql(("scope = ?", scope), ("scope_id = ?", scope_id))
        rows = await self._query(select_sql("budgets", BUDGET_COLUMNS) + where + " ORDER BY id", *args)
        return [budget_from_row(r) for r in rows]

    async def delete_budget(self, budget_id: str) -> None:
        await self._delete_policy("budgets", "budget", budget_id)

    async def put_rate_limit(self, limit: RateLimit) -> RateLimit:
        check_rate_limit(limit)
        await self._put_policy("rate_limits", RATE_LIMIT_COLUMNS, limit.scope, limit.scope_id,
                               rate_limit_params(limit))
        return limit

    async def list_rate_limits(self, scope: Scope | None = None, scope_id: str | None = None) -> list[RateLimit]:
        where, args = where_sql(("scope = ?", scope), ("scope_id = ?", scope_id))
        rows = await self._query(select_sql("rate_limits", RATE_LIMIT_COLUMNS) + where + " ORDER BY id", *args)
        return [rate_limit_from_row(r) for r in rows]

    async def delete_rate_limit(self, limit_id: str) -> None:
        await self._delete_policy("rate_limits", "rate limit", limit_id)

    async def put_compliance_policy(self, policy: CompliancePolicy,
                                    check: PolicyCheck | None = None) -> CompliancePolicy:
        check_compliance_policy(policy)

        async def checked(c: Conn) -> None:
            assert check is not None
            check([p for p in await _compliance_policies(c) if p.id != policy.id] + [policy])

        await self._put_policy("compliance_policies", COMPLIANCE_COLUMNS, policy.scope, policy.scope_id,
                               compliance_params(policy), None if check is None else checked)
        return policy

    async def list_compliance_policies(self, scope: Scope | None = None,
                                       scope_id: str | None = None) -> list[CompliancePolicy]:
        where, args = where_sql(("scope = ?", scope), ("scope_id = ?", scope_id))
        rows = await self._query(select_sql("compliance_policies", COMPLIANCE_COLUMNS) + where + " ORDER BY id", *args)
        return [compliance_from_row(r) for r in rows]

    async def delete_compliance_policy(self, scope: Scope, scope_id: str, check: PolicyCheck | None = None) -> None:
        policy_id = f"{scope}:{scope_id}"

        async def checked(c: Conn) -> None:
            assert check is not None
            check([p for p in await _compliance_policies(c) if p.id != policy_id])

        await self._delete_policy("compliance_policies", "compliance policy", policy_id,
                                  None if check is None else checked)

    # change detection
    async def version(self) -> int:
        return int((await self._query("SELECT version FROM store_version WHERE id = 1"))[0][0])

    async def snapshot(self) -> Snapshot:
        async with self._transaction("read") as c:
            version = int((await c.fetch("SELECT version FROM store_version WHERE id = 1"))[0][0])
            tenants = await c.fetch(select_sql("tenants", TENANT_COLUMNS) + " ORDER BY id")
            teams = await c.fetch(select_sql("teams", TEAM_COLUMNS) + " ORDER BY id")
            keys = await c.fetch(select_sql("virtual_keys", KEY_COLUMNS) + " ORDER BY id")
            budgets = await c.fetch(select_sql("budgets", BUDGET_COLUMNS) + " ORDER BY id")
            limits = await c.fetch(select_sql("rate_limits", RATE_LIMIT_COLUMNS) + " ORDER BY id")
            compliance = await _compliance_policies(c)
        return Snapshot(version, tuple(map(tenant_from_row, tenants)), tuple(map(team_from_row, teams)),
                        tuple(map(key_from_row, keys)), tuple(map(budget_from_row, budgets)),
                        tuple(map(rate_limit_from_row, limits)), tuple(compliance))

    # the ledger
    async def append_usage(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        sql = insert_sql("usage_ledger", USAGE_COLUMNS) + " ON CONFLICT (request_id) DO NOTHING"
        async with self._transaction("plain") as c:
            await c.executemany(sql, [usage_params(u) for u in records])

    async def usage_records(self, since: float | None = None, until: float | None = None,
                            tenant_id: str | None = None) -> list[UsageRecord]:
        where, args = usage_filter(since, until, tenant_id)
        rows = await self._query(select_sql("usage_ledger", USAGE_COLUMNS) + where + " ORDER BY ts, request_id", *args)
        return [usage_from_row(r) for r in rows]

    async def report(self, query: ReportQuery) -> list[ReportRow]:
        sql, args, dims = report_sql(query, self.day_sql, self.month_sql)
        return report_rows(await self._query(sql, *args), dims)

    async def latency_histogram(self, since: float | None, until: float | None,
                                tenant_id: str | None = None) -> list[int]:
        cases = " ".join(f"WHEN latency_ms < {bound} THEN {i}" for i, bound in enumerate(LATENCY_BUCKETS_MS))
        where, args = where_sql(("ts >= ?", since), ("ts < ?", until), ("tenant_id = ?", tenant_id))
        rows = await self._query(f"SELECT CASE {cases} ELSE {len(LATENCY_BUCKETS_MS)} END AS bucket, COUNT(*)"
                                 f" FROM usage_ledger{where} GROUP BY bucket", *args)
        counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        for bucket, count in rows:
            counts[int(bucket)] = int(count)
        return counts

    async def spend_pico(self, scope: Scope, scope_id: str, since: float) -> int:
        check_scope(scope, scope_id)
        rows = await self._query(f"SELECT COALESCE(SUM(cost_pico), 0) FROM usage_ledger WHERE {SCOPE_COLUMNS[scope]}"
                                 " = ? AND ts >= ?", scope_id, float(since))
        return int(rows[0][0])
