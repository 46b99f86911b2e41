"""Health detectors: medical record numbers, NPI, DEA, ICD-10 codes, health insurance ids."""

from __future__ import annotations

import pytest

from tests.compliance import found, subtypes, values


@pytest.mark.parametrize(("text", "mrn"), [
    ("MRN: 00123456", "00123456"), ("Medical record number 2024-778812", "2024-778812"),
    ("N° de dossier : AB12345", "AB12345"), ("numéro de dossier patient 77821934", "77821934"),
    ("Patientennummer: 4711-0815", "4711-0815"), ("patient ID P-009981", "P-009981"),
])
def test_mrn_after_its_keyword(text: str, mrn: str) -> None:
    assert values(text, "MEDICAL_RECORD_NUMBER") == [mrn]


@pytest.mark.parametrize("text", ["Batch 00123456 released", "MRN pending", "patient ID unknown"])
def test_not_mrn(text: str) -> None:
    assert values(text, "MEDICAL_RECORD_NUMBER") == []


@pytest.mark.parametrize("text", [
    "NPI: 1234567893", "National Provider Identifier 1234567893", "prescriber 1234567893",
])
def test_npi(text: str) -> None:
    assert values(text, "US_NPI") == ["1234567893"]


@pytest.mark.parametrize("text", [
    "NPI: 1234567890",          # Luhn over 80840 + number fails
    "Created 1234567893",       # ten digits are every epoch timestamp: the keyword is required
    "NPI 3234567893",           # NPIs start with 1 or 2
])
def test_not_npi(text: str) -> None:
    assert values(text, "US_NPI") == []


@pytest.mark.parametrize("text", ["DEA number AB1234563", "Prescriber BJ6125341 signed", "DEA# FM1234563"])
def test_dea(text: str) -> None:
    assert len(values(text, "US_DEA")) == 1


@pytest.mark.parametrize("text", ["DEA AB1234564", "code ZZ1234563", "ref AB12345634"])
def test_not_dea(text: str) -> None:
    assert values(text, "US_DEA") == []


@pytest.mark.parametrize(("text", "code"), [
    ("Diagnosis: E11.9", "E11.9"), ("ICD-10 I10", "I10"), ("code CIM-10 : J45.909", "J45.909"),
    ("Diagnose F32.1 bestätigt", "F32.1"), ("dx S72.001A", "S72.001A"),
])
def test_icd10_after_its_keyword(text: str, code: str) -> None:
    assert values(text, "ICD10_CODE") == [code]


@pytest.mark.parametrize("text", ["Room E11.9 on floor 2", "Vitamin B12 and I10 tickets", "diagnosis pending"])
def test_not_icd10(text: str) -> None:
    assert values(text, "ICD10_CODE") == []


@pytest.mark.parametrize(("text", "number"), [
    ("Member ID: XYZ123456789", "XYZ123456789"), ("numéro d'adhérent : 12345678", "12345678"),
    ("Versichertennummer A123456780", "A123456780"), ("policy number: POL-2024-00981", "POL-2024-00981"),
])
def test_health_insurance_after_its_keyword(text: str, number: str) -> None:
    assert values(text, "HEALTH_INSURANCE_ID") == [number]


def test_medicare_beneficiary_identifier_by_its_shape() -> None:
    text = "Medicare 1EG4-TE5-MK73 on the card"
    assert found(text) == [("HEALTH_INSURANCE_ID", "1EG4-TE5-MK73")]
    assert subtypes(text, "HEALTH_INSURANCE_ID") == ["US_MBI"]


def test_not_health_insurance() -> None:
    assert values("Our insurance policy covers travel", "HEALTH_INSURANCE_ID") == []
    assert values("Item 1EG4-TE5-MK7 is short", "HEALTH_INSURANCE_ID") == []
