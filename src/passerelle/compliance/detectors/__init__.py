"""The shipped detectors, one module per family of entity types.

``person`` (PERSON, DATE_OF_BIRTH, LOCATION) and ``defense`` (markings, export control, codewords)
are written separately; they are picked up when present, through the Detector protocol only.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Collection, Sequence
from types import ModuleType

from passerelle.compliance.detectors.contact import ContactDetector
from passerelle.compliance.detectors.finance import FinanceDetector
from passerelle.compliance.detectors.health import HealthDetector
from passerelle.compliance.detectors.identity import IdentityDetector
from passerelle.compliance.detectors.secrets import SecretsDetector
from passerelle.compliance.findings import Detector

_OPTIONAL = ("person", "defense")


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise  # the module exists but one of its imports is missing: say so
        return None


def _detector_classes(module: ModuleType) -> list[type]:
    """The module's own classes shaped like a Detector: named ``*Detector``, with ``patterns`` and ``scan``
    (``name`` and ``types`` may be set per instance)."""
    return [cls for name, cls in vars(module).items()
            if inspect.isclass(cls) and cls.__module__ == module.__name__ and name.endswith("Detector")
            and not getattr(cls, "_is_protocol", False) and hasattr(cls, "patterns") and hasattr(cls, "scan")]


def _instantiate(cls: type, codewords: Sequence[str]) -> Detector:
    parameters = inspect.signature(cls).parameters
    detector: Detector = cls(codewords=tuple(codewords)) if "codewords" in parameters else cls()
    return detector


def default_detectors(codewords: Sequence[str] = (), types: Collection[str] | None = None) -> list[Detector]:
    """Every shipped detector; ``codewords`` (a tenant's deny list) go to the defense detector.  With ``types``,
    only the detectors that find one of them are built (a detector's dictionaries cost memory in every
    worker process: the person names alone take ~20 MB)."""

    def wanted(cls: type) -> bool:
        return types is None or bool(set(getattr(cls, "types", ())) & set(types)) or not getattr(cls, "types", ())

    builtin: list[type] = [FinanceDetector, IdentityDetector, ContactDetector, HealthDetector, SecretsDetector]
    detectors: list[Detector] = [cls() for cls in builtin if wanted(cls)]
    for name in _OPTIONAL:
        module = _optional_module(name)
        if module is not None:
            detectors.extend(_instantiate(cls, codewords) for cls in _detector_classes(module) if wanted(cls))
    return detectors


__all__ = ["ContactDetector", "FinanceDetector", "HealthDetector", "IdentityDetector", "SecretsDetector",
           "default_detectors"]
