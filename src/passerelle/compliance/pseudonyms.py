"""Pseudonymization: a consistent surrogate per value, and its restoration in answers, streamed
or whole.

A surrogate is ``<TYPE>-<8 base32 characters>`` (``PERSON-K3J5Q2ZA``), derived by HMAC-SHA256 from
a gateway secret, the tenant, the type and the value.  Being deterministic, the same value gets the
same surrogate in every request of a conversation (clients resend the history, in which earlier
answers hold the restored values) without any server-side state, and tenants never share one.
The surrogates of one request live in a ``Vault``; only those are restored in its answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable

from passerelle.compliance.findings import Finding

SURROGATE_CHARS = 8


class Pseudonymizer:
    def __init__(self, secret: bytes, tenant: str) -> None:
        self._key = hmac.new(secret, tenant.encode(), hashlib.sha256).digest()  # one key per tenant

    def surrogate(self, entity: str, value: str) -> str:
        digest = hmac.new(self._key, f"{entity}\x00{value}".encode(), hashlib.sha256).digest()
        return f"{entity}-{base64.b32encode(digest[:5]).decode()}"  # 40 bits: 8 characters


class Vault:
    """The surrogates of one request, in both directions."""

    def __init__(self, pseudonymizer: Pseudonymizer) -> None:
        self._pseudonymizer = pseudonymizer
        self.originals: dict[str, str] = {}  # surrogate -> value

    def pseudonym(self, entity: str, value: str) -> str:
        """The value's surrogate, remembered for restoration."""
        surrogate = self._pseudonymizer.surrogate(entity, value)
        self.originals[surrogate] = value
        return surrogate

    def protect(self, text: str, findings: Iterable[Finding]) -> str:
        """``text`` with each finding's span replaced by its surrogate (findings must not overlap)."""
        out: list[str] = []
        last = 0
        for finding in sorted(findings, key=lambda f: f.start):
            surrogate = self.pseudonym(finding.type, text[finding.start:finding.end])
            out.append(text[last:finding.start])
            out.append(surrogate)
            last = finding.end
        out.append(text[last:])
        return "".join(out)

    def restore(self, text: str, *, json_string: bool = False) -> str:
        """Every surrogate of this vault back to its value (JSON-escaped inside a JSON document)."""
        if not self.originals or "-" not in text:
            return text
        for surrogate, value in self.originals.items():
            if surrogate in text:
                text = text.replace(surrogate, _json_escaped(value) if json_string else value)
        return text

    def restorer(self, *, json_string: bool = False) -> StreamRestorer:
        return StreamRestorer(self, json_string=json_string)


def _json_escaped(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


class StreamRestorer:
    """Restores surrogates in a stream of text pieces cut anywhere.

    ``feed`` returns the text that is safe to send: everything except a tail that could still be
    the beginning of a surrogate, held back until the next piece decides.  The hold-back is
    shorter than the longest surrogate (at most about 40 characters), and ``flush`` releases it
    at the end of the block.
    """

    __slots__ = ("_json", "_pending", "_prefixes", "_vault")

    def __init__(self, vault: Vault, *, json_string: bool = False) -> None:
        self._vault = vault
        self._json = json_string
        self._pending = ""
        self._prefixes: frozenset[str] | None = None

    def _holdable(self) -> frozenset[str]:
        if self._prefixes is None:  # built on first use: the vault is complete once the answer starts
            self._prefixes = frozenset(s[:i] for s in self._vault.originals for i in range(1, len(s)))
        return self._prefixes

    def feed(self, piece: str) -> str:
        if not self._vault.originals:
            return piece
        text = self._vault.restore(self._pending + piece, json_string=self._json)
        prefixes = self._holdable()
        longest = max(map(len, self._vault.originals)) - 1
        for start in range(max(len(text) - longest, 0), len(text)):
            if text[start:] in prefixes:
                self._pending = text[start:]
                return text[:start]
        self._pending = ""
        return text

    def flush(self) -> str:
        pending, self._pending = self._pending, ""
        return pending

    @property
    def held(self) -> int:
        """Characters held back right now (the delay the restoration adds)."""
        return len(self._pending)
