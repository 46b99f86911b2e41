"""Amazon Bedrock: InvokeModel (Claude's own Anthropic body) or Converse, per deployment.

Requests are signed with SigV4 by botocore (or carry a Bedrock API key as a bearer token);
streamed answers are AWS event-stream frames, decoded by botocore's EventStreamBuffer.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, cast
from urllib.parse import quote

import botocore.session
import msgspec
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.eventstream import EventStreamBuffer, ParserError
from botocore.exceptions import BotoCoreError
from yarl import URL

from passerelle.canonical import ChatRequest, Dialect, MessageResponse, StreamEvent
from passerelle.config import ProviderConfig
from passerelle.dialects.bedrock.converse import (
    events_from_converse_stream,
    from_converse_response,
    is_claude,
    to_converse_request,
)
from passerelle.errors import ErrorKind, UpstreamError
from passerelle.providers.anthropic import to_anthropic_body
from passerelle.providers.base import Target
from passerelle.providers.http import ChunkStream, HttpClient, UpstreamResponse

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
AwsEvent = tuple[str, dict[str, Any]]  # (":event-type", decoded JSON payload)
_JSON = {"content-type": "application/json"}
_STREAM_ERRORS = {  # event-stream exception type -> (kind, retryable)
    "throttlingException": (ErrorKind.RATE_LIMIT, True),
    "serviceUnavailableException": (ErrorKind.UNAVAILABLE, True),
    "internalServerException": (ErrorKind.BAD_GATEWAY, True),
    "modelStreamErrorException": (ErrorKind.BAD_GATEWAY, True),
    "modelTimeoutException": (ErrorKind.TIMEOUT, True),
    "validationException": (ErrorKind.INVALID_REQUEST, False),
    # Anthropic error events inside an InvokeModel stream chunk.
    "overloaded_error": (ErrorKind.OVERLOADED, True),
    "rate_limit_error": (ErrorKind.RATE_LIMIT, True),
    "invalid_request_error": (ErrorKind.INVALID_REQUEST, False),
}
# Cross-region inference profile prefixes: CountTokens wants the foundation model id itself.
_PROFILE_PREFIX = re.compile(r"^(?:us|us-gov|eu|apac|jp|au|ca|global)\.(?=[a-z0-9-]+\.)")


def model_path(model: str, operation: str) -> str:
    # botocore quotes the (non-greedy) modelId label with safe="-._~": an ARN's ":" and "/" are escaped.
    return f"/model/{quote(model, safe='-._~')}/{operation}"


def invoke_body(request: ChatRequest) -> dict[str, Any]:
    """Claude's native body as Bedrock's InvokeModel takes it: no model, no stream flag, the
    Bedrock API version, and beta flags in the body instead of a header."""
    body = to_anthropic_body(request, None, stream=False)
    body["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
    if request.anthropic_beta:
        body["anthropic_beta"] = list(request.anthropic_beta)
    return body


def stream_error(code: str, payload: bytes) -> UpstreamError:
    """The gateway's error for an event-stream exception (e.g. throttlingException)."""
    code = code[:1].lower() + code[1:]
    try:
        data = msgspec.json.decode(payload) if payload else {}
    except msgspec.DecodeError:
        data = {}
    message = str(data.get("message") or data.get("Message") or code) if isinstance(data, dict) else code
    kind, retryable = _STREAM_ERRORS.get(code, (ErrorKind.BAD_GATEWAY, True))
    return UpstreamError(kind, f"Bedrock stream error {code}: {message}", retryable=retryable)


def _bedrock_error(exc: UpstreamError) -> UpstreamError:
    # 424 is ModelErrorException: the model failed this once, another try may well succeed.
    if exc.upstream_status == 424:
        return UpstreamError(ErrorKind.BAD_GATEWAY, exc.message, retryable=True, upstream_status=424)
    return exc


