"""The chat route, shared by both dialects: auth, parse, route, answer (whole or streamed)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from passerelle.aiact.transparency import Marking, ai_headers, mark_body, purpose_marks
from passerelle.audit import AuditEvent
from passerelle.canonical import ChatRequest, StreamEvent
from passerelle.errors import ErrorKind, GatewayError, UpstreamError
from passerelle.observability import metrics
from passerelle.observability.logging import log
from passerelle.pipeline.auth import Principal
from passerelle.pipeline.cache import CachedAnswer, replay
from passerelle.pipeline.compliance import Protection
from passerelle.pipeline.compliance_answer import AnswerGuard
from passerelle.pipeline.limits import Ticket
from passerelle.pipeline.metering import record, usage_tokens
from passerelle.pipeline.skills import SkillSession, add_usage
from passerelle.pricing import TokenUsage, merge_partial, usage_from_canonical
from passerelle.routing.router import Routed
from passerelle.routing.table import Deployment
from passerelle.server.asgi import (
    BodyTooLarge,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    end_stream,
    read_body,
    send_bytes,
    send_chunk,
    start_stream,
)
from passerelle.server.codecs import Codec
from passerelle.server.gateway import Gateway
from passerelle.server.skills_gateway import prepare_skills

_id_prefix = "req_" + os.urandom(8).hex()
_ids = itertools.count(1)


def _new_id_prefix() -> None:
    global _id_prefix, _ids
    _id_prefix, _ids = "req_" + os.urandom(8).hex(), itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)  # worker processes never share a prefix


def new_request_id() -> str:
    """Unique across processes (random prefix) and within one (counter), with no syscall per request."""
    return f"{_id_prefix}{next(_ids):010x}"


def requested_timeout(headers: Mapping[str, str]) -> float | None:
    """``x-passerelle-timeout``: seconds the caller will wait for each upstream attempt."""
    value = headers.get("x-passerelle-timeout")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise GatewayError(ErrorKind.INVALID_REQUEST, "x-passerelle-timeout: expected seconds between 0 and 3600",
                           param="x-passerelle-timeout")
    return seconds


def response_headers(request_id: str, routed: Routed | None = None, warnings: list[str] | None = None,
                     ) -> dict[str, str]:
    headers = {"request-id": request_id, "x-request-id": request_id}
    if routed is not None:
        headers["x-passerelle-deployment"] = routed.deployment.name
        headers["x-passerelle-upstream-model"] = routed.upstream_model
        headers.update(ai_headers(routed.upstream_model, routed.deployment.provider_type))  # AI Act Art 50(2)
        if routed.attempts > 1:
            headers["x-passerelle-attempts"] = str(routed.attempts)
    if warnings:
        # Header values must stay latin-1 and on one line.
        headers["x-passerelle-warnings"] = "; ".join(warnings).encode("latin-1", "replace").decode("latin-1")
    return headers


async def send_error(send: Send, codec: Codec, err: GatewayError, request_id: str) -> None:
    headers = response_headers(request_id)
    if err.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(err.retry_after)))
    if err.kind is ErrorKind.BUDGET_EXCEEDED:
        headers["x-should-retry"] = "false"  # the official SDKs would otherwise retry
    await send_bytes(send, err.status, codec.error(err, request_id), headers)


async def read_json(gw: Gateway, scope: Scope, receive: Receive, headers: Mapping[str, str]) -> object:
    return (await read_json_raw(gw, scope, receive, headers))[1]


async def read_json_raw(gw: Gateway, scope: Scope, receive: Receive, headers: Mapping[str, str],
                        ) -> tuple[bytes, object]:
    """The body as received and as decoded."""
    limit = gw.config.server.max_body_bytes
    try:
        raw = await read_body(receive, limit, headers.get("content-length"))
    except BodyTooLarge:
        raise GatewayError(ErrorKind.REQUEST_TOO_LARGE, f"request body exceeds the {limit} byte limit") from None
    if not raw:
        raise GatewayError(ErrorKind.INVALID_REQUEST, "request body is empty: expected a JSON object")
    try:
        return raw, msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise GatewayError(ErrorKind.INVALID_REQUEST, f"request body is not valid JSON: {exc}") from None


@dataclass(slots=True)
class Outcome:
    """What one request did, for its settlement and its ledger record."""

    deployment: Deployment | None = None
    upstream_model: str | None = None
    usage: TokenUsage | None = None
    cost: int = 0
    saved: int = 0
    cache_hit: bool = False
    protection: Protection | None = None
    prompt_sha256: str = ""  # of the body as the caller sent it (audit only)
    answer: Any = None  # hashlib sha256 of the bytes sent back (audit only)
    purpose: str | None = None  # the AI Act purpose the key is bound to
    marking: Marking | None = None  # the purpose's Art 50 text marking of the answer
    retention_days: int = 0  # the purpose's record-keeping floor for the audit record
    skills: SkillSession | None = None  # the key's skills offered on this request, and what it loaded


async def handle_chat(gw: Gateway, codec: Codec, route: str, scope: Scope, receive: Receive, send: Send,
                      headers: Mapping[str, str]) -> None:
    request_id = headers.get("x-request-id") or new_request_id()
    started = time.perf_counter()
    wall = time.time()
    request: ChatRequest | None = None
    who: Principal | None = None
    ticket: Ticket | None = None
    outcome = Outcome()
    status = 200
    alias = "-"  # metrics are labelled by configured alias, never by a caller-chosen name
    try:
        policies = gw.policies.current
        who = policies.keys.authenticate(headers)
        who.check_route(route)
        raw, body = await read_json_raw(gw, scope, receive, headers)
        if gw.audit.enabled:
            outcome.prompt_sha256 = hashlib.sha256(raw).hexdigest()
            outcome.answer = hashlib.sha256()
        raw_query: bytes = scope.get("query_string", b"")
        query = dict(parse_qsl(raw_query.decode("latin-1"))) if raw_query else {}
        request = codec.parse(body, request_id, headers, query)
        request.timeout = requested_timeout(headers)
        who.check_model(request.model)
        binding = gw.aiact.check(who, route, request.model)  # AI Act purpose binding and suspend switches
        outcome.purpose, outcome.marking, outcome.retention_days = purpose_marks(gw.config.aiact, binding, request,
                                                                                 headers)
        guard = _protect(gw, who, request, outcome)
        outcome.skills = await prepare_skills(gw, who, request)  # after protection: the catalog is ours
        if gw.config.metering.enabled:  # after skills: what is reserved covers the catalog and follow-up calls
            skills = outcome.skills
            ticket = await gw.limiter.admit(who, request, policies, gw.table, skills.follow_ups() if skills else None)
            if skills is not None and ticket.reserved_pico:
                skills.affordable = _affordable(gw, ticket, skills, wall)
        extra = codec.rate_limit_headers(ticket.requests_level, ticket.tokens_level) if ticket else {}
        use = gw.cache.use(who.tenant_id, request, headers)  # after protection: the cache never holds originals
        hit = await gw.cache.get(use) if use else None
        if hit is not None:
            alias = gw.table.resolve(request.model).name
            status = await _answer_cached(codec, request, hit, send, receive, extra, outcome, guard)
            metrics.child(metrics.CACHE, "hit").inc()
        elif request.stream:
            status, alias = await _stream(gw, codec, route, request, receive, send, started, wall, extra, outcome,
                                          guard)
        else:
            skills = outcome.skills
            routed = await (skills.complete(gw.router, request) if skills else gw.router.complete(request))
            alias = routed.deployment.alias
            message = guard.message(routed.message) if guard else routed.message
            out = codec.response(outcome.marking.message(message) if outcome.marking else message, request)
            out = mark_body(gw.config.aiact, out, routed.upstream_model, routed.deployment.provider_type)
            if outcome.answer is not None:
                outcome.answer.update(out)
            await send_bytes(send, 200, out, {**response_headers(request_id, routed, routed.warnings), **extra})
            outcome.usage = usage_from_canonical(routed.message["usage"])
            _served(gw, outcome, routed, wall)
            metrics.record_usage(alias, routed.deployment.name, routed.message["usage"])
            _log_warnings(request_id, routed.warnings)
            if use is not None:
                gw.cache.put(use, CachedAnswer(routed.message, routed.deployment.name,
                                               routed.deployment.provider_type, routed.upstream_model, outcome.cost))
    except GatewayError as err:
        status = err.status
        if err.kind in (ErrorKind.BUDGET_EXCEEDED, ErrorKind.RATE_LIMIT) and ticket is None:
            metrics.child(metrics.REJECTED, err.kind.name.lower()).inc()
        await send_error(send, codec, err, request_id)
    except ClientDisconnected:
        status = 499  # gone before its request was read: nobody to answer
    except Exception as exc:  # a bug: answer in the caller's format, log the details for us
        status = 500
        log("internal_error", logging.ERROR, request_id=request_id, error=f"{exc.__class__.__name__}: {exc}")
        await send_error(send, codec, GatewayError(ErrorKind.API_ERROR, "internal gateway error"), request_id)
    finally:
        elapsed = time.perf_counter() - started
        if outcome.usage is None and outcome.skills is not None and outcome.skills.billed:
            _bill_calls(gw, outcome, outcome.skills, wall)  # a later call failed: the earlier ones were billed
        if who is not None and gw.config.metering.enabled and request is not None:
            await _settle(gw, ticket, outcome, who, request, route, status, wall, elapsed)
        if gw.audit.enabled:
            _audit(gw, outcome, who, request, route, status, wall)
    metrics.child(metrics.REQUESTS, route, alias, str(status)).inc()
    metrics.child(metrics.LATENCY, route, alias).observe(elapsed)
    log("request", request_id=request_id, route=route, model=request.model if request else "-", status=status,
        stream=bool(request and request.stream), latency_ms=round(elapsed * 1000, 3))


def _protect(gw: Gateway, who: Principal, request: ChatRequest, outcome: Outcome) -> AnswerGuard | None:
    """The compliance stage (raises the block error); the guard that rewrites this request's answer."""
    if not gw.compliance.enabled:
        return None
    outcome.protection = gw.compliance.protect(who, request)
    if outcome.protection is None:
        return None
    if outcome.protection.refusal is not None:
        raise outcome.protection.refusal
    config = gw.config.compliance
    return AnswerGuard(outcome.protection, config.answer_holdback, config.scan_answers)


