"""The router: try deployments in plan order, with retries, backoff, breakers and fallbacks.
Each attempt works on a copy of the request fitted to its deployment (see ``bridge``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from passerelle.canonical import ChatRequest, MessageResponse, StreamEvent
from passerelle.canonical.text import estimate_tokens
from passerelle.config import RouterConfig
from passerelle.dialects.openai.structured import unwrap_structured_events, unwrap_structured_message
from passerelle.errors import ErrorKind, GatewayError, UpstreamError
from passerelle.observability import metrics
from passerelle.providers.base import Target
from passerelle.routing.bridge import fit_request
from passerelle.routing.retry import backoff_delay, may_retry, upstream_refused_request
from passerelle.routing.table import Deployment, RoutingTable

T = TypeVar("T")
# One upstream attempt: (fitted request, deployment, target, unwrap structured output) -> result.
Call = Callable[[ChatRequest, Deployment, Target, bool], Awaitable[T]]


@dataclass(slots=True)
class Routed:
    deployment: Deployment
    upstream_model: str
    warnings: list[str]
    attempts: int


@dataclass(slots=True)
class RoutedMessage(Routed):
    message: MessageResponse


@dataclass(slots=True)
class RoutedStream(Routed):
    events: AsyncIterator[StreamEvent]  # starts with the first event already received


class Router:
    def __init__(self, table: RoutingTable, config: RouterConfig) -> None:
        self.table = table
        self.config = config
        # (model, plan) -> the deployments allowed to serve it, e.g. the AI Act supplier-documents check.
        self.plan_filter: Callable[[str, list[tuple[Deployment, str]]], list[tuple[Deployment, str]]] | None = None

    async def complete(self, request: ChatRequest) -> RoutedMessage:
        async def call(attempt: ChatRequest, deployment: Deployment, target: Target, unwrap: bool,
                       ) -> MessageResponse:
            message = await deployment.provider.complete(attempt, target)
            deployment.breaker.success()
            return unwrap_structured_message(message) if unwrap else message

        message, deployment, target, attempt, attempts = await self._route(request, call)
        return RoutedMessage(deployment, target.model, attempt.warnings, attempts, message)

    async def stream(self, request: ChatRequest) -> RoutedStream:
        """Open a stream on the first deployment that produces a first event.  Retries and
        fallbacks happen only here, before anything reached the client."""

        async def call(attempt: ChatRequest, deployment: Deployment, target: Target, unwrap: bool,
                       ) -> AsyncIterator[StreamEvent]:
            events = deployment.provider.stream(attempt, target)
            if unwrap:
                events = unwrap_structured_events(events)
            try:
                first = await anext(events)
            except StopAsyncIteration:
                raise UpstreamError(ErrorKind.BAD_GATEWAY, "upstream sent an empty stream", retryable=True) from None
            return _watch(deployment, first, events)

        events, deployment, target, attempt, attempts = await self._route(request, call)
        return RoutedStream(deployment, target.model, attempt.warnings, attempts, events)

    async def _route(self, request: ChatRequest, call: Call[T]) -> tuple[T, Deployment, Target, ChatRequest, int]:
        """Try ``call`` on each deployment of the plan, with retries; the first success wins."""
        errors: list[GatewayError] = []
        attempts = 0
        for deployment, model in self._plan(request):
            if not deployment.breaker.allow():
                errors.append(_breaker_open(deployment))
                continue
            target = deployment.target(model, request.timeout)
            for retry in range(self.config.retries + 1):
                attempts += 1
                try:
                    attempt, unwrap = fit_request(request, deployment.provider)
                    result = await call(attempt, deployment, target, unwrap)
                except UpstreamError as err:
                    if not self._after_failure(deployment, err, errors):
                        raise
                    if may_retry(self.config, err, retry):
                        await asyncio.sleep(backoff_delay(self.config, retry, err.retry_after))
                        continue
                    break
                except GatewayError as err:  # this adapter cannot express the request
                    errors.append(err)
                    break
                return result, deployment, target, attempt, attempts
        raise _final_error(errors)

    def _plan(self, request: ChatRequest) -> list[tuple[Deployment, str]]:
        plan = self.table.plan(request.model)
        if self.plan_filter is not None:
            plan = self.plan_filter(request.model, plan)
        label = request.required_label
        if label is None:
            return plan
        allowed = [(deployment, model) for deployment, model in plan if label in deployment.labels]
        if not allowed:
            raise GatewayError(ErrorKind.PERMISSION, f"the compliance policy allows this request only on "
                               f"deployments labelled '{label}', and no deployment of '{request.model}' "
                               "(or its fallbacks) carries that label")
        return allowed

    async def count_tokens(self, request: ChatRequest) -> int:
        """The upstream's own count where it has an API for it, else a documented estimate."""
        for deployment, model in self._plan(request):
            if deployment.breaker.state == "open":
                continue
            try:
                count = await deployment.provider.count_tokens(request, deployment.target(model))
            except UpstreamError as err:
                if upstream_refused_request(err):
                    raise
                continue
            if count is not None:
                return count
            break
        return estimate_tokens(request.body)

    @staticmethod
    def _after_failure(deployment: Deployment, err: UpstreamError, errors: list[GatewayError]) -> bool:
        """Record a failed attempt; False when the error must go straight back to the caller."""
        if upstream_refused_request(err):
            return False
        if err.retryable or err.kind is ErrorKind.BAD_GATEWAY:
            deployment.breaker.failure()
        metrics.child(metrics.UPSTREAM_ERRORS, deployment.name, err.kind.name.lower()).inc()
        errors.append(err)
        return True


async def _watch(deployment: Deployment, first: StreamEvent, events: AsyncIterator[StreamEvent],
                 ) -> AsyncIterator[StreamEvent]:
    """Pass the stream on, telling the breaker how it ended."""
    yield first
    try:
        async for event in events:
            yield event
    except UpstreamError as err:
        deployment.breaker.failure()
        metrics.child(metrics.UPSTREAM_ERRORS, deployment.name, err.kind.name.lower()).inc()
        raise
    deployment.breaker.success()


def _breaker_open(deployment: Deployment) -> UpstreamError:
    return UpstreamError(ErrorKind.UNAVAILABLE, f"deployment '{deployment.name}' is paused after repeated "
                         "failures (circuit breaker open)", retryable=True)


def _final_error(errors: list[GatewayError]) -> GatewayError:
    if not errors:
        return GatewayError(ErrorKind.UNAVAILABLE, "no deployment is available for this model")
    # A request no deployment could express is the caller's to fix: say so rather than 5xx.
    refusals = [e for e in errors if not isinstance(e, UpstreamError)]
    if refusals and len(refusals) == len(errors):
        return refusals[0]
    return [e for e in errors if isinstance(e, UpstreamError)][-1]
