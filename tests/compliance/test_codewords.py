"""A tenant's codewords: a detector of its own, compiled once per list, used beside an engine."""

from __future__ import annotations

import threading

import pytest

from passerelle.compliance import Engine
from passerelle.compliance.detectors import FinanceDetector
from passerelle.compliance.detectors.codewords import CodewordDetector

WORDS = ["NIGHTJAR", "Blue Harvest", "épervier", "projet-x", "Straße Null"]


def spans(detector: CodewordDetector, text: str) -> list[str]:
    return [text[f.start:f.end] for f in detector.scan(text)]


def test_case_insensitive_whole_words_unicode_aware() -> None:
    detector = CodewordDetector(WORDS)
    text = ("nightjar, NightJar and NIGHTJARS; blue\n  harvest; l'ÉPERVIER, l'Épervier, éperviers, "
            "xépervier; projet-x but not projet-xy; STRASSE NULL is not spelled the same, STRAßE NULL is")
    assert spans(detector, text) == ["nightjar", "NightJar", "blue\n  harvest", "ÉPERVIER", "Épervier", "projet-x",
                                     "STRAßE NULL"]


def test_findings_carry_the_type_and_no_value() -> None:
    [finding] = CodewordDetector(["Tamaris"]).scan("Programme TAMARIS.")
    assert (finding.type, finding.start, finding.end, finding.subtype) == ("CODEWORD", 10, 17, None)


def test_offsets_are_string_offsets_after_multibyte_text() -> None:
    text = "日本語 🙂 — réunion sur NIGHTJAR — 🙂 nightjar"
    detector = CodewordDetector(WORDS)
    assert spans(detector, text) == ["NIGHTJAR", "nightjar"]
    assert [f.start for f in detector.scan(text)] == [text.index("NIGHTJAR"), text.index("nightjar")]


def test_a_longer_phrase_wins_over_a_word_inside_it() -> None:
    detector = CodewordDetector(["KESTREL", "Kestrel Veil"])
    assert spans(detector, "the KESTREL VEIL programme and kestrel alone") == ["KESTREL VEIL", "kestrel"]


def test_regex_metacharacters_are_literal() -> None:
    detector = CodewordDetector(["C++ core", "a.b", "(x)"])
    assert spans(detector, "C++ core, axb, a.b and (x)") == ["C++ core", "a.b", "(x)"]


def test_empty_lists_and_blank_words_find_nothing() -> None:
    assert CodewordDetector([]).scan("anything") == []
    assert len(CodewordDetector(["", "  ", "NIGHTJAR", "nightjar  "])) == 2  # NFC, spaces collapsed, case kept
    assert CodewordDetector(["x"]).scan("") == []


@pytest.mark.parametrize(("words", "message"), [
    ("NIGHTJAR", "one string"),
    (["ok", 3], "entry 1 is a int"),
    (["x" * 201], "longer than 200"),
    (["w"] * 10_001, "at most 10000"),
])
def test_bad_lists_are_clear_errors(words: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CodewordDetector(words)  # type: ignore[arg-type]


def test_the_engine_combines_an_extra_detector_and_resolves_overlaps() -> None:
    engine = Engine([FinanceDetector()])
    tenant = CodewordDetector(["Blue Harvest"])
    text = "BLUE HARVEST budget, card 4111 1111 1111 1111."
    assert [(f.type, text[f.start:f.end]) for f in engine.scan(text, extra=[tenant])] == [
        ("CODEWORD", "BLUE HARVEST"), ("CREDIT_CARD", "4111 1111 1111 1111")]
    assert [f.type for f in engine.scan(text)] == ["CREDIT_CARD"]
    assert [f.type for f in engine.scan(text, {"CREDIT_CARD"}, extra=[tenant])] == ["CREDIT_CARD"]
    assert [f.type for f in engine.scan(text, {"CODEWORD"}, extra=[tenant])] == ["CODEWORD"]


def test_detectors_of_two_tenants_are_independent() -> None:
    a, b = CodewordDetector(["NIGHTJAR"]), CodewordDetector(["TAMARIS"])
    text = "NIGHTJAR and TAMARIS"
    assert spans(a, text) == ["NIGHTJAR"]
    assert spans(b, text) == ["TAMARIS"]


def test_concurrent_scans() -> None:
    detector = CodewordDetector(WORDS)
    text = "x " * 500 + "projet-x " + "Épervier " * 3
    results: list[list[str]] = []

    def work() -> None:
        for _ in range(50):
            results.append(spans(detector, text))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [["projet-x", "Épervier", "Épervier", "Épervier"]] * 200
