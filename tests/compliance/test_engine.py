"""The engine: one compiled pass, per-pattern candidates, overlap resolution, offsets, type filters."""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from passerelle.compliance import Engine, Finding, Pattern, detectors, resolve
from passerelle.compliance.detectors import default_detectors
from passerelle.compliance.detectors.codewords import CodewordDetector
from passerelle.compliance.findings import ENTITY_TYPES
from tests.compliance import engine, found


class FakeDetector:
    """A Detector written only against the protocol, as the person and defense detectors are."""

    def __init__(self, name: str, patterns: Sequence[Pattern], extra: list[Finding] | None = None) -> None:
        self.name = name
        self.types = frozenset(p.entity for p in patterns) | frozenset(f.type for f in extra or [])
        self._patterns = tuple(patterns)
        self._extra = extra or []

    @property
    def patterns(self) -> Sequence[Pattern]:
        return self._patterns

    def scan(self, text: str) -> list[Finding]:
        return list(self._extra)


def test_every_pattern_is_valid_python_too_and_ids_are_unique() -> None:
    patterns = [p for d in engine().detectors for p in d.patterns]
    for p in patterns:
        re.compile(p.regex)
        assert p.entity in ENTITY_TYPES
    assert len({p.id for p in patterns}) == len(patterns)


def test_default_detectors_without_the_optional_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detectors, "_optional_module", lambda name: None)
    assert [d.name for d in default_detectors()] == ["finance", "identity", "contact", "health", "secrets"]


def test_default_detectors_pick_up_optional_modules_through_the_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("passerelle.compliance.detectors.defense")

    class DefenseDetector(FakeDetector):
        def __init__(self, codewords: Sequence[str] = ()) -> None:
            super().__init__("defense", [Pattern("codeword", "|".join(codewords), "CODEWORD")])

    class Helper:  # not a detector: ignored
        pass

    DefenseDetector.__module__ = Helper.__module__ = module.__name__
    module.DefenseDetector = DefenseDetector  # type: ignore[attr-defined]
    module.Helper = Helper  # type: ignore[attr-defined]
    monkeypatch.setattr(detectors, "_optional_module", lambda name: module if name == "defense" else None)
    found_detectors = default_detectors(codewords=["BLUEFIN", "REDOAK"])
    assert [d.name for d in found_detectors][-1] == "defense"
    assert Engine(found_detectors).scan("Project BLUEFIN starts")[0].type == "CODEWORD"


def test_optional_module_absent_is_none() -> None:
    assert detectors._optional_module("no_such_detector_module") is None


def test_engine_rejects_bad_pattern_sets() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Engine([FakeDetector("a", [Pattern("x", "abc", "EMAIL"), Pattern("x", "def", "EMAIL")])])
    with pytest.raises(ValueError, match="unknown entity"):
        Engine([FakeDetector("a", [Pattern("x", "abc", "NOT_A_TYPE")])])
    with pytest.raises(ValueError, match="does not compile"):
        Engine([FakeDetector("a", [Pattern("x", "(unclosed", "EMAIL")])])


def test_an_engine_of_protocol_detectors_and_their_own_scan() -> None:
    extra = Finding("PERSON", 0, 4, 0.9)
    detector = FakeDetector("fake", [Pattern("word", r"\bzorg\b", "CODEWORD", score=0.7)], [extra])
    result = Engine([detector]).scan("Jean said zorg twice: zorg")
    assert result == [extra, Finding("CODEWORD", 10, 14, 0.7), Finding("CODEWORD", 22, 26, 0.7)]
    assert Engine([]).scan("anything") == []


def test_leftmost_longest_per_pattern_and_fallback_to_a_shorter_candidate() -> None:
    # The longest candidate from a start fails validation; the next one from the same start holds.
    def only_even(text: str, start: int, end: int) -> Finding | None:
        return Finding("CODEWORD", start, end, 0.8) if (end - start) % 2 == 0 else None

    detector = FakeDetector("fake", [Pattern("run", r"\ba+", "CODEWORD", only_even)])
    assert [(f.start, f.end) for f in Engine([detector]).scan("aaaaa b aaaa")] == [(0, 4), (8, 12)]


def test_overlaps_resolved_by_score_then_length() -> None:
    assert found("SIRET 732 829 320 00074") == [("FR_SIRET", "732 829 320 00074")]  # not its SIREN
    text = "see https://pay.example.com/?pan=4111111111111111 now"
    assert found(text) == [("CREDIT_CARD", "4111111111111111")]  # the checksum beats the URL around it
    assert found(text, {"URL"}) == [("URL", "https://pay.example.com/?pan=4111111111111111")]