async def aws_events(chunks: AsyncIterator[bytes]) -> AsyncGenerator[AwsEvent, None]:
    """``(event type, JSON payload)`` for each frame of an AWS event-stream body; exception and
    error frames raise UpstreamError."""
    buffer = EventStreamBuffer()
    try:
        async for chunk in chunks:
            buffer.add_data(chunk)
            try:
                messages = list(buffer)
            except ParserError as exc:
                raise UpstreamError(ErrorKind.BAD_GATEWAY, f"Bedrock sent a malformed event-stream frame: "
                                    f"{exc}", retryable=True) from None
            for message in messages:
                headers, payload = message.headers, message.payload
                kind = headers.get(":message-type")
                if kind == "exception":
                    raise stream_error(str(headers.get(":exception-type", "")), payload)
                if kind == "error":
                    raise stream_error(str(headers.get(":error-code", "")),
                                       msgspec.json.encode({"message": headers.get(":error-message", "")}))
                try:
                    data = msgspec.json.decode(payload) if payload else {}
                except msgspec.DecodeError:
                    raise UpstreamError(ErrorKind.BAD_GATEWAY, "Bedrock sent a malformed stream event",
                                        retryable=True) from None
                yield str(headers.get(":event-type", "")), data if isinstance(data, dict) else {}
    except UpstreamError as exc:
        raise _bedrock_error(exc) from None
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()


async def _invoke_events(events: AsyncIterator[AwsEvent]) -> AsyncGenerator[StreamEvent, None]:
    """Canonical events from InvokeModelWithResponseStream: each ``chunk`` holds one Anthropic
    stream event, base64-encoded."""
    async for kind, data in events:
        if kind != "chunk":
            continue
        try:
            event = msgspec.json.decode(base64.b64decode(data.get("bytes", "")))
        except (msgspec.DecodeError, ValueError):
            raise UpstreamError(ErrorKind.BAD_GATEWAY, "Bedrock sent a malformed stream chunk",
                                retryable=True) from None
        etype = event.get("type") if isinstance(event, dict) else None
        if etype == "error":
            error = event.get("error") or {}
            raise stream_error(str(error.get("type", "")), msgspec.json.encode(error))
        if etype == "message_stop":
            # Drop Bedrock's amazon-bedrock-invocationMetrics: not part of the canonical event.
            yield {"type": "message_stop"}
            return
        if etype is not None and etype != "ping":
            yield event
    raise UpstreamError(ErrorKind.BAD_GATEWAY, "Bedrock stream ended before message_stop", retryable=True)


