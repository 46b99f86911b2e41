"""Crypto-wallet checksums: Bitcoin base58check and bech32/bech32m, Ethereum EIP-55.

python-stdnum checks base58check and version-0 bech32; taproot (bech32m) and EIP-55 are here.
EIP-55 needs Keccak-256, which is not SHA3-256 (different padding) and not in hashlib: pycryptodome's
compiled one takes ~10 us where a pure-Python Keccak-f[1600] took ~140 us.
"""

from __future__ import annotations

from hashlib import sha256

from Crypto.Hash import keccak
from stdnum import bitcoin

_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M_CONST = 0x2BC830A3
_BASE58 = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def ethereum_checksum_ok(address: str) -> bool:
    """EIP-55: a mixed-case address spells its Keccak-256 nibbles >= 8 as capitals."""
    body = address[2:]
    lower = body.lower()
    digest = keccak256(lower.encode("ascii")).hex()
    return body == "".join(c.upper() if d in "89abcdef" else c for c, d in zip(lower, digest, strict=False))


def bech32_ok(address: str) -> bool:
    """Segwit address: bech32 for witness version 0, bech32m (BIP 350) for versions 1-16."""
    address = address.lower()
    hrp, _, data_part = address.rpartition("1")
    if hrp != "bc" or not 8 <= len(data_part) <= 87 or any(c not in _BECH32 for c in data_part):
        return False
    data = [_BECH32.index(c) for c in data_part]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    version = data[0]
    checksum = bitcoin.bech32_checksum(expanded + data)
    if checksum != (1 if version == 0 else _BECH32M_CONST) or version > 16:
        return False
    program_bits = (len(data) - 7) * 5  # witness program: the data part less version and checksum
    program_len = program_bits // 8
    if version == 0:
        return program_len in (20, 32)
    return 2 <= program_len <= 40


def base58_ok(address: str) -> bool:
    """A P2PKH or P2SH address: python-stdnum's base58 decoding and check, without its cleaning (the candidate
    is one run of the base58 alphabet)."""
    if address[:1] not in ("1", "3") or not _BASE58.issuperset(address):
        return bitcoin.is_valid(address)
    decoded = bitcoin.b58decode(address)
    return len(decoded) == 25 and sha256(sha256(decoded[:-4]).digest()).digest()[:4] == decoded[-4:]
