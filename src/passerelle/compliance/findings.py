"""What detection produces: typed findings over a text, never the values themselves in logs.

Entity type names are those of shared/reference/sensitive-data.md (UPPER_SNAKE); a finding may
carry a ``subtype`` (a secret's kind, a marking's country and level).  Offsets are Python string
indexes into the scanned text (``text[start:end]`` is the value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

ENTITY_TYPES = frozenset({
    # finance
    "CREDIT_CARD", "CARD_CVV", "CARD_EXPIRY", "IBAN", "SWIFT_BIC", "US_ABA_ROUTING", "BANK_ACCOUNT",
    "CRYPTO_WALLET", "EU_VAT", "FR_SIREN", "FR_SIRET",
    # identity
    "US_SSN", "US_ITIN", "FR_NIR", "UK_NHS", "UK_NINO", "PASSPORT", "DRIVER_LICENSE",
    # contact
    "EMAIL", "PHONE", "IP_ADDRESS", "MAC_ADDRESS", "URL", "STREET_ADDRESS",
    # person
    "PERSON", "DATE_OF_BIRTH", "LOCATION",
    # health
    "MEDICAL_RECORD_NUMBER", "US_NPI", "US_DEA", "ICD10_CODE", "HEALTH_INSURANCE_ID",
    # secrets
    "SECRET",
    # defense
    "CLASSIFICATION_MARKING", "EXPORT_CONTROL", "CODEWORD",
})


@dataclass(frozen=True, slots=True)
class Finding:
    type: str  # one of ENTITY_TYPES
    start: int  # Python string offsets into the scanned text
    end: int
    score: float  # 0..1: how sure the detector is (validated checksums ~1.0)
    subtype: str | None = None  # e.g. "AWS_ACCESS_KEY", "US:SECRET//NOFORN", "VISA"

    def __init__(self, type: str, start: int, end: int, score: float, subtype: str | None = None) -> None:
        # Several findings per scanned text: the slots' own setters take half the time of the object.__setattr__
        # calls a frozen dataclass's generated __init__ makes.
        _SET_TYPE(self, type)
        _SET_START(self, start)
        _SET_END(self, end)
        _SET_SCORE(self, score)
        _SET_SUBTYPE(self, subtype)


_SET_TYPE, _SET_START, _SET_END, _SET_SCORE, _SET_SUBTYPE = (
    Finding.__dict__[name].__set__ for name in ("type", "start", "end", "score", "subtype"))


# A validator sees the whole text and one candidate span found by a pattern; it returns the
# finding (possibly with a narrower span, another type or a subtype) or None to drop it.
Validator = Callable[[str, int, int], Finding | None]


@dataclass(frozen=True, slots=True)
class Pattern:
    """One regular expression of the single pass.  Written in the subset that both Python's ``re``
    and Hyperscan accept (no look-around, no back-references); compiled once at start-up."""

    id: str  # unique across detectors, e.g. "credit_card"
    regex: str
    entity: str  # the type of a candidate when ``validate`` is None
    validate: Validator | None = None  # None: every match is a finding with ``score``
    score: float = 0.5
    caseless: bool = False


class Detector(Protocol):
    """A family of entity types.  ``patterns`` join the engine's single compiled pass; ``scan``
    covers what patterns cannot (dictionary lookups, e.g. person names) and may return [].  A detector
    whose ``scan`` always returns [] may say so with a ``scans_text = False`` attribute (optional)."""

    name: str
    types: frozenset[str]

    @property
    def patterns(self) -> Sequence[Pattern]: ...

    def scan(self, text: str) -> list[Finding]: ...
