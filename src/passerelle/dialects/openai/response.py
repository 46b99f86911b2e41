"""Chat completion objects <-> canonical Messages, and the model list.

Choices made where the two APIs differ:

- Claude's thinking is exposed as ``message.reasoning_content`` (the spelling of DeepSeek, vLLM,
  llama.cpp and LiteLLM, which OpenAI clients that show reasoning already read); it comes back as
  a thinking block with an empty ``signature`` (OpenAI has none).
- Text blocks are joined with no separator; tool inputs become compact JSON ``arguments``.
- Usage: ``prompt_tokens`` counts every input token (fresh + cache read + cache write), with
  ``prompt_tokens_details.cached_tokens`` = cache reads and ``cache_write_tokens`` = cache writes,
  so both directions are exact.  Thinking token counts map to ``reasoning_tokens``.
- A ``refusal`` becomes the last text block (Claude clients read it as the answer; stop reason as
  ``finish_reason`` says) and goes back into ``message.refusal`` for an OpenAI client.
- What only an OpenAI upstream says (``system_fingerprint``, ``service_tier``, ``created``,
  ``logprobs``, the refusal flag, and tool ``arguments`` that are not valid JSON) is kept under the
  message's ``"_openai"`` key and re-emitted to an OpenAI client; other dialects must strip it.
  Note for redaction stages: ``logprobs`` tokens and raw ``arguments`` there are model output too.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any, NoReturn, cast

import msgspec

from passerelle.canonical import ChatRequest, ContentBlock, MessageResponse, StopReason, Usage
from passerelle.dialects.openai.errors import upstream_error_from_openai
from passerelle.errors import ErrorKind, UpstreamError

FINISH_REASONS: dict[str | None, str] = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}
STOP_REASONS: dict[str | None, StopReason] = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
    "content_filter": "refusal",
}
_EXTRA_KEYS = ("id", "created", "system_fingerprint", "service_tier")


def completion_id(message_id: str) -> str:
    return message_id if message_id.startswith("chatcmpl-") else "chatcmpl-" + message_id.removeprefix("msg_")


def message_id(completion: str) -> str:
    return "msg_" + completion.removeprefix("chatcmpl-")


def new_tool_call_id() -> str:
    """For upstreams (some local servers) that send tool calls without an id: Claude needs one."""
    return "call_" + secrets.token_hex(12)


def openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    read = usage.get("cache_read_input_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + read + write
    completion = usage.get("output_tokens") or 0
    details: dict[str, int] = {"cached_tokens": read}
    if write:
        details["cache_write_tokens"] = write
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion, "prompt_tokens_details": details}
    thinking = (usage.get("output_tokens_details") or {}).get("thinking_tokens")
    if isinstance(thinking, int):
        out["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return out


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def canonical_usage(usage: object) -> Usage:
    """Claude-style usage from an OpenAI ``usage`` object (zeros when the upstream sent none)."""
    fields: Mapping[str, Any] = usage if isinstance(usage, dict) else {}
    prompt_details = fields.get("prompt_tokens_details") or {}
    read = _count(prompt_details.get("cached_tokens"))
    write = _count(prompt_details.get("cache_write_tokens"))
    out: dict[str, Any] = {"input_tokens": max(_count(fields.get("prompt_tokens")) - read - write, 0),
                           "output_tokens": _count(fields.get("completion_tokens")),
                           "cache_creation_input_tokens": write, "cache_read_input_tokens": read}
    reasoning = (fields.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if isinstance(reasoning, int):
        out["output_tokens_details"] = {"thinking_tokens": reasoning}
    return cast(Usage, out)


def to_openai_response(message: MessageResponse, *, request: ChatRequest) -> dict[str, Any]:
    """A ``chat.completion`` object named after the model the caller asked for."""
    extras: dict[str, Any] = cast(dict[str, Any], message).get("_openai") or {}
    raw_arguments: dict[str, str] = extras.get("arguments") or {}
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message["content"]:
        kind = block.get("type")
        if kind == "text":
            text.append(block["text"])
        elif kind == "thinking":
            reasoning.append(block["thinking"])
        elif kind == "tool_use":
            arguments = raw_arguments.get(block["id"]) or msgspec.json.encode(block.get("input", {})).decode()
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": arguments}})
    # from_openai_response put the refusal in the last text block (where redaction stages see it).
    refusal = text.pop() if extras.get("refusal") and text else None
    reply: dict[str, Any] = {"role": "assistant",
                             "content": "".join(text) if text else (None if calls or refusal else ""),
                             "refusal": refusal}
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    if calls:
        reply["tool_calls"] = calls
    out: dict[str, Any] = {
        "id": completion_id(message["id"]), "object": "chat.completion",
        "created": extras.get("created") or int(time.time()), "model": request.model,
        "choices": [{"index": 0, "message": reply, "logprobs": extras.get("logprobs"),
                     "finish_reason": FINISH_REASONS.get(message.get("stop_reason"), "stop")}],
        "usage": openai_usage(message["usage"]),
    }
    for key in ("system_fingerprint", "service_tier"):
        if extras.get(key) is not None:
            out[key] = extras[key]
    return out


def _malformed(what: str) -> NoReturn:
    raise UpstreamError(ErrorKind.BAD_GATEWAY, f"upstream sent a malformed chat completion: {what}",
                        retryable=True)


def tool_use_block(call: object, where: str) -> tuple[ContentBlock, str | None]:
    """A tool_use block from a (non-streamed) tool call, and the raw arguments when they are not
    a JSON object (the block's input is then empty)."""
    if not isinstance(call, dict):
        _malformed(where)
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        _malformed(f"{where} has no function name")
    arguments = function.get("arguments") or ""
    if not isinstance(arguments, str):
        _malformed(f"{where} arguments are not a string")
    try:
        parsed = msgspec.json.decode(arguments) if arguments.strip() else {}
    except msgspec.DecodeError:
        parsed = None
    call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else new_tool_call_id()
    block = {"type": "tool_use", "id": call_id, "name": function["name"],
             "input": parsed if isinstance(parsed, dict) else {}}
    return block, None if isinstance(parsed, dict) else arguments


def from_openai_response(data: object) -> MessageResponse:
    """The canonical Message for a chat completion (its first choice)."""
    if not isinstance(data, dict):
        _malformed("not an object")
    if data.get("error"):
        raise upstream_error_from_openai(data["error"])
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        _malformed("no choices")
    choice = choices[0]
    reply = choice.get("message")
    if not isinstance(reply, dict):
        _malformed("no message")
    blocks: list[ContentBlock] = []
    extras: dict[str, Any] = {key: data[key] for key in _EXTRA_KEYS if data.get(key) is not None}
    reasoning = reply.get("reasoning_content") or reply.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    content = reply.get("content")
    if isinstance(content, list):  # some compatible servers answer with content parts
        content = "".join(part.get("text", "") for part in content
                          if isinstance(part, dict) and part.get("type") == "text")
    if isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    elif content is not None and not isinstance(content, str):
        _malformed("content is not a string")
    if isinstance(reply.get("refusal"), str) and reply["refusal"]:
        extras["refusal"] = True
        blocks.append({"type": "text", "text": reply["refusal"]})
    calls = reply.get("tool_calls") or []
    if reply.get("function_call"):
        calls = [*calls, {"function": reply["function_call"]}]
    if not isinstance(calls, list):
        _malformed("tool_calls is not an array")
    raw_arguments: dict[str, str] = {}
    for i, call in enumerate(calls):
        block, raw = tool_use_block(call, f"tool_calls[{i}]")
        blocks.append(block)
        if raw is not None:
            raw_arguments[block["id"]] = raw
    if raw_arguments:
        extras["arguments"] = raw_arguments
    if choice.get("logprobs") is not None:
        extras["logprobs"] = choice["logprobs"]
    stop_reason = STOP_REASONS.get(choice.get("finish_reason"), "end_turn")
    if calls and stop_reason == "end_turn":
        stop_reason = "tool_use"  # some servers report "stop" with tool calls
    model = data.get("model")
    message: MessageResponse = {
        "id": message_id(str(extras.pop("id", "") or secrets.token_hex(12))), "type": "message",
        "role": "assistant", "model": model if isinstance(model, str) else "", "content": blocks,
        "stop_reason": stop_reason, "stop_sequence": None, "usage": canonical_usage(data.get("usage")),
    }
    if extras:
        cast(dict[str, Any], message)["_openai"] = extras
    return message


def openai_models_list(names: list[str], created: int) -> dict[str, Any]:
    return {"object": "list",
            "data": [{"id": name, "object": "model", "created": created, "owned_by": "passerelle"}
                     for name in names]}
