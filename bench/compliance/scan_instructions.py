"""Instructions per pass over the compliance corpus (valgrind callgrind), compiled against pure Python.

    python -m bench.compliance.scan_instructions

The engine (every detector, the corpus's codewords) scans the benchmark corpus under callgrind twice: once
with no pass and once with two, so that start-up cancels out; the difference over two is one pass.  Each
variant runs with the compiled twins (setup.py) and with ``PASSERELLE_COMPILED=0``.  Counts do not depend on
what else the machine does, unlike the MB/s of ``python -m bench.compliance``.  Writes
``bench/results/scan_instructions.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.gateways import child_env
from bench.instructions import count_module

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"


def child(texts_path: str, passes: int) -> None:
    from bench.compliance.passerelle_run import build

    texts = json.loads(Path(texts_path).read_text())
    engine, _ = build()
    for text in texts[:200]:  # the same warm-up in both runs: it cancels out
        engine.scan(text)
    for _ in range(passes):
        for text in texts:
            engine.scan(text)


def _count(texts: Path, passes: int, compiled: bool, work: Path) -> int:
    env = {**child_env(), "PYTHONHASHSEED": "0", "PASSERELLE_COMPILED": "1" if compiled else "0"}
    out = work / f"cg-{'compiled' if compiled else 'python'}-{passes}"
    return count_module("bench.compliance.scan_instructions", ["--child", str(texts), str(passes)], env, out, 3600)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compliance.scan_instructions", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=3000, help="texts in the corpus (default 3000)")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing measured", file=sys.stderr)
        return 2
    from bench.compliance import corpus

    work = Path(tempfile.mkdtemp(prefix="scan-instructions-", dir=REPO / "bench" / ".work"))
    texts = work / "texts.json"
    texts.write_text(json.dumps([s.text for s in corpus.generate(args.size, corpus.DEFAULT_SEED)]))
    per_pass: dict[str, float] = {}
    with ThreadPoolExecutor(2) as pool:  # the two runs of a variant side by side (one per core)
        for variant in ("python", "compiled"):
            compiled = variant == "compiled"
            none, two = pool.map(_count, (texts, texts), (0, 2), (compiled, compiled), (work, work))
            per_pass[variant] = (two - none) / 2
            print(f"[scan-instructions] {variant}: {per_pass[variant] / 1e6:,.0f} M per pass", flush=True)
    ratio = per_pass["python"] / per_pass["compiled"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = (
        "# Instructions per pass over the compliance corpus (valgrind callgrind)\n\n"
        f"Command: `python -m bench.compliance.scan_instructions` ({when}, "
        f"Python {sys.version.split()[0]}). The engine with every detector scans the {args.size}-text corpus of "
        "`python -m bench.compliance` (seed as there); one pass = (run with two passes - run with none) / 2.\n\n"
        "| scan path | M instructions per pass |\n|---|---|\n"
        f"| pure Python (`PASSERELLE_COMPILED=0`) | {per_pass['python'] / 1e6:,.0f} |\n"
        f"| compiled twins (setup.py) | {per_pass['compiled'] / 1e6:,.0f} |\n\n"
        f"Python / compiled: {ratio:.2f}x.\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scan_instructions.md").write_text(text)
    print(f"[scan-instructions] {ratio:.2f}x; wrote {args.out / 'scan_instructions.md'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
