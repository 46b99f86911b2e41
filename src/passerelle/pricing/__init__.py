"""Prices and costs: the versioned price catalog (``catalog``) and token accounting, exact costs
and budget reservation bounds (``cost``)."""

from passerelle.pricing.catalog import Catalog, LongContext, Price, PriceError, Rates
from passerelle.pricing.cost import (
    FollowUps,
    TokenUsage,
    call_costs_pico,
    cost_pico,
    estimate_usage,
    input_token_bound,
    max_cost_pico,
    merge_partial,
    output_token_bound,
    unbounded_reasons,
    usage_from_canonical,
)

__all__ = [
    "Catalog",
    "FollowUps",
    "LongContext",
    "Price",
    "PriceError",
    "Rates",
    "TokenUsage",
    "call_costs_pico",
    "cost_pico",
    "estimate_usage",
    "input_token_bound",
    "max_cost_pico",
    "merge_partial",
    "output_token_bound",
    "unbounded_reasons",
    "usage_from_canonical",
]
