"""Contact detectors: e-mail, phone numbers, IP and MAC addresses, URLs, street addresses."""

from __future__ import annotations

import pytest

from tests.compliance import found, subtypes, values


@pytest.mark.parametrize("email", [
    "jean.dupont@example.fr", "j.smith+billing@mail.example.co.uk", "hans_mueller-2@beispiel.de",
])
@pytest.mark.parametrize("sentence", [
    "Write to {} today.", "Écrivez-moi à {}, merci.", "Schreiben Sie an <{}>.",
])
def test_email(email: str, sentence: str) -> None:
    assert found(sentence.format(email)) == [("EMAIL", email)]


@pytest.mark.parametrize("text", [
    "ping @channel", "user@localhost", "jean..dupont@example.fr", "a@b.c", "version 1.2@3.4",
])
def test_not_emails(text: str) -> None:
    assert values(text, "EMAIL") == []


@pytest.mark.parametrize(("text", "phone"), [
    ("Appelez-moi au 06 12 34 56 78.", "06 12 34 56 78"),
    ("Tél : 01.42.68.53.00", "01.42.68.53.00"),
    ("Call +33 6 12 34 56 78 tomorrow", "+33 6 12 34 56 78"),
    ("Rufen Sie 030 1234567 an", "030 1234567"),
    ("Handy: 0171 2345678", "0171 2345678"),
    ("Tel. +49 30 12345678", "+49 30 12345678"),
    ("Ring 020 7946 0958 in London", "020 7946 0958"),
    ("Phone (415) 555-2671 or", "(415) 555-2671"),
    ("call 1-800-555-0199 now", "1-800-555-0199"),
    ("international 0044 20 7946 0958", "0044 20 7946 0958"),
    ("my cell is 2125551234", "2125551234"),
    ("Portable : 0612345678", "0612345678"),
    ("Office: 415.555.2671x926 (desk)", "415.555.2671x926"), ("call (415) 555-2671 ext. 12", "(415) 555-2671 ext. 12"),
])
def test_phone(text: str, phone: str) -> None:
    assert values(text, "PHONE") == [phone]


@pytest.mark.parametrize("text", [
    "Meeting 2024-01-15 09:30, invoice of 15.01.2024",    # dates
    "Total 1 234 567 EUR and 12 345 678 units",           # amounts
    "ISBN 978-2-07-036822-8",
    "UPS 1Z999AA10123456784, created 1700000000",          # tracking number, epoch seconds
    "Order 2125551234 shipped",                            # a bare 10-digit number without context
    "IBAN FR76 3000 6000 0112 3456 7890 189",              # digit groups inside an IBAN
    "Call 123 456 7890 now",                               # NANP area codes never start with 1
    "digits = '0123456789'; Tél : 01 23 45 67 89",          # alphabets and placeholders
    "Decimal('+35236450.6') and key-0612345678",           # a decimal, an identifier
    "Ref 0612345678",                                      # bare digits without a phone keyword
    "issn={0209-9683}, Boston, MA 02110-1301 USA",         # an ISSN, a ZIP+4 code
    "arn:aws:mediaconvert:us-east-1:003235472598:presets",  # an account id after 00
])
def test_phone_lookalikes(text: str) -> None:
    assert values(text, "PHONE") == []


@pytest.mark.parametrize(("text", "address", "version"), [
    ("server at 192.168.1.10 is down", "192.168.1.10", "IPV4"),
    ("adresse IP : 8.8.8.8.", "8.8.8.8", "IPV4"),
    ("Die IP-Adresse 2001:db8::ff00:42:8329 ist neu", "2001:db8::ff00:42:8329", "IPV6"),
    ("link-local fe80::1ff:fe23:4567:890a%eth0", "fe80::1ff:fe23:4567:890a", "IPV6"),
    ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334 here", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "IPV6"),
])
def test_ip_addresses(text: str, address: str, version: str) -> None:
    assert found(text) == [("IP_ADDRESS", address)]
    assert subtypes(text, "IP_ADDRESS") == [version]


@pytest.mark.parametrize("text", [
    "999.1.1.1", "version 1.2.3.4", "OID 1.3.6.1.4.1", "std::vector<int>::iterator", "at 12:30:45 sharp",
    "Cache::Add(key)", "01.02.03.04",
])
def test_not_ip_addresses(text: str) -> None:
    assert values(text, "IP_ADDRESS") == []


@pytest.mark.parametrize("mac", ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e"])
def test_mac(mac: str) -> None:
    assert found(f"device {mac} joined") == [("MAC_ADDRESS", mac)]


def test_mac_with_mixed_separators_is_nothing() -> None:
    assert values("device 00:1A-2B:3C-4D:5E", "MAC_ADDRESS") == []


@pytest.mark.parametrize(("text", "url"), [
    ("See https://example.com/a/b?c=d&e=f.", "https://example.com/a/b?c=d&e=f"),
    ("(voir https://fr.wikipedia.org/wiki/Paris_(France))", "https://fr.wikipedia.org/wiki/Paris_(France)"),
    ("Docs: www.example.org/docs, then", "www.example.org/docs"),
    ("ftp://files.example.com/pub/", "ftp://files.example.com/pub/"),
    ('<a href="https://exemple.fr/é">', "https://exemple.fr/é"),
])
def test_url(text: str, url: str) -> None:
    assert values(text, "URL") == [url]


@pytest.mark.parametrize(("text", "address"), [
    ("J'habite au 12 rue de la Paix à Paris", "12 rue de la Paix"),
    ("Livraison : 5 bis avenue Victor Hugo, 69003 Lyon", "5 bis avenue Victor Hugo"),
    ("Siège : 3, place de l'Église", "3, place de l'Église"),
    ("She lives at 1600 Pennsylvania Avenue in Washington", "1600 Pennsylvania Avenue"),
    ("Ship to 221 Baker Street, London", "221 Baker Street"),
    ("Wohnhaft in der Hauptstraße 5 in Berlin", "Hauptstraße 5"),
    ("Adresse: Berliner Straße 12a", "Berliner Straße 12a"),
])
def test_street_address(text: str, address: str) -> None:
    assert values(text, "STREET_ADDRESS") == [address]


@pytest.mark.parametrize("text", [
    "The event will take place Tomorrow", "Dr. Smith said", "Main Street is closed", "la rue est calme",
    "unterwegs 5 Stunden",
])
def test_not_street_addresses(text: str) -> None:
    assert values(text, "STREET_ADDRESS") == []


# --- regressions of issue 5 --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "phone"), [
    ("Mon numéro : 0612345678", "0612345678"),
    ("Mon numéro est le 0612345678.", "0612345678"),
    ("Appelez-moi au n° 0145678912", "0145678912"),
    ("n° 0612345678", "0612345678"),
    ("Tél. 0145678912", "0145678912"),
    ("Mon portable : 0612345678", "0612345678"),
    ("Telefon: 03012345678", "03012345678"),
])
def test_french_and_german_phone_cues(text: str, phone: str) -> None:
    assert values(text, "PHONE") == [phone]


@pytest.mark.parametrize("text", [
    "numéro de commande 0612345678",
    "Commande n° 0612345678",
    "Numéro de compte 01244710908 à l'agence",
    "Rechnung Nr. 03012345678",
])
def test_number_cues_of_other_things_are_not_phones(text: str) -> None:
    assert values(text, "PHONE") == []


@pytest.mark.parametrize("address", ["66 Washington Grove", "202 Edwards Crescent", "4 Rose Gardens"])
def test_more_english_street_types(address: str) -> None:
    assert values(f"My new address is {address}, Nottingham.", "STREET_ADDRESS") == [address]
