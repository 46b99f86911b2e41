"""Passerelle's side: the engine built once, in this process; only ``scan()`` is timed."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from bench.compliance.corpus import Sample
from bench.compliance.evaluate import Pred
from bench.compliance.tokens import CODEWORDS


def build() -> tuple[Any, float]:
    """The engine with every shipped detector and the corpus's codewords (a tenant's deny list)."""
    from passerelle.compliance.detectors import default_detectors
    from passerelle.compliance.engine import Engine

    start = time.perf_counter()
    engine = Engine(default_detectors(codewords=CODEWORDS))
    return engine, time.perf_counter() - start


def finance_types() -> frozenset[str]:
    from passerelle.cli.scan import pack_types

    types = pack_types("finance")
    assert types is not None
    return types


def scan_corpus(engine: Any, samples: Sequence[Sample], types: Collection[str] | None = None
                ) -> tuple[dict[str, list[Pred]], list[float]]:
    """Findings per text and the seconds each ``scan()`` took."""
    predictions: dict[str, list[Pred]] = {}
    seconds: list[float] = []
    clock = time.perf_counter
    scan = engine.scan
    for sample in samples:
        t0 = clock()
        found = scan(sample.text, types)
        seconds.append(clock() - t0)
        predictions[sample.id] = [(f.start, f.end, f.type) for f in found]
    return predictions, seconds


def _timed(one_pass: Callable[[], object], passes: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each of ``passes`` calls of ``one_pass`` (collector paused)."""
    clock, cpu = time.perf_counter, time.thread_time
    wall, used = [], []
    gc.collect()
    gc.disable()
    try:
        for _ in range(passes):
            c0 = cpu()
            t0 = clock()
            one_pass()
            wall.append(clock() - t0)
            used.append(cpu() - c0)
    finally:
        gc.enable()
    return wall, used


def timed_passes(engine: Any, texts: Sequence[str], types: Collection[str] | None, passes: int
                 ) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``passes`` whole passes over ``texts`` (scan calls only, collector paused)."""
    scan = engine.scan

    def one_pass() -> None:
        for text in texts:
            scan(text, types)

    return _timed(one_pass, passes)


def timed_batch_passes(engine: Any, texts: Sequence[str], passes: int, batch: int) -> tuple[list[float], list[float]]:
    """Like ``timed_passes`` with every detector, through ``scan_many`` in calls of ``batch`` texts: the path of
    ``passerelle scan --jsonl``."""
    scan_many = engine.scan_many

    def one_pass() -> None:
        for at in range(0, len(texts), batch):
            scan_many(texts[at:at + batch])

    return _timed(one_pass, passes)


def latencies(engine: Any, prompts: Sequence[str], types: Collection[str] | None, requests: int,
              warmup: int = 50) -> tuple[list[float], list[float]]:
    """Milliseconds per ``scan()`` of the prompts in turn, wall clock and this thread's CPU time, after
    ``warmup`` unrecorded calls (the CPU time shows what other processes on the machine took away)."""
    clock, cpu = time.perf_counter, time.thread_time
    scan = engine.scan
    for i in range(warmup):
        scan(prompts[i % len(prompts)], types)
    wall, used = [], []
    for i in range(requests):
        text = prompts[i % len(prompts)]
        c0 = cpu()
        t0 = clock()
        scan(text, types)
        t1 = clock()
        used.append((cpu() - c0) * 1000)
        wall.append((t1 - t0) * 1000)
    return wall, used
