"""Malformed input of every kind gets a 4xx in the caller's own envelope, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server.conftest import ADMIN

A_HEADERS = {"x-api-key": ADMIN, "anthropic-version": "2023-06-01", "content-type": "application/json"}
O_HEADERS = {"authorization": f"Bearer {ADMIN}", "content-type": "application/json"}
GOOD_A = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
GOOD_O = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

RAW_BODIES: list[bytes] = [b"", b"{", b"null", b"[]", b'"text"', b"42", b"\xff\xfe", b'{"model": }', b"{}" * 3]

ANTHROPIC_BAD: list[Any] = [
    {}, {"model": "m"}, {**GOOD_A, "messages": None}, {**GOOD_A, "messages": [{}]},
    {**GOOD_A, "messages": [{"role": "user", "content": 7}]}, {**GOOD_A, "max_tokens": "10"},
    {**GOOD_A, "max_tokens": -1}, {**GOOD_A, "temperature": "hot"}, {**GOOD_A, "system": 3},
    {**GOOD_A, "system": [{"type": "text"}]}, {**GOOD_A, "tools": {"name": "t"}},
    {**GOOD_A, "tool_choice": "auto"}, {**GOOD_A, "stop_sequences": [1]}, {**GOOD_A, "stream": 1},
    {**GOOD_A, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
    {**GOOD_A, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]},
    {**GOOD_A, "metadata": []}, {**GOOD_A, "top_p": 2},
]

OPENAI_BAD: list[Any] = [
    {}, {"model": "m"}, {**GOOD_O, "messages": "hi"}, {**GOOD_O, "messages": [{"role": "wizard", "content": "x"}]},
    {**GOOD_O, "messages": [{"role": "user"}]}, {**GOOD_O, "max_tokens": "many"}, {**GOOD_O, "n": 3},
    {**GOOD_O, "temperature": 5}, {**GOOD_O, "stop": 5}, {**GOOD_O, "tools": [{"type": "function"}]},
    {**GOOD_O, "tool_choice": "sometimes"},
    {**GOOD_O, "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                                                  "function": {"name": "f", "arguments": "{"}}]}]},
    {**GOOD_O, "messages": [{"role": "tool", "content": "x"}]},
    {**GOOD_O, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]},
    {**GOOD_O, "response_format": {"type": "yaml"}}, {**GOOD_O, "stream": "yes"},
]


def check_anthropic(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    assert body["error"]["message"] and body["request_id"] == response.headers["request-id"]


def check_openai(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("raw", RAW_BODIES)
async def test_raw_garbage(client: httpx.AsyncClient, raw: bytes) -> None:
    check_anthropic(await client.post("/v1/messages", content=raw, headers=A_HEADERS))
    check_openai(await client.post("/v1/chat/completions", content=raw, headers=O_HEADERS))


@pytest.mark.parametrize("body", ANTHROPIC_BAD)
async def test_anthropic_malformed(client: httpx.AsyncClient, body: Any) -> None:
    check_anthropic(await client.post("/v1/messages", json=body, headers=A_HEADERS))


@pytest.mark.parametrize("body", OPENAI_BAD)
async def test_openai_malformed(client: httpx.AsyncClient, body: Any) -> None:
    check_openai(await client.post("/v1/chat/completions", json=body, headers=O_HEADERS))


async def test_body_too_large(client: httpx.AsyncClient) -> None:
    big = {**GOOD_A, "messages": [{"role": "user", "content": "x" * 70_000}]}
    check_anthropic(await client.post("/v1/messages", json=big, headers=A_HEADERS), 413)
    check_openai(await client.post("/v1/chat/completions", json={**GOOD_O, "messages": big["messages"]},
                                   headers=O_HEADERS), 413)


async def test_authentication(client: httpx.AsyncClient) -> None:
    check_anthropic(await client.post("/v1/messages", json=GOOD_A, headers={"anthropic-version": "2023-06-01"}), 401)
    check_anthropic(await client.post("/v1/messages", json=GOOD_A, headers={**A_HEADERS, "x-api-key": "nope"}), 401)
    check_openai(await client.post("/v1/chat/completions", json=GOOD_O,
                                   headers={"authorization": "Bearer wrong"}), 401)
    check_openai(await client.post("/v1/chat/completions", json=GOOD_O, headers={"authorization": "Basic x"}), 401)


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    check_openai(await client.post("/v1/embeddings", json={}, headers=O_HEADERS), 404)
    check_anthropic(await client.get("/v1/messages", headers=A_HEADERS), 405)


async def test_unknown_model_is_404_in_caller_format(tmp_path: Any) -> None:
    from passerelle.config import AliasConfig, Config, DeploymentConfig, ProviderConfig
    from passerelle.pipeline.auth import digest
    from passerelle.server.app import create_app

    config = Config(providers={"sim": ProviderConfig(type="simulator")},
                    models={"only": AliasConfig(deployments=[DeploymentConfig(provider="sim")])})
    app = create_app(config=config, data_dir=tmp_path, admin_key_sha256=digest(ADMIN))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        check_anthropic(await client.post("/v1/messages", json=GOOD_A, headers=A_HEADERS), 404)
        response = await client.post("/v1/chat/completions", json=GOOD_O, headers=O_HEADERS)
        check_openai(response, 404)
        assert response.json()["error"]["code"] == "model_not_found"
    assert app.gateway is not None
    await app.gateway.aclose()


@pytest.mark.parametrize("value", ["soon", "0", "-3", "99999"])
async def test_bad_timeout_header(client: httpx.AsyncClient, value: str) -> None:
    response = await client.post("/v1/messages", json=GOOD_A, headers={**A_HEADERS, "x-passerelle-timeout": value})
    check_anthropic(response)
    assert "x-passerelle-timeout" in response.json()["error"]["message"]
