"""What the SQL stores share below the store logic: validation, row <-> record conversion, and
the SQL of filters and reports.  SQL here uses ``?`` placeholders (PostgreSQL's side numbers them)
and only syntax both backends accept (``ON CONFLICT``, ``COALESCE``, positional ``GROUP BY``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from passerelle.stores.records import (
    REPORT_DIMENSIONS,
    Budget,
    CompliancePolicy,
    RateLimit,
    ReportQuery,
    ReportRow,
    Team,
    Tenant,
    UsageRecord,
    VirtualKey,
    usd_to_pico,
)

Row = Sequence[Any]

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_OPAQUE_ID = re.compile(r"[!-~]{1,128}")  # key, budget and rate-limit ids: printable ASCII, no space
SCOPE_TABLES: dict[str, str] = {"key": "virtual_keys", "team": "teams", "tenant": "tenants"}
SCOPE_COLUMNS: dict[str, str] = {"key": "key_id", "team": "team_id", "tenant": "tenant_id"}


# -- validation -----------------------------------------------------------------------------------

def check_tenant_id(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not SLUG.fullmatch(tenant_id):
        raise ValueError(f"invalid tenant id {tenant_id!r}: expected [a-z0-9][a-z0-9_-]{{0,62}}")
    return tenant_id


def check_team_id(team_id: str, tenant_id: str | None = None) -> str:
    tenant, sep, slug = team_id.partition("/") if isinstance(team_id, str) else ("", "", "")
    if not sep or not SLUG.fullmatch(tenant) or not SLUG.fullmatch(slug):
        raise ValueError(f"invalid team id {team_id!r}: expected <tenant>/<slug>")
    if tenant_id is not None and tenant != tenant_id:
        raise ValueError(f"team {team_id!r} does not belong to tenant {tenant_id!r}")
    return team_id


def _check_opaque(kind: str, value: str) -> None:
    if not isinstance(value, str) or not _OPAQUE_ID.fullmatch(value):
        raise ValueError(f"invalid {kind} id {value!r}")


def _check_strings(what: str, values: object) -> None:
    if not isinstance(values, tuple) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{what} must be a tuple of strings")


def _check_metadata(metadata: object) -> None:
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise ValueError("metadata must map strings to strings")


def check_scope(scope: str, scope_id: str) -> None:
    if scope not in SCOPE_TABLES:
        raise ValueError(f"invalid scope {scope!r}: expected key, team or tenant")
    if not isinstance(scope_id, str) or not scope_id:
        raise ValueError("scope_id must be a non-empty string")


def check_tenant(tenant: Tenant) -> None:
    check_tenant_id(tenant.id)
    _check_metadata(tenant.metadata)


def check_team(team: Team) -> None:
    check_team_id(team.id, team.tenant_id)  # its tenant part is a valid slug equal to tenant_id
    _check_metadata(team.metadata)


def check_key(key: VirtualKey) -> None:
    _check_opaque("key", key.id)
    if not isinstance(key.key_sha256, str) or not _SHA256.fullmatch(key.key_sha256):
        raise ValueError("key_sha256 must be a lowercase hex SHA-256 digest")
    check_tenant_id(key.tenant_id)
    if key.team_id is not None:
        check_team_id(key.team_id, key.tenant_id)
    _check_strings("models", key.models)
    _check_strings("routes", key.routes)
    _check_metadata(key.metadata)


def check_budget(budget: Budget) -> None:
    _check_opaque("budget", budget.id)
    check_scope(budget.scope, budget.scope_id)
    if budget.period not in ("day", "month", "total"):
        raise ValueError(f"invalid budget period {budget.period!r}")
    if budget.mode not in ("hard", "soft"):
        raise ValueError(f"invalid budget mode {budget.mode!r}")
    limit = budget.limit_usd
    if not isinstance(limit, Decimal) or not limit.is_finite() or limit < 0:
        raise ValueError(f"invalid budget limit {limit!r}: expected a finite, non-negative Decimal")
    usd_to_pico(limit)  # raises when finer than a pico-dollar: budgets are enforced in pico-dollars


def check_rate_limit(limit: RateLimit) -> None:
    _check_opaque("rate limit", limit.id)
    check_scope(limit.scope, limit.scope_id)
    for name in ("rpm", "tpm", "concurrent"):
        value = getattr(limit, name)
        if value is not None and (type(value) is not int or value < 1):
            raise ValueError(f"rate limit {name} must be a positive integer or None, not {value!r}")


# -- rows <-> records (column order = the SELECT lists below) -------------------------------------

def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


TENANT_COLUMNS = ("id", "name", "created_at", "metadata")
TEAM_COLUMNS = ("id", "tenant_id", "name", "created_at", "metadata")
KEY_COLUMNS = ("id", "key_sha256", "prefix", "name", "tenant_id", "team_id", "created_at", "models", "routes",
               "expires_at", "revoked_at", "metadata")
BUDGET_COLUMNS = ("id", "scope", "scope_id", "period", "limit_usd", "mode", "webhook", "created_at")
COMPLIANCE_COLUMNS = ("id", "scope", "scope_id", "packs", "overrides", "codewords", "updated_at")
RATE_LIMIT_COLUMNS = ("id", "scope", "scope_id", "model", "rpm", "tpm", "concurrent", "created_at")
USAGE_COLUMNS = tuple(f.name for f in dataclasses.fields(UsageRecord))
_USAGE_FLOATS = frozenset({"ts", "latency_ms"})
_USAGE_BOOLS = frozenset({"usage_estimated", "cache_hit"})


def tenant_params(t: Tenant) -> tuple[object, ...]:
    return t.id, t.name, float(t.created_at), _json(t.metadata)


def tenant_from_row(r: Row) -> Tenant:
    return Tenant(r[0], r[1], r[2], json.loads(r[3]))


def team_params(t: Team) -> tuple[object, ...]:
    return t.id, t.tenant_id, t.name, float(t.created_at), _json(t.metadata)


def team_from_row(r: Row) -> Team:
    return Team(r[0], r[1], r[2], r[3], json.loads(r[4]))


def key_params(k: VirtualKey) -> tuple[object, ...]:
    return (k.id, k.key_sha256, k.prefix, k.name, k.tenant_id, k.team_id, float(k.created_at), _json(list(k.models)),
            _json(list(k.routes)), _opt_float(k.expires_at), _opt_float(k.revoked_at), _json(k.metadata))


def key_from_row(r: Row) -> VirtualKey:
    return VirtualKey(id=r[0], key_sha256=r[1], prefix=r[2], name=r[3], tenant_id=r[4], team_id=r[5],
                      created_at=r[6], models=tuple(json.loads(r[7])), routes=tuple(json.loads(r[8])),
                      expires_at=r[9], revoked_at=r[10], metadata=json.loads(r[11]))


def budget_params(b: Budget, money: object) -> tuple[object, ...]:
    return b.id, b.scope, b.scope_id, b.period, money, b.mode, b.webhook, float(b.created_at)


def budget_from_row(r: Row) -> Budget:
    # Decimal(str) for SQLite's TEXT, Decimal(Decimal) for PostgreSQL's NUMERIC: exact both ways.
    return Budget(r[0], r[1], r[2], r[3], Decimal(r[4]), r[5], r[6], r[7])


def check_compliance_policy(p: CompliancePolicy) -> None:
    if p.scope not in ("tenant", "key"):
        raise ValueError(f"invalid scope {p.scope!r}: a compliance policy is on a tenant or a key")
    check_scope(p.scope, p.scope_id)
    words = [*(p.packs or ()), *p.overrides, *p.overrides.values(), *p.codewords]
    if not all(isinstance(w, str) and w for w in words):
        raise ValueError("packs, overrides and codewords must be non-empty strings")


def compliance_params(p: CompliancePolicy) -> tuple[object, ...]:
    packs = None if p.packs is None else _json(list(p.packs))
    return p.id, p.scope, p.scope_id, packs, _json(p.overrides), _json(list(p.codewords)), float(p.updated_at)


def compliance_from_row(r: Row) -> CompliancePolicy:
    packs = None if r[3] is None else tuple(json.loads(r[3]))
    return CompliancePolicy(r[1], r[2], packs, dict(json.loads(r[4])), tuple(json.loads(r[5])), float(r[6]))


def rate_limit_params(x: RateLimit) -> tuple[object, ...]:
    return x.id, x.scope, x.scope_id, x.model, x.rpm, x.tpm, x.concurrent, float(x.created_at)


def rate_limit_from_row(r: Row) -> RateLimit:
    return RateLimit(*r)


def usage_params(u: UsageRecord) -> tuple[object, ...]:
    return tuple(float(getattr(u, c)) if c in _USAGE_FLOATS else bool(getattr(u, c)) if c in _USAGE_BOOLS
                 else getattr(u, c) for c in USAGE_COLUMNS)


def usage_from_row(r: Row) -> UsageRecord:
    # SQLite returns BOOLEAN columns as 0/1.
    values: list[Any] = [bool(v) if c in _USAGE_BOOLS else v for c, v in zip(USAGE_COLUMNS, r, strict=True)]
    return UsageRecord(*values)


def select_sql(table: str, columns: Sequence[str]) -> str:
    return f"SELECT {', '.join(columns)} FROM {table}"


def insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def upsert_sql(table: str, columns: Sequence[str]) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    return f"{insert_sql(table, columns)} ON CONFLICT (id) DO UPDATE SET {updates}"


def where_sql(*conditions: tuple[str, object]) -> tuple[str, list[object]]:
    """``" WHERE a = ? AND ..."`` over the conditions whose value is not None."""
    used = [(clause, value) for clause, value in conditions if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(clause for clause, _ in used), [value for _, value in used]


# -- reports ----------------------------------------------------------------------------------------

_DIMENSION_COLUMNS = {"tenant": "tenant_id", "team": "team_id", "key": "key_id", "model": "model",
                      "deployment": "deployment", "provider": "provider", "route": "route", "status": "status",
                      "cache_hit": "cache_hit"}
_SUMS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "thinking_tokens", "cost_pico",
         "saved_pico")
_AGGREGATES = ("COUNT(*)", "COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0)",
               "COALESCE(SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0)",
               *(f"COALESCE(SUM({c}), 0)" for c in _SUMS))


def check_dimensions(by: Sequence[str]) -> tuple[str, ...]:
    for name in by:
        if name not in REPORT_DIMENSIONS:
            raise ValueError(f"unknown report dimension {name!r}: expected one of {', '.join(REPORT_DIMENSIONS)}")
    return tuple(dict.fromkeys(by))  # a dimension named twice groups once


def usage_filter(since: float | None, until: float | None, tenant_id: str | None) -> tuple[str, list[object]]:
    return where_sql(("ts >= ?", None if since is None else float(since)),
                  ("ts < ?", None if until is None else float(until)), ("tenant_id = ?", tenant_id))


def report_sql(query: ReportQuery, day_sql: str, month_sql: str) -> tuple[str, list[object], tuple[str, ...]]:
    dims = check_dimensions(query.by)
    exprs = [day_sql if d == "day" else month_sql if d == "month" else _DIMENSION_COLUMNS[d] for d in dims]
    where, args = usage_filter(query.since, query.until, query.tenant_id)
    group = " GROUP BY " + ", ".join(str(i) for i in range(1, len(exprs) + 1)) if exprs else ""
    if query.top is not None and exprs:  # the biggest groups only, chosen by the database
        group += " ORDER BY COUNT(*) DESC, 1 LIMIT ?"
        args.append(int(query.top))
    return f"SELECT {', '.join([*exprs, *_AGGREGATES])} FROM usage_ledger{where}{group}", args, dims


def _group_value(dim: str, value: Any) -> str | None:
    if value is None:
        return None
    if dim == "cache_hit":
        return "true" if value else "false"
    return str(value)


def report_rows(rows: Sequence[Row], dims: tuple[str, ...]) -> list[ReportRow]:
    out = []
    for r in rows:
        group = {d: _group_value(d, r[i]) for i, d in enumerate(dims)}
        # PostgreSQL's SUM(bigint) is numeric (a Decimal): int() keeps it exact.
        n = [int(v) for v in r[len(dims):]]
        out.append(ReportRow(group, n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8], n[9]))
    # Sorted here rather than in SQL: the same order on both backends whatever the collation (None first).
    out.sort(key=lambda row: tuple((0, "") if row.group[d] is None else (1, row.group[d]) for d in dims))
    return out