def _served(gw: Gateway, outcome: Outcome, routed: Routed, wall: float) -> None:
    outcome.deployment = routed.deployment
    outcome.upstream_model = routed.upstream_model
    skills = outcome.skills
    if skills is not None and skills.billed:
        _bill_calls(gw, outcome, skills, wall)
    elif outcome.usage is not None:
        outcome.cost = gw.meter.cost(routed.deployment, routed.upstream_model, outcome.usage, wall) or 0


def _bill_calls(gw: Gateway, outcome: Outcome, skills: SkillSession, wall: float) -> None:
    """A skills session's usage and cost: each answered upstream call with its own usage, at its own
    deployment's price.  A stream cut short adds its estimate on top (it also counts the first call's
    input again: over-counting is the safe side of a budget)."""
    total: dict[str, Any] = {}
    for _, _, usage in skills.billed:
        add_usage(total, usage)
    billed = usage_from_canonical(total)
    cost = _billed_cost(gw, skills, wall)
    last, last_model = skills.billed[-1][0], skills.billed[-1][1]
    cut = outcome.usage
    if cut is not None and cut.estimated:
        billed = billed.plus(cut)
        cost += gw.meter.cost(outcome.deployment or last, outcome.upstream_model or last_model, cut, wall) or 0
    outcome.usage, outcome.cost = billed, cost
    if outcome.deployment is None:
        outcome.deployment, outcome.upstream_model = last, last_model


