"""The one place that maps a provider type to its adapter class."""

from __future__ import annotations

import importlib

from passerelle.config import ProviderConfig
from passerelle.providers.base import Provider
from passerelle.providers.http import HttpClient

# type -> (module, class).  Modules load only when configured: botocore and google-auth are slow
# to import and a gateway serving one provider should not pay for the others.
ADAPTERS: dict[str, tuple[str, str]] = {
    "anthropic": ("passerelle.providers.anthropic", "AnthropicProvider"),
    "bedrock": ("passerelle.providers.bedrock", "BedrockProvider"),
    "vertex": ("passerelle.providers.vertex", "VertexProvider"),
    "openai": ("passerelle.providers.openai", "OpenAIProvider"),
    "azure_openai": ("passerelle.providers.openai", "OpenAIProvider"),
    "simulator": ("passerelle.providers.simulator", "SimulatorProvider"),
}


def build_provider(name: str, config: ProviderConfig, http: HttpClient) -> Provider:
    module, cls = ADAPTERS[config.type]
    provider: Provider = getattr(importlib.import_module(module), cls)(name, config, http)
    return provider


def build_providers(configs: dict[str, ProviderConfig], http: HttpClient) -> dict[str, Provider]:
    return {name: build_provider(name, cfg, http) for name, cfg in configs.items()}
