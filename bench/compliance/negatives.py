"""Hard negatives: lookalikes that must not be findings, labelled "NEG:<category>".

Card-shaped numbers that fail Luhn, IBANs with wrong check digits, order, invoice and tracking
numbers, epoch timestamps and compact date-times, ISBN-13s, version numbers and commit hashes.  The
words "secret" and "confidential" in prose and capitalised ordinary words are written in the
sentences themselves (``[[NEG:secret_word=secret]]``).
"""

from __future__ import annotations

import random

from bench.compliance import checksums as ck
from bench.compliance.values import UPPER, Ctx, Piece, digits, group4, iban_value, whole

CATEGORIES = ("luhn_invalid_card", "bad_iban", "order_number", "tracking_number", "epoch_timestamp",
              "compact_datetime", "isbn13", "version_number", "commit_hash", "secret_word", "capitalised_words")


def luhn_invalid(rng: random.Random) -> str:
    prefix = rng.choice(("4", "4", "51", "53", "55", "6011", "35"))
    body = prefix + digits(rng, 15 - len(prefix))
    good = int(ck.luhn_check_digit(body))
    return body + str((good + rng.randint(1, 9)) % 10)


def neg_luhn(ctx: Ctx) -> Piece:
    number = luhn_invalid(ctx.rng)
    style = ctx.rng.random()
    return whole(group4(number) if style < 0.5 else group4(number, "-") if style < 0.65 else number,
                 "NEG:luhn_invalid_card")


def neg_iban(ctx: Ctx) -> Piece:
    """The same shapes and national check digits as the positives, wrong ISO check digits."""
    return whole(iban_value(ctx, wrong_check=True), "NEG:bad_iban")


def neg_order(ctx: Ctx) -> Piece:
    rng = ctx.rng
    style = rng.randrange(7)
    if style == 0:
        value = f"{rng.choice(('CMD', 'ORD', 'BST', 'FA', 'INV'))}-{rng.randint(2019, 2025)}-{digits(rng, 6)}"
    elif style == 1:
        value = f"{digits(rng, 3, '1')}-{digits(rng, 7)}-{digits(rng, 7)}"
    elif style == 2:
        value = digits(rng, rng.choice((9, 10, 12)), "123456789")
    elif style == 3:
        value = digits(rng, 16, "4")  # card-length, Luhn-valid one time in ten: the keyword decides
    elif style == 4:
        value = digits(rng, 14, "123456789")
    elif style == 5:
        value = f"{digits(rng, 4)} {digits(rng, 4)} {digits(rng, 4)}"
    else:
        value = digits(rng, 10, "123456789")
    return whole(value, "NEG:order_number")


def neg_tracking(ctx: Ctx) -> Piece:
    rng = ctx.rng
    style = rng.randrange(6)
    if style == 0:
        value = "1Z" + "".join(rng.choice(UPPER + "0123456789") for _ in range(6)) + digits(rng, 10)
    elif style == 1:
        value = group4("9400" + digits(rng, 18))
    elif style == 2:
        value = rng.choice(("6A", "8R", "9V")) + digits(rng, 11)
    elif style == 3:
        value = rng.choice(UPPER) + rng.choice(UPPER) + digits(rng, 9) + rng.choice(("FR", "DE", "GB"))
    elif style == 4:
        value = digits(rng, 10, "123456789")
    else:
        value = digits(rng, 14, "0")
    return whole(value, "NEG:tracking_number")


def neg_epoch(ctx: Ctx) -> Piece:
    seconds = ctx.rng.randint(1_000_000_000, 1_900_000_000)
    value = str(seconds) if ctx.rng.random() < 0.6 else str(seconds * 1000 + ctx.rng.randint(0, 999))
    return whole(value, "NEG:epoch_timestamp")


def neg_datetime(ctx: Ctx) -> Piece:
    rng = ctx.rng
    value = f"{rng.randint(2015, 2026)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    if rng.random() < 0.85:
        value += f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}"
        if rng.random() < 0.7:
            value += f"{rng.randint(0, 59):02d}"
    return whole(value, "NEG:compact_datetime")


def neg_isbn(ctx: Ctx) -> Piece:
    rng = ctx.rng
    group_id = rng.choice(("2", "3", "0", "1"))
    publisher = digits(rng, rng.randint(2, 5))
    title = digits(rng, 12 - 3 - len(group_id) - len(publisher))
    twelve = "978" + group_id + publisher + title
    check = ck.isbn13_check_digit(twelve)
    value = f"978-{group_id}-{publisher}-{title}-{check}" if rng.random() < 0.6 else twelve + check
    return whole(value, "NEG:isbn13")


def neg_version(ctx: Ctx) -> Piece:
    rng = ctx.rng
    return whole(f"{rng.randint(1, 12)}.{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(1, 9999)}",
                 "NEG:version_number")


def neg_commit(ctx: Ctx) -> Piece:
    return whole(ctx.rng.randbytes(20).hex(), "NEG:commit_hash")


SLOTS = {
    "NEG_LUHN": neg_luhn, "NEG_IBAN": neg_iban, "NEG_ORDER": neg_order, "NEG_TRACKING": neg_tracking,
    "NEG_EPOCH": neg_epoch, "NEG_DATETIME": neg_datetime, "NEG_ISBN": neg_isbn, "NEG_VERSION": neg_version,
    "NEG_COMMIT": neg_commit,
}
