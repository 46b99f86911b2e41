"""Skills for any model: the catalog in the system prompt, a load tool the gateway answers itself.

``SkillsStage.prepare`` runs after the compliance stage.  When the caller's key has installed skills,
it appends the ``<available_skills>`` catalog (names and descriptions only) to the system prompt and
offers one tool (``load_skill`` by default) whose ``name`` argument is an enum of those skills.  The
returned ``SkillSession`` then drives the upstream: whenever an answer stops on ``tool_use`` and every
tool call in it is the gateway's, the session reads the files from the registry, appends the assistant
turn and a user turn of ``tool_result`` blocks, and calls again (streams: see ``skills_stream``).  The
client sees one answer, with no trace of the gateway's tool, and the usage of every call summed.

If the model calls the gateway's tool together with the caller's own tools, the gateway's calls are
dropped from the answer and the caller's returned as they are: the caller can only answer its own
calls, and the model sees the catalog again on the next turn.  Text loaded from skills is the
gateway's content (published, scanned and installed through the registry), not a caller value, so the
compliance stage does not scan it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from xml.sax.saxutils import escape

from passerelle.canonical import ChatRequest, ContentBlock, MessageResponse, MessagesRequest
from passerelle.config.schema import SkillsConfig
from passerelle.observability.logging import log
from passerelle.pricing import FollowUps
from passerelle.routing.router import RoutedMessage, RoutedStream
from passerelle.routing.table import Deployment
from passerelle.skills.registry import Actor, SkillError, SkillSummary
from passerelle.stores.base import NotFound

MAX_CALLS = 5  # upstream calls per request: the last one is made with tool_choice none
BUDGET_STOP = "skills: no further call was made, it might not fit in the budget reserved for this request"
_ANSWER_BYTES = 2048  # room per answered load beyond the loaded text: a refusal, its framing

PREAMBLE = ("You can use skills: folders of instructions, scripts and resources for particular tasks. "
            "When a task matches a skill's description, call the {tool} tool with the skill's name to read "
            "its SKILL.md before you act, then follow it. Load other files a skill mentions with the same "
            "tool and their path relative to the skill folder. Load only what the task needs.")


class Registry(Protocol):
    """What the stage needs of ``SkillRegistry``."""

    async def enabled_skills(self, principal: Actor) -> list[SkillSummary]: ...

    async def read_skill_file(self, principal: Actor, name: str, path: str = "SKILL.md") -> str: ...


class Router(Protocol):
    async def complete(self, request: ChatRequest) -> RoutedMessage: ...

    async def stream(self, request: ChatRequest) -> RoutedStream: ...


def catalog_text(skills: list[SkillSummary], tool_name: str) -> str:
    entries = "".join(f"<skill>\n<name>{escape(s.name)}</name>\n<description>{escape(s.description)}"
                      "</description>\n</skill>\n" for s in skills)
    return f"{PREAMBLE.format(tool=tool_name)}\n\n<available_skills>\n{entries}</available_skills>"


def tool_definition(tool_name: str, names: list[str]) -> dict[str, Any]:
    return {
        "name": tool_name,
        "description": "Load a skill's instructions (its SKILL.md) or another of its files, named by its path "
                       "relative to the skill folder. Skills are listed in <available_skills>.",
        "input_schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": names, "description": "the skill's name"},
                "path": {"type": "string", "default": "SKILL.md",
                         "description": "a file of the skill, e.g. SKILL.md or references/forms.md"},
            },
            "required": ["name"],
        },
    }


def _with_catalog(system: object, catalog: str) -> str | list[ContentBlock]:
    """The catalog after the caller's system prompt, so a cached prefix of it stays a prefix."""
    if isinstance(system, list):
        return [*system, {"type": "text", "text": catalog}]
    if isinstance(system, str) and system:
        return f"{system}\n\n{catalog}"
    return catalog


def add_usage(total: dict[str, Any], part: object) -> None:
    """Sum token counts (nested ones too, e.g. ``cache_creation``) into ``total``."""
    if not isinstance(part, dict):
        return
    for key, value in part.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            previous = total.get(key, 0)
            total[key] = (previous if isinstance(previous, int) else 0) + value
        elif isinstance(value, dict):
            nested = total.setdefault(key, {})
            if isinstance(nested, dict):
                add_usage(nested, value)
        elif key not in total:
            total[key] = value


