"""Packs load and merge by strictness; actions rewrite exactly the findings' spans."""

from __future__ import annotations

import pytest

from passerelle.compliance.actions import apply, mask
from passerelle.compliance.findings import Finding
from passerelle.compliance.policy import SHIPPED_PACKS, PolicyError, build_policy, load_pack, parse_pack
from passerelle.compliance.pseudonyms import Pseudonymizer, Vault


def test_every_shipped_pack_loads() -> None:
    for name in SHIPPED_PACKS:
        pack = load_pack(name)
        assert pack.name == name and pack.version and pack.actions
    assert load_pack("defense").route_label == "onprem"
    assert load_pack("finance").audit_retention_days_min >= 365
    assert load_pack("gdpr") is load_pack("gdpr")  # read once: a policy is compiled on a caller's first request
    with pytest.raises(TypeError):  # every caller shares the one copy: nobody may change it
        load_pack("gdpr").actions["PERSON"] = "allow"  # type: ignore[index]


def test_stricter_action_wins_and_overrides_win_over_packs() -> None:
    policy = build_policy([load_pack("gdpr"), load_pack("finance")])
    assert policy.action("IBAN") == "pseudonymize" and policy.action("SECRET") == "block"
    assert policy.action("CREDIT_CARD") == "mask" and policy.action("PERSON") == "pseudonymize"
    assert policy.action("CLASSIFICATION_MARKING") == "allow"  # no selected pack covers it
    assert "CLASSIFICATION_MARKING" not in policy.types and "IBAN" in policy.types
    overridden = build_policy([load_pack("finance")], {"CREDIT_CARD": "block", "EMAIL": "redact"})
    assert overridden.action("CREDIT_CARD") == "block" and overridden.action("EMAIL") == "redact"
    assert overridden.versions == {"finance": load_pack("finance").version}


@pytest.mark.parametrize("document, message", [
    ({"actions": {"IBAN": "shred"}}, "unknown action 'shred'"),
    ({"actions": {"NOT_A_TYPE": "block"}}, "unknown entity type 'NOT_A_TYPE'"),
    ({"actions": {"EXPORT_CONTROL": "route"}}, "needs route_label"),
    ({"actions": {}}, "expected a mapping of entity type"),
    ({"actions": {"IBAN": "block"}, "colour": "red"}, "unknown field 'colour'"),
])
def test_bad_packs_are_refused_with_the_reason(document: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_pack(document, "pack custom")


def test_a_route_override_needs_a_pack_that_names_the_label() -> None:
    """Without a label, 'route' would restrict the request to nothing and silently let it go anywhere."""
    with pytest.raises(PolicyError, match=r"'route' \(EMAIL, IBAN\) needs a pack with a route_label"):
        build_policy([load_pack("gdpr")], {"IBAN": "route", "EMAIL": "route"})
    policy = build_policy([load_pack("gdpr"), load_pack("defense")], {"IBAN": "route"})
    assert policy.action("IBAN") == "route" and policy.route_label == "onprem"


def test_masks_keep_only_what_pci_allows() -> None:
    assert mask("CREDIT_CARD", "4111 1111 1111 1111") == "4111 11** **** 1111"
    assert mask("IBAN", "FR76 3000 6000 0112 3456 7890 189") == "FR76 **** **** **** **** ***0 189"
    assert mask("EMAIL", "marie.dupont@example.fr") == "m***********@example.fr"
    assert mask("PHONE", "+33 6 12 34 56 78") == "+** * ** ** 56 78"


def test_apply_rewrites_each_span_and_collects_decisions() -> None:
    text = "Marie Dupont paie avec 4111 1111 1111 1111, IBAN FR7630006000011234567890189, cvv 123."
    spans = {"PERSON": "Marie Dupont", "CREDIT_CARD": "4111 1111 1111 1111",
             "IBAN": "FR7630006000011234567890189", "CARD_CVV": "123"}
    findings = [Finding(t, text.rindex(v), text.rindex(v) + len(v), 1.0) for t, v in spans.items()]
    vault = Vault(Pseudonymizer(b"k", "acme"))
    policy = build_policy([load_pack("finance"), load_pack("gdpr")])
    outcome = apply(text, findings, policy, vault, b"hash-key")
    assert "Marie Dupont" not in outcome.text and "FR7630006000011234567890189" not in outcome.text
    assert "4111 11** **** 1111" in outcome.text and "cvv [CARD_CVV]." in outcome.text
    assert vault.restore(outcome.text).replace("4111 11** **** 1111", "4111 1111 1111 1111").replace(
        "[CARD_CVV]", "123") == text
    assert {a for _, a in outcome.applied} == {"pseudonymize", "mask", "redact"} and not outcome.blocked


def test_block_and_route_are_decisions_not_rewrites() -> None:
    text = "SECRET//NOFORN memo about an ITAR item"
    findings = [Finding("CLASSIFICATION_MARKING", 0, 14, 1.0, "US:SECRET//NOFORN"),
                Finding("EXPORT_CONTROL", 30, 34, 1.0, "ITAR")]
    outcome = apply(text, findings, build_policy([load_pack("defense")]), Vault(Pseudonymizer(b"k", "t")), b"h")
    assert outcome.text == text and [f.type for f in outcome.blocked] == ["CLASSIFICATION_MARKING"]
    assert outcome.route_label == "onprem"


def test_hash_is_keyed_and_stable() -> None:
    text = "IBAN FR7630006000011234567890189"
    finding = [Finding("IBAN", 5, len(text), 1.0)]
    policy = build_policy([], {"IBAN": "hash"})
    one = apply(text, finding, policy, Vault(Pseudonymizer(b"k", "t")), b"key-1").text
    assert one == apply(text, finding, policy, Vault(Pseudonymizer(b"k", "t")), b"key-1").text
    assert one != apply(text, finding, policy, Vault(Pseudonymizer(b"k", "t")), b"key-2").text
    assert one.startswith("IBAN [IBAN:") and "FR76" not in one
