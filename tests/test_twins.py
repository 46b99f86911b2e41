"""Compiled twins: used only while their source is the one they were built from."""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import json
import os
import sys
from pathlib import Path

import pytest

from passerelle import twins

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _package(root: Path, name: str, source: str, *, recorded: str | None) -> Path:
    """A package with one module and, beside it, a file named like its compiled twin (garbage bytes: importing
    it would fail, so a test can tell which of the two was imported)."""
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(source)
    (package / f"mod{SUFFIX}").write_bytes(b"not an extension")
    if recorded is not None:
        manifest = {"builder": "cython", "modules": {f"{name}.mod": hashlib.sha256(recorded.encode()).hexdigest()}}
        (package / "twins.json").write_text(json.dumps(manifest))
    return package


def test_a_twin_built_from_the_present_source_is_used(tmp_path: Path) -> None:
    package = _package(tmp_path, "fresh", "X = 1\n", recorded="X = 1\n")
    [twin] = twins.survey(package, "fresh", environ={})
    assert (twin.module, twin.used, twin.why) == ("fresh.mod", True, "compiled")
    assert twin.source == package / "mod.py" and twin.compiled == package / f"mod{SUFFIX}"


@pytest.mark.parametrize(("recorded", "environ", "why"), [
    ("X = 0\n", {}, "source changed since the build"),
    (None, {}, "not in twins.json (an interrupted build?)"),
    ("X = 1\n", {"PASSERELLE_COMPILED": "0"}, "PASSERELLE_COMPILED=0"),
])
def test_a_stale_unlisted_or_switched_off_twin_is_not_used(tmp_path: Path, recorded: str | None,
                                                           environ: dict[str, str], why: str) -> None:
    package = _package(tmp_path, "stale", "X = 1\n", recorded=recorded)
    [twin] = twins.survey(package, "stale", environ=environ)
    assert (twin.used, twin.why) == (False, why)


def test_an_extension_without_a_source_is_not_a_twin(tmp_path: Path) -> None:
    package = _package(tmp_path, "lone", "X = 1\n", recorded="X = 1\n")
    (package / f"other{SUFFIX}").write_bytes(b"")
    assert [t.module for t in twins.survey(package, "lone", environ={})] == ["lone.mod"]


def test_the_source_is_imported_instead_of_a_stale_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _package(tmp_path, "edited", "X = 'from the source'\n", recorded="X = 'as built'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # This session's own finder (PASSERELLE_COMPILED=0 runs) is left out: the test installs its own.
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if type(f).__name__ != "_SourceFirst"])
    with pytest.raises(ImportError):  # Python alone prefers the extension (here unloadable)
        importlib.import_module("edited.mod")
    sys.modules.pop("edited.mod", None)
    twins.install(twins.survey(tmp_path / "edited", "edited", environ={}))
    module = importlib.import_module("edited.mod")
    assert module.X == "from the source" and module.__file__ == str(tmp_path / "edited" / "mod.py")
    sys.modules.pop("edited.mod", None)
    sys.modules.pop("edited", None)


@pytest.mark.skipif(os.environ.get("PASSERELLE_EXPECT_COMPILED") != "1",
                    reason="the installed build is checked where PASSERELLE_EXPECT_COMPILED=1 (scripts/test)")
def test_the_installed_scan_path_runs_compiled() -> None:
    # scripts/test installs the package (setup.py compiles the twins) and sets PASSERELLE_EXPECT_COMPILED=1: a
    # build that fell back to pure Python, or a twin shadowed by its source, fails here instead of going unseen.
    from passerelle.compliance.detectors import default_detectors
    from passerelle.compliance.engine import Engine

    Engine(default_detectors(codewords=["NIGHTJAR"]))
    surveyed = twins.survey()
    built = json.loads(twins.MANIFEST.read_text())["modules"]
    assert {t.module for t in surveyed} == set(built) and "passerelle.compliance.engine" in built
    assert all(t.used for t in surveyed), [(t.module, t.why) for t in surveyed]
    running = twins.running()
    assert running and all(running.values()), running
