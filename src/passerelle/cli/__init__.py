"""The `passerelle` command: serve the gateway, administer it, run the standalone simulator, check a config."""

from __future__ import annotations

import argparse
import sys

from passerelle import __version__
from passerelle.cli import admin_commands, audit, scan, serve, skills


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="passerelle", description="Self-hosted AI gateway.")
    root.add_argument("--version", action="version", version=f"passerelle {__version__}")
    sub = root.add_subparsers(dest="command", required=True)
    serve.add_parsers(sub)
    admin_commands.add_parsers(sub)
    scan.add_parsers(sub)
    skills.add_parsers(sub)
    audit.add_parsers(sub)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
