"""The compliance benchmark: `python -m bench.compliance` (see bench/README.md)."""
