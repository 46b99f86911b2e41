"""The app in-process: answers, headers, operations endpoints."""

from __future__ import annotations

import httpx

from tests.server.conftest import ADMIN
from tests.server.test_malformed_input import A_HEADERS, GOOD_A, GOOD_O, O_HEADERS


async def test_anthropic_message_echo(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=GOOD_A, headers={**A_HEADERS, "x-request-id": "req_mine"})
    assert response.status_code == 200
    body = response.json()
    assert body["content"] == [{"type": "text", "text": "hi"}] and body["model"] == "claude-sonnet-4-5"
    assert response.headers["request-id"] == "req_mine"
    assert response.headers["x-passerelle-deployment"] == "claude-sonnet-4-5#0:simulator"


async def test_openai_unmodeled_field_dropped_with_warning(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**GOOD_O, "prompt_cache_key": "abc"},
                                 headers=O_HEADERS)
    assert response.status_code == 200
    assert "prompt_cache_key" in response.headers["x-passerelle-warnings"]
    assert response.json()["choices"][0]["message"]["content"] == "hi"


async def test_anthropic_stream_event_sequence(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json={**GOOD_A, "stream": True,
                                                       "messages": [{"role": "user", "content": "a b"}]},
                                 headers=A_HEADERS)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event: ")]
    assert events == ["message_start", "content_block_start", "ping", "content_block_delta",
                      "content_block_delta", "content_block_stop", "message_delta", "message_stop"]


async def test_models_follow_the_caller_dialect(client: httpx.AsyncClient) -> None:
    anthropic_list = (await client.get("/v1/models", headers=A_HEADERS)).json()
    assert anthropic_list["data"][0]["type"] == "model" and "has_more" in anthropic_list
    openai_list = (await client.get("/v1/models", headers={"authorization": f"Bearer {ADMIN}"})).json()
    assert openai_list["object"] == "list" and openai_list["data"][0]["object"] == "model"
    one = (await client.get("/v1/models/claude-haiku-4-5", headers=A_HEADERS)).json()
    assert one["id"] == "claude-haiku-4-5"


async def test_operations(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.json() == {"status": "ok"} and health.headers["x-request-id"].startswith("req_")
    assert (await client.get("/ready")).json() == {"status": "ready", "store": "ok", "counters": "ok"}
    await client.post("/v1/chat/completions", json=GOOD_O, headers=O_HEADERS)
    metrics = (await client.get("/metrics")).text
    assert 'passerelle_requests_total{model="gpt-4o",route="chat_completions",status="200"}' in metrics
    assert "passerelle_request_duration_seconds_bucket" in metrics
    assert 'passerelle_tokens_total{deployment="gpt-4o#0:simulator",model="gpt-4o",type="output"}' in metrics


async def test_metrics_are_labelled_by_alias_not_caller_names(client: httpx.AsyncClient) -> None:
    # A caller-chosen model name served by a glob alias must not become a new time series.
    for name in ("random-name-1", "random-name-2"):
        ok = await client.post("/v1/chat/completions", json={**GOOD_O, "model": name}, headers=O_HEADERS)
        assert ok.status_code == 200
    metrics = (await client.get("/metrics")).text
    assert "random-name" not in metrics
    assert 'passerelle_requests_total{model="*",route="chat_completions",status="200"}' in metrics


def test_request_ids_are_unique_across_forked_workers() -> None:
    import os

    from passerelle.server.chat import new_request_id

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker process, as granian forks them
        os.write(write_fd, new_request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_fd, 100).decode()
    os.close(read_fd)
    os.close(write_fd)
    mine = new_request_id()
    assert child[:20] != mine[:20] and child.startswith("req_") and len(child) == len(mine)
    assert new_request_id() != mine


async def test_caller_leaving_mid_request_is_not_an_internal_error(app: object) -> None:
    from passerelle.observability import metrics

    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
                 "headers": [(b"x-api-key", ADMIN.encode()), (b"content-length", b"100")]}
        await app(scope, receive, send)  # type: ignore[operator]
    assert sent == []  # nothing written to a connection that is gone, and no exception raised
    assert 'route="messages",status="499"' in metrics.render()[0].decode()
