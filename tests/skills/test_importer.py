"""Importing a directory of skills and a Claude Code plugin marketplace (relative-path sources)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from passerelle.skills.importer import MarketplaceError, candidates, import_skills
from passerelle.skills.registry import SkillRegistry

FIXTURES = Path(__file__).parent / "fixtures" / "anthropics"


async def test_the_anthropics_marketplace_imports(registry: SkillRegistry, tmp_path: Path) -> None:
    results = await import_skills(registry, "acme", FIXTURES)
    imported = {r.name for r in results if r.error is None}
    failed = {r.source.rsplit("/", 1)[-1]: r.error for r in results if r.error}
    # Every skill the marketplace lists, once; claude-api's description is over the spec's limit.
    assert len(imported) == 16 and "pdf" in imported and "claude-api" not in imported
    assert list(failed) == ["claude-api"] and "description-too-long" in str(failed["claude-api"])
    assert {s.name for s in await registry.list_skills("acme")} == imported


async def test_a_directory_of_skills(registry: SkillRegistry, tmp_path: Path) -> None:
    for name in ("pdf", "xlsx"):
        shutil.copytree(FIXTURES / "skills" / name, tmp_path / "mine" / name)
    (tmp_path / "mine" / "notes").mkdir()  # no SKILL.md: not a skill
    results = await import_skills(registry, "acme", tmp_path / "mine", tags=["office"])
    assert [(r.name, r.version, r.error) for r in results] == [("pdf", "1.0.0", None), ("xlsx", "1.0.0", None)]
    assert (await registry.show("acme", "pdf"))[1][0].tags == ("office",)


def test_remote_and_escaping_sources_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".claude-plugin").mkdir()
    (tmp_path / "plugins" / "local" / "skills" / "demo").mkdir(parents=True)
    (tmp_path / "plugins" / "local" / "skills" / "demo" / "SKILL.md").write_text("---\nname: demo\n---\n")
    (tmp_path / ".claude-plugin" / "marketplace.json").write_text(json.dumps({"name": "m", "plugins": [
        {"name": "local", "source": "./plugins/local", "category": "Productivity"},
        {"name": "remote", "source": {"source": "github", "repo": "x/y", "sha": "0" * 40}},
        {"name": "escape", "source": "../../etc"},
        {"name": "escape-skill", "source": "./", "skills": ["../outside"]},
    ]}))
    found = candidates(tmp_path)
    assert [(c.label, c.tags, c.skipped is None) for c in found] == [
        ("local: plugins/local/skills/demo", ("productivity",), True), ("remote", (), False),
        ("escape", (), False), ("escape-skill", (), False)]
    assert "nothing is downloaded" in str(found[1].skipped) and "leaves" in str(found[2].skipped)


def test_unusable_marketplaces_say_why(tmp_path: Path) -> None:
    (tmp_path / ".claude-plugin").mkdir()
    (tmp_path / ".claude-plugin" / "marketplace.json").write_text("{not json")
    with pytest.raises(MarketplaceError, match="unreadable"):
        candidates(tmp_path)
    (tmp_path / ".claude-plugin" / "marketplace.json").write_text('{"plugins": 3}')
    with pytest.raises(MarketplaceError, match="plugins list"):
        candidates(tmp_path)
    with pytest.raises(MarketplaceError, match="not a directory"):
        candidates(tmp_path / "missing")
