"""The console's entry point: static files, login and logout, sessions and CSRF, then the pages."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from urllib.parse import parse_qsl

from passerelle.admin.service import AdminError, AdminService
from passerelle.console import (
    pages_aiact,
    pages_audit,
    pages_keys,
    pages_overview,
    pages_policies,
    pages_skills,
    pages_usage,
)
from passerelle.console.html import Html, field, form, hidden, page, tag
from passerelle.console.http import Ctx, Response, cookies, html_response, is_https, parse_form, redirect, set_cookie
from passerelle.console.session import COOKIE, LIFETIME_S, LOGIN_COOKIE, Sessions
from passerelle.errors import GatewayError
from passerelle.observability.logging import log
from passerelle.server.asgi import BodyTooLarge, Receive, Scope, Send, read_body
from passerelle.server.chat import new_request_id
from passerelle.server.gateway import Gateway

PageFn = Callable[[Ctx], Awaitable[Response]]
PAGES: dict[tuple[str, str], PageFn] = {
    ("GET", "/console/"): pages_overview.overview,
    ("GET", "/console/keys"): pages_keys.keys,
    ("POST", "/console/keys"): pages_keys.create_key,
    ("POST", "/console/keys/revoke"): pages_keys.revoke_key,
    ("POST", "/console/tenants"): pages_keys.create_tenant,
    ("POST", "/console/budgets"): pages_keys.put_budget,
    ("POST", "/console/rate-limits"): pages_keys.put_rate_limit,
    ("GET", "/console/usage"): pages_usage.usage,
    ("GET", "/console/usage.csv"): pages_usage.usage_csv,
    ("GET", "/console/audit"): pages_audit.audit,
    ("POST", "/console/audit/verify"): pages_audit.verify,
    ("GET", "/console/compliance"): pages_audit.compliance,
    ("GET", "/console/policies"): pages_policies.policies,
    ("POST", "/console/policies"): pages_policies.put_policy,
    ("POST", "/console/policies/delete"): pages_policies.delete_policy,
    ("GET", "/console/skills"): pages_skills.skills,
    ("GET", "/console/skills/show"): pages_skills.skill_detail,
    ("POST", "/console/skills/install"): pages_skills.install_skill,
    ("GET", "/console/aiact"): pages_aiact.aiact,
    ("POST", "/console/aiact/suspend"): pages_aiact.suspend,
    ("POST", "/console/aiact/resume"): pages_aiact.resume,
    ("GET", "/console/aiact/report"): pages_aiact.report,
    ("GET", "/console/aiact/dora.csv"): pages_aiact.dora_csv,
}
_STATIC = {name: (resources.files("passerelle.console").joinpath("static", name).read_bytes(), kind)
           for name, kind in (("console.css", "text/css; charset=utf-8"),
                              ("console.js", "text/javascript; charset=utf-8"))}
_SESSIONS: dict[int, tuple[Gateway, Sessions]] = {}
_SECURITY = [("cache-control", "no-store"), ("x-frame-options", "DENY"), ("referrer-policy", "same-origin"),
             ("x-content-type-options", "nosniff"),
             ("content-security-policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")]


def sessions_for(gw: Gateway) -> Sessions:
    entry = _SESSIONS.get(id(gw))
    if entry is None or entry[0] is not gw:
        admin_sha = str(getattr(gw.policies, "_admin", "") or "")  # mixed in: a new admin key ends sessions
        entry = (gw, Sessions(gw.store, gw.counters, admin_sha))
        _SESSIONS[id(gw)] = entry
    return entry[1]


async def handle_console(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    try:
        response = await _dispatch(gw, scope, receive, headers)
    except Exception as exc:  # a bug or the store down: details in our log only
        log("console_error", logging.ERROR, path=scope["path"], error=f"{exc.__class__.__name__}: {exc}")
        response = html_response(page("Error", tag("p", "Internal error in the console; see the gateway log.",
                                                   class_="notice error"), "", None), 500)
    raw = [(b"x-request-id", (headers.get("x-request-id") or new_request_id()).encode())]
    raw += [(k.encode(), v.encode("latin-1")) for k, v in [*_SECURITY, *response.headers]]
    raw += [(b"content-type", response.content_type.encode()), (b"content-length", str(len(response.body)).encode())]
    await send({"type": "http.response.start", "status": response.status, "headers": raw})
    await send({"type": "http.response.body", "body": response.body})


async def _dispatch(gw: Gateway, scope: Scope, receive: Receive, headers: Mapping[str, str]) -> Response:
    path: str = scope["path"]
    method: str = scope["method"]
    if path == "/console":
        return redirect("/console/")
    if path.startswith("/console/static/") and method == "GET":
        found = _STATIC.get(path.removeprefix("/console/static/"))
        if found is None:
            return html_response(page("Not found", tag("p", "No such file."), "", None), 404)
        return Response(200, found[0], found[1], [("cache-control", "max-age=300")])
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    form_data: dict[str, str] = {}
    if method == "POST":
        try:
            form_data = parse_form(await read_body(receive, 1 << 20, headers.get("content-length")))
        except BodyTooLarge:
            return html_response(page("Too large", tag("p", "Form too large."), "", None), 413)
        except AdminError as err:
            return html_response(page("Bad request", tag("p", err.message), "", None), 400)
    sessions = sessions_for(gw)
    jar = cookies(headers)
    secure = is_https(scope, headers)
    if path == "/console/login":
        return await _login(gw, sessions, method, form_data, jar, secure)
    session = await sessions.check(jar.get(COOKIE))
    if session is None:
        if method == "GET":
            return redirect("/console/login")
        return html_response(page("Session expired", tag("p", "Log in again."), "", None), 401)
    if method == "POST" and not Sessions.csrf_ok(session, form_data.get("csrf")):
        log("console_csrf_refused", path=path)
        return html_response(page("Refused", tag("p", "Missing or wrong CSRF token: reload the page and retry.",
                                                 class_="notice error"), "", session.csrf), 403)
    if path == "/console/logout" and method == "POST":
        await sessions.revoke(session)
        return redirect("/console/login", set_cookie(COOKIE, "", 0, secure))
    handler = PAGES.get((method, path))
    if handler is None:
        known = any(p == path for _, p in PAGES)
        status, text = (405, f"{method} is not supported here") if known else (404, "No such page.")
        return html_response(page("Not found" if status == 404 else "Not allowed", tag("p", text), "",
                                  session.csrf), status)
    ctx = Ctx(gw, AdminService(gw.store), session, method, path, query, form_data)
    try:
        return await handler(ctx)
    except (AdminError, GatewayError) as err:
        status = err.status
        return html_response(page("Cannot do that", tag("p", err.message, class_="notice error")
                                  + tag("p", tag("a", "Back", href=path)), path, session.csrf), status)


async def _login(gw: Gateway, sessions: Sessions, method: str, form_data: dict[str, str], jar: dict[str, str],
                 secure: bool) -> Response:
    error: str | None = None
    if method == "POST":
        token = jar.get(LOGIN_COOKIE)
        if not token or not secrets.compare_digest(token, form_data.get("login_token", "")):
            error = "The login form expired: try again."
        else:
            try:
                gw.keys.admin({"x-api-key": form_data.get("admin_key", "")})
            except GatewayError:
                error = "This is not the admin key."
                log("console_login_refused")
            else:
                cookie, _ = await sessions.create()
                log("console_login")
                return redirect("/console/", set_cookie(COOKIE, cookie, LIFETIME_S, secure),
                                set_cookie(LOGIN_COOKIE, "", 0, secure, "/console/login"))
    elif method != "GET":
        return html_response(page("Not allowed", tag("p", "Use GET or POST."), "", None), 405)
    token = secrets.token_urlsafe(18)
    body = form("/console/login", hidden("login_token", token)
                + field("Admin key", "admin_key", "", "password", autocomplete="current-password", required="required",
                        autofocus="autofocus"), None, button="Log in")
    notice = tag("p", error, class_="notice error") if error else Html("")
    response = html_response(page("Log in", notice + body + tag("p", Html(
        "Use the gateway's admin key (the one the <code>/admin/</code> API accepts).")), "", None),
        401 if error else 200)
    response.headers.append(("set-cookie", set_cookie(LOGIN_COOKIE, token, 900, secure, "/console/login")))
    return response
