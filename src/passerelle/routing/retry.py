"""When to try again, and how long to wait first."""

from __future__ import annotations

import random

from passerelle.config import RouterConfig
from passerelle.errors import GatewayError, UpstreamError


def backoff_delay(config: RouterConfig, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; an upstream's retry-after wins when it is longer."""
    ceiling = min(config.backoff_max, config.backoff_initial * (2**attempt))
    delay = random.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def upstream_refused_request(err: UpstreamError) -> bool:
    """The upstream judged the request itself wrong: another try or deployment would fail the same way."""
    status = err.upstream_status
    return status is not None and 400 <= status < 500 and status not in (401, 403, 404, 408, 409, 424, 429)


def may_retry(config: RouterConfig, err: GatewayError, attempt: int) -> bool:
    if not isinstance(err, UpstreamError) or not err.retryable or attempt >= config.retries:
        return False
    return err.retry_after is None or err.retry_after <= config.max_retry_after