class BedrockProvider:
    dialect: Dialect = "anthropic"

    def __init__(self, name: str, config: ProviderConfig, http: HttpClient) -> None:
        self.name = name
        self._http = http
        self._base_url = config.base_url.rstrip("/") if config.base_url else None
        self._region = config.region
        self._profile = config.profile
        self._bearer = config.api_key  # a Bedrock API key replaces SigV4
        self._extra_headers = dict(config.headers)
        self._credentials: Any = None
        if config.access_key_id and config.secret_access_key:
            self._credentials = Credentials(config.access_key_id, config.secret_access_key,
                                            config.session_token)
        self._session_loaded = False
        self._session_region: str | None = None
        self._lock = asyncio.Lock()

    # -- credentials and signing

    def _load_session(self) -> None:
        """botocore's default chain (env, profile files, SSO, container, IMDS): may do blocking
        I/O, so it runs in a thread, once."""
        try:
            session = botocore.session.Session(profile=self._profile)
            # botocore reads AWS_DEFAULT_REGION and the profile; newer SDKs also honour AWS_REGION.
            self._session_region = session.get_config_variable("region") or os.environ.get("AWS_REGION")
            if self._credentials is None and not self._bearer:
                self._credentials = session.get_credentials()
        except BotoCoreError as exc:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"AWS configuration error: {exc}",
                                retryable=False) from None

    async def _ensure_session(self) -> None:
        if not self._session_loaded:
            async with self._lock:
                if not self._session_loaded:
                    await asyncio.to_thread(self._load_session)
                    self._session_loaded = True

    async def _region_for(self, target: Target) -> str:
        region = target.region or self._region
        if not region:
            await self._ensure_session()
            region = self._session_region
        if not region:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, "no AWS region: set region on the Bedrock provider "
                                "or deployment", retryable=False)
        return region

    async def _frozen_credentials(self) -> Any:
        if self._credentials is None:
            await self._ensure_session()
        creds = self._credentials
        if creds is None:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, "no AWS credentials: set access_key_id and "
                                "secret_access_key or configure the AWS credential chain", retryable=False)
        if isinstance(creds, RefreshableCredentials) and creds.refresh_needed():
            # Only botocore knows when a refresh is due; the refresh itself may call STS or IMDS.
            return await asyncio.to_thread(creds.get_frozen_credentials)
        return creds.get_frozen_credentials()

    async def _signed(self, target: Target, operation: str, body: bytes,
                      headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        # A bearer key sent to a configured base URL is the one case with no use for a region.
        region = "" if self._bearer and self._base_url else await self._region_for(target)
        base = self._base_url or f"https://bedrock-runtime.{region}.amazonaws.com"
        url = base + model_path(target.model, operation)
        headers = {**self._extra_headers, **headers}
        if self._bearer:
            return url, {**headers, "authorization": f"Bearer {self._bearer}"}
        aws_request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(await self._frozen_credentials(), "bedrock", region).add_auth(aws_request)
        return url, dict(aws_request.headers.items())

    # -- calls

    async def _post(self, target: Target, operation: str, body: bytes,
                    headers: dict[str, str] = _JSON) -> UpstreamResponse:
        url, signed = await self._signed(target, operation, body, headers)
        try:
            return await self._http.post(_wire_url(url), body, signed, target.timeout)
        except UpstreamError as exc:
            raise _bedrock_error(exc) from None

    async def _chunks(self, target: Target, operation: str, body: bytes, headers: dict[str, str]) -> ChunkStream:
        url, signed = await self._signed(target, operation, body, headers)
        try:
            return await self._http.post_stream(_wire_url(url), body, signed, target.timeout)
        except UpstreamError as exc:
            raise _bedrock_error(exc) from None

    @staticmethod
    def api(target: Target) -> str:
        api = target.options.get("api")
        if api in ("invoke", "converse"):
            return str(api)
        if api is not None:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"deployment {target.deployment}: Bedrock option api "
                                f"must be 'invoke' or 'converse', not {api!r}", retryable=False)
        return "invoke" if is_claude(target.model) else "converse"

    def _drop_headers(self, request: ChatRequest) -> None:
        if request.dialect == "anthropic":
            for key in request.passthrough_headers:
                request.warn(f"dropped header '{key}': Bedrock does not take it")
            for key in request.query:
                request.warn(f"dropped query parameter '{key}': Bedrock does not take it")

    async def complete(self, request: ChatRequest, target: Target) -> MessageResponse:
        self._drop_headers(request)
        if self.api(target) == "invoke":
            resp = await self._post(target, "invoke", msgspec.json.encode(invoke_body(request)),
                                    {**_JSON, "accept": "application/json"})
            message = resp.json()
            if not isinstance(message, dict) or message.get("type") != "message":
                raise UpstreamError(ErrorKind.BAD_GATEWAY, "Bedrock sent a malformed InvokeModel answer",
                                    retryable=True)
            return cast(MessageResponse, message)
        body = msgspec.json.encode(to_converse_request(request, target.model))
        return from_converse_response((await self._post(target, "converse", body)).json(), target.model)

    async def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[StreamEvent]:
        self._drop_headers(request)
        if self.api(target) == "invoke":
            body = msgspec.json.encode(invoke_body(request))
            chunks = await self._chunks(target, "invoke-with-response-stream", body,
                                        {**_JSON, "x-amzn-bedrock-accept": "application/json"})
            events = aws_events(chunks)
            canonical = _invoke_events(events)
        else:
            body = msgspec.json.encode(to_converse_request(request, target.model))
            chunks = await self._chunks(target, "converse-stream", body, _JSON)
            events = aws_events(chunks)
            canonical = events_from_converse_stream(events, target.model)
        # ``chunks`` innermost, so left first: after the last event it keeps the connection before ``aws_events``
        # is closed (which closes its chunks, a no-op by then).
        async with aclosing(events), aclosing(canonical), chunks:
            async for event in canonical:
                yield event

    async def count_tokens(self, request: ChatRequest, target: Target) -> int | None:
        if self.api(target) == "invoke":
            body = base64.b64encode(msgspec.json.encode(invoke_body(request))).decode()
            payload: dict[str, Any] = {"input": {"invokeModel": {"body": body}}}
        else:
            converse = to_converse_request(request, target.model)
            payload = {"input": {"converse": {key: converse[key] for key in (
                "messages", "system", "toolConfig", "additionalModelRequestFields") if key in converse}}}
        base = dataclasses.replace(target, model=_PROFILE_PREFIX.sub("", target.model))
        resp = await self._post(base, "count-tokens", msgspec.json.encode(payload))
        data = resp.json()
        count = data.get("inputTokens") if isinstance(data, dict) else None
        return count if isinstance(count, int) else None

    async def aclose(self) -> None:
        return None


def _wire_url(url: str) -> URL:
    """The URL exactly as signed: aiohttp would otherwise re-quote the path and turn an ARN's
    %3A back into ":", so the signature would no longer match what AWS receives."""
    return URL(url, encoded=True)
