"""Phone validity from libphonenumber's metadata must agree with ``phonenumbers`` itself."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from passerelle.compliance.detectors import phones
from passerelle.compliance.detectors.contact import ContactDetector
from passerelle.compliance.detectors.phones import valid_phone


def reference(number: str, region: str | None) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, region)))
    except phonenumbers.NumberParseException:
        return False


@pytest.mark.parametrize(("number", "region", "valid"), [
    ("06 12 34 56 78", "FR", True), ("01 45 67 89 12", "FR", True), ("0612345678", "FR", True),
    ("030 12345678", "DE", True), ("01701234567", "DE", True), ("020 7946 0958", "GB", True),
    ("(201) 123-4567", "US", False),  # NANP exchanges never start with 1
    ("(202) 456-1111", "US", True), ("+33 6 12 34 56 78", None, True), ("+49 30 12345678", None, True),
    ("+1 212 123 4567", None, False), ("+1 416 967 1111", None, True),  # a Canadian number in the NANP
    ("+54 9 11 1234 5678", None, True), ("011 15-2345-6789", "AR", True),  # Argentina rewrites its prefixes
    ("712345", "JE", True), ("01534 712345", "GB", True),  # Jersey: six local digits are rewritten
    ("+44 (0)20 7946 0958", None, True), ("0033 6 12 34 56 78", "FR", True), ("06 12 34", "FR", False),
    ("+999 1234567", None, False), ("+33 6 12", None, False), ("٠٦١٢٣٤٥٦٧٨", "FR", True),
])
def test_known_numbers(number: str, region: str | None, valid: bool) -> None:
    assert valid_phone(number, region) is valid
    assert reference(number, region) is valid


def test_agrees_with_phonenumbers_on_random_candidates() -> None:
    rng = random.Random(20251127)
    codes = ["33", "49", "44", "1", "39", "34", "54", "55", "7", "86", "91", "352", "41", "31", "32", "61", "52", "81"]
    for _ in range(8000):
        region = rng.choice(["FR", "DE", "GB", "US", "AR", "BR", "JE", "IT", None, None])
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 13)))
        if region is None:
            number = f"+{rng.choice(codes)} {digits[:2]} {digits[2:]}"
        else:
            number = "0" + digits[1:] if rng.random() < 0.6 else digits
        assert valid_phone(number, region) is reference(number, region), (number, region)


def test_building_the_contact_detector_compiles_the_common_validity_patterns() -> None:
    """The first request holding a US number must not pay for compiling the 25 NANP regions' pattern."""
    phones._fit.cache_clear()
    ContactDetector()
    warmed = phones._fit.cache_info().currsize
    assert warmed >= len(phones.WARM_COUNTRY_CODES) * 14
    assert phones.valid_phone("(202) 555-0143", "US")
    assert phones._fit.cache_info().currsize == warmed  # nothing compiled on the way
