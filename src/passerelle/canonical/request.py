"""The request envelope that flows through the pipeline to a provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from passerelle.canonical.messages import MessagesRequest

Dialect = Literal["anthropic", "openai"]


@dataclass(slots=True)
class ChatRequest:
    """One inbound chat request, translated to the canonical (Claude-shaped) body.

    ``passthrough`` holds the top-level fields of the caller's own dialect that the gateway
    does not model: a provider speaking that same dialect sends them on untouched, any other
    provider drops them and records a warning.  ``passthrough_headers`` and ``query`` do the
    same for unmodeled headers and query parameters.
    """

    body: MessagesRequest
    dialect: Dialect
    request_id: str
    stream: bool = False
    passthrough: dict[str, Any] = field(default_factory=dict)
    passthrough_headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    anthropic_version: str = "2023-06-01"
    anthropic_beta: list[str] = field(default_factory=list)
    # OpenAI-only options that have a canonical meaning only for OpenAI-style upstreams
    # (e.g. response_format); kept typed here rather than in passthrough so they survive
    # a round trip through the canonical model.
    openai_extras: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timeout: float | None = None
    # Set by the compliance stage: only deployments carrying this label may serve the request.
    required_label: str | None = None

    def for_attempt(self) -> ChatRequest:
        """A copy one upstream attempt may change: its own body (top level and the lists a bridge
        edits) and its own warnings; everything else is shared and read-only."""
        body = dict(self.body)
        for key in ("tools", "system", "messages"):
            value = body.get(key)
            if isinstance(value, list):
                body[key] = list(value)
        # Positional on purpose: dataclasses.replace costs four times as much on the hot path.
        return ChatRequest(body, self.dialect, self.request_id, self.stream, self.passthrough,  # type: ignore[arg-type]
                           self.passthrough_headers, self.query, self.anthropic_version, self.anthropic_beta,
                           self.openai_extras, list(self.warnings), self.timeout)

    @property
    def model(self) -> str:
        return self.body["model"]

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def drop_foreign(self, target: Dialect) -> None:
        """Record a warning for each unmodeled field that cannot reach a ``target`` upstream."""
        if target == self.dialect:
            return
        for key in self.passthrough:
            self.warn(f"dropped unsupported {self.dialect} field '{key}' for a {target}-style upstream")
        for key in self.passthrough_headers:
            self.warn(f"dropped unsupported header '{key}' for a {target}-style upstream")
        for key in self.query:
            self.warn(f"dropped query parameter '{key}' for a {target}-style upstream")
