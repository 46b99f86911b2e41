"""Write-behind's background task, shared by the usage ledger and the audit log: it calls the owner's
``flush`` every interval, and logs an outage once (``<name>_write_failed``, then ``<name>_recovered``).

Stopping lets a flush in progress finish: a commit cut short could lose its batch, or leave a worker
thread still moving records while the owner's final flush runs beside it.  A flush still running
``STOP_GRACE_S`` after the stop (a database that hangs) is cancelled.  The owners' flushes survive a
cancellation (an event loop's teardown cancels every task left too): the ledger puts the batch back, the
audit log waits for a commit already under way, which the store's own timeouts bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from passerelle.observability.logging import log

STOP_GRACE_S = 10.0


class FlushLoop:
    def __init__(self, name: str, flush: Callable[[], Awaitable[None]], interval: float,
                 pending: Callable[[], int]) -> None:
        self.name = name
        self.failing = False  # the last flush failed: the owner keeps quiet about its full queue meanwhile
        self._flush = flush
        self._interval = interval
        self._pending = pending
        self._stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self._stopping.clear()  # started again after a stop
            self.task = asyncio.create_task(self._run(), name=f"passerelle-{self.name}-writer")

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Let a flush in progress finish (cancelled only after ``grace`` seconds), then end the task; the owner
        then flushes what is left."""
        if self.task is not None:
            self._stopping.set()
            if not (await asyncio.wait({self.task}, timeout=grace))[0]:
                self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), self._interval)
                return
            except TimeoutError:
                pass
            try:
                await self._flush()
                if self.failing:
                    log(f"{self.name}_recovered", logging.INFO)
                self.failing = False
            except Exception as exc:
                if not self.failing:
                    log(f"{self.name}_write_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}",
                        pending=self._pending())
                self.failing = True
