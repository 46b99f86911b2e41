"""OpenAI-only request options on a Claude-style (non-OpenAI) target.

``response_format`` is emulated: a JSON schema becomes a tool the model is made to call (Claude
fills tool inputs to match their schema), and its call is turned back into a JSON text answer;
``json_object`` becomes a system instruction.  Options that change the answer in ways a Claude
model cannot reproduce (``logprobs``, ``logit_bias``) are refused; sampling knobs without a
Claude equivalent (``seed``, penalties) are dropped with a warning.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import msgspec

from passerelle.canonical import ChatRequest, ContentBlock, MessageResponse, MessagesRequest, StreamEvent
from passerelle.errors import invalid

STRUCTURED_TOOL = "json_response"
JSON_OBJECT_INSTRUCTION = "Answer with one valid JSON object and nothing else: no prose, no code fence."
_CALL_INSTRUCTION = f"Give your final answer by calling the {STRUCTURED_TOOL} tool."
_DROPPED = ("seed", "presence_penalty", "frequency_penalty")


def _append_system(body: MessagesRequest, text: str) -> None:
    system = body.get("system")
    if isinstance(system, str):
        blocks: list[ContentBlock] = [{"type": "text", "text": system}] if system else []
    else:
        blocks = list(system or [])
    if not blocks or blocks[-1].get("text") != text:  # the router may call this again on a retry
        blocks.append({"type": "text", "text": text})
    body["system"] = blocks


def emulate_response_format(request: ChatRequest) -> bool:
    """Rewrite ``request.body`` for the ``response_format`` in ``openai_extras``.  Returns True
    when the answer must go through ``unwrap_structured_message`` / ``unwrap_structured_events``.

    A schema becomes the ``json_response`` tool.  With no other tools the call is forced; with the
    caller's tools the model must call one of them or ``json_response`` ("any"); a caller's own
    named tool choice wins; with extended thinking (which refuses forced tool choices) the choice
    stays "auto" and a system instruction asks for the call."""
    response_format = request.openai_extras.get("response_format")
    if not isinstance(response_format, dict):
        return False
    body = request.body
    if response_format.get("type") == "json_object":
        _append_system(body, JSON_OBJECT_INSTRUCTION)
        return False
    if response_format.get("type") != "json_schema":
        return False
    spec: dict[str, Any] = response_format.get("json_schema") or {}
    schema = spec.get("schema") or {"type": "object"}
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise invalid("this model needs a JSON schema whose root is an object",
                      "response_format.json_schema.schema")
    tools = list(body.get("tools") or [])
    if not any(tool.get("name") == STRUCTURED_TOOL for tool in tools):
        description = spec.get("description") or f"Give the final answer as JSON ({spec.get('name')})."
        tools.append({"name": STRUCTURED_TOOL, "description": description, "input_schema": schema})
        body["tools"] = tools
    choice: dict[str, Any] = dict(body.get("tool_choice") or {})
    if (body.get("thinking") or {}).get("type", "disabled") != "disabled":
        choice["type"] = "auto"
        choice.pop("name", None)
        _append_system(body, _CALL_INSTRUCTION)
    elif choice.get("type") == "tool":
        pass
    elif len(tools) > 1 and choice.get("type") != "none":
        choice["type"] = "any"
    else:
        choice = {**choice, "type": "tool", "name": STRUCTURED_TOOL}
    body["tool_choice"] = choice
    return True


def _json_text(value: object) -> str:
    return msgspec.json.encode(value).decode()


def unwrap_structured_message(message: MessageResponse) -> MessageResponse:
    """Turn the ``json_response`` call into a text block holding its JSON (stop reason end_turn
    unless the model also called one of the caller's tools)."""
    content: list[ContentBlock] = []
    found = other_tools = False
    for block in message["content"]:
        if block.get("type") == "tool_use" and block.get("name") == STRUCTURED_TOOL:
            content.append({"type": "text", "text": _json_text(block.get("input", {}))})
            found = True
        else:
            other_tools = other_tools or block.get("type") == "tool_use"
            content.append(block)
    if not found:
        return message
    unwrapped = cast(MessageResponse, {**message, "content": content})
    if not other_tools and message.get("stop_reason") == "tool_use":
        unwrapped["stop_reason"] = "end_turn"
    return unwrapped


async def unwrap_structured_events(events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """``unwrap_structured_message`` for a stream: the ``json_response`` tool_use block becomes a
    text block and its ``input_json_delta`` fragments become ``text_delta``."""
    json_blocks: set[int] = set()
    other_tools = False
    async for event in events:
        kind = event.get("type")
        if kind == "content_block_start" and event["content_block"].get("type") == "tool_use":
            block = event["content_block"]
            if block.get("name") == STRUCTURED_TOOL:
                json_blocks.add(event["index"])
                text = _json_text(block["input"]) if block.get("input") else ""
                event = {**event, "content_block": {"type": "text", "text": text}}
            else:
                other_tools = True
        elif kind == "content_block_delta" and event["index"] in json_blocks:
            fragment = event["delta"].get("partial_json")
            if not fragment:
                continue
            event = {**event, "delta": {"type": "text_delta", "text": fragment}}
        elif kind == "message_delta" and json_blocks and not other_tools \
                and event["delta"].get("stop_reason") == "tool_use":
            event = {**event, "delta": {**event["delta"], "stop_reason": "end_turn"}}
        yield event


def check_openai_only_options(request: ChatRequest) -> None:
    """Refuse what a non-OpenAI target cannot honour; warn about what it silently lacks."""
    extras = request.openai_extras
    if extras.get("logprobs") is True or (extras.get("top_logprobs") or 0) > 0:
        raise invalid("'logprobs' is only available with OpenAI models", "logprobs")
    if extras.get("logit_bias"):
        raise invalid("'logit_bias' is only available with OpenAI models", "logit_bias")
    for key in _DROPPED:
        if key in extras:
            request.warn(f"dropped '{key}': the target model has no such option")
