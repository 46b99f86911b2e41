"""Options several commands share, spelled and explained once."""

from __future__ import annotations

import argparse
import json
import sys


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (default: $PASSERELLE_CONFIG, else embedded defaults)")


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (default: $PASSERELLE_HOME, server.data_dir, ~/.passerelle)")


def add_store_options(p: argparse.ArgumentParser) -> None:
    """Where a command finds the gateway's stores (``--config``, ``--data-dir``) and ``--json`` for programs."""
    add_config(p)
    add_data_dir(p)
    p.add_argument("--json", action="store_true", help="print JSON for programs")


def report_error(as_json: bool, kind: str, message: str, **details: object) -> None:
    """A refused command's error on stderr: with ``--json`` the admin API's error object (``type`` is one of its
    error types, such as ``invalid_request_error`` or ``not_found_error``), so scripts read every command's errors
    alike; otherwise one line."""
    if as_json:
        print(json.dumps({"error": {"type": kind, "message": message, **details}}), file=sys.stderr)
    else:
        print(f"passerelle: {message}", file=sys.stderr)
