"""The `passerelle` command: serve the gateway, administer it, run the standalone simulator, check a config."""

from __future__ import annotations

import argparse
import importlib
import sys

from passerelle import __version__

# Modules that add subcommands, in help order.  ``serve`` alone is imported for the long-running commands:
# the process that supervises the workers then stays small (the admin, audit and skills modules would add
# ~25 MB to it, for nothing).
COMMAND_MODULES = ("serve", "admin_commands", "compliance", "scan", "skills", "audit", "aiact")
SERVE_COMMANDS = frozenset({"serve", "simulator", "check-config"})


def parser(command: str | None = None) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="passerelle", description="Self-hosted AI gateway.")
    root.add_argument("--version", action="version", version=f"passerelle {__version__}")
    sub = root.add_subparsers(dest="command", required=True)
    for name in ("serve",) if command in SERVE_COMMANDS else COMMAND_MODULES:
        importlib.import_module(f"passerelle.cli.{name}").add_parsers(sub)
    return root


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv[0] if argv else None).parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
