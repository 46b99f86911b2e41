"""Compiled twins: used only while their source is the one they were built from.

``setup.py`` compiles the compliance scan with Cython beside its sources and records each source's
SHA-256 in ``twins.json``.  Python would import an extension before its ``.py``, so an edited
source (an editable install after a change) would silently run stale compiled code: ``install`` puts a
finder first that imports the source instead, for every twin that is stale, unlisted or switched off
(``PASSERELLE_COMPILED=0``, which the pure-Python fallback's tests use).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).parent
MANIFEST = PACKAGE / "twins.json"
SWITCH = "PASSERELLE_COMPILED"


@dataclass(frozen=True, slots=True)
class Twin:
    module: str
    source: Path
    compiled: Path
    used: bool
    why: str  # "compiled", or why the source runs instead


def survey(package: Path = PACKAGE, name: str = "passerelle",
           environ: dict[str, str] | os._Environ[str] = os.environ) -> list[Twin]:
    """Every compiled module under ``package`` and whether it may be used."""
    try:
        recorded: dict[str, str] = json.loads((package / MANIFEST.name).read_text())["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = {}
    off = environ.get(SWITCH) == "0"
    twins = []
    for compiled in sorted(package.rglob("*")):
        suffix = next((s for s in importlib.machinery.EXTENSION_SUFFIXES if compiled.name.endswith(s)), None)
        if suffix is None:
            continue
        relative = compiled.relative_to(package).with_name(compiled.name[: -len(suffix)])
        module = ".".join((name, *relative.parts))
        source = compiled.with_name(relative.name + ".py")
        if not source.is_file() or relative.name == "__init__":
            continue  # an extension without a source is not a twin; packages' __init__ are never compiled
        if off:
            why = f"{SWITCH}=0"
        elif module not in recorded:
            why = "not in twins.json (an interrupted build?)"
        elif hashlib.sha256(source.read_bytes()).hexdigest() != recorded[module]:
            why = "source changed since the build"
        else:
            why = "compiled"
        twins.append(Twin(module, source, compiled, why == "compiled", why))
    return twins


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Imports the listed modules from their ``.py``, whatever extension lies beside it."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def install(twins: list[Twin] | None = None) -> list[Twin]:
    """Put the source-first finder in place for the twins that may not be used (before any is imported)."""
    twins = survey() if twins is None else twins
    stale = {t.module: t.source for t in twins if not t.used}
    finder = next((f for f in sys.meta_path if isinstance(f, _SourceFirst)), None)
    if finder is not None:
        finder.sources.update(stale)
    elif stale:
        sys.meta_path.insert(0, _SourceFirst(stale))
    return twins


def running() -> dict[str, bool]:
    """Per loaded twin module, whether its compiled code is what runs (the compliance benchmark reports it)."""
    out = {}
    for twin in survey():
        loaded = sys.modules.get(twin.module)
        if loaded is not None:
            out[twin.module] = not str(getattr(loaded, "__file__", "")).endswith(".py")
    return out
