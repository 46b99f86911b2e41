"""The price catalog: the shipped, versioned ``prices.json`` plus the operator's overrides.

Prices are USD per million tokens, written as decimal strings with at most six decimals, so that
one token costs a whole number of pico-dollars (``usd_per_mtok * 10**6``) and every cost is exact
integer arithmetic (see ``pricing.cost``).

An entry matches a request by provider type (exact or ``"*"``), upstream model id (a glob where
only ``*`` is a wildcard) and, optionally, region (Vertex AI prices its global endpoint below its
regional ones; a lookup without a region gets the regional, higher price).  The winner is, in order:

1. a config override over the shipped catalog (the operator's negotiated prices win);
2. an exact provider over ``"*"``;
3. an exact model over a glob, then the glob with more literal characters;
4. an exact region over ``"*"``;
5. within the most specific entries, the latest ``effective_from`` on or before the request's
   UTC date.  A price that takes effect later is ignored until then, and a less specific entry
   that is already in effect is used meanwhile.

So publishing new prices never changes the cost of a past request; the ledger also stores each
request's cost and ``Catalog.version`` when the request happens, and never recomputes them.

Data file entries may list several providers or models (one price each) and carry, beyond the
prices: ``cache_write_1h`` (Anthropic's one-hour cache writes), ``long_context`` (rates for the
whole request once its input, cache reads and writes included, exceeds ``threshold`` tokens),
``image_tokens`` (the most tokens one image can bill on that model), ``max_input_tokens`` (its
context window) and ``note`` (a label for people).  Overrides (``PriceConfig``) that omit cache
prices get safe defaults: cache writes at 1.25x input (2x for one-hour writes, Anthropic's
multipliers), cache reads at the full input price, both rounded up to six decimals.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, Literal, get_args

import msgspec

from passerelle.config.schema import PriceConfig, ProviderType

PROVIDER_TYPES = frozenset(get_args(ProviderType))
PICO_PER_USD_PER_MTOK = 10**6  # pico-dollars per token for a price of 1 USD per million tokens
_SIX_DECIMALS = Decimal("0.000001")
_RATE_FIELDS = ("input", "output", "cache_write", "cache_write_1h", "cache_read")
_ENTRY_FIELDS = frozenset({"provider", "model", "region", "effective_from", *_RATE_FIELDS, "batch_input",
                           "batch_output", "long_context", "image_tokens", "max_input_tokens", "source", "note"})
_CACHE_SIZE = 4096

Origin = Literal["catalog", "config"]


class PriceError(ValueError):
    """A price entry (shipped or configured) that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Rates:
    """Integer pico-USD per token for each kind of token."""

    input: int
    output: int
    cache_write: int
    cache_write_1h: int
    cache_read: int

    @property
    def max_input(self) -> int:
        """The dearest way an input token can be billed (fresh, cached or cache-written)."""
        return max(self.input, self.cache_write, self.cache_write_1h, self.cache_read)


@dataclass(frozen=True, slots=True)
class LongContext:
    """Rates for every token of a request whose total input exceeds ``threshold`` tokens."""

    threshold: int
    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal


@dataclass(frozen=True, slots=True)
class Price:
    """One price, valid from ``effective_from`` (UTC) until a more recent matching entry."""

    provider: str  # provider type or "*"
    model: str  # upstream model id pattern: exact, or a glob with "*"
    effective_from: date
    input: Decimal  # USD per million tokens, uncached input
    output: Decimal  # includes thinking tokens
    cache_write: Decimal
    cache_read: Decimal
    batch_input: Decimal | None = None
    batch_output: Decimal | None = None
    source: str = ""
    origin: Origin = "catalog"
    cache_write_1h: Decimal | None = None  # None: same as cache_write
    region: str = "*"
    long_context: LongContext | None = None
    image_tokens: int | None = None  # None: unknown (cost.DEFAULT_IMAGE_TOKENS)
    max_input_tokens: int | None = None  # None: unknown (cost.DEFAULT_MAX_INPUT_TOKENS)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _standard: Rates = field(init=False, repr=False, compare=False)
    _long: Rates | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", _glob(self.model))
        object.__setattr__(self, "_standard", _tier_rates(self))
        object.__setattr__(self, "_long", _tier_rates(self.long_context) if self.long_context else None)

    def matches(self, provider_type: str, model: str, region: str | None) -> bool:
        if self.provider not in ("*", provider_type) or not self._pattern.fullmatch(model):
            return False
        return self.region == "*" or (region is not None and _glob(self.region).fullmatch(region) is not None)

    @property
    def input_pico(self) -> int:
        return self._standard.input

    @property
    def output_pico(self) -> int:
        return self._standard.output

    @property
    def cache_write_pico(self) -> int:
        return self._standard.cache_write

    @property
    def cache_read_pico(self) -> int:
        return self._standard.cache_read

    @property
    def batch_input_pico(self) -> int | None:
        return None if self.batch_input is None else _pico(self.batch_input)

    @property
    def batch_output_pico(self) -> int | None:
        return None if self.batch_output is None else _pico(self.batch_output)

    def rates(self, *, long: bool = False, batch: bool = False) -> Rates:
        """Pico-USD per token: ``long`` for a request above the long-context threshold (when this
        model has one), ``batch`` for the batch API (its discount, the ratio of the batch price to
        the standard one, applies to every kind of token in both tiers, rounded up)."""
        rates = self._long if long and self._long is not None else self._standard
        if not batch:
            return rates
        base_in, base_out = self._standard.input, self._standard.output
        in_num = base_in if self.batch_input is None else _pico(self.batch_input)
        out_num = base_out if self.batch_output is None else _pico(self.batch_output)
        return Rates(_scaled(rates.input, in_num, base_in), _scaled(rates.output, out_num, base_out),
                     _scaled(rates.cache_write, in_num, base_in), _scaled(rates.cache_write_1h, in_num, base_in),
                     _scaled(rates.cache_read, in_num, base_in))

    @property
    def specificity(self) -> tuple[bool, bool, bool, int, bool]:
        return (self.origin == "config", self.provider != "*", "*" not in self.model,
                len(self.model.replace("*", "")), self.region != "*")


