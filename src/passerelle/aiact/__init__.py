"""AI Act evidence: purposes bound to keys, suspend switches, transparency marking, supplier and risk
registers, serious incidents and the Annex IV-style report (docs/ai-act.md)."""
