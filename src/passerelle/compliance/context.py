"""Context words in French, English and German: what makes a weak pattern credible.

Two uses, one vocabulary.  Weak values (a CVV is any 3 digits, a passport number any short code)
are only candidates right after their keyword: ``keyword(group) + GAP + value`` is the pattern
itself, so the single pass never reports a bare number.  Stronger values (a Luhn-valid SIREN, an
ABA routing number) are matched alone and ``near`` looks for a keyword in the ``WINDOW``
characters before them to decide or to raise the score.

The alternations are written for both Python's ``re`` and Hyperscan, which matches bytes: an
accented letter is spelled as an alternative (``(?:é|e)``), never inside a character class.
"""

from __future__ import annotations

import re
from functools import cache

WINDOW = 40  # characters before a candidate searched for context words

_E = "(?:é|e)"
_U = "(?:ü|ue|u)"

WORDS: dict[str, str] = {
    "card": rf"credit card|debit card|card(?: number| no| #)?|carte(?: bancaire| bleue| de cr{_E}dit| de paiement)?|"
            rf"cb|num{_E}ro de carte|kreditkarte|karte|kartennummer|zahlungskarte|visa|mastercard|amex|pan",
    # Paying with a card without naming it: "please charge 36726227959523".
    "payment": rf"charge|charged|pay|paid|payment|bill|billed|d{_E}biter|d{_E}bitez|payer|payez|r{_E}gler|r{_E}glez|"
               rf"paiement|belasten|belastet|bezahlen|bezahlt|zahlung",
    "cvv": rf"cvv2?|cvc2?|cvn|csc|card verification(?: value| code)?|security code|code de s{_E}curit{_E}|"
           rf"cryptogramme(?: visuel)?|pr{_U}fnummer|kartenpr{_U}fnummer|pr{_U}fziffer|sicherheitscode",
    "expiry": rf"expiry(?: date)?|expiration(?: date)?|expires?(?: on| le| fin)?|exp\.?(?: date)?|"
              rf"valid (?:thru|through|until)|good thru|date d'expiration|date de validit{_E}|"
              rf"valable jusqu'(?:au|à|a)|fin de validit{_E}|g{_U}ltig bis|ablaufdatum|verfallsdatum|"
              rf"ablauf|l(?:ä|ae|a)uft(?: am| bis)?",  # "läuft 08/26 ab"
    "bic": r"bic|swift(?: code)?|bic/swift|code bic|code swift|code banque",
    "routing": r"routing(?: number| no| #)?|aba(?: number| routing)?|rtn|routing transit|transit number",
    # Where a bare "account" / "compte" / "Konto" is a bank account: next to another banking word.
    "banking": rf"routing|aba|rtn|iban|bic|swift|sort code|wire|bank(?:ing)?|banque|bancaire|virement|rib|"
               rf"{_U}berweisung|bankverbindung|bankleitzahl|blz|kreditinstitut",
    "account": rf"(?:bank|checking|savings|current|deposit) account(?: number| no\.?| #)?|"
               rf"account (?:number|no\.?|#)|acct(?: no\.?| #)?|"
               rf"num{_E}ro de compte|n° de compte|compte(?: bancaire| courant| n°)?|"
               rf"kontonummer|konto(?:-?nr\.?| nr\.?)?|bankkonto|iban-?nummer",
    "company": rf"siren|siret|rcs|n° rcs|immatricul{_E}e?|soci{_E}t{_E}|entreprise|{_E}tablissement|"
               rf"company number|firmennummer|unternehmen",
    "vat": r"vat(?: number| no| id| reg(?:istration)?)?|tva(?: intracommunautaire)?|n° tva|"
           r"ust-?id(?:nr)?|ust-idnr\.?|umsatzsteuer(?:-identifikationsnummer)?|mwst|iva|btw|uid",
    "ssn": r"ssn|social security(?: number| no)?|soc\.? sec\.?|sozialversicherungsnummer",
    "itin": r"itin|individual taxpayer|taxpayer identification|taxpayer id|tax id|"
            r"steuer-?id|steueridentifikationsnummer|steuer-identifikationsnummer|num(?:é|e)ro fiscal",
    "nir": rf"nir|insee|s{_E}curit{_E} sociale|num{_E}ro de s{_E}cu|n° de s{_E}cu|s{_E}cu|carte vitale|"
           rf"social security|sozialversicherung",
    "nhs": r"nhs(?: number| no)?|national health service|nhs no\.?",
    "nino": r"national insurance(?: number| no)?|nino|ni number|ni no\.?",
    "passport": rf"passport(?: number| no\.?| #)?|passeport|num{_E}ro de passeport|n° de passeport|"
                rf"reisepass(?:nummer)?|pass(?:nummer|-?nr\.?)",
    "driver": rf"driver'?s? licen[cs]e|driving licen[cs]e|driver licen[cs]e|dl(?: number| no| #)?|"
              rf"permis de conduire|permis|f{_U}hrerschein(?:nummer)?",
    "phone_fr": rf"t{_E}l{_E}phone|t{_E}l\.?|portable|mobile|fixe|appelez|appeler|joindre|rappeler|standard",
    "phone_de": r"telefon(?:nummer)?|tel\.?|handy(?:nummer)?|mobil(?:nummer|telefon)?|rufnummer|anrufen|fax",
    "phone_en": r"phone(?: number)?|tel\.?|telephone|mobile|cell(?:phone)?|call|fax|contact",
    "ip": r"ip(?: address)?|adresse ip|ip-adresse|host|server|serveur|client ip",
    "version": r"version|v|ver\.?|release|build",
    "mrn": rf"mrn|medical record(?: number| no\.?| #)?|patient(?: id| number| no\.?| #)|"
           rf"num{_E}ro de dossier(?: m{_E}dical| patient)?|dossier(?: m{_E}dical| patient)|ipp|n° de dossier|"
           rf"patientennummer|patienten-?id|fallnummer|krankenaktennummer|aktenzeichen",
    "npi": r"npi(?: number| no)?|national provider(?: identifier)?|prescriber|provider id",
    "dea": r"dea(?: number| no| registration)?|dea#",
    "icd": rf"icd-?10(?:-cm)?|cim-?10|diagnosis(?: code)?|diagnostic|diagnose(?:schl{_U}ssel)?|dx",
    "insurance": rf"member id|member number|policy(?: number| no\.?| #)|subscriber id|insurance(?: id| number| no\.?)|"
                 rf"health plan(?: id| number)?|medicare(?: number| id)?|medicaid(?: number| id)?|mbi|"
                 rf"num{_E}ro d'adh{_E}rent|n° d'adh{_E}rent|mutuelle|assurance maladie|"
                 rf"versichertennummer|krankenversichertennummer|versicherungsnummer|krankenkasse",
    "password": r"pass(?:word|wd|phrase)|pwd|mot de passe|mdp|passwort|kennwort",
    # Numbers that are nobody's: orders, parcels, references, amounts.  Near a lookalike (a Luhn-valid
    # order number), they decide against it unless the value's own keyword is there too.
    "reference": rf"order(?: number| no| #| id)?|commande|n° de commande|invoice|facture|bestellung|"
                 rf"bestellnummer|rechnung(?:snummer)?|auftrag(?:snummer)?|tracking(?: number)?|suivi|colis|"
                 rf"sendungsnummer|sendungsverfolgung|parcel|shipment|ref|r{_E}f|reference|r{_E}f{_E}rence|referenz|"
                 rf"ticket|serial(?: number)?|num{_E}ro de s{_E}rie|seriennummer|transaction|txn|isbn|ean|sku|"
                 rf"article|artikel|lot|batch|total|amount|montant|betrag|summe|somme|prix|price|preis",
    "aws_secret": r"aws_?secret_?(?:access_?)?key|secret_?access_?key|aws secret(?: access)? key",
}

