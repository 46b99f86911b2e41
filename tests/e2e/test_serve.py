"""`passerelle serve` as a user runs it: embedded defaults, the admin key, bad config, workers,
graceful shutdown of in-flight streams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.processes import SRC, free_port, start_gateway, start_simulator, wait_healthy


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "OPENAI_", "AWS_", "GOOGLE_", "PASSERELLE_"))}
    env["PYTHONPATH"] = SRC
    return env


def serve(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = tmp / f"serve-{port}.log"
    proc = subprocess.Popen([sys.executable, "-m", "passerelle", "serve", "--port", str(port),
                             "--data-dir", str(tmp / "home"), *args],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=clean_env())
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url, log


def test_embedded_defaults_and_admin_key_shown_once(tmp_path: Path) -> None:
    proc, url, log = serve(tmp_path)
    try:
        banner = log.read_text()
        assert "every model name is served by the offline simulator" in banner
        key = banner.split("admin key (shown once, store it now): ")[1].split()[0]
        answer = httpx.post(url + "/v1/messages", headers={"x-api-key": key}, timeout=10,
                            json={"model": "any-model-name", "max_tokens": 9,
                                  "messages": [{"role": "user", "content": "Zanzibar-4417"}]})
        assert answer.status_code == 200 and answer.json()["content"][0]["text"] == "Zanzibar-4417"
        assert httpx.get(url + "/ready").json()["status"] == "ready"
    finally:
        proc.terminate()
        proc.wait(20)
    logs = log.read_text()
    request_line = next(line for line in logs.splitlines() if '"event":"request"' in line)
    assert '"model":"any-model-name"' in request_line and '"status":200' in request_line
    assert "Zanzibar-4417" not in logs  # no message content in logs by default
    db = (tmp_path / "home" / "passerelle.db").read_bytes()
    assert key.encode() not in db  # stored hashed only
    proc, url, log = serve(tmp_path)
    try:
        assert "admin key" not in log.read_text()  # printed once, at creation
        ok = httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {key}"})
        assert ok.status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)


def test_invalid_config_fails_at_start_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("providers:\n  sim: {type: simulator}\nmodels:\n  m: {deployments: [{provider: sim, "
                      "weight: -2}]}\n")
    result = subprocess.run([sys.executable, "-m", "passerelle", "serve", "--config", str(config)],
                            capture_output=True, text=True, env=clean_env(), timeout=30)
    assert result.returncode == 2
    assert "Expected `float` > 0.0 - at `$.models.m.deployments[0].weight`" in result.stderr


def test_two_workers_serve_and_aggregate_metrics(tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path, None, workers=2)
    try:
        for _ in range(20):
            r = httpx.post(gateway.url + "/v1/chat/completions", headers={"authorization": "Bearer sk-test-admin-key"},
                           json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, timeout=10)
            assert r.status_code == 200
        text = httpx.get(gateway.url + "/metrics").text
        line = next(ln for ln in text.splitlines()
                    if ln.startswith('passerelle_requests_total{model="gpt-4o",route="chat_completions",status="200"}'))
        assert float(line.split()[-1]) == 20.0  # every worker's requests, whichever worker answers
    finally:
        gateway.stop()


SLOW_CONFIG = """
server: {{engine: {engine}}}
providers: {{up: {{type: anthropic, api_key: k, base_url: "{url}"}}}}
models: {{slow: {{deployments: [{{provider: up, model: m}}]}}}}
keys: [{{name: app, key: sk-drain}}]
"""


@pytest.mark.parametrize("engine", ["uvicorn", "granian"])
def test_sigterm_finishes_in_flight_streams(tmp_path: Path, engine: str) -> None:
    slow = start_simulator(tmp_path, "--tokens-per-second", "20")
    config = SLOW_CONFIG.format(engine=engine, url=slow.url)
    gateway = start_gateway(tmp_path, config)
    words = " ".join(f"w{i}" for i in range(40))  # about two seconds at 20 tokens a second
    body: list[str] = []

    def consume() -> None:
        with httpx.stream("POST", gateway.url + "/v1/messages", headers={"x-api-key": "sk-drain"}, timeout=30,
                          json={"model": "slow", "max_tokens": 100, "stream": True,
                                "messages": [{"role": "user", "content": words}]}) as response:
            for chunk in response.iter_text():
                body.append(chunk)

    reader = threading.Thread(target=consume)
    reader.start()
    deadline = time.monotonic() + 10
    while not any("content_block_delta" in part for part in body) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert body, "the stream did not start"
    code = gateway.stop()  # SIGTERM while the stream is half-way
    reader.join(30)
    slow.stop()
    text = "".join(body)
    assert "event: message_stop" in text, gateway.logs()
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has drained

    with pytest.raises(httpx.ConnectError):
        httpx.get(gateway.url + "/health", timeout=2)


@pytest.mark.parametrize("engine", ["uvicorn", "granian"])
def test_client_hang_up_stops_the_upstream_stream(tmp_path: Path, engine: str) -> None:
    slow = start_simulator(tmp_path, "--tokens-per-second", "20")
    gateway = start_gateway(tmp_path, SLOW_CONFIG.format(engine=engine, url=slow.url))
    words = " ".join(f"w{i}" for i in range(100))  # five seconds of stream
    try:
        started = time.monotonic()
        with httpx.stream("POST", gateway.url + "/v1/messages", headers={"x-api-key": "sk-drain"}, timeout=30,
                          json={"model": "slow", "max_tokens": 200, "stream": True,
                                "messages": [{"role": "user", "content": words}]}) as response:
            for chunk in response.iter_text():
                if "content_block_delta" in chunk:
                    break  # the client hangs up after the first token
        deadline = started + 4
        while time.monotonic() < deadline and '"status":499' not in gateway.logs():
            time.sleep(0.1)
        assert '"status":499' in gateway.logs()  # recorded before the upstream's five seconds were up
    finally:
        gateway.stop()
        slow.stop()


WORKERS_LIMIT_CONFIG = """
providers: {sim: {type: simulator}}
models: {m: {deployments: [{provider: sim}]}}
keys: [{name: app, key: sk-two-workers}]
metering:
  rate_limits: [{scope: key, scope_id: app, rpm: 8}]
