"""Verdicts on the issue's targets and the Markdown report, from the results dict alone (pure functions)."""

from __future__ import annotations

from typing import Any

# Types whose values carry a check digit or checksum that the corpus computes (Luhn, mod 97, mod 11,
# 3-7-1, base58check/bech32/EIP-55).  SWIFT_BIC (no check digit) and US_SSN/US_ITIN (range rules) are not.
CHECKSUM_TYPES = frozenset({"CREDIT_CARD", "IBAN", "US_ABA_ROUTING", "EU_VAT", "FR_SIREN", "FR_SIRET", "FR_NIR",
                            "UK_NHS", "US_NPI", "US_DEA", "CRYPTO_WALLET"})
F1_CHECKSUM = 0.97
F1_PERSON = 0.85
THROUGHPUT_RATIO = 300.0
PROMPT_P50_MS = 0.3


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _verdict(target: str, verdict: str, detail: str) -> dict[str, str]:
    return {"target": target, "verdict": verdict, "detail": detail}


def verdicts(results: dict[str, Any]) -> list[dict[str, str]]:
    ours = results["passerelle"]
    out = []
    f1s = {t: ours["types"][t]["overlap"]["f1"] for t in sorted(CHECKSUM_TYPES) if t in ours["types"]}
    low = {t: f for t, f in f1s.items() if f is None or f < F1_CHECKSUM}
    missing = sorted(CHECKSUM_TYPES - set(f1s))
    detail = f"lowest {min(f1s, key=lambda t: f1s[t] or 0)} {_f(min((f or 0) for f in f1s.values()))}" if f1s else ""
    if low or missing:
        detail = "below: " + ", ".join(f"{t} {_f(f)}" for t, f in low.items()) + \
            (f"; unsupported: {', '.join(missing)}" if missing else "")
    out.append(_verdict(f"F1 >= {F1_CHECKSUM} on every checksum-validated type ({len(CHECKSUM_TYPES)} types)",
                        "FAIL" if low or missing else "PASS", detail))
    flagged = {cat: e["flagged"] for cat, e in ours["negatives"].items() if e["flagged"]}
    out.append(_verdict("zero false positives on the hard negatives",
                        "FAIL" if flagged else "PASS",
                        f"{ours['negatives_flagged']} of {ours['negatives_total']} flagged"
                        + (": " + ", ".join(f"{c} {n}" for c, n in flagged.items()) if flagged else "")))
    persons = ours["person_by_language"]
    pf = {lang: persons.get(lang, {}).get("f1") for lang in ("en", "fr")}
    ok = all(f is not None and f >= F1_PERSON for f in pf.values())
    out.append(_verdict(f"PERSON F1 >= {F1_PERSON} in English and French", "PASS" if ok else "FAIL",
                        f"en {_f(pf['en'])}, fr {_f(pf['fr'])} (de {_f(persons.get('de', {}).get('f1'))})"))
    speed = results.get("speed", {})
    ratio = speed.get("ratio_all")
    if ratio is None:
        out.append(_verdict(f">= {THROUGHPUT_RATIO:.0f}x Presidio's throughput", "NOT RUN",
                            "Presidio did not run: " + str(results.get("presidio", {}).get("message", ""))[:200]))
    else:
        out.append(_verdict(f">= {THROUGHPUT_RATIO:.0f}x Presidio's throughput", "PASS" if ratio >= THROUGHPUT_RATIO
                            else "FAIL", f"{ratio:.0f}x with every detector ({_f(speed['passerelle_all']['mb_s'], 2)} "
                            f"vs {_f(speed['presidio']['mb_s'], 4)} MB/s); {speed['ratio_finance']:.0f}x with "
                            "the finance pack" + _peer_types_ratio(speed)))
    fin = speed.get("passerelle_finance", {})
    typ, den = fin.get("prompt_typical", {}), fin.get("prompt_dense", {})
    p50 = typ.get("p50_ms")
    out.append(_verdict(f"4 KB prompt under {PROMPT_P50_MS} ms p50 with the finance pack",
                        "NOT RUN" if p50 is None else "PASS" if p50 < PROMPT_P50_MS else "FAIL",
                        f"typical prompt p50 {_ms(p50)} ms (CPU {_ms(typ.get('cpu_p50_ms'))}), p99 "
                        f"{_ms(typ.get('p99_ms'))} ms; dense prompt p50 {_ms(den.get('p50_ms'))} ms"
                        if p50 is not None else ""))
    return out


