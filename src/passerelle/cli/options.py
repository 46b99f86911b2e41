"""Options several commands share, spelled and explained once."""

from __future__ import annotations

import argparse


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (default: $PASSERELLE_CONFIG, else embedded defaults)")


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (default: $PASSERELLE_HOME, server.data_dir, ~/.passerelle)")


def add_store_options(p: argparse.ArgumentParser) -> None:
    """Where a command finds the gateway's stores (``--config``, ``--data-dir``) and ``--json`` for programs."""
    add_config(p)
    add_data_dir(p)
    p.add_argument("--json", action="store_true", help="print JSON for programs")