def _billed_cost(gw: Gateway, skills: SkillSession, wall: float) -> int:
    """What the session's answered calls cost, each at its own deployment's price (unpriced: nothing)."""
    return sum(gw.meter.cost(deployment, model, usage_from_canonical(usage), wall) or 0
               for deployment, model, usage in skills.billed)


def _affordable(gw: Gateway, ticket: Ticket, skills: SkillSession, wall: float) -> Callable[[ChatRequest], bool]:
    """Whether one more call with this body fits in the ticket's reservation, given what the session's
    calls cost so far (each at its own price)."""

    def affordable(request: ChatRequest) -> bool:
        spent = _billed_cost(gw, skills, wall)
        following = gw.limiter.reservation(request, gw.table.plan(request.model), time.time())
        return spent + following <= ticket.reserved_pico

    return affordable


async def _settle(gw: Gateway, ticket: Ticket | None, outcome: Outcome, who: Principal, request: ChatRequest,
                  route: str, status: int, wall: float, elapsed: float) -> None:
    """Swap the reservation for the real cost, then queue the ledger record (never blocks on the DB)."""
    tokens = usage_tokens(outcome.usage) if outcome.usage else 0
    if ticket is not None:
        await gw.limiter.settle(ticket, outcome.cost, tokens)  # never raises: a failure is retried in the background
    gw.ledger.append(record(
        request_id=request.request_id, started_wall=wall, latency_s=elapsed, status=status, route=route,
        model=request.model, who=who, deployment=outcome.deployment, upstream_model=outcome.upstream_model,
        usage=outcome.usage, cost=outcome.cost, saved=outcome.saved, cache_hit=outcome.cache_hit,
        price_version=gw.meter.catalog.version if outcome.cost or outcome.saved else ""))


