"""Scoring: precision, recall and F1 per entity type, hard-negative false positives, PERSON per language.

Matching rules (per text and per type; a prediction and a label of different types never match):
- **strict**: the predicted span equals the labelled span (same start and end);
- **overlap**: intersection over union >= 0.5 (``IOU``), so "Dr. Jean Dupont" for "Jean Dupont" or
  "22 CFR 120" for "22 CFR 120-130" still count, but half a name does not.
Matches are one-to-one, best IoU first.  An unmatched prediction is a false positive of its type, an
unmatched label a false negative.  A system is scored only on the types it supports; its predictions
of other types are dropped (Presidio's DATE_TIME or NRP, which we do not label).

Hard negatives are scored apart as well: a negative is *flagged* when any prediction overlaps it by
at least one character, whatever the type.  Those predictions are also false positives of their type.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.compliance.corpus import LANGUAGE, Label, Sample

IOU = 0.5
Pred = tuple[int, int, str]  # start, end, entity type


@dataclass(slots=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        if self.tp + self.fp + self.fn == 0:
            return None
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn)

    @property
    def support(self) -> int:
        return self.tp + self.fn

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def to_json(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "support": self.support,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def match(gold: list[tuple[int, int]], pred: list[tuple[int, int]], strict: bool) -> list[tuple[int, int]]:
    """One-to-one pairs (gold index, prediction index), best overlap first."""
    if strict:
        where = {span: i for i, span in enumerate(gold)}
        pairs, used = [], set()
        for j, span in enumerate(pred):
            i = where.get(span)
            if i is not None and i not in used:
                used.add(i)
                pairs.append((i, j))
        return pairs
    candidates = sorted(((iou(g, p), i, j) for i, g in enumerate(gold) for j, p in enumerate(pred)), reverse=True)
    pairs, gold_used, pred_used = [], set(), set()
    for score, i, j in candidates:
        if score < IOU:
            break
        if i not in gold_used and j not in pred_used:
            gold_used.add(i)
            pred_used.add(j)
            pairs.append((i, j))
    return pairs


@dataclass(slots=True)
class Errors:
    """A few examples of each kind of error, for reading by hand (synthetic values only)."""

    limit: int = 8
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, key: str, sample: Sample, start: int, end: int, note: str = "") -> None:
        found = self.examples[key]
        if len(found) < self.limit:
            lo, hi = max(0, start - 50), min(len(sample.text), end + 30)
            context = (sample.text[lo:start] + "⟦" + sample.text[start:end] + "⟧" + sample.text[end:hi])
            found.append(f"{sample.id}: {' '.join(context.split())}{'  ' + note if note else ''}")


@dataclass(slots=True)
class Result:
    strict: dict[str, Counts]
    overlap: dict[str, Counts]
    by_locale: dict[str, dict[str, Counts]]  # locale -> type -> counts (overlap rule)
    negatives: dict[str, dict[str, Any]]  # category -> {"total", "flagged", "by_type"}
    confusions: Counter[tuple[str, str]]  # (labelled type, predicted type) on the same span, types differ
    errors: Errors

    def person_by_language(self) -> dict[str, Counts]:
        out: dict[str, Counts] = {}
        for locale, types in self.by_locale.items():
            counts = types.get("PERSON")
            if counts is not None:
                out.setdefault(LANGUAGE[locale], Counts()).add(counts)
        return out

    def micro(self, types: Iterable[str], strict: bool = False) -> Counts:
        total = Counts()
        table = self.strict if strict else self.overlap
        for t in types:
            if t in table:
                total.add(table[t])
        return total


def evaluate(samples: list[Sample], predictions: Mapping[str, list[Pred]], supported: frozenset[str],
             errors_per_kind: int = 8) -> Result:
    strict: dict[str, Counts] = {t: Counts() for t in supported}
    overlap: dict[str, Counts] = {t: Counts() for t in supported}
    by_locale: dict[str, dict[str, Counts]] = defaultdict(lambda: {t: Counts() for t in supported})
    negatives: dict[str, dict[str, Any]] = {}
    confusions: Counter[tuple[str, str]] = Counter()
    errors = Errors(errors_per_kind)
    for sample in samples:
        preds = [p for p in predictions.get(sample.id, []) if p[2] in supported]
        gold = [lab for lab in sample.entities if lab.type in supported]
        for t in {lab.type for lab in gold} | {p[2] for p in preds}:
            g = [(lab.start, lab.end) for lab in gold if lab.type == t]
            p = [(s, e) for s, e, pt in preds if pt == t]
            for rule, table in ((True, strict), (False, overlap)):
                n = len(match(g, p, rule))
                table[t].tp += n
                table[t].fp += len(p) - n
                table[t].fn += len(g) - n
                if not rule:
                    loc = by_locale[sample.locale][t]
                    loc.tp, loc.fp, loc.fn = loc.tp + n, loc.fp + len(p) - n, loc.fn + len(g) - n
            _collect(sample, t, g, p, preds, errors, confusions)
        for neg in sample.negatives:
            entry = negatives.setdefault(neg.type, {"total": 0, "flagged": 0, "by_type": Counter()})
            entry["total"] += 1
            hits = [p for p in preds if p[0] < neg.end and neg.start < p[1]]
            if hits:
                entry["flagged"] += 1
                entry["by_type"].update(p[2] for p in hits)
                errors.add(f"NEG {neg.type}", sample, neg.start, neg.end, "flagged as " + ",".join(p[2] for p in hits))
    return Result(strict, overlap, dict(by_locale), negatives, confusions, errors)


def _collect(sample: Sample, t: str, gold: list[tuple[int, int]], pred: list[tuple[int, int]], all_preds: list[Pred],
             errors: Errors, confusions: Counter[tuple[str, str]]) -> None:
    pairs = match(gold, pred, strict=False)
    matched_gold = {i for i, _ in pairs}
    matched_pred = {j for _, j in pairs}
    for i, span in enumerate(gold):
        if i in matched_gold:
            continue
        other = [p for p in all_preds if p[2] != t and iou(span, (p[0], p[1])) >= IOU]
        if other:
            confusions[(t, other[0][2])] += 1
        partial = [p for p in pred if iou(span, p) > 0]
        note = f"found as {other[0][2]}" if other else "partial " + repr(sample.text[partial[0][0]:partial[0][1]]) \
            if partial else ""
        errors.add(f"FN {t}", sample, *span, note=note)
    for j, span in enumerate(pred):
        if j not in matched_pred:
            labelled = [lab.type for lab in sample.entities if lab.start < span[1] and span[0] < lab.end]
            errors.add(f"FP {t}", sample, *span, note=f"over {','.join(labelled)}" if labelled else "")


def labels_of(samples: list[Sample]) -> Counter[str]:
    return Counter(lab.type for s in samples for lab in s.entities)


def negatives_total(result: Result) -> tuple[int, int]:
    """(hard negatives, flagged ones) over every category."""
    return (sum(e["total"] for e in result.negatives.values()), sum(e["flagged"] for e in result.negatives.values()))


__all__ = ["IOU", "Counts", "Label", "Pred", "Result", "evaluate", "iou", "labels_of", "match", "negatives_total"]
