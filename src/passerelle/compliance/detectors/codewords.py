"""A tenant's codewords: programme names and other terms of its own deny list (entity type CODEWORD).

CODEWORD is its own entity type (shared/reference/sensitive-data.md lists it beside
CLASSIFICATION_MARKING): a codeword is not a marking of a document's level, and a policy may
treat the two differently.  Findings carry no subtype: the value is ``text[start:end]`` and never
travels in a finding or a log line.

Matching is case-insensitive and whole-word in the Unicode sense ("Tamaris" matches "TAMARIS" and
"tamaris", not "Tamarisk" nor "éTAMARIS"); the spaces inside a phrase match any run of white
space.  Hyperscan matches bytes and folds ASCII case only, so each non-ASCII letter is spelled as
its case alternatives and word edges are checked in Python on the few candidates.

``CodewordDetector(words)`` compiles its list once (a few milliseconds for hundreds of words) in
memory: the compiled list is never written to the on-disk pattern cache, because it would hold the
words.  Use it beside an engine: ``engine.scan(text, types, extra=[detector])``.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence

import hyperscan

from passerelle.compliance.findings import Finding, Pattern

MAX_WORDS = 10_000
MAX_WORD_LENGTH = 200
# UTF-8 continuation bytes: a string offset is the count of the other bytes before it.
_CONTINUATION = bytes(range(0x80, 0xC0))


def normalise(words: Sequence[str]) -> list[str]:
    """The distinct words in NFC with single spaces, longest first; a clear error for unusable input."""
    if isinstance(words, str):
        raise ValueError("codewords: expected a list of words, got one string")
    if len(words) > MAX_WORDS:
        raise ValueError(f"codewords: at most {MAX_WORDS} words per list, got {len(words)}")
    out: set[str] = set()
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise ValueError(f"codewords: entry {i} is a {type(word).__name__}, not a string")
        word = " ".join(unicodedata.normalize("NFC", word).split())
        if len(word) > MAX_WORD_LENGTH:
            raise ValueError(f"codewords: entry {i} is longer than {MAX_WORD_LENGTH} characters")
        if word:
            out.add(word)
    return sorted(out, key=lambda w: (-len(w), w))


def _caseless(char: str) -> str:
    """One character for both engines: Hyperscan's caseless flag folds ASCII letters only."""
    if char.isascii():
        return re.escape(char)
    cases = sorted({c for c in (char, char.lower(), char.upper()) if len(c) == 1})
    return f"(?:{'|'.join(cases)})" if len(cases) > 1 else char


def codeword_regex(words: Sequence[str]) -> str:
    """One alternation of the (normalised) words, for Hyperscan and Python's ``re`` alike."""
    parts = []
    for word in words:
        body = r"\s+".join("".join(_caseless(c) for c in piece) for piece in word.split(" "))
        lead = r"\b" if word[0].isascii() and word[0].isalnum() else ""
        tail = r"\b" if word[-1].isascii() and word[-1].isalnum() else ""
        parts.append(f"{lead}{body}{tail}")
    return "(?i:" + "|".join(parts) + ")"


def whole_word(text: str, start: int, end: int) -> bool:
    return not ((start and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum()))


def validate_codeword(text: str, start: int, end: int) -> Finding | None:
    return Finding("CODEWORD", start, end, 1.0) if whole_word(text, start, end) else None


def codeword_pattern(words: Sequence[str], pattern_id: str = "codeword") -> Pattern | None:
    """The words as one pattern of an engine's single pass (None for an empty list)."""
    words = normalise(words)
    if not words:
        return None
    return Pattern(id=pattern_id, regex=codeword_regex(words), entity="CODEWORD", validate=validate_codeword,
                   score=1.0)


class CodewordDetector:
    """A tenant's codewords, compiled once; ``scan`` is thread-safe (a Hyperscan scratch per thread)."""

    name = "codewords"
    types = frozenset({"CODEWORD"})

    def __init__(self, words: Sequence[str]) -> None:
        self.words: tuple[str, ...] = tuple(normalise(words))
        self._database: hyperscan.Database | None = None
        if self.words:
            self._database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            try:
                self._database.compile(expressions=[codeword_regex(self.words).encode()], ids=[0], elements=1,
                                       flags=[hyperscan.HS_FLAG_SOM_LEFTMOST])
            except hyperscan.error as exc:  # pattern too large for Hyperscan: say so, not a traceback
                raise ValueError(f"codewords: the list does not compile ({exc})") from exc
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self.words)

    @property
    def patterns(self) -> Sequence[Pattern]:
        return ()  # scanned by this detector's own database, beside the engine's

    def scan(self, text: str) -> list[Finding]:
        if self._database is None or not text:
            return []
        scratch: hyperscan.Scratch | None = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        ascii_only = text.isascii()
        data = text.encode("ascii") if ascii_only else text.encode("utf-8", "surrogatepass")
        hits: list[tuple[int, int]] = []

        def on_match(_id: int, start: int, end: int, _flags: int, _ctx: object) -> None:
            hits.append((start, -end))

        self._database.scan(data, on_match, 0, None, scratch)  # positional: cheaper than keywords
        hits.sort()  # leftmost first, longest first
        found: list[Finding] = []
        covered = byte_at = char_at = 0
        for start, neg_end in hits:
            if ascii_only:
                begin, end = start, -neg_end
            else:  # starts ascend: the byte-to-character count is carried along the text
                char_at += len(data[byte_at:start].translate(None, _CONTINUATION))
                byte_at = start
                begin = char_at
                end = begin + len(data[start:-neg_end].translate(None, _CONTINUATION))
            if begin < covered:
                continue  # inside a longer codeword already found
            if whole_word(text, begin, end):
                found.append(Finding("CODEWORD", begin, end, 1.0))
                covered = end
        return found