# Between a keyword and its value: punctuation (a line break in forms) and at most two filler words ("number",
# "n°", "is").
GAP = (r"[^0-9A-Za-z]{0,4}(?:(?i:number|num(?:é|e)ro|nummer|no|nr|n°|num|code|id|is|est|ist|lautet|du|de la|"
       r"de|of|the|le|la|der|des|am)[^0-9A-Za-z]{1,4}){0,2}")


def keyword(group: str) -> str:
    """The group as the caseless head of a single-pass pattern."""
    return rf"\b(?i:{WORDS[group]})"


# Python-side lookups: a word must end there ("cardinal" is not "card").  They run on the lowercased window
# (twice as fast as a caseless search); the window keeps one character more, so that "\b" sees what precedes it.
_LOOKUP = {name: re.compile(rf"\b(?:{words})(?!\w)") for name, words in WORDS.items()}

_LEADING_CHOICE = re.compile(r"\(\?:((?:[^()|\\\[\]?*+{}.^$]+\|)+[^()|\\\[\]?*+{}.^$]+)\)(?![?*+{])")  # "(?:é|e)tabl"


def _alternatives(words: str) -> list[str]:
    """The top-level branches of an alternation."""
    branches, depth, start, i, in_set = [], 0, 0, 0, False
    while i < len(words):
        c = words[i]
        if c == "\\":
            i += 1
        elif in_set or c == "[":
            in_set = c != "]"
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and not depth:
            branches.append(words[start:i])
            start = i + 1
        i += 1
    return [*branches, words[start:]]


