"""Classification markings, export control and codewords, without the engine.

Every case runs the detector's patterns through Python's ``re`` and through a minimal Hyperscan
pass (SOM leftmost, every end, longest first per pattern) and requires the same findings.
"""

from __future__ import annotations

import hyperscan
import pytest

from passerelle.compliance.detectors.defense import DefenseDetector
from passerelle.compliance.findings import Finding
from tests.compliance.test_person import hs_findings, re_findings

DETECTOR = DefenseDetector(codewords=["Blue Falcon", "Épervier", "ORION", "Projet-X"])


def findings(text: str, detector: DefenseDetector = DETECTOR) -> list[Finding]:
    by_re = re_findings(detector.patterns, text)
    assert by_re == hs_findings(detector.patterns, text)
    assert detector.scan(text) == []
    return by_re


def found(text: str, kind: str = "CLASSIFICATION_MARKING") -> list[tuple[str, str | None]]:
    return [(text[f.start : f.end], f.subtype) for f in findings(text) if f.type == kind]


# --- classification markings -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # US banners and controls
    ("SECRET//NOFORN\n\nThe convoy leaves at dawn.", [("SECRET//NOFORN", "US:SECRET//NOFORN")]),
    ("TOP SECRET//SCI", [("TOP SECRET//SCI", "US:TOP SECRET//SCI")]),
    ("TOP SECRET//SI/TK//NOFORN", [("TOP SECRET//SI/TK//NOFORN", "US:TOP SECRET//SI/TK//NOFORN")]),
    ("The memo is marked SECRET//REL TO USA, FVEY and dated May 3.",
     [("SECRET//REL TO USA, FVEY", "US:SECRET//REL TO USA, FVEY")]),
    ("CONFIDENTIAL\nQuarterly plan", [("CONFIDENTIAL", "US:CONFIDENTIAL")]),
    ("   *** TOP SECRET ***   \nbody", [("TOP SECRET", "US:TOP SECRET")]),
    ("CLASSIFICATION: SECRET", [("SECRET", "US:SECRET")]),
    ("CUI\nControlled by: DoD", [("CUI", "US:CUI")]),
    ("CUI//SP-PRVCY", [("CUI//SP-PRVCY", "US:CUI//SP-PRVCY")]),
    ("UNCLASSIFIED//FOR OFFICIAL USE ONLY", [("UNCLASSIFIED//FOR OFFICIAL USE ONLY", "US:UNCLASSIFIED//FOUO")]),
    # portion marks
    ("(S//NF) The convoy leaves at dawn.", [("(S//NF)", "US:SECRET//NOFORN")]),
    ("(TS//SCI) Sources are listed below.", [("(TS//SCI)", "US:TOP SECRET//SCI")]),
    ("(U//FOUO) Meeting at 10.", [("(U//FOUO)", "US:UNCLASSIFIED//FOUO")]),
    ("SECRET\n(S) First paragraph.\n(C) Second paragraph.\n(U) Third.",
     [("SECRET", "US:SECRET"), ("(S)", "US:SECRET"), ("(C)", "US:CONFIDENTIAL")]),
    # France, IGI 1300 and legacy levels, with or without accents
    ("TRÈS SECRET\nObjet : plan de vol", [("TRÈS SECRET", "FR:TRES SECRET")]),
    ("TRES SECRET", [("TRES SECRET", "FR:TRES SECRET")]),
    ("Ce document est DIFFUSION RESTREINTE et ne doit pas sortir.",
     [("DIFFUSION RESTREINTE", "FR:DIFFUSION RESTREINTE")]),
    ("SECRET DÉFENSE", [("SECRET DÉFENSE", "FR:SECRET DEFENSE")]),
    ("Note CONFIDENTIEL DEFENSE du 3 mai", [("CONFIDENTIEL DEFENSE", "FR:CONFIDENTIEL DEFENSE")]),
    ("TRÈS SECRET DÉFENSE", [("TRÈS SECRET DÉFENSE", "FR:TRES SECRET DEFENSE")]),
    ("Classification : Secret Défense", [("Secret Défense", "FR:SECRET DEFENSE")]),
    ("Niveau de classification\u00a0: Diffusion Restreinte", [("Diffusion Restreinte", "FR:DIFFUSION RESTREINTE")]),
    ("SECRET\nLe présent document est destiné aux seuls services de la défense et des armées.",
     [("SECRET", "FR:SECRET")]),
    # NATO
    ("NATO SECRET", [("NATO SECRET", "NATO:NATO SECRET")]),
    ("This annex is COSMIC TOP SECRET.", [("COSMIC TOP SECRET", "NATO:COSMIC TOP SECRET")]),
    ("Document SECRET OTAN n° 12", [("SECRET OTAN", "NATO:NATO SECRET")]),
    ("DIFFUSION RESTREINTE OTAN", [("DIFFUSION RESTREINTE OTAN", "NATO:NATO RESTRICTED")]),
    ("NATO RESTRICTED / NATO CONFIDENTIAL",
     [("NATO RESTRICTED", "NATO:NATO RESTRICTED"), ("NATO CONFIDENTIAL", "NATO:NATO CONFIDENTIAL")]),
    ("(NS) Force posture.", []),  # bare portion mark, nothing else marked: not enough
    # UK
    ("OFFICIAL-SENSITIVE", [("OFFICIAL-SENSITIVE", "UK:OFFICIAL-SENSITIVE")]),
    ("Marked OFFICIAL SENSITIVE by HMG", [("OFFICIAL SENSITIVE", "UK:OFFICIAL-SENSITIVE")]),
    ("UK SECRET", [("UK SECRET", "UK:SECRET")]),
    ("TOP SECRET\nHMG OFFICIAL-SENSITIVE annex",
     [("TOP SECRET", "UK:TOP SECRET"), ("OFFICIAL-SENSITIVE", "UK:OFFICIAL-SENSITIVE")]),
])
def test_markings(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize("text", [
    "The secret to a good sauce is patience.",
    "C'est un secret, ne le dis à personne.",
    "Top secret recipe: grandma's pancakes.",
    "This is TOP SECRET, don't tell mom.",
    "Keep this CONFIDENTIAL please, and the SECRET too.",
    "Please treat this as confidential information.",
    "The Secret Garden; Victoria's Secret; secret santa; Secret Service.",
    "Le Secret de Polichinelle. Ein Geheimnis ist kein SECRET.",
    "UNCLASSIFIED",  # protects nothing
    "Options: (A) red (B) green (C) blue",
    "(C) 2024 Acme Corp. All rights reserved.",
    "(A) Apples\n(B) Pears\n(C) Plums, see https://example.org/list",
    "TypeScript (TS) and C# (C) are languages.",
    "Classification: public",
    "SECRETARY of State; CONFIDENTIALITY agreement",
    "The CUI program and the FOUO label are explained in the handbook.",
])
def test_ordinary_secret_is_not_a_marking(text: str) -> None:
    assert found(text) == []


def test_bare_portion_marks_need_a_marked_text_and_a_line_start() -> None:
    assert found("SECRET//NOFORN\n(C) 2024 Acme Corp.\n(C) Copyright the authors") == [
        ("SECRET//NOFORN", "US:SECRET//NOFORN")]
    assert found("(S//NF) Summary.\nSee item (C) below.\n(C) Budget lines.") == [
        ("(S//NF)", "US:SECRET//NOFORN"), ("(C)", "US:CONFIDENTIAL")]


def test_patterns_compile_for_hyperscan_in_utf8_mode_too() -> None:
    patterns = DETECTOR.patterns
    db = hyperscan.Database()
    db.compile(expressions=[p.regex.encode() for p in patterns], ids=list(range(len(patterns))),
               elements=len(patterns), flags=[hyperscan.HS_FLAG_SOM_LEFTMOST | hyperscan.HS_FLAG_UTF8] * len(patterns))


def test_marking_offsets_after_multibyte_text() -> None:
    text = "Réunion à Zürich ☕ 🙂 — SECRET//NOFORN"
    [(value, subtype)] = found(text)
    assert value == "SECRET//NOFORN" and subtype == "US:SECRET//NOFORN"


# --- export control ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("This item is controlled under ITAR.", [("ITAR", "ITAR")]),
    ("Subject to the International Traffic in Arms Regulations (22 CFR 120-130).",
     [("International Traffic in Arms Regulations", "ITAR"), ("22 CFR 120", "ITAR")]),
    ("Listed in USML Category XI (military electronics).", [("USML Category XI", "ITAR")]),
    ("ITAR-controlled technical data", [("ITAR", "ITAR")]),
    ("Classified as EAR99, no licence required.", [("EAR99", "EAR")]),
    ("Export Administration Regulations, 15 CFR 730-774",
     [("Export Administration Regulations", "EAR"), ("15 CFR 730", "EAR")]),
    ("This software is subject to the EAR.", [("subject to the EAR", "EAR")]),
    ("ECCN 5D002 (encryption software)", [("5D002", "ECCN:5D002")]),
    ("The module is classified as 3A001.b.2 under the dual-use list.",
     [("3A001.b.2", "ECCN:3A001.b.2"), ("dual-use list", "EU_DUAL_USE")]),
    ("Technologie 9E003.a soumise au contrôle des exportations", [("9E003.a", "ECCN:9E003.a")]),
    ("Regulation (EU) 2021/821 applies.", [("Regulation (EU) 2021/821", "EU_DUAL_USE")]),
    ("Ces biens à double usage relèvent du règlement (UE) 2021/821.",
     [("biens à double usage", "EU_DUAL_USE"), ("règlement (UE) 2021/821", "EU_DUAL_USE")]),
])
def test_export_control(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text, "EXPORT_CONTROL") == expected