def _audit(gw: Gateway, outcome: Outcome, who: Principal | None, request: ChatRequest | None, route: str,
           status: int, wall: float) -> None:
    """One audit record per request: facts, counts and digests, never a prompt's values."""
    protection = outcome.protection
    if protection is not None and protection.refusal is not None:
        decision = "blocked"
    elif status in (402, 429):
        decision = "rejected"
    elif status >= 500:
        decision = "error"
    elif status >= 400:
        decision = "rejected"
    else:
        decision = "routed" if protection is not None and protection.route_label else "forwarded"
    usage = outcome.usage
    gw.audit.append(AuditEvent(
        request_id=request.request_id if request else "-", time=wall,
        tenant_id=who.tenant_id if who else "-", team_id=who.team_id if who else None,
        key_id=who.key_id if who else "-", route=route, purpose=outcome.purpose,
        model=request.model if request else "-",
        deployment=outcome.deployment.name if outcome.deployment else None, upstream_model=outcome.upstream_model,
        packs=dict(protection.policy.versions) if protection else {},
        findings=protection.summary() if protection else [], decision=decision, status=status,
        input_tokens=usage.input if usage else 0, output_tokens=usage.output if usage else 0,
        prompt_sha256=outcome.prompt_sha256,
        answer_sha256=outcome.answer.hexdigest() if outcome.answer is not None and status < 400 else None,
        retention_days=max(protection.policy.audit_retention_days_min if protection else 0, outcome.retention_days),
        extra={**({"cache_hit": True} if outcome.cache_hit else {}),
               **(outcome.skills.audit() if outcome.skills else {}),
               **(outcome.marking.audit if outcome.marking else {})}))


async def _answer_cached(codec: Codec, request: ChatRequest, hit: CachedAnswer, send: Send, receive: Receive,
                         extra: dict[str, str], outcome: Outcome, guard: AnswerGuard | None) -> int:
    outcome.cache_hit = True
    outcome.saved = hit.cost_pico
    headers = {**response_headers(request.request_id), **ai_headers(hit.upstream_model, hit.provider), **extra,
               "x-passerelle-cache": "hit"}
    marking = outcome.marking
    if not request.stream:
        message = guard.message(hit.message) if guard else hit.message
        out = codec.response(marking.message(message) if marking else message, request)
        if outcome.answer is not None:
            outcome.answer.update(out)
        await send_bytes(send, 200, out, headers)
        return 200
    events = _aiter(replay(hit.message))
    events = marking.events(events) if marking else events
    status, _ = await _send_events(codec, request, guard.events(events) if guard else events, send, receive,
                                   headers, outcome)
    return status


async def _aiter(events: Iterable[StreamEvent]) -> AsyncIterator[StreamEvent]:
    for event in events:
        yield event


class _StreamStart:
    """The parts of a stream's start that do not depend on the upstream's answer (the encoder, the watch
    for the caller hanging up), made while the upstream thinks rather than after its first event."""

    __slots__ = ("encoder", "hang_up")

    def __init__(self) -> None:
        self.encoder: Any = None
        self.hang_up: asyncio.Future[Any] | None = None

    def prepare(self, codec: Codec, request: ChatRequest, receive: Receive) -> None:
        if self.encoder is None:
            self.encoder = codec.stream_encoder(request)
        if self.hang_up is None:
            # The body is read, so the next ASGI message is the client hanging up.
            self.hang_up = asyncio.ensure_future(receive())

    def close(self) -> None:
        if self.hang_up is not None:
            self.hang_up.cancel()


