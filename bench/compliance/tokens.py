"""Secrets (labelled SECRET, the value only) and defense markings, export-control notices, codewords.

Secret values follow the providers' documented shapes (prefix, alphabet, length) with random bodies:
they are not real credentials.  Markings follow the US (ISOO CAPCO), French (IGI 1300), NATO and UK
conventions: banner lines, portion marks, "Classification:" labels.
"""

from __future__ import annotations

import base64
import json
import string

from bench.compliance.values import Ctx, Piece, whole

_B62 = string.ascii_letters + string.digits
_URLSAFE = _B62 + "-_"
_B64 = _B62 + "+/"


def _chars(ctx: Ctx, alphabet: str, n: int) -> str:
    return "".join(ctx.rng.choice(alphabet) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def api_token(ctx: Ctx) -> Piece:
    """A provider's key or token by its documented prefix."""
    rng = ctx.rng
    kind = rng.randrange(9)
    if kind == 0:
        value = rng.choice(("AKIA", "ASIA")) + _chars(ctx, string.ascii_uppercase + "234567", 16)
    elif kind == 1:
        value = rng.choice(("ghp_", "gho_", "ghs_")) + _chars(ctx, _B62, 36)
    elif kind == 2:
        value = "sk-proj-" + _chars(ctx, _URLSAFE, rng.randint(64, 120))
    elif kind == 3:
        value = "sk-ant-api03-" + _chars(ctx, _URLSAFE, 93) + "AA"
    elif kind == 4:
        value = f"xoxb-{rng.randint(10**10, 10**12)}-{rng.randint(10**10, 10**12)}-{_chars(ctx, _B62, 24)}"
    elif kind == 5:
        value = rng.choice(("sk_live_", "rk_live_", "sk_test_")) + _chars(ctx, _B62, rng.randint(24, 40))
    elif kind == 6:
        value = "AIza" + _chars(ctx, _URLSAFE, 35)
    elif kind == 7:
        value = "github_pat_" + _chars(ctx, _B62, 22) + "_" + _chars(ctx, _B62, 59)
    else:
        value = "whsec_" + _chars(ctx, _B62, 32)
    return whole(value, "SECRET")


def aws_key_id(ctx: Ctx) -> Piece:
    return whole(ctx.rng.choice(("AKIA", "ASIA")) + _chars(ctx, string.ascii_uppercase + "234567", 16), "SECRET")


def aws_secret_key(ctx: Ctx) -> Piece:
    return whole(_chars(ctx, _B64, 40), "SECRET")


def jwt(ctx: Ctx) -> Piece:
    rng = ctx.rng
    header = {"alg": rng.choice(("HS256", "RS256", "ES256")), "typ": "JWT"}
    payload = {"sub": str(rng.randint(10**5, 10**9)), "iat": rng.randint(1_600_000_000, 1_750_000_000),
               "role": rng.choice(("admin", "user", "service"))}
    sig = rng.randbytes(32 if header["alg"] == "HS256" else 64)
    value = ".".join((_b64url(json.dumps(header, separators=(",", ":")).encode()),
                      _b64url(json.dumps(payload, separators=(",", ":")).encode()), _b64url(sig)))
    return whole(value, "SECRET")


def private_key(ctx: Ctx) -> Piece:
    kind = ctx.rng.choice(("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"))
    body = base64.b64encode(ctx.rng.randbytes(ctx.rng.randint(300, 700))).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return whole(f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----", "SECRET")


_WORDS = ("Soleil", "Winter", "Tigre", "Sommer", "Dragon", "Azur", "Falke", "Maple", "Orion", "Lumière", "Kiwi")


def password(ctx: Ctx) -> Piece:
    rng = ctx.rng
    if rng.random() < 0.5:
        value = rng.choice(_WORDS) + str(rng.randint(1, 2025)) + rng.choice("!#$%&*?@")
    else:
        value = _chars(ctx, _B62, rng.randint(10, 18))
        value = value[:4] + rng.choice("!#%&*@^") + value[4:] + str(rng.randint(0, 9))
    return whole(value, "SECRET")


def hex_key(ctx: Ctx) -> Piece:
    return whole(ctx.rng.randbytes(ctx.rng.choice((16, 20, 32))).hex(), "SECRET")


# --- defense ------------------------------------------------------------------------------------

_US_BANNERS = ("TOP SECRET//SCI//NOFORN", "SECRET//NOFORN", "SECRET//REL TO USA, FVEY", "TOP SECRET//SI//ORCON",
               "CONFIDENTIAL//NOFORN", "SECRET//ORCON//NOFORN", "TOP SECRET//HCS//NOFORN", "SECRET")
_US_PORTIONS = ("(S//NF)", "(TS//SCI)", "(S//REL TO USA, FVEY)", "(C//NF)", "(TS//SI//NF)", "(S)", "(C)", "(U//FOUO)")
_FR_BANNERS = ("DIFFUSION RESTREINTE", "SECRET", "TRÈS SECRET", "CONFIDENTIEL DÉFENSE", "SECRET DÉFENSE",
               "TRES SECRET DEFENSE")
_NATO_BANNERS = ("NATO SECRET", "NATO CONFIDENTIAL", "NATO RESTRICTED", "COSMIC TOP SECRET")
_UK_BANNERS = ("OFFICIAL-SENSITIVE", "OFFICIAL-SENSITIVE", "SECRET", "TOP SECRET", "UK SECRET")


def banner(ctx: Ctx) -> str:
    """The marking of a whole document: the same string heads and closes it."""
    rng = ctx.rng
    if ctx.locale == "fr_FR":
        return rng.choice(_FR_BANNERS + _NATO_BANNERS[:3])
    if ctx.locale == "de_DE":
        return rng.choice(_NATO_BANNERS)
    if ctx.locale == "en_GB":
        return rng.choice(_UK_BANNERS + _NATO_BANNERS[:2])
    return rng.choice(_US_BANNERS)


def banner_piece(ctx: Ctx) -> Piece:
    """The text's banner: drawn once, repeated at the foot as documents do."""
    if "banner" not in ctx.memo:
        ctx.memo["banner"] = banner(ctx)
    return whole(ctx.memo["banner"], "CLASSIFICATION_MARKING")


def portion(ctx: Ctx) -> Piece:
    return whole(ctx.rng.choice(_US_PORTIONS), "CLASSIFICATION_MARKING")


_LABEL_LEVELS = {"fr_FR": ("Diffusion Restreinte", "Secret", "Très Secret", "Confidentiel Défense", "Secret Défense"),
                 "de_DE": ("NATO Restricted", "NATO Confidential", "NATO Secret"),
                 "en_GB": ("Official-Sensitive", "Secret", "Top Secret"),
                 "en_US": ("Secret", "Top Secret", "Confidential")}


def label_level(ctx: Ctx) -> Piece:
    """The level written after a "Classification:" label, in the document's own case."""
    return whole(ctx.rng.choice(_LABEL_LEVELS[ctx.locale]), "CLASSIFICATION_MARKING")


def eccn(ctx: Ctx) -> Piece:
    rng = ctx.rng
    code = f"{rng.randint(0, 9)}{rng.choice('ABCDE')}{rng.choice(('001', '002', '003', '101', '515', '611', '992'))}"
    if rng.random() < 0.3:
        code += "." + rng.choice(("a", "b.1", "a.2", "c"))
    return whole(code, "EXPORT_CONTROL")


CODEWORDS = ("NIGHTJAR", "BLUE HARVEST", "TAMARIS", "KESTREL VEIL", "GRAUFALKE")


def codeword(ctx: Ctx) -> Piece:
    word = ctx.rng.choice(CODEWORDS)
    return whole(word if ctx.rng.random() < 0.7 else word.title(), "CODEWORD")


SLOTS = {
    "BANNER": banner_piece, "TOKEN": api_token, "AWS_ID": aws_key_id, "AWS_SECRET": aws_secret_key, "JWT": jwt,
    "PRIVATE_KEY": private_key, "PASSWORD": password,
    "HEX_KEY": hex_key, "PORTION": portion, "LABEL_LEVEL": label_level, "ECCN": eccn, "CODEWORD": codeword,
}
