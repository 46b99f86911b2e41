"""Compliance: detection of sensitive data in prompts and answers (findings, never values).

``Engine(default_detectors()).scan(text)`` returns typed, non-overlapping findings with Python
string offsets; see engine.py for how scores and overlaps are decided.
"""

from passerelle.compliance.engine import Engine, resolve
from passerelle.compliance.findings import ENTITY_TYPES, Detector, Finding, Pattern, Validator

__all__ = ["ENTITY_TYPES", "Detector", "Engine", "Finding", "Pattern", "Validator", "resolve"]
