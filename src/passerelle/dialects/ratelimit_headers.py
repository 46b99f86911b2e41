"""Rate-limit response headers, as each provider spells them.

Anthropic: ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}``, reset as an RFC 3339
time at which the bucket is full again.  OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,
tokens}``, reset as a duration such as ``1s`` or ``6m0s``.
"""

from __future__ import annotations

import time

from passerelle.stores.base import Level


def _rfc3339(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + max(seconds_from_now, 0.0)))


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{max(int(seconds * 1000), 0)}ms"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def anthropic_ratelimit_headers(requests: Level | None, tokens: Level | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, level in (("requests", requests), ("tokens", tokens)):
        if level is not None:
            out[f"anthropic-ratelimit-{name}-limit"] = str(level.limit)
            out[f"anthropic-ratelimit-{name}-remaining"] = str(max(level.remaining, 0))
            out[f"anthropic-ratelimit-{name}-reset"] = _rfc3339(level.reset_s)
    return out


def openai_ratelimit_headers(requests: Level | None, tokens: Level | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, level in (("requests", requests), ("tokens", tokens)):
        if level is not None:
            out[f"x-ratelimit-limit-{name}"] = str(level.limit)
            out[f"x-ratelimit-remaining-{name}"] = str(max(level.remaining, 0))
            out[f"x-ratelimit-reset-{name}"] = _duration(level.reset_s)
    return out
