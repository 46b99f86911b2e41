"""Run the benchmark: `python -m bench.run` from the repository root (see bench/README.md).

Per scenario: one upstream simulator process; per gateway: a fresh gateway process in front of it, a
rate sweep driven by the open-loop load generator (its own process) until the gateway saturates, the
memory of the gateway's process tree sampled at 10 Hz from /proc.  Then added latencies (gateway minus
direct at the same rate), verdicts on the targets, latest.json, latest.md and added_latency.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import deps, gateways, peer_litellm, procs, report

REPO = gateways.REPO
MIN_RATE = 10.0  # the downward search for a gateway saturated at the first rate stops here
WORDS = ("the", "gateway", "forwards", "every", "request", "to", "its", "upstream", "and", "measures", "latency",
         "under", "load", "while", "keeping", "memory", "flat", "across", "a", "long", "soak", "of", "traffic")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    stream: bool
    prompt_bytes: int
    output_tokens: int
    ttft_ms: float = 0.0
    tokens_per_second: float = 0.0
    chunk_tokens: int = 1
    streams: int = 0  # > 0: open this many streams at once instead of a rate sweep
    timeout: float = 30.0

    def simulator_args(self) -> list[str]:
        return ["--mode", "fixed", "--output-tokens", str(self.output_tokens), "--ttft-ms", f"{self.ttft_ms:g}",
                "--tokens-per-second", f"{self.tokens_per_second:g}", "--chunk-tokens", str(self.chunk_tokens)]


def scenarios(quick: bool) -> dict[str, Scenario]:
    stream_tokens = 30 if quick else 100  # at 10 tokens/s: streams stay open 3 s (quick) or 10 s
    return {
        "small": Scenario("small", "Non-streaming, ~1 KB prompt, 16 output tokens, upstream answers at once.",
                          stream=False, prompt_bytes=1_000, output_tokens=16),
        "stream": Scenario("stream", "Streaming, ~1 KB prompt, 16 tokens one per chunk; upstream first token after "
                           "20 ms, then 800 tokens/s (a stream lasts ~40 ms). TTFB = first body byte.",
                           stream=True, prompt_bytes=1_000, output_tokens=16, ttft_ms=20, tokens_per_second=800),
        "large": Scenario("large", "Non-streaming, ~100 KB prompt, 16 output tokens, upstream answers at once.",
                          stream=False, prompt_bytes=100_000, output_tokens=16),
        "concurrent": Scenario("concurrent", f"1,000 streams opened at once; upstream first token after 200 ms, "
                               f"then {stream_tokens} tokens at 10 tokens/s (streams stay open "
                               f"~{stream_tokens // 10} s); RSS peak of the gateway's process tree while they are "
                               "open.", stream=True, prompt_bytes=1_000, output_tokens=stream_tokens, ttft_ms=200,
                               tokens_per_second=10, streams=1_000, timeout=60 + stream_tokens / 10),
    }


def nice(rate: float) -> float:
    """``rate`` rounded to two significant digits (a bisection's midpoint that reads well in a table)."""
    if rate <= 0:
        return rate
    digits = 1 - math.floor(math.log10(rate))
    return float(round(rate, digits))


def prompt(nbytes: int) -> str:
    words: list[str] = []
    size = 0
    i = 0
    while size < nbytes:
        word = WORDS[(i * 7 + i // len(WORDS)) % len(WORDS)]
        words.append(word)
        size += len(word) + 1
        i += 1
    return " ".join(words)[:nbytes]


def request_body(scenario: Scenario) -> bytes:
    body: dict[str, Any] = {
        "model": gateways.MODEL,
        "max_tokens": max(scenario.output_tokens * 2, 64),
        "messages": [{"role": "system", "content": "You are a concise assistant."},
                     {"role": "user", "content": prompt(scenario.prompt_bytes)}],
    }
    if scenario.stream:
        body["stream"] = True
    return json.dumps(body).encode()


def version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info(litellm_version: str | None) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "ram_gb": ram_gb, "kernel": platform.release(),
        "python": platform.python_version(), "hostname": platform.node(), "loadavg_before": procs.loadavg(),
        "versions": {"passerelle": version("passerelle"), "granian": version("granian"),
                     "aiohttp": version("aiohttp"), "uvloop": version("uvloop"), "orjson": version("orjson"),
                     "msgspec": version("msgspec"), "litellm": litellm_version},
    }


def paired_schedule(names: Sequence[str], rounds: int) -> list[tuple[int, str, str]]:
    """(round, pair, gateway to measure) in order: each gateway right beside its own direct step, direct first in
    even rounds and second in odd ones, the gateways in reverse order every other round."""
    out: list[tuple[int, str, str]] = []
    for round_no in range(rounds):
        even = round_no % 2 == 0
        for pair in (names if even else names[::-1]):
            out += [(round_no, pair, name) for name in (("direct", pair) if even else (pair, "direct"))]
    return out


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Runner:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.steps: list[report.Step] = []
        self.closed: list[dict[str, Any]] = []
        self.rounds: list[report.Step] = []  # the paired rounds at the target rate (see paired)
        self.notes: list[str] = []
        self._n = 0

    # -- processes -------------------------------------------------------------------------------
    def simulator(self, scenario: Scenario) -> tuple[procs.Proc, int]:
        port = procs.free_port()
        cmd = [sys.executable, "-m", "passerelle", "simulator", "--host", "127.0.0.1", "--port", str(port),
               *scenario.simulator_args()]
        proc = procs.Proc("simulator", cmd, self.work / f"{scenario.name}-simulator.log", env=gateways.child_env(),
                          cwd=REPO)
        proc.wait_http(f"http://127.0.0.1:{port}/health", timeout=30)
        return proc, port

    def loadgen(self, endpoint: gateways.Endpoint, body: Path, *, rate: float, duration: float, warmup: float,
                timeout: float, count: int = 0, closed: int = 0) -> tuple[dict[str, Any], float]:
        """Run the load generator to completion; its records and the CPU seconds it used."""
        self._n += 1
        out = self.work / f"loadgen-{self._n}.json"
        cmd = [sys.executable, "-m", "bench.loadgen", "--url", endpoint.url, "--body-file", str(body),
               "--rate", f"{rate:g}", "--duration", f"{duration:g}", "--warmup", f"{warmup:g}",
               "--timeout", f"{timeout:g}", "--out", str(out)]
        cmd += [arg for name, value in endpoint.headers.items() for arg in ("--header", f"{name}: {value}")]
        if count:
            cmd += ["--count", str(count)]
        if closed:
            cmd += ["--closed", str(closed)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(cmd, capture_output=True, text=True, env=gateways.child_env(), cwd=REPO,
                              timeout=warmup + duration + timeout + 120, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        records = json.loads(out.read_bytes())
        if not self.args.keep_records:
            out.unlink()
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return records, cpu

    @staticmethod
    def sanity(endpoint: gateways.Endpoint, body: bytes, stream: bool) -> str | None:
        """One request through the gateway before measuring: None when it answered properly."""
        request = urllib.request.Request(endpoint.url, data=body, method="POST",
                                         headers={"content-type": "application/json", **endpoint.headers})
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                data = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}: {exc.read()[:500].decode(errors='replace')}"
        except OSError as exc:
            return f"request failed: {exc}"
        if status != 200:
            return f"HTTP {status}: {data[:500].decode(errors='replace')}"
        if stream and b"data:" not in data:
            return f"expected an SSE stream, got: {data[:300].decode(errors='replace')}"
        if not stream and b'"choices"' not in data:
            return f"expected a chat completion, got: {data[:300].decode(errors='replace')}"
        return None

    # -- one step --------------------------------------------------------------------------------
    def step(self, scenario: Scenario, endpoint: gateways.Endpoint, sampler: procs.MemorySampler | None,
             sim: procs.Proc, body: Path, rate: float, *, duration: float | None = None,
             warmup: float | None = None) -> report.Step:
        args = self.args
        duration = args.duration if duration is None else duration
        warmup = args.warmup if warmup is None else warmup
        gw_pids = sampler.pids() if sampler else []
        sim_pids = procs.tree(sim.pid)
        waited = procs.wait_idle(gw_pids + sim_pids, cores=0.05, window=args.pause, timeout=args.settle)
        if waited > args.pause * 4:
            log(f"  {endpoint.name}: waited {waited:.1f} s for the gateway and upstream to go idle")
        if sampler:
            sampler.reset_step()
        busy0, t0 = procs.machine_busy_seconds(), time.monotonic()
        gw_cpu0, sim_cpu0 = procs.cpu_seconds(gw_pids), procs.cpu_seconds(sim_pids)
        self_cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        if scenario.streams:
            records, lg_cpu = self.loadgen(endpoint, body, rate=0, duration=0, warmup=0, timeout=scenario.timeout,
                                           count=scenario.streams)
        else:
            records, lg_cpu = self.loadgen(endpoint, body, rate=rate, duration=duration, warmup=warmup,
                                           timeout=scenario.timeout)
        elapsed = time.monotonic() - t0
        busy = procs.machine_busy_seconds() - busy0
        gw_cpu = procs.cpu_seconds(gw_pids) - gw_cpu0
        sim_cpu = procs.cpu_seconds(sim_pids) - sim_cpu0
        self_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - self_cpu0
        if sampler:
            sampler.sample()
        stats = report.summarize(records)
        ok_all = sum(1 for s in records["status"] if 200 <= s < 400)
        cores = os.cpu_count() or 1
        other = busy - gw_cpu - sim_cpu - lg_cpu - self_cpu
        stats.update({
            "gateway": endpoint.name, "scenario": scenario.name, "duration_s": elapsed, "settle_s": waited,
            "rss_peak_mb": sampler.step_rss_mb if sampler else None,
            "pss_peak_mb": sampler.step_pss_mb if sampler else None,
            "cpu_ms_per_request": gw_cpu * 1000 / ok_all if sampler and ok_all else None,
            "cpu_pct": {"gateway": 100 * gw_cpu / elapsed / cores, "upstream": 100 * sim_cpu / elapsed / cores,
                        "loadgen": 100 * lg_cpu / elapsed / cores, "other": 100 * max(other, 0.0) / elapsed / cores},
        })
        if scenario.streams:
            stats["max_open"] = report.max_open(records["sent"], records["end"])
        stats["saturated"] = None if scenario.streams else report.saturation(stats)
        return stats

    # -- a scenario ------------------------------------------------------------------------------
    def scenario(self, scenario: Scenario, names: list[str], statuses: dict[str, dict[str, Any]]) -> None:
        body = request_body(scenario)
        body_path = self.work / f"{scenario.name}-body.json"
        body_path.write_bytes(body)
        log(f"scenario {scenario.name}: {len(body):,} byte requests; simulator {' '.join(scenario.simulator_args())}")
        sim, port = self.simulator(scenario)
        try:
            for name in names:
                if statuses[name]["status"] == "skipped":
                    continue
                self.gateway(scenario, name, port, sim, body, body_path, statuses)
            if "direct" in names and not scenario.streams:
                self.fill_direct(scenario, port, sim, body_path, statuses)
            if self.args.rounds and scenario.name in report.PAIRED_SCENARIOS:
                self.paired(scenario, names, port, sim, body, body_path, statuses)
        finally:
            sim.stop()

    def paired(self, scenario: Scenario, names: list[str], port: int, sim: procs.Proc, body: bytes, body_path: Path,
               statuses: dict[str, dict[str, Any]]) -> None:
        """The latency targets, measured again in rounds: every gateway under a target runs at once, and each round
        measures each of them right beside a measurement of direct at the target rate (direct first in even rounds,
        second in odd ones; the gateways' order reversed every other round).  A gateway's added latency in a round
        is against its own neighbouring direct step, so a drift of the machine during a round lands on both sides
        of each pair whatever the gateway's place in the round.  (Rounds used to measure direct once, then every
        gateway in turn: the last was measured a minute after direct, while direct's p50 moved by 0.6-1.6 ms
        from one round to the next.)"""
        args = self.args
        chosen = [n for n in names if n in report.PAIRED_GATEWAYS and statuses[n]["status"] == "ok"]
        if not chosen:
            return
        log(f"  paired rounds ({scenario.name}): {args.rounds} x ({', '.join(f'direct + {n}' for n in chosen)}) at "
            f"{report.TARGET_RATE:g} RPS, {args.round_duration:g} s each")
        endpoints: dict[str, gateways.Endpoint] = {"direct": gateways.start("direct", port, args.workers, self.work,
                                                                          scenario.name)}
        samplers: dict[str, procs.MemorySampler] = {}
        try:
            for name in chosen:
                endpoint = gateways.start(name, port, args.workers, self.work, f"{scenario.name}-paired")
                endpoints[name] = endpoint
                assert endpoint.proc is not None
                endpoint.proc.wait_http(endpoint.health, timeout=args.start_timeout)
                problem = self.sanity(endpoint, body, scenario.stream)
                if problem:
                    raise RuntimeError(f"{name}: sanity request failed: {problem}")
                samplers[name] = procs.MemorySampler(endpoint.proc.pid)  # its tree (CPU) and RSS peak per step
                samplers[name].start()
                self.warm(endpoint, body_path, scenario)
            for round_no, pair, name in paired_schedule(chosen, args.rounds):
                stats = self.step(scenario, endpoints[name], samplers.get(name), sim, body_path,
                                  report.TARGET_RATE, duration=args.round_duration, warmup=min(args.warmup, 1.0))
                stats["round"], stats["pair"] = round_no, pair
                self.rounds.append(stats)
                metric = stats["ttfb_ms" if scenario.stream else "latency_ms"]
                log(f"    round {round_no + 1} {name:<15} {'TTFB' if scenario.stream else 'latency'} p50 "
                    f"{report.fmt(metric['p50'], 3)} p99 {report.fmt(metric['p99'], 3)} ms, "
                    f"errors {stats['errors']}, late p99 {report.fmt(stats['lateness_ms']['p99'])} ms")
        except (procs.StartError, RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            log(f"  paired rounds ({scenario.name}) FAILED: {exc}")
            self.notes.append(f"paired rounds ({scenario.name}) failed: {exc}"[:400])
        finally:
            for sampler in samplers.values():
                sampler.stop()
            for endpoint in endpoints.values():
                if endpoint.proc:
                    endpoint.proc.stop()

    def fill_direct(self, scenario: Scenario, port: int, sim: procs.Proc, body: Path,
                    statuses: dict[str, dict[str, Any]]) -> None:
        """Direct at the rates other gateways were measured at but direct was not (a downward search)."""
        mine = [s for s in self.steps if s["scenario"] == scenario.name]
        done = {s["offered_rps"] for s in mine if s["gateway"] == "direct"}
        missing = sorted({s["offered_rps"] for s in mine if s["gateway"] != "direct"} - done)
        if missing:
            endpoint = gateways.start("direct", port, self.args.workers, self.work, scenario.name)
            self.sweep(scenario, endpoint, None, sim, body, statuses, rates=missing, stop_at_saturation=False)

    def gateway(self, scenario: Scenario, name: str, port: int, sim: procs.Proc, body: bytes, body_path: Path,
                statuses: dict[str, dict[str, Any]]) -> None:
        args = self.args
        try:
            endpoint = gateways.start(name, port, args.workers, self.work, scenario.name)
        except (OSError, ValueError) as exc:
            self._fail(statuses, name, scenario, f"cannot start: {exc}")
            return
        sampler: procs.MemorySampler | None = None
        try:
            if endpoint.proc:
                endpoint.proc.wait_http(endpoint.health, timeout=args.start_timeout)
            problem = self.sanity(endpoint, body, scenario.stream)
            if problem:
                self._fail(statuses, name, scenario, f"sanity request failed: {problem}")
                return
            if endpoint.proc:
                sampler = procs.MemorySampler(endpoint.proc.pid)  # the workers are up now
                sampler.start()
            if scenario.streams:
                stats = self.step(scenario, endpoint, sampler, sim, body_path, 0)
                self.steps.append(stats)
                log(f"  {name:<15} {scenario.streams} streams: {stats['ok']} ok, {stats['errors']} errors, "
                    f"max open {stats['max_open']}, TTFB p50 {report.fmt(stats['ttfb_ms']['p50'])} ms, "
                    f"RSS peak {report.fmt(stats['rss_peak_mb'], 1)} MB")
                return
            self.warm(endpoint, body_path, scenario)
            # Past the rate where direct itself saturated, the machine (upstream, generator) is the limit.
            floor = [s["offered_rps"] for s in self.steps
                     if s["scenario"] == scenario.name and s["gateway"] == "direct" and s.get("saturated")]
            rates = [r for r in args.rates if name == "direct" or not floor or r < min(floor)]
            self.sweep(scenario, endpoint, sampler, sim, body_path, statuses, rates=rates)
            if scenario.name == "small" and args.closed > 0:
                records, _ = self.loadgen(endpoint, body_path, rate=0, duration=args.duration,
                                          warmup=min(args.warmup, 1.0), timeout=scenario.timeout, closed=args.closed)
                stats = report.summarize(records)
                self.closed.append({"gateway": name, "scenario": scenario.name, "concurrency": args.closed,
                                    "achieved_rps": stats["achieved_rps"], "errors": stats["errors"],
                                    "latency_ms": stats["latency_ms"]})
                log(f"  {name:<15} closed loop x{args.closed}: {stats['achieved_rps']:.0f} RPS, "
                    f"errors {stats['errors']}")
        except (procs.StartError, RuntimeError, subprocess.TimeoutExpired) as exc:
            self._fail(statuses, name, scenario, str(exc))
        finally:
            if endpoint.proc:
                endpoint.proc.stop()
            if sampler and sampler.is_alive():
                sampler.stop()

    def warm(self, endpoint: gateways.Endpoint, body: Path, scenario: Scenario) -> None:
        """A short closed loop, not recorded: every worker has served requests (lazy imports, pools) before
        the first measured step."""
        self.loadgen(endpoint, body, rate=0, duration=self.args.warm, warmup=0, timeout=scenario.timeout,
                     closed=4 * self.args.workers)

    def sweep(self, scenario: Scenario, endpoint: gateways.Endpoint, sampler: procs.MemorySampler | None,
              sim: procs.Proc, body: Path, statuses: dict[str, dict[str, Any]], rates: list[float] | None = None,
              stop_at_saturation: bool = True) -> None:
        """Rates in increasing order until the gateway saturates.  Saturated at the very first rate, it halves
        the rate (down to MIN_RATE) until it keeps up, so every gateway gets a sustained throughput.  Then
        ``--refine`` bisections between the highest rate it kept up with and the lowest it did not."""
        pending = list(rates if rates is not None else self.args.rates)
        good: float | None = None
        bad: float | None = None
        while pending:
            rate = pending.pop(0)
            saturated = self.measure(scenario, endpoint, sampler, sim, body, rate, statuses)
            if saturated is None:
                return  # the gateway died: _fail recorded it
            if not stop_at_saturation:
                continue
            if not saturated:
                good = max(good or 0.0, rate)
                if bad is not None:
                    break  # coming down: the highest rate it sustains, below the first one it did not
                continue
            bad = rate if bad is None else min(bad, rate)
            if good is None and rate / 2 >= MIN_RATE:
                pending = [rate / 2]
                continue
            break
        for _ in range(self.args.refine if stop_at_saturation else 0):
            if good is None or bad is None or bad / good < 1.25:
                break
            mid = nice(math.sqrt(good * bad))
            saturated = self.measure(scenario, endpoint, sampler, sim, body, mid, statuses)
            if saturated is None:
                return
            if saturated:
                bad = mid
            else:
                good = mid

    def measure(self, scenario: Scenario, endpoint: gateways.Endpoint, sampler: procs.MemorySampler | None,
                sim: procs.Proc, body: Path, rate: float, statuses: dict[str, dict[str, Any]]) -> bool | None:
        """One step at ``rate``, recorded; whether the gateway saturated (None: it died)."""
        if endpoint.proc and not endpoint.proc.alive():
            self._fail(statuses, endpoint.name, scenario, f"exited during the sweep:\n{endpoint.proc.tail()}")
            return None
        stats = self.step(scenario, endpoint, sampler, sim, body, rate)
        self.steps.append(stats)
        lat = stats["latency_ms"]
        log(f"  {endpoint.name:<15} {rate:>6g} RPS: achieved {stats['achieved_rps']:7.1f}, "
            f"p50 {report.fmt(lat['p50'])} p99 {report.fmt(lat['p99'])} ms, errors {stats['errors']}, "
            f"RSS {report.fmt(stats['rss_peak_mb'], 1)} MB, late p99 {report.fmt(stats['lateness_ms']['p99'])} ms"
            + (f"  SATURATED: {stats['saturated']}" if stats["saturated"] else ""))
        return bool(stats["saturated"])

    def _fail(self, statuses: dict[str, dict[str, Any]], name: str, scenario: Scenario, message: str) -> None:
        log(f"  {name}: FAILED in {scenario.name}: {message}")
        entry = statuses[name]
        entry.setdefault("failures", {})[scenario.name] = message
        entry["status"] = "failed"
        entry["message"] = "; ".join(f"{k}: {v}" for k, v in entry["failures"].items())

    # -- the memory soak -------------------------------------------------------------------------
    def soak(self, scenario: Scenario, name: str) -> dict[str, Any]:
        args = self.args
        seconds = args.soak * 60
        body = request_body(scenario)
        body_path = self.work / "soak-body.json"
        body_path.write_bytes(body)
        log(f"soak: {name} at {args.soak_rate:g} RPS for {args.soak:g} min, RSS every {args.soak_interval:g} s")
        sim, port = self.simulator(scenario)
        endpoint = gateways.start(name, port, args.workers, self.work, "soak")
        try:
            assert endpoint.proc is not None
            endpoint.proc.wait_http(endpoint.health, timeout=args.start_timeout)
            problem = self.sanity(endpoint, body, scenario.stream)
            if problem:
                raise procs.StartError(f"sanity request failed: {problem}")
            sampler = procs.MemorySampler(endpoint.proc.pid, args.soak_interval, pss=False, keep_series=True)
            sampler.start()
            started = time.monotonic()
            records, _ = self.loadgen(endpoint, body_path, rate=args.soak_rate, duration=seconds, warmup=0,
                                      timeout=scenario.timeout)
            sampler.stop()
            stats = report.summarize(records)
            series = [(t - started, mb) for t, mb in sampler.series]
            growth = report.soak_growth(series, seconds)
            return {"gateway": name, "rate": args.soak_rate, "minutes": args.soak, "interval_s": args.soak_interval,
                    **growth, "peak_mb": sampler.peak_rss_mb, "ok": stats["ok"], "errors": stats["errors"],
                    "latency_ms": stats["latency_ms"], "series": [[round(t, 1), round(mb, 2)] for t, mb in series]}
        finally:
            if endpoint.proc:
                endpoint.proc.stop()
            sim.stop()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    def csv(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
        return lambda text: [kind(x.strip()) for x in text.split(",") if x.strip()]

    p = argparse.ArgumentParser(prog="python -m bench.run", description="Passerelle's benchmark (see bench/README.md)")
    p.add_argument("--quick", action="store_true", help="smoke run: short steps, fewer rates")
    p.add_argument("--gateways", type=csv(str), default=list(report.DEFAULT_GATEWAYS),
                   help="comma-separated, from: " + ",".join(report.GATEWAY_ORDER))
    p.add_argument("--scenarios", type=csv(str), default=list(report.SCENARIO_ORDER),
                   help="comma-separated, from: " + ",".join(report.SCENARIO_ORDER))
    p.add_argument("--rates", type=csv(float), default=None,
                   help="offered rates in requests/s (default 100,200,500,1000,2000,4000,8000; quick: 100,200,1000)")
    p.add_argument("--duration", type=float, default=None, help="measured seconds per step (default 10; quick: 2)")
    p.add_argument("--warmup", type=float, default=None, help="unmeasured seconds before each step (default 2; "
                   "quick: 0.5)")
    p.add_argument("--workers", type=int, default=2, help="worker processes per gateway (default 2 = cores)")
    p.add_argument("--rounds", type=int, default=None,
                   help="paired rounds at the target rate for the latency targets (0: none; default 5; quick: 2)")
    p.add_argument("--round-duration", type=float, default=None,
                   help="measured seconds of each gateway in each paired round (default 6; quick: 2)")
    p.add_argument("--refine", type=int, default=1,
                   help="bisection steps between the last rate a gateway kept up with and its saturation rate")
    p.add_argument("--closed", type=int, default=None,
                   help="connections of the closed-loop burst on small requests (0: none; default 64; quick: 0)")
    p.add_argument("--soak", type=float, default=0.0, help="minutes of the memory soak (0: none; the target: 10)")
    p.add_argument("--soak-rate", type=float, default=200.0, help="requests/s during the soak")
    p.add_argument("--soak-interval", type=float, default=5.0, help="seconds between RSS samples in the soak")
    p.add_argument("--soak-gateway", default="passerelle", help="gateway of the soak")
    p.add_argument("--pause", type=float, default=0.5,
                   help="before each step, wait until the gateway and the upstream used < 5%% of a core for this long")
    p.add_argument("--settle", type=float, default=30.0, help="longest wait for them to go idle before a step")
    p.add_argument("--warm", type=float, default=None, help="seconds of unrecorded closed-loop warm-up per gateway "
                   "and scenario (default 3; quick: 1)")
    p.add_argument("--start-timeout", type=float, default=90.0, help="seconds a gateway may take to start")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--keep-records", action="store_true", help="keep the raw load-generator records in bench/.work")
    args = p.parse_args(argv)
    for name in args.gateways:
        if name not in report.GATEWAY_ORDER:
            p.error(f"unknown gateway {name!r}; known: {', '.join(report.GATEWAY_ORDER)}")
    for name in args.scenarios:
        if name not in report.SCENARIO_ORDER:
            p.error(f"unknown scenario {name!r}; known: {', '.join(report.SCENARIO_ORDER)}")
    if args.rates is None:
        args.rates = [100.0, 200.0, 1000.0] if args.quick else [100.0, 200.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0]
    args.rates = sorted(args.rates)
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 2.0
    if args.warm is None:
        args.warm = 1.0 if args.quick else 3.0
    if args.rounds is None:
        args.rounds = 2 if args.quick else 5
    if args.round_duration is None:
        args.round_duration = 2.0 if args.quick else 6.0
    if args.closed is None:
        args.closed = 0 if args.quick else 64
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    deps.require()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1,000 streams need several thousand sockets
    work = REPO / "bench" / ".work" / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    args.out.mkdir(parents=True, exist_ok=True)
    names = [g for g in report.GATEWAY_ORDER if g in args.gateways]
    if "direct" not in names:
        names.insert(0, "direct")
        log("direct added: added latency is measured against it")

    install = peer_litellm.ensure_litellm(work.parent / "litellm-install.log") if "litellm" in names else None
    statuses: dict[str, dict[str, Any]] = {}
    for name in names:
        why = gateways.unavailable(name, install)
        statuses[name] = {"status": "skipped" if why else "ok", "message": why or "",
                          "description": gateways.DESCRIPTIONS[name]}
        if why:
            log(f"{name}: {why}")
    machine = machine_info(install.version if install else None)
    if machine["loadavg_before"] > 0.5:
        log(f"warning: load average {machine['loadavg_before']:.2f} before the run: other work shares the machine")
    all_scenarios = scenarios(args.quick)
    chosen = [all_scenarios[n] for n in report.SCENARIO_ORDER if n in args.scenarios]
    runner = Runner(args, work)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: stop what we started
    try:
        for scenario in chosen:
            runner.scenario(scenario, names, statuses)
        soak = None
        if args.soak > 0:
            why = gateways.unavailable(args.soak_gateway, install)
            try:
                if why:
                    raise procs.StartError(why)
                soak = runner.soak(all_scenarios["small"], args.soak_gateway)
            except (procs.StartError, RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                log(f"soak: FAILED: {exc}")
                soak = {"gateway": args.soak_gateway, "rate": args.soak_rate, "minutes": args.soak, "error": str(exc)}
    finally:
        procs.stop_all()

    report.attach_added(runner.steps)
    report.attach_added_by_round(runner.rounds)
    result: dict[str, Any] = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "settings": {"quick": args.quick, "rates": args.rates, "duration": args.duration, "warmup": args.warmup,
                     "workers": args.workers, "closed_connections": args.closed, "rounds": args.rounds,
                     "round_duration": args.round_duration, "command": " ".join(sys.argv),
                     "scenarios": {s.name: {**asdict(s), "request_bytes": len(request_body(s))} for s in chosen},
                     "wall_seconds": round(time.monotonic() - started, 1)},
        "gateways": statuses,
        "steps": runner.steps,
        "closed": runner.closed,
        "rounds": runner.rounds,
        "paired": report.paired_summary(runner.rounds),
        "summary": report.summary(runner.steps),
        "soak": soak,
        "run_notes": runner.notes,
    }
    result["verdicts"] = report.verdicts(result)
    result["notes"] = report.notes(result)
    (args.out / "latest.json").write_text(json.dumps(_clean(result), indent=1))
    markdown = report.render_markdown(result)
    (args.out / "latest.md").write_text(markdown)
    from bench.plot import plot_added_latency, plot_soak

    written = [args.out / "latest.json", args.out / "latest.md"]
    for name, plot in (("added_latency.png", plot_added_latency), ("soak_rss.png", plot_soak)):
        target = args.out / name
        target.unlink(missing_ok=True)  # no picture of an earlier run next to this run's numbers
        if plot(result, target):
            written.append(target)
    print(markdown)
    log("wrote " + ", ".join(str(p) for p in written))
    return 0


def _clean(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
