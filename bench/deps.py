"""The benchmark's own dependencies (the `bench` extra: orjson, matplotlib), checked with a clear message."""

from __future__ import annotations

import importlib.util
import sys

EXTRA = ("orjson", "matplotlib")
HINT = "pip install orjson matplotlib   (the `bench` extra: pip install -e '.[bench]')"


def missing() -> list[str]:
    return [name for name in EXTRA if importlib.util.find_spec(name) is None]


def require() -> None:
    """Stop with a readable message when the benchmark's dependencies are not installed."""
    absent = missing()
    if absent:
        sys.exit(f"bench: missing {', '.join(absent)}; install them with: {HINT}")


try:
    import orjson
except ImportError:  # pragma: no cover - exercised by hand
    sys.exit(f"bench: missing orjson; install it with: {HINT}")

__all__ = ["EXTRA", "HINT", "missing", "orjson", "require"]
