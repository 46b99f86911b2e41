"""Instructions per request: the gateway's own work, counted by valgrind instead of timed.

On a shared 2-core VM a gateway's added latency moves by 0.3-0.4 ms between runs, as much as the effects
worth measuring.  ``valgrind --tool=callgrind`` counts the instructions a process executes: the same count
for the same code and requests, whatever else the machine does.  Each gateway runs under callgrind (one
worker), with the upstream simulator and this client outside it; after a warm-up, counting is switched on
for a fixed number of sequential requests of the ``small`` scenario (or ``stream``: the answer streamed, 16
chunks paced as in the benchmark) and the total is divided by them.

    python -m bench.instructions --gateways passerelle,passerelle-full --variants compiled,python
    python -m bench.instructions --gateways passerelle,passerelle-budgets --variants compiled --scenario stream

Writes ``bench/results/instructions.md`` and ``.json``.  Instructions are not seconds (cache misses and
system calls weigh differently), so this compares versions of the same code; latency stays the harness's job.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import gateways, procs
from bench.run import Scenario, request_body, scenarios

RESULTS = gateways.REPO / "bench" / "results"
_SUMMARY = re.compile(rb"^summary:\s+(\d+)", re.MULTILINE)
_COLLECTED = re.compile(r"Collected : (\d+)")


def count_module(module: str, args: Sequence[str], env: dict[str, str], out: Path, timeout: float) -> int:
    """The instructions of ``python -m module args`` under callgrind, from start to exit (profile in ``out``).
    The microbenchmarks run it with and without their work and take the difference."""
    done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
                           module, *args], env=env, cwd=gateways.REPO, capture_output=True, text=True,
                          timeout=timeout)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run failed ({done.returncode}): {done.stderr[-500:]}")
    return int(found.group(1))


def counted(profile: bytes) -> int:
    """The instructions of one callgrind output file written by ``callgrind_control --dump`` (0 for the file
    written at exit, which holds the shutdown)."""
    if b"\ndesc: Trigger: dump" not in profile:
        return 0
    found = _SUMMARY.search(profile)
    if found is None:
        raise ValueError("no summary line in the callgrind dump")
    return int(found.group(1))


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]) -> None:
    conn.request("POST", path, body=body, headers={**headers, "content-type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"status {response.status}: {payload[:200]!r}")


def _callgrind(command: str, *args: str) -> None:
    subprocess.run(["callgrind_control", command, *args], check=True, capture_output=True, timeout=120)


def measure(name: str, upstream_port: int, work: Path, *, warmup: int, requests: int, compiled: bool,
            scenario: Scenario | None = None) -> dict[str, Any]:
    """Start ``name`` under callgrind (its compiled twins on or off), warm it, count ``requests`` requests;
    instructions per request."""
    label = name if compiled else f"{name} (pure Python)"
    out = work / f"callgrind-{name}-{'compiled' if compiled else 'python'}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # Not instrumented until the warm-up is over: start-up runs at near native speed.
    wrap = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--instr-atstart=no",
            f"--callgrind-out-file={out}/cg.%p"]
    # The same dict and set layouts in every run: fewer instructions move between runs.
    environ = {"PYTHONHASHSEED": "0", **({} if compiled else {"PASSERELLE_COMPILED": "0"})}
    endpoint = gateways.start(name, upstream_port, 1, work, out.name, wrap=wrap, environ=environ)
    proc = endpoint.proc
    assert proc is not None
    try:
        proc.wait_http(endpoint.health, timeout=600)
        body = request_body(scenario or scenarios(False)["small"])
        address = urlsplit(endpoint.url)
        conn = http.client.HTTPConnection(address.netloc, timeout=120)
        for _ in range(warmup):
            _post(conn, gateways.CHAT_PATH, body, endpoint.headers)
        time.sleep(2)  # background work the warm-up started (write-behind flushes) ends before counting
        _callgrind("--instr=on")
        for _ in range(10):  # the first instrumented requests translate the code anew
            _post(conn, gateways.CHAT_PATH, body, endpoint.headers)
        _callgrind("--zero")
        started = time.perf_counter()
        for _ in range(requests):
            _post(conn, gateways.CHAT_PATH, body, endpoint.headers)
        elapsed = time.perf_counter() - started
        _callgrind("--dump")
        _callgrind("--instr=off")
        conn.close()
    finally:
        proc.stop(grace=60)
    instructions = sum(counted(path.read_bytes()) for path in out.glob("cg.*"))
    if not instructions:
        raise RuntimeError(f"{label}: callgrind dumped nothing (see {proc.log})")
    return {"gateway": label, "name": name, "variant": "compiled" if compiled else "python",
            "requests": requests, "instructions": instructions,
            "per_request": instructions / requests, "seconds_under_valgrind": elapsed}


def render(results: dict[str, Any]) -> str:
    by_gateway: dict[str, dict[str, float]] = {}
    for r in results["gateways"]:
        by_gateway.setdefault(r["name"], {})[r["variant"]] = r["per_request"] / 1e6
    lines = [
        "# Instructions per request (valgrind callgrind)",
        "",
        f"Command: `{results['command']}` ({results['generated_at']}, Python {results['python']}, "
        f"{results['machine']}). One worker under callgrind, the upstream simulator and a sequential client "
        f"outside it; {results['warmup']} warm-up requests, then {results['requests']} counted "
        f"(`{results.get('scenario', 'small')}` scenario: {_SCENARIOS[results.get('scenario', 'small')]}). "
        "Every process of the gateway's tree "
        "is counted (supervisor, worker, helper threads). *compiled*: the compiled twins of setup.py; "
        "*Python*: the same sources with PASSERELLE_COMPILED=0.",
        "",
        "| gateway | compiled, M instructions per request | Python, M per request | compiled / Python |",
        "|---|---|---|---|",
    ]
    for name, got in by_gateway.items():
        compiled, python = got.get("compiled"), got.get("python")
        ratio = f"{compiled / python:.3f}" if compiled and python else ""
        lines.append(f"| {name} | {_m(compiled)} | {_m(python)} | {ratio} |")
    return "\n".join(lines) + "\n"


_SCENARIOS = {"small": "~1 KB prompt, 16 output tokens, non-streaming",
              "stream": "~1 KB prompt, 16 output tokens streamed one per chunk, paced as in the benchmark"}


def _m(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    p.add_argument("--gateways", default="passerelle",
                   help="comma-separated Passerelle configurations of bench/gateways.py")
    p.add_argument("--variants", default="compiled,python",
                   help="each gateway with its compiled twins (compiled) and/or without (python)")
    p.add_argument("--requests", type=int, default=300, help="counted requests per gateway")
    p.add_argument("--warmup", type=int, default=200, help="uncounted requests first")
    p.add_argument("--scenario", choices=sorted(_SCENARIOS), default="small",
                   help="the benchmark's scenario each counted request follows")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind (callgrind) is not installed: nothing measured", file=sys.stderr)
        return 2
    names = [n for n in args.gateways.split(",") if n]
    unknown = [n for n in names if n not in gateways.PASSERELLES]
    if unknown:
        p.error(f"not a Passerelle configuration: {', '.join(unknown)}")
    variants = [v for v in args.variants.split(",") if v]
    if not variants or set(variants) - {"compiled", "python"}:
        p.error("--variants: compiled, python or both")
    scratch = gateways.REPO / "bench" / ".work"
    scratch.mkdir(parents=True, exist_ok=True)  # absent from a fresh clone
    work = Path(tempfile.mkdtemp(prefix="instructions-", dir=scratch))
    scenario = scenarios(False)[args.scenario]
    sim_port = procs.free_port()
    sim = procs.Proc("simulator", [sys.executable, "-m", "passerelle", "simulator", "--host", "127.0.0.1",
                                   "--port", str(sim_port), *scenario.simulator_args()],
                     work / "simulator.log", env=gateways.child_env(), cwd=gateways.REPO)
    rows = []
    try:
        sim.wait_http(f"http://127.0.0.1:{sim_port}/health", timeout=30)
        for name in names:
            for variant in variants:
                row = measure(name, sim_port, work, warmup=args.warmup, requests=args.requests,
                              compiled=variant == "compiled", scenario=scenario)
                print(f"[instructions] {row['gateway']}: {row['per_request'] / 1e6:.3f} M per request", flush=True)
                rows.append(row)
    finally:
        sim.stop()
    results = {"generated_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "command": "python -m bench.instructions " + " ".join(sys.argv[1:] if argv is None else argv),
               "python": sys.version.split()[0], "machine": f"{os.cpu_count()} CPUs",
               "scenario": args.scenario, "warmup": args.warmup, "requests": args.requests, "gateways": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instructions.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "instructions.md").write_text(render(results))
    print(f"[instructions] wrote {args.out / 'instructions.md'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
