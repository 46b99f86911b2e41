"""The purpose stage of the request path: the caller's key must be bound to an active purpose that
allows the model and route, and neither the purpose nor the route may be suspended.

Nothing here touches the database per request.  The registry (purposes, bindings, suspend switches,
suppliers) is compiled from one snapshot and swapped whole; every instance polls the registry's
version counter every ``store.refresh_interval`` seconds (0.25 by default, at most 1), which bounds
how long a suspension takes to stop traffic everywhere.

Refusals are 403 ``permission_error`` with a message naming the rule, suspensions included: a
suspension is an operator's decision, not an outage, and a 503 would make the official SDKs retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from passerelle.aiact.records import Alert, KeyBinding, Purpose, RegistrySnapshot, Supplier, Suspension
from passerelle.aiact.store import AiActStore
from passerelle.config import Config
from passerelle.errors import ErrorKind, GatewayError
from passerelle.observability.logging import log
from passerelle.pipeline.auth import Principal, config_key_id
from passerelle.routing.table import Deployment

Plan = list[tuple[Deployment, str]]


@dataclass(frozen=True, slots=True)
class PurposeBinding:
    """The purpose a request runs under."""

    purpose: Purpose
    key_id: str
    annex_use: str | None = None

    @property
    def purpose_id(self) -> str:
        return self.purpose.id


@dataclass(slots=True)
class Compiled:
    version: int
    purposes: dict[str, Purpose] = field(default_factory=dict)
    bindings: dict[str, KeyBinding] = field(default_factory=dict)
    suspended_purposes: dict[str, Suspension] = field(default_factory=dict)
    suspended_routes: dict[str, Suspension] = field(default_factory=dict)
    suppliers: list[Supplier] = field(default_factory=list)
    documented: dict[tuple[str, str], bool] = field(default_factory=dict)  # memo, per snapshot

    def supplier(self, provider_type: str, upstream_model: str) -> Supplier | None:
        exact = [s for s in self.suppliers if s.provider == provider_type and s.model == upstream_model]
        if exact:
            return exact[0]
        for s in self.suppliers:
            if s.provider in (provider_type, "*") and fnmatch.fnmatchcase(upstream_model, s.model):
                return s
        return None


def compile_registry(snapshot: RegistrySnapshot, config: Config) -> Compiled:
    out = Compiled(snapshot.version, {p.id: p for p in snapshot.purposes}, suppliers=list(snapshot.suppliers))
    names = {k.name for k in config.keys}
    for key, purpose_id in config.aiact.keys.items():  # the store's bindings (admin writes) take precedence
        key_id = config_key_id(key) if key in names else key
        out.bindings[key_id] = KeyBinding(key_id, purpose_id)
    out.bindings.update({b.key_id: b for b in snapshot.bindings})
    for s in snapshot.suspensions:
        (out.suspended_purposes if s.kind == "purpose" else out.suspended_routes)[s.target] = s
    return out


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


class PurposeStage:
    """Holds the compiled registry; ``check`` is the request path's stage."""

    def __init__(self, store: AiActStore, config: Config) -> None:
        self.store = store
        self._config = config
        self.current = compile_registry(RegistrySnapshot(version=-1), config)
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._alerted: set[tuple[str, str, str]] = set()
        self._pending: set[asyncio.Task[bool]] = set()

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="passerelle-aiact-refresh")

    async def refresh(self) -> None:
        """Load the registry now (admin writes call this so that this instance sees them at once)."""
        self.current = compile_registry(await self.store.snapshot(), self._config)

    async def _loop(self) -> None:
        interval = self._config.store.refresh_interval
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.store.version() != self.current.version:
                    await self.refresh()
                if self._failing:
                    log("aiact_refresh_recovered", logging.INFO)
                self._failing = False
            except Exception as exc:  # keep serving with the last registry; say so once per outage
                if not self._failing:
                    log("aiact_refresh_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")
                self._failing = True

    def check(self, principal: Principal, route: str, model: str) -> PurposeBinding | None:
        """The caller's purpose, or a 403 naming the rule the request breaks."""
        reg = self.current
        suspended = reg.suspended_routes.get(route)
        if suspended is not None:
            raise GatewayError(ErrorKind.PERMISSION, f"the {route} route is suspended by the operator "
                               f"(AI Act Art 14(4)(e)): {suspended.reason or 'no reason given'}")
        bound = reg.bindings.get(principal.key_id)
        if bound is None:
            if self._config.aiact.require_purpose and not principal.admin:
                raise GatewayError(ErrorKind.PERMISSION, "this API key is bound to no registered purpose, and "
                                   "this gateway requires one (aiact.require_purpose): ask an administrator "
                                   "to bind the key to a purpose")
            return None
        purpose = reg.purposes.get(bound.purpose_id)
        if purpose is None:
            raise GatewayError(ErrorKind.PERMISSION, f"this API key is bound to purpose '{bound.purpose_id}', "
                               "which is not registered")
        held = reg.suspended_purposes.get(purpose.id)
        if held is not None or purpose.status == "suspended":
            reason = held.reason if held is not None and held.reason else "no reason given"
            raise GatewayError(ErrorKind.PERMISSION, f"purpose '{purpose.id}' is suspended by the operator "
                               f"(AI Act Art 14(4)(e)): {reason}")
        if purpose.status != "active":
            raise GatewayError(ErrorKind.PERMISSION, f"purpose '{purpose.id}' is not active (status "
                               f"{purpose.status}): it cannot serve requests yet")
        if purpose.routes and route not in purpose.routes:
            raise GatewayError(ErrorKind.PERMISSION, f"the {route} route is outside purpose '{purpose.id}' "
                               f"(allowed routes: {', '.join(purpose.routes)})")
        if purpose.models and not _model_allowed(model, purpose.models):
            raise GatewayError(ErrorKind.PERMISSION, f"model '{model}' is outside purpose '{purpose.id}' "
                               f"(allowed models: {', '.join(purpose.models)})", param="model")
        if purpose.general_purpose and bound.annex_use:
            self._role_drift(bound, purpose)
        return PurposeBinding(purpose, principal.key_id, bound.annex_use)

    def _role_drift(self, bound: KeyBinding, purpose: Purpose) -> None:
        """Art 25: a general-purpose purpose serving an Annex III use; one alert per key, purpose and day."""
        now = time.time()
        mark = (bound.key_id, purpose.id, _day(now))
        if mark in self._alerted:
            return
        self._alerted.add(mark)
        message = (f"general-purpose purpose '{purpose.id}' used by a key tagged for the Annex III use "
                   f"{bound.annex_use}: the deployer may become a provider (Art 25(1))")
        log("aiact_role_drift", logging.WARNING, key_id=bound.key_id, purpose=purpose.id, annex_use=bound.annex_use)
        alert = Alert("alr_" + uuid.uuid4().hex[:16], "role_drift", bound.key_id, purpose.id, mark[2], message, now)
        task = asyncio.get_running_loop().create_task(self._save_alert(alert))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _save_alert(self, alert: Alert) -> bool:
        try:
            return await self.store.add_alert(alert)
        except Exception as exc:  # the log line stands; the next instance or day retries
            log("aiact_alert_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")
            return False

    def documented(self, deployment: Deployment, model: str) -> bool:
        reg = self.current
        upstream = deployment.model_template.replace("{model}", model)
        memo = (deployment.provider_type, upstream)
        found = reg.documented.get(memo)
        if found is None:
            supplier = reg.supplier(*memo)
            found = reg.documented[memo] = supplier is not None and supplier.documented
        return found

    def filter_plan(self, model: str, plan: Plan) -> Plan:
        """``aiact.require_supplier_docs``: skip deployments whose upstream model has no documentation and
        training-data summary on file; refuse when none remains."""
        kept = [(d, m) for d, m in plan if self.documented(d, m)]
        if not kept:
            raise GatewayError(ErrorKind.PERMISSION, f"no deployment of '{model}' has its supplier documents on "
                               "file (documentation and Art 53(1)(d) training-data summary), which this gateway "
                               "requires (aiact.require_supplier_docs)", param="model")
        return kept

    async def flush_alerts(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush_alerts()
        await self.store.aclose()


def _model_allowed(model: str, allowed: tuple[str, ...]) -> bool:
    return model in allowed or any(fnmatch.fnmatchcase(model, p) for p in allowed if "*" in p or "?" in p)


PlanFilter = Callable[[str, Plan], Plan]
