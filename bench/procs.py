"""Processes of a run: start, wait until they answer, stop; memory and CPU of a process tree from /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class StartError(Exception):
    """A process of the run did not come up; the message quotes its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Proc:
    """A child process in its own session (so its workers are stopped with it), output to a log file."""

    live: set[Proc] = set()  # started and not yet stopped: stop_all() ends them if the run is interrupted

    def __init__(self, name: str, cmd: Sequence[str], log: Path, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(list(cmd), stdout=self._out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                      start_new_session=True)
        Proc.live.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        """Poll ``url`` until it answers 200; fail early if the process died."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.alive():
                raise StartError(f"{self.name} exited with code {self.popen.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (OSError, urllib.error.URLError) as exc:
                last = str(exc)
            time.sleep(0.1)
        raise StartError(f"{self.name} did not answer {url} within {timeout:.0f} s ({last}):\n{self.tail()}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the process group (the server and its workers), SIGKILL after ``grace`` seconds."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        # Workers left behind by a parent that died first: same process group, ours alone.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._out.close()
        Proc.live.discard(self)


def stop_all() -> None:
    """Stop every process this run started and has not stopped yet (an interrupted or failed run)."""
    for proc in list(Proc.live):
        proc.stop(grace=5.0)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: the fields after ")" are fixed.
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _status_kb(pid: int, field: bytes) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_kb(pids: Sequence[int]) -> int:
    """Sum of VmRSS over ``pids`` (shared pages of forked workers are counted in each: an upper bound)."""
    return sum(_status_kb(pid, b"VmRSS:") for pid in pids)


def pss_kb(pids: Sequence[int]) -> int:
    """Sum of proportional set sizes: shared pages divided among the processes sharing them."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time consumed so far by ``pids``."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot, from /proc/stat."""
    try:
        with open("/proc/stat", "rb") as f:
            values = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return float("nan")
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLOCK_TICKS


def wait_idle(pids: Sequence[int], *, cores: float = 0.05, window: float = 0.5, timeout: float = 30.0) -> float:
    """Wait until ``pids`` use less than ``cores`` CPU over ``window`` seconds (a gateway may still be working
    off an earlier step: deferred logging, a backlog); give up after ``timeout``.  Returns the seconds waited."""
    start = time.monotonic()
    before = cpu_seconds(pids)
    while time.monotonic() - start < timeout:
        time.sleep(window)
        after = cpu_seconds(pids)
        if after - before < cores * window:
            break
        before = after
    return time.monotonic() - start


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


class MemorySampler(threading.Thread):
    """Samples the RSS of a process tree every ``interval`` seconds (its PSS every tenth time); the tree is
    re-read each second."""

    def __init__(self, root: int, interval: float = 0.1, *, pss: bool = True, keep_series: bool = False) -> None:
        super().__init__(daemon=True, name=f"rss-{root}")
        self.root = root
        self.interval = interval
        self.with_pss = pss
        self.keep_series = keep_series
        self.series: list[tuple[float, float]] = []  # (monotonic seconds, RSS MB)
        self.peak_rss_mb = 0.0
        self.peak_pss_mb = 0.0
        self.step_rss_mb = 0.0
        self.step_pss_mb = 0.0
        self._halt = threading.Event()
        self._pids = tree(root)
        self._lock = threading.Lock()

    def pids(self) -> list[int]:
        with self._lock:
            return list(self._pids)

    def reset_step(self) -> None:
        with self._lock:
            self.step_rss_mb = self.step_pss_mb = 0.0

    def sample(self, *, pss: bool = True) -> None:
        pids = self.pids()
        rss = rss_kb(pids) / 1024
        # smaps_rollup walks the process's page tables under its mmap lock: read it 10x less often than RSS,
        # which comes from counters, so the sampling does not disturb the gateway it measures.
        pss_mb = pss_kb(pids) / 1024 if self.with_pss and pss else 0.0
        with self._lock:
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            self.peak_pss_mb = max(self.peak_pss_mb, pss_mb)
            self.step_rss_mb = max(self.step_rss_mb, rss)
            self.step_pss_mb = max(self.step_pss_mb, pss_mb)
            if self.keep_series:
                self.series.append((time.monotonic(), rss))

    def run(self) -> None:
        refreshed = time.monotonic()
        count = 0
        while not self._halt.is_set():
            if time.monotonic() - refreshed >= 1.0:
                fresh = tree(self.root)
                with self._lock:
                    self._pids = fresh
                refreshed = time.monotonic()
            self.sample(pss=count % 10 == 0)
            count += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
