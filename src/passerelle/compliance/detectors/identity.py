"""Identity numbers: US SSN and ITIN, French NIR, UK NHS and National Insurance numbers, passports,
driving licences (the last two only after their keyword: their shapes are ordinary codes)."""

from __future__ import annotations

from stdnum.fr import nir
from stdnum.us import ssn

from passerelle.compliance.context import GAP, first_near, keyword, near
from passerelle.compliance.detectors.common import (
    ALNUM_UPPER,
    PatternDetector,
    a_reference,
    attached,
    compact,
    tail,
)
from passerelle.compliance.findings import Finding, Pattern

# IRS: an ITIN is 9XX-GG-XXXX with the group GG in 50-65, 70-88, 90-92 or 94-99 (python-stdnum's list
# predates the 50-65 range of 2013).
_ITIN_GROUPS = frozenset(range(50, 66)) | frozenset(range(70, 89)) | frozenset({90, 91, 92}) | \
    frozenset(range(94, 100))


def itin_valid(number: str) -> bool:
    return len(number) == 9 and number.isdigit() and number[0] == "9" and int(number[3:5]) in _ITIN_GROUPS


def _ssn_or_itin(text: str, start: int, end: int) -> Finding | None:
    value = text[start:end]
    if attached(text, start, end):
        return None
    context = first_near(text, start, ("ssn", "itin"))
    if context is None and len(value) == 9:
        return None  # a bare 9-digit number is anything without its keyword
    number = compact(value)
    # An ITIN starts with 9, which no SSN does: one pattern serves both.
    entity, valid = ("US_ITIN", itin_valid(number)) if number[0] == "9" else ("US_SSN", ssn.is_valid(number))
    if not valid:
        return None
    if context is not None:
        return Finding(entity, start, end, 0.95)
    if a_reference(text, start, False):
        return None
    return Finding(entity, start, end, 0.85 if "-" in value else 0.7)


def _nir(text: str, start: int, end: int) -> Finding | None:
    number = compact(text[start:end]).upper()
    if not nir.is_valid(number) or attached(text, start, end):
        return None
    context = near(text, start, "nir")
    if a_reference(text, start, context):
        return None
    # 0.97 alone: mod 97 over a structured number says more than Luhn over a card-like one (15 digits can be both).
    return Finding("FR_NIR", start, end, 1.0 if context else 0.97)


def nhs_valid(number: str) -> bool:
    """Mod 11 with weights 10..2 and the check digit (python-stdnum's rule, without its parsing)."""
    if len(number) != 10 or not number.isascii() or not number.isdigit():
        return False
    return sum(weight * (ord(c) - 48) for weight, c in zip(range(10, 0, -1), number, strict=True)) % 11 == 0


def _nhs(text: str, start: int, end: int) -> Finding | None:
    value = text[start:end]
    context = near(text, start, "nhs")
    # Mod 11 passes one 10-digit number in eleven: alone, only the NHS's own 3 3 4 spacing counts,
    # and a US phone number written the same way stays a phone number (PHONE scores higher).
    spaced = value.count(" ") == 2 and len(value) == 12
    if not (context or spaced) or not nhs_valid(compact(value)) or attached(text, start, end):
        return None
    if context:
        return Finding("UK_NHS", start, end, 0.95)
    if a_reference(text, start, False) or first_near(text, start, ("phone_en", "phone_fr", "phone_de")) is not None:
        return None
    return Finding("UK_NHS", start, end, 0.65)


_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def _nino(text: str, start: int, end: int) -> Finding | None:
    if text[start:start + 2] in _NINO_BAD_PREFIXES:
        return None
    return Finding("UK_NINO", start, end, 0.95 if near(text, start, "nino") else 0.85)


def _passport(text: str, start: int, end: int) -> Finding | None:
    return tail(text, start, end, ALNUM_UPPER, 0.8, "PASSPORT", min_len=6, need_digit=True)


def _driver(text: str, start: int, end: int) -> Finding | None:
    return tail(text, start, end, ALNUM_UPPER | {"-"}, 0.8, "DRIVER_LICENSE", min_len=5, need_digit=True)


PATTERNS = (
    Pattern("us_ssn", r"\b(?:\d{3}-\d\d-\d{4}|\d{3} \d\d \d{4}|\d{9})\b", "US_SSN", _ssn_or_itin),
    Pattern("fr_nir", r"\b[1-478][ .]?\d\d[ .]?(?:0[1-9]|1[0-2]|[2-9]\d)[ .]?(?:\d\d|2[ABab])[ .]?\d{3}[ .]?\d{3}"
                      r"[ .]?\d\d\b", "FR_NIR", _nir),
    Pattern("uk_nhs", r"\b\d{3}[ -]?\d{3}[ -]?\d{4}\b", "UK_NHS", _nhs),
    Pattern("uk_nino", r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d\d ?\d\d ?\d\d ?[A-D]\b", "UK_NINO", _nino),
    Pattern("passport", keyword("passport") + GAP + r"[A-Z0-9]{6,9}\b", "PASSPORT", _passport),
    Pattern("driver_license", keyword("driver") + GAP + r"[A-Z0-9][A-Z0-9-]{3,16}[A-Z0-9]\b", "DRIVER_LICENSE",
            _driver),
)

TYPES = frozenset({"US_SSN", "US_ITIN", "FR_NIR", "UK_NHS", "UK_NINO", "PASSPORT", "DRIVER_LICENSE"})


class IdentityDetector(PatternDetector):
    name = "identity"
    types = TYPES
    _patterns = PATTERNS
