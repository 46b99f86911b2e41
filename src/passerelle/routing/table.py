"""The routing table: which deployments serve a model name, in which order."""

from __future__ import annotations

import fnmatch
import random
import time
from dataclasses import dataclass, field

from passerelle.config import Config
from passerelle.errors import ErrorKind, GatewayError
from passerelle.pricing import Catalog
from passerelle.providers.base import Provider, Target
from passerelle.routing.breaker import CircuitBreaker


@dataclass(slots=True)
class Deployment:
    name: str
    alias: str  # the configured alias (or pattern) this deployment serves
    provider: Provider
    provider_type: str  # "anthropic", "bedrock", ...: the price catalog's provider
    model_template: str
    weight: float
    priority: int
    labels: frozenset[str]
    breaker: CircuitBreaker
    region: str | None = None
    timeout: float = 600.0
    options: dict[str, object] = field(default_factory=dict)

    def target(self, requested_model: str, timeout: float | None = None) -> Target:
        """The deployment for one request; the caller may ask for a shorter timeout, never a longer one."""
        return Target(deployment=self.name, model=self.model_template.replace("{model}", requested_model),
                      region=self.region, timeout=min(self.timeout, timeout) if timeout else self.timeout,
                      options=dict(self.options))


@dataclass(slots=True)
class Alias:
    name: str
    deployments: list[Deployment]
    fallbacks: list[str]
    strategy: str = "priority"


class RoutingTable:
    def __init__(self, config: Config, providers: dict[str, Provider], catalog: Catalog | None = None) -> None:
        self.catalog = catalog
        self.aliases: dict[str, Alias] = {}
        self.patterns: list[Alias] = []  # glob aliases, most specific first
        router = config.router
        for alias_name, spec in config.models.items():
            deployments = [
                Deployment(
                    name=dep.name or f"{alias_name}#{i}:{dep.provider}",
                    alias=alias_name,
                    provider=providers[dep.provider],
                    provider_type=config.providers[dep.provider].type,
                    model_template=dep.model,
                    weight=dep.weight,
                    priority=dep.priority,
                    labels=frozenset(dep.labels),
                    breaker=CircuitBreaker(router.breaker_failures, router.breaker_cooldown),
                    region=dep.region,
                    timeout=dep.timeout or router.timeout,
                    options=dict(dep.options),
                )
                for i, dep in enumerate(spec.deployments)
            ]
            alias = Alias(alias_name, deployments, list(spec.fallbacks), spec.strategy)
            if any(ch in alias_name for ch in "*?["):
                self.patterns.append(alias)
            else:
                self.aliases[alias_name] = alias
        self.patterns.sort(key=lambda a: len(a.name.replace("*", "")), reverse=True)

    def names(self) -> list[str]:
        return sorted(self.aliases)

    def resolve(self, model: str) -> Alias:
        alias = self.aliases.get(model)
        if alias is not None:
            return alias
        for pattern in self.patterns:
            if fnmatch.fnmatchcase(model, pattern.name):
                return pattern
        raise GatewayError(ErrorKind.NOT_FOUND, f"model '{model}' is not served by this gateway", param="model")

    def plan(self, model: str) -> list[tuple[Deployment, str]]:
        """(deployment, model name) pairs to try in order: by priority tier, weighted-random within
        a tier, then the alias's fallback aliases (each visited once, under its own name)."""
        ordered: list[tuple[Deployment, str]] = []
        seen: set[str] = set()
        queue = [model]
        while queue:
            name = queue.pop(0)
            alias = self.resolve(name)
            if alias.name in seen:
                continue
            seen.add(alias.name)
            if alias.strategy == "cost" and self.catalog is not None:
                ordered.extend((dep, name) for dep in self._cheapest_first(alias.deployments, name))
            else:
                ordered.extend((dep, name) for dep in _weighted_order(alias.deployments))
            queue.extend(alias.fallbacks)
        return ordered


    def _cheapest_first(self, deployments: list[Deployment], name: str) -> list[Deployment]:
        """By list price (input + output per token); unpriced last.  The router skips deployments
        whose breaker is open, so the first one tried is the cheapest healthy one."""
        catalog = self.catalog
        assert catalog is not None
        now = time.time()

        def price(dep: Deployment) -> tuple[int, float]:
            found = catalog.lookup(dep.provider_type, dep.model_template.replace("{model}", name), now,
                                   region=dep.region)
            return (found.input_pico + found.output_pico if found else 1 << 62, random.random())

        return sorted(deployments, key=price)


def _weighted_order(deployments: list[Deployment]) -> list[Deployment]:
    if len(deployments) == 1:
        return deployments
    result: list[Deployment] = []
    for tier in sorted({d.priority for d in deployments}):
        pool = [d for d in deployments if d.priority == tier]
        while pool:
            pick = random.choices(pool, weights=[d.weight for d in pool])[0]
            pool.remove(pick)
            result.append(pick)
    return result
