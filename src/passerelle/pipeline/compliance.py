"""The compliance stage, request side: find sensitive data in a prompt and act on it before any upstream.

Runs after admission and before the response cache, so the cache only ever sees protected requests.
Every text a caller sends is scanned: the system prompt, each message's text, tool results and earlier
tool-call arguments (thinking blocks are left alone: they are signed by the upstream that wrote them).
Per entity type the caller's policy (packs + overrides, see ``compliance.policy``) decides:

- redact, mask, hash, pseudonymize: the text is rewritten in place (surrogates are remembered in the
  request's ``Vault`` and restored in the answer, see ``compliance_answer``);
- block: the request is refused, the error listing each type and where it is, never a value;
- route: the request may only go to deployments carrying the policy's label (``required_label``).

Fail closed: a scan that raises refuses the request; nothing unscanned is forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from passerelle.canonical import ChatRequest
from passerelle.compliance import Engine
from passerelle.compliance.actions import apply
from passerelle.compliance.findings import Detector, Finding
from passerelle.compliance.policy import Policy, PolicyError, build_policy, load_pack
from passerelle.compliance.pseudonyms import Pseudonymizer, Vault
from passerelle.config.schema import ComplianceConfig, PolicyConfig
from passerelle.errors import ErrorKind, GatewayError
from passerelle.observability.logging import log
from passerelle.pipeline.auth import Principal
from passerelle.stores.records import CompliancePolicy

SECRET_FILE = "compliance.key"
_MAX_LISTED = 20  # block errors name at most this many findings (and count the rest)


@dataclass(slots=True)
class Protection:
    """What the stage did to one request: needed to restore its answer and for its audit record."""

    policy: Policy
    vault: Vault
    hash_key: bytes
    engine: Scanner
    findings: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (direction, type, action)
    route_label: str | None = None
    refusal: GatewayError | None = None  # the block error: raised by the caller once it has the audit facts

    def summary(self) -> list[dict[str, object]]:
        """Types, counts and actions, never values: what logs and the audit record may hold."""
        return [{"direction": d, "type": t, "action": a, "count": n}
                for (d, t, a), n in sorted(self.findings.items())]


def load_secret(config: ComplianceConfig, data_dir: Path) -> bytes:
    """The pseudonym and hash secret: from config, else a random one created once in the data dir (the
    first worker creates it, the others read it)."""
    if config.secret:
        return config.secret.encode()
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
        raise GatewayError(ErrorKind.API_ERROR, f"{path} is damaged: delete it to make a new one") from None
    with os.fdopen(fd, "wb") as out:
        out.write(os.urandom(32).hex().encode())
    return path.read_bytes()


@dataclass(frozen=True, slots=True)
class Scanner:
    """The shared engine, with a tenant's own detectors (its codewords) run beside it."""

    engine: Engine
    extra: tuple[Detector, ...] = ()

    def scan(self, text: str, types: frozenset[str]) -> list[Finding]:
        return self.engine.scan(text, types, extra=self.extra)


def configured(config: ComplianceConfig) -> bool:
    """Whether any policy is configured (else the stage does nothing, and needs no secret)."""
    return bool(config.packs or config.overrides or any(
        p.packs or p.overrides for p in (*config.tenants.values(), *config.keys.values())))


def stored_layers(policies: Iterable[CompliancePolicy]) -> dict[tuple[str, str], PolicyConfig]:
    """Policies set through the admin API by (scope, id), each as the config file's layers hold one."""
    return {(p.scope, p.scope_id): PolicyConfig(packs=None if p.packs is None else list(p.packs),
                                                overrides=dict(p.overrides), codewords=list(p.codewords))
            for p in policies}


def _acted_on(layers: Iterable[PolicyConfig]) -> frozenset[str]:
    """Every entity type some layer acts on: detectors for the others are never built."""
    types: set[str] = set()
    for layer in layers:
        for name in layer.packs or ():
            with contextlib.suppress(PolicyError):  # reported when that policy is compiled
                types.update(t for t, a in load_pack(name).actions.items() if a != "allow")
        types.update(t for t, a in layer.overrides.items() if a != "allow")
    return frozenset(types)


