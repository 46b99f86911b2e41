"""Passerelle: a self-hosted AI gateway speaking the Anthropic and OpenAI dialects."""

__version__ = "0.1.0"
