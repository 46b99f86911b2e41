"""Claude on Google Vertex AI: the Anthropic Messages API behind Vertex's rawPredict endpoints.

The wire body is Anthropic's, without "model" (it is in the URL) and with Vertex's own
"anthropic_version"; answers and streams are plain Anthropic JSON and SSE.  Gemini's
generateContent is not supported here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC
from typing import Any
from urllib.parse import quote

import msgspec
from google.auth import exceptions as google_exceptions

from passerelle.canonical import ChatRequest, MessageResponse, StreamEvent
from passerelle.config import ProviderConfig
from passerelle.dialects.anthropic.stream import events_from_sse
from passerelle.errors import ErrorKind, UpstreamError
from passerelle.providers.anthropic import anthropic_headers, to_anthropic_body
from passerelle.providers.base import Target
from passerelle.providers.http import HttpClient, UpstreamResponse

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_REGION = "global"
# Renew a token this long before it expires, so no request leaves with a token about to die.
REFRESH_MARGIN = 300.0
# google-auth leaves ``expiry`` unset for tokens it considers everlasting; renew them anyway.
_UNKNOWN_LIFETIME = 3000.0
_COUNT_TOKENS_DROP = ("max_tokens", "stop_sequences", "temperature", "top_p", "top_k", "metadata", "stream")


def vertex_base_url(region: str) -> str:
    """The Vertex AI host for a location (the same choice as Anthropic's Vertex SDK)."""
    if region == "global":
        return "https://aiplatform.googleapis.com"
    if region in ("us", "eu"):  # multi-region endpoints
        return f"https://aiplatform.{region}.rep.googleapis.com"
    return f"https://{region}-aiplatform.googleapis.com"


def _segment(value: str) -> str:
    # One path segment: '/', ';', '?' and ':' must not reach the URL raw; '@' (model versions) may.
    return quote(value, safe="@")


def publisher_model_url(base_url: str, project: str, region: str, model: str, method: str) -> str:
    """``{base}/v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:{method}``."""
    return (f"{base_url}/v1/projects/{_segment(project)}/locations/{_segment(region)}"
            f"/publishers/anthropic/models/{_segment(model)}:{method}")


def _google_auth_error(exc: Exception) -> UpstreamError:
    """google-auth failures become the gateway's: the upstream cannot be reached with them."""
    if isinstance(exc, google_exceptions.RefreshError):
        return UpstreamError(ErrorKind.BAD_GATEWAY, f"Google token refresh failed: {exc}",
                             retryable=bool(exc.retryable))
    if isinstance(exc, google_exceptions.TransportError):
        return UpstreamError(ErrorKind.BAD_GATEWAY, f"Google token endpoint unreachable: {exc}",
                             retryable=True)
    return UpstreamError(ErrorKind.BAD_GATEWAY, f"Google credentials unavailable: {exc}", retryable=False)


def _consume(future: asyncio.Future[Any]) -> None:
    # A refresh whose waiter was cancelled may fail unobserved; that is not worth a log line.
    if not future.cancelled():
        future.exception()


class GoogleTokenSource:
    """OAuth access tokens from google-auth, cached and renewed ``margin`` seconds before expiry.

    Credentials come from a service account JSON file when ``credentials_file`` is given, else
    from Application Default Credentials (``google.auth.default()``).  google-auth loads and
    refreshes with blocking I/O (``requests``), so both run in a worker thread; a lock makes
    concurrent requests wait for one shared refresh instead of each starting its own.
    """

    def __init__(
        self,
        credentials_file: str | None = None,
        *,
        scopes: Sequence[str] = (CLOUD_PLATFORM_SCOPE,),
        margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._file = credentials_file
        self._scopes = list(scopes)
        self._margin = margin
        self._clock = clock
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Future[tuple[str, float]] | None = None
        self._credentials: Any = None
        self._transport: Any = None
        self._token: str | None = None
        self._expires_at = 0.0
        self.project: str | None = None  # the credentials' project, known after the first refresh
        self.quota_project: str | None = None

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock() < self._expires_at - self._margin:
            return self._token
        return None

    async def token(self) -> str:
        cached = self._fresh()
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._fresh()  # another request may have refreshed while this one waited
            if cached is not None:
                return cached
            # Shielded: a caller that goes away mid-refresh leaves the thread's work to the next
            # caller rather than starting a second refresh beside it.
            if self._refreshing is None:
                self._refreshing = asyncio.ensure_future(asyncio.to_thread(self._refresh))
                self._refreshing.add_done_callback(_consume)
            try:
                token, self._expires_at = await asyncio.shield(self._refreshing)
            finally:
                if self._refreshing.done():
                    self._refreshing = None
            self._token = token
            return token

    def invalidate(self) -> None:
        """Forget the cached token (the upstream rejected it), so the next call fetches one."""
        self._token = None

    def _refresh(self) -> tuple[str, float]:
        """Load the credentials if needed and fetch a token; runs in a worker thread."""
        try:
            from google.auth.transport.requests import Request
        except ImportError as exc:  # google-auth's requests transport needs the `requests` package
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"Vertex auth needs the 'requests' package: {exc}",
                                retryable=False) from None
        try:
            if self._credentials is None:
                self._credentials = self._load()
            if self._transport is None:
                self._transport = Request()
            self._credentials.refresh(self._transport)
        except (google_exceptions.GoogleAuthError, OSError, ValueError, KeyError) as exc:
            raise _google_auth_error(exc) from None
        token = self._credentials.token
        if not isinstance(token, str) or not token:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, "Google token refresh returned no token",
                                retryable=True)
        expiry = self._credentials.expiry  # naive UTC datetime, or None
        expires_at = (expiry.replace(tzinfo=UTC).timestamp() if expiry is not None
                      else self._clock() + _UNKNOWN_LIFETIME)
        return token, expires_at

    def _load(self) -> Any:
        import google.auth
        from google.oauth2 import service_account

        if self._file:
            credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                self._file, scopes=self._scopes)
            project = credentials.project_id
        else:
            credentials, project = google.auth.default(scopes=self._scopes)
        self.project = project
        self.quota_project = getattr(credentials, "quota_project_id", None)
        return credentials

    def close(self) -> None:
        if self._transport is not None:
            self._transport.session.close()
            self._transport = None


