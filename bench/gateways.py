"""The gateways under test, all in front of the same upstream simulator, all spoken to in the OpenAI dialect.

- ``direct``: the load generator straight to the simulator (the floor);
- ``relay``: socat relaying TCP to the upstream, no HTTP at all (the floor of any extra hop: kernel copies and
  process wake-ups; only when asked for, and only where socat is installed);
- ``passthrough``: bench/passthrough.py, the thinnest Python proxy (the Python floor);
- ``passerelle``: Passerelle with default features, an ``openai`` provider pointing at the simulator
  (same dialect both sides: nothing translated), a virtual key from the config sent as Bearer;
- ``passerelle-budgets``: the same with hard and soft budgets and rate limits on every request (cost
  control's configuration, see BUDGETS_OVERLAY);
- ``passerelle-finance``: the same with the finance compliance pack on (see FINANCE_OVERLAY);
- ``passerelle-full``: both of them at once (FULL_FEATURES_OVERLAY);
- ``passerelle-scaleout``: ``passerelle-full`` on PostgreSQL + Redis;
- ``passerelle-anthropic``: default features, the simulator reached as an ``anthropic`` provider (the Messages
  API upstream, as Claude is served): requests and streams translated both ways;
- ``litellm``: LiteLLM proxy, configured as in shared/reference/peers.md.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import peer_litellm
from bench.procs import Proc, free_port

REPO = Path(__file__).resolve().parent.parent
MODEL = "bench-model"
VIRTUAL_KEY = "sk-bench-virtual-key-0123456789"
CHAT_PATH = "/v1/chat/completions"

# Config sections merged over the "passerelle" config (see passerelle_config).  "passerelle-budgets":
# metering with a price, a hard monthly budget and rate limits on the bench key, and a soft daily
# budget on its tenant, so every request reserves, settles and is priced into the ledger.  (Metering
# alone is on by default in "passerelle" too.)
BUDGETS_OVERLAY: dict[str, Any] = {
    "metering": {
        "prices": [{"provider": "openai", "model": MODEL, "input": "3", "output": "15", "cache_read": "0.3"}],
        "budgets": [
            {"scope": "key", "scope_id": "bench", "limit_usd": "1000000", "period": "month", "mode": "hard"},
            {"scope": "tenant", "scope_id": "default", "limit_usd": "1000000", "period": "day", "mode": "soft"},
        ],
        "rate_limits": [{"scope": "key", "scope_id": "bench", "rpm": 100_000_000, "tpm": 100_000_000_000}],
    },
}
# "passerelle-finance": the finance compliance pack, so every prompt is scanned and every answer scanned and
# restored (streams through the bounded hold-back).
FINANCE_OVERLAY: dict[str, Any] = {"compliance": {"packs": ["finance"]}}
# "passerelle-full" and "passerelle-scaleout": both.
FULL_FEATURES_OVERLAY: dict[str, Any] = {**BUDGETS_OVERLAY, **FINANCE_OVERLAY}
# Each Passerelle configuration: its sections over the defaults (scale-out adds its store in ``start``).
OVERLAYS: dict[str, dict[str, Any]] = {"passerelle-budgets": BUDGETS_OVERLAY, "passerelle-finance": FINANCE_OVERLAY,
                                       "passerelle-full": FULL_FEATURES_OVERLAY,
                                       "passerelle-scaleout": FULL_FEATURES_OVERLAY}

# "passerelle-scaleout": the full features on the scale-out backend (PostgreSQL + Redis, as several
# instances behind a load balancer would share them).  Its schema and key prefix are emptied before
# each start; skipped when either service does not answer.
SCALEOUT_POSTGRES = os.environ.get("PASSERELLE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SCALEOUT_REDIS = os.environ.get("PASSERELLE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SCALEOUT_SCHEMA = "passerelle_bench"
SCALEOUT_PREFIX = "passerelle-bench:"

DESCRIPTIONS = {
    "direct": "load generator straight to the upstream simulator (the floor)",
    "relay": "socat relaying TCP to the upstream, a process per connection, no HTTP (the floor of any extra hop)",
    "passthrough": "raw ASGI on granian + one pooled aiohttp client + orjson, no validation or auth (Python floor)",
    "passerelle": "Passerelle, default features, virtual key as Bearer, OpenAI dialect to an openai provider",
    "passerelle-granian": "Passerelle as above, served by granian instead of uvicorn",
    "passerelle-python": "Passerelle as above, its compiled twins switched off (PASSERELLE_COMPILED=0): pure Python",
    "passerelle-budgets": "Passerelle with metering, hard + soft budgets and rate limits on (cost control)",
    "passerelle-finance": "Passerelle with the finance compliance pack on (prompts and answers scanned)",
    "passerelle-full": "Passerelle with the finance compliance pack, metering, hard + soft budgets and rate limits on",
    "passerelle-scaleout": "passerelle-full on PostgreSQL + Redis (the multi-instance backend)",
    "passerelle-anthropic": "Passerelle, default features, OpenAI dialect in, an anthropic provider upstream",
    "litellm": "LiteLLM proxy, config of peers.md, master key as Bearer",
}


@dataclass(slots=True)
class Endpoint:
    name: str
    url: str  # where the load generator sends chat completions
    headers: dict[str, str]
    health: str
    proc: Proc | None = None  # None for direct: no gateway process
    extra: dict[str, Any] = field(default_factory=dict)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def passerelle_config(upstream_port: int, workers: int, data_dir: Path, *, engine: str = "uvicorn",
                      overlay: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "server": {"workers": workers, "data_dir": str(data_dir), "engine": engine},
        "providers": {"upstream": {"type": "openai", "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                                   "api_key": "sk-upstream-not-checked"}},
        "models": {MODEL: {"deployments": [{"provider": "upstream", "model": MODEL}]}},
        "keys": [{"name": "bench", "key": VIRTUAL_KEY}],
    }
    return deep_merge(config, overlay) if overlay is not None else config


def scaleout_overlay() -> dict[str, Any]:
    return {"store": {"backend": "postgres", "postgres_dsn": SCALEOUT_POSTGRES, "postgres_schema": SCALEOUT_SCHEMA,
                      "redis_url": SCALEOUT_REDIS, "redis_prefix": SCALEOUT_PREFIX}}


def reset_scaleout() -> str | None:
    """Empty the benchmark's schema and keys; the reason it cannot, or None."""
    import asyncio

    async def reset() -> None:
        import asyncpg
        import redis.asyncio as aioredis

        conn = await asyncpg.connect(SCALEOUT_POSTGRES, timeout=5)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {SCALEOUT_SCHEMA} CASCADE")
        finally:
            await conn.close()
        client = aioredis.from_url(SCALEOUT_REDIS, socket_timeout=5)
        try:
            keys = [k async for k in client.scan_iter(match=SCALEOUT_PREFIX + "*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    try:
        asyncio.run(reset())
    except Exception as exc:  # not reachable, not installed: the gateway is skipped with the reason
        return f"skipped: PostgreSQL or Redis not usable ({exc.__class__.__name__}: {exc})"
    return None


PASSERELLES = ("passerelle", "passerelle-granian", "passerelle-python", "passerelle-anthropic", *OVERLAYS)


def unavailable(name: str, litellm: peer_litellm.LiteLLMInstall | None) -> str | None:
    """Why a gateway cannot run in this run, or None."""
    if name == "passerelle-scaleout":
        return reset_scaleout()
    if name == "relay" and shutil.which("socat") is None:
        return "skipped: socat is not installed (apt install socat)"
    if name == "litellm":
        if litellm is None:
            return "skipped: not installed"
        if not litellm.ok:
            return "skipped: LiteLLM could not be installed: " + litellm.message
    return None


def child_env() -> dict[str, str]:
    """The environment of a process the benchmark starts: this checkout importable, output unbuffered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(name: str, upstream_port: int, workers: int, work: Path, tag: str, *, wrap: Sequence[str] = (),
          environ: Mapping[str, str] | None = None) -> Endpoint:
    """Start gateway ``name`` in front of the simulator on ``upstream_port``; ``tag`` names its files.  A
    Passerelle configuration may run under ``wrap`` (a profiler's command line) with ``environ`` added."""
    upstream = f"http://127.0.0.1:{upstream_port}"
    if name == "direct":
        return Endpoint(name, upstream + CHAT_PATH, {"authorization": "Bearer sk-direct"}, upstream + "/health")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / f"{tag}-{name}.log"
    if name == "relay":
        cmd = ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay",
               f"TCP:127.0.0.1:{upstream_port},nodelay"]
        proc = Proc(name, cmd, log, env=child_env(), cwd=REPO)
        return Endpoint(name, base + CHAT_PATH, {"authorization": "Bearer sk-direct"}, base + "/health", proc)
    if name == "passthrough":
        cmd = [sys.executable, "-m", "bench.passthrough", "--port", str(port), "--upstream", upstream,
               "--workers", str(workers)]
        proc = Proc(name, cmd, log, env=child_env(), cwd=REPO)
        return Endpoint(name, base + CHAT_PATH, {"authorization": "Bearer sk-unused"}, base + "/health", proc)
    if name in PASSERELLES:
        data = work / f"{tag}-{name}-data"
        data.mkdir(parents=True, exist_ok=True)
        config = passerelle_config(upstream_port, workers, data,
                                   engine="granian" if name == "passerelle-granian" else "uvicorn",
                                   overlay=OVERLAYS.get(name))
        if name == "passerelle-anthropic":  # the simulator speaks the Messages API too
            config = deep_merge(config, {"providers": {"upstream": {"type": "anthropic", "base_url": upstream}}})
        if name == "passerelle-scaleout":
            problem = reset_scaleout()
            if problem:
                raise RuntimeError(problem)
            config = deep_merge(config, scaleout_overlay())
        path = work / f"{tag}-{name}.yaml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        env = child_env()
        env["PASSERELLE_ADMIN_KEY"] = "sk-bench-admin-" + secrets.token_hex(8)
        env.pop("PASSERELLE_CONFIG", None)
        if name == "passerelle-python":
            env["PASSERELLE_COMPILED"] = "0"
        env.update(environ or {})
        cmd = [*wrap, sys.executable, "-m", "passerelle", "serve", "--config", str(path), "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--data-dir", str(data)]
        proc = Proc(name, cmd, log, env=env, cwd=REPO)
        return Endpoint(name, base + CHAT_PATH, {"authorization": f"Bearer {VIRTUAL_KEY}"}, base + "/health", proc,
                        {"config": config})
    if name == "litellm":
        path = work / f"{tag}-litellm.yaml"
        path.write_text(peer_litellm.config_yaml(upstream_port))
        proc = Proc(name, peer_litellm.command(path, port, workers), log, env=peer_litellm.environment(), cwd=work)
        return Endpoint(name, base + CHAT_PATH, {"authorization": f"Bearer {peer_litellm.MASTER_KEY}"},
                        base + "/health/liveliness", proc)
    raise ValueError(f"unknown gateway {name!r}")
