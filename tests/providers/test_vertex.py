"""VertexProvider against a fake Vertex AI that also plays Google's OAuth token endpoint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import anthropic.types
import msgspec
import pytest
from pydantic import TypeAdapter

from passerelle.canonical import ChatRequest
from passerelle.config import ProviderConfig
from passerelle.errors import ErrorKind, UpstreamError
from passerelle.providers.base import Target
from passerelle.providers.http import HttpClient, UpstreamResponse
from passerelle.providers.vertex import (
    GoogleTokenSource,
    VertexProvider,
    publisher_model_url,
    vertex_base_url,
)
from tests.fakes.vertex import (
    ANSWER_TEXT,
    CLOUD_PLATFORM_SCOPE,
    COUNT_TOKENS_ANSWER,
    GOOGLE_TOKEN_AUDIENCE,
    MODEL,
    PROJECT,
    Failure,
    FakeVertex,
    ServiceAccount,
    answer_message,
    new_rsa_key,
    stream_events,
    write_service_account,
)
from tests.support.pools import until_idle

RawEvent = anthropic.types.RawMessageStreamEvent
STREAM_EVENTS: TypeAdapter[RawEvent] = TypeAdapter(RawEvent)
BASE_PATH = f"/v1/projects/{PROJECT}/locations/us-east5/publishers/anthropic/models"
HELLO = [{"role": "user", "content": "Hello"}]
EXPECTED_EVENTS = [e for e in stream_events(MODEL) if e["type"] != "ping"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeVertex]:
    server = FakeVertex()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def account(fake: FakeVertex, tmp_path: Path) -> ServiceAccount:
    sa = write_service_account(tmp_path / "sa.json", fake.token_uri)
    fake.register(sa)
    return sa


@pytest.fixture
async def make_provider(fake: FakeVertex, account: ServiceAccount,
                        http: HttpClient) -> AsyncIterator[Callable[..., VertexProvider]]:
    made: list[VertexProvider] = []

    def make(**fields: Any) -> VertexProvider:
        settings: dict[str, Any] = {"type": "vertex", "project": PROJECT, "region": "us-east5",
                                    "base_url": fake.url, "credentials_file": str(account.path)}
        settings.update(fields)
        provider = VertexProvider("vertex", ProviderConfig(**settings), http)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def provider(make_provider: Callable[..., VertexProvider]) -> VertexProvider:
    return make_provider()


def chat(stream: bool = False, **fields: Any) -> ChatRequest:
    body: dict[str, Any] = {"model": "claude-sonnet-4", "max_tokens": 64, "system": "Be brief.",
                            "messages": HELLO}
    if stream:
        body["stream"] = True
    return ChatRequest(body=body, dialect="anthropic", request_id="req_1", stream=stream, **fields)  # type: ignore[arg-type]


TARGET = Target(deployment="vertex-sonnet", model=MODEL, timeout=30.0)


async def collect(provider: VertexProvider, request: ChatRequest, target: Target = TARGET,
                  into: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    events = [] if into is None else into
    async for event in provider.stream(request, target):
        events.append(event)
    return events


def bearer(headers: Mapping[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def test_complete(provider: VertexProvider, fake: FakeVertex, account: ServiceAccount) -> None:
    result = await provider.complete(chat(), TARGET)

    assert result == answer_message(MODEL)
    assert anthropic.types.Message.model_validate(result).content[0].text == ANSWER_TEXT  # type: ignore[union-attr]
    [call] = fake.calls
    assert call.method == "rawPredict"
    assert call.path == f"{BASE_PATH}/{MODEL}:rawPredict"
    assert call.body == {"max_tokens": 64, "system": "Be brief.", "messages": HELLO,
                         "anthropic_version": "vertex-2023-10-16"}
    assert call.headers["Content-Type"] == "application/json"
    assert "anthropic-version" not in call.headers and "x-api-key" not in call.headers
    assert "anthropic-beta" not in call.headers and "x-goog-user-project" not in call.headers
    # The token came from a JWT grant that the fake verified against the account's public key.
    [grant] = fake.grants
    assert grant["iss"] == account.email
    assert grant["aud"] == GOOGLE_TOKEN_AUDIENCE
    assert grant["scope"] == CLOUD_PLATFORM_SCOPE
    assert bearer(call.headers) == fake.issued[0]


async def test_stream(provider: VertexProvider, fake: FakeVertex) -> None:
    events = await collect(provider, chat(stream=True))

    assert events == EXPECTED_EVENTS
    [call] = fake.calls
    assert call.method == "streamRawPredict"
    assert call.path == f"{BASE_PATH}/{MODEL}:streamRawPredict"
    assert call.body == {"max_tokens": 64, "system": "Be brief.", "messages": HELLO,
                         "stream": True, "anthropic_version": "vertex-2023-10-16"}
    assert bearer(call.headers) == fake.issued[0]


async def test_streams_in_a_row_share_one_connection(provider: VertexProvider, fake: FakeVertex,
                                                     http: HttpClient) -> None:
    for _ in range(3):
        assert await collect(provider, chat(stream=True)) == EXPECTED_EVENTS
        await until_idle(http)  # message_stop ends the events; the body's end is read after it
    assert http.pool.opened == 1 and len(fake.calls) == 3


async def test_stream_calls_upstream_on_first_event(provider: VertexProvider, fake: FakeVertex) -> None:
    events = provider.stream(chat(stream=True), TARGET)
    assert fake.calls == [] and fake.grants == []
    first = await events.__anext__()
    assert first == EXPECTED_EVENTS[0]
    assert len(fake.calls) == 1
    await events.aclose()  # type: ignore[attr-defined]


async def test_fake_answers_validate_with_sdk_types(fake: FakeVertex) -> None:
    token = fake.issue_token()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}],
            "anthropic_version": "vertex-2023-10-16"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.url}{BASE_PATH}/{MODEL}:rawPredict", json=body,
                                headers=headers) as resp:
            assert resp.status == 200
            message = anthropic.types.Message.model_validate(await resp.json())
        assert message.model == MODEL and message.stop_reason == "end_turn"
        async with session.post(f"{fake.url}{BASE_PATH}/{MODEL}:streamRawPredict",
                                json={**body, "stream": True}, headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            raw = (await resp.read()).decode()
    blocks = [b for b in raw.split("\n\n") if b]
    assert len(blocks) == len(stream_events(MODEL))
    for block, expected in zip(blocks, stream_events(MODEL), strict=True):
        event_line, data_line = block.split("\n")
        data = msgspec.json.decode(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}" and data == expected
        if data["type"] == "ping":
            continue
        assert STREAM_EVENTS.validate_python(data).type == data["type"]
    # And the fake refuses what real Vertex refuses.
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.url}{BASE_PATH}/{MODEL}:rawPredict",
                                json={**body, "model": MODEL}, headers=headers) as resp:
            assert resp.status == 400
        async with session.post(f"{fake.url}{BASE_PATH}/{MODEL}:rawPredict", json=body,
                                headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 401


async def test_token_fetched_once_and_reused(provider: VertexProvider, fake: FakeVertex) -> None:
    await provider.complete(chat(), TARGET)
    await provider.complete(chat(), TARGET)
    await collect(provider, chat(stream=True))

    assert len(fake.grants) == 1
    assert [bearer(c.headers) for c in fake.calls] == [fake.issued[0]] * 3


async def test_concurrent_requests_share_one_refresh(provider: VertexProvider, fake: FakeVertex) -> None:
    results = await asyncio.gather(*(provider.complete(chat(), TARGET) for _ in range(6)))

    assert results == [answer_message(MODEL)] * 6
    assert len(fake.grants) == 1
    assert {bearer(c.headers) for c in fake.calls} == {fake.issued[0]}


async def test_token_refreshed_ahead_of_expiry(provider: VertexProvider, fake: FakeVertex) -> None:
    # A token with two minutes left is inside the five-minute margin: each request renews it.
    fake.expires_in = 120
    await provider.complete(chat(), TARGET)
    await provider.complete(chat(), TARGET)

    assert len(fake.grants) == 2
    assert [bearer(c.headers) for c in fake.calls] == fake.issued


async def test_token_source_refreshes_when_expired(fake: FakeVertex, account: ServiceAccount) -> None:
    now = [time.time()]
    source = GoogleTokenSource(str(account.path), clock=lambda: now[0])
    try:
        first = await source.token()
        assert await source.token() == first
        assert source.project == PROJECT
        now[0] += 3600.0  # the token's hour is over
        second = await source.token()
        assert second != first
        assert fake.issued == [first, second]
        assert len(fake.grants) == 2
    finally:
        source.close()


async def test_bad_signature_is_refused(fake: FakeVertex, account: ServiceAccount, http: HttpClient,
                                        tmp_path: Path) -> None:
    # Same account and key id, but signed with a key Google does not know.
    forged = write_service_account(tmp_path / "forged.json", fake.token_uri, email=account.email,
                                   key=new_rsa_key(), key_id=account.key_id)
    config = ProviderConfig(type="vertex", project=PROJECT, region="us-east5", base_url=fake.url,
                            credentials_file=str(forged.path))
    provider = VertexProvider("vertex", config, http)
    try:
        with pytest.raises(UpstreamError) as err:
            await provider.complete(chat(), TARGET)
    finally:
        await provider.aclose()
    assert err.value.kind is ErrorKind.BAD_GATEWAY and err.value.retryable is False
    assert "invalid_grant" in err.value.message and "Invalid JWT Signature." in err.value.message
    assert fake.rejected_grants == ["Invalid JWT Signature."]
    assert fake.grants == [] and fake.calls == []


async def test_rejected_token_is_dropped_and_refetched(provider: VertexProvider, fake: FakeVertex) -> None:
    await provider.complete(chat(), TARGET)
    fake.revoke_all()
    with pytest.raises(UpstreamError) as err:
        await provider.complete(chat(), TARGET)
    assert err.value.upstream_status == 401 and err.value.retryable is True
    await provider.complete(chat(), TARGET)

    assert len(fake.grants) == 2
    assert fake.unauthenticated == [f"Bearer {fake.issued[0]}"]
    assert [bearer(c.headers) for c in fake.calls] == [fake.issued[0], fake.issued[1]]


QUOTA_MESSAGE = "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model"
RATE_LIMITED = Failure(429, {"error": {"code": 429, "message": QUOTA_MESSAGE,
                                       "status": "RESOURCE_EXHAUSTED"}}, {"retry-after": "7"})


async def test_rate_limit(provider: VertexProvider, fake: FakeVertex) -> None:
    fake.failures.append(RATE_LIMITED)
    with pytest.raises(UpstreamError) as err:
        await provider.complete(chat(), TARGET)

    assert err.value.kind is ErrorKind.RATE_LIMIT and err.value.retryable is True
    assert err.value.retry_after == 7.0 and err.value.upstream_status == 429
    assert err.value.message == QUOTA_MESSAGE


async def test_stream_rate_limit_before_first_event(provider: VertexProvider, fake: FakeVertex) -> None:
    fake.failures.append(RATE_LIMITED)
    events: list[dict[str, Any]] = []
    with pytest.raises(UpstreamError) as err:
        await collect(provider, chat(stream=True), into=events)

    assert events == []
    assert err.value.kind is ErrorKind.RATE_LIMIT and err.value.retry_after == 7.0
    assert fake.calls[0].method == "streamRawPredict"


async def test_stream_overloaded_mid_stream(provider: VertexProvider, fake: FakeVertex) -> None:
    fake.stream_mode = "overloaded"
    events: list[dict[str, Any]] = []
    with pytest.raises(UpstreamError) as err:
        await collect(provider, chat(stream=True), into=events)

    assert events == EXPECTED_EVENTS[:3]
    assert err.value.kind is ErrorKind.OVERLOADED and err.value.retryable is True
    assert err.value.message == "Overloaded"


@pytest.mark.parametrize("mode", ["truncated", "reset"])
async def test_stream_cut_before_message_stop(provider: VertexProvider, fake: FakeVertex, mode: str) -> None:
    fake.stream_mode = mode
    events: list[dict[str, Any]] = []
    with pytest.raises(UpstreamError) as err:
        await collect(provider, chat(stream=True), into=events)

    assert events == EXPECTED_EVENTS[:3]
    assert err.value.kind is ErrorKind.BAD_GATEWAY and err.value.retryable is True


async def test_count_tokens(provider: VertexProvider, fake: FakeVertex) -> None:
    request = chat(anthropic_beta=["token-counting-2024-11-01"])
    request.body["temperature"] = 0.5

    assert await provider.count_tokens(request, TARGET) == COUNT_TOKENS_ANSWER
    [call] = fake.count_calls
    assert call.path == f"{BASE_PATH}/count-tokens:rawPredict"
    assert call.body == {"model": MODEL, "system": "Be brief.", "messages": HELLO,
                         "anthropic_version": "vertex-2023-10-16"}
    assert call.headers["anthropic-beta"] == "token-counting-2024-11-01"
    assert fake.calls == []


async def test_anthropic_beta_header_forwarded(provider: VertexProvider, fake: FakeVertex) -> None:
    betas = ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]
    await provider.complete(chat(anthropic_beta=betas), TARGET)
    await collect(provider, chat(stream=True, anthropic_beta=betas))

    assert [c.headers["anthropic-beta"] for c in fake.calls] == [",".join(betas)] * 2
    assert all("anthropic_beta" not in c.body for c in fake.calls)


async def test_global_region(make_provider: Callable[..., VertexProvider], fake: FakeVertex) -> None:
    provider = make_provider(region="global")
    await provider.complete(chat(), TARGET)
    # The deployment's region wins over the provider's.
    await provider.complete(chat(), Target(deployment="eu", model=MODEL, region="europe-west1"))

    assert [c.path for c in fake.calls] == [
        f"/v1/projects/{PROJECT}/locations/global/publishers/anthropic/models/{MODEL}:rawPredict",
        f"/v1/projects/{PROJECT}/locations/europe-west1/publishers/anthropic/models/{MODEL}:rawPredict",
    ]


def test_vertex_hosts() -> None:
    assert vertex_base_url("global") == "https://aiplatform.googleapis.com"
    assert vertex_base_url("us-east5") == "https://us-east5-aiplatform.googleapis.com"
    assert vertex_base_url("eu") == "https://aiplatform.eu.rep.googleapis.com"
    assert publisher_model_url("https://x", "p", "global", "claude;a/b@1", "rawPredict") == (
        "https://x/v1/projects/p/locations/global/publishers/anthropic/models/claude%3Ba%2Fb@1:rawPredict")


class RecordingHttp(HttpClient):
    """Stands in for the network to see the URL the provider would call on Google's hosts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float,  # noqa: ASYNC109
                   params: Mapping[str, str] | None = None) -> UpstreamResponse:
        self.urls.append(url)
        return UpstreamResponse(200, {}, msgspec.json.encode(answer_message(MODEL)))


