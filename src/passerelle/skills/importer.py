"""Import many skills at once: a directory of skill folders, or a Claude Code plugin marketplace
(``.claude-plugin/marketplace.json``) whose plugins have relative-path sources.

Remote plugin sources (github, url, git-subdir) are listed as skipped: nothing is downloaded.  Every
path a marketplace names must stay inside the marketplace's folder.  One bad skill does not stop the
import: each gets its own result.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from passerelle.skills.archive import ArchiveError, read_folder
from passerelle.skills.records import Visibility
from passerelle.skills.registry import SkillError, SkillRegistry
from passerelle.skills.spec import SKILL_FILES
from passerelle.stores.base import Conflict, NotFound
from passerelle.stores.sql_common import SLUG

MARKETPLACE = Path(".claude-plugin") / "marketplace.json"


@dataclass(frozen=True, slots=True)
class Candidate:
    path: Path | None  # None: a plugin that could not be located
    label: str  # where it came from, e.g. "document-skills: ./skills/xlsx"
    tags: tuple[str, ...] = ()
    skipped: str | None = None  # why it is not imported


@dataclass(frozen=True, slots=True)
class ImportResult:
    source: str
    name: str | None = None
    version: str | None = None
    risk_level: str | None = None
    error: str | None = None


class MarketplaceError(ValueError):
    """The directory or the marketplace file cannot be used at all."""


def _has_skill_md(path: Path) -> bool:
    return any((path / name).is_file() for name in SKILL_FILES)


def _inside(root: Path, relative: object, label: str) -> Path:
    if not isinstance(relative, str) or not relative:
        raise MarketplaceError(f"{label}: a path must be a non-empty string")
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise MarketplaceError(f"{label}: path {relative!r} leaves the marketplace folder")
    return target


def _skill_dirs(folder: Path) -> list[Path]:
    if _has_skill_md(folder):
        return [folder]
    nested = folder / "skills"
    base = nested if nested.is_dir() and not _has_skill_md(nested) else folder
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and _has_skill_md(p))


def _tags(plugin: dict[str, Any]) -> tuple[str, ...]:
    raw = [plugin.get("category"), *(plugin.get("keywords") or [])]
    return tuple(dict.fromkeys(t.lower() for t in raw if isinstance(t, str) and SLUG.fullmatch(t.lower())))


def marketplace_candidates(root: Path) -> list[Candidate]:
    root = root.resolve()
    try:
        data = json.loads((root / MARKETPLACE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MarketplaceError(f"{MARKETPLACE}: unreadable ({exc.__class__.__name__})") from None
    plugins = data.get("plugins") if isinstance(data, dict) else None
    if not isinstance(plugins, list):
        raise MarketplaceError(f"{MARKETPLACE}: expected an object with a plugins list")
    out: list[Candidate] = []
    for index, plugin in enumerate(plugins):
        name = plugin.get("name") if isinstance(plugin, dict) else None
        label = str(name) if isinstance(name, str) else f"plugins[{index}]"
        if not isinstance(plugin, dict):
            out.append(Candidate(None, label, skipped="not an object"))
            continue
        source = plugin.get("source")
        if not isinstance(source, str):
            kind = source.get("source") if isinstance(source, dict) else type(source).__name__
            out.append(Candidate(None, label, skipped=f"remote source ({kind}) not imported: nothing is downloaded"))
            continue
        try:
            plugin_root = _inside(root, source, label)
            skills = plugin.get("skills")
            if skills is None:
                dirs = _skill_dirs(plugin_root) if plugin_root.is_dir() else []
            elif isinstance(skills, list):
                dirs = [_inside(root, str(Path(source) / s) if isinstance(s, str) else s, label) for s in skills]
            else:
                raise MarketplaceError(f"{label}: skills must be a list of paths")
        except MarketplaceError as exc:
            out.append(Candidate(None, label, skipped=str(exc)))
            continue
        out += [Candidate(d, f"{label}: {d.relative_to(root).as_posix()}", _tags(plugin)) for d in dirs]
    return out


def candidates(path: Path) -> list[Candidate]:
    """The skills under ``path``: a marketplace's, one skill folder, or every skill folder inside."""
    if not path.is_dir():
        raise MarketplaceError(f"{path}: not a directory")
    if (path / MARKETPLACE).is_file():
        return marketplace_candidates(path)
    return [Candidate(d, d.name) for d in _skill_dirs(path.resolve())]


async def import_skills(registry: SkillRegistry, tenant_id: str, path: Path, *, visibility: Visibility = "private",
                        tags: Sequence[str] = ()) -> list[ImportResult]:
    results: list[ImportResult] = []
    seen: set[Path] = set()
    for found in candidates(path):
        if found.path is None or found.skipped:
            results.append(ImportResult(found.label, error=f"skipped: {found.skipped}"))
            continue
        if found.path in seen:  # a skill listed by two plugins is imported once
            continue
        seen.add(found.path)
        try:
            files = await asyncio.to_thread(read_folder, found.path, registry.policy.limits)
            version = await registry.publish(tenant_id, files, visibility=visibility,
                                             tags=[*tags, *found.tags])
        except (ArchiveError, SkillError, Conflict, NotFound, OSError) as exc:
            results.append(ImportResult(found.label, error=str(exc)))
            continue
        results.append(ImportResult(found.label, version.name, version.version, version.risk_level))
    return results
