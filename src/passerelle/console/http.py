"""Requests and responses of the console: forms, cookies, redirects, the per-request context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

from passerelle.admin.service import AdminError, AdminService, invalid
from passerelle.console.html import Html
from passerelle.console.session import Session
from passerelle.server.gateway import Gateway


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)  # set-cookie may repeat


def html_response(page: Html, status: int = 200) -> Response:
    return Response(status, page.encode())


def redirect(location: str, *set_cookies: str) -> Response:
    return Response(303, b"", "text/plain; charset=utf-8",
                    [("location", location), *(("set-cookie", c) for c in set_cookies)])


@dataclass(slots=True)
class Ctx:
    gw: Gateway
    admin: AdminService
    session: Session | None
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]

    @property
    def csrf(self) -> str | None:
        return self.session.csrf if self.session is not None else None

    def arg(self, name: str, default: str = "") -> str:
        return (self.form.get(name) if self.method == "POST" else None) or self.query.get(name) or default

    def opt(self, name: str) -> str | None:
        return self.arg(name) or None

    def int_arg(self, name: str, default: int, low: int = 0, high: int = 10**9) -> int:
        text = self.arg(name)
        if not text:
            return default
        if not text.isdigit() or not low <= int(text) <= high:
            raise invalid(f"{name}: expected a whole number from {low} to {high}")
        return int(text)


def parse_form(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AdminError(400, "invalid_request_error", "form is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def cookies(headers: Mapping[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header: treat as no cookie
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def set_cookie(name: str, value: str, max_age: int, secure: bool, path: str = "/console") -> str:
    flags = f"; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return f"{name}={value}{flags}{'; Secure' if secure else ''}"


def is_https(scope: Mapping[str, object], headers: Mapping[str, str]) -> bool:
    return scope.get("scheme") == "https" or headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"
