"""Fit one attempt's copy of a request to the dialect of the deployment that will serve it.

Each attempt gets its own copy, so a fallback to a deployment of another dialect starts from
the caller's request as it was.
"""

from __future__ import annotations

from passerelle.canonical import ChatRequest, Message
from passerelle.dialects.openai.structured import check_openai_only_options, emulate_response_format
from passerelle.providers.base import Provider


def fit_request(request: ChatRequest, provider: Provider) -> tuple[ChatRequest, bool]:
    """The attempt's request, and whether its answer must be unwrapped from an emulated
    structured output (OpenAI ``response_format`` served by a Claude-style model)."""
    attempt = request.for_attempt()
    unwrap = False
    if request.dialect == "openai" and provider.dialect != "openai":
        check_openai_only_options(attempt)
        unwrap = emulate_response_format(attempt)
        _drop_unsigned_thinking(attempt)
        temperature = attempt.body.get("temperature")
        if temperature is not None and temperature > 1:
            # OpenAI accepts 0..2, Claude 0..1: the most random setting Claude has is the closest.
            attempt.body["temperature"] = 1.0
            attempt.warn(f"temperature {temperature:g} lowered to 1, the maximum of Claude-style models")
    return attempt, unwrap


def _drop_unsigned_thinking(request: ChatRequest) -> None:
    """Reasoning that came from an OpenAI-style model has no signature, and Claude refuses an
    unsigned thinking block in the history: drop those blocks, with a warning."""
    messages: list[Message] = request.body.get("messages", [])
    dropped = False
    for i, message in enumerate(messages):
        content = message["content"]
        if message["role"] != "assistant" or isinstance(content, str):
            continue
        kept = [b for b in content if not (b.get("type") == "thinking" and not b.get("signature"))]
        if len(kept) != len(content):
            messages[i] = {"role": "assistant", "content": kept or [{"type": "text", "text": ""}]}
            dropped = True
    if dropped:
        request.warn("dropped unsigned reasoning from earlier turns: Claude-style models accept only signed thinking")
