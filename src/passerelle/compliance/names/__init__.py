"""Name lists for the PERSON detector, shipped as package data (nothing is downloaded at run time).

``given`` and ``surnames`` are lowercase single tokens (hyphenated given names such as
"jean-pierre" included).  ``ambiguous`` are names that are also frequent lowercase words ("will",
"rose", "blanc"): they count as names only next to stronger evidence.  ``common`` are frequent
lowercase words of English, French and German that are not names: a capitalised unknown token in
that list is a sentence start or a title word, not a surname.  Provenance in SOURCES.md.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class NameLists:
    given: frozenset[str]
    surnames: frozenset[str]
    ambiguous: frozenset[str]
    common: frozenset[str]


def _read(name: str) -> frozenset[str]:
    data = resources.files(__package__).joinpath(name).read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split())


def load() -> NameLists:
    """The shipped lists (about 0.1 s and 20 MB; callers keep what they derive, not the lists)."""
    return NameLists(
        given=_read("given.txt.gz"),
        surnames=_read("surnames.txt.gz"),
        ambiguous=_read("ambiguous.txt.gz"),
        common=_read("common.txt.gz"),
    )
