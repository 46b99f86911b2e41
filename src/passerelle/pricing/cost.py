"""Token accounting, exact costs, and the bounds that budgets reserve before an upstream call.

Usage.  Every provider's usage arrives in the canonical (Anthropic) shape: ``input_tokens`` is the
uncached input, ``cache_creation_input_tokens`` the input written to the prompt cache (of which
``cache_creation.ephemeral_1h_input_tokens`` at the one-hour rate), ``cache_read_input_tokens`` the
input read from it, and ``output_tokens`` the whole output, thinking included;
``output_tokens_details.thinking_tokens`` says how much of it was thinking when the provider tells
(OpenAI's ``reasoning_tokens``, see ``dialects.openai.response.canonical_usage``).  Thinking is
recorded but never billed twice.

Cost.  ``cost_pico`` multiplies token counts by integer pico-dollar rates: exact, no rounding.

Reservation.  A hard budget must never be overspent, so the reservation made before the call
(``max_cost_pico``) must be at least the real cost, whatever the tokenizer:

- Text: a byte-level BPE token (and a SentencePiece token with byte fallback) stands for at least
  one byte, so a text never has more tokens than UTF-8 bytes.  Every string the request carries
  (system, messages, tool inputs and results, thinking) is counted by the bytes of its JSON, which
  are never fewer than its own; tool definitions twice (providers re-render schemas, possibly
  indented); plus ``REQUEST_OVERHEAD``, ``MESSAGE_OVERHEAD`` per message and ``BLOCK_OVERHEAD`` per
  block for role markers and framing, ``TOOLS_OVERHEAD`` once when tools are offered (Anthropic's
  tool-use system prompt is a few hundred tokens) and ``ANTHROPIC_TOOL_TOKENS`` per Anthropic-defined
  client tool (bash, text editor, computer use, memory: hidden definitions of up to ~1,200 tokens).
- Images: the model's ``image_tokens`` from the catalog, the documented most one image can bill
  (Claude resizes to about 1,600 tokens, 5,000 for Opus 4.7+'s 3.75 MP images; gpt-4o-mini bills up
  to 2,833 + 8 x 5,667 = 48,169 tokens in high detail), else ``DEFAULT_IMAGE_TOKENS``.
- PDFs and other binary documents, server-side tools (web search/fetch, code execution) and MCP
  servers: their token count cannot be told from the request, so they reserve the model's whole
  context window (``max_input_tokens`` from the catalog, else ``DEFAULT_MAX_INPUT_TOKENS``).
- The sum is capped at that context window: an upstream refuses (unbilled) a longer input.
- Output: ``max_tokens`` (thinking counts inside it), else the configured default.
- Calls the gateway adds (``FollowUps``: the skills stage answers its own tool and calls again, up to
  ``MAX_CALLS`` calls in all): each is bounded like the first, its input grown by every earlier turn
  and by all the skill text the request may load; each call at the dearest deployment it may reach.
- Input is priced at its dearest rate (fresh, cache write, one-hour write or cache read), so any
  split between cached and fresh input is covered, and at long-context rates when the bound
  crosses the model's long-context threshold.

Not covered (see ``unbounded_reasons``): server tools that loop several times can bill more than
one context window of input, plus per-use fees the catalog does not price.

Estimate for a stream cut short.  When an upstream stream ends without its final usage (the
connection died, the upstream crashed), the gateway records ``estimated=True`` usage: whatever the
upstream did report (``message_start`` carries the exact input and cache counts) is kept; a missing
input count is estimated from the request (``canonical.text.estimate_tokens``: about four characters
a token); the output is the larger of what was reported and one token per four UTF-8 bytes streamed
(text, thinking and tool-input JSON), rounded up.  It is an estimate of what the caller received,
not a bound on what the upstream bills.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, cast

import msgspec

from passerelle.canonical import ChatRequest, ContentBlock
from passerelle.canonical.text import estimate_tokens
from passerelle.pricing.catalog import Price

REQUEST_OVERHEAD = 64
MESSAGE_OVERHEAD = 16
BLOCK_OVERHEAD = 16
TOOLS_OVERHEAD = 1024
ANTHROPIC_TOOL_TOKENS = 2048
TOOL_RENDER_FACTOR = 2
DEFAULT_IMAGE_TOKENS = 50_000
DEFAULT_MAX_INPUT_TOKENS = 2_097_152  # above every context window the catalog knows (1M-class models)
ESTIMATE_BYTES_PER_TOKEN = 4
_CLIENT_TOOL_PREFIXES = ("custom", "bash_", "text_editor_", "computer_", "memory_")
_HANDLED_BODY_KEYS = frozenset({"model", "max_tokens", "messages", "system", "tools", "stream"})


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input: int = 0  # uncached input tokens
    output: int = 0  # thinking included
    cache_write: int = 0  # one-hour writes included
    cache_read: int = 0
    thinking: int = 0  # part of output, when the provider reports it
    estimated: bool = False  # the upstream did not report it all (see the module docstring)
    cache_write_1h: int = 0  # part of cache_write, billed at the one-hour rate

    @property
    def total_input(self) -> int:
        return self.input + self.cache_write + self.cache_read

    def plus(self, other: TokenUsage) -> TokenUsage:
        """Both usages together (several upstream calls of one request); estimated if either is."""
        counts = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name != "estimated"}
        return TokenUsage(**counts, estimated=self.estimated or other.estimated)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_canonical(usage: Mapping[str, Any] | None) -> TokenUsage:
    """Token counts from a canonical usage object; missing, negative or non-integer values are 0."""
    fields: Mapping[str, Any] = usage if isinstance(usage, Mapping) else {}
    creation = fields.get("cache_creation")
    creation = creation if isinstance(creation, Mapping) else {}
    write_1h = _count(creation.get("ephemeral_1h_input_tokens"))
    write = max(_count(fields.get("cache_creation_input_tokens")),
                _count(creation.get("ephemeral_5m_input_tokens")) + write_1h)
    details = fields.get("output_tokens_details")
    output = _count(fields.get("output_tokens"))
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, Mapping) else 0
    return TokenUsage(input=_count(fields.get("input_tokens")), output=output, cache_write=write,
                      cache_read=_count(fields.get("cache_read_input_tokens")), thinking=min(thinking, output),
                      cache_write_1h=write_1h)


def cost_pico(usage: TokenUsage, price: Price, batch: bool = False) -> int:
    """The exact cost in pico-USD; the long-context tier applies to the whole request once its
    input (cache reads and writes included) exceeds the model's threshold."""
    long = price.long_context is not None and usage.total_input > price.long_context.threshold
    rates = price.rates(long=long, batch=batch)
    write_1h = min(usage.cache_write_1h, usage.cache_write)
    return (usage.input * rates.input + usage.output * rates.output + (usage.cache_write - write_1h) * rates.cache_write
            + write_1h * rates.cache_write_1h + usage.cache_read * rates.cache_read)


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _json_bytes(value: object) -> int:
    try:
        return len(msgspec.json.encode(value))
    except (TypeError, ValueError, OverflowError):
        return _utf8(repr(value))


