"""Identity detectors: US SSN and ITIN, French NIR, UK NHS and NINO, passports, driving licences."""

from __future__ import annotations

import pytest

from tests.compliance import found, values


@pytest.mark.parametrize(("text", "ssn"), [
    ("SSN 536-90-4399 on the form", "536-90-4399"),
    ("Social security number: 536 90 4399", "536 90 4399"),
    ("my social security number is 536904399", "536904399"),
    ("Numéro de sécurité sociale américain 536-90-4399", "536-90-4399"),
])
def test_ssn(text: str, ssn: str) -> None:
    assert values(text, "US_SSN") == [ssn]


@pytest.mark.parametrize("text", [
    "SSN 000-12-3456", "SSN 666-12-3456", "SSN 536-00-4399", "SSN 536-90-0000",  # impossible area/group/serial
    "Order 536904399 shipped",                                                  # bare 9 digits, no keyword
])
def test_not_ssns(text: str) -> None:
    assert values(text, "US_SSN") == []


def test_itin_shares_the_ssn_shape() -> None:
    assert found("ITIN 912-70-1234") == [("US_ITIN", "912-70-1234")]
    assert values("ITIN 912-40-1234", "US_ITIN") == []  # group 40 is no ITIN group


@pytest.mark.parametrize("nir", [
    "2 95 10 99 126 111 93", "295109912611193", "1 85 05 78 006 084 91", "2 53 07 2A 073 004 43",
    "253072B07300470",
])
@pytest.mark.parametrize("sentence", [
    "Mon numéro de sécurité sociale est le {}.", "NIR : {}", "Patient French social security number {}.",
])
def test_nir_with_corsica(nir: str, sentence: str) -> None:
    assert values(sentence.format(nir), "FR_NIR") == [nir]


def test_nir_with_a_wrong_key_is_nothing() -> None:
    assert values("NIR 2 95 10 99 126 111 94", "FR_NIR") == []
    assert values("NIR 2 53 07 2A 073 004 44", "FR_NIR") == []


@pytest.mark.parametrize(("text", "nhs"), [
    ("NHS number: 943 476 5919", "943 476 5919"), ("NHS No 9434765919", "9434765919"),
    ("Patient 401 023 2137 was seen", "401 023 2137"),
])
def test_nhs(text: str, nhs: str) -> None:
    assert values(text, "UK_NHS") == [nhs]


@pytest.mark.parametrize("text", [
    "NHS number: 943 476 5918",   # mod 11 fails
    "Reference 9434765919",       # bare digits without the keyword
])
def test_not_nhs(text: str) -> None:
    assert values(text, "UK_NHS") == []


@pytest.mark.parametrize(("text", "nino"), [
    ("National Insurance number AB 12 34 56 C", "AB 12 34 56 C"), ("NINO: AB123456C", "AB123456C"),
    ("her NI number is JG103759A", "JG103759A"),
])
def test_nino(text: str, nino: str) -> None:
    assert values(text, "UK_NINO") == [nino]


@pytest.mark.parametrize("text", ["NINO GB123456A", "NINO QQ123456E", "code BG123456A", "ZZ475277T"])
def test_not_nino(text: str) -> None:
    assert values(text, "UK_NINO") == []


def test_national_insurance_is_not_health_insurance() -> None:
    assert found("National Insurance number ZZ475277T") == []  # an invalid NINO is nothing else either


def test_a_valid_nir_is_not_taken_for_a_card() -> None:
    # 180049800005091 is also a Luhn-valid 15-digit number in a legacy JCB range: the NIR key is stronger.
    assert found("Numéro 180049800005091 enregistré") == [("FR_NIR", "180049800005091")]


@pytest.mark.parametrize(("text", "number"), [
    ("Passport number: 12AB34567", "12AB34567"), ("numéro de passeport : 12AB34567", "12AB34567"),
    ("Reisepassnummer C01X00T47", "C01X00T47"), ("passport no. 533380006", "533380006"),
    ("Passport No X1234567 issued in 2019", "X1234567"), ("Passport number:\nX1234567", "X1234567"),
])
def test_passport_after_its_keyword(text: str, number: str) -> None:
    assert values(text, "PASSPORT") == [number]


@pytest.mark.parametrize("text", [
    "Code 12AB34567 in the catalogue",       # the shape alone is nothing
    "Passport holder NAME SURNAME",          # no digit
    "my passport expires in 2029",           # too short
])
def test_not_passports(text: str) -> None:
    assert values(text, "PASSPORT") == []


@pytest.mark.parametrize(("text", "number"), [
    ("Driver's license D1234567", "D1234567"), ("permis de conduire n° 123456789012", "123456789012"),
    ("Führerscheinnummer B072RRE2I55", "B072RRE2I55"), ("driving licence: MORGA753116SM9IJ", "MORGA753116SM9IJ"),
    ("DL # 123-456-789", "123-456-789"),
])
def test_driver_license_after_its_keyword(text: str, number: str) -> None:
    assert values(text, "DRIVER_LICENSE") == [number]


@pytest.mark.parametrize("text", [
    "D1234567 is the part number", "the driver's license office opens at 9",
    "Le permis B est obligatoire",
])
def test_not_driver_licenses(text: str) -> None:
    assert values(text, "DRIVER_LICENSE") == []


# --- regressions of issue 5 --------------------------------------------------------------------

@pytest.mark.parametrize("itin", ["921-50-4628", "921-60-4628", "959-65-1504", "912-70-1234", "912-88-1234",
                                  "912-90-1234", "912-92-1234", "912-94-1234", "999-99-2871"])
def test_itin_groups_of_the_irs_rules(itin: str) -> None:
    assert values(f"The IRS letter lists my ITIN as {itin}.", "US_ITIN") == [itin]


@pytest.mark.parametrize("itin", ["921-49-4628", "921-66-4628", "912-69-1234", "912-89-1234", "912-93-1234",
                                  "912-00-1234"])
def test_itin_groups_outside_the_irs_rules(itin: str) -> None:
    assert values(f"The IRS letter lists my ITIN as {itin}.", "US_ITIN") == []


@pytest.mark.parametrize(("text", "kind"), [
    ("Sozialversicherungsnummer: 536-22-1234", "US_SSN"),
    ("Steuer-ID (ITIN): 959-53-1504", "US_ITIN"),
])
def test_german_identity_context(text: str, kind: str) -> None:
    assert [k for k, _ in found(text)] == [kind]
