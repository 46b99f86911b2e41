"""Secrets (type SECRET, the kind as subtype): cloud and API keys by their documented prefixes, JWTs,
PEM private keys, and passwords or secrets assigned after their keyword ("password: ...",
"mot de passe :", "Passwort lautet").  The word "secret" in prose is nothing.

Variable-length tokens are matched by their prefix and a fixed minimum; the validator extends the
span over the token's alphabet (Hyperscan would otherwise report one match per extra character).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable

from passerelle.compliance.context import WORDS, keyword
from passerelle.compliance.detectors.common import PatternDetector, extend
from passerelle.compliance.findings import Finding, Pattern, Validator

_BASE62 = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_URLSAFE = _BASE62 | {"-", "_"}
_BASE64 = _BASE62 | {"+", "/"}
_GENERIC = _URLSAFE | {"+", "/", "=", "."}


def _token(subtype: str, chars: frozenset[str], score: float = 0.95) -> Validator:
    """A prefix-anchored token: extended over ``chars``, and not the middle of a longer word."""
    def validate(text: str, start: int, end: int) -> Finding | None:
        end = extend(text, end, chars)
        if start and text[start - 1] in chars:
            return None
        return Finding("SECRET", start, end, score, subtype)
    return validate


def _exact(subtype: str, chars: frozenset[str], score: float = 0.95) -> Validator:
    """A fixed-length token: the characters around it must not continue it."""
    def validate(text: str, start: int, end: int) -> Finding | None:
        if (start and text[start - 1] in chars) or text[end:end + 1] in chars:
            return None
        return Finding("SECRET", start, end, score, subtype)
    return validate


def _aws_secret(text: str, start: int, end: int) -> Finding | None:
    begin = end - 40
    if text[end:end + 1] in _BASE64:  # 41 characters and more are something else
        return None
    return Finding("SECRET", begin, end, 0.9, "AWS_SECRET_KEY")


def _jwt(text: str, start: int, end: int) -> Finding | None:
    header = text[start:text.index(".", start)]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(decoded, dict) or "alg" not in decoded:
        return None
    return Finding("SECRET", start, extend(text, end, _URLSAFE), 0.95, "JWT")


_PEM_BODY = _BASE64 | {"=", "\n", "\r", " ", "\\", ":", "-", ","}


def _private_key(text: str, start: int, end: int) -> Finding | None:
    # The whole block: up to its END line, or over the base64 body when the paste is cut short.  A header
    # with no body ("files start with -----BEGIN RSA PRIVATE KEY-----") is documentation.
    body_end = extend(text, end, _PEM_BODY, 16384)
    if sum(c in _BASE64 for c in text[end:min(body_end, end + 200)]) < 40:
        return None
    stop = text.find("-----END", end)
    if stop != -1 and stop <= body_end + 1:
        close = text.find("-----", stop + 8)
        if close != -1 and close - stop < 60:
            return Finding("SECRET", start, close + 5, 1.0, "PRIVATE_KEY")
    return Finding("SECRET", start, body_end, 1.0, "PRIVATE_KEY")


# What follows "password:" in forms, docs and templates rather than a password.
_PLACEHOLDERS = frozenset({
    "none", "null", "nil", "true", "false", "required", "optional", "empty", "hidden", "redacted", "masked",
    "secret", "password", "changeit", "your_password", "yourpassword", "xxx", "xxxx", "****", "n/a", "aucun",
    "vide", "obligatoire", "facultatif", "leer", "erforderlich", "keins", "keine", "string", "str", "int",
    "please", "see", "voir", "bitte", "siehe", "unknown", "inconnu", "unbekannt", "invalid", "incorrect",
    "expired", "reset", "changed", "change", "sent", "oublié", "vergessen", "falsch", "faux", "wrong",
    "bool", "bytes", "float", "dict", "list", "any", "object", "optional[str]", "secretstr",  # type annotations
})
_VALUE_STOP = frozenset(" \t\r\n\"'<>`,;)]}")  # an unquoted value ends at a space or a closing mark
_VARIABLE = re.compile(r"[a-z_][a-z0-9_]*_[a-z0-9_]*|.*(?i:pass|pwd).*")
_LABEL = re.compile(r"[A-Za-z_-]*(?i:pass|pwd)[A-Za-z_-]*")  # "FORCE_CHANGE_PASSWORD", "no-password-required"


_CODE_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_LINE_END = re.compile(r"[ \t]*(?:[.,;)]?[ \t]*(?:\r?\n|$))")


def _password_like(value: str) -> bool:
    """A verbal "the password is X" needs an X that no sentence would use: a digit or a symbol."""
    return any(not c.isalpha() for c in value)


def _code(value: str, following: str) -> bool:
    """An expression, not a literal: ``auth[2]``, ``self.pwd``, ``getpass()``, ``base64_bytes.decode(...)``."""
    return following in ("(", "[") or any(c in "([" for c in value) or _CODE_PATH.fullmatch(value) is not None


def _password(text: str, start: int, end: int) -> Finding | None:
    begin = end - 1
    quote = text[begin - 1]
    quoted = quote in "'\""
    limit = min(len(text), begin + 128)
    if quoted:  # up to the closing quote: a quoted password may hold spaces and punctuation
        stop = text.find(quote, begin, limit)
        if stop == -1 or "\n" in text[begin:stop]:
            return None
    else:
        stop = begin
        while stop < limit and text[stop] not in _VALUE_STOP:
            stop += 1
        while stop > begin and text[stop - 1] in ".:":
            stop -= 1
    value = text[begin:stop]
    lowered = value.lower()
    if len(value) < 4 or lowered in _PLACEHOLDERS or value[0] in "<{[(%$" or set(value) <= set("*x•.#-_\\") or \
            _LABEL.fullmatch(value):
        return None
    assigned = any(c in ":=" for c in text[start:begin])
    if not assigned and not _password_like(value):
        return None
    if not quoted:
        if _code(value, text[stop:stop + 1]) or _VARIABLE.fullmatch(value):
            return None  # password = master_user_password, pwd = self.pwd
        # "pwd: expected bytes" is prose; "password: sunshine" ends its line.
        if value.isalpha() and value.islower() and not _LINE_END.match(text, stop):
            return None
    return Finding("SECRET", begin, stop, 0.85 if assigned else 0.8, "PASSWORD")


_URL_PLACEHOLDER = re.compile(r"[$%<{*]|(?i:pass(?:word)?|pwd|secret|xxx+|changeme)$")


def _url_password(text: str, start: int, end: int) -> Finding | None:
    """"postgresql://billing:Winter1965!@db:5432": the password between the user's colon and the last "@"."""
    authority = text[start:end - 1]  # the match ends one character past "@"
    colon = authority.find(":", authority.find("//") + 2)
    begin, stop = start + colon + 1, start + authority.rfind("@")
    value = text[begin:stop]
    if len(value) < 4 or _URL_PLACEHOLDER.match(value) or value.lower() in _PLACEHOLDERS:
        return None
    return Finding("SECRET", begin, stop, 0.85, "PASSWORD")