def _blocks(blocks: Iterable[object], image_tokens: int, max_input_tokens: int) -> int:
    return sum(_block(b, image_tokens, max_input_tokens) if isinstance(b, dict) else _json_bytes(b) + BLOCK_OVERHEAD
               for b in blocks)


def _content(content: object, image_tokens: int, max_input_tokens: int) -> int:
    if isinstance(content, str):
        return _utf8(content) + BLOCK_OVERHEAD
    if isinstance(content, list):
        return _blocks(content, image_tokens, max_input_tokens)
    return _json_bytes(content) + BLOCK_OVERHEAD


def _block(block: ContentBlock, image_tokens: int, max_input_tokens: int) -> int:
    kind = block.get("type")
    rest = {key: value for key, value in block.items() if key not in ("source", "content")}
    if kind == "image":
        return image_tokens + _json_bytes(rest) + BLOCK_OVERHEAD
    if kind == "document":
        source = block.get("source")
        source = source if isinstance(source, dict) else {}
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            inner = _utf8(source["data"])
        elif source.get("type") == "content":
            inner = _content(source.get("content"), image_tokens, max_input_tokens)
        else:  # a PDF (base64, url, file): no bound short of the context window
            inner = max_input_tokens
        return inner + _json_bytes(rest) + BLOCK_OVERHEAD
    if kind == "tool_result" or isinstance(block.get("content"), list):
        return _content(block.get("content", ""), image_tokens, max_input_tokens) + _json_bytes(rest) + BLOCK_OVERHEAD
    return _json_bytes(block) + BLOCK_OVERHEAD


def _tool(tool: Mapping[str, Any], max_input_tokens: int) -> int:
    kind = tool.get("type")
    if kind is None or kind == "custom":
        return TOOL_RENDER_FACTOR * _json_bytes(tool) + BLOCK_OVERHEAD
    if isinstance(kind, str) and kind.startswith(_CLIENT_TOOL_PREFIXES):
        return ANTHROPIC_TOOL_TOKENS + _json_bytes(tool)
    return max_input_tokens  # a server tool: its results enter the input


def unbounded_reasons(request: ChatRequest) -> tuple[str, ...]:
    """What makes this request's cost impossible to bound from the request itself: server-side
    tools (they may run several times, each adding input, and carry per-use fees) and MCP servers.
    Empty for ordinary requests."""
    reasons = [f"server tool {tool.get('type')}" for tool in request.body.get("tools", [])
               if isinstance(tool.get("type"), str) and not str(tool.get("type")).startswith(_CLIENT_TOOL_PREFIXES)]
    if "mcp_servers" in request.passthrough or "mcp_servers" in request.body:
        reasons.append("mcp_servers")
    return tuple(reasons)


