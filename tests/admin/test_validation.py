"""What operators type: durations, dates, amounts, lists, metadata, report dimensions."""

from __future__ import annotations

import calendar
from decimal import Decimal

import pytest

from passerelle.admin.validation import (
    parse_by,
    parse_duration,
    parse_metadata,
    parse_overrides,
    parse_time,
    parse_usd,
    split_list,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86_400), ("12h", 43_200), ("90m", 5_400),
                                               ("2w", 14 * 86_400), ("45s", 45), (" 7D ", 7 * 86_400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_time("since", text, now=NOW) == NOW - seconds
    assert parse_time("expires", text, now=NOW, future=True) == NOW + seconds


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-01", calendar.timegm((2026, 11, 1, 0, 0, 0))),
    ("2026-11-01T12:30:00", calendar.timegm((2026, 11, 1, 12, 30, 0))),  # no offset: UTC
    ("2026-11-01T12:30:00Z", calendar.timegm((2026, 11, 1, 12, 30, 0))),
    ("2026-11-01T14:30:00+02:00", calendar.timegm((2026, 11, 1, 12, 30, 0))),
])
def test_iso_times_are_utc_unless_they_say_otherwise(text: str, expected: int) -> None:
    assert parse_time("since", text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "30 days", "yesterday", "2026-13-01", "-5d"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ValueError, match="since: expected a duration"):
        parse_time("since", text, now=NOW)


def test_amounts_are_exact_decimals() -> None:
    assert parse_usd("limit_usd", "0.000000000001") == Decimal("1E-12")
    assert parse_usd("limit_usd", Decimal("12.34")) == Decimal("12.34")
    assert parse_usd("limit_usd", 5) == 5
    assert str(parse_usd("limit_usd", " 100.50 ")) == "100.50"
    for bad in ("0", "-3", "1e-13", "x", "inf", 2.5, None, False, "9300000"):
        with pytest.raises(ValueError, match="limit_usd"):
            parse_usd("limit_usd", bad)


def test_lists_metadata_and_dimensions() -> None:
    assert split_list("a, b,,c ") == ("a", "b", "c")
    assert split_list(["x", " "]) == ("x",)
    assert split_list(None) == ()
    assert parse_metadata(["team=ml", "note=a=b", "empty="]) == {"team": "ml", "note": "a=b", "empty": ""}
    for bad in (["novalue"], ["=x"], ["k=\x00"]):
        with pytest.raises(ValueError, match="metadata"):
            parse_metadata(bad)
    assert parse_by("tenant, model") == ("tenant", "model")
    assert parse_by("") == ()
    with pytest.raises(ValueError, match="unknown dimension 'price'"):
        parse_by("tenant,price")


def test_overrides_are_type_action_pairs() -> None:
    assert parse_overrides([" PHONE = mask", "", "EMAIL=redact", "PHONE=block"]) == {"PHONE": "block",
                                                                                       "EMAIL": "redact"}
    for bad in ("PHONE", "=mask", "PHONE="):
        with pytest.raises(ValueError, match="expected TYPE=ACTION"):
            parse_overrides([bad])
