"""The detection engine: every detector's patterns in one Hyperscan database, one pass per text.

Hyperscan (block mode, ``HS_FLAG_SOM_LEFTMOST``) reports each match end with its leftmost start,
so a pattern yields several candidates where a run can end in several places (digit groups,
domain labels).  Per pattern, candidates are tried leftmost first and longest first, and a
candidate overlapping one already accepted for that pattern is skipped: the validator runs only
until one candidate of a region holds, which is what makes a spaced IBAN followed by a word, or a
card number followed by more digit groups, come out right.

Scores follow bands so that overlaps resolve the way a reader expects:
  ~1.0  checksum-validated and confirmed by context       0.9-0.95  checksum-validated
  0.8-0.9  specific shape without checksum (e-mail, AWS key, keyword + value)
  0.5-0.7  loose shape (URL, address, grouped number without its keyword)
Overlapping findings are resolved by score, then length: a SIRET beats the SIREN inside it, a card
number beats the URL around it.

Hyperscan works on UTF-8 bytes; findings carry Python string offsets.  Pure-ASCII text (the common
case) needs no conversion.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Sequence
from operator import attrgetter
from typing import cast

import hyperscan

from passerelle.compliance.dbcache import compile_cached
from passerelle.compliance.findings import ENTITY_TYPES, Detector, Finding, Pattern, Validator

_START = attrgetter("start")
_CONTINUATION = bytes(int(0x80 <= byte < 0xC0) for byte in range(256))  # UTF-8 continuation bytes as 1


def _continuations(data: bytes) -> list[int]:
    """Where the UTF-8 continuation bytes are: a string offset is a byte offset less those before it (also where a
    match ends inside a character).  A few per non-ASCII text: found with ``find``, one bisection per offset."""
    marks = data.translate(_CONTINUATION)
    found: list[int] = []
    at = marks.find(1)
    while at >= 0:
        found.append(at)
        at = marks.find(1, at + 1)
    return found


def _constant(entity: str, score: float) -> Validator:
    """The validator of a pattern without one: every match is a finding."""
    def validate(text: str, start: int, end: int) -> Finding:
        return Finding(entity, start, end, score)
    return validate


def _disjoint(findings: list[Finding]) -> bool:
    """Whether each of the findings, sorted by start, ends before the next starts (the common case)."""
    end = -1
    for f in findings:
        if f.start < end:
            return False
        end = f.end
    return True


def _on_match(pid: int, start: int, end: int, flags: int, hits: list[tuple[int, int, int]]) -> None:
    """Hyperscan's match handler, the list of hits as its context (no closure made per scan)."""
    hits.append((start, -end, pid))  # sorts leftmost first, then longest first


# Hyperscan's stubs type the context as ``object``; the handler's ``list`` lets the compiled twin append directly.
_MATCH_HANDLER = cast("Callable[[int, int, int, int, object], bool | None]", _on_match)


def resolve(findings: list[Finding]) -> list[Finding]:
    """Non-overlapping findings sorted by start; on overlap the higher score, then the longer, wins."""
    findings = [f for f in findings if f.end > f.start]
    findings.sort(key=_START)  # findings with the same start overlap: the ranking below decides between them
    if _disjoint(findings):
        return findings
    ranked = sorted(findings, key=lambda f: (-f.score, f.start - f.end, f.start, f.type))
    starts: list[int] = []
    ends: list[int] = []
    kept: list[Finding] = []
    for f in ranked:
        i = bisect_right(starts, f.start)
        if (i and ends[i - 1] > f.start) or (i < len(starts) and starts[i] < f.end):
            continue
        starts.insert(i, f.start)
        ends.insert(i, f.end)
        kept.insert(i, f)
    return kept


