"""Anthropic Messages API (api.anthropic.com or any server speaking it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from passerelle.canonical import ChatRequest, Dialect, MessageResponse, StreamEvent
from passerelle.config import ProviderConfig
from passerelle.dialects.anthropic.stream import events_from_sse
from passerelle.providers.base import Target
from passerelle.providers.http import HttpClient

DEFAULT_BASE_URL = "https://api.anthropic.com"


def to_anthropic_body(request: ChatRequest, model: str | None, *, stream: bool) -> dict[str, Any]:
    """The canonical body is already Anthropic-shaped: set the model and stream flag, and add
    the caller's unmodeled fields when the caller spoke Anthropic too."""
    body: dict[str, Any] = dict(request.body)
    if request.dialect == "anthropic":
        body.update(request.passthrough)
    else:
        request.drop_foreign("anthropic")
    if model is None:
        body.pop("model", None)
    else:
        body["model"] = model
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


def anthropic_headers(request: ChatRequest) -> dict[str, str]:
    headers = {"content-type": "application/json", "anthropic-version": request.anthropic_version}
    if request.anthropic_beta:
        headers["anthropic-beta"] = ",".join(request.anthropic_beta)
    if request.dialect == "anthropic":
        headers.update(request.passthrough_headers)
    return headers


class AnthropicProvider:
    dialect: Dialect = "anthropic"

    def __init__(self, name: str, config: ProviderConfig, http: HttpClient) -> None:
        self.name = name
        self._http = http
        self._url = (config.base_url or DEFAULT_BASE_URL).rstrip("/") + "/v1/messages"
        self._auth = {"x-api-key": config.api_key or ""}
        self._extra_headers = dict(config.headers)

    def _headers(self, request: ChatRequest) -> dict[str, str]:
        return {**anthropic_headers(request), **self._extra_headers, **self._auth}

    def _query(self, request: ChatRequest) -> dict[str, str] | None:
        return request.query if request.dialect == "anthropic" and request.query else None

    async def complete(self, request: ChatRequest, target: Target) -> MessageResponse:
        body = msgspec.json.encode(to_anthropic_body(request, target.model, stream=False))
        resp = await self._http.post(self._url, body, self._headers(request), target.timeout,
                                     self._query(request))
        message: MessageResponse = resp.json()
        return message

    async def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[StreamEvent]:
        body = msgspec.json.encode(to_anthropic_body(request, target.model, stream=True))
        chunks = await self._http.post_stream(self._url, body, self._headers(request), target.timeout,
                                              self._query(request))
        async with chunks:  # left after message_stop: the connection is kept for the next request
            async for event in events_from_sse(chunks):
                yield event

    async def count_tokens(self, request: ChatRequest, target: Target) -> int | None:
        body = to_anthropic_body(request, target.model, stream=False)
        for key in ("max_tokens", "stop_sequences", "temperature", "top_p", "top_k", "metadata", "stream"):
            body.pop(key, None)
        resp = await self._http.post(self._url + "/count_tokens", msgspec.json.encode(body),
                                     self._headers(request), target.timeout)
        count = resp.json().get("input_tokens")
        return int(count) if isinstance(count, int) else None

    async def aclose(self) -> None:
        return None
