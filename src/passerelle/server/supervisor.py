"""The process that runs the uvicorn workers of ``passerelle serve``: it binds the listening socket once and
starts each worker as a plain child process that inherits it (``uvicorn --fd``).

Why not uvicorn's own supervisor: it imports uvicorn (with click, ssl, asyncio: ~12 MB) into the parent and
starts its workers through multiprocessing's spawn, which adds a resource-tracker process (~15 MB). Here
the parent imports nothing beyond the standard library, so the whole tree stays ~25 MB smaller for the
same workers (measured with the benchmark's 1,000-stream scenario).

Signals: SIGTERM or SIGINT stop every worker gracefully (uvicorn drains its connections within the
graceful timeout, then the parent kills what is left); a worker that dies on its own is restarted, at most
once a second.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

from passerelle.server.engines import APP

RESTART_INTERVAL_S = 1.0


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def worker_command(fd: int, log_level: str, graceful_timeout: float) -> list[str]:
    return [sys.executable, "-m", "passerelle.server.supervisor", "worker", str(fd), log_level,
            str(graceful_timeout)]


def run_worker(fd: int, log_level: str, graceful_timeout: float) -> None:
    """One worker: uvicorn serving the app on the inherited socket.  The socket object is rebuilt from the
    descriptor with its real family (uvicorn's own ``fd=`` option assumes a Unix socket, and a TCP socket
    taken for one never gets TCP_NODELAY: every small answer then waits ~40 ms for a delayed ACK)."""
    import uvicorn

    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(APP, factory=True,
                            loop="uvloop" if sys.platform != "win32" else "asyncio", http="httptools",
                            lifespan="on", access_log=False, log_level=log_level, server_header=False,
                            timeout_graceful_shutdown=int(graceful_timeout))
    uvicorn.Server(config).run(sockets=[sock])


def supervise(host: str, port: int, workers: int, log_level: str, graceful_timeout: float) -> None:
    sock = bind(host, port)
    command = worker_command(sock.fileno(), log_level, graceful_timeout)
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, pass_fds=(sock.fileno(),))

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children.extend(start() for _ in range(workers))
    last_restart = 0.0
    while not stopping:
        time.sleep(0.2)
        for i, child in enumerate(children):
            if child.poll() is not None and not stopping and time.monotonic() - last_restart >= RESTART_INTERVAL_S:
                print(f"passerelle: worker {child.pid} exited with {child.returncode}; starting another",
                      file=sys.stderr, flush=True)
                children[i] = start()
                last_restart = time.monotonic()
    deadline = time.monotonic() + graceful_timeout + 5
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    sock.close()


def main(argv: list[str]) -> None:
    if argv[:1] == ["worker"]:
        fd, log_level, graceful = argv[1:]
        run_worker(int(fd), log_level, float(graceful))
        return
    host, port, workers, log_level, graceful = argv
    supervise(host, int(port), int(workers), log_level, float(graceful))


if __name__ == "__main__":
    main(sys.argv[1:])
