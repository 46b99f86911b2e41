"""SKILL.md: parse and validate per the Agent Skills specification (agentskills.io).

Two modes.  ``strict`` (publishing): every broken rule is an error.  ``lenient`` (loading, as the
client guide advises): only an unreadable file, a missing or unparseable frontmatter and a missing
description are errors, the rest are warnings.

The verdicts follow the reference validator ``skills-ref`` 0.1.1: the same allowed fields, limits and
name rules (NFKC, lowercase letters and digits of any script, single inner hyphens, equal to the
folder name), and its YAML subset (strictyaml: every scalar is a string; flow collections, anchors,
aliases, tags and duplicate keys are refused).  One rule is added, from Anthropic's own validator:
no ``<`` or ``>`` in the description (``description-angle-brackets``).  Fields skills-ref does not
type-check (``metadata``, ``allowed-tools``, ``license``) get warnings only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Severity = Literal["error", "warning"]
Mode = Literal["strict", "lenient"]

MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_COMPATIBILITY = 500
ALLOWED_FIELDS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
SKILL_FILES = ("SKILL.md", "skill.md")  # skills-ref accepts the lowercase spelling too
# Rules that stay errors when loading leniently: without them there is nothing usable to show.
_BLOCKING = frozenset({"skill-md-missing", "skill-md-encoding", "frontmatter-missing", "frontmatter-unclosed",
                       "yaml-invalid", "frontmatter-not-mapping", "description-missing", "description-empty"})


@dataclass(frozen=True, slots=True)
class Problem:
    rule: str  # stable identifier, e.g. "name-folder-mismatch"
    severity: Severity
    message: str
    file: str = "SKILL.md"
    field: str | None = None
    line: int | None = None  # 1-based line in the file

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "") + (f" [{self.field}]" if self.field else "")
        return f"{where}: {self.severity}: {self.message} ({self.rule})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class SkillDoc:
    """What a SKILL.md declares; fields are None when absent or unusable."""

    name: str | None = None
    description: str | None = None
    license: str | None = None
    compatibility: str | None = None
    allowed_tools: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    body: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


class _StrictLoader(yaml.BaseLoader):
    """Every scalar a string (as strictyaml); duplicate keys refused."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        assert isinstance(node, yaml.MappingNode)
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = str(key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=True)


def _refuse_non_strict(text: str) -> None:
    """The YAML features strictyaml refuses, with the line they are on."""
    for event in yaml.parse(text, Loader=yaml.BaseLoader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _YamlRefused("anchors and aliases are not allowed", line)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)) and event.flow_style:
            raise _YamlRefused("flow style ({...} or [...]) is not allowed", line)
        if getattr(event, "tag", None) is not None:
            raise _YamlRefused("tags (!...) are not allowed", line)


