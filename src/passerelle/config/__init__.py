"""Configuration: one YAML file with ${ENV} substitution, validated at start-up."""

from passerelle.config.loader import ConfigError, load_config
from passerelle.config.schema import (
    AliasConfig,
    BudgetConfig,
    CacheConfig,
    Config,
    DeploymentConfig,
    KeyConfig,
    MeteringConfig,
    PriceConfig,
    ProviderConfig,
    RateLimitConfig,
    RouterConfig,
    ServerConfig,
    StoreConfig,
)

__all__ = [
    "AliasConfig",
    "BudgetConfig",
    "CacheConfig",
    "Config",
    "ConfigError",
    "DeploymentConfig",
    "KeyConfig",
    "MeteringConfig",
    "PriceConfig",
    "ProviderConfig",
    "RateLimitConfig",
    "RouterConfig",
    "ServerConfig",
    "StoreConfig",
    "load_config",
]
