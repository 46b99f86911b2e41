"""Compliance tests share one engine over the pattern detectors, compiled once per session."""

from __future__ import annotations

from collections.abc import Collection
from functools import cache

from passerelle.compliance import Engine
from passerelle.compliance.detectors import (
    ContactDetector,
    FinanceDetector,
    HealthDetector,
    IdentityDetector,
    SecretsDetector,
)


@cache
def engine() -> Engine:
    return Engine([FinanceDetector(), IdentityDetector(), ContactDetector(), HealthDetector(), SecretsDetector()])


def found(text: str, types: Collection[str] | None = None) -> list[tuple[str, str]]:
    """(type, value) of every finding, in order."""
    return [(f.type, text[f.start:f.end]) for f in engine().scan(text, types)]


def values(text: str, entity: str) -> list[str]:
    """The values found of one type (the scan covers every type: overlaps are resolved as in use)."""
    return [value for kind, value in found(text) if kind == entity]


def subtypes(text: str, entity: str) -> list[str | None]:
    return [f.subtype for f in engine().scan(text) if f.type == entity]
