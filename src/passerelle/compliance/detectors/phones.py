"""Phone-number validity from libphonenumber's metadata, without ``phonenumbers.parse`` on the hot path.

``phonenumbers.is_valid_number(parse(number, region))`` costs some 50 us a call, most of it in
parsing machinery a pattern candidate does not need (letters, extensions, carrier codes).  A
number is valid when its national significant number matches its region's general pattern and
one of the type patterns (fixed line, mobile, toll free...) with a possible length: that test
is done here on the digits, with the same metadata compiled once per region.

National-prefix rules are applied as phonenumbers applies them, rewriting ones included
(Argentina's, Brazil's, Jersey's); numbers written with an international dialling prefix ("0033
..."), with the country code and no "+", or in other than ASCII digits go to ``phonenumbers``.
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
def _parsing(region: str) -> tuple[re.Pattern[str] | None, str | None, re.Pattern[str], tuple[int, ...],
                                   frozenset[int]] | None:
    """What parsing a national number with ``region`` uses: its national-prefix rule, the rule's rewriting, the
    general pattern and its possible lengths (and the local-only ones)."""
    metadata = PhoneMetadata.metadata_for_region(region)
    general = metadata.general_desc if metadata is not None else None
    pattern = general.national_number_pattern if general is not None else None
    if metadata is None or general is None or pattern is None:
        return None
    rule = metadata.national_prefix_for_parsing
    return (re.compile(rule) if rule else None, metadata.national_prefix_transform_rule,
            re.compile(pattern), tuple(sorted(general.possible_length or ())),
            frozenset(general.possible_length_local_only or ()))


def _national_form(national: str, region: str) -> str | None:
    """The national significant number phonenumbers keeps after the region's national prefix (as its
    ``_maybe_strip_national_prefix_carrier_code`` and length test do); None if the region has no metadata."""
    parsing = _parsing(region)
    if parsing is None:
        return None
    rule, rewrite, general, lengths, local_only = parsing
    match = rule.match(national) if rule is not None else None
    if match is None:
        return national
    groups = match.groups()
    if rewrite and groups and groups[-1] is not None:
        form = match.expand(rewrite) + national[match.end():]
    else:
        form = national[match.end():]
    if general.fullmatch(national) is not None and general.fullmatch(form) is None:
        return national  # the original was viable and the stripped number is not
    n = len(form)
    if not lengths or n in local_only or n < lengths[0] or (n <= lengths[-1] and n not in lengths):
        return national  # too short, local only or an impossible length: phonenumbers keeps the original
    return form


def _decide(country_code: int, national: str, region: str) -> bool | None:
    """Whether the number parsed with ``region`` fits one of its country code's regions; None without metadata."""
    form = _national_form(national, region)
    if form is None:
        return None
    return any(_fits(form, r) for r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()))


@cache
def _dialling_prefix(region: str) -> re.Pattern[str]:
    """The region's international dialling prefix ("00", "011"...): phonenumbers reads a country code after it."""
    metadata = PhoneMetadata.metadata_for_region(region)
    prefix = metadata.international_prefix if metadata is not None else None
    return re.compile(prefix or "00")


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
                decided = _decide(code, digits[size:], phonenumbers.region_code_for_country_code(code))
                break
        else:
            return False
    elif region is not None:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None or metadata.country_code is None:
            return _slow(number, region)
        if digits.startswith(str(metadata.country_code)) or _dialling_prefix(region).match(digits):
            return _slow(number, region)  # the country code without "+", or an international dialling prefix
        decided = _decide(metadata.country_code, digits, region)
    return _slow(number, region) if decided is None else decided
