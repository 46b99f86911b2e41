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
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata

_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
          "fixed_line", "mobile")
_Desc = tuple[frozenset[int], str]
_Parsing = tuple[re.Pattern[str] | None, str | None, re.Pattern[str], tuple[int, ...], frozenset[int]]
_NON_DIGITS = re.compile(r"[^0-9]")
_PLAIN = re.compile(r"[0-9 ()./-]*")  # digits and the separators phonenumbers skips, nothing it would read


def _desc(desc: object, fallback: frozenset[int]) -> _Desc | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if pattern is None:
        return None
    lengths = frozenset(getattr(desc, "possible_length", None) or ()) or fallback
    return lengths, pattern


@lru_cache(maxsize=2048)
def _fit(country_code: int, n: int) -> re.Pattern[str] | None:
    """What a valid ``n``-digit national number of ``country_code`` matches: per region of the code, its general
    pattern (a lookahead) and those of its number types that allow ``n`` digits, in one regex (one call into the
    regex engine instead of a Python loop over regions and types); None when no region allows ``n`` digits."""
    branches = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        metadata = PhoneMetadata.metadata_for_region(region)
        general = _desc(metadata.general_desc, frozenset()) if metadata is not None else None
        if general is None or (general[0] and n not in general[0]):
            continue
        types = [_desc(getattr(metadata, name, None), general[0]) for name in _TYPES]
        fitting = dict.fromkeys(p for lengths, p in filter(None, types) if not lengths or n in lengths)
        if fitting:
            branches.append(f"(?=(?:{general[1]})\\Z)(?:{'|'.join(f'(?:{p})' for p in fitting)})")
    return re.compile("|".join(branches)) if branches else None


# The country codes whose numbers the contact detector reads most (its context regions and NANP): their validity
# patterns are compiled when the detector is built, not by the first request that holds such a number (the
# 25 NANP regions' pattern takes some 20 ms to compile).
WARM_COUNTRY_CODES = (1, 33, 44, 49)


def warm(country_codes: tuple[int, ...] = WARM_COUNTRY_CODES) -> None:
    """Compile the validity patterns of every national-number length of ``country_codes`` (about 90 ms)."""
    for code in country_codes:
        for n in range(4, 18):
            _fit(code, n)


@cache
def _parsing(region: str) -> _Parsing | None:
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


def _strip_national_prefix(national: str, parsing: _Parsing) -> str:
    """The number after the region's national prefix, as phonenumbers' ``_maybe_strip_national_prefix_carrier_code``
    strips it (rewriting rules included), before any length test."""
    rule, rewrite, general, _, _ = parsing
    match = rule.match(national) if rule is not None and national else None
    if match is None:
        return national
    groups = match.groups()
    if rewrite and groups and groups[-1] is not None:
        form = match.expand(rewrite) + national[match.end():]
    else:
        form = national[match.end():]
    if general.fullmatch(national) is not None and general.fullmatch(form) is None:
        return national  # the original was viable and the stripped number is not
    return form


def _national_form(national: str, region: str) -> str | None:
    """The national significant number phonenumbers keeps after the region's national prefix (as its
    ``_maybe_strip_national_prefix_carrier_code`` and length test do); None if the region has no metadata."""
    parsing = _parsing(region)
    if parsing is None:
        return None
    form = _strip_national_prefix(national, parsing)
    if form == national:
        return national
    lengths, local_only = parsing[3], parsing[4]
    n = len(form)
    if not lengths or n in local_only or n < lengths[0] or (n <= lengths[-1] and n not in lengths):
        return national  # too short, local only or an impossible length: phonenumbers keeps the original
    return form


def _own_country_code(digits: str, region: str, code_digits: str) -> str | None:
    """National digits that start with the region's own country code ("1 571 230 8707" in the US), read as
    phonenumbers' ``_maybe_extract_country_code`` reads them: the number after the code when the whole is not
    viable and the rest is, or when the whole is too long; else None (the digits are a national number)."""
    parsing = _parsing(region)
    if parsing is None:
        return None
    general, lengths, local_only = parsing[2], parsing[3], parsing[4]
    rest = _strip_national_prefix(digits[len(code_digits):], parsing)
    n = len(digits)
    too_long = bool(lengths) and lengths[0] != -1 and n not in local_only and n > lengths[-1]
    if (general.fullmatch(digits) is None and general.fullmatch(rest) is not None) or too_long:
        return rest
    return None


def _decide(country_code: int, national: str, region: str) -> bool | None:
    """Whether the number parsed with ``region`` fits one of its country code's regions; None without metadata."""
    form = _national_form(national, region)
    if form is None:
        return None
    fit = _fit(country_code, len(form))
    return fit is not None and fit.fullmatch(form) is not None


@cache
def _home(region: str) -> tuple[int, str, re.Pattern[str]] | None:
    """The region's country code (as a number and as digits) and its international dialling prefix ("00",
    "011"...: phonenumbers reads a country code after it); None without metadata."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.country_code is None:
        return None
    return metadata.country_code, str(metadata.country_code), re.compile(metadata.international_prefix or "00")


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
        home = _home(region)
        if home is None:
            return _slow(number, region)
        country_code, code_digits, dialling_prefix = home
        if dialling_prefix.match(digits):
            return _slow(number, region)  # an international dialling prefix: phonenumbers reads a country code
        if digits.startswith(code_digits):  # the country code without "+", or a national number that starts alike
            if not _PLAIN.fullmatch(number):
                return _slow(number, region)
            rest = _own_country_code(digits, region, code_digits)
            if rest is not None:
                form = _national_form(rest, phonenumbers.region_code_for_country_code(country_code))
                if len(rest) < 2 or form is None or len(form) > 17:
                    return False  # phonenumbers: too short or too long a national number
                fit = _fit(country_code, len(form))
                return fit is not None and fit.fullmatch(form) is not None
        decided = _decide(country_code, digits, region)
    return _slow(number, region) if decided is None else decided
