"""Configuration: one YAML file with ${ENV} substitution, validated at start-up."""

from passerelle.config.loader import ConfigError, load_config
from passerelle.config.schema import (
    AliasConfig,
    Config,
    DeploymentConfig,
    KeyConfig,
    ProviderConfig,
    RouterConfig,
    ServerConfig,
)

__all__ = [
    "AliasConfig",
    "Config",
    "ConfigError",
    "DeploymentConfig",
    "KeyConfig",
    "ProviderConfig",
    "RouterConfig",
    "ServerConfig",
    "load_config",
]
