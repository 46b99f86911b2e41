"""Passerelle: a self-hosted AI gateway speaking the Anthropic and OpenAI dialects."""

from passerelle import twins

__version__ = "0.1.0"

twins.install()  # before any compiled module loads: a stale compiled twin must not shadow its source
