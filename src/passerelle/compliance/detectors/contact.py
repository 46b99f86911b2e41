"""Contact data: e-mail, phone numbers (phonenumbers, with a region guessed from context and prefix),
IP and MAC addresses, URLs, and a simple street-address shape (French, English, German)."""

from __future__ import annotations

import ipaddress
import re

from stdnum import issn

from passerelle.compliance.context import first_near, near, near_any
from passerelle.compliance.detectors.common import (
    PatternDetector,
    attached,
    extend,
    looks_like_date,
    looks_like_isbn,
    one_separator_kind,
    trivial_digits,
)
from passerelle.compliance.detectors.phones import valid_phone, warm
from passerelle.compliance.findings import Finding, Pattern

_PHONE_CONTEXT = ("phone_fr", "phone_de", "phone_en")
_PHONE_CONTEXT_OR_REFERENCE = (*_PHONE_CONTEXT, "reference")
_CONTEXT_REGION = {"phone_fr": "FR", "phone_de": "DE", "phone_en": "US"}
_IPV4_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_EXTENSION = re.compile(r" ?(?:x|ext\.?) ?\d{1,6}$")
# "mon numéro : ", "au n° ": a French phone cue right before the number ("numéro de compte" is not one), and only
# when no reference word (commande, facture...) says otherwise.
_NUMBER_CUE = re.compile(r"(?:\b(?:mon|ton|son|votre|notre|leur|au|le|ce|du) num(?:é|e)ro|\bn°)[^\w]{0,3}"
                         r"(?:(?:est|c'est|le|du|au)[^\w]{1,3}){0,2}$", re.IGNORECASE)
_ZIP_OR_ISSN = re.compile(r"\d{5}-\d{4}|\d{4}-\d{3}[\dX]")


def _cue_before(text: str, start: int) -> bool:
    begin = max(0, start - 30)
    before = text[begin:start].lower()
    # The cue holds "num" or "n°": most windows have neither, and the regex is slow to say so.
    return ("num" in before or "n°" in before) and _NUMBER_CUE.search(text, begin, start) is not None


def _regions(digits: str, context: str | None) -> list[str]:
    """Where a national-format number is most likely from: its context's language, then its shape."""
    regions = []
    if context is not None:
        regions.append("GB" if context == "phone_en" and digits[0] == "0" else _CONTEXT_REGION[context])
    if digits[0] == "0":
        regions += ["FR", "DE", "GB"] if len(digits) == 10 else ["GB", "DE"] if len(digits) == 11 else ["DE"]
    elif len(digits) == 10 or (len(digits) == 11 and digits[0] == "1"):
        regions.append("US")  # NANP: area codes never start with 0 or 1
    return list(dict.fromkeys(regions))[:2]


def _national_shape(value: str, digits: str) -> bool:
    """One separator kind after an optional "(area)"; NANP numbers grouped 3-3-4 ("2024-03-15 09" is a date)."""
    rest = value.split(")", 1)[1].lstrip() if value[0] == "(" else value
    if not one_separator_kind(rest):
        return False
    if digits[0] == "0":
        return True
    groups = [len(g) for g in value.replace("(", " ").replace(")", " ").replace(".", " ").replace("-", " ").split()]
    return groups in ([3, 3, 4], [1, 3, 3, 4])


