"""PERSON (dictionary scan) and DATE_OF_BIRTH (pattern + validator), without the engine.

Patterns are run here twice: with Python's ``re`` (leftmost, non-overlapping) and with a minimal
Hyperscan pass (SOM leftmost, every end, longest first) so that both engines agree on them.
"""

from __future__ import annotations

import re

import hyperscan
import pytest

from passerelle.compliance.detectors.person import PersonDetector, validate_date_of_birth
from passerelle.compliance.findings import Finding, Pattern


@pytest.fixture(scope="module")
def detector() -> PersonDetector:
    return PersonDetector()


def names(detector: PersonDetector, text: str) -> list[str]:
    found = detector.scan(text)
    assert all(f.type == "PERSON" and 0 < f.score <= 1 for f in found)
    return [text[f.start : f.end] for f in found]


def re_findings(patterns: list[Pattern] | tuple[Pattern, ...], text: str) -> list[Finding]:
    out = []
    for p in patterns:
        done = -1  # like the engine: a match inside an accepted finding of the same pattern is not tried
        for m in re.finditer(p.regex, text, re.IGNORECASE if p.caseless else 0):
            if m.start() < done:
                continue
            f = p.validate(text, m.start(), m.end()) if p.validate else Finding(p.entity, m.start(), m.end(), p.score)
            if f is not None:
                out.append(f)
                done = max(m.end(), f.end)
    return sorted(out, key=lambda f: (f.start, f.end))


def hs_findings(patterns: list[Pattern] | tuple[Pattern, ...], text: str) -> list[Finding]:
    """Every Hyperscan match end, leftmost start, longest first; UTF-8 byte offsets made string offsets."""
    db = hyperscan.Database()
    db.compile(expressions=[p.regex.encode() for p in patterns], ids=list(range(len(patterns))),
               elements=len(patterns),
               flags=[hyperscan.HS_FLAG_SOM_LEFTMOST | (hyperscan.HS_FLAG_CASELESS if p.caseless else 0)
                      for p in patterns])
    data = text.encode()
    hits: list[tuple[int, int, int]] = []
    db.scan(data, match_event_handler=lambda i, s, e, _f, _c: hits.append((s, -e, i)))
    out, done = [], [-1] * len(patterns)
    for s, neg_e, i in sorted(hits):
        start, end = len(data[:s].decode()), len(data[:-neg_e].decode())
        if start < done[i]:
            continue
        p = patterns[i]
        f = p.validate(text, start, end) if p.validate else Finding(p.entity, start, end, p.score)
        if f is not None:
            out.append(f)
            done[i] = max(end, f.end)
    return sorted(out, key=lambda f: (f.start, f.end))


def dates(detector: PersonDetector, text: str) -> list[str]:
    found = re_findings(detector.patterns, text)
    assert [(f.type, f.start, f.end) for f in found] == [(f.type, f.start, f.end)
                                                        for f in hs_findings(detector.patterns, text)]
    assert all(f.type == "DATE_OF_BIRTH" for f in found)
    return [text[f.start : f.end] for f in found]


