"""The shipped price catalog, its validation, and which price a lookup picks."""

from __future__ import annotations

import importlib.resources
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from passerelle.config.schema import PriceConfig
from passerelle.pricing import Catalog, Price, PriceError
from passerelle.pricing.catalog import PROVIDER_TYPES

RAW = msgspec.json.decode(importlib.resources.files("passerelle.pricing").joinpath("prices.json").read_bytes())
ENTRIES: list[dict[str, Any]] = RAW["prices"]
CATALOG = Catalog.load()
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()
DECIMAL = re.compile(r"\d+(\.\d{1,6})?")
RATE_KEYS = ("input", "output", "cache_write", "cache_write_1h", "cache_read", "batch_input", "batch_output")


def ts(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def doc(*entries: dict[str, Any], version: str = "test") -> dict[str, Any]:
    base = {"provider": "anthropic", "effective_from": "2025-01-01", "input": "1", "output": "2",
            "cache_write": "1.25", "cache_read": "0.1", "source": "test"}
    return {"version": version, "prices": [{**base, **entry} for entry in entries]}


def catalog(*entries: dict[str, Any], overrides: tuple[PriceConfig, ...] = ()) -> Catalog:
    return Catalog.from_document(doc(*entries), overrides)


def price_of(cat: Catalog, model: str, at: float = NOW, provider: str = "anthropic", **kw: Any) -> Decimal | None:
    price = cat.lookup(provider, model, at, **kw)
    return None if price is None else price.input


# -- the shipped data file ------------------------------------------------------------------------

def test_catalog_loads_with_the_file_version() -> None:
    assert CATALOG.version == RAW["version"] == "2026-11-27"
    assert RAW["currency"] == "USD" and RAW["unit"] == "per_million_tokens"
    assert len(CATALOG.prices) >= len(ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e['provider']}:{e['model'][0]}:{e['effective_from']}")
def test_every_shipped_entry_is_valid(entry: dict[str, Any]) -> None:
    providers = entry["provider"] if isinstance(entry["provider"], list) else [entry["provider"]]
    assert all(p in PROVIDER_TYPES or p == "*" for p in providers)
    date.fromisoformat(entry["effective_from"])
    assert date.fromisoformat(entry["effective_from"]) <= date(2026, 11, 27)
    for tier in (entry, entry.get("long_context") or {}):
        for key in RATE_KEYS:
            if key in tier:
                assert isinstance(tier[key], str) and DECIMAL.fullmatch(tier[key]), (key, tier[key])
    for key in ("input", "output", "cache_write", "cache_read"):
        assert key in entry
    source = entry["source"]
    assert source.startswith("https://") or source in ("mirrors anthropic", "mirrors openai")
    models = entry["model"] if isinstance(entry["model"], list) else [entry["model"]]
    assert all(m and "[" not in m for m in models)


def test_shipped_prices_follow_the_providers_rules() -> None:
    for entry in ENTRIES:
        d = {k: Decimal(v) for k, v in entry.items() if k in RATE_KEYS}
        # Batch is half price everywhere the catalog lists it.
        assert d["batch_input"] * 2 == d["input"] and d["batch_output"] * 2 == d["output"], entry["note"]
        if entry["model"][0].startswith(("gpt", "o1", "o3", "o4")):
            # OpenAI has cached input but no cache-write price: writes cost plain input.
            assert d["cache_write"] == d["cache_write_1h"] == d["input"], entry["note"]
        elif entry["note"] == "Claude Haiku 3":  # its own documented cache prices
            assert (d["cache_write"], d["cache_write_1h"], d["cache_read"]) == (
                Decimal("0.3"), Decimal("0.5"), Decimal("0.03"))
        else:
            # Anthropic: 5-minute writes 1.25x, one-hour writes 2x, reads 0.1x the input price.
            assert (d["cache_write"], d["cache_write_1h"], d["cache_read"]) == (
                d["input"] * Decimal("1.25"), d["input"] * 2, d["input"] / 10), entry["note"]
        long = entry.get("long_context")
        if long:
            assert Decimal(long["input"]) == 2 * d["input"] and Decimal(long["output"]) == d["output"] * Decimal("1.5")


def test_regional_claude_prices_are_ten_percent_above_global() -> None:
    cases = [("bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", None),
             ("bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0", None),
             ("vertex", "claude-opus-4-7", "global")]
    for provider, model, region in cases:
        global_price = CATALOG.lookup(provider, model, NOW, region=region)
        regional_model = model.removeprefix("global.")
        regional = CATALOG.lookup(provider, regional_model, NOW, region=None if region is None else "europe-west1")
        assert global_price is not None and regional is not None
        for key in ("input", "output", "cache_write", "cache_read", "batch_input", "batch_output"):
            assert getattr(regional, key) == getattr(global_price, key) * Decimal("1.1"), (model, key)


def test_simulator_and_azure_mirror_their_sources() -> None:
    for mirror, origin in (("simulator", "anthropic"), ("simulator", "openai"), ("azure_openai", "openai")):
        originals = [p for p in CATALOG.prices if p.provider == origin]
        assert originals
        for price in originals:
            at = ts(price.effective_from.isoformat())
            copy = CATALOG.lookup(mirror, price.model.replace("*", "-20250101"), at)
            assert copy is not None and copy.provider == mirror and copy.effective_from == price.effective_from
            fields = ("input", "output", "cache_write", "cache_write_1h", "cache_read", "batch_input", "batch_output",
                      "long_context", "image_tokens", "max_input_tokens")
            assert [getattr(copy, f) for f in fields] == [getattr(price, f) for f in fields], price.model
            if mirror == "simulator":
                assert copy.source == f"mirrors {origin}"


@pytest.mark.parametrize(("provider", "model", "region", "expected"), [
    ("anthropic", "claude-sonnet-4-5-20250929", None, "3"),
    ("anthropic", "claude-sonnet-4-5", None, "3"),
    ("anthropic", "claude-opus-4-1-20250805", None, "15"),
    ("anthropic", "claude-opus-4-20250514", None, "15"),
    ("anthropic", "claude-opus-4-0", None, "15"),
    ("anthropic", "claude-opus-4-5-20251101", None, "5"),
    ("anthropic", "claude-opus-4-8", None, "5"),
    ("anthropic", "claude-sonnet-4-20250514", None, "3"),
    ("anthropic", "claude-3-7-sonnet-20250219", None, "3"),
    ("anthropic", "claude-haiku-4-5-20251001", None, "1"),
    ("anthropic", "claude-3-5-haiku-20241022", None, "0.8"),
    ("anthropic", "claude-3-haiku-20240307", None, "0.25"),
    ("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", None, "3.3"),
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", None, "3.3"),
    ("bedrock", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", None, "3.3"),
    ("bedrock", "apac.anthropic.claude-sonnet-4-20250514-v1:0", None, "3"),
    ("bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", None, "3"),
    ("bedrock", "arn:aws:bedrock:us-east-1:1:inference-profile/global.anthropic.claude-haiku-4-5-20251001-v1:0",
     None, "1"),
    ("bedrock", "us.anthropic.claude-opus-4-1-20250805-v1:0", None, "15"),
    ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", None, "0.25"),
    ("vertex", "claude-sonnet-4-5@20250929", "global", "3"),
    ("vertex", "claude-sonnet-4-5@20250929", "us-east5", "3.3"),
    ("vertex", "claude-sonnet-4-5@20250929", None, "3.3"),  # unknown region: the higher price
    ("vertex", "claude-opus-4@20250514", "us-east5", "15"),
    ("vertex", "claude-3-5-haiku@20241022", "us-east5", "0.8"),
    ("openai", "gpt-4o", None, "2.5"),
    ("openai", "gpt-4o-2024-05-13", None, "5"),
    ("openai", "gpt-4o-2024-11-20", None, "2.5"),
    ("openai", "gpt-4o-mini-2024-07-18", None, "0.15"),
    ("openai", "gpt-4.1-2025-04-14", None, "2"),
    ("openai", "gpt-4.1-mini", None, "0.4"),
    ("openai", "gpt-4.1-nano-2025-04-14", None, "0.1"),
    ("openai", "o3", None, "2"),
    ("openai", "o3-mini-2025-01-31", None, "1.1"),
    ("openai", "o4-mini", None, "1.1"),
    ("openai", "gpt-5", None, "1.25"),
    ("openai", "gpt-5-mini-2025-08-07", None, "0.25"),
    ("openai", "gpt-5-nano", None, "0.05"),
    ("azure_openai", "gpt-4o", None, "2.5"),
    ("simulator", "claude-sonnet-4-5", None, "3"),
    ("simulator", "gpt-4o-mini", None, "0.15"),
])
def test_shipped_lookups(provider: str, model: str, region: str | None, expected: str) -> None:
    assert price_of(CATALOG, model, provider=provider, region=region) == Decimal(expected)


@pytest.mark.parametrize(("provider", "model"), [
    ("anthropic", "claude-sonnet-9"), ("anthropic", "claude-opus-4-9"), ("openai", "gpt-4o-realtime-preview"),
    ("openai", "claude-sonnet-4-5"), ("bedrock", "claude-sonnet-4-5"), ("nope", "gpt-4o"),
])
def test_unknown_models_have_no_price(provider: str, model: str) -> None:
    assert CATALOG.lookup(provider, model, NOW) is None


def test_shipped_price_history() -> None:
    # o3's price cut of June 2025; the gpt-4o alias moved to the cheaper snapshot in October 2024.
    assert price_of(CATALOG, "o3", ts("2025-05-01"), "openai") == 10
    assert price_of(CATALOG, "o3", ts("2025-06-10"), "openai") == 2
    assert price_of(CATALOG, "gpt-4o", ts("2024-09-01"), "openai") == 5
    # Opus 4.6 had a long-context surcharge until its 1M window became generally available.
    before = CATALOG.lookup("anthropic", "claude-opus-4-6", ts("2026-03-12"))
    after = CATALOG.lookup("anthropic", "claude-opus-4-6", ts("2026-03-13"))
    assert before is not None and before.long_context is not None and before.long_context.input == 10
    assert after is not None and after.long_context is None
    # Before a model existed there is no price at all.
    assert CATALOG.lookup("anthropic", "claude-opus-4-7", ts("2026-01-01")) is None


# -- lookup precedence ----------------------------------------------------------------------------

def test_exact_model_beats_glob_and_longer_glob_beats_shorter() -> None:
    cat = catalog({"model": "claude-*", "input": "1"}, {"model": "claude-sonnet-*", "input": "2"},
                  {"model": "claude-sonnet-4", "input": "3"}, {"model": "*", "input": "9"})
    assert price_of(cat, "claude-sonnet-4") == 3
    assert price_of(cat, "claude-sonnet-4-5") == 2
    assert price_of(cat, "claude-opus-4") == 1
    assert price_of(cat, "gpt-4o") == 9


def test_provider_specific_beats_wildcard_provider() -> None:
    cat = catalog({"provider": "*", "model": "claude-sonnet-4", "input": "1"},
                  {"provider": "bedrock", "model": "*claude-sonnet-4*", "input": "2"})
    assert price_of(cat, "claude-sonnet-4", provider="bedrock") == 2
    assert price_of(cat, "claude-sonnet-4", provider="anthropic") == 1
    assert price_of(cat, "claude-sonnet-4", provider="vertex") == 1


def test_only_star_is_a_wildcard() -> None:
    cat = catalog({"model": "model[1m]", "input": "1"}, {"model": "a?c", "input": "2"}, {"model": "x.y*", "input": "3"})
    assert price_of(cat, "model[1m]") == 1 and price_of(cat, "model1") is None
    assert price_of(cat, "a?c") == 2 and price_of(cat, "abc") is None
    assert price_of(cat, "x.y-1") == 3 and price_of(cat, "xzy-1") is None


def test_config_overrides_win_over_the_catalog() -> None:
    override = PriceConfig(model="claude-*", input="0.5", output="1")
    cat = catalog({"model": "claude-sonnet-4", "input": "3"}, overrides=(override,))
    price = cat.lookup("anthropic", "claude-sonnet-4", NOW)
    assert price is not None and price.input == Decimal("0.5") and price.origin == "config"
    assert price_of(cat, "claude-opus") == Decimal("0.5")
    assert price_of(cat, "gpt-4o") is None


def test_override_for_one_provider_leaves_the_others_alone() -> None:
    override = PriceConfig(provider="bedrock", model="*claude-sonnet-4*", input="2.4", output="12")
    cat = Catalog.load((override,))
    assert price_of(cat, "us.anthropic.claude-sonnet-4-20250514-v1:0", provider="bedrock") == Decimal("2.4")
    assert price_of(cat, "claude-sonnet-4-20250514") == 3


def test_a_price_effective_tomorrow_does_not_change_todays_cost() -> None:
    today = datetime(2026, 6, 1, 15, tzinfo=UTC)
    tomorrow = (today + timedelta(days=1)).date().isoformat()
    cat = catalog({"model": "m", "effective_from": "2026-01-01", "input": "3"},
                  {"model": "m", "effective_from": tomorrow, "input": "2"})
    assert price_of(cat, "m", today.timestamp()) == 3
    assert price_of(cat, "m", (today + timedelta(days=1)).replace(hour=0).timestamp()) == 2
    # Effective dates are UTC days: 23:59:59 UTC the day before still pays the old price.
    assert price_of(cat, "m", (today + timedelta(days=1)).replace(hour=0).timestamp() - 1) == 3


def test_an_old_request_time_picks_the_old_price() -> None:
    cat = catalog({"model": "m", "effective_from": "2024-01-01", "input": "10"},
                  {"model": "m", "effective_from": "2025-01-01", "input": "5"},
                  {"model": "m", "effective_from": "2026-01-01", "input": "1"})
    assert price_of(cat, "m", ts("2024-06-01")) == 10
    assert price_of(cat, "m", ts("2025-06-01")) == 5
    assert price_of(cat, "m", ts("2026-06-01")) == 1
    assert price_of(cat, "m", ts("2023-12-31")) is None


def test_a_more_specific_future_price_waits_for_its_date() -> None:
    cat = catalog({"model": "m*", "effective_from": "2024-01-01", "input": "4"},
                  {"model": "m-1", "effective_from": "2026-01-01", "input": "2"})
    assert price_of(cat, "m-1", ts("2025-06-01")) == 4
    assert price_of(cat, "m-1", ts("2026-06-01")) == 2


def test_region_specific_beats_any_region() -> None:
    cat = catalog({"provider": "vertex", "model": "c", "input": "3.3"},
                  {"provider": "vertex", "model": "c", "region": "global", "input": "3"})
    assert price_of(cat, "c", provider="vertex", region="global") == 3
    assert price_of(cat, "c", provider="vertex", region="us-east5") == Decimal("3.3")
    assert price_of(cat, "c", provider="vertex") == Decimal("3.3")


def test_version_names_the_overrides() -> None:
    one = (PriceConfig(model="m", input="1", output="2"),)
    other = (PriceConfig(model="m", input="1", output="3"),)
    assert catalog({"model": "m"}).version == "test"
    assert catalog({"model": "m"}, overrides=one).version == catalog({"model": "m"}, overrides=one).version
    assert catalog({"model": "m"}, overrides=one).version.startswith("test+config.")
    assert catalog({"model": "m"}, overrides=one).version != catalog({"model": "m"}, overrides=other).version


# -- prices and validation ------------------------------------------------------------------------

def test_pico_dollar_rates() -> None:
    price = catalog({"model": "m", "input": "3", "output": "15", "cache_write": "3.75", "cache_read": "0.000001",
                     "batch_input": "1.5"}).prices[0]
    assert (price.input_pico, price.output_pico, price.cache_write_pico, price.cache_read_pico) == (
        3_000_000, 15_000_000, 3_750_000, 1)
    assert price.batch_input_pico == 1_500_000 and price.batch_output_pico is None
    assert price.rates(batch=True).output == 15_000_000  # no batch output price: the standard one
    assert price.rates(batch=True).cache_write == 1_875_000  # the batch discount applies to cache writes


def test_override_defaults_for_cache_prices() -> None:
    price = Catalog.from_document(doc(), (PriceConfig(model="m", input="0.000003", output="1"),)).prices[0]
    assert price.cache_write == Decimal("0.000004")  # 1.25x rounded up to six decimals
    assert price.cache_write_1h == Decimal("0.000006")
    assert price.cache_read == Decimal("0.000003")  # never below what a cached token could cost
    assert price.effective_from == date(1970, 1, 1) and price.provider == "*"


@pytest.mark.parametrize(("change", "message"), [
    ({"input": "0.0000001"}, "more than 6 decimals"),
    ({"output": 3}, "must be a decimal string"),
    ({"output": 3.5}, "must be a decimal string"),
    ({"input": "-1"}, "non-negative"),
    ({"input": "NaN"}, "non-negative"),
    ({"input": "three"}, "not a decimal"),
    ({"effective_from": "2025-13-01"}, "ISO date"),
    ({"provider": "mistral"}, "unknown provider type"),
    ({"model": ""}, "non-empty"),
    ({"color": "blue"}, "unknown fields"),
    ({"cache_read": None}, "cache_read is required"),
    ({"long_context": {"threshold": 10, "input": "0.5", "output": "2", "cache_write": "1.25", "cache_read": "0.1"}},
     "must not be below"),
    ({"image_tokens": 0}, "positive integer"),
])
def test_bad_entries_are_refused_with_their_name(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PriceError, match=message) as info:
        catalog({"model": "the-model", **change})
    assert "catalog price #0" in str(info.value)


def test_bad_override_names_the_config_entry() -> None:
    with pytest.raises(PriceError, match=r"metering\.prices\[1\].*more than 6 decimals"):
        catalog({"model": "m"}, overrides=(PriceConfig(model="a", input="1", output="1"),
                                           PriceConfig(model="b", input="1.0000001", output="1")))


def test_duplicate_entries_are_refused() -> None:
    with pytest.raises(PriceError, match="defined twice"):
        catalog({"model": "m"}, {"model": "m", "input": "2"})


def test_bad_documents_are_refused() -> None:
    with pytest.raises(PriceError, match="not valid JSON"):
        Catalog.load(data=b"{")
    with pytest.raises(PriceError, match="version"):
        Catalog.from_document({"prices": []})
    with pytest.raises(PriceError, match="USD"):
        Catalog.from_document({"version": "x", "currency": "EUR", "prices": []})


def test_lists_of_providers_and_models_make_one_price_each() -> None:
    cat = catalog({"provider": ["openai", "azure_openai"], "model": ["a", "b-*"]})
    assert sorted((p.provider, p.model) for p in cat.prices) == [
        ("azure_openai", "a"), ("azure_openai", "b-*"), ("openai", "a"), ("openai", "b-*")]
    assert all(isinstance(p, Price) for p in cat.prices)