class SkillsStage:
    def __init__(self, config: SkillsConfig, registry: Registry) -> None:
        self.config = config
        self.registry = registry

    async def prepare(self, who: Actor, request: ChatRequest) -> SkillSession | None:
        """Offer the key's skills on ``request`` (rewritten in place); None when there is nothing to offer."""
        body = request.body
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "none":
            return None  # the model may call no tool: a catalog it cannot load from would mislead it
        skills = await self.registry.enabled_skills(who)
        if not skills:
            return None
        tools = list(body.get("tools") or [])
        tool_name = self.config.tool_name
        if any(isinstance(t, dict) and t.get("name") == tool_name for t in tools):
            request.warn(f"skills not offered: the request defines its own tool named '{tool_name}'")
            return None
        offered = skills[: self.config.max_skills_per_request]
        names = [s.name for s in offered]
        tools.append(tool_definition(tool_name, names))  # type: ignore[arg-type]
        request.body = cast(MessagesRequest, {**body, "system": _with_catalog(body.get("system"),
                                                                              catalog_text(offered, tool_name)),
                                              "tools": tools})
        return SkillSession(self.config, self.registry, who, {s.name: s for s in offered},
                            bytes_left=self.config.max_load_bytes, loads_left=self.config.max_loads_per_request)


@dataclass(slots=True)
class SkillSession:
    """One request's skills: what it may load, what it loaded (for the audit record)."""

    config: SkillsConfig
    registry: Registry
    who: Actor
    offered: dict[str, SkillSummary]
    bytes_left: int
    loads_left: int
    loaded: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0  # upstream calls made
    # Every upstream call that answered, with its own usage: billed even when a later call fails.
    billed: list[tuple[Deployment, str, dict[str, Any]]] = field(default_factory=list)

    # Set when a hard budget holds a reservation for this request: whether one more call with this body still
    # fits in what is reserved and not yet spent.  A follow-up that may not fit is not made: the turn ends.
    affordable: Callable[[ChatRequest], bool] | None = None

    def follow_ups(self) -> FollowUps:
        """The allowance a hard budget reserves for the calls after the first: the skill text a request may
        load (bytes bound tokens) and room for the gateway's answers to refused loads.  ``affordable``
        keeps the real calls within it, whatever the model asks for."""
        loads = self.config.max_loads_per_request
        return FollowUps(calls=MAX_CALLS - 1, loaded=self.bytes_left + loads * _ANSWER_BYTES)

    @property
    def tool_name(self) -> str:
        return self.config.tool_name

    def audit(self) -> dict[str, Any]:
        return {"skills_loaded": list(self.loaded)} if self.loaded else {}

    def is_ours(self, block: ContentBlock) -> bool:
        return block.get("type") == "tool_use" and block.get("name") == self.tool_name

    def wants_loads(self, content: list[ContentBlock], stop_reason: object) -> bool:
        """Whether to answer this turn's calls and call again: only the gateway's tool was called, and
        calls are left."""
        if stop_reason != "tool_use" or self.calls >= MAX_CALLS:
            return False
        calls = [b for b in content if b.get("type") == "tool_use"]
        return bool(calls) and all(self.is_ours(b) for b in calls)

    def may_call_again(self, request: ChatRequest) -> bool:
        if self.affordable is None or self.affordable(request):
            return True
        # A streamed answer's headers are gone by now: the log is where its caller's operator sees why it ended.
        log("skills_follow_up_not_made", logging.INFO, request_id=request.request_id, calls=self.calls,
            reason="budget_reservation")
        return False

    def final_stop(self, stop_reason: Any, content: list[ContentBlock]) -> Any:
        """A turn that stopped for the gateway's tool alone, past the limits, ends as a normal turn."""
        if stop_reason == "tool_use" and not any(b.get("type") == "tool_use" for b in content):
            return "end_turn"
        return stop_reason

    async def complete(self, router: Router, request: ChatRequest) -> RoutedMessage:
        kept: list[ContentBlock] = []
        usage: dict[str, Any] = {}
        warnings: list[str] = []
        while True:
            self.calls += 1
            routed = await router.complete(request)
            message = routed.message
            self.billed.append((routed.deployment, routed.upstream_model, dict(message["usage"])))
            add_usage(usage, message["usage"])
            warnings.extend(w for w in routed.warnings if w not in warnings)
            kept.extend(b for b in message["content"] if not self.is_ours(b))
            if not self.wants_loads(message["content"], message["stop_reason"]):
                break
            await self.continue_after(request, message["content"])
            if not self.may_call_again(request):
                warnings.append(BUDGET_STOP)
                break
        final: MessageResponse = {**message, "content": kept, "usage": usage,  # type: ignore[typeddict-item]
                                  "stop_reason": self.final_stop(message["stop_reason"], kept)}
        routed.message = final
        routed.warnings = warnings
        return routed

    async def stream(self, router: Router, request: ChatRequest) -> RoutedStream:
        from passerelle.pipeline.skills_stream import spliced  # the stream half lives in its own module

        self.calls += 1
        routed = await router.stream(request)
        routed.events = spliced(self, router, request, routed, routed.events)
        return routed

    async def continue_after(self, request: ChatRequest, content: list[ContentBlock]) -> None:
        """Answer the gateway's calls in ``content`` and append both turns to ``request``."""
        results = [await self._result(block) for block in content if self.is_ours(block)]
        body = request.body
        messages = [*body["messages"], {"role": "assistant", "content": content}, {"role": "user", "content": results}]
        updated: dict[str, Any] = {**body, "messages": messages}
        if self.calls + 1 >= MAX_CALLS:
            updated["tool_choice"] = {"type": "none"}  # the last call: the model answers with what it has
        request.body = cast(MessagesRequest, updated)

    async def _result(self, call: ContentBlock) -> ContentBlock:
        text, error = await self.load(call.get("input"))
        block: ContentBlock = {"type": "tool_result", "tool_use_id": call.get("id", ""), "content": text}
        if error:
            block["is_error"] = True
        return block

    async def load(self, arguments: object) -> tuple[str, bool]:
        """(text for the model, is an error).  Every outcome is recorded for the audit without the
        requested path unless it named a real file (a model may put anything in a path)."""
        if not isinstance(arguments, dict) or not isinstance(arguments.get("name"), str):
            return self._refused(None, "invalid_arguments",
                                 'Error: expected {"name": <a skill from <available_skills>>, "path": "SKILL.md"}.')
        name = arguments["name"]
        path = arguments.get("path", "SKILL.md")
        if name not in self.offered:
            listed = ", ".join(sorted(self.offered)[:20])
            return self._refused(None, "unknown_skill", f"Error: there is no skill {name[:80]!r}. Available: {listed}.")
        if not isinstance(path, str) or not path:
            return self._refused(name, "invalid_path", "Error: path must be a file of the skill, e.g. SKILL.md.")
        if self.loads_left <= 0:
            return self._refused(name, "load_limit", f"Error: the limit of {self.config.max_loads_per_request} "
                                 "loads per request is reached; answer with what is already loaded.")
        if self.bytes_left <= 0:
            return self._refused(name, "byte_limit", f"Error: the limit of {self.config.max_load_bytes} bytes "
                                 "loaded per request is reached; answer with what is already loaded.")
        self.loads_left -= 1
        try:
            text = await self.registry.read_skill_file(self.who, name, path)
        except (SkillError, NotFound) as exc:
            return self._refused(name, "not_found" if isinstance(exc, NotFound) else "invalid_path",
                                 f"Error: {exc}")
        except Exception as exc:  # the registry is down: the model is told, the request goes on
            log("skill_load_failed", logging.WARNING, skill=name, error=exc.__class__.__name__)
            return self._refused(name, "unavailable", "Error: the skill could not be loaded right now.")
        text, size = self._within_budget(text)
        self.loaded.append({"name": name, "version": self.offered[name].version, "path": path, "bytes": size})
        return text, False

    def _within_budget(self, text: str) -> tuple[str, int]:
        """The text cut to the bytes the request may still load, and how many bytes that is."""
        data = text.encode()
        if len(data) <= self.bytes_left:
            self.bytes_left -= len(data)
            return text, len(data)
        kept = data[: self.bytes_left].decode("utf-8", errors="ignore")
        self.bytes_left = 0
        note = f"\n[... truncated: the limit of {self.config.max_load_bytes} bytes loaded per request is reached]"
        return kept + note, len(kept.encode())

    def _refused(self, name: str | None, reason: str, text: str) -> tuple[str, bool]:
        entry: dict[str, Any] = {"name": name, "error": reason}
        if name is not None:
            entry["version"] = self.offered[name].version
        self.loaded.append(entry)
        return text, True
