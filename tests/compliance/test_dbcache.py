"""The compiled-pattern cache: keyed by what the database depends on, atomic, verified, optional."""

from __future__ import annotations

from pathlib import Path

import hyperscan
import pytest

from passerelle.compliance import Engine, dbcache
from passerelle.compliance.detectors import FinanceDetector
from passerelle.compliance.detectors.defense import DefenseDetector

EXPRESSIONS = [rb"\bfoo\d+", rb"bar"]
FLAGS = [hyperscan.HS_FLAG_SOM_LEFTMOST] * 2


def matches(database: hyperscan.Database, data: bytes) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    database.scan(data, match_event_handler=lambda i, s, e, f, c: out.append((i, s, e)),
                  scratch=hyperscan.Scratch(database))
    return out


def test_cache_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PASSERELLE_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dbcache.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("PASSERELLE_CACHE_DIR")
    assert dbcache.cache_dir() == tmp_path / "xdg" / "passerelle"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dbcache.cache_dir() == tmp_path / "home" / ".cache" / "passerelle"


def test_key_changes_with_any_input() -> None:
    key = dbcache.cache_key(EXPRESSIONS, [0, 1], FLAGS, hyperscan.HS_MODE_BLOCK)
    assert key == dbcache.cache_key(list(EXPRESSIONS), [0, 1], list(FLAGS), hyperscan.HS_MODE_BLOCK)
    assert len({key,
                dbcache.cache_key([rb"\bfoo\d*", rb"bar"], [0, 1], FLAGS, hyperscan.HS_MODE_BLOCK),
                dbcache.cache_key(EXPRESSIONS, [1, 0], FLAGS, hyperscan.HS_MODE_BLOCK),
                dbcache.cache_key(EXPRESSIONS, [0, 1], [0, 0], hyperscan.HS_MODE_BLOCK),
                dbcache.cache_key(EXPRESSIONS, [0, 1], FLAGS, hyperscan.HS_MODE_BLOCK, literal=True),
                dbcache.cache_key([rb"\bfoo\d+b", rb"ar"], [0, 1], FLAGS, hyperscan.HS_MODE_BLOCK)}) == 6


def test_second_compile_loads_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = dbcache.compile_cached(EXPRESSIONS, [0, 1], FLAGS, directory=tmp_path)
    [path] = tmp_path.iterdir()
    assert path.name.startswith("hs-") and path.suffix == ".db"

    def no_compile(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled although cached")

    monkeypatch.setattr(hyperscan, "Database", no_compile)
    second = dbcache.compile_cached(EXPRESSIONS, [0, 1], FLAGS, directory=tmp_path)
    assert matches(second, b"a foo12 bar") == matches(first, b"a foo12 bar") == [(0, 2, 6), (0, 2, 7), (1, 8, 11)]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


@pytest.mark.parametrize("damage", [
    lambda data: data[: len(data) // 2],  # truncated
    lambda data: data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:],  # one flipped byte in the database
    lambda data: b"not a cache file",
    lambda data: b"",
])
def test_a_corrupt_file_is_recompiled_and_replaced(tmp_path: Path, damage: object) -> None:
    dbcache.compile_cached(EXPRESSIONS, [0, 1], FLAGS, directory=tmp_path)
    [path] = tmp_path.iterdir()
    good = path.read_bytes()
    path.write_bytes(damage(good))  # type: ignore[operator]
    database = dbcache.compile_cached(EXPRESSIONS, [0, 1], FLAGS, directory=tmp_path)
    assert matches(database, b"foo1 bar") == [(0, 0, 4), (1, 5, 8)]
    assert path.read_bytes() == good


def test_an_unwritable_directory_only_costs_the_compile(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    database = dbcache.compile_cached(EXPRESSIONS, [0, 1], FLAGS, directory=blocker / "cache")
    assert matches(database, b"bar") == [(1, 0, 3)]


def test_engines_share_the_cache_but_never_store_codewords(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSERELLE_CACHE_DIR", str(tmp_path))
    Engine([FinanceDetector()])
    assert len(list(tmp_path.iterdir())) == 1
    engine = Engine([FinanceDetector()])  # loaded, and it scans
    assert [f.type for f in engine.scan("IBAN FR14 2004 1010 0505 0001 3M02 606")] == ["IBAN"]
    Engine([DefenseDetector(codewords=["NIGHTJAR"])])
    assert len(list(tmp_path.iterdir())) == 1
    assert not any(b"NIGHTJAR" in p.read_bytes() for p in tmp_path.iterdir())
