"""Finance detectors: cards, CVV and expiry, IBAN, BIC, ABA routing, bank accounts, wallets, VAT, SIREN/SIRET."""

from __future__ import annotations

import pytest

from tests.compliance import found, subtypes, values

CARDS = [
    ("4111111111111111", "VISA"), ("4222222222222", "VISA"), ("5555555555554444", "MASTERCARD"),
    ("2223003122003222", "MASTERCARD"), ("378282246310005", "AMEX"), ("6011111111111117", "DISCOVER"),
    ("30569309025904", "DINERS"), ("3530111333300000", "JCB"), ("6200000000000005", "UNIONPAY"),
    ("180055130792662", "JCB"), ("502013669747", "MAESTRO"), ("6759649826438453", "MAESTRO"),
]


@pytest.mark.parametrize(("number", "brand"), CARDS)
def test_cards_of_every_brand(number: str, brand: str) -> None:
    text = f"Paid by card {number} yesterday."
    assert values(text, "CREDIT_CARD") == [number]
    assert subtypes(text, "CREDIT_CARD") == [brand]


@pytest.mark.parametrize("written", [
    "4111 1111 1111 1111", "4111-1111-1111-1111", "4111.1111.1111.1111", "4111111111111111",
])
@pytest.mark.parametrize("sentence", [
    "Please charge my card {} for the order.",
    "Ma carte bancaire {} a été débitée deux fois.",
    "Meine Kreditkarte {} wurde doppelt belastet.",
])
def test_card_formats_in_three_languages(written: str, sentence: str) -> None:
    assert values(sentence.format(written), "CREDIT_CARD") == [written]


def test_unusual_lengths_written_plain_need_the_word_card() -> None:
    # 13 and 17-19 digit integers are seeds and ids in code far more often than cards.
    assert values("seed 4222222222222 and 6200000000000000003", "CREDIT_CARD") == []
    assert values("Visa 4222222222222", "CREDIT_CARD") == ["4222222222222"]


def test_amex_grouping_4_6_5() -> None:
    assert values("Amex 3782 822463 10005 on file", "CREDIT_CARD") == ["3782 822463 10005"]


@pytest.mark.parametrize("text", [
    "Order number 1234567812345678 shipped.",          # Luhn-invalid 16 digits
    "Created at 1700000000000 ms.",                     # epoch milliseconds
    "Timestamp 20240115093045 in the log.",             # compact date-time
    "ISBN 9782070368228 and ISBN 978-2-07-036822-8.",   # ISBN-13
    "USPS tracking 9400 1000 0000 0000 0000 00 and UPS 1Z999AA10123456784.",
    "Invoice 1234567812345670 from a system that uses Luhn but no card range.",
    "p50 0.5003434939999352 and 1.5499999999999998 ms",  # fractional digits of floats
    "Carte 4111 1111-1111.1111 écrite n'importe comment.",  # mixed separators
    "Commande n° 4903123796551547",                     # Luhn-valid, but an order number says so
    "FedEx 662676184723241",                             # 15 digits is no usual length for that brand
])
def test_card_lookalikes_are_not_cards(text: str) -> None:
    assert values(text, "CREDIT_CARD") == []


def test_four_groups_out_of_a_longer_run_are_not_a_card() -> None:
    # "4111 1111 1111 1111" glued to a fifth group is some other number.
    assert values("Reference 9400 4111 1111 1111 1111 closed", "CREDIT_CARD") == []


def test_card_inside_a_url_is_still_a_card() -> None:
    text = "https://shop.example.com/pay?card=4111111111111111&ok=1"
    assert found(text) == [("CREDIT_CARD", "4111111111111111")]


@pytest.mark.parametrize(("text", "cvv"), [
    ("CVV: 123", "123"), ("card verification code 4567", "4567"), ("cryptogramme visuel : 321", "321"),
    ("Kartenprüfnummer 987", "987"), ("CVC2 = 555", "555"),
])
def test_cvv_after_its_keyword(text: str, cvv: str) -> None:
    assert values(text, "CARD_CVV") == [cvv]


def test_cvv_needs_its_keyword() -> None:
    assert values("We sold 123 units in 2024, 456 returned.", "CARD_CVV") == []


@pytest.mark.parametrize(("text", "expiry"), [
    ("exp 12/27", "12/27"), ("Expiry date: 03/2026", "03/2026"), ("valable jusqu'au 11/25", "11/25"),
    ("gültig bis 09-28", "09-28"), ("valid thru 01 / 30", "01 / 30"),
])
def test_expiry_after_its_keyword(text: str, expiry: str) -> None:
    assert values(text, "CARD_EXPIRY") == [expiry]


def test_expiry_needs_its_keyword() -> None:
    assert values("Meeting on 12/27, then 03/2026.", "CARD_EXPIRY") == []


