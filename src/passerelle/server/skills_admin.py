"""The skills marketplace in the admin API (admin key only), the same operations as ``passerelle skills``:

    GET  /admin/skills?tenant=&q=&publisher=&tag=&max_risk=&limit=     search (every visible skill without q)
    POST /admin/skills                        publish {tenant, archive_base64 (zip), version?, publisher?,
                                              signature?, visibility?, tags?, display_title?}
    POST /admin/skills/import                 {tenant, path (a folder on this server), visibility?, tags?}
    GET  /admin/skills/{name}?tenant=         the skill, its versions and their risk reports
    POST /admin/skills/{name}/install         {tenant, scope, scope_id?, version?}
    POST /admin/skills/{name}/uninstall       {tenant, scope, scope_id?}
    GET  /admin/skills/{name}/versions/{v}/verify?tenant=
    POST /admin/skills/{name}/versions/{v}/yank  {tenant, undo?}
    GET  /admin/skill-installs?tenant=&team=&key=     what a key (team, tenant) has in effect
    GET|POST /admin/skill-publishers          {tenant, name, public_key}

``tenant`` defaults to ``default``.  Refusals: 400 (invalid skill or archive, with the rules in
``problems``), 404, 409.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from passerelle.admin.service import AdminError, invalid, not_found
from passerelle.server.skills_gateway import registry_for
from passerelle.skills.archive import ArchiveError, read_zip
from passerelle.skills.importer import MarketplaceError, import_skills
from passerelle.skills.records import SearchQuery, Skill, SkillVersion
from passerelle.skills.registry import SkillError, SkillRegistry
from passerelle.stores.base import Conflict, NotFound

if TYPE_CHECKING:
    from passerelle.server.admin import Call

Reply = tuple[int, Any]
DEFAULT_TENANT = "default"


class Publish(msgspec.Struct, forbid_unknown_fields=True):
    archive_base64: str
    tenant: str = DEFAULT_TENANT
    version: str | None = None
    publisher: str | None = None
    signature: str | None = None
    visibility: str = "private"
    tags: list[str] = []
    display_title: str | None = None


class Import(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    tenant: str = DEFAULT_TENANT
    visibility: str = "private"
    tags: list[str] = []


class InstallBody(msgspec.Struct, forbid_unknown_fields=True):
    tenant: str = DEFAULT_TENANT
    scope: str = "tenant"
    scope_id: str | None = None
    version: str | None = None


class Yank(msgspec.Struct, forbid_unknown_fields=True):
    tenant: str = DEFAULT_TENANT
    undo: bool = False


class NewPublisher(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    public_key: str
    tenant: str = DEFAULT_TENANT


def skill_view(s: Skill) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "display_title": s.display_title, "tenant": s.tenant_id,
            "visibility": s.visibility, "latest_version": s.latest_version, "installs": s.install_count,
            "created_at": s.created_at, "updated_at": s.updated_at}


def version_view(v: SkillVersion) -> dict[str, Any]:
    return {"version": v.version, "api_version": v.api_version, "name": v.name, "description": v.description,
            "digest": v.digest, "signed": v.signature is not None, "publisher_id": v.publisher_id,
            "risk_level": v.risk_level, "risk_report": v.risk_report, "tags": list(v.tags), "files": v.file_count,
            "bytes": v.total_bytes, "created_at": v.created_at, "yanked_at": v.yanked_at}


def _guarded(op: Callable[[Call, SkillRegistry], Awaitable[Reply]]) -> Callable[[Call], Awaitable[Reply]]:
    """The registry's refusals as admin errors."""

    async def run(c: Call) -> Reply:
        registry = await registry_for(c.gw)
        try:
            return await op(c, registry)
        except SkillError as exc:
            problems = "; ".join(f"{p.rule} at {p.file}:{p.line or 1}" for p in exc.problems)
            raise invalid(str(exc) if not problems else f"{exc} [{problems}]") from None
        except Conflict as exc:  # before ValueError: Conflict is one
            raise AdminError(409, "invalid_request_error", str(exc)) from None
        except NotFound as exc:
            raise not_found(str(exc)) from None
        except (ArchiveError, MarketplaceError, ValueError) as exc:
            raise invalid(str(exc)) from None

    return run


def _scope_id(body: InstallBody) -> str:
    scope_id = body.scope_id or (body.tenant if body.scope == "tenant" else None)
    if scope_id is None:
        raise invalid(f"scope_id is required with scope {body.scope!r}")
    return scope_id


