"""A circuit breaker per deployment: stop calling an upstream that keeps failing."""

from __future__ import annotations

import time


class CircuitBreaker:
    """Closed -> open after ``failures`` consecutive failures; after ``cooldown`` seconds one
    trial request goes through (half-open): success closes it, failure re-opens it."""

    __slots__ = ("_clock", "_consecutive", "_cooldown", "_limit", "_opened_at", "_trial_running")

    def __init__(self, failures: int, cooldown: float) -> None:
        self._limit = failures
        self._cooldown = cooldown
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._clock = time.monotonic

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self._cooldown else "open"

    def allow(self) -> bool:
        if self._opened_at is None:
            return True
        if self._clock() - self._opened_at < self._cooldown or self._trial_running:
            return False
        self._trial_running = True
        return True

    def success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_running = False

    def failure(self) -> None:
        self._consecutive += 1
        if self._trial_running or self._consecutive >= self._limit:
            self._opened_at = self._clock()
        self._trial_running = False
