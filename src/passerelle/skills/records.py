"""What the skills registry stores: publishers, skills, immutable versions and installs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Visibility = Literal["private", "shared"]  # private: the owning tenant only; shared: every tenant
InstallScope = Literal["tenant", "team", "key"]
INSTALL_SCOPES: tuple[InstallScope, ...] = ("key", "team", "tenant")  # most specific first

_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
                     r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?")


def check_semver(version: str) -> str:
    if not isinstance(version, str) or len(version) > 64 or not _SEMVER.fullmatch(version):
        raise ValueError(f"invalid version {str(version)[:70]!r}: expected semantic versioning MAJOR.MINOR.PATCH")
    return version


def semver_key(version: str) -> tuple[Any, ...]:
    """Semantic Versioning 2.0 precedence; build metadata ignored; a release above its pre-releases."""
    m = _SEMVER.fullmatch(version)
    if m is None:
        raise ValueError(f"invalid version {version!r}")
    core = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m.group(4) is None:
        return (*core, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in m.group(4).split("."))
    return (*core, 0, parts)


def is_prerelease(version: str) -> bool:
    m = _SEMVER.fullmatch(version)
    return m is not None and m.group(4) is not None


@dataclass(frozen=True, slots=True)
class Publisher:
    id: str
    tenant_id: str
    name: str
    public_key: str  # "ed25519:<base64>"
    created_at: float


@dataclass(frozen=True, slots=True)
class Skill:
    id: str  # "skill_01..." (the Anthropic API's shape)
    tenant_id: str  # the owner
    name: str
    display_title: str
    visibility: Visibility
    latest_version: str | None  # the highest installable (not yanked) release; None when every one is yanked
    created_at: float
    updated_at: float
    install_count: int = 0  # current installs (tenants, teams and keys)


@dataclass(frozen=True, slots=True)
class SkillVersion:
    skill_id: str
    version: str  # semver, immutable once published
    api_version: str  # epoch microseconds, as the Anthropic Skills API names versions
    name: str
    description: str
    digest: str  # "sha256:<hex>" of the canonical manifest
    signature: str | None  # base64 Ed25519 signature of the digest
    publisher_id: str | None
    risk_level: str  # low | medium | high
    risk_report: dict[str, Any]
    tags: tuple[str, ...]
    file_count: int
    total_bytes: int
    created_at: float
    yanked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Install:
    id: str
    tenant_id: str
    scope: InstallScope
    scope_id: str  # the tenant, team or key id
    skill_id: str
    pin: str | None  # a version, or None to follow the latest release
    created_at: float


@dataclass(frozen=True, slots=True)
class SearchHit:
    skill: Skill
    version: SkillVersion
    rank: float  # higher is better
    publisher: str | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str = ""
    publisher: str | None = None  # publisher name
    tag: str | None = None
    max_risk: str | None = None  # low | medium | high: versions at most this risky
    limit: int = 20
