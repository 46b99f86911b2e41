"""Read, substitute, validate and complete the configuration."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec
import yaml

from passerelle.config.schema import AliasConfig, Config, DeploymentConfig, ProviderConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# Listed by GET /v1/models when the simulator serves everything; any other name works too.
SIMULATED_MODELS = ("claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o", "gpt-4o-mini")


class ConfigError(Exception):
    """The configuration is invalid; the message names the bad field."""


def substitute_env(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable ${{{name}}} is not set")

    return _ENV.sub(replace, text)


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or build the embedded defaults when None) and check it whole."""
    env = os.environ if env is None else env
    if path is None:
        config = Config()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            raw = yaml.safe_load(substitute_env(text, env)) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        try:
            config = msgspec.convert(raw, Config)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{path}: {_name_mapping_key(raw, exc)}") from None
    add_environment_providers(config, env)
    check_references(config)
    return config


def _name_mapping_key(raw: dict[str, Any], exc: msgspec.ValidationError) -> str:
    """msgspec writes `[...]` for a mapping key; find the entry that failed and name it."""
    message = str(exc)
    for section, kind in (("providers", ProviderConfig), ("models", AliasConfig)):
        marker = f"$.{section}[...]"
        entries = raw.get(section)
        if marker not in message or not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            try:
                msgspec.convert(value, kind)
            except msgspec.ValidationError as inner:
                return str(inner).replace("`$", f"`$.{section}.{key}")
    return message


def add_environment_providers(config: Config, env: Mapping[str, str]) -> None:
    """Credentials in the environment enable their provider when the file does not say otherwise.

    Model names follow each provider's naming: ``claude-*`` to Anthropic (else Bedrock, else
    Vertex), ``gpt-*``/``o*`` to OpenAI.  With no credentials at all, every model name is
    served by the built-in simulator so the gateway works offline.
    """
    providers, models = config.providers, config.models
    if config.providers or config.models:
        return
    claude: list[DeploymentConfig] = []
    if env.get("ANTHROPIC_API_KEY"):
        providers["anthropic"] = ProviderConfig(type="anthropic", api_key=env["ANTHROPIC_API_KEY"],
                                                base_url=env.get("ANTHROPIC_BASE_URL"))
        claude.append(DeploymentConfig(provider="anthropic", priority=0))
    if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE"):
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        providers["bedrock"] = ProviderConfig(type="bedrock", region=region)
        claude.append(DeploymentConfig(provider="bedrock", model="anthropic.{model}", priority=1))
    if env.get("GOOGLE_APPLICATION_CREDENTIALS") and env.get("GOOGLE_CLOUD_PROJECT"):
        providers["vertex"] = ProviderConfig(type="vertex", project=env["GOOGLE_CLOUD_PROJECT"],
                                             region=env.get("GOOGLE_CLOUD_REGION", "us-east5"),
                                             credentials_file=env["GOOGLE_APPLICATION_CREDENTIALS"])
        claude.append(DeploymentConfig(provider="vertex", priority=2))
    if claude:
        models["claude-*"] = AliasConfig(deployments=claude)
    if env.get("OPENAI_API_KEY"):
        providers["openai"] = ProviderConfig(type="openai", api_key=env["OPENAI_API_KEY"],
                                             base_url=env.get("OPENAI_BASE_URL"))
        for pattern in ("gpt-*", "o1*", "o3*", "o4*", "chatgpt-*"):
            models[pattern] = AliasConfig(deployments=[DeploymentConfig(provider="openai")])
    if not providers:
        providers["simulator"] = ProviderConfig(type="simulator")
        for name in SIMULATED_MODELS:
            models[name] = AliasConfig(deployments=[DeploymentConfig(provider="simulator")],
                                       description="served by the offline simulator")
        models["*"] = AliasConfig(deployments=[DeploymentConfig(provider="simulator")])


def check_references(config: Config) -> None:
    for alias, spec in config.models.items():
        if not spec.deployments:
            raise ConfigError(f"models.{alias}.deployments: at least one deployment is required")
        for i, dep in enumerate(spec.deployments):
            if dep.provider not in config.providers:
                raise ConfigError(f"models.{alias}.deployments[{i}].provider: unknown provider "
                                  f"'{dep.provider}' (known: {', '.join(sorted(config.providers)) or 'none'})")
        for name in spec.fallbacks:
            if name not in config.models:
                raise ConfigError(f"models.{alias}.fallbacks: unknown alias '{name}'")
    for name, provider in config.providers.items():
        _check_provider(name, provider)
    seen: set[str] = set()
    for i, key in enumerate(config.keys):
        if (key.key is None) == (key.key_sha256 is None):
            raise ConfigError(f"keys[{i}]: give exactly one of 'key' or 'key_sha256'")
        if key.key_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", key.key_sha256):
            raise ConfigError(f"keys[{i}].key_sha256: expected 64 lowercase hex digits")
        if key.name in seen:
            raise ConfigError(f"keys[{i}].name: duplicate key name '{key.name}'")
        seen.add(key.name)
    _check_store(config)
    _check_metering(config)


def _check_store(config: Config) -> None:
    store = config.store
    if store.backend == "postgres":
        if not store.postgres_dsn:
            raise ConfigError("store.postgres_dsn: required with backend: postgres")
        if not store.redis_url:
            raise ConfigError("store.redis_url: required with backend: postgres (the shared counters)")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", store.postgres_schema):
        raise ConfigError("store.postgres_schema: expected a lowercase SQL identifier")


def _decimal(where: str, value: str | None, *, positive: bool = False) -> None:
    if value is None:
        return
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{where}: expected a decimal number as a string, got {value!r}") from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise ConfigError(f"{where}: expected a {'positive' if positive else 'non-negative'} amount, got {value}")


def _check_metering(config: Config) -> None:
    metering = config.metering
    for i, price in enumerate(metering.prices):
        for name in ("input", "output", "cache_write", "cache_read", "batch_input", "batch_output"):
            _decimal(f"metering.prices[{i}].{name}", getattr(price, name))
        try:
            date.fromisoformat(price.effective_from)
        except ValueError:
            raise ConfigError(f"metering.prices[{i}].effective_from: expected an ISO date (YYYY-MM-DD)") from None
    for i, budget in enumerate(metering.budgets):
        _decimal(f"metering.budgets[{i}].limit_usd", budget.limit_usd, positive=True)
        if budget.mode == "soft" and budget.webhook and not budget.webhook.startswith(("http://", "https://")):
            raise ConfigError(f"metering.budgets[{i}].webhook: expected an http(s) URL")
    for i, limit in enumerate(metering.rate_limits):
        if not (limit.rpm or limit.tpm or limit.concurrent):
            raise ConfigError(f"metering.rate_limits[{i}]: set at least one of rpm, tpm, concurrent")


def _check_provider(name: str, p: ProviderConfig) -> None:
    where = f"providers.{name}"
    if p.type in ("anthropic", "openai") and not p.api_key and not p.base_url:
        raise ConfigError(f"{where}.api_key: required for a {p.type} provider without a base_url")
    if p.type == "azure_openai" and not p.base_url:
        raise ConfigError(f"{where}.base_url: required for azure_openai (https://NAME.openai.azure.com)")
    if p.type == "vertex" and not p.project:
        raise ConfigError(f"{where}.project: required for a vertex provider")
    if p.type in ("vertex", "bedrock") and not p.region:
        raise ConfigError(f"{where}.region: required for a {p.type} provider")

