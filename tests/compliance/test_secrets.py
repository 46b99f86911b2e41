"""Secret detectors.  Test tokens are generated (seeded) so that no key-shaped literal sits in the repository."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest

from tests.compliance import found, subtypes, values

_rnd = random.Random(20240115)
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
UPPER = string.ascii_uppercase + string.digits


def rand(chars: str, n: int) -> str:
    return "".join(_rnd.choice(chars) for _ in range(n))


def b64url(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


JWT = ".".join((b64url({"alg": "HS256", "typ": "JWT"}), b64url({"sub": "1234567890", "name": "Jean"}),
                rand(URLSAFE, 43)))
TOKENS = {
    "AWS_ACCESS_KEY": "AKIA" + rand(UPPER, 16),
    "GITHUB_TOKEN": "ghp_" + rand(ALNUM, 36),
    "ANTHROPIC_API_KEY": "sk-ant-api03-" + rand(URLSAFE, 93) + "AA",
    "OPENAI_API_KEY": "sk-proj-" + rand(URLSAFE, 156),
    "SLACK_TOKEN": "xoxb-" + "-".join((rand(string.digits, 12), rand(string.digits, 13), rand(ALNUM, 24))),
    "GOOGLE_API_KEY": "AIza" + rand(URLSAFE, 35),
    "STRIPE_KEY": "sk_" + "live_" + rand(ALNUM, 99),
    "JWT": JWT,
}


@pytest.mark.parametrize("kind", sorted(TOKENS))
@pytest.mark.parametrize("sentence", [
    "Use {} for the API.", "export TOKEN_VALUE='{}'", "Voici la clé : {}.", "Der Schlüssel lautet {}",
])
def test_keys_by_their_prefix(kind: str, sentence: str) -> None:
    text = sentence.format(TOKENS[kind])
    assert found(text) == [("SECRET", TOKENS[kind])]
    assert subtypes(text, "SECRET") == [kind]


def test_github_fine_grained_token_and_openai_legacy_key() -> None:
    pat = "github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59)
    legacy = "sk-" + rand(ALNUM, 20) + "T3BlbkFJ" + rand(ALNUM, 20)
    assert subtypes(f"{pat} and {legacy}", "SECRET") == ["GITHUB_TOKEN", "OPENAI_API_KEY"]


def test_aws_secret_key_needs_its_keyword() -> None:
    secret = rand(ALNUM + "/+", 40)
    assert values(f"aws_secret_access_key = {secret}", "SECRET") == [secret]
    assert subtypes(f'AWS_SECRET_ACCESS_KEY="{secret}"', "SECRET") == ["AWS_SECRET_KEY"]
    assert values(f"checksum {secret}", "SECRET") == []


def test_private_key_block() -> None:
    body = "\n".join(rand(ALNUM + "+/", 64) for _ in range(5))
    block = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    text = f"key:\n{block}\nthanks"
    assert found(text) == [("SECRET", block)]
    assert subtypes(text, "SECRET") == ["PRIVATE_KEY"]


def test_private_key_cut_short_still_covers_its_body() -> None:
    body = "\n".join(rand(ALNUM + "+/", 64) for _ in range(3))
    text = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}"
    assert values(text, "SECRET") == [text]


def test_jwt_needs_a_header_with_alg() -> None:
    not_jwt = ".".join((b64url({"typ": "JWT"}), b64url({"sub": "1"}), rand(URLSAFE, 43)))
    assert values(f"token {not_jwt}", "SECRET") == []
    assert values("eyJub3QganNvbg.eyJzdWIiOiIxIn0.abc", "SECRET") == []


@pytest.mark.parametrize(("text", "password"), [
    ("password: hunter2", "hunter2"),
    ("Mot de passe : Azerty123!", "Azerty123!"),
    ("Das Passwort lautet Sommer2024!", "Sommer2024!"),
    ('{"user": "jd", "password": "s3cr3t!"}', "s3cr3t!"),
    ("DB_PASSWORD=correcthorsebattery", "correcthorsebattery"),
    ("my password is Tr0ub4dor&3.", "Tr0ub4dor&3"),
    ("le mot de passe est azerty123", "azerty123"),
    ("Kennwort: geheim99", "geheim99"),
    ("password: sunshine\nuser: bob", "sunshine"),
    ("password = 'correct horse battery'", "correct horse battery"),
])
def test_passwords_after_their_keyword(text: str, password: str) -> None:
    assert values(text, "SECRET") == [password]
    assert subtypes(text, "SECRET") == ["PASSWORD"]


@pytest.mark.parametrize("text", [
    "It is no secret that the password is incorrect.",
    "Top secret plans were leaked; the secret sauce is butter.",
    "Password: required", "password: ********", "Reset your password here", "password = <your password>",
    "Le mot de passe est oublié", "Das Passwort ist falsch", "passwordless login: true", "password: ${DB_PASS}",
    "secret: the meeting moved to Tuesday",
    "def read(self, name, pwd=None):", "password = auth[2]", "pwd = self.pwd", 'raise TypeError("pwd: expected bytes")',
    "self.master_password = master_user_password", '{"username": username, "password": password}',
    "token = base64_bytes.decode('utf-8')", '"AWS::ApiGateway::ApiKey": "48205d4ffd7feba3"',
    "-----BEGIN RSA PRIVATE KEY----- and -----END RSA PRIVATE KEY----- markers",
    "def f(hide_password: bool,\n", 'FORCE_CHANGE_PASSWORD = "FORCE_CHANGE_PASSWORD"',
    'NOPASSWORD = "no-password-required"',
])
def test_prose_and_placeholders_are_not_secrets(text: str) -> None:
    assert values(text, "SECRET") == []


def test_generic_secret_assignment() -> None:
    value = rand(string.hexdigits.lower(), 32)
    text = f"client_secret = '{value}'"
    assert values(text, "SECRET") == [value]
    assert subtypes(text, "SECRET") == ["GENERIC_SECRET"]
    assert values("api_key = 'aaaaaaaaaaaaaaaaaaaa'", "SECRET") == []  # no entropy


# --- issue 5: passwords in connection URLs and stated with a qualifier ---------------------------

@pytest.mark.parametrize(("text", "password"), [
    ('DATABASE_URL = "postgresql://billing:Winter1965!@53.86.153.161:5432/billing"', "Winter1965!"),
    ("postgresql://billing:Kiwi1703@@62.128.167.25:5432/billing", "Kiwi1703@"),
    ("mysql://root:s3cr3t-Pw@db/app", "s3cr3t-Pw"),
    ("Le mot de passe du Wi-Fi est R8W8%UxgRSY3tO4L9f5, mais le script échoue", "R8W8%UxgRSY3tO4L9f5"),
    ("The password for the VPN is Hunter2!x today", "Hunter2!x"),
    ("Das Passwort für das WLAN ist Sonne123!", "Sonne123!"),
])
def test_passwords_in_urls_and_qualified_statements(text: str, password: str) -> None:
    assert values(text, "SECRET") == [password]


@pytest.mark.parametrize("text", [
    "redis://:${REDIS_PASSWORD}@cache:6379",
    "postgresql://app:${DB_PASSWORD}@db:5432/app",
    "postgresql://app:<password>@db:5432/app",
    "postgresql://app:****@db:5432/app",
    "the password of the user is stored hashed",
    "le mot de passe du compte est oublié",
])
def test_password_placeholders_and_prose(text: str) -> None:
    assert values(text, "SECRET") == []
