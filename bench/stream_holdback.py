"""The delay compliance adds to a streamed answer: `python -m bench.stream_holdback`.

An answer of ~2 KB (prose with names, card numbers, IBANs and surrogates of the request's own values)
is streamed token by token (4 characters each) through the answer guard of a policy, and for every
character we record how many characters arrived after it before it was released to the caller.  That
is the hold-back, the whole of the delay: converted to milliseconds at a given token rate.  Also
measured: the guard's CPU time per token.  Writes bench/results/stream_holdback.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from passerelle.canonical import ChatRequest
from passerelle.config.schema import ComplianceConfig
from passerelle.pipeline.auth import Principal
from passerelle.pipeline.compliance import ComplianceStage
from passerelle.pipeline.compliance_answer import AnswerGuard

RESULTS = Path(__file__).resolve().parent / "results"
PROMPT = "Client Jean Dupont, carte 4970 1012 3456 7893, IBAN FR76 3000 6000 0112 3456 7890 189."
PROSE = ("The account was reviewed this morning and the gateway forwarded the summary to the analyst. "
         "Marie Curie asked whether the card {card} could be replaced; the IBAN on file is {iban}. "
         "Nothing else in the file needs attention, and the next review is planned for the end of the month. ")
POLICIES = {
    "finance (mask cards, answers scanned)": ComplianceConfig(packs=["finance"]),
    "gdpr + finance": ComplianceConfig(packs=["gdpr", "finance"]),
    "pseudonymize only (no answer scan)": ComplianceConfig(packs=["gdpr"], scan_answers=False),
}
RATES = (50, 800)  # tokens per second: a typical hosted model, and the gateway benchmark's upstream


def answer_text(sent_prompt: str) -> str:
    return sent_prompt + " " + "".join(PROSE.format(card="5555 5555 5555 4444", iban="DE89 3704 0044 0532 0130 00")
                                       for _ in range(6))


async def _deltas(tokens: list[str], arrived: list[int]) -> AsyncIterator[Any]:
    """The upstream's events; ``arrived[0]`` counts the characters handed to the guard so far."""
    yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    for token in tokens:
        arrived[0] += len(token)
        yield {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}
    yield {"type": "content_block_stop", "index": 0}


async def measure(config: ComplianceConfig) -> dict[str, Any]:
    stage = ComplianceStage(config, b"bench-secret-0123456789abcdef0123")
    request = ChatRequest(body={"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": PROMPT}]},
                          dialect="anthropic", request_id="r")
    protection = stage.protect(Principal("k", "k", "t"), request)
    assert protection is not None
    text = answer_text(str(request.body["messages"][0]["content"]))
    tokens = [text[i:i + 4] for i in range(0, len(text), 4)]
    guard = AnswerGuard(protection, config.answer_holdback, config.scan_answers)
    arrived = [0]
    released = 0
    delays: list[int] = []  # per released character: characters that arrived after it, before its release
    cpu = 0.0
    stream = guard.events(_deltas(tokens, arrived))
    while True:
        started = time.perf_counter()
        try:
            event = await anext(stream)
        except StopAsyncIteration:
            break
        cpu += time.perf_counter() - started
        if event["type"] == "content_block_delta":
            out = event["delta"]["text"]
            # The n-th released character arrived as the n-th input character (lengths differ only where a
            # value was masked or restored: counted at the position it replaces).
            delays.extend(max(0, arrived[0] - (released + i + 1)) for i in range(len(out)))
            released += len(out)
    chars_per_token = 4
    report: dict[str, Any] = {"answer_chars": len(text), "tokens": len(tokens), "held_max_chars": guard.held_max,
                              "cpu_us_per_token": round(cpu / len(tokens) * 1e6, 2)}
    for rate in RATES:
        ms = [d / chars_per_token / rate * 1000 for d in delays]
        report[f"{rate}_tok_s"] = {"p50_ms": round(statistics.median(ms), 1),
                                   "p99_ms": round(sorted(ms)[int(len(ms) * 0.99) - 1], 1),
                                   "max_ms": round(max(ms), 1),
                                   "first_text_ms": round(ms[0], 1)}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    results = {name: asyncio.run(measure(config)) for name, config in POLICIES.items()}
    lines = ["# Streaming hold-back of the compliance stage", "",
             "`python -m bench.stream_holdback`: a ~2 KB answer streamed 4 characters per token through the "
             "answer guard; delay = characters that arrived after a character before it was released, at the "
             "token rate shown. The response's first byte (headers, message_start) is never held.", "",
             "| policy | held max (chars) | CPU us/token | " + " | ".join(
                 f"{r} tok/s: p50 / p99 / max / first text (ms)" for r in RATES) + " |",
             "|---|---|---|" + "---|" * len(RATES)]
    for name, r in results.items():
        cells = [f"{r[f'{rate}_tok_s']['p50_ms']} / {r[f'{rate}_tok_s']['p99_ms']} / {r[f'{rate}_tok_s']['max_ms']}"
                 f" / {r[f'{rate}_tok_s']['first_text_ms']}" for rate in RATES]
        lines.append(f"| {name} | {r['held_max_chars']} | {r['cpu_us_per_token']} | " + " | ".join(cells) + " |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stream_holdback.md").write_text("\n".join(lines) + "\n")
    (out / "stream_holdback.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
