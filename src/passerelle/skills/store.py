"""The skills store: one narrow interface, its logic written once over a three-method connection
(as ``stores/sql_store.py``); ``SQLiteSkillStore`` and ``PostgresSkillStore`` supply transactions and
their full-text search SQL (search.py).

Rules kept here, the same on both backends: a version is written once (``Conflict`` on a second
publish of the same semver); yanking only sets ``yanked_at``; the search index holds one row per
skill, its latest installable version, rewritten whenever that changes.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import ClassVar, Protocol

from passerelle.skills.records import Install, Publisher, SearchHit, SearchQuery, Skill, SkillVersion
from passerelle.skills.search import SearchDialect
from passerelle.stores.base import Conflict, NotFound
from passerelle.stores.sql_common import Row, insert_sql

PUBLISHER_COLUMNS = ("id", "tenant_id", "name", "public_key", "created_at")
SKILL_COLUMNS = ("id", "tenant_id", "name", "display_title", "visibility", "latest_version", "created_at",
                 "updated_at")
VERSION_COLUMNS = ("skill_id", "version", "api_version", "name", "description", "digest", "signature",
                   "publisher_id", "risk_level", "risk_report", "tags", "file_count", "total_bytes", "created_at",
                   "yanked_at")
INSTALL_COLUMNS = ("id", "tenant_id", "scope", "scope_id", "skill_id", "pin", "created_at")
_INSTALLS = "(SELECT COUNT(*) FROM skill_installs i WHERE i.skill_id = s.id)"
SKILL_SELECT = f"SELECT {', '.join('s.' + c for c in SKILL_COLUMNS)}, {_INSTALLS} FROM skills s"
VERSION_SELECT = f"SELECT {', '.join('v.' + c for c in VERSION_COLUMNS)} FROM skill_versions v"


class Conn(Protocol):
    async def fetch(self, sql: str, *args: object) -> list[Row]: ...
    async def execute(self, sql: str, *args: object) -> None: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


def publisher_from_row(r: Row) -> Publisher:
    return Publisher(r[0], r[1], r[2], r[3], float(r[4]))


def skill_from_row(r: Row) -> Skill:
    return Skill(r[0], r[1], r[2], r[3], r[4], r[5], float(r[6]), float(r[7]), int(r[8]))


def version_from_row(r: Row) -> SkillVersion:
    return SkillVersion(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9]),
                        tuple(json.loads(r[10])), int(r[11]), int(r[12]), float(r[13]),
                        None if r[14] is None else float(r[14]))


def version_params(v: SkillVersion) -> tuple[object, ...]:
    return (v.skill_id, v.version, v.api_version, v.name, v.description, v.digest, v.signature, v.publisher_id,
            v.risk_level, json.dumps(v.risk_report, sort_keys=True), json.dumps(list(v.tags)), v.file_count,
            v.total_bytes, float(v.created_at), v.yanked_at)


class SkillStore(Protocol):
    async def aclose(self) -> None: ...
    # publishers (per tenant)
    async def add_publisher(self, publisher: Publisher) -> Publisher: ...  # Conflict on (tenant, name)
    async def list_publishers(self, tenant_id: str) -> list[Publisher]: ...
    async def get_publisher(self, publisher_id: str) -> Publisher: ...  # NotFound
    # skills and versions
    async def create_skill(self, skill: Skill) -> Skill: ...  # Conflict on (tenant, name)
    async def get_skill(self, skill_id: str) -> Skill: ...  # NotFound
    async def visible_skills(self, tenant_id: str, name: str | None = None) -> list[Skill]: ...
    async def add_version(self, version: SkillVersion, body: str, files: dict[str, bytes]) -> None: ...
    async def get_version(self, skill_id: str, version: str) -> SkillVersion: ...  # by semver or api_version
    async def list_versions(self, skill_id: str) -> list[SkillVersion]: ...
    async def set_yanked(self, skill_id: str, version: str, at: float | None) -> None: ...
    async def set_latest(self, skill_id: str, latest: str | None, body: str | None, at: float) -> None: ...
    async def delete_version(self, skill_id: str, version: str) -> None: ...
    async def delete_skill(self, skill_id: str) -> None: ...  # Conflict while installed
    async def read_files(self, skill_id: str, version: str) -> dict[str, bytes]: ...
    async def read_file(self, skill_id: str, version: str, path: str) -> bytes | None: ...
    async def file_hashes(self, skill_id: str, version: str) -> dict[str, tuple[int, str]]: ...
    async def body(self, skill_id: str, version: str) -> str: ...
    # installs
    async def put_install(self, install: Install) -> Install: ...  # replaces the same (scope, scope_id, skill)
    async def delete_install(self, scope: str, scope_id: str, skill_id: str) -> bool: ...
    async def list_installs(self, scopes: Sequence[tuple[str, str]] = (),
                            skill_id: str | None = None) -> list[Install]: ...  # either filter
    # search
    async def search(self, tenant_id: str, query: SearchQuery) -> list[SearchHit]: ...


class SQLSkillStore(ABC):
    dialect: ClassVar[SearchDialect]

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Conn]: ...

    @abstractmethod
    async def _query(self, sql: str, *args: object) -> list[Row]: ...

    # publishers
    async def add_publisher(self, publisher: Publisher) -> Publisher:
        async with self._transaction() as c:
            if await c.fetch("SELECT 1 FROM skill_publishers WHERE id = ? OR (tenant_id = ? AND name = ?)",
                             publisher.id, publisher.tenant_id, publisher.name):
                raise Conflict(f"publisher {publisher.name!r} already exists in tenant {publisher.tenant_id!r}")
            await c.execute(insert_sql("skill_publishers", PUBLISHER_COLUMNS), publisher.id, publisher.tenant_id,
                            publisher.name, publisher.public_key, float(publisher.created_at))
        return publisher

    async def list_publishers(self, tenant_id: str) -> list[Publisher]:
        rows = await self._query(f"SELECT {', '.join(PUBLISHER_COLUMNS)} FROM skill_publishers WHERE tenant_id = ?"
                                 " ORDER BY name", tenant_id)
        return [publisher_from_row(r) for r in rows]

    async def get_publisher(self, publisher_id: str) -> Publisher:
        rows = await self._query(f"SELECT {', '.join(PUBLISHER_COLUMNS)} FROM skill_publishers WHERE id = ?",
                                 publisher_id)
        if not rows:
            raise NotFound(f"publisher {publisher_id!r} not found")
        return publisher_from_row(rows[0])

    # skills
    async def create_skill(self, skill: Skill) -> Skill:
        async with self._transaction() as c:
            if await c.fetch("SELECT 1 FROM skills WHERE id = ? OR (tenant_id = ? AND name = ?)",
                             skill.id, skill.tenant_id, skill.name):
                raise Conflict(f"skill {skill.name!r} already exists in tenant {skill.tenant_id!r}")
            if skill.visibility == "shared" and await c.fetch(
                    "SELECT 1 FROM skills WHERE visibility = 'shared' AND name = ?", skill.name):
                raise Conflict(f"a shared skill named {skill.name!r} already exists")
            await c.execute(insert_sql("skills", SKILL_COLUMNS), skill.id, skill.tenant_id, skill.name,
                            skill.display_title, skill.visibility, skill.latest_version, float(skill.created_at),
                            float(skill.updated_at))
        return skill

    async def get_skill(self, skill_id: str) -> Skill:
        rows = await self._query(f"{SKILL_SELECT} WHERE s.id = ?", skill_id)
        if not rows:
            raise NotFound(f"skill {skill_id!r} not found")
        return skill_from_row(rows[0])

    async def visible_skills(self, tenant_id: str, name: str | None = None) -> list[Skill]:
        """The tenant's own skills then the shared ones, by name."""
        sql = f"{SKILL_SELECT} WHERE (s.tenant_id = ? OR s.visibility = 'shared')"
        args: list[object] = [tenant_id]
        if name is not None:
            sql += " AND s.name = ?"
            args.append(name)
        rows = await self._query(sql, *args)
        skills = [skill_from_row(r) for r in rows]
        skills.sort(key=lambda s: (s.name, s.tenant_id != tenant_id, s.id))
        return skills

    async def add_version(self, version: SkillVersion, body: str, files: dict[str, bytes]) -> None:
        async with self._transaction() as c:
            if await c.fetch("SELECT 1 FROM skill_versions WHERE skill_id = ? AND (version = ? OR api_version = ?)",
                             version.skill_id, version.version, version.api_version):
                raise Conflict(f"version {version.version} of this skill already exists: versions are immutable")
            await c.execute(insert_sql("skill_versions", (*VERSION_COLUMNS, "body")), *version_params(version), body)
            await c.executemany(insert_sql("skill_files", ("skill_id", "version", "path", "size", "sha256",
                                                           "content")),
                                [(version.skill_id, version.version, path, len(data),
                                  hashlib.sha256(data).hexdigest(), data) for path, data in sorted(files.items())])

    async def get_version(self, skill_id: str, version: str) -> SkillVersion:
        rows = await self._query(f"{VERSION_SELECT} WHERE v.skill_id = ? AND (v.version = ? OR v.api_version = ?)",
                                 skill_id, version, version)
        if not rows:
            raise NotFound(f"version {version!r} of skill {skill_id!r} not found")
        return version_from_row(rows[0])

    async def list_versions(self, skill_id: str) -> list[SkillVersion]:
        rows = await self._query(f"{VERSION_SELECT} WHERE v.skill_id = ? ORDER BY v.created_at, v.api_version",
                                 skill_id)
        return [version_from_row(r) for r in rows]

    async def set_yanked(self, skill_id: str, version: str, at: float | None) -> None:
        async with self._transaction() as c:
            if not await c.fetch("SELECT 1 FROM skill_versions WHERE skill_id = ? AND version = ?", skill_id, version):
                raise NotFound(f"version {version!r} of skill {skill_id!r} not found")
            await c.execute("UPDATE skill_versions SET yanked_at = ? WHERE skill_id = ? AND version = ?",
                            at, skill_id, version)

    async def set_latest(self, skill_id: str, latest: str | None, body: str | None, at: float) -> None:
        """Point the skill at its latest installable version and rewrite its search row and tags."""
        async with self._transaction() as c:
            await c.execute("UPDATE skills SET latest_version = ?, updated_at = ? WHERE id = ?", latest, at, skill_id)
            await c.execute("DELETE FROM skill_search WHERE skill_id = ?", skill_id)
            await c.execute("DELETE FROM skill_tags WHERE skill_id = ?", skill_id)
            if latest is None:
                return
            rows = await c.fetch("SELECT s.name, v.description, v.tags FROM skills s JOIN skill_versions v"
                                 " ON v.skill_id = s.id WHERE s.id = ? AND v.version = ?", skill_id, latest)
            name, description, tags = rows[0]
            await c.execute("INSERT INTO skill_search (skill_id, name, description, body) VALUES (?, ?, ?, ?)",
                            skill_id, name, description, body or "")
            await c.executemany("INSERT INTO skill_tags (skill_id, tag) VALUES (?, ?)",
                                [(skill_id, tag) for tag in json.loads(tags)])

    async def delete_version(self, skill_id: str, version: str) -> None:
        async with self._transaction() as c:
            await c.execute("DELETE FROM skill_files WHERE skill_id = ? AND version = ?", skill_id, version)
            await c.execute("DELETE FROM skill_versions WHERE skill_id = ? AND version = ?", skill_id, version)

    async def delete_skill(self, skill_id: str) -> None:
        async with self._transaction() as c:
            if await c.fetch("SELECT 1 FROM skill_installs WHERE skill_id = ?", skill_id):
                raise Conflict("the skill is installed: uninstall it first")
            for table in ("skill_files", "skill_versions", "skill_tags", "skill_search"):
                await c.execute(f"DELETE FROM {table} WHERE skill_id = ?", skill_id)
            await c.execute("DELETE FROM skills WHERE id = ?", skill_id)

    async def read_files(self, skill_id: str, version: str) -> dict[str, bytes]:
        rows = await self._query("SELECT path, content FROM skill_files WHERE skill_id = ? AND version = ?",
                                 skill_id, version)
        return {r[0]: bytes(r[1]) for r in rows}

    async def read_file(self, skill_id: str, version: str, path: str) -> bytes | None:
        rows = await self._query("SELECT content FROM skill_files WHERE skill_id = ? AND version = ? AND path = ?",
                                 skill_id, version, path)
        return bytes(rows[0][0]) if rows else None

    async def file_hashes(self, skill_id: str, version: str) -> dict[str, tuple[int, str]]:
        rows = await self._query("SELECT path, size, sha256 FROM skill_files WHERE skill_id = ? AND version = ?",
                                 skill_id, version)
        return {r[0]: (int(r[1]), r[2]) for r in rows}

    async def body(self, skill_id: str, version: str) -> str:
        rows = await self._query("SELECT body FROM skill_versions WHERE skill_id = ? AND version = ?",
                                 skill_id, version)
        return str(rows[0][0]) if rows else ""

    # installs
    async def put_install(self, install: Install) -> Install:
        async with self._transaction() as c:
            await c.execute("DELETE FROM skill_installs WHERE scope = ? AND scope_id = ? AND skill_id = ?",
                            install.scope, install.scope_id, install.skill_id)
            await c.execute(insert_sql("skill_installs", INSTALL_COLUMNS), install.id, install.tenant_id,
                            install.scope, install.scope_id, install.skill_id, install.pin,
                            float(install.created_at))
        return install

    async def delete_install(self, scope: str, scope_id: str, skill_id: str) -> bool:
        async with self._transaction() as c:
            found = await c.fetch("SELECT 1 FROM skill_installs WHERE scope = ? AND scope_id = ? AND skill_id = ?",
                                  scope, scope_id, skill_id)
            await c.execute("DELETE FROM skill_installs WHERE scope = ? AND scope_id = ? AND skill_id = ?",
                            scope, scope_id, skill_id)
        return bool(found)

    async def list_installs(self, scopes: Sequence[tuple[str, str]] = (),
                            skill_id: str | None = None) -> list[Install]:
        if skill_id is not None:
            where, args = "skill_id = ?", [skill_id]
        elif scopes:
            where = " OR ".join("(scope = ? AND scope_id = ?)" for _ in scopes)
            args = [v for pair in scopes for v in pair]
        else:
            return []
        rows = await self._query(f"SELECT {', '.join(INSTALL_COLUMNS)} FROM skill_installs WHERE {where}"
                                 " ORDER BY created_at, id", *args)
        return [Install(r[0], r[1], r[2], r[3], r[4], r[5], float(r[6])) for r in rows]

    # search
    async def search(self, tenant_id: str, query: SearchQuery) -> list[SearchHit]:
        sql, args = self.dialect.sql(tenant_id, query, SKILL_COLUMNS, VERSION_COLUMNS, _INSTALLS)
        rows = await self._query(sql, *args)
        n_skill, n_version = len(SKILL_COLUMNS) + 1, len(VERSION_COLUMNS)
        return [SearchHit(skill_from_row(r[:n_skill]), version_from_row(r[n_skill:n_skill + n_version]),
                          float(r[n_skill + n_version]), r[n_skill + n_version + 1]) for r in rows]

