"""The skills registry: publish, sign, verify, yank, install, search, and what the gateway reads.

Publishing validates SKILL.md strictly, computes the content digest, checks the publisher's Ed25519
signature against the key registered for the tenant, scans every file for risks, and stores the
version immutably with its risk report.  Installs are per tenant, team or key, pinned to a version
or following the latest release; the most specific install of a skill wins (key, then team, then
tenant).  A yanked version is hidden from new installs and from channel followers, while installs
pinned to it keep working.  ``SkillsPolicy`` decides whether high-risk or unsigned versions may be
installed at all.

Callers authorize: the owning tenant alone changes a skill; every method takes the acting tenant.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from passerelle.observability.logging import log
from passerelle.skills.archive import ArchiveError, FileSet, Limits, check_path
from passerelle.skills.manifest import digest as content_digest
from passerelle.skills.manifest import entries
from passerelle.skills.records import (
    INSTALL_SCOPES,
    Install,
    InstallScope,
    Publisher,
    SearchHit,
    SearchQuery,
    Skill,
    SkillVersion,
    Visibility,
    check_semver,
    is_prerelease,
    semver_key,
)
from passerelle.skills.risk import scan_files
from passerelle.skills.spec import Problem, validate_files
from passerelle.skills.store import SkillStore
from passerelle.stores.base import Conflict, NotFound
from passerelle.stores.sql_common import SLUG, check_team_id, check_tenant_id

Effective = tuple[Install, Skill, SkillVersion]
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghijkmnopqrstuvwxyz"
_TAG = SLUG


def _signing() -> ModuleType:
    """``signing`` pulls in ``cryptography`` (~6 MB in every worker): imported when a key or signature is
    first handled, not by every gateway process that only serves installed skills."""
    from passerelle.skills import signing

    return signing


class SkillError(ValueError):
    """A refused operation; ``problems`` lists SKILL.md rule failures when there are some."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class Actor(Protocol):
    """Who asks: the gateway's ``Principal`` satisfies it."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def team_id(self) -> str | None: ...
    @property
    def key_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SkillsPolicy:
    allow_high_risk: bool = False  # may a version whose risk report is high be installed?
    require_signature: bool = False  # refuse to publish unsigned versions
    max_load_bytes: int = 200_000  # read_skill_file returns at most this much of a file
    # enabled_skills answers are reused this long; past it the next request still gets them while they are read again
    # in the background (other instances' writes show after it), unless they are older than STALE_LIMIT TTLs.
    catalog_ttl_s: float = 5.0
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True, slots=True)
class SkillSummary:
    name: str
    description: str
    version: str
    skill_id: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    skill_id: str
    version: str
    digest: str  # the stored one
    recomputed: str  # over the stored files now
    signature: str  # valid | invalid | unsigned
    tampered_files: list[str]

    @property
    def ok(self) -> bool:
        return self.digest == self.recomputed and not self.tampered_files and self.signature != "invalid"


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


_Scope = tuple[str, str | None, str | None]  # tenant, team, key
STALE_LIMIT = 10  # catalog TTLs after which a cached answer is no longer served while it is read again


class SkillRegistry:
    def __init__(self, store: SkillStore, policy: SkillsPolicy | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.policy = policy or SkillsPolicy()
        self._clock = clock
        # (tenant, team, key) -> (when, effective installs): the request path asks on every request.
        self._effective: dict[_Scope, tuple[float, list[Effective]]] = {}
        self._refreshing: dict[_Scope, asyncio.Task[None]] = {}
        self._generation = 0  # moves on every write here: a read begun before it is not kept

    def _changed(self) -> None:
        self._generation += 1
        self._effective.clear()

    async def aclose(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)
        await self.store.aclose()

    # publishers
    async def add_publisher(self, tenant_id: str, name: str, public_key: str) -> Publisher:
        check_tenant_id(tenant_id)
        if not isinstance(name, str) or not SLUG.fullmatch(name):
            raise SkillError(f"invalid publisher name {str(name)[:70]!r}: expected [a-z0-9][a-z0-9_-]{{0,62}}")
        try:
            key = _signing().check_public(public_key)
        except _signing().SigningKeyError as exc:
            raise SkillError(str(exc)) from None
        return await self.store.add_publisher(Publisher(new_id("pub_"), tenant_id, name, key, self._clock()))

    async def _publisher(self, tenant_id: str, name: str) -> Publisher:
        for publisher in await self.store.list_publishers(tenant_id):
            if publisher.name == name:
                return publisher
        raise NotFound(f"publisher {name!r} is not registered in tenant {tenant_id!r}")

    # publishing
    async def publish(self, tenant_id: str, files: FileSet, *, version: str | None = None,
                      publisher: str | None = None, signature: str | None = None,
                      visibility: Visibility = "private", tags: Sequence[str] = (),
                      display_title: str | None = None, skill_id: str | None = None,
                      new_skill: bool = False) -> SkillVersion:
        """A new version of the tenant's skill named in SKILL.md (created on first publish).  ``skill_id``:
        the upload must be a version of that skill (same name); ``new_skill``: refuse an existing name."""
        check_tenant_id(tenant_id)
        if visibility not in ("private", "shared"):
            raise SkillError(f"invalid visibility {visibility!r}: expected private or shared")
        for tag in tags:
            if not isinstance(tag, str) or not _TAG.fullmatch(tag):
                raise SkillError(f"invalid tag {str(tag)[:70]!r}: expected [a-z0-9][a-z0-9_-]{{0,62}}")
        doc = validate_files(files.files, files.root, "strict")
        if doc.errors:
            raise SkillError("SKILL.md does not follow the Agent Skills specification: "
                             + "; ".join(str(p) for p in doc.errors), doc.errors)
        assert doc.name is not None and doc.description is not None
        digest = content_digest(files.files)
        publisher_id = await self._check_signature(tenant_id, digest, publisher, signature)
        owned = [s for s in await self.store.visible_skills(tenant_id, doc.name) if s.tenant_id == tenant_id]
        now = self._clock()
        skill = owned[0] if owned else None
        if skill_id is not None and (skill is None or skill.id != skill_id):
            target = await self.owned(tenant_id, skill_id)
            raise SkillError(f"SKILL.md names {doc.name!r} but skill {skill_id} is {target.name!r}: every version "
                             "of a skill keeps its name")
        if new_skill and skill is not None:
            raise Conflict(f"a skill named {doc.name!r} already exists ({skill.id}): add a version to it instead")
        if skill is None:
            skill = await self.store.create_skill(Skill(new_id("skill_01"), tenant_id, doc.name,
                                                        display_title or doc.name, visibility, None, now, now))
        existing = await self.store.list_versions(skill.id)
        version = self._next_version(version, doc.metadata.get("version"), existing)
        api_version = str(max([int(now * 1_000_000), *(int(v.api_version) + 1 for v in existing)]))
        report = await asyncio.to_thread(scan_files, files.files)  # Hyperscan plus regexes: off the event loop
        record = SkillVersion(skill.id, version, api_version, doc.name, doc.description, digest, signature,
                              publisher_id, report.level, report.as_dict(), tuple(dict.fromkeys(tags)),
                              len(files.files), files.total_bytes, now)
        await self.store.add_version(record, doc.body, files.files)
        await self._refresh_latest(skill.id)
        self._changed()
        return record

    async def _check_signature(self, tenant_id: str, digest: str, publisher: str | None,
                               signature: str | None) -> str | None:
        if publisher is None:
            if signature is not None:
                raise SkillError("a signature needs its publisher: name the publisher whose key signed it")
            if self.policy.require_signature:
                raise SkillError("this registry requires signed versions: publish with a publisher's key")
            return None
        registered = await self._publisher(tenant_id, publisher)
        if signature is None or not _signing().verify(registered.public_key, digest, signature):
            raise SkillError(f"the signature does not verify with publisher {publisher!r}'s registered key "
                             f"for digest {digest}")
        return registered.id

    @staticmethod
    def _next_version(asked: str | None, declared: str | None, existing: list[SkillVersion]) -> str:
        if asked is not None:
            try:
                return check_semver(asked)
            except ValueError as exc:
                raise SkillError(str(exc)) from None
        taken = {v.version for v in existing}
        if declared is not None and declared not in taken:
            try:
                return check_semver(declared)
            except ValueError:
                pass
        if not existing:
            return "1.0.0"
        top = max((v.version for v in existing), key=semver_key)
        major, minor, patch = semver_key(top)[:3]
        return f"{major}.{minor}.{patch + 1}"

    async def _refresh_latest(self, skill_id: str) -> None:
        versions = await self.store.list_versions(skill_id)
        latest = self._latest(versions, risk_filter=False)
        body = await self.store.body(skill_id, latest.version) if latest else None
        await self.store.set_latest(skill_id, latest.version if latest else None, body, self._clock())

    def _installable(self, v: SkillVersion) -> bool:
        return v.yanked_at is None and (self.policy.allow_high_risk or v.risk_level != "high")

    def _latest(self, versions: list[SkillVersion], risk_filter: bool = True) -> SkillVersion | None:
        """The highest release not yanked (pre-releases only when there is no release)."""
        live = [v for v in versions if v.yanked_at is None and (not risk_filter or self._installable(v))]
        releases = [v for v in live if not is_prerelease(v.version)] or live
        return max(releases, key=lambda v: semver_key(v.version), default=None)

    # reading the catalog
    async def resolve(self, tenant_id: str, name: str) -> Skill:
        """A skill by name (or id) as the tenant sees it: its own first, then the shared catalog."""
        if name.startswith("skill_"):
            skill = await self.store.get_skill(name)
            if skill.tenant_id == tenant_id or skill.visibility == "shared":
                return skill
            raise NotFound(f"skill {name!r} not found")
        skills = await self.store.visible_skills(tenant_id, name)
        if not skills:
            raise NotFound(f"skill {name!r} not found")
        return skills[0]

    async def owned(self, tenant_id: str, name: str) -> Skill:
        skill = await self.resolve(tenant_id, name)
        if skill.tenant_id != tenant_id:
            raise NotFound(f"skill {name!r} not found in tenant {tenant_id!r} (shared skills are changed "
                           "by their owner only)")
        return skill

    async def show(self, tenant_id: str, name: str) -> tuple[Skill, list[SkillVersion]]:
        skill = await self.resolve(tenant_id, name)
        return skill, await self.store.list_versions(skill.id)

    async def list_skills(self, tenant_id: str) -> list[Skill]:
        return await self.store.visible_skills(tenant_id)

    async def search(self, tenant_id: str, query: SearchQuery) -> list[SearchHit]:
        return await self.store.search(tenant_id, query)

    async def yank(self, tenant_id: str, name: str, version: str, undo: bool = False) -> SkillVersion:
        skill = await self.owned(tenant_id, name)
        found = await self.store.get_version(skill.id, version)
        await self.store.set_yanked(skill.id, found.version, None if undo else self._clock())
        await self._refresh_latest(skill.id)
        self._changed()
        return await self.store.get_version(skill.id, found.version)

    async def delete_version(self, tenant_id: str, name: str, version: str) -> None:
        skill = await self.owned(tenant_id, name)
        found = await self.store.get_version(skill.id, version)
        for install in await self._installs_of(skill.id):
            if install.pin == found.version:
                raise Conflict(f"version {found.version} is pinned by an install: yank it instead")
        await self.store.delete_version(skill.id, found.version)
        await self._refresh_latest(skill.id)
        self._changed()

    async def delete_skill(self, tenant_id: str, name: str) -> None:
        skill = await self.owned(tenant_id, name)
        if await self.store.list_versions(skill.id):
            raise Conflict("the skill still has versions: delete them first")
        await self.store.delete_skill(skill.id)

    async def _installs_of(self, skill_id: str) -> list[Install]:
        return await self.store.list_installs(skill_id=skill_id)

    # verification
    async def verify(self, tenant_id: str, name: str, version: str) -> VerifyResult:
        skill = await self.resolve(tenant_id, name)
        found = await self.store.get_version(skill.id, version)
        files = await self.store.read_files(skill.id, found.version)
        recorded = await self.store.file_hashes(skill.id, found.version)
        now = {e.path: (e.size, e.sha256) for e in entries(files)}
        tampered = sorted(p for p in set(now) | set(recorded) if now.get(p) != recorded.get(p))
        state = "unsigned"
        if found.signature is not None and found.publisher_id is not None:
            publisher = await self.store.get_publisher(found.publisher_id)
            state = "valid" if _signing().verify(publisher.public_key, found.digest, found.signature) else "invalid"
        return VerifyResult(skill.id, found.version, found.digest, content_digest(files), state, tampered)

    # installs
    def _check_scope(self, tenant_id: str, scope: str, scope_id: str) -> InstallScope:
        check_tenant_id(tenant_id)
        if scope == "tenant" and scope_id != tenant_id:
            raise SkillError(f"a tenant install's scope id is the tenant itself ({tenant_id!r})")
        if scope == "team":
            try:
                check_team_id(scope_id, tenant_id)
            except ValueError as exc:
                raise SkillError(str(exc)) from None
        if scope not in INSTALL_SCOPES or not scope_id:
            raise SkillError(f"invalid install scope {scope!r}: expected tenant, team or key with an id")
        return scope

    async def install(self, tenant_id: str, scope: str, scope_id: str, name: str,
                      version: str | None = None) -> Install:
        """Pin ``version``, or follow the latest release when it is None."""
        checked = self._check_scope(tenant_id, scope, scope_id)
        skill = await self.resolve(tenant_id, name)
        if version is not None:
            target = await self.store.get_version(skill.id, version)
            if target.yanked_at is not None:
                raise SkillError(f"version {target.version} of {skill.name!r} is yanked: it cannot be newly installed")
        else:
            target_or_none = self._latest(await self.store.list_versions(skill.id), risk_filter=False)
            if target_or_none is None:
                raise SkillError(f"{skill.name!r} has no installable version (every version is yanked)")
            target = target_or_none
        if target.risk_level == "high" and not self.policy.allow_high_risk:
            raise SkillError(f"version {target.version} of {skill.name!r} has a high risk report and the policy "
                             "refuses high-risk installs; review it with `passerelle skills show`")
        install = Install(new_id("inst_"), tenant_id, checked, scope_id, skill.id,
                          target.version if version is not None else None, self._clock())
        done = await self.store.put_install(install)
        self._changed()
        return done

    async def uninstall(self, tenant_id: str, scope: str, scope_id: str, name: str) -> bool:
        checked = self._check_scope(tenant_id, scope, scope_id)
        skill = await self.resolve(tenant_id, name)
        removed = await self.store.delete_install(checked, scope_id, skill.id)
        self._changed()
        return removed

    async def installs(self, tenant_id: str, team_id: str | None = None,
                       key_id: str | None = None) -> list[Effective]:
        """The effective installs of a key (or team, or tenant): one per skill, the most specific scope."""
        cache_key = (tenant_id, team_id, key_id)
        cached = self._effective.get(cache_key)
        now = time.monotonic()
        if cached is not None:
            age, ttl = now - cached[0], self.policy.catalog_ttl_s
            if age < ttl:
                return cached[1]
            if age < ttl * STALE_LIMIT:  # the request path never waits for the store to be read again
                if cache_key not in self._refreshing:
                    task = asyncio.create_task(self._refresh(cache_key))
                    self._refreshing[cache_key] = task
                    task.add_done_callback(lambda _: self._refreshing.pop(cache_key, None))
                return cached[1]
        generation = self._generation
        found = await self._effective_installs(tenant_id, team_id, key_id)
        self._keep(cache_key, now, found, generation)
        return found

    async def _refresh(self, cache_key: _Scope) -> None:
        generation, started = self._generation, time.monotonic()
        try:
            found = await self._effective_installs(*cache_key)
        except Exception as exc:  # the store is down: the cached answer serves until STALE_LIMIT, then requests see why
            cached = self._effective.get(cache_key)
            log("skills_catalog_refresh_failed", logging.WARNING, tenant_id=cache_key[0],
                error=exc.__class__.__name__, catalog_age_s=round(started - cached[0], 1) if cached else None)
            return
        self._keep(cache_key, started, found, generation)

    def _keep(self, cache_key: _Scope, when: float, found: list[Effective], generation: int) -> None:
        if generation != self._generation:
            return  # a write here since the read began: the next request reads again
        if len(self._effective) > 10_000:
            self._effective.clear()
        self._effective[cache_key] = (when, found)

    async def _effective_installs(self, tenant_id: str, team_id: str | None, key_id: str | None) -> list[Effective]:
        scopes = [(s, i) for s, i in (("key", key_id), ("team", team_id), ("tenant", tenant_id)) if i]
        found = await self.store.list_installs(scopes)
        found.sort(key=lambda i: INSTALL_SCOPES.index(i.scope))
        out: list[Effective] = []
        seen: set[str] = set()
        for install in found:
            if install.skill_id in seen or install.tenant_id != tenant_id:
                continue
            seen.add(install.skill_id)
            try:
                skill = await self.store.get_skill(install.skill_id)
            except NotFound:
                continue
            if skill.tenant_id != tenant_id and skill.visibility != "shared":
                continue
            versions = await self.store.list_versions(skill.id)
            if install.pin is not None:
                current = next((v for v in versions if v.version == install.pin), None)
                if current is not None and not self.policy.allow_high_risk and current.risk_level == "high":
                    current = None
            else:
                current = self._latest(versions)
            if current is not None:
                out.append((install, skill, current))
        return out

    # the interface of "skills for any model"
    async def enabled_skills(self, principal: Actor) -> list[SkillSummary]:
        """The catalog a key sees: name, description, version and id of each installed skill, by name."""
        rows = await self.installs(principal.tenant_id, principal.team_id, principal.key_id)
        return sorted((SkillSummary(skill.name, version.description, version.version, skill.id)
                       for _, skill, version in rows), key=lambda s: s.name)

    async def read_skill_file(self, principal: Actor, name: str, path: str = "SKILL.md") -> str:
        """A file of a skill the key has installed, as text, at most ``policy.max_load_bytes`` of it (a
        longer file is cut at a character boundary, with a note saying how much is left out)."""
        try:
            rel = check_path(path, self.policy.limits).as_posix()
        except ArchiveError as exc:
            raise SkillError(f"invalid path {path[:80]!r}: {exc}") from None
        for _, skill, version in await self.installs(principal.tenant_id, principal.team_id, principal.key_id):
            if skill.name != name:
                continue
            data = await self.store.read_file(skill.id, version.version, rel)
            if data is None:
                raise NotFound(f"skill {name!r} has no file {rel!r}")
            limit = self.policy.max_load_bytes
            text = data[:limit].decode("utf-8", errors="ignore") if len(data) > limit else None
            if text is None:
                try:
                    return data.decode("utf-8")
                except UnicodeDecodeError:
                    raise SkillError(f"{rel!r} is a binary file: only text files can be loaded") from None
            return text + f"\n[... truncated: {len(data) - len(text.encode())} more bytes not loaded]"
        raise NotFound(f"skill {name!r} is not installed for this key")
