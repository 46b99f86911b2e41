"""OpenAI Chat Completions upstreams: api.openai.com, Azure OpenAI, and any compatible server
(vLLM, Ollama, llama.cpp, ...: set ``base_url``, the API key is optional).

Azure (``type: azure_openai``, ``base_url`` = the resource endpoint): the deployment named by the
deployment option ``deployment`` (default: the target model) is called with ``?api-version=``
(``api_version``, default ``AZURE_API_VERSION``) and an ``api-key`` header; ``api_version: v1``
selects Azure's v1 API (``/openai/v1/chat/completions``, model in the body, no version query).

The limit is sent as ``max_completion_tokens`` to api.openai.com and Azure and as ``max_tokens`` to
other servers (not all of them know the newer name); the deployment option ``max_tokens_field``
overrides it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit

import msgspec

from passerelle.canonical import ChatRequest, MessageResponse, StreamEvent
from passerelle.config import ProviderConfig
from passerelle.dialects.openai import events_from_openai_sse, from_openai_response, to_openai_request
from passerelle.providers.base import Target
from passerelle.providers.http import HttpClient

DEFAULT_BASE_URL = "https://api.openai.com/v1"
AZURE_API_VERSION = "2024-10-21"  # the newest GA version of Azure's dated data-plane API


async def _aclose(iterator: object) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class OpenAIProvider:
    dialect = "openai"

    def __init__(self, name: str, config: ProviderConfig, http: HttpClient) -> None:
        self.name = name
        self._http = http
        self._azure = config.type == "azure_openai"
        if self._azure and not config.base_url:
            raise ValueError(f"provider '{name}': azure_openai needs base_url (the resource endpoint)")
        self._base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._api_version = config.api_version or AZURE_API_VERSION
        self._deployments = self._azure and self._api_version != "v1"
        auth: dict[str, str] = {}
        if self._azure:
            if config.api_key:
                auth["api-key"] = config.api_key
        else:
            if config.api_key:
                auth["authorization"] = f"Bearer {config.api_key}"
            if config.organization:
                auth["openai-organization"] = config.organization
        self._headers = {"content-type": "application/json", **config.headers, **auth}
        official = self._azure or urlsplit(self._base).hostname == "api.openai.com"
        self._max_tokens_field = "max_completion_tokens" if official else "max_tokens"

    def _url(self, target: Target) -> str:
        if not self._azure:
            return self._base + "/chat/completions"
        if not self._deployments:
            return self._base + "/openai/v1/chat/completions"
        deployment = str(target.options.get("deployment") or target.model)
        return f"{self._base}/openai/deployments/{quote(deployment, safe='')}/chat/completions"

    def _query(self, request: ChatRequest) -> dict[str, str] | None:
        query = dict(request.query) if request.dialect == "openai" else {}
        if self._deployments:
            query["api-version"] = self._api_version
        return query or None

    def _request_headers(self, request: ChatRequest) -> dict[str, str]:
        if request.dialect == "openai" and request.passthrough_headers:
            return {**request.passthrough_headers, **self._headers}
        return self._headers

    def _body(self, request: ChatRequest, target: Target, *, stream: bool) -> bytes:
        field = str(target.options.get("max_tokens_field") or self._max_tokens_field)
        return msgspec.json.encode(to_openai_request(request, target.model, stream=stream, max_tokens_field=field))

    async def complete(self, request: ChatRequest, target: Target) -> MessageResponse:
        resp = await self._http.post(self._url(target), self._body(request, target, stream=False),
                                     self._request_headers(request), target.timeout, self._query(request))
        return from_openai_response(resp.json())

    async def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[StreamEvent]:
        chunks = await self._http.post_stream(self._url(target), self._body(request, target, stream=True),
                                              self._request_headers(request), target.timeout,
                                              self._query(request))
        events = events_from_openai_sse(chunks, model=target.model)
        async with chunks:  # left after [DONE]: the connection is kept for the next request
            try:
                async for event in events:
                    yield event
            finally:
                await _aclose(events)  # closed now, not when the garbage collector runs

    async def count_tokens(self, request: ChatRequest, target: Target) -> int | None:
        return None  # OpenAI has no token counting endpoint for chat completions

    async def aclose(self) -> None:
        return None
