"""Who is calling: API keys are known only by their SHA-256 digest.

The key ring is rebuilt from each policy snapshot (see ``policies``) and swapped whole, so a
lookup is one dict access and a revocation is visible as soon as the next snapshot lands.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from passerelle.config import KeyConfig
from passerelle.errors import ErrorKind, GatewayError
from passerelle.stores.records import VirtualKey

DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    tenant_id: str
    team_id: str | None = None
    models: frozenset[str] = frozenset()  # allowed model names or globs; empty: all
    routes: frozenset[str] = frozenset()  # allowed routes; empty: all
    expires_at: float | None = None
    admin: bool = False

    def check_model(self, model: str) -> None:
        if not self.models or model in self.models:
            return
        if any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models if "*" in pattern or "?" in pattern):
            return
        raise GatewayError(ErrorKind.PERMISSION, f"this API key may not use model '{model}'", param="model")

    def check_route(self, route: str) -> None:
        if self.routes and route not in self.routes:
            raise GatewayError(ErrorKind.PERMISSION, f"this API key may not use the {route} route")


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


def config_key_id(name: str) -> str:
    return f"cfg_{name}"


class KeyRing:
    def __init__(self, keys: list[KeyConfig], admin_key_sha256: str | None,
                 stored: Iterable[VirtualKey] = ()) -> None:
        self._by_digest: dict[str, Principal] = {}
        self.revoked: frozenset[str] = frozenset()
        revoked: set[str] = set()
        for vkey in stored:
            if vkey.revoked_at is not None:
                revoked.add(vkey.key_sha256)
                continue
            self._by_digest[vkey.key_sha256] = Principal(
                vkey.id, vkey.name, vkey.tenant_id, vkey.team_id, frozenset(vkey.models), frozenset(vkey.routes),
                vkey.expires_at)
        self.revoked = frozenset(revoked)
        for key in keys:
            hashed = key.key_sha256 or digest(key.key or "")
            self._by_digest[hashed] = Principal(config_key_id(key.name), key.name, key.tenant, key.team,
                                                frozenset(key.models), frozenset(key.routes))
        if admin_key_sha256:
            self._by_digest[admin_key_sha256] = Principal("admin", "admin", DEFAULT_TENANT, admin=True)

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        key = presented_key(headers)
        if key is None:
            raise GatewayError(ErrorKind.AUTHENTICATION,
                               "missing API key: send it in the x-api-key header or as Authorization: Bearer")
        hashed = digest(key)
        principal = self._by_digest.get(hashed)
        if principal is None:
            message = "this API key has been revoked" if hashed in self.revoked else "invalid API key"
            raise GatewayError(ErrorKind.AUTHENTICATION, message)
        if principal.expires_at is not None and time.time() >= principal.expires_at:
            raise GatewayError(ErrorKind.AUTHENTICATION, "this API key has expired")
        return principal

    def admin(self, headers: Mapping[str, str]) -> Principal:
        principal = self.authenticate(headers)
        if not principal.admin:
            raise GatewayError(ErrorKind.PERMISSION, "this route needs the admin key")
        return principal