def input_token_bound(request: ChatRequest, *, image_tokens: int = DEFAULT_IMAGE_TOKENS,
                      max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS) -> int:
    """An upper bound on the input tokens (fresh, cached and cache-written together) any upstream
    can bill for this request; see the module docstring for the argument."""
    body = cast(Mapping[str, Any], request.body)
    total = REQUEST_OVERHEAD
    if "system" in body:
        total += _content(body["system"], image_tokens, max_input_tokens)
    for message in body.get("messages", []):
        content = message.get("content") if isinstance(message, dict) else message
        total += MESSAGE_OVERHEAD + _content(content, image_tokens, max_input_tokens)
    tools = body.get("tools") or []
    if tools:
        total += TOOLS_OVERHEAD + sum(_tool(t, max_input_tokens) if isinstance(t, dict) else _json_bytes(t)
                                      for t in tools)
    # Everything else that reaches an upstream may be rendered into the prompt (tool_choice,
    # response formats, stop sequences, MCP servers...): counted at the tool-schema rate.
    others = {key: value for key, value in body.items() if key not in _HANDLED_BODY_KEYS}
    extras = {key: value for key, value in request.openai_extras.items() if key != "_wire"}
    total += TOOL_RENDER_FACTOR * (_json_bytes(others) + _json_bytes(request.passthrough) + _json_bytes(extras))
    if "mcp_servers" in request.passthrough or "mcp_servers" in body:
        total += max_input_tokens
    return min(total, max_input_tokens)


def output_token_bound(request: ChatRequest, default_max_tokens: int) -> int:
    """The most output tokens the upstream may produce: ``max_tokens`` (thinking counts inside it)."""
    max_tokens = request.body.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0:
        return max_tokens
    return default_max_tokens


@dataclass(frozen=True, slots=True)
class FollowUps:
    """Calls the gateway itself may add to a request: the skills stage answers its own tool and calls again.
    Follow-up ``i`` (1-based) sends the first call's input, the ``i`` earlier turns (each counted at twice
    the output bound plus framing: re-rendered output is not guaranteed to keep its token count, as tool
    definitions are counted twice) and what the gateway answered to its tool calls: ``loaded`` tokens at
    most over the whole request (bytes of loaded text and messages; a token stands for one byte or more)."""

    calls: int  # follow-up calls at most
    loaded: int


def call_costs_pico(request: ChatRequest, price: Price, default_max_tokens: int, *, batch: bool = False,
                    follow_ups: FollowUps | None = None) -> list[int]:
    """The most each upstream call of this request can cost at ``price``: the request's own call, then
    each follow-up the gateway may add."""
    cap = price.max_input_tokens or DEFAULT_MAX_INPUT_TOKENS
    first = input_token_bound(request, image_tokens=price.image_tokens or DEFAULT_IMAGE_TOKENS, max_input_tokens=cap)
    output = output_token_bound(request, default_max_tokens)
    bounds = [first]
    if follow_ups is not None:
        turn = 2 * output + 2 * MESSAGE_OVERHEAD + 4 * BLOCK_OVERHEAD
        bounds += [min(first + i * turn + follow_ups.loaded, cap) for i in range(1, follow_ups.calls + 1)]
    costs = []
    for bound in bounds:
        long = price.long_context is not None and bound > price.long_context.threshold
        rates = price.rates(long=long, batch=batch)
        costs.append(bound * rates.max_input + output * rates.output)
    return costs


def max_cost_pico(request: ChatRequest, price: Price, default_max_tokens: int, *, batch: bool = False,
                  follow_ups: FollowUps | None = None) -> int:
    """The most this request can cost at ``price``: what a hard budget reserves before the call (every
    follow-up call included)."""
    return sum(call_costs_pico(request, price, default_max_tokens, batch=batch, follow_ups=follow_ups))


def estimate_output_tokens(text: str) -> int:
    """One token per four UTF-8 bytes, rounded up (the documented estimate for cut streams)."""
    return -(-_utf8(text) // ESTIMATE_BYTES_PER_TOKEN)


def estimate_usage(request: ChatRequest, streamed_output_text: str, streamed_thinking: str = "") -> TokenUsage:
    """Usage for a stream the upstream cut short without reporting any: input estimated from the
    request, output from what was streamed (``streamed_output_text``: text and tool-input JSON;
    ``streamed_thinking``: thinking, counted in the output as well)."""
    thinking = estimate_output_tokens(streamed_thinking)
    output = estimate_output_tokens(streamed_output_text) + thinking
    return TokenUsage(input=estimate_tokens(request.body), output=output, thinking=thinking, estimated=True)


def merge_partial(reported: Mapping[str, Any] | None, request: ChatRequest, streamed_output_text: str,
                  streamed_thinking: str = "") -> TokenUsage:
    """Usage for a stream cut short: what the upstream reported (e.g. ``message_start``'s exact
    input and cache counts, a ``message_delta``'s running output) completed by the estimate."""
    fields: Mapping[str, Any] = reported if isinstance(reported, Mapping) else {}
    known = usage_from_canonical(fields)
    guess = estimate_usage(request, streamed_output_text, streamed_thinking)
    has_input = any(isinstance(fields.get(key), int) and not isinstance(fields.get(key), bool)
                    for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    output = max(known.output, guess.output)
    return TokenUsage(input=known.input if has_input else guess.input, output=output,
                      cache_write=known.cache_write, cache_read=known.cache_read,
                      thinking=min(max(known.thinking, guess.thinking), output), estimated=True,
                      cache_write_1h=known.cache_write_1h)