class VertexProvider:
    """Anthropic's Claude models served by Google Vertex AI.

    Authentication: ``config.api_key``, when set, is used as a static OAuth bearer token (for a
    caller that mints its own tokens, e.g. ``gcloud auth print-access-token``, and for tests);
    otherwise tokens come from the service account JSON named by ``config.credentials_file``,
    else from Application Default Credentials.  Project: ``config.project``, else the one the
    credentials name.  Location: the deployment's region, else ``config.region``, else
    "global".  ``config.base_url`` replaces the location's host (give it without "/v1").
    """

    dialect = "anthropic"

    def __init__(self, name: str, config: ProviderConfig, http: HttpClient) -> None:
        self.name = name
        self._http = http
        self._project = config.project
        self._region = config.region
        base_url = config.base_url.rstrip("/").removesuffix("/v1") if config.base_url else None
        self._base_url = base_url
        self._extra_headers = dict(config.headers)
        self._static_token = config.api_key
        self.tokens: GoogleTokenSource | None = (
            None if config.api_key else GoogleTokenSource(config.credentials_file))

    def _url(self, target: Target, model: str, method: str) -> str:
        region = target.region or self._region or DEFAULT_REGION
        project = self._project or (self.tokens.project if self.tokens else None)
        if not project:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"vertex provider '{self.name}' has no project: set "
                                "'project' in its configuration", retryable=False)
        return publisher_model_url(self._base_url or vertex_base_url(region), project, region, model, method)

    async def _headers(self, request: ChatRequest) -> dict[str, str]:
        headers = anthropic_headers(request)
        headers.pop("anthropic-version", None)  # Vertex takes the version in the body
        headers.update(self._extra_headers)
        if self.tokens is None:
            headers["authorization"] = f"Bearer {self._static_token}"
        else:
            headers["authorization"] = f"Bearer {await self.tokens.token()}"
            if self.tokens.quota_project:
                headers["x-goog-user-project"] = self.tokens.quota_project
        return headers

    def _body(self, request: ChatRequest, model: str | None, *, stream: bool) -> dict[str, Any]:
        for key in request.query:
            if key != "beta":  # the Anthropic SDK's "?beta=true" means nothing to Vertex
                request.warn(f"dropped query parameter '{key}' for a vertex upstream")
        body = to_anthropic_body(request, model, stream=stream)
        body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        return body

    def _rejected(self, exc: UpstreamError) -> UpstreamError:
        """A 401 means the token itself was refused (revoked, or expired early): drop it, and
        let the router retry with a fresh one unless the token is a static one."""
        if exc.upstream_status == 401 and self.tokens is not None:
            self.tokens.invalidate()
            exc.retryable = True
        return exc

    async def _post(self, request: ChatRequest, target: Target, model: str, method: str,
                    body: dict[str, Any]) -> UpstreamResponse:
        headers = await self._headers(request)  # first: it may learn the project from the credentials
        url = self._url(target, model, method)
        try:
            return await self._http.post(url, msgspec.json.encode(body), headers, target.timeout)
        except UpstreamError as exc:
            raise self._rejected(exc) from None

    async def complete(self, request: ChatRequest, target: Target) -> MessageResponse:
        body = self._body(request, None, stream=False)
        resp = await self._post(request, target, target.model, "rawPredict", body)
        message: MessageResponse = resp.json()
        return message

    async def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[StreamEvent]:
        body = self._body(request, None, stream=True)
        headers = await self._headers(request)
        url = self._url(target, target.model, "streamRawPredict")
        try:
            chunks = await self._http.post_stream(url, msgspec.json.encode(body), headers, target.timeout)
            async with chunks:  # left after message_stop: the connection is kept for the next request
                async for event in events_from_sse(chunks):
                    yield event
        except UpstreamError as exc:
            raise self._rejected(exc) from None

    async def count_tokens(self, request: ChatRequest, target: Target) -> int | None:
        # This endpoint takes the model in the body, like Anthropic's own count_tokens.
        body = self._body(request, target.model, stream=False)
        for key in _COUNT_TOKENS_DROP:
            body.pop(key, None)
        resp = await self._post(request, target, "count-tokens", "rawPredict", body)
        count = resp.json().get("input_tokens")
        return int(count) if isinstance(count, int) else None

    async def aclose(self) -> None:
        if self.tokens is not None:
            self.tokens.close()
