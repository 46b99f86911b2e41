"""Labelled values for the corpus: what a slot of a sentence turns into.

A generator takes the text's context (seeded random source, Faker of the text's locale) and returns a
``Piece``: the text to insert and the labelled spans inside it (relative offsets).  A label is an
entity type ("IBAN") or a hard negative's category ("NEG:bad_iban").  Checksummed values are
completed with ``checksums`` (our own code), never with the detectors' validators.  Faker is used for
names and e-mail user names only: its identifiers are not trusted (invalid fr_FR VAT ids, impossible
NI numbers, a made-up "0604" Maestro prefix, area codes libphonenumber rejects).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from faker import Faker

from bench.compliance import checksums as ck

Span = tuple[int, int, str]  # start, end, label: relative to the piece, then to the text


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    spans: tuple[Span, ...] = ()


@dataclass(slots=True)
class Ctx:
    rng: random.Random
    fake: Faker
    locale: str  # fr_FR, en_US, en_GB, de_DE
    lang: str  # fr, en, de
    memo: dict[str, str] = field(default_factory=dict)  # values a text repeats (its banner)


Generator = Callable[[Ctx], Piece]
DIGITS = string.digits
UPPER = string.ascii_uppercase


def whole(text: str, label: str) -> Piece:
    return Piece(text, ((0, len(text), label),))


def labelled(prefix: str, value: str, suffix: str, label: str) -> Piece:
    """``prefix + value + suffix`` with only the value labelled (a title, a unit, a keyword stay out)."""
    return Piece(prefix + value + suffix, ((len(prefix), len(prefix) + len(value), label),))


def digits(rng: random.Random, n: int, first: str = DIGITS) -> str:
    return rng.choice(first) + "".join(rng.choice(DIGITS) for _ in range(n - 1)) if n else ""


def group(value: str, sizes: tuple[int, ...], sep: str = " ") -> str:
    out, i = [], 0
    for size in sizes:
        out.append(value[i:i + size])
        i += size
    if i < len(value):
        out.append(value[i:])
    return sep.join(p for p in out if p)


def group4(value: str, sep: str = " ") -> str:
    return sep.join(value[i:i + 4] for i in range(0, len(value), 4))


# --- payment cards ------------------------------------------------------------------------------

# (brand, prefixes, length): issuer ranges as the networks publish them; Maestro's are real ones.
_CARDS = (
    ("VISA", ("4",), 16), ("VISA", ("4",), 16), ("VISA", ("4",), 16),
    ("MASTERCARD", ("51", "52", "53", "54", "55", "2221", "2300", "2720"), 16), ("MASTERCARD", ("51", "53", "55"), 16),
    ("AMEX", ("34", "37"), 15), ("DISCOVER", ("6011", "65"), 16), ("JCB", ("3528", "3540", "3589"), 16),
    ("DINERS", ("36",), 14), ("MAESTRO", ("5018", "6759", "6304"), 16),
)


def card_number(rng: random.Random) -> tuple[str, str]:
    brand, prefixes, length = rng.choice(_CARDS)
    prefix = rng.choice(prefixes)
    body = prefix + digits(rng, length - len(prefix) - 1)
    return brand, body + ck.luhn_check_digit(body)


def format_card(rng: random.Random, number: str) -> str:
    if len(number) == 15:
        return group(number, (4, 6, 5), rng.choice(" -")) if rng.random() < 0.7 else number
    if len(number) == 14:
        return group(number, (4, 6, 4)) if rng.random() < 0.5 else number
    style = rng.random()
    return group4(number, " ") if style < 0.55 else group4(number, "-") if style < 0.7 else number


def credit_card(ctx: Ctx) -> Piece:
    return whole(format_card(ctx.rng, card_number(ctx.rng)[1]), "CREDIT_CARD")


def card_cvv(ctx: Ctx) -> Piece:
    return whole(digits(ctx.rng, 4 if ctx.rng.random() < 0.1 else 3), "CARD_CVV")


def card_expiry(ctx: Ctx) -> Piece:
    month, year = ctx.rng.randint(1, 12), ctx.rng.randint(25, 31)
    return whole(f"{month:02d}/{year}" if ctx.rng.random() < 0.75 else f"{month:02d}/20{year}", "CARD_EXPIRY")


# --- bank identifiers ---------------------------------------------------------------------------

def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(DIGITS + UPPER) if rng.random() < 0.15 else rng.choice(DIGITS) for _ in range(n))


def bban(rng: random.Random, country: str) -> str:
    """A domestic account number with its national check digits where the country has them."""
    if country == "FR":
        bank, branch, account = digits(rng, 5, "123"), digits(rng, 5), _alnum(rng, 11)
        return bank + branch + account + ck.fr_rib_key(bank, branch, account)
    if country == "DE":
        return digits(rng, 8, "1234567") + digits(rng, 10)
    if country == "GB":
        return rng.choice(("NWBK", "BARC", "LOYD", "HBUK", "MIDL")) + digits(rng, 6) + digits(rng, 8)
    if country == "ES":
        bank, branch, account = digits(rng, 4, "012"), digits(rng, 4), digits(rng, 10)
        return bank + branch + ck.es_ccc(bank, branch, account) + account
    if country == "BE":
        ten = f"{rng.randint(0, 99):03d}" + digits(rng, 7)  # BNP Paribas Fortis and Belfius bank codes
        return ten + ck.be_bban_check(ten)
    if country == "IT":
        abi, cab, account = digits(rng, 5, "0"), digits(rng, 5), digits(rng, 12)
        return ck.it_cin(abi, cab, account) + abi + cab + account
    if country == "NL":
        return rng.choice(("ABNA", "INGB", "RABO", "TRIO")) + digits(rng, 10, "0123456789")
    if country == "LU":
        return digits(rng, 3) + _alnum(rng, 13)
    raise ValueError(country)


_IBAN_COUNTRIES = {"fr_FR": ("FR", "FR", "FR", "BE", "ES", "IT", "LU", "DE"), "de_DE": ("DE", "DE", "DE", "NL", "LU"),
                   "en_GB": ("GB", "GB", "GB", "NL", "FR"), "en_US": ("GB", "DE", "FR", "ES", "IT")}


def iban_value(ctx: Ctx, wrong_check: bool = False) -> str:
    country = ctx.rng.choice(_IBAN_COUNTRIES[ctx.locale])
    account = bban(ctx.rng, country)
    check = ck.iban_check_digits(country, account)
    if wrong_check:  # any other check digits: mod 97 no longer gives 1
        check = f"{(int(check) - 2 + ctx.rng.randint(1, 96)) % 97 + 2:02d}"
        if check == ck.iban_check_digits(country, account):
            check = f"{(int(check) - 1) % 97 + 2:02d}"
    number = country + check + account
    return group4(number) if ctx.rng.random() < 0.7 else number


def iban(ctx: Ctx) -> Piece:
    return whole(iban_value(ctx), "IBAN")


_BIC_COUNTRY = {"fr_FR": "FR", "de_DE": "DE", "en_GB": "GB", "en_US": "US"}


def swift_bic(ctx: Ctx) -> Piece:
    rng = ctx.rng
    country = _BIC_COUNTRY[ctx.locale] if rng.random() < 0.8 else rng.choice(("FR", "DE", "GB", "BE", "LU", "CH"))
    location = rng.choice(UPPER) + rng.choice(UPPER.replace("O", "") + "123456789")
    branch = "" if rng.random() < 0.6 else rng.choice(("XXX", "XXX", "".join(rng.choice(UPPER + DIGITS)
                                                                               for _ in range(3))))
    return whole("".join(rng.choice(UPPER) for _ in range(4)) + country + location + branch, "SWIFT_BIC")


def aba_routing(ctx: Ctx) -> Piece:
    first = ctx.rng.choice(("01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "21", "22", "26",
                            "31", "32"))
    eight = first + digits(ctx.rng, 6)
    return whole(eight + ck.aba_check_digit(eight), "US_ABA_ROUTING")


def bank_account(ctx: Ctx) -> Piece:
    rng = ctx.rng
    if ctx.locale == "fr_FR":
        value = digits(rng, 11)
    elif ctx.locale == "de_DE":
        value = digits(rng, rng.randint(7, 10), "123456789")
    elif ctx.locale == "en_GB":
        value = digits(rng, 8)
    else:
        value = digits(rng, rng.randint(8, 12), "123456789")
    return whole(value, "BANK_ACCOUNT")


# --- crypto ---------------------------------------------------------------------------------------

def crypto_wallet(ctx: Ctx) -> Piece:
    rng = ctx.rng
    kind = rng.random()
    if kind < 0.25:
        value = ck.base58check(b"\x00" + rng.randbytes(20))
    elif kind < 0.4:
        value = ck.base58check(b"\x05" + rng.randbytes(20))
    elif kind < 0.6:
        value = ck.segwit_address(0, rng.randbytes(20))
    elif kind < 0.7:
        value = ck.segwit_address(1, rng.randbytes(32))
    elif kind < 0.85:
        value = ck.eip55(rng.randbytes(20).hex())
    else:
        value = "0x" + rng.randbytes(20).hex()  # lowercase, as wallets often print it
    return whole(value, "CRYPTO_WALLET")


# --- company and tax numbers ------------------------------------------------------------------------

def siren_value(rng: random.Random) -> str:
    eight = digits(rng, 8, "3456789")
    return eight + ck.luhn_check_digit(eight)


def fr_siren(ctx: Ctx) -> Piece:
    value = siren_value(ctx.rng)
    return whole(group(value, (3, 3, 3)) if ctx.rng.random() < 0.6 else value, "FR_SIREN")


def fr_siret(ctx: Ctx) -> Piece:
    thirteen = siren_value(ctx.rng) + digits(ctx.rng, 4, "0")
    value = thirteen + ck.luhn_check_digit(thirteen)
    return whole(group(value, (3, 3, 3, 5)) if ctx.rng.random() < 0.6 else value, "FR_SIRET")


_VAT_COUNTRIES = {"fr_FR": ("FR", "FR", "FR", "BE", "IT", "DE"), "de_DE": ("DE", "DE", "DE", "NL", "FR"),
                  "en_GB": ("GB", "GB", "FR", "NL", "DE"), "en_US": ("GB", "DE", "FR", "IT", "NL")}


def vat_value(rng: random.Random, country: str) -> str:
    if country == "FR":
        siren = siren_value(rng)
        key = ck.fr_vat_key(siren)
        return f"FR {key} {group(siren, (3, 3, 3))}" if rng.random() < 0.3 else f"FR{key}{siren}"
    if country == "DE":
        eight = digits(rng, 8, "123456789")
        return f"DE{eight}{ck.de_vat_check_digit(eight)}"
    if country == "BE":
        eight = "0" + digits(rng, 7, "123456789")
        return f"BE{eight}{ck.be_vat_check(eight)}"
    if country == "IT":
        ten = digits(rng, 7, "0123456789") + f"{rng.randint(1, 100):03d}"
        return f"IT{ten}{ck.luhn_check_digit(ten)}"
    if country == "NL":
        while True:
            eight = digits(rng, 8, "123456789")
            check = ck.nl_bsn_check_digit(eight)
            if check is not None:
                return f"NL{eight}{check}B0{rng.randint(1, 9)}"
    if country == "GB":
        seven = digits(rng, 7, "123456789")
        value = seven + ck.gb_vat_check(seven)
        return f"GB {group(value, (3, 4, 2))}" if rng.random() < 0.4 else f"GB{value}"
    raise ValueError(country)


def eu_vat(ctx: Ctx) -> Piece:
    return whole(vat_value(ctx.rng, ctx.rng.choice(_VAT_COUNTRIES[ctx.locale])), "EU_VAT")


# --- identity -------------------------------------------------------------------------------------

_SSN_BLACKLIST = {"078051120", "219099999", "123456789"}


def us_ssn(ctx: Ctx) -> Piece:
    rng = ctx.rng
    while True:
        area = rng.randint(1, 899)
        if area == 666:
            continue
        value = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        if value not in _SSN_BLACKLIST:
            break
    sep = rng.choice(("-", "-", "-", " "))
    return whole(group(value, (3, 2, 4), sep), "US_SSN")


def us_itin(ctx: Ctx) -> Piece:
    rng = ctx.rng
    middle = rng.choice([*range(50, 66), *range(70, 89), 90, 91, 92, *range(94, 100)])
    return whole(f"9{rng.randint(0, 99):02d}-{middle:02d}-{rng.randint(0, 9999):04d}", "US_ITIN")


def nir_value(rng: random.Random) -> str:
    dept = rng.choice([f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B"])
    body = f"{rng.choice('12')}{rng.randint(0, 99):02d}{rng.randint(1, 12):02d}{dept}" \
           f"{rng.randint(1, 990):03d}{rng.randint(1, 999):03d}"
    return body + ck.nir_key(body)


def fr_nir(ctx: Ctx) -> Piece:
    value = nir_value(ctx.rng)
    return whole(group(value, (1, 2, 2, 2, 3, 3, 2)) if ctx.rng.random() < 0.6 else value, "FR_NIR")


def nhs_value(rng: random.Random) -> str:
    while True:
        nine = rng.choice("4677") + digits(rng, 8)
        check = ck.nhs_check_digit(nine)
        if check is not None:
            return nine + check


def uk_nhs(ctx: Ctx) -> Piece:
    value = nhs_value(ctx.rng)
    return whole(group(value, (3, 3, 4)) if ctx.rng.random() < 0.7 else value, "UK_NHS")


_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_BAD = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}


def uk_nino(ctx: Ctx) -> Piece:
    rng = ctx.rng
    while True:
        prefix = rng.choice(_NINO_FIRST) + rng.choice(_NINO_SECOND)
        if prefix not in _NINO_BAD:
            break
    body, suffix = digits(rng, 6), rng.choice("ABCD")
    value = f"{prefix} {group(body, (2, 2, 2))} {suffix}" if rng.random() < 0.5 else prefix + body + suffix
    return whole(value, "UK_NINO")


def passport(ctx: Ctx) -> Piece:
    rng = ctx.rng
    if ctx.locale == "fr_FR":
        value = digits(rng, 2) + "".join(rng.choice(UPPER) for _ in range(2)) + digits(rng, 5)
    elif ctx.locale == "de_DE":
        value = rng.choice("CFGHJK") + "".join(rng.choice("CFGHJKLMNPRTVWXYZ0123456789") for _ in range(8))
    elif ctx.locale == "en_US" and rng.random() < 0.5:
        value = rng.choice("ACEFGHJKLMNPRSTUVWXZ") + digits(rng, 8)
    else:
        value = digits(rng, 9, "123456789")
    return whole(value, "PASSPORT")


def driver_license(ctx: Ctx) -> Piece:
    rng = ctx.rng
    if ctx.locale == "fr_FR":
        value = digits(rng, 12)
    elif ctx.locale == "de_DE":
        value = rng.choice(UPPER + DIGITS) + digits(rng, 3) + "".join(rng.choice(UPPER + DIGITS) for _ in range(7))
    elif ctx.locale == "en_GB":
        surname = "".join(c for c in ctx.fake.last_name().upper() if c in UPPER)[:5].ljust(5, "9")
        month = rng.randint(1, 12) + rng.choice((0, 50))
        value = (surname + str(rng.randint(5, 9)) + f"{month:02d}{rng.randint(1, 28):02d}" + str(rng.randint(0, 9))
                 + rng.choice(UPPER) + rng.choice(UPPER + "9") + "9" + "".join(rng.choice(UPPER) for _ in range(2)))
    else:
        style = rng.random()
        value = (rng.choice(UPPER) + digits(rng, 7) if style < 0.5 else digits(rng, 8, "123456789") if style < 0.75
                 else rng.choice(UPPER) + group(digits(rng, 12), (3, 3, 2, 3, 1), "-"))
    return whole(value, "DRIVER_LICENSE")


def sort_code(ctx: Ctx) -> Piece:
    """A UK sort code: a bank branch, not a type of ours (unlabelled)."""
    return Piece(group(digits(ctx.rng, 6), (2, 2, 2), "-"))


def last_four(ctx: Ctx) -> Piece:
    """The last four digits of a card, as PCI DSS allows them to be shown (unlabelled)."""
    return Piece(digits(ctx.rng, 4))


SLOTS: dict[str, Generator] = {
    "SORT_CODE": sort_code, "LAST4": last_four,
    "CREDIT_CARD": credit_card, "CARD_CVV": card_cvv, "CARD_EXPIRY": card_expiry, "IBAN": iban,
    "SWIFT_BIC": swift_bic, "US_ABA_ROUTING": aba_routing, "BANK_ACCOUNT": bank_account,
    "CRYPTO_WALLET": crypto_wallet, "EU_VAT": eu_vat, "FR_SIREN": fr_siren, "FR_SIRET": fr_siret,
    "US_SSN": us_ssn, "US_ITIN": us_itin, "FR_NIR": fr_nir, "UK_NHS": uk_nhs, "UK_NINO": uk_nino,
    "PASSPORT": passport, "DRIVER_LICENSE": driver_license,}