def _tier_rates(tier: Price | LongContext) -> Rates:
    write_1h = tier.cache_write_1h if tier.cache_write_1h is not None else tier.cache_write
    return Rates(_pico(tier.input), _pico(tier.output), _pico(tier.cache_write), _pico(write_1h),
                 _pico(tier.cache_read))


def _scaled(rate: int, num: int, den: int) -> int:
    return rate if den == 0 else -(-rate * num // den)


def _pico(usd_per_mtok: Decimal) -> int:
    return int(usd_per_mtok * PICO_PER_USD_PER_MTOK)


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


class Catalog:
    """The prices in effect: ``lookup`` answers which price applies to one upstream call."""

    def __init__(self, prices: Iterable[Price], version: str) -> None:
        self.prices: tuple[Price, ...] = tuple(prices)
        self.version = version
        seen: dict[tuple[str, str, str, date, str], Price] = {}
        for price in self.prices:
            key = (price.provider, price.model, price.region, price.effective_from, price.origin)
            if key in seen:
                raise PriceError(f"{price.origin} price for provider {price.provider!r} model {price.model!r} "
                                 f"region {price.region!r} from {price.effective_from} is defined twice")
            seen[key] = price
        self._candidates: dict[tuple[str, str, str | None], tuple[Price, ...]] = {}

    @classmethod
    def load(cls, overrides: Sequence[PriceConfig] = (), *, data: bytes | None = None) -> Catalog:
        """The shipped catalog (or ``data``, a catalog file's bytes) with the config overrides on top."""
        raw = data if data is not None else importlib.resources.files(__package__).joinpath("prices.json").read_bytes()
        try:
            document = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise PriceError(f"price catalog is not valid JSON: {exc}") from exc
        return cls.from_document(document, overrides)

    @classmethod
    def from_document(cls, document: Any, overrides: Sequence[PriceConfig] = ()) -> Catalog:
        if not isinstance(document, dict) or not isinstance(document.get("version"), str):
            raise PriceError("price catalog must be an object with a string 'version'")
        unit = (document.get("currency", "USD"), document.get("unit", "per_million_tokens"))
        if unit != ("USD", "per_million_tokens"):
            raise PriceError("price catalog must be in USD per_million_tokens")
        entries = document.get("prices")
        if not isinstance(entries, list):
            raise PriceError("price catalog must have a 'prices' list")
        prices = [p for i, entry in enumerate(entries) for p in _entry_prices(entry, f"catalog price #{i}", "catalog")]
        for i, override in enumerate(overrides):
            entry = msgspec.structs.asdict(override)
            prices.extend(_entry_prices(entry, f"metering.prices[{i}]", "config"))
        version = document["version"]
        if overrides:
            digest = hashlib.sha256(msgspec.json.encode(list(overrides))).hexdigest()[:8]
            version = f"{version}+config.{digest}"
        return cls(prices, version)

    def lookup(self, provider_type: str, model: str, at: float, *, region: str | None = None) -> Price | None:
        """The price of ``model`` on a ``provider_type`` upstream for a request made at ``at`` (unix
        seconds); ``region`` is the deployment's location where prices depend on it (Vertex AI).
        None: no price is known (the caller decides, see ``MeteringConfig.unpriced``)."""
        key = (provider_type, model, region)
        candidates = self._candidates.get(key)
        if candidates is None:
            if len(self._candidates) >= _CACHE_SIZE:
                self._candidates.clear()
            candidates = tuple(sorted((p for p in self.prices if p.matches(provider_type, model, region)),
                                      key=lambda p: (p.specificity, p.effective_from, p.model), reverse=True))
            self._candidates[key] = candidates
        day = _utc_date(int(at // 86_400))
        for price in candidates:
            if price.effective_from <= day:
                return price
        return None


def _entry_prices(entry: Any, name: str, origin: Origin) -> list[Price]:
    if not isinstance(entry, dict):
        raise PriceError(f"{name} must be an object")
    unknown = set(entry) - _ENTRY_FIELDS
    if unknown:
        raise PriceError(f"{name} has unknown fields: {', '.join(sorted(unknown))}")
    providers = _names(entry.get("provider", "*"), name, "provider")
    models = _names(entry.get("model"), name, "model")
    for provider in providers:
        if provider != "*" and provider not in PROVIDER_TYPES:
            raise PriceError(f"{name}: unknown provider type {provider!r} (one of {sorted(PROVIDER_TYPES)} or '*')")
    name = f"{name} ({','.join(providers)} {','.join(models)})"
    region = entry.get("region", "*")
    if not isinstance(region, str) or not region:
        raise PriceError(f"{name}: region must be a non-empty string")
    try:
        effective = date.fromisoformat(entry.get("effective_from", "1970-01-01"))
    except (TypeError, ValueError) as exc:
        raise PriceError(f"{name}: effective_from must be an ISO date (YYYY-MM-DD)") from exc
    name = f"{name} from {effective}"
    rates = _tier(entry, name, origin)
    batch_input, batch_output = (_usd(entry[key], name, key) if entry.get(key) is not None else None
                                 for key in ("batch_input", "batch_output"))
    long = _long_context(entry.get("long_context"), name, origin)
    if long is not None and any(getattr(long, key) < rates[key] for key in _RATE_FIELDS):
        # The reservation prices input at the long-context tier only above the threshold.
        raise PriceError(f"{name}: long_context rates must not be below the standard ones")
    source = entry.get("source") or ""
    if not isinstance(source, str):
        raise PriceError(f"{name}: source must be a string")
    return [Price(provider=provider, model=model, effective_from=effective, input=rates["input"],
                  output=rates["output"], cache_write=rates["cache_write"], cache_read=rates["cache_read"],
                  batch_input=batch_input, batch_output=batch_output, source=source, origin=origin,
                  cache_write_1h=rates["cache_write_1h"], region=region, long_context=long,
                  image_tokens=_count(entry.get("image_tokens"), name, "image_tokens"),
                  max_input_tokens=_count(entry.get("max_input_tokens"), name, "max_input_tokens"))
            for provider in providers for model in models]


def _tier(entry: Mapping[str, Any], name: str, origin: Origin) -> dict[str, Decimal]:
    """The five rates of one tier; cache prices may be omitted in overrides (safe defaults)."""
    rates = {key: _usd(entry.get(key), name, key) for key in ("input", "output")}
    defaults = {"cache_write": Decimal("1.25"), "cache_write_1h": Decimal(2), "cache_read": Decimal(1)}
    for key, factor in defaults.items():
        value = entry.get(key)
        if value is None and key == "cache_write_1h":
            value = entry.get("cache_write") if origin == "catalog" else None
        if value is None and origin == "catalog" and key != "cache_write_1h":
            raise PriceError(f"{name}: {key} is required in the catalog")
        rates[key] = (_usd(value, name, key) if value is not None
                      else (rates["input"] * factor).quantize(_SIX_DECIMALS, rounding=ROUND_CEILING))
    return rates


def _long_context(value: Any, name: str, origin: Origin) -> LongContext | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"threshold", *_RATE_FIELDS}:
        raise PriceError(f"{name}: long_context must be an object with threshold and rates")
    threshold = _count(value.get("threshold"), name, "long_context.threshold")
    if threshold is None:
        raise PriceError(f"{name}: long_context.threshold is required")
    rates = _tier(value, f"{name} long_context", origin)
    return LongContext(threshold, rates["input"], rates["output"], rates["cache_write"], rates["cache_write_1h"],
                       rates["cache_read"])


def _names(value: Any, name: str, what: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise PriceError(f"{name}: {what} must be a non-empty string or list of strings")
    return values


def _count(value: Any, name: str, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PriceError(f"{name}: {what} must be a positive integer")
    return value


def _usd(value: Any, name: str, what: str) -> Decimal:
    """A price in USD per million tokens: a decimal string, >= 0, at most six decimals."""
    if not isinstance(value, str):
        raise PriceError(f"{name}: {what} must be a decimal string (USD per million tokens), got {value!r}")
    try:
        usd = Decimal(value.strip())
    except InvalidOperation as exc:
        raise PriceError(f"{name}: {what} {value!r} is not a decimal number") from exc
    if not usd.is_finite() or usd < 0:
        raise PriceError(f"{name}: {what} {value!r} must be a finite, non-negative number")
    if usd * PICO_PER_USD_PER_MTOK != (usd * PICO_PER_USD_PER_MTOK).to_integral_value():
        raise PriceError(f"{name}: {what} {value!r} has more than 6 decimals: a token's price must be a whole "
                         "number of pico-dollars")
    return usd


@functools.lru_cache(maxsize=16)
def _utc_date(day_number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=day_number)