def test_resolve() -> None:
    a = Finding("URL", 0, 30, 0.6)
    b = Finding("CREDIT_CARD", 10, 26, 0.95)
    c = Finding("FR_SIREN", 40, 49, 0.95)
    d = Finding("FR_SIRET", 40, 55, 0.95)
    e = Finding("EMAIL", 60, 70, 0.9)
    assert resolve([e, d, a, c, b]) == [b, d, e]
    assert resolve([e, a]) == [a, e]  # nothing overlaps: everything stays, sorted
    assert resolve([Finding("EMAIL", 5, 5, 0.9)]) == []


@pytest.mark.parametrize("prefix", ["é", "😀", "née à Paris, numéro ", "\u4e2d\u6587 ", "e\u0301", "\ud800 "])
def test_offsets_are_string_offsets_after_multibyte_text(prefix: str) -> None:
    text = f"{prefix}carte 4111 1111 1111 1111 — mail é.x@exemple.fr et 😀 FR76 3000 6000 0112 3456 7890 189"
    result = engine().scan(text)
    assert [(f.type, text[f.start:f.end]) for f in result] == [
        ("CREDIT_CARD", "4111 1111 1111 1111"), ("EMAIL", "x@exemple.fr"),
        ("IBAN", "FR76 3000 6000 0112 3456 7890 189")]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_any_text_around_a_value_keeps_offsets_exact(before: str, after: str) -> None:
    text = f"{before} 4111111111111111 {after}"
    result = engine().scan(text)
    assert "4111111111111111" in [text[f.start:f.end] for f in result if f.type == "CREDIT_CARD"]
    for f in result:
        assert 0 <= f.start < f.end <= len(text)


def test_types_filter() -> None:
    text = "mail a@example.com card 4111111111111111 IBAN GB29NWBK60161331926819"
    assert [t for t, _ in found(text, {"IBAN"})] == ["IBAN"]
    assert [t for t, _ in found(text, ["EMAIL", "CREDIT_CARD"])] == ["EMAIL", "CREDIT_CARD"]
    assert found(text, set()) == []


def test_concurrent_scans_from_threads() -> None:
    text = "card 4111111111111111, IBAN GB29NWBK60161331926819, a@example.com " * 20
    expected = engine().scan(text)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: engine().scan(text), range(40)))
    assert all(r == expected for r in results)


def test_empty_and_clean_text() -> None:
    assert engine().scan("") == []
    assert engine().scan("Nothing to see here, just prose about a secret garden in 2024.") == []


@cache
def _everything() -> Engine:
    """Every shipped detector, the person names and the defense markings included (they scan beside the pass)."""
    return Engine(default_detectors())


_PIECES = (
    "Bonjour, je m'appelle Marie Dupont, née le 12 mars 1985.", "NIR 2 85 03 75 116 238 91",
    "carte 4111 1111 1111 1111",
    "IBAN FR76 3000 6000 0112 3456 7890 189", "Dear Dr. John Smith,", "SECRET//NOFORN", "ITAR controlled, ECCN 5A002",
    "call +44 20 7946 0958", "mail é.x@exemple.fr", "order 4111111111111112", "projet TAMARIS", "😀 Herr Müller",
    "the secret garden", "", " ", "Patient: Anne Martin, MRN 00123456",
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=5).map(" ".join), max_size=8),
       st.sampled_from([None, frozenset({"PERSON", "CREDIT_CARD"}), frozenset({"CODEWORD"}), frozenset()]))
def test_scan_many_finds_what_scan_finds_text_by_text(texts: list[str], types: frozenset[str] | None) -> None:
    scanner = _everything()
    codewords = (CodewordDetector(["Tamaris"]),)
    assert scanner.scan_many(texts, types, extra=codewords) == [scanner.scan(t, types, extra=codewords) for t in texts]
    assert scanner.scan_many(texts, types) == [scanner.scan(t, types) for t in texts]


def test_scan_many_of_nothing_and_of_an_engine_without_patterns() -> None:
    assert _everything().scan_many([]) == []
    only_scan = Engine([FakeDetector("f", [], [Finding("PERSON", 0, 4, 0.8)])])
    assert only_scan.scan_many(["Anne", ""]) == [[Finding("PERSON", 0, 4, 0.8)], []]