def _batch_ratio(speed: dict[str, Any]) -> str:
    """The batch path, as information: the target is on text-by-text scans, as the gateway scans requests."""
    ratio, batch = speed.get("ratio_batch"), speed.get("passerelle_batch", {})
    if ratio is None:
        return ""
    return (f" In calls of {batch.get('batch', 0):,} texts to `Engine.scan_many`, as `passerelle scan --jsonl` "
            f"scans a batch: {_f(batch.get('mb_s'), 2)} MB/s, {ratio:.0f}x (information only: the target above is "
            "on text-by-text scans, as the gateway scans requests).")


def _peer_types_ratio(speed: dict[str, Any]) -> str:
    ratio = speed.get("ratio_peer_types")
    if ratio is None:
        return ""
    return (f"; {ratio:.0f}x doing the peer's job (only the {len(speed.get('peer_types', []))} types Presidio also "
            "detects)")


def _cells(system: dict[str, Any], t: str) -> list[str]:
    if system.get("status") != "ok":
        return ["n/a"] * 4
    if t not in system["types"]:
        return ["unsupported", "", "", ""]
    o, s = system["types"][t]["overlap"], system["types"][t]["strict"]
    return [_f(o["precision"]), _f(o["recall"]), _f(o["f1"]), _f(s["f1"])]


def type_table(results: dict[str, Any]) -> list[str]:
    ours, theirs = results["passerelle"], results.get("presidio") or {}
    peer_ok = theirs.get("status") == "ok"
    head = "| type | support | P | R | F1 | F1 strict | Presidio P | R | F1 | F1 strict |"
    rows = [head + (" F1 @0.5 |" if peer_ok else ""), "|" + "---|" * (10 + peer_ok)]
    for t, support in results["corpus"]["labels"].items():
        mark = " ✓" if t in CHECKSUM_TYPES else ""
        cells = [f"{t}{mark}", str(support), *_cells(ours, t), *_cells(theirs, t)]
        if peer_ok:
            half = theirs["threshold_0_5"]["types"].get(t)
            cells.append(_f(half["f1"]) if half else "")
        rows.append("| " + " | ".join(cells) + " |")
    for name, key in (("micro, all its types", "micro"),):
        cells = [f"**{name}**", "", *_micro(ours[key]), *(_micro(theirs[key]) if peer_ok else ["n/a"] * 4)]
        if peer_ok:
            cells.append(_f(theirs["threshold_0_5"]["micro"]["f1"]))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _micro(m: dict[str, Any]) -> list[str]:
    return [_f(m["overlap"]["precision"]), _f(m["overlap"]["recall"]), _f(m["overlap"]["f1"]), _f(m["strict"]["f1"])]


def _scan_path(twins: dict[str, bool]) -> str:
    """How Passerelle's scan path ran: its compiled twins (setup.py) or the pure-Python sources."""
    compiled = sorted(m.rsplit(".", 1)[-1] for m, used in twins.items() if used)
    source = sorted(m.rsplit(".", 1)[-1] for m, used in twins.items() if not used)
    if not twins:
        return "Scan path: pure Python (no compiled twins installed)."
    if not source:
        return f"Scan path: compiled with Cython ({len(compiled)} modules: {', '.join(compiled)})."
    return (f"Scan path: {len(compiled)} modules compiled with Cython, {len(source)} as pure Python "
            f"({', '.join(source)}).")