async def _stream(gw: Gateway, codec: Codec, route: str, request: ChatRequest, receive: Receive, send: Send,
                  started: float, wall: float, extra: dict[str, str], outcome: Outcome, guard: AnswerGuard | None,
                  ) -> tuple[int, str]:
    """Stream the answer; returns the status to record and the alias.  Once the first byte is
    out, failures become an error event in the stream, since the HTTP status is already sent."""
    skills = outcome.skills
    start = _StreamStart()
    # Runs at the loop's next turn, once the request is on its way upstream: off the first byte's path.
    early = asyncio.get_running_loop().call_soon(start.prepare, codec, request, receive)
    try:
        routed = await (skills.stream(gw.router, request) if skills else gw.router.stream(request))
    except BaseException:
        early.cancel()
        start.close()
        raise
    alias = routed.deployment.alias
    headers = {**response_headers(request.request_id, routed, routed.warnings), **extra}
    events = guard.events(routed.events) if guard else routed.events
    events = outcome.marking.events(events) if outcome.marking else events
    status, usage = await _send_events(codec, request, events, send, receive, headers, outcome, start=start,
                                       on_start=lambda: metrics.child(metrics.FIRST_BYTE, route, alias).observe(
                                           time.perf_counter() - started),
                                       deployment=routed.deployment.name)
    _log_warnings(request.request_id, routed.warnings)
    _served(gw, outcome, routed, wall)
    metrics.record_usage(alias, routed.deployment.name, usage)
    return status, alias


async def _send_events(codec: Codec, request: ChatRequest, events: AsyncIterator[StreamEvent], send: Send,
                       receive: Receive, headers: dict[str, str], outcome: Outcome, *,
                       start: _StreamStart | None = None, on_start: Callable[[], object] | None = None,
                       deployment: str = "cache",
                       ) -> tuple[int, dict[str, int]]:
    """Write a stream of canonical events in the caller's dialect, watching for the caller hanging
    up (stopping the upstream then, rather than paying for tokens nobody will read); returns the
    status to record and the usage the upstream reported.  ``on_start`` runs once the first chunk
    is out (the first-byte metric)."""
    if start is None:
        start = _StreamStart()
    start.prepare(codec, request, receive)
    encoder, hang_up = start.encoder, start.hang_up
    assert hang_up is not None
    if not hang_up.done():  # else gone while the upstream thought: the loop below stops at once, nothing sent
        await start_stream(send, headers)
    usage: dict[str, int] = {}
    text: list[str] = []
    digest = outcome.answer
    status = 200
    complete = False
    try:
        async for event in events:
            if hang_up.done():
                status = 499
                break
            kind = event["type"]
            if kind == "message_start":
                usage.update(event["message"].get("usage") or {})
            elif kind == "message_delta":
                usage.update(event.get("usage") or {})
                complete = True
            elif kind == "content_block_delta":
                delta = event["delta"]
                piece = delta.get("text") or delta.get("thinking") or delta.get("partial_json")
                if piece:
                    text.append(piece)
            chunk = encoder.encode(event)
            if chunk:
                if digest is not None:
                    digest.update(chunk)
                await send_chunk(send, chunk)
                if on_start is not None:
                    on_start()
                    on_start = None
        else:
            tail = encoder.done()
            if tail:
                if digest is not None:
                    digest.update(tail)
                await send_chunk(send, tail)
    except UpstreamError as err:
        log("stream_failed", logging.WARNING, request_id=request.request_id, deployment=deployment,
            error=err.message)
        status = 599  # recorded as a stream that failed after its 200
        await send_chunk(send, encoder.error(err))
    except (OSError, RuntimeError):
        status = 499  # the client went away: sending failed
    finally:
        start.close()
        await events.aclose()  # type: ignore[attr-defined]
        # A stream cut short reported no final usage: estimate what is missing (see pricing.cost).
        outcome.usage = usage_from_canonical(usage) if complete else merge_partial(usage, request, "".join(text))
    if status != 499:
        await end_stream(send)
    return status, usage


def _log_warnings(request_id: str, warnings: list[str]) -> None:
    if warnings:
        log("dropped_fields", logging.WARNING, request_id=request_id, warnings=warnings)
