"""The Anthropic-compatible Skills API (beta), so that ``client.beta.skills.*`` of the official SDK
works against Passerelle with a virtual key:

    POST/GET /v1/skills, GET/DELETE /v1/skills/{id}, POST/GET /v1/skills/{id}/versions,
    GET/DELETE /v1/skills/{id}/versions/{version}, GET /v1/skills/{id}/versions/{version}/content

Objects have the SDK's shapes (``BetaSkill``, ``BetaSkillVersion``, the deleted markers, cursor pages
of ``data``/``has_more``/``next_page``), plus a few Passerelle fields (semver, digest, risk level).
Versions are addressed by their epoch-microsecond id, their semver, or ``latest``.  The key's tenant
owns what it creates and sees its own skills and the shared catalog, never another tenant's.
Uploads go through the registry's publish path: archive checks, strict SKILL.md validation, risk scan.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import re
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from passerelle.errors import ErrorKind, GatewayError
from passerelle.observability.logging import log
from passerelle.pipeline.auth import Principal
from passerelle.server.asgi import BodyTooLarge, ClientDisconnected, Receive, Scope, Send, read_body, send_bytes
from passerelle.server.chat import new_request_id, response_headers, send_error
from passerelle.server.codecs import ANTHROPIC
from passerelle.server.gateway import Gateway
from passerelle.server.skills_gateway import registry_for
from passerelle.skills.archive import ArchiveError, from_entries
from passerelle.skills.records import Skill, SkillVersion
from passerelle.skills.registry import SkillError, SkillRegistry
from passerelle.stores.base import Conflict, NotFound

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DISPOSITION = re.compile(r'(\w+)\*?="((?:[^"\\]|\\.)*)"|(\w+)=([^;\s]+)')
MAX_LIMIT = 1000


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def skill_object(skill: Skill, versions: list[SkillVersion]) -> dict[str, Any]:
    latest = next((v for v in versions if v.version == skill.latest_version), None) or (
        max(versions, key=lambda v: int(v.api_version)) if versions else None)
    latest_id = latest.api_version if latest else ""
    return {"id": skill.id, "type": "skill", "display_name": skill.display_title, "display_title": skill.display_title,
            "source": {"type": "custom"}, "latest_version_id": latest_id, "latest_version": latest_id,
            "created_at": _iso(skill.created_at), "updated_at": _iso(skill.updated_at)}


def version_object(skill: Skill, v: SkillVersion) -> dict[str, Any]:
    return {"id": v.api_version, "type": "skill_version", "skill_id": skill.id, "version": v.api_version,
            "name": v.name, "description": v.description, "directory": v.name, "created_at": _iso(v.created_at),
            "semver": v.version, "digest": v.digest, "risk_level": v.risk_level, "yanked": v.yanked_at is not None}


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """(text fields, files as (filename, content)) of a multipart/form-data body."""
    m = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or m is None:
        raise GatewayError(ErrorKind.INVALID_REQUEST, "expected a multipart/form-data body with files[]")
    delimiter = b"--" + m.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise GatewayError(ErrorKind.INVALID_REQUEST, "malformed multipart body: missing its closing boundary")
    for chunk in chunks[1:-1]:
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep or not content.endswith(b"\r\n"):
            raise GatewayError(ErrorKind.INVALID_REQUEST, "malformed multipart part")
        content = content[:-2]
        params: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                for q_key, q_val, key, val in _DISPOSITION.findall(value):
                    params[(q_key or key).lower()] = q_val.replace('\\"', '"') if q_key else val
        if "filename" in params:
            files.append((params["filename"], content))
        elif "name" in params:
            fields[params["name"]] = content.decode("utf-8", "replace")
    return fields, files


class _Request:
    def __init__(self, gw: Gateway, scope: Scope, receive: Receive, headers: Mapping[str, str]) -> None:
        self.gw, self.scope, self.receive, self.headers = gw, scope, receive, headers
        self.query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))

    async def upload(self) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
        limit = self.gw.config.server.max_body_bytes
        try:
            raw = await read_body(self.receive, limit, self.headers.get("content-length"))
        except BodyTooLarge:
            raise GatewayError(ErrorKind.REQUEST_TOO_LARGE, f"request body exceeds the {limit} byte limit") from None
        fields, files = parse_multipart(raw, self.headers.get("content-type", ""))
        if not files:
            raise GatewayError(ErrorKind.INVALID_REQUEST, "no files: upload the skill's files as files[]")
        return fields, files

    def page(self) -> tuple[int, int]:
        try:
            limit = int(self.query.get("limit") or 20)
        except ValueError:
            raise GatewayError(ErrorKind.INVALID_REQUEST, "limit must be an integer", param="limit") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise GatewayError(ErrorKind.INVALID_REQUEST, f"limit must be between 1 and {MAX_LIMIT}", param="limit")
        token = self.query.get("page") or ""
        if not token:
            return 0, limit
        try:
            offset = int(base64.urlsafe_b64decode(token.encode() + b"==").decode().removeprefix("o:"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise GatewayError(ErrorKind.INVALID_REQUEST, "invalid page token", param="page") from None
        return max(offset, 0), limit


def _paged(items: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
    page = items[offset:offset + limit]
    more = offset + limit < len(items)
    token = base64.urlsafe_b64encode(f"o:{offset + limit}".encode()).decode().rstrip("=") if more else None
    return {"data": page, "has_more": more, "next_page": token}


async def _publish(reg: SkillRegistry, who: Principal, req: _Request, skill_id: str | None) -> SkillVersion:
    fields, files = await req.upload()
    fileset = from_entries(files, reg.policy.limits)
    title = fields.get("display_name") or fields.get("display_title") or None
    if title is not None and (len(title) > 255 or "\n" in title):
        raise GatewayError(ErrorKind.INVALID_REQUEST, "display_name must be one line of at most 255 characters")
    return await reg.publish(who.tenant_id, fileset, display_title=title, skill_id=skill_id,
                             new_skill=skill_id is None)


async def _version(reg: SkillRegistry, skill: Skill, version: str) -> SkillVersion:
    if version == "latest":
        version = skill.latest_version or ""
    return await reg.store.get_version(skill.id, version)


Op = Callable[[SkillRegistry, Principal, _Request, list[str]], Awaitable[tuple[int, Any]]]


async def create_skill(reg: SkillRegistry, who: Principal, req: _Request, args: list[str]) -> tuple[int, Any]:
    version = await _publish(reg, who, req, None)
    skill = await reg.store.get_skill(version.skill_id)
    return 200, skill_object(skill, [version])


async def list_skills(reg: SkillRegistry, who: Principal, req: _Request, args: list[str]) -> tuple[int, Any]:
    offset, limit = req.page()
    if req.query.get("source") not in (None, "", "custom"):
        return 200, _paged([], 0, limit)  # Anthropic's own skills are not served here
    skills = sorted(await reg.list_skills(who.tenant_id), key=lambda s: (-s.created_at, s.id))
    window = skills[offset:offset + limit]
    data = [skill_object(s, await reg.store.list_versions(s.id)) for s in window]
    return 200, {**_paged([{}] * len(skills), offset, limit), "data": data}


async def get_skill(reg: SkillRegistry, who: Principal, req: _Request, args: list[str]) -> tuple[int, Any]:
    skill = await reg.resolve(who.tenant_id, args[0])
    return 200, skill_object(skill, await reg.store.list_versions(skill.id))


async def delete_skill(reg: SkillRegistry, who: Principal, req: _Request, args: list[str]) -> tuple[int, Any]:
    skill = await reg.owned(who.tenant_id, args[0])
    await reg.delete_skill(who.tenant_id, skill.id)
    return 200, {"id": skill.id, "type": "skill_deleted"}


async def create_version(reg: SkillRegistry, who: Principal, req: _Request, args: list[str]) -> tuple[int, Any]:
    skill = await reg.owned(who.tenant_id, args[0])
    version = await _publish(reg, who, req, skill.id)
    return 200, version_object(skill, version)


async def list_versions(reg: SkillRegistry, who: Principal, req: _Request, args: list[str]) -> tuple[int, Any]:
    offset, limit = req.page()
    skill = await reg.resolve(who.tenant_id, args[0])
    versions = sorted(await reg.store.list_versions(skill.id), key=lambda v: -int(v.api_version))
    return 200, _paged([version_object(skill, v) for v in versions], offset, limit)


async def get_version(reg: SkillRegistry, who: Principal, req: _Request, args: list[str]) -> tuple[int, Any]:
    skill = await reg.resolve(who.tenant_id, args[0])
    return 200, version_object(skill, await _version(reg, skill, args[1]))


async def delete_version(reg: SkillRegistry, who: Principal, req: _Request, args: list[str]) -> tuple[int, Any]:
    skill = await reg.owned(who.tenant_id, args[0])
    version = await _version(reg, skill, args[1])
    await reg.delete_version(who.tenant_id, skill.id, version.version)
    return 200, {"id": version.api_version, "type": "skill_version_deleted"}


async def version_content(reg: SkillRegistry, who: Principal, req: _Request, args: list[str]) -> tuple[int, Any]:
    skill = await reg.resolve(who.tenant_id, args[0])
    version = await _version(reg, skill, args[1])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted((await reg.store.read_files(skill.id, version.version)).items()):
            archive.writestr(f"{version.name}/{path}", data)
    return 200, ("application/zip", buffer.getvalue())


ROUTES: list[tuple[tuple[str, ...], dict[str, Op]]] = [
    ((), {"POST": create_skill, "GET": list_skills}),
    (("*",), {"GET": get_skill, "DELETE": delete_skill}),
    (("*", "versions"), {"POST": create_version, "GET": list_versions}),
    (("*", "versions", "*"), {"GET": get_version, "DELETE": delete_version}),
    (("*", "versions", "*", "content"), {"GET": version_content}),
]


def _match(path: str) -> tuple[dict[str, Op], list[str]] | None:
    rest = path.removeprefix("/v1/skills").strip("/")
    parts = rest.split("/") if rest else []
    for pattern, methods in ROUTES:
        if len(pattern) == len(parts) and all(p in ("*", s) and s for p, s in zip(pattern, parts, strict=True)):
            return methods, [s for p, s in zip(pattern, parts, strict=True) if p == "*"]
    return None


_REFUSALS: list[tuple[type[Exception], ErrorKind]] = [
    (NotFound, ErrorKind.NOT_FOUND), (Conflict, ErrorKind.INVALID_REQUEST), (SkillError, ErrorKind.INVALID_REQUEST),
    (ArchiveError, ErrorKind.INVALID_REQUEST)]


async def handle_skills(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    request_id = headers.get("x-request-id") or new_request_id()
    try:
        who = gw.keys.authenticate(headers)
        found = _match(scope["path"])
        if found is None:
            raise GatewayError(ErrorKind.NOT_FOUND, f"no route for {scope['path']}")
        methods, args = found
        op = methods.get(scope["method"])
        if op is None:
            err = GatewayError(ErrorKind.INVALID_REQUEST, f"{scope['method']} {scope['path']} is not supported")
            err.status = 405
            raise err
        registry = await registry_for(gw)
        try:
            status, body = await op(registry, who, _Request(gw, scope, receive, headers), args)
        except tuple(kind for kind, _ in _REFUSALS) as exc:
            kind = next(k for t, k in _REFUSALS if isinstance(exc, t))
            err = GatewayError(kind, str(exc))
            if isinstance(exc, Conflict):
                err.status = 409
            raise err from None
    except GatewayError as err:
        await send_error(send, ANTHROPIC, err, request_id)
        return
    except ClientDisconnected:
        raise
    except Exception as exc:  # a bug or the store down: details in our log only
        log("skills_api_error", logging.ERROR, request_id=request_id, path=scope["path"],
            error=f"{exc.__class__.__name__}: {exc}")
        await send_error(send, ANTHROPIC, GatewayError(ErrorKind.API_ERROR, "internal error in the Skills API"),
                         request_id)
        return
    headers_out = response_headers(request_id)
    if isinstance(body, tuple):
        await send_bytes(send, status, body[1], headers_out, content_type=body[0])
    else:
        await send_bytes(send, status, msgspec.json.encode(body), headers_out)
