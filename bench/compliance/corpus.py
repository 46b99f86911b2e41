"""The labelled evaluation corpus: seeded, in four locales, five kinds of text, plus hard negatives.

A text is made of sentences from ``templates_*`` whose slots (``[[IBAN]]``) are filled by the
generators of ``values``, ``health``, ``people``, ``tokens`` and ``negatives``; each filled slot carries its
labelled spans, so the labels are exact by construction.  The same seed and size give the same
corpus (with the same Faker version: its name lists change between releases).

    python -m bench.compliance.corpus --size 20 --seed 7      # print a few texts with their labels
"""

from __future__ import annotations

import argparse
import random
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from faker import Faker

from bench.compliance import (
    health,
    negatives,
    people,
    templates_code,
    templates_de,
    templates_en,
    templates_fr,
    tokens,
    values,
)
from bench.compliance.values import Ctx, Generator, Piece

LOCALES = ("fr_FR", "en_US", "en_GB", "de_DE")
LANGUAGE = {"fr_FR": "fr", "en_US": "en", "en_GB": "en", "de_DE": "de"}
DOMAINS = ("support", "clinical", "bank", "code", "defense", "negatives")
# Shares of the corpus; "negatives" texts hold only hard negatives.
WEIGHTS = (0.24, 0.2, 0.24, 0.12, 0.12, 0.08)
DEFAULT_SEED = 20_251_127
DEFAULT_SIZE = 3000
NEGATIVE_SHARE = 0.35  # texts of the other kinds that also get one hard-negative sentence

TEMPLATES: dict[str, ModuleType] = {"en": templates_en, "fr": templates_fr, "de": templates_de}
_SLOTS: dict[str, Generator] = {**values.SLOTS, **health.SLOTS, **people.SLOTS, **tokens.SLOTS, **negatives.SLOTS}
_SLOT = re.compile(r"\[\[([A-Za-z0-9_:]+)(?:=([^\]]*))?\]\]")
_ONLY = re.compile(r"^([a-z]{2}_[A-Z]{2})\|")


@dataclass(frozen=True, slots=True)
class Label:
    start: int
    end: int
    type: str  # an entity type, or a hard negative's category


@dataclass(frozen=True, slots=True)
class Sample:
    id: str
    locale: str
    domain: str
    text: str
    entities: tuple[Label, ...]
    negatives: tuple[Label, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "locale": self.locale, "domain": self.domain, "text": self.text,
                "entities": [[lab.start, lab.end, lab.type] for lab in self.entities],
                "negatives": [[lab.start, lab.end, lab.type] for lab in self.negatives]}


def render(template: str, ctx: Ctx) -> Piece:
    """Fill a sentence's slots; the spans come out relative to the sentence."""
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0
    length = 0
    for m in _SLOT.finditer(template):
        literal = template[pos:m.start()]
        out.append(literal)
        length += len(literal)
        name, text = m.group(1), m.group(2)
        piece = Piece(text, ((0, len(text), name),)) if text is not None else _SLOTS[name](ctx)
        out.append(piece.text)
        spans.extend((length + s, length + e, label) for s, e, label in piece.spans)
        length += len(piece.text)
        pos = m.end()
    out.append(template[pos:])
    return Piece("".join(out), tuple(spans))


def join(pieces: list[Piece], separators: list[str]) -> Piece:
    """Concatenate pieces with ``separators[i]`` before piece i+1, moving their spans along."""
    text: list[str] = []
    spans: list[tuple[int, int, str]] = []
    length = 0
    for i, piece in enumerate(pieces):
        if i:
            text.append(separators[i - 1])
            length += len(separators[i - 1])
        text.append(piece.text)
        spans.extend((length + s, length + e, label) for s, e, label in piece.spans)
        length += len(piece.text)
    return Piece("".join(text), tuple(spans))


def _allowed(sentences: tuple[str, ...], locale: str) -> list[str]:
    out = []
    for s in sentences:
        m = _ONLY.match(s)
        if m is None:
            out.append(s)
        elif m.group(1) == locale:
            out.append(s[m.end():])
    return out


