"""The one internal model every dialect and provider translates to and from.

It is Claude-shaped: a request is an Anthropic Messages API body, a response is a Message,
and a stream is the sequence of Anthropic stream events.  Payloads stay plain dicts (typed
with TypedDicts) so that fields the gateway does not model travel through untouched.
"""

from passerelle.canonical.messages import (
    ContentBlock,
    Message,
    MessageResponse,
    MessagesRequest,
    StopReason,
    StreamEvent,
    Usage,
)
from passerelle.canonical.request import ChatRequest, Dialect

__all__ = [
    "ChatRequest",
    "ContentBlock",
    "Dialect",
    "Message",
    "MessageResponse",
    "MessagesRequest",
    "StopReason",
    "StreamEvent",
    "Usage",
]
