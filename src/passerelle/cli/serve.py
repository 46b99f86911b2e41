"""``passerelle serve``, ``simulator`` and ``check-config``."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sys
from pathlib import Path

from passerelle import __version__
from passerelle.cli.options import add_config, add_data_dir
from passerelle.config import Config, ConfigError, load_config
from passerelle.pipeline.auth import digest
from passerelle.stores.base import Store

ADMIN_SETTING = "admin_key_sha256"


def config_path(args: argparse.Namespace) -> str | None:
    return args.config or os.environ.get("PASSERELLE_CONFIG") or None


def load(args: argparse.Namespace) -> Config | None:
    """The config, or None after telling the operator what is wrong with it."""
    try:
        return load_config(config_path(args))
    except ConfigError as exc:
        print(f"passerelle: invalid configuration: {exc}", file=sys.stderr)
        return None


def resolve_home(args: argparse.Namespace, config: Config) -> Path:
    """--data-dir, else $PASSERELLE_HOME, else server.data_dir, else ~/.passerelle."""
    return Path(args.data_dir or os.environ.get("PASSERELLE_HOME") or config.server.data_dir
                or Path.home() / ".passerelle").expanduser().resolve()


async def resolve_admin_key(store: Store, env: dict[str, str]) -> tuple[str, str | None]:
    """The admin key's digest, and the key itself when it was generated now (to print once).
    Kept in the configured store, so instances sharing PostgreSQL share the admin key."""
    if env.get("PASSERELLE_ADMIN_KEY"):
        return digest(env["PASSERELLE_ADMIN_KEY"]), None
    stored = await store.get_setting(ADMIN_SETTING)
    if stored:
        return stored, None
    key = "sk-pass-admin-" + secrets.token_urlsafe(32)
    hashed = digest(key)
    await store.set_setting(ADMIN_SETTING, hashed)
    return hashed, key


async def _admin_key(config: Config, home: Path) -> tuple[str, str | None]:
    from passerelle.stores.factory import open_stores

    store, counters = await open_stores(config, home)
    try:
        return await resolve_admin_key(store, dict(os.environ))
    finally:
        await counters.aclose()
        await store.aclose()


def banner(config: Config, host: str, port: int, workers: int, home: Path, new_key: str | None,
           engine: str) -> str:
    lines = [f"Passerelle {__version__} listening on http://{host}:{port} ({workers} {engine} worker"
             f"{'s' if workers > 1 else ''}), data in {home}"]
    for name, provider in sorted(config.providers.items()):
        lines.append(f"  provider {name}: {provider.type} (live)")
    for alias, spec in sorted(config.models.items()):
        targets = ", ".join(f"{d.provider}:{d.model}" for d in spec.deployments)
        lines.append(f"  model {alias} -> {targets}")
    if set(config.providers) == {"simulator"} and all(p.type == "simulator" for p in config.providers.values()):
        lines.append("  no provider credentials found: every model name is served by the offline simulator")
    if new_key:
        lines.append(f"  admin key (shown once, store it now): {new_key}")
    lines.append("  Anthropic: POST /v1/messages   OpenAI: POST /v1/chat/completions")
    lines.append("  GET /v1/models /health /ready /metrics   admin: /admin/...")
    return "\n".join(lines)


def serve(args: argparse.Namespace) -> int:
    path = config_path(args)
    config = load(args)
    if config is None:
        return 2
    home = resolve_home(args, config)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    workers = args.workers or config.server.workers
    engine = args.engine or config.server.engine
    try:
        admin_sha, new_key = asyncio.run(_admin_key(config, home))
    except Exception as exc:
        print(f"passerelle: cannot open the store: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    os.environ["PASSERELLE_HOME"] = str(home)
    os.environ["PASSERELLE_CONFIG"] = str(Path(path).resolve()) if path else ""
    os.environ["PASSERELLE_ADMIN_KEY_SHA256"] = admin_sha
    os.environ["PASSERELLE_WORKERS"] = str(workers)
    if config.store.backend == "embedded":
        # The workers' shared counters start afresh: budgets are re-seeded from the ledger (which
        # a graceful stop flushed), so reservations left by a crash do not linger.
        for name in ("counters.shm", "counters.db", "counters.db-wal", "counters.db-shm"):
            (home / name).unlink(missing_ok=True)
    if workers > 1:
        metrics_dir = home / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    print(banner(config, host, port, workers, home, new_key, engine), flush=True)
    options = [host, str(port), str(workers), config.server.log_level, str(config.server.graceful_timeout)]
    if sys.platform != "win32":
        # What supervises the workers needs nothing of what preparing them loaded (config, stores): a fresh
        # interpreter in this same process keeps it small for as long as it runs (see server/supervisor.py).
        module = "passerelle.server.supervisor" if engine == "uvicorn" and workers > 1 else "passerelle.server.engines"
        arguments = options if module.endswith("supervisor") else [engine, *options]
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", module, *arguments])
    from passerelle.server.engines import main as run_server

    run_server([engine, *options])
    return 0


def simulator(args: argparse.Namespace) -> int:
    from passerelle.config.schema import FaultConfig, SimulatorConfig
    from passerelle.simulator.server import run_simulator

    faults = FaultConfig(rate_limit=args.rate_limit, server_error=args.server_error, overloaded=args.overloaded,
                         timeout=args.timeout_rate, connection_reset=args.connection_reset,
                         stream_cut=args.stream_cut, malformed=args.malformed, retry_after=args.retry_after)
    config = SimulatorConfig(mode=args.mode, output_tokens=args.output_tokens, ttft_ms=args.ttft_ms,
                             tokens_per_second=args.tokens_per_second, chunk_tokens=args.chunk_tokens,
                             faults=faults, seed=args.seed)
    run_simulator(config, args.host, args.port)
    return 0


def check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 2
    print(f"ok: {len(config.providers)} providers, {len(config.models)} models, {len(config.keys)} keys")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the gateway")
    add_config(p)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    add_data_dir(p)
    p.add_argument("--workers", type=int)
    p.add_argument("--engine", choices=("uvicorn", "granian"), help="HTTP server (default: server.engine, uvicorn)")
    p.set_defaults(func=serve)

    s = sub.add_parser("simulator", help="run the offline model as its own server (Anthropic and OpenAI dialects)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=4010)
    s.add_argument("--mode", choices=("echo", "fixed"), default="echo")
    s.add_argument("--output-tokens", type=int, default=16)
    s.add_argument("--ttft-ms", type=float, default=0.0)
    s.add_argument("--tokens-per-second", type=float, default=0.0)
    s.add_argument("--chunk-tokens", type=int, default=1)
    s.add_argument("--seed", type=int)
    for fault in ("rate-limit", "server-error", "overloaded", "connection-reset", "stream-cut", "malformed"):
        s.add_argument(f"--{fault}", type=float, default=0.0, help=f"probability of a {fault} fault")
    s.add_argument("--timeout-rate", type=float, default=0.0, help="probability of never answering")
    s.add_argument("--retry-after", type=float, default=0.0)
    s.set_defaults(func=simulator)

    c = sub.add_parser("check-config", help="validate a config file and exit")
    c.add_argument("config")
    c.set_defaults(func=check)