def _prose(ctx: Ctx, pool: dict[str, tuple[str, ...]], extra: str | None) -> Piece:
    rng = ctx.rng
    bodies = rng.sample(_allowed(pool["bodies"], ctx.locale), rng.randint(2, 4))
    if extra is not None:
        bodies.insert(rng.randint(0, len(bodies)), extra)
    inner = " " if rng.random() < 0.5 else "\n"
    parts = [render(b, ctx) for b in bodies]
    seps = [inner] * (len(parts) - 1)
    if rng.random() < 0.8:
        parts.insert(0, render(rng.choice(_allowed(pool["openers"], ctx.locale)), ctx))
        seps.insert(0, "\n")
    closer = rng.choice(_allowed(pool["closers"], ctx.locale)) if rng.random() < 0.8 else ""
    if closer:
        parts.append(render(closer, ctx))
        seps.append("\n\n")
    return join(parts, seps)


def _defense(ctx: Ctx, pool: dict[str, tuple[str, ...]], extra: str | None) -> Piece:
    rng = ctx.rng
    bodies = rng.sample(_allowed(pool["bodies"], ctx.locale), rng.randint(2, 4))
    if extra is not None:
        bodies.insert(rng.randint(0, len(bodies)), extra)
    chosen = [rng.choice(pool["openers"]), *bodies, rng.choice(pool["closers"])]
    parts = [render(s, ctx) for s in chosen]
    return join(parts, ["\n\n"] * (len(parts) - 1))


def _code(ctx: Ctx, extra: str | None) -> Piece:
    rng = ctx.rng
    snippets = rng.sample(templates_code.SNIPPETS, 2 if rng.random() < 0.25 else 1)
    comments = templates_code.COMMENTS[ctx.lang]
    chosen = [s.replace("{comment}", rng.choice(comments)) for s in snippets]
    lead = rng.choice(templates_code.LEAD_INS[ctx.lang])
    if lead:
        chosen.insert(0, lead)
    if extra is not None:
        chosen.append(extra)
    parts = [render(s, ctx) for s in chosen]
    return join(parts, ["\n\n"] * (len(parts) - 1))


def make_sample(index: int, locale: str, domain: str, rng: random.Random, fake: Faker) -> Sample:
    ctx = Ctx(rng, fake, locale, LANGUAGE[locale])
    module = TEMPLATES[ctx.lang]
    negative_pool: tuple[str, ...] = module.NEGATIVES
    if domain == "negatives":
        chosen = rng.sample(negative_pool, rng.randint(2, 4))
        piece = join([render(s, ctx) for s in chosen], [" "] * (len(chosen) - 1))
    else:
        extra = rng.choice(negative_pool) if rng.random() < NEGATIVE_SHARE else None
        if domain == "code":
            piece = _code(ctx, extra)
        elif domain == "defense":
            piece = _defense(ctx, module.DEFENSE, extra)
        else:
            piece = _prose(ctx, getattr(module, domain.upper()), extra)
    entities = tuple(Label(s, e, t) for s, e, t in piece.spans if not t.startswith("NEG:"))
    negs = tuple(Label(s, e, t[4:]) for s, e, t in piece.spans if t.startswith("NEG:"))
    return Sample(f"{locale}-{index:05d}", locale, domain, piece.text, entities, negs)


def _fakers(seed: int) -> dict[str, Faker]:
    fakers = {}
    for i, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 10 + i)
        fakers[locale] = fake
    return fakers


def generate(size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> list[Sample]:
    """``size`` texts, the locales in turn, the kinds drawn by WEIGHTS; deterministic for a seed."""
    rng = random.Random(seed)
    fakers = _fakers(seed)
    samples = []
    for index in range(size):
        locale = LOCALES[index % len(LOCALES)]
        domain = rng.choices(DOMAINS, WEIGHTS)[0]
        samples.append(make_sample(index, locale, domain, rng, fakers[locale]))
    return samples


def main() -> None:  # pragma: no cover - manual inspection
    parser = argparse.ArgumentParser(description="Print a few corpus texts with their labels.")
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    for sample in generate(args.size, args.seed):
        print(f"--- {sample.id} {sample.domain}")
        print(sample.text)
        for lab in sample.entities:
            print(f"    {lab.type:<24} {sample.text[lab.start:lab.end]!r}")
        for lab in sample.negatives:
            print(f"    NEG {lab.type:<20} {sample.text[lab.start:lab.end]!r}")


if __name__ == "__main__":  # pragma: no cover
    main()