class ComplianceStage:
    """Built once per process: the engines compile their patterns at start or when the admin API sets a policy
    that needs more detectors (off the event loop), never per request.

    Layers, lowest first: the config's defaults, the tenant's policy, the key's policy.  A tenant's or key's
    policy comes from the config file or, when the file has none for it, from the store (set through the admin
    API or CLI; ``update`` swaps them in when the store's version changes)."""

    def __init__(self, config: ComplianceConfig, secret: bytes | Callable[[], bytes]) -> None:
        self.config = config
        self._secret_source = secret
        self._secret = secret if isinstance(secret, bytes) else b""
        self._engine: Engine | None = None
        self._engine_types: frozenset[str] = frozenset()  # what the engine was built to detect
        self._scanners: dict[tuple[str, ...], Scanner] = {}
        self._policies: dict[tuple[str, str], tuple[Policy, Scanner] | None] = {}
        self._pseudonymizers: dict[str, tuple[Pseudonymizer, bytes]] = {}
        self._stored: dict[tuple[str, str], PolicyConfig] = {}  # (scope, id) -> a policy set through the admin API
        self._stored_source: tuple[CompliancePolicy, ...] = ()
        self._version = -1  # the store version of the policies applied last
        self._updating = asyncio.Lock()
        self.enabled = configured(config)
        self._types = self._all_types()
        if self.enabled:  # compile every configured policy now: a bad one fails the start, not a request
            self._load_secret()
            for tenant in ("", *config.tenants):
                self._compile(tenant, "", None)
            for key in config.keys:
                self._compile("", key, None)

    def _load_secret(self) -> None:
        if not self._secret and callable(self._secret_source):
            self._secret = self._secret_source()

    async def update(self, version: int, stored: Sequence[CompliancePolicy]) -> None:
        """Take the store's policies at ``version`` (every instance, when the store's version changes).  A policy
        that needs detectors the engine lacks gets a new engine, compiled in a worker thread; requests keep the old
        state until the new one is whole.  Updates apply one at a time, and one older than the last applied (two
        refreshes racing) changes nothing."""
        async with self._updating:
            if version > self._version:
                await self._update(tuple(stored))
                self._version = version

    async def _update(self, stored: tuple[CompliancePolicy, ...]) -> None:
        if stored == self._stored_source:
            return
        layers = stored_layers(stored)
        types = self._all_types(layers.values())
        enabled = configured(self.config) or any(layer.packs or layer.overrides for layer in layers.values())
        engine = self._engine
        if engine is not None and not types <= self._engine_types:
            engine = None  # built again below for every type
        if enabled:
            await asyncio.to_thread(self._load_secret)
            if engine is None and types:
                from passerelle.compliance.detectors import default_detectors

                engine = await asyncio.to_thread(lambda: Engine(default_detectors((), types)))
        # No await below: requests see the old state or the new one, whole.
        if engine is not self._engine:
            self._scanners, self._engine_types = {}, types
        self._engine, self._types, self._stored, self._stored_source = engine, types, layers, stored
        self._policies = {}
        self.enabled = enabled

    def policy_for(self, who: Principal) -> tuple[Policy, Scanner] | None:
        """The caller's compiled policy, or None when nothing is to be scanned for it."""
        cache_key = (who.tenant_id, who.key_id)
        if cache_key not in self._policies:
            if len(self._policies) > 10_000:  # keys come and go: bound the memo
                self._policies.clear()
            self._policies[cache_key] = self._compile(who.tenant_id, who.key_id, who.name)
        return self._policies[cache_key]

    def _compile(self, tenant: str, key_id: str, key_name: str | None) -> tuple[Policy, Scanner] | None:
        merged = merge_layers([layer for _, _, layer in policy_layers(self.config, self._stored, tenant, key_id,
                                                                      key_name)])
        if merged is None:
            return None
        packs, overrides, codewords = merged
        try:
            policy = build_policy([load_pack(name) for name in packs], overrides)
        except PolicyError as exc:
            raise GatewayError(ErrorKind.API_ERROR, f"compliance policy of tenant {tenant!r}: {exc}") from None
        if not policy.types:
            return None
        # The detectors (and their dictionaries) are loaded only where a policy is configured.
        from passerelle.compliance.detectors import default_detectors
        from passerelle.compliance.detectors.codewords import CodewordDetector

        if self._engine is None:  # one engine for every policy; a tenant's codewords scan beside it
            self._engine, self._engine_types = Engine(default_detectors((), self._types)), self._types
        words = tuple(sorted(codewords))
        scanner = self._scanners.get(words)
        if scanner is None:
            scanner = self._scanners[words] = Scanner(self._engine, (CodewordDetector(words),) if words else ())
        return policy, scanner

    def _all_types(self, stored: Iterable[PolicyConfig] = ()) -> frozenset[str]:
        c = self.config
        return _acted_on((PolicyConfig(packs=c.packs, overrides=c.overrides), *c.tenants.values(),
                          *c.keys.values(), *stored))

    def _tenant_keys(self, tenant: str) -> tuple[Pseudonymizer, bytes]:
        found = self._pseudonymizers.get(tenant)
        if found is None:
            hash_key = hmac.new(self._secret, f"hash\x00{tenant}".encode(), hashlib.sha256).digest()
            found = self._pseudonymizers[tenant] = (Pseudonymizer(self._secret, tenant), hash_key)
        return found

    def protect(self, who: Principal, request: ChatRequest) -> Protection | None:
        """Scans and rewrites ``request`` in place; None when no policy applies.  A request to block comes
        back with its ``refusal`` set (and may be half rewritten: it must not be sent anywhere)."""
        compiled = self.policy_for(who)
        if compiled is None:
            return None
        policy, engine = compiled
        pseudonymizer, hash_key = self._tenant_keys(who.tenant_id)
        protection = Protection(policy, Vault(pseudonymizer), hash_key, engine)
        blocked: list[str] = []
        wanted = policy.types
        try:
            for where, text, put in _request_texts(cast(MutableMapping[str, Any], request.body)):
                findings = engine.scan(text, wanted)
                if not findings:
                    continue
                outcome = apply(text, findings, policy, protection.vault, hash_key)
                for finding, action in outcome.applied:
                    protection.findings["prompt", finding.type, action] += 1
                blocked.extend(_located(where, f) for f in outcome.blocked)
                if outcome.route_label:
                    protection.route_label = outcome.route_label
                if outcome.text is not text:
                    put(outcome.text)
        except Exception as exc:
            log("compliance_scan_failed", logging.ERROR, request_id=request.request_id,
                error=exc.__class__.__name__)  # the message may quote the text: not logged
            raise GatewayError(ErrorKind.API_ERROR, "the compliance scan failed, so the request was not "
                               "forwarded; the gateway's log has the request id") from None
        if blocked:
            listed = "; ".join(blocked[:_MAX_LISTED])
            more = f" (and {len(blocked) - _MAX_LISTED} more)" if len(blocked) > _MAX_LISTED else ""
            protection.refusal = GatewayError(ErrorKind.PERMISSION, f"request blocked by the compliance policy "
                                              f"({', '.join(policy.packs) or 'overrides'}): {listed}{more}")
            return protection
        if protection.route_label:
            request.required_label = protection.route_label
        return protection