def _presence(words: str) -> re.Pattern[str]:
    r"""``\b(?:words)(?!\w)`` for yes/no searches, spelled so that ``re`` can skip ahead: with a leading ``\b`` it
    tries every position, with a set of first letters it jumps to them.  So each branch starts with its letter,
    and ``(?<!\w.)`` after the letter is the ``\b`` before it; branches share their letter."""
    by_letter: dict[str, list[str]] = {}
    for branch in _alternatives(words):
        choice = _LEADING_CHOICE.match(branch)
        for form in [c + branch[choice.end():] for c in choice.group(1).split("|")] if choice else [branch]:
            if not (form[:1].isalnum() or form[:1] == "_") or form[1:2] in ("?", "*", "+", "{"):
                return re.compile(rf"\b(?:{words})(?!\w)")  # not a plain word: as written
            by_letter.setdefault(form[0], []).append(form[1:])
    return re.compile("(?:" + "|".join(f"{re.escape(letter)}(?<!\\w.)(?:{'|'.join(rests)})"
                                       for letter, rests in by_letter.items()) + r")(?!\w)")


_PRESENT = {name: _presence(words) for name, words in WORDS.items()}


def _window(text: str, start: int, window: int) -> str:
    return text[max(0, start - window - 1):start].lower()


def near(text: str, start: int, group: str, window: int = WINDOW) -> bool:
    """Whether a word of ``group`` ends in the ``window`` characters before ``start``."""
    return _PRESENT[group].search(text[max(0, start - window - 1):start].lower()) is not None  # _window, inlined


@cache
def _any_of(groups: tuple[str, ...]) -> re.Pattern[str]:
    return _presence("|".join(WORDS[group] for group in groups))


def near_any(text: str, start: int, groups: tuple[str, ...], window: int = WINDOW) -> bool:
    """Whether a word of any of ``groups`` ends in the ``window`` characters before ``start`` (one search)."""
    return _any_of(groups).search(_window(text, start, window)) is not None


def first_near(text: str, start: int, groups: tuple[str, ...], window: int = WINDOW) -> str | None:
    """The first of ``groups`` found before ``start`` (groups in order of preference), or None."""
    before = _window(text, start, window)
    if len(groups) > 1 and _any_of(groups).search(before) is None:
        return None  # the common case, in one search instead of one per group
    for group in groups:
        if _PRESENT[group].search(before) is not None:
            return group
    return None


def closest(text: str, start: int, groups: tuple[str, ...], window: int = WINDOW) -> str | None:
    """The group whose word ends nearest before ``start`` (the first of ``groups`` on a tie), or None."""
    before = _window(text, start, window)
    best, best_end = None, -1
    for group in groups:
        for match in _LOOKUP[group].finditer(before):
            if match.end() > best_end:
                best, best_end = group, match.end()
    return best
