"""The provider protocol: two methods, one for a whole answer and one for a stream.

An adapter translates the canonical request into its upstream's wire format, calls it, and
translates the answer back.  It raises ``UpstreamError`` (never a library exception) so the
router can decide between retry, fallback and giving up.

Stream contract: ``stream()`` returns an async iterator of canonical (Anthropic-shaped) events.
The upstream call happens on the first ``__anext__``; an error there is raised before anything
was yielded, so the router may still retry.  Errors after the first event end the stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from passerelle.canonical import ChatRequest, Dialect, MessageResponse, StreamEvent


@dataclass(frozen=True, slots=True)
class Target:
    """A deployment as the adapter sees it: which upstream model, where, with what limits."""

    deployment: str  # the deployment's name, for logs and metrics
    model: str  # the upstream's model id
    region: str | None = None
    timeout: float = 600.0
    options: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    name: str
    # The dialect whose unmodeled fields this upstream accepts as they are.
    dialect: Dialect

    async def complete(self, request: ChatRequest, target: Target) -> MessageResponse: ...

    def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[StreamEvent]: ...

    async def count_tokens(self, request: ChatRequest, target: Target) -> int | None:
        """Exact input token count from the upstream, or None when it has no such API."""
        ...

    async def aclose(self) -> None: ...
