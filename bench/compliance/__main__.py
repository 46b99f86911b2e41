"""The compliance benchmark: `python -m bench.compliance` from the repository root (see bench/README.md).

Generates the labelled corpus, scans it with Passerelle's engine (in this process, built once) and
with Presidio (in its own virtual environment and process, built once), scores both, measures
throughput and the latency of 4 KB prompts, and writes bench/results/compliance.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / "bench" / ".work"


def _require() -> None:
    missing = [name for name in ("faker",) if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"bench.compliance: missing {', '.join(missing)}; install it with: pip install faker "
                 "(the `bench` extra: pip install -e '.[bench]')")
    if importlib.util.find_spec("passerelle") is None:
        sys.exit("bench.compliance: passerelle is not importable; install it with: pip install -e .")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.compliance", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=3000, help="texts in the corpus (default 3000)")
    p.add_argument("--seed", type=int, default=None, help="corpus seed (default: corpus.DEFAULT_SEED)")
    p.add_argument("--passes", type=int, default=5, help="timed passes over the corpus for Passerelle's throughput")
    p.add_argument("--requests", type=int, default=2000, help="4 KB prompts scanned per Passerelle latency series")
    p.add_argument("--presidio-requests", type=int, default=100, help="4 KB prompts of each kind analyzed by Presidio")
    p.add_argument("--prompts", type=int, default=20, help="distinct 4 KB prompts of each kind, scanned in turn")
    p.add_argument("--no-presidio", action="store_true", help="skip Presidio (its verdicts are NOT RUN)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where compliance.{json,md} go")
    return p.parse_args(argv)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _series(wall_ms: list[float], cpu_ms: list[float] | None = None) -> dict[str, Any]:
    out = {"requests": len(wall_ms), "p50_ms": _percentile(wall_ms, 0.5), "p99_ms": _percentile(wall_ms, 0.99),
           "mean_ms": statistics.fmean(wall_ms) if wall_ms else None}
    if cpu_ms is not None:
        out.update({"cpu_p50_ms": _percentile(cpu_ms, 0.5), "cpu_p99_ms": _percentile(cpu_ms, 0.99)})
    return out


def machine() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "load_avg": list(os.getloadavg())}


def _versions(names: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _system_json(result: Any, supported: frozenset[str]) -> dict[str, Any]:
    from bench.compliance.evaluate import negatives_total

    negs_total, negs_flagged = negatives_total(result)
    return {
        "supported": sorted(supported),
        "types": {t: {"strict": result.strict[t].to_json(), "overlap": result.overlap[t].to_json()}
                  for t in sorted(supported)},
        "micro": {"overlap": result.micro(supported).to_json(), "strict": result.micro(supported, True).to_json()},
        "person_by_locale": {loc: types["PERSON"].to_json() for loc, types in sorted(result.by_locale.items())
                             if "PERSON" in types},
        "person_by_language": {lang: c.to_json() for lang, c in sorted(result.person_by_language().items())},
        "negatives": {cat: {"total": e["total"], "flagged": e["flagged"], "by_type": dict(e["by_type"])}
                      for cat, e in sorted(result.negatives.items())},
        "negatives_total": negs_total, "negatives_flagged": negs_flagged,
        "confusions": [[g, p, n] for (g, p), n in result.confusions.most_common(15)],
    }


def _write_errors(path: Path, name: str, result: Any, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8") as f:
        f.write(f"# {name}: examples of errors (synthetic corpus values)\n\n")
        for key, examples in sorted(result.errors.examples.items()):
            f.write(f"## {key}\n\n" + "\n".join(f"- {e}" for e in examples) + "\n\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _require()
    from bench.compliance import corpus, evaluate, passerelle_run, presidio_peer, prompts, report, tokens

    started = time.monotonic()
    seed = corpus.DEFAULT_SEED if args.seed is None else args.seed
    results: dict[str, Any] = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.compliance " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "versions": _versions(("passerelle", "hyperscan", "python-stdnum", "phonenumbers", "faker")),
        "rules": {"iou": evaluate.IOU, "checksum_types": sorted(report.CHECKSUM_TYPES)},
    }

    t0 = time.perf_counter()
    samples = corpus.generate(args.size, seed)
    typical, typical_values = prompts.build(args.prompts, seed + 1, "typical")
    dense, dense_values = prompts.build(args.prompts, seed + 2, "dense")
    kinds = {"typical": typical, "dense": dense}
    total_bytes = sum(len(s.text.encode()) for s in samples)
    results["corpus"] = {
        "size": len(samples), "seed": seed, "bytes": total_bytes, "generation_s": time.perf_counter() - t0,
        "texts_by_locale": dict(sorted(_count(s.locale for s in samples).items())),
        "texts_by_domain": dict(sorted(_count(s.domain for s in samples).items())),
        "labels": dict(sorted(evaluate.labels_of(samples).items())),
        "negatives": dict(sorted(_count(n.type for s in samples for n in s.negatives).items())),
        "prompts": {kind: {"count": len(ps), "bytes": [len(p.encode()) for p in ps],
                           "values_mean": statistics.fmean(vals)}
                    for kind, ps, vals in (("typical", typical, typical_values), ("dense", dense, dense_values))},
    }
    print(f"[compliance] corpus: {len(samples)} texts, {total_bytes / 1e6:.2f} MB, "
          f"{sum(results['corpus']['labels'].values())} labels, {sum(results['corpus']['negatives'].values())} "
          f"hard negatives", flush=True)

    # --- Passerelle, in process -----------------------------------------------------------------
    from passerelle.cli.scan import JSONL_BATCH

    engine, build_s = passerelle_run.build()
    finance = passerelle_run.finance_types()
    supported = frozenset(engine.types)
    texts = [s.text for s in samples]
    passerelle_run.timed_passes(engine, texts[:200], None, 1)  # warm caches and the scratch space
    preds, per_text = passerelle_run.scan_corpus(engine, samples)
    ours = evaluate.evaluate(samples, preds, supported)
    # The same job as the peer: only the types Presidio's recognizers also detect (information; the verdict
    # is on every detector).
    peer_types = frozenset(presidio_peer.MAPPING.values()) & supported
    speed: dict[str, Any] = {"peer_types": sorted(peer_types)}
    variants = (("passerelle_all", None), ("passerelle_finance", finance), ("passerelle_peer_types", peer_types))
    passes: dict[str, tuple[list[float], list[float]]] = {key: ([], []) for key, _ in variants}
    passes["passerelle_batch"] = ([], [])

    def timed_pass() -> None:
        """One timed pass over the corpus per variant, and one in batches as ``passerelle scan --jsonl`` scans."""
        for key, types in variants:
            wall, used = passerelle_run.timed_passes(engine, texts, types, 1)
            passes[key][0].extend(wall)
            passes[key][1].extend(used)
        wall, used = passerelle_run.timed_batch_passes(engine, texts, 1, JSONL_BATCH)
        passes["passerelle_batch"][0].extend(wall)
        passes["passerelle_batch"][1].extend(used)

    for key, types in variants:
        speed[key] = {f"prompt_{kind}": _series(*passerelle_run.latencies(engine, ps, types, args.requests))
                      for kind, ps in kinds.items()}
    speed["passerelle_all"]["short_text"] = _series([s * 1000 for s in per_text])
    from passerelle import twins
    results["twins"] = {m: used for m, used in twins.running().items() if m.startswith("passerelle.compliance.")}
    results["passerelle"] = {"status": "ok", "build_s": build_s, "codewords": list(tokens.CODEWORDS),
                             **_system_json(ours, supported)}
    _write_errors(WORK / "compliance-errors.md", "Passerelle", ours, "w")

    # --- Presidio, in its own venv and process ---------------------------------------------------
    results["presidio"] = {"status": "skipped", "message": "--no-presidio"}
    outcome = None
    if not args.no_presidio:
        install = presidio_peer.ensure_presidio(WORK / "presidio-install.log")
        if not install.ok:
            results["presidio"] = {"status": "skipped", "message": install.message}
            print(f"[compliance] presidio skipped: {install.message}", flush=True)
        else:
            # Passerelle's throughput passes are spread over Presidio's analysis of the corpus: one before its first
            # block and one after each block, while its process waits (see presidio_peer.run).
            corpus_blocks = _blocks([(s.id, s.text) for s in samples], max(1, args.passes - 1))
            prompt_records = [(f"{kind}-{i}", ps[i % len(ps)]) for kind, ps in kinds.items()
                              for i in range(args.presidio_requests)]
            blocks = [[(f"warm-{i}", texts[i]) for i in range(min(5, len(texts)))], *corpus_blocks, prompt_records]
            print(f"[compliance] presidio ({install.model}): analyzing {sum(map(len, blocks))} texts in {len(blocks)} "
                  f"blocks, Passerelle's passes in between", flush=True)

            def between(done: int) -> None:
                if done <= len(corpus_blocks):  # after the warm-up block and after each block of the corpus
                    timed_pass()

            outcome = presidio_peer.run(install, blocks, WORK, between)
            speed["passes_interleaved"] = len(corpus_blocks)
    if outcome is None:  # no peer to share the time with: the passes in a row
        for _ in range(args.passes):
            timed_pass()
    speed["passerelle_batch"] = {"batch": JSONL_BATCH}
    for key, (wall, used) in passes.items():
        speed[key].update({"mb_s": total_bytes / 1e6 / statistics.median(wall),
                           "cpu_mb_s": total_bytes / 1e6 / statistics.median(used),
                           "passes_s": wall, "passes_cpu_s": used})
    print(f"[compliance] passerelle: {speed['passerelle_all']['mb_s']:.2f} MB/s with every detector; typical 4 KB "
          f"prompt p50 {speed['passerelle_finance']['prompt_typical']['p50_ms']:.3f} ms (finance) / "
          f"{speed['passerelle_all']['prompt_typical']['p50_ms']:.3f} ms (all)", flush=True)
    if outcome is not None:
        peer_supported = outcome.supported()
        peer_preds = {s.id: presidio_peer.predictions(outcome.results.get(s.id, [])) for s in samples}
        theirs = evaluate.evaluate(samples, peer_preds, peer_supported)
        at_half = evaluate.evaluate(samples, {s.id: presidio_peer.predictions(outcome.results.get(s.id, []), 0.5)
                                              for s in samples}, peer_supported)
        wall_s = sum(outcome.seconds[s.id] for s in samples)
        cpu_s = sum(outcome.cpu_seconds[s.id] for s in samples)
        speed["presidio"] = {"mb_s": total_bytes / 1e6 / wall_s, "cpu_mb_s": total_bytes / 1e6 / cpu_s,
                             "analyze_s": wall_s, "analyze_cpu_s": cpu_s,
                             "short_text": _series([outcome.seconds[s.id] * 1000 for s in samples])}
        for kind in kinds:
            ids = [f"{kind}-{i}" for i in range(args.presidio_requests)]
            speed["presidio"][f"prompt_{kind}"] = _series([outcome.seconds[i] * 1000 for i in ids],
                                                          [outcome.cpu_seconds[i] * 1000 for i in ids])
        results["presidio"] = {
            "status": "ok", "info": outcome.info, "model": outcome.info.get("model"),
            "unmapped_entities": sorted(set(outcome.info.get("entities", ())) - set(presidio_peer.MAPPING)),
            **_system_json(theirs, peer_supported),
            "threshold_0_5": {"types": {t: at_half.overlap[t].to_json() for t in sorted(peer_supported)},
                              "micro": at_half.micro(peer_supported).to_json(),
                              "negatives_flagged": evaluate.negatives_total(at_half)[1]},
        }
        _write_errors(WORK / "compliance-errors.md", "Presidio", theirs, "a")
        for key in ("all", "finance", "peer_types", "batch"):
            speed[f"ratio_{key}"] = speed[f"passerelle_{key}"]["mb_s"] / speed["presidio"]["mb_s"]
            speed[f"ratio_{key}_cpu"] = speed[f"passerelle_{key}"]["cpu_mb_s"] / speed["presidio"]["cpu_mb_s"]
        print(f"[compliance] presidio: {speed['presidio']['mb_s']:.4f} MB/s, typical 4 KB prompt p50 "
              f"{speed['presidio']['prompt_typical']['p50_ms']:.1f} ms", flush=True)
    results["speed"] = speed
    results["machine"]["load_avg_end"] = list(os.getloadavg())
    results["duration_s"] = time.monotonic() - started
    results["verdicts"] = report.verdicts(results)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compliance.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    (args.out / "compliance.md").write_text(report.render(results))
    for v in results["verdicts"]:
        print(f"[compliance] {v['verdict']:<8} {v['target']}: {v['detail']}")
    print(f"[compliance] wrote {args.out / 'compliance.md'} and compliance.json in {results['duration_s']:.0f} s "
          f"(error examples: {WORK / 'compliance-errors.md'})")
    return 0


def _blocks(records: list[tuple[str, str]], count: int) -> list[list[tuple[str, str]]]:
    """``records`` in ``count`` consecutive blocks of nearly equal size."""
    size, extra = divmod(len(records), count)
    out, at = [], 0
    for k in range(count):
        step = size + (k < extra)
        out.append(records[at:at + step])
        at += step
    return [block for block in out if block]


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


if __name__ == "__main__":
    sys.exit(main())