def render(results: dict[str, Any]) -> str:
    m, c = results["machine"], results["corpus"]
    ours, theirs = results["passerelle"], results.get("presidio", {})
    peer_ok = theirs.get("status") == "ok"
    speed = results.get("speed", {})
    versions = results["versions"]
    lines = [
        "# Compliance benchmark: Passerelle and Presidio on the same corpus",
        "",
        f"Machine: {m['cpus']} CPUs, {m['cpu_model']}, Python {m['python']}; load average "
        f"{m['load_avg'][0]:.2f} at the start, {m.get('load_avg_end', [0])[0]:.2f} at the end. "
        f"Generated {results['generated_at']} by `{results['command'].strip()}` in {results['duration_s']:.0f} s.",
        "",
        f"Versions: passerelle {versions.get('passerelle')}, hyperscan {versions.get('hyperscan')}, python-stdnum "
        f"{versions.get('python-stdnum')}, phonenumbers {versions.get('phonenumbers')}, Faker {versions.get('faker')}"
        + (f"; Presidio {theirs['info'].get('presidio')} with spaCy {theirs['info'].get('spacy')} and the model "
           f"`{theirs['model']}` {theirs['info'].get('model_version')} (spaCy's en_core_web_sm re-uploaded to PyPI)."
           if peer_ok else f"; Presidio not run: {theirs.get('message', '')}"),
        "",
        _scan_path(results.get("twins", {})),
        "",
        "## Verdicts",
        "",
        "| target | verdict | measured |",
        "|---|---|---|",
        *(f"| {v['target']} | **{v['verdict']}** | {v['detail']} |" for v in results["verdicts"]),
        "",
        "## Corpus",
        "",
        f"{c['size']} texts ({c['bytes'] / 1e6:.2f} MB), seed {c['seed']}: "
        + ", ".join(f"{k} {v}" for k, v in c["texts_by_locale"].items()) + "; "
        + ", ".join(f"{k} {v}" for k, v in c["texts_by_domain"].items())
        + f". {sum(c['labels'].values())} labelled values, {sum(c['negatives'].values())} hard negatives. "
        "Generated by `bench/compliance/corpus.py` (Faker names; check digits computed by the benchmark's own code).",
        "",
        "## Detection per type",
        "",
        f"P, R, F1: a prediction matches a label of the same type when their intersection over union is at least "
        f"{results['rules']['iou']}; *strict*: same start and end.  ✓ marks the checksum-validated types.  "
        "Presidio runs with its default recognizers and its default score threshold (0); *F1 @0.5* keeps only its "
        "results scored 0.5 or more.  Overlapping results are resolved for both the way Passerelle's engine does "
        "(higher score, then longer).  Codewords: the run configures "
        + ", ".join(ours.get("codewords", [])) + ".",
        "",
        *type_table(results),
        "",
        "## PERSON per locale",
        "",
        "| locale | support | Passerelle P | R | F1 | Presidio P | R | F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loc, cnt in ours["person_by_locale"].items():
        peer = theirs.get("person_by_locale", {}).get(loc) if peer_ok else None
        lines.append(f"| {loc} | {cnt['support']} | {_prf(cnt)} | " + (f"{_prf(peer)} |" if peer else "n/a | | |"))
    for lang, cnt in ours["person_by_language"].items():
        peer = theirs.get("person_by_language", {}).get(lang) if peer_ok else None
        lines.append(f"| **{lang}** | {cnt['support']} | {_prf(cnt)} | " + (f"{_prf(peer)} |" if peer else "n/a | | |"))
    lines += ["", "## Hard negatives", "",
              "A negative is flagged when any finding overlaps it.", "",
              "| category | count | Passerelle flagged | as | Presidio flagged | as |", "|---|---|---|---|---|---|"]
    for cat, count in c["negatives"].items():
        mine = ours["negatives"].get(cat, {"flagged": 0, "by_type": {}})
        row = f"| {cat} | {count} | {mine['flagged']} | {_types(mine['by_type'])} | "
        if peer_ok:
            peer = theirs["negatives"].get(cat, {"flagged": 0, "by_type": {}})
            row += f"{peer['flagged']} | {_types(peer['by_type'])} |"
        else:
            row += "n/a | |"
        lines.append(row)
    lines.append(f"| **total** | {ours['negatives_total']} | {ours['negatives_flagged']} | | "
                 + (f"{theirs['negatives_flagged']} | |" if peer_ok else "n/a | |"))
    lines += ["", "## Speed", "", _speed_intro(results), "",
              "| | Passerelle, every detector | Passerelle, finance pack | Presidio |", "|---|---|---|---|"]
    pa, pf, pr = speed.get("passerelle_all", {}), speed.get("passerelle_finance", {}), speed.get("presidio", {})
    lines.append(f"| corpus throughput, MB/s (CPU time) | {_rate(pa)} | {_rate(pf)} | {_rate(pr, 4)} |")
    lines.append(f"| slowest to fastest pass, MB/s | {_passes(pa, c['bytes'])} | {_passes(pf, c['bytes'])} | "
                 "(one pass) |")
    lines.append(f"| corpus text, p50 / p99 ms | {_pair(pa.get('short_text'))} | | {_pair(pr.get('short_text'))} |")
    for kind in ("typical", "dense"):
        values = c.get("prompts", {}).get(kind, {}).get("values_mean")
        label = f"4 KB prompt, {kind} (~{values:.0f} values), p50 / p99 ms" if values is not None else kind
        lines.append(f"| {label} | {_pair(pa.get(f'prompt_{kind}'))} | {_pair(pf.get(f'prompt_{kind}'))} | "
                     f"{_pair(pr.get(f'prompt_{kind}'))} |")
        lines.append(f"| same, CPU time p50 ms | {_ms(pa.get(f'prompt_{kind}', {}).get('cpu_p50_ms'))} | "
                     f"{_ms(pf.get(f'prompt_{kind}', {}).get('cpu_p50_ms'))} | "
                     f"{_ms(pr.get(f'prompt_{kind}', {}).get('cpu_p50_ms'))} |")
    lines.append(f"| start-up, s | {_f(ours.get('build_s'), 2)} | (same engine) | "
                 f"{_f(theirs.get('info', {}).get('build_seconds'), 2) if peer_ok else 'n/a'} |")
    if "ratio_all" in speed:
        lines += ["", f"Throughput ratio: **{speed['ratio_all']:.0f}x** Presidio's with every detector, "
                      f"{speed['ratio_finance']:.0f}x with the finance pack (in CPU time: "
                      f"{speed['ratio_all_cpu']:.0f}x and {speed['ratio_finance_cpu']:.0f}x)"
                      + _peer_types_ratio(speed) + "." + _batch_ratio(speed)]
    lines += ["", "## Most frequent type confusions", "",
              "A labelled value found with the same span but another type (labelled → found).", "",
              "| system | confusions |", "|---|---|",
              f"| Passerelle | {_confusions(ours['confusions'])} |"]
    if peer_ok:
        lines.append(f"| Presidio | {_confusions(theirs['confusions'])} |")
        lines += ["", f"Presidio entities not scored (no type of ours): {', '.join(theirs['unmapped_entities'])}."]
    lines += ["", "Error examples of the run (synthetic values) are written to `bench/.work/compliance-errors.md`.", ""]
    return "\n".join(lines)


def _speed_intro(results: dict[str, Any]) -> str:
    c, speed = results["corpus"], results.get("speed", {})
    passes = len(speed.get("passerelle_all", {}).get("passes_s", []))
    req = speed.get("passerelle_all", {}).get("prompt_typical", {}).get("requests")
    peer_req = speed.get("presidio", {}).get("prompt_typical", {}).get("requests")
    typical = c.get("prompts", {}).get("typical", {})
    sizes = typical.get("bytes") or [0]
    blocks = speed.get("passes_interleaved")
    spread = (f", spread over Presidio's analysis of the corpus (one before its first block and one after each of its "
              f"{blocks} blocks, while its process waited), so that both are timed over the same minutes of a VM whose "
              "speed drifts" if blocks else "")
    return (f"Passerelle: the engine built once in the benchmark's process, only `scan()` timed; throughput = corpus "
            f"bytes (UTF-8) / median of {passes} whole passes{spread}.  "
            f"4 KB prompts ({min(sizes)}-{max(sizes)} bytes), "
            f"{typical.get('count', 0)} distinct ones of each kind scanned in turn, {req} scans per series after a "
            "warm-up: *typical* = a system prompt and a support conversation whose user turns are corpus sentences, "
            "*dense* = corpus texts back to back.  Presidio: its analyzer built once in its own process, only "
            "`analyze()` timed; throughput = corpus bytes / the sum of its analyze() times over one pass; "
            f"{peer_req or 0} analyses of each kind of prompt.  Wall-clock times decide the verdicts; the CPU time of "
            "the scanning thread is shown beside them because other processes share this machine's cores.")


def _passes(entry: dict[str, Any], size: int) -> str:
    """The range of a system's passes: on a VM whose speed drifts, the spread is part of the result."""
    seconds = entry.get("passes_s") or []
    if not seconds:
        return "n/a"
    return f"{_f(size / 1e6 / max(seconds), 2)} to {_f(size / 1e6 / min(seconds), 2)}"


def _rate(entry: dict[str, Any], digits: int = 2) -> str:
    if not entry:
        return "n/a"
    return f"{_f(entry.get('mb_s'), digits)} ({_f(entry.get('cpu_mb_s'), digits)})"


def _prf(counts: dict[str, Any]) -> str:
    return f"{_f(counts['precision'])} | {_f(counts['recall'])} | {_f(counts['f1'])}"


def _pair(series: dict[str, Any] | None) -> str:
    if not series:
        return "n/a"
    return f"{_ms(series.get('p50_ms'))} / {_ms(series.get('p99_ms'))}"


def _types(by_type: dict[str, int]) -> str:
    return ", ".join(f"{t} {n}" for t, n in sorted(by_type.items(), key=lambda kv: -kv[1]))


def _confusions(items: list[list[Any]]) -> str:
    return ", ".join(f"{g} → {p} {n}" for g, p, n in items[:10]) or "none"
