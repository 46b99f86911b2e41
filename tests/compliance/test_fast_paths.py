"""The hot path's shortcuts must decide as the libraries they stand in for (python-stdnum, ipaddress)."""

from __future__ import annotations

import ipaddress
import random
import re
import string
from bisect import bisect_left

import pytest
from stdnum import bitcoin, iban, luhn
from stdnum.fr import siret

from passerelle.compliance.context import _LOOKUP, _PRESENT, WORDS, _any_of
from passerelle.compliance.detectors import finance, wallets
from passerelle.compliance.detectors.common import (
    attached,
    embedded,
    extend,
    glued,
    luhn_ok,
    one_separator_kind,
    value_start,
)
from passerelle.compliance.detectors.contact import _email, _ipv4, _phone
from passerelle.compliance.detectors.person import _PLACE_ENDS, _PLACES, PersonDetector
from passerelle.compliance.detectors.phones import valid_phone
from passerelle.compliance.engine import _continuations
from tests.compliance.test_phones import reference

RNG = random.Random(20251127)


def _digits(n: int) -> str:
    return "".join(RNG.choice(string.digits) for _ in range(n))


def test_luhn_ok_agrees_with_stdnum() -> None:
    for n in [*range(0, 20), *RNG.choices(range(1, 20), k=3000)]:
        number = _digits(n)
        assert luhn_ok(number) is (number == "" or luhn.is_valid(number)), number
    for odd in ("12a4", "4111 1111", "٤١١١١١١١١١١١١١١١", "+123"):
        assert not luhn_ok(odd)


def test_siret_agrees_with_stdnum() -> None:
    candidates = [_digits(14) for _ in range(3000)]
    candidates += ["356000000" + _digits(5) for _ in range(300)] + ["35600000000048", "73282932000074"]
    candidates += [siren + _digits(4) + str(d) for siren in ("732829320", "356000000") for d in range(10)]
    for number in candidates:
        assert finance.siret_ok(number) is siret.is_valid(number), number


def _random_iban(country: str, length: int) -> str:
    body = "".join(RNG.choice(string.digits + "AB") for _ in range(length - 4))
    check = 98 - int((body + country + "00").translate(finance._MOD97_DIGITS)) % 97
    return f"{country}{check:02d}{body}"


@pytest.mark.parametrize(("country", "length"), [("ES", 24), ("BE", 16), ("NO", 15), ("ME", 22), ("DE", 22),
                                                 ("FR", 27), ("GB", 22), ("IT", 27)])
def test_iban_checks_agree_with_stdnum(country: str, length: int) -> None:
    numbers = [_random_iban(country, length) for _ in range(400)]
    numbers += [country + _digits(length - 2) for _ in range(100)]  # mostly a wrong check digit
    numbers += ["ES9121000418450200051332", "BE68539007547034", "NO9386011117947", "ME25505000012345678951"]
    assert any(iban.is_valid(n) for n in numbers)
    for number in numbers:
        assert finance._iban_ok(number) is iban.is_valid(number), number