def test_card_with_its_expiry_and_cvv() -> None:
    text = "Carte 4111 1111 1111 1111, date d'expiration 12/27, cryptogramme 123."
    assert found(text) == [("CREDIT_CARD", "4111 1111 1111 1111"), ("CARD_EXPIRY", "12/27"), ("CARD_CVV", "123")]


@pytest.mark.parametrize("iban", [
    "FR76 3000 6000 0112 3456 7890 189", "FR7630006000011234567890189", "DE89 3704 0044 0532 0130 00",
    "GB29NWBK60161331926819", "CH93 0076 2011 6238 5295 7", "NL91ABNA0417164300",
])
@pytest.mark.parametrize("sentence", ["Virement sur {} merci.", "Please wire it to {}.", "Überweisung an {} bitte"])
def test_iban(iban: str, sentence: str) -> None:
    text = sentence.format(iban)
    assert found(text) == [("IBAN", iban)]
    assert subtypes(text, "IBAN") == [iban[:2]]


def test_iban_followed_by_words_and_numbers() -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX, Betrag 1200"
    assert values(text, "IBAN") == ["DE89 3704 0044 0532 0130 00"]


def test_iban_with_a_wrong_check_digit_is_nothing() -> None:
    assert found("IBAN FR76 3000 6000 0112 3456 7890 188") == []


@pytest.mark.parametrize(("text", "bic"), [
    ("BIC: BNPAFRPP", "BNPAFRPP"), ("SWIFT code DEUTDEFF500", "DEUTDEFF500"), ("code BIC : SOGEFRPP", "SOGEFRPP"),
    ("Please use COBADEFFXXX for the transfer", "COBADEFFXXX"), ("send to NWBKGB2LXXX today", "NWBKGB2LXXX"),
    ("send to NWBK GB2L", None), ("bic NWBKGB2L", "NWBKGB2L"), ("send to NWBKGB2L today", None),
])
def test_bic(text: str, bic: str | None) -> None:
    assert values(text, "SWIFT_BIC") == ([bic] if bic else [])


@pytest.mark.parametrize("text", [
    "CUSTOMER BUSINESS DOCUMENTS FOLLOWING",  # 8 and 9-letter words, some with real country codes
    "PLEASE CONTACT OUR DIRECTOR IMMEDIATELY REGARDING ACCOUNTING",
    "The COBADEFF branch",                     # a real BIC without its keyword reads like a word
    "'spline16': _image.SPLINE16, BINUNICODE8",  # constants in code
    "id a1b2c3d4-5678-90ab-cdef-EXAMPLE1111 and XN--LGBBAT1AD8J",
])
def test_uppercase_words_are_not_bics(text: str) -> None:
    assert values(text, "SWIFT_BIC") == []


def test_aba_routing_needs_its_keyword_and_checksum() -> None:
    assert values("Routing number: 021000021", "US_ABA_ROUTING") == ["021000021"]
    assert values("ABA 021000021 account 12345678", "US_ABA_ROUTING") == ["021000021"]
    assert values("Reference 021000021", "US_ABA_ROUTING") == []
    assert values("Routing number: 021000022", "US_ABA_ROUTING") == []


@pytest.mark.parametrize(("text", "account"), [
    ("Account number: 12345678", "12345678"), ("numéro de compte : 00012345678", "00012345678"),
    ("Kontonummer 1234567890", "1234567890"), ("checking account # 4455-667788", "4455-667788"),
])
def test_bank_account_after_its_keyword(text: str, account: str) -> None:
    assert values(text, "BANK_ACCOUNT") == [account]


def test_bank_account_needs_its_keyword() -> None:
    assert values("Ticket 12345678 closed", "BANK_ACCOUNT") == []
    assert values("the AWS account 123456789012 and account_id: 444455556666", "BANK_ACCOUNT") == []


@pytest.mark.parametrize(("address", "kind"), [
    ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "BITCOIN"),
    ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "BITCOIN"),
    ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "BITCOIN"),
    ("bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297", "BITCOIN"),  # taproot, bech32m
    ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "ETHEREUM"),                      # EIP-55
    ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "ETHEREUM"),                      # no checksum to check
])
def test_wallets(address: str, kind: str) -> None:
    text = f"Send to {address} please"
    assert found(text) == [("CRYPTO_WALLET", address)]
    assert subtypes(text, "CRYPTO_WALLET") == [kind]


@pytest.mark.parametrize("address", [
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",                     # base58check fails
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr",             # bech32 fails
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",             # EIP-55 capitals wrong
])
def test_wallets_with_a_broken_checksum(address: str) -> None:
    assert values(f"Send to {address}", "CRYPTO_WALLET") == []


