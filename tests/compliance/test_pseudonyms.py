"""Surrogates are consistent per tenant, and come back restored whatever the stream's chunking."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from passerelle.compliance.findings import Finding
from passerelle.compliance.pseudonyms import Pseudonymizer, Vault

SECRET = b"gateway-secret"


def protect(text: str, spans: list[tuple[str, str]], tenant: str = "acme") -> tuple[str, Vault]:
    vault = Vault(Pseudonymizer(SECRET, tenant))
    findings = []
    for entity, value in spans:
        start = text.index(value)
        findings.append(Finding(entity, start, start + len(value), 1.0))
    return vault.protect(text, findings), vault


def test_surrogates_are_consistent_typed_and_per_tenant() -> None:
    prompt = "Patient Marie Dupont, NIR 2 84 05 75 123 456 78, card 4111 1111 1111 1111."
    spans = [("PERSON", "Marie Dupont"), ("FR_NIR", "2 84 05 75 123 456 78"), ("CREDIT_CARD", "4111 1111 1111 1111")]
    protected, vault = protect(prompt, spans)
    again, _ = protect(prompt, spans)
    other_tenant, _ = protect(prompt, spans, tenant="globex")
    assert protected == again and protected != other_tenant
    for _, value in spans:
        assert value not in protected
    assert "PERSON-" in protected and "FR_NIR-" in protected and "CREDIT_CARD-" in protected
    assert vault.restore(protected) == prompt


def test_restore_inside_json_escapes_the_value() -> None:
    protected, vault = protect('name: "Zoë \\"Zed\\" O\'Brien"', [("PERSON", 'Zoë \\"Zed\\" O\'Brien')])
    surrogate = next(iter(vault.originals))
    document = json.dumps({"to": surrogate})
    restored = vault.restore(document, json_string=True)
    assert json.loads(restored)["to"] == 'Zoë \\"Zed\\" O\'Brien'
    assert protected.count(surrogate) == 1


ANSWER_WORDS = st.sampled_from(["Bonjour ", "Dear ", ", ", "votre carte ", "-", "PERSON", "PER", "\n", "é", "🙂"])


@settings(max_examples=300, deadline=None)
@given(words=st.lists(ANSWER_WORDS | st.sampled_from(["S1", "S2", "S3"]), max_size=30), data=st.data())
def test_stream_restoration_matches_whole_restoration_at_any_chunking(words: list[str], data: st.DataObject) -> None:
    _, vault = protect("Marie Dupont / 4111 1111 1111 1111 / Jean-Pierre", [
        ("PERSON", "Marie Dupont"), ("CREDIT_CARD", "4111 1111 1111 1111"), ("PERSON", "Jean-Pierre")])
    surrogates = list(vault.originals)
    answer = "".join(surrogates[int(w[1]) - 1] if w in ("S1", "S2", "S3") else w for w in words)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(answer)), max_size=12)))
    pieces = [answer[a:b] for a, b in zip([0, *cuts], [*cuts, len(answer)], strict=True)]
    restorer = vault.restorer()
    out = []
    longest = max(map(len, surrogates))
    for piece in pieces:
        out.append(restorer.feed(piece))
        assert restorer.held < longest  # the hold-back is bounded
    out.append(restorer.flush())
    assert "".join(out) == vault.restore(answer)
    for surrogate in surrogates:
        assert surrogate not in "".join(out)


def test_every_split_position_of_a_surrogate() -> None:
    protected, vault = protect("Call Marie Dupont now", [("PERSON", "Marie Dupont")])
    for i in range(len(protected) + 1):
        restorer = vault.restorer()
        text = restorer.feed(protected[:i]) + restorer.feed(protected[i:]) + restorer.flush()
        assert text == "Call Marie Dupont now"


def test_nothing_is_held_without_surrogates() -> None:
    vault = Vault(Pseudonymizer(SECRET, "acme"))
    restorer = vault.restorer()
    assert restorer.feed("PERSON-ABC") == "PERSON-ABC" and restorer.held == 0
