"""Check digits for the corpus, written here on purpose.

The labels of the evaluation corpus must not come from the code under test: every checksummed value
is completed with the small functions below (Luhn, ISO 7064 mod 97, the NIR key, NHS mod 11, ABA
3-7-1, NPI, DEA, VAT keys, base58check, bech32/bech32m, EIP-55 over a Keccak-256 of our own), never
with passerelle's validators nor python-stdnum.  The smoke tests cross-check them against
python-stdnum, an independent implementation.
"""

from __future__ import annotations

import hashlib
import string

_ALNUM = string.digits + string.ascii_uppercase


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass Luhn."""
    total = 0
    for i, c in enumerate(reversed(payload)):
        d = int(c)
        if i % 2 == 0:  # these are doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


def luhn_ok(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


def _as_digits(text: str) -> str:
    """Letters as two-digit numbers (A=10 ... Z=35), as ISO 13616 and ISO 7064 want them."""
    return "".join(str(_ALNUM.index(c)) for c in text.upper())


def iban_check_digits(country: str, bban: str) -> str:
    return f"{98 - int(_as_digits(bban + country + '00')) % 97:02d}"


def iban_ok(iban: str) -> bool:
    return int(_as_digits(iban[4:] + iban[:4])) % 97 == 1


def fr_rib_key(bank: str, branch: str, account: str) -> str:
    """The French RIB key: letters of the account number map to digits 1-9 (A,J=1 ... Z=9)."""
    digits = "".join(str((ord(c) - 64 - (ord(c) > 82) * 8) % 9 or 9) if c.isalpha() else c for c in account.upper())
    return f"{97 - (89 * int(bank) + 15 * int(branch) + 3 * int(digits)) % 97:02d}"


def es_ccc(bank: str, branch: str, account: str) -> str:
    weights = (1, 2, 4, 8, 5, 10, 9, 7, 3, 6)

    def digit(ten: str) -> str:
        r = 11 - sum(int(c) * w for c, w in zip(ten, weights, strict=True)) % 11
        return str({11: 0, 10: 1}.get(r, r))

    return digit("00" + bank + branch) + digit(account)


def be_bban_check(ten: str) -> str:
    r = int(ten) % 97
    return f"{r or 97:02d}"


_IT_ODD = (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23)


def it_cin(abi: str, cab: str, account: str) -> str:
    """The Italian CIN letter over ABI + CAB + account (odd positions through a table)."""
    total = 0
    for i, c in enumerate(abi + cab + account):
        v = int(c) if c.isdigit() else ord(c) - 65
        total += _IT_ODD[v] if i % 2 == 0 else v
    return chr(65 + total % 26)


def nir_key(nir13: str) -> str:
    """97 - (number mod 97); Corsica's 2A/2B count as 19/18 in the department field."""
    number = nir13.upper().replace("2A", "19", 1) if nir13[5:7].upper() == "2A" else \
        nir13.upper().replace("2B", "18", 1) if nir13[5:7].upper() == "2B" else nir13
    return f"{97 - int(number) % 97:02d}"


def nhs_check_digit(nine: str) -> str | None:
    """Weights 10..2, 11 - (sum mod 11); 11 gives 0 and 10 means no valid number."""
    r = 11 - sum(int(c) * (10 - i) for i, c in enumerate(nine)) % 11
    return None if r == 10 else str(0 if r == 11 else r)


def aba_check_digit(eight: str) -> str:
    weights = (3, 7, 1, 3, 7, 1, 3, 7)
    return str(-sum(int(c) * w for c, w in zip(eight, weights, strict=True)) % 10)


def aba_ok(nine: str) -> bool:
    return sum(int(c) * w for c, w in zip(nine, (3, 7, 1) * 3, strict=True)) % 10 == 0


def npi_check_digit(nine: str) -> str:
    """NPI: Luhn over the card-issuer prefix 80840 followed by the nine digits."""
    return luhn_check_digit("80840" + nine)