@pytest.mark.parametrize("text", [
    "Part number 3A001 is back in stock.",
    "Order 5D002-XL shipped on Monday.",
    "She has an ear for music; the EAR is an acronym here.",
    "Itar is a village.",
    "The dual use of this room is a kitchen and an office.",
])
def test_export_control_lookalikes(text: str) -> None:
    assert found(text, "EXPORT_CONTROL") == []


# --- codewords ---------------------------------------------------------------------------------

def test_codewords_match_whole_words_in_any_case() -> None:
    text = "Operation blue  FALCON starts; l'ÉPERVIER et l'épervier; Orion; ORIONS; projet-x; Projet-XY"
    assert found(text, "CODEWORD") == [("blue  FALCON", None), ("ÉPERVIER", None), ("épervier", None),
                                       ("Orion", None), ("projet-x", None)]


def test_codeword_offsets_after_multibyte_text() -> None:
    text = "日本語 🙂 — orion"
    [(value, _)] = found(text, "CODEWORD")
    assert value == "orion"


def test_no_codewords_no_pattern() -> None:
    assert "codeword" not in [p.id for p in DefenseDetector().patterns]
    assert "codeword" not in [p.id for p in DefenseDetector(codewords=["  ", ""]).patterns]


def test_codeword_value_is_never_in_the_finding() -> None:
    [finding] = [f for f in findings("ORION") if f.type == "CODEWORD"]
    assert finding.subtype is None


