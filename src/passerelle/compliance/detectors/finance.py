"""Finance: payment cards (PCI DSS), bank identifiers, crypto wallets, VAT and French company numbers."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from stdnum import bic, iban, numdb
from stdnum.es import ccc
from stdnum.eu import vat
from stdnum.gb import vat as gb_vat
from stdnum.us import rtn

from passerelle.compliance.context import GAP, WORDS, closest, keyword, near
from passerelle.compliance.detectors import wallets
from passerelle.compliance.detectors.common import (
    DIGITS,
    PatternDetector,
    a_reference,
    attached,
    compact,
    continues,
    embedded,
    in_decimal,
    looks_like_isbn,
    looks_like_timestamp,
    luhn_ok,
    one_separator_kind,
    tail,
    value_start,
)
from passerelle.compliance.findings import Finding, Pattern

# Issuer identification ranges: (brand, ((low, high), ...) over the first len(str(low)) digits, lengths).
# Specific ranges first: Discover's 622126-622925 sits inside UnionPay's 62.  Generous where generators
# and legacy cards are (JCB 35xx and the 15-digit 1800/2131, Maestro 12-19 digits): Luhn still decides.
_BRANDS: tuple[tuple[str, tuple[tuple[int, int], ...], frozenset[int]], ...] = (
    ("AMEX", ((34, 34), (37, 37)), frozenset({15})),
    ("VISA", ((4, 4),), frozenset({13, 16, 19})),
    ("MIR", ((2200, 2204),), frozenset(range(16, 20))),
    ("MASTERCARD", ((51, 55), (2221, 2720)), frozenset({16})),
    ("DISCOVER", ((6011, 6011), (644, 649), (65, 65), (622126, 622925)), frozenset(range(16, 20))),
    ("UNIONPAY", ((62, 62), (81, 81)), frozenset(range(16, 20))),
    ("JCB", ((3500, 3599),), frozenset(range(16, 20))),
    ("JCB", ((1800, 1800), (2131, 2131)), frozenset({15})),
    ("DINERS", ((300, 305), (36, 36), (38, 39), (3095, 3095)), frozenset(range(14, 20))),
    ("MAESTRO", ((50, 50), (56, 69)), frozenset(range(12, 20))),
)


# Flattened and keyed by first digit: the brand test runs on every 12-19 digit run.
_IIN: dict[str, list[tuple[str, int, int, int, frozenset[int]]]] = {}
for _brand, _ranges, _lengths in _BRANDS:
    for _low, _high in _ranges:
        for _first in range(int(str(_low)[0]), int(str(_high)[0]) + 1):  # 56-69 spans two first digits
            _IIN.setdefault(str(_first), []).append((_brand, len(str(_low)), _low, _high, _lengths))


# Written as one run of digits without the word "card", only a brand's usual length counts.
_USUAL_LENGTH = {"AMEX": {15}, "VISA": {16}, "MIR": {16}, "MASTERCARD": {16}, "DISCOVER": {16}, "UNIONPAY": {16},
                 "JCB": {15, 16}, "DINERS": {14}, "MAESTRO": {16}}


def card_brand(digits: str) -> str | None:
    n = len(digits)
    for brand, prefix_len, low, high, lengths in _IIN.get(digits[0], ()):
        if n in lengths and low <= int(digits[:prefix_len]) <= high:
            return brand
    return None


_DINERS_GROUPS = re.compile(r"\d{4}([ .-])\d{6}\1\d{4}")


def _card(text: str, start: int, end: int) -> Finding | None:
    # Cheapest tests first: every long digit run in a prompt comes here, few are cards.
    value = text[start:end]
    digits = compact(value)
    brand = card_brand(digits)
    if brand is None or in_decimal(text, start, end):
        return None
    grouped = len(digits) != len(value)
    if grouped and (not one_separator_kind(value) or continues(text, start, end, value[4])):
        return None  # "4111 1111-1111.1111", or four groups out of a longer run (an IBAN, a parcel number)
    if not luhn_ok(digits) or looks_like_isbn(digits):
        return None
    context = near(text, start, "card")
    if not context and not grouped and len(digits) not in _USUAL_LENGTH[brand]:
        return None  # big integers in code and data (seeds, ids, parcels) rarely have a brand's usual length
    if brand == "DINERS" and not context and not _DINERS_GROUPS.fullmatch(value) and not near(text, start, "payment"):
        return None  # a 14-digit 30/36/38/39... number is a SIRET far more often, unless paid with or written 4-6-4
    if a_reference(text, start, context):
        return None
    return Finding("CREDIT_CARD", start, end, 1.0 if context else 0.95, brand)


def _cvv(text: str, start: int, end: int) -> Finding | None:
    return tail(text, start, end, DIGITS, 0.85, "CARD_CVV", min_len=3)


_EXPIRY_CHARS = frozenset("0123456789/.- ")


def _expiry(text: str, start: int, end: int) -> Finding | None:
    begin = value_start(text, start, end, _EXPIRY_CHARS)
    while text[begin] == " ":
        begin += 1
    return Finding("CARD_EXPIRY", begin, end, 0.85)


# Letters count as two digits in the mod 97 test (A=10 ... Z=35).
_MOD97_DIGITS = {ord(c): str(ord(c) - 55) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_BBAN_CHARS = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]"}


def _bban_shapes() -> dict[str, re.Pattern[str]]:
    """Each country's BBAN structure from python-stdnum's registry ("4!n4!n12!c"), compiled once."""
    shapes = {}
    for _, low, high, props, children in numdb.get("iban").prefixes:
        if low == high and not children and props.get("bban"):
            body = re.sub(r"([1-9][0-9]*)!([nac])", lambda m: f"{_BBAN_CHARS[m.group(2)]}{{{m.group(1)}}}",
                          props["bban"])
            shapes[low] = re.compile(body)
    return shapes


_BBAN_SHAPES = _bban_shapes()


def _iban_ok(number: str) -> bool:
    """Mod 97 (cheap, and most candidates from spaced groups fail it), the country's BBAN shape, then the
    national check of the few countries python-stdnum has one for (Spain's and Belgium's keys...)."""
    try:
        if int((number[4:] + number[:4]).translate(_MOD97_DIGITS)) % 97 != 1:
            return False
    except ValueError:
        return False
    shape = _BBAN_SHAPES.get(number[:2])
    if shape is None:
        return iban.is_valid(number)
    if shape.fullmatch(number, 4) is None:
        return False
    national = _IBAN_NATIONAL.get(number[:2])
    return national is None or national(number)


# The national checks: a country's module repeats the generic checks above before its own (iban.is_valid would
# run them twice more); Spain's own check is its CCC's, in python-stdnum's ``es.ccc``.
_IBAN_NATIONAL: dict[str, Callable[[str], bool]] = {
    country: module.is_valid for country in _BBAN_SHAPES if (module := iban._get_cc_module(country)) is not None}
_IBAN_NATIONAL["ES"] = lambda number: ccc.is_valid(number[4:])


def _iban(text: str, start: int, end: int) -> Finding | None:
    number = compact(text[start:end])
    return Finding("IBAN", start, end, 1.0, number[:2]) if _iban_ok(number) else None


def _bic(text: str, start: int, end: int) -> Finding | None:
    code = text[start:end]
    if near(text, start, "bic"):
        return Finding("SWIFT_BIC", start, end, 0.95) if bic.is_valid(code) else None
    # Without its keyword, a BIC must not read as a word or a constant: "CUSTOMER" is shaped like one (ME is
    # a country), so are "SPLINE16", "BINUNICODE8" and "EXAMPLE1111".  The XXX primary-office branch is not.
    if code.endswith("XXX") and text[start - 1:start] not in ("-", "_") and bic.is_valid(code):
        return Finding("SWIFT_BIC", start, end, 0.7)
    return None


def _routing(text: str, start: int, end: int) -> Finding | None:
    # The closest keyword decides: in "routing number 021000021, account number 123456780" the second
    # number passes the 3-7-1 checksum too (one 9-digit number in ten does) but is the account.
    if closest(text, start, ("routing", "account")) != "routing" or embedded(text, start, end):
        return None
    return Finding("US_ABA_ROUTING", start, end, 0.95) if rtn.is_valid(compact(text[start:end])) else None


_ID_WORD = re.compile(r"(?i:[\W_]id\b)")


_ACCOUNT_WORD = re.compile(rf"(?:{WORDS['account']})(?!\w)", re.IGNORECASE)


def _account(text: str, start: int, end: int) -> Finding | None:
    found = tail(text, start, end, DIGITS | {"-"}, 0.8, "BANK_ACCOUNT", min_len=6)
    if found is None or _ID_WORD.search(text, start, found.start):
        return None  # "account_id", "account ID": cloud and customer accounts, not bank accounts
    if _ACCOUNT_WORD.match(text, start) is None and not near(text, start, "banking", 80):
        return None  # a bare "account 12345678" is a bank account only next to banking words (routing, IBAN...)
    return found


def _bitcoin(text: str, start: int, end: int) -> Finding | None:
    address = text[start:end]
    ok = wallets.bech32_ok(address) if address[:3].lower() == "bc1" else wallets.base58_ok(address)
    return Finding("CRYPTO_WALLET", start, end, 1.0, "BITCOIN") if ok else None


def _ethereum(text: str, start: int, end: int) -> Finding | None:
    body = text[start + 2:end]
    if body.islower() or body.isupper() or body.isdigit():
        return Finding("CRYPTO_WALLET", start, end, 0.85, "ETHEREUM")  # no checksum to verify
    return Finding("CRYPTO_WALLET", start, end, 1.0, "ETHEREUM") if wallets.ethereum_checksum_ok(text[start:end]) \
        else None


@cache
def _vat_module(country: str) -> Callable[[str], bool] | None:
    """The country's own check: vat.is_valid's, without cleaning the number once more."""
    module = vat._get_cc_module(country)
    return module.is_valid if module is not None else None


def _vat(text: str, start: int, end: int) -> Finding | None:
    number = compact(text[start:end])
    country = number[:2]
    if country in ("GB", "XI"):
        valid = gb_vat.is_valid(number[2:])
    else:
        check = _vat_module(country)
        valid = check is not None and check(number)
    if not valid:
        return None
    return Finding("EU_VAT", start, end, 1.0 if near(text, start, "vat") else 0.9, country)


def _siren(text: str, start: int, end: int) -> Finding | None:
    # Any 9-digit number passes Luhn one time in ten, and "407 714 369" is as often an amount: the keyword
    # (SIREN, RCS, société...) decides.
    if attached(text, start, end) or not near(text, start, "company"):
        return None
    number = compact(text[start:end])
    # Nine ASCII digits (the pattern's): python-stdnum's siren.is_valid is the Luhn check, after cleaning.
    return Finding("FR_SIREN", start, end, 0.95) if luhn_ok(number) else None


def siret_ok(number: str) -> bool:
    """python-stdnum's siret.validate over 14 ASCII digits (the pattern's), without its cleaning: the SIREN's Luhn
    check and the establishment's, or for La Poste's establishments a digit sum that is a multiple of 5."""
    if number.startswith("356000000") and number != "35600000000048":
        if (sum(number.encode("ascii")) - 48 * len(number)) % 5:
            return False
    elif not luhn_ok(number):
        return False
    return luhn_ok(number[:9])


def _siret(text: str, start: int, end: int) -> Finding | None:
    value = text[start:end]
    number = compact(value)
    if not siret_ok(number) or attached(text, start, end):
        return None
    if near(text, start, "company"):
        return Finding("FR_SIRET", start, end, 1.0)  # above a card reading of the same digits
    if len(value) == len(number) or looks_like_timestamp(number) or a_reference(text, start, False):
        return None  # 20240115093045 is a time; alone, only the 3 3 3 5 grouping says SIRET
    return Finding("FR_SIRET", start, end, 0.7)


# The registry's countries as literals: Hyperscan finds literal-led patterns far faster than "[A-Z]{2}".
_IBAN_COUNTRIES = "|".join(sorted({prefix[1] for prefix in numdb.get("iban").prefixes}))
# Each country's VAT number shape, so that only plausible candidates reach python-stdnum.
_VAT_SHAPES = "|".join((
    r"ATU\d{8}", r"BE ?[01]\d{3}[ .]?\d{3}[ .]?\d{3}", r"BG\d{9,10}", r"CY\d{8}[A-Z]", r"CZ\d{8,10}",
    r"DE ?\d{3} ?\d{3} ?\d{3}", r"DK ?\d\d ?\d\d ?\d\d ?\d\d", r"EE\d{9}", r"EL\d{9}", r"ES[A-Z0-9]\d{7}[A-Z0-9]",
    r"FI\d{8}", r"FR ?[0-9A-HJ-NP-Z]{2} ?\d{3} ?\d{3} ?\d{3}", r"(?:GB|XI) ?\d{3} ?\d{4} ?\d\d(?: ?\d{3})?",
    r"(?:GB|XI)(?:GD|HA)\d{3}", r"HR\d{11}", r"HU\d{8}", r"IE\d[0-9A-Z+*]\d{5}[A-W][A-I]?", r"IT\d{11}",
    r"LT(?:\d{9}|\d{12})", r"LU\d{8}", r"LV\d{11}", r"MT\d{8}", r"NL\d{9}B\d\d", r"PL\d{10}", r"PT\d{9}",
    r"RO\d{2,10}", r"SE\d{12}", r"SI\d{8}", r"SK\d{10}",
))

PATTERNS = (
    Pattern("credit_card",
            r"\b(?:\d{12,19}|\d{4}[ .-]\d{4}[ .-]\d{4}[ .-]\d{4}(?:[ .-]\d{1,3})?|\d{4}[ .-]\d{6}[ .-]\d{4,5})\b",
            "CREDIT_CARD", _card),
    Pattern("card_cvv", keyword("cvv") + GAP + r"\d{3,4}\b", "CARD_CVV", _cvv),
    Pattern("card_expiry", keyword("expiry") + GAP + r"(?:0[1-9]|1[0-2]) ?[/.-] ?(?:20)?\d\d\b", "CARD_EXPIRY",
            _expiry),
    Pattern("iban", rf"\b(?:{_IBAN_COUNTRIES})\d\d(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,3}})?\b", "IBAN", _iban),
    Pattern("swift_bic", r"\b[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?\b", "SWIFT_BIC", _bic),
    Pattern("us_aba_routing", r"\b\d{9}\b", "US_ABA_ROUTING", _routing),
    Pattern("bank_account", rf"\b(?i:{WORDS['account']}|account|compte|konto)" + GAP + r"\d[\d-]{4,18}\d\b",
            "BANK_ACCOUNT", _account),
    Pattern("bitcoin", r"\b(?:[13][1-9A-HJ-NP-Za-km-z]{25,34}|bc1[02-9ac-hj-np-z]{8,87}|BC1[02-9AC-HJ-NP-Z]{8,87})\b",
            "CRYPTO_WALLET", _bitcoin),
    Pattern("ethereum", r"\b0x[0-9a-fA-F]{40}\b", "CRYPTO_WALLET", _ethereum),
    Pattern("eu_vat", rf"\b(?:{_VAT_SHAPES})\b", "EU_VAT", _vat),
    Pattern("fr_siren", r"\b\d{3}[ .]?\d{3}[ .]?\d{3}\b", "FR_SIREN", _siren),
    Pattern("fr_siret", r"\b\d{3}[ .]?\d{3}[ .]?\d{3}[ .]?\d{5}\b", "FR_SIRET", _siret),
)

TYPES = frozenset({"CREDIT_CARD", "CARD_CVV", "CARD_EXPIRY", "IBAN", "SWIFT_BIC", "US_ABA_ROUTING", "BANK_ACCOUNT",
                   "CRYPTO_WALLET", "EU_VAT", "FR_SIREN", "FR_SIRET"})


class FinanceDetector(PatternDetector):
    name = "finance"
    types = TYPES
    _patterns = PATTERNS
