"""Prometheus metrics.  With several workers, PROMETHEUS_MULTIPROC_DIR is set by the CLI before
this module loads, and /metrics aggregates every worker's samples."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter("passerelle_requests_total", "Requests answered, by route, model and status",
                   ["route", "model", "status"])
LATENCY = Histogram("passerelle_request_duration_seconds", "Time to the whole answer (or the stream's end)",
                    ["route", "model"], buckets=_BUCKETS)
FIRST_BYTE = Histogram("passerelle_stream_first_event_seconds", "Time to the first streamed event",
                       ["route", "model"], buckets=_BUCKETS)
UPSTREAM_ERRORS = Counter("passerelle_upstream_errors_total", "Failed upstream attempts, by deployment and kind",
                          ["deployment", "kind"])
TOKENS = Counter("passerelle_tokens_total", "Tokens reported by upstreams", ["model", "deployment", "type"])
LEDGER_WRITTEN = Counter("passerelle_ledger_written_total", "Usage records committed to the ledger")
LEDGER_DROPPED = Counter("passerelle_ledger_dropped_total", "Usage records dropped: the ledger queue was full")
CACHE = Counter("passerelle_cache_total", "Response cache lookups, by result", ["result"])
REJECTED = Counter("passerelle_rejected_total", "Requests refused by budgets and rate limits", ["reason"])


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, memoised: label sets are bounded by the configuration (route,
    alias, deployment, status), and the lookup is on every request's path."""
    key = (id(metric), labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def record_usage(model: str, deployment: str, usage: Mapping[str, object]) -> None:
    for key, name in (("input_tokens", "input"), ("output_tokens", "output"),
                      ("cache_read_input_tokens", "cache_read"), ("cache_creation_input_tokens", "cache_write")):
        value = usage.get(key)
        if isinstance(value, int) and value > 0:
            child(TOKENS, model, deployment, name).inc(value)
