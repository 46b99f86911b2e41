"""Apply a policy's actions to a text and its findings.

- ``redact``: a typed placeholder, ``[CREDIT_CARD]``;
- ``mask``: the shape kept, most characters starred (a card keeps its BIN and last four digits,
  PCI DSS 3.4.1; an IBAN its country, check digits and last four; an email its first letter and
  domain; anything else its last four characters);
- ``hash``: ``[IBAN:3f1a9c0b2e7d]``, a keyed hash (per tenant) so equal values can be correlated
  without a dictionary attack recovering them;
- ``pseudonymize``: a consistent surrogate, restored in the answer (see ``pseudonyms``);
- ``block`` and ``route``: decisions about the whole request, returned to the caller of ``apply``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from passerelle.compliance.findings import Finding
from passerelle.compliance.policy import Action, Policy
from passerelle.compliance.pseudonyms import Vault


@dataclass(slots=True)
class Outcome:
    text: str
    blocked: list[Finding] = field(default_factory=list)  # findings whose action is block
    route_label: str | None = None  # set when a finding's action is route
    applied: list[tuple[Finding, Action]] = field(default_factory=list)  # every non-allow decision


def mask(entity: str, value: str) -> str:
    if entity == "CREDIT_CARD":
        digits = [i for i, ch in enumerate(value) if ch.isdigit()]
        keep = set(digits[:6] + digits[-4:])
        return "".join(ch if (i in keep or not ch.isdigit()) else "*" for i, ch in enumerate(value))
    if entity == "IBAN":
        alnum = [i for i, ch in enumerate(value) if ch.isalnum()]
        keep = set(alnum[:4] + alnum[-4:])
        return "".join(ch if (i in keep or not ch.isalnum()) else "*" for i, ch in enumerate(value))
    if entity == "EMAIL" and "@" in value:
        local, _, domain = value.partition("@")
        return local[:1] + "*" * max(len(local) - 1, 1) + "@" + domain
    alnum = [i for i, ch in enumerate(value) if ch.isalnum()]
    keep = set(alnum[-4:]) if len(alnum) > 8 else set()
    return "".join(ch if (i in keep or not ch.isalnum()) else "*" for i, ch in enumerate(value))


def keyed_hash(key: bytes, entity: str, value: str) -> str:
    return f"[{entity}:{hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:12]}]"


def apply(text: str, findings: Sequence[Finding], policy: Policy, vault: Vault, hash_key: bytes) -> Outcome:
    """The text with every finding's action applied, in one pass (findings must not overlap)."""
    outcome = Outcome(text)
    pieces: list[str] = []
    last = 0
    for finding in sorted(findings, key=lambda f: f.start):
        action = policy.action(finding.type)
        if action == "allow":
            continue
        outcome.applied.append((finding, action))
        if action == "block":
            outcome.blocked.append(finding)
            continue
        if action == "route":
            outcome.route_label = policy.route_label
            continue
        value = text[finding.start:finding.end]
        if action == "pseudonymize":
            replacement = vault.pseudonym(finding.type, value)
        elif action == "redact":
            replacement = f"[{finding.type}]"
        elif action == "mask":
            replacement = mask(finding.type, value)
        else:
            replacement = keyed_hash(hash_key, finding.type, value)
        pieces.append(text[last:finding.start])
        pieces.append(replacement)
        last = finding.end
    if pieces:
        pieces.append(text[last:])
        outcome.text = "".join(pieces)
    return outcome