# --- PERSON -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # English
    ("Please forward the contract to John Smith before Friday.", ["John Smith"]),
    ("Dear Mr. Thompson, thank you for your order.", ["Thompson"]),
    ("Dear Sarah,\nyour package shipped.", ["Sarah"]),
    ("My name is Jennifer and I need help.", ["Jennifer"]),
    ("Contact Dr. Karen Morales DDS at the front desk.", ["Karen Morales"]),
    ("Mr Jonathan Parker Jr. called about the invoice.", ["Jonathan Parker"]),
    ("The report was written by John F. Kennedy.", ["John F. Kennedy"]),
    ("Attendees: Amanda Huff, Sean O'Neill", ["Amanda Huff", "Sean O'Neill"]),
    ("Best regards,\nGeoffrey Wright-Warner", ["Geoffrey Wright-Warner"]),
    ("Patient: Emily Watson\nAge: 54", ["Emily Watson"]),
    ("Name: Grace Hall", ["Grace Hall"]),  # two ambiguous words, but after a label
    # French
    ("Bonjour, je m'appelle Marie Dupont et j'ai besoin d'aide.", ["Marie Dupont"]),
    ("Je m\u2019appelle Camille.", ["Camille"]),
    ("Patient : DUPONT Marie, né le 12 mars 1985", ["DUPONT Marie"]),
    ("Nom : Durand", ["Durand"]),
    ("Rendez-vous de DUPONT Marie demain, puis de Jean MARTIN.", ["DUPONT Marie", "Jean MARTIN"]),
    ("Rendez-vous avec M. Lefebvre et Mme Le Gall demain.", ["Lefebvre", "Le Gall"]),
    ("Le dossier de Jean-Pierre Martin est complet.", ["Jean-Pierre Martin"]),
    ("Merci à Pauline de la Fontaine et à Théodore Didier du Pruvost.",
     ["Pauline de la Fontaine", "Théodore Didier du Pruvost"]),
    ("Cordialement,\nHélène Rousseau", ["Hélène Rousseau"]),
    ("Signé : François Lemaire", ["François Lemaire"]),
    # German
    ("Sehr geehrter Herr Müller, sehr geehrte Frau Dr. Schmidt,", ["Müller", "Schmidt"]),
    ("Mein Name ist Hans-Jürgen Becker.", ["Hans-Jürgen Becker"]),
    ("Mit freundlichen Grüßen\nKatarina Hermann B.Sc.", ["Katarina Hermann"]),
    # Latin Extended names, non-Latin-1 text around them
    ("Réunion — Łukasz Kowalski ☕ et Zoë Nowak", ["Łukasz Kowalski", "Zoë Nowak"]),
])
def test_names_in_english_french_and_german(detector: PersonDetector, text: str, expected: list[str]) -> None:
    assert names(detector, text) == expected


@pytest.mark.parametrize("text", [
    "The secret to a good sauce is patience.",
    "Will you send it? May I help? The grace period ends in June.",
    "Our Product Roadmap For Summer Travel",
    "Ship to 1347 George Ford Suite 494, New Josephland.",
    "Livraison au 12 rue Victor Hugo, 75011 Paris.",
    "He worked at Heath Ltd and then at Martin SARL.",
    "Visit New York City, Los Angeles or San Francisco.",
    "Le Petit Prince est un livre. Der Kleine Prinz ist ein Buch.",
    "Kein Speicher. Ungültige Nummer. Die Deutsche Bahn und die Bundesagentur für Arbeit.",
    "CHAR    CHAR    HD DVD    NES ROM",
    "Rose Garden and Grace Period",
    "z. B. Freitag",
    "Subject: Meeting Notes\nLocation: Paris",
])
def test_no_name_in_ordinary_capitalised_words(detector: PersonDetector, text: str) -> None:
    assert names(detector, text) == []


def test_offsets_are_string_offsets_after_multibyte_text(detector: PersonDetector) -> None:
    text = "🙂 Café crème — naïve 日本語 «test» : Jean Dupont a signé."
    [finding] = detector.scan(text)
    assert text[finding.start : finding.end] == "Jean Dupont"


def test_scores_separate_dictionary_and_context(detector: PersonDetector) -> None:
    text = "Marie Dupont, Bekir Neuschäfer, je m'appelle Zorglub."
    found = {text[f.start : f.end]: f.score for f in detector.scan(text)}
    assert found["Marie Dupont"] > found["Bekir Neuschäfer"]  # a known surname beats an unknown word
    assert "Zorglub" in found  # a cue alone is enough for a single word


def test_scan_is_empty_without_capitals(detector: PersonDetector) -> None:
    assert detector.scan("") == []
    assert detector.scan("nothing here but lowercase words and numbers 1234.") == []


def test_same_lists_share_one_compiled_table() -> None:
    assert PersonDetector()._triggers is PersonDetector()._triggers


