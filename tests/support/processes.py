"""Real processes for end-to-end tests: the gateway (`passerelle serve`) and the standalone
simulator (`passerelle simulator`), each on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ADMIN_KEY = "sk-test-admin-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode}:\n{out}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not become healthy within {timeout}s")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    output: Path
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def logs(self) -> str:
        return self.output.read_text(errors="replace")


SRC = str(Path(__file__).resolve().parents[2] / "src")


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # The checkout under test, whatever copy of the package is installed.
    env = {**env, "PYTHONPATH": SRC + os.pathsep + env.get("PYTHONPATH", "")}
    handle = log.open("wb")
    return subprocess.Popen([sys.executable, "-m", "passerelle", *args], stdout=handle,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)


def start_gateway(tmp: Path, config_text: str | None, *, workers: int = 1,
                  env: dict[str, str] | None = None) -> Server:
    port = free_port()
    args = ["serve", "--port", str(port), "--data-dir", str(tmp / "data"), "--workers", str(workers)]
    if config_text is not None:
        config = tmp / "passerelle.yaml"
        config.write_text(config_text)
        args += ["--config", str(config)]
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("ANTHROPIC_", "OPENAI_", "AWS_", "GOOGLE_", "PASSERELLE_"))}
    full_env["PASSERELLE_ADMIN_KEY"] = ADMIN_KEY
    full_env.update(env or {})
    log = tmp / f"gateway-{port}.log"
    proc = _spawn(args, full_env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(log.read_text(errors="replace")) from None
    return Server(url, proc, log)


def start_simulator(tmp: Path, *extra: str) -> Server:
    port = free_port()
    log = tmp / f"simulator-{port}.log"
    proc = _spawn(["simulator", "--port", str(port), *extra], dict(os.environ), log)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return Server(url, proc, log)
