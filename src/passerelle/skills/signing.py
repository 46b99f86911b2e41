"""Ed25519 signatures of skill versions.

A publisher signs the version's content digest: the message is the ASCII of ``sha256:<hex>`` (see
manifest.py).  Keys travel as text: a public key is ``ed25519:<base64 of its 32 raw bytes>``; a private
key is the PKCS#8 PEM ``cryptography`` writes (unencrypted: protect the file, e.g. mode 0600).
A signature is the base64 of its 64 raw bytes.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PUBLIC_PREFIX = "ed25519:"


class SigningKeyError(ValueError):
    """A key or signature that cannot be decoded."""


def generate() -> tuple[str, str]:
    """A new key pair: (private key PEM, public key text)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return pem, public_text(private.public_key())


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode("ascii")


def load_private(pem: str | bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"not an unencrypted PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError("the private key is not an Ed25519 key")
    return key


def load_public(text: str) -> Ed25519PublicKey:
    if not isinstance(text, str) or not text.startswith(PUBLIC_PREFIX):
        raise SigningKeyError(f"a public key must look like {PUBLIC_PREFIX}<base64 of 32 bytes>")
    try:
        raw = base64.b64decode(text[len(PUBLIC_PREFIX):], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise SigningKeyError(f"a public key must look like {PUBLIC_PREFIX}<base64 of 32 bytes>") from None


def check_public(text: str) -> str:
    """The canonical text of a valid public key (SigningKeyError otherwise)."""
    return public_text(load_public(text))


def sign(private: Ed25519PrivateKey, digest: str) -> str:
    return base64.b64encode(private.sign(digest.encode("ascii"))).decode("ascii")


def verify(public: str, digest: str, signature: str) -> bool:
    """True when ``signature`` is ``public``'s signature of ``digest``; False for any mismatch or garbage."""
    try:
        key = load_public(public)
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, digest.encode("ascii"))
    except (SigningKeyError, binascii.Error, ValueError, InvalidSignature, UnicodeEncodeError):
        return False
    return True