def dea_check_digit(six: str) -> str:
    d = [int(c) for c in six]
    return str((d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10)


def fr_vat_key(siren: str) -> str:
    return f"{(12 + 3 * (int(siren) % 97)) % 97:02d}"


def de_vat_check_digit(eight: str) -> str:
    """ISO 7064 MOD 11,10."""
    p = 10
    for c in eight:
        s = (int(c) + p) % 10 or 10
        p = 2 * s % 11
    return str((11 - p) % 10)


def be_vat_check(eight: str) -> str:
    return f"{97 - int(eight) % 97:02d}"


def nl_bsn_check_digit(eight: str) -> str | None:
    """The Dutch 11-test: sum(9..2 weights) - last digit = 0 mod 11."""
    r = sum(int(c) * (9 - i) for i, c in enumerate(eight)) % 11
    return None if r == 10 else str(r)


def gb_vat_check(seven: str) -> str:
    """Weights 8..2 and the last two digits, the sum a multiple of 97 (the original scheme)."""
    return f"{-sum(int(c) * (8 - i) for i, c in enumerate(seven)) % 97:02d}"


def isbn13_check_digit(twelve: str) -> str:
    return str(-sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(twelve)) % 10)


# --- crypto wallets ------------------------------------------------------------------------------

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def segwit_address(version: int, program: bytes, hrp: str = "bc") -> str:
    """BIP 173 (bech32, version 0) and BIP 350 (bech32m, versions 1-16)."""
    acc = bits = 0
    data = [version]
    for byte in program:
        acc = acc << 8 | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append(acc >> bits & 31)
    if bits:
        data.append(acc << (5 - bits) & 31)
    const = 1 if version == 0 else 0x2BC830A3
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod(expanded + data + [0] * 6) ^ const
    checksum = [mod >> 5 * (5 - i) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in data + checksum)


_ROUNDS = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000, 0x000000000000808B,
    0x0000000080000001, 0x8000000080008081, 0x8000000000008009, 0x000000000000008A, 0x0000000000000088,
    0x0000000080008009, 0x000000008000000A, 0x000000008000808B, 0x800000000000008B, 0x8000000000008089,
    0x8000000000008003, 0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)
_OFFSETS = ((0, 36, 3, 41, 18), (1, 44, 10, 45, 2), (62, 6, 43, 15, 61), (28, 55, 25, 21, 56), (27, 20, 39, 8, 14))
_M64 = (1 << 64) - 1


def _rotl(x: int, n: int) -> int:
    return (x << n | x >> (64 - n)) & _M64 if n else x


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (original padding 0x01, not SHA3's 0x06); state as lanes[x][y]."""
    rate = 136
    msg = bytearray(data) + b"\x01" + b"\0" * (-(len(data) + 1) % rate)
    msg[-1] |= 0x80
    lanes = [[0] * 5 for _ in range(5)]
    for off in range(0, len(msg), rate):
        for i in range(rate // 8):
            lanes[i % 5][i // 5] ^= int.from_bytes(msg[off + 8 * i:off + 8 * i + 8], "little")
        for rc in _ROUNDS:
            c = [lanes[x][0] ^ lanes[x][1] ^ lanes[x][2] ^ lanes[x][3] ^ lanes[x][4] for x in range(5)]
            d = [c[(x - 1) % 5] ^ _rotl(c[(x + 1) % 5], 1) for x in range(5)]
            lanes = [[lanes[x][y] ^ d[x] for y in range(5)] for x in range(5)]
            b = [[0] * 5 for _ in range(5)]
            for x in range(5):
                for y in range(5):
                    b[y][(2 * x + 3 * y) % 5] = _rotl(lanes[x][y], _OFFSETS[x][y])
            lanes = [[b[x][y] ^ (~b[(x + 1) % 5][y] & b[(x + 2) % 5][y]) for y in range(5)] for x in range(5)]
            lanes[0][0] ^= rc
    return b"".join(lanes[i % 5][i // 5].to_bytes(8, "little") for i in range(4))


def eip55(address_hex: str) -> str:
    """The mixed-case checksummed spelling of a 40-hex-digit Ethereum address."""
    body = address_hex.lower()
    digest = keccak256(body.encode()).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(h, 16) >= 8 else c for c, h in zip(body, digest,
                                                                                             strict=False))
