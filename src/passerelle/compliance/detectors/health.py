"""Health identifiers: medical record numbers, ICD-10 codes and insurance ids after their keyword,
US NPI (Luhn over 80840 + number) and DEA registration numbers, Medicare beneficiary identifiers."""

from __future__ import annotations

from passerelle.compliance.context import GAP, keyword, near
from passerelle.compliance.detectors.common import ALNUM_UPPER, PatternDetector, embedded, luhn_ok, tail, trivial_digits
from passerelle.compliance.findings import Finding, Pattern

_CODE_CHARS = ALNUM_UPPER | {"-"}
_ICD_CHARS = ALNUM_UPPER | {"."}
_DEA_REGISTRANTS = frozenset("ABCDEFGHJKLMPRSTUX")


def _mrn(text: str, start: int, end: int) -> Finding | None:
    return tail(text, start, end, _CODE_CHARS, 0.8, "MEDICAL_RECORD_NUMBER", min_len=5, need_digit=True)


def _npi(text: str, start: int, end: int) -> Finding | None:
    # Ten digits starting 1 or 2 are also every epoch timestamp of this century: only after its keyword.
    number = text[start:end]
    if number[0] in "12" and near(text, start, "npi") and luhn_ok("80840" + number) and \
            not embedded(text, start, end):
        return Finding("US_NPI", start, end, 0.95)
    return None


def dea_check_ok(number: str) -> bool:
    d = [int(c) for c in number[2:]]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


def _dea(text: str, start: int, end: int) -> Finding | None:
    number = text[start:end]
    if number[0] not in _DEA_REGISTRANTS or trivial_digits(number[2:]) or not dea_check_ok(number):
        return None
    return Finding("US_DEA", start, end, 1.0 if near(text, start, "dea") else 0.9)


def _icd10(text: str, start: int, end: int) -> Finding | None:
    return tail(text, start, end, _ICD_CHARS, 0.8, "ICD10_CODE", min_len=3)


def _insurance(text: str, start: int, end: int) -> Finding | None:
    if text[max(0, start - 9):start].lower().endswith("national "):
        return None  # a UK National Insurance number is UK_NINO
    return tail(text, start, end, _CODE_CHARS, 0.8, "HEALTH_INSURANCE_ID", min_len=6, need_digit=True)


def _mbi(text: str, start: int, end: int) -> Finding | None:
    return Finding("HEALTH_INSURANCE_ID", start, end, 0.9 if near(text, start, "insurance") else 0.8, "US_MBI")


_MBI_ALPHA = "[AC-HJKMNP-RT-Y]"  # letters except S, L, O, I, B, Z
_MBI_ALNUM = "[AC-HJKMNP-RT-Y0-9]"

PATTERNS = (
    Pattern("medical_record_number", keyword("mrn") + GAP + r"[A-Z0-9][A-Z0-9-]{3,14}[A-Z0-9]\b",
            "MEDICAL_RECORD_NUMBER", _mrn),
    Pattern("us_npi", r"\b\d{10}\b", "US_NPI", _npi),
    Pattern("us_dea", r"\b[A-Z][A-Z9]\d{7}\b", "US_DEA", _dea),
    Pattern("icd10_code", keyword("icd") + GAP + r"[A-TV-Z]\d[0-9AB](?:\.[0-9A-TV-Z]{1,4})?\b", "ICD10_CODE", _icd10),
    Pattern("health_insurance_id", keyword("insurance") + GAP + r"[A-Z0-9][A-Z0-9-]{4,18}[A-Z0-9]\b",
            "HEALTH_INSURANCE_ID", _insurance),
    Pattern("us_mbi", rf"\b[1-9]{_MBI_ALPHA}{_MBI_ALNUM}\d-?{_MBI_ALPHA}{_MBI_ALNUM}\d-?{_MBI_ALPHA}{{2}}\d\d\b",
            "HEALTH_INSURANCE_ID", _mbi),
)

TYPES = frozenset({"MEDICAL_RECORD_NUMBER", "US_NPI", "US_DEA", "ICD10_CODE", "HEALTH_INSURANCE_ID"})


class HealthDetector(PatternDetector):
    name = "health"
    types = TYPES
    _patterns = PATTERNS
