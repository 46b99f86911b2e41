"""Health identifiers for the corpus: NPI and DEA numbers (our own check digits), record numbers, ICD-10
codes, insurance member ids and Medicare beneficiary identifiers."""

from __future__ import annotations

from bench.compliance import checksums as ck
from bench.compliance.values import DIGITS, UPPER, Ctx, Generator, Piece, digits, whole


def us_npi(ctx: Ctx) -> Piece:
    nine = ctx.rng.choice("12") + digits(ctx.rng, 8)
    return whole(nine + ck.npi_check_digit(nine), "US_NPI")


def us_dea(ctx: Ctx) -> Piece:
    six = digits(ctx.rng, 6)
    initial = ctx.fake.last_name()[0].upper()
    initial = initial if initial in UPPER else "M"
    return whole(ctx.rng.choice("ABFGM") + initial + six + ck.dea_check_digit(six), "US_DEA")


def medical_record_number(ctx: Ctx) -> Piece:
    rng = ctx.rng
    style = rng.random()
    if style < 0.5:
        value = digits(rng, rng.randint(6, 9))
    elif style < 0.75:
        value = f"{rng.randint(2015, 2025)}-{digits(rng, 6)}"
    else:
        value = rng.choice(("MRN", "PAT", "P", "H")) + "-" + digits(rng, rng.randint(5, 8))
    return whole(value, "MEDICAL_RECORD_NUMBER")


ICD10 = ("E11.9", "I10", "J45.909", "F32.1", "M54.5", "K21.9", "N39.0", "J18.9", "E78.5", "I48.91", "G43.909", "R51.9",
         "C50.911", "S72.001A", "F41.1", "E66.9", "I25.10", "J44.1", "K52.9", "F33.2", "G40.909", "L40.0", "M17.11",
         "E03.9", "N18.3", "I50.9", "J06.9", "B20", "O80", "Z34.01")


def icd10_code(ctx: Ctx) -> Piece:
    return whole(ctx.rng.choice(ICD10), "ICD10_CODE")


_MBI_ALPHA = "ACDEFGHJKMNPQRTUVWXY"


def health_insurance_id(ctx: Ctx) -> Piece:
    rng = ctx.rng
    if ctx.locale == "en_US":
        if rng.random() < 0.5:  # a Medicare Beneficiary Identifier, printed as on the card
            # the positions' alphabets: C (1-9), A (letter but S L O I B Z), N (digit), AN (either)
            shape = ("C", "A", "AN", "N", "-", "A", "AN", "N", "-", "A", "A", "N", "N")
            pools = {"C": "123456789", "A": _MBI_ALPHA, "N": DIGITS, "AN": _MBI_ALPHA + DIGITS, "-": "-"}
            value = "".join(rng.choice(pools[kind]) for kind in shape)
        else:
            value = "".join(rng.choice(UPPER) for _ in range(3)) + digits(rng, 9)
    elif ctx.locale == "de_DE":
        value = rng.choice(UPPER) + digits(rng, 9)
    else:
        value = digits(rng, rng.randint(8, 10), "123456789") if rng.random() < 0.6 else \
            "".join(rng.choice(UPPER) for _ in range(2)) + digits(rng, 8)
    return whole(value, "HEALTH_INSURANCE_ID")


SLOTS: dict[str, Generator] = {
    "US_NPI": us_npi, "US_DEA": us_dea, "MEDICAL_RECORD_NUMBER": medical_record_number, "ICD10_CODE": icd10_code,
    "HEALTH_INSURANCE_ID": health_insurance_id,
}