class _YamlRefused(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _field_lines(frontmatter: str, offset: int) -> dict[str, int]:
    lines: dict[str, int] = {}
    for i, raw in enumerate(frontmatter.splitlines()):
        m = re.match(r"([A-Za-z0-9_-]+)\s*:", raw)
        if m and not raw[0].isspace():
            lines.setdefault(m.group(1), i + offset)
    return lines


class _Checker:
    def __init__(self, doc: SkillDoc, mode: Mode, file: str, lines: dict[str, int]) -> None:
        self.doc, self.mode, self.file, self.lines = doc, mode, file, lines

    def add(self, rule: str, message: str, fld: str | None = None, *, warning: bool = False,
            line: int | None = None) -> None:
        lenient = self.mode == "lenient" and rule not in _BLOCKING
        severity: Severity = "warning" if warning or lenient else "error"
        where = line if line is not None else self.lines.get(fld) if fld else None
        self.doc.problems.append(Problem(rule, severity, message, self.file, fld, where))


def _split(text: str) -> tuple[str, str, int] | str:
    """(frontmatter, body, line of the first frontmatter line) or the rule that failed."""
    if not text.startswith("---"):
        return "frontmatter-missing"
    lines = text.splitlines(keepends=True)
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n").rstrip() == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1:]).strip(), 2
    return "frontmatter-unclosed"


def parse_skill_md(text: str, folder: str | None, mode: Mode = "strict", file: str = "SKILL.md") -> SkillDoc:
    """Parse one SKILL.md; ``folder`` is its directory's name (None: the name-folder rule is skipped)."""
    doc = SkillDoc()
    split = _split(text)
    if isinstance(split, str):
        message = ("SKILL.md must start with YAML frontmatter (---)" if split == "frontmatter-missing"
                   else "SKILL.md frontmatter is not closed with a --- line")
        _Checker(doc, mode, file, {}).add(split, message, line=1)
        return doc
    frontmatter, doc.body, first = split
    check = _Checker(doc, mode, file, _field_lines(frontmatter, first))
    try:
        _refuse_non_strict(frontmatter)
        data = yaml.load(frontmatter, Loader=_StrictLoader)  # BaseLoader: strings only, never objects
    except _YamlRefused as exc:
        check.add("yaml-invalid", f"invalid YAML in frontmatter: {exc}", line=exc.line + first - 1)
        return doc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + first if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        check.add("yaml-invalid", f"invalid YAML in frontmatter: {problem}", line=line)
        return doc
    if not isinstance(data, dict):
        check.add("frontmatter-not-mapping", "SKILL.md frontmatter must be a YAML mapping", line=first)
        return doc
    _check_fields(data, folder, check)
    return doc


def _check_fields(data: dict[str, Any], folder: str | None, check: _Checker) -> None:
    doc = check.doc
    for key in sorted(set(data) - set(ALLOWED_FIELDS)):
        check.add("field-unknown", f"unexpected field {key!r}: only {', '.join(ALLOWED_FIELDS)} are allowed", key)
    if "name" not in data:
        check.add("name-missing", "missing required field: name", line=1)
    else:
        _check_name(data["name"], folder, check)
    if "description" not in data:
        check.add("description-missing", "missing required field: description", line=1)
    else:
        _check_description(data["description"], check)
    if "compatibility" in data:
        value = data["compatibility"]
        if not isinstance(value, str):
            check.add("compatibility-type", "field 'compatibility' must be a string", "compatibility")
        else:
            doc.compatibility = value
            if len(value) > MAX_COMPATIBILITY:
                check.add("compatibility-too-long", f"compatibility exceeds {MAX_COMPATIBILITY} characters "
                          f"({len(value)})", "compatibility")
    for key, attr in (("license", "license"), ("allowed-tools", "allowed_tools")):
        if key in data:
            if isinstance(data[key], str):
                setattr(doc, attr, data[key])
            else:
                check.add(f"{key}-type", f"field {key!r} must be a string", key, warning=True)
    if "metadata" in data:
        value = data["metadata"]
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            doc.metadata = {str(k): v for k, v in value.items()}
        else:
            check.add("metadata-type", "field 'metadata' must map strings to strings", "metadata", warning=True)


def _check_name(raw: Any, folder: str | None, check: _Checker) -> None:
    if not isinstance(raw, str) or not raw.strip():
        check.add("name-empty", "field 'name' must be a non-empty string", "name")
        return
    name = unicodedata.normalize("NFKC", raw.strip())
    check.doc.name = name
    if len(name) > MAX_NAME:
        check.add("name-too-long", f"name exceeds {MAX_NAME} characters ({len(name)})", "name")
    if name != name.lower():
        check.add("name-lowercase", f"name {name!r} must be lowercase", "name")
    if name.startswith("-") or name.endswith("-"):
        check.add("name-hyphen-edge", "name cannot start or end with a hyphen", "name")
    if "--" in name:
        check.add("name-consecutive-hyphens", "name cannot contain consecutive hyphens", "name")
    if not all(c.isalnum() or c == "-" for c in name):
        check.add("name-characters", f"name {name!r} may only contain letters, digits and hyphens", "name")
    if folder is not None and unicodedata.normalize("NFKC", folder) != name:
        check.add("name-folder-mismatch", f"folder name {folder!r} must match skill name {name!r}", "name")


def _check_description(raw: Any, check: _Checker) -> None:
    if not isinstance(raw, str) or not raw.strip():
        check.add("description-empty", "field 'description' must be a non-empty string", "description")
        return
    check.doc.description = raw.strip()
    if len(raw) > MAX_DESCRIPTION:
        check.add("description-too-long", f"description exceeds {MAX_DESCRIPTION} characters ({len(raw)})",
                  "description")
    if "<" in raw or ">" in raw:
        check.add("description-angle-brackets", "description cannot contain '<' or '>' (Anthropic's rule: "
                  "it is shown inside an XML catalog)", "description")


def find_skill_md(files: dict[str, bytes]) -> str | None:
    """The SKILL.md path at the root of a file set (relative paths), preferring the uppercase name."""
    return next((name for name in SKILL_FILES if name in files), None)


def validate_dir(path: Path, mode: Mode = "strict") -> SkillDoc:
    """Validate a skill folder on disk (its SKILL.md and its folder name), as ``skills-ref validate``."""
    files: dict[str, bytes] = {}
    for name in SKILL_FILES:
        candidate = path / name
        if candidate.is_file():
            files[name] = candidate.read_bytes()
            break
    return validate_files(files, path.resolve().name, mode)


def validate_files(files: dict[str, bytes], folder: str | None, mode: Mode = "strict") -> SkillDoc:
    """Validate the SKILL.md of an in-memory skill (paths relative to the skill's folder)."""
    path = find_skill_md(files)
    if path is None:
        doc = SkillDoc()
        doc.problems.append(Problem("skill-md-missing", "error", "missing required file: SKILL.md", "SKILL.md"))
        return doc
    try:
        text = files[path].decode("utf-8")
    except UnicodeDecodeError as exc:
        doc = SkillDoc()
        doc.problems.append(Problem("skill-md-encoding", "error", f"SKILL.md is not UTF-8 (byte {exc.start})", path))
        return doc
    return parse_skill_md(text, folder, mode, path)
