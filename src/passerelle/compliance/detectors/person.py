"""PERSON and DATE_OF_BIRTH in English, French and German, without a model.

PERSON is a dictionary method sized for the hot path.  Hyperscan finds, in one pass, where a name
may start: a capitalised given name followed by a space, a title ("Dr", "Mme", "Herr"), a greeting
or a cue ("Dear", "Bonjour", "Patient:", "je m'appelle"), an all-caps word before a capitalised
one.  From each of those few places a regular expression takes the run of capitalised words and
each word is looked up once in a table built at start-up from the shipped name lists (``names``).
A run holds a name when a given name is followed by a surname ("Marie Dupont", or "DUPONT Marie"
in the French all-caps style) or by an unknown capitalised word that is no common word ("Bekir
Neuschäfer"), or when a title or a cue comes right before it.  Words that are names and common
words alike ("Rose", "Petit") need a partner that is not.  Titles and post-nominals ("PhD",
"B.Sc.") stay out of the span: the name is what identifies.

DATE_OF_BIRTH joins the engine's single pass as a birth keyword ("né le", "DOB", "geboren am");
its validator reads the date after it, in the usual numeric or spelled-out forms ("12 mars
1985", "March 12, 1985", "12.03.1985"), and the finding is the date alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date
from functools import cache
from typing import cast

import hyperscan

from passerelle.compliance.dbcache import compile_cached
from passerelle.compliance.findings import Finding, Pattern
from passerelle.compliance.names import NameLists, load


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Word flags: one table lookup per capitalised word.
GIVEN, SUR, AMB, COMMON, TITLE, CUE, PART, SUFFIX, COMPANY, CAPS, INITIAL, END = (1 << i for i in range(12))
_NAME = GIVEN | SUR
_BREAK = TITLE | CUE | COMMON | SUFFIX | COMPANY  # words that end a segment of name words

_WORDS: dict[int, str] = {
    TITLE: "mr mrs ms miss mx dr drs prof professor sir dame lord lady rev mme mmes mlle mlles me pr maître "
           "docteur professeur monsieur madame mademoiselle herr frau fräulein dipl ing univ",
    # words that introduce a name: a greeting, a signature, a patient
    CUE: "dear hi hello hey thanks bonjour bonsoir salut cher chère chers chères merci hallo liebe lieber geehrte "
         "geehrter danke signé signée signed patient patiente patientin",
    PART: "le la de du des di da del della van von der den ter ten zu dos das",  # "Charles Bernier Le Mace"
    SUFFIX: "md dds phd dvm jr sr ii iii iv esq mba msc bsc ba ma llm rn meng beng",
    # "Heath Ltd", "Lefort et Fils", "Müller GmbH": a company, not a person
    COMPANY: "ltd llc llp inc plc corp co gmbh mbh ag kg ohg gbr ug kgaa sa sas sasu sarl eurl se bv nv spa srl "
             "fils sons söhne group groupe gruppe stiftung partners associates associés holding holdings",
}
_ABBREVIATED_TITLES = _words("mr mrs ms mx dr drs prof rev mme mmes mlle mlles pr dipl ing univ")
# Labels that introduce a name before a colon: "Nom : Dupont", "Patient: Marie".
_LABELS = _words(
    "name nom prénom prenom vorname nachname from to cc de à an von contact attn author auteur client customer "
    "employee user utilisateur holder titulaire cardholder bénéficiaire beneficiary signature médecin doctor arzt "
    "ärztin sender recipient destinataire expéditeur absender empfänger patient patiente patientin signé signed "
    "dear"
)
# Lowercase cues before a single name ("my name is Marie").
_CUE_TEXTS = ("name is ", "appelle ", "je me nomme ", "name ist ", "heiße ", "heisse ", "patient ", "patiente ",
              "patientin ", "signé ", "signée ", "signed ")

_UP = "A-ZÀ-ÖØ-Þ\u0100-\u017f"  # Latin Extended-A mixes cases: words are checked again in Python
_LO = "a-zß-öø-ÿ\u0100-\u017f"
_RQ = "\u2019"  # the typographic apostrophe of "O\u2019Neill" and "m\u2019appelle"
_WORD = rf"[{_UP}][{_UP}{_LO}'{_RQ}-]*+\.?"
_PARTICLES = "(?:(?:de|du|des|la|le|van|von|der|den|da|di|del|dos|das|ter|ten|zu) )*"
# Two or more capitalised words one space apart (wider gaps are tables), lowercase particles inside.
_RUN = re.compile(rf"{_WORD}(?: {_PARTICLES}{_WORD})+")
_SINGLE = re.compile(_WORD)
_CAPS_BEFORE = re.compile(rf"(?<![\w'{_RQ}-])[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'{_RQ}-]+ $")  # "DUPONT " before "Marie"
_NEXT, _AT_WORD = 1, 2  # trigger kinds: the name is the next word (sorts first); a run starts at the word
_COMPOUND_START = re.compile(rf"[{_UP}][{_LO}]*(?:-[{_UP}][{_LO}]*)*-$")  # "Jean-" before "Marie"
_COMPANY_AFTER = re.compile(
    r",? (?:(?:&|et|and|und) )?(?:Ltd|LLC|Inc|PLC|Corp|Co|GmbH|AG|KG|SA|SAS|SARL|SE|S\.A|Fils|Sons|Söhne|"
    r"Group|Groupe|Gruppe|Stiftung|Partners|Associates|Associés)\b"
)
# After a house number or a street word a name is a street: "12 Jason Gardens", "rue Victor Hugo".
_STREETS = _words(
    "rue avenue av bd boulevard allée place impasse chemin quai cours route square street road straße strasse platz "
    "weg allee gasse"
)
# A name-like run that ends with a street type is a street ("Lee Manor", "Stewart Drive"); surnames that
# are also street types ("Hill", "Park", "Lane") are left out.
_STREET_TYPES = _words(
    "road rd drive dr avenue ave street st boulevard manor port trail trails lakes springs corner corners mountain "
    "mountains crescent close court gardens heights junction knoll meadows mews orchard parkway plaza ridge square "
    "terrace turnpike viaduct way extension expressway freeway highway island islands crossing causeway circle creek "
    "estates falls ferry flats gateway harbor harbour haven hollow inlet landing loop motorway overpass pass path pike "
    "plains point points prairie rapids route row shoals shore shores skyway spur stravenue stream summit throughway "
    "trace track trafficway tunnel underpass valley views vista walk wells allee straße strasse weg platz gasse "
    "hills pines brook brooks run mill mills fall shoal mission mall station village villages cove curve dam "
    "divide estate oval passage radial ranch ramp spring summit union via view alley mount river forge locks "
    "crossroad common garden key"
)
# "Parkways", "Streets"; not the frequent surnames among them ("Brooks", "Mills", "Wells", "Rivers")
_STREET_TYPES = (_STREET_TYPES | {word + "s" for word in _STREET_TYPES}) - _words(
    "brook brooks mill mills wells key keys rivers hills springs spring"
)
# Places whose words look like names ("Costa Rica", "Jan Mayen").
_PLACES = _words(
    "costa_rica sierra_leone sri_lanka hong_kong jan_mayen sao_tome são_tomé puerto_rico el_salvador san_marino "
    "saint_lucia sainte-lucie santa_cruz monte_carlo buenos_aires tel_aviv kuala_lumpur burkina_faso "
    "guinea-bissau saint_helena sainte-hélène san_francisco los_angeles san_diego san_jose las_vegas rio_de_janeiro"
)
# The last word of each place: a name run must end with one for its whole span to be looked up.
_PLACE_ENDS = frozenset(place.rsplit("_", 1)[-1] for place in _PLACES)
_ABBREVIATION_BEFORE = re.compile(r"\b[a-z]\.\s?$")  # "z. B. Müller" is "zum Beispiel"

_Word = tuple[int, int, int]  # start, end, flags


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


_ARTICLES = _words("the a an le la les un une des der die das den dem ein eine einen")


def _after_article(text: str, start: int) -> bool:
    before = text[max(0, start - 6) : start].split()
    return bool(before) and before[-1].lower() in _ARTICLES


def _pair(a: int, b: int) -> float:
    """How sure two adjacent capitalised words are a name; 0 when they are not."""
    if a & INITIAL:
        return 0.7 if b & SUR else 0.0
    if a & GIVEN:
        if b & (SUR | INITIAL):
            return 0.0 if a & b & AMB else 0.7 if (a | b) & AMB else 0.85  # no name in "Rose Garden"
        if not b & (_NAME | COMMON | INITIAL) and not a & AMB and (a & CAPS or not b & CAPS):
            return 0.7  # a given name and an unknown capitalised word: a rare surname
        if b & GIVEN and not (a | b) & AMB:
            return 0.7  # two given names ("Anne Marie")
    if a & SUR and a & CAPS and b & GIVEN and not b & CAPS:
        return 0.85  # DUPONT Marie
    return 0.0


class _Triggers:
    """Where a name can start, found by Hyperscan at gateway speed instead of a Python pass.

    One literal database holds every capitalised given name followed by a space ("Marie "), the
    titles ("Dr. ", "Mme "), the greetings ("Dear "), the cues that introduce the next word ("name
    is ", "Nom : ") and initials ("J. ").  The text is scanned as Latin-1 with "?" for other
    characters, so byte offsets are string offsets.  Compiled once per process (about a second), or
    loaded from the compiled-pattern cache.
    """

    def __init__(self, table: dict[str, int]) -> None:
        forms: dict[bytes, int] = {}
        for word, flags in table.items():
            if flags & GIVEN and not flags & (COMMON | TITLE | CUE) and len(word) > 1:
                capitalised = "-".join(p[:1].upper() + p[1:] for p in word.split("-"))
                forms[capitalised.encode("latin-1", "replace") + b" "] = _AT_WORD
        for word in _WORDS[TITLE].split() + _WORDS[CUE].split():
            forms[word.capitalize().encode("latin-1") + b" "] = _AT_WORD
        for word in _ABBREVIATED_TITLES:  # "Dr. ", but "Frau." ends a sentence
            forms[word.capitalize().encode("latin-1") + b". "] = _AT_WORD
        for label in _LABELS:
            for form in (label, label.capitalize()):
                for colon in (":", " :", "\xa0:"):
                    forms[(form + colon + " ").encode("latin-1")] = _NEXT
        for cue in _CUE_TEXTS:
            forms[cue.encode("latin-1")] = _NEXT
            forms[cue.capitalize().encode("latin-1")] = _NEXT
        for letter in range(ord("A"), ord("Z") + 1):
            forms[bytes((letter,)) + b". "] = _AT_WORD
        literals = sorted(forms)  # a stable order: the cache key depends on it
        self.kinds = [forms[lit] for lit in literals]
        self.lengths = [len(lit) for lit in literals]
        # From a match's end to the trigger's position (the next word's start for a cue, else the literal's start),
        # as a trigger is coded: ``position << 2 | kind``, an int that sorts like (position, kind).
        self._codes = [((0 if kind & _NEXT else length) << 2) - kind
                       for kind, length in zip(self.kinds, self.lengths, strict=True)]
        self.words = compile_cached(literals, list(range(len(literals))), [0] * len(literals), literal=True)
        self._local = threading.local()
        _release_heap()

    def find(self, text: str) -> list[int]:
        """Every trigger as ``start << 2 | kind``, in text order (ints: no tuple per trigger, a faster sort)."""
        scratch = getattr(self._local, "words", None)
        if scratch is None:  # scratch space is per thread
            scratch = self._local.words = hyperscan.Scratch(self.words)
        data = text.encode("latin-1", "replace")
        found: list[int] = []
        self.words.scan(data, _WORD_HANDLER, 0, (found, self._codes), scratch)  # positional: cheaper than keywords
        found.sort()
        return found


def _on_word(i: int, _from: int, to: int, _flags: int, context: tuple[list[int], list[int]]) -> None:
    """Hyperscan's match handler (the triggers found so far and the literals' codes as its context: no closure
    made per scan)."""
    found, codes = context
    found.append((to << 2) - codes[i])


_WORD_HANDLER = cast("Callable[[int, int, int, int, object], bool | None]", _on_word)  # Hyperscan's stubs: ``object``


def _release_heap() -> None:
    """Hyperscan's compiler frees some 40 MB of temporary heap that glibc keeps: give it back to the OS."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