async def test_google_hosts_without_base_url() -> None:
    http = RecordingHttp()
    for region in ("global", "us-east5"):
        config = ProviderConfig(type="vertex", project="my-proj", region=region, api_key="static")
        await VertexProvider("vertex", config, http).complete(chat(), TARGET)

    assert http.urls == [
        f"https://aiplatform.googleapis.com/v1/projects/my-proj/locations/global/publishers/anthropic/models/"
        f"{MODEL}:rawPredict",
        f"https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/publishers/anthropic/"
        f"models/{MODEL}:rawPredict",
    ]


async def test_static_api_key_is_the_bearer(fake: FakeVertex, http: HttpClient) -> None:
    fake.issue_token("caller-minted-token")
    config = ProviderConfig(type="vertex", project=PROJECT, region="us-east5", base_url=fake.url + "/v1/",
                            api_key="caller-minted-token", headers={"x-goog-request-params": "a=b"})
    provider = VertexProvider("vertex", config, http)
    await provider.complete(chat(), TARGET)

    [call] = fake.calls
    assert call.path == f"{BASE_PATH}/{MODEL}:rawPredict"
    assert call.headers["Authorization"] == "Bearer caller-minted-token"
    assert call.headers["x-goog-request-params"] == "a=b"
    assert fake.grants == []


async def test_application_default_credentials(fake: FakeVertex, account: ServiceAccount, http: HttpClient,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # No credentials file and no project: ADC finds the account, and its project is used.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account.path))
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GCLOUD_PROJECT", raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_QUOTA_PROJECT", "billing-project")
    config = ProviderConfig(type="vertex", region="us-east5", base_url=fake.url)
    provider = VertexProvider("vertex", config, http)
    try:
        await provider.complete(chat(), TARGET)
    finally:
        await provider.aclose()

    [call] = fake.calls
    assert call.path == f"{BASE_PATH}/{MODEL}:rawPredict"
    assert call.headers["x-goog-user-project"] == "billing-project"
    assert fake.grants[0]["iss"] == account.email


async def test_missing_project_is_not_retryable(http: HttpClient) -> None:
    provider = VertexProvider("vertex", ProviderConfig(type="vertex", api_key="t"), http)
    with pytest.raises(UpstreamError) as err:
        await provider.complete(chat(), TARGET)
    assert err.value.retryable is False and "no project" in err.value.message
