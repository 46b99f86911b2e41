"""Who is calling: API keys are known only by their SHA-256 digest."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from passerelle.config import KeyConfig
from passerelle.errors import ErrorKind, GatewayError


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    models: frozenset[str]  # allowed model names; empty: all
    admin: bool = False

    def check_model(self, model: str) -> None:
        if self.models and model not in self.models:
            raise GatewayError(ErrorKind.PERMISSION, f"this API key may not use model '{model}'", param="model")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``x-api-key`` (Anthropic) or ``Authorization: Bearer`` (OpenAI)."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class KeyRing:
    def __init__(self, keys: list[KeyConfig], admin_key_sha256: str | None) -> None:
        self._by_digest: dict[str, Principal] = {}
        for key in keys:
            hashed = key.key_sha256 or digest(key.key or "")
            self._by_digest[hashed] = Principal(key.name, frozenset(key.models))
        if admin_key_sha256:
            self._by_digest[admin_key_sha256] = Principal("admin", frozenset(), admin=True)

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        key = presented_key(headers)
        if key is None:
            raise GatewayError(ErrorKind.AUTHENTICATION,
                               "missing API key: send it in the x-api-key header or as Authorization: Bearer")
        principal = self._by_digest.get(digest(key))
        if principal is None:
            raise GatewayError(ErrorKind.AUTHENTICATION, "invalid API key")
        return principal
