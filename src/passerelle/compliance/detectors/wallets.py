"""Crypto-wallet checksums: Bitcoin base58check and bech32/bech32m, Ethereum EIP-55.

python-stdnum checks base58check and version-0 bech32; taproot (bech32m) and EIP-55 are here.
EIP-55 needs Keccak-256, which is not SHA3-256 (different padding) and not in hashlib: a small
pure-Python Keccak-f[1600] runs only on mixed-case ``0x`` + 40 hex candidates, which are rare.
"""

from __future__ import annotations

from stdnum import bitcoin

_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M_CONST = 0x2BC830A3

_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)
# rho and pi as one plan: (source lane x + 5y, its column x, destination lane, rotation).
_ROT = (0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14)
_PLAN = tuple((x + 5 * y, x, y + 5 * ((2 * x + 3 * y) % 5), _ROT[x + 5 * y]) for y in range(5) for x in range(5))
# chi: lane i combines with the next two lanes of its row.
_CHI = tuple((i, i - i % 5 + (i + 1) % 5, i - i % 5 + (i + 2) % 5) for i in range(25))
_MASK = (1 << 64) - 1


def _keccak_f(a: list[int]) -> list[int]:
    b = [0] * 25
    for rc in _RC:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in (0, 1, 2, 3, 4)]
        d = [c[x - 1] ^ (((c[x - 4] << 1) | (c[x - 4] >> 63)) & _MASK) for x in (0, 1, 2, 3, 4)]
        for src, x, dst, r in _PLAN:
            lane = a[src] ^ d[x]
            b[dst] = ((lane << r) | (lane >> (64 - r))) & _MASK
        a = [b[i] ^ (~b[j] & b[k]) for i, j, k in _CHI]
        a[0] ^= rc
    return a


def keccak256(data: bytes) -> bytes:
    rate = 136
    padded = bytearray(data)
    padded.append(0x01)
    padded.extend(b"\x00" * (-len(padded) % rate))
    padded[-1] |= 0x80
    state = [0] * 25
    for block in range(0, len(padded), rate):
        for i in range(rate // 8):
            state[i] ^= int.from_bytes(padded[block + 8 * i:block + 8 * i + 8], "little")
        state = _keccak_f(state)
    return b"".join(lane.to_bytes(8, "little") for lane in state[:4])


def ethereum_checksum_ok(address: str) -> bool:
    """EIP-55: a mixed-case address spells its Keccak-256 nibbles >= 8 as capitals."""
    body = address[2:]
    digest = keccak256(body.lower().encode("ascii")).hex()
    for char, nibble in zip(body, digest, strict=False):
        if char.isalpha() and char.isupper() != (int(nibble, 16) >= 8):
            return False
    return True


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
    return bitcoin.is_valid(address)
