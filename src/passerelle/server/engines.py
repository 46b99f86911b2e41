"""The HTTP servers that can run the ASGI app.  The app is plain ASGI, so the choice is a
deployment decision, measured with the benchmark (`bench.run --gateways passerelle,passerelle-granian`).
On the 2-core VM it was written on, uvicorn (httptools parser, uvloop, one thread per worker) gave
8% more closed-loop throughput than granian (1,114 vs 1,029 RPS) and equal latency at 200 RPS;
granian, whose Rust I/O threads hand each request across threads, used 13 MB less memory."""

from __future__ import annotations

import sys
from typing import Literal

Engine = Literal["uvicorn", "granian"]
APP = "passerelle.server.app:create_worker_app"


def serve_uvicorn(host: str, port: int, workers: int, log_level: str, graceful_timeout: float) -> None:
    import uvicorn

    uvicorn.run(APP, factory=True, host=host, port=port, workers=workers,
                loop="uvloop" if sys.platform != "win32" else "asyncio", http="httptools", lifespan="on",
                access_log=False, log_level=log_level, server_header=False, backlog=2048,
                timeout_graceful_shutdown=int(graceful_timeout))


def serve_granian(host: str, port: int, workers: int, log_level: str, graceful_timeout: float) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    Granian(target=APP, factory=True, address=host, port=port, interface=Interfaces.ASGI, workers=workers,
            loop=Loops.uvloop if sys.platform != "win32" else Loops.asyncio, log_access=False,
            log_level=LogLevels("warn" if log_level == "warning" else log_level),
            workers_kill_timeout=int(graceful_timeout), backlog=2048).serve()


def serve(engine: Engine, host: str, port: int, workers: int, log_level: str, graceful_timeout: float) -> None:
    runner = serve_uvicorn if engine == "uvicorn" else serve_granian
    runner(host, port, workers, log_level, graceful_timeout)


def main(argv: list[str]) -> None:
    """``python -m passerelle.server.engines ENGINE HOST PORT WORKERS LOG_LEVEL GRACEFUL_TIMEOUT``: what
    ``passerelle serve`` runs once the data directory and the environment of the workers are ready."""
    engine, host, port, workers, log_level, graceful = argv
    if engine not in ("uvicorn", "granian"):
        raise SystemExit(f"unknown engine {engine!r}")
    serve("uvicorn" if engine == "uvicorn" else "granian", host, int(port), int(workers), log_level, float(graceful))


if __name__ == "__main__":
    main(sys.argv[1:])
