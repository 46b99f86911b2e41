"""Each inbound dialect as one object: parse a request, render an answer, a stream, an error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import msgspec

from passerelle.canonical import ChatRequest, Dialect, MessageResponse, StreamEvent
from passerelle.dialects.anthropic.errors import anthropic_error_body, anthropic_error_event
from passerelle.dialects.anthropic.request import chat_request_from_anthropic, split_beta
from passerelle.dialects.anthropic.response import to_anthropic_response
from passerelle.dialects.anthropic.stream import PING, encode_event
from passerelle.dialects.openai import (
    OpenAIStreamEncoder,
    chat_request_from_openai,
    openai_error_body,
    to_openai_response,
)
from passerelle.dialects.ratelimit_headers import anthropic_ratelimit_headers, openai_ratelimit_headers
from passerelle.errors import GatewayError
from passerelle.stores.base import Level


class StreamEncoder(Protocol):
    def encode(self, event: StreamEvent) -> bytes: ...

    def done(self) -> bytes: ...

    def error(self, err: GatewayError) -> bytes: ...


class Codec(Protocol):
    dialect: Dialect

    def parse(self, body: Any, request_id: str, headers: Mapping[str, str],
              query: Mapping[str, str]) -> ChatRequest: ...

    def response(self, message: MessageResponse, request: ChatRequest) -> bytes: ...

    def stream_encoder(self, request: ChatRequest) -> StreamEncoder: ...

    def error(self, err: GatewayError, request_id: str) -> bytes: ...

    def rate_limit_headers(self, requests: Level | None, tokens: Level | None) -> dict[str, str]: ...


class AnthropicStreamEncoder:
    """Anthropic SSE, with the ``ping`` real clients expect after the first block starts."""

    __slots__ = ("_model", "_pinged", "_request_id")

    def __init__(self, request: ChatRequest) -> None:
        self._model = request.model
        self._request_id = request.request_id
        self._pinged = False

    def encode(self, event: StreamEvent) -> bytes:
        kind = event["type"]
        if kind == "message_start":
            message = {k: v for k, v in event["message"].items() if not k.startswith("_")}
            message["model"] = self._model
            event = {"type": "message_start", "message": message}
        elif kind == "content_block_delta" and "_openai" in event["delta"]:
            # Upstream-only facts (logprobs) have no place in the Anthropic wire format.
            event = {**event, "delta": {k: v for k, v in event["delta"].items() if k != "_openai"}}
        data = encode_event(event)
        if kind == "content_block_start" and not self._pinged:
            self._pinged = True
            return data + PING
        return data

    def done(self) -> bytes:
        return b""

    def error(self, err: GatewayError) -> bytes:
        return anthropic_error_event(err, self._request_id)


class AnthropicCodec:
    dialect: Dialect = "anthropic"

    def parse(self, body: Any, request_id: str, headers: Mapping[str, str],
              query: Mapping[str, str]) -> ChatRequest:
        beta = split_beta([headers["anthropic-beta"]]) if "anthropic-beta" in headers else []
        return chat_request_from_anthropic(body, request_id=request_id, headers=headers, query=query, beta=beta)

    def parse_count(self, body: Any, request_id: str, headers: Mapping[str, str]) -> ChatRequest:
        beta = split_beta([headers["anthropic-beta"]]) if "anthropic-beta" in headers else []
        return chat_request_from_anthropic(body, request_id=request_id, headers=headers, count_only=True,
                                           beta=beta)

    def response(self, message: MessageResponse, request: ChatRequest) -> bytes:
        return msgspec.json.encode(to_anthropic_response(message, request.model))

    def stream_encoder(self, request: ChatRequest) -> StreamEncoder:
        return AnthropicStreamEncoder(request)

    def error(self, err: GatewayError, request_id: str) -> bytes:
        return anthropic_error_body(err, request_id)

    def rate_limit_headers(self, requests: Level | None, tokens: Level | None) -> dict[str, str]:
        return anthropic_ratelimit_headers(requests, tokens)


class OpenAICodec:
    dialect: Dialect = "openai"

    def parse(self, body: Any, request_id: str, headers: Mapping[str, str],
              query: Mapping[str, str]) -> ChatRequest:
        request = chat_request_from_openai(body, request_id=request_id, headers=headers)
        request.query = dict(query)
        return request

    def response(self, message: MessageResponse, request: ChatRequest) -> bytes:
        return msgspec.json.encode(to_openai_response(message, request=request))

    def stream_encoder(self, request: ChatRequest) -> StreamEncoder:
        return OpenAIStreamEncoder(request)

    def error(self, err: GatewayError, request_id: str) -> bytes:
        return openai_error_body(err)

    def rate_limit_headers(self, requests: Level | None, tokens: Level | None) -> dict[str, str]:
        return openai_ratelimit_headers(requests, tokens)


ANTHROPIC = AnthropicCodec()
OPENAI = OpenAICodec()


def codec_for_headers(headers: Mapping[str, str]) -> Codec:
    """Guess the caller's dialect where the path does not say it (models, unknown routes)."""
    if "anthropic-version" in headers or "x-api-key" in headers:
        return ANTHROPIC
    return OPENAI