def test_base58_addresses_agree_with_stdnum() -> None:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    good = ["1NEDqZPvTWRaoho48qXuLLsrYomMXPABfD", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"]
    mangled = [a[:k] + RNG.choice(alphabet) + a[k + 1:] for a in good for k in range(1, len(a))]
    odd = ["1" * 34, "3" + "z" * 33, "1NEDqZPvTWRaoho48qXuLLsrYomMXPABf", "bc1qardv855yjngspvxuttq897aqca3lxju2y69jce",
           "1NEDqZPvTWRaoho48qXuLLsrYomMXPAB0D"]
    for address in good + mangled + odd:
        assert wallets.base58_ok(address) is bitcoin.is_valid(address), address


def test_ethereum_checksum_with_the_compiled_keccak() -> None:
    assert wallets.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert wallets.ethereum_checksum_ok("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
    assert not wallets.ethereum_checksum_ok("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")


def test_ipv4_agrees_with_ipaddress() -> None:
    octets = ["0", "00", "1", "01", "10", "010", "99", "127", "199", "255", "256", "300", "999"]
    for _ in range(3000):
        address = ".".join(RNG.choice(octets) for _ in range(4))
        text = f"host {address} up"
        try:
            parsed: ipaddress.IPv4Address | None = ipaddress.IPv4Address(address)
        except ValueError:
            parsed = None
        expected = parsed is not None and not parsed.is_loopback and not parsed.is_unspecified
        assert (_ipv4(text, 5, 5 + len(address)) is not None) is expected, address


def test_national_numbers_that_start_with_the_country_code_agree_with_phonenumbers() -> None:
    regions = (("US", "1"), ("FR", "33"), ("DE", "49"), ("GB", "44"), ("IT", "39"), ("AR", "54"), ("JE", "44"))
    for region, code in regions:
        for _ in range(600):
            number = code + _digits(RNG.randint(1, 12))
            if RNG.random() < 0.5:
                number = " ".join((number[:3], number[3:6], number[6:])).strip()
            assert valid_phone(number, region) is reference(number, region), (number, region)
    for number in ("1 571 230 8707", "1-713-666-1429", "(1) 571 230 8707", "1 571 230 870A"):
        assert valid_phone(number, "US") is reference(number, "US"), number


def test_run_helpers_match_their_loops() -> None:
    chars = frozenset("ABC123-")
    for _ in range(2000):
        text = "".join(RNG.choice("ABC123-x ") for _ in range(RNG.randint(0, 30)))
        start, end = sorted(RNG.choices(range(len(text) + 1), k=2))
        i = end
        while i > start and text[i - 1] in chars:
            i -= 1
        assert value_start(text, start, end, chars) == i
        j, stop = start, min(len(text), start + 7)
        while j < stop and text[j] in chars:
            j += 1
        assert extend(text, start, chars, 7) == j
        assert one_separator_kind(text) is (len({c for c in text if not c.isalnum()}) <= 1)
    assert one_separator_kind("1234 5678") and not one_separator_kind("1234 5678-90")
    assert one_separator_kind("é1 2") and not one_separator_kind("é1 2-3")


def test_email_local_part_is_at_most_64_characters() -> None:
    local = "a" * 70
    text = f"write to {local}@example.com"
    at = text.index("@")
    found = _email(text, at - 1, len(text))
    assert found is not None and text[found.start:at] == "a" * 64
    text = "mail: .jean.dupont@example.org"
    at = text.index("@")
    found = _email(text, at - 1, len(text))
    assert found is not None and text[found.start:found.end] == "jean.dupont@example.org"


def test_string_offsets_of_utf8_offsets() -> None:
    continuation = bytes(range(0x80, 0xC0))
    for _ in range(5000):
        text = "".join(RNG.choice("aé€😀\ud800 1") for _ in range(RNG.randint(0, 12)))
        data = text.encode("utf-8", "surrogatepass")
        skips = _continuations(data)
        for offset in range(len(data) + 1):  # a match may end inside a character: its first byte counts
            characters = len(data[:offset].translate(None, continuation))
            assert offset - bisect_left(skips, offset) == characters
            if offset == len(data) or data[offset] not in continuation:  # a character boundary
                assert characters == len(data[:offset].decode("utf-8", "surrogatepass"))


def test_presence_searches_agree_with_the_lookups() -> None:
    # Windows made of context words (every spelling a branch allows is not needed: the first letters are what
    # changed), glued to letters, digits, accents and punctuation on either side.
    pieces = ["card", "cards", "tel", "tél.", "téléphone", "ip", "vip", "n° rcs", "établissement", "etablissement",
              "überweisung", "ueberweisung", "version", "v", "v2", "build", "order", "ref", "réf", "dea#", "ssn",
              "x", "é", "_", "1", " ", "-", ".", "'", ":"]
    groups = [*WORDS, ("phone_fr", "phone_de", "phone_en", "reference"), ("ssn", "itin")]
    for _ in range(20000):
        window = "".join(RNG.choice(pieces) for _ in range(RNG.randint(1, 5)))
        for group in groups:
            lookup = _LOOKUP[group] if isinstance(group, str) else \
                re.compile(rf"\b(?:{'|'.join(WORDS[g] for g in group)})(?!\w)")
            present = _PRESENT[group] if isinstance(group, str) else _any_of(group)
            assert (lookup.search(window) is None) is (present.search(window) is None), (group, window)


def test_attached_is_glued_or_embedded() -> None:
    # Digits, every separator either test reads, letters, a non-ASCII digit and letter, at every span of short texts.
    for _ in range(20000):
        text = "".join(RNG.choice("0 .-/_aZ²٣é") for _ in range(RNG.randint(0, 8)))
        for start in range(len(text) + 1):
            for end in range(start, len(text) + 1):
                assert attached(text, start, end) is (glued(text, start, end) or embedded(text, start, end)), \
                    (text, start, end)


def test_phone_after_a_reference_word_alone_is_no_phone() -> None:
    # near_any found a context or reference word and first_near no phone word: the word was a reference one.
    text = "order number 06 12 34 56 78"
    start = text.index("06")
    assert _phone(text, start, len(text)) is None
    text = "tel 06 12 34 56 78"  # a phone word beats the reference test
    start = text.index("06")
    found = _phone(text, start, len(text))
    assert found is not None and (found.start, found.end) == (start, len(text))


def test_place_names_are_still_no_people() -> None:
    # The last-word pre-check only skips the full lookup when the run cannot be a listed place.
    assert all(place.rsplit("_", 1)[-1] in _PLACE_ENDS for place in _PLACES)
    detector = PersonDetector()
    for text, place in (("Dear Costa Rica team", "Costa Rica"), ("Visit San Francisco today", "San Francisco")):
        assert place not in [text[f.start:f.end] for f in detector.scan(text)]
    text = "Dear Marie Costa"  # a surname that starts a place's name is still a name
    assert "Marie Costa" in [text[f.start:f.end] for f in detector.scan(text)]