def test_protocol_shape(detector: PersonDetector) -> None:
    assert detector.types == {"PERSON", "DATE_OF_BIRTH"}
    assert [p.id for p in detector.patterns] == ["date_of_birth"]


# --- DATE_OF_BIRTH ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("Marie, née le 12 mars 1985 à Lyon.", "12 mars 1985"),
    ("né le 1er février 1962", "1er février 1962"),
    ("Date de naissance : 03/07/1990", "03/07/1990"),
    ("DOB: 03/14/1975", "03/14/1975"),
    ("D.O.B. 1975-03-14", "1975-03-14"),
    ("date of birth is 14 March 1975.", "14 March 1975"),
    ("He was born on March 14th, 1975 in Ohio.", "March 14th, 1975"),
    ("Patient born 12-Mar-1985", "12-Mar-1985"),
    ("geboren am 12.03.1985 in Köln", "12.03.1985"),
    ("Geburtsdatum: 12. März 1985", "12. März 1985"),
    ("Réf. ☕ née le 5/6/85", "5/6/85"),
    ("Il est né à Lyon. Né le 03.02.1971.", "03.02.1971"),
])
def test_date_of_birth_needs_a_birth_keyword(detector: PersonDetector, text: str, expected: str) -> None:
    assert dates(detector, text) == [expected]


@pytest.mark.parametrize("text", [
    "Invoice dated 12/03/1985, due 12 mars 1985.",
    "Le rendez-vous est le 12 mars 2024.",
    "DOB: 12/03/2999",  # not a birth date that has happened
    "DOB: 31/31/1985",
    "born in 1985",  # a year alone is not a date of birth
    "Order 1985-03-12-0042 shipped",
    "Il est nécessaire de signer le 12/03/2024.",
    "The borne 12/03/1985 marker",
])
def test_dates_without_birth_context_or_impossible(detector: PersonDetector, text: str) -> None:
    assert dates(detector, text) == []


def test_validator_reads_the_date_after_the_keyword() -> None:
    text = "DOB 12/03/1985, DOB 12/03/19851, borne 12/03/1985"
    finding = validate_date_of_birth(text, 0, 3)
    assert finding is not None and text[finding.start : finding.end] == "12/03/1985"
    assert validate_date_of_birth(text, 16, 19) is None  # no date ends inside "19851"
    assert validate_date_of_birth(text, 33, 37) is None  # "born" of "borne"


def test_patterns_compile_for_hyperscan_in_utf8_mode_too(detector: PersonDetector) -> None:
    db = hyperscan.Database()
    db.compile(expressions=[p.regex.encode() for p in detector.patterns], ids=[0], elements=1,
               flags=[hyperscan.HS_FLAG_SOM_LEFTMOST | hyperscan.HS_FLAG_UTF8])


# --- regressions of issue 5 --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("Bonjour, Jean M. Dupont a appelé.", ["Jean M. Dupont"]),
    ("Dictated by Richard M. Sutton; transcribed by staff.", ["Richard M. Sutton"]),
    ("Author: Mark M. Gilbert", ["Mark M. Gilbert"]),
    ("Bonjour M. Dupont, merci.", ["Dupont"]),  # "M." alone before a surname is still Monsieur
    ("Lettre de M. Jean Dupont.", ["Jean Dupont"]),
])
def test_a_middle_initial_m_keeps_the_name_whole(detector: PersonDetector, text: str, expected: list[str]) -> None:
    assert names(detector, text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Ich bin am 15.07.1936 geboren, falls Sie das brauchen.", "15.07.1936"),
    ("Ich bin am 4. April 1999 geboren.", "4. April 1999"),
])
def test_german_date_before_geboren(detector: PersonDetector, text: str, expected: str) -> None:
    assert dates(detector, text) == [expected]


@pytest.mark.parametrize("text", ["Er wurde 1936 geboren.", "Sie ist am 15.07.2036 geboren.", "am 15.07.1936, geboren"])
def test_german_geboren_without_a_plausible_date_before(detector: PersonDetector, text: str) -> None:
    assert dates(detector, text) == []