Layer = tuple[str, str, PolicyConfig]  # ("defaults" | "tenant" | "key", "config" | "admin", the policy)


def policy_layers(config: ComplianceConfig, stored: Mapping[tuple[str, str], PolicyConfig], tenant: str,
                  key_id: str = "", key_name: str | None = None) -> list[Layer]:
    """A caller's policy layers, lowest first: the config's defaults, then the tenant's and the key's policies,
    each from the config file or, when the file has none for it, from ``stored`` (set through the admin API).
    A key is named in the file by its id or its name."""
    layers: list[Layer] = [("defaults", "config", PolicyConfig(packs=config.packs, overrides=config.overrides,
                                                               codewords=config.codewords))]
    if tenant in config.tenants:
        layers.append(("tenant", "config", config.tenants[tenant]))
    elif ("tenant", tenant) in stored:
        layers.append(("tenant", "admin", stored["tenant", tenant]))
    named = next((config.keys[n] for n in (key_id, key_name) if n and n in config.keys), None)
    if named is not None:
        layers.append(("key", "config", named))
    elif key_id and ("key", key_id) in stored:
        layers.append(("key", "admin", stored["key", key_id]))
    return layers


def merge_layers(layers: Sequence[PolicyConfig]) -> tuple[list[str], dict[str, str], set[str]] | None:
    """Packs (the highest layer that names some), overrides and codewords (every layer's); None when the
    layers select nothing."""
    packs: list[str] = []
    overrides: dict[str, str] = {}
    codewords: set[str] = set()
    for layer in layers:
        if layer.packs is not None:
            packs = layer.packs
        overrides.update(layer.overrides)
        codewords.update(layer.codewords)
    if not packs and not overrides:
        return None
    return packs, overrides, codewords


def _located(where: str, finding: Finding) -> str:
    return f"{finding.type} at {where}[{finding.start}:{finding.end}]"


Put = Callable[[str], None]


def _request_texts(body: MutableMapping[str, Any]) -> Iterator[tuple[str, str, Put]]:
    """(where, text, setter) for every caller-written text of a canonical request."""
    system = body.get("system")
    if isinstance(system, str):
        yield "system", system, _setter(body, "system")
    elif isinstance(system, list):
        yield from _block_texts("system", system)
    for i, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            yield f"messages[{i}].content", content, _setter(message, "content")
        elif isinstance(content, list):
            yield from _block_texts(f"messages[{i}].content", content)


def _block_texts(where: str, blocks: MutableSequence[Any]) -> Iterator[tuple[str, str, Put]]:
    for j, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        here = f"{where}[{j}]"
        if kind == "text" and isinstance(block.get("text"), str):
            yield f"{here}.text", block["text"], _setter(block, "text")
        elif kind == "tool_result":
            inner = block.get("content")
            if isinstance(inner, str):
                yield f"{here}.content", inner, _setter(block, "content")
            elif isinstance(inner, list):
                yield from _block_texts(f"{here}.content", inner)
        elif kind == "tool_use" and isinstance(block.get("input"), dict):
            yield from json_strings(f"{here}.input", block["input"])
        elif kind == "document" and isinstance(block.get("source"), dict) and block["source"].get("type") == "text":
            source = block["source"]
            if isinstance(source.get("data"), str):
                yield f"{here}.source.data", source["data"], _setter(source, "data")


def json_strings(where: str, value: Any) -> Iterator[tuple[str, str, Put]]:
    """Every string inside a JSON value (tool arguments), with a setter for each."""
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        here = f"{where}.{key}" if isinstance(value, dict) else f"{where}[{key}]"
        if isinstance(item, str):
            yield here, item, _setter(value, key)
        elif isinstance(item, (dict, list)):
            yield from json_strings(here, item)


def _setter(container: Any, key: Any) -> Put:
    def put(text: str) -> None:
        container[key] = text

    return put
