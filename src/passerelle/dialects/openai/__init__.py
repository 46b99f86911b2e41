"""The OpenAI Chat Completions dialect, both ways: OpenAI clients calling the gateway (inbound)
and OpenAI-style upstreams called by it (outbound), with the canonical model in between."""

from passerelle.dialects.openai.errors import openai_error_body, upstream_error_from_openai
from passerelle.dialects.openai.outbound import to_openai_request
from passerelle.dialects.openai.request import DEFAULT_MAX_TOKENS, chat_request_from_openai
from passerelle.dialects.openai.response import from_openai_response, openai_models_list, to_openai_response
from passerelle.dialects.openai.stream import OpenAIStreamEncoder, events_from_openai_sse
from passerelle.dialects.openai.structured import (
    check_openai_only_options,
    emulate_response_format,
    unwrap_structured_events,
    unwrap_structured_message,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "OpenAIStreamEncoder",
    "chat_request_from_openai",
    "check_openai_only_options",
    "emulate_response_format",
    "events_from_openai_sse",
    "from_openai_response",
    "openai_error_body",
    "openai_models_list",
    "to_openai_request",
    "to_openai_response",
    "unwrap_structured_events",
    "unwrap_structured_message",
    "upstream_error_from_openai",
]