def test_protocol_shape() -> None:
    assert DETECTOR.types == {"CLASSIFICATION_MARKING", "EXPORT_CONTROL", "CODEWORD"}
    ids = [p.id for p in DETECTOR.patterns]
    assert len(ids) == len(set(ids))


# --- regressions of issue 5 --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("1.2 (S//NF) The convoy leaves at dawn.", [("(S//NF)", "US:SECRET//NOFORN")]),
    ("SECRET//NOFORN\n(U) 3. General text.\n(S) 4. The convoy.\n1.2 (C) Details follow.\nSECRET//NOFORN",
     [("SECRET//NOFORN", "US:SECRET//NOFORN"), ("(S)", "US:SECRET"), ("(C)", "US:CONFIDENTIAL"),
      ("SECRET//NOFORN", "US:SECRET//NOFORN")]),
    ("3. (S) The convoy leaves.\n4. (C) It is escorted.\n", [("(S)", "US:SECRET"), ("(C)", "US:CONFIDENTIAL")]),
    ("a. (S) first\nb. (C) second\n", [("(S)", "US:SECRET"), ("(C)", "US:CONFIDENTIAL")]),
])
def test_portion_marks_after_paragraph_numbers(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize("text", [
    "(U) 3. text",  # unclassified, alone
    "(C) 2024 Acme\n(C) Copyright Acme",
    "1. (S) and 2. (C) in one line of prose are list items",
])
def test_portion_lookalikes(text: str) -> None:
    assert found(text) == []


def test_a_portion_inside_a_line_is_not_taken_for_the_line_start() -> None:
    text = "SECRET//NOFORN\n(S) first item, with a (C) inside\n(C) second item"
    assert [v for v, _ in found(text)] == ["SECRET//NOFORN", "(S)", "(C)"]
    assert [f.start for f in findings(text)][-1] == text.index("(C) second")


@pytest.mark.parametrize(("text", "expected"), [
    ("VS-NUR FÜR DEN DIENSTGEBRAUCH\n\nBericht",
     [("VS-NUR FÜR DEN DIENSTGEBRAUCH", "DE:VS-NUR FUR DEN DIENSTGEBRAUCH")]),
    ("Dieses Dokument ist als VS-NfD eingestuft.", [("VS-NfD", "DE:VS-NUR FUR DEN DIENSTGEBRAUCH")]),
    ("Das Papier ist VS-VERTRAULICH zu behandeln.", [("VS-VERTRAULICH", "DE:VS-VERTRAULICH")]),
    ("GEHEIM\nLagebericht", [("GEHEIM", "DE:GEHEIM")]),
    ("--- STRENG GEHEIM ---\nText", [("STRENG GEHEIM", "DE:STRENG GEHEIM")]),
    ("Einstufung: Geheim", [("Geheim", "DE:GEHEIM")]),
    ("Geheimhaltungsgrad : VS-Vertraulich", [("VS-Vertraulich", "DE:VS-VERTRAULICH")]),
])
def test_german_markings(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize("text", [
    "Das bleibt geheim, streng geheim sogar.",
    "Die Zutaten sind GEHEIM, sagt der Koch.",
    "The secret is out. It's a SECRET recipe. Keep it secret!",
    "secret\nSecret\nTop secret",
    "Le secret de la recette est bien gardé.",
])
def test_the_word_secret_or_geheim_in_prose_is_never_a_finding(text: str) -> None:
    assert findings(text) == []
