"""Console sessions: signed, expiring cookies that every worker and instance can check.

A cookie is ``<sid>.<expires>.<mac>``, the MAC an HMAC-SHA256 keyed by the store's random console secret
mixed with the admin key's digest (changing the admin key ends every session).  Nothing is kept per
session except on logout: the session id goes into a revocation list held in the shared counters'
cache with a TTL equal to the session's remaining life, so the list stays as small as the number of
sessions ended early, and empties itself.  The CSRF token is derived from the session id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from passerelle.stores.base import Counters, Store

COOKIE = "passerelle_console"
LOGIN_COOKIE = "passerelle_console_login"  # double-submit token of the login form
LIFETIME_S = 8 * 3600
_SETTING = "console_session_secret"


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    expires: int
    csrf: str


class Sessions:
    def __init__(self, store: Store, counters: Counters, admin_sha256: str | None) -> None:
        self._store = store
        self._counters = counters
        self._admin = (admin_sha256 or "").encode()
        self._key: bytes | None = None

    async def _load_key(self, reload: bool = False) -> bytes:
        if self._key is not None and not reload:
            return self._key
        secret = await self._store.get_setting(_SETTING)
        if secret is None:
            await self._store.set_setting(_SETTING, secrets.token_hex(32))
            secret = await self._store.get_setting(_SETTING)  # another worker may have written first
        self._key = hmac.new(str(secret).encode(), b"console:" + self._admin, hashlib.sha256).digest()
        return self._key

    @staticmethod
    def _mac(key: bytes, text: str) -> str:
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    async def create(self, now: float | None = None) -> tuple[str, Session]:
        key = await self._load_key()
        sid = secrets.token_urlsafe(18)
        expires = int(now if now is not None else time.time()) + LIFETIME_S
        body = f"{sid}.{expires}"
        return f"{body}.{self._mac(key, body)}", Session(sid, expires, self._mac(key, "csrf:" + sid))

    async def check(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie carries, or None when it is absent, forged, expired or logged out."""
        if not cookie or cookie.count(".") != 2:
            return None
        sid, expires_text, mac = cookie.split(".")
        if not expires_text.isdigit():
            return None
        body = f"{sid}.{expires_text}"
        key = await self._load_key()
        if not hmac.compare_digest(self._mac(key, body), mac):
            # Another worker may have won the race to create the secret: read it again once.
            key = await self._load_key(reload=True)
            if not hmac.compare_digest(self._mac(key, body), mac):
                return None
        if int(expires_text) <= (now if now is not None else time.time()):
            return None
        if await self._counters.cache_get(_revoked(sid)) is not None:
            return None
        return Session(sid, int(expires_text), self._mac(key, "csrf:" + sid))

    async def revoke(self, session: Session, now: float | None = None) -> None:
        remaining = session.expires - (now if now is not None else time.time())
        if remaining > 0:
            await self._counters.cache_set(_revoked(session.sid), b"1", remaining + 60)

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(session.csrf, token)


def _revoked(sid: str) -> str:
    return f"console:revoked:{sid}"