class Engine:
    """Compiles once at construction; ``scan`` is thread-safe (one Hyperscan scratch per thread)."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        # A detector made only of patterns may say so (``scans_text = False``): its ``scan`` is not called.
        self._scanning = tuple(d for d in self.detectors if getattr(d, "scans_text", True))
        patterns: list[Pattern] = []
        produces: list[frozenset[str]] = []  # the types a pattern's validator may return
        for detector in self.detectors:
            for pattern in detector.patterns:
                if pattern.entity not in ENTITY_TYPES:
                    raise ValueError(f"pattern {pattern.id!r}: unknown entity type {pattern.entity!r}")
                patterns.append(pattern)
                produces.append(detector.types | {pattern.entity})
        ids = [p.id for p in patterns]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate pattern ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        self._patterns = tuple(patterns)
        self._validators = tuple(p.validate or _constant(p.entity, p.score) for p in patterns)
        self._produces = tuple(produces)
        self._database = self._compile(self._patterns) if patterns else None
        self._local = threading.local()
        self._masks: dict[frozenset[str], tuple[bool, ...]] = {}
        self.types: frozenset[str] = frozenset().union(*(d.types for d in self.detectors))

    @staticmethod
    def _compile(patterns: Sequence[Pattern]) -> hyperscan.Database:
        flags = [hyperscan.HS_FLAG_SOM_LEFTMOST | (hyperscan.HS_FLAG_CASELESS if p.caseless else 0) for p in patterns]
        try:
            # A compiled codeword list would spell the words on disk: those sets are compiled in memory only.
            return compile_cached([p.regex.encode() for p in patterns], list(range(len(patterns))), flags,
                                  use_cache=not any(p.entity == "CODEWORD" for p in patterns))
        except hyperscan.error as exc:
            raise ValueError(f"pattern set does not compile: {exc} (pattern {Engine._culprit(patterns, flags)!r})") \
                from exc

    @staticmethod
    def _culprit(patterns: Sequence[Pattern], flags: Sequence[int]) -> str:
        """The id of the first pattern that does not compile alone (failure path only)."""
        for pattern, flag in zip(patterns, flags, strict=True):
            try:
                hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK).compile(expressions=[pattern.regex.encode()],
                                                                         ids=[0], elements=1, flags=[flag])
            except hyperscan.error:
                return pattern.id
        return "?"

    def _scratch(self) -> hyperscan.Scratch:
        scratch: hyperscan.Scratch | None = getattr(self._local, "scratch", None)
        if scratch is None:
            assert self._database is not None
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        return scratch

    def _mask(self, wanted: frozenset[str]) -> tuple[bool, ...]:
        mask = self._masks.get(wanted)
        if mask is None:
            mask = tuple(bool(produces & wanted) for produces in self._produces)
            if len(self._masks) < 256:  # callers use a handful of pack combinations
                self._masks[wanted] = mask
        return mask

    def scan(self, text: str, types: Collection[str] | None = None,
             extra: Sequence[Detector] = ()) -> list[Finding]:
        """Findings in ``text``, sorted by start and non-overlapping; only ``types`` if given.

        ``extra`` detectors (a tenant's ``CodewordDetector``) are not compiled into this engine: their own
        ``scan`` runs beside it and their findings are resolved together with the engine's.
        """
        if not text:
            return []
        wanted = None if types is None else frozenset(types)
        found = self._pattern_findings(text, wanted) if self._database is not None else []
        for detector in self._scanning:
            if wanted is None or detector.types & wanted:
                found.extend(detector.scan(text))
        for detector in extra:
            if wanted is None or detector.types & wanted:
                found.extend(detector.scan(text))
        return self._resolved(found, wanted)

    def scan_many(self, texts: Sequence[str], types: Collection[str] | None = None,
                  extra: Sequence[Detector] = ()) -> list[list[Finding]]:
        """``[self.scan(text, types, extra) for text in texts]``, in phases: the pattern pass over every text,
        then each detector's own scan over every text, so that each phase's code and tables stay in the CPU's
        caches from one text to the next.  Worth it for a batch (``passerelle scan --jsonl``), not for a
        request's few texts: the compliance benchmark reports both paths (bench/results/compliance.md)."""
        wanted = None if types is None else frozenset(types)
        scans = self._database is not None
        found = [self._pattern_findings(text, wanted) if text and scans else [] for text in texts]
        for detector in (*self._scanning, *extra):
            if wanted is None or detector.types & wanted:
                detect = detector.scan
                for text, into in zip(texts, found, strict=True):
                    if text:
                        into.extend(detect(text))
        return [self._resolved(each, wanted) for each in found]

    @staticmethod
    def _resolved(found: list[Finding], wanted: frozenset[str] | None) -> list[Finding]:
        if not found:  # the common case: ordinary prose, and most streamed answer windows
            return found
        if wanted is not None:
            found = [f for f in found if f.type in wanted]
        return resolve(found)

    def _pattern_findings(self, text: str, wanted: frozenset[str] | None) -> list[Finding]:
        ascii_only = text.isascii()
        data = text.encode("ascii") if ascii_only else text.encode("utf-8", "surrogatepass")
        hits: list[tuple[int, int, int]] = []
        assert self._database is not None
        # Positional arguments: the binding's keyword parsing costs a third of a scan call on a short text.
        self._database.scan(data, _MATCH_HANDLER, 0, hits, self._scratch())
        if not hits:
            return []
        if wanted is not None:
            mask = self._mask(wanted)
            hits = [hit for hit in hits if mask[hit[2]]]
        hits.sort()
        skips = [] if ascii_only else _continuations(data)
        validators = self._validators
        accepted_end = [-1] * len(validators)  # per pattern: candidates inside an accepted one are not tried
        found: list[Finding] = []
        keep = found.append
        for start, neg_end, pid in hits:
            end = -neg_end
            if skips:
                start -= bisect_left(skips, start)
                end -= bisect_left(skips, end)
            if start < accepted_end[pid]:
                continue
            finding = validators[pid](text, start, end)
            if finding is not None:
                keep(finding)
                accepted_end[pid] = end if end > finding.end else finding.end
        return found