@cache
def _shipped() -> tuple[dict[str, int], _Triggers]:
    """The table and triggers of the shipped lists, built once per process; the lists themselves are freed."""
    return _compiled(load())


def _compiled(lists: NameLists) -> tuple[dict[str, int], _Triggers]:
    table: dict[str, int] = dict.fromkeys(lists.common, COMMON)
    for word in lists.surnames:
        table[word] = SUR
    for word in lists.given:
        table[word] = table.get(word, 0) & SUR | GIVEN
    for word in lists.ambiguous:
        if word in table:
            table[word] |= AMB
    for flag, words in _WORDS.items():
        for word in words.split():
            table[word] = flag
    return table, _Triggers(table)


class PersonDetector:
    """Names by dictionary and context (``scan``); dates of birth by pattern (``patterns``)."""

    name = "person"
    types = frozenset({"PERSON", "DATE_OF_BIRTH"})

    def __init__(self, lists: NameLists | None = None) -> None:
        self._table, self._triggers = _compiled(lists) if lists is not None else _shipped()
        self._patterns = (Pattern(id="date_of_birth", regex=DOB_REGEX, entity="DATE_OF_BIRTH",
                                  validate=validate_date_of_birth, score=0.9),)

    @property
    def patterns(self) -> Sequence[Pattern]:
        return self._patterns

    def scan(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        done = 0  # end of the last run judged
        size = len(text)
        for code in self._triggers.find(text):
            start = code >> 2
            if code & _NEXT:  # a cue: the name is the next word ("name is Marie", "Nom : Dupont")
                pos = start
                while pos < size and text[pos] in " \t\xa0:":
                    pos += 1
                if pos < done or not text[pos : pos + 1].isupper():
                    continue
                run = _RUN.match(text, pos)
                if run is None:
                    word = _SINGLE.match(text, pos)
                    if word is not None:
                        w = word.group().rstrip(".'\u2019-")
                        if not self._flags(w) & (COMMON | TITLE | CUE | SUFFIX | COMPANY):
                            self._emit(text, [(pos, pos + len(w), 0)], 0.75, out)
                    continue
                self._run(text, pos, run.group(), 0.75, out)
                done = run.end()
                continue
            if start < done:
                continue  # inside a judged run (the compound and capitals below only move the start back)
            if start and text[start - 1] == "-":  # "Jean-Marie", "Hans-Herbert": the compound starts before
                m = _COMPOUND_START.search(text, max(0, start - 40), start)
                start = m.start() if m is not None else start
            elif start > 2 and text[start - 2].isupper() and text[start - 1] == " ":  # "DUPONT Marie"
                m = _CAPS_BEFORE.search(text, max(0, start - 40), start)
                start = m.start() if m is not None and m.start() >= done else start
            if start < done or (start and (text[start - 1].isalnum() or text[start - 1] in "'\u2019")):
                continue  # inside a judged run, or not the start of a word
            run = _RUN.match(text, start)
            if run is not None:
                self._run(text, start, run.group(), 0.0, out)
                done = run.end()
        return out

    def _flags(self, word: str) -> int:
        low = word.lower()
        flags = self._table.get(low)
        if flags is None:
            flags = self._unknown(low)
        if len(word) > 1 and word.isupper():
            return COMMON if len(word) <= 3 and not flags & TITLE else flags | CAPS  # "PC", "ROM": acronyms
        return flags

    def _unknown(self, low: str) -> int:
        """Flags of a word that is not in the table as such: accents, compounds, O'Neill."""
        if not low.isascii():
            folded = _fold(low)  # "Édith", "Mendès": some names are listed without their accents
            flags = self._table.get(folded)
            if flags is not None:
                return flags
            low = folded
        if "-" in low:  # "Jean-Marc", "Thomas-Lee": every part a name
            parts = [self._table.get(p, 0) for p in low.split("-")]
            if all(p & _NAME for p in parts):
                flags = GIVEN if all(p & GIVEN for p in parts) else 0
                return flags | SUR | (AMB if any(p & AMB for p in parts) else 0)
            return 0
        return SUR if low[:2] in ("o'", "o\u2019") and len(low) > 3 else 0

    def _run(self, text: str, start: int, run: str, evidence: float, out: list[Finding]) -> None:
        """Split a run of capitalised words into segments of name words and keep the credible ones."""
        seg: list[_Word] = []
        table = self._table
        pos = start
        for word in run.split(" "):
            s = pos
            pos += len(word) + 1
            if word.islower():  # a particle the run pattern let in: "de la", "van"
                if seg or evidence:
                    seg.append((s, pos - 1, PART))
                continue
            dot = False
            if word[-1] in ".'\u2019-s":  # most words end with a letter and keep it
                dot = word[-1] == "."
                word = word.rstrip(".'\u2019-")
                if word[-1] == "s" and word[-2:-1] in ("'", "\u2019"):
                    word = word[:-2]  # "Kevin Fowler's appointment": the name without the possessive
            e = s + len(word)
            if e - s == 1:
                flags = INITIAL if dot else COMMON
                if word == "M" and dot and not (seg and seg[-1][2] & GIVEN):
                    flags = TITLE  # "M. Dupont": Monsieur; but "Jean M. Dupont" has a middle initial
                elif dot and text[e + 1 : e + 2].isalpha():  # "B.Sc.", "S.A.S.": an abbreviation
                    flags = SUFFIX
                elif dot and _ABBREVIATION_BEFORE.search(text, max(0, s - 4), s):
                    flags = COMMON
                elif dot:
                    e += 1  # an initial keeps its period
            else:
                low = word.lower()
                flags_or_none = table.get(low)  # the common case, without a call
                flags = self._flags(word) if flags_or_none is None or word.isupper() else flags_or_none
                if dot and not (flags & TITLE and low in _ABBREVIATED_TITLES):
                    flags = COMMON if flags & TITLE else flags | END  # the period ends a sentence ("Frau.")
            if flags & _BREAK:
                if seg and not flags & COMPANY:  # "Heath Ltd" is a company
                    self._judge(text, seg, evidence, out)
                seg = []
                evidence = 0.85 if flags & TITLE else 0.75 if flags & CUE else 0.0
                continue
            if flags & PART and not seg and not evidence:
                continue  # "Le" starting a sentence
            seg.append((s, e, flags))
            if flags & END:
                self._judge(text, seg, evidence, out)
                seg, evidence = [], 0.0
        if seg:
            self._judge(text, seg, evidence, out)

    def _judge(self, text: str, seg: list[_Word], evidence: float, out: list[Finding]) -> None:
        while seg and seg[-1][2] & PART:
            seg = seg[:-1]
        if not seg:
            return
        score, first = evidence, 0
        for k in range(len(seg) - 1):
            b = seg[k + 1][2]
            if b & PART and k + 2 < len(seg):
                b = seg[k + 2][2]
            pair = _pair(seg[k][2], b)
            if pair and seg[k][2] & AMB and _after_article(text, seg[k][0]):
                pair = 0.0  # "Der Kleine Prinz", "the Young Pope": an adjective, not a name
            if pair:
                if not evidence:
                    score, first = pair, k
                elif k == 0:
                    score = max(score, pair)
                break
        if score and _COMPANY_AFTER.match(text, seg[-1][1]) is None:
            self._emit(text, seg[first:], score, out)

    @staticmethod
    def _emit(text: str, seg: list[_Word], score: float, out: list[Finding]) -> None:
        start, end = seg[0][0], seg[-1][1]
        if len(seg) > 1:
            last = text[seg[-1][0] : end].lower()
            if last in _STREET_TYPES or (last in _PLACE_ENDS and text[start:end].lower().replace(" ", "_") in _PLACES):
                return
        before = text[max(0, start - 24) : start].lower().rsplit(None, 2)  # the last two words are enough
        if before:
            last = before[-1].rstrip(".")
            if before[-1].rstrip(",")[-1:].isdigit() or last in _STREETS:
                return  # "12 Jason Gardens", "Flat 12, Lee Manor", but not "75011. Peter Rios"
            if len(before) > 1 and last in ("de", "du", "des", "la", "l'") and before[-2].rstrip(".") in _STREETS:
                return
        out.append(Finding("PERSON", start, end, score))
# --- DATE_OF_BIRTH ------------------------------------------------------------------------------

_E = "(?:é|e|É|E)"
_MONTHS = (
    rf"january|february|march|april|may|june|july|august|september|october|november|december|"
    rf"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|"
    rf"janvier|f{_E}vrier|mars|avril|mai|juin|juillet|ao(?:û|u|Û)t|septembre|octobre|novembre|d{_E}cembre|"
    rf"janv|f{_E}vr|avr|juil|d{_E}c|"
    rf"januar|j(?:ä|Ä|a)nner|februar|m(?:ä|Ä|a)rz|maerz|juni|juli|oktober|dezember|okt|dez"
)
_DAY = r"(?:[12][0-9]|3[01]|0?[1-9])"  # two digits first: Python takes the first branch that fits
_DATE = (
    rf"(?:{_DAY}[./-](?:1[0-2]|0?[1-9])[./-](?:1[89][0-9]{{2}}|20[0-9]{{2}}|[0-9]{{2}})"
    rf"|(?:1[0-2]|0?[1-9])/{_DAY}/(?:1[89][0-9]{{2}}|20[0-9]{{2}}|[0-9]{{2}})"
    rf"|(?:1[89][0-9]{{2}}|20[0-9]{{2}})[-/.](?:1[0-2]|0?[1-9])[-/.]{_DAY}"
    rf"|{_DAY}(?:er|st|nd|rd|th|\.)?(?: of)?[ -](?i:{_MONTHS})\.?,?[ -](?:1[89][0-9]{{2}}|20[0-9]{{2}})"
    rf"|(?i:{_MONTHS})\.? {_DAY}(?:st|nd|rd|th)?,? (?:1[89][0-9]{{2}}|20[0-9]{{2}}))"
)
_DOB_KEYWORDS = (
    rf"date of birth|birth ?date|d\.?o\.?b\.?|born(?: on)?|n{_E}(?:e|\(e\))? le|n(?:é|É)(?:e|\(e\))?|"
    rf"date de naissance|date de naiss\.?|naissance|geboren(?: am)?|geb\.|geburtsdatum"
)
# The single pass looks for the keyword only (a date pattern there would cost every text some 50 us);
# the validator reads the date after it.
DOB_REGEX = rf"\b(?i:{_DOB_KEYWORDS})"
_DOB_TAIL = re.compile(
    rf"[^0-9A-Za-z\n]{{0,4}}(?:(?i:is|was|on|the|le|am|:)[^0-9A-Za-z\n]{{1,3}}){{0,2}}({_DATE})"
)
_YEAR = re.compile(r"(?:1[89]|20)[0-9]{2}")
# German puts the date before the verb: "Ich bin am 15.07.1936 geboren".
_DOB_BEFORE = re.compile(rf"\b(?i:am|den|vom)[ \t]+({_DATE})[ \t]+$")


def validate_date_of_birth(text: str, start: int, end: int) -> Finding | None:
    """The date right after a birth keyword, if it is a complete, plausible date."""
    if end < len(text) and text[end - 1].isalpha() and text[end].isalpha():
        return None  # "borne", "nécessaire": not the keyword
    m = _DOB_TAIL.match(text, end)
    if m is None:
        if text[start:end].lower() != "geboren":
            return None
        m = _DOB_BEFORE.search(text, max(0, start - 40), start)
        if m is None:
            return None
    stop = m.end(1)
    if stop < len(text) and (text[stop].isdigit() or (text[stop] in "./-" and text[stop + 1 : stop + 2].isdigit())):
        return None  # "12/03/19851": no date ends there
    year = _YEAR.search(m.group(1))
    if year is not None and not 1880 <= int(year.group()) <= date.today().year:
        return None
    return Finding("DATE_OF_BIRTH", m.start(1), stop, 0.9)
