"""The shipped policy packs, as data files (one YAML file per pack)."""
