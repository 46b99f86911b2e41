"""Phone-number validity from libphonenumber's metadata, without ``phonenumbers.parse`` on the hot path.

``phonenumbers.is_valid_number(parse(number, region))`` costs some 50 us a call, most of it in
parsing machinery a pattern candidate does not need (letters, extensions, carrier codes).  A
number is valid when its national significant number matches its region's general pattern and
one of the type patterns (fixed line, mobile, toll free...) with a possible length: that test
is done here on the digits, with the same metadata compiled once per region.

Only the regions whose national-prefix rule is a plain digit string (FR "0", US "1", GB
"0|180020", most of the world) are decided here; the others (Argentina's and Brazil's rewriting
rules) and anything that is not plain ASCII digits go to ``phonenumbers`` as before.
"""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata

_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
          "fixed_line", "mobile")
_Desc = tuple[frozenset[int], re.Pattern[str]]
_NON_DIGITS = re.compile(r"[^0-9]")


def _desc(desc: object, fallback: frozenset[int]) -> _Desc | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if pattern is None:
        return None
    lengths = frozenset(getattr(desc, "possible_length", None) or ()) or fallback
    return lengths, re.compile(pattern)


@cache
def _region(region: str) -> tuple[_Desc, tuple[_Desc, ...]] | None:
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None
    general = _desc(metadata.general_desc, frozenset())
    if general is None:
        return None
    types = tuple(d for d in (_desc(getattr(metadata, name, None), general[0]) for name in _TYPES) if d is not None)
    return general, types


def _fits(national: str, region: str) -> bool:
    descs = _region(region)
    if descs is None:
        return False
    (lengths, pattern), types = descs
    n = len(national)
    if (lengths and n not in lengths) or pattern.fullmatch(national) is None:
        return False
    return any((not ls or n in ls) and p.fullmatch(national) is not None for ls, p in types)


@cache
def _regions(country_code: int) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    """Each region of a country code with its national prefixes as plain digit strings (longest first), or None
    when its rule rewrites the number (Argentina, Brazil, Jersey...)."""
    out = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            continue
        rule = metadata.national_prefix_for_parsing or ""
        plain = metadata.national_prefix_transform_rule is None and all(p.isdigit() for p in rule.split("|") if p)
        prefixes = tuple(sorted((p for p in rule.split("|") if p), key=len, reverse=True))
        out.append((region, prefixes if plain else None))
    return tuple(out)


def _decide(country_code: int, national: str) -> bool | None:
    """True/False when the metadata decides; None when only phonenumbers can (a rewriting prefix rule)."""
    undecided = False
    for region, prefixes in _regions(country_code):
        if prefixes is None:
            undecided = True
            continue
        if _fits(national, region) or any(national.startswith(p) and _fits(national[len(p):], region)
                                          for p in prefixes):
            return True
    return None if undecided else False


def _slow(number: str, region: str | None) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, region)))
    except phonenumbers.NumberParseException:
        return False


def valid_phone(number: str, region: str | None) -> bool:
    """Whether ``number`` ("+33 6 12 34 56 78", or national digits with ``region``) is a valid number."""
    if not number.isascii():
        return _slow(number, region)
    digits = _NON_DIGITS.sub("", number)
    decided: bool | None = None
    if number.lstrip().startswith("+"):
        for size in (1, 2, 3):  # country calling codes are prefix-free
            code = int(digits[:size] or 0)
            if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                decided = _decide(code, digits[size:])
                break
        else:
            return False
    elif region is not None:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None or metadata.country_code is None:
            return _slow(number, region)
        decided = _decide(metadata.country_code, digits)
        if decided is False and digits.startswith(("00", "011", str(metadata.country_code))):
            decided = None  # an international dialling prefix or the country code written without "+"
    return _slow(number, region) if decided is None else decided
