"""TypedDicts for the Claude-shaped canonical payloads (Anthropic Messages API)."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]

# A content block is kept as a dict: its "type" selects the shape, and block types that
# providers add later must survive a same-dialect round trip untouched.
ContentBlock = dict[str, Any]


class Message(TypedDict):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class ToolDefinition(TypedDict, total=False):
    name: str
    description: str
    input_schema: dict[str, Any]
    type: str
    cache_control: dict[str, Any]


class MessagesRequest(TypedDict, total=False):
    model: str
    max_tokens: int
    messages: list[Message]
    system: str | list[ContentBlock]
    stop_sequences: list[str]
    stream: bool
    temperature: float
    top_p: float
    top_k: int
    metadata: dict[str, Any]
    tools: list[ToolDefinition]
    tool_choice: dict[str, Any]
    thinking: dict[str, Any]


class Usage(TypedDict, total=False):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class MessageResponse(TypedDict):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: StopReason | None
    stop_sequence: str | None
    usage: Usage
    container: NotRequired[Any]


# Stream events are the Anthropic SSE events' data objects, each with its "type":
# message_start, content_block_start, ping, content_block_delta, content_block_stop,
# message_delta, message_stop, error.
StreamEvent = dict[str, Any]