def _phone(text: str, start: int, end: int) -> Finding | None:
    # Cheapest tests first: digit groups of dates, cards and IBANs come here too.  Every test but the last ones
    # rejects, so their order is only a matter of speed.
    value = text[start:end]
    if "x" in value:
        extension = _EXTENSION.search(value)  # "x926", "ext. 12": part of the finding, not of the number
        if extension is not None:
            value = value[:extension.start()]
    digits = value.replace(" ", "").replace(".", "").replace("-", "").replace("/", "").replace("(", "") \
        .replace(")", "").replace("+", "")
    if not 7 <= len(digits) <= 15 or attached(text, start, end) or \
            trivial_digits(digits) or looks_like_date(value) or _IPV4_SHAPE.fullmatch(value) or looks_like_isbn(digits):
        return None
    if value.count(".") == 1 and value.replace(".", "").lstrip("+").isdigit():
        return None  # +35236450.6 is a decimal number
    if _ZIP_OR_ISSN.fullmatch(value) and (len(value) == 10 or issn.is_valid(value)):
        return None  # 02110-1301 is a ZIP+4 code, 0209-9683 an ISSN
    international = value[0] == "+" or value.startswith("00")
    grouped = not value.isdigit()
    if grouped and not international and not _national_shape(value, digits):
        return None
    context = None
    if near_any(text, start, _PHONE_CONTEXT_OR_REFERENCE):  # one search for the common case of neither
        context = first_near(text, start, _PHONE_CONTEXT)
        if context is None:  # then the word found is a reference word (as a_reference would search again)
            return None
    if context is None and _cue_before(text, start):
        context = "phone_fr"
    bonus = 0.1 if context is not None else 0.0  # scores stay on two decimals: 0.8 + 0.1 is 0.9
    if value.startswith("00") and value.isdigit() and context is None:
        return None  # "003235472598" between colons is an account id; 0033 6... is written grouped
    if international:
        number = "+" + value[2:] if value[0] == "0" else value
        return Finding("PHONE", start, end, round(0.9 + bonus, 2)) if valid_phone(number, None) else None
    if not grouped and context is None:
        return None  # a bare run of digits is an id, an order number, a literal, until a keyword says otherwise
    for region in _regions(digits, context):
        if valid_phone(value, region):
            return Finding("PHONE", start, end, round((0.8 if grouped else 0.75) + bonus, 2))
    return None


_LOCAL_PART = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"


def _email(text: str, start: int, end: int) -> Finding | None:
    # The pattern starts one character before "@" (a literal-led pattern is much faster to scan): the local part
    # is the run of its characters, at most 64, that ends there.
    at = start + 1
    before = text[max(0, at - 64):at]
    begin = at - len(before) + len(before.rstrip(_LOCAL_PART))
    while text[begin] in ".-+":
        begin += 1
    local = text[begin:at]
    if not local or local[-1] == "." or ".." in local:
        return None
    return Finding("EMAIL", begin, end, 0.9)


def _ipv4(text: str, start: int, end: int) -> Finding | None:
    value = text[start:end]
    octets = value.split(".")  # four groups of 1-3 ASCII digits (the pattern's)
    if any(int(o) > 255 or (o[0] == "0" and len(o) > 1) for o in octets):
        return None  # what ipaddress.IPv4Address refuses of them: a group over 255, leading zeros
    if octets[0] == "127" or value == "0.0.0.0":  # loopback and unspecified addresses point at no one
        return None
    # 1.2.3.4.5 and v1.2.3.4 are versions or OIDs, not addresses.
    dotted_before = start >= 2 and text[start - 1] == "." and text[start - 2].isdigit()
    dotted_after = text[end:end + 1] == "." and text[end + 1:end + 2].isdigit()
    if dotted_before or dotted_after or near(text, start, "version", 12):
        return None
    return Finding("IP_ADDRESS", start, end, 0.9 if near(text, start, "ip") else 0.85, "IPV4")


_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:")


def _ipv6(text: str, start: int, end: int) -> Finding | None:
    if start and text[start - 1] in _IPV6_CHARS:
        return None
    end = extend(text, end, _IPV6_CHARS, 40)
    if text[end - 1] == ":" and text[end - 2] != ":":
        end -= 1
    value = text[start:end]
    if not any(c.isdigit() for c in value) or text[end:end + 1].isalnum():
        return None  # "abc::def" is C++, not an address
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    if address.is_loopback or address.is_unspecified:
        return None
    return Finding("IP_ADDRESS", start, end, 0.9 if near(text, start, "ip") else 0.85, "IPV6")


def _mac(text: str, start: int, end: int) -> Finding | None:
    return Finding("MAC_ADDRESS", start, end, 0.85) if one_separator_kind(text[start:end]) else None


_URL_TAIL = re.compile(r"[^\s<>\"'`]*")
_URL_TRIM = ".,;:!?"


def _url(text: str, start: int, end: int) -> Finding | None:
    match = _URL_TAIL.match(text, end)
    end = match.end() if match else end
    while end > start:  # trailing punctuation and unbalanced closing brackets belong to the sentence
        last = text[end - 1]
        value = text[start:end]
        if last in _URL_TRIM or (last == ")" and value.count("(") < value.count(")")) or \
                (last == "]" and value.count("[") < value.count("]")):
            end -= 1
        else:
            break
    return Finding("URL", start, end, 0.6) if end - start > 8 else None