@pytest.mark.parametrize(("vat", "country"), [
    ("FR40303265045", "FR"), ("FR 40 303 265 045", "FR"), ("DE136695976", "DE"), ("ATU13585627", "AT"),
    ("NL004495445B01", "NL"), ("BE 0403.170.701", "BE"), ("IT00743110157", "IT"), ("GB980780684", "GB"),
])
def test_vat_numbers(vat: str, country: str) -> None:
    text = f"N° TVA intracommunautaire {vat}."
    assert found(text) == [("EU_VAT", vat)]
    assert subtypes(text, "EU_VAT") == [country]


def test_vat_with_a_wrong_check_is_nothing() -> None:
    assert values("USt-IdNr. DE136695977", "EU_VAT") == []
    assert values("TVA FR40303265046", "EU_VAT") == []


def test_siret_contains_a_siren_and_only_the_siret_is_reported() -> None:
    assert found("SIRET : 732 829 320 00074") == [("FR_SIRET", "732 829 320 00074")]
    assert found("Société immatriculée sous le SIRET 73282932000074") == [("FR_SIRET", "73282932000074")]


@pytest.mark.parametrize("text", ["SIREN : 732 829 320", "RCS Paris 732829320", "la société 552 100 554"])
def test_siren(text: str) -> None:
    assert [kind for kind, _ in found(text)] == ["FR_SIREN"]


def test_grouped_siret_speaks_for_itself_a_grouped_siren_does_not() -> None:
    assert values("Voir 732 829 320 00074 pour le détail", "FR_SIRET") == ["732 829 320 00074"]
    assert values("Voir 732 829 320 pour le détail", "FR_SIREN") == []
    assert found("Total : 407 714 369 EUR, soit 407.714.369 €") == []  # amounts


def test_bare_company_numbers_need_their_keyword() -> None:
    assert found("Commande 732829320 livrée, lot 73282932000074") == []
    assert values("Horodatage 20240115093045", "FR_SIRET") == []


# --- regressions of issue 5 --------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Société Acme Conseil, SIRET 36568121201994, TVA FR12345678901.",
    "Der französische Lieferant hat die SIRET 36426652808283.",
    "Numéro SIREN/SIRET de l'entreprise : 38012986600030",
])
def test_siret_starting_like_a_diners_card_is_a_siret(text: str) -> None:
    [(kind, _)] = found(text)
    assert kind == "FR_SIRET"


def test_a_14_digit_diners_reading_needs_card_context() -> None:
    assert values("ref 30569309025904 attached", "CREDIT_CARD") == []
    assert values("Diners Club card 30569309025904", "CREDIT_CARD") == ["30569309025904"]
    assert values("Please charge 30569309025904 for the annual fee.", "CREDIT_CARD") == ["30569309025904"]
    assert values("Voucher 3056 930902 5904 attached", "CREDIT_CARD") == ["3056 930902 5904"]  # the card's own grouping


@pytest.mark.parametrize("text", [
    "Die IBAN DE63 6889 9962 6671 1235 51 wurde von der Bank als ungültig abgelehnt.",
    "IBAN on the form: IT21 W072 6898 3963 6900 1760 166 (the bank says it does not exist)",
    "FR76 3000 6000 0112 3456 7890 188",  # check digits wrong by one
])
def test_an_iban_with_a_bad_check_digit_is_nothing(text: str) -> None:
    assert found(text) == []


def test_aba_routing_needs_its_checksum_and_its_own_keyword() -> None:
    text = "Routing number 021000021, account number 123456780."  # both pass the 3-7-1 checksum
    assert found(text) == [("US_ABA_ROUTING", "021000021"), ("BANK_ACCOUNT", "123456780")]
    assert values("Routing number 021000022", "US_ABA_ROUTING") == []  # checksum
    assert values("Reference 021000021", "US_ABA_ROUTING") == []  # no keyword


def test_a_bare_account_word_counts_next_to_banking_words_only() -> None:
    assert values("Wire to ABA routing number 219033127, account 72108855.", "BANK_ACCOUNT") == ["72108855"]
    assert values("Virement sur le compte 12345678 de la banque", "BANK_ACCOUNT") == ["12345678"]
    assert values("my account 12345678 at the shop was closed", "BANK_ACCOUNT") == []


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("Meine Karte 4349228861094752 läuft 08/26 ab.", "CARD_EXPIRY", "08/26"),
    ("Kreditkarte 4111 1111 1111 1111, gültig bis 12/27", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("Kontonummer 0532013000 bei der Sparkasse", "BANK_ACCOUNT", "0532013000"),
    ("Bankleitzahl 37040044, Konto 0532013000", "BANK_ACCOUNT", "0532013000"),
])
def test_german_context_words(text: str, kind: str, value: str) -> None:
    assert value in values(text, kind)
