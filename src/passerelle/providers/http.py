"""The one HTTP client every adapter uses to reach its upstream.

It owns a pooled aiohttp session per event loop and maps transport failures to the gateway's
error tree, so adapters never see an aiohttp exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from passerelle.errors import ErrorKind, UpstreamError, upstream_error_for_status


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError as exc:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream sent a malformed JSON body: {exc}",
                                retryable=True, upstream_status=self.status) from None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Read ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        import time

        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def error_message_from_body(body: bytes) -> str:
    """Pull the human message out of an Anthropic, OpenAI, AWS or Google error body."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body[:500].decode("utf-8", "replace") or "no body"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        for key in ("message", "Message"):
            if isinstance(data.get(key), str):
                return str(data[key])
        if isinstance(err, str):
            return err
    return body[:500].decode("utf-8", "replace")


class HttpClient:
    """Pooled keep-alive connections to upstreams; one per worker process."""

    def __init__(self, *, limit: int = 0, connect_timeout: float = 10.0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._limit = limit
        self._connect_timeout = connect_timeout

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                json_serialize=lambda obj: msgspec.json.encode(obj).decode(),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def post(
        self, url: str | URL, body: bytes, headers: Mapping[str, str], timeout_s: float,
        params: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        """POST and read the whole answer; non-2xx answers become UpstreamError."""
        try:
            async with self.session().post(
                url, data=body, headers=dict(headers), params=params or None,
                timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=self._connect_timeout),
            ) as resp:
                data = await resp.read()
                result = UpstreamResponse(resp.status, resp.headers, data)
        except TimeoutError:
            raise UpstreamError(ErrorKind.TIMEOUT, f"upstream did not answer within {timeout_s:g}s",
                                retryable=True) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream connection failed: {exc.__class__.__name__}",
                                retryable=True) from None
        if result.status >= 300:
            raise upstream_error_for_status(result.status, error_message_from_body(result.body),
                                            retry_after_seconds(result.headers))
        return result

    async def post_stream(
        self, url: str | URL, body: bytes, headers: Mapping[str, str], timeout_s: float,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[bytes]:
        """POST and yield the answer's body chunks as they arrive.

        The status is checked before the first chunk is yielded, so an upstream refusal
        surfaces as UpstreamError while the router can still retry.  ``timeout_s`` bounds the
        wait for the answer's head and then each pause between chunks.
        """
        try:
            resp = await self.session().post(
                url, data=body, headers=dict(headers), params=params or None,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout,
                                              sock_read=timeout_s),
            )
        except TimeoutError:
            raise UpstreamError(ErrorKind.TIMEOUT, f"upstream did not answer within {timeout_s:g}s",
                                retryable=True) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream connection failed: {exc.__class__.__name__}",
                                retryable=True) from None
        return self._chunks(resp, timeout_s)

    async def _chunks(self, resp: aiohttp.ClientResponse, timeout_s: float) -> AsyncIterator[bytes]:
        try:
            if resp.status >= 300:
                data = await resp.read()
                raise upstream_error_for_status(resp.status, error_message_from_body(data),
                                                retry_after_seconds(resp.headers))
            async for chunk in resp.content.iter_any():
                yield chunk
        except TimeoutError:
            raise UpstreamError(ErrorKind.TIMEOUT, f"upstream stream stalled for {timeout_s:g}s",
                                retryable=True) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream stream broke: {exc.__class__.__name__}",
                                retryable=True) from None
        finally:
            resp.release()