# Street patterns start at the street word (a literal); the house number and name are found backwards.
_NUMBER_BEFORE_FR = re.compile(r"\b\d{1,4}(?: ?(?:bis|ter|[a-zA-Z]))?,? ?$")
_NAME_AFTER_FR = re.compile(r"(?:(?:de la|du|des|de|la|le) |de l'|d'|l')?[A-ZÉÈÀÇ][\w'-]+(?: [A-ZÉÈÀÇ][\w'-]+){0,2}")
_WORDS_BEFORE_EN = re.compile(r"\b\d{1,5} (?:[A-Z][a-z]+ ){1,3}$")
_NAME_BEFORE_DE = re.compile(r"\b[A-ZÄÖÜ][a-zäöüß-]+ ?$")


def _address_fr(text: str, start: int, end: int) -> Finding | None:
    number = _NUMBER_BEFORE_FR.search(text, max(0, start - 12), start)
    name = _NAME_AFTER_FR.match(text, end) if number else None
    return Finding("STREET_ADDRESS", number.start(), name.end(), 0.6) if number and name else None


def _address_en(text: str, start: int, end: int) -> Finding | None:
    words = _WORDS_BEFORE_EN.search(text, max(0, start - 48), start)
    return Finding("STREET_ADDRESS", words.start(), end, 0.6) if words else None


def _address_de(text: str, start: int, end: int) -> Finding | None:
    attached = text[start].islower()  # "Hauptstraße 5" vs "Berliner Straße 12"
    name = _NAME_BEFORE_DE.search(text, max(0, start - 30), start)
    if name is None or attached == text[name.end() - 1].isspace():
        return None
    return Finding("STREET_ADDRESS", name.start(), end, 0.6)



PATTERNS = (
    Pattern("email", r"[A-Za-z0-9_%+-]@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b", "EMAIL", _email),
    Pattern("phone_intl", r"(?:\+|\b00)[1-9](?:[ .\-/]?\(?\d{1,5}\)?){2,7}\b", "PHONE", _phone),
    Pattern("phone_trunk", r"(?:\(0\d{1,4}\) ?|\b0\d{1,4}[ .\-/])\d{2,8}(?:[ .\-]\d{2,8}){0,4}\b", "PHONE", _phone),
    Pattern("phone_nanp", r"(?:\b1[ .-])?(?:\(\d{3}\) ?|\b\d{3}[ .-])\d{3}[ .-]\d{4}(?: ?(?:x|ext\.?) ?\d{1,6})?\b",
            "PHONE", _phone),
    Pattern("phone_bare", r"\b(?:0\d{8,10}|[2-9]\d{9})\b", "PHONE", _phone),
    Pattern("ipv4", r"\b(?:\d{1,3}\.){3}\d{1,3}\b", "IP_ADDRESS", _ipv4),
    Pattern("ipv6", r"\b[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:", "IP_ADDRESS", _ipv6),
    Pattern("mac_address", r"\b(?:[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}|"
                           r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})\b", "MAC_ADDRESS", _mac),
    Pattern("url", r"\b(?:(?:https?|ftp)://|www\.)[A-Za-z0-9\[]", "URL", _url),
    Pattern("street_address_fr", r"\b(?i:rue|avenue|av\.|boulevard|bd|place|chemin|impasse|all(?:é|e)e|quai|route|"
                                 r"cours|square) ", "STREET_ADDRESS", _address_fr),
    Pattern("street_address_en", r"\b(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|"
                                 r"Place|Pl|Terrace|Close|Square|Grove|Crescent|Gardens|Mews|Parkway|Pkwy|Highway|Hwy|"
                                 r"Circle|Row)\b", "STREET_ADDRESS", _address_en),
    Pattern("street_address_de", r"(?:(?:straße|strasse|str\.|weg|platz|allee|gasse|damm|ufer)|"
                                 r"\b(?:Straße|Strasse|Str\.|Weg|Platz|Allee|Gasse|Ring|Damm)) \d{1,4}[a-z]?\b",
            "STREET_ADDRESS", _address_de),
)

TYPES = frozenset({"EMAIL", "PHONE", "IP_ADDRESS", "MAC_ADDRESS", "URL", "STREET_ADDRESS"})


class ContactDetector(PatternDetector):
    name = "contact"
    types = TYPES
    _patterns = PATTERNS

    def __init__(self) -> None:
        warm()  # at start-up, not on the first request with a phone number

