"""`passerelle scan` as scripts run it: a real process, text on stdin or in a file, never a value printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from passerelle.cli.scan import JSONL_BATCH, PACK_NAMES, pack_types
from passerelle.compliance.policy import SHIPPED_PACKS, load_pack
from tests.support.processes import SRC

CARD = "4111 1111 1111 1111"
IBAN = "FR76 3000 6000 0112 3456 7890 189"
TEXT = f"Né à Besançon 😀, ma carte {CARD}, IBAN {IBAN}, mail jean.dupont@example.fr, mot de passe : Azerty123!\n"


def scan(*args: str, stdin: str = "", code: int = 0) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    result = subprocess.run([sys.executable, "-m", "passerelle", "scan", *args], input=stdin, capture_output=True,
                            text=True, encoding="utf-8", env={**keep, "PYTHONPATH": SRC}, timeout=120)
    assert result.returncode == code, result.stdout + result.stderr
    return result


def test_json_shape_and_string_offsets(tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    path.write_text(TEXT, encoding="utf-8")
    out = json.loads(scan("--json", str(path)).stdout)
    assert list(out) == ["findings"]
    assert all(list(f) == ["type", "subtype", "start", "end", "score"] for f in out["findings"])
    spans = {f["type"]: TEXT[f["start"]:f["end"]] for f in out["findings"]}
    assert spans["CREDIT_CARD"] == CARD and spans["IBAN"] == IBAN
    assert spans["EMAIL"] == "jean.dupont@example.fr" and spans["SECRET"] == "Azerty123!"
    assert [f["subtype"] for f in out["findings"] if f["type"] in ("CREDIT_CARD", "SECRET")] == ["VISA", "PASSWORD"]


def test_stdin_and_packs_narrow_the_types() -> None:
    out = json.loads(scan("--packs", "finance", "--json", "-", stdin=TEXT).stdout)
    assert {f["type"] for f in out["findings"]} == {"CREDIT_CARD", "IBAN", "SECRET"}
    out = json.loads(scan("--packs", "gdpr,health", "--json", stdin=TEXT).stdout)
    assert {"EMAIL", "CREDIT_CARD", "IBAN", "SECRET"} <= {f["type"] for f in out["findings"]}
    out = json.loads(scan("--packs", "defense", "--json", stdin=TEXT).stdout)
    assert {f["type"] for f in out["findings"]} == {"SECRET"}  # the types the shipped pack lists, no other


def test_packs_are_the_shipped_pack_files() -> None:
    """``--packs`` reads the same pack files as the gateway: a scan reports what a policy would act on."""
    assert PACK_NAMES.split(",") == list(SHIPPED_PACKS)
    for name in SHIPPED_PACKS:
        assert pack_types(name) == frozenset(load_pack(name).actions)


def test_plain_output_shows_types_and_positions_never_values() -> None:
    out = scan(stdin=TEXT).stdout
    for kind in ("CREDIT_CARD", "IBAN", "EMAIL", "SECRET", "VISA", "PASSWORD"):
        assert kind in out
    assert "4111 **** **** 1111" in out
    for raw in (CARD, CARD.replace(" ", ""), IBAN, IBAN.replace(" ", ""), "jean.dupont", "Azerty123", "1111 1111"):
        assert raw not in out
    assert scan(stdin="nothing here\n").stdout.strip() == "no findings"


def test_jsonl_batch() -> None:
    lines = [{"id": 1, "text": f"carte {CARD}"}, {"id": "b", "text": "rien à signaler"}, {"text": "mail a@example.com"}]
    stdin = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n\n"
    out = [json.loads(line) for line in scan("--jsonl", stdin=stdin).stdout.splitlines()]
    assert [o["id"] for o in out] == [1, "b", None]
    assert out[0]["findings"] == [{"type": "CREDIT_CARD", "subtype": "VISA", "start": 6, "end": 25, "score": 1.0}]
    assert out[1]["findings"] == [] and out[2]["findings"][0]["type"] == "EMAIL"


def test_jsonl_in_several_batches_keeps_every_line_in_order() -> None:
    """More records than one ``scan_many`` batch: one output line per input, in order, each its own findings."""
    texts = [f"carte {CARD}", "rien à signaler", "Bonjour Marie Dupont", f"IBAN {IBAN}"]
    count = JSONL_BATCH + 100
    lines = [{"id": i, "text": texts[i % 4]} for i in range(count)]
    stdin = "\n".join(map(json.dumps, lines)) + "\n"
    out = [json.loads(line) for line in scan("--jsonl", stdin=stdin).stdout.splitlines()]
    assert [o["id"] for o in out] == list(range(count))
    kinds = [[f["type"] for f in o["findings"]] for o in out]
    assert kinds[:4] == [["CREDIT_CARD"], [], ["PERSON"], ["IBAN"]]
    assert kinds == kinds[:4] * (count // 4)


def test_bad_input_is_refused_without_echoing_it(tmp_path: Path) -> None:
    assert "unknown pack" in scan("--packs", "finance,banking", stdin=TEXT, code=2).stderr
    bad = scan("--jsonl", stdin=f'{{"id": 1, "text": "ok"}}\n{{"id": 2, "txt": "{CARD}"}}\n', code=2)
    assert "line 2" in bad.stderr and CARD not in bad.stderr and bad.stdout == ""
    assert "not JSON" in scan("--jsonl", stdin="{oops\n", code=2).stderr
    path = tmp_path / "latin1.txt"
    path.write_bytes("carte bancaire nº 4111111111111111 \xe9".encode("latin-1"))
    assert "not UTF-8" in scan(str(path), code=2).stderr
    assert "cannot read" in scan(str(tmp_path / "missing.txt"), code=2).stderr
    # Asked for JSON, a program gets the error as JSON too (the admin API's error object), the exit code unchanged.
    for args, stdin, words in ((["--json", "--packs", "banking"], TEXT, "unknown pack"),
                               (["--jsonl"], "{oops\n", "line 1: not JSON"),
                               (["--json", str(tmp_path / "missing.txt")], "", "cannot read")):
        error = json.loads(scan(*args, stdin=stdin, code=2).stderr)["error"]
        assert error["type"] == "invalid_request_error" and words in error["message"]