async def search(c: Call, reg: SkillRegistry) -> Reply:
    q = c.params("tenant", "q", "publisher", "tag", "max_risk", "limit")
    try:
        limit = int(q.get("limit", "20"))
    except ValueError:
        raise invalid("limit must be an integer") from None
    hits = await reg.search(q.get("tenant", DEFAULT_TENANT),
                            SearchQuery(q.get("q", ""), q.get("publisher"), q.get("tag"), q.get("max_risk"), limit))
    return 200, {"data": [{**skill_view(h.skill), "version": version_view(h.version), "publisher": h.publisher,
                           "rank": h.rank} for h in hits]}


async def publish(c: Call, reg: SkillRegistry) -> Reply:
    c.params()
    body = await c.body(Publish)
    try:
        archive = base64.b64decode(body.archive_base64, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("archive_base64 is not base64") from None
    files = read_zip(archive, reg.policy.limits)
    if body.visibility not in ("private", "shared"):
        raise invalid("visibility must be private or shared")
    v = await reg.publish(body.tenant, files, version=body.version, publisher=body.publisher,
                          signature=body.signature, visibility=body.visibility,  # type: ignore[arg-type]
                          tags=body.tags, display_title=body.display_title)
    return 201, version_view(v)


async def import_(c: Call, reg: SkillRegistry) -> Reply:
    c.params()
    body = await c.body(Import)
    if body.visibility not in ("private", "shared"):
        raise invalid("visibility must be private or shared")
    results = await import_skills(reg, body.tenant, Path(body.path), visibility=body.visibility,  # type: ignore[arg-type]
                                  tags=body.tags)
    return 200, {"data": [asdict(r) for r in results]}


async def show(c: Call, reg: SkillRegistry) -> Reply:
    q = c.params("tenant")
    skill, versions = await reg.show(q.get("tenant", DEFAULT_TENANT), c.args[0])
    return 200, {**skill_view(skill), "versions": [version_view(v) for v in versions]}


async def install(c: Call, reg: SkillRegistry) -> Reply:
    c.params()
    body = await c.body(InstallBody)
    done = await reg.install(body.tenant, body.scope, _scope_id(body), c.args[0], body.version)
    return 201, asdict(done)


async def uninstall(c: Call, reg: SkillRegistry) -> Reply:
    c.params()
    body = await c.body(InstallBody)
    if not await reg.uninstall(body.tenant, body.scope, _scope_id(body), c.args[0]):
        raise not_found(f"{c.args[0]} is not installed for {body.scope} {_scope_id(body)}")
    return 200, {"name": c.args[0], "uninstalled": True}


async def verify(c: Call, reg: SkillRegistry) -> Reply:
    q = c.params("tenant")
    result = await reg.verify(q.get("tenant", DEFAULT_TENANT), c.args[0], c.args[1])
    return 200, {**asdict(result), "ok": result.ok}


async def yank(c: Call, reg: SkillRegistry) -> Reply:
    c.params()
    body = await c.body(Yank)
    return 200, version_view(await reg.yank(body.tenant, c.args[0], c.args[1], undo=body.undo))


async def installs(c: Call, reg: SkillRegistry) -> Reply:
    q = c.params("tenant", "team", "key")
    rows = await reg.installs(q.get("tenant", DEFAULT_TENANT), q.get("team"), q.get("key"))
    return 200, {"data": [{**asdict(i), "name": s.name, "version": v.version} for i, s, v in rows]}


async def publishers(c: Call, reg: SkillRegistry) -> Reply:
    q = c.params("tenant")
    found = await reg.store.list_publishers(q.get("tenant", DEFAULT_TENANT))
    return 200, {"data": [asdict(p) for p in found]}


async def add_publisher(c: Call, reg: SkillRegistry) -> Reply:
    c.params()
    body = await c.body(NewPublisher)
    return 201, asdict(await reg.add_publisher(body.tenant, body.name, body.public_key))


ROUTES: list[tuple[tuple[str, ...], dict[str, Callable[[Call], Awaitable[Reply]]]]] = [
    (("skills",), {"GET": _guarded(search), "POST": _guarded(publish)}),
    (("skills", "import"), {"POST": _guarded(import_)}),
    (("skills", "*"), {"GET": _guarded(show)}),
    (("skills", "*", "install"), {"POST": _guarded(install)}),
    (("skills", "*", "uninstall"), {"POST": _guarded(uninstall)}),
    (("skills", "*", "versions", "*", "verify"), {"GET": _guarded(verify)}),
    (("skills", "*", "versions", "*", "yank"), {"POST": _guarded(yank)}),
    (("skill-installs",), {"GET": _guarded(installs)}),
    (("skill-publishers",), {"GET": _guarded(publishers), "POST": _guarded(add_publisher)}),
]