"""


def _answering_worker(response: httpx.Response) -> str:
    return response.headers["request-id"][:20]  # request ids start with a per-process prefix


def test_two_embedded_workers_share_one_rate_limit(tmp_path: Path) -> None:
    """Each worker is its own process: the limit holds across them (a SQLite file they share),
    rather than once per worker."""
    gateway = start_gateway(tmp_path, WORKERS_LIMIT_CONFIG, workers=2)
    url = gateway.url + "/v1/chat/completions"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        # The health check passes once one worker is up; wait for the other too, with unauthenticated calls
        # (a 401 names no key, so it spends none of the key's limit).
        seen: set[str] = set()
        deadline = time.monotonic() + 20
        while len(seen) < 2 and time.monotonic() < deadline:
            with ThreadPoolExecutor(4) as pool:
                seen |= set(pool.map(lambda _: _answering_worker(httpx.post(url, json=body, timeout=10)), range(4)))
        assert len(seen) == 2, "the second worker never answered"

        def one(_: int) -> tuple[str, int]:
            # A connection each, several at once, so that both workers take some.
            response = httpx.post(url, headers={"authorization": "Bearer sk-two-workers"}, json=body, timeout=10)
            return _answering_worker(response), response.status_code

        started = time.monotonic()
        answers: list[tuple[str, int]] = []
        # Which worker accepts a connection is the kernel's choice: send bursts until the split would
        # admit more than the limit were each worker counting on its own (at most 8 each).
        while time.monotonic() - started < 15:
            with ThreadPoolExecutor(8) as pool:
                answers += pool.map(one, range(8))
            per_worker = [sum(1 for w, _ in answers if w == worker) for worker in seen]
            if sum(min(n, 8) for n in per_worker) >= 12:
                break
        elapsed = time.monotonic() - started
    finally:
        gateway.stop()
    assert sum(min(n, 8) for n in per_worker) >= 12, f"the kernel gave one worker nearly all: {per_worker}"
    codes = [code for _, code in answers]
    # 8 a minute, refilled at 8/60 a second: at most this many more refilled while the test ran.
    refilled = int(elapsed * 8 / 60) + 1
    assert 8 <= codes.count(200) <= 8 + refilled and codes.count(429) == len(codes) - codes.count(200)


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(p) for p in f.read().split()}


def test_the_supervisor_holds_no_server_of_its_own_and_restarts_a_dead_worker(tmp_path: Path) -> None:
    proc, url, log = serve(tmp_path, "--workers", "2")
    try:
        workers = _children(proc.pid)
        assert len(workers) == 2  # no resource tracker beside them: the workers are plain child processes
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            assert b"passerelle.server.supervisor" in f.read()  # the CLI exec'd the small supervisor
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = _children(proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and victim not in now, f"workers after the kill: {now}"
        wait_healthy(url, proc)
        for _ in range(10):
            assert httpx.get(url + "/health").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert "starting another" in log.read_text()
