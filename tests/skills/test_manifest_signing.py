"""The manifest is canonical, the digest covers every byte, signatures bind a publisher to a digest."""

from __future__ import annotations

import pytest

from passerelle.skills import signing
from passerelle.skills.manifest import digest, manifest_bytes

FILES = {"SKILL.md": b"---\nname: x\n---\n", "scripts/b.py": b"print(1)\n", "assets/é.txt": b""}


def test_manifest_is_sorted_and_documented() -> None:
    text = manifest_bytes(FILES).decode()
    lines = text.splitlines()
    assert lines[0] == "passerelle-skill-manifest/1"
    assert [line.split(" ", 2)[2] for line in lines[1:]] == ["SKILL.md", "assets/é.txt", "scripts/b.py"]
    assert lines[1].split(" ")[1] == str(len(FILES["SKILL.md"]))
    assert digest(dict(reversed(list(FILES.items())))) == digest(FILES)  # insertion order does not matter


@pytest.mark.parametrize("change", ["byte", "rename", "add", "remove"])
def test_any_change_changes_the_digest(change: str) -> None:
    other = dict(FILES)
    if change == "byte":
        other["scripts/b.py"] = b"print(2)\n"
    elif change == "rename":
        other["scripts/c.py"] = other.pop("scripts/b.py")
    elif change == "add":
        other["extra"] = b""
    else:
        del other["assets/é.txt"]
    assert digest(other) != digest(FILES)


def test_sign_and_verify() -> None:
    pem, public = signing.generate()
    assert public.startswith("ed25519:") and signing.check_public(public) == public
    signature = signing.sign(signing.load_private(pem), digest(FILES))
    assert signing.verify(public, digest(FILES), signature)
    tampered = dict(FILES, **{"SKILL.md": b"---\nname: y\n---\n"})
    assert not signing.verify(public, digest(tampered), signature)
    _, other_public = signing.generate()
    assert not signing.verify(other_public, digest(FILES), signature)
    assert not signing.verify(public, digest(FILES), "not base64!")
    assert not signing.verify("ed25519:AAAA", digest(FILES), signature)


@pytest.mark.parametrize("bad", ["", "rsa:abc", "ed25519:!!!", "ed25519:" + "A" * 8])
def test_bad_public_keys_are_refused(bad: str) -> None:
    with pytest.raises(signing.SigningKeyError):
        signing.check_public(bad)


def test_bad_private_keys_are_refused() -> None:
    with pytest.raises(signing.SigningKeyError):
        signing.load_private("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
