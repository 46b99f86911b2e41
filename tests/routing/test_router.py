"""Router behaviour driven by a scripted provider: retries, backoff, fallbacks, breakers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from passerelle.canonical import ChatRequest, MessageResponse, StreamEvent
from passerelle.config import AliasConfig, Config, DeploymentConfig, ProviderConfig, RouterConfig
from passerelle.errors import ErrorKind, GatewayError, UpstreamError
from passerelle.providers.base import Target
from passerelle.routing import router as router_module
from passerelle.routing.router import Router
from passerelle.routing.table import RoutingTable

OK: MessageResponse = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
}


class Scripted:
    """Fails with the scripted errors in order, then answers."""

    dialect = "anthropic"

    def __init__(self, name: str, failures: list[UpstreamError | GatewayError] | None = None,
                 mid_stream: UpstreamError | None = None) -> None:
        self.name = name
        self.failures = list(failures or [])
        self.mid_stream = mid_stream
        self.calls: list[Target] = []

    async def complete(self, request: ChatRequest, target: Target) -> MessageResponse:
        self.calls.append(target)
        if self.failures:
            raise self.failures.pop(0)
        return {**OK, "model": target.model}

    async def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[StreamEvent]:
        self.calls.append(target)
        if self.failures:
            raise self.failures.pop(0)
        yield {"type": "message_start", "message": {**OK, "content": []}}
        if self.mid_stream is not None:
            raise self.mid_stream
        yield {"type": "message_stop"}

    async def count_tokens(self, request: ChatRequest, target: Target) -> int | None:
        return None

    async def aclose(self) -> None:
        return None


def rate_limited(retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(ErrorKind.RATE_LIMIT, "slow down", retryable=True, retry_after=retry_after,
                         upstream_status=429)


def server_error() -> UpstreamError:
    return UpstreamError(ErrorKind.BAD_GATEWAY, "boom", retryable=True, upstream_status=500)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(router_module.asyncio, "sleep", fake_sleep)
    return recorded


def build(providers: dict[str, Any], models: dict[str, list[tuple[str, int]]], *,
          fallbacks: dict[str, list[str]] | None = None, **router: Any) -> Router:
    config = Config(
        providers={name: ProviderConfig(type="simulator") for name in providers},
        models={alias: AliasConfig(deployments=[DeploymentConfig(provider=p, priority=prio, model=f"{p}-model")
                                                for p, prio in deps],
                                   fallbacks=(fallbacks or {}).get(alias, []))
                for alias, deps in models.items()},
        router=RouterConfig(**router),
    )
    return Router(RoutingTable(config, providers), config.router)


def request(model: str = "alias") -> ChatRequest:
    return ChatRequest(body={"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
                       dialect="anthropic", request_id="req_1")


async def test_retries_then_succeeds_with_backoff(sleeps: list[float]) -> None:
    a = Scripted("a", [server_error(), server_error()])
    router = build({"a": a}, {"alias": [("a", 0)]}, retries=2, backoff_initial=0.5, backoff_max=4)
    routed = await router.complete(request())
    assert routed.attempts == 3 and len(a.calls) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0  # full jitter under the exponential ceiling


async def test_retry_after_is_honoured(sleeps: list[float]) -> None:
    a = Scripted("a", [rate_limited(retry_after=3.0)])
    router = build({"a": a}, {"alias": [("a", 0)]}, retries=1, backoff_initial=0.01)
    await router.complete(request())
    assert sleeps == [3.0]


async def test_retry_after_longer_than_limit_moves_to_fallback(sleeps: list[float]) -> None:
    a = Scripted("a", [rate_limited(retry_after=120.0)])
    b = Scripted("b")
    router = build({"a": a, "b": b}, {"alias": [("a", 0), ("b", 1)]}, retries=3, max_retry_after=30)
    routed = await router.complete(request())
    assert routed.deployment.provider is b and sleeps == []
    assert routed.message["model"] == "b-model"


async def test_fallback_across_priorities_after_retries(sleeps: list[float]) -> None:
    a = Scripted("a", [server_error()] * 3)
    b = Scripted("b")
    router = build({"a": a, "b": b}, {"alias": [("a", 0), ("b", 1)]}, retries=2)
    routed = await router.complete(request())
    assert len(a.calls) == 3 and len(b.calls) == 1 and routed.attempts == 4


async def test_fallback_alias_uses_its_own_name(sleeps: list[float]) -> None:
    a = Scripted("a", [server_error()])
    b = Scripted("b")
    config = Config(
        providers={"a": ProviderConfig(type="simulator"), "b": ProviderConfig(type="simulator")},
        models={"alias": AliasConfig(deployments=[DeploymentConfig(provider="a")], fallbacks=["other"]),
                "other": AliasConfig(deployments=[DeploymentConfig(provider="b")])},
        router=RouterConfig(retries=0),
    )
    router = Router(RoutingTable(config, {"a": a, "b": b}), config.router)
    routed = await router.complete(request())
    assert b.calls[0].model == "other"  # "{model}" stands for the fallback alias's name
    assert routed.upstream_model == "other"


async def test_upstream_client_error_is_not_retried(sleeps: list[float]) -> None:
    bad = UpstreamError(ErrorKind.INVALID_REQUEST, "messages: bad", retryable=False, upstream_status=400)
    a = Scripted("a", [bad])
    b = Scripted("b")
    router = build({"a": a, "b": b}, {"alias": [("a", 0), ("b", 1)]})
    with pytest.raises(UpstreamError) as info:
        await router.complete(request())
    assert info.value is bad and b.calls == [] and sleeps == []


async def test_untranslatable_request_tries_next_deployment(sleeps: list[float]) -> None:
    a = Scripted("a", [GatewayError(ErrorKind.INVALID_REQUEST, "image urls unsupported here")])
    b = Scripted("b")
    router = build({"a": a, "b": b}, {"alias": [("a", 0), ("b", 1)]})
    routed = await router.complete(request())
    assert routed.deployment.provider is b


async def test_all_fail_reports_last_upstream_error(sleeps: list[float]) -> None:
    a = Scripted("a", [server_error()] * 5)
    router = build({"a": a}, {"alias": [("a", 0)]}, retries=1, breaker_failures=100)
    with pytest.raises(UpstreamError) as info:
        await router.complete(request())
    assert info.value.kind is ErrorKind.BAD_GATEWAY and len(a.calls) == 2


async def test_breaker_opens_and_skips_deployment(sleeps: list[float]) -> None:
    a = Scripted("a", [server_error()] * 10)
    b = Scripted("b")
    router = build({"a": a, "b": b}, {"alias": [("a", 0), ("b", 1)]}, retries=0, breaker_failures=2,
                   breaker_cooldown=60)
    await router.complete(request())
    await router.complete(request())
    assert len(a.calls) == 2
    await router.complete(request())  # a's breaker is open: straight to b
    assert len(a.calls) == 2 and len(b.calls) == 3


async def test_breaker_half_open_trial_closes_on_success(sleeps: list[float], monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    a = Scripted("a", [server_error()])
    router = build({"a": a}, {"alias": [("a", 0)]}, retries=0, breaker_failures=1, breaker_cooldown=30)
    now = [1000.0]
    breaker = router.table.resolve("alias").deployments[0].breaker
    monkeypatch.setattr(breaker, "_clock", lambda: now[0])
    with pytest.raises(UpstreamError):
        await router.complete(request())
    assert breaker.state == "open"
    with pytest.raises(UpstreamError) as info:
        await router.complete(request())
    assert info.value.kind is ErrorKind.UNAVAILABLE and len(a.calls) == 1
    now[0] += 31
    assert breaker.state == "half_open"
    await router.complete(request())
    assert breaker.state == "closed" and len(a.calls) == 2


async def test_stream_retries_before_first_event(sleeps: list[float]) -> None:
    a = Scripted("a", [rate_limited(), server_error()])
    router = build({"a": a}, {"alias": [("a", 0)]}, retries=2)
    routed = await router.stream(request())
    events = [e["type"] async for e in routed.events]
    assert events == ["message_start", "message_stop"] and len(a.calls) == 3


async def test_stream_failure_after_first_event_is_not_retried(sleeps: list[float]) -> None:
    a = Scripted("a", mid_stream=server_error())
    router = build({"a": a}, {"alias": [("a", 0)]}, retries=3)
    routed = await router.stream(request())
    seen = []
    with pytest.raises(UpstreamError):
        async for event in routed.events:
            seen.append(event["type"])
    assert seen == ["message_start"] and len(a.calls) == 1


async def test_unknown_model_is_not_found() -> None:
    router = build({"a": Scripted("a")}, {"alias": [("a", 0)]})
    with pytest.raises(GatewayError) as info:
        await router.complete(request("nope"))
    assert info.value.kind is ErrorKind.NOT_FOUND and info.value.status == 404


def test_weighted_order_respects_weights() -> None:
    providers = {"a": Scripted("a"), "b": Scripted("b")}
    config = Config(providers={n: ProviderConfig(type="simulator") for n in providers},
                    models={"alias": AliasConfig(deployments=[DeploymentConfig(provider="a", weight=9),
                                                              DeploymentConfig(provider="b", weight=1)])})
    table = RoutingTable(config, providers)
    firsts = [table.plan("alias")[0][0].provider.name for _ in range(2000)]
    share = firsts.count("a") / len(firsts)
    assert 0.85 < share < 0.95, share