def _generic(text: str, start: int, end: int) -> Finding | None:
    begin = end - 16
    stop = extend(text, end, _GENERIC, 512)
    while text[stop - 1] == ".":
        stop -= 1
    value = text[begin:stop]
    digits = sum(c.isdigit() for c in value)
    if len(value) < 20 or digits < 2 or len(value) - digits < 2 or len(set(value)) < 8 or \
            _code(value, text[stop:stop + 1]):
        return None
    return Finding("SECRET", begin, stop, 0.75, "GENERIC_SECRET")


_ASSIGN = r"""["']?\s{0,3}[:=]\s{0,3}["']?"""
# "password is X", and with what it opens in between: "le mot de passe du Wi-Fi est X", "the password for the
# VPN is X".
_QUALIFIER = (r"(?:\s(?i:du|de|de la|des|pour|for|for the|of|of the|to|f(?:ü|u)r|f(?:ü|u)r das|f(?:ü|u)r den|"
              r"zum|zur|vom)\s[A-Za-z0-9-]{2,20})?")
_STATED = rf"""(?:["']?\s{{0,3}}[:=]\s{{0,3}}|{_QUALIFIER}\s{{1,3}}(?i:is|est|ist|lautet|:)\s{{1,3}})["']?"""

_SPECS: tuple[tuple[str, str, Callable[[str, int, int], Finding | None]], ...] = (
    ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b", _exact("AWS_ACCESS_KEY", _BASE62)),
    ("aws_secret_key", keyword("aws_secret") + _ASSIGN + r"[A-Za-z0-9/+]{40}", _aws_secret),
    ("github_token", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b", _exact("GITHUB_TOKEN", _URLSAFE)),
    ("github_pat", r"\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b", _exact("GITHUB_TOKEN", _URLSAFE)),
    ("anthropic_api_key", r"\bsk-ant-[a-z]{3,8}\d\d-[A-Za-z0-9_-]{32}", _token("ANTHROPIC_API_KEY", _URLSAFE)),
    ("openai_api_key", r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{32}", _token("OPENAI_API_KEY", _URLSAFE)),
    ("openai_legacy_key", r"\bsk-(?:[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})\b",
     _exact("OPENAI_API_KEY", _URLSAFE)),
    ("slack_token", r"\bxox[abposre]-[A-Za-z0-9-]{10}", _token("SLACK_TOKEN", _BASE62 | {"-"})),
    ("slack_webhook", r"https://hooks\.slack\.com/services/T[A-Z0-9]{6}", _token("SLACK_WEBHOOK", _BASE62 | {"/"})),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}", _exact("GOOGLE_API_KEY", _URLSAFE)),
    ("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24}", _token("STRIPE_KEY", _BASE62)),
    ("stripe_webhook_secret", r"\bwhsec_[A-Za-z0-9]{32}", _token("STRIPE_KEY", _BASE62)),
    ("jwt", r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.", _jwt),
    ("private_key", r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----", _private_key),
    ("password", rf"(?i:{WORDS['password']}){_STATED}[^\s\"'<>`]", _password),
    ("url_password", r"\b[a-z][a-z0-9+.-]{1,15}://[^\s:/@\"'<>]{1,64}:[^\s/\"'<>]{1,128}@[A-Za-z0-9\[]", _url_password),
    ("generic_secret", r"\b(?i:client_?secret|secret_?key|secret|api_?key|apikey|access_?token|auth_?token|token)"
                       + _ASSIGN + r"[A-Za-z0-9_\-+/=.]{16}", _generic),
)

PATTERNS = tuple(Pattern(pid, regex, "SECRET", validate) for pid, regex, validate in _SPECS)

TYPES = frozenset({"SECRET"})


class SecretsDetector(PatternDetector):
    name = "secrets"
    types = TYPES
    _patterns = PATTERNS
