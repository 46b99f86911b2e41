"""Every command family reports a refusal the same way: with ``--json``, the admin API's error object on stderr
(its ``type`` one of the API's error types), so a script reads ``passerelle keys``, ``aiact``, ``audit`` and
``skills`` errors alike; without it, one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from passerelle.cli import main


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PASSERELLE_CONFIG", raising=False)
    monkeypatch.delenv("PASSERELLE_HOME", raising=False)


def refused(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> dict[str, object]:
    code = main([*args, "--data-dir", str(home), "--json"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert out == ""  # nothing on stdout for a program to mistake for a result
    error = json.loads(err)["error"]
    assert isinstance(error, dict) and isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize(("args", "kind", "says"), [
    (("keys", "create", "--tenant", "ghost"), "not_found_error", "ghost"),
    (("aiact", "bind", "key_123", "nope"), "not_found_error", "no purpose 'nope'"),
    (("audit", "hold", "release", "hold_nope"), "not_found_error", "hold_nope"),
    (("audit", "hold", "add", "--tenant", "Not A Tenant", "--reason", "x"), "invalid_request_error", "tenant"),
    (("skills", "install", "no-such-skill", "--scope", "key", "--id", "key_1"), "not_found_error", "no-such-skill"),
])
def test_json_errors_share_one_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...],
                                     kind: str, says: str) -> None:
    error = refused(capsys, tmp_path / "home", *args)
    assert error["type"] == kind
    assert says in str(error["message"])


def test_a_rule_refusal_is_an_invalid_request(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    purpose = tmp_path / "purpose.yaml"
    purpose.write_text("id: scoring\nname: Social scoring\ndescription: d\ninstructions: i\noverseer: o\nowner: a\n"
                       "risk_class: prohibited\nstatus: active\n")
    error = refused(capsys, tmp_path / "home", "aiact", "purpose", "put", str(purpose))
    assert error["type"] == "invalid_request_error" and "prohibited" in str(error["message"])


def test_a_file_refusal_is_json_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key = tmp_path / "exists.pem"
    key.write_text("not overwritten")
    error = refused(capsys, tmp_path / "home", "skills", "keygen", "--out", str(key))
    assert error["type"] == "invalid_request_error" and str(key) in str(error["message"])
    assert key.read_text() == "not overwritten"


def test_without_json_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["audit", "hold", "release", "hold_nope", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("passerelle: ") and err.count("\n") == 1 and "hold_nope" in err
