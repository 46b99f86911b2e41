"""SKILL.md validation agrees with the reference validator (skills-ref) on real and crafted skills."""

from __future__ import annotations

from pathlib import Path

import pytest
import skills_ref

from passerelle.skills.spec import parse_skill_md, validate_dir

FIXTURES = Path(__file__).parent / "fixtures" / "anthropics"
REAL = sorted([*(FIXTURES / "skills").iterdir(), FIXTURES / "template"])

LONG = "x" * 1025
# (folder, SKILL.md, the rule we must name); skills-ref must reject each of them too.
BAD: list[tuple[str, str, str]] = [
    ("no-front", "# Just markdown\n", "frontmatter-missing"),
    ("unclosed", "---\nname: unclosed\ndescription: d\n", "frontmatter-unclosed"),
    ("bad-yaml", "---\nname: bad-yaml\ndescription: a: b: c\n---\n", "yaml-invalid"),
    ("flow", "---\nname: flow\ndescription: d\nmetadata: {a: b}\n---\n", "yaml-invalid"),
    ("dup", "---\nname: dup\nname: dup\ndescription: d\n---\n", "yaml-invalid"),
    ("alias", "---\nname: &n alias\ndescription: *n\n---\n", "yaml-invalid"),
    ("tagged", "---\nname: tagged\ndescription: !!str d\n---\n", "yaml-invalid"),
    ("listy", "---\n- name\n- description\n---\n", "frontmatter-not-mapping"),
    ("unknown-field", "---\nname: unknown-field\ndescription: d\nversion: 1.0\n---\n", "field-unknown"),
    ("no-name", "---\ndescription: d\n---\n", "name-missing"),
    ("empty-name", "---\nname: ''\ndescription: d\n---\n", "name-empty"),
    ("Upper", "---\nname: Upper\ndescription: d\n---\n", "name-lowercase"),
    ("-edge", "---\nname: -edge\ndescription: d\n---\n", "name-hyphen-edge"),
    ("two--hyphens", "---\nname: two--hyphens\ndescription: d\n---\n", "name-consecutive-hyphens"),
    ("under_score", "---\nname: under_score\ndescription: d\n---\n", "name-characters"),
    ("a" * 65, f"---\nname: {'a' * 65}\ndescription: d\n---\n", "name-too-long"),
    ("folder", "---\nname: other\ndescription: d\n---\n", "name-folder-mismatch"),
    ("no-desc", "---\nname: no-desc\n---\n", "description-missing"),
    ("empty-desc", "---\nname: empty-desc\ndescription: '   '\n---\n", "description-empty"),
    ("long-desc", f"---\nname: long-desc\ndescription: {LONG}\n---\n", "description-too-long"),
    ("compat", f"---\nname: compat\ndescription: d\ncompatibility: {'c' * 501}\n---\n", "compatibility-too-long"),
]
GOOD: list[tuple[str, str]] = [
    ("minimal", "---\nname: minimal\ndescription: Does one thing. Use when asked.\n---\n"),
    ("full", "---\nname: full\ndescription: >\n  Folded text\n  on two lines.\nlicense: Apache-2.0\n"
             "compatibility: Python 3.11\nallowed-tools: Bash(git:*) Read\nmetadata:\n  author: me\n"
             "  version: '1.0'\n---\n# Body\n\nText --- with dashes.\n"),
    ("café", "---\nname: café\ndescription: Unicode letters are allowed by skills-ref.\n---\n"),
    ("numbers-9", "---\nname: numbers-9\ndescription: 123\n---\n"),
]


def write(tmp_path: Path, folder: str, text: str) -> Path:
    skill = tmp_path / folder
    skill.mkdir()
    (skill / "SKILL.md").write_text(text, encoding="utf-8")
    return skill


@pytest.mark.parametrize("skill", REAL, ids=lambda p: p.name)
def test_real_skills_get_the_reference_verdict(skill: Path) -> None:
    ours = validate_dir(skill)
    assert ours.ok == (skills_ref.validate(skill) == []), [str(p) for p in ours.problems]


def test_the_known_failures_name_their_rule() -> None:
    assert [p.rule for p in validate_dir(FIXTURES / "skills" / "claude-api").errors] == ["description-too-long"]
    template = validate_dir(FIXTURES / "template").errors
    assert [(p.rule, p.field, p.line) for p in template] == [("name-folder-mismatch", "name", 2)]


@pytest.mark.parametrize(("folder", "text", "rule"), BAD, ids=[b[2] + ":" + b[0] for b in BAD])
def test_crafted_bad_skills_are_rejected_with_their_rule(tmp_path: Path, folder: str, text: str, rule: str) -> None:
    skill = write(tmp_path, folder, text)
    assert skills_ref.validate(skill) != [], "the oracle accepts it: the case is not bad"
    ours = validate_dir(skill)
    assert rule in [p.rule for p in ours.errors], [str(p) for p in ours.problems]


@pytest.mark.parametrize(("folder", "text"), GOOD, ids=[g[0] for g in GOOD])
def test_crafted_good_skills_are_accepted(tmp_path: Path, folder: str, text: str) -> None:
    skill = write(tmp_path, folder, text)
    assert skills_ref.validate(skill) == []
    assert validate_dir(skill).errors == []


def test_missing_skill_md(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert skills_ref.validate(tmp_path / "empty") != []
    assert [p.rule for p in validate_dir(tmp_path / "empty").errors] == ["skill-md-missing"]


def test_angle_brackets_are_anthropics_extra_rule(tmp_path: Path) -> None:
    skill = write(tmp_path, "angle", "---\nname: angle\ndescription: Use for <b>bold</b> text\n---\n")
    assert skills_ref.validate(skill) == []  # the reference validator does not have this rule
    assert [p.rule for p in validate_dir(skill).errors] == ["description-angle-brackets"]


def test_lenient_mode_warns_but_blocks_only_unusable_files() -> None:
    doc = parse_skill_md("---\nname: Other_Name\ndescription: d\nextra: 1\n---\nbody", "folder", "lenient")
    assert doc.ok and {p.rule for p in doc.warnings} == {"field-unknown", "name-lowercase", "name-characters",
                                                          "name-folder-mismatch"}
    assert doc.description == "d" and doc.body == "body"
    assert not parse_skill_md("---\nname: x\n---\n", "x", "lenient").ok
    assert not parse_skill_md("---\nname: [x\n---\n", "x", "lenient").ok


def test_problems_say_where() -> None:
    doc = parse_skill_md("---\nname: ok\ndescription: d\nlicense: MIT\nfoo: bar\n---\n", "ok")
    (problem,) = doc.errors
    assert (problem.rule, problem.field, problem.line, problem.file) == ("field-unknown", "foo", 5, "SKILL.md")
    assert "SKILL.md:5 [foo]" in str(problem)
    assert parse_skill_md("---\nname: ok\ndescription: x: y\n---\n", "ok").errors[0].line == 3
